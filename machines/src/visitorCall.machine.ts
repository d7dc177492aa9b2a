import { assign, setup } from 'xstate';
import { callLegActions, callLegActors, callLegGuards, connectingState, inCallState, type CallLegChildren, type CallLegEvent, type CallLegMediaEvent } from './callLeg.ts';

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
export type VisitorMediaEvent = CallLegMediaEvent;

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
  // the page
  /** The page is going away (`pagehide`): closed, reloaded or navigated from. */
  | { type: 'page.closed' }
  // the adapter and the media child
  | CallLegEvent;

export const visitorCallMachine = setup({
  types: {
    context: {} as VisitorCallContext,
    children: {} as CallLegChildren,
    events: {} as VisitorCallEvent,
    input: {} as VisitorCallInput,
  },
  actors: callLegActors,
  delays: {
    connectTimeout: ({ context }) => context.timings.connectTimeout,
  },
  guards: {
    ...callLegGuards,
    resumedRinging: ({ event }) => event.type === 'server.resumed' && event.request?.state === 'ringing',
    // A queued request without its position is followed at once by a `routing.queued` with it.
    resumedQueued: ({ event }) => event.type === 'server.resumed' && event.request?.position !== undefined,
    resumedRequest: ({ event }) => event.type === 'server.resumed' && event.request !== null,
  },
  actions: {
    ...callLegActions<VisitorCallContext, VisitorCallEvent>(),
    // Effects for the adapter; no-ops here so the machine stays pure.
    /** Ask the server for an agent from `context.pool`. */
    requestCall: () => {},
    /** Withdraw the pending request. */
    cancelRequest: () => {},
    /**
     * Withdraw the pending request in a way that outlives the page (a beacon): the socket closes with the
     * page, and the server would hold a lost socket's place for the resume window.
     */
    sendCancelBeacon: () => {},
    /** Apply `context.muted` to the local tracks. */
    setMuted: () => {},

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
        // Nobody is left to take the call, and a closed page never resumes: the request would only hold its
        // place for the resume window. Once a call is accepted, a closing page is left to the call's own
        // rules: the server holds the visitor's leg as it does for any lost socket.
        'page.closed': {
          target: 'ended',
          actions: [{ type: 'endWith', params: { reason: 'cancelled' } }, 'sendCancelBeacon'],
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
    // The media child lives only in `inCall`, which also keeps the top-level states exactly the ones
    // the visitor sees.
    connecting: connectingState({
      description: 'An agent accepted; the first media connection is being set up.',
      failed: { target: '#visitorCall.ended', record: { type: 'endWith', params: { reason: 'connect-failed' } } },
      hungUp: { target: '#visitorCall.ended', record: { type: 'endWith', params: { reason: 'hangup' } } },
      serverEnded: { target: '#visitorCall.ended', record: 'endWithServerReason' },
      lost: { target: '#visitorCall.ended', record: { type: 'endWith', params: { reason: 'reconnect-timeout' } } },
      // The call is gone, and a request that goes on means the agent was replaced meanwhile.
      resumed: [
        { guard: 'resumedRinging', target: '#visitorCall.waiting.ringing', actions: ['forgetAgent', 'stopMedia', 'rememberResumedAgent'] },
        { guard: 'resumedQueued', target: '#visitorCall.waiting.queued', actions: ['forgetAgent', 'stopMedia', 'rememberResumedPosition'] },
        { guard: 'resumedRequest', target: '#visitorCall.waiting.reassigning', actions: ['forgetAgent', 'stopMedia'] },
      ],
      on: {
        // Pre-call, a lost agent is replaced at once (DESIGN §2, routing).
        'routing.reassigning': { target: 'waiting.reassigning', actions: ['forgetAgent', 'stopMedia'] },
        'mute.toggle': { actions: ['toggleMuted', 'setMuted'] },
      },
    }),
    inCall: inCallState({
      description: 'Talking to the agent: the media connection and the agent\'s presence run side by side.',
      role: 'answerer',
      peer: 'agent',
      hungUp: { target: '#visitorCall.ended', record: { type: 'endWith', params: { reason: 'hangup' } } },
      mediaFailed: { target: '#visitorCall.ended', record: { type: 'endWith', params: { reason: 'media-failed' } } },
      lost: { target: '#visitorCall.ended', record: { type: 'endWith', params: { reason: 'reconnect-timeout' } } },
      // As in `connecting`; leaving `inCall` stops the media.
      resumed: [
        { guard: 'resumedRinging', target: '#visitorCall.waiting.ringing', actions: ['forgetAgent', 'rememberResumedAgent'] },
        { guard: 'resumedQueued', target: '#visitorCall.waiting.queued', actions: ['forgetAgent', 'rememberResumedPosition'] },
        { guard: 'resumedRequest', target: '#visitorCall.waiting.reassigning', actions: 'forgetAgent' },
      ],
      on: {
        'call.ended': { target: 'ended', actions: 'endWithServerReason' },
        // The agent stayed away past the grace period; the server finds another one.
        'routing.reassigning': { target: 'waiting.reassigning', actions: 'forgetAgent' },
        'mute.toggle': { actions: ['toggleMuted', 'setMuted'] },
      },
    }),
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
