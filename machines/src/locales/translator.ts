/**
 * Message catalogues and the one function that reads them. A message is a string with `{name}`
 * placeholders, or, when its words change with a number, one such string per plural category of the
 * language (`Intl.PluralRules`), chosen by its `{count}`. Numbers put into a message are written the
 * locale's way (`Intl.NumberFormat`). Views return `Message`s (a key and its values) rather than
 * sentences, so they stay pure and every language is one catalogue away.
 */

export const languages = ['en', 'de'] as const;
export type Language = (typeof languages)[number];

/** A message whose words follow a count: one text per plural category, `other` always among them. */
export type PluralText = Readonly<Partial<Record<Intl.LDMLPluralRule, string>> & { other: string }>;

type NamesIn<Text> = Text extends `${string}{${infer Name}}${infer Rest}` ? Name | NamesIn<Rest> : never;

/** The placeholders a message names: `'Ringing {name}…'` gives `'name'`; a plural message always has `count`. */
export type Placeholders<Entry> = Entry extends string ? NamesIn<Entry> : NamesIn<Entry[keyof Entry]> | 'count';

export type ParamValue = string | number;

type UnionToIntersection<U> = (U extends unknown ? (value: U) => void : never) extends (value: infer I) => void ? I : never;

/** A translation that keeps every placeholder of the English text it stands for. */
type Keeping<Names extends string> = [Names] extends [never] ? string : UnionToIntersection<Names extends string ? `${string}{${Names}}${string}` : never>;

/**
 * Another language's catalogue for English catalogue `C`: the same keys, each keeping its placeholders.
 * A plural message stays plural, with the categories of its own language (locales.test.ts checks them).
 */
export type Translations<C> = { readonly [K in keyof C]: C[K] extends string ? Keeping<Placeholders<C[K]>> : PluralText };

type ParamsFor<Entry> = { readonly [Name in Placeholders<Entry>]: Name extends 'count' ? number : ParamValue };

/** One message of catalogue `C` with the values its placeholders need. */
export type Message<C> = {
  [K in keyof C & string]: [Placeholders<C[K]>] extends [never] ? { readonly key: K; readonly params?: undefined } : { readonly key: K; readonly params: ParamsFor<C[K]> };
}[keyof C & string];

/** The keys of catalogue `C` whose messages need no values: labels and whole sentences. */
export type PlainKey<C> = { [K in keyof C & string]: [Placeholders<C[K]>] extends [never] ? K : never }[keyof C & string];

type ArgsFor<Entry> = [Placeholders<Entry>] extends [never] ? [] : [params: ParamsFor<Entry>];

/** A piece of a message: its own words, or the value put in for one of its placeholders. */
export interface Segment {
  text: string;
  /** Set on a placeholder's value, so a UI can set it apart (in bold, say). */
  param?: string;
}

export interface Translator<C> {
  /** The language of the words. */
  readonly lang: Language;
  /** The locale numbers and dates are written for: `de-AT` writes them as Austria does. */
  readonly locale: string;
  t<K extends keyof C & string>(key: K, ...params: ArgsFor<C[K]>): string;
  /** The text of a message a view returned. */
  text(message: Message<C>): string;
  /** The same text in pieces, each placeholder's value a piece of its own. */
  segments<K extends keyof C & string>(key: K, ...params: ArgsFor<C[K]>): Segment[];
  number(value: number, options?: Intl.NumberFormatOptions): string;
  dateTime(value: number | Date, options?: Intl.DateTimeFormatOptions): string;
}

const PLACEHOLDER = /\{(\w+)\}/g;

/** The placeholder names a message uses, sorted, for checking that two catalogues agree. */
export function placeholdersOf(entry: string | PluralText): string[] {
  const texts: string[] = typeof entry === 'string' ? [entry] : Object.values(entry);
  const names = texts.flatMap((text) => [...text.matchAll(PLACEHOLDER)].map((match) => match[1] ?? ''));
  return [...new Set(typeof entry === 'string' ? names : [...names, 'count'])].sort();
}

/** `locale` is a BCP 47 tag such as `de-AT`, as `pickLocale` gives it; a language without a catalogue gets English words and formats. */
export function createTranslator<C>(locale: string, catalogues: Readonly<Record<Language, Translations<C>>>): Translator<C> {
  const lang = languageOf(locale) ?? 'en';
  const formatsFor = lang === languageOf(locale) ? locale : lang;
  const catalogue = catalogues[lang] as Readonly<Record<string, string | PluralText>>;
  const numbers = new Intl.NumberFormat(formatsFor);
  const plurals = new Intl.PluralRules(formatsFor);
  const format = (value: ParamValue): string => (typeof value === 'number' ? numbers.format(value) : value);

  const textOf = (key: string, params: Readonly<Record<string, ParamValue>>): string => {
    const entry = catalogue[key] ?? key;
    if (typeof entry === 'string') return entry;
    const count = params['count'];
    return (typeof count === 'number' ? entry[plurals.select(count)] : undefined) ?? entry.other;
  };

  const segments = (key: string, params: Readonly<Record<string, ParamValue>> = {}): Segment[] => {
    const text = textOf(key, params);
    const pieces: Segment[] = [];
    let from = 0;
    for (const match of text.matchAll(PLACEHOLDER)) {
      const name = match[1] ?? '';
      const value = params[name];
      if (match.index > from) pieces.push({ text: text.slice(from, match.index) });
      // A value the caller left out shows as its placeholder, so the gap is seen rather than silently closed.
      pieces.push(value === undefined ? { text: match[0] } : { text: format(value), param: name });
      from = match.index + match[0].length;
    }
    if (from < text.length) pieces.push({ text: text.slice(from) });
    return pieces;
  };
  const join = (pieces: Segment[]) => pieces.map((piece) => piece.text).join('');

  return {
    lang,
    locale: formatsFor,
    t: (key, ...params) => join(segments(key, params[0])),
    text: (message) => join(segments(message.key, message.params)),
    segments: (key, ...params) => segments(key, params[0]),
    number: (value, options) => (options ? new Intl.NumberFormat(formatsFor, options) : numbers).format(value),
    dateTime: (value, options) => new Intl.DateTimeFormat(formatsFor, options).format(value),
  };
}

/** The catalogue language of a BCP 47 tag (`de-AT` is `de`); null when it is unreadable or has none. */
function languageOf(tag: string): Language | null {
  let language: string;
  try {
    language = new Intl.Locale(tag.trim()).language;
  } catch {
    return null;
  }
  return languages.find((lang) => lang === language) ?? null;
}

/**
 * The first candidate with a catalogue, best first (a `data-lang`, then the browser's languages), as its
 * canonical tag: `de-at` gives `de-AT`, which speaks German. Anything unreadable or without a catalogue is
 * passed over; English is the last resort.
 */
export function pickLocale(candidates: Iterable<string | null | undefined>): string {
  for (const candidate of candidates) {
    if (candidate && languageOf(candidate)) return new Intl.Locale(candidate.trim()).toString();
  }
  return 'en';
}
