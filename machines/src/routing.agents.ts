/**
 * Agent selection for the routing machine: which agents may be offered a visitor's request, and in what
 * order. Kept apart from the machine so the policy can be read and tested on its own (see DESIGN §2).
 */

export type AgentStatus = 'available' | 'away' | 'offline' | 'busy';

export interface AgentInfo {
  id: string;
  name: string;
  pools: string[];
  status: AgentStatus;
  /** When this agent was last given a call (epoch ms); null when never. */
  lastAssignedAt: number | null;
}

/** An agent may be rung for a request only once, only from its pool, and only while available. */
export function isEligible(agent: AgentInfo, pool: string, triedAgentIds: readonly string[]): boolean {
  return agent.status === 'available' && agent.pools.includes(pool) && !triedAgentIds.includes(agent.id);
}

/**
 * Least recently assigned first, so calls spread evenly across a pool; an agent never assigned goes
 * before everyone. Ties break on the id so the choice never depends on the order the server listed them.
 */
export function compareForAssignment(a: AgentInfo, b: AgentInfo): number {
  if (a.lastAssignedAt !== b.lastAssignedAt) {
    if (a.lastAssignedAt === null) return -1;
    if (b.lastAssignedAt === null) return 1;
    return a.lastAssignedAt - b.lastAssignedAt;
  }
  if (a.id === b.id) return 0;
  return a.id < b.id ? -1 : 1;
}

export function eligibleAgents(agents: readonly AgentInfo[], pool: string, triedAgentIds: readonly string[]): AgentInfo[] {
  return agents.filter((agent) => isEligible(agent, pool, triedAgentIds)).sort(compareForAssignment);
}

export function nextAgent(agents: readonly AgentInfo[], pool: string, triedAgentIds: readonly string[]): AgentInfo | null {
  return eligibleAgents(agents, pool, triedAgentIds)[0] ?? null;
}
