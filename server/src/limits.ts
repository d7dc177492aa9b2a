/**
 * The server's limits, behind one small port over rate-limiter-flexible. Each limit is a named counter
 * with a window; the store behind the counters comes from a factory, so the memory store used by one
 * process can give way to rate-limiter-flexible's Redis store (`RateLimiterRedis`, same options plus a
 * `storeClient`) when several processes must share their counts, without touching any caller.
 */
import { RateLimiterMemory, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
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
    // Counts locks, not attempts: a lock that came back within a day means guessing went on.
    this.locks = new Limit('login-locks', { points: Number.MAX_SAFE_INTEGER, durationS: DAY_S }, factory);
  }

  /** Milliseconds until this attempt may be checked at all; 0 when neither its account nor its address is locked. */
  async lockedFor(account: string, address: string): Promise<number> {
    const [byAccount, byAddress] = await Promise.all([this.failures.account.blockedFor(account), this.failures.address.blockedFor(address)]);
    return Math.max(byAccount, byAddress);
  }

  /** A wrong password; answers how long the account or address is now locked for (0: not locked). */
  async failed(account: string, address: string): Promise<number> {
    const [byAccount, byAddress] = await Promise.all([
      this.count('account', `account:${account}`, account),
      this.count('address', `address:${address}`, address),
    ]);
    return Math.max(byAccount, byAddress);
  }

  /** The right password: the account's count starts again. The address's does not, or one valid account would reset it. */
  async succeeded(account: string): Promise<void> {
    await this.failures.account.clear(account);
  }

  private async count(kind: 'account' | 'address', lockKey: string, key: string): Promise<number> {
    const limit = this.failures[kind];
    await limit.take(key);
    if ((await limit.used(key)) < limit.rule.points) return 0;
    await this.locks.take(lockKey);
    const lock = Math.min(this.settings.lockS * 2 ** ((await this.locks.used(lockKey)) - 1), this.settings.lockMaxS);
    await limit.block(key, lock);
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
