import { assign, forwardTo, sendTo, setup } from 'xstate';
import { peerConnectionMachine, type PeerConnectionEvent, type PeerConnectionOutput } from './peerConnection.machine.ts';

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
export type AgentMediaEvent = Exclude<PeerConnectionEvent, { type: 'hangup' }>;

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
  // the adapter
  | AgentMediaEvent
  // the media child finishing; listed so adapters and tests can type it
  | { type: 'xstate.done.actor.media'; output: PeerConnectionOutput };

export const agentMachine = setup({
  types: {
    context: {} as AgentContext,
    children: {} as { media: 'peerConnection' },
    events: {} as AgentEvent,
    input: {} as AgentInput,
  },
  actors: {
    peerConnection: peerConnectionMachine,
  },
  delays: {
    ringTimeout: ({ context }) => context.ringMs,
    connectTimeout: ({ context }) => context.timings.connectTimeout,
  },
  guards: {
    serverEndedWith: ({ event }, params: { reason: AgentServerEndReason }) => event.type === 'call.ended' && event.reason === params.reason,
    mediaFailed: ({ event }) => event.type === 'xstate.done.actor.media' && event.output?.outcome === 'failed',
    // Only an accept still waiting for its call: once `call.accepted` came, the refusal is of an older one.
    refusedThisAccept: ({ context, event }) =>
      event.type === 'accept.refused' && context.callId === null && context.requestId === event.requestId,
    resumedThisCall: ({ context, event }) => event.type === 'server.resumed' && event.call !== null && event.call.callId === context.callId,
    resumedWithoutCall: ({ event }) => event.type === 'server.resumed' && event.call === null,
    strayCall: ({ context, event }) => event.type === 'call.accepted' && event.callId !== context.callId,
  },
  actions: {
    // Effects for the adapter; no-ops here so the machine stays pure.
    /** Publish the agent's presence to the server. */
    setPresence: (_, _params: { presence: Exclude<AgentPresence, 'offline'> }) => {},
    /** Accept `context.requestId`. */
    acceptRing: () => {},
    /** Reject `context.requestId`; the server rings the next agent. */
    rejectRing: () => {},
    /** Leave the call; the server tells the visitor. */
    sendHangup: () => {},
    /** Tell the server the agent logged out; it reassigns any visitor of theirs. */
    notifyLogout: () => {},
    /** Tell the server this side gave up on the media (`context.lastCallEnd` says why). */
    reportCallFailure: () => {},
    /** Create the RTCPeerConnection and send the offer (the agent is the offerer). */
    startMedia: () => {},
    /** Close the RTCPeerConnection and release the camera. */
    stopMedia: () => {},
    /** Report the media state of `context.callId` again: the server missed the reports while the socket was away. */
    reportMediaState: () => {},
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
    markSignalingUp: assign({ signalingUp: true }),
    markSignalingDown: assign({ signalingUp: false }),
    forwardToMedia: forwardTo('media'),
    // The child's input is static, so it starts believing signaling is up; tell it the truth, or its
    // first restart attempt could be spent on an offer that cannot be delivered.
    syncSignalingToMedia: sendTo('media', ({ context }): AgentMediaEvent =>
      context.signalingUp ? { type: 'signal.up' } : { type: 'signal.down' },
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
    // The media child lives only in `inCall`, and `connecting` watches the first connection itself, as
    // on the visitor's side: the child's restart logic only ever runs on a connection that has worked
    // once. The `ice.connected` that ends `connecting` is handed to the new child.
    connecting: {
      description: 'The agent accepted; the first media connection is being set up.',
      entry: 'startMedia',
      after: {
        connectTimeout: {
          target: 'callFailed',
          actions: [{ type: 'recordCallEnd', params: { reason: 'connect-failed' } }, 'stopMedia', 'reportCallFailure'],
        },
      },
      on: {
        'call.accepted': { actions: 'rememberCallId' },
        'ice.connected': { target: 'inCall' },
        'ice.failed': {
          target: 'callFailed',
          actions: [{ type: 'recordCallEnd', params: { reason: 'connect-failed' } }, 'stopMedia', 'reportCallFailure'],
        },
        hangup: {
          target: 'available',
          actions: [{ type: 'recordCallEnd', params: { reason: 'hangup' } }, 'stopMedia', 'sendHangup'],
        },
        'call.ended': { target: 'available', actions: ['recordServerEnd', 'stopMedia'] },
        // No `call.accepted` will ever come for a refused accept.
        'accept.refused': {
          guard: 'refusedThisAccept',
          target: 'available',
          actions: [{ type: 'recordCallEnd', params: { reason: 'cancelled' } }, 'stopMedia'],
        },
        // The server still has this call: only the reports it missed are owed. Without one, the call
        // ended while this socket was away and its `call.ended` never arrived; an agent who stays away
        // past the grace loses the visitor to another agent.
        'server.resumed': [
          { guard: 'resumedThisCall', actions: 'reportMediaState' },
          {
            guard: 'resumedWithoutCall',
            target: 'available',
            actions: [{ type: 'recordCallEnd', params: { reason: 'reassigned' } }, 'stopMedia'],
          },
        ],
        'session.lost': {
          target: 'available',
          actions: [{ type: 'recordCallEnd', params: { reason: 'reassigned' } }, 'stopMedia'],
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
    },
    inCall: {
      description: 'Talking to the visitor: the media connection and the visitor\'s presence run side by side.',
      type: 'parallel',
      exit: 'stopMedia',
      on: {
        hangup: {
          target: 'available',
          actions: [{ type: 'recordCallEnd', params: { reason: 'hangup' } }, 'sendHangup'],
        },
        // The server ended the call because neither side could recover the media: the agent sees the
        // failure, as the visitor does, instead of a silent return to waiting for calls.
        'call.ended': [
          { guard: { type: 'serverEndedWith', params: { reason: 'media-failed' } }, target: 'callFailed', actions: 'recordServerEnd' },
          { target: 'available', actions: 'recordServerEnd' },
        ],
        // As in `connecting`; leaving `inCall` stops the media.
        'server.resumed': [
          { guard: 'resumedThisCall', actions: 'reportMediaState' },
          { guard: 'resumedWithoutCall', target: 'available', actions: { type: 'recordCallEnd', params: { reason: 'reassigned' } } },
        ],
        'session.lost': { target: 'available', actions: { type: 'recordCallEnd', params: { reason: 'reassigned' } } },
        logout: {
          target: 'offline',
          actions: [
            { type: 'recordCallEnd', params: { reason: 'logout' } },
            'sendHangup',
            'notifyLogout',
          ],
        },
        'ice.connected': { actions: 'forwardToMedia' },
        'ice.disconnected': { actions: 'forwardToMedia' },
        'ice.failed': { actions: 'forwardToMedia' },
        'network.online': { actions: 'forwardToMedia' },
        'network.offline': { actions: 'forwardToMedia' },
        'restart.requested': { actions: 'forwardToMedia' },
        'media.flowing': { actions: 'forwardToMedia' },
        'media.stalled': { actions: 'forwardToMedia' },
        'signal.up': { actions: ['markSignalingUp', 'forwardToMedia'] },
        'signal.down': { actions: ['markSignalingDown', 'forwardToMedia'] },
      },
      states: {
        media: {
          description:
            'The peerConnection child (the offerer) restarts ICE on failure; its snapshot drives the overlay and the indicator.',
          entry: ['forwardToMedia', 'syncSignalingToMedia'],
          invoke: {
            id: 'media',
            src: 'peerConnection',
            input: { role: 'offerer' },
            onDone: [
              {
                guard: 'mediaFailed',
                target: '#agent.callFailed',
                actions: [{ type: 'recordCallEnd', params: { reason: 'media-failed' } }, 'reportCallFailure'],
              },
              // Closed without our hang-up (e.g. the page tore the connection down): leave like one.
              {
                target: '#agent.available',
                actions: [{ type: 'recordCallEnd', params: { reason: 'hangup' } }, 'sendHangup'],
              },
            ],
          },
        },
        peer: {
          description: "Whether the visitor's socket is still with the server, as the server reports it.",
          initial: 'present',
          states: {
            present: {
              description: "The visitor's socket is with the server.",
              on: { 'peer.away': { target: 'away', actions: 'forwardToMedia' } },
            },
            away: {
              description:
                "The visitor's socket is gone; the server holds the call for them, and the media child spends no attempt until they are back.",
              on: { 'peer.back': { target: 'present', actions: 'forwardToMedia' } },
            },
          },
        },
      },
    },
    callFailed: {
      description: 'The media could not be connected or reconnected; the dashboard shows it until dismissed.',
      on: {
        dismiss: { target: 'available' },
      },
    },
  },
});

export type AgentMachine = typeof agentMachine;
