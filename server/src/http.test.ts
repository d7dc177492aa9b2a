import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { parse as parseCsv } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedAgents, type AgentSeed } from './agents.ts';
import { createAuth, storeTokenRegistry, type Auth } from './auth.ts';
import { loadConfig } from './config.ts';
import { createHttpApp, MAX_BODY_BYTES, type HttpDeps } from './http.ts';
import { createLogger, type Logger } from './logger.ts';
import { openApiDocument } from './openapi.ts';
import { openStore, type Store, type StoreWrites } from './store.ts';
import { StoreUnavailableError } from './storeReads.ts';
import { SwitchboardError } from './switchboard/entries.ts';

const SECRET = 'http-test-secret-that-is-long-enough';
const VISITOR_TTL_S = 900;
const TRICKY_NAME = 'O\'Brien, "Bobby"';

const seeds: AgentSeed[] = [
  { id: 'ada', name: 'Ada Lovelace', email: 'ada@example.com', password: 'demo-ada', pools: ['support', 'sales'], roles: ['agent'] },
  { id: 'grace', name: 'Grace Hopper', email: 'grace@example.com', password: 'demo-grace', pools: ['support'], roles: ['agent'] },
  { id: 'inspector', name: 'Call Inspector', email: 'inspector@example.com', password: 'demo-inspector', pools: [], roles: ['inspector'] },
];

let dir: string;
let store: Store;
let auth: Auth;
let server: Server;
let base: string;
const logLines: string[] = [];
const tokens: Record<string, string> = {};

function seedCall(writes: StoreWrites, id: string, agentId: string, startedAt: number, visitorName = 'Vera'): void {
  const requestId = `req-${id}`;
  writes.requests.create({ id: requestId, visitorId: `visitor-${id}`, visitorName, pool: 'support', state: 'connected', createdAt: startedAt - 100 });
  writes.calls.create({ id, requestId, visitorId: `visitor-${id}`, visitorName, agentId, pool: 'support', state: 'active', startedAt });
}

async function api(pathname: string, init: RequestInit & { token?: string } = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (init.token !== undefined) headers.set('Authorization', `Bearer ${init.token}`);
  return fetch(`${base}${pathname}`, { ...init, headers });
}

function post(pathname: string, body: unknown): Promise<Response> {
  return api(pathname, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
}

async function errorOf(response: Response): Promise<{ code: string; message: string; field?: string }> {
  const body = (await response.json()) as { error: { code: string; message: string; field?: string } };
  expect(Object.keys(body)).toEqual(['error']);
  return body.error;
}

async function login(email: string, password: string): Promise<string> {
  const response = await post('/api/agents/login', { email, password });
  expect(response.status).toBe(200);
  return ((await response.json()) as { token: string }).token;
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'callchart-http-'));
  store = await openStore({ databasePath: path.join(dir, 'callchart.db') });
  await seedAgents(store, seeds);
  auth = createAuth({ secret: SECRET, agentTtlSeconds: 3600, visitorTtlSeconds: VISITOR_TTL_S });
  const logger = createLogger(
    'info',
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        logLines.push(chunk.toString());
        done();
      },
    }),
  );
  const app = createHttpApp({ store, auth, config: loadConfig({ DATABASE_PATH: ':memory:' }), logger });
  server = await new Promise<Server>((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  base = `http://127.0.0.1:${String((server.address() as AddressInfo).port)}`;

  await store.commit((writes) => {
    seedCall(writes, 'c1', 'ada', 1_000);
    seedCall(writes, 'c2', 'grace', 2_000);
    seedCall(writes, 'c3', 'ada', 3_000, TRICKY_NAME);
    writes.calls.update('c3', { state: 'ended', connectedAt: 3_050, endedAt: 60_000, endReason: 'hangup', totalPauseMs: 4_321 });
    writes.events.append({ requestId: 'req-c3', actor: 'routing', type: 'agent.accepted', fromState: 'ringing', toState: 'connected', at: 2_990 });
    writes.events.append({ requestId: 'req-c3', callId: 'c3', actor: 'callSession', type: 'leg.socketLost', fromState: 'live', toState: 'paused', cause: 'socket', detail: { leg: 'visitor' }, at: 10_000 });
    writes.telemetry.append({ callId: 'c3', kind: 'disconnection', leg: 'visitor', at: 10_000, cause: 'socket' });
    writes.telemetry.append({ callId: 'c3', kind: 'reconnection-attempt', leg: 'visitor', at: 10_500, durationMs: 1_800, outcome: 'failed' });
    writes.telemetry.append({ callId: 'c3', kind: 'reconnection-attempt', leg: 'visitor', at: 12_400, durationMs: 1_900, outcome: 'recovered' });
    writes.telemetry.append({ callId: 'c3', kind: 'disconnection', leg: 'agent', at: 20_000, cause: 'media, "ICE" failed' });
  });

  tokens.ada = await login('ada@example.com', 'demo-ada');
  tokens.grace = await login('grace@example.com', 'demo-grace');
  tokens.inspector = await login('inspector@example.com', 'demo-inspector');
});

afterAll(async () => {
  await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('GET /healthz', () => {
  it('answers ok', async () => {
    const response = await api('/healthz');
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ ok: true });
  });
});

describe('POST /api/agents/login', () => {
  it('returns a token for the agent and the agent without its password hash', async () => {
    const response = await post('/api/agents/login', { email: 'ADA@example.com', password: 'demo-ada' });
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const body = (await response.json()) as { token: string; expiresAt: number; agent: unknown };
    expect(body.agent).toEqual({ id: 'ada', name: 'Ada Lovelace', pools: ['support', 'sales'], roles: ['agent'] });
    expect(JSON.stringify(body)).not.toMatch(/scrypt|passwordHash/);
    expect(await auth.verifyToken(body.token)).toEqual({ kind: 'agent', agentId: 'ada', name: 'Ada Lovelace', pools: ['support', 'sales'], roles: ['agent'] });
    expect(logLines.join('')).not.toContain('demo-ada');
  });

  it('answers a wrong password and an unknown email with the same 401', async () => {
    const wrong = await post('/api/agents/login', { email: 'ada@example.com', password: 'demo-grace' });
    const unknown = await post('/api/agents/login', { email: 'nobody@example.com', password: 'demo-ada' });
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toBe('Bearer');
    const wrongError = await errorOf(wrong);
    expect(wrongError).toEqual({ code: 'unauthorized', message: 'The email or password is incorrect.' });
    expect(await errorOf(unknown)).toEqual(wrongError);
  });
});

describe('POST /api/visitor-session', () => {
  it('issues a short-lived visitor token', async () => {
    const before = Date.now();
    const response = await post('/api/visitor-session', { name: 'Vera' });
    expect(response.status).toBe(201);
    const body = (await response.json()) as { token: string; visitorId: string; name: string; expiresAt: number };
    expect(body.visitorId).toMatch(/^visitor-[0-9a-f-]{36}$/);
    expect(body.name).toBe('Vera');
    expect(body.expiresAt).toBeGreaterThan(before);
    expect(body.expiresAt).toBeLessThanOrEqual(Date.now() + VISITOR_TTL_S * 1000);
    expect(await auth.verifyToken(body.token)).toEqual({ kind: 'visitor', visitorId: body.visitorId, name: 'Vera' });
  });

  it('works without a body, and gives each visitor its own id', async () => {
    const first = (await (await api('/api/visitor-session', { method: 'POST' })).json()) as { visitorId: string; name: string };
    const second = (await (await post('/api/visitor-session', {})).json()) as { visitorId: string };
    expect(first.name).toBe('Visitor');
    expect(first.visitorId).not.toBe(second.visitorId);
  });
});

describe('GET /api/calls', () => {
  const ids = async (response: Response) => ((await response.json()) as { calls: { id: string }[] }).calls.map((call) => call.id);

  it('shows an agent only the calls it took part in, newest first', async () => {
    const response = await api('/api/calls', { token: tokens.ada });
    expect(response.status).toBe(200);
    expect(await ids(response)).toEqual(['c3', 'c1']);
    expect(await ids(await api('/api/calls', { token: tokens.grace }))).toEqual(['c2']);
  });

  it('shows an inspector every call', async () => {
    expect(await ids(await api('/api/calls', { token: tokens.inspector }))).toEqual(['c3', 'c2', 'c1']);
  });

  it('pages with limit and before', async () => {
    const first = (await (await api('/api/calls?limit=2', { token: tokens.inspector })).json()) as { calls: { id: string }[]; next: string | null };
    expect(first.calls.map((call) => call.id)).toEqual(['c3', 'c2']);
    expect(first.next).toBe('c2');
    const second = (await (await api(`/api/calls?limit=2&before=${first.next!}`, { token: tokens.inspector })).json()) as { calls: { id: string }[]; next: string | null };
    expect(second.calls.map((call) => call.id)).toEqual(['c1']);
    expect(second.next).toBeNull();
  });

  it('refuses a visitor token with 403', async () => {
    const visitor = await auth.issueVisitorToken({ visitorId: 'visitor-x', name: 'Vera' });
    const response = await api('/api/calls', { token: visitor.token });
    expect(response.status).toBe(403);
    expect((await errorOf(response)).code).toBe('forbidden');
  });

  it('refuses a missing, tampered or expired token with 401', async () => {
    const missing = await api('/api/calls');
    expect(missing.status).toBe(401);
    expect((await errorOf(missing)).code).toBe('unauthorized');
    const tampered = `${tokens.ada!.slice(0, -4)}AAAA`;
    expect((await api('/api/calls', { token: tampered })).status).toBe(401);
    const stale = createAuth({ secret: SECRET, agentTtlSeconds: 1, visitorTtlSeconds: 1, now: () => Date.now() - 60_000 });
    const expired = await stale.issueAgentToken({ id: 'inspector', name: 'Call Inspector', pools: [], roles: ['inspector'] });
    expect((await api('/api/calls', { token: expired.token })).status).toBe(401);
  });

  it('refuses a bad limit, naming it', async () => {
    for (const limit of ['0', '101', 'ten']) {
      const response = await api(`/api/calls?limit=${limit}`, { token: tokens.ada });
      expect(response.status).toBe(400);
      expect(await errorOf(response)).toMatchObject({ code: 'invalid-payload', field: 'limit' });
    }
  });

  it('is strict about its query, as about bodies: an unknown or repeated parameter is refused, naming it', async () => {
    const unknown = await api('/api/calls?limit=2&foo=1', { token: tokens.ada });
    expect(unknown.status).toBe(400);
    expect(await errorOf(unknown)).toEqual({ code: 'invalid-payload', message: 'Field "foo" is not an allowed field.', field: 'foo' });
    const repeated = await api('/api/calls?limit=2&limit=3', { token: tokens.ada });
    expect(repeated.status).toBe(400);
    expect(await errorOf(repeated)).toMatchObject({ code: 'invalid-payload', field: 'limit' });
    const exported = await api('/api/calls/c3/export?format=csv&x=1', { token: tokens.ada });
    expect(exported.status).toBe(400);
    expect(await errorOf(exported)).toMatchObject({ code: 'invalid-payload', field: 'x' });
  });
});

describe('GET /api/calls/:id', () => {
  it('returns the call with its events and telemetry', async () => {
    const response = await api('/api/calls/c3', { token: tokens.ada });
    expect(response.status).toBe(200);
    const body = (await response.json()) as Record<string, unknown>;
    expect(body.call).toEqual({
      id: 'c3',
      requestId: 'req-c3',
      visitorId: 'visitor-c3',
      visitorName: TRICKY_NAME,
      agentId: 'ada',
      agentName: 'Ada Lovelace',
      pool: 'support',
      state: 'ended',
      startedAt: 3_000,
      connectedAt: 3_050,
      endedAt: 60_000,
      endReason: 'hangup',
      totalPauseMs: 4_321,
    });
    expect(body.events).toEqual([
      expect.objectContaining({ callId: 'c3', actor: 'callSession', type: 'leg.socketLost', cause: 'socket', detail: { leg: 'visitor' }, at: 10_000 }),
    ]);
    expect(body.telemetry).toEqual({
      disconnections: [
        { leg: 'visitor', at: 10_000, cause: 'socket' },
        { leg: 'agent', at: 20_000, cause: 'media, "ICE" failed' },
      ],
      reconnectionAttempts: [
        { leg: 'visitor', at: 10_500, durationMs: 1_800, outcome: 'failed' },
        { leg: 'visitor', at: 12_400, durationMs: 1_900, outcome: 'recovered' },
      ],
      totalPauseMs: 4_321,
    });
  });

  it("answers 404 for another agent's call, and an inspector sees it", async () => {
    const other = await api('/api/calls/c3', { token: tokens.grace });
    expect(other.status).toBe(404);
    const missing = await api('/api/calls/nope', { token: tokens.grace });
    expect(await errorOf(other)).toEqual(await errorOf(missing));
    expect((await api('/api/calls/c3', { token: tokens.inspector })).status).toBe(200);
    expect((await api('/api/calls/%20bad%20id', { token: tokens.inspector })).status).toBe(404);
  });
});

describe('GET /api/calls/:id/export', () => {
  it('downloads JSON with the call and its telemetry', async () => {
    const response = await api('/api/calls/c3/export?format=json', { token: tokens.ada });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-disposition')).toMatch(/^attachment; filename="?call-c3\.json"?$/);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    const exported = (await response.json()) as Record<string, unknown>;
    const detail = (await (await api('/api/calls/c3', { token: tokens.ada })).json()) as Record<string, unknown>;
    expect(exported).toEqual({ call: detail.call, telemetry: detail.telemetry, events: detail.events });
  });

  it('downloads CSV with a header and one properly quoted row per telemetry record', async () => {
    const response = await api('/api/calls/c3/export?format=csv', { token: tokens.inspector });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-disposition')).toMatch(/^attachment; filename="?call-c3\.csv"?$/);
    expect(response.headers.get('content-type')).toMatch(/^text\/csv/);
    const text = await response.text();
    expect(text.split('\r\n')[0]).toBe('call_id,visitor_name,agent_name,kind,leg,at,duration_ms,outcome,cause,total_pause_ms');
    const rows = parseCsv(text, { columns: true, record_delimiter: '\r\n' }) as Record<string, string>[];
    const common = { call_id: 'c3', visitor_name: TRICKY_NAME, agent_name: 'Ada Lovelace', total_pause_ms: '4321' };
    expect(rows).toEqual([
      { ...common, kind: 'disconnection', leg: 'visitor', at: new Date(10_000).toISOString(), duration_ms: '', outcome: '', cause: 'socket' },
      { ...common, kind: 'reconnection-attempt', leg: 'visitor', at: new Date(10_500).toISOString(), duration_ms: '1800', outcome: 'failed', cause: '' },
      { ...common, kind: 'reconnection-attempt', leg: 'visitor', at: new Date(12_400).toISOString(), duration_ms: '1900', outcome: 'recovered', cause: '' },
      { ...common, kind: 'disconnection', leg: 'agent', at: new Date(20_000).toISOString(), duration_ms: '', outcome: '', cause: 'media, "ICE" failed' },
    ]);
  });

  it('defaults to JSON, refuses an unknown format, and hides other agents\' calls', async () => {
    const plain = await api('/api/calls/c1/export', { token: tokens.ada });
    expect(plain.headers.get('content-disposition')).toMatch(/^attachment; filename="?call-c1\.json"?$/);
    const xml = await api('/api/calls/c3/export?format=xml', { token: tokens.ada });
    expect(xml.status).toBe(400);
    expect(await errorOf(xml)).toEqual({ code: 'invalid-payload', message: 'Field "format" must be one of json, csv.', field: 'format' });
    expect((await api('/api/calls/c3/export?format=csv', { token: tokens.grace })).status).toBe(404);
  });
});

describe('malformed requests', () => {
  // Everything the API could have written to; a refused request must leave all of it as it was.
  async function everything(): Promise<string> {
    const ids = ['c1', 'c2', 'c3'];
    return JSON.stringify({
      agents: await store.agents.list(),
      calls: await store.calls.list({ limit: 500 }),
      events: await Promise.all(ids.map((id) => store.events.forCall(id))),
      telemetry: await Promise.all(ids.map((id) => store.telemetry.forCall(id))),
      snapshots: await store.snapshots.all(),
      secret: (await store.settings.get('auth.secret')) ?? null,
    });
  }

  it.each([
    ['a missing field', { password: 'demo-ada' }, 'email', 'Field "email" is required.'],
    ['a wrong type', { email: 'ada@example.com', password: 12345678 }, 'password', 'Field "password" must be a string.'],
    ['an empty field', { email: '', password: 'demo-ada' }, 'email', 'Field "email" must not be empty.'],
    ['an unknown field', { email: 'ada@example.com', password: 'demo-ada', admin: true }, 'admin', 'Field "admin" is not an allowed field.'],
    ['an oversized field', { email: 'ada@example.com', password: 'x'.repeat(2_000) }, 'password', 'Field "password" must be at most 1024 characters.'],
  ])('login with %s gets 400 naming the field', async (_case, body, field, message) => {
    const before = await everything();
    const response = await post('/api/agents/login', body);
    expect(response.status).toBe(400);
    expect(await errorOf(response)).toEqual({ code: 'invalid-payload', message, field });
    expect(await everything()).toBe(before);
  });

  it('a visitor name that is too long or has control characters gets 400 naming the field', async () => {
    for (const name of ['n'.repeat(81), 'Vera\nFake line', 42]) {
      const response = await post('/api/visitor-session', { name });
      expect(response.status).toBe(400);
      expect(await errorOf(response)).toMatchObject({ code: 'invalid-payload', field: 'name' });
    }
  });

  it('a body over the limit gets 413 and changes nothing', async () => {
    const before = await everything();
    const response = await post('/api/agents/login', { email: 'ada@example.com', password: 'p'.repeat(MAX_BODY_BYTES) });
    expect(response.status).toBe(413);
    expect(await errorOf(response)).toEqual({ code: 'payload-too-large', message: `The body must be at most ${String(MAX_BODY_BYTES)} bytes.` });
    expect(await everything()).toBe(before);
  });

  it('broken JSON gets 400, a body that is not JSON gets 415, and a JSON array is not an object', async () => {
    const broken = await post('/api/agents/login', '{"email": ');
    expect(broken.status).toBe(400);
    expect((await errorOf(broken)).code).toBe('invalid-payload');
    const text = await api('/api/agents/login', { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: 'email=ada' });
    expect(text.status).toBe(415);
    expect((await errorOf(text)).code).toBe('unsupported-media-type');
    const array = await post('/api/agents/login', '[]');
    expect(array.status).toBe(400);
    expect(await errorOf(array)).toEqual({ code: 'invalid-payload', message: 'The body must be an object.' });
  });

  it('an unknown endpoint gets a JSON 404', async () => {
    const response = await api('/api/nothing-here');
    expect(response.status).toBe(404);
    expect((await errorOf(response)).code).toBe('not-found');
  });
});

describe('a store that cannot answer', () => {
  const config = loadConfig({ DATABASE_PATH: ':memory:' });
  const downLog: string[] = [];
  const downLogger: Logger = createLogger(
    'info',
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        downLog.push(chunk.toString());
        done();
      },
    }),
  );
  const servers: Server[] = [];
  let downDir: string;

  async function serve(deps: Omit<HttpDeps, 'config' | 'logger'>): Promise<string> {
    const app = createHttpApp({ ...deps, config, logger: downLogger });
    const listening = await new Promise<Server>((resolve) => {
      const started = app.listen(0, '127.0.0.1', () => resolve(started));
    });
    servers.push(listening);
    return `http://127.0.0.1:${String((listening.address() as AddressInfo).port)}`;
  }

  const call = (url: string, init: RequestInit & { token?: string } = {}) => {
    const headers = new Headers(init.headers);
    if (init.token !== undefined) headers.set('Authorization', `Bearer ${init.token}`);
    return fetch(url, { ...init, headers });
  };
  const loginAt = (url: string) =>
    call(`${url}/api/agents/login`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ email: 'ada@example.com', password: 'demo-ada' }) });

  async function expectUnavailable(response: Response, route: { path: string; method: string }): Promise<void> {
    expect(response.status).toBe(503);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await errorOf(response)).toEqual({ code: 'store-unavailable', message: 'The server cannot reach its database right now; try again in a moment.' });
    // The document promises what the server answers.
    const paths = openApiDocument().paths as Record<string, Record<string, { responses: Record<string, unknown> }>>;
    expect(paths[route.path]?.[route.method.toLowerCase()]?.responses['503'], `${route.method} ${route.path} documents its 503`).toBeDefined();
  }

  beforeAll(() => {
    downDir = mkdtempSync(path.join(tmpdir(), 'callchart-http-down-'));
  });
  afterAll(async () => {
    await Promise.all(servers.map((listening) => new Promise<void>((resolve) => listening.close(() => resolve()))));
    rmSync(downDir, { recursive: true, force: true });
  });

  it('answers 503 store-unavailable when its reads fail (a real SQLite store, closed), and keeps serving', async () => {
    const down = await openStore({ databasePath: path.join(downDir, 'closed.db') });
    await seedAgents(down, seeds);
    const registry = storeTokenRegistry(down);
    await registry.purged;
    const checked = createAuth({ secret: SECRET, agentTtlSeconds: 3600, visitorTtlSeconds: VISITOR_TTL_S, registry });
    const unchecked = createAuth({ secret: SECRET, agentTtlSeconds: 3600, visitorTtlSeconds: VISITOR_TTL_S });
    const agent = (await checked.issueAgentToken({ id: 'ada', name: 'Ada Lovelace', pools: ['support'], roles: ['agent'] })).token;
    const visitor = (await checked.issueVisitorToken({ visitorId: 'visitor-down', name: 'Vera' })).token;
    const notReady = async () => {
      await down.ping();
      return null;
    };
    // One server checks tokens against the store's revocations, the other by signature only, so the
    // history's own reads are reached too.
    const withRegistry = await serve({ store: down, auth: checked, notReady });
    const withoutRegistry = await serve({ store: down, auth: unchecked, notReady });
    expect((await call(`${withRegistry}/readyz`)).status).toBe(200);
    expect((await call(`${withoutRegistry}/api/calls`, { token: agent })).status).toBe(200);

    await down.close();
    downLog.length = 0;

    await expectUnavailable(await loginAt(withRegistry), { method: 'POST', path: '/api/agents/login' });
    // Fail closed: a token that cannot be checked against the revocations is refused, as unavailable rather than as a bad token.
    for (const pathname of ['/api/calls', '/api/calls/c1', '/api/calls/c1/export?format=csv']) {
      const route = pathname.startsWith('/api/calls/c1/export') ? '/api/calls/{id}/export' : pathname === '/api/calls' ? '/api/calls' : '/api/calls/{id}';
      await expectUnavailable(await call(`${withRegistry}${pathname}`, { token: agent }), { method: 'GET', path: route });
      await expectUnavailable(await call(`${withoutRegistry}${pathname}`, { token: agent }), { method: 'GET', path: route });
    }
    const cancel = await call(`${withRegistry}/api/visitor-session/cancel`, {
      method: 'POST',
      headers: { 'Content-Type': 'text/plain' },
      body: JSON.stringify({ token: visitor, requestId: 'req-down' }),
    });
    await expectUnavailable(cancel, { method: 'POST', path: '/api/visitor-session/cancel' });

    const ready = await call(`${withRegistry}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({ ready: false, reason: 'store' });

    // Nothing crashed: the process still answers, and what needs no store still works.
    expect((await call(`${withRegistry}/healthz`)).status).toBe(200);
    expect((await call(`${withRegistry}/api/visitor-session`, { method: 'POST' })).status).toBe(201);
    // Logged as the store's trouble, with its cause, and not as a failure of the server's own.
    const lines = downLog.map((line) => JSON.parse(line) as { level: number; msg: string; err?: { message?: string } });
    expect(lines.filter((line) => line.msg === 'request refused: store unavailable').length).toBeGreaterThanOrEqual(8);
    expect(lines.find((line) => line.msg === 'request refused: store unavailable')?.err?.message).toEqual(expect.any(String));
    expect(lines.filter((line) => line.msg === 'request failed')).toEqual([]);
  });

  it('answers 503 within its deadline when the store never answers (a stalled store, faked: reads that never settle)', async () => {
    const never = () => new Promise<never>(() => {});
    // Every read of the real store's sections hangs; the rest of the store is the real one.
    const stalled = new Proxy(store, {
      get(target, key, receiver) {
        const value: unknown = Reflect.get(target, key, receiver);
        if (typeof key !== 'string' || !['agents', 'calls', 'events', 'telemetry', 'settings'].includes(key)) return value;
        return new Proxy(value as object, { get: () => never });
      },
    });
    const url = await serve({ store: stalled, auth, storeDeadlineMs: 100, notReady: never });
    await expectUnavailable(await loginAt(url), { method: 'POST', path: '/api/agents/login' });
    await expectUnavailable(await call(`${url}/api/calls`, { token: tokens.ada }), { method: 'GET', path: '/api/calls' });
    await expectUnavailable(await call(`${url}/api/calls/c3`, { token: tokens.ada }), { method: 'GET', path: '/api/calls/{id}' });
    const ready = await call(`${url}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({ ready: false, reason: 'store' });
    // The same store, answering: the deadline refuses only what is late.
    expect((await api('/api/calls/c3', { token: tokens.ada })).status).toBe(200);
  });
});

describe('POST /api/visitor-session/cancel, answered once the cancel was taken (the switchboard\'s answers faked; cluster-edges has the real cluster)', () => {
  const config = loadConfig({ DATABASE_PATH: ':memory:' });
  const servers: Server[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((listening) => new Promise<void>((resolve) => listening.close(() => resolve()))));
  });

  async function serve(cancelRequest: NonNullable<HttpDeps['cancelRequest']>): Promise<string> {
    const app = createHttpApp({ store, auth, config, logger: createLogger('silent'), cancelRequest });
    const listening = await new Promise<Server>((resolve) => {
      const started = app.listen(0, '127.0.0.1', () => resolve(started));
    });
    servers.push(listening);
    return `http://127.0.0.1:${String((listening.address() as AddressInfo).port)}`;
  }

  async function cancelAt(url: string): Promise<Response> {
    const { token } = await auth.issueVisitorToken({ visitorId: 'visitor-cancel', name: 'Vera' });
    return fetch(`${url}/api/visitor-session/cancel`, { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: JSON.stringify({ token, requestId: 'req-1' }) });
  }

  it('waits for a cancel that takes a while, and answers 204 only once it was taken', async () => {
    let taken = false;
    const url = await serve(async () => {
      await new Promise((resolve) => setTimeout(resolve, 300));
      taken = true;
    });
    const response = await cancelAt(url);
    expect(taken).toBe(true);
    expect(response.status).toBe(204);
  });

  it.each([
    ['unavailable', 503, 'unavailable'],
    ['not-found', 404, 'not-found'],
    ['forbidden', 403, 'forbidden'],
  ] as const)('answers a refusal that comes later (%s) as %i %s, with its message', async (refusal, status, code) => {
    const message = `Refused as ${refusal}.`;
    const url = await serve(async () => {
      await new Promise((resolve) => setTimeout(resolve, 50));
      throw new SwitchboardError(refusal, message);
    });
    const response = await cancelAt(url);
    expect(response.status).toBe(status);
    expect(await errorOf(response)).toEqual({ code, message });
  });

  it('answers a store that failed under the cancel as 503 store-unavailable, and anything else as 500', async () => {
    const storeDown = await serve(() => Promise.reject(new StoreUnavailableError({ cause: new Error('gone') })));
    const storeReply = await cancelAt(storeDown);
    expect(storeReply.status).toBe(503);
    expect((await errorOf(storeReply)).code).toBe('store-unavailable');
    const broken = await serve(() => Promise.reject(new Error('the owner of req-1 failed to run cancel')));
    const brokenReply = await cancelAt(broken);
    expect(brokenReply.status).toBe(500);
    expect((await errorOf(brokenReply)).code).toBe('internal');
  });
});
