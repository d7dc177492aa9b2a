import fc from 'fast-check';
import { describe, expect, expectTypeOf, it } from 'vitest';
import type { z } from 'zod/mini';
import {
  CLIENT_EVENT_NAMES,
  HandshakeAuth,
  MAX_CANDIDATE_BYTES,
  MAX_ID_LENGTH,
  MAX_NAME_CODE_UNITS,
  MAX_NAME_LENGTH,
  MAX_SDP_BYTES,
  ProtocolError,
  SERVER_EVENT_NAMES,
  clientEventSchemas,
  parseClientAck,
  parseClientEvent,
  parseHandshakeAuth,
  parseServerEvent,
  serverEventSchemas,
  utf8ByteLength,
  type ClientAck,
  type ClientEventName,
  type ClientPayload,
  type ClientToServerEvents,
  type ParseFailure,
  type ServerEventName,
  type ServerPayload,
  type ServerToClientEvents,
} from './protocol.ts';

const SDP = 'v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n';
const CANDIDATE = {
  candidate: 'candidate:842163049 1 udp 1677729535 127.0.0.1 49203 typ host generation 0',
  sdpMid: '0',
  sdpMLineIndex: 0,
  usernameFragment: 'EsPf',
};
const TOKEN = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZ2VudC0xIn0.c2lnbmF0dXJl';

const clientSamples = {
  'session.resume': { resumeToken: TOKEN },
  'session.ping': {},
  'visitor.request': { pool: 'support', name: 'Ada' },
  'visitor.cancel': { requestId: 'req-1' },
  'agent.presence': { status: 'available' },
  'agent.accept': { requestId: 'req-1' },
  'agent.reject': { requestId: 'req-1' },
  'agent.logout': {},
  'signal.offer': { callId: 'call-1', sdp: SDP },
  'signal.answer': { callId: 'call-1', sdp: SDP },
  'signal.candidate': { callId: 'call-1', candidate: CANDIDATE },
  'signal.iceRestart': { callId: 'call-1', sdp: SDP },
  'signal.restartRequest': { callId: 'call-1' },
  'call.media': { callId: 'call-1', state: 'reconnecting', attempt: 2 },
  'call.telemetry': {
    callId: 'call-1',
    attempt: 1,
    at: 1_700_000_000_000,
    durationMs: 742.5,
    outcome: 'recovered',
  },
  'call.hangup': { callId: 'call-1' },
  'inspect.client': {
    callId: 'call-1',
    requestId: 'req-1',
    actor: 'peerConnection',
    entries: [{ at: 1_700_000_000_000, event: { type: 'ice.disconnected' }, state: 'unstable', context: { attempts: 0 } }],
  },
} satisfies { [E in ClientEventName]: ClientPayload<E> };

const serverSamples = {
  'session.ready': { resumeToken: TOKEN, role: 'visitor', userId: 'visitor-7' },
  'session.resumed': {
    call: { callId: 'call-1', role: 'answerer', peerName: 'Grace', state: 'paused' },
    request: null,
  },
  'session.expired': {},
  'routing.update': { requestId: 'req-1', state: 'ringing', agentName: 'Grace' },
  'routing.ended': { requestId: 'req-1', reason: 'no-agents' },
  'agent.ring': { requestId: 'req-1', visitorName: 'Ada', expiresAt: 1_700_000_015_000 },
  'agent.ringCancelled': { requestId: 'req-1' },
  'call.accepted': {
    callId: 'call-1',
    role: 'offerer',
    peerName: 'Grace',
    iceServers: [
      { urls: 'turn:127.0.0.1:3478?transport=udp', username: 'test', credential: 'test' },
      { urls: ['stun:127.0.0.1:3478'] },
    ],
    iceTransportPolicy: 'relay',
  },
  'signal.offer': { callId: 'call-1', sdp: SDP },
  'signal.answer': { callId: 'call-1', sdp: SDP },
  'signal.iceRestart': { callId: 'call-1', sdp: SDP },
  'signal.candidate': { callId: 'call-1', candidate: CANDIDATE },
  'signal.restartRequest': { callId: 'call-1' },
  'call.paused': {
    callId: 'call-1',
    legs: { agent: { socket: 'down', media: 'unreported' }, visitor: { socket: 'up', media: 'reconnecting' } },
  },
  'call.resumed': { callId: 'call-1' },
  'call.ended': { callId: 'call-1', reason: 'media-failed' },
  error: { code: 'forbidden', message: 'You are not part of this call.', field: 'callId' },
} satisfies { [E in ServerEventName]: ServerPayload<E> };

function clientSample(event: ClientEventName): Record<string, unknown> {
  return structuredClone(clientSamples[event]) as Record<string, unknown>;
}
function serverSample(event: ServerEventName): Record<string, unknown> {
  return structuredClone(serverSamples[event]) as Record<string, unknown>;
}

function shapeOf(schema: z.ZodMiniObject): Record<string, z.ZodMiniType> {
  return schema.shape as Record<string, z.ZodMiniType>;
}

function expectFailure(result: { ok: boolean }): ParseFailure['error'] {
  expect(result.ok).toBe(false);
  const { error } = result as ParseFailure;
  expect(ProtocolError.safeParse(error).success).toBe(true);
  return error;
}

function expectInvalidField(result: { ok: boolean }, field: string): void {
  const error = expectFailure(result);
  expect(error.code).toBe('invalid-payload');
  expect(error.field).toBe(field);
  expect(error.message).toContain(field);
}

/** `head` padded with `filler` (whose byte width must divide evenly) to exactly `bytes` UTF-8 bytes. */
function textOfBytes(head: string, bytes: number, filler: string): string {
  const width = utf8ByteLength(filler);
  const room = bytes - head.length;
  const text = head + 'a'.repeat(room % width) + filler.repeat(Math.floor(room / width));
  expect(utf8ByteLength(text)).toBe(bytes);
  return text;
}

const sdpOfBytes = (bytes: number, filler = 'a'): string => textOfBytes('v=0\r\n', bytes, filler);
const candidateOfBytes = (bytes: number, filler = 'a'): string => textOfBytes('candidate:', bytes, filler);

describe('protocol: client → server events', () => {
  it('covers every client event with a sample', () => {
    expect(Object.keys(clientSamples).sort()).toEqual([...CLIENT_EVENT_NAMES].sort());
  });

  it.each(CLIENT_EVENT_NAMES)('accepts a valid %s payload and returns it unchanged', (event) => {
    const result = parseClientEvent(event, clientSample(event));
    expect(result).toEqual({ ok: true, event, data: clientSamples[event] });
  });

  it.each(CLIENT_EVENT_NAMES)('rejects %s with an extra key, naming that key', (event) => {
    expectInvalidField(parseClientEvent(event, { ...clientSample(event), smuggled: 'x' }), 'smuggled');
  });

  it.each(CLIENT_EVENT_NAMES)('rejects %s when a field has the wrong type, naming it', (event) => {
    for (const key of Object.keys(clientSample(event))) {
      expectInvalidField(parseClientEvent(event, { ...clientSample(event), [key]: true }), key);
    }
  });

  it.each(CLIENT_EVENT_NAMES)('rejects %s when a required field is missing, naming it', (event) => {
    const shape = shapeOf(clientEventSchemas[event]);
    for (const key of Object.keys(clientSample(event))) {
      const payload = clientSample(event);
      delete payload[key];
      const optional = shape[key]?.safeParse(undefined).success === true;
      if (optional) expect(parseClientEvent(event, payload).ok).toBe(true);
      else expectInvalidField(parseClientEvent(event, payload), key);
    }
  });

  it('names nested fields of a candidate with a dotted path', () => {
    const missing = { callId: 'call-1', candidate: { sdpMid: '0' } };
    expectInvalidField(parseClientEvent('signal.candidate', missing), 'candidate.candidate');
    const wrongType = { callId: 'call-1', candidate: { ...CANDIDATE, sdpMLineIndex: '0' } };
    expectInvalidField(parseClientEvent('signal.candidate', wrongType), 'candidate.sdpMLineIndex');
    const extra = { callId: 'call-1', candidate: { ...CANDIDATE, port: 1 } };
    expectInvalidField(parseClientEvent('signal.candidate', extra), 'candidate.port');
  });

  it('accepts the minimal candidate forms browsers produce, including end-of-candidates', () => {
    for (const candidate of [
      { candidate: CANDIDATE.candidate },
      { candidate: CANDIDATE.candidate, sdpMid: null, sdpMLineIndex: null, usernameFragment: null },
      { candidate: '', sdpMid: '0', sdpMLineIndex: 0 },
    ]) {
      expect(parseClientEvent('signal.candidate', { callId: 'c', candidate }).ok).toBe(true);
    }
    const notACandidate = { callId: 'c', candidate: { candidate: 'a=rtpmap:111 opus/48000/2' } };
    expectInvalidField(parseClientEvent('signal.candidate', notACandidate), 'candidate.candidate');
  });

  it('rejects values outside their enums and ranges', () => {
    expectInvalidField(parseClientEvent('agent.presence', { status: 'busy' }), 'status');
    expectInvalidField(parseClientEvent('call.media', { callId: 'c', state: 'closed' }), 'state');
    expectInvalidField(parseClientEvent('call.media', { callId: 'c', state: 'failed', attempt: 0 }), 'attempt');
    const telemetry = clientSample('call.telemetry');
    expectInvalidField(parseClientEvent('call.telemetry', { ...telemetry, at: 1.5 }), 'at');
    expectInvalidField(parseClientEvent('call.telemetry', { ...telemetry, durationMs: -1 }), 'durationMs');
    expectInvalidField(parseClientEvent('call.telemetry', { ...telemetry, durationMs: Number.NaN }), 'durationMs');
    expectInvalidField(parseClientEvent('call.telemetry', { ...telemetry, outcome: 'ok' }), 'outcome');
  });

  it('accepts ids up to the length limit of the safe charset and rejects anything else', () => {
    const longest = 'a'.repeat(MAX_ID_LENGTH);
    expect(parseClientEvent('call.hangup', { callId: longest }).ok).toBe(true);
    expect(parseClientEvent('call.hangup', { callId: 'A-z_0.9:x' }).ok).toBe(true);
    for (const callId of ['', `${longest}a`, 'call 1', 'call/1', '../etc', 'call\u00e9', '<script>', 'a\nb']) {
      expectInvalidField(parseClientEvent('call.hangup', { callId }), 'callId');
    }
  });

  it('rejects display names that are blank or carry control characters', () => {
    expect(parseClientEvent('visitor.request', { pool: 'p', name: 'Zoë Ñúñez' }).ok).toBe(true);
    expect(parseClientEvent('visitor.request', { pool: 'p', name: 'می\u200cخواهم' }).ok).toBe(true);
    for (const name of ['', '   ', 'a\nb', 'evil\u202etxt', 'x'.repeat(81)]) {
      expectInvalidField(parseClientEvent('visitor.request', { pool: 'p', name }), 'name');
    }
  });

  it('counts a display name in grapheme clusters, as a reader does, within a bound in code units', () => {
    const accepted = (name: string) => parseClientEvent('visitor.request', { pool: 'p', name }).ok;
    // Each is one character on screen and several UTF-16 code units.
    for (const grapheme of ['e\u0301', '\u{1F1EB}\u{1F1F7}', '\u{1F469}\u200D\u{1F4BB}', '\u0915\u094D\u0937\u093F', '\u{1F600}']) {
      expect(grapheme.length).toBeGreaterThan(1);
      expect(accepted(grapheme.repeat(MAX_NAME_LENGTH))).toBe(true);
      expectInvalidField(parseClientEvent('visitor.request', { pool: 'p', name: grapheme.repeat(MAX_NAME_LENGTH + 1) }), 'name');
    }
    expect(accepted('x'.repeat(MAX_NAME_LENGTH))).toBe(true);
    // One cluster of stacked combining marks is one character, but no name may exceed the code-unit bound.
    const stacked = `a${'\u0301'.repeat(MAX_NAME_CODE_UNITS - 1)}`;
    expect(accepted(stacked)).toBe(true);
    const failure = parseClientEvent('visitor.request', { pool: 'p', name: `${stacked}\u0301` });
    expectInvalidField(failure, 'name');
    expect(failure.ok === false && failure.error.message).toBe(`Field "name" must be at most ${MAX_NAME_CODE_UNITS} UTF-16 code units.`);
    const tooMany = parseClientEvent('visitor.request', { pool: 'p', name: '\u{1F1EB}\u{1F1F7}'.repeat(MAX_NAME_LENGTH + 1) });
    expect(tooMany.ok === false && tooMany.error.message).toBe(`Field "name" must be at most ${MAX_NAME_LENGTH} characters.`);
    // The server's names reach clients under the same rule.
    expect(parseServerEvent('agent.ring', { requestId: 'r', visitorName: '\u{1F469}\u200D\u{1F4BB}'.repeat(MAX_NAME_LENGTH), expiresAt: 1 }).ok).toBe(true);
  });

  it('rejects an SDP that does not start with v=0', () => {
    expectInvalidField(parseClientEvent('signal.offer', { callId: 'c', sdp: 'o=- 1 2 IN IP4 0.0.0.0' }), 'sdp');
    expectInvalidField(parseClientEvent('signal.answer', { callId: 'c', sdp: '' }), 'sdp');
  });
});

describe('protocol: size limits', () => {
  it('exports the limits from DESIGN §3', () => {
    expect(MAX_SDP_BYTES).toBe(64 * 1024);
    expect(MAX_CANDIDATE_BYTES).toBe(2 * 1024);
  });

  it('accepts an SDP of exactly 64 KiB', () => {
    for (const event of ['signal.offer', 'signal.answer', 'signal.iceRestart'] as const) {
      expect(parseClientEvent(event, { callId: 'c', sdp: sdpOfBytes(MAX_SDP_BYTES) }).ok).toBe(true);
      expect(parseServerEvent(event, { callId: 'c', sdp: sdpOfBytes(MAX_SDP_BYTES) }).ok).toBe(true);
    }
    expect(parseClientEvent('signal.offer', { callId: 'c', sdp: sdpOfBytes(MAX_SDP_BYTES, 'é') }).ok).toBe(true);
  });

  it('rejects an SDP of 64 KiB + 1 byte, naming sdp', () => {
    const sdp = sdpOfBytes(MAX_SDP_BYTES + 1);
    for (const event of ['signal.offer', 'signal.answer', 'signal.iceRestart'] as const) {
      expectInvalidField(parseClientEvent(event, { callId: 'c', sdp }), 'sdp');
      expectInvalidField(parseServerEvent(event, { callId: 'c', sdp }), 'sdp');
    }
  });

  it('measures SDP size in UTF-8 bytes, not characters', () => {
    for (const filler of ['é', '€', '😀']) {
      const sdp = sdpOfBytes(MAX_SDP_BYTES + 1, filler);
      expect(sdp.length).toBeLessThan(MAX_SDP_BYTES);
      const error = expectFailure(parseClientEvent('signal.offer', { callId: 'c', sdp }));
      expect(error.field).toBe('sdp');
      expect(error.message).toMatch(/bytes/);
    }
  });

  it('accepts a candidate of exactly 2 KiB and rejects one byte more', () => {
    const fits = { callId: 'c', candidate: { candidate: candidateOfBytes(MAX_CANDIDATE_BYTES) } };
    expect(parseClientEvent('signal.candidate', fits).ok).toBe(true);
    expect(parseServerEvent('signal.candidate', fits).ok).toBe(true);
    const over = { callId: 'c', candidate: { candidate: candidateOfBytes(MAX_CANDIDATE_BYTES + 1) } };
    expectInvalidField(parseClientEvent('signal.candidate', over), 'candidate.candidate');
    expectInvalidField(parseServerEvent('signal.candidate', over), 'candidate.candidate');
  });

  it('measures candidate size in UTF-8 bytes, not characters', () => {
    const line = candidateOfBytes(MAX_CANDIDATE_BYTES + 1, '€');
    expect(line.length).toBeLessThan(MAX_CANDIDATE_BYTES);
    expectInvalidField(parseClientEvent('signal.candidate', { callId: 'c', candidate: { candidate: line } }), 'candidate.candidate');
  });

  it('rejects huge strings quickly in every string field', () => {
    const huge = 'v=0'.padEnd(16 * 1024 * 1024, 'x');
    const started = performance.now();
    expectInvalidField(parseClientEvent('signal.offer', { callId: 'c', sdp: huge }), 'sdp');
    expectInvalidField(parseClientEvent('signal.offer', { callId: huge, sdp: SDP }), 'callId');
    expectInvalidField(parseClientEvent('visitor.request', { pool: 'p', name: huge }), 'name');
    expectInvalidField(parseClientEvent('session.resume', { resumeToken: huge }), 'resumeToken');
    expectInvalidField(parseClientEvent('signal.candidate', { callId: 'c', candidate: { candidate: huge } }), 'candidate.candidate');
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('clips an attacker-chosen key before it appears in the error', () => {
    const error = expectFailure(parseClientEvent('call.hangup', { callId: 'c', ['k'.repeat(100_000)]: 1 }));
    expect(error.field?.length).toBeLessThanOrEqual(257);
    expect(error.field?.startsWith('kkkk')).toBe(true);
    expectInvalidField(parseClientEvent('call.hangup', { callId: 'c', '': 1 }), '(empty)');
  });
});

describe('protocol: hostile input never throws and changes nothing', () => {
  const nonObjects: unknown[] = [undefined, null, 0, 42, Number.NaN, '', 'signal', true, [], [SDP], 10n, Symbol('s'), () => 1];

  it.each(nonObjects.map((payload) => [String(typeof payload), payload]))(
    'rejects a %s payload as invalid-payload',
    (_kind, payload) => {
      for (const event of CLIENT_EVENT_NAMES) {
        const error = expectFailure(parseClientEvent(event, payload));
        expect(error.code).toBe('invalid-payload');
      }
    },
  );

  it('answers unknown event names with unknown-event, including prototype keys', () => {
    for (const event of ['nope', '', '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'call.accepted', 'error']) {
      expect(expectFailure(parseClientEvent(event, {})).code).toBe('unknown-event');
    }
    for (const event of ['__proto__', 'constructor', 'valueOf', 'call.hangup', 'signal.offer ']) {
      expect(expectFailure(parseServerEvent(event, {})).code).toBe('unknown-event');
    }
    for (const event of [undefined, null, 42, {}, ['signal.offer']]) {
      expect(expectFailure(parseClientEvent(event as string, {})).code).toBe('unknown-event');
    }
  });

  it('rejects a __proto__ key without polluting any prototype', () => {
    const payload = JSON.parse(`{"__proto__":{"polluted":true},"callId":"c","sdp":${JSON.stringify(SDP)}}`) as unknown;
    expectInvalidField(parseClientEvent('signal.offer', payload), '__proto__');
    const nested = JSON.parse('{"callId":"c","candidate":{"candidate":"","__proto__":{"polluted":true}}}') as unknown;
    expectInvalidField(parseClientEvent('signal.candidate', nested), 'candidate.__proto__');
    const constructorKey = { callId: 'c', constructor: { prototype: { polluted: true } } };
    expectInvalidField(parseClientEvent('call.hangup', constructorKey), 'constructor');
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
  });

  it('survives getters and proxies that throw', () => {
    const getter = Object.defineProperty({ sdp: SDP }, 'callId', {
      enumerable: true,
      get() {
        throw new Error('boom');
      },
    });
    expect(expectFailure(parseClientEvent('signal.offer', getter)).code).toBe('invalid-payload');
    const trap = () => {
      throw new Error('trap');
    };
    const proxy = new Proxy({}, { get: trap, has: trap, ownKeys: trap, getOwnPropertyDescriptor: trap, getPrototypeOf: trap });
    expect(expectFailure(parseClientEvent('signal.offer', proxy)).code).toBe('invalid-payload');
    expect(expectFailure(parseServerEvent('call.accepted', proxy)).code).toBe('invalid-payload');
    expect(expectFailure(parseClientAck('visitor.request', proxy)).code).toBe('invalid-payload');
    expect(expectFailure(parseHandshakeAuth(proxy)).code).toBe('invalid-payload');
  });

  it('accepts a valid payload built without a prototype', () => {
    const payload = Object.assign(Object.create(null) as object, { callId: 'c', sdp: SDP });
    expect(parseClientEvent('signal.offer', payload)).toEqual({ ok: true, event: 'signal.offer', data: { callId: 'c', sdp: SDP } });
  });

  it('returns a copy, so later changes to the payload do not reach the parsed data', () => {
    const payload = { callId: 'call-1', candidate: { ...CANDIDATE } };
    const result = parseClientEvent('signal.candidate', payload);
    payload.candidate.candidate = 'candidate:tampered';
    expect(result.ok && result.event === 'signal.candidate' && result.data.candidate.candidate).toBe(CANDIDATE.candidate);
  });

  it('never throws on arbitrary event names and payloads (property)', () => {
    fc.assert(
      fc.property(fc.anything(), fc.anything(), (event, payload) => {
        const result = parseClientEvent(event as string, payload);
        return result.ok || ProtocolError.safeParse(result.error).success;
      }),
      { numRuns: 300 },
    );
  });

  const hostileValues = fc.anything({
    key: fc.oneof(fc.string(), fc.constantFrom('__proto__', 'constructor', 'prototype', 'callId', 'sdp', 'candidate')),
    withBoxedValues: true,
    withNullPrototype: true,
    withObjectString: true,
    withSparseArray: true,
    withTypedArray: true,
    withBigInt: true,
    withDate: true,
    withMap: true,
    withSet: true,
    withUnicodeString: true,
  });

  it('never throws on arbitrary payloads for every known event (property)', () => {
    fc.assert(
      fc.property(fc.constantFrom(...CLIENT_EVENT_NAMES), fc.constantFrom(...SERVER_EVENT_NAMES), hostileValues, (clientEvent, serverEvent, payload) => {
        for (const result of [
          parseClientEvent(clientEvent, payload),
          parseServerEvent(serverEvent, payload),
          parseClientAck(clientEvent, payload),
          parseHandshakeAuth(payload),
        ]) {
          if (!result.ok && !ProtocolError.safeParse(result.error).success) return false;
        }
        return true;
      }),
      { numRuns: 300 },
    );
  });

  it('names the corrupted field when one field of a valid payload is replaced (property)', () => {
    const corruption = fc.record({
      event: fc.constantFrom(...CLIENT_EVENT_NAMES),
      key: fc.oneof(fc.string({ minLength: 1 }), fc.constantFrom('__proto__', 'constructor', 'callId', 'sdp', 'candidate')),
      value: hostileValues,
    });
    fc.assert(
      fc.property(corruption, ({ event, key, value }) => {
        const payload = clientSample(event);
        Object.defineProperty(payload, key, { value, enumerable: true, configurable: true, writable: true });
        const result = parseClientEvent(event, payload);
        if (result.ok) {
          // The only way to stay valid is a legal value for a known field; the data must re-validate.
          expect(Object.hasOwn(shapeOf(clientEventSchemas[event]), key)).toBe(true);
          expect(parseClientEvent(event, result.data)).toEqual(result);
        } else {
          expect(result.error.code).toBe('invalid-payload');
          const named = key.length > 64 ? `${key.slice(0, 64)}…` : key;
          const field = result.error.field ?? '';
          expect(field === named || field.startsWith(`${named}.`)).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('protocol: server → client events', () => {
  it('covers every server event with a sample', () => {
    expect(Object.keys(serverSamples).sort()).toEqual([...SERVER_EVENT_NAMES].sort());
  });

  it.each(SERVER_EVENT_NAMES)('accepts a valid %s payload and returns it unchanged', (event) => {
    expect(parseServerEvent(event, serverSample(event))).toEqual({ ok: true, event, data: serverSamples[event] });
  });

  it.each(SERVER_EVENT_NAMES)('rejects %s with an extra key, naming that key', (event) => {
    expectInvalidField(parseServerEvent(event, { ...serverSample(event), smuggled: 1 }), 'smuggled');
  });

  it.each(SERVER_EVENT_NAMES)('rejects %s when a field has the wrong type or a required one is missing', (event) => {
    const shape = shapeOf(serverEventSchemas[event]);
    for (const key of Object.keys(serverSample(event))) {
      expectInvalidField(parseServerEvent(event, { ...serverSample(event), [key]: true }), key);
      const payload = serverSample(event);
      delete payload[key];
      if (shape[key]?.safeParse(undefined).success === true) expect(parseServerEvent(event, payload).ok).toBe(true);
      else expectInvalidField(parseServerEvent(event, payload), key);
    }
  });

  it('accepts session.resumed without a call and names nested call fields', () => {
    expect(parseServerEvent('session.resumed', { call: null, request: null }).ok).toBe(true);
    expect(parseServerEvent('session.resumed', { call: null, request: { requestId: 'r', state: 'queued', position: 2 } }).ok).toBe(true);
    expectInvalidField(parseServerEvent('session.resumed', { call: { callId: 'c', role: 'offerer', peerName: 'G' }, request: null }), 'call.state');
  });

  it('validates ICE servers by index', () => {
    const accepted = serverSample('call.accepted');
    expect(parseServerEvent('call.accepted', { ...accepted, iceServers: [] }).ok).toBe(true);
    expectInvalidField(parseServerEvent('call.accepted', { ...accepted, iceServers: [{ urls: 'http://x' }] }), 'iceServers.0.urls');
    expectInvalidField(
      parseServerEvent('call.accepted', { ...accepted, iceServers: [{ urls: 'stun:a' }, { urls: 'turn:b', password: 'p' }] }),
      'iceServers.1.password',
    );
    expectInvalidField(parseServerEvent('call.accepted', { ...accepted, iceTransportPolicy: 'none' }), 'iceTransportPolicy');
  });

  it('rejects an error event with an unknown code', () => {
    expectInvalidField(parseServerEvent('error', { code: 'teapot', message: 'x' }), 'code');
  });
});

describe('protocol: acknowledgements and handshake', () => {
  it('accepts ok and error replies, with the data each event promises', () => {
    expect(parseClientAck('visitor.request', { ok: true, requestId: 'req-1' })).toEqual({
      ok: true,
      ack: { ok: true, requestId: 'req-1' },
    });
    expect(parseClientAck('call.hangup', { ok: true }).ok).toBe(true);
    const failure = { ok: false, error: { code: 'not-found', message: 'No such call.', field: 'callId' } };
    expect(parseClientAck('call.hangup', failure)).toEqual({ ok: true, ack: failure });
  });

  it('rejects malformed replies, naming the field', () => {
    expectInvalidField(parseClientAck('visitor.request', { ok: true }), 'requestId');
    expectInvalidField(parseClientAck('call.hangup', { ok: true, extra: 1 }), 'extra');
    expectInvalidField(parseClientAck('call.hangup', { ok: false, error: { code: 'nope', message: 'm' } }), 'error.code');
    expectInvalidField(parseClientAck('call.hangup', { ok: 'yes' }), 'ok');
  });

  it('validates the handshake auth object', () => {
    expect(parseHandshakeAuth({ token: TOKEN })).toEqual({ ok: true, data: { token: TOKEN } });
    expect(parseHandshakeAuth({ token: TOKEN, resumeToken: 'r3sume_T0ken-' }).ok).toBe(true);
    expectInvalidField(parseHandshakeAuth({}), 'token');
    expectInvalidField(parseHandshakeAuth({ token: '' }), 'token');
    expectInvalidField(parseHandshakeAuth({ token: TOKEN, resumeToken: 'has space' }), 'resumeToken');
    expectInvalidField(parseHandshakeAuth({ token: TOKEN, role: 'agent' }), 'role');
    expect(HandshakeAuth.safeParse({ token: TOKEN }).success).toBe(true);
  });
});

describe('protocol: utf8ByteLength', () => {
  it('agrees with TextEncoder on arbitrary UTF-16, lone surrogates included (property)', () => {
    const encoder = new TextEncoder();
    const units = fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((code) => String.fromCharCode(code)) });
    fc.assert(
      fc.property(fc.oneof(units, fc.string({ unit: 'binary' })), fc.nat(64), (text, limit) => {
        const exact = encoder.encode(text).length;
        expect(utf8ByteLength(text)).toBe(exact);
        const bounded = utf8ByteLength(text, limit);
        if (exact <= limit) expect(bounded).toBe(exact);
        else expect(bounded).toBeGreaterThan(limit);
      }),
      { numRuns: 300 },
    );
  });
});

describe('protocol: types', () => {
  it('derives the Socket.IO event maps from the schemas', () => {
    expectTypeOf<Parameters<ClientToServerEvents['signal.offer']>[0]>().toEqualTypeOf<{ callId: string; sdp: string }>();
    expectTypeOf<Parameters<ClientToServerEvents['visitor.request']>[1]>().toEqualTypeOf<
      ((reply: ClientAck<'visitor.request'>) => void) | undefined
    >();
    expectTypeOf<ClientAck<'visitor.request'>>().toExtend<{ ok: true; requestId: string } | { ok: false }>();
    expectTypeOf<{ ok: true }>().toExtend<ClientAck<'call.hangup'>>();
    expectTypeOf<Parameters<ServerToClientEvents['call.paused']>[0]['legs']['agent']>().toEqualTypeOf<{
      socket: 'up' | 'down';
      media: 'connected' | 'reconnecting' | 'failed' | 'unreported';
    }>();
    expectTypeOf<Parameters<ServerToClientEvents['call.accepted']>[0]['iceTransportPolicy']>().toEqualTypeOf<
      'all' | 'relay' | undefined
    >();
    const result = parseClientEvent('signal.offer', {});
    if (result.ok && result.event === 'signal.candidate') {
      expectTypeOf(result.data.candidate.sdpMLineIndex).toEqualTypeOf<number | null | undefined>();
    }
  });
});
