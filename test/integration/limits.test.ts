/**
 * The limits on every door, through a real server on loopback with limits set small enough to reach in a
 * test: login per account and per address with a growing lock, visitor sessions per address, requests and
 * rings per visitor, unknown pools, sockets per token, events per socket, the rejected-event log, and the
 * page-close cancel.
 */
import { io as ioClient } from 'socket.io-client';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../server/src/logger.ts';
import { NEVER, settle } from '../support/routing.ts';
import {
  agentToken,
  closeClientsThenServer,
  connectFailure,
  DEMO,
  sleep,
  startTestServer,
  TestClient,
  stored,
  visitorToken,
  type TestServer,
} from '../support/server.ts';

let t: TestServer | null = null;
const clients: TestClient[] = [];
afterEach(() => closeClientsThenServer(clients, t).then(() => void (t = null)));

/** A server whose log lines are kept, parsed, for the checks on what is logged. */
async function serverWithLog(env: Record<string, string>): Promise<{ server: TestServer; lines: Record<string, unknown>[] }> {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger('info', { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  const server = await startTestServer(env, { logger });
  return { server, lines };
}

async function connect(url: string, token: string, resumeToken?: string): Promise<TestClient> {
  const client = await TestClient.connect(url, token, resumeToken);
  clients.push(client);
  return client;
}

function login(url: string, email: string, password: string, address?: string) {
  return fetch(`${url}/api/agents/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(address === undefined ? {} : { 'X-Forwarded-For': address }) },
    body: JSON.stringify({ email, password }),
  });
}

async function expectRateLimited(response: Response, retryAfter?: string) {
  expect(response.status).toBe(429);
  expect(response.headers.get('retry-after')).toEqual(retryAfter ?? expect.stringMatching(/^[1-9]\d*$/));
  expect(await response.json()).toEqual({ error: { code: 'rate-limited', message: expect.stringMatching(/try again in \d+ s/) } });
}

const WRONG = 'not-the-password-7f3a';

describe('login', () => {
  it('locks an account after too many wrong passwords, against the right one too, until time lifts it; each lock is longer', async () => {
    const logged = await serverWithLog({ LIMIT_LOGIN_ACCOUNT_FAILURES: '3', LIMIT_LOGIN_LOCK_SECONDS: '1', LIMIT_LOGIN_LOCK_MAX_SECONDS: '4' });
    t = logged.server;
    const mixedCase = DEMO.ada.email.toUpperCase();
    for (let i = 0; i < 3; i += 1) expect((await login(t.url, i === 1 ? mixedCase : DEMO.ada.email, WRONG)).status).toBe(401);
    // Locked: the right password is refused as well, and says when to come back.
    await expectRateLimited(await login(t.url, DEMO.ada.email, DEMO.ada.password), '1');
    await expectRateLimited(await login(t.url, mixedCase, DEMO.ada.password), '1');
    // Another account from the same address is not locked by it.
    expect((await login(t.url, DEMO.grace.email, DEMO.grace.password)).status).toBe(200);

    await sleep(1_100);
    expect((await login(t.url, DEMO.ada.email, DEMO.ada.password)).status).toBe(200);
    // The second lock within the day lasts twice as long.
    for (let i = 0; i < 3; i += 1) expect((await login(t.url, DEMO.ada.email, WRONG)).status).toBe(401);
    await expectRateLimited(await login(t.url, DEMO.ada.email, DEMO.ada.password), '2');

    const refused = logged.lines.filter((line) => line.msg === 'agent login refused');
    expect(refused.length).toBe(9);
    for (const line of refused) {
      expect(line).toMatchObject({ email: DEMO.ada.email, address: expect.stringMatching(/127\.0\.0\.1$/) });
      expect(JSON.stringify(line)).not.toContain(WRONG);
      expect(JSON.stringify(line)).not.toContain(DEMO.ada.password);
    }
    expect(refused.map((line) => line.reason)).toEqual([
      'wrong-credentials',
      'wrong-credentials',
      'wrong-credentials',
      'locked',
      'locked',
      'wrong-credentials',
      'wrong-credentials',
      'wrong-credentials',
      'locked',
    ]);
  });

  it("starts an account's count again after a success", async () => {
    t = await startTestServer({ LIMIT_LOGIN_ACCOUNT_FAILURES: '3' });
    // Four wrong passwords in all, but never three in a row: without the reset the fourth would lock it.
    for (let round = 0; round < 2; round += 1) {
      expect((await login(t.url, DEMO.grace.email, WRONG)).status).toBe(401);
      expect((await login(t.url, DEMO.grace.email, WRONG)).status).toBe(401);
      expect((await login(t.url, DEMO.grace.email, DEMO.grace.password)).status).toBe(200);
    }
  });

  it('counts guesses sent all at once before their passwords are checked, so a burst is held to the limit', async () => {
    t = await startTestServer({ LIMIT_LOGIN_ACCOUNT_FAILURES: '3', LIMIT_LOGIN_LOCK_SECONDS: '30' });
    // Twelve at once, the right password among them: each hash takes long enough for all to be in flight.
    const burst = await Promise.all(
      Array.from({ length: 12 }, (_, i) => login(t!.url, DEMO.grace.email, i === 11 ? DEMO.grace.password : `${WRONG}${String(i)}`)),
    );
    const statuses = burst.map((response) => response.status);
    expect(statuses.filter((status) => status !== 429).length).toBeLessThanOrEqual(3);
    expect(statuses.filter((status) => status === 429).length).toBeGreaterThanOrEqual(9);
    // The lock the burst earned holds against the right password, whatever came through.
    await expectRateLimited(await login(t.url, DEMO.grace.email, DEMO.grace.password));
  });

  it('locks a source address that tries too many accounts, and does not trust X-Forwarded-For', async () => {
    t = await startTestServer({ LIMIT_LOGIN_ACCOUNT_FAILURES: '100', LIMIT_LOGIN_ADDRESS_FAILURES: '4', LIMIT_LOGIN_LOCK_SECONDS: '30' });
    for (let i = 0; i < 4; i += 1) expect((await login(t.url, `someone${String(i)}@example.com`, 'guess', `10.0.0.${String(i)}`)).status).toBe(401);
    await expectRateLimited(await login(t.url, DEMO.alan.email, DEMO.alan.password, '10.9.9.9'), '30');
  });
});

describe('visitor sessions', () => {
  it('are limited per source address', async () => {
    t = await startTestServer({ LIMIT_VISITOR_SESSIONS: '3', LIMIT_VISITOR_SESSIONS_WINDOW_SECONDS: '60' });
    for (let i = 0; i < 3; i += 1) await visitorToken(t.url);
    const response = await fetch(`${t.url}/api/visitor-session`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
    expect(response.status).toBe(429);
    expect(Number(response.headers.get('retry-after'))).toBeGreaterThanOrEqual(59);
    expect(await response.json()).toEqual({ error: { code: 'rate-limited', message: expect.stringMatching(/try again in \d+ s/) } });
  });
});

describe('call requests', () => {
  it('for a pool nobody serves are not-found at once', async () => {
    t = await startTestServer({ MAX_QUEUE_WAIT_MS: NEVER });
    const visitor = await connect(t.url, (await visitorToken(t.url)).token);
    expect(await visitor.emit('visitor.request', { pool: 'no-such-pool' })).toEqual({
      ok: false,
      error: { code: 'not-found', message: 'Nobody takes calls for this pool.' },
    });
    expect(t.server.switchboard.stats().requests).toBe(0);
    // A pool that exists is taken, and queued while nobody is online.
    expect(await visitor.emit('visitor.request', { pool: 'support' })).toEqual({ ok: true, requestId: expect.any(String) });
  });

  it('are limited per visitor per window, with a message saying when to try again', async () => {
    t = await startTestServer({ LIMIT_VISITOR_REQUESTS: '3', LIMIT_VISITOR_REQUESTS_WINDOW_SECONDS: '60', MAX_QUEUE_WAIT_MS: NEVER });
    const visitor = await connect(t.url, (await visitorToken(t.url)).token);
    for (let i = 0; i < 3; i += 1) {
      const reply = (await visitor.emit('visitor.request', { pool: 'support' })) as { ok: true; requestId: string };
      expect(reply.ok).toBe(true);
      expect(await visitor.emit('visitor.cancel', { requestId: reply.requestId })).toEqual({ ok: true });
    }
    expect(await visitor.emit('visitor.request', { pool: 'support' })).toEqual({
      ok: false,
      error: { code: 'rate-limited', message: expect.stringMatching(/try again in \d+ s/) },
    });
    expect(t.server.switchboard.stats().requests).toBe(0);
  });

  it('do not ring an agent again and again in a request → cancel loop, but do once the window has passed', async () => {
    t = await startTestServer({ LIMIT_VISITOR_REQUESTS: '1000', LIMIT_RERING_WINDOW_MS: '1500', RING_TIMEOUT_MS: NEVER, MAX_QUEUE_WAIT_MS: NEVER });
    const ada = await connect(t.url, await agentToken(t.url, 'ada'));
    const visitor = await connect(t.url, (await visitorToken(t.url)).token);
    const loopStartedAt = Date.now();
    for (let i = 0; i < 20; i += 1) {
      const { requestId } = (await visitor.emit('visitor.request', { pool: 'support' })) as { requestId: string };
      expect(await visitor.emit('visitor.cancel', { requestId })).toEqual({ ok: true });
    }
    expect(Date.now() - loopStartedAt).toBeLessThan(1_500);
    await settle();
    expect(ada.events.filter((e) => e.event === 'agent.ring')).toHaveLength(1);
    ada.events.splice(0);

    await sleep(1_600);
    const { requestId } = (await visitor.emit('visitor.request', { pool: 'support' })) as { requestId: string };
    expect(await ada.next('agent.ring')).toMatchObject({ requestId });
  });

  it('hold off the only free agent from a request made again at once only until the window passes, well before the queue gives up', async () => {
    const windowMs = 1_200;
    t = await startTestServer({ LIMIT_RERING_WINDOW_MS: String(windowMs), RING_TIMEOUT_MS: NEVER, MAX_QUEUE_WAIT_MS: NEVER });
    const ada = await connect(t.url, await agentToken(t.url, 'ada'));
    const visitor = await connect(t.url, (await visitorToken(t.url)).token);
    const first = (await visitor.emit('visitor.request', { pool: 'support' })) as { requestId: string };
    await ada.next('agent.ring', (ring) => ring.requestId === first.requestId);
    const rungAt = Date.now();
    expect(await visitor.emit('visitor.cancel', { requestId: first.requestId })).toEqual({ ok: true });
    const { requestId } = (await visitor.emit('visitor.request', { pool: 'support' })) as { requestId: string };

    await settle();
    expect(ada.events.filter((e) => e.event === 'agent.ring' && (e.payload as { requestId: string }).requestId === requestId)).toEqual([]);
    expect(t.server.switchboard.routingSnapshot(requestId)?.value).toBe('queued');

    const ring = await ada.next('agent.ring', (r) => r.requestId === requestId, windowMs + 3_000);
    const rungAgainAt = Date.now();
    expect(rungAgainAt - rungAt).toBeGreaterThanOrEqual(windowMs - 50);
    expect(rungAgainAt - rungAt).toBeLessThan(windowMs + 1_500);
    // A full ring from the hold-off's end, as any ring.
    expect(ring.expiresAt).toBeGreaterThanOrEqual(rungAt + windowMs + Number(NEVER) - 100);
    expect(await ada.emit('agent.accept', { requestId })).toEqual({ ok: true });
    await visitor.next('call.accepted');
  });

  it("keeps a hold-off's end through a server restart: the agent is rung when the window passes", async () => {
    // Longer than a restart takes on a loaded machine (seeding checks every password with scrypt), so the
    // window is still running when the server is back.
    const windowMs = 6_000;
    t = await startTestServer({ LIMIT_RERING_WINDOW_MS: String(windowMs), RING_TIMEOUT_MS: NEVER, MAX_QUEUE_WAIT_MS: NEVER, RESUME_WINDOW_MS: NEVER });
    const tokens = { ada: await agentToken(t.url, 'ada'), visitor: (await visitorToken(t.url)).token };
    let ada = await connect(t.url, tokens.ada);
    let visitor = await connect(t.url, tokens.visitor);
    const first = (await visitor.emit('visitor.request', { pool: 'support' })) as { requestId: string };
    await ada.next('agent.ring', (ring) => ring.requestId === first.requestId);
    const rungAt = Date.now();
    expect(await visitor.emit('visitor.cancel', { requestId: first.requestId })).toEqual({ ok: true });
    const { requestId } = (await visitor.emit('visitor.request', { pool: 'support' })) as { requestId: string };
    expect(t.server.switchboard.routingSnapshot(requestId)?.value).toBe('queued');

    await t.restart();
    ada = await connect(t.url, tokens.ada);
    visitor = await connect(t.url, tokens.visitor, visitor.resumeToken!);
    await visitor.next('session.resumed');
    expect(Date.now() - rungAt).toBeLessThan(windowMs);
    expect(t.server.switchboard.routingSnapshot(requestId)?.value).toBe('queued');
    expect(ada.events.filter((e) => e.event === 'agent.ring')).toEqual([]);

    await ada.next('agent.ring', (r) => r.requestId === requestId, windowMs + 3_000);
    expect(Date.now() - rungAt).toBeGreaterThanOrEqual(windowMs - 50);
    expect(Date.now() - rungAt).toBeLessThan(windowMs + 1_500);
  });
});

describe('sockets per token', () => {
  it('refuses a visitor token a socket over the limit, and takes one again once a socket closes', async () => {
    t = await startTestServer({ LIMIT_SOCKETS_PER_VISITOR: '2' });
    const { token } = await visitorToken(t.url);
    const first = await connect(t.url, token);
    await connect(t.url, token);
    expect(await connectFailure(t.url, { token })).toBe('too-many-sockets');
    // Another visitor is not affected.
    await connect(t.url, (await visitorToken(t.url)).token);
    first.close();
    await settle();
    await connect(t.url, token);
  });

  it("refuses an agent session a socket over the limit; another agent's session is not affected", async () => {
    t = await startTestServer({ LIMIT_SOCKETS_PER_AGENT_SESSION: '2' });
    const token = await agentToken(t.url, 'ada');
    await connect(t.url, token);
    const second = await connect(t.url, token);
    expect(await connectFailure(t.url, { token })).toBe('too-many-sockets');
    await connect(t.url, await agentToken(t.url, 'grace'));
    second.close();
    await settle();
    await connect(t.url, token);
  });
});

describe('events per socket', () => {
  it('answers rate-limited past the bucket and does nothing else; a sustained flood disconnects the socket', async () => {
    t = await startTestServer({ LIMIT_SOCKET_EVENT_BURST: '5', LIMIT_SOCKET_EVENTS_PER_SECOND: '1', LIMIT_SOCKET_STRIKES_PER_MINUTE: '10', MAX_QUEUE_WAIT_MS: NEVER });
    const visitor = await connect(t.url, (await visitorToken(t.url)).token);
    for (let i = 0; i < 5; i += 1) expect(await visitor.emit('session.ping', {})).toEqual({ ok: true });
    expect(await visitor.emit('visitor.request', { pool: 'support' })).toEqual({
      ok: false,
      error: { code: 'rate-limited', message: expect.stringMatching(/at most 1 per second/) },
    });
    expect(t.server.switchboard.stats().requests).toBe(0);

    const disconnected = new Promise<string>((resolve) => visitor.socket.once('disconnect', resolve));
    for (let i = 0; i < 9; i += 1) void visitor.emitRaw('session.ping', {}).catch(() => {});
    expect(await disconnected).toBe('io server disconnect');
  });

  it('writes the first few rejected events of a socket per minute, then one line with the count', async () => {
    const logged = await serverWithLog({ LIMIT_REJECTION_LOGS_PER_MINUTE: '3' });
    t = logged.server;
    const visitor = await connect(t.url, (await visitorToken(t.url)).token);
    for (let i = 0; i < 10; i += 1) expect(await visitor.emitRaw('agent.accept', { requestId: 'nope' })).toMatchObject({ ok: false });
    visitor.close();
    await settle();
    expect(logged.lines.filter((line) => line.msg === 'rejected client event')).toHaveLength(3);
    expect(logged.lines.filter((line) => line.msg === 'rejected client events not logged')).toEqual([
      expect.objectContaining({ socket: expect.any(String), withheld: 7 }),
    ]);
  });
});

describe('the page-close cancel', () => {
  const cancelUrl = (server: TestServer) => `${server.url}/api/visitor-session/cancel`;
  const beacon = (server: TestServer, body: unknown, headers: Record<string, string> = {}) =>
    fetch(cancelUrl(server), {
      method: 'POST',
      headers: { 'Content-Type': 'text/plain;charset=UTF-8', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });

  it("cancels a queued visitor's request at once, and the next visitor moves up", async () => {
    t = await startTestServer({ RESUME_WINDOW_MS: NEVER, MAX_QUEUE_WAIT_MS: NEVER });
    const first = await visitorToken(t.url, 'First');
    const firstSocket = await connect(t.url, first.token);
    const second = await connect(t.url, (await visitorToken(t.url, 'Second')).token);
    const { requestId } = (await firstSocket.emit('visitor.request', { pool: 'support' })) as { requestId: string };
    const { requestId: secondRequest } = (await second.emit('visitor.request', { pool: 'support' })) as { requestId: string };
    await second.next('routing.update', (u) => u.requestId === secondRequest && u.position === 2);

    const sentAt = Date.now();
    const response = await beacon(t, { token: first.token, requestId });
    firstSocket.close();
    expect(response.status).toBe(204);
    expect(await response.text()).toBe('');
    await second.next('routing.update', (u) => u.requestId === secondRequest && u.position === 1, 1_000);
    expect(Date.now() - sentAt).toBeLessThan(1_000);
    expect(await stored(t.server, (store) => store.requests.get(requestId))).toMatchObject({ endReason: 'cancelled' });
  });

  it('takes application/json too, and answers 400, 401, 403 and 404 as the contract says', async () => {
    t = await startTestServer({ MAX_QUEUE_WAIT_MS: NEVER });
    const mine = await visitorToken(t.url);
    const other = await visitorToken(t.url);
    const socket = await connect(t.url, mine.token);
    const { requestId } = (await socket.emit('visitor.request', { pool: 'support' })) as { requestId: string };

    const error = async (response: Response, status: number, code: string) => {
      expect(response.status).toBe(status);
      expect(await response.json()).toEqual({ error: expect.objectContaining({ code, message: expect.any(String) }) });
    };
    await error(await beacon(t, 'not json'), 400, 'invalid-payload');
    await error(await beacon(t, { token: mine.token }), 400, 'invalid-payload');
    await error(await beacon(t, { token: mine.token, requestId, extra: 1 }), 400, 'invalid-payload');
    await error(await beacon(t, { token: 'x.y.z', requestId }), 401, 'unauthorized');
    await error(await beacon(t, { token: await agentToken(t.url, 'ada'), requestId }), 401, 'unauthorized');
    await error(await beacon(t, { token: other.token, requestId }), 403, 'forbidden');
    await error(await beacon(t, { token: mine.token, requestId: 'req_nope' }), 404, 'not-found');
    await error(await beacon(t, { token: mine.token, requestId }, { Origin: 'https://elsewhere.example' }), 403, 'origin-not-allowed');
    expect(t.server.switchboard.stats().requests).toBe(1);

    const json = await fetch(cancelUrl(t), { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ token: mine.token, requestId }) });
    expect(json.status).toBe(204);
    expect(t.server.switchboard.stats().requests).toBe(0);
    await error(await beacon(t, { token: mine.token, requestId }), 404, 'not-found');
  });

  it("refuses a session issued to one allowed page when another allowed page sends it, as the visitor's socket does", async () => {
    const shop = 'https://shop.example';
    const help = 'https://help.example';
    t = await startTestServer({ ALLOWED_ORIGINS: `${shop},${help}`, MAX_QUEUE_WAIT_MS: NEVER });
    const issued = await fetch(`${t.url}/api/visitor-session`, { method: 'POST', headers: { 'Content-Type': 'application/json', Origin: shop }, body: '{}' });
    expect(issued.status).toBe(201);
    const { token } = (await issued.json()) as { token: string };
    const socket = ioClient(t.url, { auth: { token }, transports: ['websocket'], reconnection: false, forceNew: true, extraHeaders: { origin: shop } });
    try {
      const reply = (await socket.timeout(5_000).emitWithAck('visitor.request', { pool: 'support' })) as { ok: boolean; requestId: string };
      expect(reply.ok).toBe(true);
      const elsewhere = await beacon(t, { token, requestId: reply.requestId }, { Origin: help });
      expect(elsewhere.status).toBe(403);
      expect(await elsewhere.json()).toEqual({ error: { code: 'origin-not-allowed', message: expect.any(String) } });
      expect(t.server.switchboard.stats().requests).toBe(1);
      expect((await beacon(t, { token, requestId: reply.requestId }, { Origin: shop })).status).toBe(204);
      expect(t.server.switchboard.stats().requests).toBe(0);
    } finally {
      socket.close();
    }
  });
});
