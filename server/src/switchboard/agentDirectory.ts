/**
 * The agents the switchboard knows, held in memory: their names (a ring tells the visitor who is rung, a call
 * tells each side who the other is) and when each was last given a call (every routing choice reads it).
 * Loaded from the store at start and kept current by the switchboard's own effects, so no effect waits for
 * the store inside a step.
 */
import type { Store } from '../store.ts';

interface KnownAgent {
  name: string;
  lastAssignedAt: number | null;
}

export class AgentDirectory {
  private readonly agents = new Map<string, KnownAgent>();

  async load(store: Store): Promise<void> {
    for (const agent of await store.agents.list()) {
      this.agents.set(agent.id, { name: agent.name, lastAssignedAt: agent.lastAssignedAt });
    }
  }

  /**
   * An agent's socket carries who they are, as their token says: an account seeded after this process loaded
   * the store is known from then, never assigned as far as this process can tell.
   */
  learn(profile: { id: string; name: string }): void {
    const known = this.agents.get(profile.id);
    this.agents.set(profile.id, { name: profile.name, lastAssignedAt: known?.lastAssignedAt ?? null });
  }

  name(agentId: string): string | undefined {
    return this.agents.get(agentId)?.name;
  }

  lastAssignedAt(agentId: string): number | null {
    return this.agents.get(agentId)?.lastAssignedAt ?? null;
  }

  /** The agent was just given a call; the store is told by the same step. */
  assigned(agentId: string, at: number): void {
    const known = this.agents.get(agentId);
    if (known) known.lastAssignedAt = at;
  }
}
