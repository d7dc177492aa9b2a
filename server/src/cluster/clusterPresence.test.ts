import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Redis } from 'ioredis';
import { createActor } from 'xstate';
import { routingMachine } from '@callchart/machines';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisServer } from '../../../test/support/redis.ts';
import { createLogger } from '../logger.ts';
import type { ChosenStatus } from '../presence.ts';
import { openStore, type Store } from '../store.ts';
import { AgentDirectory } from '../switchboard/agentDirectory.ts';
import type { RequestEntry } from '../switchboard/entries.ts';
import { Journals } from '../switchboard/journal.ts';
import { PresenceFeed } from '../switchboard/presenceFeed.ts';
import { AgentClaims, type PresenceSettings } from './agentClaims.ts';
import { ClusterPresence, type ChosenMemory, type QueuedRequestHere } from './clusterPresence.ts';
import { createRedis, RedisKeys, whenReady } from './redis.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function eventually(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

const QUICK: PresenceSettings = { heartbeatMs: 100, nodeTtlMs: 400, graceMs: 1_000 };
const ada = { id: 'ada', name: 'Ada', pools: ['support'] };
const bob = { id: 'bob', name: 'Bob', pools: ['support'] };
const cy = { id: 'cy', name: 'Cy', pools: ['support'] };

function memory(): ChosenMemory & { chosen: Map<string, ChosenStatus | null> } {
  const chosen = new Map<string, ChosenStatus | null>();
  return { chosen, recall: (agentId) => chosen.get(agentId) ?? null, remember: (agentId, status) => chosen.set(agentId, status) };
}

interface Node {
  client: Redis;
  claims: AgentClaims;
  presence: ClusterPresence;
  errors: unknown[];
}

let redis: RedisServer;
let run = 0;
const clients: Redis[] = [];
const stops: (() => unknown)[] = [];

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
  for (const client of clients.splice(0)) client.disconnect();
});

async function connection(): Promise<Redis> {
  const client = createRedis({ url: redis.url });
  clients.push(client);
  await whenReady(client);
  return client;
}

/** Nodes of one cluster on one Redis: each its own connection, claims and presence, all on one keyspace. */
async function cluster(count: number, lastAssignedAt: (agentId: string) => number | null = () => null) {
  const keys = new RedisKeys(`cluster-presence-${process.pid}-${++run}:`);
  const nodes: Node[] = [];
  for (let index = 0; index < count; index++) {
    const client = await connection();
    const errors: unknown[] = [];
    const claims = new AgentClaims({ redis: client, keys, nodeId: `node-${index + 1}`, settings: QUICK, onError: (error) => errors.push(error) });
    await claims.start();
    stops.push(() => claims.stop());
    const presence = new ClusterPresence({ claims, lastAssignedAt, memory: memory(), onError: (error) => errors.push(error) });
    await presence.start(['support']);
    stops.push(() => presence.stop());
    nodes.push({ client, claims, presence, errors });
  }
  return { keys, nodes };
}

const listed = (node: Node, pool = 'support', tried: string[] = []) => node.presence.shortlist(pool, tried).map((agent) => agent.id);

describe('cluster presence on a real Redis', () => {
  it("lists an agent online on one node in every node's shortlist; away or offline there takes them out everywhere", async () => {
    const { nodes: [a, b] } = await cluster(2);
    expect(listed(a!)).toEqual([]);
    b!.presence.connect(ada);
    await eventually('Ada listed on node A', () => listed(a!).includes('ada'));
    expect(a!.presence.shortlist('support', [])[0]).toEqual({ id: 'ada', name: 'Ada', pools: ['support'], status: 'available', lastAssignedAt: null });
    // Node B shows her among its own agents; node A has no socket of hers.
    expect(b!.presence.view().map((agent) => [agent.id, agent.status])).toEqual([['ada', 'available']]);
    expect(a!.presence.view()).toEqual([]);

    b!.presence.setChosen('ada', 'away');
    await eventually('Ada gone from node A once away', () => !listed(a!).includes('ada'));
    b!.presence.setChosen('ada', 'available');
    await eventually('Ada back on node A', () => listed(a!).includes('ada'));
    b!.presence.disconnect('ada');
    await eventually('Ada gone from node A once offline', () => !listed(a!).includes('ada'));
    expect(b!.presence.view().map((agent) => [agent.id, agent.status])).toEqual([['ada', 'offline']]);
  });

  it('lets exactly one of two requests on two nodes hold an agent both chose to ring', async () => {
    const { nodes: [a, b] } = await cluster(2);
    const agents = ['ada', 'bob', 'cy', 'dee', 'eve', 'fay'];
    for (const id of agents) a!.presence.connect({ id, name: id, pools: ['support'] });
    await a!.presence.settled();
    for (const [round, agentId] of agents.entries()) {
      a!.presence.ring(agentId, `req-a${round}`);
      b!.presence.ring(agentId, `req-b${round}`);
      const [onA, onB] = await Promise.all([a!.presence.claimRing(agentId, `req-a${round}`), b!.presence.claimRing(agentId, `req-b${round}`)]);
      expect([onA, onB].filter(Boolean)).toHaveLength(1);
      const winner = onA ? `req-a${round}` : `req-b${round}`;
      expect(await a!.claims.heldBy(winner)).toBe(agentId);
      expect(await a!.claims.heldBy(onA ? `req-b${round}` : `req-a${round}`)).toBeNull();
    }
    // The loser gave up wanting the agent: no release of its could let the winner's hold go.
    await Promise.all([a!.presence.settled(), b!.presence.settled()]);
    expect((await a!.claims.view('support')).agents.every((agent) => agent.status === 'busy')).toBe(true);
  });

  it('makes a released agent claimable again, and listed again on the other node', async () => {
    const { nodes: [a, b] } = await cluster(2);
    a!.presence.connect(ada);
    await eventually('Ada listed on node B', () => listed(b!).includes('ada'));
    a!.presence.ring('ada', 'req-1');
    expect(await a!.presence.claimRing('ada', 'req-1')).toBe(true);
    await eventually('Ada unlisted on node B while rung', () => !listed(b!).includes('ada'));
    // Not even listed on node A, for its other requests.
    expect(listed(a!)).toEqual([]);
    b!.presence.ring('ada', 'req-2');
    expect(await b!.presence.claimRing('ada', 'req-2')).toBe(false);

    a!.presence.release('ada', 'req-1');
    await eventually('Ada listed on node B after the release', () => listed(b!).includes('ada'));
    b!.presence.ring('ada', 'req-2');
    expect(await b!.presence.claimRing('ada', 'req-2')).toBe(true);
  });

  it('offers the least recently assigned first, whichever node assigned them', async () => {
    const { nodes: [a, b, c] } = await cluster(3);
    a!.presence.connect(ada);
    b!.presence.connect(bob);
    c!.presence.connect(cy);
    await eventually('all three listed on node C', () => listed(c!).length === 3);
    a!.presence.assigned('ada', 200);
    b!.presence.assigned('bob', 100);
    await eventually('the order on node C follows the assignments', () => listed(c!).join() === 'cy,bob,ada');
    c!.presence.assigned('cy', 300);
    await eventually('Cy, just assigned, goes last', () => listed(a!).join() === 'bob,ada,cy');
    // An older time than Redis has changes nothing.
    a!.presence.assigned('bob', 50);
    await a!.presence.settled();
    await b!.presence.settled();
    expect(listed(b!)).toEqual(['bob', 'ada', 'cy']);
    expect(listed(b!, 'support', ['bob'])).toEqual(['ada', 'cy']);
  });

  it('holds nobody for a ring withdrawn before its claim, nor for a request this node does not run', async () => {
    const { nodes: [a] } = await cluster(1);
    a!.presence.connect(ada);
    await a!.presence.settled();
    a!.presence.ring('ada', 'req-1');
    a!.presence.release('ada', 'req-1');
    expect(await a!.presence.claimRing('ada', 'req-1')).toBe(false);
    expect(await a!.presence.claimRing('ada', 'req-unknown')).toBe(false);
    await a!.presence.settled();
    expect(await a!.claims.heldBy('req-1')).toBeNull();
    expect(await a!.claims.heldBy('req-unknown')).toBeNull();
    expect(listed(a!)).toEqual(['ada']);
  });

  it('lets go of an agent a request still holds (its release lost) when the request rings another', async () => {
    const { nodes: [a] } = await cluster(1);
    a!.presence.connect(ada);
    a!.presence.connect(bob);
    await a!.presence.settled();
    // As if the release of an earlier ring never reached Redis.
    expect(await a!.claims.hold('ada', 'req-1')).toMatchObject({ held: true });
    a!.presence.ring('bob', 'req-1');
    expect(await a!.presence.claimRing('bob', 'req-1')).toBe(true);
    expect(await a!.claims.heldBy('req-1')).toBe('bob');
    await eventually('Ada free again', () => listed(a!).includes('ada'));
  });

  it("keeps a request's hold through a takeover: the new owner claims it again; what it no longer rings is let go", async () => {
    const { nodes: [a, b, c] } = await cluster(3);
    a!.presence.connect(ada);
    a!.presence.connect(bob);
    await a!.presence.settled();
    b!.presence.ring('ada', 'req-1');
    expect(await b!.presence.claimRing('ada', 'req-1')).toBe(true);
    b!.presence.disown('req-1');
    c!.presence.adopt('req-1', 'ada');
    // The new owner sends the ring again: its claim holds the same agent for the same request.
    expect(await c!.presence.claimRing('ada', 'req-1')).toBe(true);
    a!.presence.ring('ada', 'req-2');
    expect(await a!.presence.claimRing('ada', 'req-2')).toBe(false);
    expect(await a!.claims.heldBy('req-1')).toBe('ada');

    // A request whose tree rings nobody any more, though Redis still has it holding Bob.
    expect(await b!.claims.hold('bob', 'req-3')).toMatchObject({ held: true });
    c!.presence.adopt('req-3', null);
    await eventually("Bob let go of by the request's new owner", async () => (await a!.claims.heldBy('req-3')) === null);
    await eventually('Bob listed again', () => listed(a!).includes('bob'));
  });

  it('makes a ring wait out the grace after Redis lost its data, so a hold being put back is never taken', async () => {
    const { nodes: [a, b] } = await cluster(2);
    a!.presence.connect(ada);
    await a!.presence.settled();
    a!.presence.ring('ada', 'req-1');
    expect(await a!.presence.claimRing('ada', 'req-1')).toBe(true);
    const outsider = await connection();
    await outsider.flushall();
    // Node B's claim is the first script to find the empty keyspace, or it comes right after: either way the
    // grace is open, and node A puts Ada and its hold back before it ends.
    b!.presence.ring('ada', 'req-2');
    expect(await b!.presence.claimRing('ada', 'req-2')).toBe(false);
    expect(await a!.claims.heldBy('req-1')).toBe('ada');
    expect(await a!.claims.heldBy('req-2')).toBeNull();
  });

  it("tells each node's queued requests their place in the cluster-wide line, oldest first, as requests join and leave", async () => {
    const { keys, nodes: [a, b] } = await cluster(2);
    const told = new Map<string, number[]>();
    const member = (requestId: string, createdAt: number, pool = 'support'): QueuedRequestHere => ({
      requestId,
      pool,
      createdAt,
      told: null,
      tell: (position) => told.set(requestId, [...(told.get(requestId) ?? []), position]),
    });
    const last = (requestId: string) => told.get(requestId)?.at(-1);
    const r1 = member('req-1', 200);
    const r2 = member('req-2', 100);
    const r3 = member('req-3', 300);
    const other = member('req-4', 50, 'sales');
    a!.presence.queueMoved(r1, true);
    await eventually('req-1 first in line', () => last('req-1') === 1);
    b!.presence.queueMoved(r2, true);
    b!.presence.queueMoved(other, true);
    await eventually('req-2, older, goes before req-1', () => last('req-2') === 1 && last('req-1') === 2);
    a!.presence.queueMoved(r3, true);
    await eventually('req-3 third', () => last('req-3') === 3);
    expect(last('req-4')).toBe(1);
    b!.presence.queueMoved(r2, false);
    await eventually('everyone moves up once req-2 leaves', () => last('req-1') === 1 && last('req-3') === 2);
    await Promise.all([a!.presence.settled(), b!.presence.settled()]);
    // Each was told each place once.
    expect(Object.fromEntries(told)).toEqual({ 'req-1': [1, 2, 1], 'req-2': [1], 'req-3': [3, 2], 'req-4': [1] });
    expect(await a!.client.zrange(keys.key('queue', 'support'), 0, -1)).toEqual(['req-1', 'req-3']);

    // Redis loses its data: the node puts its queued requests back.
    await a!.client.flushall();
    await eventually('the queue put back by both nodes', async () => {
      const [support, sales] = await Promise.all([a!.client.zrange(keys.key('queue', 'support'), 0, -1), a!.client.zrange(keys.key('queue', 'sales'), 0, -1)]);
      return support.join() === 'req-1,req-3' && sales.join() === 'req-4';
    });
  });

  it('refuses bad input with a clear error, sends nothing for it, and does not retry it', async () => {
    expect(() => new ClusterPresence({ claims: {} as AgentClaims, lastAssignedAt: () => null, memory: memory(), settings: { claimAttempts: 0 } })).toThrow(
      /claimAttempts must be a whole number above 0/,
    );
    const { nodes: [a] } = await cluster(1);
    a!.presence.ring('', 'req-1');
    expect(await a!.presence.claimRing('', 'req-1')).toBe(false);
    a!.presence.connect({ id: 'x'.repeat(500), name: 'Long', pools: ['support'] });
    a!.presence.setChosen('ada', 'busy' as ChosenStatus);
    // Settles: a write refused as bad is not tried again.
    await a!.presence.settled();
    const messages = a!.errors.map((error) => (error as Error).message);
    expect(messages).toEqual([
      expect.stringMatching(/an agent id must be a string of 1-200 characters/),
      expect.stringMatching(/an agent id must be a string of 1-200 characters/),
      expect.stringMatching(/a chosen status is 'available' or 'away'/),
    ]);
    expect(a!.errors.every((error) => error instanceof TypeError)).toBe(true);
    expect((await a!.claims.view('support')).agents).toEqual([]);
    expect(a!.presence.view()).toEqual([]);
    // And the node goes on working.
    a!.presence.connect(ada);
    await eventually('Ada listed', () => listed(a!).includes('ada'));
  });
});

describe('the presence feed of a cluster node', () => {
  let dir: string;
  let store: Store;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'callchart-feed-'));
    store = await openStore({ databasePath: path.join(dir, 'feed.db') });
  });
  afterAll(async () => {
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function feedOn(claims: AgentClaims | null, deliveries: { count: number }) {
    const journals = new Journals(store, { deliver: () => {} }, createLogger('silent'));
    const feed = new PresenceFeed(new AgentDirectory(), journals.open(), () => deliveries.count++, { claims });
    stops.push(() => feed.stop());
    return feed;
  }

  it("delivers fresh lists to this node's waiting requests when another node changes presence, and rings carry claims", async () => {
    const keys = new RedisKeys(`cluster-feed-${process.pid}-${++run}:`);
    const [one, two] = await Promise.all([connection(), connection()]);
    const claimsA = new AgentClaims({ redis: one, keys, nodeId: 'node-a', settings: QUICK });
    const claimsB = new AgentClaims({ redis: two, keys, nodeId: 'node-b', settings: QUICK });
    for (const claims of [claimsA, claimsB]) {
      await claims.start();
      stops.push(() => claims.stop());
    }
    const onA = { count: 0 };
    const feedA = feedOn(claimsA, onA);
    const feedB = feedOn(claimsB, { count: 0 });
    await feedA.load(store);
    await feedB.load(store);
    // A request of node A's waits for someone in the pool.
    expect(feedA.shortlist('support', [])).toEqual([]);
    await feedA.settled();
    const before = onA.count;
    feedB.presence.connect(ada);
    await eventually('node A delivers a list with Ada', () => onA.count > before);
    expect(feedA.shortlist('support', []).map((agent) => agent.id)).toEqual(['ada']);

    expect(feedA.ring('ada', 'req-1')).toEqual({ agentId: 'ada', requestId: 'req-1' });
    expect(await feedA.claimRing!('ada', 'req-1')).toBe(true);
    expect(feedA.shortlist('support', [])).toEqual([]);
  });

  it('in one process tells queued requests their places, first come first served per pool', () => {
    const feed = feedOn(null, { count: 0 });
    const queued = (requestId: string, pool: string, createdAt: number) => {
      const actor = createActor(routingMachine, { input: { requestId, visitorId: requestId, pool, at: createdAt } });
      actor.start();
      expect(actor.getSnapshot().matches('queued')).toBe(true);
      const entry = { requestId, visitorId: requestId, visitorName: requestId, pool, createdAt, actor } as unknown as RequestEntry;
      feed.queueMoved(entry, true);
      return entry;
    };
    const place = (entry: RequestEntry) => entry.actor.getSnapshot().context.queuePosition;
    const later = queued('req-1', 'support', 200);
    expect(place(later)).toBe(1);
    const earlier = queued('req-2', 'support', 100);
    const elsewhere = queued('req-3', 'sales', 300);
    expect([place(earlier), place(later), place(elsewhere)]).toEqual([1, 2, 1]);
    earlier.actor.send({ type: 'visitor.cancelled', at: 400 });
    feed.queueMoved(earlier, false);
    expect(place(later)).toBe(1);
    // Leaving twice, or a request never queued leaving, changes nothing.
    feed.queueMoved(earlier, false);
    expect([place(later), place(elsewhere)]).toEqual([1, 1]);
  });

  it('in one process holds the agent at once and needs no claim', () => {
    const deliveries = { count: 0 };
    const feed = feedOn(null, deliveries);
    feed.presence.connect(ada);
    expect(feed.claimRing).toBeUndefined();
    expect(feed.ring('ada', 'req-1')).toBeUndefined();
    expect(feed.presence.view()[0]?.status).toBe('busy');
    // A change an effect made goes out when the step ends.
    expect(deliveries.count).toBe(1);
    feed.flush();
    expect(deliveries.count).toBe(2);
  });
});
