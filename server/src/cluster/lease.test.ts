import { performance } from 'node:perf_hooks';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisServer } from '../../../test/support/redis.ts';
import { LeaseKeeper, type LeaseSettings, type LostLease } from './lease.ts';
import { createRedis, RedisKeys, whenReady } from './redis.ts';

const FAST: LeaseSettings = { ttlMs: 1_000, renewMs: 200, marginMs: 200 };
/** Room for a Redis restart and the reconnect after it inside one TTL. */
const ROOMY: LeaseSettings = { ttlMs: 3_000, renewMs: 500, marginMs: 300 };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls (bounded) until `check` holds; fails with `what` otherwise. */
async function eventually(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

let redis: RedisServer;
let run = 0;
let keys: RedisKeys;
const clients: Redis[] = [];
const keepers: LeaseKeeper[] = [];

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});
afterEach(() => {
  for (const keeper of keepers.splice(0)) keeper.stop();
  for (const client of clients.splice(0)) client.disconnect();
});

/** A separate connection per node, as separate processes would have. */
async function connection(server: RedisServer = redis, commandTimeoutMs?: number): Promise<Redis> {
  const client = createRedis({ url: server.url, ...(commandTimeoutMs ? { commandTimeoutMs } : {}) });
  clients.push(client);
  await whenReady(client);
  return client;
}

function freshKeys(): RedisKeys {
  keys = new RedisKeys(`lease-test-${process.pid}-${++run}:`);
  return keys;
}

async function keeper(nodeId: string, settings: LeaseSettings, options: { server?: RedisServer; commandTimeoutMs?: number } = {}) {
  const lost: (LostLease & { at: number })[] = [];
  const retaken: string[] = [];
  const client = await connection(options.server, options.commandTimeoutMs);
  const made = new LeaseKeeper({
    redis: client,
    keys,
    nodeId,
    settings,
    onLost: (lease) => lost.push({ ...lease, at: performance.now() }),
    onRetaken: (lease) => retaken.push(lease.key),
  });
  keepers.push(made);
  return { keeper: made, lost, retaken, client };
}

describe('leases on a real Redis', () => {
  it('only one node acquires a key, however many try at once; the others are told who holds it', async () => {
    freshKeys();
    const nodes = await Promise.all(['a', 'b', 'c'].map((id) => keeper(id, FAST)));
    for (let round = 0; round < 20; round++) {
      const results = await Promise.all(nodes.map(({ keeper: k }) => k.acquire(`request-${round}`)));
      const winners = results.filter((result) => result.acquired);
      expect(winners).toHaveLength(1);
      const winner = winners[0]!.acquired ? winners[0]!.lease : null;
      for (const result of results) {
        if (!result.acquired) {
          expect(result.holder).toEqual({ nodeId: winner!.nodeId, token: winner!.token });
          expect(result.retryInMs).toBeGreaterThan(0);
          expect(result.retryInMs).toBeLessThanOrEqual(FAST.ttlMs);
        }
      }
      expect(await nodes[0]!.keeper.holder(`request-${round}`)).toEqual({ nodeId: winner!.nodeId, token: winner!.token });
    }
  });

  it('every acquisition gets a larger token than any before it, across keys and nodes', async () => {
    freshKeys();
    const [a, b] = await Promise.all([keeper('a', FAST), keeper('b', FAST)]);
    const tokens: number[] = [];
    for (let round = 0; round < 10; round++) {
      const taker = round % 2 === 0 ? a.keeper : b.keeper;
      for (const key of ['r1', 'r2']) {
        const result = await taker.acquire(key);
        expect(result.acquired).toBe(true);
        if (result.acquired) tokens.push(result.lease.token);
      }
      await taker.release('r1');
      await taker.release('r2');
    }
    for (let i = 1; i < tokens.length; i++) expect(tokens[i]!).toBeGreaterThan(tokens[i - 1]!);
    expect(tokens.every((token) => Number.isSafeInteger(token))).toBe(true);
  });

  it('acquiring a lease again from the same node answers the same lease (a retry after a lost answer)', async () => {
    freshKeys();
    const first = await keeper('a', FAST);
    const again = await keeper('a', FAST);
    const taken = await first.keeper.acquire('r1');
    const retried = await again.keeper.acquire('r1');
    expect(retried).toEqual(taken);
  });

  it('a renewed lease stays with its holder for many TTLs', async () => {
    freshKeys();
    const a = await keeper('a', FAST);
    const b = await keeper('b', FAST);
    a.keeper.start();
    const taken = await a.keeper.acquire('r1');
    expect(taken.acquired).toBe(true);
    const until = performance.now() + 3 * FAST.ttlMs;
    while (performance.now() < until) {
      const attempt = await b.keeper.acquire('r1');
      expect(attempt.acquired).toBe(false);
      expect(a.keeper.validLease('r1')).not.toBeNull();
      await sleep(100);
    }
    expect(a.lost).toEqual([]);
  });

  it('renews well over a batch of leases in one round, every one of them kept', async () => {
    freshKeys();
    const a = await keeper('a', ROOMY);
    const keysHeld = Array.from({ length: 1_200 }, (_, index) => `request-${index}`);
    const results = await Promise.all(keysHeld.map((key) => a.keeper.acquire(key)));
    expect(results.every((result) => result.acquired)).toBe(true);
    await sleep(ROOMY.ttlMs / 3);
    const before = performance.now();
    await a.keeper.renewNow();
    const renewedIn = performance.now() - before;
    expect(a.lost).toEqual([]);
    expect(a.keeper.leases()).toHaveLength(keysHeld.length);
    const probe = await connection();
    const ttls = await Promise.all(keysHeld.map((key) => probe.pttl(keys.key('lease', key))));
    // Renewed just now: every TTL is back near the full lease, none left to run down from the acquisition.
    expect(Math.min(...ttls)).toBeGreaterThan(ROOMY.ttlMs - renewedIn - 100);
  });

  it('a lease its holder stops renewing is taken by another node within the TTL, with a larger token', async () => {
    freshKeys();
    const a = await keeper('a', FAST);
    const b = await keeper('b', FAST);
    a.keeper.start();
    const first = await a.keeper.acquire('r1');
    await sleep(FAST.renewMs * 2);
    const stoppedAt = performance.now();
    a.keeper.stop();
    let second = await b.keeper.acquire('r1');
    while (!second.acquired) {
      expect(performance.now() - stoppedAt).toBeLessThan(FAST.ttlMs + 200);
      await sleep(10);
      second = await b.keeper.acquire('r1');
    }
    // Not before the TTL's worth of a renew that may have gone out just before the stop.
    expect(performance.now() - stoppedAt).toBeGreaterThan(FAST.ttlMs - FAST.renewMs - 50);
    expect(performance.now() - stoppedAt).toBeLessThan(FAST.ttlMs + 200);
    expect(second.lease.token).toBeGreaterThan(first.acquired ? first.lease.token : Infinity);
  });

  it('releasing deletes only its own lease: one that is now another’s stays, and its old holder hears it was taken', async () => {
    freshKeys();
    const a = await keeper('a', FAST);
    const probe = await connection();
    await a.keeper.acquire('r1');
    await a.keeper.acquire('r2');
    // As if the lease had lapsed and been taken while this node did not know: Redis holds someone else's value.
    await probe.set(keys.key('lease', 'r1'), 'b:99', 'PX', 10_000);
    expect(await a.keeper.release('r1')).toBe(false);
    expect(await a.keeper.holder('r1')).toEqual({ nodeId: 'b', token: 99 });
    await probe.set(keys.key('lease', 'r2'), 'b:100', 'PX', 10_000);
    await a.keeper.renewNow();
    expect(a.lost.map(({ key, reason }) => [key, reason])).toEqual([['r2', 'taken']]);
    expect(await a.keeper.holder('r2')).toEqual({ nodeId: 'b', token: 100 });
    expect(a.keeper.validLease('r2')).toBeNull();
    // Its own lease, released, is gone for everyone.
    await a.keeper.acquire('r3');
    expect(await a.keeper.release('r3')).toBe(true);
    expect(await a.keeper.holder('r3')).toBeNull();
  });

  it('a lease that lapsed in Redis is reported lapsed, not renewed', async () => {
    freshKeys();
    const a = await keeper('a', FAST);
    const probe = await connection();
    await a.keeper.acquire('r1');
    await probe.del(keys.key('lease', 'r1'));
    await a.keeper.renewNow();
    expect(a.lost.map(({ key, reason }) => [key, reason])).toEqual([['r1', 'lapsed']]);
    expect(await a.keeper.holder('r1')).toBeNull();
  });

  it('with Redis killed, every lease is reported lost no later than the TTL after its last confirmed renew', async () => {
    const server = await startRedis();
    try {
      freshKeys();
      const a = await keeper('a', FAST, { server });
      a.keeper.start();
      for (const key of ['r1', 'r2', 'r3']) await a.keeper.acquire(key);
      await sleep(FAST.renewMs * 2 + 50);
      await server.kill();
      await eventually('three lost leases', () => a.lost.length === 3);
      for (const lost of a.lost) {
        expect(lost.reason).toBe('unreachable');
        expect(lost.at - lost.renewedAt).toBeLessThanOrEqual(FAST.ttlMs);
        // And not before it had to: the renews confirmed until the kill kept it.
        expect(lost.at - lost.renewedAt).toBeGreaterThanOrEqual(FAST.ttlMs - FAST.marginMs - 5);
      }
      expect(a.keeper.leases()).toEqual([]);
    } finally {
      await server.stop();
    }
  });

  it('with Redis not answering at all (paused) and commands hanging, the lease is still given up on time', async () => {
    const server = await startRedis();
    try {
      freshKeys();
      // Commands hang past the TTL: the loss must come from the keeper's own clock, not from an error.
      const a = await keeper('a', FAST, { server, commandTimeoutMs: 10_000 });
      const b = await keeper('b', FAST, { server, commandTimeoutMs: 10_000 });
      a.keeper.start();
      await a.keeper.acquire('r1');
      await sleep(FAST.renewMs + 50);
      server.pause();
      await eventually('the lease lost', () => a.lost.length === 1);
      const lost = a.lost[0]!;
      expect(lost.reason).toBe('unreachable');
      expect(lost.at - lost.renewedAt).toBeLessThanOrEqual(FAST.ttlMs);
      server.resume();
      // The renews that hung run now and may extend the lease; the keeper gives those back.
      let taken = await b.keeper.acquire('r1');
      const resumedAt = performance.now();
      while (!taken.acquired) {
        expect(performance.now() - resumedAt).toBeLessThan(FAST.ttlMs + 500);
        await sleep(10);
        taken = await b.keeper.acquire('r1');
      }
      expect(taken.lease.token).toBeGreaterThan(lost.token);
    } finally {
      server.resume();
      await server.stop();
    }
  });

  it('after a quick Redis restart that lost everything, the holder puts its lease back and fresh takers wait', async () => {
    const server = await startRedis();
    try {
      freshKeys();
      const a = await keeper('a', ROOMY, { server });
      const b = await keeper('b', ROOMY, { server });
      a.keeper.start();
      const held = await a.keeper.acquire('r1');
      expect((await b.keeper.acquire('other')).acquired).toBe(true);
      await b.keeper.release('other');
      await server.kill();
      await server.restart({ keepData: false });
      // b remembers the old keyspace: finding it gone, it must not take anything until the holders are back.
      await eventually('b connected again', () => b.client.status === 'ready');
      const early = await b.keeper.acquire('fresh');
      expect(early).toMatchObject({ acquired: false, holder: null });
      await eventually('the lease back in Redis', async () => (await b.keeper.holder('r1')) !== null);
      expect(await b.keeper.holder('r1')).toEqual({ nodeId: 'a', token: held.acquired ? held.lease.token : -1 });
      expect(a.retaken).toEqual(['r1']);
      expect((await b.keeper.acquire('r1')).acquired).toBe(false);
      // After the grace, tokens go on above every token handed out before the restart.
      await sleep(ROOMY.ttlMs);
      const later = await b.keeper.acquire('fresh');
      expect(later.acquired).toBe(true);
      if (later.acquired && held.acquired) expect(later.lease.token).toBeGreaterThan(held.lease.token);
      expect(a.lost).toEqual([]);
    } finally {
      await server.stop();
    }
  });

  it('a holder whose first word after the data loss is another acquisition still puts its leases back', async () => {
    const server = await startRedis();
    try {
      freshKeys();
      const a = await keeper('a', ROOMY, { server });
      const held = await a.keeper.acquire('r1');
      await server.kill();
      await server.restart({ keepData: false });
      await eventually('a connected again', () => a.client.status === 'ready');
      expect(await a.keeper.acquire('r2')).toMatchObject({ acquired: false, holder: null });
      await a.keeper.renewNow();
      expect(a.retaken).toEqual(['r1']);
      expect(a.lost).toEqual([]);
      expect(await a.keeper.holder('r1')).toEqual({ nodeId: 'a', token: held.acquired ? held.lease.token : -1 });
    } finally {
      await server.stop();
    }
  });

  it('after a Redis restart that kept its data, leases simply go on being renewed', async () => {
    const server = await startRedis({ appendonly: true });
    try {
      freshKeys();
      const a = await keeper('a', ROOMY, { server });
      const b = await keeper('b', ROOMY, { server });
      a.keeper.start();
      const held = await a.keeper.acquire('r1');
      await server.kill();
      await server.restart();
      await eventually('both connected again', () => a.client.status === 'ready' && b.client.status === 'ready');
      await a.keeper.renewNow();
      expect(a.lost).toEqual([]);
      expect(a.retaken).toEqual([]);
      expect(await b.keeper.holder('r1')).toEqual({ nodeId: 'a', token: held.acquired ? held.lease.token : -1 });
      // No grace: the keyspace was never lost.
      expect((await b.keeper.acquire('fresh')).acquired).toBe(true);
    } finally {
      await server.stop();
    }
  });

  it('after an outage longer than the TTL the lease is lost, and taken again later with a larger token', async () => {
    const server = await startRedis();
    try {
      freshKeys();
      const a = await keeper('a', FAST, { server });
      a.keeper.start();
      const first = await a.keeper.acquire('r1');
      await server.kill();
      await eventually('the lease lost', () => a.lost.length === 1);
      await server.restart({ keepData: false });
      await eventually('a connected again', () => a.client.status === 'ready');
      let again = await a.keeper.acquire('r1');
      const backAt = performance.now();
      while (!again.acquired) {
        expect(again.holder).toBeNull();
        expect(performance.now() - backAt).toBeLessThan(FAST.ttlMs + 500);
        await sleep(20);
        again = await a.keeper.acquire('r1');
      }
      if (first.acquired) expect(again.lease.token).toBeGreaterThan(first.lease.token);
    } finally {
      await server.stop();
    }
  });

  it('refuses bad input with a clear error and changes nothing in Redis', async () => {
    freshKeys();
    const client = await connection();
    const before = await client.dbsize();
    const base = { redis: client, keys, onLost: () => {} };
    expect(() => new LeaseKeeper({ ...base, nodeId: '' })).toThrow(/node id/);
    expect(() => new LeaseKeeper({ ...base, nodeId: 'a:b' })).toThrow(/node id/);
    expect(() => new LeaseKeeper({ ...base, nodeId: 'a', settings: { ttlMs: 1_000, renewMs: 600 } })).toThrow(/renewMs/);
    expect(() => new LeaseKeeper({ ...base, nodeId: 'a', settings: { ttlMs: -1 } })).toThrow(/ttlMs/);
    expect(() => new LeaseKeeper({ ...base, nodeId: 'a', settings: { renewMs: 0 } })).toThrow(/renewMs/);
    expect(() => new LeaseKeeper({ ...base, nodeId: 'a', settings: { ttlMs: 1_000, renewMs: 500, marginMs: 500 } })).toThrow(/marginMs/);
    expect(new LeaseKeeper({ ...base, nodeId: 'a', settings: { ttlMs: 2_000, renewMs: 1_000 } }).settings).toEqual({ ttlMs: 2_000, renewMs: 1_000, marginMs: 200 });
    const a = new LeaseKeeper({ ...base, nodeId: 'a' });
    await expect(a.acquire('')).rejects.toThrow(/lease key/);
    await expect(a.acquire(42 as unknown as string)).rejects.toThrow(/lease key/);
    await expect(a.acquire('x'.repeat(513))).rejects.toThrow(/lease key/);
    await expect(a.release('')).rejects.toThrow(/lease key/);
    await expect(a.holder('')).rejects.toThrow(/lease key/);
    expect(await client.dbsize()).toBe(before);
    expect(new RedisKeys('ok:').prefix).toBe('ok:');
    expect(() => new RedisKeys('has space')).toThrow(/prefix/);
  });
});
