/**
 * The registry of live call requests: the only place that creates, restores and stops their actor trees
 * (a routing actor, and the callSession it invokes for a call). It keeps the indexes the rest of the
 * switchboard reads (requests, their calls, the requests waiting for an agent) and persists each tree
 * through the actor host, each with its journal.
 */
import type { AnyActorRef, AnyMachineSnapshot, InspectionEvent } from 'xstate';
import { byArrival, type HeldOff, type RoutingContext } from '@callchart/machines';
import { hostActor, stateName, type TreeMember } from '../actorHost.ts';
import type { AgentClaims } from '../cluster/agentClaims.ts';
import type { ServerConfig } from '../config.ts';
import { requestLogger, type Logger } from '../logger.ts';
import type { Fence, Store } from '../store.ts';
import { AgentDirectory } from './agentDirectory.ts';
import { provideRequestTree, recordCallProgress } from './effects.ts';
import type { CallEntry, RequestEntry } from './entries.ts';
import { Journals, StoredOutboxMessage, type Courier, type OutboxMessage } from './journal.ts';
import { PresenceFeed } from './presenceFeed.ts';
import type { Rooms } from './rooms.ts';

/** What a cluster node's registry tells, and asks, the rest of the cluster. */
export interface TreeCluster {
  /** A call's facts, for every node to read once its room is joined; gone again once it is left. */
  calls: { joined(call: CallEntry): Promise<void>; left(callId: string): Promise<void> };
  /** The shared presence, in Redis: the feed reads and writes it, and a ring goes out once it holds the agent. */
  claims: AgentClaims;
  /** The request's end is committed and its last messages sent. */
  ended(entry: RequestEntry): void;
  /** The tree was stopped here for good without ending: its lease is another node's now. */
  dropped(requestId: string): void;
}

export interface RegistryOptions {
  store: Store;
  config: ServerConfig;
  logger: Logger;
  now: () => number;
  rooms: Rooms;
  inspect?: ((inspection: InspectionEvent, actor: TreeMember) => void) | undefined;
  onReassignment?: ((trigger: string) => void) | undefined;
  /** Null in one process. */
  cluster?: TreeCluster | null | undefined;
}

/** A tree's facts as the store keeps them, for a node taking the request over. */
export interface Adopted {
  entry: RequestEntry;
  /** The calls of the tree, if it is in one. */
  calls: CallEntry[];
}

type RequestFacts = Omit<RequestEntry, 'actor' | 'journal'>;
type RoutingSnapshot = ReturnType<RequestEntry['actor']['getSnapshot']>;

/** An agent rung for a visitor who did not take the call, and when. */
interface Ring {
  agentId: string;
  at: number;
}

export class Registry {
  readonly requests = new Map<string, RequestEntry>();
  readonly calls = new Map<string, CallEntry>();
  /** Requests not in a call, kept from their snapshots: the only ones a presence change is sent to. */
  readonly waiting = new Set<RequestEntry>();
  readonly feed: PresenceFeed;
  readonly journals: Journals;
  readonly directory = new AgentDirectory();
  private readonly machine: ReturnType<typeof provideRequestTree>;
  /** Rings not taken, per visitor, within the re-ring window: a new request of theirs is told to hold these agents off. */
  private readonly recentRings = new Map<string, Ring[]>();

  constructor(private readonly options: RegistryOptions) {
    const { store, config, logger, now, rooms } = options;
    const cluster = options.cluster ?? null;
    const claimRing = cluster ? (agentId: string, requestId: string) => this.feed.claimRing?.(agentId, requestId) ?? Promise.resolve(true) : null;
    this.journals = new Journals(store, cluster ? this.indexingCourier(rooms, cluster) : rooms, logger, claimRing);
    this.feed = new PresenceFeed(this.directory, this.journals.open({ what: { writes: 'presence' } }), () => this.refreshWaiting(), {
      now,
      claims: cluster?.claims ?? null,
      onError: (error, what) => logger.warn({ err: error, ...what }, 'shared presence could not be reached; trying again'),
    });
    this.machine = provideRequestTree({ directory: this.directory, config, logger, now, feed: this.feed, requests: this.requests, calls: this.calls });
  }

  /** What the effects read from memory: the agents, and the statuses they chose. */
  async load(): Promise<void> {
    await this.directory.load(this.options.store);
    await this.feed.load(this.options.store);
  }

  /**
   * In a cluster a call's facts are written where every node reads them before its room is joined (and so
   * before anyone is told of the call), and taken away once it is left.
   */
  private indexingCourier(rooms: Rooms, cluster: TreeCluster): Courier {
    return {
      deliver: async (message: OutboxMessage) => {
        if (message.kind === 'joinCall') {
          const call = this.calls.get(message.callId);
          if (call) await cluster.calls.joined(call).catch((error: unknown) => this.options.logger.error({ err: error, callId: call.callId }, 'could not record a call for the cluster'));
        }
        await rooms.deliver(message);
        if (message.kind === 'leaveCall') await cluster.calls.left(message.callId).catch((error: unknown) => this.options.logger.error({ err: error, callId: message.callId }, 'could not remove a call from the cluster'));
      },
    };
  }

  /** A new request's tree, started; its record is written with its first step, under `fence` in a cluster. */
  create(facts: RequestFacts, fence?: Fence): RequestEntry {
    const entry = this.host(facts, undefined, this.heldOffFor(facts.visitorId), fence);
    const record = { id: facts.requestId, visitorId: facts.visitorId, visitorName: facts.visitorName, pool: facts.pool, state: 'searching', createdAt: facts.createdAt };
    entry.journal.write((writes) => writes.requests.create(record));
    entry.actor.start();
    return entry;
  }

  /**
   * Brings back every persisted tree, started, with its timers not yet re-armed. Rows of a call actor kept
   * on its own (before calls became part of their request's tree) cannot be matched to a tree and go.
   */
  async restore(): Promise<{ requests: number; calls: number }> {
    const { store, logger } = this.options;
    const records = await store.snapshots.all();
    const rows = await Promise.all(records.map((record) => (record.kind === 'routing' ? store.requests.get(record.requestId) : undefined)));
    const restored: RequestEntry[] = [];
    const discarded: string[] = [];
    records.forEach((record, index) => {
      const row = rows[index];
      if (!row) {
        discarded.push(record.actorId);
        return;
      }
      try {
        restored.push(this.host({ requestId: row.id, visitorId: row.visitorId, visitorName: row.visitorName, pool: row.pool, createdAt: row.createdAt }, record.snapshot));
      } catch (error) {
        logger.error({ err: error, actorId: record.actorId }, 'could not restore an actor; discarding its snapshot');
        discarded.push(record.actorId);
      }
    });
    if (discarded.length > 0) await store.commit((writes) => discarded.forEach((actorId) => writes.snapshots.delete(actorId)));
    const calls = await Promise.all(
      restored.map((entry) => {
        const { callId } = entry.actor.getSnapshot().context;
        return callId && entry.actor.getSnapshot().matches('connected') ? store.calls.get(callId) : undefined;
      }),
    );
    restored.forEach((entry, index) => {
      this.feed.adopt(entry.requestId, entry.actor.getSnapshot().context.currentAgentId);
      const call = calls[index];
      if (call) this.calls.set(call.id, { callId: call.id, requestId: call.requestId, agentId: call.agentId, agentName: call.agentName, visitorId: call.visitorId, visitorName: call.visitorName });
    });
    for (const entry of restored) entry.actor.start();
    await this.journals.settled();
    return { requests: restored.length, calls: this.calls.size };
  }

  /**
   * Re-arms the restored trees' timers (XState does not restore them) and marks both legs of every call lost:
   * their sockets went with the old process. From here the reconnection windows run.
   */
  async armRestored(lostAt: number | null): Promise<void> {
    const at = this.options.now();
    // The sockets went when the old process stopped answering, not when this one came up: every grace
    // and timeout runs from then, and the pause telemetry counts the time the server was down.
    const lost = lostAt === null ? at : Math.min(lostAt, at);
    for (const call of [...this.calls.values()]) {
      const actor = this.requests.get(call.requestId)?.actor;
      actor?.send({ type: 'agent.lost', agentId: call.agentId, cause: 'socket', at: lost });
      actor?.send({ type: 'leg.socketLost', leg: 'agent', at: lost });
      actor?.send({ type: 'leg.socketLost', leg: 'visitor', at: lost });
    }
    for (const entry of [...this.requests.values()]) entry.actor.send({ type: 'timers.rearm', at });
    await this.journals.settled();
  }

  /**
   * Takes a request over from a node that stopped running it, under `fence`: first the fence is raised in the
   * store, so nothing the old owner commits from here lands, then the tree is brought back from what the
   * store has, started with its timers not yet re-armed, and what its last committed step sent is sent again.
   * Null when the store has nothing left to run (the request ended, or its first step never landed).
   */
  async adopt(fence: Fence): Promise<Adopted | null> {
    const { store, logger } = this.options;
    const { requestId } = fence;
    if (this.requests.has(requestId)) return null;
    await store.commit(() => {}, fence);
    const record = await store.snapshots.get(`routing:${requestId}`);
    const row = record ? await store.requests.get(requestId) : undefined;
    if (!record || !row || row.endedAt !== null) return null;
    const context = (record.snapshot as { context?: { callId?: unknown } } | null)?.context;
    const callId = typeof context?.callId === 'string' ? context.callId : null;
    const call = callId ? await store.calls.get(callId) : undefined;
    // Taken over while something else took it (a second scan of this node's): the first one runs it.
    if (this.requests.has(requestId)) return null;
    const entry = this.host({ requestId: row.id, visitorId: row.visitorId, visitorName: row.visitorName, pool: row.pool, createdAt: row.createdAt }, record.snapshot, undefined, fence);
    const calls: CallEntry[] = [];
    if (call && call.endedAt === null && entry.actor.getSnapshot().matches('connected')) {
      const known = { callId: call.id, requestId: call.requestId, agentId: call.agentId, agentName: call.agentName, visitorId: call.visitorId, visitorName: call.visitorName };
      this.calls.set(call.id, known);
      calls.push(known);
    }
    // Before the outbox goes again: its ring's claim finds the agent held for this request already.
    this.feed.adopt(requestId, entry.actor.getSnapshot().context.currentAgentId);
    entry.actor.start();
    entry.journal.resend(outboxOf(record.outbox, logger, requestId));
    return { entry, calls };
  }

  /** The request's lease is lost: its tree stops here at once, and nothing more of it is written or sent. */
  revoke(requestId: string): void {
    const entry = this.requests.get(requestId);
    if (!entry) return;
    entry.journal.revoke();
    this.drop(entry);
  }

  /**
   * Stops every tree without ending anything: their snapshots stay in the store for the next start, and
   * what their last steps wrote is still committed (see `journals.settled()`).
   */
  stopAll(): void {
    for (const entry of this.requests.values()) {
      entry.journal.freeze();
      entry.actor.stop();
      this.feed.disown(entry.requestId);
    }
    this.journals.stop();
    this.requests.clear();
    this.waiting.clear();
    this.calls.clear();
  }

  /** The request's call session, while it has one. */
  callActor(callId: string): AnyActorRef | undefined {
    const call = this.calls.get(callId);
    return call ? this.requests.get(call.requestId)?.actor.getSnapshot().children.call : undefined;
  }

  /** Sends a waiting request the agents it could ring now. */
  refreshAgents(entry: RequestEntry, at = this.options.now()): void {
    const { pool, triedAgentIds } = entry.actor.getSnapshot().context;
    entry.actor.send({ type: 'agents.updated', agents: this.feed.shortlist(pool, triedAgentIds), at });
  }

  private refreshWaiting(): void {
    const at = this.options.now();
    // A view per request, taken when it is sent: a request earlier in the loop may ring (hold) an agent, and
    // a view taken before the loop would offer that same agent to every queued request after it.
    // A request in a call rings nobody, and every presence change would otherwise rewrite each call's
    // snapshot: calls × changes writes. It gets a fresh list just before anything can move it on.
    // Oldest first, as the requests were made: a request back from a call must not lose its turn to newer ones.
    for (const entry of byArrival(this.waiting)) this.refreshAgents(entry, at);
  }

  /** The visitor's rings still inside the window; older ones, anyone's, are forgotten. */
  private ringsFor(visitorId: string): Ring[] {
    const since = this.options.now() - this.options.config.limits.reringWindowMs;
    for (const [visitor, rings] of this.recentRings) {
      const kept = rings.filter((ring) => ring.at > since);
      if (kept.length === 0) this.recentRings.delete(visitor);
      else this.recentRings.set(visitor, kept);
    }
    return this.recentRings.get(visitorId) ?? [];
  }

  /** The agents a new request of the visitor's holds off, until the window of the latest of their rings ends. */
  private heldOffFor(visitorId: string): HeldOff | undefined {
    const rings = this.ringsFor(visitorId);
    if (rings.length === 0) return undefined;
    return { agentIds: rings.map((ring) => ring.agentId), until: Math.max(...rings.map((ring) => ring.at)) + this.options.config.limits.reringWindowMs };
  }

  /** Remembers who the request rings, and forgets an agent again once they take the call. */
  private noteRing(visitorId: string, next: RoutingSnapshot, previous: RoutingSnapshot | null): void {
    const agentId = next.context.currentAgentId;
    const taken = next.matches('connected');
    const rung = next.matches('ringing') && (!(previous?.matches('ringing') ?? false) || previous?.context.currentAgentId !== agentId);
    if (agentId === null || !(taken || rung)) return;
    const others = this.ringsFor(visitorId).filter((ring) => ring.agentId !== agentId);
    const kept = rung && this.options.config.limits.reringWindowMs > 0 ? [...others, { agentId, at: this.options.now() }] : others;
    if (kept.length === 0) this.recentRings.delete(visitorId);
    else this.recentRings.set(visitorId, kept);
  }

  private host(facts: RequestFacts, snapshot?: unknown, heldOff?: HeldOff, fence?: Fence): RequestEntry {
    const { config, logger, now } = this.options;
    const entry = facts as RequestEntry;
    const log = requestLogger(logger, facts.requestId);
    // A restored call starts where the store has it: only what it records from there on is new.
    let restoredCall = (snapshot as { children?: { call?: { snapshot?: AnyMachineSnapshot } } } | undefined)?.children?.call?.snapshot ?? null;
    const member = (_actor: AnyActorRef, snap: AnyMachineSnapshot, isRoot: boolean): TreeMember => {
      if (isRoot) return { kind: 'routing', requestId: facts.requestId, callId: null };
      const callId = (snap.context as { callId?: string }).callId || entry.actor?.getSnapshot().context.callId || null;
      return { kind: 'callSession', requestId: facts.requestId, callId };
    };
    const tree = hostActor({
      actorId: `routing:${facts.requestId}`,
      requestId: facts.requestId,
      machine: this.machine,
      member,
      inspect: this.options.inspect,
      input: {
        requestId: facts.requestId,
        visitorId: facts.visitorId,
        pool: facts.pool,
        agents: this.feed.shortlist(facts.pool, []),
        maxReassignments: config.maxReassignments,
        ...(heldOff ? { heldOff } : {}),
        timings: { ringTimeout: config.timings.ringTimeoutMs, agentGrace: config.timings.agentGraceMs, maxQueueWait: config.timings.maxQueueWaitMs },
        callTimings: { reconnectionTimeout: config.timings.reconnectionTimeoutMs },
        at: facts.createdAt,
      },
      snapshot,
      journals: this.journals,
      logger: log,
      now,
      onSnapshot: (next, previous) => {
        this.observe(entry, next.context, previous?.context ?? null, log);
        this.noteRing(facts.visitorId, next, previous);
        const state = stateName(next.value);
        // A restored tree starts where its record already is.
        const moved = previous === null ? snapshot === undefined : state !== stateName(previous.value);
        if (moved) entry.journal.write((writes) => writes.requests.update(facts.requestId, { state }));
        if (next.status === 'active' && !next.matches('connected')) this.waiting.add(entry);
        else this.waiting.delete(entry);
        if (next.status === 'done') this.finish(entry, next.context.endReason ?? 'cancelled');
      },
      afterStep: (next, previous) => {
        // Queue places are a fact across requests (across nodes, in a cluster): the feed tells each its place.
        if ((previous?.matches('queued') ?? false) !== next.matches('queued')) this.feed.queueMoved(entry, next.matches('queued'));
        this.feed.flush();
        // After the step's seal, so this runs once the end it wrote is committed and its messages sent.
        const cluster = this.options.cluster;
        if (cluster && next.status === 'done' && previous?.status !== 'done') entry.journal.afterDelivery(() => cluster.ended(entry));
      },
      onChildSnapshot: (_member, next, previous) => {
        const from = previous ?? restoredCall;
        restoredCall = null;
        recordCallProgress(entry.journal, logger, next, from);
      },
      onStale: () => {
        if (this.drop(entry)) this.options.cluster?.dropped(facts.requestId);
      },
      onRingRefused: (agentId) => entry.actor.send({ type: 'ring.refused', agentId, at: now() }),
      ...(fence ? { fence } : {}),
    });
    entry.actor = tree.actor;
    entry.journal = tree.journal;
    this.requests.set(facts.requestId, entry);
    if (!entry.actor.getSnapshot().matches('connected')) this.waiting.add(entry);
    return entry;
  }

  private observe(entry: RequestEntry, next: RoutingContext, previous: RoutingContext | null, log: Logger): void {
    if (previous && previous.reassignments < next.reassignments) {
      log.info({ requestId: entry.requestId, trigger: next.lastTrigger, reassignments: next.reassignments }, 'reassignment');
    }
    // Every trigger that made the request leave its agent, whether or not another could be rung.
    if (previous && next.lastTrigger && next.lastTrigger !== previous.lastTrigger) this.options.onReassignment?.(next.lastTrigger.cause);
  }

  private finish(entry: RequestEntry, reason: string): void {
    this.requests.delete(entry.requestId);
    this.waiting.delete(entry);
    const patch = { endedAt: this.options.now(), endReason: reason };
    entry.journal.write((writes) => writes.requests.update(entry.requestId, patch));
  }

  /**
   * The tree may not go on here: it is stopped and forgotten, its calls with it, and nothing more of it is
   * written. Answers whether it was still here to drop.
   */
  private drop(entry: RequestEntry): boolean {
    if (this.requests.get(entry.requestId) !== entry) return false;
    entry.actor.stop();
    this.requests.delete(entry.requestId);
    this.waiting.delete(entry);
    for (const [callId, call] of this.calls) if (call.requestId === entry.requestId) this.calls.delete(callId);
    this.feed.disown(entry.requestId);
    return true;
  }
}

/** The outbox as the store kept it; an entry of a shape this server does not know is left out, and logged. */
function outboxOf(outbox: readonly unknown[], logger: Logger, requestId: string): OutboxMessage[] {
  const messages: OutboxMessage[] = [];
  for (const message of outbox) {
    const parsed = StoredOutboxMessage.safeParse(message);
    if (parsed.success) messages.push(parsed.data as OutboxMessage);
    else logger.warn({ requestId, issues: parsed.error.issues }, 'an outbox message of an unknown shape was not sent again');
  }
  return messages;
}
