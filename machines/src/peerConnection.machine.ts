import { assign, emit, enqueueActions, setup } from 'xstate';

/** The agent is the offerer and the visitor answers, so only one side ever sends a restart offer. */
export type PeerRole = 'offerer' | 'answerer';

export interface PeerConnectionTimings {
  /** How long `unstable` waits for the connection to come back by itself before restarting ICE. */
  disconnectedGrace: number;
  /** How long one ICE restart attempt may take. */
  attemptTimeout: number;
  /** How long the first connection may take. */
  connectTimeout: number;
  /**
   * How long a restarted connection that reports `connected` may take to show media arriving again. A
   * connection can be `connected` while nothing reaches this side; that is not a recovery.
   */
  mediaProofTimeout: number;
  /** How often media progress is sampled while a recovery is being proven. */
  mediaProbeInterval: number;
  /** How often media progress is sampled while connected, to notice a dead path before ICE does. */
  mediaWatchInterval: number;
  /**
   * How long nothing may arrive on a connected call before it counts as lost. ICE consent takes about
   * 6 s to report `disconnected`; media that stops (an address change, a dead relay) is seen in 1.
   */
  mediaStallTimeout: number;
}

export const defaultPeerConnectionTimings: PeerConnectionTimings = {
  disconnectedGrace: 2000,
  attemptTimeout: 10000,
  connectTimeout: 15000,
  mediaProofTimeout: 4000,
  mediaProbeInterval: 250,
  mediaWatchInterval: 500,
  mediaStallTimeout: 1000,
};

export const defaultPeerConnectionMaxAttempts = 3;

export interface PeerConnectionInput {
  role: PeerRole;
  maxAttempts?: number;
  timings?: Partial<PeerConnectionTimings>;
  signalingUp?: boolean;
  /** Whether the other person's socket is with the server; an attempt cannot reach a peer without one. */
  peerReachable?: boolean;
  /** Whether the browser believes it has a network. */
  online?: boolean;
}

export interface PeerConnectionRecovery {
  attempts: number;
  durationMs: number;
}

export interface PeerConnectionContext {
  role: PeerRole;
  /** While `reconnecting.attempting`, the number of the attempt in progress (1-based). */
  attempts: number;
  /**
   * Whether attempt `attempts` is still running (attempting, or verifying the media it brought back). A
   * connection that comes back by itself while no attempt runs has none to fail.
   */
  attemptInProgress: boolean;
  maxAttempts: number;
  timings: PeerConnectionTimings;
  signalingUp: boolean;
  /** False while the server says the other person's socket is gone. */
  peerReachable: boolean;
  /** False while the browser says it is offline. */
  online: boolean;
  /** The `at` of the event that ended the last good connection; null while connected. */
  outageStartedAt: number | null;
  lastRecovery: PeerConnectionRecovery | null;
}

/** Driven from `RTCPeerConnection.connectionState`, because Chromium never reports ICE `failed`. */
export type PeerConnectionEvent =
  | { type: 'ice.connected'; at: number }
  | { type: 'ice.disconnected'; at: number }
  | { type: 'ice.failed'; at: number }
  | { type: 'signal.up' }
  | { type: 'signal.down' }
  | { type: 'network.online'; at?: number }
  | { type: 'network.offline'; at?: number }
  /** The server: the other person's socket is gone, so nothing sent to them can arrive. */
  | { type: 'peer.away' }
  /** The server: the other person's session is back. */
  | { type: 'peer.back' }
  /** The answerer lost the connection and asks the offerer for a restart offer now. */
  | { type: 'restart.requested'; at?: number }
  /** The adapter saw media (or, with no tracks, the data channel) arrive since the last probe. */
  | { type: 'media.flowing'; at?: number }
  /** The adapter saw nothing at all arrive since the last probe: no bytes, no echoes. */
  | { type: 'media.stalled'; at?: number }
  | { type: 'hangup' };

export type PeerConnectionEmitted =
  | { type: 'attempt.started'; attempt: number; maxAttempts: number }
  | { type: 'attempt.failed'; attempt: number; maxAttempts: number }
  /** Signaling went down mid-attempt: the attempt is given back and will be retried. */
  | { type: 'attempt.abandoned'; attempt: number; maxAttempts: number }
  | { type: 'recovered'; attempts: number; durationMs: number }
  | { type: 'failed'; attempts: number };

export type PeerConnectionOutput = { outcome: 'failed' } | { outcome: 'closed' };

function eventTime(event: PeerConnectionEvent): number | null {
  return 'at' in event && typeof event.at === 'number' ? event.at : null;
}

function durationSince(start: number | null, end: number | null): number {
  if (start === null || end === null) return 0;
  // Clocks of two event sources may disagree slightly; a negative outage is meaningless.
  return Math.max(0, end - start);
}

/** The sampling tick of every state that watches media; one definition, so they cannot drift apart. */
// On the tick, not on entry: a sample taken moments after the last one (a change of watch state) could
// not show progress, and would be taken for a stall.
const watchMedia = {
  description: 'Samples media progress every mediaWatchInterval.',
  after: { mediaWatchInterval: { target: 'sampling', reenter: true, actions: 'probeMedia' } },
} as const;

export const peerConnectionMachine = setup({
  types: {
    context: {} as PeerConnectionContext,
    events: {} as PeerConnectionEvent,
    input: {} as PeerConnectionInput,
    emitted: {} as PeerConnectionEmitted,
    output: {} as PeerConnectionOutput,
  },
  actions: {
    // Effects for the adapter; no-ops here so the machine stays pure.
    /** `setLocalDescription({ type: 'rollback' })` if a local offer is pending: a lost restart
     *  offer otherwise leaves the offerer in `have-local-offer` and later restarts do nothing. */
    rollbackLocalOffer: () => {},
    /** `pc.restartIce()`. */
    restartIce: () => {},
    /** Create and send the ICE-restart offer over signaling. */
    sendRestartOffer: () => {},
    /**
     * Send the pending restart offer again, the same one, if it is still unanswered. A fresh offer instead
     * would race the answer to the first: applied to the second, it carries the wrong ICE credentials.
     */
    resendRestartOffer: () => {},
    /** Ask the offerer, over signaling, for a restart offer now. */
    sendRestartRequest: () => {},
    /** Take a fresh baseline of what has arrived so far (inbound RTP, or the data channel's echoes). */
    startMediaProbe: () => {},
    /**
     * Compare what has arrived with the last sample: `media.flowing` when it advanced, `media.stalled` when
     * nothing arrived at all, each only when it differs from the last one told since `startMediaProbe`.
     */
    probeMedia: () => {},
    /**
     * Ask signaling to prove its socket alive: a path that died under the media (an address change) takes
     * the socket with it silently, and nothing sent over it would arrive.
     */
    checkSignaling: () => {},

    sendRestartOfferIfOfferer: enqueueActions(({ context, enqueue }) => {
      // The answerer only answers the offerer's restart offer; two offers would glare.
      if (context.role === 'offerer') enqueue('sendRestartOffer');
    }),
    // The answerer's own restart does nothing without an offer: it asks for one instead of waiting out
    // the offerer's detection, which may come seconds later or never (a change of address on this side).
    sendRestartRequestIfAnswerer: enqueueActions(({ context, enqueue }) => {
      if (context.role === 'answerer') enqueue('sendRestartRequest');
    }),
    markPeerAway: assign({ peerReachable: false }),
    markPeerReachable: assign({ peerReachable: true }),
    markOffline: assign({ online: false }),
    markOnline: assign({ online: true }),
    markSignalingUp: assign({ signalingUp: true }),
    markSignalingDown: assign({ signalingUp: false }),
    // The earliest sign counts: a stall seen before ICE reports `disconnected` started the outage.
    markOutageStart: assign({
      outageStartedAt: ({ context, event }) => context.outageStartedAt ?? eventTime(event),
    }),
    clearOutage: assign({ outageStartedAt: null }),
    startAttempt: assign({ attempts: ({ context }) => context.attempts + 1, attemptInProgress: true }),
    // An attempt cut short by lost signaling could not have succeeded (its offer was lost), so it
    // does not count against maxAttempts.
    giveBackAttempt: assign({
      attempts: ({ context }) => (context.attemptInProgress ? Math.max(0, context.attempts - 1) : context.attempts),
      attemptInProgress: false,
    }),
    recordRecovery: assign({
      lastRecovery: ({ context, event }) => ({
        attempts: context.attempts,
        durationMs: durationSince(context.outageStartedAt, eventTime(event)),
      }),
      attempts: 0,
      attemptInProgress: false,
      outageStartedAt: null,
    }),
    emitAttemptStarted: emit(({ context }) => ({
      type: 'attempt.started' as const,
      attempt: context.attempts,
      maxAttempts: context.maxAttempts,
    })),
    // A connection that came back by itself while no attempt ran, and then showed no media, failed no attempt.
    emitAttemptFailed: enqueueActions(({ context, enqueue }) => {
      if (!context.attemptInProgress) return;
      enqueue.assign({ attemptInProgress: false });
      enqueue.emit({ type: 'attempt.failed', attempt: context.attempts, maxAttempts: context.maxAttempts });
    }),
    emitAttemptAbandoned: enqueueActions(({ context, enqueue }) => {
      if (context.attemptInProgress) enqueue.emit({ type: 'attempt.abandoned', attempt: context.attempts, maxAttempts: context.maxAttempts });
    }),
    emitRecovered: emit(({ context }) => ({
      type: 'recovered' as const,
      attempts: context.lastRecovery?.attempts ?? 0,
      durationMs: context.lastRecovery?.durationMs ?? 0,
    })),
    emitFailed: emit(({ context }) => ({ type: 'failed' as const, attempts: context.attempts })),
  },
  guards: {
    isOffline: ({ context }) => !context.online,
    signalingIsDown: ({ context }) => !context.signalingUp,
    peerIsAway: ({ context }) => !context.peerReachable,
    isOfferer: ({ context }) => context.role === 'offerer',
    hasAttemptsLeft: ({ context }) => context.attempts < context.maxAttempts,
  },
  delays: {
    disconnectedGrace: ({ context }) => context.timings.disconnectedGrace,
    attemptTimeout: ({ context }) => context.timings.attemptTimeout,
    connectTimeout: ({ context }) => context.timings.connectTimeout,
    mediaProofTimeout: ({ context }) => context.timings.mediaProofTimeout,
    mediaProbeInterval: ({ context }) => context.timings.mediaProbeInterval,
    mediaWatchInterval: ({ context }) => context.timings.mediaWatchInterval,
    mediaStallTimeout: ({ context }) => context.timings.mediaStallTimeout,
  },
}).createMachine({
  id: 'peerConnection',
  description:
    'One RTCPeerConnection: first connection, self-recovery from short outages, and bounded ICE restarts.',
  context: ({ input }) => ({
    role: input.role,
    attempts: 0,
    attemptInProgress: false,
    // At least one attempt: a peer connection that never tries to recover would fail silently.
    maxAttempts: Math.max(1, Math.floor(input.maxAttempts ?? defaultPeerConnectionMaxAttempts)),
    timings: { ...defaultPeerConnectionTimings, ...input.timings },
    signalingUp: input.signalingUp ?? true,
    peerReachable: input.peerReachable ?? true,
    online: input.online ?? true,
    outageStartedAt: null,
    lastRecovery: null,
  }),
  initial: 'connecting',
  // XState only exposes a final state's `output` as the actor's output (what a parent receives in
  // `xstate.done.actor.*`) when the root declares one; this forwards it unchanged.
  output: ({ event }) => event.output as PeerConnectionOutput,
  on: {
    'signal.up': { actions: 'markSignalingUp' },
    'signal.down': { actions: 'markSignalingDown' },
    'peer.away': { actions: 'markPeerAway' },
    'peer.back': { actions: 'markPeerReachable' },
    // Only a peer with a socket can ask.
    'restart.requested': { actions: 'markPeerReachable' },
    'network.offline': { actions: 'markOffline' },
    'network.online': { actions: 'markOnline' },
    hangup: { target: '.closed' },
  },
  states: {
    connecting: {
      description: 'Establishing the first connection; gives up after connectTimeout.',
      after: {
        connectTimeout: { target: 'failed' },
      },
      on: {
        'ice.connected': { target: 'connected' },
        'ice.failed': { target: 'reconnecting', actions: 'markOutageStart' },
      },
    },
    connected: {
      description: 'The connection is up; media is watched so that a path that dies is noticed before ICE consent gives up.',
      entry: 'startMediaProbe',
      initial: 'starting',
      states: {
        starting: {
          description: 'No media seen on this connection yet: a slow start cannot be told from a stall, so none is looked for.',
          initial: 'sampling',
          states: { sampling: watchMedia },
          on: {
            'media.flowing': { target: 'flowing' },
          },
        },
        flowing: {
          description: 'Media was seen arriving at the last sample.',
          initial: 'sampling',
          states: { sampling: watchMedia },
          on: {
            'media.stalled': { target: 'stalled', actions: 'markOutageStart' },
          },
        },
        stalled: {
          description:
            'Nothing arrived at the last sample. Signaling is asked to prove its socket at once; past mediaStallTimeout the path counts as lost.',
          entry: 'checkSignaling',
          initial: 'sampling',
          states: { sampling: watchMedia },
          after: {
            mediaStallTimeout: { target: '#peerConnection.reconnecting' },
          },
          on: {
            'media.flowing': { target: 'flowing', actions: 'clearOutage' },
          },
        },
      },
      on: {
        'ice.disconnected': { target: 'unstable', actions: 'markOutageStart' },
        'ice.failed': { target: 'reconnecting', actions: 'markOutageStart' },
        // No network means no path, whatever the connection still reports; waiting for ICE consent to
        // notice would only delay telling the person.
        'network.offline': { target: 'reconnecting', actions: ['markOffline', 'markOutageStart'] },
        // Back online without having been seen offline is an address change: the old pairs are dead.
        'network.online': { target: 'reconnecting', actions: ['markOnline', 'markOutageStart'] },
        'restart.requested': { guard: 'isOfferer', target: 'reconnecting', actions: ['markPeerReachable', 'markOutageStart'] },
      },
    },
    unstable: {
      description:
        'The connection reported disconnected; browsers often recover by themselves within the grace period, so no attempt is spent yet.',
      after: {
        disconnectedGrace: { target: 'reconnecting' },
      },
      on: {
        'ice.connected': { target: 'connected', actions: 'clearOutage' },
        'ice.failed': { target: 'reconnecting' },
        // The network interface came back: the old candidate pairs are likely dead, restart now.
        'network.online': { target: 'reconnecting', actions: 'markOnline' },
        'network.offline': { target: 'reconnecting', actions: 'markOffline' },
        // The answerer has lost the connection too: the grace would only delay the same restart.
        'restart.requested': { guard: 'isOfferer', target: 'reconnecting', actions: 'markPeerReachable' },
      },
    },
    reconnecting: {
      description:
        'Restarting ICE, attempt n of maxAttempts; an attempt is only spent while there is a network, signaling and a peer to reach.',
      initial: 'checking',
      on: {
        // Connected again is not recovered yet: media has to be seen arriving.
        'ice.connected': { target: '.verifying' },
      },
      states: {
        checking: {
          description: 'Decides at once which wait applies, if any, before an attempt is spent.',
          always: [
            { guard: 'isOffline', target: 'waitingForNetwork' },
            { guard: 'signalingIsDown', target: 'waitingForSignaling' },
            { guard: 'peerIsAway', target: 'waitingForPeer' },
            { target: 'attempting' },
          ],
        },
        waitingForNetwork: {
          description: 'The browser is offline, so no path can exist; waits for the network without spending an attempt.',
          on: {
            'network.online': { target: 'checking', actions: 'markOnline' },
          },
        },
        waitingForSignaling: {
          description:
            'Signaling is down, so a restart offer would be lost; waits for it without spending an attempt.',
          on: {
            'signal.up': { target: 'checking', actions: 'markSignalingUp' },
          },
        },
        waitingForPeer: {
          description:
            "The other person's socket is gone, so nothing sent to them can arrive; waits for their session without spending an attempt.",
          on: {
            'peer.back': { target: 'checking', actions: 'markPeerReachable' },
            // A request can only come from a peer with a socket.
            'restart.requested': { target: 'checking', actions: 'markPeerReachable' },
          },
        },
        attempting: {
          description: 'One ICE restart attempt in progress, bounded by attemptTimeout.',
          // A fresh baseline: media already arriving when the attempt starts is told again, and proves it.
          entry: [
            'startAttempt',
            'startMediaProbe',
            'rollbackLocalOffer',
            'restartIce',
            'sendRestartOfferIfOfferer',
            'sendRestartRequestIfAnswerer',
            'emitAttemptStarted',
          ],
          after: {
            attemptTimeout: [
              {
                guard: 'hasAttemptsLeft',
                target: 'attempting',
                reenter: true,
                actions: 'emitAttemptFailed',
              },
              { target: '#peerConnection.failed', actions: 'emitAttemptFailed' },
            ],
          },
          on: {
            'signal.down': {
              target: 'waitingForSignaling',
              actions: ['markSignalingDown', 'emitAttemptAbandoned', 'giveBackAttempt'],
            },
            'network.offline': {
              target: 'waitingForNetwork',
              actions: ['markOffline', 'emitAttemptAbandoned', 'giveBackAttempt'],
            },
            'peer.away': {
              target: 'waitingForPeer',
              actions: ['markPeerAway', 'emitAttemptAbandoned', 'giveBackAttempt'],
            },
            // The peer's session is back, or this side's address changed: the offer in flight went to a
            // dead path or nobody, so a fresh one goes now, under the same attempt number.
            'peer.back': { target: 'attempting', reenter: true, actions: ['markPeerReachable', 'giveBackAttempt'] },
            'network.online': { target: 'attempting', reenter: true, actions: ['markOnline', 'giveBackAttempt'] },
            // The answerer asks because it has lost the path too, and perhaps the offer as well (it went into
            // a socket that had died): the same offer goes again at once rather than at this attempt's timeout.
            'restart.requested': { guard: 'isOfferer', actions: ['markPeerReachable', 'resendRestartOffer'] },
            // A stall can end without the connection ever having reported anything else: media seen
            // arriving again is the recovery, whatever ICE says.
            'media.flowing': { target: '#peerConnection.connected.flowing', actions: ['recordRecovery', 'emitRecovered'] },
          },
          initial: 'sampling',
          states: { sampling: watchMedia },
        },
        verifying: {
          description:
            'The connection reports connected again; it counts as recovered only once media is seen arriving, within mediaProofTimeout.',
          entry: 'startMediaProbe',
          initial: 'probing',
          after: {
            mediaProofTimeout: [
              // Through the checks: the connection may have come back by itself while signaling was down.
              { guard: 'hasAttemptsLeft', target: 'checking', actions: 'emitAttemptFailed' },
              { target: '#peerConnection.failed', actions: 'emitAttemptFailed' },
            ],
          },
          on: {
            'media.flowing': { target: '#peerConnection.connected.flowing', actions: ['recordRecovery', 'emitRecovered'] },
            // The attempt that brought the connection back could not be proven: it is given back, as
            // one cut short in `attempting` is.
            'network.offline': { target: 'waitingForNetwork', actions: ['markOffline', 'emitAttemptAbandoned', 'giveBackAttempt'] },
          },
          states: {
            probing: {
              description: 'Samples media progress every mediaProbeInterval.',
              after: {
                mediaProbeInterval: { target: 'probing', reenter: true, actions: 'probeMedia' },
              },
            },
          },
        },
      },
    },
    failed: {
      description: 'Could not connect or reconnect; the UI shows a graceful error.',
      type: 'final',
      entry: 'emitFailed',
      output: { outcome: 'failed' },
    },
    closed: {
      description: 'Hung up normally.',
      type: 'final',
      output: { outcome: 'closed' },
    },
  },
});

export type PeerConnectionMachine = typeof peerConnectionMachine;
