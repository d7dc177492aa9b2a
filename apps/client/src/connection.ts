/**
 * The signaling half every client has: one socket, its signaling actor, and the one way out to the
 * server, the actor's `send` event, so every message goes through the outbox and survives a lost socket.
 */
import { io, type ManagerOptions, type Socket, type SocketOptions } from 'socket.io-client';
import { createActor, type Actor, type AnyActorRef, type InspectionEvent, type Observer } from 'xstate';
import type { Ack, ClientEventName, ClientMessage, ClientPayload, SignalingMachine, SignalingTimings } from '@callchart/machines';
import type { ErrorListener } from './errors.ts';
import { all, listen, on, type Unsubscribe } from './on.ts';
import { combineInspectors, createInspectionReporter, type InspectionTarget } from './inspectionReport.ts';
import { onServerEvents, type ServerEventHandlers } from './serverEvents.ts';
import { bindSignaling, randomSeed, signalingMachineFor } from './signaling.adapter.ts';

export type SignalingActor = Actor<SignalingMachine>;
export type ReplyListener = (event: ClientEventName, payload: unknown, ack: Ack<object>) => void;

export interface ConnectionOptions {
  url: string;
  /** The agent's JWT or the visitor's session token. */
  token: string;
  /** Receives the inspection events of the client's actors (the live inspector, tests). */
  inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
  /** `window` in a browser; defaults to it when there is one. */
  network?: EventTarget;
  signaling?: { timings?: Partial<SignalingTimings>; maxAttempts?: number | null; outboxLimit?: number };
  /** Transport options for socket.io-client; reconnection and autoConnect always stay off. */
  socketOptions?: Partial<ManagerOptions & SocketOptions>;
  onError?: ErrorListener;
  /** The server no longer knew this session after a reconnect; called after the machines were told. */
  onRejoin?: () => void;
}

export interface Connection {
  readonly actor: SignalingActor;
  /** The inspect observer for the client's other actors: the caller's `inspect` and the live-inspector report. */
  readonly inspect: (event: InspectionEvent) => void;
  /** Which request the live-inspector report files this client's transitions under. */
  reportInspectionFor(target: () => InspectionTarget | null): void;
  /** Queues one message in the outbox; it goes out at once while the session is ready. */
  send<E extends ClientEventName>(event: E, payload: ClientPayload<E>): void;
  /** `send` for a message whose kind is one of several, as the media session's signals are. */
  sendMessage(message: ClientMessage): void;
  onServerEvents(handlers: ServerEventHandlers): Unsubscribe;
  /** Tells `target` `signal.up` / `signal.down` whenever the session becomes ready or stops being ready. */
  forwardSignalState(target: AnyActorRef): Unsubscribe;
  /**
   * Tells `target` the browser's `network.online` and `network.offline`: offline is known at once, long
   * before ICE consent or the socket's pings notice, and online means the path may be back (or new).
   */
  forwardNetwork(target: AnyActorRef): Unsubscribe;
  /** Every valid acknowledgement of a message this client sent. */
  onReply(listener: ReplyListener): Unsubscribe;
  onRejoin(listener: () => void): Unsubscribe;
  start(): void;
  stop(): void;
}

function defaultNetwork(): EventTarget | undefined {
  return typeof window === 'undefined' ? undefined : window;
}

export function createConnection(options: ConnectionOptions): Connection {
  const onError: ErrorListener = options.onError ?? (() => {});
  const socket: Socket = io(options.url, {
    // websocket only: no sticky sessions needed once the server runs as more than one process.
    transports: ['websocket'],
    forceNew: true,
    ...options.socketOptions,
    reconnection: false,
    autoConnect: false,
  });
  const replyListeners = new Set<ReplyListener>();
  const rejoinListeners = new Set<() => void>();
  const machine = signalingMachineFor(socket, {
    token: options.token,
    onError,
    onReply: (event, payload, ack) => {
      for (const listener of replyListeners) listener(event, payload, ack);
    },
    onRejoin: () => {
      for (const listener of rejoinListeners) listener();
      options.onRejoin?.();
    },
  });
  const reporter = createInspectionReporter({
    emit: (payload) => {
      // The ack is only there so that a refusal comes back as a reply rather than an `error` event.
      if (socket.connected) socket.emit('inspect.client', payload, () => {});
    },
  });
  const inspect = combineInspectors(options.inspect, reporter.inspect);
  const actor = createActor(machine, {
    input: {
      timings: options.signaling?.timings,
      maxAttempts: options.signaling?.maxAttempts,
      outboxLimit: options.signaling?.outboxLimit,
      randomSeed: randomSeed(),
    },
    inspect,
  });
  const network = options.network ?? defaultNetwork();
  const unbind = bindSignaling(socket, (event) => actor.send(event), { onError, ...(network ? { network } : {}) });
  const subscriptions: Unsubscribe[] = [
    // Every session says afresh whether the server takes reports: it may have restarted with another setting.
    onServerEvents(socket, { 'session.ready': (ready) => reporter.setEnabled(ready.inspect === true) }, onError),
    on(socket, 'disconnect', () => reporter.setEnabled(false)),
    () => reporter.stop(),
  ];

  return {
    actor,
    inspect,
    reportInspectionFor: (target) => reporter.setTargetSource(target),
    send(event, payload) {
      actor.send({ type: 'send', event, payload, at: Date.now() });
    },
    sendMessage({ event, payload }) {
      actor.send({ type: 'send', event, payload, at: Date.now() });
    },
    onServerEvents(handlers) {
      const unsubscribe = onServerEvents(socket, handlers, onError);
      subscriptions.push(unsubscribe);
      return unsubscribe;
    },
    forwardSignalState(target) {
      // The call machines start out believing signaling is up; the first snapshot corrects that.
      let up = true;
      const forward = (ready: boolean) => {
        if (ready === up) return;
        up = ready;
        target.send({ type: ready ? 'signal.up' : 'signal.down' });
      };
      forward(actor.getSnapshot().matches({ connected: 'ready' }));
      const subscription = actor.subscribe((snapshot) => forward(snapshot.matches({ connected: 'ready' })));
      const unsubscribe = () => subscription.unsubscribe();
      subscriptions.push(unsubscribe);
      return unsubscribe;
    },
    forwardNetwork(target) {
      if (!network) return () => {};
      const unsubscribe = all([
        listen(network, 'online', () => target.send({ type: 'network.online', at: Date.now() })),
        listen(network, 'offline', () => target.send({ type: 'network.offline', at: Date.now() })),
      ]);
      subscriptions.push(unsubscribe);
      return unsubscribe;
    },
    onReply(listener) {
      replyListeners.add(listener);
      return () => replyListeners.delete(listener);
    },
    onRejoin(listener) {
      rejoinListeners.add(listener);
      return () => rejoinListeners.delete(listener);
    },
    start() {
      actor.start();
      actor.send({ type: 'connect' });
    },
    stop() {
      // `unauthorized` is final: there is nothing left to close.
      if (actor.getSnapshot().status === 'active') actor.send({ type: 'disconnect' });
      all(subscriptions)();
      unbind();
      actor.stop();
      socket.disconnect();
    },
  };
}
