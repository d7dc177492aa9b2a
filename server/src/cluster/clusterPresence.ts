/**
 * Presence as one node of a cluster sees and changes it: the calls the server makes of presence (an agent's
 * socket, the status they chose, the holds of rings and calls) go to Redis through AgentClaims, and what
 * routing needs back (who is free in a pool, in ring order) comes from Redis, refreshed whenever any node
 * changes presence. The routing machines still choose: this only tells each waiting request the facts.
 *
 * Everything the server tells presence is fire-and-forget for the caller, as in one process. A write that
 * fails (Redis unreachable for a moment) is tried again with a growing pause until it lands, unless a later
 * call about the same thing has replaced it: a connect retried after the disconnect that followed it would
 * put the agent back online.
 *
 * Rings. A routing actor that rings an agent has chosen from a list that may be a moment old, and another
 * node may have chosen the same agent. The ring goes out only once `claimRing` has held the agent for the
 * request in Redis (one script: two requests never hold one agent). Holds are kept per request: what it
 * wants now (`wanted`) and which agents it may still hold in Redis (`mayHold`). A hold is only sent while the
 * request still wants that agent, and a release only while it does not, checked when each is sent, so a
 * retried release cannot undo a later ring of the same agent, and a ring withdrawn before its claim was
 * sent is never held at all.
 *
 * Queue places: a sorted set per pool of the queued requests of every node, by when each was made. A
 * request entering or leaving it is announced on a channel; each node then tells its own queued requests
 * their place in the cluster-wide line.
 */
import type { AgentInfo } from '@callchart/machines';
import type { Redis } from 'ioredis';
import type { AgentProfile, ChosenStatus, Presence } from '../presence.ts';
import { chosenStatus, PresenceResyncError, registration, type AgentClaims, type PresenceChange } from './agentClaims.ts';
import { createSubscriber } from './redis.ts';

/** How a process recalls the status an agent chose, and keeps a new choice (null: forget it). */
export interface ChosenMemory {
  recall(agentId: string): ChosenStatus | null;
  remember(agentId: string, status: ChosenStatus | null): void;
}

export interface ClusterPresenceSettings {
  /** How many candidates each waiting request is sent. */
  shortlist: number;
  /** How many times a ring's claim is tried before the ring is refused. */
  claimAttempts: number;
  /** The first pause after a failed write; it doubles up to `retryMaxMs`. */
  retryFirstMs: number;
  retryMaxMs: number;
}

export const DEFAULT_CLUSTER_PRESENCE_SETTINGS: ClusterPresenceSettings = { shortlist: 16, claimAttempts: 5, retryFirstMs: 50, retryMaxMs: 2_000 };

export interface ClusterPresenceOptions {
  claims: AgentClaims;
  /** When the store last gave the agent a call; Redis keeps the later of this and its own. */
  lastAssignedAt: (agentId: string) => number | null;
  memory: ChosenMemory;
  /** A write or read that failed (it is retried); the server logs these. */
  onError?: (error: unknown, what: Record<string, unknown>) => void;
  settings?: Partial<ClusterPresenceSettings>;
}

/** A queued request of this node, as the queue sees it: where it stands and how to tell it its place. */
export interface QueuedRequestHere {
  requestId: string;
  pool: string;
  createdAt: number;
  /** The place it was last told (null: none yet). */
  told: number | null;
  tell(position: number): void;
}

/** Shortlists hold 1-1000 agents (AgentClaims' bound). */
const MAX_LIST = 1_000;

interface AgentHere {
  profile: AgentProfile;
  chosen: ChosenStatus;
  online: boolean;
  lastAssignedAt: number | null;
}

interface RequestHolds {
  /** The agent the request rings or is in a call with, as its effects last said; null: nobody. */
  wanted: string | null;
  /** Agents a hold was sent for and no release has yet been confirmed: what the request may hold in Redis. */
  mayHold: Set<string>;
}

/** A ring chosen here whose hold Redis may not show yet (`seq` null: not yet confirmed). */
interface RingMark {
  requestId: string;
  seq: number | null;
}

interface PoolList {
  /** Free agents of the pool, in ring order, as last read. */
  agents: AgentInfo[];
  /** How many were asked for: a list this long may have more behind it. */
  limit: number;
}

interface QueuedEntry {
  member: QueuedRequestHere;
  told: number | null;
}

export class ClusterPresence implements Presence {
  readonly settings: ClusterPresenceSettings;
  private readonly claims: AgentClaims;
  private readonly redis: Redis;
  private readonly listeners = new Set<() => void>();
  private readonly here = new Map<string, AgentHere>();
  private cachedView: AgentInfo[] | null = null;
  private readonly holds = new Map<string, RequestHolds>();
  private readonly marks = new Map<string, RingMark>();
  private readonly lists = new Map<string, PoolList>();
  /** The most agents any request of the pool had tried when it asked: its list must reach past them. */
  private readonly tried = new Map<string, number>();
  private refreshing = false;
  private refreshAgain = false;
  private readonly queued = new Map<string, QueuedEntry>();
  private readonly counting = new Map<string, { again: boolean }>();
  private subscriber: Redis | null = null;
  private unsubscribe: (() => void) | null = null;
  /** Per key, the latest write: an older one still being retried gives way to it. */
  private readonly latest = new Map<string, number>();
  private generation = 0;
  private readonly work = new Set<Promise<unknown>>();
  private readonly wakers = new Set<() => void>();
  private stopped = false;

  constructor(private readonly options: ClusterPresenceOptions) {
    const settings = { ...DEFAULT_CLUSTER_PRESENCE_SETTINGS, ...options.settings };
    for (const [name, value] of Object.entries(settings)) {
      if (!Number.isInteger(value) || value < 1) throw new RangeError(`cluster presence ${name} must be a whole number above 0, not ${String(value)}`);
    }
    if (settings.shortlist > MAX_LIST) throw new RangeError(`cluster presence shortlist must be at most ${MAX_LIST}`);
    this.settings = settings;
    this.claims = options.claims;
    this.redis = options.claims.connection;
  }

  /**
   * Listens to every node's changes and to the queue, and reads the first lists of `pools`. Resolves once
   * subscribed and read; rejects after `timeoutMs` if Redis cannot be reached, while both go on trying.
   */
  async start(pools: Iterable<string> = [], { timeoutMs = 5_000 }: { timeoutMs?: number } = {}): Promise<void> {
    if (this.unsubscribe) return;
    this.stopped = false;
    this.unsubscribe = this.claims.onChange((change) => this.onPresenceChange(change));
    for (const pool of pools) if (!this.lists.has(pool)) this.lists.set(pool, { agents: [], limit: 0 });
    const subscriber = createSubscriber(this.redis, (error) => this.report(error, { reading: 'queue changes' }));
    this.subscriber = subscriber;
    let connectedBefore = false;
    subscriber.on('ready', () => {
      // Announcements made while the connection was down are lost: every place is counted again.
      if (connectedBefore) this.recountAll();
      connectedBefore = true;
    });
    subscriber.on('message', (_channel: string, pool: string) => this.recount(pool));
    await withTimeout(subscriber.subscribe(this.claims.keys.key('queue-changes')), timeoutMs, 'could not subscribe to queue changes');
    this.requestRefresh();
    await this.settled();
  }

  /** Stops listening and retrying; what this node registered lapses with its heartbeat (AgentClaims). */
  stop(): void {
    this.stopped = true;
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.subscriber?.disconnect();
    this.subscriber = null;
    for (const wake of this.wakers) wake();
  }

  /** Resolves once every write, read and count started so far, and any started meanwhile, is done. */
  async settled(): Promise<void> {
    while (this.work.size > 0) await Promise.allSettled([...this.work]);
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // -------------------------------------------------------------------------------------------
  // The agents with a socket on this node

  connect(agent: AgentProfile): void {
    const known = this.here.get(agent.id);
    const chosen = known?.chosen ?? this.options.memory.recall(agent.id) ?? 'available';
    const lastAssignedAt = later(known?.lastAssignedAt ?? null, this.options.lastAssignedAt(agent.id));
    if (!this.valid(() => registration({ ...agent, chosen, lastAssignedAt }), { agentId: agent.id, writing: 'online' })) return;
    this.here.set(agent.id, { profile: agent, chosen, online: true, lastAssignedAt });
    for (const pool of agent.pools) this.interested(pool);
    this.persist(`agent:${agent.id}`, { agentId: agent.id, writing: 'online' }, () =>
      this.claims.online({ id: agent.id, name: agent.name, pools: agent.pools, chosen, lastAssignedAt }),
    );
    this.viewChanged();
  }

  disconnect(agentId: string): void {
    const known = this.here.get(agentId);
    if (!known) return;
    known.online = false;
    this.persist(`agent:${agentId}`, { agentId, writing: 'offline' }, () => this.claims.offline(agentId));
    this.viewChanged();
  }

  remove(agentId: string): void {
    this.options.memory.remember(agentId, null);
    this.here.delete(agentId);
    this.persist(`agent:${agentId}`, { agentId, writing: 'forget' }, () => this.claims.forget(agentId));
    this.viewChanged();
  }

  setChosen(agentId: string, chosen: ChosenStatus): void {
    if (!this.valid(() => chosenStatus(chosen), { agentId, writing: 'chosen' })) return;
    this.options.memory.remember(agentId, chosen);
    const known = this.here.get(agentId);
    if (known) known.chosen = chosen;
    this.persist(`chosen:${agentId}`, { agentId, writing: 'chosen' }, () => this.claims.setChosen(agentId, chosen));
    this.viewChanged();
  }

  assigned(agentId: string, at: number): void {
    const known = this.here.get(agentId);
    if (known) known.lastAssignedAt = later(known.lastAssignedAt, at);
    // Redis keeps the latest time it is given, so a later call replacing this one loses nothing.
    this.persist(`assigned:${agentId}`, { agentId, writing: 'assigned' }, () => this.claims.assigned(agentId, at));
    this.viewChanged();
  }

  /**
   * The agents with a socket on this node (or had one, until they log out): their status as this node knows
   * it, busy while a request run here holds them. The cluster-wide view of a pool is `AgentClaims.view`.
   */
  view(): readonly AgentInfo[] {
    if (!this.cachedView) {
      const busy = new Set([...this.holds.values()].map((holds) => holds.wanted));
      this.cachedView = [...this.here.values()].map(({ profile, chosen, online, lastAssignedAt }) => ({
        id: profile.id,
        name: profile.name,
        pools: profile.pools,
        status: !online ? 'offline' : busy.has(profile.id) ? 'busy' : chosen,
        lastAssignedAt,
      }));
    }
    return this.cachedView;
  }

  // -------------------------------------------------------------------------------------------
  // Holds: rings and calls

  /**
   * The request's routing chose to ring the agent (its ringAgent effect). Nothing is held yet: the ring's
   * message carries a claim, and `claimRing` holds the agent before the message goes out. Until Redis shows
   * the hold, this node's other requests are not offered the agent.
   */
  ring(agentId: string, requestId: string): void {
    this.holdsOf(requestId).wanted = agentId;
    this.marks.set(agentId, { requestId, seq: null });
    this.listChanged();
  }

  /**
   * Holds the agent for the request's ring: true once Redis has it held for the request (holding it again
   * is harmless, so a ring sent again after a takeover claims again); false when another request holds
   * the agent, when the request no longer rings this agent, or when Redis did not answer in
   * `claimAttempts` tries. A false ring is not sent, and the request is told `ring.refused`.
   */
  async claimRing(agentId: string, requestId: string): Promise<boolean> {
    const task = this.claim(agentId, requestId);
    this.track(task);
    return task;
  }

  private async claim(agentId: string, requestId: string): Promise<boolean> {
    const holds = this.holds.get(requestId);
    const stillWanted = () => !this.stopped && this.holds.get(requestId) === holds && holds?.wanted === agentId;
    for (let attempt = 0; attempt < this.settings.claimAttempts && stillWanted(); attempt++) {
      try {
        for (const other of holds!.mayHold) if (other !== agentId) this.sendRelease(other, requestId, holds!);
        holds!.mayHold.add(agentId);
        const result = await this.claims.hold(agentId, requestId, { fresh: true });
        if (result.held) {
          const mark = this.marks.get(agentId);
          if (mark?.requestId === requestId) mark.seq = result.seq;
          return stillWanted();
        }
        if (result.reason === 'busy') break;
        // The request still holds an agent it has since let go of (a release not yet landed, or one lost
        // with a node): it rings this one now, so that one goes first.
        holds!.mayHold.add(result.agentId);
      } catch (error) {
        this.report(error, { agentId, requestId, claiming: 'ring', attempt: attempt + 1 });
        if (invalid(error)) {
          // Refused before anything was sent: there is nothing of it to let go.
          holds!.mayHold.delete(agentId);
          break;
        }
        const pause = error instanceof PresenceResyncError ? error.retryInMs : this.backoff(attempt);
        await this.pause(pause);
      }
    }
    this.refused(agentId, requestId, holds);
    return false;
  }

  /** The claim failed: the request no longer wants the agent, and waiting requests get lists read after it. */
  private refused(agentId: string, requestId: string, holds: RequestHolds | undefined): void {
    if (holds && this.holds.get(requestId) === holds) {
      if (holds.wanted === agentId) holds.wanted = null;
      if (holds.mayHold.has(agentId)) this.sendRelease(agentId, requestId, holds);
      this.forgetIfIdle(requestId, holds);
    }
    const mark = this.marks.get(agentId);
    if (mark?.requestId === requestId) this.marks.delete(agentId);
    // The list the request chose from was wrong about this agent; a fresh one is read after the refusal.
    this.requestRefresh();
  }

  /** A ring or call restored here (a restart, a takeover) holds its agent again; it usually still does. */
  hold(agentId: string, requestId: string): void {
    const holds = this.holdsOf(requestId);
    holds.wanted = agentId;
    this.sendHold(agentId, requestId, holds);
    this.viewChanged();
  }

  /**
   * A request this node now runs (restored or taken over), with the agent its tree rings or calls (or null):
   * that agent is held for it, and any other it still holds in Redis is let go.
   */
  adopt(requestId: string, agentId: string | null): void {
    const holds: RequestHolds = { wanted: agentId, mayHold: new Set() };
    this.holds.set(requestId, holds);
    if (agentId !== null) this.sendHold(agentId, requestId, holds);
    const task = (async () => {
      for (let attempt = 0; !this.stopped && this.holds.get(requestId) === holds; attempt++) {
        try {
          const held = await this.claims.heldBy(requestId);
          if (held !== null && held !== holds.wanted) this.sendRelease(held, requestId, holds);
          return;
        } catch (error) {
          this.report(error, { requestId, reading: 'held agent', attempt: attempt + 1 });
          if (invalid(error)) return;
          await this.pause(this.backoff(attempt));
        }
      }
    })();
    this.track(task);
    this.viewChanged();
  }

  release(agentId: string, requestId: string): void {
    const holds = this.holdsOf(requestId);
    // A release of an agent the request has already moved on from changes nothing it wants now.
    if (holds.wanted === agentId) holds.wanted = null;
    const mark = this.marks.get(agentId);
    if (mark?.requestId === requestId) this.marks.delete(agentId);
    this.sendRelease(agentId, requestId, holds);
    this.listChanged();
  }

  /** The request's tree left this node (another node owns it now): its holds stay in Redis, for the new owner. */
  disown(requestId: string): void {
    this.holds.delete(requestId);
    for (const [agentId, mark] of this.marks) if (mark.requestId === requestId) this.marks.delete(agentId);
    this.claims.disown(requestId);
    this.queued.delete(requestId);
    this.listChanged();
  }

  private holdsOf(requestId: string): RequestHolds {
    let holds = this.holds.get(requestId);
    if (!holds) this.holds.set(requestId, (holds = { wanted: null, mayHold: new Set() }));
    return holds;
  }

  private forgetIfIdle(requestId: string, holds: RequestHolds): void {
    if (holds.wanted === null && holds.mayHold.size === 0 && this.holds.get(requestId) === holds) this.holds.delete(requestId);
  }

  /** Sent at once, and again after a failure, for as long as the request does not want the agent. */
  private sendRelease(agentId: string, requestId: string, holds: RequestHolds): void {
    holds.mayHold.add(agentId);
    const unwanted = () => this.holds.get(requestId) === holds && holds.wanted !== agentId;
    this.persist(
      `release:${requestId}:${agentId}`,
      { agentId, requestId, writing: 'release' },
      async () => {
        await this.claims.release(agentId, requestId);
        if (unwanted()) holds.mayHold.delete(agentId);
        this.forgetIfIdle(requestId, holds);
      },
      unwanted,
    );
  }

  /** A hold restored: sent for as long as the request wants the agent; another request holding it is reported. */
  private sendHold(agentId: string, requestId: string, holds: RequestHolds): void {
    holds.mayHold.add(agentId);
    const wanted = () => this.holds.get(requestId) === holds && holds.wanted === agentId;
    this.persist(
      `hold:${requestId}`,
      { agentId, requestId, writing: 'hold' },
      async () => {
        for (;;) {
          const result = await this.claims.hold(agentId, requestId);
          if (result.held || result.reason === 'busy') {
            if (!result.held) this.report(new Error(`${agentId} is held by another request; ${requestId} cannot hold it again`), { agentId, requestId });
            return;
          }
          if (!wanted()) return;
          this.sendRelease(result.agentId, requestId, holds);
        }
      },
      wanted,
    );
  }

  // -------------------------------------------------------------------------------------------
  // Lists for waiting requests

  /**
   * The free agents of the pool a request could ring next, best first, leaving out those it tried and those
   * rung from here whose holds Redis does not show yet. Read from the last lists fetched (`refresh`): a
   * request offered an agent another node has just taken finds out from its claim.
   */
  shortlist(pool: string, triedAgentIds: readonly string[]): AgentInfo[] {
    this.interested(pool);
    const tried = this.tried.get(pool) ?? 0;
    if (triedAgentIds.length > tried) this.tried.set(pool, triedAgentIds.length);
    const list = this.lists.get(pool);
    const out: AgentInfo[] = [];
    for (const agent of list?.agents ?? []) {
      if (triedAgentIds.includes(agent.id) || this.marks.has(agent.id)) continue;
      out.push(agent);
      if (out.length === this.settings.shortlist) break;
    }
    // The list read may have stopped short of agents this request has not tried: read a longer one.
    if (list && out.length < this.settings.shortlist && list.agents.length >= list.limit && this.limitFor(pool) > list.limit) this.requestRefresh();
    return out;
  }

  /** Reads every pool's list again (once at a time; a request made meanwhile reads again after). */
  requestRefresh(): void {
    if (this.stopped) return;
    if (this.refreshing) {
      this.refreshAgain = true;
      return;
    }
    this.refreshing = true;
    this.track(
      (async () => {
        for (let attempt = 0; ; ) {
          this.refreshAgain = false;
          try {
            await this.refreshOnce();
            attempt = 0;
          } catch (error) {
            this.report(error, { reading: 'shortlists', attempt: attempt + 1 });
            this.refreshAgain = true;
            await this.pause(this.backoff(attempt++));
          }
          if (!this.refreshAgain || this.stopped) break;
        }
        this.refreshing = false;
      })(),
    );
  }

  private async refreshOnce(): Promise<void> {
    const pools = [...this.lists.keys()];
    if (pools.length === 0) return;
    const limits = pools.map((pool) => this.limitFor(pool));
    const read = await Promise.all(pools.map((pool, index) => this.claims.shortlist(pool, [], limits[index])));
    let seq = Number.POSITIVE_INFINITY;
    pools.forEach((pool, index) => {
      this.lists.set(pool, { agents: read[index]!.agents, limit: limits[index]! });
      seq = Math.min(seq, read[index]!.seq);
    });
    // A hold every list read already shows needs no mark of its own.
    for (const [agentId, mark] of this.marks) if (mark.seq !== null && mark.seq <= seq) this.marks.delete(agentId);
    this.listChanged();
  }

  private limitFor(pool: string): number {
    return Math.min(MAX_LIST, this.settings.shortlist + (this.tried.get(pool) ?? 0) + this.marks.size);
  }

  private interested(pool: string): void {
    if (this.lists.has(pool)) return;
    this.lists.set(pool, { agents: [], limit: 0 });
    this.requestRefresh();
  }

  private onPresenceChange(change: PresenceChange): void {
    this.requestRefresh();
    // Redis lost its data, or this node missed announcements: its queued requests are put back and counted.
    if ('resync' in change) {
      for (const entry of this.queued.values()) this.sendQueued(entry.member);
      this.recountAll();
    }
  }

  // -------------------------------------------------------------------------------------------
  // Queue places

  /** The request entered (true) or left the queue; every node's queued requests of its pool are told their places. */
  queueMoved(member: QueuedRequestHere, queued: boolean): void {
    if (queued) {
      this.queued.set(member.requestId, { member, told: member.told });
      this.sendQueued(member);
      return;
    }
    if (!this.queued.delete(member.requestId)) return;
    const { requestId, pool } = member;
    this.persist(
      `queue:${requestId}`,
      { requestId, writing: 'left queue' },
      async () => {
        await this.redis.multi().zrem(this.claims.keys.key('queue', pool), requestId).publish(this.claims.keys.key('queue-changes'), pool).exec().then(execResult);
        this.recount(pool);
      },
      () => !this.queued.has(requestId),
    );
  }

  private sendQueued(member: QueuedRequestHere): void {
    const { requestId, pool, createdAt } = member;
    const entry = this.queued.get(requestId);
    this.persist(
      `queue:${requestId}`,
      { requestId, writing: 'joined queue' },
      async () => {
        await this.redis.multi().zadd(this.claims.keys.key('queue', pool), createdAt, requestId).publish(this.claims.keys.key('queue-changes'), pool).exec().then(execResult);
        this.recount(pool);
      },
      () => this.queued.get(requestId) === entry,
    );
  }

  private recountAll(): void {
    for (const pool of new Set([...this.queued.values()].map((entry) => entry.member.pool))) this.recount(pool);
  }

  /** Tells this node's queued requests of the pool their cluster-wide places, those whose place changed. */
  private recount(pool: string): void {
    if (this.stopped) return;
    const running = this.counting.get(pool);
    if (running) {
      running.again = true;
      return;
    }
    const state = { again: false };
    this.counting.set(pool, state);
    this.track(
      (async () => {
        for (let attempt = 0; ; ) {
          state.again = false;
          const entries = [...this.queued.values()].filter((entry) => entry.member.pool === pool);
          if (entries.length > 0) {
            try {
              const key = this.claims.keys.key('queue', pool);
              const pipeline = this.redis.pipeline();
              for (const entry of entries) pipeline.zrank(key, entry.member.requestId);
              const ranks = execResult(await pipeline.exec()) as (number | null)[];
              entries.forEach((entry, index) => {
                const rank = ranks[index];
                // Left meanwhile, or its entry not written yet (it is counted once it is).
                if (rank === null || rank === undefined || this.queued.get(entry.member.requestId) !== entry) return;
                const position = rank + 1;
                if (entry.told === position) return;
                entry.told = position;
                entry.member.tell(position);
              });
              attempt = 0;
            } catch (error) {
              this.report(error, { reading: 'queue places', pool, attempt: attempt + 1 });
              state.again = true;
              await this.pause(this.backoff(attempt++));
            }
          }
          if (!state.again || this.stopped) break;
        }
        this.counting.delete(pool);
      })(),
    );
  }

  // -------------------------------------------------------------------------------------------

  /**
   * Runs a write now and again after each failure until it lands, while `still()` holds, unless a later
   * write with the same key replaces it.
   */
  private persist(key: string, what: Record<string, unknown>, write: () => Promise<unknown>, still: () => boolean = () => true): void {
    const generation = ++this.generation;
    this.latest.set(key, generation);
    const current = () => !this.stopped && this.latest.get(key) === generation && still();
    this.track(
      (async () => {
        for (let attempt = 0; current(); attempt++) {
          try {
            await write();
            break;
          } catch (error) {
            this.report(error, { ...what, attempt: attempt + 1 });
            // Bad input stays bad: trying it again would only fail again.
            if (invalid(error)) break;
            await this.pause(this.backoff(attempt));
          }
        }
        if (this.latest.get(key) === generation) this.latest.delete(key);
      })(),
    );
  }

  private track<T>(task: Promise<T>): void {
    this.work.add(task);
    void task.finally(() => this.work.delete(task)).catch(() => {});
  }

  private backoff(attempt: number): number {
    return Math.min(this.settings.retryMaxMs, this.settings.retryFirstMs * 2 ** Math.min(attempt, 16));
  }

  /** A pause that `stop()` cuts short. */
  private pause(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.wakers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.wakers.add(wake);
    });
  }

  private viewChanged(): void {
    this.cachedView = null;
  }

  /** What waiting requests would be offered may have changed. */
  private listChanged(): void {
    this.cachedView = null;
    for (const listener of this.listeners) listener();
  }

  /** Bad input is reported and changes nothing: not what this node shows, nor what it remembers. */
  private valid(check: () => unknown, what: Record<string, unknown>): boolean {
    try {
      check();
      return true;
    } catch (error) {
      this.report(error, what);
      return false;
    }
  }

  private report(error: unknown, what: Record<string, unknown>): void {
    this.options.onError?.(error, what);
  }
}

/** AgentClaims refuses bad ids and values with these, before anything is sent. */
function invalid(error: unknown): boolean {
  return error instanceof TypeError || error instanceof RangeError;
}

/** A MULTI or pipeline's answers, or the first error among them. */
function execResult(results: [Error | null, unknown][] | null): unknown[] {
  if (!results) throw new Error('the Redis transaction was aborted');
  for (const [error] of results) if (error) throw error;
  return results.map(([, value]) => value);
}

function later(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.max(a, b);
}

async function withTimeout<T>(task: Promise<T>, timeoutMs: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${message} within ${timeoutMs} ms`)), timeoutMs);
  });
  task.catch(() => {});
  try {
    return await Promise.race([task, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}
