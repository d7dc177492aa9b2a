/**
 * routing: one actor per visitor request, on the server. It rings agents one at a time, moves on to the
 * next eligible agent on every trigger (reject, ring-no-answer, the agent dropping out), gives a mid-call
 * agent a short grace to come back, queues the visitor when nobody is free, and bounds the whole cascade
 * with `maxReassignments` so a visitor can never loop or be left stuck (see DESIGN §2).
 *
 * Every event carries `at` (epoch ms, server clock); the machine has no clock of its own.
 */
import { assign, setup } from 'xstate';
import { eligibleAgents, nextAgent, type AgentInfo } from './routing.agents.ts';

export type { AgentInfo } from './routing.agents.ts';

export interface RoutingTimings {
  /** How long an agent's ring may go unanswered before the next agent is tried. */
  ringTimeout: number;
  /** How long a mid-call agent whose socket dropped may take to come back before the visitor is reassigned. */
  agentGrace: number;
  /** How long a visitor waits in the queue before the request ends as `noAgents`. */
  maxQueueWait: number;
}

export const defaultRoutingTimings: RoutingTimings = {
  ringTimeout: 15_000,
  agentGrace: 10_000,
  maxQueueWait: 120_000,
};

export const defaultMaxReassignments = 5;

export interface RoutingInput {
  requestId: string;
  visitorId: string;
  pool: string;
  agents?: AgentInfo[];
  timings?: Partial<RoutingTimings>;
  maxReassignments?: number;
  at?: number;
}

export type AgentLostCause = 'socket' | 'away' | 'logout';

export type RoutingEvent =
  | { type: 'agents.updated'; agents: readonly AgentInfo[]; at: number }
  | { type: 'agent.accepted'; agentId: string; at: number }
  | { type: 'agent.rejected'; agentId: string; at: number }
  | { type: 'agent.lost'; agentId: string; cause: AgentLostCause; at: number }
  | { type: 'agent.returned'; agentId: string; at: number }
  | { type: 'session.agentTimedOut'; at: number }
  | { type: 'queue.position'; position: number; at: number }
  | { type: 'call.ended'; at: number }
  | { type: 'visitor.cancelled'; at: number }
  /** The visitor's last socket is gone; the server gives up the request if they are not back within its resume window. */
  | { type: 'visitor.away'; at: number }
  | { type: 'visitor.back'; at: number }
  | { type: 'timers.rearm'; at: number };

/** Why the request left its agent. */
export type RoutingTriggerCause =
  | 'rejected'
  | 'ring-timeout'
  | AgentLostCause
  | 'grace-expired'
  | 'session-timeout';

export interface RoutingTrigger {
  cause: RoutingTriggerCause;
  agentId: string | null;
  at: number;
}

/** How a request ended; 'no-agents', 'reassign-limit' and 'cancelled' are the wire's `routing.ended` reasons. */
export type RoutingOutcome = 'completed' | 'cancelled' | 'no-agents' | 'reassign-limit';

export interface RoutingContext {
  requestId: string;
  visitorId: string;
  pool: string;
  /** The server's latest view of the agents, pushed on every presence change. */
  agents: readonly AgentInfo[];
  /** Agents already offered this request, in ring order; none is ever offered twice. */
  triedAgentIds: string[];
  /** The agent being rung, in the call, or being waited for; null while searching or queued. */
  currentAgentId: string | null;
  /** False while the visitor has no socket: nobody is rung for a visitor who cannot take the call. */
  visitorPresent: boolean;
  /** Moves to another agent after the first ring. */
  reassignments: number;
  maxReassignments: number;
  queuePosition: number | null;
  endReason: RoutingOutcome | null;
  lastTrigger: RoutingTrigger | null;
  timings: RoutingTimings;
  /** When the running timer is due (epoch ms), so a restored actor can re-arm it with the time left. */
  deadlineAt: number | null;
  /** Duration the running timer was (re)armed with. */
  timerMs: number;
  startedAt: number;
}

export function initialRoutingContext({ input }: { input: RoutingInput }): RoutingContext {
  return {
    requestId: input.requestId,
    visitorId: input.visitorId,
    pool: input.pool,
    agents: input.agents ?? [],
    triedAgentIds: [],
    currentAgentId: null,
    visitorPresent: true,
    reassignments: 0,
    maxReassignments: input.maxReassignments ?? defaultMaxReassignments,
    queuePosition: null,
    endReason: null,
    lastTrigger: null,
    timings: { ...defaultRoutingTimings, ...input.timings },
    deadlineAt: null,
    timerMs: 0,
    startedAt: input.at ?? 0,
  };
}

/**
 * The time of the event being handled. Timer events and the start event carry no `at`: a timer fires at
 * its deadline, and the start happens at `input.at`.
 */
function nowOf(context: RoutingContext, event: { type: string }): number {
  const at = (event as { at?: unknown }).at;
  if (typeof at === 'number') return at;
  return context.deadlineAt ?? context.startedAt;
}

function eventAgentId(event: { type: string }): string | null {
  const agentId = (event as { agentId?: unknown }).agentId;
  return typeof agentId === 'string' ? agentId : null;
}

function lostCause(event: RoutingEvent): AgentLostCause | null {
  return event.type === 'agent.lost' ? event.cause : null;
}

export const routingMachine = setup({
  types: {
    context: {} as RoutingContext,
    events: {} as RoutingEvent,
    input: {} as RoutingInput,
  },
  actions: {
    storeAgents: assign({
      agents: ({ context, event }) => (event.type === 'agents.updated' ? event.agents : context.agents),
    }),
    assignNextAgent: assign(({ context }) => {
      const agent = nextAgent(context.agents, context.pool, context.triedAgentIds);
      if (!agent) return {};
      return {
        currentAgentId: agent.id,
        triedAgentIds: [...context.triedAgentIds, agent.id],
        reassignments: context.reassignments + (context.triedAgentIds.length > 0 ? 1 : 0),
        queuePosition: null,
      };
    }),
    startTimer: assign(({ context, event }, params: { timer: keyof RoutingTimings }) => {
      const duration = context.timings[params.timer];
      return { deadlineAt: nowOf(context, event) + duration, timerMs: duration };
    }),
    rearmTimer: assign(({ context, event }) => {
      const at = nowOf(context, event);
      // A deadline that passed while the server was down fires at once; it then counts as having fired now.
      const deadlineAt = Math.max(context.deadlineAt ?? at, at);
      return { deadlineAt, timerMs: deadlineAt - at };
    }),
    recordTrigger: assign(({ context, event }, params: { cause: RoutingTriggerCause } | undefined) => {
      const cause = params?.cause ?? lostCause(event);
      if (!cause) return {};
      return { lastTrigger: { cause, agentId: eventAgentId(event) ?? context.currentAgentId, at: nowOf(context, event) } };
    }),
    releaseAgent: assign({ currentAgentId: null }),
    markVisitorAway: assign({ visitorPresent: false }),
    markVisitorBack: assign({ visitorPresent: true }),
    // A ring withdrawn because the visitor left was no answer from the agent: they may be rung again, and
    // the move to them does not count against the bound.
    withdrawRing: assign(({ context }) => ({
      triedAgentIds: context.triedAgentIds.filter((id) => id !== context.currentAgentId),
      reassignments: context.reassignments - (context.triedAgentIds.length > 1 ? 1 : 0),
    })),
    storeQueuePosition: assign({
      queuePosition: ({ context, event }) => (event.type === 'queue.position' ? event.position : context.queuePosition),
    }),
    setEndReason: assign((_, params: { reason: RoutingOutcome }) => ({ endReason: params.reason })),
    // Effects the server performs; it reads who and what from the actor's context.
    ringAgent: () => {},
    cancelRing: () => {},
    connectCall: () => {},
    notifyVisitorSearching: () => {},
    notifyVisitorRinging: () => {},
    notifyVisitorReassigning: () => {},
    notifyQueued: () => {},
    notifyNoAgents: () => {},
    notifyExhausted: () => {},
  },
  guards: {
    hasEligibleAgent: ({ context }) => nextAgent(context.agents, context.pool, context.triedAgentIds) !== null,
    updateHasEligibleAgent: ({ context, event }) =>
      event.type === 'agents.updated' && eligibleAgents(event.agents, context.pool, context.triedAgentIds).length > 0,
    // Once the request has moved on `maxReassignments` times, one more move would exceed the bound; queueing
    // the visitor first would only delay the same answer.
    reassignmentsExhausted: ({ context }) =>
      context.triedAgentIds.length > 0 && context.reassignments >= context.maxReassignments,
    visitorIsAway: ({ context }) => !context.visitorPresent,
    isCurrentAgent: ({ context, event }) => eventAgentId(event) !== null && eventAgentId(event) === context.currentAgentId,
    isCurrentAgentSocketLoss: ({ context, event }) =>
      event.type === 'agent.lost' && event.agentId === context.currentAgentId && event.cause === 'socket',
    isCurrentAgentDeparture: ({ context, event }) =>
      event.type === 'agent.lost' && event.agentId === context.currentAgentId && event.cause !== 'socket',
  },
  delays: {
    ringTimeout: ({ context }) => context.timerMs,
    agentGrace: ({ context }) => context.timerMs,
    maxQueueWait: ({ context }) => context.timerMs,
  },
}).createMachine({
  id: 'routing',
  description: 'One visitor request: finds an agent, follows the call, and reassigns the visitor when the agent is lost.',
  context: initialRoutingContext,
  initial: 'searching',
  entry: 'notifyVisitorSearching',
  // visitor.cancelled and agents.updated are handled state by state rather than on the machine: a handler
  // on the machine would also apply to the final states in pure tooling (machine.transition, xstate/graph),
  // which would then "cancel" a request that is already done.
  states: {
    searching: {
      description: 'Decides at once: ring the next eligible agent, queue the visitor, or give up when the reassignment bound is reached.',
      always: [
        { guard: 'reassignmentsExhausted', target: 'exhausted' },
        { guard: 'visitorIsAway', target: 'waitingForVisitor' },
        {
          guard: 'hasEligibleAgent',
          target: 'ringing',
          actions: ['assignNextAgent', { type: 'startTimer', params: { timer: 'ringTimeout' } }, 'ringAgent', 'notifyVisitorRinging'],
        },
        { target: 'queued', actions: [{ type: 'startTimer', params: { timer: 'maxQueueWait' } }, 'notifyQueued'] },
      ],
    },
    ringing: {
      description: 'The current agent is being rung; any trigger from that agent, or no answer, moves on to the next agent.',
      after: {
        ringTimeout: {
          target: 'searching',
          actions: ['cancelRing', { type: 'recordTrigger', params: { cause: 'ring-timeout' } }, 'releaseAgent'],
        },
      },
      on: {
        'agent.accepted': { guard: 'isCurrentAgent', target: 'connected', actions: 'connectCall' },
        'agent.rejected': {
          guard: 'isCurrentAgent',
          target: 'searching',
          actions: ['cancelRing', { type: 'recordTrigger', params: { cause: 'rejected' } }, 'releaseAgent'],
        },
        // Pre-call there is no grace: the visitor is still waiting, and another agent may be free now.
        'agent.lost': { guard: 'isCurrentAgent', target: 'searching', actions: ['cancelRing', 'recordTrigger', 'releaseAgent'] },
        'agents.updated': { actions: 'storeAgents' },
        'visitor.cancelled': { target: 'cancelled', actions: 'cancelRing' },
        'visitor.away': { target: 'waitingForVisitor', actions: ['cancelRing', 'withdrawRing', 'releaseAgent', 'markVisitorAway'] },
        'timers.rearm': { target: 'ringing', reenter: true, actions: 'rearmTimer' },
      },
    },
    connected: {
      description: 'The visitor is in a call with the current agent.',
      on: {
        'agent.lost': [
          {
            guard: 'isCurrentAgentSocketLoss',
            target: 'agentLost',
            actions: ['recordTrigger', { type: 'startTimer', params: { timer: 'agentGrace' } }],
          },
          // Going away or logging out is deliberate: waiting for the agent would only keep the visitor waiting.
          { guard: 'isCurrentAgentDeparture', target: 'searching', actions: ['recordTrigger', 'releaseAgent', 'notifyVisitorReassigning'] },
        ],
        'call.ended': { target: 'done' },
        'agents.updated': { actions: 'storeAgents' },
        'visitor.cancelled': { target: 'cancelled' },
        // The call session waits for the visitor; here it only decides what a reassignment does later.
        'visitor.away': { actions: 'markVisitorAway' },
        'visitor.back': { actions: 'markVisitorBack' },
      },
    },
    agentLost: {
      description: "The agent's socket dropped mid-call; the agent has a grace period to come back to the same call.",
      after: {
        agentGrace: {
          target: 'searching',
          actions: [{ type: 'recordTrigger', params: { cause: 'grace-expired' } }, 'releaseAgent', 'notifyVisitorReassigning'],
        },
      },
      on: {
        'agent.returned': { guard: 'isCurrentAgent', target: 'connected' },
        'agent.lost': { guard: 'isCurrentAgentDeparture', target: 'searching', actions: ['recordTrigger', 'releaseAgent', 'notifyVisitorReassigning'] },
        // The call session asks for another agent only while this agent's socket is gone, so only here.
        'session.agentTimedOut': {
          target: 'searching',
          actions: [{ type: 'recordTrigger', params: { cause: 'session-timeout' } }, 'releaseAgent', 'notifyVisitorReassigning'],
        },
        'call.ended': { target: 'done' },
        'agents.updated': { actions: 'storeAgents' },
        'visitor.cancelled': { target: 'cancelled' },
        'visitor.away': { actions: 'markVisitorAway' },
        'visitor.back': { actions: 'markVisitorBack' },
        'timers.rearm': { target: 'agentLost', reenter: true, actions: 'rearmTimer' },
      },
    },
    queued: {
      description: 'No eligible agent is free; the visitor waits in line until one becomes available or the wait runs out.',
      after: { maxQueueWait: { target: 'noAgents' } },
      on: {
        'agents.updated': [
          { guard: 'updateHasEligibleAgent', target: 'searching', actions: 'storeAgents' },
          { actions: 'storeAgents' },
        ],
        'queue.position': { actions: ['storeQueuePosition', 'notifyQueued'] },
        'visitor.cancelled': { target: 'cancelled' },
        'visitor.away': { target: 'waitingForVisitor', actions: 'markVisitorAway' },
        'timers.rearm': { target: 'queued', reenter: true, actions: 'rearmTimer' },
      },
    },
    waitingForVisitor: {
      description:
        "The visitor's socket is gone: nobody is rung for them. The request waits for them to come back, or for the server's resume window to give it up.",
      on: {
        'visitor.back': { target: 'searching', actions: 'markVisitorBack' },
        'visitor.cancelled': { target: 'cancelled' },
        'agents.updated': { actions: 'storeAgents' },
      },
    },
    done: {
      description: 'The call took place and has ended.',
      type: 'final',
      entry: { type: 'setEndReason', params: { reason: 'completed' } },
    },
    noAgents: {
      description: 'Nobody became available within the maximum queue wait.',
      type: 'final',
      entry: [{ type: 'setEndReason', params: { reason: 'no-agents' } }, 'notifyNoAgents'],
    },
    cancelled: {
      description: 'The visitor gave up.',
      type: 'final',
      entry: { type: 'setEndReason', params: { reason: 'cancelled' } },
    },
    exhausted: {
      description: 'The request moved on maxReassignments times; the visitor is told clearly instead of being bounced further.',
      type: 'final',
      entry: [{ type: 'setEndReason', params: { reason: 'reassign-limit' } }, 'notifyExhausted'],
    },
  },
});

export type RoutingMachine = typeof routingMachine;
