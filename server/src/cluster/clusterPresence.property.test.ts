/**
 * Routing across several nodes sharing one real Redis. Each of three nodes runs real routing actor trees
 * (the server's own effects, journal and presence feed, on a real SQLite store) and its own Redis
 * connection; random requests, rejects, accepts, hang-ups, cancels and agents coming, going and choosing
 * away are thrown at them with random pauses, so Redis answers interleave as they will. Only the sockets
 * are absent: a courier records what each node sends, and the test plays each agent's and visitor's part.
 *
 * Checked while it runs: no agent is ever rung, or in a call, for two requests at once. Checked once it
 * settles: nobody idles while a visitor who could be given them waits, no request is stuck (a ring never
 * sent, a hold never taken or never let go), and every queued request knows its cluster-wide place.
 *
 * In the second property one node dies mid-run: it stops at once, its presence writes from that moment
 * never reaching Redis (sometimes it ends one request first, whose release and queue exit are then lost),
 * and the others take its live requests over from the store, before or after they find it dead. Its agents'
 * sockets go with it; the node that finds it dead tells what waits for them, as its connections would. The
 * same checks must hold once it settles.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { byArrival, type RoutingContext } from '@callchart/machines';
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisServer } from '../../../test/support/redis.ts';
import { hostActor } from '../actorHost.ts';
import { loadConfig } from '../config.ts';
import { createLogger } from '../logger.ts';
import { openStore, type Store } from '../store.ts';
import { AgentDirectory } from '../switchboard/agentDirectory.ts';
import { provideRequestTree } from '../switchboard/effects.ts';
import type { CallEntry, RequestEntry } from '../switchboard/entries.ts';
import { Journals, StoredOutboxMessage, type OutboxMessage } from '../switchboard/journal.ts';
import { PresenceFeed } from '../switchboard/presenceFeed.ts';
import { AgentClaims } from './agentClaims.ts';
import { RedisKeys, createRedis, whenReady } from './redis.ts';

const NODES = ['n1', 'n2', 'n3'] as const;
const AGENTS = ['a', 'b', 'c', 'd'] as const;
const POOLS = ['p', 'q'] as const;
const VISITORS = ['v1', 'v2', 'v3', 'v4', 'v5'] as const;
/** Long enough that no timer fires in a run: every move is one the test made. */
const LONG = 600_000;
const SETTLE_ROUNDS = 300;

type Op =
  | { kind: 'online'; agent: string; node: number }
  | { kind: 'offline'; agent: string }
  | { kind: 'away'; agent: string }
  | { kind: 'available'; agent: string }
  | { kind: 'request'; visitor: string; node: number; pool: string }
  | { kind: 'reject'; agent: string }
  | { kind: 'accept'; agent: string }
  | { kind: 'hangup'; agent: string }
  | { kind: 'cancel'; visitor: string };

const agent = fc.constantFrom(...AGENTS);
const node = fc.nat(NODES.length - 1);
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('online' as const), agent, node }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('offline' as const), agent }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('away' as const), agent }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('available' as const), agent }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('request' as const), visitor: fc.constantFrom(...VISITORS), node, pool: fc.constantFrom(...POOLS) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('reject' as const), agent }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('accept' as const), agent }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('hangup' as const), agent }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('cancel' as const), visitor: fc.constantFrom(...VISITORS) }) },
);
/** Each step is an operation and how long to wait before the next (0: in the same turn). */
const scenario = fc.record({
  pools: fc.tuple(...AGENTS.map(() => fc.subarray([...POOLS], { minLength: 1 }))),
  steps: fc.array(fc.tuple(op, fc.constantFrom(0, 0, 1, 3)), { minLength: 1, maxLength: 24 }),
});
/**
 * A node that dies after step `at` (past the end: after the last), ending one of its requests first or not,
 * with its live requests taken over before the others find it dead, or after.
 */
interface Death {
  at: number;
  node: number;
  endFirst: boolean;
  takeOverFirst: boolean;
}
const death: fc.Arbitrary<Death> = fc.record({ at: fc.nat(24), node, endFirst: fc.boolean(), takeOverFirst: fc.boolean() });
/** A busy start, so that the node that dies usually has rings, calls and a line to leave behind. */
const warmup: fc.Arbitrary<[Op, number][]> = fc
  .tuple(
    fc.tuple(...AGENTS.map((agentId) => node.map((at): Op => ({ kind: 'online', agent: agentId, node: at })))),
    fc.array(fc.record({ kind: fc.constant('request' as const), visitor: fc.constantFrom(...VISITORS), node, pool: fc.constantFrom(...POOLS) }), { minLength: 2, maxLength: 5 }),
    fc.subarray([...AGENTS]),
  )
  .map(([onlines, requests, accepting]) => [
    ...[...onlines, ...requests].map((each): [Op, number] => [each, 1]),
    ...accepting.map((agentId): [Op, number] => [{ kind: 'accept', agent: agentId }, 1]),
  ]);

/** Presence as the alive nodes run it; a dying node's is found dead within a second. */
const SETTINGS = { heartbeatMs: 200, nodeTtlMs: 2_000, graceMs: 1_000 };
const DEATH_SETTINGS = { heartbeatMs: 100, nodeTtlMs: 800, graceMs: 1_000 };
const SWEEP_TIMEOUT_MS = 10_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const config = loadConfig({});
const logger = createLogger('silent');

/** What the test saw go out, across the cluster: the ring each request last sent, and every breach. */
class Watch {
  readonly rung = new Map<string, string>();
  readonly breaches: string[] = [];
  activity = 0;
  constructor(readonly nodes: () => TestNode[]) {}

  /** Requests that ring, or are in a call with, the agent, having sent the ring. */
  engagedWith(agentId: string): string[] {
    const engaged: string[] = [];
    for (const each of this.nodes()) {
      for (const entry of each.requests.values()) {
        const snapshot = entry.actor.getSnapshot();
        if (snapshot.status !== 'active' || snapshot.context.currentAgentId !== agentId) continue;
        if (!snapshot.matches('ringing') && !snapshot.matches('connected')) continue;
        if (this.rung.get(entry.requestId) === agentId) engaged.push(entry.requestId);
      }
    }
    return engaged;
  }

  delivered(message: OutboxMessage): void {
    this.activity++;
    if (message.kind !== 'emit') return;
    const payload = message.payload as { requestId?: string; callId?: string };
    if (message.event === 'agent.ring' && payload.requestId) {
      const agentId = message.room.replace(/^agent:/, '');
      this.rung.set(payload.requestId, agentId);
      const engaged = this.engagedWith(agentId);
      if (engaged.length > 1) this.breaches.push(`${agentId} rung for ${payload.requestId} while engaged with ${engaged.join(', ')}`);
    }
    if (message.event === 'call.accepted' && message.room.startsWith('agent:')) {
      const agentId = message.room.replace(/^agent:/, '');
      const engaged = this.engagedWith(agentId);
      if (engaged.length > 1) this.breaches.push(`${agentId} in a call while engaged with ${engaged.join(', ')}`);
    }
  }
}

/** One node: its Redis connection and presence, and the request trees it runs, as the registry runs them. */
class TestNode {
  readonly requests = new Map<string, RequestEntry>();
  readonly calls = new Map<string, CallEntry>();
  readonly waiting = new Set<RequestEntry>();
  readonly directory = new AgentDirectory();
  readonly journals: Journals;
  readonly feed: PresenceFeed;
  /** Stopped mid-run, saying nothing: from then on nothing of it reaches Redis or the store. */
  dead = false;
  private readonly machine: ReturnType<typeof provideRequestTree>;

  constructor(
    readonly claims: AgentClaims,
    private readonly store: Store,
    private readonly watch: Watch,
    readonly errors: unknown[],
  ) {
    this.journals = new Journals(store, { deliver: (message) => watch.delivered(message) }, logger, (agentId, requestId) => this.feed.claimRing!(agentId, requestId));
    this.feed = new PresenceFeed(this.directory, this.journals.open(), () => this.refreshWaiting(), { claims, onError: (error) => errors.push(error) });
    this.machine = provideRequestTree({ directory: this.directory, config, logger, now: Date.now, feed: this.feed, requests: this.requests, calls: this.calls });
  }

  refreshAgents(entry: RequestEntry): void {
    const { pool, triedAgentIds } = entry.actor.getSnapshot().context;
    this.watch.activity++;
    entry.actor.send({ type: 'agents.updated', agents: this.feed.shortlist(pool, triedAgentIds), at: Date.now() });
  }

  private refreshWaiting(): void {
    for (const entry of byArrival(this.waiting)) this.refreshAgents(entry);
  }

  /** Live from its start until its end is sent, as ownership records every request (`live-requests`). */
  private get live(): string {
    return this.claims.keys.key('live-requests');
  }

  create(requestId: string, visitorId: string, pool: string): RequestEntry {
    // Before its first step, on the connection its claims go through: recorded live before anything is held.
    void this.claims.connection.sadd(this.live, requestId).catch((error: unknown) => this.errors.push(error));
    const entry = this.host({ requestId, visitorId, visitorName: visitorId, pool, createdAt: Date.now() });
    const record = { id: requestId, visitorId, visitorName: visitorId, pool, state: 'searching', createdAt: entry.createdAt };
    entry.journal.write((writes) => writes.requests.create(record));
    entry.actor.start();
    return entry;
  }

  /** A request of a dead node, from the store, as a node taking it over brings it back (`Registry.adopt`). */
  async adopt(requestId: string): Promise<void> {
    const record = await this.store.snapshots.get(`routing:${requestId}`);
    const row = record ? await this.store.requests.get(requestId) : undefined;
    if (!record || !row || row.endedAt !== null) {
      // It ended before its owner died: nobody runs it, and it is no longer live.
      await this.claims.connection.srem(this.live, requestId);
      return;
    }
    const entry = this.host({ requestId, visitorId: row.visitorId, visitorName: row.visitorName, pool: row.pool, createdAt: row.createdAt }, record.snapshot);
    const snapshot = entry.actor.getSnapshot();
    const callId = snapshot.context.callId;
    const call = callId ? await this.store.calls.get(callId) : undefined;
    if (call && call.endedAt === null && snapshot.matches('connected')) {
      this.calls.set(call.id, { callId: call.id, requestId, agentId: call.agentId, agentName: call.agentName, visitorId: call.visitorId, visitorName: call.visitorName });
    }
    this.feed.adopt(requestId, snapshot.context.currentAgentId);
    entry.actor.start();
    entry.journal.resend(record.outbox.map((message) => StoredOutboxMessage.parse(message) as OutboxMessage));
    entry.actor.send({ type: 'timers.rearm', at: Date.now() });
  }

  /**
   * Dies at once: nothing it writes to presence from now on reaches Redis. With `endFirst` one of its
   * requests ends first (its end committed, its release and its leaving the queue lost with the node).
   * Answers the requests it ran, for the others to take over.
   */
  async die(endFirst: boolean): Promise<string[]> {
    this.dead = true;
    this.feed.stop();
    const ran = [...this.requests.keys()];
    // One that holds an agent if it can: that hold is what the node's death would leave held for nobody.
    const entries = [...this.requests.values()];
    const last = entries.find((entry) => entry.actor.getSnapshot().context.currentAgentId !== null) ?? entries.at(-1);
    if (endFirst && last) {
      const at = Date.now();
      if (last.actor.getSnapshot().matches('connected')) last.actor.send({ type: 'call.hangup', by: 'visitor', at });
      else last.actor.send({ type: 'visitor.cancelled', at });
      await this.journals.settled();
    }
    for (const entry of this.requests.values()) {
      entry.journal.revoke();
      entry.actor.stop();
    }
    this.journals.stop();
    this.requests.clear();
    this.waiting.clear();
    this.calls.clear();
    await this.claims.stop();
    return ran;
  }

  private host(facts: Omit<RequestEntry, 'actor' | 'journal'>, snapshot?: unknown): RequestEntry {
    const entry = facts as RequestEntry;
    const { requestId, visitorId, pool } = facts;
    const tree = hostActor({
      actorId: `routing:${requestId}`,
      requestId,
      machine: this.machine,
      member: (_actor, _snapshot, isRoot) => ({ kind: isRoot ? 'routing' : 'callSession', requestId, callId: null }),
      input: {
        requestId,
        visitorId,
        pool,
        agents: this.feed.shortlist(pool, []),
        timings: { ringTimeout: LONG, agentGrace: LONG, maxQueueWait: LONG },
        callTimings: { reconnectionTimeout: LONG },
        at: entry.createdAt,
      },
      snapshot,
      journals: this.journals,
      logger,
      now: Date.now,
      onSnapshot: (next) => {
        if (next.status === 'active' && !next.matches('connected')) this.waiting.add(entry);
        else this.waiting.delete(entry);
        if (next.status === 'done') this.requests.delete(requestId);
      },
      afterStep: (next, previous) => {
        this.watch.activity++;
        if ((previous?.matches('queued') ?? false) !== next.matches('queued')) this.feed.queueMoved(entry, next.matches('queued'));
        this.feed.flush();
        // Once its end is committed and sent; a node that died first never says it.
        if (next.status === 'done' && previous?.status !== 'done') {
          entry.journal.afterDelivery(() => {
            if (!this.dead) void this.claims.connection.srem(this.live, requestId).catch((error: unknown) => this.errors.push(error));
          });
        }
      },
      // A ring refused after its tree ended (its end in the same commit) has nobody left to tell.
      onRingRefused: (agentId) => {
        if (this.requests.get(requestId) === entry) entry.actor.send({ type: 'ring.refused', agentId, at: Date.now() });
      },
    });
    entry.actor = tree.actor;
    entry.journal = tree.journal;
    this.requests.set(requestId, entry);
    if (!entry.actor.getSnapshot().matches('connected')) this.waiting.add(entry);
    return entry;
  }

  stop(): void {
    for (const entry of this.requests.values()) entry.actor.stop();
    this.requests.clear();
    this.waiting.clear();
    this.feed.stop();
  }
}

/** A whole cluster for one run, and the people the test plays. */
class Cluster {
  readonly watch: Watch;
  readonly nodes: TestNode[];
  /** Where each agent's socket is (undefined: offline), and what they chose. */
  readonly agentNode = new Map<string, number>();
  readonly chosen = new Map<string, 'available' | 'away'>();
  private requestCount = 0;

  constructor(
    readonly keys: RedisKeys,
    readonly run: number,
    readonly pools: Record<string, string[]>,
    clients: Redis[],
    store: Store,
    settings = SETTINGS,
  ) {
    this.watch = new Watch(() => this.nodes);
    this.nodes = NODES.map((nodeId, index) => {
      const errors: unknown[] = [];
      const claims = new AgentClaims({ redis: clients[index]!, keys, nodeId, settings, onError: (error) => errors.push(error) });
      // As each node's connections do: a dead node's agent taken on here has lost their socket; a node that
      // was only stalled has its agents back.
      claims.onPeopleLost((people) => {
        this.watch.activity++;
        for (const person of people) if (person.kind === 'agent') this.agentLost(person.id, 'socket');
      });
      claims.onRejoined(() => {
        for (const [agentId, at] of this.agentNode) if (at === index) this.agentReturned(agentId);
      });
      return new TestNode(claims, store, this.watch, errors);
    });
  }

  /** The node the step names, or the next one alive once it has died. */
  private alive(index: number): number {
    for (let offset = 0; offset < this.nodes.length; offset++) {
      const candidate = (index + offset) % this.nodes.length;
      if (!this.nodes[candidate]!.dead) return candidate;
    }
    throw new Error('every node is dead');
  }

  /**
   * The node dies as `death` says; the others take its live requests over (at once, or once they have found
   * it dead) and its agents' sockets are gone with it.
   */
  async die(death: { node: number; endFirst: boolean; takeOverFirst: boolean }, redis: Redis): Promise<void> {
    // The node the run names among those running the most requests: a death that leaves nothing shows little.
    const busiest = Math.max(...this.nodes.map((each) => each.requests.size));
    const candidates = this.nodes.filter((each) => each.requests.size === busiest);
    const dying = candidates[death.node % candidates.length]!;
    const index = this.nodes.indexOf(dying);
    const nodeId = dying.claims.nodeId;
    for (const [agentId, at] of [...this.agentNode]) if (at === index) this.agentNode.delete(agentId);
    const ran = await dying.die(death.endFirst);
    this.watch.activity++;
    const heirs = this.nodes.filter((each) => !each.dead);
    const takeOver = () => Promise.all(ran.map((requestId, index) => heirs[index % heirs.length]!.adopt(requestId)));
    if (death.takeOverFirst) await takeOver();
    // Found dead, and what it left behind dealt with: its people taken on, its holds and places let go or held again.
    const found = async () => (await redis.sismember(this.keys.key('nodes'), nodeId)) === 0;
    const cleared = async () =>
      (await redis.scard(this.keys.key('orphan-holds'))) === 0 && (await redis.hlen(this.keys.key('orphan-queued'))) === 0 && (await redis.scard(this.keys.key('lost-people'))) === 0;
    const deadline = Date.now() + SWEEP_TIMEOUT_MS;
    while (!(await found())) {
      if (Date.now() > deadline) throw new Error(`${nodeId} was never found dead`);
      await sleep(20);
    }
    if (!death.takeOverFirst) await takeOver();
    while (!(await cleared())) {
      if (Date.now() > deadline) {
        const left = { holds: await redis.smembers(this.keys.key('orphan-holds')), places: await redis.hgetall(this.keys.key('orphan-queued')), people: await redis.smembers(this.keys.key('lost-people')) };
        throw new Error(`what ${nodeId} left was never cleared: ${JSON.stringify(left)}`);
      }
      await this.settle();
    }
  }

  async start(store: Store): Promise<void> {
    for (const each of this.nodes) {
      await each.claims.start();
      await each.directory.load(store);
      await each.feed.load(store);
    }
  }

  async stop(): Promise<void> {
    for (const each of this.nodes) each.stop();
    for (const each of this.nodes) await each.claims.stop();
    await Promise.all(this.nodes.map((each) => each.journals.settled()));
  }

  private everyRequest(): RequestEntry[] {
    return this.nodes.flatMap((each) => [...each.requests.values()]);
  }

  private ownerOf(entry: RequestEntry): TestNode {
    return this.nodes.find((each) => each.requests.get(entry.requestId) === entry)!;
  }

  /** The request whose ring reached the agent and that still rings them. */
  private ringing(agentId: string): RequestEntry | undefined {
    return this.everyRequest().find((entry) => {
      const snapshot = entry.actor.getSnapshot();
      return snapshot.matches('ringing') && snapshot.context.currentAgentId === agentId && this.watch.rung.get(entry.requestId) === agentId;
    });
  }

  private agentReturned(agentId: string): void {
    const at = Date.now();
    for (const each of this.nodes) {
      for (const entry of each.requests.values()) {
        if (entry.actor.getSnapshot().context.currentAgentId === agentId) entry.actor.send({ type: 'agent.returned', agentId, at });
      }
    }
  }

  /** As the switchboard does on every node for a person command: refresh, then tell those holding the agent. */
  private agentLost(agentId: string, cause: 'socket' | 'away'): void {
    for (const each of this.nodes) {
      for (const entry of [...each.requests.values()]) {
        if (entry.actor.getSnapshot().context.currentAgentId !== agentId) continue;
        each.refreshAgents(entry);
        entry.actor.send({ type: 'agent.lost', agentId, cause, at: Date.now() });
      }
    }
  }

  apply(step: Op): void {
    this.watch.activity++;
    const at = Date.now();
    switch (step.kind) {
      case 'online': {
        if (this.agentNode.has(step.agent)) return;
        const node = this.alive(step.node);
        this.agentNode.set(step.agent, node);
        this.nodes[node]!.feed.presence.connect({ id: step.agent, name: step.agent.toUpperCase(), pools: this.pools[step.agent]! });
        this.agentReturned(step.agent);
        return;
      }
      case 'offline': {
        const at = this.agentNode.get(step.agent);
        if (at === undefined) return;
        this.agentNode.delete(step.agent);
        this.nodes[at]!.feed.presence.disconnect(step.agent);
        this.agentLost(step.agent, 'socket');
        return;
      }
      case 'away':
      case 'available': {
        const at = this.agentNode.get(step.agent);
        if (at === undefined || (this.chosen.get(step.agent) ?? 'available') === step.kind) return;
        this.chosen.set(step.agent, step.kind);
        this.nodes[at]!.feed.presence.setChosen(step.agent, step.kind);
        if (step.kind === 'away') this.agentLost(step.agent, 'away');
        return;
      }
      case 'request': {
        // One live request per visitor, as the cluster-wide conflict check keeps it.
        if (this.everyRequest().some((entry) => entry.visitorId === step.visitor)) return;
        this.nodes[this.alive(step.node)]!.create(`req-${this.run}-${++this.requestCount}`, step.visitor, step.pool);
        return;
      }
      case 'reject':
      case 'accept': {
        const entry = this.ringing(step.agent);
        if (!entry) return;
        if (step.kind === 'reject') entry.actor.send({ type: 'agent.rejected', agentId: step.agent, at });
        else entry.actor.send({ type: 'agent.accepted', agentId: step.agent, callId: `call-${entry.requestId}-${at}`, at });
        return;
      }
      case 'hangup': {
        const entry = this.everyRequest().find((each) => each.actor.getSnapshot().matches('connected') && each.actor.getSnapshot().context.currentAgentId === step.agent);
        entry?.actor.send({ type: 'call.hangup', by: 'agent', at });
        return;
      }
      case 'cancel': {
        const entry = this.everyRequest().find((each) => each.visitorId === step.visitor);
        if (entry) this.ownerOf(entry).requests.get(entry.requestId)?.actor.send({ type: 'visitor.cancelled', at });
        return;
      }
    }
  }

  /** Waits until nothing moves: every write, read, commit and message of every node done, and no more coming. */
  async settle(): Promise<void> {
    let quiet = 0;
    for (let round = 0; round < SETTLE_ROUNDS; round++) {
      const before = this.watch.activity;
      await Promise.all(this.nodes.flatMap((each) => [each.feed.settled(), each.journals.settled()]));
      // Pub/sub announcements of the last writes may still be on their way.
      await sleep(15);
      await Promise.all(this.nodes.flatMap((each) => [each.feed.settled(), each.journals.settled()]));
      if (this.watch.activity === before && ++quiet >= 3) return;
      if (this.watch.activity !== before) quiet = 0;
    }
    throw new Error(`the cluster did not settle within ${SETTLE_ROUNDS} rounds: something keeps moving`);
  }

  /** The invariants once settled. */
  async check(redis: Redis): Promise<void> {
    const live = this.everyRequest().map((entry) => ({ entry, snapshot: entry.actor.getSnapshot() }));
    const states = () => live.map(({ entry, snapshot }) => `${entry.requestId}@${String(JSON.stringify(snapshot.value))}:${snapshot.context.currentAgentId}`).join(' ');
    expect(this.watch.breaches, 'an agent engaged with two requests at once').toEqual([]);

    // Nobody stuck: each live request rings an agent it sent the ring to, is in a call, or is queued.
    const engaged = new Map<string, string>();
    for (const { entry, snapshot } of live) {
      const context: RoutingContext = snapshot.context;
      const settledState = snapshot.matches('ringing') || snapshot.matches('connected') || snapshot.matches('queued');
      expect(settledState, `${entry.requestId} left in ${JSON.stringify(snapshot.value)}; ${states()}`).toBe(true);
      if (snapshot.matches('ringing') || snapshot.matches('connected')) {
        expect(this.watch.rung.get(entry.requestId), `${entry.requestId} rings ${context.currentAgentId} but the ring never went out`).toBe(context.currentAgentId);
        expect(engaged.has(context.currentAgentId!), `${context.currentAgentId} engaged twice; ${states()}`).toBe(false);
        engaged.set(context.currentAgentId!, entry.requestId);
      }
    }

    // Redis holds exactly the agents the trees ring or call: none held for nobody, none rung unheld.
    const holdKeys = await redis.keys(this.keys.key('request-agent', '*'));
    const holds = new Map<string, string>();
    for (const key of holdKeys) holds.set(key.slice(this.keys.key('request-agent', '').length), (await redis.get(key))!);
    expect(Object.fromEntries(holds), `holds in Redis; ${states()}`).toEqual(Object.fromEntries([...engaged].map(([agentId, requestId]) => [requestId, agentId])));

    // None idle while a visitor who could be given them waits.
    for (const { entry, snapshot } of live) {
      if (!snapshot.matches('queued')) continue;
      for (const agentId of AGENTS) {
        const free = this.agentNode.has(agentId) && (this.chosen.get(agentId) ?? 'available') === 'available' && !engaged.has(agentId);
        const eligible = this.pools[agentId]!.includes(entry.pool) && !snapshot.context.triedAgentIds.includes(agentId);
        expect(free && eligible, `${agentId} idle while ${entry.requestId} waits in ${entry.pool}; ${states()}`).toBe(false);
      }
    }

    // Every queued request knows its place in its pool's cluster-wide line, and the line is exactly them.
    for (const pool of POOLS) {
      // Oldest first; across nodes two made in the same millisecond go in the order of their ids.
      const queued = byArrival(
        live
          .filter(({ entry, snapshot }) => entry.pool === pool && snapshot.matches('queued'))
          .map(({ entry }) => entry)
          .sort((x, y) => (x.requestId < y.requestId ? -1 : 1)),
      );
      expect(await redis.zrange(this.keys.key('queue', pool), 0, -1), `the ${pool} line in Redis`).toEqual(queued.map((entry) => entry.requestId));
      queued.forEach((entry, index) => expect(entry.actor.getSnapshot().context.queuePosition, `${entry.requestId}'s place`).toBe(index + 1));
    }
    for (const each of this.nodes) if (!each.dead) expect(each.errors, 'no Redis errors on a node still alive').toEqual([]);
  }
}

let redis: RedisServer;
let clients: Redis[] = [];
let dir: string;

beforeAll(async () => {
  redis = await startRedis();
  clients = await Promise.all(
    [...NODES, 'reader'].map(async (name) => {
      const client = createRedis({ url: redis.url, connectionName: name });
      await whenReady(client);
      return client;
    }),
  );
  dir = mkdtempSync(path.join(os.tmpdir(), 'callchart-cluster-routing-'));
});
afterAll(async () => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  for (const client of clients) client.disconnect();
  await redis?.stop();
});

/** One run: the steps on a fresh keyspace and store, a node dying after step `death.at` if given, then the checks. */
async function runScenario(run: number, { pools, steps }: { pools: string[][]; steps: [Op, number][] }, dying?: Death): Promise<void> {
  const keys = new RedisKeys(`cluster-routing-${process.pid}-${run}:`);
  const poolsOf = Object.fromEntries(AGENTS.map((id, index) => [id, pools[index]!]));
  // A store of its own: what agents chose in one run is remembered, and must not carry into the next.
  const store = await openStore({ databasePath: path.join(dir, `routing-${run}.db`) });
  await store.agents.seed(AGENTS.map((id) => ({ id, name: id.toUpperCase(), email: `${id}@example.com`, passwordHash: 'unused', pools: poolsOf[id]!, roles: ['agent'] })));
  const cluster = new Cluster(keys, run, poolsOf, clients, store, dying ? DEATH_SETTINGS : SETTINGS);
  const reader = clients[NODES.length]!;
  try {
    await cluster.start(store);
    for (const [index, [step, pause]] of steps.entries()) {
      cluster.apply(step);
      if (pause > 0) await sleep(pause);
      if (dying && index === Math.min(dying.at, steps.length - 1)) await cluster.die(dying, reader);
    }
    await cluster.settle();
    await cluster.check(reader);
  } finally {
    await cluster.stop();
    await store.close();
  }
}

describe('routing on three nodes sharing one Redis (property, real Redis and routing actors)', () => {
  it('never rings an agent twice, leaves nobody idle while a visitor waits, and leaves nobody stuck', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(scenario, (each) => runScenario(++run, each)),
      { numRuns: 60 },
    );
  });

  it('holds the same when a node dies mid-run, whatever it held, ran or had just ended', async () => {
    let run = 1_000;
    await fc.assert(
      fc.asyncProperty(scenario, warmup, death, ({ pools, steps }, start, dying) => runScenario(++run, { pools, steps: [...start, ...steps] }, dying)),
      { numRuns: 25 },
    );
  }, 180_000);
});
