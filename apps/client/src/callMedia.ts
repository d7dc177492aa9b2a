/**
 * The media side of a call client, shared by the visitor and the agent: it opens a media session once
 * the call machine asked for media (`startMedia`) and the server accepted the call with its ICE
 * servers, whichever comes first, routes relayed signaling to it, reports the media child's state, and
 * publishes the streams for the UI.
 *
 * The media session's code (the RTCPeerConnection adapter, the probes) is a module of its own, fetched when
 * a call is first asked for: a page that never calls never downloads it. What the other side relays while
 * it loads waits for it, in order.
 */
import type { ActorRefFrom, AnyActorRef } from 'xstate';
import { peerConnectionMachine, type PeerConnectionMachine } from '@callchart/machines';
import type { Connection } from './connection.ts';
import { ClientError, type ErrorListener } from './errors.ts';
import type { CallAccepted, MediaSession, RelayedSignal, RtcEnvironment } from './mediaSession.ts';
import { reportMedia, type MediaReporter } from './mediaReports.ts';
import type { Unsubscribe } from './on.ts';

/** What both call machines' snapshots have in common, as far as media goes. */
interface CallSnapshotLike {
  context: { callId: string | null };
  children: { media?: ActorRefFrom<PeerConnectionMachine> | undefined };
}

export interface CallMediaOptions {
  rtc: RtcEnvironment;
  connection: Connection;
  onError: ErrorListener;
  constraints?: MediaStreamConstraints;
}

export interface CallStreams {
  readonly localStream: MediaStream | null;
  readonly remoteStream: MediaStream | null;
  /** For `useSyncExternalStore`: called whenever either stream changes. */
  subscribeStreams(listener: () => void): Unsubscribe;
  /** The current call's connection, for developer tools and tests (`getStats()`); null between calls. */
  readonly peerConnection: RTCPeerConnection | null;
}

export interface CallMedia extends CallStreams {
  /** The call machine's child, with its effects bound to whichever connection is current. */
  readonly peerConnectionMachine: PeerConnectionMachine;
  /** Binds the call actor: its `ice.*` events, its callId and its media child. */
  attach(call: AnyActorRef & { getSnapshot(): CallSnapshotLike }): Unsubscribe;
  /** The server accepted a call; `call` must already have been sent its `call.accepted`. */
  accepted(payload: CallAccepted): void;
  /** Fetches the media session's code ahead of need, when a call is asked for. */
  preload(): void;
  /** The call machine's `startMedia`. */
  start(): void;
  /** The call machine's `stopMedia`. */
  stop(): void;
  setMuted(muted: boolean): void;
  /** Reports the media state of `callId` again, if it is the call in progress (after a resume). */
  reportState(callId: string): void;
  receive(message: RelayedSignal): void;
  readonly session: MediaSession | null;
}

export function createCallMedia(options: CallMediaOptions): CallMedia {
  const { connection, onError } = options;
  let call: (AnyActorRef & { getSnapshot(): CallSnapshotLike }) | null = null;
  let offer: CallAccepted | null = null;
  let wanted = false;
  let session: MediaSession | null = null;
  let loading: Promise<typeof import('./mediaSession.ts')> | null = null;
  // Relayed signaling for the accepted call that arrived while the session's code was still loading.
  let pending: RelayedSignal[] = [];
  let muted = false;
  let reporter: { callId: string; reporter: MediaReporter } | null = null;
  const streamListeners = new Set<() => void>();
  const notifyStreams = () => {
    for (const listener of streamListeners) listener();
  };

  const load = () => {
    // A failed fetch is forgotten, so the next call tries again: the click that preloads may come while
    // the server is down, and the call it asked for is accepted once the server is back.
    loading ??= import('./mediaSession.ts').catch((error: unknown) => {
      loading = null;
      throw error;
    });
    return loading;
  };

  const open = () => {
    if (!wanted || !offer || session || !call) return;
    // A `call.accepted` the machine did not take (a stale one, or one for a call it already left) must
    // not open a connection for a call this side is not in.
    if (call.getSnapshot().context.callId !== offer.callId) return;
    const accepted = offer;
    load().then(
      ({ startMediaSession }) => {
        // The call may have ended, or another begun, while the code loaded.
        if (offer === accepted && wanted && !session && call) openSession(startMediaSession, call, accepted);
      },
      (cause: unknown) => {
        if (offer !== accepted) return;
        // As when the camera cannot be had: the call machine's connect timeout ends the attempt.
        onError(new ClientError('media-unavailable', 'The call could not be started: part of the call software did not load.', { cause }));
      },
    );
  };

  const openSession = (startMediaSession: typeof import('./mediaSession.ts').startMediaSession, target: AnyActorRef, accepted: CallAccepted) => {
    session = startMediaSession({
      rtc: options.rtc,
      accepted,
      signal: (message) => connection.sendMessage(message),
      deliver: (event) => target.send(event),
      onStreams: notifyStreams,
      onError,
      ...(options.constraints ? { constraints: options.constraints } : {}),
    });
    session.setMuted(muted);
    for (const message of pending.splice(0)) if (message.payload.callId === session.callId) session.receive(message);
  };

  const machine = peerConnectionMachine.provide({
    actions: {
      rollbackLocalOffer: () => session?.effects.rollbackLocalOffer(),
      restartIce: () => session?.effects.restartIce(),
      sendRestartOffer: () => session?.effects.sendRestartOffer(),
      resendRestartOffer: () => session?.effects.resendRestartOffer(),
      sendRestartRequest: () => session?.effects.sendRestartRequest(),
      startMediaProbe: () => session?.effects.startMediaProbe(),
      probeMedia: () => session?.effects.probeMedia(),
      checkSignaling: () => connection.actor.send({ type: 'link.suspect' }),
    },
  });

  return {
    peerConnectionMachine: machine,
    attach(actor) {
      call = actor;
      let media: unknown = undefined;
      const follow = (snapshot: CallSnapshotLike) => {
        const child = snapshot.children.media;
        if (child === media) return;
        media = child;
        reporter?.reporter.stop();
        reporter = null;
        const callId = snapshot.context.callId;
        if (child && callId) {
          reporter = { callId, reporter: reportMedia(child, callId, (message) => connection.sendMessage(message)) };
        }
      };
      const subscription = actor.subscribe(follow);
      return () => {
        subscription.unsubscribe();
        reporter?.reporter.stop();
        reporter = null;
        call = null;
      };
    },
    accepted(payload) {
      offer = payload;
      open();
    },
    preload() {
      load().catch(() => {
        // Reported when a call needs it, by `open`.
      });
    },
    start() {
      wanted = true;
      open();
    },
    stop() {
      wanted = false;
      offer = null;
      pending = [];
      muted = false;
      session?.close();
      session = null;
    },
    setMuted(value) {
      muted = value;
      session?.setMuted(value);
    },
    reportState(callId) {
      if (reporter?.callId === callId) reporter.reporter.reportState();
    },
    receive(message) {
      if (session) {
        if (message.payload.callId === session.callId) session.receive(message);
      } else if (wanted && offer && message.payload.callId === offer.callId) {
        pending.push(message);
      }
    },
    get session() {
      return session;
    },
    get localStream() {
      return session?.localStream() ?? null;
    },
    get remoteStream() {
      return session?.remoteStream() ?? null;
    },
    get peerConnection() {
      return session?.pc ?? null;
    },
    subscribeStreams(listener) {
      streamListeners.add(listener);
      return () => streamListeners.delete(listener);
    },
  };
}
