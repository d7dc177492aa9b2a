/**
 * The store on one SQLite file through better-sqlite3. Every write is synchronous and committed when
 * the call returns, so a process killed right after (even with SIGKILL) loses nothing it was told was
 * written. The server is one process, so the database's single writer is never a bottleneck.
 *
 * Statements are built from the table shapes in tables.ts; SQL stays inside this module.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { MIGRATIONS } from '../store.migrations.ts';
import { MAX_CALL_PAGE, StoreError, type AgentSeedRecord, type RevokedTokenRecord, type Store } from './records.ts';
import * as tables from './tables.ts';
import { columnOf, fromRow, toColumns, type Table } from './tables.ts';

type Db = Database.Database;
type Row = Record<string, unknown>;

// ---------------------------------------------------------------------------------------------
// Statements, from a table's shape

/**
 * `INSERT INTO table (…) VALUES (@field, …)`; on a conflict on the key, `update` overwrites every
 * inserted column and `ignore` keeps the row that is there.
 */
function insertSql<R>(table: Table<R>, fields: readonly string[], onConflict?: 'update' | 'ignore'): string {
  const columns = fields.map(columnOf);
  const insert = `INSERT INTO ${table.name} (${columns.join(', ')}) VALUES (${fields.map((field) => `@${field}`).join(', ')})`;
  const key = columnOf(table.key);
  if (onConflict === 'ignore') return `${insert} ON CONFLICT (${key}) DO NOTHING`;
  if (onConflict === 'update') {
    const sets = columns.filter((column) => column !== key).map((column) => `${column} = excluded.${column}`);
    return `${insert} ON CONFLICT (${key}) DO UPDATE SET ${sets.join(', ')}`;
  }
  return insert;
}

function inserter<R, K extends keyof R & string>(
  db: Db,
  table: Table<R>,
  fields: readonly K[],
  onConflict?: 'update' | 'ignore',
): (record: Partial<Pick<R, K>>) => void {
  const statement = db.prepare<[Row]>(insertSql(table, fields, onConflict));
  return (record) => {
    statement.run(toColumns(table, fields, record));
  };
}

/** An insert that answers the row as stored, with the key the database gave it. */
function appender<R, K extends keyof R & string>(
  db: Db,
  table: Table<R>,
  fields: readonly K[],
): (record: Partial<Pick<R, K>>) => R {
  const statement = db.prepare<[Row], Row>(`${insertSql(table, fields)} RETURNING *`);
  return (record) => fromRow(table, mustRead(statement.get(toColumns(table, fields, record)), table.name));
}

/** A read of more than the table's own columns: the `SELECT … FROM …` and the alias of the table in it. */
interface Joined {
  readonly select: string;
  readonly alias: string;
}

/** The row whose `field` is the value asked for: all of the table's columns, or what `joined` selects. */
function finder<R>(db: Db, table: Table<R>, field: keyof R & string, joined?: Joined) {
  const select = joined?.select ?? `SELECT * FROM ${table.name}`;
  const column = joined === undefined ? columnOf(field) : `${joined.alias}.${columnOf(field)}`;
  const statement = db.prepare<[unknown], Row>(`${select} WHERE ${column} = ?`);
  return (value: unknown): R | undefined => {
    const row = statement.get(value);
    return row === undefined ? undefined : fromRow(table, row);
  };
}

/** Every row, or every row whose `field` is the value asked for, ordered by the `order` fields. */
function lister<R>(db: Db, table: Table<R>, field: (keyof R & string) | undefined, order: readonly (keyof R & string)[]) {
  const where = field === undefined ? '' : ` WHERE ${columnOf(field)} = @value`;
  const statement = db.prepare<[{ value?: unknown }], Row>(
    `SELECT * FROM ${table.name}${where} ORDER BY ${order.map(columnOf).join(', ')}`,
  );
  return (value?: unknown): R[] => statement.all(field === undefined ? {} : { value }).map((row) => fromRow(table, row));
}

/**
 * `UPDATE table SET col = CASE WHEN @set_field THEN @field ELSE col END, …`, built once, so a partial
 * update stays one prepared statement: a field left out of the patch keeps its column, and a field set
 * to null clears it.
 */
function patcher<R, K extends keyof R & string>(
  db: Db,
  table: Table<R>,
  fields: readonly K[],
): (key: string, patch: Partial<Pick<R, K>>) => boolean {
  const sets = fields.map((field) => {
    const column = columnOf(field);
    return `${column} = CASE WHEN @set_${field} THEN @${field} ELSE ${column} END`;
  });
  const statement = db.prepare<[Row]>(`UPDATE ${table.name} SET ${sets.join(', ')} WHERE ${columnOf(table.key)} = @key`);
  return (key, patch) => {
    const params: Row = { key, ...toColumns(table, fields, patch) };
    for (const field of fields) params[`set_${field}`] = patch[field] === undefined ? 0 : 1;
    return statement.run(params).changes > 0;
  };
}

function deleter<R>(db: Db, table: Table<R>): (key: string) => boolean {
  const statement = db.prepare<[string]>(`DELETE FROM ${table.name} WHERE ${columnOf(table.key)} = ?`);
  return (key) => statement.run(key).changes > 0;
}

function mustRead<T>(record: T | undefined, what: string): T {
  if (record === undefined) throw new StoreError(`${what} was written but cannot be read back.`);
  return record;
}

/** An insert that answers the record as a read gives it back: its defaults filled in, its joins made. */
function creator<N extends { id: string }, R>(insert: (record: N) => void, get: (id: string) => R | undefined, what: string) {
  return (record: N): R => {
    insert(record);
    return mustRead(get(record.id), `${what} ${record.id}`);
  };
}

/** A patch that answers the updated record, or undefined when there is no such row. */
function updater<P, R>(patch: (id: string, patch: P) => boolean, get: (id: string) => R | undefined) {
  return (id: string, changes: P): R | undefined => (patch(id, changes) ? get(id) : undefined);
}

// ---------------------------------------------------------------------------------------------
// Opening

function migrate(db: Db): void {
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

// ---------------------------------------------------------------------------------------------
// The store

// A call's record carries its agent's current name.
const callSelect = 'SELECT c.*, a.name AS agent_name FROM calls c JOIN agents a ON a.id = c.agent_id';
const callWithAgent: Joined = { select: callSelect, alias: 'c' };
// An unknown cursor makes the row-value comparison NULL, which selects nothing.
const beforeCursor = `(@before IS NULL OR (c.started_at, c.id) < (SELECT started_at, id FROM calls WHERE id = @before))`;
const newestFirst = 'ORDER BY c.started_at DESC, c.id DESC LIMIT @limit';

function createStore(db: Db, filePath: string): Store {
  const { settings, agents, requests, calls, callEvents, telemetry, actorSnapshots, revokedTokens } = tables;

  const setting = finder(db, settings, 'key');
  const setSetting = inserter(db, settings, ['key', 'value'], 'update');
  const insertSetting = inserter(db, settings, ['key', 'value'], 'ignore');

  const getAgent = finder(db, agents, 'id');
  const agentByEmail = finder(db, agents, 'email');
  const poolServed = db.prepare<[string], unknown>(`SELECT 1 FROM ${agents.name}, json_each(${agents.name}.pools) WHERE json_each.value = ? LIMIT 1`);
  // `lastAssignedAt` is left out, so routing's record of it survives a reseed.
  const upsertAgent = inserter(db, agents, ['id', 'name', 'email', 'passwordHash', 'pools', 'roles'], 'update');
  const seedAgents = db.transaction((list: readonly AgentSeedRecord[]) => {
    for (const agent of list) upsertAgent(agent);
  });
  const patchAgent = patcher(db, agents, ['lastAssignedAt']);

  const getRequest = finder(db, requests, 'id');
  const insertRequest = inserter(db, requests, ['id', 'visitorId', 'visitorName', 'pool', 'state', 'createdAt']);
  const patchRequest = patcher(db, requests, ['state', 'endedAt', 'endReason']);

  const getCall = finder(db, calls, 'id', callWithAgent);
  const insertCall = inserter(db, calls, ['id', 'requestId', 'visitorId', 'visitorName', 'agentId', 'pool', 'state', 'startedAt']);
  const patchCall = patcher(db, calls, ['state', 'connectedAt', 'endedAt', 'endReason', 'totalPauseMs']);
  const callPage = db.prepare<[{ before: string | null; limit: number }], Row>(
    `${callSelect} WHERE ${beforeCursor} ${newestFirst}`,
  );
  const callPageForAgent = db.prepare<[{ agentId: string; before: string | null; limit: number }], Row>(
    `${callSelect} WHERE c.agent_id = @agentId AND ${beforeCursor} ${newestFirst}`,
  );

  const appendEvent = appender(db, callEvents, ['callId', 'requestId', 'actor', 'type', 'fromState', 'toState', 'cause', 'detail', 'at']);

  const appendTelemetry = appender(db, telemetry, ['callId', 'kind', 'leg', 'at', 'durationMs', 'outcome', 'cause']);
  const telemetryForCall = lister(db, telemetry, 'callId', ['id']);

  const getSnapshot = finder(db, actorSnapshots, 'actorId');

  const insertRevoked = inserter(db, revokedTokens, ['jti', 'expiresAt', 'revokedAt'], 'ignore');
  const revokedToken = finder(db, revokedTokens, 'jti');
  const purgeRevoked = db.prepare<[number]>(`DELETE FROM ${revokedTokens.name} WHERE expires_at <= ?`);
  const purgeExpired = (now: number) => purgeRevoked.run(now).changes;
  // Each revocation sweeps out the expired rows, so the table stays as small as the tokens still alive.
  const revoke = db.transaction((record: RevokedTokenRecord) => {
    purgeExpired(record.revokedAt);
    insertRevoked(record);
  });

  return {
    path: filePath,
    settings: {
      get: (key) => setting(key)?.value,
      set: (key, value) => {
        setSetting({ key, value });
      },
      getOrInsert: (key, value) =>
        db.transaction(() => {
          insertSetting({ key, value });
          return mustRead(setting(key), `Setting ${key}`).value;
        })(),
    },
    agents: {
      seed: (list) => {
        seedAgents(list);
      },
      findByEmail: (email) => agentByEmail(email.trim()),
      get: getAgent,
      list: lister(db, agents, undefined, ['id']),
      servesPool: (pool) => poolServed.get(pool) !== undefined,
      markAssigned: (id, at) => patchAgent(id, { lastAssignedAt: at }),
    },
    requests: {
      create: creator(insertRequest, getRequest, 'Request'),
      update: updater(patchRequest, getRequest),
      get: getRequest,
    },
    calls: {
      create: creator(insertCall, getCall, 'Call'),
      update: updater(patchCall, getCall),
      get: getCall,
      list: ({ agentId, limit, before }) => {
        if (!Number.isInteger(limit) || limit < 1 || limit > MAX_CALL_PAGE) {
          throw new RangeError(`limit must be an integer from 1 to ${String(MAX_CALL_PAGE)}`);
        }
        const page = { before: before ?? null, limit };
        const rows = agentId === undefined ? callPage.all(page) : callPageForAgent.all({ ...page, agentId });
        return rows.map((row) => fromRow(calls, row));
      },
    },
    events: {
      append: appendEvent,
      forCall: lister(db, callEvents, 'callId', ['id']),
      forRequest: lister(db, callEvents, 'requestId', ['id']),
    },
    telemetry: {
      // A record of one kind leaves the other kind's columns null, whatever else it carries.
      append: (record) =>
        tables.toTelemetry(
          appendTelemetry(
            record.kind === 'reconnection-attempt' ? { ...record, cause: null } : { ...record, durationMs: null, outcome: null },
          ),
        ),
      forCall: (callId) => telemetryForCall(callId).map(tables.toTelemetry),
    },
    snapshots: {
      save: inserter(db, actorSnapshots, ['actorId', 'kind', 'requestId', 'callId', 'snapshot', 'updatedAt'], 'update'),
      get: getSnapshot,
      delete: deleter(db, actorSnapshots),
      all: lister(db, actorSnapshots, undefined, ['updatedAt', 'actorId']),
    },
    revokedTokens: {
      add: (record) => {
        revoke(record);
      },
      has: (jti) => revokedToken(jti) !== undefined,
      purge: purgeExpired,
    },
    transaction: (fn) => db.transaction(fn)(),
    close: () => {
      db.close();
    },
  };
}
