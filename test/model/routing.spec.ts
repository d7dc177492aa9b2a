import { createMachine } from 'xstate';
import type { ModelSpec } from './harness.ts';
import type { CallSessionOutput } from '../../machines/src/callSession.machine.ts';
import { routingMachine, type AgentInfo, type RoutingContext, type RoutingEvent } from '../../machines/src/routing.machine.ts';

const AT = 1_000;

// Only `a` is free at first, so the request queues after its first trigger; `b` becomes free while it
// waits; `c` stays away. With maxReassignments 1 the next trigger after ringing `b` exhausts the request.
// `b` is held off for the visitor until before the first ring could time out: it is rung only once that ends.
const agent = (id: string, status: AgentInfo['status'], lastAssignedAt: number | null): AgentInfo => ({
  id,
  name: id.toUpperCase(),
  pools: ['support'],
  status,
  lastAssignedAt,
});
const agents = [agent('a', 'available', null), agent('b', 'busy', 500), agent('c', 'away', 100)];
const bFree = [agent('a', 'available', null), agent('b', 'available', 500), agent('c', 'away', 100)];

// Model-test double for the call's session: the real callSession has a timer of its own, which the
// simulated clock would fire behind the model's back, and it has a model of its own. Its end is sent as
// the event routing gets when the child is done, with each output routing tells apart.
const inertCallDouble = createMachine({ id: 'inertCall' });

const telemetry = { disconnections: [], reconnectionAttempts: [], totalPauseMs: 0 };
const callEnds: Record<'agentTimedOut' | 'visitorTimedOut' | 'hungUp', CallSessionOutput> = {
  // The pause ran out with only the agent gone: routing reassigns the visitor.
  agentTimedOut: {
    reason: 'reconnect-timeout',
    endedBy: null,
    endedAt: AT,
    legs: { agent: { socket: 'down', media: 'unreported' }, visitor: { socket: 'up', media: 'connected' } },
    telemetry,
  },
  // The pause ran out with the visitor gone: the request is over.
  visitorTimedOut: {
    reason: 'reconnect-timeout',
    endedBy: null,
    endedAt: AT,
    legs: { agent: { socket: 'up', media: 'connected' }, visitor: { socket: 'down', media: 'unreported' } },
    telemetry,
  },
  hungUp: {
    reason: 'hangup',
    endedBy: 'visitor',
    endedAt: AT,
    legs: { agent: { socket: 'up', media: 'connected' }, visitor: { socket: 'up', media: 'connected' } },
    telemetry,
  },
};

/** What routing hears when its call's session is done. */
export type RoutingModelEvent = RoutingEvent | { type: 'xstate.done.actor.call'; output: CallSessionOutput };

// Deadlines, timer durations and the trigger's time depend on the path taken (a timer fires at its own
// deadline), not on what the request does next, so they are left out of the abstraction and of the comparison.
function behaviour(context: RoutingContext) {
  const { deadlineAt: _deadline, timerMs: _timer, lastTrigger, ...rest } = context;
  return { ...rest, lastTrigger: lastTrigger ? { cause: lastTrigger.cause, agentId: lastTrigger.agentId } : null };
}

export const routingSpec: ModelSpec<typeof routingMachine> = {
  name: 'routing',
  machine: routingMachine.provide({ actors: { callSession: inertCallDouble as never } }),
  input: { requestId: 'r1', visitorId: 'v1', pool: 'support', agents, maxReassignments: 1, heldOff: { agentIds: ['b'], until: AT + 10_000 }, at: AT },
  events: (snapshot) => {
    const current = snapshot.context.currentAgentId ?? 'a';
    const events: RoutingModelEvent[] = [
      { type: 'agent.accepted', agentId: current, callId: `call-${current}`, at: AT },
      { type: 'agent.rejected', agentId: current, at: AT },
      // In a cluster: another node's request claimed the agent first, so the ring never went out.
      { type: 'ring.refused', agentId: current, at: AT },
      { type: 'agent.returned', agentId: current, at: AT },
      { type: 'agent.lost', agentId: current, cause: 'socket', at: AT },
      { type: 'agent.lost', agentId: current, cause: 'away', at: AT },
      { type: 'agent.lost', agentId: current, cause: 'logout', at: AT },
      // A trigger naming someone else must change nothing.
      { type: 'agent.rejected', agentId: 'c', at: AT },
      { type: 'queue.position', position: 2, at: AT },
      { type: 'visitor.cancelled', at: AT },
      { type: 'visitor.gone', at: AT },
      { type: 'visitor.away', at: AT },
      { type: 'visitor.back', at: AT },
      { type: 'timers.rearm', at: AT },
      // In a call, routing only carries these to its session; what they lead to comes back as its end.
      { type: 'leg.socketLost', leg: 'agent', at: AT },
      { type: 'leg.socketBack', leg: 'agent', at: AT },
      { type: 'leg.mediaReconnecting', leg: 'visitor', at: AT },
      { type: 'leg.mediaConnected', leg: 'visitor', at: AT },
      { type: 'leg.mediaFailed', leg: 'visitor', at: AT },
      { type: 'leg.attempt', leg: 'visitor', at: AT, durationMs: 120, outcome: 'recovered' },
      { type: 'call.hangup', by: 'visitor', at: AT },
      ...Object.values(callEnds).map((output) => ({ type: 'xstate.done.actor.call' as const, output })),
    ];
    // Every state takes presence updates; one that changes nothing is offered everywhere, and `b` becoming
    // free only while queued, where it matters: offering it everywhere would only multiply states.
    events.push({ type: 'agents.updated', agents: snapshot.context.agents, at: AT });
    if (snapshot.matches('queued')) events.push({ type: 'agents.updated', agents: bFree, at: AT });
    // The harness sends the child's end like any other event; routing's own event type does not list it.
    return events as RoutingEvent[];
  },
  serializeState: (snapshot) => JSON.stringify({ value: snapshot.value, status: snapshot.status, context: behaviour(snapshot.context) }),
  compareContext: behaviour,
};
