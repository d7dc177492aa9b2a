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
}

export const defaultPeerConnectionTimings: PeerConnectionTimings = {
  disconnectedGrace: 2000,
  attemptTimeout: 10000,
  connectTimeout: 15000,
};

export const defaultPeerConnectionMaxAttempts = 3;

export interface PeerConnectionInput {
  role: PeerRole;
  maxAttempts?: number;
  timings?: Partial<PeerConnectionTimings>;
  signalingUp?: boolean;
}

export interface PeerConnectionRecovery {
  attempts: number;
  durationMs: number;
}

export interface PeerConnectionContext {
  role: PeerRole;
  /** While `reconnecting.attempting`, the number of the attempt in progress (1-based). */
  attempts: number;
  maxAttempts: number;
  timings: PeerConnectionTimings;
  signalingUp: boolean;
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
  | { type: 'network.online' }
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
  return 'at' in event ? event.at : null;
}

function durationSince(start: number | null, end: number | null): number {
  if (start === null || end === null) return 0;
  // Clocks of two event sources may disagree slightly; a negative outage is meaningless.
  return Math.max(0, end - start);
}

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

    sendRestartOfferIfOfferer: enqueueActions(({ context, enqueue }) => {
      // The answerer only answers the offerer's restart offer; two offers would glare.
      if (context.role === 'offerer') enqueue('sendRestartOffer');
    }),
    markSignalingUp: assign({ signalingUp: true }),
    markSignalingDown: assign({ signalingUp: false }),
    markOutageStart: assign({
      outageStartedAt: ({ event }) => eventTime(event),
    }),
    clearOutage: assign({ outageStartedAt: null }),
    startAttempt: assign({ attempts: ({ context }) => context.attempts + 1 }),
    // An attempt cut short by lost signaling could not have succeeded (its offer was lost), so it
    // does not count against maxAttempts.
    giveBackAttempt: assign({ attempts: ({ context }) => Math.max(0, context.attempts - 1) }),
    recordRecovery: assign({
      lastRecovery: ({ context, event }) => ({
        attempts: context.attempts,
        durationMs: durationSince(context.outageStartedAt, eventTime(event)),
      }),
      attempts: 0,
      outageStartedAt: null,
    }),
    emitAttemptStarted: emit(({ context }) => ({
      type: 'attempt.started' as const,
      attempt: context.attempts,
      maxAttempts: context.maxAttempts,
    })),
    emitAttemptFailed: emit(({ context }) => ({
      type: 'attempt.failed' as const,
      attempt: context.attempts,
      maxAttempts: context.maxAttempts,
    })),
    emitAttemptAbandoned: emit(({ context }) => ({
      type: 'attempt.abandoned' as const,
      attempt: context.attempts,
      maxAttempts: context.maxAttempts,
    })),
    emitRecovered: emit(({ context }) => ({
      type: 'recovered' as const,
      attempts: context.lastRecovery?.attempts ?? 0,
      durationMs: context.lastRecovery?.durationMs ?? 0,
    })),
    emitFailed: emit(({ context }) => ({ type: 'failed' as const, attempts: context.attempts })),
  },
  guards: {
    signalingIsUp: ({ context }) => context.signalingUp,
    hasAttemptsLeft: ({ context }) => context.attempts < context.maxAttempts,
  },
  delays: {
    disconnectedGrace: ({ context }) => context.timings.disconnectedGrace,
    attemptTimeout: ({ context }) => context.timings.attemptTimeout,
    connectTimeout: ({ context }) => context.timings.connectTimeout,
  },
}).createMachine({
  id: 'peerConnection',
  description:
    'One RTCPeerConnection: first connection, self-recovery from short outages, and bounded ICE restarts.',
  context: ({ input }) => ({
    role: input.role,
    attempts: 0,
    // At least one attempt: a peer connection that never tries to recover would fail silently.
    maxAttempts: Math.max(1, Math.floor(input.maxAttempts ?? defaultPeerConnectionMaxAttempts)),
    timings: { ...defaultPeerConnectionTimings, ...input.timings },
    signalingUp: input.signalingUp ?? true,
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
      description: 'Media flows.',
      on: {
        'ice.disconnected': { target: 'unstable', actions: 'markOutageStart' },
        'ice.failed': { target: 'reconnecting', actions: 'markOutageStart' },
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
        'network.online': { target: 'reconnecting' },
      },
    },
    reconnecting: {
      description: 'Restarting ICE, attempt n of maxAttempts; attempts are only spent while signaling is up.',
      // Entered through waitingForSignaling so that the signaling check happens before any
      // attempt's entry effects run.
      initial: 'waitingForSignaling',
      on: {
        'ice.connected': { target: 'connected', actions: ['recordRecovery', 'emitRecovered'] },
      },
      states: {
        waitingForSignaling: {
          description:
            'Signaling is down, so a restart offer would be lost; waits for it without spending an attempt.',
          always: { guard: 'signalingIsUp', target: 'attempting' },
          on: {
            'signal.up': { target: 'attempting', actions: 'markSignalingUp' },
          },
        },
        attempting: {
          description: 'One ICE restart attempt in progress, bounded by attemptTimeout.',
          entry: [
            'startAttempt',
            'rollbackLocalOffer',
            'restartIce',
            'sendRestartOfferIfOfferer',
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
