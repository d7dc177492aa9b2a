/**
 * The widget's and the dashboard's words, en and de. Each screen builds its translator from the parts it
 * shows, inside its factory, so the widget's bundle leaves the dashboard's catalogue out.
 */
import * as de from './de.ts';
import * as en from './en.ts';
import { createTranslator, type Message, type PlainKey, type Translator } from './translator.ts';

export { languages, pickLocale, placeholdersOf, type Language, type Message, type ParamValue, type PlainKey, type PluralText, type Segment, type Translator } from './translator.ts';

export type CallMessages = typeof en.call;
export type VisitorMessages = typeof en.call & typeof en.visitor;
export type AgentMessages = typeof en.call & typeof en.agent;

export type CallKey = keyof CallMessages;
export type VisitorKey = keyof VisitorMessages;
export type AgentKey = keyof AgentMessages;

/** Keys of messages that need no values, such as button labels. */
export type CallPlainKey = PlainKey<CallMessages>;
export type VisitorPlainKey = PlainKey<VisitorMessages>;
export type AgentPlainKey = PlainKey<AgentMessages>;

export type CallMessage = Message<CallMessages>;
export type VisitorMessage = Message<VisitorMessages>;
export type AgentMessage = Message<AgentMessages>;

export type VisitorTranslator = Translator<VisitorMessages>;
export type AgentTranslator = Translator<AgentMessages>;

/** The widget's words in `locale` (a BCP 47 tag, as `pickLocale` gives it). */
export function visitorTranslator(locale: string): VisitorTranslator {
  return createTranslator<VisitorMessages>(locale, { en: { ...en.call, ...en.visitor }, de: { ...de.call, ...de.visitor } });
}

/** The dashboard's words in `locale` (a BCP 47 tag, as `pickLocale` gives it). */
export function agentTranslator(locale: string): AgentTranslator {
  return createTranslator<AgentMessages>(locale, { en: { ...en.call, ...en.agent }, de: { ...de.call, ...de.agent } });
}
