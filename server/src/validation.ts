/**
 * How a zod failure becomes one sentence that names the offending field, for the environment and for
 * HTTP bodies alike. The wire protocol words its errors the same way, so a client that shows them gets
 * one style everywhere.
 */
import { z } from 'zod';

const ARTICLES: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'a boolean',
  object: 'an object',
  array: 'an array',
  null: 'null',
};

/**
 * A zod error map that words each issue as a fragment following the field's name ("must be a string").
 * Messages written on a schema override it, and are fragments too. No fragment quotes the input: it may
 * be huge, hostile or secret.
 */
export function issueFragment(issue: z.core.$ZodRawIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'is required';
      return `must be ${ARTICLES[issue.expected] ?? issue.expected}`;
    case 'invalid_value':
      if (issue.input === undefined) return 'is required';
      return `must be one of ${issue.values.map((value) => String(value)).join(', ')}`;
    case 'too_big':
      if (issue.origin === 'string') return `must be at most ${String(issue.maximum)} characters`;
      if (issue.origin === 'array') return `must have at most ${String(issue.maximum)} items`;
      return `must be at most ${String(issue.maximum)}`;
    case 'too_small':
      if (issue.origin === 'string') {
        return issue.minimum === 1 ? 'must not be empty' : `must be at least ${String(issue.minimum)} characters`;
      }
      if (issue.origin === 'array') {
        return issue.minimum === 1 ? 'must not be empty' : `must have at least ${String(issue.minimum)} items`;
      }
      return `must be at least ${String(issue.minimum)}`;
    case 'invalid_union':
      if (issue.input === undefined) return 'is required';
      return 'does not match any allowed form';
    case 'unrecognized_keys':
      return 'is not an allowed field';
    default:
      return 'is invalid';
  }
}

export interface FieldIssue {
  /** Dotted path with `[i]` for array items (`iceServers[0].urls`); undefined when the whole value is wrong. */
  field: string | undefined;
  /** The fragment that follows the field's name. */
  fragment: string;
}

const MAX_SEGMENT = 64;

// Unknown keys are chosen by whoever sent the data, so they are clipped before they reach a message.
function formatPath(path: readonly PropertyKey[]): string | undefined {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') {
      out += `[${String(segment)}]`;
      continue;
    }
    const text = typeof segment === 'symbol' ? '(symbol)' : segment || '(empty)';
    const clipped = text.length > MAX_SEGMENT ? `${text.slice(0, MAX_SEGMENT)}…` : text;
    out += out === '' ? clipped : `.${clipped}`;
  }
  return out === '' ? undefined : out;
}

/** The first issue of a failed parse; zod reports them in the order of the schema's keys. */
export function firstIssue(error: z.ZodError): FieldIssue {
  const issue = error.issues[0];
  if (issue === undefined) return { field: undefined, fragment: 'is invalid' };
  // An unknown key is reported on its parent; naming the key itself tells the sender what to remove.
  const path =
    issue.code === 'unrecognized_keys' && issue.keys[0] !== undefined ? [...issue.path, issue.keys[0]] : issue.path;
  return { field: formatPath(path), fragment: issue.message };
}
