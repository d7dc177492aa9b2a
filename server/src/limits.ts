/**
 * The server's limits, behind one small port over rate-limiter-flexible. Each limit is a named counter
 * with a window; the store behind the counters comes from a factory: the memory store of one process, or
 * rate-limiter-flexible's Redis store when several nodes must share their counts (`limiterFactory`),
 * without touching any caller.
 */
import type { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { LimitSettings } from './config.ts';

/** A counter's rule: at most `points` in each window of `durationS` seconds; 0 keeps counts until given back. */
export interface LimitRule {
  points: number;
  durationS: number;
}

/** Makes the counter store of one named limit; `name` keeps the keys of different limits apart in a shared store. */
export type LimiterFactory = (name: string, rule: LimitRule) => RateLimiterAbstract;

export const memoryLimiters: LimiterFactory = (name, rule) =>
  new RateLimiterMemory({ keyPrefix: name, points: rule.points, duration: rule.durationS });

/**
 * Counts shared by every node through one Redis, under `<prefix>limit:<name>:<key>`.
 *
 * Each Redis counter is insured by a memory counter of the same rule: while Redis cannot answer, every
 * operation falls through to this node's own count, so the limits hold per node (a guesser spread over N
 * nodes gets up to N times the attempts for the length of the outage) instead of every login and visitor
 * being refused, or let through unchecked, because a shared counter is out of reach. When Redis answers
 * again the shared counts take over where they were.
 *
 * Open-socket counts (a rule of `durationS: 0`, given back at each disconnect) stay in memory: a node that
 * dies never gives its sockets back, and a shared count that never expires would keep those visitors
 * locked out for good. They limit what one node holds open, which is what they protect.
 */
export function redisLimiters(client: Redis, prefix: string): LimiterFactory {
  return (name, rule) => {
    if (rule.durationS === 0) return memoryLimiters(name, rule);
    return new RateLimiterRedis({
      storeClient: client,
      keyPrefix: `${prefix}limit:${name}`,
      points: rule.points,
      duration: rule.durationS,
      insuranceLimiter: memoryLimiters(name, rule),
    });
  };
}

/** Redis-backed counts in a cluster (`redis` given), memory counts for one process otherwise. */
export function limiterFactory({ redis, prefix }: { redis?: Redis | undefined; prefix: string }): LimiterFactory {
  return redis ? redisLimiters(redis, prefix) : memoryLimiters;
}

export type Verdict = { ok: true } | { ok: false; retryAfterMs: number };

/** One named limit. A key is whatever is counted: an address, an account, a token. */
export class Limit {
  private readonly limiter: RateLimiterAbstract;

  constructor(
    readonly name: string,
    readonly rule: LimitRule,
    factory: LimiterFactory,
  ) {
    this.limiter = factory(name, rule);
  }

  /** Counts `points` against the key; refused once the window's points are used up. */
  async take(key: string, points = 1): Promise<Verdict> {
    try {
      await this.limiter.consume(key, points);
      return { ok: true };
    } catch (refusal) {
      // A store that fails (a lost Redis) rejects with an Error rather than a result; that is not a refusal.
      if (refusal instanceof RateLimiterRes) return { ok: false, retryAfterMs: refusal.msBeforeNext };
      throw refusal;
    }
  }

  /** How many points the key has used in its current window. */
  async used(key: string): Promise<number> {
    return (await this.limiter.get(key))?.consumedPoints ?? 0;
  }

  /** Gives points back (a socket that closed); the key is forgotten once it is back at nothing. */
  async giveBack(key: string, points = 1): Promise<void> {
    const left = await this.limiter.reward(key, points);
    if (left.consumedPoints <= 0) await this.limiter.delete(key);
  }

  /** Refuses the key for `seconds`, whatever it has used. */
  async block(key: string, seconds: number): Promise<void> {
    await this.limiter.block(key, seconds);
  }

  /** Milliseconds until a blocked key is let through again; 0 when it is not blocked. */
  async blockedFor(key: string): Promise<number> {
    const state = await this.limiter.get(key);
    return state !== null && state.consumedPoints > this.rule.points ? state.msBeforeNext : 0;
  }

  async clear(key: string): Promise<void> {
    await this.limiter.delete(key);
  }
}

const DAY_S = 86_400;

/**
 * Wrong passwords, counted per account and per source address. Reaching the count locks the key for a
 * delay that doubles with each lock in the last day, up to a ceiling. Only time lifts a lock: during it,
 * even the right password is refused, so guessing cannot go on at any pace.
 */
export class LoginThrottle {
  private readonly failures: { account: Limit; address: Limit };
  /** The locks in force: apart from the counts, so a count over its limit is never mistaken for a lock. */
  private readonly held: { account: Limit; address: Limit };
  private readonly locks: Limit;

  constructor(
    private readonly settings: LimitSettings['login'],
    factory: LimiterFactory,
  ) {
    const window = settings.windowS;
    this.failures = {
      account: new Limit('login-account', { points: settings.accountFailures, durationS: window }, factory),
      address: new Limit('login-address', { points: settings.addressFailures, durationS: window }, factory),
    };
    this.held = {
      account: new Limit('login-account-lock', { points: 1, durationS: 1 }, factory),
      address: new Limit('login-address-lock', { points: 1, durationS: 1 }, factory),
    };
    // Counts locks, not attempts: a lock that came back within a day means guessing went on.
    this.locks = new Limit('login-locks', { points: Number.MAX_SAFE_INTEGER, durationS: DAY_S }, factory);
  }

  /**
   * Counts this attempt before its password is checked, so guesses sent all at once are counted at once
   * rather than after their hashes: 0 lets it be checked; otherwise the milliseconds until its account or
   * address is unlocked.
   */
  async attempt(account: string, address: string): Promise<number> {
    const locked = await this.lockedFor(account, address);
    if (locked > 0) return locked;
    const [byAccount, byAddress] = await Promise.all([this.failures.account.take(account), this.failures.address.take(address)]);
    if (byAccount.ok && byAddress.ok) return 0;
    // Over the count while earlier guesses are still being checked: locked as if one of them had failed.
    const [accountLock, addressLock] = await Promise.all([
      byAccount.ok ? 0 : this.lockIfSpent('account', account),
      byAddress.ok ? 0 : this.lockIfSpent('address', address),
    ]);
    return Math.max(accountLock, addressLock);
  }

  /** The attempt's password was wrong; its count stands. Answers how long the account or address is now locked for (0: not locked). */
  async failed(account: string, address: string): Promise<number> {
    const [byAccount, byAddress] = await Promise.all([this.lockIfSpent('account', account), this.lockIfSpent('address', address)]);
    return Math.max(byAccount, byAddress);
  }

  /**
   * The right password: the account's count starts again, unless a guess sent beside it has locked it. The
   * address only gets this attempt back: clearing it would let one valid account reset an address's guessing.
   */
  async succeeded(account: string, address: string): Promise<void> {
    if ((await this.held.account.blockedFor(account)) === 0) await this.failures.account.clear(account);
    if ((await this.held.address.blockedFor(address)) === 0) await this.failures.address.giveBack(address);
  }

  private async lockedFor(account: string, address: string): Promise<number> {
    const [byAccount, byAddress] = await Promise.all([this.held.account.blockedFor(account), this.held.address.blockedFor(address)]);
    return Math.max(byAccount, byAddress);
  }

  /**
   * Locks the key once its count is spent, and starts its count again: when the lock ends, the right password
   * goes through. A key another attempt has locked already keeps that lock.
   */
  private async lockIfSpent(kind: 'account' | 'address', key: string): Promise<number> {
    const limit = this.failures[kind];
    if ((await limit.used(key)) < limit.rule.points) return 0;
    const locked = await this.held[kind].blockedFor(key);
    if (locked > 0) return locked;
    const lockKey = `${kind}:${key}`;
    await this.locks.take(lockKey);
    const lock = Math.min(this.settings.lockS * 2 ** ((await this.locks.used(lockKey)) - 1), this.settings.lockMaxS);
    await this.held[kind].block(key, lock);
    await limit.clear(key);
    return lock * 1_000;
  }
}

/** Every limit of one server, from its settings and one store. */
export class Limits {
  readonly login: LoginThrottle;
  readonly visitorSessions: Limit;
  readonly visitorRequests: Limit;
  readonly sockets: { visitor: Limit; agent: Limit };

  constructor(
    readonly settings: LimitSettings,
    factory: LimiterFactory = memoryLimiters,
  ) {
    this.login = new LoginThrottle(settings.login, factory);
    this.visitorSessions = new Limit('visitor-sessions', { points: settings.visitorSessions.points, durationS: settings.visitorSessions.windowS }, factory);
    this.visitorRequests = new Limit('visitor-requests', { points: settings.visitorRequests.points, durationS: settings.visitorRequests.windowS }, factory);
    // Open sockets rather than a rate: counted at the handshake, given back at the disconnect, never expiring.
    this.sockets = {
      visitor: new Limit('sockets-visitor', { points: settings.sockets.perVisitor, durationS: 0 }, factory),
      agent: new Limit('sockets-agent', { points: settings.sockets.perAgentSession, durationS: 0 }, factory),
    };
  }
}

/** Whole seconds for `Retry-After` and for messages: never 0, which would invite an immediate retry. */
export function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1_000));
}
