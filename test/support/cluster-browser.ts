/**
 * What a browser scenario on a cluster needs beyond the single-server support: the pages reached at a
 * node's own port or at the balancer, media counters sampled on several pages while a node dies, the
 * signaling state a page is in, and what each node logged, read line by line.
 */
import type { Page } from 'playwright-core';
import { pageLog } from './browser.ts';
import type { Cluster, ClusterNode } from './cluster.ts';

/** Inbound RTP totals on one page: bytes by kind and video frames decoded. */
export interface InboundMedia {
  audioBytes: number;
  videoBytes: number;
  videoFrames: number;
}

export const INBOUND_KEYS = ['audioBytes', 'videoBytes', 'videoFrames'] as const satisfies readonly (keyof InboundMedia)[];

/** Sums every `inbound-rtp` entry of the page's `window.callchart.getStats()` report. */
export function inboundMedia(page: Page): Promise<InboundMedia> {
  return page.evaluate(async () => {
    const api = (window as unknown as { callchart?: { getStats?: () => Promise<RTCStatsReport | undefined> | undefined } }).callchart;
    const report = await api?.getStats?.();
    if (!report) throw new Error('the page has no peer connection to read stats from');
    const totals = { audioBytes: 0, videoBytes: 0, videoFrames: 0 };
    report.forEach((stat: { type?: string; kind?: string; bytesReceived?: number; framesDecoded?: number }) => {
      if (stat.type !== 'inbound-rtp') return;
      if (stat.kind === 'audio') totals.audioBytes += stat.bytesReceived ?? 0;
      if (stat.kind === 'video') {
        totals.videoBytes += stat.bytesReceived ?? 0;
        totals.videoFrames += stat.framesDecoded ?? 0;
      }
    });
    return totals;
  });
}

export interface MediaSample {
  at: number;
  /** By the name the sampler was given each page under. */
  pages: Record<string, InboundMedia>;
}

export interface MediaSampler {
  readonly samples: readonly MediaSample[];
  /** Resolves once `count` samples have been taken since the sampler started (or since `after`, when given). */
  taken(count: number, { after, timeoutMs }: { after?: number; timeoutMs: number }): Promise<void>;
  /** Stops sampling after the sample under way; rejects if a sample could not be read. */
  stop(): Promise<MediaSample[]>;
}

/**
 * Reads every page's inbound media every `intervalMs`, in the background, until stopped: a series that
 * spans whatever the test does meanwhile, such as killing a node. A page whose stats cannot be read ends
 * the sampling with that error, since a gap in the series would hide exactly what it is there to show.
 */
export function sampleMedia(pages: Record<string, Page>, intervalMs: number): MediaSampler {
  const samples: MediaSample[] = [];
  let stopped = false;
  let wake: (() => void) | null = null;
  const running = (async () => {
    while (!stopped) {
      const started = Date.now();
      const entries = await Promise.all(Object.entries(pages).map(async ([name, page]) => [name, await inboundMedia(page)] as const));
      samples.push({ at: started, pages: Object.fromEntries(entries) });
      const wait = intervalMs - (Date.now() - started);
      if (wait > 0 && !stopped) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, wait);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = null;
      }
    }
  })();
  // A failed read surfaces from stop(), not as an unhandled rejection while the test goes on.
  running.catch(() => undefined);
  return {
    samples,
    async taken(count, { after = 0, timeoutMs }) {
      const deadline = Date.now() + timeoutMs;
      while (samples.filter((sample) => sample.at >= after).length < count) {
        if (stopped) throw new Error('the media sampler stopped before it took the samples waited for');
        if (Date.now() > deadline) throw new Error(`the media sampler took ${String(samples.length)} samples in all, not ${String(count)} more, within ${String(timeoutMs)} ms`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    async stop() {
      stopped = true;
      wake?.();
      await running;
      return samples;
    },
  };
}

/** How much each counter grew between one sample and the next, for every page, with when each interval began and ended. */
export interface MediaDelta {
  from: number;
  to: number;
  page: string;
  growth: InboundMedia;
}

export function mediaDeltas(samples: readonly MediaSample[]): MediaDelta[] {
  const deltas: MediaDelta[] = [];
  for (let index = 1; index < samples.length; index += 1) {
    const before = samples[index - 1]!;
    const after = samples[index]!;
    for (const [page, now] of Object.entries(after.pages)) {
      const then = before.pages[page]!;
      deltas.push({
        from: before.at,
        to: after.at,
        page,
        growth: { audioBytes: now.audioBytes - then.audioBytes, videoBytes: now.videoBytes - then.videoBytes, videoFrames: now.videoFrames - then.videoFrames },
      });
    }
  }
  return deltas;
}

/** The page's signaling actor state, as JSON (`"connected"`, `{"reconnecting":…}`). */
export function signalingState(page: Page): Promise<string> {
  return page.evaluate(() => {
    const signaling = (window as unknown as { callchart?: { signaling?: { getSnapshot(): { value: unknown } } } }).callchart?.signaling;
    return JSON.stringify(signaling?.getSnapshot().value ?? null);
  });
}

export async function waitForSignaling(page: Page, state: RegExp, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await signalingState(page);
    if (state.test(value)) return;
    if (Date.now() > deadline) throw new Error(`signaling on ${page.url()} stayed ${value}, expected ${String(state)}\n${pageLog(page)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** One line a node logged (pino's JSON): its message, its time, and whatever it carried. */
export type LogEntry = { msg?: string; time?: number; level?: number } & Record<string, unknown>;

/** Every JSON line of the node's log, across its restarts; lines that are not JSON are left out. */
export function logEntries(cluster: Cluster, node: ClusterNode): LogEntry[] {
  return cluster
    .logs(node)
    .split('\n')
    .flatMap((line) => {
      if (!line.startsWith('{')) return [];
      try {
        return [JSON.parse(line) as LogEntry];
      } catch {
        return [];
      }
    });
}

/** Polls the nodes' logs until one of them has a line `matches` accepts; resolves to that node and line. */
export async function waitForLogEntry(
  cluster: Cluster,
  nodes: readonly ClusterNode[],
  matches: (entry: LogEntry) => boolean,
  what: string,
  timeoutMs: number,
): Promise<{ node: ClusterNode; entry: LogEntry }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const node of nodes) {
      const entry = logEntries(cluster, node).find(matches);
      if (entry) return { node, entry };
    }
    if (Date.now() > deadline) throw new Error(`no node of ${nodes.map((node) => node.name).join(', ')} logged ${what} within ${String(timeoutMs)} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
