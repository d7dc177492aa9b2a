/**
 * The fuzz suite's generator: a seeded PRNG and, from it, protocol events that are almost right. A valid
 * payload for each client event, then one or more mutations of it (a wrong type, an oversized string, an
 * extra key, a prototype-pollution key, deep nesting, a missing field, another call's id), or an event name
 * that is not in the protocol at all. One seed gives one sequence of choices; the ids it draws from are the
 * live server's, so a rerun with the same seed makes the same kinds of moves on fresh ids.
 */
import { CLIENT_EVENT_NAMES, type ClientEventName } from '@callchart/machines';
import { SAMPLE_CANDIDATE, SAMPLE_SDP } from './server.ts';

/** The seed: `FUZZ_SEED` when set (to replay a failure), otherwise a fresh one, printed by the suite. */
export function fuzzSeed(env: NodeJS.ProcessEnv = process.env): number {
  const given = env.FUZZ_SEED;
  if (given !== undefined && given !== '') {
    const seed = Number(given);
    if (!Number.isSafeInteger(seed)) throw new Error(`FUZZ_SEED must be an integer, not ${given}`);
    return seed >>> 0;
  }
  return (Math.random() * 2 ** 32) >>> 0;
}

/** mulberry32: small, fast, and the same sequence for the same seed on every platform. */
export class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  }
  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }
  /**
   * One of the live ids with probability `p`, else `otherwise`. It draws the same numbers whatever the
   * list holds, so the sequence of choices depends on the seed alone and not on what the server answered.
   */
  pickLive(items: readonly string[], p: number, otherwise: string): string {
    const known = this.chance(p);
    // Half the time one of the newest three: the request ringing now, the call just connected.
    const recent = this.chance(0.5);
    const at = this.next();
    if (!known || items.length === 0) return otherwise;
    return recent ? items[items.length - 1 - Math.floor(at * Math.min(3, items.length))]! : items[Math.floor(at * items.length)]!;
  }
  /** A child generator, so each socket's sequence depends on the seed and not on how the sockets interleave. */
  fork(): Rng {
    return new Rng(Math.floor(this.next() * 2 ** 32));
  }
}

/** Ids the fuzzers have seen, their own and other people's, so payloads can name real requests and calls. */
export class IdPool {
  readonly requests: string[] = [];
  readonly calls: string[] = [];
  readonly resumeTokens: string[] = [];
  add(kind: 'requests' | 'calls' | 'resumeTokens', id: string): void {
    const list = this[kind];
    if (list.includes(id)) return;
    list.push(id);
    // Bounded: a long run keeps the newest ids, which are the ones still live.
    if (list.length > 200) list.shift();
  }
}

export interface FuzzEvent {
  name: string;
  /** What follows the name in `emit`, the ack callback excepted. */
  args: unknown[];
  ack: boolean;
  /** How the event was made, for the suite's tally. */
  kind: 'valid' | 'mutated' | 'random-name';
}

/** Names a client has no business sending: server events, reserved-looking words, prototype members. */
const STRANGE_NAMES = [
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  'valueOf',
  'error',
  'message',
  'session.ready',
  'session.resumed',
  'agent.ring',
  'call.accepted',
  'routing.update',
  'inspect.subscribe',
  'inspect.history',
  'signal.offer ',
  'SIGNAL.OFFER',
  'signal.',
  '',
  'visitor.request\u0000',
  'agent.accept/../visitor.cancel',
];
/** Socket.IO's client refuses to emit these itself. */
const RESERVED = new Set(['connect', 'connect_error', 'disconnect', 'disconnecting', 'newListener', 'removeListener']);

const ALPHABETS = [
  'abcdefghijklmnopqrstuvwxyz',
  'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-',
  ' \t\n\r\u0000\u0007\u001b',
  '\u202e\u200b\u200d\ufeff\u2028',
  'éßñøΩЖ中文한국어',
  '\ud800\udc00\udbff\udfff',
  '"\'\\{}[]<>&%$#@!`',
];

function randomString(rng: Rng, length: number): string {
  const alphabet = rng.pick(ALPHABETS);
  let text = '';
  for (let i = 0; i < length; i++) text += alphabet[rng.int(0, alphabet.length - 1)];
  // Lone surrogates are what a careless `slice` makes.
  if (rng.chance(0.05)) text += rng.pick(['\ud800', '\udfff']);
  return text;
}

/** Longer than some limit: an id, a token, a name, an SDP, a candidate. Well under Socket.IO's 256 KiB message cap. */
function oversizedString(rng: Rng, prefix: string): string {
  const length = rng.pick([81, 129, 257, 641, 2_049, 4_097, 65_537, 100_000]);
  const filler = rng.pick(['a', 'é', '中', '\u0301']);
  return `${prefix}${filler.repeat(length)}`;
}

function wrongValue(rng: Rng, ids: IdPool): unknown {
  switch (rng.int(0, 13)) {
    case 0:
      return null;
    case 1:
      return rng.pick([0, -1, 1.5, 2 ** 53, -(2 ** 31), 1e308]);
    case 2:
      return rng.chance(0.5);
    case 3:
      return [];
    case 4:
      return {};
    case 5:
      return randomString(rng, rng.int(0, 40));
    case 6:
      return [randomString(rng, 3), 1, null];
    case 7:
      return { nested: { deeper: randomString(rng, 5) } };
    case 8:
      return oversizedString(rng, '');
    case 9:
      return rng.pick(['NaN', 'Infinity', 'undefined', 'null', 'true', '[object Object]']);
    case 10:
      return rng.pickLive(ids.calls, 1, 'call_none');
    case 11:
      return new Uint8Array(rng.int(0, 64));
    case 12:
      return deepNest(rng, randomString(rng, 3));
    default:
      return '';
  }
}

/** A value buried `depth` arrays or objects down. */
export function deepNest(rng: Rng, inner: unknown, depth = rng.pick([10, 100, 500, 2_000])): unknown {
  let value = inner;
  const asArray = rng.chance(0.5);
  for (let i = 0; i < depth; i++) value = asArray ? [value] : { a: value };
  return value;
}

/** An object with own keys that reach the prototype when a careless merge copies them. */
function pollutionKeys(rng: Rng): Record<string, unknown> {
  const key = rng.pick(['__proto__', 'constructor', 'prototype']);
  const body = key === 'constructor' ? '{"prototype":{"polluted":true}}' : '{"polluted":true}';
  // JSON.parse makes `__proto__` an own key, as a payload decoded by the server would have it.
  return JSON.parse(`{"${key}":${body}}`) as Record<string, unknown>;
}

function idFrom(rng: Rng, list: readonly string[], fallback: string): string {
  const made = randomString(rng, rng.int(1, 20)).replace(/[^A-Za-z0-9._:-]/g, 'x') || fallback;
  return rng.pickLive(list, 0.85, rng.chance(0.5) ? fallback : made);
}

const CANDIDATE_LINES = [SAMPLE_CANDIDATE.candidate, '', 'candidate:2 1 tcp 1518280447 10.0.0.1 9 typ host tcptype active'];

/** A payload the schema takes, naming ids the fuzzers have seen. */
export function validPayload(name: ClientEventName, rng: Rng, ids: IdPool): Record<string, unknown> {
  const requestId = () => idFrom(rng, ids.requests, 'req_none');
  const callId = () => idFrom(rng, ids.calls, 'call_none');
  switch (name) {
    case 'session.resume':
      return { resumeToken: rng.pickLive(ids.resumeTokens, 0.7, 'eyJhbGciOiJIUzI1NiJ9.e30.c2ln') };
    case 'session.ping':
    case 'agent.logout':
      return {};
    case 'visitor.request':
      return rng.chance(0.5) ? { pool: rng.pick(['support', 'sales', 'nowhere']) } : { pool: 'support', name: rng.pick(['Fuzz', 'Zoë', '👩‍💻 Fuzz']) };
    case 'visitor.cancel':
    case 'agent.accept':
    case 'agent.reject':
      return { requestId: requestId() };
    case 'agent.presence':
      return { status: rng.pick(['available', 'away']) };
    case 'signal.offer':
    case 'signal.answer':
    case 'signal.iceRestart':
      return { callId: callId(), sdp: SAMPLE_SDP };
    case 'signal.candidate': {
      const candidate: Record<string, unknown> = { candidate: rng.pick(CANDIDATE_LINES) };
      if (rng.chance(0.7)) candidate.sdpMid = rng.pick(['0', '1', null]);
      if (rng.chance(0.7)) candidate.sdpMLineIndex = rng.pick([0, 1, null]);
      return { callId: callId(), candidate };
    }
    case 'signal.restartRequest':
    case 'call.hangup':
      return { callId: callId() };
    case 'call.media':
      return { callId: callId(), state: rng.pick(['connected', 'reconnecting', 'failed']), ...(rng.chance(0.5) ? { attempt: rng.int(1, 5) } : {}) };
    case 'call.telemetry':
      return { callId: callId(), attempt: rng.int(1, 5), at: Date.now(), durationMs: rng.int(0, 5_000), outcome: rng.pick(['recovered', 'failed']) };
    case 'inspect.client':
      return {
        ...(rng.chance(0.5) ? { callId: callId() } : { requestId: requestId() }),
        actor: rng.pick(['visitorCall', 'agent', 'peerConnection', 'signaling']),
        entries: [{ at: Date.now(), event: { type: 'fuzz.event' }, state: 'idle', context: { n: rng.int(0, 9) } }],
      };
  }
}

/** Paths into a payload, so a mutation can reach inside `candidate` or `entries`; not into an earlier mutation's depths. */
function leafPaths(value: unknown, path: (string | number)[] = []): (string | number)[][] {
  if (value === null || typeof value !== 'object' || value instanceof Uint8Array || path.length >= 4) return [path];
  const entries = Array.isArray(value) ? value.map((item, index) => [index, item] as const) : Object.entries(value);
  if (entries.length === 0) return [path];
  return [path, ...entries.flatMap(([key, item]) => leafPaths(item, [...path, key]))];
}

function setAt(root: unknown, path: (string | number)[], value: unknown): unknown {
  if (path.length === 0) return value;
  const [head, ...rest] = path;
  const container = root as Record<string | number, unknown>;
  container[head!] = setAt(container[head!], rest, value);
  return root;
}

function deleteAt(root: unknown, path: (string | number)[]): void {
  if (path.length === 0) return;
  let container = root as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) container = container[key] as Record<string | number, unknown>;
  if (Array.isArray(container)) container.splice(Number(path.at(-1)), 1);
  else delete container[path.at(-1)!];
}

const MUTATIONS = ['wrong-type', 'oversized', 'extra-key', 'pollution', 'deep', 'missing', 'other-id', 'whole'] as const;

/** One to three mutations of a valid payload; the result is very likely, but not certainly, invalid. */
export function mutatedPayload(name: ClientEventName, rng: Rng, ids: IdPool): unknown {
  let payload: unknown = validPayload(name, rng, ids);
  const count = rng.int(1, 3);
  for (let i = 0; i < count; i++) {
    const paths = leafPaths(payload);
    const path = rng.pick(paths);
    const objectPaths = paths.filter((p) => {
      const at = p.reduce<unknown>((value, key) => (value as Record<string | number, unknown>)[key], payload);
      return at !== null && typeof at === 'object' && !Array.isArray(at) && !(at instanceof Uint8Array);
    });
    const mutation = rng.pick(MUTATIONS);
    switch (mutation) {
      case 'wrong-type':
        payload = setAt(payload, path, wrongValue(rng, ids));
        break;
      case 'oversized':
        payload = setAt(payload, path, oversizedString(rng, rng.chance(0.5) ? 'v=0\r\n' : 'candidate:'));
        break;
      case 'extra-key':
      case 'pollution': {
        if (objectPaths.length === 0) break;
        const target = rng.pick(objectPaths).reduce<unknown>((value, key) => (value as Record<string | number, unknown>)[key], payload) as Record<string, unknown>;
        // Defined, not assigned: assigning `__proto__` would change the prototype and send nothing.
        if (mutation === 'pollution') for (const [key, value] of Object.entries(pollutionKeys(rng))) Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
        else target[rng.chance(0.5) ? randomString(rng, rng.int(1, 80)) : rng.pick(['extra', 'ok', 'error', 'callId2'])] = wrongValue(rng, ids);
        break;
      }
      case 'deep':
        payload = setAt(payload, path, deepNest(rng, 'x'));
        break;
      case 'missing':
        deleteAt(payload, path);
        break;
      case 'other-id':
        payload = setAt(payload, path, rng.chance(0.5) ? rng.pickLive(ids.requests, 1, 'req_none') : rng.pickLive(ids.calls, 1, rng.pick(['ada', 'visitor-1'])));
        break;
      case 'whole':
        payload = wrongValue(rng, ids);
        break;
    }
  }
  return payload;
}

function isEmptyObject(value: unknown): boolean {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Uint8Array) && Object.keys(value).length === 0;
}

/** One event for a fuzzing socket to send. */
export function fuzzEvent(rng: Rng, ids: IdPool): FuzzEvent {
  const ack = rng.chance(0.8);
  if (rng.chance(0.15)) {
    const name = rng.chance(0.5) ? rng.pick(STRANGE_NAMES) : randomString(rng, rng.int(1, rng.chance(0.9) ? 30 : 300));
    if (RESERVED.has(name)) return { name: '__proto__', args: [{}], ack, kind: 'random-name' };
    return { name, args: rng.chance(0.1) ? [] : [rng.chance(0.5) ? validPayload(rng.pick(CLIENT_EVENT_NAMES), rng, ids) : wrongValue(rng, ids)], ack, kind: 'random-name' };
  }
  const name = rng.pick(CLIENT_EVENT_NAMES);
  // A valid logout would end the session for good (the token is revoked): the socket would fuzz nothing else.
  const valid = name !== 'agent.logout' && rng.chance(0.2);
  const payload = valid ? validPayload(name, rng, ids) : mutatedPayload(name, rng, ids);
  if (name === 'agent.logout' && isEmptyObject(payload)) (payload as Record<string, unknown>).extra = true;
  // Now and then, arguments after the payload, which the server must not take for the ack.
  const args = rng.chance(0.03) ? [payload, wrongValue(rng, ids)] : rng.chance(0.02) ? [] : [payload];
  return { name, args, ack, kind: valid ? 'valid' : 'mutated' };
}
