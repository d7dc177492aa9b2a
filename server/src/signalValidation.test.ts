import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_CANDIDATE_BYTES, MAX_ID_LENGTH, MAX_SDP_BYTES, fitsInBytes, parseClientEvent, utf8ByteLength } from '@callchart/machines';
import { COMPILED_EVENTS, compiledEventSchema, parseIncomingEvent } from './signalValidation.ts';

/** `prefix` then copies of `unit`, padded with ASCII, to exactly `bytes` bytes of UTF-8 (one unit over if it must). */
function ofBytes(prefix: string, bytes: number, unit: string): string {
  const unitBytes = utf8ByteLength(unit);
  const room = Math.max(0, bytes - utf8ByteLength(prefix));
  return prefix + unit.repeat(Math.floor(room / unitBytes)) + 'a'.repeat(room % unitBytes);
}

// One unit of each UTF-8 width, and a lone surrogate (3 bytes, as TextEncoder writes it).
const units = fc.constantFrom('a', 'é', '€', '😀', '\uD800');
const nearLimit = (prefix: string, limit: number) =>
  fc.tuple(units, fc.integer({ min: -2, max: 2 })).map(([unit, delta]) => ofBytes(prefix, limit + delta, unit));
const anyText = fc.string({ unit: 'binary', maxLength: 300 });

const id = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9._:-]{1,16}$/),
  fc.integer({ min: MAX_ID_LENGTH - 1, max: MAX_ID_LENGTH + 1 }).map((length) => 'c'.repeat(length)),
  fc.constantFrom('', 'call 1', 'call/1', 'é', '__proto__', 'constructor'),
  anyText,
);
const sdp = fc.oneof(
  anyText.map((text) => `v=0${text}`),
  nearLimit('v=0', MAX_SDP_BYTES),
  nearLimit('v=1', MAX_SDP_BYTES),
  fc.constantFrom('', 'v=', 'v=0', ' v=0', 'V=0'),
  anyText,
);
const candidateLine = fc.oneof(
  anyText.map((text) => `candidate:${text}`),
  nearLimit('candidate:', MAX_CANDIDATE_BYTES),
  fc.constantFrom('', 'candidate', 'candidate:', ' candidate:', 'Candidate:1'),
  anyText,
);
// Around the 256-character limit of sdpMid and usernameFragment, in ASCII and in astral characters (two units each).
const shortText = fc.oneof(
  anyText,
  fc.integer({ min: 255, max: 257 }).map((length) => 'm'.repeat(length)),
  fc.integer({ min: 127, max: 257 }).map((length) => '😀'.repeat(length)),
);
const sometimes = <T>(value: fc.Arbitrary<T>) => fc.option(value, { nil: undefined, freq: 3 });

const candidate = fc.record(
  {
    candidate: candidateLine,
    sdpMid: sometimes(fc.option(shortText)),
    sdpMLineIndex: sometimes(fc.option(fc.oneof(fc.integer({ min: -2, max: 65_537 }), fc.double()))),
    usernameFragment: sometimes(fc.option(shortText)),
  },
  { requiredKeys: [], noNullPrototype: true },
);

/**
 * Payloads shaped like each event's, right or nearly right: the cases where a validator could drift from zod.
 * Objects have the usual prototype, as everything decoded from the wire does: an accepted payload is handed on
 * as it came, where zod hands on a copy.
 */
const shaped: Record<(typeof COMPILED_EVENTS)[number], fc.Arbitrary<Record<string, unknown>>> = {
  'signal.candidate': fc.record({ callId: id, candidate }, { requiredKeys: [], noNullPrototype: true }),
  'signal.offer': fc.record({ callId: id, sdp }, { requiredKeys: [], noNullPrototype: true }),
  'signal.answer': fc.record({ callId: id, sdp }, { requiredKeys: [], noNullPrototype: true }),
  'signal.iceRestart': fc.record({ callId: id, sdp }, { requiredKeys: [], noNullPrototype: true }),
  'signal.restartRequest': fc.record({ callId: id }, { requiredKeys: [], noNullPrototype: true }),
  'call.media': fc.record(
    {
      callId: id,
      state: fc.oneof(fc.constantFrom('connected', 'reconnecting', 'failed', 'paused', ''), anyText),
      attempt: fc.oneof(fc.integer({ min: -1, max: 1_002 }), fc.double(), fc.constant(undefined)),
    },
    { requiredKeys: [], noNullPrototype: true },
  ),
};

const hostileKey = fc.oneof(fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'sdp', 'callId'), fc.string());

/** Some field replaced by anything, an extra (often prototype-named) key, or nested objects likewise. */
function hostile(payload: fc.Arbitrary<Record<string, unknown>>): fc.Arbitrary<unknown> {
  return fc.tuple(payload, fc.nat(), fc.anything(), hostileKey, fc.nat({ max: 3 })).map(([base, pick, value, key, how]) => {
    const keys = Object.keys(base);
    const victim = keys.length > 0 ? keys[pick % keys.length]! : key;
    const copy: Record<string, unknown> = { ...base };
    if (how === 0) copy[victim] = value;
    else if (how === 1) Object.defineProperty(copy, key, { value, enumerable: true, configurable: true, writable: true });
    else if (how === 2 && typeof base.candidate === 'object' && base.candidate !== null) {
      copy.candidate = { ...base.candidate };
      Object.defineProperty(copy.candidate, key, { value, enumerable: true, configurable: true, writable: true });
    } else delete copy[victim];
    return copy;
  });
}

// What arrives over Socket.IO went through JSON: `__proto__` as an own key, no undefined, no NaN.
const wire = (payload: fc.Arbitrary<unknown>) =>
  payload.map((value) => {
    const text = JSON.stringify(value);
    return text === undefined ? undefined : (JSON.parse(text) as unknown);
  });

function expectSameAsZod(event: string, payload: unknown): void {
  expect(parseIncomingEvent(event, payload)).toStrictEqual(parseClientEvent(event, payload));
}

describe('compiled validation of the hot client events', () => {
  const event = fc.constantFrom(...COMPILED_EVENTS);
  const payloadFor = (name: (typeof COMPILED_EVENTS)[number]) =>
    fc.oneof(shaped[name], hostile(shaped[name]), wire(shaped[name]), wire(hostile(shaped[name])), fc.anything(), fc.object());

  it('accepts and rejects what zod does, with the same data and the same error', () => {
    fc.assert(
      fc.property(event.chain((name) => fc.tuple(fc.constant(name), payloadFor(name))), ([name, payload]) => expectSameAsZod(name, payload)),
      { numRuns: 3_000 },
    );
  });

  it('accepts payloads at exactly the byte limits and refuses them one byte over', () => {
    // A third of the limit in units is where the byte count stops being skipped.
    const third = Math.floor(MAX_SDP_BYTES / 3);
    expect(fitsInBytes('€'.repeat(third), MAX_SDP_BYTES)).toBe(true);
    expect(fitsInBytes('€'.repeat(third + 1), MAX_SDP_BYTES)).toBe(false);
    expect(fitsInBytes('a'.repeat(third + 1), MAX_SDP_BYTES)).toBe(true);
    expect(fitsInBytes('😀'.repeat(MAX_SDP_BYTES / 4), MAX_SDP_BYTES)).toBe(true);
    expect(fitsInBytes(`${'😀'.repeat(MAX_SDP_BYTES / 4)}a`, MAX_SDP_BYTES)).toBe(false);
    for (const unit of ['a', 'é', '€', '😀', '\uD800']) {
      const atLimit = ofBytes('v=0', MAX_SDP_BYTES, unit);
      expect(utf8ByteLength(atLimit)).toBe(MAX_SDP_BYTES);
      expect(parseIncomingEvent('signal.offer', { callId: 'c1', sdp: atLimit }).ok).toBe(true);
      const over = parseIncomingEvent('signal.offer', { callId: 'c1', sdp: `${atLimit}a` });
      expect(over).toStrictEqual({ ok: false, error: { code: 'invalid-payload', message: `Field "sdp" must be at most ${MAX_SDP_BYTES} bytes of UTF-8.`, field: 'sdp' } });

      const line = ofBytes('candidate:', MAX_CANDIDATE_BYTES, unit);
      expect(parseIncomingEvent('signal.candidate', { callId: 'c1', candidate: { candidate: line } }).ok).toBe(true);
      expectSameAsZod('signal.candidate', { callId: 'c1', candidate: { candidate: `${line}a` } });
      expect(parseIncomingEvent('signal.candidate', { callId: 'c1', candidate: { candidate: `${line}a` } }).ok).toBe(false);
    }
  });

  it('counts string lengths as zod does: a surrogate pair is one character, a lone surrogate too', () => {
    for (const length of [255, 256, 257]) {
      for (const text of ['😀'.repeat(length), '\uD800'.repeat(length), `${'😀'.repeat(length - 1)}\uDC00`]) {
        expectSameAsZod('signal.candidate', { callId: 'c1', candidate: { candidate: '', sdpMid: text, usernameFragment: null } });
        expectSameAsZod('signal.candidate', { callId: 'c1', candidate: { candidate: '', usernameFragment: text } });
      }
    }
    expect(parseIncomingEvent('signal.candidate', { callId: 'c1', candidate: { candidate: '', sdpMid: '😀'.repeat(256) } }).ok).toBe(true);
    expect(parseIncomingEvent('signal.candidate', { callId: 'c1', candidate: { candidate: '', sdpMid: '😀'.repeat(257) } }).ok).toBe(false);
  });

  it('refuses prototype keys and unreadable payloads as zod does', () => {
    expectSameAsZod('signal.restartRequest', JSON.parse('{"callId":"c1","__proto__":{"sdp":"v=0"}}'));
    expectSameAsZod('signal.candidate', JSON.parse('{"callId":"c1","candidate":{"candidate":"","__proto__":null}}'));
    const throwing = new Proxy({}, { get: () => { throw new Error('no'); }, ownKeys: () => { throw new Error('no'); } });
    expect(parseIncomingEvent('signal.offer', throwing)).toStrictEqual(parseClientEvent('signal.offer', throwing));
    expect(parseIncomingEvent('signal.offer', throwing).ok).toBe(false);
  });

  it('carries every refinement of the compiled schemas into their JSON Schema', () => {
    const offer = compiledEventSchema('signal.offer') as { properties: { sdp: Record<string, unknown> } };
    expect(offer.properties.sdp).toMatchObject({ type: 'string', pattern: '^v=0', utf8MaxBytes: MAX_SDP_BYTES });
    const line = compiledEventSchema('signal.candidate') as { properties: { candidate: { properties: { candidate: Record<string, unknown> } } } };
    expect(line.properties.candidate.properties.candidate).toMatchObject({ pattern: '^(?:candidate:|$)', utf8MaxBytes: MAX_CANDIDATE_BYTES });
  });

  it('leaves the other events to zod', () => {
    expectSameAsZod('visitor.request', { pool: 'support', name: 'Ada' });
    expectSameAsZod('call.hangup', { callId: 'c1', extra: 1 });
    expectSameAsZod('no.such.event', {});
    expectSameAsZod('__proto__', {});
  });
});
