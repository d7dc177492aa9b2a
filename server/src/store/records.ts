/**
 * What the store holds and what it offers, whatever database it runs on: camelCase records with JSON
 * columns already parsed, and the `Store` interface the server talks to.
 */
import type { CallLeg } from '@callchart/machines';

// ---------------------------------------------------------------------------------------------
// Records

export interface AgentRecord {
  id: string;
  name: string;
  email: string;
  /** `hashPassword` output; never sent to a client. */
  passwordHash: string;
  pools: string[];
  roles: string[];
  /** When the agent was last given a call (epoch ms); null when never. */
  lastAssignedAt: number | null;
}
/** What seeding sets; `lastAssignedAt` belongs to routing and survives a reseed. */
export type AgentSeedRecord = Omit<AgentRecord, 'lastAssignedAt'>;

export interface RequestRecord {
  id: string;
  visitorId: string;
  visitorName: string;
  pool: string;
  state: string;
  createdAt: number;
  endedAt: number | null;
  endReason: string | null;
}
export type NewRequest = Pick<RequestRecord, 'id' | 'visitorId' | 'visitorName' | 'pool' | 'state' | 'createdAt'>;
export type RequestPatch = Partial<Pick<RequestRecord, 'state' | 'endedAt' | 'endReason'>>;

export interface CallRecord {
  id: string;
  requestId: string;
  visitorId: string;
  visitorName: string;
  agentId: string;
  /** The agent's current display name, joined in for history views. */
  agentName: string;
  pool: string;
  state: string;
  startedAt: number;
  connectedAt: number | null;
  endedAt: number | null;
  endReason: string | null;
  totalPauseMs: number;
}
export type NewCall = Pick<
  CallRecord,
  'id' | 'requestId' | 'visitorId' | 'visitorName' | 'agentId' | 'pool' | 'state' | 'startedAt'
>;
export type CallPatch = Partial<Pick<CallRecord, 'state' | 'connectedAt' | 'endedAt' | 'endReason' | 'totalPauseMs'>>;

export interface CallListQuery {
  /** Only the calls this agent took part in; every call when omitted. */
  agentId?: string;
  /** 1 to `MAX_CALL_PAGE`. */
  limit: number;
  /** The id of the last call of the previous page; an unknown id gives an empty page. */
  before?: string;
}

export const MAX_CALL_PAGE = 500;

export type EventActor = 'routing' | 'callSession' | 'server';

export interface CallEventRecord {
  id: number;
  callId: string | null;
  requestId: string;
  actor: EventActor;
  type: string;
  fromState: string | null;
  toState: string | null;
  cause: string | null;
  detail: unknown;
  at: number;
}
export interface NewCallEvent {
  /** Null for routing events before (or between) the request's calls. */
  callId?: string | null;
  requestId: string;
  actor: EventActor;
  type: string;
  fromState?: string | null;
  toState?: string | null;
  cause?: string | null;
  /** Any JSON value; null or omitted for none. */
  detail?: unknown;
  at: number;
}

export type TelemetryRecord =
  | { id: number; callId: string; kind: 'disconnection'; leg: CallLeg; at: number; cause: string | null }
  | {
      id: number;
      callId: string;
      kind: 'reconnection-attempt';
      leg: CallLeg;
      at: number;
      durationMs: number;
      outcome: 'recovered' | 'failed';
    };
// Distributes over the union, so each kind keeps its own fields.
type Unnumbered<T> = T extends unknown ? Omit<T, 'id'> : never;
/** A telemetry record of either kind before the store numbers it. */
export type NewTelemetry = Unnumbered<TelemetryRecord>;

export type SnapshotKind = 'routing' | 'callSession';

export interface ActorSnapshotRecord {
  actorId: string;
  kind: SnapshotKind;
  requestId: string;
  callId: string | null;
  /** The actor's `getPersistedSnapshot()`, as JSON. */
  snapshot: unknown;
  updatedAt: number;
}

/** A token refused from now until it would have expired anyway. */
export interface RevokedTokenRecord {
  /** The token's `jti`. */
  jti: string;
  /** The token's own expiry (epoch ms): past it the row is no longer needed. */
  expiresAt: number;
  revokedAt: number;
}

// ---------------------------------------------------------------------------------------------
// The API

export interface Store {
  /** The file this store was opened on, or `:memory:`. */
  readonly path: string;
  settings: {
    get(key: string): string | undefined;
    set(key: string, value: string): void;
    /** The stored value, or `value` stored now if there was none; safe against a concurrent first start. */
    getOrInsert(key: string, value: string): string;
  };
  agents: {
    /** Inserts or updates each agent by id, in one transaction. */
    seed(list: readonly AgentSeedRecord[]): void;
    /** Case-insensitive. */
    findByEmail(email: string): AgentRecord | undefined;
    get(id: string): AgentRecord | undefined;
    list(): AgentRecord[];
    /** Whether any account serves the pool, found without reading every account. */
    servesPool(pool: string): boolean;
    markAssigned(id: string, at: number): boolean;
  };
  requests: {
    create(request: NewRequest): RequestRecord;
    /** The updated record, or undefined when there is no such request. */
    update(id: string, patch: RequestPatch): RequestRecord | undefined;
    get(id: string): RequestRecord | undefined;
  };
  calls: {
    create(call: NewCall): CallRecord;
    /** The updated record, or undefined when there is no such call. */
    update(id: string, patch: CallPatch): CallRecord | undefined;
    get(id: string): CallRecord | undefined;
    /** Newest first. */
    list(query: CallListQuery): CallRecord[];
  };
  events: {
    append(event: NewCallEvent): CallEventRecord;
    /** Oldest first. */
    forCall(callId: string): CallEventRecord[];
    /** Oldest first, including the events of every call the request had. */
    forRequest(requestId: string): CallEventRecord[];
  };
  telemetry: {
    append(record: NewTelemetry): TelemetryRecord;
    /** Oldest first. */
    forCall(callId: string): TelemetryRecord[];
  };
  snapshots: {
    /** Inserts or replaces the actor's snapshot. */
    save(record: ActorSnapshotRecord): void;
    get(actorId: string): ActorSnapshotRecord | undefined;
    delete(actorId: string): boolean;
    /** Oldest update first, so actors are restored in the order they last moved. */
    all(): ActorSnapshotRecord[];
  };
  revokedTokens: {
    /** Keeps the token revoked; revoking it again changes nothing. Rows already expired at `revokedAt` go. */
    add(record: RevokedTokenRecord): void;
    has(jti: string): boolean;
    /** Deletes the rows of tokens expired at `now`; answers how many went. */
    purge(now: number): number;
  };
  /**
   * Runs `fn` in one transaction: everything it writes lands together or not at all. Nested calls
   * become savepoints. `fn` must be synchronous.
   */
  transaction<T>(fn: () => T): T;
  close(): void;
}

/** The database cannot be used: newer schema, or no WAL support on its file system. */
export class StoreError extends Error {
  override readonly name = 'StoreError';
}

