/**
 * Leases in Redis: which node owns a key (a call request's id), for how long, and with which fencing token.
 *
 * A lease is the key `lease:<key>` holding `<nodeId>:<token>`, set only if absent and with a TTL; the owner
 * renews the TTL and gives it up with compare-and-delete, so nobody ever extends or deletes a lease that is
 * not theirs. The token comes from one counter and grows with every acquisition, so a store that remembers
 * the newest token per request can refuse the writes of an owner that lost its lease and does not know yet.
 *
 * The owner must stop acting before anyone else can take over. Redis expires a lease `ttlMs` after it last
 * ran a renew, which is no earlier than when the owner sent it: the keeper counts each lease valid until
 * `sent + ttlMs - marginMs`, using the send time of the last renew Redis confirmed, and reports it lost at
 * that moment if no later renew was confirmed, whether Redis refused, failed or simply never answered.
 * `marginMs` covers a late timer and clocks running at slightly different rates.
 *
 * Redis that lost its data (a restart without persistence) forgets every lease and the counter. The counter
 * starts again from Redis's clock in microseconds, above any token handed out before; and a keeper that
 * finds its lease gone together with the old keyspace epoch puts it back with the same token, while fresh
 * acquisitions wait out the grace (see `EPOCH_LUA`), so no owner is cut short by a Redis restart.
 */
import { performance } from 'node:perf_hooks';
import type { Redis } from 'ioredis';
import { EPOCH_LUA, KeyspaceEpoch, type RedisKeys } from './redis.ts';

export interface LeaseSettings {
  /** How long a lease lives in Redis after its last renew. */
  ttlMs: number;
  /** How often the keeper renews every lease it holds. */
  renewMs: number;
  /** How much sooner than Redis the keeper gives a lease up when renews go unconfirmed. */
  marginMs: number;
}

export const DEFAULT_LEASE_SETTINGS: LeaseSettings = { ttlMs: 5_000, renewMs: 1_500, marginMs: 500 };

/** Renews per script: each script blocks Redis while it runs, so a node with many leases sends a few in one pipeline. */
const RENEW_BATCH = 500;

export interface Lease {
  key: string;
  nodeId: string;
  token: number;
}

export interface LeaseHolder {
  nodeId: string;
  token: number;
}

export type AcquireResult =
  | { acquired: true; lease: Lease }
  /** Another node holds it; it lapses in `retryInMs` unless renewed. */
  | { acquired: false; holder: LeaseHolder; retryInMs: number }
  /** Redis lost its data a moment ago; nobody takes a lease until the old holders have put theirs back. */
  | { acquired: false; holder: null; retryInMs: number };

/**
 * - `taken`: another node holds it now;
 * - `lapsed`: it expired in Redis (this node's renews came too late, or the process was stalled);
 * - `unreachable`: no renew was confirmed within the TTL (Redis down, slow or cut off).
 */
export type LostReason = 'taken' | 'lapsed' | 'unreachable';

export interface LostLease extends Lease {
  reason: LostReason;
  /** `performance.now()` when the last renew Redis confirmed was sent. */
  renewedAt: number;
}

export interface LeaseKeeperOptions {
  redis: Redis;
  keys: RedisKeys;
  /** This node; unique in the cluster. Letters, digits and `._-`. */
  nodeId: string;
  settings?: Partial<LeaseSettings>;
  /** The lease is no longer this node's: stop acting on it now. */
  onLost: (lost: LostLease) => void;
  /** Redis had lost the lease with its data, and the keeper put it back (same token). */
  onRetaken?: (lease: Lease) => void;
  /** A renew round that failed (Redis away), or a callback that threw. */
  onError?: (error: unknown) => void;
}

const NODE_ID = /^[A-Za-z0-9._-]{1,64}$/;
const MAX_KEY_LENGTH = 512;

function checkKey(key: unknown): string {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) {
    throw new TypeError(`a lease key must be a string of 1-${MAX_KEY_LENGTH} characters, not ${JSON.stringify(key)}`);
  }
  return key;
}

export function checkLeaseSettings(settings: LeaseSettings): LeaseSettings {
  const { ttlMs, renewMs, marginMs } = settings;
  for (const [name, value] of Object.entries(settings)) {
    if (!Number.isInteger(value) || value < 0) throw new RangeError(`lease ${name} must be a whole number of milliseconds, not ${String(value)}`);
  }
  if (renewMs <= 0) throw new RangeError('lease renewMs must be above 0');
  // At most half the TTL: a renew lost on the way is followed by another before Redis lets the lease go.
  if (2 * renewMs > ttlMs) throw new RangeError(`lease renewMs (${renewMs}) must be at most half of ttlMs (${ttlMs})`);
  if (renewMs + marginMs >= ttlMs) throw new RangeError(`lease marginMs (${marginMs}) must leave room for a renew within ttlMs (${ttlMs})`);
  return settings;
}

/** The settings with defaults filled in; the margin defaults to a tenth of the TTL, at most 500 ms. */
export function leaseSettings(partial: Partial<LeaseSettings> = {}): LeaseSettings {
  const ttlMs = partial.ttlMs ?? DEFAULT_LEASE_SETTINGS.ttlMs;
  return checkLeaseSettings({
    ttlMs,
    renewMs: partial.renewMs ?? DEFAULT_LEASE_SETTINGS.renewMs,
    marginMs: partial.marginMs ?? Math.min(DEFAULT_LEASE_SETTINGS.marginMs, Math.floor(ttlMs / 10)),
  });
}

function parseHolder(value: string): LeaseHolder {
  const colon = value.lastIndexOf(':');
  return { nodeId: value.slice(0, colon), token: Number(value.slice(colon + 1)) };
}

// KEYS: epoch keys, fence counter, lease. ARGV: epoch args, nodeId, ttlMs.
const ACQUIRE_LUA = `${EPOCH_LUA}
local mine = ARGV[4] .. ':'
local current = redis.call('GET', KEYS[5])
if current then
  if string.sub(current, 1, #mine) == mine then
    redis.call('PEXPIRE', KEYS[5], ARGV[5])
    return {epoch, 'acquired', current}
  end
  return {epoch, 'held', current, redis.call('PTTL', KEYS[5])}
end
local grace = redis.call('PTTL', KEYS[3])
if grace > 0 then return {epoch, 'grace', '', grace} end
if redis.call('EXISTS', KEYS[4]) == 0 then
  local now = redis.call('TIME')
  redis.call('SET', KEYS[4], now[1] .. string.format('%06d', tonumber(now[2])))
end
local value = mine .. string.format('%.0f', redis.call('INCR', KEYS[4]))
redis.call('SET', KEYS[5], value, 'PX', ARGV[5])
return {epoch, 'acquired', value}
`;

// KEYS: epoch keys, leases. ARGV: epoch args, ttlMs, then per lease its value and the epoch it was last
// confirmed in. A lease missing from a keyspace newer than that epoch was lost with Redis's data, not lapsed.
const RENEW_LUA = `${EPOCH_LUA}
local answers = {epoch}
for i = 4, #KEYS do
  local value = ARGV[5 + 2 * (i - 4)]
  local confirmed_in = ARGV[6 + 2 * (i - 4)]
  local current = redis.call('GET', KEYS[i])
  if current == value then
    redis.call('PEXPIRE', KEYS[i], ARGV[4])
    answers[#answers + 1] = 'kept'
  elseif not current and confirmed_in ~= epoch then
    redis.call('SET', KEYS[i], value, 'PX', ARGV[4])
    answers[#answers + 1] = 'retaken'
  elseif not current then
    answers[#answers + 1] = 'lapsed'
  else
    answers[#answers + 1] = 'taken'
  end
end
return answers
`;

const RELEASE_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`;

type LeaseScripts = Redis & {
  leaseAcquire(...args: string[]): Promise<[string, 'acquired' | 'held' | 'grace', string, number?]>;
  leaseRenew(keyCount: number, ...args: string[]): Promise<string[]>;
  leaseRelease(key: string, value: string): Promise<number>;
};

function withScripts(redis: Redis): LeaseScripts {
  const scripts = redis as LeaseScripts;
  if (typeof scripts.leaseAcquire !== 'function') {
    redis.defineCommand('leaseAcquire', { numberOfKeys: 5, lua: ACQUIRE_LUA });
    redis.defineCommand('leaseRenew', { lua: RENEW_LUA });
    redis.defineCommand('leaseRelease', { numberOfKeys: 1, lua: RELEASE_LUA });
  }
  return scripts;
}

interface Held extends Lease {
  value: string;
  /** The keyspace epoch Redis last confirmed the lease in. */
  epoch: string;
  renewedAt: number;
  validUntil: number;
}

/** The leases one node holds: taken, renewed together, given back, and reported the moment one is lost. */
export class LeaseKeeper {
  readonly settings: LeaseSettings;
  readonly nodeId: string;
  private readonly redis: LeaseScripts;
  private readonly held = new Map<string, Held>();
  /** Leases reported lost: a renew of theirs that Redis ran anyway is undone at once. */
  private readonly givenUp = new WeakSet<Held>();
  private readonly epoch: KeyspaceEpoch;
  private renewTimer: NodeJS.Timeout | null = null;
  private watchdog: NodeJS.Timeout | null = null;
  private renewing: Promise<void> | null = null;
  private readonly onReady = () => void this.renewNow();

  constructor(private readonly options: LeaseKeeperOptions) {
    if (!NODE_ID.test(options.nodeId)) throw new TypeError(`a node id must be 1-64 letters, digits or ._-, not ${JSON.stringify(options.nodeId)}`);
    this.nodeId = options.nodeId;
    this.settings = leaseSettings(options.settings);
    this.redis = withScripts(options.redis);
    this.epoch = new KeyspaceEpoch(this.settings.ttlMs);
  }

  private leaseKey(key: string): string {
    return this.options.keys.key('lease', key);
  }

  /** Starts renewing every `renewMs`, and at once whenever the connection comes back. */
  start(): void {
    if (this.renewTimer) return;
    this.renewTimer = setInterval(() => void this.renewNow(), this.settings.renewMs);
    this.options.redis.on('ready', this.onReady);
  }

  /** Stops renewing and forgets every lease without releasing it (they lapse in Redis within the TTL). */
  stop(): void {
    if (this.renewTimer) clearInterval(this.renewTimer);
    this.renewTimer = null;
    this.options.redis.off('ready', this.onReady);
    if (this.watchdog) clearTimeout(this.watchdog);
    this.watchdog = null;
    this.held.clear();
  }

  /**
   * Takes the lease if nobody holds it. Acquiring one this node already holds answers it again, so a retry
   * after a lost answer is harmless.
   */
  async acquire(key: string): Promise<AcquireResult> {
    checkKey(key);
    const known = this.validLease(key);
    if (known) return { acquired: true, lease: known };
    const sentAt = performance.now();
    const [epoch, outcome, value, retryInMs] = await this.redis.leaseAcquire(
      ...this.options.keys.epochKeys,
      this.options.keys.key('lease-fence'),
      this.leaseKey(key),
      ...this.epoch.args(),
      this.nodeId,
      String(this.settings.ttlMs),
    );
    this.epoch.observe(epoch);
    if (outcome === 'grace') return { acquired: false, holder: null, retryInMs: Number(retryInMs) };
    if (outcome === 'held') return { acquired: false, holder: parseHolder(value), retryInMs: Math.max(0, Number(retryInMs)) };
    const lease = { key, nodeId: this.nodeId, token: parseHolder(value).token };
    this.held.set(key, { ...lease, value, epoch, renewedAt: sentAt, validUntil: this.validUntil(sentAt) });
    this.armWatchdog();
    return { acquired: true, lease };
  }

  /** Gives the lease up (compare-and-delete): true when Redis still had it as this node's. */
  async release(key: string): Promise<boolean> {
    checkKey(key);
    const lease = this.held.get(key);
    if (!lease) return false;
    // Forgotten first: whatever Redis answers, this node no longer acts on it or renews it.
    this.held.delete(key);
    this.armWatchdog();
    return (await this.redis.leaseRelease(this.leaseKey(key), lease.value)) === 1;
  }

  /** Releases every lease (a node draining). Those Redis cannot be told about lapse within the TTL. */
  async releaseAll(): Promise<void> {
    await Promise.allSettled([...this.held.keys()].map((key) => this.release(key)));
  }

  /** Who holds the key in Redis now, whoever it is. */
  async holder(key: string): Promise<LeaseHolder | null> {
    const value = await this.options.redis.get(this.leaseKey(checkKey(key)));
    return value === null ? null : parseHolder(value);
  }

  /** The lease, if this node holds it and may still act on it. */
  validLease(key: string): Lease | null {
    const lease = this.held.get(key);
    if (!lease || performance.now() >= lease.validUntil) return null;
    return { key: lease.key, nodeId: lease.nodeId, token: lease.token };
  }

  leases(): Lease[] {
    return [...this.held.values()].map(({ key, nodeId, token }) => ({ key, nodeId, token }));
  }

  /** One renew round for every lease held; a round already running is joined rather than doubled. */
  renewNow(): Promise<void> {
    this.renewing ??= this.renewRound().finally(() => (this.renewing = null));
    return this.renewing;
  }

  private validUntil(sentAt: number): number {
    return sentAt + this.settings.ttlMs - this.settings.marginMs;
  }

  private async renewRound(): Promise<void> {
    this.expireOverdue();
    const batch = [...this.held.values()];
    if (batch.length === 0) return;
    const sentAt = performance.now();
    const pipeline = this.redis.pipeline() as unknown as { leaseRenew(keyCount: number, ...args: string[]): void; exec(): Promise<[Error | null, unknown][] | null> };
    const chunks: Held[][] = [];
    for (let start = 0; start < batch.length; start += RENEW_BATCH) chunks.push(batch.slice(start, start + RENEW_BATCH));
    for (const chunk of chunks) {
      pipeline.leaseRenew(
        3 + chunk.length,
        ...this.options.keys.epochKeys,
        ...chunk.map((lease) => this.leaseKey(lease.key)),
        ...this.epoch.args(),
        String(this.settings.ttlMs),
        ...chunk.flatMap((lease) => [lease.value, lease.epoch]),
      );
    }
    let replies: [Error | null, unknown][] | null;
    try {
      replies = await pipeline.exec();
    } catch (error) {
      this.report(error);
      return;
    }
    chunks.forEach((chunk, index) => {
      const [error, answer] = replies?.[index] ?? [new Error('no reply to a renew'), null];
      if (error) return this.report(error);
      const [epoch, ...outcomes] = answer as [string, ...string[]];
      this.epoch.observe(epoch);
      chunk.forEach((lease, position) => this.settle(lease, outcomes[position]!, sentAt, epoch));
    });
    this.armWatchdog();
  }

  private settle(sent: Held, outcome: string, sentAt: number, epoch: string): void {
    const lease = this.held.get(sent.key);
    if (lease !== sent) {
      // Lost while the round was out: a renew Redis ran anyway must not keep the lease from the others.
      if ((outcome === 'kept' || outcome === 'retaken') && this.givenUp.has(sent) && !this.held.has(sent.key)) {
        this.redis.leaseRelease(this.leaseKey(sent.key), sent.value).catch((error: unknown) => this.report(error));
      }
      return;
    }
    if (outcome === 'kept' || outcome === 'retaken') {
      lease.epoch = epoch;
      lease.renewedAt = sentAt;
      lease.validUntil = this.validUntil(sentAt);
      if (outcome === 'retaken') this.call(() => this.options.onRetaken?.({ key: lease.key, nodeId: lease.nodeId, token: lease.token }));
      return;
    }
    this.lose(lease, outcome === 'taken' ? 'taken' : 'lapsed');
  }

  private lose(lease: Held, reason: LostReason): void {
    this.held.delete(lease.key);
    this.givenUp.add(lease);
    this.call(() => this.options.onLost({ key: lease.key, nodeId: lease.nodeId, token: lease.token, reason, renewedAt: lease.renewedAt }));
  }

  private expireOverdue(): void {
    const now = performance.now();
    for (const lease of [...this.held.values()]) if (now >= lease.validUntil) this.lose(lease, 'unreachable');
  }

  /** One timer, at the earliest moment a lease stops being valid. */
  private armWatchdog(): void {
    if (this.watchdog) clearTimeout(this.watchdog);
    this.watchdog = null;
    let earliest = Infinity;
    for (const lease of this.held.values()) earliest = Math.min(earliest, lease.validUntil);
    if (earliest === Infinity) return;
    this.watchdog = setTimeout(
      () => {
        this.watchdog = null;
        this.expireOverdue();
        this.armWatchdog();
      },
      Math.max(0, earliest - performance.now()),
    );
  }

  private call(callback: () => void): void {
    try {
      callback();
    } catch (error) {
      this.report(error);
    }
  }

  private report(error: unknown): void {
    this.options.onError?.(error);
  }
}
