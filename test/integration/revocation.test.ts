/**
 * Logout revokes, on a real server with a real SQLite file. Every socket of the session that logged out (the
 * same token) is cut off: whatever it sends is `unauthorized`, and nothing more reaches it, even once the
 * agent logs in again elsewhere. The token itself is on the revocation list in the store, so the HTTP API and
 * both handshakes refuse it. Tokens for accounts that do not exist or issued from the future are refused, and
 * an account without the agent role never acts as one.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import Database from 'better-sqlite3';
import { SignJWT, decodeJwt } from 'jose';
import { io as ioClient } from 'socket.io-client';
import { afterEach, describe, expect, it } from 'vitest';
import {
  DEMO,
  TestClient,
  agentToken,
  closeClientsThenServer,
  connectFailure,
  getJson,
  sleep,
  startTestServer,
  visitorToken,
  type TestServer,
} from '../support/server.ts';
import { createLogger } from '../../server/src/logger.ts';

// Nothing here may be decided by a timer firing on a slow machine.
const CALM = {
  RING_TIMEOUT_MS: '60000',
  AGENT_GRACE_MS: '60000',
  MAX_QUEUE_WAIT_MS: '60000',
  RECONNECTION_TIMEOUT_MS: '60000',
  RESUME_WINDOW_MS: '60000',
};
/** Long enough for a stray emit to cross loopback. */
const SETTLE_MS = 200;
const SECRET = 'revocation-tests-secret-that-is-long-enough';

let t: TestServer | null = null;
const opened: { close(): unknown }[] = [];
const cleanups: (() => void)[] = [];

afterEach(async () => {
  await closeClientsThenServer(opened, t);
  t = null;
  for (const cleanup of cleanups.splice(0)) cleanup();
});

async function connect(token: string): Promise<TestClient> {
  const client = await TestClient.connect(t!.url, token);
  opened.push(client);
  return client;
}

const statusOf = (agentId: string) => t!.server.switchboard.presence.view().find((agent) => agent.id === agentId)?.status;

function expectError(reply: unknown, code: string, message?: RegExp): void {
  expect(reply).toMatchObject({ ok: false, error: { code, message: expect.any(String) } });
  if (message) expect((reply as { error: { message: string } }).error.message).toMatch(message);
}

/** Every event a socket may send, each with a payload that would pass validation. */
function everyAgentEvent(resumeToken: string): [string, unknown][] {
  return [
    ['agent.presence', { status: 'available' }],
    ['agent.presence', { status: 'away' }],
    ['agent.accept', { requestId: 'req_unknown' }],
    ['agent.reject', { requestId: 'req_unknown' }],
    ['agent.logout', {}],
    ['session.ping', {}],
    ['session.resume', { resumeToken }],
    ['call.hangup', { callId: 'call_unknown' }],
    ['visitor.request', { pool: 'support' }],
  ];
}

/** A JSON log line per entry, as the server writes them at debug. */
function capturedLogger() {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger('debug', sink), refusals: () => lines.filter((line) => line.msg === 'socket refused') };
}

/** An agent token signed with the server's own secret, with whatever subject and issue time the test needs. */
async function signedAgentToken(claims: { sub: string; iatOffsetSeconds?: number }): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ name: 'Someone', pools: ['support'], roles: ['agent'] })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer('callchart')
    .setAudience('agent')
    .setSubject(claims.sub)
    .setIssuedAt(now + (claims.iatOffsetSeconds ?? 0))
    .setExpirationTime(now + 600)
    .setJti(randomUUID())
    .sign(new TextEncoder().encode(SECRET));
}

async function login(email: string, password: string): Promise<string> {
  const response = await fetch(`${t!.url}/api/agents/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password }),
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as { token: string }).token;
}

function inspectFailure(url: string, token: string): Promise<string> {
  const socket = ioClient(`${url}/inspect`, { auth: { token }, reconnection: false, transports: ['websocket'], forceNew: true });
  opened.push(socket);
  return new Promise<string>((resolve, reject) => {
    socket.once('connect_error', (error) => resolve(error.message));
    socket.once('connect', () => reject(new Error('connected, but should have been refused')));
  });
}

describe('agent.logout', () => {
  it('cuts off every socket of the session: both tabs on the token are refused everything, and hear nothing once the agent is back elsewhere', async () => {
    t = await startTestServer(CALM);
    const token = await agentToken(t.url, 'grace');
    const tab = await connect(token);
    const twin = await connect(token);
    await expect.poll(() => statusOf('grace')).toBe('available');

    expect(await tab.emit('agent.logout', {})).toEqual({ ok: true });
    expect(statusOf('grace')).toBeUndefined();
    for (const socket of [tab, twin]) {
      for (const [event, payload] of everyAgentEvent(tab.resumeToken!)) {
        expectError(await socket.emitRaw(event, payload), 'unauthorized', /logged out/);
      }
      // Cut off, not closed: the client decides when to go, and is told why each time it tries something.
      expect(socket.socket.connected).toBe(true);
    }
    expect(statusOf('grace')).toBeUndefined();
    tab.events.splice(0);
    twin.events.splice(0);

    // Grace logs in again from another device, and a visitor calls the pool only she serves right now.
    const again = await connect(await agentToken(t.url, 'grace'));
    await expect.poll(() => statusOf('grace')).toBe('available');
    const visitor = await connect((await visitorToken(t.url, 'Vic Visitor')).token);
    const { requestId } = (await visitor.emit('visitor.request', { pool: 'support' })) as { requestId: string };
    await again.next('agent.ring', (ring) => ring.requestId === requestId);
    expectError(await tab.emit('agent.accept', { requestId }), 'unauthorized');
    expectError(await twin.emit('agent.accept', { requestId }), 'unauthorized');
    expect(t.server.switchboard.routingSnapshot(requestId)?.value).toBe('ringing');

    expect(await again.emit('agent.accept', { requestId })).toEqual({ ok: true });
    const { callId } = await again.next('call.accepted');
    await visitor.next('call.accepted', (accepted) => accepted.callId === callId);
    await sleep(SETTLE_MS);
    expect(tab.events, 'the logged-out tab hears nothing').toEqual([]);
    expect(twin.events, 'nor does its twin').toEqual([]);
    expect(await again.emit('call.hangup', { callId })).toEqual({ ok: true });
  });

  it('revokes the token in the store: the HTTP API and both handshakes refuse it, until it would have expired anyway', async () => {
    t = await startTestServer(CALM);
    const token = await agentToken(t.url, 'ada');
    expect((await getJson(`${t.url}/api/calls`, token)).status).toBe(200);
    const agent = await connect(token);
    expect(await agent.emit('agent.logout', {})).toEqual({ ok: true });

    expect(await connectFailure(t.url, { token })).toBe('unauthorized');
    const api = await getJson<{ error: { code: string } }>(`${t.url}/api/calls`, token);
    expect(api.status).toBe(401);
    expect(api.body.error.code).toBe('unauthorized');

    const { jti, exp } = decodeJwt(token);
    const raw = new Database(t.databasePath, { readonly: true });
    try {
      const row = raw.prepare('SELECT jti, expires_at, revoked_at FROM revoked_tokens WHERE jti = ?').get(jti) as
        | { jti: string; expires_at: number; revoked_at: number }
        | undefined;
      expect(row).toMatchObject({ jti, expires_at: exp! * 1000 });
      expect(row!.revoked_at).toBeLessThanOrEqual(Date.now());
    } finally {
      raw.close();
    }

    // A restart reads the list back from the file: the token stays refused.
    await t.restart();
    expect(await connectFailure(t.url, { token })).toBe('unauthorized');
    expect((await getJson(`${t.url}/api/calls`, token)).status).toBe(401);
    // A fresh login is a fresh session.
    const fresh = await agentToken(t.url, 'ada');
    expect((await getJson(`${t.url}/api/calls`, fresh)).status).toBe(200);
  });

  it("closes the inspector's open /inspect socket and refuses the token there once the inspector has logged out", async () => {
    t = await startTestServer(CALM);
    const token = await agentToken(t.url, 'inspector');
    const watching = ioClient(`${t.url}/inspect`, { auth: { token }, reconnection: false, transports: ['websocket'], forceNew: true });
    opened.push(watching);
    await new Promise<void>((resolve, reject) => {
      watching.once('connect', () => resolve());
      watching.once('connect_error', reject);
    });
    const closed = new Promise<string>((resolve) => watching.once('disconnect', resolve));
    const main = await connect(token);
    expect(await main.emit('agent.logout', {})).toEqual({ ok: true });
    // The inspector page already open on the token sees nothing more either.
    expect(await closed).toBe('io server disconnect');
    expect(await inspectFailure(t.url, token)).toBe('unauthorized');
    // Another inspector login still opens it.
    const other = ioClient(`${t.url}/inspect`, { auth: { token: await agentToken(t.url, 'inspector') }, reconnection: false, transports: ['websocket'], forceNew: true });
    opened.push(other);
    await new Promise<void>((resolve, reject) => {
      other.once('connect', () => resolve());
      other.once('connect_error', reject);
    });
  });

  it("leaves the agent's other login online and rung: only the session that logged out is cut off", async () => {
    t = await startTestServer(CALM);
    const leaving = await connect(await agentToken(t.url, 'grace'));
    const staying = await connect(await agentToken(t.url, 'grace'));
    await expect.poll(() => statusOf('grace')).toBe('available');
    expect(await leaving.emit('agent.logout', {})).toEqual({ ok: true });
    expect(statusOf('grace')).toBe('available');
    expect(await staying.emit('agent.presence', { status: 'available' })).toEqual({ ok: true });

    const visitor = await connect((await visitorToken(t.url, 'Val Visitor')).token);
    const { requestId } = (await visitor.emit('visitor.request', { pool: 'support' })) as { requestId: string };
    await staying.next('agent.ring', (ring) => ring.requestId === requestId);
    expectError(await leaving.emit('agent.accept', { requestId }), 'unauthorized');
    expect(await staying.emit('agent.reject', { requestId })).toEqual({ ok: true });
    await sleep(SETTLE_MS);
    expect(leaving.saw('agent.ring')).toBe(false);

    // The cut-off socket closing is no loss for grace; her other login's closing is.
    leaving.close();
    await sleep(SETTLE_MS);
    expect(statusOf('grace')).toBe('available');
    expect(t.server.connections.snapshotOf({ kind: 'agent', id: 'grace' })?.context).toMatchObject({ revoked: [] });
    expect(await visitor.emit('visitor.cancel', { requestId })).toEqual({ ok: true });
  });
});

describe('tokens refused before any socket opens', () => {
  it('refuses a token for an agent that does not exist, one issued more than 30 s ahead, and a revoked one, logging each reason', async () => {
    const { logger, refusals } = capturedLogger();
    t = await startTestServer({ ...CALM, AUTH_SECRET: SECRET }, { logger });

    // Signed with the server's own secret, so the refusal is the claim and nothing else.
    const nobody = await signedAgentToken({ sub: 'nobody' });
    const future = await signedAgentToken({ sub: 'grace', iatOffsetSeconds: 60 });
    const slightlyAhead = await signedAgentToken({ sub: 'grace', iatOffsetSeconds: 20 });
    for (const [why, token] of [['no such agent', nobody], ['issued in the future', future]] as const) {
      expect(await connectFailure(t.url, { token }), why).toBe('unauthorized');
      expect((await getJson(`${t.url}/api/calls`, token)).status, why).toBe(401);
    }
    // Within the allowed skew: another server's clock a little early is not a forgery.
    expect((await connect(slightlyAhead)).socket.connected).toBe(true);
    expect((await getJson(`${t.url}/api/calls`, slightlyAhead)).status).toBe(200);

    const loggedOut = await agentToken(t.url, 'ada');
    expect(await (await connect(loggedOut)).emit('agent.logout', {})).toEqual({ ok: true });
    expect(await connectFailure(t.url, { token: loggedOut })).toBe('unauthorized');

    expect(refusals()).toEqual([
      expect.objectContaining({ code: 'unauthorized', reason: 'token-invalid', why: 'no such agent', address: expect.stringMatching(/127\.0\.0\.1/) }),
      expect.objectContaining({ code: 'unauthorized', reason: 'token-invalid', why: 'issued in the future' }),
      expect.objectContaining({ code: 'unauthorized', reason: 'token-invalid', why: 'revoked' }),
    ]);
  });
});

describe('an account without the agent role on the main namespace', () => {
  it('is in no presence, is never rung, and is refused agent events with forbidden', async () => {
    // An inspector serving the support pool on paper: the role, not the pools, keeps it from taking calls.
    const dir = mkdtempSync(path.join(tmpdir(), 'callchart-roles-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const agentsFile = path.join(dir, 'agents.json');
    const olive = { id: 'olive', name: 'Olive Observer', email: 'olive@example.com', password: 'demo-olive', pools: ['support'], roles: ['inspector'] };
    const grace = { id: 'grace', name: DEMO.grace.name, email: DEMO.grace.email, password: DEMO.grace.password, pools: ['support'], roles: ['agent'] };
    writeFileSync(agentsFile, JSON.stringify([olive, grace]));
    t = await startTestServer({ ...CALM, AGENTS_FILE: agentsFile });

    const observer = await connect(await login(olive.email, olive.password));
    await sleep(SETTLE_MS);
    expect(t.server.switchboard.presence.view().map((agent) => agent.id)).not.toContain('olive');
    const refused: [string, unknown, RegExp][] = [
      ['agent.presence', { status: 'available' }, /presence/],
      ['agent.presence', { status: 'away' }, /presence/],
      ['agent.accept', { requestId: 'req_unknown' }, /accept/],
      ['agent.reject', { requestId: 'req_unknown' }, /reject/],
    ];
    for (const [event, payload, message] of refused) {
      const reply = await observer.emitRaw(event, payload);
      expectError(reply, 'forbidden', message);
      expectError(reply, 'forbidden', /lacks the agent role/);
    }
    expect(t.server.switchboard.presence.view().map((agent) => agent.id)).not.toContain('olive');

    const visitor = await connect((await visitorToken(t.url, 'Quinn Queued')).token);
    const { requestId } = (await visitor.emit('visitor.request', { pool: 'support' })) as { requestId: string };
    await visitor.next('routing.update', (update) => update.requestId === requestId && update.state === 'queued');
    // The pool's real agent coming online is rung at once; the inspector never was.
    const agent = await connect(await login(grace.email, grace.password));
    await agent.next('agent.ring', (ring) => ring.requestId === requestId);
    expectError(await observer.emit('agent.accept', { requestId }), 'forbidden');
    await sleep(SETTLE_MS);
    expect(observer.saw('agent.ring')).toBe(false);
    expect(observer.events).toEqual([]);
    expect(await visitor.emit('visitor.cancel', { requestId })).toEqual({ ok: true });
  });
});
