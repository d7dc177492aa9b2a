/**
 * callSession: one actor per live call, on the server, invoked by the call request's routing actor for the
 * connected phase. It pauses the call while either leg (agent or visitor) is lost, resumes it when both
 * are back, and ends it when the legs do not come back within `reconnectionTimeout`, or when a media
 * connection failed with both people present (see DESIGN §2). Its output says why it ended; what follows
 * (the request ends, or the visitor is reassigned) is routing's to decide.
 *
 * Every event carries `at` (epoch ms, server clock); the machine has no clock of its own, and its
 * telemetry (disconnections, reconnection attempts, pause time) is computed from those `at`s.
 */
import { assign, setup } from 'xstate';
import type { CallLeg } from './protocol.ts';
import { armedTimer, eventTime, rearmedTimer, type TimerContext } from './serverClock.ts';

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

/** What the routing actor hands its new child: the call's id, its timings, and when it connected. */
export interface CallStart {
  type: 'call.start';
  callId: string;
  timings?: Partial<CallSessionTimings>;
  at: number;
}

export type CallSessionEvent =
  | CallStart
  | { type: 'leg.socketLost'; leg: CallLeg; at: number }
  | { type: 'leg.socketBack'; leg: CallLeg; at: number }
  | { type: 'leg.mediaReconnecting'; leg: CallLeg; at: number }
  | { type: 'leg.mediaConnected'; leg: CallLeg; at: number }
  | { type: 'leg.mediaFailed'; leg: CallLeg; at: number }
  | { type: 'leg.attempt'; leg: CallLeg; at: number; durationMs: number; outcome: 'recovered' | 'failed' }
  | { type: 'call.hangup'; by: CallLeg; at: number }
  | { type: 'timers.rearm'; at: number };

/** Why the call ended. */
export type CallSessionEndReason = 'hangup' | 'media-failed' | 'reconnect-timeout';

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

export interface CallSessionContext extends TimerContext {
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
}

/** What the actor is done with: why, who hung up, how each leg was left, and the call's telemetry. */
export interface CallSessionOutput {
  reason: CallSessionEndReason;
  endedBy: CallLeg | null;
  endedAt: number;
  legs: Record<CallLeg, LegStatus>;
  telemetry: Pick<CallSessionContext, 'disconnections' | 'reconnectionAttempts' | 'totalPauseMs'>;
}

/** The context before `call.start`: the call is not known yet. */
export function initialCallSessionContext(): CallSessionContext {
  return {
    callId: '',
    timings: { ...defaultCallSessionTimings },
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
    startedAt: 0,
  };
}

export function callSessionOutput({ context }: { context: CallSessionContext }): CallSessionOutput {
  const { disconnections, reconnectionAttempts, totalPauseMs } = context;
  return {
    reason: context.endReason ?? 'hangup',
    endedBy: context.endedBy,
    endedAt: context.endedAt ?? context.startedAt,
    legs: context.legs,
    telemetry: { disconnections, reconnectionAttempts, totalPauseMs },
  };
}

/** The time of the event being handled; the pause timer's event carries none and fires at its deadline. */
const nowOf = eventTime;

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
    output: {} as CallSessionOutput,
  },
  actions: {
    identifyCall: assign(({ context, event }) =>
      event.type === 'call.start'
        ? { callId: event.callId, timings: { ...context.timings, ...event.timings }, startedAt: event.at }
        : {},
    ),
    applyLegEvent: assign(({ context, event }) => {
      const leg = eventLeg(event);
      if (!leg) return {};
      return { legs: { ...context.legs, [leg]: applyToLeg(context.legs[leg], event) } };
    }),
    // A leg counts as disconnected each time it goes from up to lost: by its socket, or by its media.
    recordDisconnection: assign(({ context, event }) => {
      const leg = eventLeg(event);
      if (!leg || !isUp(context.legs[leg]) || isUp(applyToLeg(context.legs[leg], event))) return {};
      const cause = event.type === 'leg.socketLost' ? 'socket' : 'media';
      return { disconnections: [...context.disconnections, { leg, at: nowOf(context, event), cause }] };
    }),
    recordAttempt: assign(({ context, event }) => {
      if (event.type !== 'leg.attempt') return {};
      const { leg, at, durationMs, outcome } = event;
      return { reconnectionAttempts: [...context.reconnectionAttempts, { leg, at, durationMs, outcome }] };
    }),
    startPause: assign(({ context, event }) => {
      const at = nowOf(context, event);
      return { pausedAt: at, ...armedTimer(at, context.timings.reconnectionTimeout) };
    }),
    closePause: assign(({ context, event }) => {
      if (context.pausedAt === null) return {};
      // Events from different sockets may arrive slightly out of order; a negative pause is meaningless.
      const pauseMs = Math.max(0, nowOf(context, event) - context.pausedAt);
      return { totalPauseMs: context.totalPauseMs + pauseMs, pausedAt: null };
    }),
    rearmTimer: assign(({ context, event }) => rearmedTimer(context, event)),
    endWith: assign(({ context, event }, params: { reason: CallSessionEndReason }) => ({
      endReason: params.reason,
      endedBy: event.type === 'call.hangup' ? event.by : null,
      endedAt: nowOf(context, event),
    })),
    // Effects the server performs; it reads the call and the legs from the actor's context.
    /** Tell both people which legs are lost, so each screen can say who is gone (`context.legs`). */
    notifyPaused: () => {},
    notifyResumed: () => {},
  },
  guards: {
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
  },
  delays: {
    reconnectionTimeout: ({ context }) => context.timerMs,
  },
}).createMachine({
  id: 'callSession',
  description: 'One live call between an agent and a visitor: pause while a leg is lost, resume, or end.',
  context: initialCallSessionContext,
  output: callSessionOutput,
  initial: 'starting',
  states: {
    starting: {
      description: 'Invoked by the routing actor, which hands over the call: its id, its timings and when it connected.',
      on: { 'call.start': { target: 'active', actions: 'identifyCall' } },
    },
    active: {
      description:
        "The call is on. Each leg's socket and media, as the server last heard them, are in `context.legs`; the call is live while both legs are up.",
      initial: 'live',
      on: {
        'leg.socketLost': { actions: ['recordDisconnection', 'applyLegEvent'] },
        'leg.socketBack': { actions: 'applyLegEvent' },
        'leg.mediaReconnecting': { actions: ['recordDisconnection', 'applyLegEvent'] },
        'leg.mediaConnected': { actions: 'applyLegEvent' },
        'leg.mediaFailed': { actions: ['recordDisconnection', 'applyLegEvent'] },
        'leg.attempt': { actions: 'recordAttempt' },
        'call.hangup': { target: 'ended', actions: ['closePause', { type: 'endWith', params: { reason: 'hangup' } }] },
      },
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
            // How the legs were left goes out with the output: a timeout with only the agent gone is
            // routing's cue to find the visitor another agent.
            reconnectionTimeout: {
              target: '#callSession.ended',
              actions: ['closePause', { type: 'endWith', params: { reason: 'reconnect-timeout' } }],
            },
          },
          on: {
            'timers.rearm': { target: 'paused', reenter: true, actions: 'rearmTimer' },
            // Both screens follow the pause as it changes, not only as it starts: the second leg lost,
            // or the first back while the other is still away. A change that ends it is told by the resume.
            'leg.socketLost': { guard: 'pauseGoesOn', actions: ['recordDisconnection', 'applyLegEvent', 'notifyPaused'] },
            'leg.socketBack': { guard: 'pauseGoesOn', actions: ['applyLegEvent', 'notifyPaused'] },
            'leg.mediaReconnecting': { guard: 'pauseGoesOn', actions: ['recordDisconnection', 'applyLegEvent', 'notifyPaused'] },
            'leg.mediaConnected': { guard: 'pauseGoesOn', actions: ['applyLegEvent', 'notifyPaused'] },
            'leg.mediaFailed': { guard: 'pauseGoesOn', actions: ['recordDisconnection', 'applyLegEvent', 'notifyPaused'] },
          },
        },
      },
    },
    ended: {
      description: 'The call is over; the output says why, and the routing actor decides what follows.',
      type: 'final',
    },
  },
});

export type CallSessionMachine = typeof callSessionMachine;
