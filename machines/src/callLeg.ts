/**
 * What the visitor's and the agent's machines share about one leg of a call: the `connecting` and
 * `inCall` states, built from where each leg goes as its call ends and from its own transitions, and the
 * named implementations they use. Each machine spreads them into its own `setup()` and chart, so its
 * chart, and the JSON Stately imports, still holds every state and transition by name.
 */
import { assign, forwardTo, sendTo, type AnyActorRef, type EventObject } from 'xstate';
import { peerConnectionMachine, type PeerConnectionEvent, type PeerConnectionOutput, type PeerRole } from './peerConnection.machine.ts';

/** Adapter events about the leg's RTCPeerConnection and socket; forwarded to the media child. */
export type CallLegMediaEvent = Exclude<PeerConnectionEvent, { type: 'hangup' }>;

/** The adapter's events, and the media child finishing (listed so adapters and tests can type it). */
export type CallLegEvent = CallLegMediaEvent | { type: 'xstate.done.actor.media'; output: PeerConnectionOutput };

export type CallLegChildren = { media: 'peerConnection' };

/** What both legs' contexts hold for the media child. */
export interface CallLegContext {
  callId: string | null;
  /** Last known state of the signaling socket, handed to the media child when it starts. */
  signalingUp: boolean;
}

/** The part of `server.resumed` both legs read: the call the server still holds for this side. */
interface Resumed {
  type: 'server.resumed';
  call: { callId: string } | null;
}

interface MediaDone {
  type: 'xstate.done.actor.media';
  output: PeerConnectionOutput;
}

const isResumed = (event: EventObject): event is Resumed => event.type === 'server.resumed';
const isMediaDone = (event: EventObject): event is MediaDone => event.type === 'xstate.done.actor.media';

export const callLegActors = { peerConnection: peerConnectionMachine };

export const callLegGuards = {
  mediaFailed: ({ event }: { event: EventObject }) => isMediaDone(event) && event.output?.outcome === 'failed',
  resumedThisCall: ({ context, event }: { context: CallLegContext; event: EventObject }) =>
    isResumed(event) && event.call !== null && event.call.callId === context.callId,
  resumedWithoutCall: ({ event }: { event: EventObject }) => isResumed(event) && event.call === null,
};

/**
 * The leg's actions, for the machine whose context and events these are: the effects are the adapter's
 * (no-ops here, so the machines stay pure), the rest keep the media child in step.
 */
export function callLegActions<TContext extends CallLegContext, TEvent extends EventObject>() {
  return {
    /** Leave the call; the server tells the other person. */
    sendHangup: () => {},
    /** Tell the server this side gave up on the media (the context's end reason says why). */
    reportCallFailure: () => {},
    /** Create the RTCPeerConnection: the agent, the offerer, sends the offer; the visitor waits for it. */
    startMedia: () => {},
    /** Close the RTCPeerConnection and release the camera. */
    stopMedia: () => {},
    /** Report the media state of `context.callId` again: the server missed the reports while the socket was away. */
    reportMediaState: () => {},

    markSignalingUp: assign<TContext, TEvent, undefined, TEvent, never>(() => ({ signalingUp: true }) as Partial<TContext>),
    markSignalingDown: assign<TContext, TEvent, undefined, TEvent, never>(() => ({ signalingUp: false }) as Partial<TContext>),
    forwardToMedia: forwardTo<TContext, TEvent, undefined, TEvent>('media'),
    // The child's input is static, so it starts believing signaling is up; told the truth, it spends no
    // first restart attempt on an offer that cannot be delivered.
    syncSignalingToMedia: sendTo<TContext, TEvent, undefined, AnyActorRef, TEvent>('media', ({ context }: { context: TContext }) =>
      context.signalingUp ? { type: 'signal.up' } : { type: 'signal.down' },
    ),
  };
}

/** The adapter events `inCall` hands to the media child as they come; the child's chart decides what they mean. */
const forwardedToMedia = [
  'ice.connected',
  'ice.disconnected',
  'ice.failed',
  'network.online',
  'network.offline',
  'restart.requested',
  'media.flowing',
  'media.stalled',
] as const;

/** `inCall`'s transitions for the adapter's events: each goes to the media child, signaling's also into the context. */
const inCallForwarding = {
  ...(Object.fromEntries(forwardedToMedia.map((type) => [type, { actions: 'forwardToMedia' }])) as Record<
    (typeof forwardedToMedia)[number],
    { readonly actions: 'forwardToMedia' }
  >),
  'signal.up': { actions: ['markSignalingUp', 'forwardToMedia'] },
  'signal.down': { actions: ['markSignalingDown', 'forwardToMedia'] },
} as const;

/** Where a leg goes when its call ends one way, by absolute state id, and the action that records why. */
export interface LegEnd<TRecord> {
  target: `#${string}`;
  record: TRecord;
}

/** What a leg tells each of its call states. */
interface LegState<THungUp, TLost, TResumed, TOn> {
  description: string;
  /**
   * This side hung up. In `inCall`, also where the leg goes when the child closed without its hang-up
   * (e.g. the page tore the connection down): it leaves as if it had hung up.
   */
  hungUp: LegEnd<THungUp>;
  /** The server holds no call for this side any more (see {@link lostCall}). */
  lost: LegEnd<TLost>;
  /** The leg's own ways to read a resume that names none of its calls (see {@link lostCall}). */
  resumed: TResumed;
  /** The leg's own transitions. */
  on: TOn;
}

/**
 * What a leg's call does when the server took the session up again after a lost socket, or kept nothing
 * of it. The server still has this call: only the reports it missed are owed. Otherwise, after the leg's
 * own readings of what the server kept (`resumed`), the call ended while this socket was away and its
 * `call.ended` never arrived: `lost`.
 */
function lostCall<const TLost extends object, const TResumed extends readonly object[]>(lost: TLost, resumed: TResumed) {
  return {
    'server.resumed': [{ guard: 'resumedThisCall', actions: 'reportMediaState' }, ...resumed, { guard: 'resumedWithoutCall', ...lost }],
    'session.lost': lost,
  } as const;
}

/**
 * A leg's `connecting`: the media starts on entry and the state watches the first connection itself. The
 * media child lives only in `inCall`, so its restart logic only ever runs on a connection that has worked
 * once; the `ice.connected` that ends `connecting` is handed to the new child, so it starts from the same
 * truth as the browser.
 */
export function connectingState<const THungUp, const TLost, const TResumed extends readonly object[], const TOn extends object, const TFailed, const TServerEnded>(
  leg: LegState<THungUp, TLost, TResumed, TOn> & {
    /** The first connection failed, or took longer than connectTimeout. */
    failed: LegEnd<TFailed>;
    /** The server ended the call (`call.ended`). */
    serverEnded: LegEnd<TServerEnded>;
  },
) {
  const failed = { target: leg.failed.target, actions: [leg.failed.record, 'stopMedia', 'reportCallFailure'] } as const;
  const lost = { target: leg.lost.target, actions: [leg.lost.record, 'stopMedia'] } as const;
  return {
    description: leg.description,
    entry: 'startMedia',
    after: { connectTimeout: failed },
    on: {
      'ice.connected': { target: 'inCall' },
      'ice.failed': failed,
      hangup: { target: leg.hungUp.target, actions: [leg.hungUp.record, 'stopMedia', 'sendHangup'] },
      'call.ended': { target: leg.serverEnded.target, actions: [leg.serverEnded.record, 'stopMedia'] },
      ...leg.on,
      ...lostCall(lost, leg.resumed),
    },
  } as const;
}

/**
 * A leg's `inCall`: the peerConnection child, which restarts ICE on failure, and beside it whether the
 * other person's socket is with the server. Leaving the state stops the media.
 */
export function inCallState<const THungUp, const TLost, const TResumed extends readonly object[], const TOn extends object, const TMediaFailed>(
  leg: LegState<THungUp, TLost, TResumed, TOn> & {
    role: PeerRole;
    /** Who is at the other end, as the descriptions name them. */
    peer: 'visitor' | 'agent';
    /** The child could not reconnect. */
    mediaFailed: LegEnd<TMediaFailed>;
  },
) {
  const hangUp = { target: leg.hungUp.target, actions: [leg.hungUp.record, 'sendHangup'] } as const;
  return {
    description: leg.description,
    type: 'parallel',
    exit: 'stopMedia',
    on: {
      hangup: hangUp,
      ...leg.on,
      ...lostCall({ target: leg.lost.target, actions: [leg.lost.record] }, leg.resumed),
      ...inCallForwarding,
    },
    states: {
      media: {
        description: `The peerConnection child (the ${leg.role}) restarts ICE on failure; its snapshot drives the overlay and the indicator.`,
        entry: ['forwardToMedia', 'syncSignalingToMedia'],
        invoke: {
          id: 'media',
          src: 'peerConnection',
          input: { role: leg.role },
          onDone: [{ guard: 'mediaFailed', target: leg.mediaFailed.target, actions: [leg.mediaFailed.record, 'reportCallFailure'] }, hangUp],
        },
      },
      peer: {
        description: `Whether the ${leg.peer}'s socket is still with the server, as the server reports it.`,
        initial: 'present',
        states: {
          present: {
            description: `The ${leg.peer}'s socket is with the server.`,
            on: { 'peer.away': { target: 'away', actions: 'forwardToMedia' } },
          },
          away: {
            description: `The ${leg.peer}'s socket is gone; the server holds the call for them, and the media child spends no attempt until they are back.`,
            on: { 'peer.back': { target: 'present', actions: 'forwardToMedia' } },
          },
        },
      },
    },
  } as const;
}
