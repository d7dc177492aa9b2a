/**
 * What the visitor's and the agent's clients share once each has wired its own call actor: the relayed
 * signaling goes to the media, and the same start and stop order for the actors, the socket and the media.
 */
import type { AnyActorRef } from 'xstate';
import { createCallMedia, type CallMedia, type CallStreams } from './callMedia.ts';
import { createConnection, type Connection, type ConnectionOptions, type SignalingActor } from './connection.ts';
import { errorRelay, type ErrorRelay } from './events.ts';
import type { RtcEnvironment } from './mediaSession.ts';
import { all, type Unsubscribe } from './on.ts';
import type { ServerEventHandlers } from './serverEvents.ts';
import type { CallLeg } from '@callchart/machines';

export interface CallClient<A extends AnyActorRef> extends CallStreams {
  readonly call: A;
  readonly signaling: SignalingActor;
  /**
   * Closes the call's connection and the socket, and stops both actors. It does not hang up: to the
   * server this is a lost socket, and it holds the call for the reconnection timeout. Send `hangup` first.
   */
  stop(): void;
}

export interface CallLegOptions extends ConnectionOptions {
  rtc: RtcEnvironment;
  constraints?: MediaStreamConstraints;
}

/** What a call client is built on: its errors, its socket, and the media of its calls. */
export function createCallLeg(options: CallLegOptions): { errors: ErrorRelay; connection: Connection; media: CallMedia } {
  const errors = errorRelay(options.onError);
  const onError = errors.report;
  const connection = createConnection({ ...options, onError });
  const media = createCallMedia({ rtc: options.rtc, connection, onError, ...(options.constraints ? { constraints: options.constraints } : {}) });
  return { errors, connection, media };
}

/** The adapter's side of the effects both call machines name for the leg (machines/src/callLeg.ts). */
export function callLegEffects(connection: Connection, media: CallMedia) {
  return {
    sendHangup: ({ context }: { context: { callId: string | null } }) => {
      if (context.callId) connection.send('call.hangup', { callId: context.callId });
    },
    startMedia: () => media.start(),
    stopMedia: () => media.stop(),
    reportMediaState: ({ context }: { context: { callId: string | null } }) => {
      if (context.callId) media.reportState(context.callId);
    },
  };
}

/**
 * The server's word on the other person's socket, as the call machine's `peer.away` / `peer.back`: from
 * every `call.paused` (sent on each change of its legs), from `call.resumed`, and from a relay the server
 * refused because nobody was there to receive it.
 */
function followPeer(
  call: AnyActorRef,
  connection: Connection,
  peerLeg: CallLeg,
  ownsCall: (callId: string) => boolean,
): { handlers: Pick<ServerEventHandlers, 'call.paused' | 'call.resumed'>; unbind: Unsubscribe } {
  return {
    handlers: {
      'call.paused': ({ callId, legs }) => {
        if (ownsCall(callId)) call.send({ type: legs[peerLeg].socket === 'down' ? 'peer.away' : 'peer.back' });
      },
      'call.resumed': ({ callId }) => {
        if (ownsCall(callId)) call.send({ type: 'peer.back' });
      },
    },
    unbind: connection.onReply((_event, payload, ack) => {
      const callId = (payload as { callId?: unknown }).callId;
      if (!ack.ok && ack.error.code === 'peer-unavailable' && typeof callId === 'string' && ownsCall(callId)) call.send({ type: 'peer.away' });
    }),
  };
}

/**
 * What both clients wire alike once their call actor exists: the media follows the actor's call, the
 * server's word on the other person and the relayed signaling reach it, and a session the server lost
 * ends whatever the actor had.
 */
export function followCall(
  call: Parameters<CallMedia['attach']>[0],
  connection: Connection,
  media: CallMedia,
  peerLeg: CallLeg,
): { ownsCall: (callId: string) => boolean; handlers: ReturnType<typeof followPeer>['handlers'] & ReturnType<typeof relayToMedia>; unbind: Unsubscribe } {
  const ownsCall = (id: string) => call.getSnapshot().context.callId === id;
  const peer = followPeer(call, connection, peerLeg, ownsCall);
  return {
    ownsCall,
    handlers: { ...peer.handlers, ...relayToMedia(media) },
    unbind: all([peer.unbind, media.attach(call), connection.onRejoin(() => call.send({ type: 'session.lost' }))]),
  };
}

/** Relayed offers, answers, restart offers and candidates belong to the media session of their call. */
function relayToMedia(media: CallMedia): Pick<ServerEventHandlers, 'signal.offer' | 'signal.iceRestart' | 'signal.answer' | 'signal.candidate'> {
  return {
    'signal.offer': (payload) => media.receive({ event: 'signal.offer', payload }),
    'signal.iceRestart': (payload) => media.receive({ event: 'signal.iceRestart', payload }),
    'signal.answer': (payload) => media.receive({ event: 'signal.answer', payload }),
    'signal.candidate': (payload) => media.receive({ event: 'signal.candidate', payload }),
  };
}

/** Starts the call actor before the socket, so no server event arrives before the actor can take it. */
export function startCallClient<A extends AnyActorRef>(call: A, connection: Connection, media: CallMedia, unbind: Unsubscribe): CallClient<A> {
  call.start();
  const unforward = connection.forwardSignalState(call);
  const unnetwork = connection.forwardNetwork(call);
  connection.start();
  return {
    call,
    signaling: connection.actor,
    get localStream() {
      return media.localStream;
    },
    get remoteStream() {
      return media.remoteStream;
    },
    get peerConnection() {
      return media.peerConnection;
    },
    subscribeStreams: (listener) => media.subscribeStreams(listener),
    stop() {
      unnetwork();
      unforward();
      unbind();
      call.stop();
      media.stop();
      connection.stop();
    },
  };
}
