import { assign, emit, enqueueActions, setup } from 'xstate';
import { nextRandom, retryDelay, seedRandom } from './backoff.ts';

export interface SignalingTimings {
  /** Delay before the first reconnect attempt (without jitter). */
  initialDelay: number;
  /** Cap of the exponential backoff (without jitter). */
  maxDelay: number;
  /** Jitter is drawn from [0, maxJitter) so that clients cut off together do not return together. */
  maxJitter: number;
  /**
   * How long a socket under suspicion has to answer a ping. A path that died under it (an address change)
   * leaves it looking connected until the server's ping timeout, up to 5 s later.
   */
  livenessTimeout: number;
}

export const defaultSignalingTimings: SignalingTimings = {
  initialDelay: 1000,
  maxDelay: 30000,
  maxJitter: 500,
  livenessTimeout: 1000,
};

export const defaultOutboxLimit = 100;

export interface OutboxMessage {
  event: string;
  payload: unknown;
  queuedAt: number;
  expiresAt: number | null;
}

/** What the adapter puts on the wire for one message. */
export interface TransmitParams {
  event: string;
  payload: unknown;
}

export interface SignalingInput {
  resumeToken?: string | null;
  timings?: Partial<SignalingTimings>;
  /** null = unlimited. */
  maxAttempts?: number | null;
  outboxLimit?: number;
  /** Seed of the jitter PRNG; the adapter fills it from `crypto.getRandomValues`. */
  randomSeed?: number;
}

export type SignalingErrorCode = 'max-attempts' | 'unauthorized';

export interface SignalingError {
  code: SignalingErrorCode;
  /** Reconnect attempts made before giving up. */
  attempts: number;
}

export interface SignalingContext {
  resumeToken: string | null;
  timings: SignalingTimings;
  maxAttempts: number | null;
  outboxLimit: number;
  /** Reconnect attempts made since the connection was lost; 0 while connected. */
  attempts: number;
  /** Delay chosen for the pending retry, jitter included. */
  retryDelayMs: number;
  /** PRNG state (uint32) for the jitter; advanced once per scheduled retry. */
  randomState: number;
  online: boolean;
  outbox: OutboxMessage[];
  /** Messages dropped because the outbox was full. */
  outboxDropped: number;
  /** Messages dropped because their time-to-live ran out before they could be sent. */
  outboxExpired: number;
  lastError: SignalingError | null;
}

export type SignalingEvent =
  | { type: 'connect' }
  | { type: 'disconnect' }
  | { type: 'socket.connected'; at: number }
  | { type: 'socket.closed'; reason: 'clean' | 'transport'; at: number }
  | { type: 'socket.unauthorized' }
  | { type: 'network.online' }
  | { type: 'network.offline' }
  | { type: 'session.ready'; resumeToken: string }
  | { type: 'session.resumed'; at: number }
  | { type: 'session.expired'; at: number }
  | { type: 'send'; event: string; payload: unknown; at: number; ttlMs?: number }
  /** Something suggests the path under the socket died (the call's media stopped arriving). */
  | { type: 'link.suspect' }
  /** The server answered the liveness ping. */
  | { type: 'socket.alive' };

export type SignalingEmitted =
  /** `attempt` is 1-based: the attempt that will run when `delayMs` has passed. */
  | { type: 'reconnect.scheduled'; attempt: number; delayMs: number }
  | { type: 'reconnected'; attempts: number };

function normaliseMaxAttempts(value: number | null | undefined): number | null {
  if (value === undefined || value === null || !Number.isFinite(value)) return null;
  // A limit below one would give up before trying; there is `disconnect` for that.
  return Math.max(1, Math.floor(value));
}

// Declared first so the actions that enqueue `transmit` below see its params type.
const signalingSetup = setup({
  types: {
    context: {} as SignalingContext,
    events: {} as SignalingEvent,
    input: {} as SignalingInput,
    emitted: {} as SignalingEmitted,
  },
  actions: {
    // Effects for the adapter; no-ops here so the machine stays pure.
    /** Open the socket (with identity and resume token in the handshake `auth`). */
    openSocket: () => {},
    /** Close the socket on the user's request. */
    closeSocket: () => {},
    /** The session could not be resumed: the app rejoins from scratch. */
    rejoin: () => {},
    /** Put one message on the wire. */
    transmit: (_, _params: TransmitParams) => {},
    /** Send `session.ping`; its acknowledgement is `socket.alive`. */
    sendLivenessPing: () => {},
    /** Close the socket's transport as a fault, not a clean close, so that it reports `socket.closed`. */
    abandonSocket: () => {},

    queueMessage: assign(({ context, event }) => {
      if (event.type !== 'send') return {};
      const message: OutboxMessage = {
        event: event.event,
        payload: event.payload,
        queuedAt: event.at,
        expiresAt: event.ttlMs === undefined ? null : event.at + event.ttlMs,
      };
      const outbox = [...context.outbox, message];
      const overflow = Math.max(0, outbox.length - context.outboxLimit);
      return { outbox: outbox.slice(overflow), outboxDropped: context.outboxDropped + overflow };
    }),
    storeResumeToken: assign({
      resumeToken: ({ context, event }) => (event.type === 'session.ready' ? event.resumeToken : context.resumeToken),
    }),
    clearResumeToken: assign({ resumeToken: null }),
    markOnline: assign({ online: true }),
    markOffline: assign({ online: false }),
    resetAttempts: assign({ attempts: 0 }),
    clearLastError: assign({ lastError: null }),
    countAttempt: assign({ attempts: ({ context }) => context.attempts + 1 }),
    chooseRetryDelay: assign(({ context }) => {
      const draw = nextRandom(context.randomState);
      return { retryDelayMs: retryDelay(context.attempts, context.timings, draw.value), randomState: draw.state };
    }),
    emitReconnectScheduled: emit(({ context }) => ({
      type: 'reconnect.scheduled' as const,
      attempt: context.attempts + 1,
      delayMs: context.retryDelayMs,
    })),
    emitReconnected: emit(({ context }) => ({ type: 'reconnected' as const, attempts: context.attempts })),
    recordMaxAttemptsError: assign({
      lastError: ({ context }) => ({ code: 'max-attempts' as const, attempts: context.attempts }),
    }),
    recordUnauthorizedError: assign({
      lastError: ({ context }) => ({ code: 'unauthorized' as const, attempts: context.attempts }),
    }),
  },
  guards: {
    closedCleanly: ({ event }) => event.type === 'socket.closed' && event.reason === 'clean',
    isOffline: ({ context }) => !context.online,
    hasResumeToken: ({ context }) => context.resumeToken !== null,
    attemptsExhausted: ({ context }) => context.maxAttempts !== null && context.attempts >= context.maxAttempts,
  },
  delays: {
    retryDelay: ({ context }) => context.retryDelayMs,
    livenessTimeout: ({ context }) => context.timings.livenessTimeout,
  },
});

/** `transmit` once, for the message being sent while ready. */
const transmitNow = signalingSetup.createAction(
  enqueueActions(({ event, enqueue }) => {
    if (event.type !== 'send') return;
    enqueue({ type: 'transmit', params: { event: event.event, payload: event.payload } });
  }),
);

/**
 * `transmit` once per queued message, oldest first, skipping those that expired before the event that
 * made the connection ready; then empties the outbox.
 */
const flushOutbox = signalingSetup.createAction(
  enqueueActions(({ context, event, enqueue }) => {
    if (context.outbox.length === 0) return;
    const now = 'at' in event ? event.at : null;
    let expired = 0;
    for (const message of context.outbox) {
      if (now !== null && message.expiresAt !== null && message.expiresAt < now) {
        expired++;
        continue;
      }
      enqueue({ type: 'transmit', params: { event: message.event, payload: message.payload } });
    }
    enqueue.assign({ outbox: [], outboxExpired: context.outboxExpired + expired });
  }),
);

export const signalingMachine = signalingSetup.extend({ actions: { transmitNow, flushOutbox } }).createMachine({
  id: 'signaling',
  description: 'One client socket: reconnection with jittered backoff, session resume and an outbox.',
  context: ({ input }) => ({
    resumeToken: input.resumeToken ?? null,
    timings: { ...defaultSignalingTimings, ...input.timings },
    maxAttempts: normaliseMaxAttempts(input.maxAttempts),
    outboxLimit: Math.max(0, Math.floor(input.outboxLimit ?? defaultOutboxLimit)),
    attempts: 0,
    retryDelayMs: 0,
    randomState: seedRandom(input.randomSeed ?? 1),
    online: true,
    outbox: [],
    outboxDropped: 0,
    outboxExpired: 0,
    lastError: null,
  }),
  initial: 'idle',
  on: {
    'session.ready': { actions: 'storeResumeToken' },
    'network.online': { actions: 'markOnline' },
    'network.offline': { actions: 'markOffline' },
    send: { actions: 'queueMessage' },
  },
  states: {
    idle: {
      description: 'Not started; messages sent now wait in the outbox.',
      on: {
        connect: { target: 'connecting' },
      },
    },
    connecting: {
      description: 'First connection of this session (or after connect() from disconnected).',
      entry: 'openSocket',
      on: {
        'socket.connected': { target: 'connected', actions: ['resetAttempts', 'clearLastError'] },
        'socket.closed': [
          { guard: 'closedCleanly', target: 'disconnected' },
          { guard: 'isOffline', target: 'reconnecting.offline' },
          { target: 'reconnecting.waiting' },
        ],
        'socket.unauthorized': { target: 'unauthorized', actions: 'recordUnauthorizedError' },
        disconnect: { target: 'disconnected', actions: 'closeSocket' },
      },
    },
    connected: {
      description: 'The socket is up.',
      initial: 'ready',
      on: {
        'socket.closed': [
          { guard: 'closedCleanly', target: 'disconnected' },
          { guard: 'isOffline', target: 'reconnecting.offline' },
          { target: 'reconnecting.waiting' },
        ],
        disconnect: { target: 'disconnected', actions: 'closeSocket' },
      },
      states: {
        resuming: {
          // Nothing is sent on entry: the token went in the handshake, and a `session.resume` as well would
          // make the server take the session up twice (join the rooms, announce the leg, re-send a ring).
          description:
            'Reconnected with the resume token in the handshake (openSocket puts it there); waiting for the server to resume or expire the session.',
          on: {
            'session.resumed': { target: 'ready' },
            'session.expired': { target: 'ready', actions: ['clearResumeToken', 'rejoin'] },
          },
        },
        ready: {
          description: 'The session is up: messages go out, unless the socket is under suspicion.',
          initial: 'trusted',
          states: {
            trusted: {
              description: 'Nothing suggests the socket is dead: messages go straight out; the outbox was flushed on entry.',
              entry: 'flushOutbox',
              on: {
                send: { actions: 'transmitNow' },
                'link.suspect': { target: 'checking' },
              },
            },
            checking: {
              description:
                'The path may have died under the socket, which would go on looking connected; a ping must come back within livenessTimeout. Messages wait in the outbox meanwhile: on a dead socket they would be lost without a word.',
              entry: 'sendLivenessPing',
              after: {
                livenessTimeout: { target: '#signaling.abandoning' },
              },
              on: {
                'socket.alive': { target: 'trusted' },
              },
            },
          },
        },
      },
    },
    abandoning: {
      description:
        'The socket did not answer its ping: it is closed and opened again at once, from whatever address the device has now. No backoff: the server answers others, only this path is gone.',
      entry: 'abandonSocket',
      on: {
        'socket.closed': [{ guard: 'closedCleanly', target: 'disconnected' }, { target: 'reconnecting.connecting' }],
        disconnect: { target: 'disconnected', actions: 'closeSocket' },
      },
    },
    reconnecting: {
      description: 'The connection was lost; retrying with exponential backoff and jitter.',
      // Every transition into reconnecting names its substate (offline or waiting); this is only a fallback.
      initial: 'waiting',
      on: {
        disconnect: { target: 'disconnected', actions: 'closeSocket' },
      },
      states: {
        waiting: {
          description: 'Waiting out the backoff delay before the next attempt.',
          entry: ['chooseRetryDelay', 'emitReconnectScheduled'],
          after: {
            retryDelay: { target: 'connecting' },
          },
          on: {
            'network.online': { target: 'connecting', actions: 'markOnline' },
            'network.offline': { target: 'offline', actions: 'markOffline' },
          },
        },
        offline: {
          description: 'The device is offline; no attempt is made until it is back.',
          on: {
            'network.online': { target: 'connecting', actions: 'markOnline' },
          },
        },
        connecting: {
          description: 'One reconnect attempt in progress.',
          entry: ['countAttempt', 'openSocket'],
          on: {
            'socket.connected': [
              {
                guard: 'hasResumeToken',
                target: '#signaling.connected.resuming',
                actions: ['emitReconnected', 'resetAttempts', 'clearLastError'],
              },
              { target: '#signaling.connected.ready', actions: ['emitReconnected', 'resetAttempts', 'clearLastError'] },
            ],
            'socket.closed': [
              { guard: 'closedCleanly', target: '#signaling.disconnected' },
              { guard: 'attemptsExhausted', target: '#signaling.disconnected', actions: 'recordMaxAttemptsError' },
              { guard: 'isOffline', target: 'offline' },
              { target: 'waiting' },
            ],
            'socket.unauthorized': { target: '#signaling.unauthorized', actions: 'recordUnauthorizedError' },
          },
        },
      },
    },
    disconnected: {
      description: 'Closed on purpose (by the server or by disconnect()) or gave up; connect() starts again.',
      on: {
        connect: { target: 'connecting', actions: 'resetAttempts' },
      },
    },
    unauthorized: {
      description: 'The server rejected the credentials; retrying would not help.',
      type: 'final',
    },
  },
});

export type SignalingMachine = typeof signalingMachine;
