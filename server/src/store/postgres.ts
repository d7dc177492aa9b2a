/**
 * The store on Postgres through `pg`, shared by every node of a cluster. A commit is one BEGIN … COMMIT on
 * one pooled connection. A database that is down or restarting makes calls reject (never crash the
 * process): the pool drops connections that failed and opens new ones on the next call, so a caller that
 * retries gets through once Postgres is back.
 *
 * Rows come back as SQLite's do (BIGINT as numbers, JSON as its text), so both engines read them through
 * the same table shapes in tables.ts. SQL stays inside this module.
 */
import pg from 'pg';
import { MIGRATIONS } from './migrations.postgres.ts';
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

type Row = Record<string, unknown>;
type Queryable = Pick<pg.PoolClient, 'query'>;

// ---------------------------------------------------------------------------------------------
// Rows as SQLite gives them

const INT8 = 20;
const JSON_TEXT = 114;
const JSONB = 3802;

// Per pool, not pg's global parsers, so nothing else in the process that uses `pg` is changed. Times in
// ms and generated ids stay far below 2^53, so a BIGINT is a number; JSON stays text so that a JSON string
// value is read back as a string, as it is from SQLite.
const rowTypes = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (oid === INT8) return (value: string) => Number(value);
    if (oid === JSON_TEXT || oid === JSONB) return (value: string) => value;
    return pg.types.getTypeParser(oid, format);
  }) as typeof pg.types.getTypeParser,
};

// ---------------------------------------------------------------------------------------------
// Statements, from a table's shape

interface Statement {
  readonly text: string;
  readonly fields: readonly string[];
}

/**
 * `INSERT INTO table (…) VALUES ($1, …)`; on a conflict on the key, `update` overwrites every inserted
 * column and `ignore` keeps the row that is there.
 */
function insertSql<R>(table: Table<R>, fields: readonly (keyof R & string)[], onConflict?: 'update' | 'ignore'): Statement {
  const columns = fields.map(columnOf);
  const insert = `INSERT INTO ${table.name} (${columns.join(', ')}) VALUES (${fields.map((_, index) => `$${String(index + 1)}`).join(', ')})`;
  const key = columnOf(table.key);
  if (onConflict === 'ignore') return { text: `${insert} ON CONFLICT (${key}) DO NOTHING`, fields };
  if (onConflict === 'update') {
    const sets = columns.filter((column) => column !== key).map((column) => `${column} = excluded.${column}`);
    return { text: `${insert} ON CONFLICT (${key}) DO UPDATE SET ${sets.join(', ')}`, fields };
  }
  return { text: insert, fields };
}

async function run(db: Queryable, statement: Statement, values: Values): Promise<pg.QueryResult<Row>> {
  return db.query<Row>(
    statement.text,
    statement.fields.map((field) => values[field]),
  );
}

/** `UPDATE table SET` the columns the values give (from a fixed list of fields), by key. */
async function patch<R>(db: Queryable, table: Table<R>, fields: readonly (keyof R & string)[], key: string, values: Values) {
  const given = fields.filter((field) => Object.hasOwn(values, field));
  if (given.length === 0) return;
  const sets = given.map((field, index) => `${columnOf(field)} = $${String(index + 2)}`);
  await db.query(`UPDATE ${table.name} SET ${sets.join(', ')} WHERE ${columnOf(table.key)} = $1`, [
    key,
    ...given.map((field) => values[field]),
  ]);
}

async function one<R>(db: Queryable, table: Table<R>, text: string, params: unknown[]): Promise<R | undefined> {
  const { rows } = await db.query<Row>(text, params);
  const row = rows[0];
  return row === undefined ? undefined : fromRow(table, row);
}

async function all<R>(db: Queryable, table: Table<R>, text: string, params: unknown[] = []): Promise<R[]> {
  const { rows } = await db.query<Row>(text, params);
  return rows.map((row) => fromRow(table, row));
}

/**
 * Runs `work` in one transaction on one pooled connection. A connection that breaks is destroyed rather
 * than given back, so the pool opens a fresh one for the next caller.
 */
async function transaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  // A connection lost while checked out is also reported as an event on the client; unheard, it would
  // end the process. The query in flight rejects with it, which is what the caller sees.
  const onError = (error: Error) => {
    broken = error;
  };
  client.on('error', onError);
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch((rollbackError: unknown) => {
      broken ??= rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
    });
    throw error;
  } finally {
    client.removeListener('error', onError);
    client.release(broken);
  }
}

// ---------------------------------------------------------------------------------------------
// Opening

// Any fixed number would do: it only has to be the same on every node. These are the bytes of "call".
const MIGRATION_LOCK = 0x63616c6c;
// Nodes starting together each seed the same accounts. `ON CONFLICT (id)` settles a race on the key,
// but the unique email index would still throw in the later one, so seeding runs one node at a time.
const SEED_LOCK = MIGRATION_LOCK + 1;

async function migrate(pool: pg.Pool): Promise<void> {
  await transaction(pool, async (client) => {
    // Held until this transaction ends, so of several nodes starting at once one migrates and the
    // others, once it commits, find the schema current. A node that waits too long fails to open.
    await client.query("SET LOCAL lock_timeout = '60s'");
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await client.query('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)');
    const { rows } = await client.query<{ version: number }>('SELECT coalesce(max(version), 0)::integer AS version FROM schema_version');
    const version = rows[0]?.version ?? 0;
    if (version > MIGRATIONS.length) {
      throw new StoreError(
        `The database schema is version ${String(version)}, newer than this server's ${String(MIGRATIONS.length)}.`,
      );
    }
    for (let next = version; next < MIGRATIONS.length; next++) {
      await client.query(MIGRATIONS[next] ?? '');
      await client.query('INSERT INTO schema_version (version, applied_at) VALUES ($1, $2)', [next + 1, Date.now()]);
    }
  });
}

/** The URL as it may be shown and logged: without its password. */
function redacted(url: URL): string {
  const shown = new URL(url.href);
  shown.password = '';
  return shown.href;
}

export interface PostgresOptions {
  /** Connections this node keeps open at most. */
  maxConnections?: number;
  /** How long a call waits for a connection before it rejects, in ms. */
  connectTimeoutMs?: number;
}

/** Connects to the database at `databaseUrl` and brings its schema up to date; rejects when it cannot. */
export async function openPostgresStore(databaseUrl: string, options: PostgresOptions = {}): Promise<Store> {
  let url: URL;
  try {
    url = new URL(databaseUrl);
  } catch {
    throw new StoreError('The database URL is not a URL.');
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new StoreError(`The database URL must start with postgres:// (got ${url.protocol}//).`);
  }
  const shown = redacted(url);
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    types: rowTypes,
    max: options.maxConnections ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5_000,
    keepAlive: true,
    application_name: 'callchart',
  });
  // An idle connection that dies (Postgres restarted) is already out of the pool when this fires; the next
  // call opens a new one, and if Postgres is still down, that call rejects.
  pool.on('error', () => undefined);
  try {
    await migrate(pool);
  } catch (error) {
    await pool.end().catch(() => undefined);
    if (error instanceof StoreError) throw error;
    throw new StoreError(`Cannot open the store at ${shown}: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
  return createStore(pool, shown);
}

// ---------------------------------------------------------------------------------------------
// The store

// A call's record carries its agent's current name.
const callSelect = 'SELECT c.*, a.name AS agent_name FROM calls c JOIN agents a ON a.id = c.agent_id';
// An unknown cursor makes the row comparison NULL, which selects nothing.
const beforeCursor = (param: string) =>
  `(${param}::text IS NULL OR (c.started_at, c.id) < (SELECT started_at, id FROM calls WHERE id = ${param}))`;
const newestFirst = (param: string) => `ORDER BY c.started_at DESC, c.id DESC LIMIT ${param}`;

function createStore(pool: pg.Pool, shown: string): Store {
  const { settings, agents, requests, calls, callEvents, telemetry, actorSnapshots, revokedTokens } = tables;

  const setSetting = insertSql(settings, settingFields, 'update');
  const insertSetting = insertSql(settings, settingFields, 'ignore');
  // `lastAssignedAt` is left out, so routing's record of it survives a reseed.
  const upsertAgent = insertSql(agents, agentSeedFields, 'update');
  const insertRequest = insertSql(requests, requestFields);
  const insertCall = insertSql(calls, callFields);
  const appendEvent = insertSql(callEvents, eventFields);
  const appendTelemetry = insertSql(telemetry, telemetryFields);
  const saveSnapshot = insertSql(actorSnapshots, snapshotFields, 'update');
  const insertRevoked = insertSql(revokedTokens, revokedTokenFields, 'ignore');

  const purgeExpired = async (db: Queryable, now: number) =>
    (await db.query(`DELETE FROM ${revokedTokens.name} WHERE expires_at <= $1`, [now])).rowCount ?? 0;

  async function apply(client: Queryable, write: Write): Promise<void> {
    switch (write.op) {
      case 'setSetting':
        await run(client, setSetting, write.values);
        return;
      case 'markAssigned':
        await client.query(`UPDATE ${agents.name} SET last_assigned_at = $2 WHERE id = $1`, [write.id, write.at]);
        return;
      case 'createRequest':
        await run(client, insertRequest, write.values);
        return;
      case 'updateRequest':
        return patch(client, requests, requestPatchFields, write.id, write.values);
      case 'createCall':
        await run(client, insertCall, write.values);
        return;
      case 'updateCall':
        return patch(client, calls, callPatchFields, write.id, write.values);
      case 'markConnected':
        await client.query(`UPDATE ${calls.name} SET connected_at = $2 WHERE id = $1 AND connected_at IS NULL`, [write.id, write.at]);
        return;
      case 'appendEvent':
        await run(client, appendEvent, write.values);
        return;
      case 'appendTelemetry':
        await run(client, appendTelemetry, write.values);
        return;
      case 'saveSnapshot':
        await run(client, saveSnapshot, write.values);
        return;
      case 'deleteSnapshot':
        await client.query(`DELETE FROM ${actorSnapshots.name} WHERE actor_id = $1`, [write.actorId]);
        return;
    }
  }

  async function raiseFence(client: Queryable, fence: Fence): Promise<void> {
    // The token is raised only when it is not older than the one stored: no row back means stale. A
    // concurrent commit for the same request waits on the row, then is judged against what that one left.
    const raised = await client.query(
      `INSERT INTO request_fences (request_id, token) VALUES ($1, $2)
       ON CONFLICT (request_id) DO UPDATE SET token = excluded.token WHERE request_fences.token <= excluded.token
       RETURNING token`,
      [fence.requestId, fence.token],
    );
    if (raised.rowCount !== 0) return;
    const { rows } = await client.query<{ token: number }>('SELECT token FROM request_fences WHERE request_id = $1', [fence.requestId]);
    throw new StaleFenceError(fence.requestId, fence.token, rows[0]?.token ?? fence.token);
  }

  let closing: Promise<void> | undefined;

  return {
    engine: 'postgres',
    path: shown,
    settings: {
      get: async (key) => (await one(pool, settings, `SELECT * FROM ${settings.name} WHERE key = $1`, [key]))?.value,
      set: async (key, value) => {
        await run(pool, setSetting, toColumns(settings, settingFields, { key, value }));
      },
      getOrInsert: async (key, value) => {
        // Of nodes starting at once, one insert lands and every node reads that one.
        await run(pool, insertSetting, toColumns(settings, settingFields, { key, value }));
        const stored = await one(pool, settings, `SELECT * FROM ${settings.name} WHERE key = $1`, [key]);
        if (stored === undefined) throw new StoreError(`Setting ${key} was written but cannot be read back.`);
        return stored.value;
      },
      withPrefix: async (prefix) => {
        const rows = await all(pool, settings, `SELECT * FROM ${settings.name} WHERE starts_with(key, $1) ORDER BY key`, [prefix]);
        return new Map(rows.map((row) => [row.key, row.value]));
      },
    },
    agents: {
      seed: async (list: readonly AgentSeedRecord[]) => {
        const rows = list.map((agent) => toColumns(agents, agentSeedFields, agent));
        await transaction(pool, async (client) => {
          await client.query('SELECT pg_advisory_xact_lock($1)', [SEED_LOCK]);
          for (const row of rows) await run(client, upsertAgent, row);
        });
      },
      findByEmail: async (email) =>
        one(pool, agents, `SELECT * FROM ${agents.name} WHERE lower(email) = lower($1)`, [email.trim()]),
      get: async (id) => one(pool, agents, `SELECT * FROM ${agents.name} WHERE id = $1`, [id]),
      list: async () => all(pool, agents, `SELECT * FROM ${agents.name} ORDER BY id`),
      servesPool: async (name) => {
        const { rowCount } = await pool.query(`SELECT 1 FROM ${agents.name} WHERE pools @> jsonb_build_array($1::text) LIMIT 1`, [name]);
        return (rowCount ?? 0) > 0;
      },
    },
    requests: {
      get: async (id) => one(pool, requests, `SELECT * FROM ${requests.name} WHERE id = $1`, [id]),
    },
    calls: {
      get: async (id) => one(pool, calls, `${callSelect} WHERE c.id = $1`, [id]),
      list: async ({ agentId, limit, before }) => {
        if (!Number.isInteger(limit) || limit < 1 || limit > MAX_CALL_PAGE) {
          throw new RangeError(`limit must be an integer from 1 to ${String(MAX_CALL_PAGE)}`);
        }
        if (agentId === undefined) {
          return all(pool, calls, `${callSelect} WHERE ${beforeCursor('$1')} ${newestFirst('$2')}`, [before ?? null, limit]);
        }
        return all(pool, calls, `${callSelect} WHERE c.agent_id = $3 AND ${beforeCursor('$1')} ${newestFirst('$2')}`, [
          before ?? null,
          limit,
          agentId,
        ]);
      },
    },
    events: {
      forCall: async (callId) => all(pool, callEvents, `SELECT * FROM ${callEvents.name} WHERE call_id = $1 ORDER BY id`, [callId]),
      forRequest: async (requestId) =>
        all(pool, callEvents, `SELECT * FROM ${callEvents.name} WHERE request_id = $1 ORDER BY id`, [requestId]),
    },
    telemetry: {
      forCall: async (callId) =>
        (await all(pool, telemetry, `SELECT * FROM ${telemetry.name} WHERE call_id = $1 ORDER BY id`, [callId])).map(
          tables.toTelemetry,
        ),
    },
    snapshots: {
      get: async (actorId) => one(pool, actorSnapshots, `SELECT * FROM ${actorSnapshots.name} WHERE actor_id = $1`, [actorId]),
      all: async () => all(pool, actorSnapshots, `SELECT * FROM ${actorSnapshots.name} ORDER BY updated_at, actor_id`),
    },
    revokedTokens: {
      add: async (record: RevokedTokenRecord) => {
        const row = toColumns(revokedTokens, revokedTokenFields, record);
        // Each revocation sweeps out the expired rows, so the table stays as small as the tokens still alive.
        await transaction(pool, async (client) => {
          await purgeExpired(client, record.revokedAt);
          await run(client, insertRevoked, row);
        });
      },
      has: async (jti) => (await pool.query(`SELECT 1 FROM ${revokedTokens.name} WHERE jti = $1`, [jti])).rowCount !== 0,
      purge: async (now) => purgeExpired(pool, now),
    },
    commit: async (fill, fence) => {
      if (fence !== undefined) checkFence(fence);
      const list = gatherWrites(fill);
      if (list.length === 0 && fence === undefined) return;
      await transaction(pool, async (client) => {
        // The fence first: a stale owner's commit is refused before any of its writes runs.
        if (fence !== undefined) await raiseFence(client, fence);
        for (const write of list) await apply(client, write);
      });
    },
    ping: async () => {
      await pool.query('SELECT 1');
    },
    close: async () => {
      closing ??= pool.end();
      await closing;
    },
  };
}
