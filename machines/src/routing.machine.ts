/**
 * routing: one actor per visitor request, on the server, and the root of the request's actor tree. It rings
 * agents one at a time, moves on to the next eligible agent on every trigger (reject, ring-no-answer, the
 * agent dropping out), queues the visitor when nobody is free, and bounds the whole cascade with
 * `maxReassignments` so a visitor can never loop or be left stuck (see DESIGN §2). For the call itself it
 * invokes `callSession` and decides what follows its end. It alone owns an agent lost mid-call: the grace,
 * the reassignment and what the visitor is told.
 *
 * Every event carries `at` (epoch ms, server clock); the machine has no clock of its own.
 */
import { assign, sendTo, setup, type DoneActorEvent } from 'xstate';
import {
  callSessionMachine,
  defaultCallSessionTimings,
  type CallSessionEvent,
  type CallSessionOutput,
  type CallSessionTimings,
} from './callSession.machine.ts';
import type { CallEndReason } from './protocol.ts';
import { eligibleAgents, nextAgent, type AgentInfo } from './routing.agents.ts';
import { armedTimer, eventTime, rearmedTimer, type TimerContext } from './serverClock.ts';

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
  /** Handed to each call's session. */
  callTimings?: Partial<CallSessionTimings>;
  maxReassignments?: number;
  /**
   * Agents rung moments ago for this visitor's earlier requests who did not take the call: this request
   * does not ring them until `until` (epoch ms, server clock), so a request → cancel loop cannot ring the same
   * agent again and again, and a visitor who really wants a call is not kept from the only free agent for long.
   */
  heldOff?: HeldOff;
  at?: number;
}

export interface HeldOff {
  agentIds: string[];
  until: number;
}

export type AgentLostCause = 'socket' | 'away' | 'logout';

/** What the call's session is told, through the request that owns it. */
export type RoutedCallEvent = Exclude<CallSessionEvent, { type: 'call.start' | 'timers.rearm' }>;

export type RoutingEvent =
  | { type: 'agents.updated'; agents: readonly AgentInfo[]; at: number }
  /** `callId` names the call the accept starts; the server makes ids, the machine decides. */
  | { type: 'agent.accepted'; agentId: string; callId: string; at: number }
  | { type: 'agent.rejected'; agentId: string; at: number }
  /**
   * The agent chosen could not be rung: in a cluster, a request on another node claimed them first. Nothing
   * reached the agent, so the request chooses again as if it had never picked them.
   */
  | { type: 'ring.refused'; agentId: string; at: number }
  | { type: 'agent.lost'; agentId: string; cause: AgentLostCause; at: number }
  | { type: 'agent.returned'; agentId: string; at: number }
  | RoutedCallEvent
  | { type: 'queue.position'; position: number; at: number }
  | { type: 'visitor.cancelled'; at: number }
  /** The visitor did not come back within the server's resume window. */
  | { type: 'visitor.gone'; at: number }
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

/** How the request's current or last call ended, as both people (or, when reassigned, the agent) are told. */
export interface RoutingCallEnd {
  callId: string;
  reason: CallEndReason;
}

/** How a request ended; 'no-agents', 'reassign-limit' and 'cancelled' are the wire's `routing.ended` reasons. */
export type RoutingOutcome = 'completed' | 'cancelled' | 'no-agents' | 'reassign-limit';

export interface RoutingContext extends TimerContext {
  requestId: string;
  visitorId: string;
  pool: string;
  /** The server's latest view of the agents, pushed on every presence change. */
  agents: readonly AgentInfo[];
  /** Agents already offered this request, in ring order; none is ever offered twice. */
  triedAgentIds: string[];
  /**
   * Agents this request does not ring before `heldOffUntil`: rung for the same visitor moments before it was
   * made (see `RoutingInput`). Emptied when the hold-off ends in the queue. Both are absent from snapshots
   * persisted before hold-offs existed.
   */
  heldOffAgentIds?: string[];
  heldOffUntil?: number | null;
  /** The agent being rung, in the call, or being waited for; null while searching or queued. */
  currentAgentId: string | null;
  /** The call in progress, from the accept until the next one. */
  callId: string | null;
  /** Set when a call ends, for the effects that close it. */
  callEnd: RoutingCallEnd | null;
  callTimings: CallSessionTimings;
  /** False while the visitor has no socket: nobody is rung for a visitor who cannot take the call. */
  visitorPresent: boolean;
  /** Moves to another agent after the first ring. */
  reassignments: number;
  maxReassignments: number;
  queuePosition: number | null;
  endReason: RoutingOutcome | null;
  lastTrigger: RoutingTrigger | null;
  timings: RoutingTimings;
}

export function initialRoutingContext({ input }: { input: RoutingInput }): RoutingContext {
  return {
    requestId: input.requestId,
    visitorId: input.visitorId,
    pool: input.pool,
    agents: input.agents ?? [],
    triedAgentIds: [],
    heldOffAgentIds: input.heldOff?.agentIds ?? [],
    heldOffUntil: input.heldOff?.until ?? null,
    currentAgentId: null,
    callId: null,
    callEnd: null,
    callTimings: { ...defaultCallSessionTimings, ...input.callTimings },
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

/** The delayed event that ends the hold-off while the request is queued. */
const HOLD_OFF_END = 'xstate.after.holdOffEnd.routing.queued';

/**
 * The time of the event being handled. Timer events, the start event and the call's end carry no `at`: a
 * timer fires at its deadline, the start happens at `input.at`, and the call ended when its output says.
 * The hold-off ends at `heldOffUntil`, or, when that passed during a restart, at the re-arm.
 */
function nowOf(context: RoutingContext, event: { type: string }): number {
  if (event.type === HOLD_OFF_END && typeof context.heldOffUntil === 'number') return Math.max(context.heldOffUntil, queuedAt(context));
  return callOutput(event)?.endedAt ?? eventTime(context, event);
}

/** When the request joined the queue, or was re-armed in it: the queue arms its own wait at that moment. */
function queuedAt(context: RoutingContext): number {
  return (context.deadlineAt ?? context.startedAt) - context.timerMs;
}

/** Whether agents are held off for this request at `now`. */
function holdingOff(context: RoutingContext, now: number): boolean {
  return (context.heldOffAgentIds?.length ?? 0) > 0 && (typeof context.heldOffUntil !== 'number' || now < context.heldOffUntil);
}

/** Who this request may not ring at `now`: those it already rang, and those still held off. */
function excludedAgents(context: RoutingContext, now: number): string[] {
  return holdingOff(context, now) ? [...context.triedAgentIds, ...(context.heldOffAgentIds ?? [])] : context.triedAgentIds;
}

/**
 * How long the queue waits for the hold-off to end, counted from joining (or being re-armed in) the queue.
 * With nobody held off there is nothing to end: the timer is set past the queue's own deadline, which always
 * leaves the queue first.
 */
function holdOffLeft(context: RoutingContext): number {
  const until = context.heldOffUntil;
  const pending = (context.heldOffAgentIds?.length ?? 0) > 0 && typeof until === 'number';
  return pending ? Math.max(0, until - queuedAt(context)) : context.timerMs + 1;
}

function eventAgentId(event: { type: string }): string | null {
  const agentId = (event as { agentId?: unknown }).agentId;
  return typeof agentId === 'string' ? agentId : null;
}

function lostCause(event: RoutingEvent): AgentLostCause | null {
  return event.type === 'agent.lost' ? event.cause : null;
}

type CallDone = DoneActorEvent<CallSessionOutput, 'call'>;

function callOutput(event: { type: string }): CallSessionOutput | null {
  return event.type === 'xstate.done.actor.call' ? (event as CallDone).output : null;
}

export const routingMachine = setup({
  types: {
    context: {} as RoutingContext,
    events: {} as RoutingEvent,
    input: {} as RoutingInput,
  },
  actors: { callSession: callSessionMachine },
  actions: {
    storeAgents: assign({
      agents: ({ context, event }) => (event.type === 'agents.updated' ? event.agents : context.agents),
    }),
    assignNextAgent: assign(({ context, event }) => {
      const agent = nextAgent(context.agents, context.pool, excludedAgents(context, nowOf(context, event)));
      if (!agent) return {};
      return {
        currentAgentId: agent.id,
        triedAgentIds: [...context.triedAgentIds, agent.id],
        reassignments: context.reassignments + (context.triedAgentIds.length > 0 ? 1 : 0),
        queuePosition: null,
      };
    }),
    // From the event's own time, as `nowOf` tells it: a timer that follows the hold-off's end runs from that end.
    startTimer: assign(({ context, event }, params: { timer: keyof RoutingTimings }) => armedTimer(nowOf(context, event), context.timings[params.timer])),
    rearmTimer: assign(({ context, event }) => rearmedTimer(context, event)),
    recordTrigger: assign(({ context, event }, params: { cause: RoutingTriggerCause } | undefined) => {
      const cause = params?.cause ?? lostCause(event);
      if (!cause) return {};
      return { lastTrigger: { cause, agentId: eventAgentId(event) ?? context.currentAgentId, at: nowOf(context, event) } };
    }),
    releaseAgent: assign({ currentAgentId: null }),
    assignCall: assign(({ context, event }) => (event.type === 'agent.accepted' ? { callId: event.callId, callEnd: null } : { callId: context.callId })),
    startCallSession: sendTo('call', ({ context, event }) => ({
      type: 'call.start' as const,
      callId: context.callId ?? '',
      timings: context.callTimings,
      at: nowOf(context, event),
    })),
    forwardToCall: sendTo('call', ({ event }) => event as CallSessionEvent),
    /** Why the call ended: as its session reported, or as this request decided (`params`). */
    recordCallEnd: assign(({ context, event }, params: { reason: CallEndReason } | undefined) => {
      const reason = params?.reason ?? callOutput(event)?.reason;
      return context.callId && reason ? { callEnd: { callId: context.callId, reason } } : {};
    }),
    markVisitorAway: assign({ visitorPresent: false }),
    markVisitorBack: assign({ visitorPresent: true }),
    // A ring withdrawn because the visitor left was no answer from the agent: they may be rung again, and
    // the move to them does not count against the bound.
    /** Out of the list until a fresh one comes: the agent is busy with someone else's request. */
    dropCurrentAgent: assign(({ context }) => ({ agents: context.agents.filter((agent) => agent.id !== context.currentAgentId) })),
    withdrawRing: assign(({ context }) => ({
      triedAgentIds: context.triedAgentIds.filter((id) => id !== context.currentAgentId),
      reassignments: context.reassignments - (context.triedAgentIds.length > 1 ? 1 : 0),
    })),
    storeQueuePosition: assign({
      queuePosition: ({ context, event }) => (event.type === 'queue.position' ? event.position : context.queuePosition),
    }),
    setEndReason: assign((_, params: { reason: RoutingOutcome }) => ({ endReason: params.reason })),
    /** The hold-off is over: the agents it held off may be rung again, in their turn. */
    endHoldOff: assign({ heldOffAgentIds: [] }),
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
    notifyCancelled: () => {},
    /** The call is over for both people: its record closes and both are told `callEnd.reason`. */
    endCallForBoth: () => {},
    /** The call is over for the agent only: the visitor's request goes on with another agent. */
    endCallForAgent: () => {},
  },
  guards: {
    hasEligibleAgent: ({ context, event }) => nextAgent(context.agents, context.pool, excludedAgents(context, nowOf(context, event))) !== null,
    updateHasEligibleAgent: ({ context, event }) =>
      event.type === 'agents.updated' && eligibleAgents(event.agents, context.pool, excludedAgents(context, event.at)).length > 0,
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
    // A pause that ran out with only the agent gone is the agent lost, not the call: the visitor is still
    // here and is found another agent, as when the grace runs out first.
    callTimedOutOnAgent: ({ event }) => {
      const output = callOutput(event);
      return output?.reason === 'reconnect-timeout' && output.legs.agent.socket === 'down' && output.legs.visitor.socket === 'up';
    },
  },
  delays: {
    ringTimeout: ({ context }) => context.timerMs,
    agentGrace: ({ context }) => context.timerMs,
    maxQueueWait: ({ context }) => context.timerMs,
    holdOffEnd: ({ context }) => holdOffLeft(context),
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
        'agent.accepted': { guard: 'isCurrentAgent', target: 'connected', actions: ['assignCall', 'connectCall'] },
        'agent.rejected': {
          guard: 'isCurrentAgent',
          target: 'searching',
          actions: ['cancelRing', { type: 'recordTrigger', params: { cause: 'rejected' } }, 'releaseAgent'],
        },
        // Pre-call there is no grace: the visitor is still waiting, and another agent may be free now.
        'agent.lost': { guard: 'isCurrentAgent', target: 'searching', actions: ['cancelRing', 'recordTrigger', 'releaseAgent'] },
        // Not a reassignment: the agent was never rung, so neither the tries nor the bound count them.
        'ring.refused': { guard: 'isCurrentAgent', target: 'searching', actions: ['withdrawRing', 'dropCurrentAgent', 'releaseAgent'] },
        'agents.updated': { actions: 'storeAgents' },
        'visitor.cancelled': { target: 'cancelled', actions: 'cancelRing' },
        // A restored request whose visitor never came back after the restart: nobody told routing they left.
        'visitor.gone': { target: 'cancelled', actions: 'cancelRing' },
        'visitor.away': { target: 'waitingForVisitor', actions: ['cancelRing', 'withdrawRing', 'releaseAgent', 'markVisitorAway'] },
        'timers.rearm': { target: 'ringing', reenter: true, actions: 'rearmTimer' },
      },
    },
    connected: {
      description: 'The visitor is in a call with the current agent; the callSession child runs the call, and its end decides what follows.',
      entry: 'startCallSession',
      invoke: {
        id: 'call',
        src: 'callSession',
        onDone: [
          { guard: 'callTimedOutOnAgent', target: 'reassigning', actions: { type: 'recordTrigger', params: { cause: 'session-timeout' } } },
          { target: 'done', actions: ['recordCallEnd', 'endCallForBoth'] },
        ],
      },
      initial: 'agentPresent',
      on: {
        // Going away or logging out is deliberate: waiting for the agent would only keep the visitor waiting.
        'agent.lost': { guard: 'isCurrentAgentDeparture', target: 'reassigning', actions: 'recordTrigger' },
        // Every leg report is the call's business.
        'leg.*': { actions: 'forwardToCall' },
        'call.hangup': { actions: 'forwardToCall' },
        'timers.rearm': { actions: 'forwardToCall' },
        'agents.updated': { actions: 'storeAgents' },
        // Leaving the request leaves the call: the visitor hung up.
        'visitor.cancelled': { target: 'cancelled', actions: [{ type: 'recordCallEnd', params: { reason: 'hangup' } }, 'endCallForBoth'] },
        // The call session waits for the visitor; here it only decides what a reassignment does later.
        'visitor.away': { actions: 'markVisitorAway' },
        'visitor.back': { actions: 'markVisitorBack' },
      },
      states: {
        agentPresent: {
          description: "The agent's socket is with the server.",
          on: {
            'agent.lost': {
              guard: 'isCurrentAgentSocketLoss',
              target: 'agentAway',
              actions: ['recordTrigger', { type: 'startTimer', params: { timer: 'agentGrace' } }],
            },
          },
        },
        agentAway: {
          description: "The agent's socket dropped mid-call; the agent has a grace period to come back to the same call before the visitor is reassigned.",
          after: {
            agentGrace: { target: '#routing.reassigning', actions: { type: 'recordTrigger', params: { cause: 'grace-expired' } } },
          },
          on: {
            'agent.returned': { guard: 'isCurrentAgent', target: 'agentPresent' },
            'timers.rearm': { target: 'agentAway', reenter: true, actions: ['rearmTimer', 'forwardToCall'] },
          },
        },
      },
    },
    reassigning: {
      description:
        'The agent is lost to the call: it ends for the agent, the visitor is told they are being moved on, and the search starts again at once.',
      entry: [{ type: 'recordCallEnd', params: { reason: 'reassigned' } }, 'endCallForAgent', 'releaseAgent', 'notifyVisitorReassigning'],
      always: { target: 'searching' },
    },
    queued: {
      description:
        'No eligible agent is free; the visitor waits in line until one becomes available or the wait runs out. Agents held off for the visitor are rung again once their hold-off ends.',
      after: {
        maxQueueWait: { target: 'noAgents' },
        // Ending the hold-off does not restart the queue's wait unless someone can be rung at once.
        holdOffEnd: [{ guard: 'hasEligibleAgent', target: 'searching', actions: 'endHoldOff' }, { actions: 'endHoldOff' }],
      },
      on: {
        'agents.updated': [
          { guard: 'updateHasEligibleAgent', target: 'searching', actions: 'storeAgents' },
          { actions: 'storeAgents' },
        ],
        'queue.position': { actions: ['storeQueuePosition', 'notifyQueued'] },
        'visitor.cancelled': { target: 'cancelled' },
        'visitor.gone': { target: 'cancelled' },
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
        'visitor.gone': { target: 'cancelled' },
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
      entry: [{ type: 'setEndReason', params: { reason: 'cancelled' } }, 'notifyCancelled'],
    },
    exhausted: {
      description: 'The request moved on maxReassignments times; the visitor is told clearly instead of being bounced further.',
      type: 'final',
      entry: [{ type: 'setEndReason', params: { reason: 'reassign-limit' } }, 'notifyExhausted'],
    },
  },
});

export type RoutingMachine = typeof routingMachine;
