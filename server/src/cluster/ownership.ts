/**
 * Which node runs each live call request, and what every node must be able to find out about the requests
 * it does not run. All of it in Redis:
 *
 * - `lease:<request>`: the owner's lease (see lease.ts); its fencing token goes with every commit.
 * - `live-requests`: a set of every live request id, added when a request is made and removed once its end
 *   is committed. Every node scans it each renew interval for ids nobody holds a lease on (their owner
 *   died, or lost Redis for longer than the TTL) and takes them over (`adopt`).
 * - `visitor-request:<visitor>`: the visitor's one live request, set only if absent or stale (its request
 *   is not live any more), so one visitor has at most one request in the whole cluster.
 * - `taken-over:<request>`: `<node>:<token>` once that ownership has finished taking the request over.
 * - `call:<call>` (a hash of who is in it and for which request), with `agent-calls:<agent>` and
 *   `visitor-calls:<visitor>` (sets of call ids): written when a call's room is joined, removed when it is
 *   left, so any node can tell who may speak about a call and where its request runs.
 *
 * A request's owner writes these only after the step that makes them true is committed, so a node that
 * dies in between leaves what the next owner finds in the store, and the next owner writes it again
 * (the outbox of the last step is sent again, rooms joined and left included).
 */
import type { Redis } from 'ioredis';
import type { Logger } from '../logger.ts';
import type { Fence } from '../store.ts';
import type { LeaseKeeper } from './lease.ts';
import type { RedisKeys } from './redis.ts';

/** A live call as every node can read it. */
export interface CallFacts {
  callId: string;
  requestId: string;
  agentId: string;
  agentName: string;
  visitorId: string;
  visitorName: string;
}

export type PersonRef = { kind: 'agent' | 'visitor'; id: string };

/** The visitor has another live request already. */
export class RequestConflictError extends Error {
  override readonly name = 'RequestConflictError';
  constructor(readonly requestId: string) {
    super(`the visitor already has live request ${requestId}`);
  }
}

/** The lease could not be taken: another node holds it, or Redis is putting leases back after losing its data. */
export class LeaseRefusedError extends Error {
  override readonly name = 'LeaseRefusedError';
}

// KEYS: visitor key, live set. ARGV: request id. Answers the other live request, or nil once set.
const BEGIN_LUA = `
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] and redis.call('SISMEMBER', KEYS[2], current) == 1 then return current end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[1])
return false
`;

// KEYS: live set, visitor key. ARGV: request id.
const END_LUA = `
redis.call('SREM', KEYS[1], ARGV[1])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
`;

// KEYS: call hash. ARGV: prefix, call id. Removes the call and its place in both people's sets.
const LEAVE_LUA = `
local f = redis.call('HMGET', KEYS[1], 'agentId', 'visitorId')
if f[1] then redis.call('SREM', ARGV[1] .. 'agent-calls:' .. f[1], ARGV[2]) end
if f[2] then redis.call('SREM', ARGV[1] .. 'visitor-calls:' .. f[2], ARGV[2]) end
redis.call('DEL', KEYS[1])
return 1
`;

type Scripts = Redis & {
  ownershipBegin(visitorKey: string, liveKey: string, requestId: string): Promise<string | null>;
  ownershipEnd(liveKey: string, visitorKey: string, requestId: string): Promise<number>;
  ownershipLeave(callKey: string, prefix: string, callId: string): Promise<number>;
};

function withScripts(redis: Redis): Scripts {
  const scripts = redis as Scripts;
  if (typeof scripts.ownershipBegin !== 'function') {
    redis.defineCommand('ownershipBegin', { numberOfKeys: 2, lua: BEGIN_LUA });
    redis.defineCommand('ownershipEnd', { numberOfKeys: 2, lua: END_LUA });
    redis.defineCommand('ownershipLeave', { numberOfKeys: 1, lua: LEAVE_LUA });
  }
  return scripts;
}

export interface OwnershipOptions {
  redis: Redis;
  keys: RedisKeys;
  leases: LeaseKeeper;
  logger: Logger;
  /** How many requests one scan may take over at most; the rest wait for the next scan (or another node). */
  adoptPerScan?: number;
  /** How many take-overs run at once. */
  adoptConcurrency?: number;
}

/** Takes a request over with the fence just acquired; answers false when there was nothing left to run. */
export type Adopt = (fence: Fence) => Promise<boolean>;

const DEFAULT_ADOPT_PER_SCAN = 256;
const DEFAULT_ADOPT_CONCURRENCY = 16;
const MGET_CHUNK = 1_000;
/** How long the mark of a finished take-over is kept: a drain waits a few renew intervals for it at most. */
const TAKEN_OVER_KEPT_MS = 60_000;

export class Ownership {
  readonly nodeId: string;
  private readonly redis: Scripts;
  private readonly keys: RedisKeys;
  private scanTimer: NodeJS.Timeout | null = null;
  private scanning: Promise<void> | null = null;
  private adopt: Adopt | null = null;

  constructor(private readonly options: OwnershipOptions) {
    this.redis = withScripts(options.redis);
    this.keys = options.keys;
    this.nodeId = options.leases.nodeId;
  }

  private get live(): string {
    return this.keys.key('live-requests');
  }

  private visitorKey(visitorId: string): string {
    return this.keys.key('visitor-request', visitorId);
  }

  private callKey(callId: string): string {
    return this.keys.key('call', callId);
  }

  private personCalls(person: PersonRef): string {
    return this.keys.key(person.kind === 'agent' ? 'agent-calls' : 'visitor-calls', person.id);
  }

  // -------------------------------------------------------------------------------------------
  // A request's life

  /**
   * Takes the lease of a new request and makes it the visitor's one live request. Throws
   * `RequestConflictError` when the visitor has another, `LeaseRefusedError` when the lease cannot be taken.
   */
  async begin(visitorId: string, requestId: string): Promise<Fence> {
    const taken = await this.options.leases.acquire(requestId);
    if (!taken.acquired) throw new LeaseRefusedError(`the lease of ${requestId} is not free (${taken.holder ? `held by ${taken.holder.nodeId}` : 'Redis is putting leases back'})`);
    try {
      const other = await this.redis.ownershipBegin(this.visitorKey(visitorId), this.live, requestId);
      if (other !== null) throw new RequestConflictError(other);
    } catch (error) {
      await this.options.leases.release(requestId).catch(() => false);
      throw error;
    }
    return { requestId, token: taken.lease.token };
  }

  /** The request has ended and its end is committed: it is no longer live, and its lease goes. */
  async end(requestId: string, visitorId: string): Promise<void> {
    await this.redis.ownershipEnd(this.live, this.visitorKey(visitorId), requestId);
    await this.options.leases.release(requestId);
  }

  /** Gives the lease up (a node draining): another node takes the request over at its next scan. */
  async relinquish(requestId: string): Promise<void> {
    await this.options.leases.release(requestId);
  }

  /**
   * Waits until another node has taken over each request (a drain's hand-off): holds its lease and has
   * finished taking it over, its legs' sockets looked for. Up to `timeoutMs`; answers those not taken by then.
   */
  async awaitTaken(requestIds: readonly string[], timeoutMs: number): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    let waiting = [...requestIds];
    while (waiting.length > 0) {
      const leases = await this.redis.mget(...waiting.map((id) => this.keys.key('lease', id)));
      const done = await this.redis.mget(...waiting.map((id) => this.keys.key('taken-over', id)));
      waiting = waiting.filter((_id, index) => {
        const lease = leases[index];
        if (lease === null || lease === undefined || lease.startsWith(`${this.nodeId}:`)) return true;
        return done[index] !== lease;
      });
      if (waiting.length === 0 || Date.now() >= deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return waiting;
  }

  /** The fence this node may write the request with now, or null when it holds no valid lease on it. */
  fence(requestId: string): Fence | null {
    const lease = this.options.leases.validLease(requestId);
    return lease ? { requestId, token: lease.token } : null;
  }

  async ownerOf(requestId: string): Promise<string | null> {
    return (await this.options.leases.holder(requestId))?.nodeId ?? null;
  }

  async isLive(requestId: string): Promise<boolean> {
    return (await this.redis.sismember(this.live, requestId)) === 1;
  }

  /** The visitor's live request, if they have one. */
  async requestOfVisitor(visitorId: string): Promise<string | null> {
    const requestId = await this.redis.get(this.visitorKey(visitorId));
    if (requestId === null) return null;
    return (await this.isLive(requestId)) ? requestId : null;
  }

  /**
   * Puts back what Redis should know of a request this node runs: after Redis lost its data, the lease
   * keeper puts the lease back and this puts the rest back.
   */
  async republish(request: { requestId: string; visitorId: string; calls: readonly CallFacts[] }): Promise<void> {
    await this.redis.ownershipBegin(this.visitorKey(request.visitorId), this.live, request.requestId);
    for (const call of request.calls) await this.callJoined(call);
  }

  /** Adds requests the store still holds to the live set (a cluster started again, or Redis that lost its data). */
  async seedLive(requestIds: readonly string[]): Promise<void> {
    for (let start = 0; start < requestIds.length; start += MGET_CHUNK) {
      const chunk = requestIds.slice(start, start + MGET_CHUNK);
      if (chunk.length > 0) await this.redis.sadd(this.live, ...chunk);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Calls

  async callJoined(call: CallFacts): Promise<void> {
    const { callId, requestId, agentId, agentName, visitorId, visitorName } = call;
    await this.redis
      .multi()
      .hset(this.callKey(callId), { requestId, agentId, agentName, visitorId, visitorName })
      .sadd(this.personCalls({ kind: 'agent', id: agentId }), callId)
      .sadd(this.personCalls({ kind: 'visitor', id: visitorId }), callId)
      .exec();
  }

  async callLeft(callId: string): Promise<void> {
    await this.redis.ownershipLeave(this.callKey(callId), this.keys.prefix, callId);
  }

  async call(callId: string): Promise<CallFacts | null> {
    const fields = await this.redis.hgetall(this.callKey(callId));
    return toCall(callId, fields);
  }

  /** The live calls a person is a leg of, wherever they run. */
  async callsOf(person: PersonRef): Promise<CallFacts[]> {
    const ids = await this.redis.smembers(this.personCalls(person));
    if (ids.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const callId of ids) pipeline.hgetall(this.callKey(callId));
    const replies = (await pipeline.exec()) ?? [];
    const calls: CallFacts[] = [];
    ids.forEach((callId, index) => {
      const [error, fields] = replies[index] ?? [null, null];
      const call = error ? null : toCall(callId, fields as Record<string, string>);
      if (call) calls.push(call);
    });
    return calls;
  }

  // -------------------------------------------------------------------------------------------
  // Taking requests over

  /** Every renew interval, takes over the live requests nobody holds a lease on, with `adopt`. */
  startAdopting(adopt: Adopt): void {
    this.adopt = adopt;
    if (this.scanTimer) return;
    this.scanTimer = setInterval(() => void this.scanNow(), this.options.leases.settings.renewMs);
  }

  /**
   * No more take-overs from this node (it is draining or stopping). A take-over under way finishes: the
   * answer resolves once it has, so a draining node hands off what it had just taken too.
   */
  stopAdopting(): Promise<void> {
    if (this.scanTimer) clearInterval(this.scanTimer);
    this.scanTimer = null;
    this.adopt = null;
    return this.scanning ?? Promise.resolve();
  }

  /** One scan; a scan already running is joined rather than doubled. */
  scanNow(): Promise<void> {
    this.scanning ??= this.scan()
      .catch((error: unknown) => this.options.logger.warn({ err: error }, 'take-over scan failed'))
      .finally(() => (this.scanning = null));
    return this.scanning;
  }

  private async scan(): Promise<void> {
    const adopt = this.adopt;
    if (!adopt) return;
    const orphans = await this.orphans();
    if (orphans.length === 0) return;
    // Every node scans the same set: starting from different places, they take different requests first.
    shuffle(orphans);
    const limit = this.options.adoptPerScan ?? DEFAULT_ADOPT_PER_SCAN;
    const queue = orphans.slice(0, limit);
    const workers = Array.from({ length: Math.min(queue.length, this.options.adoptConcurrency ?? DEFAULT_ADOPT_CONCURRENCY) }, async () => {
      for (let requestId = queue.pop(); requestId !== undefined; requestId = queue.pop()) {
        if (this.adopt !== adopt) return;
        await this.takeOver(requestId, adopt);
      }
    });
    await Promise.all(workers);
  }

  /** Live request ids whose lease nobody holds. */
  private async orphans(): Promise<string[]> {
    const ids = await this.redis.smembers(this.live);
    const orphans: string[] = [];
    for (let start = 0; start < ids.length; start += MGET_CHUNK) {
      const chunk = ids.slice(start, start + MGET_CHUNK);
      // The keys as the lease keeper names them: one MGET per chunk instead of a script per request.
      const holders = await this.redis.mget(...chunk.map((id) => this.keys.key('lease', id)));
      chunk.forEach((id, index) => {
        if (holders[index] === null) orphans.push(id);
      });
    }
    return orphans;
  }

  private async takeOver(requestId: string, adopt: Adopt): Promise<void> {
    const { leases, logger } = this.options;
    let taken;
    try {
      taken = await leases.acquire(requestId);
    } catch (error) {
      logger.warn({ err: error, requestId }, 'could not try to take a request over');
      return;
    }
    if (!taken.acquired) return;
    const fence = { requestId, token: taken.lease.token };
    try {
      if (await adopt(fence)) {
        // For a draining node that waits to close its sockets until each of its requests is taken over.
        await this.redis.set(this.keys.key('taken-over', requestId), `${this.nodeId}:${String(fence.token)}`, 'PX', TAKEN_OVER_KEPT_MS).catch(() => undefined);
        return;
      }
      // Nothing in the store to run: the request ended, or its first step never landed.
      await this.redis.srem(this.live, requestId);
      await leases.release(requestId);
      logger.info({ requestId }, 'a live request had nothing left to run; forgotten');
    } catch (error) {
      // Given back at once, so this node or another tries again at the next scan.
      logger.error({ err: error, requestId }, 'could not take a request over; its lease is given back');
      await leases.release(requestId).catch(() => false);
    }
  }
}

function toCall(callId: string, fields: Record<string, string> | null): CallFacts | null {
  if (!fields) return null;
  const { requestId, agentId, agentName, visitorId, visitorName } = fields;
  if (!requestId || !agentId || !visitorId) return null;
  return { callId, requestId, agentId, agentName: agentName ?? '', visitorId, visitorName: visitorName ?? '' };
}

function shuffle<T>(list: T[]): void {
  for (let index = list.length - 1; index > 0; index--) {
    const other = Math.floor(Math.random() * (index + 1));
    [list[index], list[other]] = [list[other]!, list[index]!];
  }
}
