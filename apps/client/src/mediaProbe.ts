/**
 * Proof that media arrives, for the peerConnection machine's `verifying` state: a connection can report
 * `connected` while nothing reaches this side. `start()` takes a baseline and each `probe()` compares
 * with the last sample, telling the machine `media.flowing` when something advanced. How often, and how
 * long to wait for it, are the machine's delays.
 *
 * What counts: inbound RTP bytes, and decoded frames as well where there is inbound video. A connection
 * with no inbound tracks (the other side has no devices) counts the data channel's echoes instead.
 * Counters are compared for change, not growth: Firefox's can reset to 0 after the other side restarts.
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

function advanced(before: Progress, after: Progress): boolean {
  if (!after.rtp) return after.echoes !== before.echoes;
  return after.bytes !== before.bytes && (!after.video || after.frames !== before.frames);
}

export function createMediaProbe(pc: RTCPeerConnection, channel: RTCDataChannel, onFlowing: (at: number) => void, now: () => number = Date.now): MediaProbe {
  let echoes = 0;
  let last: Progress | null = null;
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
        const current = await sample();
        if (compare && last && advanced(last, current)) onFlowing(now());
        last = current;
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
