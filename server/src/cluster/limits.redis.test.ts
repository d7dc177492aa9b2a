import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisServer } from '../../../test/support/redis.ts';
import type { LimitSettings } from '../config.ts';
import { limiterFactory, Limits, memoryLimiters } from '../limits.ts';
import { createRedis, RedisKeys, whenReady } from './redis.ts';

const SETTINGS: LimitSettings = {
  login: { accountFailures: 4, addressFailures: 50, windowS: 60, lockS: 30, lockMaxS: 600 },
  visitorSessions: { points: 6, windowS: 60 },
  visitorRequests: { points: 10, windowS: 60 },
  reringWindowMs: 60_000,
  sockets: { perVisitor: 2, perAgentSession: 2, eventsPerSecond: 10, eventBurst: 20, strikesPerMinute: 5, rejectionLogsPerMinute: 5 },
};

let redis: RedisServer;
let run = 0;
const clients: Redis[] = [];

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});
afterEach(() => {
  for (const client of clients.splice(0)) client.disconnect();
});

/** The limits of `count` nodes, each with its own connection to one Redis. */
async function nodes(count: number, server: RedisServer = redis): Promise<Limits[]> {
  const keys = new RedisKeys(`limits-test-${process.pid}-${++run}:`);
  const made: Limits[] = [];
  for (let index = 0; index < count; index++) {
    const client = createRedis({ url: server.url });
    clients.push(client);
    await whenReady(client);
    made.push(new Limits(SETTINGS, limiterFactory({ redis: client, prefix: keys.prefix })));
  }
  return made;
}

describe('limits shared through Redis', () => {
  it('attempts split over two nodes reach the limit at the same total as on one', async () => {
    const [a, b] = await nodes(2);
    const verdicts = [];
    for (let attempt = 0; attempt < SETTINGS.visitorSessions.points + 2; attempt++) {
      verdicts.push((await (attempt % 2 === 0 ? a! : b!).visitorSessions.take('203.0.113.9')).ok);
    }
    expect(verdicts).toEqual([true, true, true, true, true, true, false, false]);
    expect(await a!.visitorSessions.used('203.0.113.9')).toBe(SETTINGS.visitorSessions.points + 2);
    expect(await b!.visitorSessions.used('203.0.113.9')).toBe(SETTINGS.visitorSessions.points + 2);
    // Another key has its own count.
    expect((await b!.visitorSessions.take('203.0.113.10')).ok).toBe(true);
  });

  it('attempts sent at once from three nodes are never let through beyond the limit', async () => {
    const all = await nodes(3);
    const verdicts = await Promise.all(Array.from({ length: 30 }, (_, index) => all[index % 3]!.visitorRequests.take('visitor-1')));
    expect(verdicts.filter((verdict) => verdict.ok)).toHaveLength(SETTINGS.visitorRequests.points);
    const refused = verdicts.find((verdict) => !verdict.ok);
    expect(refused && !refused.ok && refused.retryAfterMs).toBeGreaterThan(0);
  });

  it('wrong passwords tried on different nodes lock the account on every node', async () => {
    const [a, b] = await nodes(2);
    for (let attempt = 0; attempt < SETTINGS.login.accountFailures; attempt++) {
      const node = attempt % 2 === 0 ? a! : b!;
      expect(await node.login.attempt('ada@example.com', `198.51.100.${attempt}`)).toBe(0);
      await node.login.failed('ada@example.com', `198.51.100.${attempt}`);
    }
    const lockedOnA = await a!.login.attempt('ada@example.com', '198.51.100.77');
    const lockedOnB = await b!.login.attempt('ada@example.com', '198.51.100.78');
    expect(lockedOnA).toBeGreaterThan(0);
    expect(lockedOnB).toBeGreaterThan(0);
    expect(lockedOnA).toBeLessThanOrEqual(SETTINGS.login.lockS * 1_000);
  });

  it('open-socket counts stay per node: a dead node could never give its sockets back', async () => {
    const [a, b] = await nodes(2);
    expect((await a!.sockets.visitor.take('visitor-1')).ok).toBe(true);
    expect((await a!.sockets.visitor.take('visitor-1')).ok).toBe(true);
    expect((await a!.sockets.visitor.take('visitor-1')).ok).toBe(false);
    expect((await b!.sockets.visitor.take('visitor-1')).ok).toBe(true);
    expect(await b!.sockets.visitor.used('visitor-1')).toBe(1);
  });

  it('while Redis is down each node falls back to its own count instead of refusing or failing, and shares again after', async () => {
    const server = await startRedis();
    try {
      const [a, b] = await nodes(2, server);
      expect((await a!.visitorSessions.take('203.0.113.9')).ok).toBe(true);
      await server.kill();
      // Each node counts on its own now: the limit holds per node, nobody is refused for the outage.
      const onA = [];
      for (let attempt = 0; attempt < SETTINGS.visitorSessions.points + 1; attempt++) onA.push((await a!.visitorSessions.take('203.0.113.9')).ok);
      expect(onA).toEqual([true, true, true, true, true, true, false]);
      expect((await b!.visitorSessions.take('203.0.113.9')).ok).toBe(true);
      await server.restart({ keepData: false });
      for (const client of clients) await whenReady(client, 10_000);
      // Back on the shared count (empty after a restart without data), counted from both nodes.
      for (let attempt = 0; attempt < SETTINGS.visitorSessions.points; attempt++) {
        expect((await (attempt % 2 === 0 ? a! : b!).visitorSessions.take('203.0.113.9')).ok).toBe(true);
      }
      expect((await a!.visitorSessions.take('203.0.113.9')).ok).toBe(false);
      expect((await b!.visitorSessions.take('203.0.113.9')).ok).toBe(false);
    } finally {
      await server.stop();
    }
  });

  it('without Redis the factory is the memory one, as for a single process', () => {
    expect(limiterFactory({ redis: undefined, prefix: 'x:' })).toBe(memoryLimiters);
  });
});
