/**
 * The presence feed: who is online and free, as each waiting request is told it (`agents.updated`), and each
 * queued request its place in the line (`queue.position`).
 *
 * A presence change made by a machine's effect (a ring holds an agent, a call releases one) reaches the
 * other requests once that machine's transition is over: an effect must not drive every other routing
 * actor from inside its own action. The registry calls `flush()` at the end of every transition; a
 * change from outside any machine (an agent's socket, their chosen status, another node) goes out at once.
 *
 * One process keeps presence in memory. A cluster node (constructed with `claims`) keeps it in Redis, shared
 * by every node: the lists come from Redis, a change on any node refreshes this node's waiting requests,
 * a ring goes out only once `claimRing` has held its agent, and queue places count every node's queue.
 */
import { eligibleAgents, queuePositions, type AgentInfo } from '@callchart/machines';
import { ClusterPresence, type ChosenMemory, type ClusterPresenceSettings } from '../cluster/clusterPresence.ts';
import type { AgentClaims } from '../cluster/agentClaims.ts';
import { MemoryPresence, type ChosenStatus, type Presence } from '../presence.ts';
import type { Store } from '../store.ts';
import type { AgentDirectory } from './agentDirectory.ts';
import type { RequestEntry } from './entries.ts';
import type { Journal, RingClaim } from './journal.ts';

/** How many candidates each request holds; more than any run of rejects between two presence changes. */
const ROUTING_SHORTLIST = 16;

const SETTING_PREFIX = 'presence.';
const setting = (agentId: string) => `${SETTING_PREFIX}${agentId}`;

export interface PresenceFeedOptions {
  /** The clock queue places are dated by (the registry's). */
  now?: () => number;
  /** A cluster node's presence in Redis; absent or null in one process. */
  claims?: AgentClaims | null;
  /** Failed Redis reads and writes, each retried; the server logs them. */
  onError?: (error: unknown, what: Record<string, unknown>) => void;
  cluster?: Partial<ClusterPresenceSettings>;
}

export class PresenceFeed {
  readonly presence: Presence;
  /**
   * In a cluster: holds the agent for the request before its ring goes out (see `ClusterPresence.claimRing`).
   * Absent in one process, where a ring's hold is taken by its effect.
   */
  readonly claimRing: ((agentId: string, requestId: string) => Promise<boolean>) | undefined;
  private readonly cluster: ClusterPresence | null;
  private readonly now: () => number;
  private deferring = 0;
  private dirty = false;
  private flushing = false;
  private poolOrder: { view: readonly AgentInfo[] | null; byPool: Map<string, AgentInfo[]> } = { view: null, byPool: new Map() };
  /** Each agent's chosen status as the store keeps it, read once at start; a choice is written through. */
  private readonly chosen = new Map<string, ChosenStatus>();
  /** One process: the queued requests, each with the place it was last told. */
  private readonly queued = new Map<RequestEntry, number | null>();

  constructor(
    directory: AgentDirectory,
    /** Where a chosen status is written, in the order they were chosen. */
    memory: Journal,
    /** Sends every waiting request its fresh list. */
    private readonly deliver: () => void,
    options: PresenceFeedOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    const chosenMemory: ChosenMemory = {
      recall: (agentId) => this.chosen.get(agentId) ?? null,
      remember: (agentId, status) => {
        const value = status ?? 'available';
        this.chosen.set(agentId, value);
        memory.write((writes) => writes.settings.set(setting(agentId), value));
        memory.seal();
      },
    };
    const lastAssignedAt = (agentId: string) => directory.lastAssignedAt(agentId);
    if (options.claims) {
      this.cluster = new ClusterPresence({
        claims: options.claims,
        lastAssignedAt,
        memory: chosenMemory,
        ...(options.onError ? { onError: options.onError } : {}),
        settings: { shortlist: ROUTING_SHORTLIST, ...options.cluster },
      });
      const cluster = this.cluster;
      this.presence = cluster;
      this.claimRing = (agentId, requestId) => cluster.claimRing(agentId, requestId);
    } else {
      this.cluster = null;
      this.presence = new MemoryPresence(lastAssignedAt, chosenMemory);
      this.claimRing = undefined;
    }
    this.presence.onChange(() => {
      this.dirty = true;
      if (this.deferring === 0) this.flush();
    });
  }

  /**
   * The statuses agents chose before this process started: they outlive a restart. A cluster node then
   * listens to every node's changes and reads the first lists of the pools the store's agents serve.
   */
  async load(store: Store): Promise<void> {
    for (const [key, value] of await store.settings.withPrefix(SETTING_PREFIX)) {
      if (value === 'away' || value === 'available') this.chosen.set(key.slice(SETTING_PREFIX.length), value);
    }
    if (this.cluster) {
      const pools = new Set((await store.agents.list()).flatMap((agent) => agent.pools));
      await this.cluster.start(pools);
    }
  }

  /** Stops listening to the cluster and retrying its writes (nothing to stop in one process). */
  stop(): void {
    this.cluster?.stop();
  }

  /** Resolves once the cluster writes and reads started so far are done (at once in one process). */
  async settled(): Promise<void> {
    await this.cluster?.settled();
  }

  /** A change made by a machine's effect: it goes out with the next `flush()`. */
  fromEffect(change: (presence: Presence) => void): void {
    this.deferring++;
    try {
      change(this.presence);
    } finally {
      this.deferring--;
    }
  }

  /** Sends what changed; a request that changes presence again while being told is told again after. */
  flush(): void {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.dirty) {
        this.dirty = false;
        this.deliver();
      }
    } finally {
      this.flushing = false;
    }
  }

  /**
   * The request rings the agent (its ringAgent effect). One process holds the agent at once; a cluster node
   * answers the claim the ring's message must carry, and the journal holds the agent before sending it.
   */
  ring(agentId: string, requestId: string): RingClaim | undefined {
    const cluster = this.cluster;
    if (!cluster) {
      this.fromEffect((presence) => presence.hold(agentId, requestId));
      return undefined;
    }
    this.fromEffect(() => cluster.ring(agentId, requestId));
    return { agentId, requestId };
  }

  /**
   * A tree this process now runs, restored from the store or taken over from another node, with the agent
   * it rings or calls (its context's `currentAgentId`): that agent stays busy for everyone else, and in a
   * cluster any other agent the request still holds is let go. Call it before the tree's outbox is sent again.
   */
  adopt(requestId: string, agentId: string | null): void {
    const cluster = this.cluster;
    if (cluster) this.fromEffect(() => cluster.adopt(requestId, agentId));
    else if (agentId !== null) this.fromEffect((presence) => presence.hold(agentId, requestId));
  }

  /** The request's tree stopped here without ending (another node owns it now): this process forgets it. */
  disown(requestId: string): void {
    for (const entry of this.queued.keys()) if (entry.requestId === requestId) this.queued.delete(entry);
    this.cluster?.disown(requestId);
  }

  /**
   * The request entered (true) or left the queue; queued requests are told their places, first come first
   * served per pool: among this process's requests, or in a cluster among every node's.
   */
  queueMoved(entry: RequestEntry, queued: boolean): void {
    // The place the request was last told, as its context keeps it: a restored request is not told it again.
    const told = queued ? entry.actor.getSnapshot().context.queuePosition : null;
    if (this.cluster) {
      const tell = (position: number) => entry.actor.send({ type: 'queue.position', position, at: this.now() });
      this.cluster.queueMoved({ requestId: entry.requestId, pool: entry.pool, createdAt: entry.createdAt, told, tell }, queued);
      return;
    }
    if (queued) this.queued.set(entry, told);
    else if (!this.queued.delete(entry)) return;
    for (const [request, position] of queuePositions(this.queued.keys())) {
      if (this.queued.get(request) === position) continue;
      this.queued.set(request, position);
      request.actor.send({ type: 'queue.position', position, at: this.now() });
    }
  }

  /**
   * The agents a request could ring next, best first, and only the first few: routing only ever rings the
   * first eligible agent, and every ring, reject or status change sends a fresh list before the few run out.
   * A request's context (persisted at every transition) then stays small however many agents are online.
   */
  shortlist(pool: string, triedAgentIds: readonly string[]): AgentInfo[] {
    if (this.cluster) return this.cluster.shortlist(pool, triedAgentIds);
    const view = this.presence.view();
    // One ordering per pool for each presence view, shared by every request that refreshes against it: a
    // change refreshes every waiting request, and sorting the whole pool for each was quadratic in agents.
    if (this.poolOrder.view !== view) this.poolOrder = { view, byPool: new Map() };
    let ordered = this.poolOrder.byPool.get(pool);
    if (!ordered) {
      ordered = eligibleAgents(view, pool, []);
      this.poolOrder.byPool.set(pool, ordered);
    }
    const list = [];
    for (const agent of ordered) {
      if (triedAgentIds.includes(agent.id)) continue;
      list.push(agent);
      if (list.length === ROUTING_SHORTLIST) break;
    }
    return list;
  }
}
