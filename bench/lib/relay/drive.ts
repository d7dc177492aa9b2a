/**
 * Traffic over a set of calls, and what it measures at the receiving legs. Both legs of every call live in
 * this process, so a message's latency is its receive time minus the send time it carries, on one clock.
 *
 * - `closedLoop`: every call keeps `window` messages in flight, sending the next as soon as one arrives:
 *   the most the relay sustains.
 * - `openLoop`: messages go out on a fixed schedule at `rate` per second whatever happens: the latency at a
 *   given load, without the closed loop's habit of slowing down exactly when the relay does.
 *
 * Messages follow `EXCHANGE` per call (offer, answer, trickled candidates both ways), so the mix is the
 * same on every server. Every send asks for the acknowledgement, as the real client does.
 */
import { summarize, type Summary } from '../stats.ts';
import type { Link } from './links.ts';
import { EXCHANGE, nowUs, payloadFor, stampOf, type SignalEvent } from './payloads.ts';

const SIGNAL_EVENTS: SignalEvent[] = ['signal.offer', 'signal.answer', 'signal.candidate'];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Traffic {
  send(linkIndex: number): void;
  counts: { sent: number; delivered: number; refused: number; bytes: number };
  /** Messages sent and neither delivered nor refused yet. */
  inFlight(): number;
  stop(): void;
}

function traffic(links: readonly Link[], onDelivered: (linkIndex: number, latencyMs: number, stampUs: number) => void): Traffic {
  const cursor = links.map(() => 0);
  const counts = { sent: 0, delivered: 0, refused: 0, bytes: 0 };
  const detach: (() => void)[] = [];
  links.forEach((link, i) => {
    for (const socket of [link.offerer, link.answerer]) {
      for (const event of SIGNAL_EVENTS) {
        const listener = (payload: unknown) => {
          const stamp = stampOf(payload);
          if (stamp === null) return;
          counts.delivered++;
          onDelivered(i, (nowUs() - stamp) / 1000, stamp);
        };
        socket.on(event, listener);
        detach.push(() => socket.off(event, listener));
      }
    }
  });
  const onAck = (reply: { ok?: boolean } | undefined) => {
    if (!reply?.ok) counts.refused++;
  };
  return {
    counts,
    send(i) {
      const link = links[i]!;
      const step = EXCHANGE[cursor[i]!++ % EXCHANGE.length]!;
      const payload = payloadFor(step.event, link.callId, nowUs());
      counts.sent++;
      counts.bytes += 'sdp' in payload ? payload.sdp.length : payload.candidate.candidate.length;
      (step.from === 'offerer' ? link.offerer : link.answerer).emit(step.event, payload, onAck);
    },
    inFlight: () => counts.sent - counts.delivered - counts.refused,
    stop: () => detach.forEach((off) => off()),
  };
}

async function drain(t: Traffic, limitMs: number): Promise<void> {
  const deadline = performance.now() + limitMs;
  while (t.inFlight() > 0 && performance.now() < deadline) await sleep(5);
}

export interface ClosedLoopResult {
  window: number;
  calls: number;
  seconds: number;
  delivered: number;
  /** Delivered over the whole run, warm-up and drain included (what the servers' CPU time is spent on). */
  deliveredTotal: number;
  /** Messages delivered per second in the measured span. */
  throughput: number;
  /** SDP and candidate bytes delivered per second in the measured span (payload text only). */
  payloadBytesPerSecond: number;
  refused: number;
  lost: number;
  latencyMs: Summary;
}

export async function closedLoop(links: readonly Link[], options: { window: number; warmupMs: number; durationMs: number }): Promise<ClosedLoopResult> {
  let measuring = false;
  let running = true;
  let delivered = 0;
  const latencies: number[] = [];
  const t = traffic(links, (i, latency) => {
    if (measuring) {
      delivered++;
      latencies.push(latency);
    }
    if (running) t.send(i);
  });
  try {
    for (let i = 0; i < links.length; i++) for (let w = 0; w < options.window; w++) t.send(i);
    await sleep(options.warmupMs);
    const bytesBefore = t.counts.bytes;
    measuring = true;
    const started = performance.now();
    await sleep(options.durationMs);
    measuring = false;
    const seconds = (performance.now() - started) / 1000;
    const bytes = t.counts.bytes - bytesBefore;
    running = false;
    await drain(t, 5_000);
    return {
      window: options.window,
      calls: links.length,
      seconds,
      delivered,
      deliveredTotal: t.counts.delivered,
      throughput: delivered / seconds,
      payloadBytesPerSecond: bytes / seconds,
      refused: t.counts.refused,
      lost: t.inFlight(),
      latencyMs: summarize(latencies),
    };
  } finally {
    running = false;
    t.stop();
  }
}

export interface OpenLoopResult {
  rate: number;
  calls: number;
  sent: number;
  deliveredTotal: number;
  /** Latency of every message scheduled after the warm-up, in ms, in arrival order. */
  latenciesMs: number[];
  latencyMs: Summary;
  /** How late the generator sent messages against the schedule (its own timer and load), in ms. */
  sendLagMs: Summary;
  refused: number;
  lost: number;
}

export async function openLoop(links: readonly Link[], options: { rate: number; warmupMs: number; durationMs: number }): Promise<OpenLoopResult> {
  const latencies: number[] = [];
  const lags: number[] = [];
  const intervalMs = 1000 / options.rate;
  const total = Math.round((options.rate * (options.warmupMs + options.durationMs)) / 1000);
  const started = performance.now();
  const measuredFromUs = Math.round((started + options.warmupMs) * 1000);
  const t = traffic(links, (_, latency, stamp) => {
    if (stamp >= measuredFromUs) latencies.push(latency);
  });
  try {
    let next = 0;
    await new Promise<void>((resolve) => {
      const tick = () => {
        const now = performance.now();
        const due = Math.min(total, Math.floor((now - started) / intervalMs) + 1);
        for (; next < due; next++) {
          const scheduled = started + next * intervalMs;
          if (scheduled >= started + options.warmupMs) lags.push(performance.now() - scheduled);
          t.send(next % links.length);
        }
        if (next < total) setTimeout(tick, Math.max(0, started + next * intervalMs - performance.now()));
        else resolve();
      };
      tick();
    });
    await drain(t, 5_000);
    return {
      rate: options.rate,
      calls: links.length,
      sent: t.counts.sent,
      deliveredTotal: t.counts.delivered,
      latenciesMs: latencies.map((ms) => Math.round(ms * 1000) / 1000),
      latencyMs: summarize(latencies),
      sendLagMs: summarize(lags),
      refused: t.counts.refused,
      lost: t.inFlight(),
    };
  } finally {
    t.stop();
  }
}
