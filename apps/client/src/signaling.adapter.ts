/**
 * Binds one socket.io-client Socket to the signaling machine. The socket is created with
 * `reconnection: false` and `autoConnect: false`, because reconnecting, backing off and resuming are
 * the machine's decisions: the socket only reports what happened and does what it is told.
 */
import type { Socket } from 'socket.io-client';
import type { Ack, ClientEventName, SignalingEvent } from '@callchart/machines';
import { parseClientAck, signalingMachine } from '@callchart/machines';
import type { ErrorListener } from './errors.ts';
import { ClientError } from './errors.ts';
import { all, listen, on, onAny, type Unsubscribe } from './on.ts';
import { onServerEvents } from './serverEvents.ts';

// Only these two are someone's decision to close; every other reason ('transport close', 'ping
// timeout', ...) is a fault the machine recovers from.
const CLEAN_REASONS = new Set<string>(['io client disconnect', 'io server disconnect']);
// The server refused who this is, or where it came from: trying again would be refused the same way.
const REFUSALS = new Set<string>(['unauthorized', 'origin-not-allowed']);

export interface SignalingBindingOptions {
  /** `window` in a browser; anything that dispatches `online` and `offline`. */
  network?: EventTarget;
  onError: ErrorListener;
  now?: () => number;
}

/** Sends the machine the socket's, the server's session and the network's facts. */
export function bindSignaling(socket: Socket, send: (event: SignalingEvent) => void, options: SignalingBindingOptions): Unsubscribe {
  const now = options.now ?? Date.now;
  const subscriptions = [
    on(socket, 'connect', () => send({ type: 'socket.connected', at: now() })),
    on(socket, 'disconnect', (reason: string) =>
      send({ type: 'socket.closed', reason: CLEAN_REASONS.has(reason) ? 'clean' : 'transport', at: now() }),
    ),
    on(socket, 'connect_error', (error: Error) =>
      send(REFUSALS.has(error.message) ? { type: 'socket.unauthorized' } : { type: 'socket.closed', reason: 'transport', at: now() }),
    ),
    // The server asks for a receipt of what it relays when a path broke: a socket that gives none is dead.
    onAny(socket, (...args: unknown[]) => {
      const ack = args.at(-1);
      if (args.length > 1 && typeof ack === 'function') (ack as (reply: { ok: true }) => void)({ ok: true });
    }),
    onServerEvents(
      socket,
      {
        'session.ready': ({ resumeToken }) => send({ type: 'session.ready', resumeToken }),
        'session.resumed': () => send({ type: 'session.resumed', at: now() }),
        'session.expired': () => send({ type: 'session.expired', at: now() }),
      },
      options.onError,
    ),
  ];
  if (options.network) {
    subscriptions.push(
      listen(options.network, 'online', () => send({ type: 'network.online' })),
      listen(options.network, 'offline', () => send({ type: 'network.offline' })),
    );
  }
  return all(subscriptions);
}

export interface SignalingEffectOptions {
  /** The identity token, sent in the handshake with the resume token. */
  token: string;
  /** The session could not be resumed: the app starts over (DESIGN §2, signaling). */
  onRejoin: () => void;
  /** Every valid acknowledgement; `ok: false` ones are also reported through `onError`. */
  onReply?: (event: ClientEventName, payload: unknown, ack: Ack<object>) => void;
  onError: ErrorListener;
}

/** The signaling machine with its named effects bound to `socket`. */
export function signalingMachineFor(socket: Socket, options: SignalingEffectOptions): typeof signalingMachine {
  return signalingMachine.provide({
    actions: {
      openSocket: ({ context }) => {
        // In the handshake, not as a first message: emits queued before the `connect` handlers run could
        // overtake it, and the server answers `session.resumed` or `session.expired` to it on connect.
        socket.auth = context.resumeToken ? { token: options.token, resumeToken: context.resumeToken } : { token: options.token };
        socket.connect();
      },
      closeSocket: () => {
        socket.disconnect();
      },
      rejoin: () => options.onRejoin(),
      // Straight on the socket, not through the outbox: it asks about this socket, not the session.
      sendLivenessPing: ({ self }) => {
        socket.emit('session.ping', {}, () => self.send({ type: 'socket.alive' }));
      },
      // The engine's own close is reported as a fault ('forced close'), so the machine reconnects; the
      // socket's disconnect() would be a clean close and end the session.
      abandonSocket: () => {
        socket.io.engine?.close();
      },
      transmit: (_, { event, payload }) => {
        socket.emit(event, payload, (reply: unknown) => {
          const parsed = parseClientAck(event as ClientEventName, reply);
          if (!parsed.ok) {
            options.onError(new ClientError('invalid-server-event', 'The server sent a reply this client cannot read.', { event, protocolError: parsed.error }));
            return;
          }
          if (!parsed.ack.ok && !reportOnEndedCall(event as ClientEventName, parsed.ack.error)) {
            options.onError(new ClientError('request-rejected', parsed.ack.error.message, { event, protocolError: parsed.ack.error }));
          }
          options.onReply?.(event as ClientEventName, payload, parsed.ack);
        });
      },
    },
  });
}

/**
 * A media report or telemetry about a call the server has just ended: the report raced the call's end (the
 * peer hung up while this side's connection changed), and the `call.ended` already sent settles it. Nothing
 * went wrong that anyone should be told about.
 */
function reportOnEndedCall(event: ClientEventName, error: { code: string }): boolean {
  return error.code === 'not-found' && (event === 'call.media' || event === 'call.telemetry');
}

/** Seed of the machine's jitter PRNG; distinct per client, so clients cut off together spread out. */
export function randomSeed(source: Pick<Crypto, 'getRandomValues'> = globalThis.crypto): number {
  return source.getRandomValues(new Uint32Array(1))[0] ?? 0;
}
