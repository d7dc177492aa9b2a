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
import { Journals, type OutboxMessage } from '../switchboard/journal.ts';
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
  private readonly machine: ReturnType<typeof provideRequestTree>;

  constructor(
    readonly claims: AgentClaims,
    store: Store,
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

  create(requestId: string, visitorId: string, pool: string): RequestEntry {
    const entry = { requestId, visitorId, visitorName: visitorId, pool, createdAt: Date.now() } as RequestEntry;
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
      },
      // A ring refused after its tree ended (its end in the same commit) has nobody left to tell.
      onRingRefused: (agentId) => {
        if (this.requests.get(requestId) === entry) entry.actor.send({ type: 'ring.refused', agentId, at: Date.now() });
      },
    });
    entry.actor = tree.actor;
    entry.journal = tree.journal;
    this.requests.set(requestId, entry);
    this.waiting.add(entry);
    const record = { id: requestId, visitorId, visitorName: visitorId, pool, state: 'searching', createdAt: entry.createdAt };
    entry.journal.write((writes) => writes.requests.create(record));
    entry.actor.start();
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
  ) {
    this.watch = new Watch(() => this.nodes);
    this.nodes = NODES.map((nodeId, index) => {
      const errors: unknown[] = [];
      const claims = new AgentClaims({ redis: clients[index]!, keys, nodeId, settings: { heartbeatMs: 200, nodeTtlMs: 2_000, graceMs: 1_000 }, onError: (error) => errors.push(error) });
      return new TestNode(claims, store, this.watch, errors);
    });
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
        this.agentNode.set(step.agent, step.node);
        this.nodes[step.node]!.feed.presence.connect({ id: step.agent, name: step.agent.toUpperCase(), pools: this.pools[step.agent]! });
        for (const each of this.nodes) {
          for (const entry of each.requests.values()) {
            if (entry.actor.getSnapshot().context.currentAgentId === step.agent) entry.actor.send({ type: 'agent.returned', agentId: step.agent, at });
          }
        }
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
        this.nodes[step.node]!.create(`req-${this.run}-${++this.requestCount}`, step.visitor, step.pool);
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
    for (const each of this.nodes) expect(each.errors, 'no Redis errors in a run without faults').toEqual([]);
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

describe('routing on three nodes sharing one Redis (property, real Redis and routing actors)', () => {
  it('never rings an agent twice, leaves nobody idle while a visitor waits, and leaves nobody stuck', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(scenario, async ({ pools, steps }) => {
        const keys = new RedisKeys(`cluster-routing-${process.pid}-${++run}:`);
        const poolsOf = Object.fromEntries(AGENTS.map((id, index) => [id, pools[index]!]));
        // A store of its own: what agents chose in one run is remembered, and must not carry into the next.
        const store = await openStore({ databasePath: path.join(dir, `routing-${run}.db`) });
        await store.agents.seed(AGENTS.map((id) => ({ id, name: id.toUpperCase(), email: `${id}@example.com`, passwordHash: 'unused', pools: poolsOf[id]!, roles: ['agent'] })));
        const cluster = new Cluster(keys, run, poolsOf, clients, store);
        try {
          await cluster.start(store);
          for (const [step, pause] of steps) {
            cluster.apply(step);
            if (pause > 0) await sleep(pause);
          }
          await cluster.settle();
          await cluster.check(clients[NODES.length]!);
        } finally {
          await cluster.stop();
          await store.close();
        }
      }),
      { numRuns: 60 },
    );
  });
});
