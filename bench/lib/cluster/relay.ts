/**
 * The cluster relay phase: the relay benchmark's load (its mix, closed and open loops, rounds) over calls on
 * a two-node cluster whose two people are on different nodes, against calls whose two people share a node,
 * in the same cluster and the same rounds; and, for reference, the same calls on one process (SQLite, no
 * Redis). The order of the three alternates round by round, so drift on a shared machine favours none.
 */
import { copyFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Fleet } from '../fleet.ts';
import { cpuSeconds, spawnWorker, type Worker } from '../processes.ts';
import type { ClosedLoopResult, OpenLoopResult } from '../relay/drive.ts';
import type { Backing } from './backing.ts';
import { startBenchNodes, stopBenchNodes, type BenchNode } from './nodes.ts';
import type { CallPlan } from './relayGenerator.ts';

export const RELAY_TARGETS = ['cross', 'same', 'single'] as const;
export type RelayTarget = (typeof RELAY_TARGETS)[number];
export const RELAY_TARGET_NAMES: Record<RelayTarget, string> = {
  cross: 'two people on different nodes',
  same: 'two people on the same node',
  single: 'one process (SQLite, no Redis)',
};

export interface RelaySettings {
  calls: number;
  rounds: number;
  window: number;
  warmupMs: number;
  durationMs: number;
  rate: number;
  latencyWarmupMs: number;
  latencyDurationMs: number;
}

export interface RelayCpu {
  /** CPU seconds of the processes that carried the target's calls: both nodes and Redis, or the one process. */
  serverSeconds: number | null;
  redisSeconds: number | null;
  generatorSeconds: number | null;
  /** Cores busy on average over the run. */
  server: number | null;
  generator: number | null;
}

export type ThroughputRun = ClosedLoopResult & { round: number; cpu: RelayCpu };
export type LatencyRun = Omit<OpenLoopResult, 'latenciesMs'> & { round: number; cpu: RelayCpu };

export interface RelayPhaseResult {
  settings: RelaySettings;
  /** The open loop's rate: `settings.rate`, or half the slowest kind's first throughput if that is lower. */
  latencyRate: number;
  nodes: string[];
  /** The kinds of call that could not be set up, and why: their runs are empty. */
  setUpFailed: Partial<Record<RelayTarget, string>>;
  throughput: Record<RelayTarget, ThroughputRun[]>;
  latency: Record<RelayTarget, LatencyRun[]>;
  loadAverage: { before: number[]; after: number[] };
}

const POOL = 'support';
// Each socket here sends far more than a person's signaling would: the bucket passes every message, while its
// cost per event (a Redis round trip in a cluster) is still paid.
const BUCKET = { LIMIT_SOCKET_EVENTS_PER_SECOND: '100000', LIMIT_SOCKET_EVENT_BURST: '100000' };

const LATENCY_RATE_SHARE = 0.5;
const LATENCY_RATE_STEP = 50;

/** `wanted`, or a round rate at half the lowest of `throughputs` if that is lower; never below one step. */
export function latencyRateFor(wanted: number, throughputs: readonly number[]): number {
  const room = Math.floor((LATENCY_RATE_SHARE * Math.min(...throughputs)) / LATENCY_RATE_STEP) * LATENCY_RATE_STEP;
  return Math.max(LATENCY_RATE_STEP, Math.min(wanted, room));
}

async function cpuOfNodes(nodes: readonly BenchNode[]): Promise<number> {
  const reports = await Promise.all(nodes.map((node) => node.server.report({}, 30_000)));
  return reports.reduce((sum, r) => sum + (r.cpu.user + r.cpu.system) / 1e6, 0);
}

export async function runRelayPhase(options: {
  settings: RelaySettings;
  fleet: Fleet;
  backing: Backing;
  scratchDir: string;
  log: (line: string) => void;
}): Promise<RelayPhaseResult> {
  const { settings, fleet, backing, scratchDir, log } = options;
  const loadBefore = os.loadavg();
  const agents = fleet.agents.slice(0, 3 * settings.calls);
  const phase = await backing.phase(agents.slice(0, 2 * settings.calls));
  const started: BenchNode[] = [];
  const workers: Worker[] = [];
  try {
    const env = { ...fleet.env, ...BUCKET, LOG_LEVEL: 'warn' };
    const cluster = await startBenchNodes({ count: 2, env, cluster: phase.env, scratchDir });
    started.push(...cluster);
    const singleDb = path.join(scratchDir, 'relay-single.db');
    copyFileSync(fleet.databasePath, singleDb);
    const [single] = await startBenchNodes({ count: 1, env: { ...env, DATABASE_PATH: singleDb }, cluster: null, scratchDir });
    started.push(single!);
    const generator = await spawnWorker(path.join(import.meta.dirname, 'relayGenerator.ts'));
    workers.push(generator);

    const [a, b] = cluster.map((node) => node.server.url) as [string, string];
    const plan = async (offset: number, urls: (k: number) => [agentUrl: string, visitorUrl: string]): Promise<CallPlan[]> =>
      Promise.all(
        Array.from({ length: settings.calls }, async (_, k) => {
          const [agentUrl, visitorUrl] = urls(k);
          const agent = agents[offset + k]!;
          return { agentUrl, visitorUrl, agentToken: await fleet.agentToken(agent), visitorToken: await fleet.visitorToken(`visitor-relay-${offset + k}`, `Visitor ${offset + k}`) };
        }),
      );
    // Half of each kind's calls one way round and half the other, so neither node carries more of either.
    const plans: Record<RelayTarget, CallPlan[]> = {
      same: await plan(0, (k) => (k % 2 === 0 ? [a, a] : [b, b])),
      cross: await plan(settings.calls, (k) => (k % 2 === 0 ? [a, b] : [b, a])),
      single: await plan(2 * settings.calls, () => [single!.server.url, single!.server.url]),
    };
    const setUpFailed: Partial<Record<RelayTarget, string>> = {};
    for (const target of RELAY_TARGETS) {
      log(`setting up ${settings.calls} calls: ${RELAY_TARGET_NAMES[target]}`);
      try {
        await generator.call('connect', { target, pool: POOL, calls: plans[target] });
      } catch (error) {
        // Measured without it: the others' figures still say something, and the result says why it is missing.
        setUpFailed[target] = (error instanceof Error ? error.message : String(error)).replace(/^worker \S+: (Error: )?/, '').split('\n')[0]!;
        log(`${target}: could not set up its calls (${setUpFailed[target]}); measured without it`);
      }
    }
    const targets = RELAY_TARGETS.filter((target) => setUpFailed[target] === undefined);
    if (targets.length === 0) throw new Error(`no kind of call could be set up: ${Object.values(setUpFailed).join('; ')}`);

    const carriers: Record<RelayTarget, BenchNode[]> = { cross: cluster, same: cluster, single: [single!] };
    const measured = async <T>(target: RelayTarget, run: () => Promise<T>): Promise<{ result: T; cpu: RelayCpu }> => {
      const generatorPid = generator.child.pid;
      const before = { server: await cpuOfNodes(carriers[target]), redis: target === 'single' ? null : cpuSeconds(phase.redis.pid), generator: cpuSeconds(generatorPid) };
      const t0 = performance.now();
      const result = await run();
      const wall = (performance.now() - t0) / 1000;
      const after = { server: await cpuOfNodes(carriers[target]), redis: target === 'single' ? null : cpuSeconds(phase.redis.pid), generator: cpuSeconds(generatorPid) };
      const delta = (x: number | null, y: number | null) => (x === null || y === null ? null : y - x);
      const redisSeconds = delta(before.redis, after.redis);
      const serverSeconds = after.server - before.server + (redisSeconds ?? 0);
      const generatorSeconds = delta(before.generator, after.generator);
      const cores = (seconds: number | null) => (seconds === null ? null : Math.round((seconds / wall) * 100) / 100);
      return { result, cpu: { serverSeconds, redisSeconds, generatorSeconds, server: cores(serverSeconds), generator: cores(generatorSeconds) } };
    };

    const throughput: Record<RelayTarget, ThroughputRun[]> = { cross: [], same: [], single: [] };
    let latencyRate: number | null = null;
    const latency: Record<RelayTarget, LatencyRun[]> = { cross: [], same: [], single: [] };
    for (let round = 0; round < settings.rounds; round++) {
      const order = targets.map((_, i) => targets[(i + round) % targets.length]!);
      for (const target of order) {
        const { result, cpu } = await measured(target, () =>
          generator.call<ClosedLoopResult>('closedLoop', { target, window: settings.window, warmupMs: settings.warmupMs, durationMs: settings.durationMs }),
        );
        throughput[target].push({ ...result, round, cpu });
        log(`round ${round + 1} ${target}: ${Math.round(result.throughput)} msg/s closed loop (servers ${cpu.server} cores, generator ${cpu.generator})`);
      }
      // One rate for every kind, and one each of them sustains with room to spare: past its throughput an
      // open loop measures a queue growing, not a latency.
      latencyRate ??= latencyRateFor(settings.rate, targets.map((target) => throughput[target][0]!.throughput));
      const rate = latencyRate;
      for (const target of order) {
        const { result, cpu } = await measured(target, () =>
          generator.call<OpenLoopResult>('openLoop', { target, rate, warmupMs: settings.latencyWarmupMs, durationMs: settings.latencyDurationMs }),
        );
        const { latenciesMs: _all, ...kept } = result;
        latency[target].push({ ...kept, round, cpu });
        log(`round ${round + 1} ${target}: p50 ${result.latencyMs.p50?.toFixed(2)} ms, p99 ${result.latencyMs.p99?.toFixed(2)} ms at ${rate} msg/s`);
      }
    }
    await generator.call('close');
    return { settings, latencyRate: latencyRate ?? settings.rate, nodes: cluster.map((node) => node.name), setUpFailed, throughput, latency, loadAverage: { before: loadBefore, after: os.loadavg() } };
  } finally {
    for (const worker of workers.reverse()) await worker.kill();
    await stopBenchNodes(started);
    await phase.close();
  }
}
