/**
 * What the visitor's and the agent's clients share once each has wired its own call actor: the relayed
 * signaling goes to the media, and the same start and stop order for the actors, the socket and the media.
 */
import type { AnyActorRef } from 'xstate';
import type { CallMedia, CallStreams } from './callMedia.ts';
import type { Connection, SignalingActor } from './connection.ts';
import type { Unsubscribe } from './on.ts';
import type { ServerEventHandlers } from './serverEvents.ts';

export interface CallClient<A extends AnyActorRef> extends CallStreams {
  readonly call: A;
  readonly signaling: SignalingActor;
  /**
   * Closes the call's connection and the socket, and stops both actors. It does not hang up: to the
   * server this is a lost socket, and it holds the call for the reconnection timeout. Send `hangup` first.
   */
  stop(): void;
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
  const unnetwork = connection.forwardNetworkOnline(call);
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
