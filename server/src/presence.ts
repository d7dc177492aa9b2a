/**
 * Which agents are online, in which pools, and whether they are free. Routing actors receive this view
 * as `agents.updated`; they make the choices, this only reports facts.
 *
 * `Presence` is what the server tells presence and reads of it. One process keeps it in memory
 * (`MemoryPresence`, here); a cluster keeps it in Redis (`ClusterPresence`), behind the same calls.
 */
import type { AgentInfo } from '@callchart/machines';

export type ChosenStatus = 'available' | 'away';

/** What presence shows of an agent: who they are and the pools they take calls for. */
export interface AgentProfile {
  id: string;
  name: string;
  pools: string[];
}

export interface Presence {
  /** The agent has a socket ready to be rung on (told by its connection actor, which counts the sockets). */
  connect(agent: AgentProfile): void;
  /** The agent's last socket (here) is gone. */
  disconnect(agentId: string): void;
  /** Logging out: the agent is forgotten, with the status they chose. */
  remove(agentId: string): void;
  setChosen(agentId: string, chosen: ChosenStatus): void;
  /** The request keeps the agent busy for everyone else (a ring or a call restored). */
  hold(agentId: string, requestId: string): void;
  release(agentId: string, requestId: string): void;
  /** The agent was just given a call. */
  assigned(agentId: string, at: number): void;
  /** The agents as this process shows them; callers must not modify the entries. */
  view(): readonly AgentInfo[];
  onChange(listener: () => void): () => void;
}

interface OnlineAgent {
  id: string;
  name: string;
  pools: string[];
  chosen: ChosenStatus;
  /** Whether the agent has a socket to be rung on; the agent's connection actor says when this changes. */
  online: boolean;
  /** Requests that hold this agent (rung or in a call); a held agent is busy for everyone else. */
  heldBy: Set<string>;
  /** Read from the agent directory when the agent comes online and kept here after: every routing choice reads it. */
  lastAssignedAt: number | null;
}

/** Presence of one process, in memory. */
export class MemoryPresence implements Presence {
  private readonly agents = new Map<string, OnlineAgent>();
  /** Holds on agents not connected since the start: a restored ring or call must keep them busy when they come back. */
  private readonly pendingHolds = new Map<string, Set<string>>();
  private readonly listeners = new Set<() => void>();
  /**
   * The view every routing actor is sent, built once per change: with many agents and many waiting
   * requests, rebuilding it per request would cost agents × requests on every presence change.
   */
  private cachedView: AgentInfo[] | null = null;
  /**
   * The next view is the last one with only the changed agents' entries replaced: with thousands online and
   * a change per ring, rebuilding every entry per change was most of a busy server's time. An agent coming
   * or going changes the list itself, and the view is built anew.
   */
  private readonly positions = new Map<string, number>();
  private readonly dirty = new Set<string>();
  private listChanged = true;

  constructor(
    private readonly lastAssignedAt: (agentId: string) => number | null,
    /** An agent's chosen status outlives its sockets (and a server restart) until it changes or logs out. */
    private readonly memory: { recall(agentId: string): ChosenStatus | null; remember(agentId: string, status: ChosenStatus | null): void } = {
      recall: () => null,
      remember: () => {},
    },
  ) {}

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private changed(agentId: string, { listChanged = false } = {}): void {
    this.dirty.add(agentId);
    if (listChanged) this.listChanged = true;
    for (const listener of this.listeners) listener();
  }

  connect(agent: AgentProfile): void {
    const known = this.agents.get(agent.id);
    const listChanged = !known;
    if (known) {
      known.online = true;
    } else {
      const heldBy = this.pendingHolds.get(agent.id) ?? new Set<string>();
      this.pendingHolds.delete(agent.id);
      this.agents.set(agent.id, {
        ...agent,
        chosen: this.memory.recall(agent.id) ?? 'available',
        online: true,
        heldBy,
        lastAssignedAt: this.lastAssignedAt(agent.id),
      });
    }
    this.changed(agent.id, { listChanged });
  }

  /** The agent's last socket is gone (told by its connection actor); it stays listed, offline. */
  disconnect(agentId: string): void {
    const agent = this.agents.get(agentId);
    if (!agent) return;
    agent.online = false;
    this.changed(agentId);
  }

  /** Logging out forgets the agent until it connects again. */
  remove(agentId: string): void {
    this.memory.remember(agentId, null);
    if (this.agents.delete(agentId)) this.changed(agentId, { listChanged: true });
  }

  setChosen(agentId: string, chosen: ChosenStatus): void {
    const agent = this.agents.get(agentId);
    this.memory.remember(agentId, chosen);
    if (!agent || agent.chosen === chosen) return;
    agent.chosen = chosen;
    this.changed(agentId);
  }

  hold(agentId: string, requestId: string): void {
    const agent = this.agents.get(agentId);
    if (!agent) {
      this.pendingHolds.set(agentId, (this.pendingHolds.get(agentId) ?? new Set()).add(requestId));
      return;
    }
    agent.heldBy.add(requestId);
    this.changed(agentId);
  }

  release(agentId: string, requestId: string): void {
    this.pendingHolds.get(agentId)?.delete(requestId);
    const agent = this.agents.get(agentId);
    if (!agent?.heldBy.delete(requestId)) return;
    this.changed(agentId);
  }

  isOnline(agentId: string): boolean {
    return this.agents.get(agentId)?.online ?? false;
  }

  chosen(agentId: string): ChosenStatus | null {
    return this.agents.get(agentId)?.chosen ?? null;
  }

  /** The agent was just given a call; the store has been told, this keeps the online copy in step. */
  assigned(agentId: string, at: number): void {
    const agent = this.agents.get(agentId);
    if (!agent) return;
    agent.lastAssignedAt = at;
    this.changed(agentId);
  }

  /** Shared by every caller until the next change, and its entries beyond that: callers must not modify them. */
  view(): readonly AgentInfo[] {
    if (this.listChanged || !this.cachedView) {
      this.cachedView = [...this.agents.values()].map((agent) => entryOf(agent));
      this.positions.clear();
      this.cachedView.forEach((entry, index) => this.positions.set(entry.id, index));
      this.listChanged = false;
    } else if (this.dirty.size > 0) {
      const next = this.cachedView.slice();
      for (const agentId of this.dirty) {
        const agent = this.agents.get(agentId);
        const index = this.positions.get(agentId);
        if (agent && index !== undefined) next[index] = entryOf(agent);
      }
      this.cachedView = next;
    }
    this.dirty.clear();
    return this.cachedView;
  }
}

function entryOf(agent: OnlineAgent): AgentInfo {
  return {
    id: agent.id,
    name: agent.name,
    pools: agent.pools,
    status: !agent.online ? 'offline' : agent.heldBy.size > 0 ? 'busy' : agent.chosen,
    lastAssignedAt: agent.lastAssignedAt,
  };
}
