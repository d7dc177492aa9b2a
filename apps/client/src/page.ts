/**
 * What a page running a call client takes from the browser and gives back to it: its WebRTC, its
 * console for the client's errors, its going away, and `window.callchart` for developers and browser tests.
 */
import type { AnyActorRef } from 'xstate';
import type { CallClient } from './callClient.ts';
import type { ErrorListener } from './errors.ts';
import type { RtcEnvironment } from './mediaSession.ts';
import { listen, type Unsubscribe } from './on.ts';

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

/** The page going away, and the one way left to tell the server something once it does. */
export interface PageLifecycle {
  /** Calls `listener` when the page is hidden on its way out (`pagehide`): closed, reloaded or navigated from. */
  onClose(listener: () => void): Unsubscribe;
  /**
   * Queues `body` for `url` as `text/plain;charset=UTF-8`, to be sent even though the page is gone; false
   * when the browser would not queue it. Text, because a cross-origin beacon of any other type is not sent.
   */
  beacon(url: string, body: string): boolean;
}

/**
 * The browser's: `pagehide` on `target` and `navigator.sendBeacon`; undefined outside a browser. A page that
 * embeds the client elsewhere (a test, a webview) passes its own `target` and `sendBeacon`.
 */
export function pageLifecycle(
  target: EventTarget | undefined = typeof window === 'undefined' ? undefined : window,
  sendBeacon: ((url: string, body: string) => boolean) | undefined = typeof navigator === 'undefined' || typeof navigator.sendBeacon !== 'function'
    ? undefined
    : (url, body) => navigator.sendBeacon(url, body),
): PageLifecycle | undefined {
  if (target === undefined || sendBeacon === undefined) return undefined;
  return {
    // `pagehide`, not `unload` or `beforeunload`: it is the one a browser fires reliably, mobile ones included.
    onClose: (listener) => listen(target, 'pagehide', () => listener()),
    beacon: sendBeacon,
  };
}
