/**
 * Binds one RTCPeerConnection to the peerConnection machine: its `connectionState` becomes the
 * machine's `ice.*` events, and the machine's named effects become calls on the connection. When to
 * restart, how often and for how long is the machine's business; nothing here decides any of it.
 */
import type { PeerConnectionEvent } from '@callchart/machines';
import { listen, type Unsubscribe } from './on.ts';

export type PeerConnectionStateEvent = Extract<PeerConnectionEvent, { type: 'ice.connected' | 'ice.disconnected' | 'ice.failed' }>;

// `connectionState` rather than `iceConnectionState`: Chromium never reports ICE `failed`, it stays
// `disconnected` while `connectionState` goes to `failed`. `new`, `connecting` and `closed` tell the
// machine nothing it acts on.
const stateEvents: Partial<Record<RTCPeerConnectionState, PeerConnectionStateEvent['type']>> = {
  connected: 'ice.connected',
  disconnected: 'ice.disconnected',
  failed: 'ice.failed',
};

/** Sends the machine an `ice.*` event on every `connectionstatechange` it acts on. */
export function bindPeerConnection(
  pc: RTCPeerConnection,
  send: (event: PeerConnectionStateEvent) => void,
  now: () => number = Date.now,
): Unsubscribe {
  return listen(pc, 'connectionstatechange', () => {
    const type = stateEvents[pc.connectionState];
    if (type) send({ type, at: now() });
  });
}

/** The peerConnection machine's named effects, as `.provide({ actions })` expects them. */
export interface PeerConnectionEffects {
  rollbackLocalOffer: () => void;
  restartIce: () => void;
  sendRestartOffer: () => void;
  resendRestartOffer: () => void;
  /** The answerer's `signal.restartRequest`. */
  sendRestartRequest: () => void;
  /** The media probe's baseline and samples (mediaProbe.ts). */
  startMediaProbe: () => void;
  probeMedia: () => void;
}

export interface PeerConnectionEffectOptions {
  /** Delivers the ICE-restart offer to the other peer (`signal.iceRestart`). */
  sendIceRestart: (sdp: string) => void;
  /**
   * Runs one step on the connection after every step queued before it. The machine fires its effects
   * back to back, and a restart offer created before the rollback of a lost one has settled would be
   * rejected, so every step that touches the connection goes through one queue.
   */
  run: (step: string, operation: () => Promise<void> | void) => void;
}

export function peerConnectionEffects(
  pc: RTCPeerConnection,
  options: PeerConnectionEffectOptions,
): Pick<PeerConnectionEffects, 'rollbackLocalOffer' | 'restartIce' | 'sendRestartOffer' | 'resendRestartOffer'> {
  const { run, sendIceRestart } = options;
  return {
    rollbackLocalOffer: () =>
      run('rollbackLocalOffer', async () => {
        // A restart offer lost while signaling was down leaves the offerer here, and then later
        // restartIce() calls do nothing.
        if (pc.signalingState === 'have-local-offer') await pc.setLocalDescription({ type: 'rollback' });
      }),
    restartIce: () => run('restartIce', () => pc.restartIce()),
    sendRestartOffer: () =>
      run('sendRestartOffer', async () => {
        await pc.setLocalDescription(await pc.createOffer());
        if (pc.localDescription) sendIceRestart(pc.localDescription.sdp);
      }),
    resendRestartOffer: () =>
      run('resendRestartOffer', () => {
        // Answered already: the restart is under way, and the request crossed the offer.
        if (pc.signalingState === 'have-local-offer' && pc.localDescription) sendIceRestart(pc.localDescription.sdp);
      }),
  };
}
