/**
 * What a page running a call client takes from the browser and gives back to it: its WebRTC, its
 * console for the client's errors, and `window.callchart` for developers and browser tests.
 */
import type { AnyActorRef } from 'xstate';
import type { CallClient } from './callClient.ts';
import type { ErrorListener } from './errors.ts';
import type { RtcEnvironment } from './mediaSession.ts';

/** The page's RTCPeerConnection and, where the page has devices, its camera and microphone. */
export function pageRtc(): RtcEnvironment {
  return {
    RTCPeerConnection: window.RTCPeerConnection,
    getUserMedia: navigator.mediaDevices ? (constraints) => navigator.mediaDevices.getUserMedia(constraints) : undefined,
  };
}

/** A client's errors, on the page's console. */
export const warnOnConsole: ErrorListener = (error) => console.warn(`[callchart] ${error.message}`, error.details);

/** `window.callchart`, for developers in the console and for browser tests. */
export interface CallchartGlobal<A extends AnyActorRef = AnyActorRef> {
  call: A;
  signaling: CallClient<A>['signaling'];
  getStats: () => Promise<RTCStatsReport> | undefined;
}

/** Puts `client` on `window.callchart`; what it returns takes it off again, unless another client took its place. */
export function exposeOnPage<A extends AnyActorRef>(client: CallClient<A>): () => void {
  const value: CallchartGlobal<A> = { call: client.call, signaling: client.signaling, getStats: () => client.peerConnection?.getStats() };
  Object.assign(window, { callchart: value });
  return () => {
    if ((window as { callchart?: unknown }).callchart === value) Reflect.deleteProperty(window, 'callchart');
  };
}
