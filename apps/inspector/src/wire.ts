/**
 * What the server's `/inspect` namespace and `/api/calls` send, as the inspector reads it. Declared here
 * rather than imported from the server, so the browser bundle depends on nothing but the machines.
 */

export type ActorKind = 'routing' | 'callSession' | 'visitorCall' | 'agent' | 'peerConnection' | 'signaling';
export type ActorSide = 'server' | 'agent' | 'visitor';

/** What one actor did: the event it took and the state (an XState state value) and context it reached. */
export interface TimelineEntry {
  at: number;
  requestId: string;
  callId: string | null;
  actorId: string;
  kind: ActorKind;
  side: ActorSide;
  event: { type: string } & Record<string, unknown>;
  /** A state value; `null` for an entry that notes something without a state (a reassignment). */
  state: unknown;
  /** Sanitized JSON; `null` where it is not known (stored history keeps no contexts). */
  context: unknown;
}

/** A stored transition of a finished call, its states already read back into state values. */
export interface HistoryEntry extends TimelineEntry {
  fromState: unknown;
}

/** The current view of one actor of a request, sent with a replay. */
export interface ActorView {
  actorId: string;
  kind: ActorKind;
  /** Older servers sent only server actors and left the side out. */
  side?: ActorSide;
  requestId: string;
  callId: string | null;
  status: string;
  state: unknown;
  context: unknown;
}

export interface LiveRequest {
  requestId: string;
  pool: string;
  visitorName: string;
  agentName: string | null;
  createdAt: number;
  state: unknown;
  call: { callId: string; agentName: string; state: unknown } | null;
}

/** The live list, pushed on connect and whenever a server actor moves. */
export interface LiveList {
  requests: LiveRequest[];
  /** Whether browsers report their own machines (the server's INSPECT_CLIENTS); older servers leave it out. */
  clientInspection?: boolean;
}

export interface Replay {
  requestId: string;
  entries: TimelineEntry[];
  actors: ActorView[];
}

/** A call as `GET /api/calls` lists it. */
export interface CallRecord {
  id: string;
  requestId: string;
  visitorName: string;
  agentName: string;
  pool: string;
  state: string;
  startedAt: number;
  connectedAt: number | null;
  endedAt: number | null;
  endReason: string | null;
  totalPauseMs: number;
}

/** `inspect.history` as it arrives: states are the store's names (`active.(session.paused,agent.up)`). */
export interface StoredHistory {
  call: { id: string; requestId: string; state: string; endReason: string | null };
  entries: (TimelineEntry & { state: string | null; fromState: string | null })[];
}

export interface ProtocolError {
  code: string;
  message: string;
  field?: string;
}

export type Ack<T> = ({ ok: true } & T) | { ok: false; error: ProtocolError };
type Reply<T> = (reply: Ack<T>) => void;

export interface ServerToInspectorEvents {
  'inspect.calls': (payload: LiveList) => void;
  'inspect.replay': (payload: Replay) => void;
  'inspect.entry': (entry: TimelineEntry) => void;
}

export interface InspectorToServerEvents {
  'inspect.calls': (payload: Record<string, never>, reply: Reply<LiveList>) => void;
  'inspect.subscribe': (payload: { requestId: string }, reply: Reply<object>) => void;
  'inspect.unsubscribe': (payload: { requestId: string }, reply: Reply<object>) => void;
  'inspect.history': (payload: { callId: string }, reply: Reply<StoredHistory>) => void;
}
