/**
 * The one place a node makes its Redis connections (ioredis), names its keys, and tells whether Redis
 * lost its data since the node last spoke to it.
 *
 * Connection behaviour, chosen for a server that must keep answering while Redis is away:
 * - Reconnects for ever, backing off from 50 ms to a cap (1 s by default) with a little jitter, so a
 *   restarted Redis is found again within about a second and a fleet of nodes does not knock in step.
 * - `enableOfflineQueue: false`: a command issued while the connection is down fails at once instead of
 *   waiting in memory. Every caller has its own answer to an outage (a lease keeper counts from its last
 *   confirmed renew, the limits fall back to per-node counts, a claim is tried again on the next change), and
 *   a queued command would run late, after its caller has already decided otherwise: a claim that runs
 *   when its visitor has gone holds an agent for nobody. `whenReady()` waits for the first connection.
 * - `maxRetriesPerRequest: 0` and no resend: a command in flight when the connection drops fails then,
 *   rather than being sent again after the reconnect, for the same reason. Our scripts are written so
 *   that running one again is harmless, so a caller may retry one whose answer it never got.
 * - `commandTimeout`: a Redis that stops answering without closing the connection (a silent network
 *   path) fails commands after it instead of hanging them until TCP gives up.
 * - The subscriber connection (`createSubscriber`) is the exception: subscribing is a standing wish, so
 *   it waits for the connection and is renewed on every reconnect.
 */
import { randomUUID } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';

export const DEFAULT_KEY_PREFIX = 'callchart:';

export interface RedisSettings {
  /** `redis://[user:password@]host[:port][/db]`, or `rediss://` for TLS. */
  url: string;
  /** Starts every key and channel, so one Redis can serve several deployments (or test runs). */
  prefix?: string;
  connectTimeoutMs?: number;
  /** A command not answered by then fails (the connection stays). */
  commandTimeoutMs?: number;
  /** The longest wait between two reconnection attempts. */
  maxBackoffMs?: number;
  /** Shown by `CLIENT LIST`: which node (and which use) a connection belongs to. */
  connectionName?: string;
  /** Connection errors (ioredis reports each failed attempt); the node logs them. */
  onError?: (error: Error) => void;
}

export const REDIS_DEFAULTS = { connectTimeoutMs: 5_000, commandTimeoutMs: 2_000, maxBackoffMs: 1_000 } as const;

const PREFIX_PATTERN = /^[A-Za-z0-9_.:{}-]{1,64}$/;

/** The URL, checked: a clear error names what is wrong with it rather than ioredis connecting somewhere odd. */
export function parseRedisUrl(url: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError(`REDIS_URL is not a URL: ${JSON.stringify(url)}`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new TypeError(`REDIS_URL must start with redis:// or rediss://, not ${parsed.protocol}//`);
  }
  if (!parsed.hostname) throw new TypeError('REDIS_URL names no host');
  const db = parsed.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d{1,2}$/.test(db)) throw new TypeError(`REDIS_URL's database must be a number, not ${JSON.stringify(db)}`);
  return parsed;
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`${name} must be a positive number of milliseconds, not ${String(value)}`);
  return value;
}

export function redisOptions(settings: RedisSettings): RedisOptions {
  const connectTimeout = positive('connectTimeoutMs', settings.connectTimeoutMs ?? REDIS_DEFAULTS.connectTimeoutMs);
  const commandTimeout = positive('commandTimeoutMs', settings.commandTimeoutMs ?? REDIS_DEFAULTS.commandTimeoutMs);
  const maxBackoff = positive('maxBackoffMs', settings.maxBackoffMs ?? REDIS_DEFAULTS.maxBackoffMs);
  return {
    connectTimeout,
    commandTimeout,
    retryStrategy: (attempt) => Math.min(50 * 2 ** Math.min(attempt - 1, 16), maxBackoff) + Math.floor(Math.random() * 50),
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    ...(settings.connectionName ? { connectionName: settings.connectionName } : {}),
  };
}

/** A command connection. It connects at once; await `whenReady()` before relying on it. */
export function createRedis(settings: RedisSettings): Redis {
  parseRedisUrl(settings.url);
  keyPrefix(settings.prefix);
  const client = new Redis(settings.url, redisOptions(settings));
  // Without a listener ioredis prints every failed attempt to the console itself.
  client.on('error', settings.onError ?? (() => {}));
  return client;
}

/** A connection for SUBSCRIBE (a subscribed connection can run nothing else), same server and settings. */
export function createSubscriber(client: Redis, onError?: (error: Error) => void): Redis {
  const subscriber = client.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null, commandTimeout: undefined });
  subscriber.on('error', onError ?? (() => {}));
  return subscriber;
}

/** Resolves once the client can run commands; rejects after `timeoutMs` with the last connection error. */
export function whenReady(client: Redis, timeoutMs: number = REDIS_DEFAULTS.connectTimeoutMs): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    let lastError: Error | null = null;
    const onReady = () => finish(null);
    const onError = (error: Error) => (lastError = error);
    const onEnd = () => finish(new Error('the Redis connection was closed before it was ready'));
    const timer = setTimeout(
      () => finish(new Error(`Redis was not ready within ${timeoutMs} ms${lastError ? `: ${lastError.message}` : ''}`)),
      timeoutMs,
    );
    function finish(error: Error | null) {
      clearTimeout(timer);
      client.off('ready', onReady).off('error', onError).off('end', onEnd);
      if (error) reject(error);
      else resolve();
    }
    client.on('ready', onReady).on('error', onError).on('end', onEnd);
  });
}

function keyPrefix(prefix: string = DEFAULT_KEY_PREFIX): string {
  if (!PREFIX_PATTERN.test(prefix)) {
    throw new TypeError(`the Redis key prefix must be 1-64 characters of letters, digits and _.:{}-, not ${JSON.stringify(prefix)}`);
  }
  return prefix;
}

/**
 * Key names. The variable part (an id) always comes last, after a fixed kind, so no id can make one kind's
 * key collide with another's whatever characters it holds.
 */
export class RedisKeys {
  readonly prefix: string;

  constructor(prefix: string = DEFAULT_KEY_PREFIX) {
    this.prefix = keyPrefix(prefix);
  }

  key(kind: string, id?: string): string {
    return id === undefined ? `${this.prefix}${kind}` : `${this.prefix}${kind}:${id}`;
  }

  /** The keys every script that checks the keyspace epoch takes first, in this order. */
  get epochKeys(): [epoch: string, graced: string, grace: string] {
    return [this.key('epoch'), this.key('epoch-graced'), this.key('epoch-grace')];
  }
}

/**
 * Lua shared by the scripts that need to know whether Redis lost its data (a restart without persistence,
 * a flush, a failover to a replica that was behind). The keyspace carries an epoch, a random id set by
 * whoever finds none. A client that remembers another epoch knows the data it relied on is gone; the first
 * such client opens a grace (`graceMs`) during which fresh lease acquisitions and agent claims are refused,
 * so the nodes that held leases and holds put theirs back before anyone can take them. A brand-new Redis,
 * met by clients that remember nothing, has no grace.
 *
 * Expects KEYS[1..3] = `RedisKeys.epochKeys` and ARGV[1..3] = `KeyspaceEpoch.args()`; defines
 * `local epoch, reset`.
 */
export const EPOCH_LUA = `
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[2]
  redis.call('SET', KEYS[1], epoch)
end
local reset = ARGV[1] ~= '' and ARGV[1] ~= epoch
if reset and redis.call('GET', KEYS[2]) ~= epoch then
  redis.call('SET', KEYS[2], epoch)
  redis.call('SET', KEYS[3], epoch, 'PX', ARGV[3])
end
`;

/** What one client remembers of the keyspace epoch; each user of `EPOCH_LUA` keeps its own. */
export class KeyspaceEpoch {
  private known: string | null = null;

  constructor(private readonly graceMs: number) {
    positive('graceMs', graceMs);
  }

  /** ARGV[1..3] for a script using `EPOCH_LUA`. */
  args(): [known: string, candidate: string, graceMs: string] {
    return [this.known ?? '', randomUUID(), String(Math.ceil(this.graceMs))];
  }

  /** Takes the epoch a script answered with; true when it differs from one remembered (Redis lost its data). */
  observe(epoch: string): boolean {
    const reset = this.known !== null && this.known !== epoch;
    this.known = epoch;
    return reset;
  }
}
