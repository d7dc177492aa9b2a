/**
 * Ownership across nodes: two or three real callchart servers in this process, one real Postgres and one
 * real Redis (Debian's), and real Socket.IO clients on loopback, each person on the node a test puts them.
 *
 * "Killed" here is played in-process: the node stops its trees, its lease renewals and its answers, and
 * drops its connections, without giving back a lease or telling anyone anything, which is what a SIGKILL
 * leaves behind. (A real SIGKILL of a node process is in the cluster fault tests.)
 */
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ServerPayload } from '@callchart/machines';
import { startPostgres, type PostgresInstance } from '../../../test/support/postgres.ts';
import { startRedis, type RedisServer } from '../../../test/support/redis.ts';
import { agentToken, connectFailure, FAST_TIMINGS, SAMPLE_CANDIDATE, SAMPLE_SDP, sleep, TestClient, visitorToken, type DemoAgent } from '../../../test/support/server.ts';
import { repoRoot } from '../../../scripts/repoRoot.ts';
import { loadConfig } from '../config.ts';
import { startServer, type CallchartServer } from '../server.ts';
import { RedisKeys } from './redis.ts';

const TTL_MS = 1_500;
const RENEW_MS = 400;
/** A dead owner's lease lapses within the TTL, and a scan (every renewal) takes it over. */
const TAKEOVER_MS = 2 * TTL_MS;

let postgres: PostgresInstance;
let redis: RedisServer;
let admin: Redis;
const nodes: Node[] = [];
const clients: TestClient[] = [];

beforeAll(async () => {
  [postgres, redis] = await Promise.all([startPostgres(), startRedis()]);
  admin = new Redis(redis.url, { lazyConnect: false, maxRetriesPerRequest: 1 });
}, 60_000);

afterAll(async () => {
  admin?.disconnect();
  await Promise.all([postgres?.stop(), redis?.stop()]);
});

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await Promise.all(nodes.splice(0).map((node) => node.close()));
  // Every test starts from an empty Redis (the nodes use the product's key names).
  await admin.flushall();
});

interface Node {
  name: string;
  server: CallchartServer;
  url: string;
  /** As a SIGKILL leaves it: nothing more done or said, no lease given back, every connection dropped. */
  kill(): Promise<void>;
  close(): Promise<void>;
}

/** One node per name, all on one new database and the shared Redis, each with its own port. */
async function startNodes<const Names extends readonly string[]>(names: Names, env: Record<string, string> = {}): Promise<{ [K in keyof Names]: Node }> {
  const databaseUrl = await postgres.createDatabase();
  const started: Node[] = [];
  for (const name of names) {
    const config = loadConfig({
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'silent',
      AGENTS_FILE: path.join(repoRoot, 'server/config/agents.json'),
      AUTH_SECRET: 'ownership-test-secret-shared-by-every-node',
      DATABASE_URL: databaseUrl,
      REDIS_URL: redis.url,
      NODE_ID: name,
      LEASE_TTL_MS: String(TTL_MS),
      LEASE_RENEW_MS: String(RENEW_MS),
      ...FAST_TIMINGS,
      ...env,
    });
    const server = await startServer(config);
    let closed: Promise<void> | null = null;
    let killed = false;
    const node: Node = {
      name,
      server,
      url: `http://127.0.0.1:${String(server.port)}`,
      async kill() {
        killed = true;
        const cluster = server.cluster!;
        server.connections.stop();
        cluster.ownership.stopAdopting();
        cluster.bus.stop();
        cluster.leases.stop();
        server.switchboard.stop();
        await cluster.claims.stop();
        await new Promise<void>((resolve) => server.io.close(() => resolve()));
        cluster.redis.disconnect();
        await server.store.close();
      },
      close: () => (closed ??= killed ? Promise.resolve() : server.close()),
    };
    nodes.push(node);
    started.push(node);
  }
  return started as { [K in keyof Names]: Node };
}

async function connect(node: Node, token: string, resumeToken?: string): Promise<TestClient> {
  const client = await TestClient.connect(node.url, token, resumeToken);
  clients.push(client);
  return client;
}

const agentOn = async (node: Node, agent: DemoAgent) => connect(node, await agentToken(node.url, agent));

async function visitorOn(node: Node, name = 'Vera Visitor') {
  const session = await visitorToken(node.url, name);
  return { ...session, client: await connect(node, session.token) };
}

/** Who holds the request's lease in Redis, read from Redis itself. */
async function ownerOf(requestId: string): Promise<string | null> {
  const value = await admin.get(new RedisKeys().key('lease', requestId));
  return value === null ? null : value.slice(0, value.lastIndexOf(':'));
}

async function until<T>(what: string, read: () => Promise<T> | T, done: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last ${JSON.stringify(value)}`);
    await sleep(25);
  }
}

async function request(visitor: TestClient, pool = 'support'): Promise<string> {
  const reply = (await visitor.emit('visitor.request', { pool })) as { ok: boolean; requestId?: string; error?: unknown };
  if (!reply.ok || !reply.requestId) throw new Error(`the request was refused: ${JSON.stringify(reply)}`);
  return reply.requestId;
}

/** Rings `agent` for a new request of the visitor's, and connects the call. */
async function callBetween(visitor: TestClient, agent: TestClient) {
  const requestId = await request(visitor);
  await agent.next('agent.ring', (ring) => ring.requestId === requestId);
  expect(await agent.emit('agent.accept', { requestId })).toEqual({ ok: true });
  const agentSide = await agent.next('call.accepted');
  const visitorSide = await visitor.next('call.accepted');
  expect(visitorSide.callId).toBe(agentSide.callId);
  return { requestId, callId: agentSide.callId };
}

/** Signals from each leg reach the other, whichever nodes they are on. */
async function signalsFlow(agent: TestClient, visitor: TestClient, callId: string): Promise<void> {
  expect(await agent.emit('signal.offer', { callId, sdp: SAMPLE_SDP })).toEqual({ ok: true });
  expect(await visitor.next('signal.offer', (offer) => offer.callId === callId)).toEqual({ callId, sdp: SAMPLE_SDP });
  expect(await visitor.emit('signal.answer', { callId, sdp: SAMPLE_SDP })).toEqual({ ok: true });
  await agent.next('signal.answer', (answer) => answer.callId === callId);
  expect(await visitor.emit('signal.candidate', { callId, candidate: SAMPLE_CANDIDATE })).toEqual({ ok: true });
  await agent.next('signal.candidate', (candidate) => candidate.callId === callId);
}

describe('a call whose people are on different nodes', () => {
  it('rings the agent on B for a visitor on A, connects from B, relays both ways, and ends from B with its history written', async () => {
    const [a, b] = await startNodes(['node-a', 'node-b']);
    const ada = await agentOn(b, 'ada');
    const vera = await visitorOn(a);

    const { requestId, callId } = await callBetween(vera.client, ada);
    // The request runs on the visitor's node; the accept made on B ran there.
    expect(await ownerOf(requestId)).toBe('node-a');
    expect(a.server.switchboard.stats()).toEqual({ requests: 1, calls: 1 });
    expect(b.server.switchboard.stats()).toEqual({ requests: 0, calls: 0 });

    await signalsFlow(ada, vera.client, callId);
    // A restart the answerer asks for is confirmed by the offerer's socket on the other node, which stays.
    expect(await vera.client.emit('signal.restartRequest', { callId })).toEqual({ ok: true });
    await ada.next('signal.restartRequest', (ask) => ask.callId === callId);
    expect(await ada.emit('call.media', { callId, state: 'connected' })).toEqual({ ok: true });
    expect(await ada.emit('call.telemetry', { callId, attempt: 1, at: Date.now(), durationMs: 120, outcome: 'recovered' })).toEqual({ ok: true });

    expect(await ada.emit('call.hangup', { callId })).toEqual({ ok: true });
    expect(await vera.client.next('call.ended')).toEqual({ callId, reason: 'hangup' });
    expect(await ada.next('call.ended')).toEqual({ callId, reason: 'hangup' });
    const row = await until('the call row to close', () => b.server.store.calls.get(callId), (call) => call?.endedAt != null);
    expect(row).toMatchObject({ requestId, agentId: 'ada', visitorId: vera.visitorId, endReason: 'hangup', connectedAt: expect.any(Number) });
    expect(await b.server.store.telemetry.forCall(callId)).toEqual([expect.objectContaining({ kind: 'reconnection-attempt', leg: 'agent', outcome: 'recovered' })]);
    expect(ada.socket.connected).toBe(true);
    // The request is no longer live anywhere, and its lease is gone.
    await until('the lease to go', () => ownerOf(requestId), (owner) => owner === null);
    expect(await admin.sismember(new RedisKeys().key('live-requests'), requestId)).toBe(0);
  });

  it('refuses a socket on another node that is no leg of the call, and a call nobody has, as one process does', async () => {
    const [a, b] = await startNodes(['node-a', 'node-b']);
    const ada = await agentOn(b, 'ada');
    const vera = await visitorOn(a);
    const { callId } = await callBetween(vera.client, ada);
    const grace = await agentOn(b, 'grace');
    const intruder = await visitorOn(b, 'Ivan');

    for (const who of [grace, intruder.client]) {
      expect(await who.emit('call.hangup', { callId })).toMatchObject({ ok: false, error: { code: 'forbidden' } });
      expect(await who.emit('signal.candidate', { callId, candidate: SAMPLE_CANDIDATE })).toMatchObject({ ok: false, error: { code: 'forbidden' } });
    }
    expect(await grace.emit('call.hangup', { callId: 'call_nobody' })).toMatchObject({ ok: false, error: { code: 'not-found' } });
    expect(await grace.emit('agent.accept', { requestId: 'req_nobody' })).toMatchObject({ ok: false, error: { code: 'forbidden' } });
    expect(await intruder.client.emit('visitor.cancel', { requestId: 'req_nobody' })).toMatchObject({ ok: false, error: { code: 'not-found' } });
    // Nothing of that reached the call, which goes on.
    await signalsFlow(ada, vera.client, callId);
    expect(a.server.switchboard.stats()).toEqual({ requests: 1, calls: 1 });
  });

  it("refuses a visitor's second request on another node while the first is live, and takes one once it is cancelled there", async () => {
    const [a, b] = await startNodes(['node-a', 'node-b'], { MAX_QUEUE_WAIT_MS: '60000' });
    const vera = await visitorOn(a);
    const second = await connect(b, vera.token);
    const requestId = await request(vera.client);

    expect(await second.emit('visitor.request', { pool: 'support' })).toMatchObject({ ok: false, error: { code: 'conflict' } });
    // The cancel made on B runs on A, which owns the request.
    expect(await second.emit('visitor.cancel', { requestId })).toEqual({ ok: true });
    await until('the request to end', () => a.server.store.requests.get(requestId), (row) => row?.endReason === 'cancelled');
    await until('the request to leave the cluster', () => admin.sismember(new RedisKeys().key('live-requests'), requestId), (member) => member === 0);
    const again = await request(second);
    expect(await ownerOf(again)).toBe('node-b');
  });
});

describe('an owner that dies', () => {
  it('has its call taken over by another node within two lease TTLs; the call goes on and a hangup afterwards ends it', async () => {
    const [a, b, c] = await startNodes(['node-a', 'node-b', 'node-c']);
    const ada = await agentOn(b, 'ada');
    const vera = await visitorOn(a);
    const { requestId, callId } = await callBetween(vera.client, ada);
    expect(await ownerOf(requestId)).toBe('node-a');

    const killedAt = Date.now();
    await a.kill();
    // The visitor's page reconnects to another node and takes its session up there.
    const back = await connect(c, vera.token, vera.client.resumeToken!);
    const resumed = await back.next('session.resumed', () => true, TAKEOVER_MS + 2_000);
    expect(resumed.call).toMatchObject({ callId, role: 'answerer', peerName: 'Ada Lovelace' });

    const owner = await until('another node to own the request', () => ownerOf(requestId), (id) => id === 'node-b' || id === 'node-c', TAKEOVER_MS + 1_000);
    expect(Date.now() - killedAt).toBeLessThan(TAKEOVER_MS + 1_000);
    const taker = owner === 'node-b' ? b : c;
    await until('the new owner to run the tree', () => taker.server.switchboard.stats(), (stats) => stats.requests === 1 && stats.calls === 1);

    await signalsFlow(ada, back, callId);
    expect(await ada.emit('call.hangup', { callId })).toEqual({ ok: true });
    expect(await back.next('call.ended')).toEqual({ callId, reason: 'hangup' });
    const row = await until('the call row to close', () => taker.server.store.calls.get(callId), (call) => call?.endedAt != null);
    expect(row).toMatchObject({ endReason: 'hangup' });
    expect(await taker.server.store.requests.get(requestId)).toMatchObject({ endReason: 'completed' });
  });

  it('has a ring that was running time out on the new owner at its original deadline', async () => {
    const ringTimeoutMs = 4_000;
    const [a, b, c] = await startNodes(['node-a', 'node-b', 'node-c'], { RING_TIMEOUT_MS: String(ringTimeoutMs), RESUME_WINDOW_MS: '20000', MAX_QUEUE_WAIT_MS: '60000' });
    const ada = await agentOn(b, 'ada');
    const vera = await visitorOn(a);
    const requestId = await request(vera.client);
    const ring = await ada.next('agent.ring', (r) => r.requestId === requestId);

    await a.kill();
    await connect(c, vera.token, vera.client.resumeToken!);
    const owner = await until('another node to own the request', () => ownerOf(requestId), (id) => id === 'node-b' || id === 'node-c', TAKEOVER_MS + 1_000);
    const taker = owner === 'node-b' ? b : c;
    await until('the new owner to run the tree', () => taker.server.switchboard.routingSnapshot(requestId)?.value, (state) => state === 'ringing');
    // Taken over well before the ring's end, so it is the new owner's timer that ends it.
    expect(ring.expiresAt - Date.now()).toBeGreaterThan(500);

    await ada.next('agent.ringCancelled', (cancel) => cancel.requestId === requestId, ringTimeoutMs + 2_000);
    const lateMs = Date.now() - ring.expiresAt;
    // At the deadline the first owner set, not a whole ring timeout after the takeover.
    expect(lateMs).toBeGreaterThanOrEqual(-50);
    expect(lateMs).toBeLessThan(1_000);
    expect(await taker.server.store.events.forRequest(requestId)).toContainEqual(expect.objectContaining({ actor: 'routing', fromState: 'ringing', cause: expect.stringContaining('ringTimeout') }));
  });

  it("refuses a stale owner's late commit by its fence: its tree stops there and nothing of that step is written or sent", async () => {
    const [a, b, c] = await startNodes(['node-a', 'node-b', 'node-c']);
    const ada = await agentOn(b, 'ada');
    const vera = await visitorOn(a);
    const { requestId, callId } = await callBetween(vera.client, ada);

    // Node A stalls: it renews nothing (its lease lapses in Redis) but still runs the tree and believes it owns it.
    a.server.cluster!.leases.stop();
    a.server.cluster!.ownership.stopAdopting();
    const owner = await until('another node to take the request', () => ownerOf(requestId), (id) => id === 'node-b' || id === 'node-c', TAKEOVER_MS + 1_000);
    const taker = owner === 'node-b' ? b : c;
    await until('the new owner to run the tree', () => taker.server.switchboard.stats().requests, (count) => count === 1);
    expect(a.server.switchboard.stats().requests).toBe(1);
    const eventsBefore = (await taker.server.store.events.forRequest(requestId)).length;

    // The visitor's socket on A goes. A's stale tree takes the step and tries to commit it; the new owner
    // hears the same fact and takes its own step.
    vera.client.close();
    await until('the stale tree to stop on node A', () => a.server.switchboard.stats().requests, (count) => count === 0);
    const paused = await ada.next('call.paused', (p) => p.callId === callId);
    expect(paused.legs).toMatchObject({ visitor: expect.anything() });
    await sleep(500);
    // One pause, sent once: A's copy was never committed, so never sent.
    expect(ada.saw('call.paused')).toBe(false);
    const events = await taker.server.store.events.forRequest(requestId);
    const lostSteps = events.slice(eventsBefore).filter((event) => event.cause === 'leg.socketLost');
    expect(lostSteps.length).toBeGreaterThan(0);
    // Each transition of that step once: the stale owner's rows were refused with its commit.
    const keys = lostSteps.map((event) => `${event.actor}:${event.fromState}->${event.toState}`);
    expect(new Set(keys).size).toBe(keys.length);
    expect(taker.server.switchboard.stats().requests).toBe(1);
  });
});

describe('a node drained', () => {
  it('hands its requests off before it closes: another node takes each over within a renew interval or two, and the call goes on', async () => {
    const [a, b, c] = await startNodes(['node-a', 'node-b', 'node-c']);
    const ada = await agentOn(b, 'ada');
    const vera = await visitorOn(a);
    const { requestId, callId } = await callBetween(vera.client, ada);

    const closing = a.close();
    const startedAt = Date.now();
    const owner = await until('another node to own the request', () => ownerOf(requestId), (id) => id === 'node-b' || id === 'node-c', TTL_MS);
    // Well before the lease would have lapsed on its own.
    expect(Date.now() - startedAt).toBeLessThan(TTL_MS);
    await closing;
    const back = await connect(c, vera.token, vera.client.resumeToken!);
    const resumed = (await back.next('session.resumed')) as ServerPayload<'session.resumed'>;
    expect(resumed.call).toMatchObject({ callId, state: 'active' });
    const taker = owner === 'node-b' ? b : c;
    await signalsFlow(ada, back, callId);
    expect(await back.emit('call.hangup', { callId })).toEqual({ ok: true });
    expect(await ada.next('call.ended')).toEqual({ callId, reason: 'hangup' });
    // Nobody was told the visitor was lost: their socket was still open while the new owner looked for it.
    expect(ada.saw('call.paused')).toBe(false);
    await until('the call row to close', () => taker.server.store.calls.get(callId), (call) => call?.endReason === 'hangup');
  });
});

describe('readiness of a cluster node', () => {
  it('says redis while Redis does not answer, and ready again once it does', async () => {
    const [a] = await startNodes(['node-a']);
    const ready = async () => (await fetch(`${a.url}/readyz`)).json() as Promise<{ ready: boolean; reason?: string }>;
    expect(await ready()).toEqual({ ready: true });
    redis.pause();
    try {
      expect(await ready()).toEqual({ ready: false, reason: 'redis' });
    } finally {
      redis.resume();
    }
    await until('the node to be ready again', ready, (body) => body.ready);
  });
});

describe('a cluster node whose database is down', () => {
  it('answers store-unavailable, to an event and at the handshake, instead of internal or unauthorized, and serves again once it is back', async () => {
    const [a] = await startNodes(['node-a']);
    const vera = await visitorOn(a);
    await postgres.kill();
    try {
      expect(await vera.client.emit('visitor.request', { pool: 'support' })).toMatchObject({ ok: false, error: { code: 'store-unavailable' } });
      // The token may be good: the page is told to try again, not to sign in again.
      expect(await connectFailure(a.url, { token: vera.token })).toBe('store-unavailable');
      expect(a.server.switchboard.stats().requests).toBe(0);
    } finally {
      await postgres.restart();
    }
    await until('the node to be ready again', async () => (await fetch(`${a.url}/readyz`)).status, (status) => status === 200, 20_000);
    expect(await request(vera.client)).toMatch(/^req_/);
  });
});
