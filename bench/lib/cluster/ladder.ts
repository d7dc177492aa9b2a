/**
 * The cluster capacity step-up: the capacity benchmark's ladder (`lib/load/ladder.ts`) over several nodes.
 * The same client workers (`lib/load/callWorker.ts`) connect each person to a chosen node: pair i's agent to
 * node i mod N and its visitor to node i + 1 mod N, so people are spread evenly, as a round-robin balancer
 * would, and which agent a visitor gets is routing's choice. With one node it is the one-process baseline.
 *
 * A step breaks, as in the capacity benchmark, when its new calls are not all up within the setup budget,
 * when sockets or calls drop, when a node's event-loop delay p99 over the hold passes 1 s, or when a node
 * dies or stops answering. The ladder stops at the first step that breaks.
 */
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CallPair, Identity } from '../load/identities.ts';
import type { ServerProcess } from '../load/serverProcess.ts';
import type { ServerReport } from '../load/serverProtocol.ts';
import { split, type WorkerPool } from '../load/workerPool.ts';
import { extent, median, summarize, type Summary } from '../stats.ts';
import type { BenchNode } from './nodes.ts';

export interface ClusterLadderOptions {
  /** `one process` or `4 nodes`, for the log. */
  label: string;
  nodes: readonly BenchNode[];
  steps: readonly number[];
  pairs: readonly CallPair[];
  /** Workers running `callWorker.ts`, holding no sockets yet; they are reset when the ladder ends. */
  pool: WorkerPool;
  holdMs: number;
  /** Calls being set up at once, per worker. */
  setupConcurrency: number;
  setupBudget: { baseMs: number; perCallMs: number };
  /** After each step: how many of the live calls have their two people on different nodes (cluster only). */
  placement?: (placeOf: PlaceOf) => Promise<Placement>;
  log: (line: string) => void;
}

/** The node (its index) an agent or a visitor of the ladder's pairs is connected to. */
export interface PlaceOf {
  agent: ReadonlyMap<string, number>;
  visitor: ReadonlyMap<string, number>;
}

export interface Placement {
  liveCalls: number;
  crossNode: number;
}

export interface Memory {
  rss: number;
  heapUsed: number;
}

export interface NodeStep {
  name: string;
  sockets: number;
  fileLimit: number | null;
  cpuPercent: number | null;
  holdEventLoopDelayMs: ServerReport['eventLoopDelayMs'] | null;
  setupEventLoopDelayMs: ServerReport['eventLoopDelayMs'];
  memory: Memory;
  actors: ServerReport['actors'];
}

export interface ClusterStep {
  calls: number;
  sockets: number;
  loadAverage: number;
  connectMs: number;
  setupMs: number;
  setupRatePerS: number | null;
  callSetupMs: Summary;
  holdMs: number | null;
  nodes: NodeStep[];
  /** Summed over the nodes, minus their sum before any client, divided by the calls. */
  perCall: Memory;
  /** Summed over the nodes: 200 is two cores' worth. */
  cpuPercent: number | null;
  /** The worst node's. */
  holdEventLoopP99Ms: number | null;
  setupEventLoopP99Ms: number;
  /** Calls the nodes' switchboards hold, summed: each is on its owner only. */
  actorCalls: number;
  placement: Placement | null;
  clients: { eventLoopDelayMaxMs: number; connected: number; legsConnected: number; disconnectReasons: Record<string, number>; errors: Record<string, number> };
  broke: string | null;
}

export interface ClusterLadderResult {
  label: string;
  nodeNames: string[];
  code: string[];
  fileLimits: (number | null)[];
  base: Memory[];
  steps: ClusterStep[];
  broke: { calls: number; reason: string } | null;
}

interface WorkerStats {
  eventLoopDelayMs: { p99: number; max: number };
  connected: number;
  legsConnected: number;
  disconnectReasons: Record<string, number>;
  counters: { errors: Record<string, number> };
}

interface CallsOutcome {
  connected: number;
  failed: number;
  timeout: number;
  notStarted: number;
  setupMs: number[];
}

// As the capacity ladder's.
const CONNECT_TIMEOUT_MS = 30_000;
const CONNECT_BUDGET = { baseMs: 60_000, perSocketMs: 5 };
const CONNECT_CONCURRENCY = 25;
const MAX_HOLD_EVENT_LOOP_P99_MS = 1_000;
const FILE_DESCRIPTOR_MARGIN = 32;
// A report a node takes longer than this to answer is a node that stopped answering.
const REPORT_TIMEOUT_MS = 30_000;

const agentNodeOf = (index: number, nodes: number) => index % nodes;
const visitorNodeOf = (index: number, nodes: number) => (index + 1) % nodes;

/** Sockets node `node` holds with `calls` calls up: the agents and visitors placed on it. */
function socketsOn(node: number, nodes: number, calls: number): number {
  let sockets = 0;
  for (let i = 0; i < calls; i++) sockets += Number(agentNodeOf(i, nodes) === node) + Number(visitorNodeOf(i, nodes) === node);
  return sockets;
}

function merge(records: Record<string, number>[]): Record<string, number> {
  const total: Record<string, number> = {};
  for (const record of records) for (const [key, count] of Object.entries(record)) total[key] = (total[key] ?? 0) + count;
  return total;
}

const describe = (record: Record<string, number>) =>
  Object.entries(record)
    .map(([key, count]) => `${count}× ${key}`)
    .join(', ');

const report = (server: ServerProcess, request: Parameters<ServerProcess['report']>[0] = {}) => server.report(request, REPORT_TIMEOUT_MS);
const reportAll = (nodes: readonly BenchNode[], request: Parameters<ServerProcess['report']>[0] = {}) => Promise.all(nodes.map((node) => report(node.server, request)));

async function gcMemory(server: ServerProcess): Promise<Memory> {
  const reports: ServerReport[] = [];
  for (let i = 0; i < 3; i++) reports.push(await report(server, { gc: true }));
  return { rss: median(reports.map((r) => r.memory.rss))!, heapUsed: median(reports.map((r) => r.memory.heapUsed))! };
}

async function clientStats(pool: WorkerPool) {
  const stats = await pool.all<WorkerStats>('stats', () => ({}));
  return {
    eventLoopDelayMaxMs: extent(stats.map((s) => s.eventLoopDelayMs.max))?.max ?? -Infinity,
    connected: stats.reduce((n, s) => n + s.connected, 0),
    legsConnected: stats.reduce((n, s) => n + s.legsConnected, 0),
    disconnectReasons: merge(stats.map((s) => s.disconnectReasons)),
    errors: merge(stats.map((s) => s.counters.errors)),
  };
}

const cpuMicros = (r: ServerReport) => r.cpu.user + r.cpu.system;

interface StepContext {
  options: ClusterLadderOptions & { placeOf: PlaceOf };
  base: Memory[];
  reached: number;
  calls: number;
  log: (line: string) => void;
}

async function runStep({ options, base, reached, calls, log }: StepContext): Promise<ClusterStep> {
  const { nodes, pool } = options;
  const n = nodes.length;
  const fresh = options.pairs.slice(reached, calls).map((pair, offset) => ({ pair, index: reached + offset }));
  const shares = split(fresh, pool.workers.length);
  log(`${options.label}: ${calls} calls (${fresh.length} new, ${2 * calls} sockets)`);
  await reportAll(nodes, { resetDelay: true });
  await clientStats(pool);

  const connectStarted = Date.now();
  const connectDeadline = connectStarted + CONNECT_BUDGET.baseMs + CONNECT_BUDGET.perSocketMs * 2 * fresh.length;
  // Each worker connects its share to every node at once, the connections in flight split between the nodes.
  const perNodeConcurrency = Math.max(1, Math.ceil(CONNECT_CONCURRENCY / n));
  const connected = await Promise.all(
    pool.workers.flatMap((worker) =>
      nodes.map((node, j) => {
        const identities = shares[worker.index]!.flatMap(({ pair, index }): Identity[] => [
          ...(agentNodeOf(index, n) === j ? [pair.agent] : []),
          ...(visitorNodeOf(index, n) === j ? [pair.visitor] : []),
        ]);
        if (identities.length === 0) return Promise.resolve({ reasons: {} as Record<string, number> });
        return worker.request<{ reasons: Record<string, number> }>(
          'connect',
          { url: node.server.url, identities, concurrency: perNodeConcurrency, timeoutMs: CONNECT_TIMEOUT_MS, deadlineAt: connectDeadline },
          connectDeadline - connectStarted + CONNECT_TIMEOUT_MS + 10_000,
        );
      }),
    ),
  );
  const connectMs = Date.now() - connectStarted;
  const refused = merge(connected.map((c) => c.reasons));
  let broke: string | null = Object.keys(refused).length > 0 ? `sockets failed to connect: ${describe(refused)}` : null;

  let setupMs = 0;
  let outcomes: CallsOutcome[] = [];
  if (!broke) {
    const budgetMs = options.setupBudget.baseMs + options.setupBudget.perCallMs * fresh.length;
    const started = Date.now();
    outcomes = await pool.all<CallsOutcome>(
      'calls',
      (worker) => ({ count: shares[worker.index]!.length, concurrency: options.setupConcurrency, timeoutMs: budgetMs, deadlineAt: started + budgetMs }),
      budgetMs + 70_000,
    );
    setupMs = Date.now() - started;
    const up = outcomes.reduce((sum, o) => sum + o.connected, 0);
    if (up < fresh.length) {
      const failed = outcomes.reduce((sum, o) => sum + o.failed, 0);
      const late = outcomes.reduce((sum, o) => sum + o.timeout + o.notStarted, 0);
      broke = `call setup failed: ${up} of ${fresh.length} new calls up in ${Math.round(setupMs / 1000)} s (budget ${Math.round(budgetMs / 1000)} s; ${failed} refused or ended, ${late} not up in time)`;
    }
  }
  const setupReports = await reportAll(nodes, { resetDelay: true });

  let holdReports: ServerReport[] | null = null;
  let holdMs: number | null = null;
  if (!broke) {
    const until = Date.now() + options.holdMs;
    // Asked every second as the capacity ladder does, so a node that stalls is seen during the hold.
    while (Date.now() < until) {
      await sleep(Math.min(1_000, until - Date.now()));
      await reportAll(nodes);
    }
    holdReports = await reportAll(nodes, { resetDelay: true });
    holdMs = median(holdReports.map((r, i) => r.at - setupReports[i]!.at));
  }
  const memory = await Promise.all(nodes.map((node) => gcMemory(node.server)));
  const clients = await clientStats(pool);
  const placement = options.placement ? await options.placement(options.placeOf) : null;

  const nodeSteps: NodeStep[] = nodes.map((node, j) => {
    const hold = holdReports?.[j];
    const setup = setupReports[j]!;
    const ms = hold ? hold.at - setup.at : null;
    return {
      name: node.name,
      sockets: socketsOn(j, n, calls),
      fileLimit: node.server.fileLimit,
      cpuPercent: hold && ms ? (100 * (cpuMicros(hold) - cpuMicros(setup))) / (ms * 1000) : null,
      holdEventLoopDelayMs: hold?.eventLoopDelayMs ?? null,
      setupEventLoopDelayMs: setup.eventLoopDelayMs,
      memory: memory[j]!,
      actors: (hold ?? setup).actors,
    };
  });
  const holdP99 = holdReports ? extent(nodeSteps.map((s) => s.holdEventLoopDelayMs!.p99))!.max : null;
  if (!broke) {
    if (clients.connected < 2 * calls) {
      broke = `sockets dropped: ${2 * calls - clients.connected} of ${2 * calls} (${describe(clients.disconnectReasons)}; client workers' event-loop delay max ${Math.round(clients.eventLoopDelayMaxMs)} ms)`;
    } else if (clients.legsConnected < 2 * calls) {
      broke = `calls dropped: ${2 * calls - clients.legsConnected} of ${2 * calls} legs no longer connected`;
    } else if (holdP99 !== null && holdP99 > MAX_HOLD_EVENT_LOOP_P99_MS) {
      const worst = nodeSteps.reduce((a, b) => (b.holdEventLoopDelayMs!.p99 > a.holdEventLoopDelayMs!.p99 ? b : a));
      broke = `event-loop delay p99 ${Math.round(holdP99)} ms over the hold on ${worst.name}`;
    }
  }
  const sum = (pick: (m: Memory) => number) => memory.reduce((total, m) => total + pick(m), 0);
  const baseSum = (pick: (m: Memory) => number) => base.reduce((total, m) => total + pick(m), 0);
  const cpus = nodeSteps.map((s) => s.cpuPercent);
  return {
    calls,
    sockets: 2 * calls,
    loadAverage: os.loadavg()[0]!,
    connectMs,
    setupMs,
    setupRatePerS: setupMs > 0 ? fresh.length / (setupMs / 1000) : null,
    callSetupMs: summarize(outcomes.flatMap((o) => o.setupMs)),
    holdMs,
    nodes: nodeSteps,
    perCall: { rss: (sum((m) => m.rss) - baseSum((m) => m.rss)) / calls, heapUsed: (sum((m) => m.heapUsed) - baseSum((m) => m.heapUsed)) / calls },
    cpuPercent: cpus.every((c) => c !== null) ? cpus.reduce((a, b) => a! + b!, 0) : null,
    holdEventLoopP99Ms: holdP99,
    setupEventLoopP99Ms: extent(nodeSteps.map((s) => s.setupEventLoopDelayMs.p99))!.max,
    actorCalls: nodeSteps.reduce((total, s) => total + s.actors.calls, 0),
    placement,
    clients,
    broke,
  };
}

/** Steps `options.nodes` up until a step breaks; kills no node (the caller owns them) but resets the workers. */
export async function runClusterLadder(options: ClusterLadderOptions): Promise<ClusterLadderResult> {
  const { nodes, pool } = options;
  const began = Date.now();
  const log = (line: string) => options.log(`[${((Date.now() - began) / 1000).toFixed(1)} s] ${line}`);
  try {
    const base = await Promise.all(nodes.map((node) => gcMemory(node.server)));
    const result: ClusterLadderResult = {
      label: options.label,
      nodeNames: nodes.map((node) => node.name),
      code: nodes.map((node) => node.server.code),
      fileLimits: nodes.map((node) => node.server.fileLimit),
      base,
      steps: [],
      broke: null,
    };
    const n = nodes.length;
    const placeOf: PlaceOf = {
      agent: new Map(options.pairs.map((pair, i) => [pair.agent.id, agentNodeOf(i, n)])),
      visitor: new Map(options.pairs.map((pair, i) => [pair.visitor.id, visitorNodeOf(i, n)])),
    };
    let reached = 0;
    for (const calls of options.steps) {
      const short = nodes.findIndex((node, j) => node.server.fileLimit !== null && node.server.fileLimit < socketsOn(j, nodes.length, calls) + FILE_DESCRIPTOR_MARGIN);
      if (short >= 0) {
        const node = nodes[short]!;
        const reason = `${node.name}'s open-file limit (${node.server.fileLimit}, as far as the host lets it be raised) is below the ${socketsOn(short, nodes.length, calls)} sockets it would hold at ${calls} calls`;
        log(`${options.label}: ${calls} calls: not attempted (${reason})`);
        result.broke = { calls, reason };
        break;
      }
      let step: ClusterStep;
      try {
        step = await runStep({ options: { ...options, placeOf }, base, reached, calls, log });
      } catch (error) {
        const dead = nodes.filter((node) => node.server.exited()).map((node) => node.name);
        const reason =
          (dead.length > 0 ? `${dead.join(', ')} died; ` : '') +
          `a node or the clients failed: ${(error instanceof Error ? error.message : String(error)).split('\n').slice(0, 3).join(' ')}`;
        log(`${options.label}: ${calls} calls: BROKE (${reason})`);
        result.broke = { calls, reason };
        break;
      }
      result.steps.push(step);
      log(
        `${options.label}: ${calls} calls: ${step.broke ? `BROKE (${step.broke})` : 'held'}` +
          (step.cpuPercent !== null ? `; nodes' cpu ${step.cpuPercent.toFixed(0)} %` : '') +
          (step.holdEventLoopP99Ms !== null ? `, hold eld p99 (worst node) ${step.holdEventLoopP99Ms.toFixed(0)} ms` : '') +
          `, setup eld p99 ${step.setupEventLoopP99Ms.toFixed(0)} ms, ${step.setupRatePerS?.toFixed(0) ?? '–'} calls/s` +
          (step.placement ? `, ${step.placement.crossNode} of ${step.placement.liveCalls} live calls across nodes` : '') +
          `, load average ${step.loadAverage.toFixed(1)}`,
      );
      if (step.broke) {
        result.broke = { calls, reason: step.broke };
        break;
      }
      reached = calls;
    }
    return result;
  } finally {
    await pool.all('reset', () => ({})).catch(() => {});
  }
}
