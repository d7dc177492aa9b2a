import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { repoRoot } from '../../scripts/repoRoot.ts';
import { MIGRATIONS } from './store.migrations.ts';
import { openStore, type AgentSeedRecord, type Store } from './store.ts';

let dir: string;
let dbPath: string;
const opened: Store[] = [];

function open(file = dbPath): Store {
  const store = openStore(file);
  opened.push(store);
  return store;
}

function closeAll(): void {
  for (const store of opened.splice(0)) {
    try {
      store.close();
    } catch {
      // already closed by the test
    }
  }
}

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'callchart-store-'));
  dbPath = path.join(dir, 'nested', 'callchart.db');
});

afterEach(() => {
  closeAll();
  rmSync(dir, { recursive: true, force: true });
});

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

function seedCall(store: Store, id: string, agentId: string, startedAt: number): void {
  const requestId = `req-${id}`;
  store.requests.create({ id: requestId, visitorId: `v-${id}`, visitorName: 'Vera', pool: 'support', state: 'searching', createdAt: startedAt - 5 });
  store.calls.create({
    id,
    requestId,
    visitorId: `v-${id}`,
    visitorName: 'Vera',
    agentId,
    pool: 'support',
    state: 'connecting',
    startedAt,
  });
}

describe('openStore', () => {
  it('creates the directory and the file, in WAL mode with foreign keys on', () => {
    const store = open();
    expect(existsSync(dbPath)).toBe(true);
    store.close();
    // WAL is recorded in the file itself, so a fresh connection sees it.
    const raw = new Database(dbPath, { readonly: true });
    try {
      expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
      const tables = raw
        .prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .all()
        .map((row) => row.name);
      expect(tables).toEqual(['actor_snapshots', 'agents', 'call_events', 'calls', 'requests', 'revoked_tokens', 'settings', 'telemetry']);
    } finally {
      raw.close();
    }
  });

  it('enforces foreign keys: a call needs an existing request and agent', () => {
    const store = open();
    store.agents.seed([ada]);
    expect(() =>
      store.calls.create({
        id: 'c1',
        requestId: 'no-such-request',
        visitorId: 'v1',
        visitorName: 'Vera',
        agentId: 'ada',
        pool: 'support',
        state: 'connecting',
        startedAt: 1,
      }),
    ).toThrow(/FOREIGN KEY/);
    expect(store.calls.get('c1')).toBeUndefined();
  });

  it('refuses a database written by a newer schema', () => {
    open().close();
    const raw = new Database(dbPath);
    raw.pragma('user_version = 99');
    raw.close();
    expect(() => openStore(dbPath)).toThrow(/newer than this server/);
  });
});

describe('durability', () => {
  it('keeps everything across closing and reopening the file', () => {
    const first = open();
    first.settings.set('greeting', 'hello');
    first.agents.seed([ada, grace]);
    seedCall(first, 'call-1', 'ada', 1_000);
    first.calls.update('call-1', { state: 'ended', connectedAt: 1_100, endedAt: 9_000, endReason: 'hangup', totalPauseMs: 1_234 });
    first.events.append({ requestId: 'req-call-1', callId: 'call-1', actor: 'callSession', type: 'leg.socketLost', fromState: 'live', toState: 'paused', cause: 'socket', detail: { leg: 'agent' }, at: 2_000 });
    first.telemetry.append({ callId: 'call-1', kind: 'disconnection', leg: 'agent', at: 2_000, cause: 'socket' });
    first.snapshots.save({ actorId: 'routing:req-call-1', kind: 'routing', requestId: 'req-call-1', callId: null, snapshot: { value: 'connected', context: { n: 1 } }, updatedAt: 2_001 });
    first.close();

    const second = open();
    expect(second.settings.get('greeting')).toBe('hello');
    expect(second.agents.list().map((agent) => agent.id)).toEqual(['ada', 'grace']);
    expect(second.calls.get('call-1')).toMatchObject({ state: 'ended', connectedAt: 1_100, endedAt: 9_000, endReason: 'hangup', totalPauseMs: 1_234, agentName: 'Ada Lovelace' });
    expect(second.events.forCall('call-1')).toHaveLength(1);
    expect(second.telemetry.forCall('call-1')).toEqual([{ id: 1, callId: 'call-1', kind: 'disconnection', leg: 'agent', at: 2_000, cause: 'socket' }]);
    expect(second.snapshots.all()).toEqual([
      { actorId: 'routing:req-call-1', kind: 'routing', requestId: 'req-call-1', callId: null, snapshot: { value: 'connected', context: { n: 1 } }, updatedAt: 2_001 },
    ]);
  });

  it('keeps a write that returned even when the process is killed with SIGKILL right after', () => {
    const storeUrl = pathToFileURL(fileURLToPath(new URL('./store.ts', import.meta.url))).href;
    const script = path.join(dir, 'write-then-die.ts');
    writeFileSync(
      script,
      `import { openStore } from ${JSON.stringify(storeUrl)};
const store = openStore(process.argv[2]);
store.requests.create({ id: 'req-killed', visitorId: 'v', visitorName: 'Vera', pool: 'support', state: 'searching', createdAt: 42 });
store.snapshots.save({ actorId: 'routing:req-killed', kind: 'routing', requestId: 'req-killed', callId: null, snapshot: { value: 'searching' }, updatedAt: 43 });
process.kill(process.pid, 'SIGKILL');
`,
    );
    const child = spawnSync(process.execPath, ['--import', 'tsx', script, dbPath], { cwd: repoRoot, encoding: 'utf8', timeout: 30_000 });
    expect(child.stderr).not.toMatch(/Error/);
    expect(child.signal).toBe('SIGKILL');

    const store = open();
    expect(store.requests.get('req-killed')).toMatchObject({ state: 'searching', createdAt: 42 });
    expect(store.snapshots.get('routing:req-killed')?.snapshot).toEqual({ value: 'searching' });
  });
});

describe('settings', () => {
  it('getOrInsert keeps the first value', () => {
    const store = open();
    expect(store.settings.get('k')).toBeUndefined();
    expect(store.settings.getOrInsert('k', 'first')).toBe('first');
    expect(store.settings.getOrInsert('k', 'second')).toBe('first');
    store.settings.set('k', 'third');
    expect(store.settings.get('k')).toBe('third');
  });
});

describe('agents', () => {
  it('round-trips, finds by email case-insensitively, and keeps lastAssignedAt across a reseed', () => {
    const store = open();
    store.agents.seed([ada, grace]);
    expect(store.agents.get('ada')).toEqual({ ...ada, lastAssignedAt: null });
    expect(store.agents.findByEmail('  ada@EXAMPLE.com ')?.id).toBe('ada');
    expect(store.agents.findByEmail('nobody@example.com')).toBeUndefined();

    expect(store.agents.markAssigned('ada', 5_000)).toBe(true);
    expect(store.agents.markAssigned('nobody', 5_000)).toBe(false);
    store.agents.seed([{ ...ada, name: 'Ada King', pools: ['support'] }, grace]);
    expect(store.agents.get('ada')).toMatchObject({ name: 'Ada King', pools: ['support'], lastAssignedAt: 5_000 });
    expect(store.agents.list()).toHaveLength(2);
  });

  it('says whether any account serves a pool, by exact name', () => {
    const store = open();
    expect(store.agents.servesPool('support')).toBe(false);
    store.agents.seed([ada, grace]);
    expect(store.agents.servesPool('support')).toBe(true);
    expect(store.agents.servesPool('sales')).toBe(true);
    expect(store.agents.servesPool('Sales')).toBe(false);
    expect(store.agents.servesPool('billing')).toBe(false);
  });

  it('rejects a second account with the same email, whatever its case, and seeds nothing of that batch', () => {
    const store = open();
    expect(() => store.agents.seed([grace, { ...ada, email: 'GRACE@example.com' }])).toThrow(/UNIQUE/);
    expect(store.agents.list()).toEqual([]);
  });
});

describe('requests and calls', () => {
  it('patches only the fields given, and null clears a field', () => {
    const store = open();
    store.agents.seed([ada]);
    seedCall(store, 'c1', 'ada', 1_000);
    expect(store.calls.update('c1', { state: 'active', connectedAt: 1_200 })).toMatchObject({ state: 'active', connectedAt: 1_200, endedAt: null, totalPauseMs: 0 });
    expect(store.calls.update('c1', { totalPauseMs: 250.6 })).toMatchObject({ state: 'active', connectedAt: 1_200, totalPauseMs: 251 });
    expect(store.calls.update('c1', { connectedAt: null })).toMatchObject({ state: 'active', connectedAt: null });
    expect(store.calls.update('missing', { state: 'ended' })).toBeUndefined();

    expect(store.requests.update('req-c1', { state: 'done', endedAt: 3_000, endReason: 'completed' })).toEqual({
      id: 'req-c1',
      visitorId: 'v-c1',
      visitorName: 'Vera',
      pool: 'support',
      state: 'done',
      createdAt: 995,
      endedAt: 3_000,
      endReason: 'completed',
    });
    expect(store.requests.update('missing', { state: 'done' })).toBeUndefined();
    expect(() => store.requests.create({ id: 'req-c1', visitorId: 'v', visitorName: 'V', pool: 'p', state: 's', createdAt: 1 })).toThrow(/UNIQUE|PRIMARY/);
  });

  it('lists newest first, per agent or for all, with a cursor that breaks ties on the id', () => {
    const store = open();
    store.agents.seed([ada, grace]);
    seedCall(store, 'c1', 'ada', 1_000);
    seedCall(store, 'c2', 'grace', 2_000);
    seedCall(store, 'c3', 'ada', 3_000);
    seedCall(store, 'c4', 'ada', 3_000);
    seedCall(store, 'c5', 'grace', 4_000);

    const ids = (calls: { id: string }[]) => calls.map((call) => call.id);
    expect(ids(store.calls.list({ limit: 10 }))).toEqual(['c5', 'c4', 'c3', 'c2', 'c1']);
    expect(ids(store.calls.list({ limit: 10, agentId: 'ada' }))).toEqual(['c4', 'c3', 'c1']);
    expect(ids(store.calls.list({ limit: 2 }))).toEqual(['c5', 'c4']);
    expect(ids(store.calls.list({ limit: 2, before: 'c4' }))).toEqual(['c3', 'c2']);
    expect(ids(store.calls.list({ limit: 2, before: 'c4', agentId: 'ada' }))).toEqual(['c3', 'c1']);
    expect(ids(store.calls.list({ limit: 2, before: 'c1' }))).toEqual([]);
    expect(ids(store.calls.list({ limit: 2, before: 'unknown' }))).toEqual([]);
    expect(() => store.calls.list({ limit: 0 })).toThrow(RangeError);
  });
});

describe('events, telemetry and snapshots', () => {
  it('appends events in order, by call and by request, with JSON detail', () => {
    const store = open();
    store.agents.seed([ada]);
    store.requests.create({ id: 'r1', visitorId: 'v1', visitorName: 'Vera', pool: 'support', state: 'searching', createdAt: 1 });
    const ring = store.events.append({ requestId: 'r1', actor: 'routing', type: 'agent.rejected', fromState: 'ringing', toState: 'searching', cause: 'rejected', detail: { agentId: 'grace', note: 'a "quoted", comma' }, at: 10 });
    expect(ring).toEqual({ id: 1, callId: null, requestId: 'r1', actor: 'routing', type: 'agent.rejected', fromState: 'ringing', toState: 'searching', cause: 'rejected', detail: { agentId: 'grace', note: 'a "quoted", comma' }, at: 10 });
    store.calls.create({ id: 'c1', requestId: 'r1', visitorId: 'v1', visitorName: 'Vera', agentId: 'ada', pool: 'support', state: 'connecting', startedAt: 20 });
    store.events.append({ requestId: 'r1', callId: 'c1', actor: 'callSession', type: 'call.started', at: 20 });
    store.events.append({ requestId: 'r1', callId: 'c1', actor: 'server', type: 'call.ended', cause: 'hangup', at: 30 });

    expect(store.events.forCall('c1').map((event) => event.type)).toEqual(['call.started', 'call.ended']);
    expect(store.events.forCall('c1')[0]).toMatchObject({ fromState: null, toState: null, cause: null, detail: null });
    expect(store.events.forRequest('r1').map((event) => event.id)).toEqual([1, 2, 3]);
    expect(() => store.events.append({ requestId: 'r1', actor: 'robot' as never, type: 'x', at: 1 })).toThrow(/CHECK/);
    expect(store.events.forRequest('r1')).toHaveLength(3);
  });

  it('keeps disconnections and attempts apart, and refuses a record of the wrong shape', () => {
    const store = open();
    store.agents.seed([ada]);
    seedCall(store, 'c1', 'ada', 1);
    store.telemetry.append({ callId: 'c1', kind: 'disconnection', leg: 'visitor', at: 100, cause: 'media' });
    const attempt = store.telemetry.append({ callId: 'c1', kind: 'reconnection-attempt', leg: 'visitor', at: 200, durationMs: 1_499.7, outcome: 'recovered' });
    expect(attempt).toEqual({ id: 2, callId: 'c1', kind: 'reconnection-attempt', leg: 'visitor', at: 200, durationMs: 1_500, outcome: 'recovered' });
    expect(store.telemetry.forCall('c1').map((record) => record.kind)).toEqual(['disconnection', 'reconnection-attempt']);
    expect(() => store.telemetry.append({ callId: 'c1', kind: 'disconnection', leg: 'nobody' as never, at: 1, cause: null })).toThrow(/CHECK/);
    expect(() => store.telemetry.append({ callId: 'missing', kind: 'disconnection', leg: 'agent', at: 1, cause: null })).toThrow(/FOREIGN KEY/);
    expect(store.telemetry.forCall('c1')).toHaveLength(2);
  });

  it('saves, replaces, lists and deletes actor snapshots', () => {
    const store = open();
    store.agents.seed([ada]);
    seedCall(store, 'c1', 'ada', 1);
    store.snapshots.save({ actorId: 'callSession:c1', kind: 'callSession', requestId: 'req-c1', callId: 'c1', snapshot: { value: 'live' }, updatedAt: 5 });
    store.snapshots.save({ actorId: 'routing:req-c1', kind: 'routing', requestId: 'req-c1', callId: null, snapshot: { value: 'ringing' }, updatedAt: 3 });
    store.snapshots.save({ actorId: 'callSession:c1', kind: 'callSession', requestId: 'req-c1', callId: 'c1', snapshot: { value: 'paused' }, updatedAt: 7 });
    expect(store.snapshots.all().map((s) => [s.actorId, s.snapshot])).toEqual([
      ['routing:req-c1', { value: 'ringing' }],
      ['callSession:c1', { value: 'paused' }],
    ]);
    expect(store.snapshots.delete('routing:req-c1')).toBe(true);
    expect(store.snapshots.delete('routing:req-c1')).toBe(false);
    expect(store.snapshots.all().map((s) => s.actorId)).toEqual(['callSession:c1']);
    expect(() => store.snapshots.save({ actorId: 'x', kind: 'routing', requestId: 'req-c1', callId: null, snapshot: undefined, updatedAt: 1 })).toThrow(/JSON/);
  });
});

describe('transaction', () => {
  it('commits everything together, or nothing when the function throws', () => {
    const store = open();
    expect(() =>
      store.transaction(() => {
        store.requests.create({ id: 'r1', visitorId: 'v', visitorName: 'V', pool: 'p', state: 's', createdAt: 1 });
        store.settings.set('half', 'written');
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(store.requests.get('r1')).toBeUndefined();
    expect(store.settings.get('half')).toBeUndefined();

    const result = store.transaction(() => {
      store.requests.create({ id: 'r2', visitorId: 'v', visitorName: 'V', pool: 'p', state: 's', createdAt: 1 });
      store.settings.set('whole', 'written');
      return 'done';
    });
    expect(result).toBe('done');
    expect(store.requests.get('r2')).toBeDefined();
    expect(store.settings.get('whole')).toBe('written');
  });
});

describe('revoked tokens', () => {
  it('remembers a revoked jti until purged past its expiry; revoking twice changes nothing', () => {
    const store = open();
    expect(store.revokedTokens.has('jti-1')).toBe(false);
    store.revokedTokens.add({ jti: 'jti-1', expiresAt: 5_000, revokedAt: 1_000 });
    store.revokedTokens.add({ jti: 'jti-1', expiresAt: 9_999, revokedAt: 1_500 });
    store.revokedTokens.add({ jti: 'jti-2', expiresAt: 8_000, revokedAt: 1_000 });
    expect(store.revokedTokens.has('jti-1')).toBe(true);
    expect(store.revokedTokens.purge(4_999)).toBe(0);
    expect(store.revokedTokens.purge(5_000)).toBe(1);
    expect(store.revokedTokens.has('jti-1')).toBe(false);
    expect(store.revokedTokens.has('jti-2')).toBe(true);
  });

  it('sweeps rows already expired whenever another token is revoked', () => {
    const store = open();
    store.revokedTokens.add({ jti: 'old', expiresAt: 2_000, revokedAt: 1_000 });
    store.revokedTokens.add({ jti: 'new', expiresAt: 90_000, revokedAt: 3_000 });
    expect(store.revokedTokens.has('old')).toBe(false);
    expect(store.revokedTokens.has('new')).toBe(true);
  });

  it('comes to a database written before revocations by migrating it, keeping what it held', () => {
    mkdirSync(path.dirname(dbPath), { recursive: true });
    const raw = new Database(dbPath);
    raw.exec(MIGRATIONS[0]!);
    raw.pragma('user_version = 1');
    raw.prepare("INSERT INTO agents (id, name, email, password_hash, pools, roles) VALUES ('ada', 'Ada', 'ada@example.com', 'h', '[]', '[\"agent\"]')").run();
    raw.close();
    const store = open();
    expect(store.agents.get('ada')).toMatchObject({ roles: ['agent'] });
    store.revokedTokens.add({ jti: 'j', expiresAt: 2, revokedAt: 1 });
    expect(store.revokedTokens.has('j')).toBe(true);
    store.close();
    const check = new Database(dbPath, { readonly: true });
    try {
      expect(check.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    } finally {
      check.close();
    }
  });
});
