/**
 * Relay overhead: signaling messages (offers, answers, candidates) relayed per second, and their latency,
 * through the callchart server (authenticated sockets, validated payloads, call-scoped routing, live
 * machines) against a bare Socket.IO relay of the same messages between paired sockets, in the same run.
 * Both servers and the load generator are separate processes; the same clients send the same mix to each,
 * alternately, round after round.
 *
 * Two measurements per server and round: the most it sustains (closed loop, a fixed window of messages in
 * flight per call), and the latency at a fixed moderate rate (open loop, the same rate for both).
 */
import os from 'node:os';
import path from 'node:path';
import { atLeast, atMost, type Benchmark, type Figure } from './lib/bench.ts';
import { prepareFleet } from './lib/fleet.ts';
import { busyMachineNote, cpuSeconds, spawnQuietServer, spawnWorker, type Worker } from './lib/processes.ts';
import type { ClosedLoopResult, OpenLoopResult } from './lib/relay/drive.ts';
import { EXCHANGE } from './lib/relay/payloads.ts';
import { median, ratio } from './lib/stats.ts';
import { freePort, type SpawnedServer } from '../test/support/server.ts';

const THROUGHPUT_RATIO_TARGET = 0.8;
const P99_RATIO_TARGET = 1.5;
const POOL = 'support';

const SETTINGS = {
  // Many short rounds rather than a few long ones: on a shared machine, other work comes and goes in bursts.
  full: { calls: 50, rounds: 8, window: 4, warmupMs: 500, durationMs: 3_000, rate: 1_000, latencyWarmupMs: 500, latencyDurationMs: 3_000 },
  quick: { calls: 5, rounds: 2, window: 4, warmupMs: 300, durationMs: 1_000, rate: 1_000, latencyWarmupMs: 300, latencyDurationMs: 1_000 },
};

type Target = 'callchart' | 'bare';
const TARGET_NAMES: Record<Target, string> = { callchart: 'callchart server', bare: 'bare Socket.IO relay' };

interface Cpu {
  /** CPU seconds each process used during the call. */
  serverSeconds: number | null;
  generatorSeconds: number | null;
  /** Cores busy on average over the call (1 = one core all the time). */
  server: number | null;
  generator: number | null;
}

/** Runs a generator call and tells how busy the target server and the generator were meanwhile. */
async function withCpu<T>(serverPid: number | undefined, generator: Worker, run: () => Promise<T>): Promise<{ result: T; cpu: Cpu }> {
  const pids = [serverPid, generator.child.pid];
  const before = pids.map(cpuSeconds);
  const started = performance.now();
  const result = await run();
  const wall = (performance.now() - started) / 1000;
  const [server, gen] = pids.map((pid, i) => {
    const after = cpuSeconds(pid);
    return after === null || before[i] === null ? null : after - before[i]!;
  });
  const cores = (seconds: number | null | undefined) => (seconds === null || seconds === undefined ? null : Math.round((seconds / wall) * 100) / 100);
  return { result, cpu: { serverSeconds: server ?? null, generatorSeconds: gen ?? null, server: cores(server), generator: cores(gen) } };
}

/** Server CPU time per delivered message, µs; /proc counts in 10 ms ticks, so it needs a long enough run. */
const cpuPerMessage = (run: { cpu: Cpu; deliveredTotal: number }) =>
  run.cpu.serverSeconds === null || run.deliveredTotal === 0 ? null : (run.cpu.serverSeconds / run.deliveredTotal) * 1e6;

const relay: Benchmark = {
  name: 'relay',
  title: 'Relay overhead: signaling through the callchart server vs a bare Socket.IO relay',
  async run({ quick, scratchDir, log }) {
    const settings = quick ? SETTINGS.quick : SETTINGS.full;
    const loadBefore = os.loadavg();
    const fleet = await prepareFleet(scratchDir, settings.calls, { pool: POOL });
    let server: SpawnedServer | null = null;
    const workers: Worker[] = [];
    try {
      const port = await freePort();
      // warn, so logging is not what is measured; at the default info the relay path logs nothing either
      // (socket.ts `relay` has no log call; only an ICE-restart offer is logged), only the calls' setup does.
      // Each socket here sends far more than a person's signaling would (LIMIT_SOCKET_EVENTS_PER_SECOND, 20 by
      // default): the bucket is raised so it passes every message, while its cost per event is still paid.
      const bucket = { LIMIT_SOCKET_EVENTS_PER_SECOND: '100000', LIMIT_SOCKET_EVENT_BURST: '100000' };
      server = await spawnQuietServer({ ...fleet.env, ...bucket, PORT: String(port), LOG_LEVEL: 'warn' });
      const bare = await spawnWorker<{ port: number }>(path.join(import.meta.dirname, 'lib/relay/bareRelay.ts'));
      workers.push(bare);
      const generator = await spawnWorker(path.join(import.meta.dirname, 'lib/relay/loadGenerator.ts'));
      workers.push(generator);

      const pairs = await Promise.all(
        fleet.agents.map(async (agent, i) => ({ agentToken: await fleet.agentToken(agent), visitorToken: await fleet.visitorToken(`visitor-bench-${i}`, `Visitor ${i}`) })),
      );
      log(`setting up ${settings.calls} calls on each server`);
      await generator.call('connectCallchart', { url: server.url, pool: POOL, pairs });
      await generator.call('connectBare', { url: `http://127.0.0.1:${bare.ready.port}`, calls: settings.calls });

      const pid: Record<Target, number | undefined> = { callchart: server.child.pid, bare: bare.child.pid };
      const throughput: Record<Target, (ClosedLoopResult & { round: number; cpu: Cpu })[]> = { callchart: [], bare: [] };
      const latency: Record<Target, (OpenLoopResult & { round: number; cpu: Cpu })[]> = { callchart: [], bare: [] };
      for (let round = 0; round < settings.rounds; round++) {
        // Who goes first alternates, so drift on a shared machine does not favour one side.
        const order: Target[] = round % 2 === 0 ? ['callchart', 'bare'] : ['bare', 'callchart'];
        for (const target of order) {
          const { result, cpu } = await withCpu(pid[target], generator, () =>
            generator.call<ClosedLoopResult>('closedLoop', { target, window: settings.window, warmupMs: settings.warmupMs, durationMs: settings.durationMs }),
          );
          throughput[target].push({ ...result, round, cpu });
          log(`round ${round + 1} ${target}: ${Math.round(result.throughput)} msg/s closed loop (server ${cpu.server} cores, generator ${cpu.generator})`);
        }
        for (const target of order) {
          const { result, cpu } = await withCpu(pid[target], generator, () =>
            generator.call<OpenLoopResult>('openLoop', { target, rate: settings.rate, warmupMs: settings.latencyWarmupMs, durationMs: settings.latencyDurationMs }),
          );
          latency[target].push({ ...result, round, cpu });
          log(`round ${round + 1} ${target}: p50 ${result.latencyMs.p50?.toFixed(2)} ms, p99 ${result.latencyMs.p99?.toFixed(2)} ms at ${settings.rate} msg/s`);
        }
      }
      await generator.call('close');

      const med = (values: (number | null)[]) => median(values.filter((v): v is number => v !== null));
      const tput = { callchart: med(throughput.callchart.map((r) => r.throughput)), bare: med(throughput.bare.map((r) => r.throughput)) };
      const p99 = { callchart: med(latency.callchart.map((r) => r.latencyMs.p99)), bare: med(latency.bare.map((r) => r.latencyMs.p99)) };
      const p50 = { callchart: med(latency.callchart.map((r) => r.latencyMs.p50)), bare: med(latency.bare.map((r) => r.latencyMs.p50)) };
      const cpu = (runs: { cpu: Cpu }[], of: keyof Cpu) => med(runs.map((r) => r.cpu[of]));
      const problems = [...throughput.callchart, ...throughput.bare, ...latency.callchart, ...latency.bare].filter((r) => r.refused > 0 || r.lost > 0);
      const round2 = (value: number | null) => (value === null ? null : Math.round(value * 100) / 100);
      const tputRatio = ratio(tput.callchart, tput.bare);
      const p99Ratio = ratio(p99.callchart, p99.bare);
      const cpuMsg = { callchart: med(throughput.callchart.map(cpuPerMessage)), bare: med(throughput.bare.map(cpuPerMessage)) };
      // Each round's two runs ran back to back, so their own ratio is the least touched by drift.
      const paired = <R extends { round: number }>(runs: Record<Target, R[]>, of: (run: R) => number | null) =>
        med(
          runs.callchart.map((run) => {
            const base = runs.bare.find((b) => b.round === run.round);
            return base ? ratio(of(run), of(base)) : null;
          }),
        );
      const pairedTput = paired(throughput, (run) => run.throughput);
      const pairedP99 = paired(latency, (run) => run.latencyMs.p99);
      const load = busyMachineNote(loadBefore);
      const saturation =
        `while saturated the server used ${cpu(throughput.callchart, 'server')} cores (bare relay ${cpu(throughput.bare, 'server')}), ` +
        `the generator ${cpu(throughput.callchart, 'generator')} (${cpu(throughput.bare, 'generator')} against the bare relay)`;
      const figures: Figure[] = [
        {
          name: 'relay throughput',
          value: tput.callchart === null ? null : Math.round(tput.callchart),
          unit: 'msg/s',
          baseline: { name: TARGET_NAMES.bare, value: tput.bare === null ? null : Math.round(tput.bare) },
          ratio: round2(tputRatio),
          target: `≥ ${THROUGHPUT_RATIO_TARGET}× baseline`,
          met: atLeast(tputRatio, THROUGHPUT_RATIO_TARGET),
          note:
            `median of ${settings.rounds} rounds; ${settings.calls} calls, ${settings.window} messages in flight per call, ${settings.durationMs / 1000} s each; ` +
            `mix per call: ${EXCHANGE.length} messages (offer ~4 KB, answer ~4 KB, ${EXCHANGE.length - 2} candidates ~100 B); ${saturation}` +
            `; median of the rounds' own ratios ${round2(pairedTput)}` +
            (problems.length ? `; ${problems.length} runs had refused or lost messages (see data)` : '') +
            load,
        },
        {
          name: `relay latency p99 at ${settings.rate} msg/s`,
          value: round2(p99.callchart),
          unit: 'ms',
          baseline: { name: TARGET_NAMES.bare, value: round2(p99.bare) },
          ratio: round2(p99Ratio),
          target: `≤ ${P99_RATIO_TARGET}× baseline`,
          met: atMost(p99Ratio, P99_RATIO_TARGET),
          note:
            `open loop, send to receipt at the other leg; p99 per round over ${(settings.rate * settings.latencyDurationMs) / 1000} messages, median of ${settings.rounds} rounds; ` +
            `median of the rounds' own ratios ${round2(pairedP99)}${load}`,
        },
        {
          name: `relay latency p50 at ${settings.rate} msg/s`,
          value: round2(p50.callchart),
          unit: 'ms',
          baseline: { name: TARGET_NAMES.bare, value: round2(p50.bare) },
          ratio: round2(ratio(p50.callchart, p50.bare)),
        },
        {
          name: 'server CPU per relayed message',
          value: cpuMsg.callchart === null ? null : Math.round(cpuMsg.callchart),
          unit: 'µs',
          baseline: { name: TARGET_NAMES.bare, value: cpuMsg.bare === null ? null : Math.round(cpuMsg.bare) },
          ratio: round2(ratio(cpuMsg.callchart, cpuMsg.bare)),
          note: 'closed-loop runs, the server process\'s user+system time over messages delivered (acks included in the work); less sensitive than throughput to other load on the machine',
        },
      ];
      return {
        figures,
        data: {
          settings,
          targets: TARGET_NAMES,
          serverEnv: { LOG_LEVEL: 'warn' },
          loadAverage: { before: loadBefore, after: os.loadavg() },
          exchange: EXCHANGE,
          throughput,
          latency,
        },
      };
    } finally {
      for (const worker of workers.reverse()) await worker.kill();
      await server?.kill();
    }
  },
};

export default relay;
