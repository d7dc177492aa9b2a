import type { ModelSpec } from './harness.ts';
import { routingMachine, type AgentInfo, type RoutingContext, type RoutingEvent } from '../../machines/src/routing.machine.ts';

const AT = 1_000;

// Only `a` is free at first, so the request queues after its first trigger; `b` becomes free while it
// waits; `c` stays away. With maxReassignments 1 the next trigger after ringing `b` exhausts the request.
const agent = (id: string, status: AgentInfo['status'], lastAssignedAt: number | null): AgentInfo => ({
  id,
  name: id.toUpperCase(),
  pools: ['support'],
  status,
  lastAssignedAt,
});
const agents = [agent('a', 'available', null), agent('b', 'busy', 500), agent('c', 'away', 100)];
const bFree = [agent('a', 'available', null), agent('b', 'available', 500), agent('c', 'away', 100)];

// Deadlines, timer durations and the trigger's time depend on the path taken (a timer fires at its own
// deadline), not on what the request does next, so they are left out of the abstraction and of the comparison.
function behaviour(context: RoutingContext) {
  const { deadlineAt: _deadline, timerMs: _timer, lastTrigger, ...rest } = context;
  return { ...rest, lastTrigger: lastTrigger ? { cause: lastTrigger.cause, agentId: lastTrigger.agentId } : null };
}

export const routingSpec: ModelSpec<typeof routingMachine> = {
  name: 'routing',
  machine: routingMachine,
  input: { requestId: 'r1', visitorId: 'v1', pool: 'support', agents, maxReassignments: 1, at: AT },
  events: (snapshot): RoutingEvent[] => {
    const current = snapshot.context.currentAgentId ?? 'a';
    const events: RoutingEvent[] = [
      { type: 'agent.accepted', agentId: current, at: AT },
      { type: 'agent.rejected', agentId: current, at: AT },
      { type: 'agent.returned', agentId: current, at: AT },
      { type: 'agent.lost', agentId: current, cause: 'socket', at: AT },
      { type: 'agent.lost', agentId: current, cause: 'away', at: AT },
      { type: 'agent.lost', agentId: current, cause: 'logout', at: AT },
      // A trigger naming someone else must change nothing.
      { type: 'agent.rejected', agentId: 'c', at: AT },
      { type: 'session.agentTimedOut', at: AT },
      { type: 'queue.position', position: 2, at: AT },
      { type: 'call.ended', at: AT },
      { type: 'visitor.cancelled', at: AT },
      { type: 'visitor.away', at: AT },
      { type: 'visitor.back', at: AT },
      { type: 'timers.rearm', at: AT },
    ];
    // Every state takes presence updates; one that changes nothing is offered everywhere, and `b` becoming
    // free only while queued, where it matters: offering it everywhere would only multiply states.
    events.push({ type: 'agents.updated', agents: snapshot.context.agents, at: AT });
    if (snapshot.matches('queued')) events.push({ type: 'agents.updated', agents: bFree, at: AT });
    return events;
  },
  serializeState: (snapshot) => JSON.stringify({ value: snapshot.value, status: snapshot.status, context: behaviour(snapshot.context) }),
  compareContext: behaviour,
};
