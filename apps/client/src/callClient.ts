/**
 * What the visitor's and the agent's clients share once each has wired its own call actor: the relayed
 * signaling goes to the media, and the same start and stop order for the actors, the socket and the media.
 */
import type { AnyActorRef } from 'xstate';
import type { CallMedia, CallStreams } from './callMedia.ts';
import type { Connection, SignalingActor } from './connection.ts';
import type { Unsubscribe } from './on.ts';
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

/**
 * The server's word on the other person's socket, as the call machine's `peer.away` / `peer.back`: from
 * every `call.paused` (sent on each change of its legs), from `call.resumed`, and from a relay the server
 * refused because nobody was there to receive it.
 */
export function followPeer(
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

/** Relayed offers, answers, restart offers and candidates belong to the media session of their call. */
export function relayToMedia(media: CallMedia): Pick<ServerEventHandlers, 'signal.offer' | 'signal.iceRestart' | 'signal.answer' | 'signal.candidate'> {
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
