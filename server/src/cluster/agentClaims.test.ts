import { performance } from 'node:perf_hooks';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisServer } from '../../../test/support/redis.ts';
import { AgentClaims, PresenceResyncError, type AgentRegistration, type PresenceChange, type PresenceSettings } from './agentClaims.ts';
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
const ada: AgentRegistration = { id: 'ada', name: 'Ada', pools: ['support'], chosen: 'available', lastAssignedAt: 300 };
const bob: AgentRegistration = { id: 'bob', name: 'Bob', pools: ['support', 'sales'], chosen: 'available', lastAssignedAt: 100 };
const cy: AgentRegistration = { id: 'cy', name: 'Cy', pools: ['support'], chosen: 'available', lastAssignedAt: null };

let redis: RedisServer;
let run = 0;
const clients: Redis[] = [];
const nodes: AgentClaims[] = [];

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});
afterEach(async () => {
  for (const node of nodes.splice(0)) await node.stop();
  for (const client of clients.splice(0)) client.disconnect();
});

/** Nodes of one cluster: each its own connection, all on one keyspace. */
async function cluster(count: number, { server = redis, settings = QUICK }: { server?: RedisServer; settings?: PresenceSettings } = {}) {
  const keys = new RedisKeys(`claims-test-${process.pid}-${++run}:`);
  const made = [];
  for (let index = 0; index < count; index++) {
    const client = createRedis({ url: server.url });
    clients.push(client);
    await whenReady(client);
    const errors: unknown[] = [];
    const claims = new AgentClaims({ redis: client, keys, nodeId: `node-${index + 1}`, settings, onError: (error) => errors.push(error) });
    nodes.push(claims);
    made.push({ claims, client, errors });
  }
  return { keys, nodes: made };
}

const statuses = async (claims: AgentClaims, pool: string) => Object.fromEntries((await claims.view(pool)).agents.map((agent) => [agent.id, agent.status]));

describe('agent claims on a real Redis', () => {
  it('claims the never-assigned first, then the least recently assigned; held agents are busy for everyone', async () => {
    const { nodes: [a, b] } = await cluster(2);
    for (const agent of [ada, bob, cy]) await a!.claims.online(agent);
    const first = await b!.claims.claim('support', 'req-1');
    const second = await a!.claims.claim('support', 'req-2');
    const third = await b!.claims.claim('support', 'req-3');
    expect([first.agent?.id, second.agent?.id, third.agent?.id]).toEqual(['cy', 'bob', 'ada']);
    expect(third.agent).toEqual({ id: 'ada', name: 'Ada', pools: ['support'], status: 'busy', lastAssignedAt: 300 });
    expect((await a!.claims.claim('support', 'req-4')).agent).toBeNull();
    expect(await statuses(a!.claims, 'support')).toEqual({ cy: 'busy', bob: 'busy', ada: 'busy' });
    // Bob is busy in every pool he serves, not only the one he was claimed from.
    expect((await a!.claims.claim('sales', 'req-5')).agent).toBeNull();
  });

  it('skips excluded agents, and a request keeps the one agent it holds when it claims again', async () => {
    const { nodes: [a] } = await cluster(1);
    for (const agent of [ada, bob, cy]) await a!.claims.online(agent);
    expect((await a!.claims.claim('support', 'req-1', ['cy', 'bob'])).agent?.id).toBe('ada');
    expect((await a!.claims.claim('support', 'req-1', ['cy', 'bob'])).agent?.id).toBe('ada');
    expect((await a!.claims.claim('support', 'req-1')).agent?.id).toBe('ada');
    expect((await a!.claims.shortlist('support')).agents.map((agent) => agent.id)).toEqual(['cy', 'bob']);
  });

  it('a release by a request that does not hold the agent changes nothing; the holder’s release frees it', async () => {
    const { nodes: [a, b] } = await cluster(2);
    await a!.claims.online(ada);
    await a!.claims.claim('support', 'req-1');
    const before = await a!.claims.view('support');
    expect((await b!.claims.release('ada', 'req-2')).released).toBe(false);
    expect((await b!.claims.release('nobody', 'req-1')).released).toBe(false);
    expect((await a!.claims.view('support')).agents).toEqual(before.agents);
    expect((await b!.claims.claim('support', 'req-2')).agent).toBeNull();
    expect((await b!.claims.release('ada', 'req-1')).released).toBe(true);
    expect((await b!.claims.claim('support', 'req-2')).agent?.id).toBe('ada');
  });

  it('an assignment moves the agent to the back of the line; an older time changes nothing', async () => {
    const { nodes: [a] } = await cluster(1);
    for (const agent of [ada, bob, cy]) await a!.claims.online(agent);
    await a!.claims.assigned('cy', 500);
    expect((await a!.claims.shortlist('support')).agents.map((agent) => agent.id)).toEqual(['bob', 'ada', 'cy']);
    await a!.claims.assigned('cy', 50);
    expect((await a!.claims.shortlist('support')).agents.map((agent) => [agent.id, agent.lastAssignedAt])).toEqual([
      ['bob', 100],
      ['ada', 300],
      ['cy', 500],
    ]);
  });

  it('an agent is online while any node has a socket for them, and away agents are never claimed', async () => {
    const { nodes: [a, b] } = await cluster(2);
    await a!.claims.online(ada);
    await b!.claims.online(ada);
    await a!.claims.offline('ada');
    expect(await statuses(a!.claims, 'support')).toEqual({ ada: 'available' });
    await b!.claims.setChosen('ada', 'away');
    expect(await statuses(a!.claims, 'support')).toEqual({ ada: 'away' });
    expect((await a!.claims.claim('support', 'req-1')).agent).toBeNull();
    await a!.claims.setChosen('ada', 'available');
    await b!.claims.offline('ada');
    expect(await statuses(a!.claims, 'support')).toEqual({ ada: 'offline' });
    expect((await a!.claims.claim('support', 'req-1')).agent).toBeNull();
    // The chosen status outlives the sockets: coming back does not reset it to the registration's.
    await a!.claims.setChosen('ada', 'away');
    await b!.claims.online({ ...ada, chosen: 'available' });
    expect(await statuses(a!.claims, 'support')).toEqual({ ada: 'away' });
  });

  it('a registration with other pools leaves the old ones', async () => {
    const { nodes: [a] } = await cluster(1);
    await a!.claims.online(bob);
    await a!.claims.online({ ...bob, pools: ['sales'] });
    expect((await a!.claims.view('support')).agents).toEqual([]);
    expect((await a!.claims.claim('support', 'req-1')).agent).toBeNull();
    expect((await a!.claims.claim('sales', 'req-1')).agent?.id).toBe('bob');
  });

  it('a hold of a given agent works whatever its status, but never on an agent another request holds', async () => {
    const { nodes: [a, b] } = await cluster(2);
    // A restored ring holds an agent who has not come back yet; they come back busy.
    expect(await a!.claims.hold('ada', 'req-1')).toMatchObject({ held: true });
    await b!.claims.online(ada);
    expect(await statuses(b!.claims, 'support')).toEqual({ ada: 'busy' });
    expect(await b!.claims.hold('ada', 'req-2')).toMatchObject({ held: false, reason: 'busy' });
    expect(await a!.claims.hold('ada', 'req-1')).toMatchObject({ held: true });
    await b!.claims.online(cy);
    expect(await a!.claims.hold('cy', 'req-1')).toMatchObject({ held: false, reason: 'holding', agentId: 'ada' });
  });

  it('logging out takes the agent out of presence with its hold', async () => {
    const { nodes: [a, b] } = await cluster(2);
    await a!.claims.online(ada);
    await b!.claims.online(ada);
    await a!.claims.claim('support', 'req-1');
    await b!.claims.forget('ada');
    expect((await a!.claims.view('support')).agents).toEqual([]);
    expect((await a!.claims.release('ada', 'req-1')).released).toBe(false);
    // The request holds nothing now, so it can claim the next agent.
    await a!.claims.online(cy);
    expect((await a!.claims.claim('support', 'req-1')).agent?.id).toBe('cy');
  });

  it('every change is announced to every node with its number, in order', async () => {
    const { nodes: [a, b] } = await cluster(2);
    await b!.claims.start();
    const heard: PresenceChange[] = [];
    b!.claims.onChange((change) => heard.push(change));
    const online = await a!.claims.online(ada);
    const claimed = await a!.claims.claim('support', 'req-1');
    await a!.claims.release('ada', 'req-2');
    const released = await a!.claims.release('ada', 'req-1');
    await eventually('three changes heard', () => heard.length >= 3);
    expect(heard.filter((change) => 'seq' in change)).toEqual([
      { seq: online.seq, agents: ['ada'] },
      { seq: claimed.seq, agents: ['ada'] },
      { seq: released.seq, agents: ['ada'] },
    ]);
  });

  it('a node that stops heartbeating has its agents taken offline by the others; it registers them again when it returns', async () => {
    const { nodes: [a, b] } = await cluster(2);
    await a!.claims.start();
    await b!.claims.start();
    await a!.claims.online(ada);
    await a!.claims.claim('support', 'req-1');
    await a!.claims.online(cy);
    const heard: PresenceChange[] = [];
    b!.claims.onChange((change) => heard.push(change));
    // The node stalls (or dies): its alive key lapses and another node's heartbeat sweeps it.
    await a!.claims.stop();
    await eventually('the dead node swept', async () => (await statuses(b!.claims, 'support')).cy === 'offline');
    expect(await statuses(b!.claims, 'support')).toEqual({ ada: 'offline', cy: 'offline' });
    expect(heard.some((change) => 'agents' in change && change.agents.includes('cy'))).toBe(true);
    expect((await b!.claims.claim('support', 'req-2')).agent).toBeNull();
    // Holds belong to the request, not the node: whoever runs req-1 now finds Ada still held.
    expect(await b!.claims.hold('ada', 'req-2')).toMatchObject({ held: false, reason: 'busy' });
    // The stalled node comes back: its first heartbeat finds it was swept and puts its agents back.
    await a!.claims.heartbeat();
    await eventually('the agents back', async () => (await statuses(b!.claims, 'support')).cy === 'available');
    expect(await statuses(b!.claims, 'support')).toEqual({ ada: 'busy', cy: 'available' });
  });

  it('after Redis lost its data, nodes put back their agents and holds before anyone can claim', async () => {
    const server = await startRedis();
    try {
      const { nodes: [a, b] } = await cluster(2, { server });
      await a!.claims.online(ada);
      await a!.claims.online(bob);
      await b!.claims.online(cy);
      await a!.claims.claim('support', 'req-1', ['cy']);
      expect((await b!.claims.claim('support', 'req-1')).agent?.id).toBe('bob');
      await b!.claims.start();
      const heard: PresenceChange[] = [];
      b!.claims.onChange((change) => heard.push(change));
      await server.kill();
      await server.restart({ keepData: false });
      await eventually('both connected', () => clients.every((client) => client.status === 'ready'));
      // The first node to speak finds the keyspace new: claims wait, even for agents nobody held.
      await expect(b!.claims.claim('support', 'req-2')).rejects.toBeInstanceOf(PresenceResyncError);
      await a!.claims.heartbeat();
      await eventually('presence back', async () => Object.keys(await statuses(b!.claims, 'support')).length === 3);
      expect(await statuses(b!.claims, 'support')).toEqual({ ada: 'available', bob: 'busy', cy: 'available' });
      await eventually('listeners told to re-read', () => heard.some((change) => 'resync' in change));
      // Once the grace is over, the put-back hold is respected: Bob is not rung twice.
      let claimed: Awaited<ReturnType<AgentClaims['claim']>> | null = null;
      const deadline = performance.now() + QUICK.graceMs + 1_000;
      while (!claimed) {
        try {
          claimed = await b!.claims.claim('sales', 'req-2');
        } catch (error) {
          expect(error).toBeInstanceOf(PresenceResyncError);
          expect(performance.now()).toBeLessThan(deadline);
          await sleep(50);
        }
      }
      expect(claimed.agent).toBeNull();
      expect((await b!.claims.claim('support', 'req-2')).agent?.id).toBe('cy');
      expect((await a!.claims.release('bob', 'req-1')).released).toBe(true);
    } finally {
      await server.stop();
    }
  });

  it('while Redis is down, presence calls fail at once rather than hang, and work again when it is back', async () => {
    const server = await startRedis();
    try {
      const { nodes: [a] } = await cluster(1, { server });
      await a!.claims.online(ada);
      await server.kill();
      const startedAt = performance.now();
      await expect(a!.claims.claim('support', 'req-1')).rejects.toThrow();
      expect(performance.now() - startedAt).toBeLessThan(1_000);
      await server.restart({ keepData: false });
      await eventually('connected again', () => clients.every((client) => client.status === 'ready'));
      await a!.claims.heartbeat().catch(() => {});
      await eventually('registered again', async () => (await statuses(a!.claims, 'support')).ada === 'available');
    } finally {
      await server.stop();
    }
  });

  it('refuses bad input with a clear error and changes nothing in Redis', async () => {
    const { nodes: [a], keys } = await cluster(1);
    const client = clients[0]!;
    await a!.claims.online(ada);
    const before = await client.keys(`${keys.prefix}*`);
    const snapshot = async () => Object.fromEntries(await Promise.all(before.filter((key) => key.includes('agent:')).map(async (key) => [key, await client.hgetall(key)])));
    const state = await snapshot();
    const bad: [Promise<unknown>, RegExp][] = [
      [a!.claims.claim('', 'req-1'), /pool/],
      [a!.claims.claim('support', ''), /request id/],
      [a!.claims.claim('support', 'req-1', 'ada' as unknown as string[]), /excluded/],
      [a!.claims.claim('support', 'req-1', [42 as unknown as string]), /excluded/],
      [a!.claims.claim('support', 'x'.repeat(201)), /request id/],
      [a!.claims.online({ ...ada, pools: 'support' as unknown as string[] }), /pools/],
      [a!.claims.online({ ...ada, chosen: 'busy' as 'away' }), /chosen/],
      [a!.claims.online({ ...ada, id: '' }), /agent id/],
      [a!.claims.online(null as unknown as AgentRegistration), /registration/],
      [a!.claims.online({ ...ada, lastAssignedAt: -5 }), /lastAssignedAt/],
      [a!.claims.setChosen('ada', 'offline' as 'away'), /chosen/],
      [a!.claims.assigned('ada', Number.NaN), /at/],
      [a!.claims.release('ada', undefined as unknown as string), /request id/],
      [a!.claims.hold(7 as unknown as string, 'req-1'), /agent id/],
      [a!.claims.shortlist('support', [], 0), /shortlist/],
      [a!.claims.view(''), /pool/],
    ];
    for (const [attempt, message] of bad) await expect(attempt).rejects.toThrow(message);
    expect(() => a!.claims.disown('')).toThrow(/request id/);
    expect(() => new AgentClaims({ redis: client, keys, nodeId: 'a b' })).toThrow(/node id/);
    expect(() => new AgentClaims({ redis: client, keys, nodeId: 'a', settings: { heartbeatMs: 3_000, nodeTtlMs: 5_000 } })).toThrow(/heartbeatMs/);
    expect(await client.keys(`${keys.prefix}*`)).toEqual(expect.arrayContaining(before));
    expect((await client.keys(`${keys.prefix}*`)).length).toBe(before.length);
    expect(await snapshot()).toEqual(state);
  });
});

describe('agent claims without Redis', () => {
  it('start() gives up after its timeout when Redis cannot be reached, instead of hanging', async () => {
    const server = await startRedis();
    const url = server.url;
    await server.stop();
    const client = createRedis({ url });
    try {
      const claims = new AgentClaims({ redis: client, keys: new RedisKeys('down:'), nodeId: 'n1' });
      await expect(claims.start({ timeoutMs: 300 })).rejects.toThrow(/within 300 ms/);
      await claims.stop();
      await expect(claims.claim('support', 'req-1')).rejects.toThrow();
    } finally {
      client.disconnect();
    }
  });
});
