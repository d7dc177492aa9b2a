/**
 * The store on one SQLite file through better-sqlite3, for a server that runs as one process. A commit is
 * one synchronous transaction, committed before its promise resolves, so a process killed right after
 * (even with SIGKILL) loses nothing it was told was written. Reads answer promises only to keep the port
 * the same as Postgres's: the work itself is done at once.
 *
 * Statements are built from the table shapes in tables.ts; SQL stays inside this module.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { MIGRATIONS } from './migrations.sqlite.ts';
import {
  MAX_CALL_PAGE,
  StaleFenceError,
  StoreError,
  type AgentSeedRecord,
  type Fence,
  type RevokedTokenRecord,
  type Store,
} from './records.ts';
import * as tables from './tables.ts';
import { columnOf, fromRow, toColumns, type Table } from './tables.ts';
import {
  agentSeedFields,
  callFields,
  callPatchFields,
  checkFence,
  eventFields,
  gatherWrites,
  requestFields,
  requestPatchFields,
  revokedTokenFields,
  settingFields,
  snapshotFields,
  telemetryFields,
  type Values,
  type Write,
} from './writes.ts';

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

/** Inserts column values as `toColumns` gives them. */
function inserter<R>(db: Db, table: Table<R>, fields: readonly (keyof R & string)[], onConflict?: 'update' | 'ignore') {
  const statement = db.prepare<[Values]>(insertSql(table, fields, onConflict));
  return (values: Values): void => {
    statement.run(values);
  };
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
 * update stays one prepared statement: a field the values leave out keeps its column, and a null clears it.
 */
function patcher<R>(db: Db, table: Table<R>, fields: readonly (keyof R & string)[]) {
  const sets = fields.map((field) => {
    const column = columnOf(field);
    return `${column} = CASE WHEN @set_${field} THEN @${field} ELSE ${column} END`;
  });
  const statement = db.prepare<[Row]>(`UPDATE ${table.name} SET ${sets.join(', ')} WHERE ${columnOf(table.key)} = @key`);
  return (key: string, values: Values): void => {
    const params: Row = { key };
    for (const field of fields) {
      const given = Object.hasOwn(values, field);
      params[field] = given ? values[field] : null;
      params[`set_${field}`] = given ? 1 : 0;
    }
    statement.run(params);
  };
}

function mustRead<T>(record: T | undefined, what: string): T {
  if (record === undefined) throw new StoreError(`${what} was written but cannot be read back.`);
  return record;
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
export function openSqliteStore(filePath: string): Store {
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
  const setSetting = inserter(db, settings, settingFields, 'update');
  const insertSetting = inserter(db, settings, settingFields, 'ignore');
  const settingsWithPrefix = db.prepare<[{ prefix: string }], { key: string; value: string }>(
    // substr, not LIKE: a prefix may hold % or _.
    `SELECT key, value FROM ${settings.name} WHERE substr(key, 1, length(@prefix)) = @prefix ORDER BY key`,
  );

  const getAgent = finder(db, agents, 'id');
  const agentByEmail = finder(db, agents, 'email');
  const listAgents = lister(db, agents, undefined, ['id']);
  const poolServed = db.prepare<[string], unknown>(
    `SELECT 1 FROM ${agents.name}, json_each(${agents.name}.pools) WHERE json_each.value = ? LIMIT 1`,
  );
  // `lastAssignedAt` is left out, so routing's record of it survives a reseed.
  const upsertAgent = inserter(db, agents, agentSeedFields, 'update');
  const seedAgents = db.transaction((list: readonly AgentSeedRecord[]) => {
    for (const agent of list) upsertAgent(toColumns(agents, agentSeedFields, agent));
  });
  const markAssigned = db.prepare<[unknown, string]>(`UPDATE ${agents.name} SET last_assigned_at = ? WHERE id = ?`);

  const getRequest = finder(db, requests, 'id');
  const insertRequest = inserter(db, requests, requestFields);
  const patchRequest = patcher(db, requests, requestPatchFields);

  const getCall = finder(db, calls, 'id', callWithAgent);
  const insertCall = inserter(db, calls, callFields);
  const patchCall = patcher(db, calls, callPatchFields);
  const markConnected = db.prepare<[unknown, string]>(
    `UPDATE ${calls.name} SET connected_at = ? WHERE id = ? AND connected_at IS NULL`,
  );
  const callPage = db.prepare<[{ before: string | null; limit: number }], Row>(
    `${callSelect} WHERE ${beforeCursor} ${newestFirst}`,
  );
  const callPageForAgent = db.prepare<[{ agentId: string; before: string | null; limit: number }], Row>(
    `${callSelect} WHERE c.agent_id = @agentId AND ${beforeCursor} ${newestFirst}`,
  );

  const appendEvent = inserter(db, callEvents, eventFields);
  const eventsForCall = lister(db, callEvents, 'callId', ['id']);
  const eventsForRequest = lister(db, callEvents, 'requestId', ['id']);

  const appendTelemetry = inserter(db, telemetry, telemetryFields);
  const telemetryForCall = lister(db, telemetry, 'callId', ['id']);

  const getSnapshot = finder(db, actorSnapshots, 'actorId');
  const saveSnapshot = inserter(db, actorSnapshots, snapshotFields, 'update');
  const deleteSnapshot = db.prepare<[string]>(`DELETE FROM ${actorSnapshots.name} WHERE actor_id = ?`);
  const allSnapshots = lister(db, actorSnapshots, undefined, ['updatedAt', 'actorId']);

  const insertRevoked = inserter(db, revokedTokens, revokedTokenFields, 'ignore');
  const revokedToken = finder(db, revokedTokens, 'jti');
  const purgeRevoked = db.prepare<[number]>(`DELETE FROM ${revokedTokens.name} WHERE expires_at <= ?`);
  const purgeExpired = (now: number) => purgeRevoked.run(now).changes;
  // Each revocation sweeps out the expired rows, so the table stays as small as the tokens still alive.
  const revoke = db.transaction((record: RevokedTokenRecord) => {
    purgeExpired(record.revokedAt);
    insertRevoked(toColumns(revokedTokens, revokedTokenFields, record));
  });

  // The token is raised only when it is not older than the one stored: no row changed means stale.
  const raiseFence = db.prepare<[string, number]>(
    `INSERT INTO request_fences (request_id, token) VALUES (?, ?)
     ON CONFLICT (request_id) DO UPDATE SET token = excluded.token WHERE request_fences.token <= excluded.token`,
  );
  const fenceToken = db.prepare<[string], { token: number }>('SELECT token FROM request_fences WHERE request_id = ?');

  function apply(write: Write): void {
    switch (write.op) {
      case 'setSetting':
        return setSetting(write.values);
      case 'markAssigned':
        markAssigned.run(write.at, write.id);
        return;
      case 'createRequest':
        return insertRequest(write.values);
      case 'updateRequest':
        return patchRequest(write.id, write.values);
      case 'createCall':
        return insertCall(write.values);
      case 'updateCall':
        return patchCall(write.id, write.values);
      case 'markConnected':
        markConnected.run(write.at, write.id);
        return;
      case 'appendEvent':
        return appendEvent(write.values);
      case 'appendTelemetry':
        return appendTelemetry(write.values);
      case 'saveSnapshot':
        return saveSnapshot(write.values);
      case 'deleteSnapshot':
        deleteSnapshot.run(write.actorId);
        return;
    }
  }

  const commitAll = db.transaction((list: readonly Write[], fence: Fence | undefined) => {
    // The fence first: a stale owner's commit is refused before any of its writes runs.
    if (fence !== undefined && raiseFence.run(fence.requestId, fence.token).changes === 0) {
      throw new StaleFenceError(fence.requestId, fence.token, fenceToken.get(fence.requestId)?.token ?? fence.token);
    }
    for (const write of list) apply(write);
  });

  return {
    engine: 'sqlite',
    path: filePath,
    settings: {
      get: async (key) => setting(key)?.value,
      set: async (key, value) => {
        setSetting(toColumns(settings, settingFields, { key, value }));
      },
      getOrInsert: async (key, value) =>
        db.transaction(() => {
          insertSetting(toColumns(settings, settingFields, { key, value }));
          return mustRead(setting(key), `Setting ${key}`).value;
        })(),
      withPrefix: async (prefix) => new Map(settingsWithPrefix.all({ prefix }).map((row) => [row.key, row.value])),
    },
    agents: {
      seed: async (list) => {
        seedAgents(list);
      },
      findByEmail: async (email) => agentByEmail(email.trim()),
      get: async (id) => getAgent(id),
      list: async () => listAgents(),
      servesPool: async (pool) => poolServed.get(pool) !== undefined,
    },
    requests: {
      get: async (id) => getRequest(id),
    },
    calls: {
      get: async (id) => getCall(id),
      list: async ({ agentId, limit, before }) => {
        if (!Number.isInteger(limit) || limit < 1 || limit > MAX_CALL_PAGE) {
          throw new RangeError(`limit must be an integer from 1 to ${String(MAX_CALL_PAGE)}`);
        }
        const page = { before: before ?? null, limit };
        const rows = agentId === undefined ? callPage.all(page) : callPageForAgent.all({ ...page, agentId });
        return rows.map((row) => fromRow(calls, row));
      },
    },
    events: {
      forCall: async (callId) => eventsForCall(callId),
      forRequest: async (requestId) => eventsForRequest(requestId),
    },
    telemetry: {
      forCall: async (callId) => telemetryForCall(callId).map(tables.toTelemetry),
    },
    snapshots: {
      get: async (actorId) => getSnapshot(actorId),
      all: async () => allSnapshots(),
    },
    revokedTokens: {
      add: async (record) => {
        revoke(record);
      },
      has: async (jti) => revokedToken(jti) !== undefined,
      purge: async (now) => purgeExpired(now),
    },
    commit: async (fill, fence) => {
      if (fence !== undefined) checkFence(fence);
      const list = gatherWrites(fill);
      if (list.length === 0 && fence === undefined) return;
      commitAll(list, fence);
    },
    ping: async () => {
      db.prepare('SELECT 1').get();
    },
    close: async () => {
      db.close();
    },
  };
}
