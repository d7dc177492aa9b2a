/**
 * What arrives, for the peerConnection machine: proof that media flows again after a restart (a
 * connection can report `connected` while nothing reaches this side), and the first sign that a path
 * died, long before ICE consent gives up. `start()` takes a baseline and each `probe()` compares with
 * the last sample. How often, and how long to wait, are the machine's delays.
 *
 * Flowing: inbound RTP bytes advanced, and decoded frames as well where there is inbound video.
 * Stalled: nothing advanced at all, no byte and no echo; frames alone standing still (a static screen)
 * is neither. A connection with no inbound tracks (the other side has no devices) counts the data
 * channel's echoes instead. Counters are compared for change, not growth: Firefox's can reset to 0
 * after the other side restarts. Each is told only when it differs from the last one told since
 * `start()`, so a steady call sends the machine nothing.
 */
import type { Unsubscribe } from './on.ts';
import { listen } from './on.ts';

interface Progress {
  rtp: boolean;
  video: boolean;
  bytes: number;
  frames: number;
  echoes: number;
}

export interface MediaProbe {
  start(): void;
  probe(): void;
  stop: Unsubscribe;
}

const PING = 'ping';
const PONG = 'pong';

type Verdict = 'flowing' | 'stalled' | null;

function verdict(before: Progress, after: Progress): Verdict {
  const echoed = after.echoes !== before.echoes;
  if (!after.rtp) return echoed ? 'flowing' : 'stalled';
  const bytes = after.bytes !== before.bytes;
  if (bytes && (!after.video || after.frames !== before.frames)) return 'flowing';
  return bytes || echoed ? null : 'stalled';
}

export interface MediaProbeListener {
  (event: { type: 'media.flowing' | 'media.stalled'; at: number }): void;
}

export function createMediaProbe(pc: RTCPeerConnection, channel: RTCDataChannel, tell: MediaProbeListener, now: () => number = Date.now): MediaProbe {
  let echoes = 0;
  let last: Progress | null = null;
  let told: Verdict = null;
  // Samples are taken in order, so each compares with the one before it.
  let chain: Promise<void> = Promise.resolve();

  const unlisten = listen(channel, 'message', (event) => {
    echoes += 1;
    if ((event as MessageEvent).data === PING && channel.readyState === 'open') channel.send(PONG);
  });

  const sample = async (): Promise<Progress> => {
    const progress: Progress = { rtp: false, video: false, bytes: 0, frames: 0, echoes };
    const report = await pc.getStats();
    report.forEach((stat: { type: string; kind?: string; bytesReceived?: number; framesDecoded?: number }) => {
      if (stat.type !== 'inbound-rtp') return;
      progress.rtp = true;
      progress.bytes += stat.bytesReceived ?? 0;
      if (stat.kind === 'video') {
        progress.video = true;
        progress.frames += stat.framesDecoded ?? 0;
      }
    });
    return progress;
  };

  const step = (compare: boolean) => {
    chain = chain
      .then(async () => {
        if (pc.connectionState === 'closed') return;
        if (!compare) told = null;
        const current = await sample();
        const seen = compare && last ? verdict(last, current) : null;
        last = current;
        if (seen === null || seen === told) return;
        told = seen;
        tell({ type: seen === 'flowing' ? 'media.flowing' : 'media.stalled', at: now() });
      })
      // A connection closed under a sample has nothing left to prove.
      .catch(() => {});
  };

  return {
    start: () => step(false),
    probe: () => {
      if (channel.readyState === 'open') channel.send(PING);
      step(true);
    },
    stop: unlisten,
  };
}
