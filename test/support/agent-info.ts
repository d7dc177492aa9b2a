/** Agents as routing sees them, for the routing unit tests. */
import type { AgentInfo } from '../../machines/src/routing.agents.ts';

/** An available agent in the support pool, never assigned a call, named after its id; `patch` sets what differs. */
export const agent = (id: string, patch: Partial<AgentInfo> = {}): AgentInfo => ({
  id,
  name: id.toUpperCase(),
  pools: ['support'],
  status: 'available',
  lastAssignedAt: null,
  ...patch,
});
