/**
 * The presence feed: who is online and free, as each waiting request is told it (`agents.updated`).
 *
 * A presence change made by a machine's effect (a ring holds an agent, a call releases one) reaches the
 * other requests once that machine's transition is over: an effect must not drive every other routing
 * actor from inside its own action. The registry calls `flush()` at the end of every transition; a
 * change from outside any machine (an agent's socket, their chosen status) goes out at once.
 */
import { eligibleAgents, type AgentInfo } from '@callchart/machines';
import { Presence, type ChosenStatus } from '../presence.ts';
import type { Store } from '../store.ts';
import type { AgentDirectory } from './agentDirectory.ts';
import type { Journal } from './journal.ts';

/** How many candidates each request holds; more than any run of rejects between two presence changes. */
const ROUTING_SHORTLIST = 16;

const SETTING_PREFIX = 'presence.';
const setting = (agentId: string) => `${SETTING_PREFIX}${agentId}`;

export class PresenceFeed {
  readonly presence: Presence;
  private deferring = 0;
  private dirty = false;
  private flushing = false;
  private poolOrder: { view: readonly AgentInfo[] | null; byPool: Map<string, AgentInfo[]> } = { view: null, byPool: new Map() };
  /** Each agent's chosen status as the store keeps it, read once at start; a choice is written through. */
  private readonly chosen = new Map<string, ChosenStatus>();

  constructor(
    directory: AgentDirectory,
    /** Where a chosen status is written, in the order they were chosen. */
    memory: Journal,
    /** Sends every waiting request its fresh list. */
    private readonly deliver: () => void,
  ) {
    this.presence = new Presence((agentId) => directory.lastAssignedAt(agentId), {
      recall: (agentId) => this.chosen.get(agentId) ?? null,
      remember: (agentId, status) => {
        const value = status ?? 'available';
        this.chosen.set(agentId, value);
        memory.write((writes) => writes.settings.set(setting(agentId), value));
        memory.seal();
      },
    });
    this.presence.onChange(() => {
      this.dirty = true;
      if (this.deferring === 0) this.flush();
    });
  }

  /** The statuses agents chose before this process started: they outlive a restart. */
  async load(store: Store): Promise<void> {
    for (const [key, value] of await store.settings.withPrefix(SETTING_PREFIX)) {
      if (value === 'away' || value === 'available') this.chosen.set(key.slice(SETTING_PREFIX.length), value);
    }
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
   * The agents a request could ring next, best first, and only the first few: routing only ever rings the
   * first eligible agent, and every ring, reject or status change sends a fresh list before the few run out.
   * A request's context (persisted at every transition) then stays small however many agents are online.
   */
  shortlist(pool: string, triedAgentIds: readonly string[]): AgentInfo[] {
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
