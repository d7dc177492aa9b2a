import { describe, expect, it } from 'vitest';
import * as de from './de.ts';
import * as en from './en.ts';
import { agentTranslator, pickLocale, placeholdersOf, visitorTranslator, type Language, type PluralText } from './index.ts';

type Catalogue = Readonly<Record<string, Readonly<Record<string, string | PluralText>>>>;
const others: Record<Exclude<Language, 'en'>, Catalogue> = { de };

/** Plural categories a message needs in `lang` that it has no text for. */
function missingCategories(lang: string, entry: PluralText): string[] {
  return new Intl.PluralRules(lang).resolvedOptions().pluralCategories.filter((category) => entry[category] === undefined);
}

/** Every way catalogue `other` (in `lang`) departs from English, one line each. */
function differences(lang: string, other: Catalogue): string[] {
  const reference: Catalogue = en;
  const found: string[] = [];
  for (const part of new Set([...Object.keys(reference), ...Object.keys(other)])) {
    const ours = reference[part] ?? {};
    const theirs = other[part] ?? {};
    for (const key of new Set([...Object.keys(ours), ...Object.keys(theirs)])) {
      const a = ours[key];
      const b = theirs[key];
      if (a === undefined) found.push(`${part}: ${key} is not in en`);
      else if (b === undefined) found.push(`${part}: ${key} is missing`);
      else if (typeof a !== typeof b) found.push(`${part}: ${key} is ${typeof a === 'string' ? 'plural' : 'not plural'} unlike en`);
      else {
        const want = placeholdersOf(a);
        const got = placeholdersOf(b);
        if (want.join() !== got.join()) found.push(`${part}: ${key} has {${got.join('}, {')}} instead of {${want.join('}, {')}}`);
        const texts = typeof b === 'string' ? [b] : Object.values(b);
        if (texts.some((text) => text.trim() === '')) found.push(`${part}: ${key} is empty`);
        if (typeof b !== 'string' && missingCategories(lang, b).length > 0) found.push(`${part}: ${key} has no ${missingCategories(lang, b).join(', ')}`);
      }
    }
  }
  return found;
}

describe('the catalogues', () => {
  for (const [lang, catalogue] of Object.entries(others)) {
    it(`${lang} has every key of en, no other, with the same placeholders and plurals`, () => {
      expect(differences(lang, catalogue)).toEqual([]);
    });
  }

  it('has English complete in itself, with one key space for all parts', () => {
    expect(differences('en', en)).toEqual([]);
    const keys = Object.values(en).flatMap((part) => Object.keys(part));
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('finds what the check is for', () => {
    const { 'agent.logOut': _dropped, ...agentWithoutLogOut } = de.agent;
    const broken = {
      call: { ...de.call, 'call.reconnecting': 'Versuch {attempt} von {max}', 'call.offline': ' ' },
      visitor: { ...de.visitor, 'visitor.extra': 'Extra', 'visitor.title': { other: 'Video-Support' } },
      agent: { ...agentWithoutLogOut, 'agent.ring.countdown': { other: 'Klingelt noch {count} Sekunden' } },
    };
    expect(differences('de', broken)).toEqual([
      'call: call.reconnecting has {attempt}, {max} instead of {attempt}, {maxAttempts}',
      'call: call.offline is empty',
      'visitor: visitor.title is plural unlike en',
      'visitor: visitor.extra is not in en',
      'agent: agent.logOut is missing',
      'agent: agent.ring.countdown has no one',
    ]);
  });
});

describe('the translator', () => {
  it('fills placeholders and writes numbers the language’s way', () => {
    expect(visitorTranslator('en').t('visitor.queued', { position: 1234 })).toBe('You are number 1,234 in line');
    expect(visitorTranslator('de').t('visitor.queued', { position: 1234 })).toBe('Sie sind Nummer 1.234 in der Warteschlange');
    expect(visitorTranslator('de').text({ key: 'call.reconnecting', params: { attempt: 2, maxAttempts: 3 } })).toBe(
      'Verbindungsproblem, wir verbinden Sie erneut… (Versuch 2 von 3)',
    );
    expect(agentTranslator('de').number(2.5, { minimumFractionDigits: 1, maximumFractionDigits: 1 })).toBe('2,5');
    expect(agentTranslator('en').dateTime(Date.UTC(2025, 0, 31, 12), { dateStyle: 'short', timeZone: 'UTC' })).toBe('1/31/25');
    expect(agentTranslator('de').dateTime(Date.UTC(2025, 0, 31, 12), { dateStyle: 'short', timeZone: 'UTC' })).toBe('31.01.25');
  });

  it('gives each placeholder’s value as a piece of its own', () => {
    expect(agentTranslator('de').segments('agent.ring.title', { name: 'Vera' })).toEqual([{ text: 'Eingehender Anruf von ' }, { text: 'Vera', param: 'name' }]);
    expect(agentTranslator('en').segments('agent.ring.countdown', { count: 15 })).toEqual([
      { text: 'Rings out in ' },
      { text: '15', param: 'count' },
      { text: ' seconds' },
    ]);
  });

  it('chooses a plural message’s words by its count, as the language counts', () => {
    const english = agentTranslator('en');
    const german = agentTranslator('de');
    expect([1, 0, 2, 1.5].map((count) => english.t('agent.ring.countdown', { count }))).toEqual([
      'Rings out in 1 second',
      'Rings out in 0 seconds',
      'Rings out in 2 seconds',
      'Rings out in 1.5 seconds',
    ]);
    expect([1, 15].map((count) => german.t('agent.ring.countdown', { count }))).toEqual(['Klingelt noch 1 Sekunde', 'Klingelt noch 15 Sekunden']);
  });

  it('keeps each screen to its own parts', () => {
    // The call's sentences are on both screens.
    for (const translator of [visitorTranslator('de'), agentTranslator('de')] as unknown as { t(key: string): string }[]) {
      expect(Object.keys(de.call).map((key) => translator.t(key))).toEqual(Object.values(de.call));
    }
    // A dashboard key is not in the widget's catalogue, so it comes back as the key itself.
    expect(visitorTranslator('de').t('agent.logOut' as 'visitor.title')).toBe('agent.logOut');
    expect(agentTranslator('de').t('agent.logOut')).toBe('Abmelden');
  });
});

describe('pickLocale', () => {
  it('takes the first candidate whose language has a catalogue', () => {
    expect(pickLocale(['de-AT'])).toBe('de-AT');
    expect(pickLocale(['DE'])).toBe('de');
    expect(pickLocale([undefined, 'fr-FR', 'de-ch', 'en'])).toBe('de-CH');
    expect(pickLocale(['en-GB', 'de'])).toBe('en-GB');
  });

  it('passes over what it cannot read, and falls back to English', () => {
    expect(pickLocale(['not a tag', '', null, 'de'])).toBe('de');
    expect(pickLocale(['fr', 'ja-JP'])).toBe('en');
    expect(pickLocale([])).toBe('en');
  });

  it('gives the words of the language and the formats of the locale', () => {
    const austrian = visitorTranslator('de-AT');
    expect([austrian.lang, austrian.locale]).toEqual(['de', 'de-AT']);
    expect(austrian.t('visitor.title')).toBe('Video-Support');
    const british = agentTranslator('en-GB');
    expect(british.lang).toBe('en');
    expect(british.dateTime(Date.UTC(2025, 0, 31, 12), { dateStyle: 'short', timeZone: 'UTC' })).toBe('31/01/2025');
    // No French catalogue: English words, and English numbers to go with them.
    const french = visitorTranslator('fr-FR');
    expect([french.lang, french.locale]).toEqual(['en', 'en']);
    expect(french.t('visitor.queued', { position: 1234 })).toBe('You are number 1,234 in line');
  });
});
