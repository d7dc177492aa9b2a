/**
 * callSession: one actor per live call, on the server. It pauses the call while either leg (agent or
 * visitor) is lost, resumes it when both are back, and ends it when the legs do not come back within
 * `reconnectionTimeout`, or when both media connections failed (see DESIGN §2).
 *
 * Every event carries `at` (epoch ms, server clock); the machine has no clock of its own, and its
 * telemetry (disconnections, reconnection attempts, pause time) is computed from those `at`s.
 */
import { assign, setup } from 'xstate';
import type { CallLeg } from './protocol.ts';

/**
 * What the server knows of one leg. A socket drop makes `media` `unreported`: whatever the media did
 * while the socket was away, the server cannot know, and only a fresh report from the client over its
 * socket may bring the leg back up.
 */
export interface LegStatus {
  socket: 'up' | 'down';
  media: 'connected' | 'reconnecting' | 'failed' | 'unreported';
}

export interface CallSessionTimings {
  /** How long a paused call waits for its lost legs; covers the peers' maxAttempts × attemptTimeout. */
  reconnectionTimeout: number;
}

export const defaultCallSessionTimings: CallSessionTimings = {
  reconnectionTimeout: 30_000,
};

export interface CallSessionInput {
  callId: string;
  timings?: Partial<CallSessionTimings>;
  at?: number;
}

export type CallSessionEvent =
  | { type: 'leg.socketLost'; leg: CallLeg; at: number }
  | { type: 'leg.socketBack'; leg: CallLeg; at: number }
  | { type: 'leg.mediaReconnecting'; leg: CallLeg; at: number }
  | { type: 'leg.mediaConnected'; leg: CallLeg; at: number }
  | { type: 'leg.mediaFailed'; leg: CallLeg; at: number }
  | { type: 'leg.attempt'; leg: CallLeg; at: number; durationMs: number; outcome: 'recovered' | 'failed' }
  | { type: 'call.hangup'; by: CallLeg; at: number }
  | { type: 'timers.rearm'; at: number };

/** Why the call ended. `agent-lost` means the visitor is being reassigned to another agent. */
export type CallSessionEndReason = 'hangup' | 'media-failed' | 'reconnect-timeout' | 'agent-lost';

export interface CallDisconnection {
  leg: CallLeg;
  at: number;
  cause: 'socket' | 'media';
}

export interface CallReconnectionAttempt {
  leg: CallLeg;
  at: number;
  durationMs: number;
  outcome: 'recovered' | 'failed';
}

export interface CallSessionContext {
  callId: string;
  timings: CallSessionTimings;
  legs: Record<CallLeg, LegStatus>;
  /** Every time a leg went from up to lost. */
  disconnections: CallDisconnection[];
  reconnectionAttempts: CallReconnectionAttempt[];
  /** Time spent paused in completed pauses; a pause in progress is added when it ends. */
  totalPauseMs: number;
  /** When the pause in progress began; null while live. */
  pausedAt: number | null;
  endReason: CallSessionEndReason | null;
  /** Who hung up, when the call ended by a hang-up. */
  endedBy: CallLeg | null;
  endedAt: number | null;
  /** When the pause timer is due (epoch ms), so a restored actor can re-arm it with the time left. */
  deadlineAt: number | null;
  /** Duration the pause timer was (re)armed with. */
  timerMs: number;
  startedAt: number;
}

export function initialCallSessionContext({ input }: { input: CallSessionInput }): CallSessionContext {
  return {
    callId: input.callId,
    timings: { ...defaultCallSessionTimings, ...input.timings },
    legs: {
      agent: { socket: 'up', media: 'connected' },
      visitor: { socket: 'up', media: 'connected' },
    },
    disconnections: [],
    reconnectionAttempts: [],
    totalPauseMs: 0,
    pausedAt: null,
    endReason: null,
    endedBy: null,
    endedAt: null,
    deadlineAt: null,
    timerMs: 0,
    startedAt: input.at ?? 0,
  };
}

/** The time of the event being handled; the pause timer's event carries none and fires at its deadline. */
function nowOf(context: CallSessionContext, event: { type: string }): number {
  const at = (event as { at?: unknown }).at;
  if (typeof at === 'number') return at;
  return context.deadlineAt ?? context.startedAt;
}

function eventLeg(event: { type: string }): CallLeg | null {
  const leg = (event as { leg?: unknown }).leg;
  return leg === 'agent' || leg === 'visitor' ? leg : null;
}

/** The leg's status once the event is applied; unchanged for events that say nothing about it. */
function applyToLeg(status: LegStatus, event: { type: string }): LegStatus {
  switch (event.type) {
    case 'leg.socketLost':
      return { socket: 'down', media: 'unreported' };
    case 'leg.socketBack':
      return { ...status, socket: 'up' };
    case 'leg.mediaReconnecting':
      return { ...status, media: 'reconnecting' };
    case 'leg.mediaConnected':
      return { ...status, media: 'connected' };
    case 'leg.mediaFailed':
      return { ...status, media: 'failed' };
    default:
      return status;
  }
}

function isUp(status: LegStatus): boolean {
  return status.socket === 'up' && status.media === 'connected';
}

export const callSessionMachine = setup({
  types: {
    context: {} as CallSessionContext,
    events: {} as CallSessionEvent,
    input: {} as CallSessionInput,
  },
  actions: {
    applyLegEvent: assign(({ context, event }) => {
      const leg = eventLeg(event);
      if (!leg) return {};
      return { legs: { ...context.legs, [leg]: applyToLeg(context.legs[leg], event) } };
    }),
    recordDisconnection: assign(({ context, event }, params: { cause: CallDisconnection['cause'] }) => {
      const leg = eventLeg(event);
      if (!leg) return {};
      return { disconnections: [...context.disconnections, { leg, at: nowOf(context, event), cause: params.cause }] };
    }),
    recordAttempt: assign(({ context, event }) => {
      if (event.type !== 'leg.attempt') return {};
      const { leg, at, durationMs, outcome } = event;
      return { reconnectionAttempts: [...context.reconnectionAttempts, { leg, at, durationMs, outcome }] };
    }),
    startPause: assign(({ context, event }) => {
      const at = nowOf(context, event);
      const duration = context.timings.reconnectionTimeout;
      return { pausedAt: at, deadlineAt: at + duration, timerMs: duration };
    }),
    closePause: assign(({ context, event }) => {
      if (context.pausedAt === null) return {};
      // Events from different sockets may arrive slightly out of order; a negative pause is meaningless.
      const pauseMs = Math.max(0, nowOf(context, event) - context.pausedAt);
      return { totalPauseMs: context.totalPauseMs + pauseMs, pausedAt: null };
    }),
    rearmTimer: assign(({ context, event }) => {
      const at = nowOf(context, event);
      // A deadline that passed while the server was down fires at once; it then counts as having fired now.
      const deadlineAt = Math.max(context.deadlineAt ?? at, at);
      return { deadlineAt, timerMs: deadlineAt - at };
    }),
    endWith: assign(({ context, event }, params: { reason: CallSessionEndReason }) => ({
      endReason: params.reason,
      endedBy: event.type === 'call.hangup' ? event.by : null,
      endedAt: nowOf(context, event),
    })),
    // Effects the server performs; it reads the call and the legs from the actor's context.
    /** Tell both people which legs are lost, so each screen can say who is gone (`context.legs`). */
    notifyPaused: () => {},
    notifyResumed: () => {},
    requestReassignment: () => {},
  },
  guards: {
    isLeg: ({ event }, params: { leg: CallLeg }) => eventLeg(event) === params.leg,
    legRecovers: ({ context, event }, params: { leg: CallLeg }) =>
      eventLeg(event) === params.leg && isUp(applyToLeg(context.legs[params.leg], event)),
    anyLegLost: ({ context }) => !isUp(context.legs.agent) || !isUp(context.legs.visitor),
    // Judged on the legs as the event leaves them, since the leg regions apply it in the same step.
    pauseGoesOn: ({ context, event }) => {
      const leg = eventLeg(event);
      const legs = leg ? { ...context.legs, [leg]: applyToLeg(context.legs[leg], event) } : context.legs;
      return !isUp(legs.agent) || !isUp(legs.visitor);
    },
    allLegsUp: ({ context }) => isUp(context.legs.agent) && isUp(context.legs.visitor),
    // One side's connection gave up while both people are still here: the other side cannot recover alone,
    // so waiting out the timer would only leave that person looking at a frozen call.
    mediaFailedWithBothPresent: ({ context }) =>
      (context.legs.agent.media === 'failed' || context.legs.visitor.media === 'failed') &&
      context.legs.agent.socket === 'up' &&
      context.legs.visitor.socket === 'up',
    // Only the agent gone, with the visitor still here, is a reason to find the visitor another agent; a
    // visitor who is away gets nobody rung for them.
    onlyAgentAway: ({ context }) => context.legs.agent.socket === 'down' && context.legs.visitor.socket === 'up',
  },
  delays: {
    reconnectionTimeout: ({ context }) => context.timerMs,
  },
}).createMachine({
  id: 'callSession',
  description: 'One live call between an agent and a visitor: pause while a leg is lost, resume, or end.',
  context: initialCallSessionContext,
  initial: 'active',
  states: {
    active: {
      description: 'The call is on: both legs are tracked, and the session is live or paused.',
      type: 'parallel',
      on: {
        'leg.attempt': { actions: 'recordAttempt' },
        'call.hangup': { target: 'ended', actions: ['closePause', { type: 'endWith', params: { reason: 'hangup' } }] },
      },
      states: {
        agent: {
          description: "The agent's leg: its socket and its media connection.",
          initial: 'up',
          states: {
            up: {
              description: "The agent's socket is up and its media is connected.",
              on: {
                'leg.socketLost': {
                  guard: { type: 'isLeg', params: { leg: 'agent' } },
                  target: 'lost',
                  actions: ['applyLegEvent', { type: 'recordDisconnection', params: { cause: 'socket' } }],
                },
                'leg.mediaReconnecting': {
                  guard: { type: 'isLeg', params: { leg: 'agent' } },
                  target: 'lost',
                  actions: ['applyLegEvent', { type: 'recordDisconnection', params: { cause: 'media' } }],
                },
                'leg.mediaFailed': {
                  guard: { type: 'isLeg', params: { leg: 'agent' } },
                  target: 'lost',
                  actions: ['applyLegEvent', { type: 'recordDisconnection', params: { cause: 'media' } }],
                },
              },
            },
            lost: {
              description: "The agent's socket is down or its media is not connected; up again only when both are back.",
              on: {
                'leg.socketBack': [
                  { guard: { type: 'legRecovers', params: { leg: 'agent' } }, target: 'up', actions: 'applyLegEvent' },
                  { guard: { type: 'isLeg', params: { leg: 'agent' } }, actions: 'applyLegEvent' },
                ],
                'leg.mediaConnected': [
                  { guard: { type: 'legRecovers', params: { leg: 'agent' } }, target: 'up', actions: 'applyLegEvent' },
                  { guard: { type: 'isLeg', params: { leg: 'agent' } }, actions: 'applyLegEvent' },
                ],
                'leg.socketLost': { guard: { type: 'isLeg', params: { leg: 'agent' } }, actions: 'applyLegEvent' },
                'leg.mediaReconnecting': { guard: { type: 'isLeg', params: { leg: 'agent' } }, actions: 'applyLegEvent' },
                'leg.mediaFailed': { guard: { type: 'isLeg', params: { leg: 'agent' } }, actions: 'applyLegEvent' },
              },
            },
          },
        },
        visitor: {
          description: "The visitor's leg: its socket and its media connection.",
          initial: 'up',
          states: {
            up: {
              description: "The visitor's socket is up and its media is connected.",
              on: {
                'leg.socketLost': {
                  guard: { type: 'isLeg', params: { leg: 'visitor' } },
                  target: 'lost',
                  actions: ['applyLegEvent', { type: 'recordDisconnection', params: { cause: 'socket' } }],
                },
                'leg.mediaReconnecting': {
                  guard: { type: 'isLeg', params: { leg: 'visitor' } },
                  target: 'lost',
                  actions: ['applyLegEvent', { type: 'recordDisconnection', params: { cause: 'media' } }],
                },
                'leg.mediaFailed': {
                  guard: { type: 'isLeg', params: { leg: 'visitor' } },
                  target: 'lost',
                  actions: ['applyLegEvent', { type: 'recordDisconnection', params: { cause: 'media' } }],
                },
              },
            },
            lost: {
              description: "The visitor's socket is down or its media is not connected; up again only when both are back.",
              on: {
                'leg.socketBack': [
                  { guard: { type: 'legRecovers', params: { leg: 'visitor' } }, target: 'up', actions: 'applyLegEvent' },
                  { guard: { type: 'isLeg', params: { leg: 'visitor' } }, actions: 'applyLegEvent' },
                ],
                'leg.mediaConnected': [
                  { guard: { type: 'legRecovers', params: { leg: 'visitor' } }, target: 'up', actions: 'applyLegEvent' },
                  { guard: { type: 'isLeg', params: { leg: 'visitor' } }, actions: 'applyLegEvent' },
                ],
                'leg.socketLost': { guard: { type: 'isLeg', params: { leg: 'visitor' } }, actions: 'applyLegEvent' },
                'leg.mediaReconnecting': { guard: { type: 'isLeg', params: { leg: 'visitor' } }, actions: 'applyLegEvent' },
                'leg.mediaFailed': { guard: { type: 'isLeg', params: { leg: 'visitor' } }, actions: 'applyLegEvent' },
              },
            },
          },
        },
        session: {
          description: 'Whether the call is flowing or paused, with the one pause timer.',
          initial: 'live',
          states: {
            live: {
              description: 'Both legs are up.',
              always: { guard: 'anyLegLost', target: 'paused', actions: ['startPause', 'notifyPaused'] },
            },
            paused: {
              description:
                'At least one leg is lost; both peers are told which, whenever that changes. One timer, measured from the start of the pause, bounds the wait.',
              // What the store and a resuming client are told: asked of the snapshot by tag, not by its shape.
              tags: ['paused'],
              always: [
                {
                  guard: 'mediaFailedWithBothPresent',
                  target: '#callSession.ended',
                  actions: ['closePause', { type: 'endWith', params: { reason: 'media-failed' } }],
                },
                { guard: 'allLegsUp', target: 'live', actions: ['closePause', 'notifyResumed'] },
              ],
              after: {
                reconnectionTimeout: [
                  {
                    guard: 'onlyAgentAway',
                    target: '#callSession.ended',
                    actions: ['closePause', { type: 'endWith', params: { reason: 'agent-lost' } }, 'requestReassignment'],
                  },
                  {
                    target: '#callSession.ended',
                    actions: ['closePause', { type: 'endWith', params: { reason: 'reconnect-timeout' } }],
                  },
                ],
              },
              on: {
                'timers.rearm': { target: 'paused', reenter: true, actions: 'rearmTimer' },
                // Both screens follow the pause as it changes, not only as it starts: the second leg lost,
                // or the first back while the other is still away. A change that ends it is told by the resume.
                'leg.socketLost': { guard: 'pauseGoesOn', actions: 'notifyPaused' },
                'leg.socketBack': { guard: 'pauseGoesOn', actions: 'notifyPaused' },
                'leg.mediaReconnecting': { guard: 'pauseGoesOn', actions: 'notifyPaused' },
                'leg.mediaConnected': { guard: 'pauseGoesOn', actions: 'notifyPaused' },
                'leg.mediaFailed': { guard: 'pauseGoesOn', actions: 'notifyPaused' },
              },
            },
          },
        },
      },
    },
    ended: {
      description: 'The call is over; endReason says why. The host tells both people and the routing actor when the actor is done.',
      type: 'final',
    },
  },
});

export type CallSessionMachine = typeof callSessionMachine;
