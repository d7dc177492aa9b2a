/**
 * The callchart wire protocol (DESIGN §3): one zod schema per Socket.IO event, the typed event maps
 * derived from them, and the parsers both sides run on every incoming payload.
 *
 * Every object schema is strict, so a payload with an unexpected key is rejected instead of being
 * passed along: a relay must never forward data it did not validate. A parser never throws; an
 * invalid payload becomes a `ProtocolError` whose `field` names the first offending field, so the
 * sender can be told exactly what was wrong and the receiver changes nothing.
 */
// zod/mini: the same schemas as zod's classic API, but tree-shakable, because this module also runs in
// the visitor's widget, where every kilobyte is downloaded by someone else's site.
import { z } from 'zod/mini';

// ---------------------------------------------------------------------------------------------
// Limits

/** Largest SDP accepted, in UTF-8 bytes (64 KiB). */
export const MAX_SDP_BYTES = 65_536;
/** Largest ICE candidate line accepted, in UTF-8 bytes (2 KiB). */
export const MAX_CANDIDATE_BYTES = 2_048;
/** Longest id (call, request, user, pool). */
export const MAX_ID_LENGTH = 128;
/** Longest auth or resume token; signed tokens are much longer than ids. */
export const MAX_TOKEN_LENGTH = 4_096;
/** Longest display name (visitor, agent, peer), in grapheme clusters: the characters a reader counts. */
export const MAX_NAME_LENGTH = 80;
/**
 * A display name's bound in UTF-16 code units, whatever its graphemes: one cluster can stack any number of
 * combining marks, and a name travels inside a visitor token that must stay under `MAX_TOKEN_LENGTH`.
 */
export const MAX_NAME_CODE_UNITS = 8 * MAX_NAME_LENGTH;
/** Longest human-readable error message carried in a `ProtocolError`. */
export const MAX_ERROR_MESSAGE_LENGTH = 500;
/** Highest reconnection attempt number a client may report. */
export const MAX_ATTEMPT = 1_000;
/** Most ICE servers a call may be configured with, and most URLs per server. */
export const MAX_ICE_SERVERS = 16;
/** Inspection entries in one `inspect.client` message. */
export const MAX_INSPECT_ENTRIES = 50;
/** One inspection entry, as JSON. */
export const MAX_INSPECT_ENTRY_BYTES = 8_192;

/**
 * UTF-8 length of `text` without allocating an encoded copy. Lone surrogates count as 3 bytes,
 * which is what `TextEncoder` emits for them (U+FFFD). Stops counting once `limit` is passed, so
 * an oversized string costs no more than the limit to reject.
 */
export function utf8ByteLength(text: string, limit = Number.POSITIVE_INFINITY): number {
  let bytes = 0;
  for (let i = 0; i < text.length && bytes <= limit; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    else if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else {
        bytes += 3;
      }
    } else bytes += 3;
  }
  return bytes;
}

// Made on first use: a module that only imports the protocol pays nothing for it.
let graphemes: Intl.Segmenter | undefined;

/**
 * Whether `text` has at most `limit` grapheme clusters (`Intl.Segmenter`), as a person counts "é", "🇫🇷" or
 * "👩‍💻" as one character each. A runtime without `Intl.Segmenter` (browsers before 2024) lets every string
 * through: the server, where it always exists, is the one that refuses, and a client must never refuse a name
 * the server took.
 */
export function fitsInGraphemes(text: string, limit: number): boolean {
  if (text.length <= limit) return true;
  if (typeof Intl === 'undefined' || typeof Intl.Segmenter !== 'function') return true;
  graphemes ??= new Intl.Segmenter(undefined, { granularity: 'grapheme' });
  let count = 0;
  for (const _ of graphemes.segment(text)) if (++count > limit) return false;
  return true;
}

/**
 * Whether `text` is at most `limit` bytes of UTF-8. Each UTF-16 unit encodes to one to three bytes, so the
 * unit count bounds the answer both ways; only a string between the two bounds is counted (a 4 KB SDP is not).
 */
export function fitsInBytes(text: string, limit: number): boolean {
  if (text.length > limit) return false;
  return text.length * 3 <= limit || utf8ByteLength(text, limit) <= limit;
}

// ---------------------------------------------------------------------------------------------
// Building blocks

const ID_PATTERN = /^[A-Za-z0-9._:-]+$/;
const TOKEN_PATTERN = /^[A-Za-z0-9._~+/=-]+$/;
// Names end up in the other party's UI; control characters would let a sender forge lines there.
// Zero-width (non-)joiners are format characters that some scripts and emoji need, so they stay.
const NAME_PATTERN = /^(?=.*\S)(?:[^\p{Cc}\p{Cf}\p{Zl}\p{Zp}]|[\u200C\u200D])+$/u;
const ICE_URL_PATTERN = /^(stun|stuns|turn|turns):[^\s]+$/;

const notEmpty = z.minLength(1, { error: 'must not be empty' });
// `abort`: an oversized string is rejected on its length alone, before a pattern walks it.
const atMostChars = (limit: number) => z.maxLength(limit, { error: `must be at most ${limit} characters`, abort: true });
const atMostBytes = (limit: number) =>
  z.refine<string>((text) => fitsInBytes(text, limit), { error: `must be at most ${limit} bytes of UTF-8`, abort: true });

/** A call, request, user or pool id: 1–128 characters of `A–Z a–z 0–9 . _ : -`. */
export const Id = z
  .string()
  .check(notEmpty, atMostChars(MAX_ID_LENGTH), z.regex(ID_PATTERN, { error: 'may only contain letters, digits, ".", "_", ":" and "-"' }));

/** An opaque signed token (auth or resume). */
export const Token = z
  .string()
  .check(notEmpty, atMostChars(MAX_TOKEN_LENGTH), z.regex(TOKEN_PATTERN, { error: 'must be a base64 or base64url token' }));

/**
 * A display name shown to the other party: 1–80 grapheme clusters of visible text, and at most
 * `MAX_NAME_CODE_UNITS` UTF-16 code units, checked first so an oversized string is never segmented.
 */
export const DisplayName = z
  .string()
  .check(
    notEmpty,
    z.maxLength(MAX_NAME_CODE_UNITS, { error: `must be at most ${MAX_NAME_CODE_UNITS} UTF-16 code units`, abort: true }),
    z.refine<string>((name) => fitsInGraphemes(name, MAX_NAME_LENGTH), { error: `must be at most ${MAX_NAME_LENGTH} characters`, abort: true }),
    z.regex(NAME_PATTERN, { error: 'must contain visible text and no control characters' }),
  );

/** A session description: starts with `v=0` and is at most `MAX_SDP_BYTES` bytes of UTF-8. */
export const Sdp = z
  .string()
  .check(atMostBytes(MAX_SDP_BYTES), z.refine((sdp: string) => sdp.startsWith('v=0'), { error: 'must be an SDP starting with "v=0"' }));

/** Epoch milliseconds, as supplied by an adapter's clock. */
export const EpochMs = z.int({ error: 'must be an integer number of milliseconds' }).check(z.nonnegative());

const Attempt = z.int().check(z.gte(1), z.lte(MAX_ATTEMPT));
const QueuePosition = z.int().check(z.gte(1), z.lte(1_000_000));

/**
 * The JSON form of an `RTCIceCandidate` (`candidate.toJSON()`). An empty `candidate` string is the
 * end-of-candidates marker, so it is allowed.
 */
export const IceCandidate = z.strictObject({
  candidate: z
    .string()
    .check(
      atMostBytes(MAX_CANDIDATE_BYTES),
      z.refine((line: string) => line === '' || line.startsWith('candidate:'), {
        error: 'must be empty or an ICE candidate line starting with "candidate:"',
      }),
    ),
  sdpMid: z.optional(z.nullable(z.string().check(z.maxLength(256)))),
  sdpMLineIndex: z.optional(z.nullable(z.int().check(z.gte(0), z.lte(65_535)))),
  usernameFragment: z.optional(z.nullable(z.string().check(z.maxLength(256)))),
});
export type IceCandidate = z.infer<typeof IceCandidate>;

const IceUrl = z
  .string()
  .check(z.maxLength(512, { abort: true }), z.regex(ICE_URL_PATTERN, { error: 'must be a stun:, stuns:, turn: or turns: URL' }));

/** The part of `RTCIceServer` a server hands to clients. */
export const IceServer = z.strictObject({
  urls: z.union([IceUrl, z.array(IceUrl).check(z.minLength(1), z.maxLength(MAX_ICE_SERVERS))]),
  username: z.optional(z.string().check(z.maxLength(512))),
  credential: z.optional(z.string().check(z.maxLength(512))),
});
export type IceServer = z.infer<typeof IceServer>;

export const PROTOCOL_ERROR_CODES = [
  'invalid-payload',
  'unknown-event',
  'unauthorized',
  'forbidden',
  'not-found',
  /** The other person's socket is gone, so nothing relayed to them could arrive; nothing was sent. */
  'peer-unavailable',
  'conflict',
  'rate-limited',
  'store-unavailable',
  /**
   * In a cluster: the node that runs the request could not be reached in time (it is being taken over, or
   * this node cannot reach Redis), or this node is shutting down. Nothing was done; try again.
   */
  'unavailable',
  'internal',
] as const;
export const ProtocolErrorCode = z.enum(PROTOCOL_ERROR_CODES);
export type ProtocolErrorCode = z.infer<typeof ProtocolErrorCode>;

/** A typed error: `message` is one sentence a user may see; `field` names the offending field. */
export const ProtocolError = z.strictObject({
  code: ProtocolErrorCode,
  message: z.string().check(z.minLength(1), z.maxLength(MAX_ERROR_MESSAGE_LENGTH)),
  field: z.optional(z.string().check(z.minLength(1), z.maxLength(256))),
});
export type ProtocolError = z.infer<typeof ProtocolError>;

export const CALL_END_REASONS = [
  'hangup',
  'media-failed',
  'reconnect-timeout',
  'reassigned',
  'error',
] as const;
export const CallEndReason = z.enum(CALL_END_REASONS);
export type CallEndReason = z.infer<typeof CallEndReason>;

export const SessionRole = z.enum(['visitor', 'agent']);
export type SessionRole = z.infer<typeof SessionRole>;
/** Who sends offers (the initial one and every ICE-restart offer), so the two peers never glare. */
export const MediaRole = z.enum(['offerer', 'answerer']);
export type MediaRole = z.infer<typeof MediaRole>;
export const CallLeg = z.enum(['agent', 'visitor']);
export type CallLeg = z.infer<typeof CallLeg>;
/**
 * What the server knows of one leg of a call: whether its socket is with the server, and what its
 * client last reported of its media (`unreported` after its socket dropped, until it reports again).
 */
export const CallLegState = z.strictObject({
  socket: z.enum(['up', 'down']),
  media: z.enum(['connected', 'reconnecting', 'failed', 'unreported']),
});
export type CallLegState = z.infer<typeof CallLegState>;

// ---------------------------------------------------------------------------------------------
// Handshake

/** Sent in Socket.IO's `auth` option, never as a message, so it cannot be overtaken by emits. */
export const HandshakeAuth = z.strictObject({
  token: Token,
  resumeToken: z.optional(Token),
});
export type HandshakeAuth = z.infer<typeof HandshakeAuth>;

// ---------------------------------------------------------------------------------------------
// Client → server

const CallSdp = z.strictObject({ callId: Id, sdp: Sdp });
const RequestRef = z.strictObject({ requestId: Id });
const CallRef = z.strictObject({ callId: Id });

export const INSPECTABLE_CLIENT_ACTORS = ['visitorCall', 'agent', 'peerConnection', 'signaling'] as const;

// Events, state values and contexts are each machine's own shapes, so they stay open here; the server
// sanitizes them before anyone sees them, and the byte cap bounds what it has to walk.
const InspectClientEntry = z
  .strictObject({
    at: EpochMs,
    actorId: z.optional(Id),
    event: z.looseObject({ type: z.string().check(notEmpty, z.maxLength(MAX_ID_LENGTH)) }),
    state: z.unknown(),
    context: z.optional(z.unknown()),
  })
  .check(
    z.refine((entry: unknown) => fitsInBytes(JSON.stringify(entry) ?? '', MAX_INSPECT_ENTRY_BYTES), {
      error: `must be at most ${MAX_INSPECT_ENTRY_BYTES} bytes of JSON`,
    }),
  );

export const clientEventSchemas = {
  'session.resume': z.strictObject({ resumeToken: Token }),
  /** Proves the socket alive: its acknowledgement is the answer. Sent when the path under it is in doubt. */
  'session.ping': z.strictObject({}),
  'visitor.request': z.strictObject({ pool: Id, name: z.optional(DisplayName) }),
  'visitor.cancel': RequestRef,
  'agent.presence': z.strictObject({ status: z.enum(['available', 'away']) }),
  'agent.accept': RequestRef,
  'agent.reject': RequestRef,
  /** Ends the agent's presence; a call in progress ends for the agent and the visitor is reassigned. */
  'agent.logout': z.strictObject({}),
  'signal.offer': CallSdp,
  'signal.answer': CallSdp,
  'signal.candidate': z.strictObject({ callId: Id, candidate: IceCandidate }),
  /** The offerer's ICE-restart offer. */
  'signal.iceRestart': CallSdp,
  /** The answerer lost the connection and asks the offerer for an ICE-restart offer now. */
  'signal.restartRequest': CallRef,
  'call.media': z.strictObject({
    callId: Id,
    state: z.enum(['connected', 'reconnecting', 'failed']),
    attempt: z.optional(Attempt),
  }),
  'call.telemetry': z.strictObject({
    callId: Id,
    attempt: Attempt,
    at: EpochMs,
    durationMs: z.number().check(z.nonnegative(), z.lte(86_400_000)),
    outcome: z.enum(['recovered', 'failed']),
  }),
  'call.hangup': CallRef,
  /** The sender's own machines, for the live inspector; accepted only when the server enables it. */
  'inspect.client': z
    .strictObject({
      callId: z.optional(Id),
      requestId: z.optional(Id),
      actor: z.enum(INSPECTABLE_CLIENT_ACTORS),
      entries: z
        .array(InspectClientEntry)
        .check(
          z.minLength(1, { error: 'must not be empty' }),
          z.maxLength(MAX_INSPECT_ENTRIES, { error: `must have at most ${MAX_INSPECT_ENTRIES} entries` }),
        ),
    })
    .check(
      z.refine((data: { callId?: string | undefined; requestId?: string | undefined }) => data.callId !== undefined || data.requestId !== undefined, {
        error: 'is required when requestId is missing',
        path: ['callId'],
      }),
    ),
} as const;

const NoData = z.strictObject({});

/** What a successful acknowledgement carries besides `ok: true`, per client event. */
export const clientAckDataSchemas = {
  'session.resume': NoData,
  'session.ping': NoData,
  'visitor.request': z.strictObject({ requestId: Id }),
  'visitor.cancel': NoData,
  'agent.presence': NoData,
  'agent.accept': NoData,
  'agent.reject': NoData,
  'agent.logout': NoData,
  'signal.offer': NoData,
  'signal.answer': NoData,
  'signal.candidate': NoData,
  'signal.iceRestart': NoData,
  'signal.restartRequest': NoData,
  'call.media': NoData,
  'call.telemetry': NoData,
  'call.hangup': NoData,
  'inspect.client': NoData,
} as const satisfies Record<keyof typeof clientEventSchemas, z.ZodMiniObject>;

export type ClientEventName = keyof typeof clientEventSchemas;
export type ClientPayload<E extends ClientEventName> = z.infer<(typeof clientEventSchemas)[E]>;
/**
 * One client message with its event name and payload kept together: a union over `E`, so code that
 * carries a message of several kinds (the media session's signals) still hands the outbox a payload
 * that matches its event.
 */
export type ClientMessage<E extends ClientEventName = ClientEventName> = { [K in E]: { event: K; payload: ClientPayload<K> } }[E];
// zod infers an empty strict object as `Record<string, never>`, which would swallow `ok: true`.
type NoKeysAsEmpty<T> = string extends keyof T ? Record<never, never> : T;
export type ClientAckData<E extends ClientEventName> = NoKeysAsEmpty<
  z.infer<(typeof clientAckDataSchemas)[E]>
>;

/** The reply to every client event: `{ ok: true, ...data }` or `{ ok: false, error }`. */
export type Ack<Data extends object = Record<never, never>> =
  | ({ ok: true } & Data)
  | { ok: false; error: ProtocolError };
export type ClientAck<E extends ClientEventName> = Ack<ClientAckData<E>>;

const AckFailure = z.strictObject({ ok: z.literal(false), error: ProtocolError });

function ackSchema(data: z.ZodMiniObject): z.ZodMiniType {
  return z.discriminatedUnion('ok', [z.extend(data, { ok: z.literal(true) }), AckFailure]);
}

export const CLIENT_EVENT_NAMES = Object.keys(clientEventSchemas) as ClientEventName[];

// ---------------------------------------------------------------------------------------------
// Server → client

const RelayedSdp = z.strictObject({ callId: Id, sdp: Sdp });

/**
 * A message a server machine's effect sends carries the id it was persisted with: a node that takes a
 * request over sends its last step's messages again, and a client drops an id it has already seen.
 */
export const EffectId = Id;
const fromEffect = <S extends z.ZodMiniObject>(schema: S) => z.extend(schema, { eid: z.optional(EffectId) });

export const serverEventSchemas = {
  // `inspect`: the server takes `inspect.client` reports from this socket (a development setting).
  'session.ready': z.strictObject({ resumeToken: Token, role: SessionRole, userId: Id, inspect: z.optional(z.boolean()) }),
  'session.resumed': z.strictObject({
    call: z.nullable(
      z.strictObject({
        callId: Id,
        role: MediaRole,
        peerName: DisplayName,
        state: z.enum(['connecting', 'active', 'paused']),
      }),
    ),
    /** Where a request not yet in a call stands, so a client that was away catches up on what it missed. */
    request: z.nullable(
      z.strictObject({
        requestId: Id,
        // `searching`: the request waited for this visitor to come back, and looks for an agent now.
        state: z.enum(['searching', 'ringing', 'queued']),
        agentName: z.optional(DisplayName),
        position: z.optional(QueuePosition),
      }),
    ),
  }),
  'session.expired': z.strictObject({}),
  'routing.update': fromEffect(z.strictObject({
    requestId: Id,
    state: z.enum(['searching', 'ringing', 'reassigning', 'queued']),
    agentName: z.optional(DisplayName),
    position: z.optional(QueuePosition),
  })),
  'routing.ended': fromEffect(z.strictObject({
    requestId: Id,
    reason: z.enum(['no-agents', 'reassign-limit', 'cancelled']),
  })),
  'agent.ring': fromEffect(z.strictObject({ requestId: Id, visitorName: DisplayName, expiresAt: EpochMs })),
  'agent.ringCancelled': fromEffect(RequestRef),
  'call.accepted': fromEffect(z.strictObject({
    callId: Id,
    role: MediaRole,
    peerName: DisplayName,
    iceServers: z.array(IceServer).check(z.maxLength(MAX_ICE_SERVERS)),
    iceTransportPolicy: z.optional(z.enum(['all', 'relay'])),
  })),
  'signal.offer': RelayedSdp,
  'signal.answer': RelayedSdp,
  'signal.iceRestart': RelayedSdp,
  'signal.candidate': z.strictObject({ callId: Id, candidate: IceCandidate }),
  /** The answerer's restart request, relayed to the offerer. */
  'signal.restartRequest': CallRef,
  /** Sent when a pause starts and again on every change of its legs while it lasts. */
  'call.paused': fromEffect(z.strictObject({ callId: Id, legs: z.strictObject({ agent: CallLegState, visitor: CallLegState }) })),
  'call.resumed': fromEffect(CallRef),
  'call.ended': fromEffect(z.strictObject({ callId: Id, reason: CallEndReason })),
  error: ProtocolError,
} as const;

export type ServerEventName = keyof typeof serverEventSchemas;
export type ServerPayload<E extends ServerEventName> = z.infer<(typeof serverEventSchemas)[E]>;

export const SERVER_EVENT_NAMES = Object.keys(serverEventSchemas) as ServerEventName[];

// ---------------------------------------------------------------------------------------------
// Socket.IO event maps

/** Socket.IO's `ClientToServerEvents` generic: each event is acknowledged with an `Ack`. */
export type ClientToServerEvents = {
  [E in ClientEventName]: (payload: ClientPayload<E>, ack?: (reply: ClientAck<E>) => void) => void;
};

/** Socket.IO's `ServerToClientEvents` generic. */
export type ServerToClientEvents = {
  [E in ServerEventName]: (payload: ServerPayload<E>) => void;
};

// ---------------------------------------------------------------------------------------------
// Parsing

export type ParsedClientEvent = {
  [E in ClientEventName]: { ok: true; event: E; data: ClientPayload<E> };
}[ClientEventName];
export type ParsedServerEvent = {
  [E in ServerEventName]: { ok: true; event: E; data: ServerPayload<E> };
}[ServerEventName];
export type ParseFailure = { ok: false; error: ProtocolError };

const MAX_FIELD_SEGMENT = 64;
const MAX_FIELD_LENGTH = 256;

type RawIssue = z.core.$ZodRawIssue;

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
 * A zod error map that words each issue as a fragment following the field's name ("must be a string"), so
 * an error is one sentence naming the field. The server words its configuration and HTTP errors with it
 * too, so whoever reads them sees one style. Messages written on a schema override it, and are fragments
 * too. No fragment quotes the input: it may be huge, hostile or secret.
 */
export function issueFragment(issue: RawIssue): string {
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

// Attacker-chosen keys end up in the field path, so they are clipped before they reach a reply.
function fieldPath(path: readonly PropertyKey[]): string | undefined {
  if (path.length === 0) return undefined;
  const dotted = path
    .map((segment) => {
      const text = typeof segment === 'symbol' ? '(symbol)' : String(segment) || '(empty)';
      return text.length > MAX_FIELD_SEGMENT ? `${text.slice(0, MAX_FIELD_SEGMENT)}…` : text;
    })
    .join('.');
  return dotted.length > MAX_FIELD_LENGTH ? `${dotted.slice(0, MAX_FIELD_LENGTH)}…` : dotted;
}

function invalidPayload(issue: z.core.$ZodIssue | undefined): ParseFailure {
  if (issue === undefined) {
    return { ok: false, error: { code: 'invalid-payload', message: 'The payload is invalid.' } };
  }
  const path =
    issue.code === 'unrecognized_keys' && issue.keys[0] !== undefined
      ? [...issue.path, issue.keys[0]]
      : issue.path;
  const field = fieldPath(path);
  if (field === undefined) {
    const message =
      issue.code === 'invalid_type'
        ? 'The payload must be an object.'
        : `The payload ${issue.message}.`;
    return { ok: false, error: { code: 'invalid-payload', message } };
  }
  return {
    ok: false,
    error: { code: 'invalid-payload', message: `Field "${field}" ${issue.message}.`, field },
  };
}

function unreadablePayload(): ParseFailure {
  return {
    ok: false,
    error: { code: 'invalid-payload', message: 'The payload could not be read.' },
  };
}

function unknownEvent(): ParseFailure {
  return { ok: false, error: { code: 'unknown-event', message: 'This event is not part of the protocol.' } };
}

function validate(schema: z.ZodMiniType, payload: unknown): { ok: true; data: unknown } | ParseFailure {
  try {
    const result = schema.safeParse(payload, { error: issueFragment });
    return result.success ? { ok: true, data: result.data } : invalidPayload(result.error.issues[0]);
  } catch {
    // Throwing getters and hostile proxies surface here; zod itself never throws from safeParse.
    return unreadablePayload();
  }
}

// `Object.hasOwn` keeps names such as `__proto__` or `toString` from resolving through the prototype.
function lookup<M extends object>(schemas: M, event: unknown): M[keyof M] | undefined {
  if (typeof event !== 'string' || !Object.hasOwn(schemas, event)) return undefined;
  return schemas[event as keyof M];
}

/** Validates a payload received by the server. Never throws. */
export function parseClientEvent(event: string, payload: unknown): ParsedClientEvent | ParseFailure {
  const schema = lookup(clientEventSchemas, event);
  if (schema === undefined) return unknownEvent();
  const result = validate(schema, payload);
  return result.ok ? ({ ok: true, event, data: result.data } as ParsedClientEvent) : result;
}

/** Validates a payload received by a client. Never throws. */
export function parseServerEvent(event: string, payload: unknown): ParsedServerEvent | ParseFailure {
  const schema = lookup(serverEventSchemas, event);
  if (schema === undefined) return unknownEvent();
  const result = validate(schema, payload);
  return result.ok ? ({ ok: true, event, data: result.data } as ParsedServerEvent) : result;
}

const clientAckSchemas = Object.fromEntries(
  CLIENT_EVENT_NAMES.map((event) => [event, ackSchema(clientAckDataSchemas[event])]),
) as Record<ClientEventName, z.ZodMiniType>;

/**
 * Validates the acknowledgement a client received for `event`. A malformed reply becomes a
 * failure, so callers handle exactly one shape. Never throws.
 */
export function parseClientAck<E extends ClientEventName>(
  event: E,
  reply: unknown,
): { ok: true; ack: ClientAck<E> } | ParseFailure {
  const schema = lookup(clientAckSchemas, event);
  if (schema === undefined) return unknownEvent();
  const result = validate(schema, reply);
  return result.ok ? { ok: true, ack: result.data as ClientAck<E> } : result;
}

/** Validates the Socket.IO handshake `auth` object. Never throws. */
export function parseHandshakeAuth(auth: unknown): { ok: true; data: HandshakeAuth } | ParseFailure {
  const result = validate(HandshakeAuth, auth);
  return result.ok ? { ok: true, data: result.data as HandshakeAuth } : result;
}
