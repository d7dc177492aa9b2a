import { assign, forwardTo, sendTo, setup } from 'xstate';
import { peerConnectionMachine, type PeerConnectionEvent, type PeerConnectionOutput } from './peerConnection.machine.ts';

/** Why the visitor's last call or request ended; drives the message in `ended` (DESIGN §5). */
export type VisitorEndReason =
  | 'hangup'
  | 'cancelled'
  | 'agent-hangup'
  | 'media-failed'
  | 'reconnect-timeout'
  | 'no-agents'
  | 'reassign-limit'
  | 'connect-failed'
  | 'error';

/** Reasons the routing actor gives when a request ends before any call started. */
export type VisitorRoutingEndReason = 'no-agents' | 'reassign-limit' | 'cancelled';

/** Reasons the server gives when it ends an accepted call. */
export type VisitorServerEndReason = 'agent-hangup' | 'reconnect-timeout' | 'media-failed' | 'connect-failed' | 'error';

export interface VisitorCallTimings {
  /** How long the first media connection may take after the call was accepted. */
  connectTimeout: number;
}

// Longer than Chromium's fixed 15 s to `failed`, so a slow first connection is normally decided by
// the browser's own `ice.failed` and this timer only catches a connection that never reports at all.
export const defaultVisitorCallTimings: VisitorCallTimings = {
  connectTimeout: 20_000,
};

export interface VisitorCallInput {
  /** The agent pool requests go to when `call.request` names none. */
  pool?: string;
  timings?: Partial<VisitorCallTimings>;
}

export interface VisitorCallContext {
  timings: VisitorCallTimings;
  pool: string | null;
  agentName: string | null;
  queuePosition: number | null;
  callId: string | null;
  endReason: VisitorEndReason | null;
  muted: boolean;
  /** Last known state of the signaling socket, handed to the media child when it starts. */
  signalingUp: boolean;
}

/** Where the visitor's request stands on the server, as the server tells it on a resume. */
export interface VisitorResumedRequest {
  state: 'searching' | 'ringing' | 'queued';
  agentName?: string;
  position?: number;
}

/** Adapter events about the visitor's RTCPeerConnection and socket; forwarded to the media child. */
export type VisitorMediaEvent = Exclude<PeerConnectionEvent, { type: 'hangup' }>;

export type VisitorCallEvent =
  // the visitor
  | { type: 'call.request'; pool?: string }
  | { type: 'call.cancel' }
  | { type: 'hangup' }
  | { type: 'retry' }
  | { type: 'mute.toggle' }
  // the server
  | { type: 'routing.searching' }
  | { type: 'routing.ringing'; agentName: string }
  | { type: 'routing.reassigning' }
  | { type: 'routing.queued'; position: number }
  | { type: 'routing.ended'; reason: VisitorRoutingEndReason }
  | { type: 'call.accepted'; callId: string; agentName: string }
  | { type: 'call.ended'; reason: VisitorServerEndReason }
  /**
   * The server took this session up again after a lost socket, and says what it kept: the call it holds
   * for this visitor and the request, if it is this client's, that is not in a call yet.
   */
  | { type: 'server.resumed'; call: { callId: string } | null; request: VisitorResumedRequest | null }
  /** The server kept nothing of this session: whatever request or call it had is over on its side. */
  | { type: 'session.lost' }
  // the adapter
  | VisitorMediaEvent
  // the media child finishing; listed so adapters and tests can type it
  | { type: 'xstate.done.actor.media'; output: PeerConnectionOutput };

export const visitorCallMachine = setup({
  types: {
    context: {} as VisitorCallContext,
    children: {} as { media: 'peerConnection' },
    events: {} as VisitorCallEvent,
    input: {} as VisitorCallInput,
  },
  actors: {
    peerConnection: peerConnectionMachine,
  },
  delays: {
    connectTimeout: ({ context }) => context.timings.connectTimeout,
  },
  guards: {
    mediaFailed: ({ event }) => event.type === 'xstate.done.actor.media' && event.output?.outcome === 'failed',
    resumedThisCall: ({ context, event }) => event.type === 'server.resumed' && event.call !== null && event.call.callId === context.callId,
    resumedRinging: ({ event }) => event.type === 'server.resumed' && event.request?.state === 'ringing',
    // A queued request without its position is followed at once by a `routing.queued` with it.
    resumedQueued: ({ event }) => event.type === 'server.resumed' && event.request?.position !== undefined,
    resumedRequest: ({ event }) => event.type === 'server.resumed' && event.request !== null,
    resumedWithoutCall: ({ event }) => event.type === 'server.resumed' && event.call === null,
  },
  actions: {
    // Effects for the adapter; no-ops here so the machine stays pure.
    /** Ask the server for an agent from `context.pool`. */
    requestCall: () => {},
    /** Withdraw the pending request. */
    cancelRequest: () => {},
    /** Leave the call; the server tells the agent. */
    sendHangup: () => {},
    /** Tell the server this side gave up on the media (`context.endReason` says why). */
    reportCallFailure: () => {},
    /** Apply `context.muted` to the local tracks. */
    setMuted: () => {},
    /** Create the RTCPeerConnection and wait for the agent's offer. */
    startMedia: () => {},
    /** Close the RTCPeerConnection and release the camera. */
    stopMedia: () => {},
    /** Report the media state of `context.callId` again: the server missed the reports while the socket was away. */
    reportMediaState: () => {},

    resetCall: assign({
      agentName: null,
      queuePosition: null,
      callId: null,
      endReason: null,
      muted: false,
    }),
    rememberPool: assign({
      pool: ({ context, event }) => (event.type === 'call.request' && event.pool !== undefined ? event.pool : context.pool),
    }),
    rememberRingingAgent: assign({
      agentName: ({ context, event }) => (event.type === 'routing.ringing' ? event.agentName : context.agentName),
    }),
    rememberQueuePosition: assign({
      queuePosition: ({ context, event }) => (event.type === 'routing.queued' ? event.position : context.queuePosition),
    }),
    rememberResumedAgent: assign({
      agentName: ({ context, event }) => (event.type === 'server.resumed' && event.request ? (event.request.agentName ?? '') : context.agentName),
    }),
    rememberResumedPosition: assign({
      queuePosition: ({ context, event }) =>
        event.type === 'server.resumed' && event.request?.position !== undefined ? event.request.position : context.queuePosition,
    }),
    // The agent who was ringing or in call is gone; a stale name would be shown for the next one.
    forgetAgent: assign({ agentName: null, callId: null, queuePosition: null }),
    rememberCall: assign(({ event }) =>
      event.type === 'call.accepted'
        ? { callId: event.callId, agentName: event.agentName, queuePosition: null }
        : {},
    ),
    endWith: assign((_, params: { reason: VisitorEndReason }) => ({ endReason: params.reason })),
    endWithRoutingReason: assign({
      endReason: ({ context, event }) => (event.type === 'routing.ended' ? event.reason : context.endReason),
    }),
    endWithServerReason: assign({
      endReason: ({ context, event }) => (event.type === 'call.ended' ? event.reason : context.endReason),
    }),
    toggleMuted: assign({ muted: ({ context }) => !context.muted }),
    markSignalingUp: assign({ signalingUp: true }),
    markSignalingDown: assign({ signalingUp: false }),
    forwardToMedia: forwardTo('media'),
    // The child's input is static, so it starts believing signaling is up; tell it the truth, or its
    // first restart attempt could be spent on an offer that cannot be delivered.
    syncSignalingToMedia: sendTo('media', ({ context }): VisitorMediaEvent =>
      context.signalingUp ? { type: 'signal.up' } : { type: 'signal.down' },
    ),
  },
}).createMachine({
  id: 'visitorCall',
  description: "The visitor's side of one call: asking for an agent, waiting, connecting, the call itself, and its end.",
  context: ({ input }) => ({
    timings: { ...defaultVisitorCallTimings, ...input.timings },
    pool: input.pool ?? null,
    agentName: null,
    queuePosition: null,
    callId: null,
    endReason: null,
    muted: false,
    signalingUp: true,
  }),
  initial: 'idle',
  on: {
    'signal.up': { actions: 'markSignalingUp' },
    'signal.down': { actions: 'markSignalingDown' },
  },
  states: {
    idle: {
      description: 'Nothing requested yet; the widget offers "Call an agent".',
      on: {
        'call.request': {
          target: 'waiting',
          actions: ['resetCall', 'rememberPool', 'requestCall'],
        },
      },
    },
    waiting: {
      description: 'A request is with the server, which routes it to an agent.',
      initial: 'searching',
      on: {
        'call.cancel': {
          target: 'ended',
          actions: [{ type: 'endWith', params: { reason: 'cancelled' } }, 'cancelRequest'],
        },
        'routing.searching': { target: '.searching' },
        'routing.ringing': { target: '.ringing', actions: 'rememberRingingAgent' },
        'routing.reassigning': { target: '.reassigning', actions: 'forgetAgent' },
        'routing.queued': { target: '.queued', actions: 'rememberQueuePosition' },
        'routing.ended': { target: 'ended', actions: 'endWithRoutingReason' },
        'call.accepted': { target: 'connecting', actions: 'rememberCall' },
        // Where the request stands now, told once more: this socket missed the updates while it was away.
        'server.resumed': [
          { guard: 'resumedRinging', target: '.ringing', actions: 'rememberResumedAgent' },
          { guard: 'resumedQueued', target: '.queued', actions: 'rememberResumedPosition' },
        ],
        'session.lost': {
          target: 'ended',
          actions: { type: 'endWith', params: { reason: 'cancelled' } },
        },
      },
      states: {
        searching: {
          description: 'The server is looking for an eligible agent.',
        },
        ringing: {
          description: "An agent's dashboard is ringing.",
        },
        reassigning: {
          description: 'The agent rejected, did not answer or dropped out; the server tries the next one.',
        },
        queued: {
          description: 'No agent is free; the visitor waits in line at `queuePosition`.',
        },
      },
    },
    // The media child lives only in `inCall`, and `connecting` watches the first connection itself:
    // that keeps the top-level states exactly the ones the visitor sees, and the child's restart
    // logic only ever runs on a connection that has worked once. The `ice.connected` that ends
    // `connecting` is handed to the new child, so it starts from the same truth as the browser.
    connecting: {
      description: 'An agent accepted; the first media connection is being set up.',
      entry: 'startMedia',
      after: {
        connectTimeout: {
          target: 'ended',
          actions: [{ type: 'endWith', params: { reason: 'connect-failed' } }, 'stopMedia', 'reportCallFailure'],
        },
      },
      on: {
        'ice.connected': { target: 'inCall' },
        'ice.failed': {
          target: 'ended',
          actions: [{ type: 'endWith', params: { reason: 'connect-failed' } }, 'stopMedia', 'reportCallFailure'],
        },
        hangup: {
          target: 'ended',
          actions: [{ type: 'endWith', params: { reason: 'hangup' } }, 'stopMedia', 'sendHangup'],
        },
        'call.ended': { target: 'ended', actions: ['endWithServerReason', 'stopMedia'] },
        // Pre-call, a lost agent is replaced at once (DESIGN §2, routing).
        'routing.reassigning': { target: 'waiting.reassigning', actions: ['forgetAgent', 'stopMedia'] },
        // The server still has this call: only the reports it missed are owed. Otherwise the call is gone,
        // and a request that goes on means the agent was replaced meanwhile; without one it ended while
        // this socket was away, so its `call.ended` never arrived.
        'server.resumed': [
          { guard: 'resumedThisCall', actions: 'reportMediaState' },
          { guard: 'resumedRinging', target: 'waiting.ringing', actions: ['forgetAgent', 'stopMedia', 'rememberResumedAgent'] },
          { guard: 'resumedQueued', target: 'waiting.queued', actions: ['forgetAgent', 'stopMedia', 'rememberResumedPosition'] },
          { guard: 'resumedRequest', target: 'waiting.reassigning', actions: ['forgetAgent', 'stopMedia'] },
          {
            guard: 'resumedWithoutCall',
            target: 'ended',
            actions: [{ type: 'endWith', params: { reason: 'reconnect-timeout' } }, 'stopMedia'],
          },
        ],
        'session.lost': {
          target: 'ended',
          actions: [{ type: 'endWith', params: { reason: 'reconnect-timeout' } }, 'stopMedia'],
        },
        'mute.toggle': { actions: ['toggleMuted', 'setMuted'] },
      },
    },
    inCall: {
      description: 'Talking to the agent: the media connection and the agent\'s presence run side by side.',
      type: 'parallel',
      exit: 'stopMedia',
      on: {
        hangup: {
          target: 'ended',
          actions: [{ type: 'endWith', params: { reason: 'hangup' } }, 'sendHangup'],
        },
        'call.ended': { target: 'ended', actions: 'endWithServerReason' },
        // The agent stayed away past the grace period; the server finds another one.
        'routing.reassigning': { target: 'waiting.reassigning', actions: 'forgetAgent' },
        // As in `connecting`; leaving `inCall` stops the media.
        'server.resumed': [
          { guard: 'resumedThisCall', actions: 'reportMediaState' },
          { guard: 'resumedRinging', target: 'waiting.ringing', actions: ['forgetAgent', 'rememberResumedAgent'] },
          { guard: 'resumedQueued', target: 'waiting.queued', actions: ['forgetAgent', 'rememberResumedPosition'] },
          { guard: 'resumedRequest', target: 'waiting.reassigning', actions: 'forgetAgent' },
          { guard: 'resumedWithoutCall', target: 'ended', actions: { type: 'endWith', params: { reason: 'reconnect-timeout' } } },
        ],
        'session.lost': { target: 'ended', actions: { type: 'endWith', params: { reason: 'reconnect-timeout' } } },
        'mute.toggle': { actions: ['toggleMuted', 'setMuted'] },
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
          description: 'The peerConnection child restarts ICE on failure; its snapshot drives the Reconnecting overlay.',
          entry: ['forwardToMedia', 'syncSignalingToMedia'],
          invoke: {
            id: 'media',
            src: 'peerConnection',
            input: { role: 'answerer' },
            onDone: [
              {
                guard: 'mediaFailed',
                target: '#visitorCall.ended',
                actions: [{ type: 'endWith', params: { reason: 'media-failed' } }, 'reportCallFailure'],
              },
              // Closed without our hang-up (e.g. the page tore the connection down): leave like one.
              {
                target: '#visitorCall.ended',
                actions: [{ type: 'endWith', params: { reason: 'hangup' } }, 'sendHangup'],
              },
            ],
          },
        },
        peer: {
          description: "Whether the agent's socket is still with the server, as the server reports it.",
          initial: 'present',
          states: {
            present: {
              description: "The agent's socket is with the server.",
              on: { 'peer.away': { target: 'away', actions: 'forwardToMedia' } },
            },
            away: {
              description:
                "The agent's socket is gone; the server holds the call for them, and the media child spends no attempt until they are back.",
              on: { 'peer.back': { target: 'present', actions: 'forwardToMedia' } },
            },
          },
        },
      },
    },
    ended: {
      description: 'The request or call is over; `endReason` says why. The visitor may call again.',
      on: {
        retry: { target: 'waiting', actions: ['resetCall', 'requestCall'] },
        'call.request': { target: 'waiting', actions: ['resetCall', 'rememberPool', 'requestCall'] },
      },
    },
  },
});

export type VisitorCallMachine = typeof visitorCallMachine;
