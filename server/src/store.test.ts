/**
 * One suite for the store port, run against both engines: SQLite on a file in a temporary directory, and
 * a real PostgreSQL 15 started for this file (a new database per test). What only one engine has (WAL, a
 * file on disk, several nodes migrating one database at once) is tested after the shared part.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { repoRoot } from '../../scripts/repoRoot.ts';
import { startPostgres, type PostgresInstance } from '../../test/support/postgres.ts';
import { MIGRATIONS as POSTGRES_MIGRATIONS } from './store/migrations.postgres.ts';
import { MIGRATIONS as SQLITE_MIGRATIONS } from './store/migrations.sqlite.ts';
import {
  StaleFenceError,
  StoreError,
  openStore,
  type ActorSnapshotRecord,
  type AgentSeedRecord,
  type Store,
  type StoreEngine,
  type StoreOptions,
  type StoreWrites,
} from './store.ts';

type Row = Record<string, unknown>;

/** What a test needs of an engine beyond the port: new databases, and raw SQL to set up or inspect one. */
interface Harness {
  readonly engine: StoreEngine;
  readonly migrations: readonly string[];
  /** The tables a migrated database holds, by name. */
  readonly tables: readonly string[];
  setup(): Promise<void>;
  teardown(): Promise<void>;
  /** Options that open a new, empty database. */
  freshDatabase(): Promise<StoreOptions>;
  /** Runs SQL on the database outside the store; answers the rows of a query. */
  sql(options: StoreOptions, text: string): Promise<Row[]>;
  schemaVersion(options: StoreOptions): Promise<number>;
  /** Records `version` as the schema's version, as a newer server would have left it. */
  setSchemaVersion(options: StoreOptions, version: number): Promise<void>;
  /** Runs the first `count` migrations by hand, as an older server would have left the database. */
  migrateTo(options: StoreOptions, count: number): Promise<void>;
}

const tablesOfBoth = ['actor_snapshots', 'agents', 'call_events', 'calls', 'request_fences', 'requests', 'revoked_tokens', 'settings', 'telemetry'];

function sqliteHarness(): Harness {
  const dirs: string[] = [];
  const withDb = <T>(options: StoreOptions, use: (db: Database.Database) => T): T => {
    const db = new Database(options.databasePath);
    try {
      return use(db);
    } finally {
      db.close();
    }
  };
  return {
    engine: 'sqlite',
    migrations: SQLITE_MIGRATIONS,
    tables: tablesOfBoth,
    setup: async () => undefined,
    teardown: async () => {
      for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
    },
    freshDatabase: async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'callchart-store-'));
      dirs.push(dir);
      return { databasePath: path.join(dir, 'nested', 'callchart.db') };
    },
    sql: async (options, text) =>
      withDb(options, (db) => {
        const statement = db.prepare(text);
        if (statement.reader) return statement.all() as Row[];
        statement.run();
        return [];
      }),
    schemaVersion: async (options) => withDb(options, (db) => db.pragma('user_version', { simple: true }) as number),
    setSchemaVersion: async (options, version) =>
      withDb(options, (db) => {
        db.pragma(`user_version = ${String(version)}`);
      }),
    migrateTo: async (options, count) => {
      mkdirSync(path.dirname(options.databasePath), { recursive: true });
      withDb(options, (db) => {
        for (const migration of SQLITE_MIGRATIONS.slice(0, count)) db.exec(migration);
        db.pragma(`user_version = ${String(count)}`);
      });
    },
  };
}

function postgresHarness(): Harness {
  let instance: PostgresInstance | undefined;
  const withClient = async <T>(options: StoreOptions, use: (client: pg.Client) => Promise<T>): Promise<T> => {
    const client = new pg.Client({ connectionString: options.databaseUrl });
    client.on('error', () => undefined);
    await client.connect();
    try {
      return await use(client);
    } finally {
      await client.end();
    }
  };
  const sql = async (options: StoreOptions, text: string) => withClient(options, async (client) => (await client.query<Row>(text)).rows);
  return {
    engine: 'postgres',
    migrations: POSTGRES_MIGRATIONS,
    tables: [...tablesOfBoth, 'schema_version'].sort(),
    setup: async () => {
      instance = await startPostgres();
    },
    teardown: async () => {
      await instance?.stop();
    },
    freshDatabase: async () => {
      if (instance === undefined) throw new Error('postgres is not started');
      // The file is never written: a set databaseUrl means Postgres.
      return { databasePath: path.join(tmpdir(), 'unused.db'), databaseUrl: await instance.createDatabase() };
    },
    sql,
    schemaVersion: async (options) =>
      Number((await sql(options, 'SELECT coalesce(max(version), 0) AS version FROM schema_version'))[0]?.version),
    setSchemaVersion: async (options, version) => {
      await sql(options, `INSERT INTO schema_version (version, applied_at) VALUES (${String(version)}, 0)`);
    },
    migrateTo: async (options, count) => {
      await withClient(options, async (client) => {
        await client.query('CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)');
        for (const [index, migration] of POSTGRES_MIGRATIONS.slice(0, count).entries()) {
          await client.query(migration);
          await client.query('INSERT INTO schema_version (version, applied_at) VALUES ($1, 0)', [index + 1]);
        }
      });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Fixtures

const ada: AgentSeedRecord = {
  id: 'ada',
  name: 'Ada Lovelace',
  email: 'Ada@Example.com',
  passwordHash: 'scrypt$hash-ada',
  pools: ['support', 'sales'],
  roles: ['agent'],
};
const grace: AgentSeedRecord = {
  id: 'grace',
  name: 'Grace Hopper',
  email: 'grace@example.com',
  passwordHash: 'scrypt$hash-grace',
  pools: ['support'],
  roles: ['agent'],
};

function newRequest(writes: StoreWrites, id: string, createdAt = 1): void {
  writes.requests.create({ id, visitorId: `v-${id}`, visitorName: 'Vera', pool: 'support', state: 'searching', createdAt });
}

function newCall(writes: StoreWrites, id: string, agentId: string, startedAt: number): void {
  const requestId = `req-${id}`;
  newRequest(writes, requestId, startedAt - 5);
  writes.calls.create({ id, requestId, visitorId: `v-${requestId}`, visitorName: 'Vera', agentId, pool: 'support', state: 'connecting', startedAt });
}

function snapshot(overrides: Partial<ActorSnapshotRecord> = {}): ActorSnapshotRecord {
  return {
    actorId: 'routing:r1',
    kind: 'routing',
    requestId: 'r1',
    callId: null,
    snapshot: { value: 'searching' },
    outbox: [],
    updatedAt: 1,
    ...overrides,
  };
}

const uniqueViolation = /UNIQUE|duplicate key/i;
const foreignKeyViolation = /FOREIGN KEY|foreign key/i;
const checkViolation = /CHECK|check constraint/i;

// ---------------------------------------------------------------------------------------------
// The shared suite

describe.each([sqliteHarness(), postgresHarness()])('store on $engine', (harness) => {
  let options: StoreOptions;
  const opened: Store[] = [];

  async function open(on = options): Promise<Store> {
    const store = await openStore(on);
    opened.push(store);
    return store;
  }

  beforeAll(async () => {
    await harness.setup();
  }, 60_000);
  afterAll(async () => {
    await harness.teardown();
  }, 60_000);
  beforeEach(async () => {
    options = await harness.freshDatabase();
  });
  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close();
  });

  describe('opening and migrations', () => {
    it('creates the schema on a new database, says which engine it is, and keeps it on the next open', async () => {
      const store = await open();
      expect(store.engine).toBe(harness.engine);
      expect(await harness.schemaVersion(options)).toBe(harness.migrations.length);
      const tableQuery =
        harness.engine === 'sqlite'
          ? "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
          : "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name";
      expect((await harness.sql(options, tableQuery)).map((row) => row.name)).toEqual(harness.tables);
      await store.commit((writes) => writes.settings.set('kept', 'yes'));
      await store.close();

      const again = await open();
      expect(await again.settings.get('kept')).toBe('yes');
      expect(await harness.schemaVersion(options)).toBe(harness.migrations.length);
    });

    it('brings a database left at version 1 forward, keeping what it held; old snapshots have an empty outbox', async () => {
      await harness.migrateTo(options, 1);
      await harness.sql(options, `INSERT INTO agents (id, name, email, password_hash, pools, roles) VALUES ('ada', 'Ada', 'ada@example.com', 'h', '[]', '["agent"]')`);
      await harness.sql(options, `INSERT INTO requests (id, visitor_id, visitor_name, pool, state, created_at) VALUES ('r1', 'v', 'Vera', 'support', 'searching', 1)`);
      await harness.sql(options, `INSERT INTO actor_snapshots (actor_id, kind, request_id, call_id, snapshot, updated_at) VALUES ('routing:r1', 'routing', 'r1', NULL, '{"value":"searching"}', 2)`);

      const store = await open();
      expect(await harness.schemaVersion(options)).toBe(harness.migrations.length);
      expect(await store.agents.get('ada')).toMatchObject({ roles: ['agent'], lastAssignedAt: null });
      expect(await store.snapshots.get('routing:r1')).toEqual(snapshot({ updatedAt: 2 }));
      await store.revokedTokens.add({ jti: 'j', expiresAt: 20, revokedAt: 1 });
      expect(await store.revokedTokens.has('j')).toBe(true);
    });

    it('refuses a database written by a newer schema, and leaves it as it was', async () => {
      await (await open()).close();
      await harness.setSchemaVersion(options, 99);
      const refusal = openStore(options);
      await expect(refusal).rejects.toThrow(StoreError);
      await expect(refusal).rejects.toThrow(/version 99, newer than this server's/);
      expect(await harness.schemaVersion(options)).toBe(99);
    });
  });

  describe('settings', () => {
    it('gets, sets, keeps the first value on getOrInsert, and lists by prefix literally', async () => {
      const store = await open();
      expect(await store.settings.get('k')).toBeUndefined();
      expect(await store.settings.getOrInsert('k', 'first')).toBe('first');
      expect(await store.settings.getOrInsert('k', 'second')).toBe('first');
      await store.settings.set('k', 'third');
      expect(await store.settings.get('k')).toBe('third');

      await store.commit((writes) => {
        writes.settings.set('presence.grace', 'away');
        writes.settings.set('presence.ada', 'available');
        writes.settings.set('presence', 'not under the prefix');
        writes.settings.set('presence_x', 'an underscore is not a wildcard');
        writes.settings.set('pre%sence.x', 'a percent is not a wildcard');
      });
      expect([...(await store.settings.withPrefix('presence.'))]).toEqual([
        ['presence.ada', 'available'],
        ['presence.grace', 'away'],
      ]);
      expect([...(await store.settings.withPrefix('pre%'))]).toEqual([['pre%sence.x', 'a percent is not a wildcard']]);
      expect(await store.settings.withPrefix('nothing.')).toEqual(new Map());
    });

    it('gives every one of several concurrent getOrInserts the same first value', async () => {
      const stores = await Promise.all([open(), open(), open()]);
      const values = await Promise.all(stores.map((store, index) => store.settings.getOrInsert('secret', `value-${String(index)}`)));
      expect(new Set(values).size).toBe(1);
      expect(await stores[0]!.settings.get('secret')).toBe(values[0]);
    });
  });

  describe('agents', () => {
    it('round-trips, finds by email case-insensitively, and keeps lastAssignedAt across a reseed', async () => {
      const store = await open();
      await store.agents.seed([ada, grace]);
      expect(await store.agents.get('ada')).toEqual({ ...ada, lastAssignedAt: null });
      expect((await store.agents.findByEmail('  ada@EXAMPLE.com '))?.id).toBe('ada');
      expect(await store.agents.findByEmail('nobody@example.com')).toBeUndefined();
      expect(await store.agents.get('nobody')).toBeUndefined();

      await store.commit((writes) => {
        writes.agents.markAssigned('ada', 5_000);
        // An unknown agent changes nothing and fails nothing.
        writes.agents.markAssigned('nobody', 5_000);
      });
      await store.agents.seed([{ ...ada, name: 'Ada King', pools: ['support'] }, grace]);
      expect(await store.agents.get('ada')).toMatchObject({ name: 'Ada King', pools: ['support'], lastAssignedAt: 5_000 });
      expect((await store.agents.list()).map((agent) => agent.id)).toEqual(['ada', 'grace']);
    });

    it('says whether any account serves a pool, by exact name', async () => {
      const store = await open();
      expect(await store.agents.servesPool('support')).toBe(false);
      await store.agents.seed([ada, grace]);
      expect(await store.agents.servesPool('support')).toBe(true);
      expect(await store.agents.servesPool('sales')).toBe(true);
      expect(await store.agents.servesPool('Sales')).toBe(false);
      expect(await store.agents.servesPool('billing')).toBe(false);
    });

    it('lets several nodes seed the same accounts at the same moment', async () => {
      // Many accounts and several rounds, so the nodes' inserts of one account overlap, as they do when a
      // cluster starts.
      const team = Array.from({ length: 40 }, (_, index) => ({ ...grace, id: `agent-${String(index)}`, email: `agent-${String(index)}@example.com` }));
      const stores = await Promise.all(Array.from({ length: 6 }, () => open()));
      for (let round = 0; round < 5; round++) {
        // Each node in its own order, as nodes with edited copies of the accounts file would.
        await Promise.all(stores.map((store, index) => store.agents.seed([...team.slice(index * 7), ...team.slice(0, index * 7)])));
      }
      expect(await stores[0]!.agents.list()).toHaveLength(team.length);
    });

    it('rejects a second account with the same email, whatever its case, and seeds nothing of that batch', async () => {
      const store = await open();
      await expect(store.agents.seed([grace, { ...ada, email: 'GRACE@example.com' }])).rejects.toThrow(uniqueViolation);
      expect(await store.agents.list()).toEqual([]);
    });

    it('rejects pools that are not a list, writing nothing', async () => {
      const store = await open();
      await expect(store.agents.seed([grace, { ...ada, pools: 'support' as never }])).rejects.toThrow(checkViolation);
      expect(await store.agents.list()).toEqual([]);
    });
  });

  describe('requests and calls', () => {
    it('patches only the fields given, null clears a field, and a missing row changes nothing', async () => {
      const store = await open();
      await store.agents.seed([ada]);
      await store.commit((writes) => newCall(writes, 'c1', 'ada', 1_000));
      expect(await store.calls.get('c1')).toEqual({
        id: 'c1',
        requestId: 'req-c1',
        visitorId: 'v-req-c1',
        visitorName: 'Vera',
        agentId: 'ada',
        agentName: 'Ada Lovelace',
        pool: 'support',
        state: 'connecting',
        startedAt: 1_000,
        connectedAt: null,
        endedAt: null,
        endReason: null,
        totalPauseMs: 0,
      });
      await store.commit((writes) => writes.calls.update('c1', { state: 'active', connectedAt: 1_200 }));
      expect(await store.calls.get('c1')).toMatchObject({ state: 'active', connectedAt: 1_200, endedAt: null, totalPauseMs: 0 });
      await store.commit((writes) => writes.calls.update('c1', { totalPauseMs: 250.6 }));
      expect(await store.calls.get('c1')).toMatchObject({ state: 'active', connectedAt: 1_200, totalPauseMs: 251 });
      await store.commit((writes) => writes.calls.update('c1', { connectedAt: null }));
      expect(await store.calls.get('c1')).toMatchObject({ state: 'active', connectedAt: null });
      await store.commit((writes) => {
        writes.calls.update('missing', { state: 'ended' });
        writes.calls.update('c1', {});
        writes.requests.update('req-c1', { state: 'done', endedAt: 3_000, endReason: 'completed' });
        writes.requests.update('missing', { state: 'done' });
      });
      expect(await store.calls.get('missing')).toBeUndefined();
      expect(await store.requests.get('req-c1')).toEqual({
        id: 'req-c1',
        visitorId: 'v-req-c1',
        visitorName: 'Vera',
        pool: 'support',
        state: 'done',
        createdAt: 995,
        endedAt: 3_000,
        endReason: 'completed',
      });
      expect(await store.requests.get('missing')).toBeUndefined();
    });

    it('dates a connection once: the first markConnected wins', async () => {
      const store = await open();
      await store.agents.seed([ada]);
      await store.commit((writes) => {
        newCall(writes, 'c1', 'ada', 1_000);
        writes.calls.markConnected('c1', 1_100);
        writes.calls.markConnected('c1', 1_050);
      });
      await store.commit((writes) => writes.calls.markConnected('c1', 1_200));
      expect(await store.calls.get('c1')).toMatchObject({ connectedAt: 1_100 });
    });

    it('enforces foreign keys: a call needs an existing request and agent', async () => {
      const store = await open();
      await store.agents.seed([ada]);
      await expect(
        store.commit((writes) =>
          writes.calls.create({ id: 'c1', requestId: 'no-such-request', visitorId: 'v1', visitorName: 'Vera', agentId: 'ada', pool: 'support', state: 'connecting', startedAt: 1 }),
        ),
      ).rejects.toThrow(foreignKeyViolation);
      expect(await store.calls.get('c1')).toBeUndefined();
    });

    it('lists newest first, per agent or for all, with a cursor that breaks ties on the id', async () => {
      const store = await open();
      await store.agents.seed([ada, grace]);
      await store.commit((writes) => {
        newCall(writes, 'c1', 'ada', 1_000);
        newCall(writes, 'c2', 'grace', 2_000);
        newCall(writes, 'c3', 'ada', 3_000);
        newCall(writes, 'c4', 'ada', 3_000);
        newCall(writes, 'c5', 'grace', 4_000);
        // Byte order, whatever the database's locale: 'C' sorts before 'b'.
        newCall(writes, 'b6', 'ada', 5_000);
        newCall(writes, 'C6', 'ada', 5_000);
      });

      const ids = async (page: Promise<{ id: string }[]>) => (await page).map((call) => call.id);
      expect(await ids(store.calls.list({ limit: 10 }))).toEqual(['b6', 'C6', 'c5', 'c4', 'c3', 'c2', 'c1']);
      expect(await ids(store.calls.list({ limit: 10, agentId: 'ada' }))).toEqual(['b6', 'C6', 'c4', 'c3', 'c1']);
      expect(await ids(store.calls.list({ limit: 10, agentId: 'nobody' }))).toEqual([]);
      expect(await ids(store.calls.list({ limit: 2, before: 'c5' }))).toEqual(['c4', 'c3']);
      expect(await ids(store.calls.list({ limit: 2, before: 'c4' }))).toEqual(['c3', 'c2']);
      expect(await ids(store.calls.list({ limit: 2, before: 'c4', agentId: 'ada' }))).toEqual(['c3', 'c1']);
      expect(await ids(store.calls.list({ limit: 1, before: 'b6' }))).toEqual(['C6']);
      expect(await ids(store.calls.list({ limit: 2, before: 'c1' }))).toEqual([]);
      expect(await ids(store.calls.list({ limit: 2, before: 'unknown' }))).toEqual([]);
      expect(await ids(store.calls.list({ limit: 500 }))).toHaveLength(7);
    });

    it('rejects a page size out of range', async () => {
      const store = await open();
      for (const limit of [0, -1, 501, 1.5, Number.NaN]) {
        await expect(store.calls.list({ limit })).rejects.toThrow(RangeError);
      }
    });
  });

  describe('events, telemetry and snapshots', () => {
    it('appends events in order, by call and by request, with any JSON detail', async () => {
      const store = await open();
      await store.agents.seed([ada]);
      await store.commit((writes) => {
        newRequest(writes, 'r1');
        writes.events.append({ requestId: 'r1', actor: 'routing', type: 'agent.rejected', fromState: 'ringing', toState: 'searching', cause: 'rejected', detail: { agentId: 'grace', note: 'a "quoted", comma' }, at: 10 });
        writes.calls.create({ id: 'c1', requestId: 'r1', visitorId: 'v1', visitorName: 'Vera', agentId: 'ada', pool: 'support', state: 'connecting', startedAt: 20 });
        writes.events.append({ requestId: 'r1', callId: 'c1', actor: 'callSession', type: 'call.started', at: 20 });
        writes.events.append({ requestId: 'r1', callId: 'c1', actor: 'server', type: 'call.ended', cause: 'hangup', detail: 'just a string', at: 30 });
        writes.events.append({ requestId: 'r1', callId: 'c1', actor: 'server', type: 'x', detail: [1, null, 2.5], at: 31 });
      });
      const forRequest = await store.events.forRequest('r1');
      expect(forRequest[0]).toEqual({ id: forRequest[0]!.id, callId: null, requestId: 'r1', actor: 'routing', type: 'agent.rejected', fromState: 'ringing', toState: 'searching', cause: 'rejected', detail: { agentId: 'grace', note: 'a "quoted", comma' }, at: 10 });
      expect(forRequest.map((event) => event.type)).toEqual(['agent.rejected', 'call.started', 'call.ended', 'x']);
      const ids = forRequest.map((event) => event.id);
      expect([...ids].sort((a, b) => a - b)).toEqual(ids);
      expect(new Set(ids).size).toBe(4);
      const forCall = await store.events.forCall('c1');
      expect(forCall.map((event) => event.detail)).toEqual([null, 'just a string', [1, null, 2.5]]);
      expect(forCall[0]).toMatchObject({ fromState: null, toState: null, cause: null, detail: null });
      expect(await store.events.forCall('none')).toEqual([]);

      await expect(store.commit((writes) => writes.events.append({ requestId: 'r1', actor: 'robot' as never, type: 'x', at: 1 }))).rejects.toThrow(checkViolation);
      expect(await store.events.forRequest('r1')).toHaveLength(4);
    });

    it('keeps disconnections and attempts apart, and refuses a record of the wrong shape', async () => {
      const store = await open();
      await store.agents.seed([ada]);
      await store.commit((writes) => {
        newCall(writes, 'c1', 'ada', 1);
        writes.telemetry.append({ callId: 'c1', kind: 'disconnection', leg: 'visitor', at: 100, cause: 'media' });
        writes.telemetry.append({ callId: 'c1', kind: 'reconnection-attempt', leg: 'visitor', at: 200, durationMs: 1_499.7, outcome: 'recovered' });
        // A stray field of the other kind is dropped, not stored.
        writes.telemetry.append({ callId: 'c1', kind: 'disconnection', leg: 'agent', at: 300, cause: null, durationMs: 5, outcome: 'failed' } as never);
      });
      const records = await store.telemetry.forCall('c1');
      expect(records).toEqual([
        { id: records[0]!.id, callId: 'c1', kind: 'disconnection', leg: 'visitor', at: 100, cause: 'media' },
        { id: records[1]!.id, callId: 'c1', kind: 'reconnection-attempt', leg: 'visitor', at: 200, durationMs: 1_500, outcome: 'recovered' },
        { id: records[2]!.id, callId: 'c1', kind: 'disconnection', leg: 'agent', at: 300, cause: null },
      ]);
      await expect(store.commit((writes) => writes.telemetry.append({ callId: 'c1', kind: 'disconnection', leg: 'nobody' as never, at: 1, cause: null }))).rejects.toThrow(checkViolation);
      await expect(store.commit((writes) => writes.telemetry.append({ callId: 'c1', kind: 'reconnection-attempt', leg: 'agent', at: 1, durationMs: -1, outcome: 'failed' }))).rejects.toThrow(checkViolation);
      await expect(store.commit((writes) => writes.telemetry.append({ callId: 'missing', kind: 'disconnection', leg: 'agent', at: 1, cause: null }))).rejects.toThrow(foreignKeyViolation);
      expect(await store.telemetry.forCall('c1')).toHaveLength(3);
    });

    it('saves, replaces, lists oldest update first and deletes actor snapshots, with their outbox', async () => {
      const store = await open();
      await store.agents.seed([ada]);
      await store.commit((writes) => {
        newCall(writes, 'c1', 'ada', 1);
        writes.snapshots.save(snapshot({ actorId: 'callSession:c1', kind: 'callSession', requestId: 'req-c1', callId: 'c1', snapshot: { value: 'live' }, updatedAt: 5 }));
        writes.snapshots.save(snapshot({ actorId: 'routing:req-c1', requestId: 'req-c1', snapshot: { value: 'ringing' }, outbox: [{ eid: 'e1', to: 'agent:ada', type: 'ring' }], updatedAt: 3 }));
      });
      await store.commit((writes) =>
        writes.snapshots.save(snapshot({ actorId: 'callSession:c1', kind: 'callSession', requestId: 'req-c1', callId: 'c1', snapshot: { value: 'paused' }, outbox: ['one', 2], updatedAt: 7 })),
      );
      expect((await store.snapshots.all()).map((s) => [s.actorId, s.snapshot, s.outbox])).toEqual([
        ['routing:req-c1', { value: 'ringing' }, [{ eid: 'e1', to: 'agent:ada', type: 'ring' }]],
        ['callSession:c1', { value: 'paused' }, ['one', 2]],
      ]);
      expect(await store.snapshots.get('callSession:c1')).toEqual({ actorId: 'callSession:c1', kind: 'callSession', requestId: 'req-c1', callId: 'c1', snapshot: { value: 'paused' }, outbox: ['one', 2], updatedAt: 7 });
      await store.commit((writes) => {
        writes.snapshots.delete('routing:req-c1');
        writes.snapshots.delete('routing:req-c1');
      });
      expect((await store.snapshots.all()).map((s) => s.actorId)).toEqual(['callSession:c1']);
      expect(await store.snapshots.get('routing:req-c1')).toBeUndefined();
    });
  });

  describe('commit', () => {
    it('lands all of its writes together, in order, or none when one of them fails', async () => {
      const store = await open();
      await store.agents.seed([ada]);
      await expect(
        store.commit((writes) => {
          newRequest(writes, 'r1');
          writes.settings.set('half', 'written');
          writes.snapshots.save(snapshot());
          writes.agents.markAssigned('ada', 9);
          // The request exists only later in the list, so this one fails, and takes the rest with it.
          writes.calls.create({ id: 'c1', requestId: 'r2', visitorId: 'v', visitorName: 'V', agentId: 'ada', pool: 'p', state: 's', startedAt: 1 });
          newRequest(writes, 'r2');
        }),
      ).rejects.toThrow(foreignKeyViolation);
      expect(await store.requests.get('r1')).toBeUndefined();
      expect(await store.settings.get('half')).toBeUndefined();
      expect(await store.snapshots.all()).toEqual([]);
      expect(await store.agents.get('ada')).toMatchObject({ lastAssignedAt: null });

      await store.commit((writes) => {
        newRequest(writes, 'r2');
        writes.calls.create({ id: 'c1', requestId: 'r2', visitorId: 'v', visitorName: 'V', agentId: 'ada', pool: 'p', state: 's', startedAt: 1 });
        writes.settings.set('whole', 'written');
      });
      expect(await store.calls.get('c1')).toMatchObject({ requestId: 'r2' });
      expect(await store.settings.get('whole')).toBe('written');
    });

    it('rejects a write of the same key twice, writing nothing of that commit', async () => {
      const store = await open();
      await store.commit((writes) => newRequest(writes, 'r1'));
      await expect(
        store.commit((writes) => {
          writes.settings.set('before', 'the duplicate');
          newRequest(writes, 'r1');
        }),
      ).rejects.toThrow(uniqueViolation);
      expect(await store.settings.get('before')).toBeUndefined();
    });

    it('rejects JSON it cannot store before writing anything', async () => {
      const store = await open();
      await store.commit((writes) => newRequest(writes, 'r1'));
      const cases: ((writes: StoreWrites) => void)[] = [
        (writes) => writes.snapshots.save(snapshot({ snapshot: undefined })),
        (writes) => writes.snapshots.save(snapshot({ outbox: { not: 'a list' } as never })),
        (writes) => writes.snapshots.save(snapshot({ outbox: undefined as never })),
        (writes) => writes.events.append({ requestId: 'r1', actor: 'server', type: 'x', detail: { size: 10n }, at: 1 }),
      ];
      for (const junk of cases) {
        await expect(
          store.commit((writes) => {
            writes.settings.set('junk', 'written');
            junk(writes);
          }),
        ).rejects.toThrow(TypeError);
      }
      expect(await store.settings.get('junk')).toBeUndefined();
      expect(await store.snapshots.all()).toEqual([]);
      expect(await store.events.forRequest('r1')).toEqual([]);
    });

    it('rejects a fill that is not synchronous, and a write recorded after its commit was gathered', async () => {
      const store = await open();
      let late: StoreWrites | undefined;
      await expect(
        store.commit((async (writes: StoreWrites) => {
          writes.settings.set('async', 'written');
        }) as never),
      ).rejects.toThrow(/synchronously/);
      await store.commit((writes) => {
        late = writes;
      });
      expect(() => late?.settings.set('late', 'written')).toThrow(/after its commit/);
      expect(await store.settings.get('async')).toBeUndefined();
      expect(await store.settings.get('late')).toBeUndefined();
    });

    it('refuses a commit whose fence is older than one seen for the request, whole; equal and newer go through', async () => {
      const store = await open();
      await store.commit((writes) => newRequest(writes, 'r1'), { requestId: 'r1', token: 5 });

      const stale = store.commit(
        (writes) => {
          writes.requests.update('r1', { state: 'stale' });
          writes.settings.set('stale', 'written');
        },
        { requestId: 'r1', token: 4 },
      );
      await expect(stale).rejects.toThrow(StaleFenceError);
      await expect(stale).rejects.toMatchObject({ requestId: 'r1', token: 4, newest: 5 });
      expect(await store.requests.get('r1')).toMatchObject({ state: 'searching' });
      expect(await store.settings.get('stale')).toBeUndefined();

      await store.commit((writes) => writes.requests.update('r1', { state: 'same owner' }), { requestId: 'r1', token: 5 });
      expect(await store.requests.get('r1')).toMatchObject({ state: 'same owner' });
      await store.commit((writes) => writes.requests.update('r1', { state: 'new owner' }), { requestId: 'r1', token: 9 });
      expect(await store.requests.get('r1')).toMatchObject({ state: 'new owner' });
      // The previous owner is stale now, even with a commit that writes nothing.
      await expect(store.commit(() => undefined, { requestId: 'r1', token: 5 })).rejects.toMatchObject({ newest: 9 });
      // Fences are per request.
      await store.commit((writes) => newRequest(writes, 'r2'), { requestId: 'r2', token: 1 });
      expect(await store.requests.get('r2')).toBeDefined();
    });

    it('takes a fence from an empty commit: ownership can be claimed before anything is written', async () => {
      const store = await open();
      await store.commit(() => undefined, { requestId: 'r1', token: 3 });
      await expect(store.commit((writes) => newRequest(writes, 'r1'), { requestId: 'r1', token: 2 })).rejects.toThrow(StaleFenceError);
      expect(await store.requests.get('r1')).toBeUndefined();
    });

    it('rejects a fence that is not a request id and a whole token, writing nothing', async () => {
      const store = await open();
      for (const fence of [
        { requestId: 'r1', token: Number.NaN },
        { requestId: 'r1', token: -1 },
        { requestId: 'r1', token: 1.5 },
        { requestId: 'r1', token: '7' as never },
        { requestId: '', token: 1 },
      ]) {
        await expect(store.commit((writes) => newRequest(writes, 'r1'), fence)).rejects.toThrow(TypeError);
      }
      expect(await store.requests.get('r1')).toBeUndefined();
    });
  });

  describe('revoked tokens', () => {
    it('remembers a revoked jti until purged past its expiry; revoking twice changes nothing', async () => {
      const store = await open();
      expect(await store.revokedTokens.has('jti-1')).toBe(false);
      await store.revokedTokens.add({ jti: 'jti-1', expiresAt: 5_000, revokedAt: 1_000 });
      await store.revokedTokens.add({ jti: 'jti-1', expiresAt: 9_999, revokedAt: 1_500 });
      await store.revokedTokens.add({ jti: 'jti-2', expiresAt: 8_000, revokedAt: 1_000 });
      expect(await store.revokedTokens.has('jti-1')).toBe(true);
      expect(await store.revokedTokens.purge(4_999)).toBe(0);
      expect(await store.revokedTokens.purge(5_000)).toBe(1);
      expect(await store.revokedTokens.has('jti-1')).toBe(false);
      expect(await store.revokedTokens.has('jti-2')).toBe(true);
    });

    it('sweeps rows already expired whenever another token is revoked', async () => {
      const store = await open();
      await store.revokedTokens.add({ jti: 'old', expiresAt: 2_000, revokedAt: 1_000 });
      await store.revokedTokens.add({ jti: 'new', expiresAt: 90_000, revokedAt: 3_000 });
      expect(await store.revokedTokens.has('old')).toBe(false);
      expect(await store.revokedTokens.has('new')).toBe(true);
    });
  });

  describe('ping and close', () => {
    it('answers a ping while open; once closed, calls reject and a second close is harmless', async () => {
      const store = await open();
      await expect(store.ping()).resolves.toBeUndefined();
      await store.close();
      await expect(store.ping()).rejects.toThrow();
      await expect(store.settings.get('k')).rejects.toThrow();
      await expect(store.commit((writes) => writes.settings.set('k', 'v'))).rejects.toThrow();
      await store.close();
    });
  });
});

// ---------------------------------------------------------------------------------------------
// SQLite only

describe('SQLite file', () => {
  let dir: string;
  let dbPath: string;
  const opened: Store[] = [];

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'callchart-store-'));
    dbPath = path.join(dir, 'nested', 'callchart.db');
  });
  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is created with its directory, in WAL mode, and names its file as its path', async () => {
    const store = await openStore({ databasePath: dbPath });
    opened.push(store);
    expect(existsSync(dbPath)).toBe(true);
    expect(store.path).toBe(dbPath);
    await store.close();
    // WAL is recorded in the file itself, so a fresh connection sees it.
    const raw = new Database(dbPath, { readonly: true });
    try {
      expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    } finally {
      raw.close();
    }
  });

  it('keeps a commit that resolved even when the process is killed with SIGKILL right after', () => {
    const storeUrl = pathToFileURL(fileURLToPath(new URL('./store.ts', import.meta.url))).href;
    const script = path.join(dir, 'write-then-die.mts');
    writeFileSync(
      script,
      `import { openStore } from ${JSON.stringify(storeUrl)};
const store = await openStore({ databasePath: process.argv[2] });
await store.commit((writes) => {
  writes.requests.create({ id: 'req-killed', visitorId: 'v', visitorName: 'Vera', pool: 'support', state: 'searching', createdAt: 42 });
  writes.snapshots.save({ actorId: 'routing:req-killed', kind: 'routing', requestId: 'req-killed', callId: null, snapshot: { value: 'searching' }, outbox: [{ eid: 'e1' }], updatedAt: 43 });
});
process.kill(process.pid, 'SIGKILL');
`,
    );
    const child = spawnSync(process.execPath, ['--import', 'tsx', script, dbPath], { cwd: repoRoot, encoding: 'utf8', timeout: 30_000 });
    expect(child.stderr).not.toMatch(/Error/);
    expect(child.signal).toBe('SIGKILL');

    const raw = new Database(dbPath, { readonly: true });
    try {
      expect(raw.prepare('SELECT state, created_at FROM requests WHERE id = ?').get('req-killed')).toEqual({ state: 'searching', created_at: 42 });
      expect(raw.prepare('SELECT outbox FROM actor_snapshots WHERE actor_id = ?').get('routing:req-killed')).toEqual({ outbox: '[{"eid":"e1"}]' });
    } finally {
      raw.close();
    }
  });

  it('opens :memory: too', async () => {
    const store = await openStore({ databasePath: ':memory:' });
    opened.push(store);
    await store.commit((writes) => writes.settings.set('k', 'v'));
    expect(await store.settings.get('k')).toBe('v');
    expect(store.path).toBe(':memory:');
  });
});

// ---------------------------------------------------------------------------------------------
// Postgres only

describe('Postgres cluster database', () => {
  let instance: PostgresInstance;
  const opened: Store[] = [];

  async function open(url: string): Promise<Store> {
    const store = await openStore({ databasePath: 'unused.db', databaseUrl: url });
    opened.push(store);
    return store;
  }

  beforeAll(async () => {
    instance = await startPostgres();
  }, 60_000);
  afterAll(async () => {
    await instance.stop();
  }, 60_000);
  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close();
  });

  it('migrates exactly once when several nodes open a new database at the same moment', async () => {
    const url = await instance.createDatabase();
    const stores = await Promise.all(Array.from({ length: 6 }, () => open(url)));
    expect(stores).toHaveLength(6);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const { rows } = await client.query<{ version: number; xmin: string }>('SELECT version, xmin::text AS xmin FROM schema_version ORDER BY version');
      expect(rows.map((row) => row.version)).toEqual(POSTGRES_MIGRATIONS.map((_, index) => index + 1));
      // Every version was recorded by the same transaction: one node ran them all.
      expect(new Set(rows.map((row) => row.xmin)).size).toBe(1);
    } finally {
      await client.end();
    }
    await stores[0]!.commit((writes) => writes.settings.set('k', 'from node 0'));
    expect(await stores[5]!.settings.get('k')).toBe('from node 0');
  });

  it('shows its URL without the password', async () => {
    const url = new URL(await instance.createDatabase());
    url.password = 'hunter2';
    const store = await open(url.href);
    expect(store.engine).toBe('postgres');
    expect(store.path).not.toContain('hunter2');
    expect(store.path).toBe(`postgres://postgres@127.0.0.1:${String(instance.port)}/${url.pathname.slice(1)}`);
  });

  it('refuses a URL that is not a postgres URL, and a database it cannot reach, with a StoreError', async () => {
    await expect(openStore({ databasePath: 'unused.db', databaseUrl: 'not a url' })).rejects.toThrow(StoreError);
    await expect(openStore({ databasePath: 'unused.db', databaseUrl: 'mysql://127.0.0.1/x' })).rejects.toThrow(/postgres:\/\//);
    const nowhere = `postgres://postgres@127.0.0.1:${String(instance.port)}/no_such_database`;
    await expect(openStore({ databasePath: 'unused.db', databaseUrl: nowhere })).rejects.toThrow(/Cannot open the store at/);
  });

  it('keeps the fence whole under commits racing from several nodes', async () => {
    const url = await instance.createDatabase();
    const [first, second] = await Promise.all([open(url), open(url)]);
    await first!.commit((writes) => newRequest(writes, 'r1'), { requestId: 'r1', token: 1 });
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, index) =>
        (index % 2 === 0 ? first! : second!).commit((writes) => writes.events.append({ requestId: 'r1', actor: 'server', type: `t${String(index + 2)}`, at: index }), {
          requestId: 'r1',
          token: index + 2,
        }),
      ),
    );
    const landed = results.flatMap((result, index) => (result.status === 'fulfilled' ? [index + 2] : []));
    for (const result of results) if (result.status === 'rejected') expect(result.reason).toBeInstanceOf(StaleFenceError);
    // Whatever the order they ran in, the newest token landed, and no commit landed after a newer one.
    expect(landed).toContain(21);
    const written = (await first!.events.forRequest('r1')).map((event) => Number(event.type.slice(1)));
    expect(written).toEqual(landed);
  });

  /** Pings until one answers, as a caller retrying would; false if none does within about 2 s. */
  async function answersAgain(store: Store): Promise<boolean> {
    for (let attempt = 0; attempt < 20; attempt++) {
      if (await store.ping().then(() => true, () => false)) return true;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return false;
  }

  it('rejects while Postgres is down, without crashing, and serves again once it is back, keeping every commit', async () => {
    const url = await instance.createDatabase();
    const store = await open(url);
    await store.commit((writes) => writes.settings.set('before', 'the crash'));
    await instance.kill();
    await expect(store.commit((writes) => writes.settings.set('during', 'the outage'))).rejects.toThrow();
    await expect(store.ping()).rejects.toThrow();
    await expect(store.settings.get('before')).rejects.toThrow();
    await instance.restart();
    // The pool replaces connections that died: the first call after the restart may still meet one.
    expect(await answersAgain(store)).toBe(true);
    expect(await store.settings.get('before')).toBe('the crash');
    expect(await store.settings.get('during')).toBeUndefined();
    await store.commit((writes) => writes.settings.set('after', 'the crash'));

    // A clean restart ends every connection the pool holds; the store gets over that too.
    await instance.restart();
    expect(await answersAgain(store)).toBe(true);
    await store.commit((writes) => writes.settings.set('after', 'the restart'));
    expect(await store.settings.get('after')).toBe('the restart');
  });
});
