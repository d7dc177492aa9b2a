import { assign, setup } from 'xstate';
import { callLegActions, callLegActors, callLegGuards, connectingState, inCallState, type CallLegChildren, type CallLegEvent, type CallLegMediaEvent } from './callLeg.ts';

export type AgentPresence = 'offline' | 'available' | 'away';

/** Reasons the server gives when it ends the agent's call. */
export type AgentServerEndReason = 'visitor-hangup' | 'cancelled' | 'reconnect-timeout' | 'media-failed' | 'reassigned' | 'error';

/** Why the agent's last call ended, as kept in `lastCallEnd`. */
export type AgentCallEndReason = AgentServerEndReason | 'hangup' | 'logout' | 'connect-failed';

export interface AgentCallEnd {
  requestId: string | null;
  callId: string | null;
  visitorName: string | null;
  reason: AgentCallEndReason;
}

export interface AgentTimings {
  /** How long a ring waits for accept or reject before it counts as ring-no-answer. */
  ringTimeout: number;
  /** How long the first media connection may take after the agent accepted. */
  connectTimeout: number;
}

// ringTimeout matches the routing actor's, so the dashboard stops ringing when the server moves on.
// connectTimeout is longer than Chromium's fixed 15 s to `failed`, so the browser normally decides.
export const defaultAgentTimings: AgentTimings = {
  ringTimeout: 15_000,
  connectTimeout: 20_000,
};

export interface AgentInput {
  timings?: Partial<AgentTimings>;
}

export interface AgentContext {
  timings: AgentTimings;
  requestId: string | null;
  visitorName: string | null;
  /** Epoch ms at which the current ring counts as unanswered; drives the dashboard countdown. */
  ringExpiresAt: number | null;
  /** How long the current ring may still go unanswered from when it arrived: the server's deadline wins. */
  ringMs: number;
  callId: string | null;
  lastCallEnd: AgentCallEnd | null;
  /** Last known state of the signaling socket, handed to the media child when it starts. */
  signalingUp: boolean;
}

/** Adapter events about the agent's RTCPeerConnection and socket; forwarded to the media child. */
export type AgentMediaEvent = CallLegMediaEvent;

export type AgentEvent =
  // the agent
  | { type: 'login' }
  | { type: 'logout' }
  | { type: 'presence.away' }
  | { type: 'presence.available' }
  | { type: 'accept' }
  | { type: 'reject' }
  | { type: 'hangup' }
  | { type: 'dismiss' }
  // the server
  /** `expiresAt` is the server's ring-no-answer deadline; without it the agent's own `ringTimeout` applies. */
  | { type: 'ring'; requestId: string; visitorName: string; at: number; expiresAt?: number }
  | { type: 'ring.cancelled' }
  | { type: 'call.accepted'; callId: string }
  | { type: 'call.ended'; reason: AgentServerEndReason }
  /** The server refused the accept of `requestId`: the ring had moved on (another agent, a cancel) before it arrived. */
  | { type: 'accept.refused'; requestId: string }
  /** The server took this session up again after a lost socket, and says which call, if any, it holds for the agent. */
  | { type: 'server.resumed'; call: { callId: string } | null }
  /** The server kept nothing of this session: a ring or call it had is over on its side. */
  | { type: 'session.lost' }
  // the adapter and the media child
  | CallLegEvent;

export const agentMachine = setup({
  types: {
    context: {} as AgentContext,
    children: {} as CallLegChildren,
    events: {} as AgentEvent,
    input: {} as AgentInput,
  },
  actors: callLegActors,
  delays: {
    ringTimeout: ({ context }) => context.ringMs,
    connectTimeout: ({ context }) => context.timings.connectTimeout,
  },
  guards: {
    ...callLegGuards,
    serverEndedWith: ({ event }, params: { reason: AgentServerEndReason }) => event.type === 'call.ended' && event.reason === params.reason,
    // Only an accept still waiting for its call: once `call.accepted` came, the refusal is of an older one.
    refusedThisAccept: ({ context, event }) =>
      event.type === 'accept.refused' && context.callId === null && context.requestId === event.requestId,
    strayCall: ({ context, event }) => event.type === 'call.accepted' && event.callId !== context.callId,
  },
  actions: {
    ...callLegActions<AgentContext, AgentEvent>(),
    // Effects for the adapter; no-ops here so the machine stays pure.
    /** Publish the agent's presence to the server. */
    setPresence: (_, _params: { presence: Exclude<AgentPresence, 'offline'> }) => {},
    /** Accept `context.requestId`. */
    acceptRing: () => {},
    /** Reject `context.requestId`; the server rings the next agent. */
    rejectRing: () => {},
    /** Tell the server the agent logged out; it reassigns any visitor of theirs. */
    notifyLogout: () => {},
    /** Hang up the call `call.accepted` names: without it, that call would wait for this leg forever. */
    hangUpStrayCall: () => {},

    rememberRing: assign(({ context, event }) =>
      event.type === 'ring'
        ? {
            requestId: event.requestId,
            visitorName: event.visitorName,
            ringExpiresAt: event.expiresAt ?? event.at + context.timings.ringTimeout,
            ringMs: Math.max(0, (event.expiresAt ?? event.at + context.timings.ringTimeout) - event.at),
            callId: null,
          }
        : {},
    ),
    clearRingDeadline: assign({ ringExpiresAt: null }),
    rememberCallId: assign({
      callId: ({ context, event }) => (event.type === 'call.accepted' ? event.callId : context.callId),
    }),
    clearCall: assign({ requestId: null, visitorName: null, ringExpiresAt: null, callId: null }),
    recordCallEnd: assign(({ context }, params: { reason: AgentCallEndReason }) => ({
      lastCallEnd: {
        requestId: context.requestId,
        callId: context.callId,
        visitorName: context.visitorName,
        reason: params.reason,
      },
    })),
    recordServerEnd: assign(({ context, event }) =>
      event.type === 'call.ended'
        ? {
            lastCallEnd: {
              requestId: context.requestId,
              callId: context.callId,
              visitorName: context.visitorName,
              reason: event.reason,
            },
          }
        : {},
    ),
  },
}).createMachine({
  id: 'agent',
  description: "The agent's presence and calls: offline, available or away, then ringing, connecting and in call.",
  context: ({ input }) => ({
    timings: { ...defaultAgentTimings, ...input.timings },
    requestId: null,
    visitorName: null,
    ringExpiresAt: null,
    ringMs: 0,
    callId: null,
    lastCallEnd: null,
    signalingUp: true,
  }),
  initial: 'offline',
  on: {
    // Works from any state (DESIGN §2); the call states override it to end their call first.
    logout: {
      target: '.offline',
      actions: 'notifyLogout',
    },
    'signal.up': { actions: 'markSignalingUp' },
    'signal.down': { actions: 'markSignalingDown' },
    // Accepted on the server for a ring this side has already left (hung up or logged out before the
    // server's answer arrived); `connecting` takes the one it waits for.
    'call.accepted': { guard: 'strayCall', actions: 'hangUpStrayCall' },
  },
  states: {
    offline: {
      description: 'Logged out; the server routes nothing here.',
      entry: 'clearCall',
      on: {
        login: {
          target: 'available',
          actions: { type: 'setPresence', params: { presence: 'available' } },
        },
      },
    },
    available: {
      description: 'Waiting for calls; the only state in which a ring is taken.',
      entry: 'clearCall',
      on: {
        'presence.away': {
          target: 'away',
          actions: { type: 'setPresence', params: { presence: 'away' } },
        },
        ring: { target: 'ringing', actions: 'rememberRing' },
      },
    },
    away: {
      description: 'Logged in but taking no calls.',
      entry: 'clearCall',
      on: {
        'presence.available': {
          target: 'available',
          actions: { type: 'setPresence', params: { presence: 'available' } },
        },
      },
    },
    ringing: {
      description: 'A visitor is waiting; accept, reject, or let it run out (ring-no-answer).',
      exit: 'clearRingDeadline',
      // Nothing is sent: the protocol has no ring-no-answer message, and the routing actor's own
      // ringTimeout, the same length, moves the request on.
      after: {
        ringTimeout: { target: 'available' },
      },
      on: {
        accept: { target: 'connecting', actions: 'acceptRing' },
        reject: { target: 'available', actions: 'rejectRing' },
        'ring.cancelled': { target: 'available' },
        'session.lost': { target: 'available' },
        // Going away is one of the routing actor's reassignment triggers, so the ring is not rejected explicitly.
        'presence.away': {
          target: 'away',
          actions: { type: 'setPresence', params: { presence: 'away' } },
        },
      },
    },
    connecting: connectingState({
      description: 'The agent accepted; the first media connection is being set up.',
      failed: { target: '#agent.callFailed', record: { type: 'recordCallEnd', params: { reason: 'connect-failed' } } },
      hungUp: { target: '#agent.available', record: { type: 'recordCallEnd', params: { reason: 'hangup' } } },
      serverEnded: { target: '#agent.available', record: 'recordServerEnd' },
      // An agent who stays away past the grace loses the visitor to another agent.
      lost: { target: '#agent.available', record: { type: 'recordCallEnd', params: { reason: 'reassigned' } } },
      resumed: [],
      on: {
        'call.accepted': { actions: 'rememberCallId' },
        // No `call.accepted` will ever come for a refused accept.
        'accept.refused': {
          guard: 'refusedThisAccept',
          target: 'available',
          actions: [{ type: 'recordCallEnd', params: { reason: 'cancelled' } }, 'stopMedia'],
        },
        logout: {
          target: 'offline',
          actions: [
            { type: 'recordCallEnd', params: { reason: 'logout' } },
            'stopMedia',
            'sendHangup',
            'notifyLogout',
          ],
        },
      },
    }),
    inCall: inCallState({
      description: 'Talking to the visitor: the media connection and the visitor\'s presence run side by side.',
      role: 'offerer',
      peer: 'visitor',
      hungUp: { target: '#agent.available', record: { type: 'recordCallEnd', params: { reason: 'hangup' } } },
      mediaFailed: { target: '#agent.callFailed', record: { type: 'recordCallEnd', params: { reason: 'media-failed' } } },
      lost: { target: '#agent.available', record: { type: 'recordCallEnd', params: { reason: 'reassigned' } } },
      resumed: [],
      on: {
        // The server ended the call because neither side could recover the media: the agent sees the
        // failure, as the visitor does, instead of a silent return to waiting for calls.
        'call.ended': [
          { guard: { type: 'serverEndedWith', params: { reason: 'media-failed' } }, target: 'callFailed', actions: 'recordServerEnd' },
          { target: 'available', actions: 'recordServerEnd' },
        ],
        logout: {
          target: 'offline',
          actions: [
            { type: 'recordCallEnd', params: { reason: 'logout' } },
            'sendHangup',
            'notifyLogout',
          ],
        },
      },
    }),
    callFailed: {
      description: 'The media could not be connected or reconnected; the dashboard shows it until dismissed.',
      on: {
        dismiss: { target: 'available' },
      },
    },
  },
});

export type AgentMachine = typeof agentMachine;
