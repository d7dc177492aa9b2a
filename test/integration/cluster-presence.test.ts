/**
 * What a dead node leaves behind in shared presence, on real processes: four callchart nodes on one Postgres
 * and one Redis (Debian's, in temporary directories on loopback ports), each reaching Redis through a link of
 * its own. A node SIGKILLed says nothing of its sockets or of the agents its requests held; the nodes that
 * stay find it dead once its presence heartbeat lapses in Redis, and from then on:
 * - someone whose last socket was there goes through the grace a socket closing starts, decided by their
 *   connection machine on a node still up, and what waits for them is told, as on one node;
 * - someone who came back on another node meanwhile is left alone;
 * - a hold its requests left, with nobody running the request any more, is let go.
 * A node that only stalled for as long is taken for dead too, and once it runs again its people are back for
 * whatever heard they were lost. The scenarios run in order: node 2 stalls, then is killed, then node 3 and
 * node 1 are; node 4 stays.
 */
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisKeys } from '../../server/src/cluster/redis.ts';
import { startCluster, type Cluster, type ClusterNode } from '../support/cluster.ts';
import { ClusterPeople, connectCall, expectIdle, lost, type Visitor } from '../support/clusterClients.ts';
import { expectRung, hangUp, requestCall } from '../support/routing.ts';
import { sleep, type TestClient } from '../support/server.ts';

const AGENT_GRACE_MS = 2_000;
const TIMINGS = {
  AGENT_GRACE_MS: String(AGENT_GRACE_MS),
  RESUME_WINDOW_MS: '3000',
  // Long enough that no ring times out and no wait in line runs out in a scenario: every move is presence's.
  RING_TIMEOUT_MS: '30000',
  MAX_QUEUE_WAIT_MS: '60000',
  RECONNECTION_TIMEOUT_MS: '30000',
  // A lease outlives a renewal Redis did not confirm by about 2 s: room for an owner cut off from Redis to
  // end a request (in Postgres) before it is killed.
  LEASE_TTL_MS: '3000',
  LEASE_RENEW_MS: '600',
};
/** A node's presence lapses 5 s after its last heartbeat; the next heartbeat of a node still up (every 1.5 s) sweeps it. */
const SWEPT_WITHIN_MS = 5_000 + 1_500 + 3_000;
/** What a loss then takes to reach the request: asking every node about the person's sockets, a dead one included, waits up to 1 s. */
const LOSS_TOLD_WITHIN_MS = SWEPT_WITHIN_MS + 2_000;

const keys = new RedisKeys();
let cluster: Cluster;
let people: ClusterPeople;
let redis: Redis;
let n1: ClusterNode;
let n2: ClusterNode;
let n3: ClusterNode;
let n4: ClusterNode;

/**
 * Node 2 stalls: its sockets' pings are far apart, so that the agent's socket outlives the stall (with the
 * default 2.5 s + 2.5 s her client would drop it and come back elsewhere). Node 4 runs her call, with a grace
 * long enough that the call is still there to come back to.
 */
const NODE_ENV = {
  'node-2': { PING_INTERVAL_MS: '20000', PING_TIMEOUT_MS: '20000' },
  'node-4': { AGENT_GRACE_MS: '25000' },
};

beforeAll(async () => {
  cluster = await startCluster({ nodes: 4, env: TIMINGS, nodeEnv: NODE_ENV, redisLinks: true });
  [n1, n2, n3, n4] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode, ClusterNode];
  people = new ClusterPeople(cluster);
  redis = new Redis(cluster.redis.url, { maxRetriesPerRequest: 1, lazyConnect: false });
  redis.on('error', () => {});
  await people.agentToken('ada');
}, 120_000);

afterEach(async () => {
  await people.closeAll();
  await expectIdle(cluster);
}, 30_000);

afterAll(async () => {
  redis?.disconnect();
  await cluster?.stop();
}, 60_000);

/** Ada as shared presence has her, read from Redis itself: the nodes with a socket of hers, and the request holding her. */
async function adaInRedis(): Promise<{ nodes: string[]; held: string }> {
  const [nodes, held] = await Promise.all([redis.smembers(keys.key('agent-nodes', 'ada')), redis.hget(keys.key('agent', 'ada'), 'held')]);
  return { nodes: nodes.sort(), held: held ?? '' };
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !(await check()); await sleep(50)) if (Date.now() > deadline) throw new Error(`${what}: not within ${String(timeoutMs)} ms`);
}

/** Resolves once the node is swept from shared presence (a node still up found its heartbeat lapsed). */
async function swept(node: ClusterNode, since: number): Promise<number> {
  for (;;) {
    if ((await redis.sismember(keys.key('nodes'), node.nodeId)) === 0) return Date.now() - since;
    if (Date.now() - since > SWEPT_WITHIN_MS + 5_000) throw new Error(`${node.name} was not swept from presence`);
    await sleep(100);
  }
}

/** Every `routing.update` the visitor heard since `since`, as states (with the agent rung, if any). */
function updatesSince(visitor: Visitor, since: number): string[] {
  return people
    .heard(visitor.client)
    .filter((heard) => heard.event === 'routing.update' && heard.at >= since)
    .map((heard) => {
      const update = heard.payload as { state: string; agentName?: string };
      return update.agentName ? `${update.state} ${update.agentName}` : update.state;
    });
}

async function cancel(visitor: TestClient, requestId: string): Promise<void> {
  expect(await visitor.emit('visitor.cancel', { requestId })).toEqual({ ok: true });
  await visitor.next('routing.ended', (ended) => ended.requestId === requestId);
}

describe("an agent's node stalled for longer than presence waits", () => {
  it('is taken for dead, and once it runs again the agent is back for her call', async () => {
    const ada = await people.agent(n2, 'ada');
    const vera = await people.visitor(n4);
    const { requestId, callId } = await connectCall(ada, 'ada', vera.client);
    expect((await cluster.ownerOf(requestId))?.node).toBe(n4);

    // SIGSTOP: the process keeps its sockets and its records, and answers nothing, heartbeats included.
    const stalledAt = Date.now();
    n2.child.kill('SIGSTOP');
    try {
      await vera.client.next('call.paused', (p) => p.legs.agent.socket === 'down', LOSS_TOLD_WITHIN_MS + 5_000);
      expect(Date.now() - stalledAt).toBeLessThan(LOSS_TOLD_WITHIN_MS);
    } finally {
      n2.child.kill('SIGCONT');
    }
    // Its next heartbeat finds it was swept: its agent registers again, and takes up her session, so the call
    // hears her socket is back; her media report then ends the pause.
    await vera.client.next('call.paused', (p) => p.legs.agent.socket === 'up', 10_000);
    await until('Ada registered again', async () => (await adaInRedis()).nodes.includes(n2.nodeId));
    expect(await adaInRedis()).toEqual({ nodes: [n2.nodeId], held: requestId });
    expect(await ada.emit('call.media', { callId, state: 'connected' })).toEqual({ ok: true });
    expect(await vera.client.next('call.resumed')).toEqual({ callId });
    expect(people.newSince([vera.client], stalledAt, ['routing.update', 'call.ended']), 'Vera moved on').toEqual([]);
    await hangUp(vera.client, ada, callId);
  });
});

describe("an agent's node SIGKILLed", () => {
  it('leaves an agent who came back on another node within the grace as she was: her call goes on untold, and she is rung next', async () => {
    const ada = await people.agent(n2, 'ada');
    const vera = await people.visitor(n1);
    const { callId } = await connectCall(ada, 'ada', vera.client);

    const killedAt = Date.now();
    await cluster.kill(n2, 'SIGKILL');
    await lost(ada);
    // As the dashboard does: back at once, on a node still up, with her resume token.
    const adaBack = await people.resume(n3, await people.agentToken('ada'), ada);
    expect(await adaBack.next('session.resumed', undefined, 10_000)).toMatchObject({ call: { callId } });

    await swept(n2, killedAt);
    // Long enough for a loss told at the sweep to have run out its grace.
    await sleep(AGENT_GRACE_MS + 1_500);
    expect(people.newSince([vera.client], killedAt, ['call.paused', 'call.ended', 'routing.update']), 'what Vera was told after the kill').toEqual([]);
    expect((await cluster.sql<{ state: string }>('SELECT state FROM calls WHERE id = $1', [callId]))[0]?.state).toBe('active');
    expect(await adaInRedis()).toEqual({ nodes: [n3.nodeId], held: (await cluster.sql<{ request_id: string }>('SELECT request_id FROM calls WHERE id = $1', [callId]))[0]!.request_id });

    await hangUp(vera.client, adaBack, callId);
    expect(await adaInRedis()).toEqual({ nodes: [n3.nodeId], held: '' });
    const walt = await people.visitor(n1, 'Walt Visitor');
    const next = await requestCall(walt.client);
    await expectRung(adaBack, walt.client, next, 'ada');
    await cancel(walt.client, next);
  });

  it('puts an agent who does not come back through her grace: the call waits for her for AGENT_GRACE_MS, then the visitor is queued, and so is the next, not rung', async () => {
    const ada = await people.agent(n3, 'ada');
    const vera = await people.visitor(n1);
    const { requestId, callId } = await connectCall(ada, 'ada', vera.client);
    expect((await cluster.ownerOf(requestId))?.node).toBe(n1);

    const killedAt = Date.now();
    await cluster.kill(n3, 'SIGKILL');
    // Her socket went with node 3, which can no longer say so: the call hears it once node 3 is found dead.
    const paused = await vera.client.next('call.paused', (p) => p.legs.agent.socket === 'down', LOSS_TOLD_WITHIN_MS + 5_000);
    const pausedAt = Date.now();
    expect(paused).toEqual({ callId, legs: { agent: { socket: 'down', media: 'unreported' }, visitor: { socket: 'up', media: 'connected' } } });
    expect(pausedAt - killedAt, 'from the kill to the call hearing of it').toBeLessThan(LOSS_TOLD_WITHIN_MS);
    // Told by presence, not by a node taking the request over: node 1 runs it all along.
    expect((await cluster.ownerOf(requestId))?.node).toBe(n1);
    expect(await adaInRedis()).toMatchObject({ nodes: [] });

    // Her grace runs on the request's owner, as for a socket that closed there; then Vera is moved on.
    await vera.client.next('routing.update', (u) => u.requestId === requestId && u.state === 'reassigning', AGENT_GRACE_MS + 10_000);
    await vera.client.next('routing.update', (u) => u.requestId === requestId && u.state === 'queued');
    const trail = await cluster.sql<{ to_state: string; cause: string; at: string }>("SELECT to_state, cause, at FROM call_events WHERE request_id = $1 AND actor = 'routing' ORDER BY id", [requestId]);
    const away = trail.find((row) => row.to_state === 'connected.agentAway');
    const reassigned = trail.find((row) => row.to_state === 'reassigning');
    expect(away?.cause, JSON.stringify(trail)).toBe('agent.lost');
    expect(reassigned?.cause, JSON.stringify(trail)).toMatch(/agentGrace/);
    expect(Number(away!.at) - killedAt, 'from the kill to the loss').toBeGreaterThan(0);
    expect(Number(reassigned!.at) - Number(away!.at), 'the grace Ada had').toBeGreaterThanOrEqual(AGENT_GRACE_MS);
    expect(Number(reassigned!.at) - Number(away!.at), 'the grace Ada had').toBeLessThan(AGENT_GRACE_MS + 2_000);
    const [row] = await cluster.sql<{ state: string; end_reason: string }>('SELECT state, end_reason FROM calls WHERE id = $1', [callId]);
    expect(row).toEqual({ state: 'ended', end_reason: 'reassigned' });

    // Offline for the whole cluster: a visitor asking on another node waits in line behind Vera.
    const walt = await people.visitor(n4, 'Walt Visitor');
    const waiting = await requestCall(walt.client);
    await walt.client.next('routing.update', (u) => u.requestId === waiting && u.state === 'queued' && u.position === 2, 10_000);
    await sleep(1_000);
    expect(updatesSince(vera, pausedAt).filter((update) => update.startsWith('ringing')), 'rings Vera was told of').toEqual([]);
    expect(updatesSince(walt, 0).filter((update) => update.startsWith('ringing')), 'rings Walt was told of').toEqual([]);
    expect(await adaInRedis()).toEqual({ nodes: [], held: '' });
    await cancel(vera.client, requestId);
    await cancel(walt.client, waiting);
  });
});

describe('an owner SIGKILLed right after a request ended', () => {
  it("lets go of the agent its request held once nobody runs the request, and she is rung for the next visitor", async () => {
    const ada = await people.agent(n4, 'ada');
    const vera = await people.visitor(n1);
    const { requestId, callId } = await connectCall(ada, 'ada', vera.client);
    expect((await cluster.ownerOf(requestId))?.node).toBe(n1);

    // Node 1 loses Redis, ends the call (the end is committed in Postgres; the release of Ada, and every
    // message, wait on the link) and dies: the release never reaches Redis.
    cluster.redisLink(n1).freeze();
    expect(await vera.client.emit('call.hangup', { callId })).toEqual({ ok: true });
    await until('the request ended in the store', async () => (await cluster.sql<{ ended_at: string | null }>('SELECT ended_at FROM requests WHERE id = $1', [requestId]))[0]?.ended_at != null);
    const killedAt = Date.now();
    await cluster.kill(n1, 'SIGKILL');
    expect(await adaInRedis()).toEqual({ nodes: [n4.nodeId], held: requestId });

    // Nobody may ring her while the request may still be taken over; once it is known to have ended, she is free.
    const walt = await people.visitor(n4, 'Walt Visitor');
    const next = await requestCall(walt.client);
    await walt.client.next('routing.update', (u) => u.requestId === next && u.state === 'queued');
    const ring = await ada.next('agent.ring', (r) => r.requestId === next, SWEPT_WITHIN_MS + 10_000);
    expect(Date.now() - killedAt, 'from the kill to Ada rung again').toBeLessThan(SWEPT_WITHIN_MS + 8_000);
    expect(ring.requestId).toBe(next);
    await walt.client.next('routing.update', (u) => u.requestId === next && u.state === 'ringing' && u.agentName === 'Ada Lovelace');
    expect(await adaInRedis()).toEqual({ nodes: [n4.nodeId], held: next });
    await cancel(walt.client, next);
  });
});
