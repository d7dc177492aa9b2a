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
  /**
   * The messages the step that left this snapshot sends, each with its id, as JSON (an empty list when none).
   * They are written before they are sent, so a node taking the request over sends them again; a client
   * drops an id it has already seen.
   */
  outbox: unknown[];
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

/**
 * The writes of one step, gathered and then committed together: all of them land or none does. Nothing
 * is written while they are gathered, so nothing here answers; a step that needs to read reads first.
 */
export interface StoreWrites {
  settings: { set(key: string, value: string): void };
  agents: { markAssigned(id: string, at: number): void };
  requests: {
    create(request: NewRequest): void;
    update(id: string, patch: RequestPatch): void;
  };
  calls: {
    create(call: NewCall): void;
    update(id: string, patch: CallPatch): void;
    /** Dates the call's connection, unless it is dated already: the first report of it wins. */
    markConnected(id: string, at: number): void;
  };
  events: { append(event: NewCallEvent): void };
  telemetry: { append(record: NewTelemetry): void };
  snapshots: {
    /** Inserts or replaces the actor's snapshot. */
    save(record: ActorSnapshotRecord): void;
    delete(actorId: string): void;
  };
}

/**
 * Who may write for a request: the holder of its newest ownership. A commit carrying a token older than
 * one the store has seen for the request is refused whole (`StaleFenceError`), so a node that lost its
 * lease cannot overwrite what the new owner wrote.
 */
export interface Fence {
  requestId: string;
  /** Grows with every new ownership of any request (a cluster-wide counter). */
  token: number;
}

export type StoreEngine = 'sqlite' | 'postgres';

export interface Store {
  readonly engine: StoreEngine;
  /** Where it was opened: the SQLite file (or `:memory:`), or the Postgres URL without its password. */
  readonly path: string;
  settings: {
    get(key: string): Promise<string | undefined>;
    set(key: string, value: string): Promise<void>;
    /** The stored value, or `value` stored now if there was none; safe against a concurrent first start. */
    getOrInsert(key: string, value: string): Promise<string>;
    /** Every setting whose key starts with `prefix`, by key. */
    withPrefix(prefix: string): Promise<Map<string, string>>;
  };
  agents: {
    /** Inserts or updates each agent by id, in one transaction. */
    seed(list: readonly AgentSeedRecord[]): Promise<void>;
    /** Case-insensitive. */
    findByEmail(email: string): Promise<AgentRecord | undefined>;
    get(id: string): Promise<AgentRecord | undefined>;
    list(): Promise<AgentRecord[]>;
    /** Whether any account serves the pool, found without reading every account. */
    servesPool(pool: string): Promise<boolean>;
  };
  requests: {
    get(id: string): Promise<RequestRecord | undefined>;
  };
  calls: {
    get(id: string): Promise<CallRecord | undefined>;
    /** Newest first. */
    list(query: CallListQuery): Promise<CallRecord[]>;
  };
  events: {
    /** Oldest first. */
    forCall(callId: string): Promise<CallEventRecord[]>;
    /** Oldest first, including the events of every call the request had. */
    forRequest(requestId: string): Promise<CallEventRecord[]>;
  };
  telemetry: {
    /** Oldest first. */
    forCall(callId: string): Promise<TelemetryRecord[]>;
  };
  snapshots: {
    get(actorId: string): Promise<ActorSnapshotRecord | undefined>;
    /** Oldest update first, so actors are restored in the order they last moved. */
    all(): Promise<ActorSnapshotRecord[]>;
  };
  revokedTokens: {
    /** Keeps the token revoked; revoking it again changes nothing. Rows already expired at `revokedAt` go. */
    add(record: RevokedTokenRecord): Promise<void>;
    has(jti: string): Promise<boolean>;
    /** Deletes the rows of tokens expired at `now`; answers how many went. */
    purge(now: number): Promise<number>;
  };
  /**
   * Gathers writes with `fill` and commits them in one transaction, in the order they were gathered. With a
   * fence, the commit is refused whole (`StaleFenceError`) when the store has seen a newer token for the
   * request. `fill` must be synchronous.
   */
  commit(fill: (writes: StoreWrites) => void, fence?: Fence): Promise<void>;
  /** Resolves when the database answers a trivial query: what /readyz asks. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** The database cannot be used: newer schema, or no WAL support on its file system. */
export class StoreError extends Error {
  override readonly name: string = 'StoreError';
}

/** A commit from an owner whose ownership has been superseded: nothing of it was written. */
export class StaleFenceError extends StoreError {
  override readonly name = 'StaleFenceError';
  constructor(
    readonly requestId: string,
    readonly token: number,
    readonly newest: number,
  ) {
    super(`Ownership ${String(token)} of ${requestId} is stale: the store has seen ${String(newest)}.`);
  }
}
