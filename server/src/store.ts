/**
 * The server's store: one SQLite file through better-sqlite3. Every write is synchronous and committed
 * when the call returns, so a process killed right after (even with SIGKILL) loses nothing it was told
 * was written. The server is one process, so the database's single writer is never a bottleneck.
 *
 * Rows come back as camelCase records with JSON columns parsed; SQL stays inside this module.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { CallLeg } from '@callchart/machines';
import { MIGRATIONS } from './store.migrations.ts';

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
export type NewTelemetry =
  | { callId: string; kind: 'disconnection'; leg: CallLeg; at: number; cause: string | null }
  | {
      callId: string;
      kind: 'reconnection-attempt';
      leg: CallLeg;
      at: number;
      durationMs: number;
      outcome: 'recovered' | 'failed';
    };

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

// ---------------------------------------------------------------------------------------------
// Rows

interface AgentRow {
  id: string;
  name: string;
  email: string;
  password_hash: string;
  pools: string;
  roles: string;
  last_assigned_at: number | null;
}
interface RequestRow {
  id: string;
  visitor_id: string;
  visitor_name: string;
  pool: string;
  state: string;
  created_at: number;
  ended_at: number | null;
  end_reason: string | null;
}
interface CallRow {
  id: string;
  request_id: string;
  visitor_id: string;
  visitor_name: string;
  agent_id: string;
  agent_name: string;
  pool: string;
  state: string;
  started_at: number;
  connected_at: number | null;
  ended_at: number | null;
  end_reason: string | null;
  total_pause_ms: number;
}
interface EventRow {
  id: number;
  call_id: string | null;
  request_id: string;
  actor: EventActor;
  type: string;
  from_state: string | null;
  to_state: string | null;
  cause: string | null;
  detail: string | null;
  at: number;
}
interface TelemetryRow {
  id: number;
  call_id: string;
  kind: 'disconnection' | 'reconnection-attempt';
  leg: CallLeg;
  at: number;
  duration_ms: number | null;
  outcome: 'recovered' | 'failed' | null;
  cause: string | null;
}
interface SnapshotRow {
  actor_id: string;
  kind: SnapshotKind;
  request_id: string;
  call_id: string | null;
  snapshot: string;
  updated_at: number;
}

function toAgent(row: AgentRow): AgentRecord {
  return {
    id: row.id,
    name: row.name,
    email: row.email,
    passwordHash: row.password_hash,
    pools: JSON.parse(row.pools) as string[],
    roles: JSON.parse(row.roles) as string[],
    lastAssignedAt: row.last_assigned_at,
  };
}

function toRequest(row: RequestRow): RequestRecord {
  return {
    id: row.id,
    visitorId: row.visitor_id,
    visitorName: row.visitor_name,
    pool: row.pool,
    state: row.state,
    createdAt: row.created_at,
    endedAt: row.ended_at,
    endReason: row.end_reason,
  };
}

function toCall(row: CallRow): CallRecord {
  return {
    id: row.id,
    requestId: row.request_id,
    visitorId: row.visitor_id,
    visitorName: row.visitor_name,
    agentId: row.agent_id,
    agentName: row.agent_name,
    pool: row.pool,
    state: row.state,
    startedAt: row.started_at,
    connectedAt: row.connected_at,
    endedAt: row.ended_at,
    endReason: row.end_reason,
    totalPauseMs: row.total_pause_ms,
  };
}

function toEvent(row: EventRow): CallEventRecord {
  return {
    id: row.id,
    callId: row.call_id,
    requestId: row.request_id,
    actor: row.actor,
    type: row.type,
    fromState: row.from_state,
    toState: row.to_state,
    cause: row.cause,
    detail: row.detail === null ? null : (JSON.parse(row.detail) as unknown),
    at: row.at,
  };
}

function toTelemetry(row: TelemetryRow): TelemetryRecord {
  if (row.kind === 'disconnection') {
    return { id: row.id, callId: row.call_id, kind: row.kind, leg: row.leg, at: row.at, cause: row.cause };
  }
  // The table's CHECK guarantees both for an attempt.
  if (row.duration_ms === null || row.outcome === null) {
    throw new StoreError(`Telemetry ${String(row.id)} is an attempt without a duration or outcome.`);
  }
  return {
    id: row.id,
    callId: row.call_id,
    kind: row.kind,
    leg: row.leg,
    at: row.at,
    durationMs: row.duration_ms,
    outcome: row.outcome,
  };
}

function toSnapshot(row: SnapshotRow): ActorSnapshotRecord {
  return {
    actorId: row.actor_id,
    kind: row.kind,
    requestId: row.request_id,
    callId: row.call_id,
    snapshot: JSON.parse(row.snapshot) as unknown,
    updatedAt: row.updated_at,
  };
}

function toJson(value: unknown, what: string): string {
  const text = JSON.stringify(value);
  if (text === undefined) throw new TypeError(`${what} must be JSON-serializable`);
  return text;
}

// ---------------------------------------------------------------------------------------------
// Opening

function migrate(db: Database.Database): void {
  // IMMEDIATE takes the write lock before reading the version, so two processes starting on the same
  // new file cannot both run the same migration.
  db.transaction(() => {
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > MIGRATIONS.length) {
      throw new StoreError(
        `The database schema is version ${String(version)}, newer than this server's ${String(MIGRATIONS.length)}.`,
      );
    }
    for (let next = version; next < MIGRATIONS.length; next++) {
      db.exec(MIGRATIONS[next] ?? '');
      db.pragma(`user_version = ${String(next + 1)}`);
    }
  }).immediate();
}

/**
 * Builds `UPDATE table SET col = CASE WHEN @set_key THEN @key ELSE col END, …` once, so a partial
 * update stays one prepared statement: a key left out of the patch keeps its column, and a key set to
 * null clears it.
 */
function patchStatement<K extends string>(
  db: Database.Database,
  table: string,
  columns: Record<K, string>,
): (id: string, patch: Partial<Record<K, unknown>>) => boolean {
  const keys = Object.keys(columns) as K[];
  const sets = keys.map((key) => `${columns[key]} = CASE WHEN @set_${key} THEN @${key} ELSE ${columns[key]} END`);
  const statement = db.prepare(`UPDATE ${table} SET ${sets.join(', ')} WHERE id = @id`);
  return (id, patch) => {
    const params: Record<string, unknown> = { id };
    for (const key of keys) {
      const present = patch[key] !== undefined;
      params[`set_${key}`] = present ? 1 : 0;
      params[key] = present ? patch[key] : null;
    }
    return statement.run(params).changes > 0;
  };
}

/** Opens (creating file, directory and schema as needed) the store at `filePath`, or `:memory:`. */
export function openStore(filePath: string): Store {
  const inMemory = filePath === ':memory:';
  if (!inMemory) mkdirSync(path.dirname(filePath), { recursive: true });
  const db = new Database(filePath);
  try {
    // Readers (the history API) never block the writer, and a commit is one append to the WAL.
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (!inMemory && mode !== 'wal') {
      throw new StoreError(`The database at ${filePath} cannot use WAL mode (got ${String(mode)}).`);
    }
    // NORMAL in WAL mode: a commit survives the process being killed; only an OS crash or power
    // loss may take back the last commits, which FULL would prevent at one fsync per state change.
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    migrate(db);
    return createStore(db, filePath);
  } catch (error) {
    db.close();
    throw error;
  }
}

function createStore(db: Database.Database, filePath: string): Store {
  const callColumns = `c.id, c.request_id, c.visitor_id, c.visitor_name, c.agent_id, a.name AS agent_name, c.pool,
    c.state, c.started_at, c.connected_at, c.ended_at, c.end_reason, c.total_pause_ms`;
  const callFrom = 'FROM calls c JOIN agents a ON a.id = c.agent_id';
  // An unknown cursor makes the row-value comparison NULL, which selects nothing.
  const beforeCursor = `(@before IS NULL OR (c.started_at, c.id) < (SELECT started_at, id FROM calls WHERE id = @before))`;

  const sql = {
    settingGet: db.prepare<[string], { value: string }>('SELECT value FROM settings WHERE key = ?'),
    settingSet: db.prepare<[string, string]>(
      'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
    ),
    settingInsert: db.prepare<[string, string]>(
      'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING',
    ),

    agentUpsert: db.prepare<[Record<string, unknown>]>(
      `INSERT INTO agents (id, name, email, password_hash, pools, roles)
       VALUES (@id, @name, @email, @passwordHash, @pools, @roles)
       ON CONFLICT (id) DO UPDATE SET name = excluded.name, email = excluded.email,
         password_hash = excluded.password_hash, pools = excluded.pools, roles = excluded.roles`,
    ),
    agentByEmail: db.prepare<[string], AgentRow>('SELECT * FROM agents WHERE email = ?'),
    agentById: db.prepare<[string], AgentRow>('SELECT * FROM agents WHERE id = ?'),
    agentList: db.prepare<[], AgentRow>('SELECT * FROM agents ORDER BY id'),
    agentAssigned: db.prepare<[number, string]>('UPDATE agents SET last_assigned_at = ? WHERE id = ?'),

    requestInsert: db.prepare<[Record<string, unknown>]>(
      `INSERT INTO requests (id, visitor_id, visitor_name, pool, state, created_at)
       VALUES (@id, @visitorId, @visitorName, @pool, @state, @createdAt)`,
    ),
    requestById: db.prepare<[string], RequestRow>('SELECT * FROM requests WHERE id = ?'),

    callInsert: db.prepare<[Record<string, unknown>]>(
      `INSERT INTO calls (id, request_id, visitor_id, visitor_name, agent_id, pool, state, started_at)
       VALUES (@id, @requestId, @visitorId, @visitorName, @agentId, @pool, @state, @startedAt)`,
    ),
    callById: db.prepare<[string], CallRow>(`SELECT ${callColumns} ${callFrom} WHERE c.id = ?`),
    callPage: db.prepare<[{ before: string | null; limit: number }], CallRow>(
      `SELECT ${callColumns} ${callFrom} WHERE ${beforeCursor}
       ORDER BY c.started_at DESC, c.id DESC LIMIT @limit`,
    ),
    callPageForAgent: db.prepare<[{ agentId: string; before: string | null; limit: number }], CallRow>(
      `SELECT ${callColumns} ${callFrom} WHERE c.agent_id = @agentId AND ${beforeCursor}
       ORDER BY c.started_at DESC, c.id DESC LIMIT @limit`,
    ),

    eventInsert: db.prepare<[Record<string, unknown>], EventRow>(
      `INSERT INTO call_events (call_id, request_id, actor, type, from_state, to_state, cause, detail, at)
       VALUES (@callId, @requestId, @actor, @type, @fromState, @toState, @cause, @detail, @at) RETURNING *`,
    ),
    eventsForCall: db.prepare<[string], EventRow>('SELECT * FROM call_events WHERE call_id = ? ORDER BY id'),
    eventsForRequest: db.prepare<[string], EventRow>('SELECT * FROM call_events WHERE request_id = ? ORDER BY id'),

    telemetryInsert: db.prepare<[Record<string, unknown>], TelemetryRow>(
      `INSERT INTO telemetry (call_id, kind, leg, at, duration_ms, outcome, cause)
       VALUES (@callId, @kind, @leg, @at, @durationMs, @outcome, @cause) RETURNING *`,
    ),
    telemetryForCall: db.prepare<[string], TelemetryRow>('SELECT * FROM telemetry WHERE call_id = ? ORDER BY id'),

    snapshotUpsert: db.prepare<[Record<string, unknown>]>(
      `INSERT INTO actor_snapshots (actor_id, kind, request_id, call_id, snapshot, updated_at)
       VALUES (@actorId, @kind, @requestId, @callId, @snapshot, @updatedAt)
       ON CONFLICT (actor_id) DO UPDATE SET kind = excluded.kind, request_id = excluded.request_id,
         call_id = excluded.call_id, snapshot = excluded.snapshot, updated_at = excluded.updated_at`,
    ),
    snapshotById: db.prepare<[string], SnapshotRow>('SELECT * FROM actor_snapshots WHERE actor_id = ?'),
    snapshotDelete: db.prepare<[string]>('DELETE FROM actor_snapshots WHERE actor_id = ?'),
    snapshotAll: db.prepare<[], SnapshotRow>('SELECT * FROM actor_snapshots ORDER BY updated_at, actor_id'),
  };

  const patchRequest = patchStatement(db, 'requests', {
    state: 'state',
    endedAt: 'ended_at',
    endReason: 'end_reason',
  });
  const patchCall = patchStatement(db, 'calls', {
    state: 'state',
    connectedAt: 'connected_at',
    endedAt: 'ended_at',
    endReason: 'end_reason',
    totalPauseMs: 'total_pause_ms',
  });

  const getAgent = (id: string): AgentRecord | undefined => {
    const row = sql.agentById.get(id);
    return row === undefined ? undefined : toAgent(row);
  };
  const getRequest = (id: string): RequestRecord | undefined => {
    const row = sql.requestById.get(id);
    return row === undefined ? undefined : toRequest(row);
  };
  const getCall = (id: string): CallRecord | undefined => {
    const row = sql.callById.get(id);
    return row === undefined ? undefined : toCall(row);
  };
  const mustRead = <T>(record: T | undefined, what: string): T => {
    if (record === undefined) throw new StoreError(`${what} was written but cannot be read back.`);
    return record;
  };

  const seedAgents = db.transaction((list: readonly AgentSeedRecord[]) => {
    for (const agent of list) {
      sql.agentUpsert.run({
        id: agent.id,
        name: agent.name,
        email: agent.email,
        passwordHash: agent.passwordHash,
        pools: toJson(agent.pools, 'pools'),
        roles: toJson(agent.roles, 'roles'),
      });
    }
  });

  return {
    path: filePath,
    settings: {
      get: (key) => sql.settingGet.get(key)?.value,
      set: (key, value) => {
        sql.settingSet.run(key, value);
      },
      getOrInsert: (key, value) =>
        db.transaction(() => {
          sql.settingInsert.run(key, value);
          return mustRead(sql.settingGet.get(key), `Setting ${key}`).value;
        })(),
    },
    agents: {
      seed: (list) => {
        seedAgents(list);
      },
      findByEmail: (email) => {
        const row = sql.agentByEmail.get(email.trim());
        return row === undefined ? undefined : toAgent(row);
      },
      get: getAgent,
      list: () => sql.agentList.all().map(toAgent),
      markAssigned: (id, at) => sql.agentAssigned.run(at, id).changes > 0,
    },
    requests: {
      create: (request) => {
        sql.requestInsert.run({ ...request });
        return mustRead(getRequest(request.id), `Request ${request.id}`);
      },
      update: (id, patch) => (patchRequest(id, patch) ? getRequest(id) : undefined),
      get: getRequest,
    },
    calls: {
      create: (call) => {
        sql.callInsert.run({ ...call });
        return mustRead(getCall(call.id), `Call ${call.id}`);
      },
      update: (id, patch) => {
        const clean = patch.totalPauseMs === undefined ? patch : { ...patch, totalPauseMs: Math.round(patch.totalPauseMs) };
        return patchCall(id, clean) ? getCall(id) : undefined;
      },
      get: getCall,
      list: ({ agentId, limit, before }) => {
        if (!Number.isInteger(limit) || limit < 1 || limit > MAX_CALL_PAGE) {
          throw new RangeError(`limit must be an integer from 1 to ${String(MAX_CALL_PAGE)}`);
        }
        const page = { before: before ?? null, limit };
        const rows = agentId === undefined ? sql.callPage.all(page) : sql.callPageForAgent.all({ ...page, agentId });
        return rows.map(toCall);
      },
    },
    events: {
      append: (event) =>
        toEvent(
          mustRead(
            sql.eventInsert.get({
              callId: event.callId ?? null,
              requestId: event.requestId,
              actor: event.actor,
              type: event.type,
              fromState: event.fromState ?? null,
              toState: event.toState ?? null,
              cause: event.cause ?? null,
              detail: event.detail === undefined || event.detail === null ? null : toJson(event.detail, 'detail'),
              at: event.at,
            }),
            'Call event',
          ),
        ),
      forCall: (callId) => sql.eventsForCall.all(callId).map(toEvent),
      forRequest: (requestId) => sql.eventsForRequest.all(requestId).map(toEvent),
    },
    telemetry: {
      append: (record) => {
        const attempt = record.kind === 'reconnection-attempt';
        const row = sql.telemetryInsert.get({
          callId: record.callId,
          kind: record.kind,
          leg: record.leg,
          at: record.at,
          // Clients measure with performance.now(), which has fractions of a millisecond.
          durationMs: attempt ? Math.round(record.durationMs) : null,
          outcome: attempt ? record.outcome : null,
          cause: attempt ? null : record.cause,
        });
        return toTelemetry(mustRead(row, 'Telemetry'));
      },
      forCall: (callId) => sql.telemetryForCall.all(callId).map(toTelemetry),
    },
    snapshots: {
      save: (record) => {
        sql.snapshotUpsert.run({
          actorId: record.actorId,
          kind: record.kind,
          requestId: record.requestId,
          callId: record.callId,
          snapshot: toJson(record.snapshot, 'snapshot'),
          updatedAt: record.updatedAt,
        });
      },
      get: (actorId) => {
        const row = sql.snapshotById.get(actorId);
        return row === undefined ? undefined : toSnapshot(row);
      },
      delete: (actorId) => sql.snapshotDelete.run(actorId).changes > 0,
      all: () => sql.snapshotAll.all().map(toSnapshot),
    },
    transaction: (fn) => db.transaction(fn)(),
    close: () => {
      db.close();
    },
  };
}
