/**
 * The bus between nodes against a real Redis (Debian's redis-server): each "node" here has its own Redis
 * connections, lease keeper and ownership, as separate processes would; what each node runs for a command
 * is the test's own handler, standing in for its switchboard.
 */
import { performance } from 'node:perf_hooks';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisServer } from '../../../test/support/redis.ts';
import { createLogger } from '../logger.ts';
import { SwitchboardError } from '../switchboard/entries.ts';
import { ClusterBus, type BusHandlers } from './bus.ts';
import { LeaseKeeper } from './lease.ts';
import { Ownership } from './ownership.ts';
import { createRedis, RedisKeys, whenReady } from './redis.ts';

const LEASES = { ttlMs: 1_500, renewMs: 400, marginMs: 150 };
const BUDGET_MS = 2 * LEASES.ttlMs + LEASES.renewMs;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let redis: RedisServer;
let run = 0;
const cleanups: (() => void | Promise<void>)[] = [];

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function connection(): Promise<Redis> {
  const client = createRedis({ url: redis.url });
  cleanups.push(() => client.disconnect());
  await whenReady(client);
  return client;
}

interface TestNode {
  nodeId: string;
  bus: ClusterBus;
  leases: LeaseKeeper;
  ownership: Ownership;
  /** What this node ran, in order. */
  ran: { name: string; args: unknown[] }[];
  applied: { name: string; args: unknown[] }[];
  /** Requests this node runs; a command about any other is not its to run. */
  runs: Set<string>;
}

/** One node: its own connection, lease keeper, ownership and bus; `handle` is what it runs for a command. */
async function node(keys: RedisKeys, nodeId: string, handle: (name: string, args: unknown[]) => unknown = () => 'done', replyTimeoutMs = 500): Promise<TestNode> {
  const client = await connection();
  const leases = new LeaseKeeper({ redis: client, keys, nodeId, settings: LEASES, onLost: () => {} });
  leases.start();
  cleanups.push(() => leases.stop());
  const ownership = new Ownership({ redis: client, keys, leases, logger: createLogger('silent') });
  const errors: unknown[] = [];
  const bus = new ClusterBus({ redis: client, keys, nodeId, owners: ownership, forwardBudgetMs: BUDGET_MS, replyTimeoutMs, maxBackoffMs: 200, onError: (error) => errors.push(error) });
  const made: TestNode = { nodeId, bus, leases, ownership, ran: [], applied: [], runs: new Set() };
  const handlers: BusHandlers = {
    runs: (requestId) => made.runs.has(requestId),
    run: (name, args) => {
      made.ran.push({ name, args });
      return handle(name, args);
    },
    apply: (name, args) => made.applied.push({ name, args }),
  };
  await bus.start(handlers);
  cleanups.push(() => bus.stop());
  return made;
}

function freshKeys(): RedisKeys {
  return new RedisKeys(`bus-test-${process.pid}-${++run}:`);
}

/** `request` becomes live, owned (leased and run) by `owner`. */
async function own(owner: TestNode, requestId: string, visitorId = `visitor-of-${requestId}`): Promise<void> {
  await owner.ownership.begin(visitorId, requestId);
  owner.runs.add(requestId);
}

const here = () => {
  throw new Error('ran on the sender, which must not run it');
};

describe('a command about a request', () => {
  it('runs at the node that owns the request and answers what the owner answered', async () => {
    const keys = freshKeys();
    const a = await node(keys, 'node-a', (name, args) => ({ name, echoed: args }));
    const b = await node(keys, 'node-b');
    await own(a, 'req-1');

    const answer = await b.bus.forward('req-1', 'hangup', ['call-1', 'agent'], here);
    expect(answer).toEqual({ name: 'hangup', echoed: ['call-1', 'agent'] });
    expect(a.ran).toEqual([{ name: 'hangup', args: ['call-1', 'agent'] }]);
    expect(b.ran).toEqual([]);
  });

  it("brings the owner's refusal back as the same SwitchboardError, with its code and message", async () => {
    const keys = freshKeys();
    const a = await node(keys, 'node-a', () => {
      throw new SwitchboardError('forbidden', 'This call is not ringing for you.');
    });
    const b = await node(keys, 'node-b');
    await own(a, 'req-1');

    const refused = await b.bus.forward('req-1', 'accept', ['ada', 'req-1', 'call-1'], here).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(SwitchboardError);
    expect(refused).toMatchObject({ code: 'forbidden', message: 'This call is not ringing for you.' });
  });

  it('runs on the node itself when it owns the request, without a round trip', async () => {
    const keys = freshKeys();
    const a = await node(keys, 'node-a');
    await own(a, 'req-1');
    expect(await a.bus.forward('req-1', 'cancel', [], () => 'ran here')).toBe('ran here');
    expect(a.ran).toEqual([]);
  });

  it('runs on the sender, to be refused there as unknown, when the request is not live anywhere', async () => {
    const keys = freshKeys();
    const b = await node(keys, 'node-b');
    const refused = await b.bus
      .forward('req-nope', 'cancel', [], () => {
        throw new SwitchboardError('not-found', 'There is no such call request.');
      })
      .catch((error: unknown) => error);
    expect(refused).toMatchObject({ code: 'not-found' });
  });

  it('waits while nobody runs a live request, and reaches the node that takes it over', async () => {
    const keys = freshKeys();
    const a = await node(keys, 'node-a');
    const b = await node(keys, 'node-b', () => 'taken over');
    const c = await node(keys, 'node-c');
    await own(a, 'req-1');
    // The owner dies: it stops answering and renewing, and its lease lapses within the TTL.
    a.bus.stop();
    a.leases.stop();
    const startedAt = performance.now();
    const forwarded = c.bus.forward('req-1', 'hangup', [], here);
    // Node B takes the request over once the lease has lapsed, as its scan would.
    for (;;) {
      const taken = await b.leases.acquire('req-1');
      if (taken.acquired) break;
      await sleep(50);
    }
    b.runs.add('req-1');
    expect(await forwarded).toBe('taken over');
    const waitedMs = performance.now() - startedAt;
    expect(waitedMs).toBeLessThan(BUDGET_MS);
    expect(b.ran.map((ran) => ran.name)).toEqual(['hangup']);
  });

  it('is refused as unavailable once nobody has answered for longer than the budget', async () => {
    const keys = freshKeys();
    const b = await node(keys, 'node-b');
    const client = await connection();
    // A live request whose lease names a node that never answers (nobody listens on its channel).
    await client.sadd(keys.key('live-requests'), 'req-1');
    await client.set(keys.key('lease', 'req-1'), 'node-gone:7', 'PX', 60_000);
    const startedAt = performance.now();
    const refused = await b.bus.forward('req-1', 'hangup', [], here).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(SwitchboardError);
    expect(refused).toMatchObject({ code: 'unavailable' });
    const waitedMs = performance.now() - startedAt;
    expect(waitedMs).toBeGreaterThan(BUDGET_MS - 500);
    expect(waitedMs).toBeLessThan(BUDGET_MS + 1_000);
  });

  it('is run once by its owner when the answer is lost and the sender asks again', async () => {
    const keys = freshKeys();
    let release: () => void = () => {};
    const slow = new Promise<void>((resolve) => (release = resolve));
    // The owner answers only after the sender's reply timeout has passed, so the sender asks again.
    const a = await node(keys, 'node-a', async () => {
      await slow;
      return 'once';
    });
    const b = await node(keys, 'node-b', () => 'unused', 200);
    await own(a, 'req-1');
    const forwarded = b.bus.forward('req-1', 'accept', ['ada'], here);
    await sleep(600);
    release();
    expect(await forwarded).toBe('once');
    expect(a.ran).toHaveLength(1);
  });
});

describe('a fact about a person', () => {
  it('reaches every other node, in the order it was told, and not the node that told it', async () => {
    const keys = freshKeys();
    const [a, b, c] = await Promise.all([node(keys, 'node-a'), node(keys, 'node-b'), node(keys, 'node-c')]);
    await a.bus.tell('visitorLost', ['v-1']);
    await a.bus.tell('visitorReturned', ['v-1']);
    const deadline = performance.now() + 2_000;
    while ((b.applied.length < 2 || c.applied.length < 2) && performance.now() < deadline) await sleep(10);
    for (const other of [b, c]) {
      expect(other.applied).toEqual([
        { name: 'visitorLost', args: ['v-1'] },
        { name: 'visitorReturned', args: ['v-1'] },
      ]);
    }
    expect(a.applied).toEqual([]);
  });
});

describe('what the bus refuses', () => {
  it('ignores a message of a shape it does not take, and goes on answering', async () => {
    const keys = freshKeys();
    const a = await node(keys, 'node-a', () => 'still here');
    const b = await node(keys, 'node-b');
    await own(a, 'req-1');
    const client = await connection();
    const channel = keys.key('bus', 'node-a');
    for (const junk of ['not json', '{}', JSON.stringify({ type: 'call', id: 'x', from: 'node-b', requestId: 'req-1', name: 'hangup', args: 'nope' }), JSON.stringify({ type: 'fact', from: 'x', name: 'a'.repeat(500), args: [] })]) {
      expect(await client.publish(channel, junk)).toBe(1);
    }
    await sleep(100);
    expect(a.ran).toEqual([]);
    expect(a.applied).toEqual([]);
    expect(await b.bus.forward('req-1', 'hangup', [], here)).toBe('still here');
  });
});
