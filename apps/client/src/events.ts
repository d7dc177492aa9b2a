/**
 * The typed `on(event, listener)` of the visitor's and the agent's clients. Every event is read off the
 * actors the client already has: a status computed from the call actor's, its media child's and the
 * signaling actor's snapshots, the call snapshot itself, the end of a call as the call machine records
 * it, the streams of the media session, and the errors the adapters report. Nothing here decides
 * anything; it only tells listeners when what the machines say has changed.
 */
import type { Actor, AnyActorRef, AnyStateMachine, SnapshotFrom, StateValue } from 'xstate';
import type { CallClient } from './callClient.ts';
import type { SignalingActor } from './connection.ts';
import type { ClientError, ErrorListener } from './errors.ts';
import type { Unsubscribe } from './on.ts';

/** The events both clients emit, each with its payload. */
export interface CallClientEventMap<Snapshot, Status, End> {
  /** What the client shows, whenever any part of it changes (see the client's `status`). */
  status: Status;
  /** Every new snapshot of the call actor. */
  state: Snapshot;
  /** The camera and microphone stream, once opened; null when the call's media is closed. */
  localStream: MediaStream | null;
  /** The other person's stream, once it arrives; null when the call's media is closed. */
  remoteStream: MediaStream | null;
  /** Something went wrong that the machines recover from; the client goes on. */
  error: ClientError;
  /** A request or call is over, as the call machine recorded it. */
  ended: End;
}

export interface ClientEvents<M> {
  /** Calls `listener` for every `event` from now on; returns the function that stops it. */
  on<E extends keyof M>(event: E, listener: (payload: M[E]) => void): Unsubscribe;
}

/** The top-level state of a state value: `'inCall'` for `{ inCall: { media: ..., peer: ... } }`. */
export type TopLevelState<V> = V extends string ? V : keyof V & string;

export function topLevelState<V extends StateValue>(value: V): TopLevelState<V> {
  return (typeof value === 'string' ? value : Object.keys(value)[0]) as TopLevelState<V>;
}

type Listeners<M> = { [E in keyof M]?: Set<(payload: M[E]) => void> };

interface Emitter<M> extends ClientEvents<M> {
  emit<E extends keyof M>(event: E, payload: M[E]): void;
  clear(): void;
}

function createEmitter<M>(): Emitter<M> {
  let listeners: Listeners<M> = {};
  return {
    on(event, listener) {
      const set = (listeners[event] ??= new Set());
      // Wrapped, so that the same function added twice is called twice and removed once per unsubscribe.
      const entry = (payload: M[typeof event]) => listener(payload);
      set.add(entry);
      return () => {
        set.delete(entry);
      };
    },
    emit(event, payload) {
      for (const listener of [...(listeners[event] ?? [])]) {
        try {
          listener(payload);
        } catch (error) {
          // A listener that throws must not keep the others, or the client's own bookkeeping, from
          // running; its error still reaches the page's error reporting, as an event target's would.
          queueMicrotask(() => {
            throw error;
          });
        }
      }
    },
    clear() {
      listeners = {};
    },
  };
}

/**
 * The client's `onError`, fanned out: to the `onError` option, which also sees what is reported while
 * the client is being created, and to the `error` listeners.
 */
export interface ErrorRelay {
  readonly report: ErrorListener;
  subscribe(listener: ErrorListener): Unsubscribe;
}

export function errorRelay(first?: ErrorListener): ErrorRelay {
  const listeners = new Set<ErrorListener>();
  return {
    report(error) {
      first?.(error);
      for (const listener of [...listeners]) listener(error);
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

/** What both call machines' snapshots have: the media child while a call runs. */
interface CallSnapshotLike {
  children: { media?: AnyActorRef | undefined };
}

export interface CallEventReaders<Snapshot, Status, End> {
  status(call: Snapshot, signaling: SnapshotFrom<SignalingActor>): Status;
  /** The request or call that ended between two consecutive snapshots, if one did. */
  ended(previous: Snapshot, current: Snapshot): End | null;
}

export type CallClientWithEvents<A extends AnyActorRef, Status, End> = CallClient<A> &
  ClientEvents<CallClientEventMap<SnapshotFrom<A>, Status, End>> & {
    /** The status now; `on('status', ...)` tells each change. */
    readonly status: Status;
  };

/**
 * Adds `on` and `status` to a started client, and makes its `stop()` end every subscription: no event
 * is emitted once `stop()` has been called.
 */
export function withCallEvents<M extends AnyStateMachine, Status, End>(
  client: CallClient<Actor<M>>,
  errors: ErrorRelay,
  readers: CallEventReaders<SnapshotFrom<M>, Status, End>,
): CallClientWithEvents<Actor<M>, Status, End> {
  type Snapshot = SnapshotFrom<M>;
  const emitter = createEmitter<CallClientEventMap<Snapshot, Status, End>>();
  const statusNow = () => readers.status(client.call.getSnapshot(), client.signaling.getSnapshot());

  let status = statusNow();
  const updateStatus = () => {
    const next = statusNow();
    if (sameJson(next, status)) return;
    status = next;
    emitter.emit('status', next);
  };

  // The media child's snapshot changes without the call's changing, and the status reads it.
  let media: AnyActorRef | undefined;
  let mediaSubscription: { unsubscribe(): void } | undefined;
  const followMedia = (snapshot: Snapshot) => {
    const child = (snapshot as CallSnapshotLike).children.media;
    if (child === media) return;
    mediaSubscription?.unsubscribe();
    media = child;
    mediaSubscription = child?.subscribe(updateStatus);
  };

  let snapshot: Snapshot = client.call.getSnapshot();
  followMedia(snapshot);
  const callSubscription = client.call.subscribe((next: Snapshot) => {
    if (next === snapshot) return;
    const previous = snapshot;
    snapshot = next;
    followMedia(next);
    emitter.emit('state', next);
    updateStatus();
    const end = readers.ended(previous, next);
    if (end !== null) emitter.emit('ended', end);
  });
  const signalingSubscription = client.signaling.subscribe(updateStatus);

  let localStream = client.localStream;
  let remoteStream = client.remoteStream;
  const unstreams = client.subscribeStreams(() => {
    if (client.localStream !== localStream) {
      localStream = client.localStream;
      emitter.emit('localStream', localStream);
    }
    if (client.remoteStream !== remoteStream) {
      remoteStream = client.remoteStream;
      emitter.emit('remoteStream', remoteStream);
    }
  });
  const unerrors = errors.subscribe((error) => emitter.emit('error', error));

  const stop = client.stop;
  return Object.defineProperties(client, {
    on: { value: emitter.on, enumerable: true },
    status: { get: statusNow, enumerable: true },
    stop: {
      value: () => {
        unerrors();
        unstreams();
        signalingSubscription.unsubscribe();
        callSubscription.unsubscribe();
        mediaSubscription?.unsubscribe();
        emitter.clear();
        stop();
      },
      enumerable: true,
    },
  }) as CallClientWithEvents<Actor<M>, Status, End>;
}

// Statuses are plain data built by the same function each time, so their JSON is the same when they are.
function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
