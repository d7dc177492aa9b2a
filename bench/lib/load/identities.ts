/** Agent and visitor identities with signed tokens for a fleet: one agent and one visitor per call. */
import type { Fleet } from '../fleet.ts';

export interface Identity {
  kind: 'agent' | 'visitor';
  id: string;
  token: string;
}

export interface CallPair {
  agent: Identity;
  visitor: Identity;
}

export const visitorId = (i: number) => `visitor-${String(i).padStart(5, '0')}`;

export async function callPairs(fleet: Fleet): Promise<CallPair[]> {
  return Promise.all(
    fleet.agents.map(async (agent, i) => ({
      agent: { kind: 'agent' as const, id: agent.id, token: await fleet.agentToken(agent) },
      visitor: { kind: 'visitor' as const, id: visitorId(i), token: await fleet.visitorToken(visitorId(i), `Visitor ${i}`) },
    })),
  );
}
