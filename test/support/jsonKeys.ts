/**
 * Repeated keys in JSON text. `JSON.parse` keeps the last of two equal keys without a word, so a line that
 * says `requestId` twice (perhaps with two different values) looks clean once parsed; this reads the raw text.
 */

/** Every key that appears more than once in one object of `text`, as a path (`a.b` for b inside a). Throws on text that is not JSON. */
export function repeatedKeys(text: string): string[] {
  let at = 0;
  const repeated: string[] = [];
  const fail = (what: string): never => {
    throw new SyntaxError(`${what} at ${String(at)} in ${text}`);
  };
  const space = () => {
    while (at < text.length && ' \t\n\r'.includes(text[at]!)) at++;
  };
  const string = (): string => {
    const start = at;
    at++;
    while (at < text.length && text[at] !== '"') at += text[at] === '\\' ? 2 : 1;
    if (text[at] !== '"') fail('unterminated string');
    at++;
    return JSON.parse(text.slice(start, at)) as string;
  };
  /** An object's members or an array's items, from its opening bracket to `close`. */
  const sequence = (close: string, item: (index: number) => void): void => {
    at++;
    space();
    if (text[at] === close) {
      at++;
      return;
    }
    for (let index = 0; ; index++) {
      space();
      item(index);
      space();
      if (text[at] === ',') at++;
      else if (text[at] === close) {
        at++;
        return;
      } else fail(`expected , or ${close}`);
    }
  };
  const value = (path: string): void => {
    space();
    const c = text[at];
    if (c === '{') {
      const keys = new Set<string>();
      sequence('}', () => {
        if (text[at] !== '"') fail('expected a key');
        const key = string();
        const keyPath = path === '' ? key : `${path}.${key}`;
        if (keys.has(key)) repeated.push(keyPath);
        keys.add(key);
        space();
        if (text[at] !== ':') fail('expected a colon');
        at++;
        value(keyPath);
      });
      return;
    }
    if (c === '[') {
      sequence(']', (index) => value(`${path}[${String(index)}]`));
      return;
    }
    if (c === '"') {
      string();
      return;
    }
    const literal = /^(?:-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(text.slice(at, at + 40));
    if (!literal) return fail('unexpected character');
    at += literal[0].length;
  };
  value('');
  space();
  if (at !== text.length) fail('trailing text');
  return repeated;
}
