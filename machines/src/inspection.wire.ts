/**
 * The live inspector's side of the protocol: what the server's `/inspect` namespace accepts, what it
 * answers and pushes, as zod schemas, and the Socket.IO event maps derived from them. Events, state
 * values and contexts are each machine's own shapes (sanitized JSON), so they stay open here.
 */
import { z } from 'zod/mini';
import { INSPECTABLE_CLIENT_ACTORS, Id, EpochMs, ProtocolError, type Ack } from './protocol.ts';

export const INSPECT_NAMESPACE = '/inspect';

export const ActorKind = z.enum(['routing', 'callSession', ...INSPECTABLE_CLIENT_ACTORS]);
export type ActorKind = z.infer<typeof ActorKind>;
export const ActorSide = z.enum(['server', 'agent', 'visitor']);
export type ActorSide = z.infer<typeof ActorSide>;

/** An inspected actor's id: its kind and whose it is (`routing:<requestId>`, `agent:signaling`). */
const ActorId = z.string().check(z.minLength(1));

/** Which actor, of which request and call: what an entry and a view both name. */
const actorOfRequest = {
  actorId: ActorId,
  kind: ActorKind,
  requestId: Id,
  callId: z.nullable(Id),
};

/** What one actor did: the event it took and the state (an XState state value) and context it reached. */
export const TimelineEntry = z.object({
  at: EpochMs,
  ...actorOfRequest,
  side: ActorSide,
  event: z.looseObject({ type: z.string() }),
  /** A state value; `null` for an entry that notes something without a state (a reassignment). */
  state: z.unknown(),
  /** Sanitized JSON; `null` where it is not known (stored history keeps no contexts). */
  context: z.unknown(),
});
export type TimelineEntry = z.infer<typeof TimelineEntry>;

/** The current view of one actor of a request, sent with a replay. */
export const ActorView = z.object({
  ...actorOfRequest,
  /** Older servers sent only server actors and left the side out. */
  side: z.optional(ActorSide),
  status: z.string(),
  state: z.unknown(),
  context: z.unknown(),
});
export type ActorView = z.infer<typeof ActorView>;

const Count = z.int().check(z.nonnegative());

/** What one node of a cluster counts of itself: the inspector shows these per node and summed. */
export const NodeGauges = z.object({
  node: z.string().check(z.minLength(1), z.maxLength(64)),
  /** Live requests it runs. */
  requests: Count,
  /** Calls of those requests. */
  calls: Count,
  /** Of those requests, the ones queued for a free agent. */
  queued: Count,
  /** Socket.IO connections open on it, the inspectors' included. */
  sockets: Count,
});
export type NodeGauges = z.infer<typeof NodeGauges>;

export const LiveRequest = z.object({
  /** In a cluster, the node that runs it; one process leaves it out. */
  node: z.optional(z.string()),
  requestId: Id,
  pool: Id,
  visitorName: z.string(),
  agentName: z.nullable(z.string()),
  createdAt: EpochMs,
  state: z.unknown(),
  call: z.nullable(z.object({ callId: Id, agentName: z.string(), state: z.unknown() })),
});
export type LiveRequest = z.infer<typeof LiveRequest>;

/** The live list, pushed on connect and whenever a server actor moves. */
export const LiveList = z.object({
  requests: z.array(LiveRequest),
  /** In a cluster, every node's gauges; one process leaves it out. */
  nodes: z.optional(z.array(NodeGauges)),
  /** Whether browsers report their own machines (the server's INSPECT_CLIENTS); older servers leave it out. */
  clientInspection: z.optional(z.boolean()),
});
export type LiveList = z.infer<typeof LiveList>;

export const Replay = z.object({
  requestId: Id,
  entries: z.array(TimelineEntry),
  actors: z.array(ActorView),
});
export type Replay = z.infer<typeof Replay>;

/** A stored transition of a finished call, its states still the store's names (`active.(session.paused,agent.up)`). */
export const StoredEntry = z.extend(TimelineEntry, {
  state: z.nullable(z.string()),
  fromState: z.nullable(z.string()),
});
export type StoredEntry = z.infer<typeof StoredEntry>;

/** `inspect.history`'s answer: the stored transitions of a call's whole request. */
export const StoredHistory = z.object({
  call: z.object({ id: Id, requestId: Id, state: z.string(), endReason: z.nullable(z.string()) }),
  entries: z.array(StoredEntry),
});
export type StoredHistory = z.infer<typeof StoredHistory>;

/** What the inspector sends, per event; each is acknowledged with an `Ack`. */
export const inspectorEventSchemas = {
  'inspect.calls': z.strictObject({}),
  'inspect.subscribe': z.strictObject({ requestId: Id }),
  'inspect.unsubscribe': z.strictObject({ requestId: Id }),
  'inspect.history': z.strictObject({ callId: Id }),
} as const;
export type InspectorEventName = keyof typeof inspectorEventSchemas;

const NoData = z.object({});

/** What a successful acknowledgement carries besides `ok: true`, per inspector event. */
export const inspectorAckDataSchemas = {
  'inspect.calls': LiveList,
  'inspect.subscribe': NoData,
  'inspect.unsubscribe': NoData,
  'inspect.history': StoredHistory,
} as const satisfies Record<InspectorEventName, z.core.$ZodObject>;

/** What the server pushes to an inspector. */
export const inspectorPushSchemas = {
  'inspect.calls': LiveList,
  'inspect.replay': Replay,
  'inspect.entry': TimelineEntry,
} as const;
export type InspectorPushName = keyof typeof inspectorPushSchemas;

export type InspectorPayload<E extends InspectorEventName> = z.infer<(typeof inspectorEventSchemas)[E]>;
// zod infers an empty object as `Record<string, never>`, which would swallow `ok: true`.
type NoKeysAsEmpty<T> = string extends keyof T ? Record<never, never> : T;
export type InspectorAckData<E extends InspectorEventName> = NoKeysAsEmpty<z.infer<(typeof inspectorAckDataSchemas)[E]>>;
export type InspectorPush<E extends InspectorPushName> = z.infer<(typeof inspectorPushSchemas)[E]>;

/** Socket.IO's `ClientToServerEvents` generic for the `/inspect` namespace. */
export type InspectorToServerEvents = {
  [E in InspectorEventName]: (payload: InspectorPayload<E>, reply: (reply: Ack<InspectorAckData<E>>) => void) => void;
};

/** Socket.IO's `ServerToClientEvents` generic for the `/inspect` namespace. */
export type ServerToInspectorEvents = {
  [E in InspectorPushName]: (payload: InspectorPush<E>) => void;
};

// ---------------------------------------------------------------------------------------------
// Parsing, on the inspector's side

export type InspectorParsed<T> = { ok: true; data: T } | { ok: false; error: ProtocolError };

const AckFailure = z.object({ ok: z.literal(false), error: ProtocolError });

function malformed(what: string): { ok: false; error: ProtocolError } {
  return { ok: false, error: { code: 'invalid-payload', message: `The server's ${what} could not be read.` } };
}

/** Validates what the server pushed. Never throws. */
export function parseInspectorPush<E extends InspectorPushName>(event: E, payload: unknown): InspectorParsed<InspectorPush<E>> {
  const result = z.safeParse(inspectorPushSchemas[event], payload);
  return result.success ? { ok: true, data: result.data as InspectorPush<E> } : malformed(event);
}

/** Validates the acknowledgement of an inspector event; a malformed one becomes a failure. Never throws. */
export function parseInspectorAck<E extends InspectorEventName>(event: E, reply: unknown): Ack<InspectorAckData<E>> {
  const schema = z.discriminatedUnion('ok', [z.extend(inspectorAckDataSchemas[event], { ok: z.literal(true) }), AckFailure]);
  const result = z.safeParse(schema, reply);
  return result.success ? (result.data as Ack<InspectorAckData<E>>) : malformed(`answer to ${event}`);
}
