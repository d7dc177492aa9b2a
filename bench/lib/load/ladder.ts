/**
 * The capacity benchmark's step-up: one fresh server process, then for each step the clients up to that
 * many calls connect (and, with calls, set their calls up), the server holds them for a while with Socket.IO's
 * heartbeats running, and the server reports its memory, CPU and event-loop delay. The ladder stops at the
 * first step that breaks: setup fails or overruns its budget, sockets or calls drop, or the event-loop delay's
 * p99 over the hold passes 1 s.
 */
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { extent, median, summarize, type Summary } from '../stats.ts';
import type { CallPair, Identity } from './identities.ts';
import { startServerProcess, type ServerProcess } from './serverProcess.ts';
import type { ServerReport } from './serverProtocol.ts';
import { split, type WorkerPool } from './workerPool.ts';

export type LadderMode = 'calls' | 'idle';

export interface LadderOptions {
  mode: LadderMode;
  steps: readonly number[];
  pairs: readonly CallPair[];
  serverEnv: Record<string, string>;
  /** Workers running `callWorker.ts`, holding no sockets yet; they are reset when the ladder ends. */
  pool: WorkerPool;
  holdMs: number;
  /** Calls being set up at once, per worker. */
  setupConcurrency: number;
  /** Setup time allowed for a step: a fixed allowance plus so much per new call. */
  setupBudget: { baseMs: number; perCallMs: number };
  log: (line: string) => void;
}

export interface MemoryFigures {
  rss: number;
  heapUsed: number;
  external: number;
}

export interface StepResult {
  calls: number;
  sockets: number;
  /** The host's 1-minute load average at the end of the step: the machine is shared, and this says how much. */
  loadAverage: number;
  connectMs: number;
  /** Wall time of the calls' setup (0 when idle). */
  setupMs: number;
  setupRatePerS: number | null;
  /** Visitor request to the visitor's leg connected, per call. */
  callSetupMs: Summary;
  setupEventLoopDelayMs: ServerReport['eventLoopDelayMs'];
  /** Null when the step broke before its hold. */
  hold: {
    ms: number;
    cpuPercent: number;
    eventLoopDelayMs: ServerReport['eventLoopDelayMs'];
    samples: { at: number; rss: number; heapUsed: number }[];
  } | null;
  /** Medians of three reports taken after a full garbage collection, at the end of the hold. */
  memory: MemoryFigures;
  /** (memory − memory before any client) / calls. */
  perCall: MemoryFigures;
  actors: ServerReport['actors'];
  serverSockets: number;
  clients: { eventLoopDelayMaxMs: number; connected: number; legsConnected: number; disconnectReasons: Record<string, number>; errors: Record<string, number> };
  snapshotBytes: { routing: Summary; callSession: Summary; perCall: Summary } | null;
  broke: string | null;
}

export interface LadderResult {
  mode: LadderMode;
  fileLimit: number | null;
  /** Fingerprint of the server source the ladder's server ran (`codeFingerprint.ts`). */
  code: string;
  /** The server before any client, after a full garbage collection (medians of three). */
  base: MemoryFigures;
  steps: StepResult[];
  /** The first step that broke, and why; null when every step held. */
  broke: { calls: number; reason: string } | null;
}

interface WorkerStats {
  eventLoopDelayMs: { p99: number; max: number };
  sockets: number;
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

const CONNECT_TIMEOUT_MS = 30_000;
const CONNECT_BUDGET = { baseMs: 60_000, perSocketMs: 5 };
const CONNECT_CONCURRENCY = 25;
const MAX_HOLD_EVENT_LOOP_P99_MS = 1_000;
// The server's own descriptors besides its client sockets: the database and its journal, stdio, IPC, epoll, the listener.
const FILE_DESCRIPTOR_MARGIN = 32;

/** Every socket is a file descriptor on the server: past its limit a step cannot hold, however it is run. */
export function fileLimitTooLow(fileLimit: number | null, calls: number): boolean {
  return fileLimit !== null && fileLimit < 2 * calls + FILE_DESCRIPTOR_MARGIN;
}

async function gcMemory(server: ServerProcess): Promise<MemoryFigures> {
  const reports: ServerReport[] = [];
  for (let i = 0; i < 3; i++) reports.push(await server.report({ gc: true }));
  const of = (pick: (r: ServerReport) => number) => median(reports.map(pick))!;
  return { rss: of((r) => r.memory.rss), heapUsed: of((r) => r.memory.heapUsed), external: of((r) => r.memory.external) };
}

const cpuMicros = (report: ServerReport) => report.cpu.user + report.cpu.system;

function merge(records: Record<string, number>[]): Record<string, number> {
  const total: Record<string, number> = {};
  for (const record of records) for (const [key, count] of Object.entries(record)) total[key] = (total[key] ?? 0) + count;
  return total;
}

async function clientStats(pool: WorkerPool) {
  const stats = await pool.all<WorkerStats>('stats', () => ({}));
  return {
    /** The worst of the client workers since the step began. */
    eventLoopDelayMaxMs: extent(stats.map((s) => s.eventLoopDelayMs.max))?.max ?? -Infinity,
    connected: stats.reduce((n, s) => n + s.connected, 0),
    legsConnected: stats.reduce((n, s) => n + s.legsConnected, 0),
    disconnectReasons: merge(stats.map((s) => s.disconnectReasons)),
    errors: merge(stats.map((s) => s.counters.errors)),
  };
}

const describe = (record: Record<string, number>) =>
  Object.entries(record)
    .map(([key, count]) => `${count}× ${key}`)
    .join(', ');

interface StepContext {
  options: LadderOptions;
  server: ServerProcess;
  base: MemoryFigures;
  /** Calls (socket pairs) already up from the steps before. */
  reached: number;
  calls: number;
  log: (line: string) => void;
}

/** One step: connect the new sockets, set up their calls, hold, measure. Throws when the server or a worker fails. */
async function runStep({ options, server, base, reached, calls, log }: StepContext): Promise<StepResult> {
  const { mode, pool } = options;
  const fresh = options.pairs.slice(reached, calls);
  const shares = split(fresh, pool.workers.length);
  log(`${mode}: ${calls} calls (${fresh.length} new, ${2 * calls} sockets)`);
  await server.report({ resetDelay: true });
  await clientStats(pool);

  const connectStarted = Date.now();
  // Bounded however slowly the server takes the sockets: a step that cannot connect them by then has broken.
  const connectDeadline = connectStarted + CONNECT_BUDGET.baseMs + CONNECT_BUDGET.perSocketMs * 2 * fresh.length;
  const connected = await pool.all<{ connected: number; failed: number; reasons: Record<string, number> }>(
    'connect',
    (worker) => ({
      url: server.url,
      identities: shares[worker.index]!.flatMap((pair): Identity[] => [pair.agent, pair.visitor]),
      concurrency: CONNECT_CONCURRENCY,
      timeoutMs: CONNECT_TIMEOUT_MS,
      deadlineAt: connectDeadline,
    }),
    connectDeadline - connectStarted + CONNECT_TIMEOUT_MS + 10_000,
  );
  const connectMs = Date.now() - connectStarted;
  const refused = merge(connected.map((c) => c.reasons));
  let broke: string | null = Object.keys(refused).length > 0 ? `sockets failed to connect: ${describe(refused)}` : null;

  let setupMs = 0;
  let outcomes: CallsOutcome[] = [];
  if (!broke && mode === 'calls') {
    const budgetMs = options.setupBudget.baseMs + options.setupBudget.perCallMs * fresh.length;
    const started = Date.now();
    outcomes = await pool.all<CallsOutcome>(
      'calls',
      (worker) => ({ count: shares[worker.index]!.length, concurrency: options.setupConcurrency, timeoutMs: budgetMs, deadlineAt: started + budgetMs }),
      budgetMs + 70_000,
    );
    setupMs = Date.now() - started;
    const up = outcomes.reduce((n, o) => n + o.connected, 0);
    if (up < fresh.length) {
      const failed = outcomes.reduce((n, o) => n + o.failed, 0);
      const late = outcomes.reduce((n, o) => n + o.timeout + o.notStarted, 0);
      broke = `call setup failed: ${up} of ${fresh.length} new calls up in ${Math.round(setupMs / 1000)} s (budget ${Math.round(budgetMs / 1000)} s; ${failed} refused or ended, ${late} not up in time)`;
    }
  }
  const setupReport = await server.report({ resetDelay: true });

  let hold: StepResult['hold'] = null;
  let holdEnd = setupReport;
  if (!broke) {
    const samples: NonNullable<StepResult['hold']>['samples'] = [];
    const until = Date.now() + options.holdMs;
    while (Date.now() < until) {
      await sleep(Math.min(1_000, until - Date.now()));
      const sample = await server.report();
      samples.push({ at: sample.at - setupReport.at, rss: sample.memory.rss, heapUsed: sample.memory.heapUsed });
    }
    holdEnd = await server.report({ resetDelay: true });
    const ms = holdEnd.at - setupReport.at;
    hold = { ms, cpuPercent: (100 * (cpuMicros(holdEnd) - cpuMicros(setupReport))) / (ms * 1000), eventLoopDelayMs: holdEnd.eventLoopDelayMs, samples };
  }
  const sizes = mode === 'calls' ? (await server.report({ snapshots: true })).snapshotBytes : undefined;
  const memory = await gcMemory(server);
  const clients = await clientStats(pool);
  if (!broke) {
    const expectedLegs = mode === 'calls' ? 2 * calls : 0;
    if (clients.connected < 2 * calls) {
      broke =
        `sockets dropped: ${2 * calls - clients.connected} of ${2 * calls} (${describe(clients.disconnectReasons)}; ` +
        `server event-loop delay max ${Math.round(Math.max(setupReport.eventLoopDelayMs.max, hold?.eventLoopDelayMs.max ?? 0))} ms, client workers' ${Math.round(clients.eventLoopDelayMaxMs)} ms)`;
    }
    else if (clients.legsConnected < expectedLegs) broke = `calls dropped: ${expectedLegs - clients.legsConnected} of ${expectedLegs} legs no longer connected`;
    else if (hold && hold.eventLoopDelayMs.p99 > MAX_HOLD_EVENT_LOOP_P99_MS) broke = `event-loop delay p99 ${Math.round(hold.eventLoopDelayMs.p99)} ms over the hold`;
  }
  return {
    calls,
    sockets: 2 * calls,
    loadAverage: os.loadavg()[0]!,
    connectMs,
    setupMs,
    setupRatePerS: mode === 'calls' && setupMs > 0 ? fresh.length / (setupMs / 1000) : null,
    callSetupMs: summarize(outcomes.flatMap((o) => o.setupMs)),
    setupEventLoopDelayMs: setupReport.eventLoopDelayMs,
    hold,
    memory,
    perCall: {
      rss: (memory.rss - base.rss) / calls,
      heapUsed: (memory.heapUsed - base.heapUsed) / calls,
      external: (memory.external - base.external) / calls,
    },
    actors: holdEnd.actors,
    serverSockets: holdEnd.sockets,
    clients,
    snapshotBytes: sizes ? { routing: summarize(sizes.routing), callSession: summarize(sizes.callSession), perCall: summarize(sizes.perCall) } : null,
    broke,
  };
}

export async function runLadder(options: LadderOptions): Promise<LadderResult> {
  const { mode, pool } = options;
  const began = Date.now();
  const log = (line: string) => options.log(`[${((Date.now() - began) / 1000).toFixed(1)} s] ${line}`);
  const server = await startServerProcess({ ...options.serverEnv, PORT: '0' });
  try {
    log(`${mode}: server started`);
    const base = await gcMemory(server);
    const result: LadderResult = { mode, fileLimit: server.fileLimit, code: server.code, base, steps: [], broke: null };
    let reached = 0;
    for (const calls of options.steps) {
      if (fileLimitTooLow(server.fileLimit, calls)) {
        const reason = `the server's open-file limit (${server.fileLimit}, as far as the host lets it be raised) is below the ${2 * calls} sockets of ${calls} calls`;
        log(`${mode}: ${calls} calls: not attempted (${reason})`);
        result.broke = { calls, reason };
        break;
      }
      let step: StepResult;
      try {
        step = await runStep({ options, server, base, reached, calls, log });
      } catch (error) {
        // The server died (out of file descriptors, out of memory) or stopped answering: that step broke.
        const reason = `the server or the clients failed: ${(error instanceof Error ? error.message : String(error)).split('\n').slice(0, 3).join(' ')}`;
        log(`${mode}: ${calls} calls: BROKE (${reason})`);
        result.broke = { calls, reason };
        break;
      }
      result.steps.push(step);
      log(
        `${mode}: ${calls} calls: ${step.broke ? `BROKE (${step.broke})` : 'held'}; heap ${(step.memory.heapUsed / 2 ** 20).toFixed(0)} MiB` +
          (step.hold ? `, cpu ${step.hold.cpuPercent.toFixed(0)} %, hold eld p99 ${step.hold.eventLoopDelayMs.p99.toFixed(0)} ms` : '') +
          `, setup eld p99 ${step.setupEventLoopDelayMs.p99.toFixed(0)} ms, client workers' eld max ${step.clients.eventLoopDelayMaxMs.toFixed(0)} ms, load average ${step.loadAverage.toFixed(1)}`,
      );
      if (step.broke) {
        result.broke = { calls, reason: step.broke };
        break;
      }
      reached = calls;
    }
    return result;
  } finally {
    await server.kill();
    await pool.all('reset', () => ({})).catch(() => {});
  }
}
