import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { startRedis, type RedisServer } from '../../../test/support/redis.ts';
import { createRedis, createSubscriber, KeyspaceEpoch, parseRedisUrl, RedisKeys, redisOptions, whenReady } from './redis.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const clients: Redis[] = [];
const servers: RedisServer[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.disconnect();
  for (const server of servers.splice(0)) await server.stop();
});

async function server(): Promise<RedisServer> {
  const started = await startRedis();
  servers.push(started);
  return started;
}

function client(url: string, settings: { maxBackoffMs?: number } = {}): Redis {
  const made = createRedis({ url, ...settings });
  clients.push(made);
  return made;
}

describe('Redis connections', () => {
  it('refuses a REDIS_URL or prefix that is not one, before connecting anywhere', () => {
    expect(() => parseRedisUrl('not a url')).toThrow(/not a URL/);
    expect(() => parseRedisUrl('http://127.0.0.1:6379')).toThrow(/redis:\/\/ or rediss:\/\//);
    expect(() => parseRedisUrl('redis://127.0.0.1:6379/cache')).toThrow(/database/);
    expect(parseRedisUrl('rediss://user:secret@redis.internal:6380/2').port).toBe('6380');
    expect(() => createRedis({ url: 'postgres://127.0.0.1' })).toThrow(/redis:\/\//);
    expect(() => createRedis({ url: 'redis://127.0.0.1:1', prefix: '' })).toThrow(/prefix/);
    expect(() => redisOptions({ url: 'redis://127.0.0.1', commandTimeoutMs: 0 })).toThrow(/commandTimeoutMs/);
  });

  it('backs off between reconnections up to its cap', () => {
    const retry = redisOptions({ url: 'redis://127.0.0.1', maxBackoffMs: 800 }).retryStrategy!;
    const delays = [1, 2, 3, 4, 5, 10, 50, 10_000].map((attempt) => retry(attempt) as number);
    expect(delays[0]).toBeGreaterThanOrEqual(50);
    expect(delays[0]).toBeLessThan(100);
    for (const delay of delays) expect(delay).toBeLessThan(850);
    expect(delays.at(-1)).toBeGreaterThanOrEqual(800);
  });

  it('fails commands at once while Redis is down, and reconnects by itself when it is back', async () => {
    const redis = await server();
    const connection = client(redis.url, { maxBackoffMs: 200 });
    await whenReady(connection);
    await connection.set('k', 'v');
    await redis.kill();
    const startedAt = performance.now();
    await expect(connection.get('k')).rejects.toThrow();
    expect(performance.now() - startedAt).toBeLessThan(100);
    await redis.restart({ keepData: false });
    await whenReady(connection, 5_000);
    expect(await connection.get('k')).toBeNull();
  });

  it('a command in flight when the connection drops fails then, and is not sent again after the reconnect', async () => {
    const redis = await server();
    const connection = client(redis.url, { maxBackoffMs: 100 });
    await whenReady(connection);
    redis.pause();
    // Watched from the start: it may fail while Redis is being killed, before the next line runs.
    const inFlightFails = expect(connection.incr('counter')).rejects.toThrow();
    await sleep(50);
    await redis.kill();
    await inFlightFails;
    await redis.restart({ keepData: false });
    await whenReady(connection, 5_000);
    await sleep(100);
    expect(await connection.get('counter')).toBeNull();
  });

  it('whenReady gives up with the reason when nothing answers', async () => {
    const redis = await server();
    const url = redis.url;
    await redis.kill();
    const connection = client(url);
    await expect(whenReady(connection, 300)).rejects.toThrow(/not ready within 300 ms.*ECONNREFUSED/);
  });

  it('a subscriber hears messages again after Redis comes back', async () => {
    const redis = await server();
    const connection = client(redis.url, { maxBackoffMs: 100 });
    await whenReady(connection);
    const subscriber = createSubscriber(connection);
    clients.push(subscriber);
    const heard: string[] = [];
    subscriber.on('message', (_channel: string, message: string) => heard.push(message));
    await subscriber.subscribe('news');
    await connection.publish('news', 'one');
    await redis.kill();
    await redis.restart({ keepData: false });
    await whenReady(connection, 5_000);
    const deadline = performance.now() + 5_000;
    while (!heard.includes('two')) {
      expect(performance.now()).toBeLessThan(deadline);
      await connection.publish('news', 'two');
      await sleep(50);
    }
    expect(heard[0]).toBe('one');
  });

  it('names keys with the id last, so no id can reach another kind’s key', () => {
    const keys = new RedisKeys('app:');
    expect(keys.key('lease', 'r1')).toBe('app:lease:r1');
    expect(keys.key('agent', 'x:nodes')).not.toBe(keys.key('agent-nodes', 'x'));
    expect(keys.key('nodes')).toBe('app:nodes');
  });

  it('an epoch differing from the one remembered means Redis lost its data; the first meeting does not', () => {
    const epoch = new KeyspaceEpoch(1_000);
    expect(epoch.args()[0]).toBe('');
    expect(epoch.observe('e1')).toBe(false);
    expect(epoch.args()[0]).toBe('e1');
    expect(epoch.observe('e1')).toBe(false);
    expect(epoch.observe('e2')).toBe(true);
    expect(epoch.observe('e2')).toBe(false);
    expect(() => new KeyspaceEpoch(0)).toThrow(/graceMs/);
  });
});

describe('the test Redis', () => {
  it('with appendonly keeps every answered write across a SIGKILL; a restart without data comes back empty', async () => {
    const redis = await startRedis({ appendonly: true });
    servers.push(redis);
    const connection = client(redis.url, { maxBackoffMs: 100 });
    await whenReady(connection);
    for (let index = 0; index < 50; index++) await connection.set(`k${index}`, String(index));
    await redis.kill();
    await redis.restart();
    await whenReady(connection, 5_000);
    expect(await connection.dbsize()).toBe(50);
    await redis.restart({ keepData: false });
    await whenReady(connection, 5_000);
    expect(await connection.dbsize()).toBe(0);
  });

  it('several at once each get their own port and directory, and stop() removes the directory', async () => {
    const started = await Promise.all([startRedis(), startRedis(), startRedis()]);
    servers.push(...started);
    expect(new Set(started.map((each) => each.port)).size).toBe(3);
    expect(new Set(started.map((each) => each.dir)).size).toBe(3);
    const dir = started[0]!.dir;
    await started[0]!.stop();
    expect(existsSync(dir)).toBe(false);
    expect(started[0]!.running).toBe(false);
  });

  it('a test process that exits without stopping its Redis takes the server and its directory with it', async () => {
    const support = new URL('../../../test/support/redis.ts', import.meta.url).href;
    const script = `const { startRedis } = await import(${JSON.stringify(support)}); const r = await startRedis(); console.log(JSON.stringify({ pid: r.pid, dir: r.dir })); process.exit(0);`;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    const { pid, dir } = JSON.parse(out.trim().split('\n').at(-1)!) as { pid: number; dir: string };
    const deadline = performance.now() + 5_000;
    const alive = () => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    while (alive()) {
      expect(performance.now()).toBeLessThan(deadline);
      await sleep(20);
    }
    expect(existsSync(dir)).toBe(false);
  });
});
