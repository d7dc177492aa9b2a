/**
 * Capacity: how many concurrent calls (signaling only, no media) one server process holds with steady
 * heartbeats, and what each costs in memory, CPU and persisted actor state. The server runs in its own
 * process (`lib/load/serverEntry.ts`) and measures itself; the simulated agents and visitors are plain
 * socket.io-client sockets in worker processes. Calls step up until a step breaks (setup fails or overruns,
 * sockets or calls drop, or the event-loop delay's p99 passes 1 s over the hold). The baseline, in the same
 * run, is the same number of idle connected sockets (agents online, visitors connected, no calls) on a fresh
 * server: the ratio is what the routing and callSession machines cost on top of the sockets.
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '@callchart/server/config';
import { atLeast, atMost, type Benchmark, type Figure } from './lib/bench.ts';
import { prepareFleet, type Fleet } from './lib/fleet.ts';
import { codeChangedNote } from './lib/load/codeFingerprint.ts';
import { callPairs, type CallPair } from './lib/load/identities.ts';
import { fileLimitTooLow, runLadder, type LadderResult, type StepResult } from './lib/load/ladder.ts';
import { startWorkers, type WorkerPool } from './lib/load/workerPool.ts';
import { linePlotSvg } from './lib/plot.ts';
import { ratio } from './lib/stats.ts';

const TARGET_CALLS = 10_000;
const TARGET_STATE_PER_CALL_KB = 10;
const MAX_EVENT_LOOP_P99_MS = 1_000;
const KB = 1000;
// The server's Socket.IO heartbeat at its defaults (PING_INTERVAL_MS, PING_TIMEOUT_MS): a full hold sees
// several heartbeats on every socket.
const { pingIntervalMs, pingTimeoutMs } = loadConfig({}).timings;
const HEARTBEAT = { pingIntervalMs, pingTimeoutMs };
// The steps below 1,000 are there so that a break early on still leaves measured steps to read the costs from. The quick steps stay below
// the few hundred calls where setup already takes the server tens of seconds, so the smoke run stays short.
const PLAN = {
  full: { steps: [50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000], workers: 4, holdMs: 25_000, setupBudget: { baseMs: 60_000, perCallMs: 50 } },
  quick: { steps: [20, 40], workers: 2, holdMs: 2_000, setupBudget: { baseMs: 15_000, perCallMs: 50 } },
};
type Plan = (typeof PLAN)['full'];
// Calls being set up at once across the workers: a steady arrival of calls rather than a burst, so that a break
// is about the calls held, not about how fast they were thrown at the server.
const SETUP_IN_FLIGHT = 8;

const kb = (bytes: number | null | undefined) => (bytes === null || bytes === undefined ? null : Math.round((bytes / KB) * 10) / 10);
const round = (value: number | null | undefined, digits = 1) => (value === null || value === undefined ? null : Math.round(value * 10 ** digits) / 10 ** digits);

function stepAt(ladder: LadderResult, calls: number | undefined): StepResult | undefined {
  return calls === undefined ? undefined : ladder.steps.find((step) => step.calls === calls);
}

interface Context {
  plan: Plan;
  fleet: Fleet;
  pairs: CallPair[];
  pool: WorkerPool;
  scratchDir: string;
  log: (line: string) => void;
}

async function measure({ plan, fleet, pairs, pool, scratchDir, log }: Context) {
  const maxCalls = plan.steps.at(-1)!;
  // Each ladder starts from the seeded database alone: nothing restored, nothing left by the other ladder.
  const freshEnv = (name: string) => {
    const databasePath = path.join(scratchDir, `${name}.db`);
    copyFileSync(fleet.databasePath, databasePath);
    return { ...fleet.env, DATABASE_PATH: databasePath };
  };
  const setupConcurrency = Math.ceil(SETUP_IN_FLIGHT / plan.workers);
  const common = { pairs, pool, holdMs: plan.holdMs, setupConcurrency, setupBudget: plan.setupBudget, log };

  const calls = await runLadder({ ...common, mode: 'calls', steps: plan.steps, serverEnv: freshEnv('calls') });
  const held = calls.steps.filter((step) => !step.broke);
  const last = held.at(-1);
  // The whole ladder for the baseline too: how far the sockets alone go tells the machines' limit from the socket layer's.
  const idle = await runLadder({ ...common, mode: 'idle', steps: plan.steps, serverEnv: freshEnv('idle') });
  const idleHeld = idle.steps.filter((step) => !step.broke).at(-1)?.calls ?? 0;

  const at = last ?? calls.steps.at(-1);
  const idleAt = stepAt(idle, at?.calls);
  const first = calls.steps[0];
  const heldCalls = last?.calls ?? 0;
  const codeNote = codeChangedNote([calls.code, idle.code]);
  const brokeNote = calls.broke ? `broke at ${calls.broke.calls} calls: ${calls.broke.reason}` : `every step up to ${maxCalls} held`;
  const fdLimited = calls.broke !== null && fileLimitTooLow(calls.fileLimit, calls.broke.calls);
  const fdNote =
    !fdLimited && fileLimitTooLow(calls.fileLimit, TARGET_CALLS)
      ? ` The server's open-file limit here is ${calls.fileLimit} (as high as the host let it be raised), below the ${2 * TARGET_CALLS} sockets of ${TARGET_CALLS} calls.`
      : '';
  const criteria =
    ` A step breaks when its new calls are not all up within ${plan.setupBudget.baseMs / 1000} s + ${plan.setupBudget.perCallMs} ms per call, ` +
    `when sockets or calls drop, or when the event-loop delay p99 over the hold passes ${MAX_EVENT_LOOP_P99_MS} ms.`;
  const where = at ? `at ${at.calls} calls` : '';
  const measuredNote = at && at.broke ? ' Measured at the step that broke, the largest one reached.' : '';
  const stateNote =
    first?.snapshotBytes && at?.snapshotBytes
      ? `Routing snapshot ${kb(at.snapshotBytes.routing.p50)} kB + callSession ${kb(at.snapshotBytes.callSession.p50)} kB (medians); the baseline is the same at the first step, so the ratio is how the state grows with the calls.`
      : undefined;

  const figures: Figure[] = [
    {
      name: 'concurrent calls held',
      value: heldCalls,
      unit: 'calls',
      baseline: { name: 'idle socket pairs held', value: idleHeld },
      ratio: ratio(heldCalls, idleHeld),
      target: `≥ ${TARGET_CALLS} calls`,
      met: atLeast(heldCalls, TARGET_CALLS),
      note: `${codeNote ? `${codeNote} ` : ''}Calls ${brokeNote}. Idle socket pairs ${idle.broke ? `broke at ${idle.broke.calls}: ${idle.broke.reason}` : `held every step up to ${maxCalls}`}.${fdNote}${criteria}`,
    },
    {
      name: `server heap per call ${where}`.trim(),
      value: kb(at?.perCall.heapUsed),
      unit: 'kB',
      baseline: { name: 'idle socket pair', value: kb(idleAt?.perCall.heapUsed) },
      ratio: ratio(at?.perCall.heapUsed, idleAt?.perCall.heapUsed),
      note: `Live heap after a full GC, minus the server's before any client, divided by the calls; median of three.${measuredNote}`,
    },
    {
      name: `server heap per actor ${where}`.trim(),
      value: kb(at ? at.perCall.heapUsed / 2 : null),
      unit: 'kB',
      note: 'Per call / 2 (one request tree per call: its routing actor and the callSession it invokes); includes the sockets and rooms of the call.',
    },
    {
      name: `server RSS per call ${where}`.trim(),
      value: kb(at?.perCall.rss),
      unit: 'kB',
      baseline: { name: 'idle socket pair', value: kb(idleAt?.perCall.rss) },
      // RSS moves with what the allocator keeps or returns: a small idle delta can come out below zero.
      ratio: (idleAt?.perCall.rss ?? 0) > 0 ? ratio(at?.perCall.rss, idleAt?.perCall.rss) : null,
      note: 'Resident set after a full GC, minus the server before any client; noisier than the heap, and for a few idle sockets within the noise.',
    },
    {
      name: `actor state per call ${where}`.trim(),
      value: kb(at?.snapshotBytes?.perCall.p50),
      unit: 'kB',
      baseline: { name: `at ${first?.calls ?? '–'} calls`, value: kb(first?.snapshotBytes?.perCall.p50) },
      ratio: ratio(at?.snapshotBytes?.perCall.p50, first?.snapshotBytes?.perCall.p50),
      target: `≤ ${TARGET_STATE_PER_CALL_KB} kB`,
      met: atMost(kb(at?.snapshotBytes?.perCall.p50), TARGET_STATE_PER_CALL_KB),
      ...(stateNote ? { note: `Persisted snapshot JSON (actor_snapshots): each request's tree, its routing and the callSession inside it, median over the calls. ${stateNote}` } : {}),
    },
    {
      name: `server CPU during the hold ${where}`.trim(),
      value: round(at?.hold?.cpuPercent),
      unit: '% of a core',
      baseline: { name: 'idle sockets', value: round(idleAt?.hold?.cpuPercent) },
      ratio: ratio(at?.hold?.cpuPercent, idleAt?.hold?.cpuPercent),
      note: `Over a ${Math.round(plan.holdMs / 1000)} s hold with nothing but Socket.IO heartbeats (a ping every ${HEARTBEAT.pingIntervalMs / 1000} s, PING_INTERVAL_MS's default).`,
    },
    {
      name: `event-loop delay p99 during the hold ${where}`.trim(),
      value: round(at?.hold?.eventLoopDelayMs.p99),
      unit: 'ms',
      baseline: { name: 'idle sockets', value: round(idleAt?.hold?.eventLoopDelayMs.p99) },
      ratio: ratio(at?.hold?.eventLoopDelayMs.p99, idleAt?.hold?.eventLoopDelayMs.p99),
      target: `≤ ${MAX_EVENT_LOOP_P99_MS} ms`,
      met: atMost(at?.hold?.eventLoopDelayMs.p99 ?? null, MAX_EVENT_LOOP_P99_MS),
      note: 'monitorEventLoopDelay (10 ms resolution) in the server process; the resolution is its floor.',
    },
    {
      name: `event-loop delay p99 while calls were set up ${where}`.trim(),
      value: round(at?.setupEventLoopDelayMs.p99),
      unit: 'ms',
      baseline: { name: 'idle sockets connecting', value: round(idleAt?.setupEventLoopDelayMs.p99) },
      ratio: ratio(at?.setupEventLoopDelayMs.p99, idleAt?.setupEventLoopDelayMs.p99),
      note: `While the step's new sockets connected and its calls were set up, ${setupConcurrency * plan.workers} at a time; max ${round(at?.setupEventLoopDelayMs.max, 0) ?? '–'} ms.`,
    },
    {
      name: `call setup rate ${where}`.trim(),
      value: round(at?.setupRatePerS),
      unit: 'calls/s',
      note: `Median request-to-connected time ${round(at?.callSetupMs.p50, 0) ?? '–'} ms per call (p99 ${round(at?.callSetupMs.p99, 0) ?? '–'} ms), ${setupConcurrency * plan.workers} in flight.`,
    },
  ];

  const series = (ladder: LadderResult, pick: (step: StepResult) => number) =>
    ladder.steps.map((step) => ({ x: step.calls, y: Math.round(pick(step) * 10) / 10, ...(step.broke ? { label: 'broke' } : {}) }));
  const plots = [
    {
      file: 'capacity.svg',
      svg: linePlotSvg({
        title: 'Server heap per call as calls step up',
        xLabel: 'concurrent calls',
        yLabel: 'kB per call (live heap after GC)',
        series: [
          { name: 'calls', points: series(calls, (s) => s.perCall.heapUsed / KB) },
          { name: 'idle socket pairs', points: series(idle, (s) => s.perCall.heapUsed / KB) },
        ],
        note: brokeNote,
      }),
    },
  ];

  return {
    figures,
    data: {
      plan: { ...plan, setupConcurrencyPerWorker: setupConcurrency, heartbeat: { ...HEARTBEAT, configurable: true } },
      serverLogLevel: 'warn',
      code: { calls: calls.code, idle: idle.code, changedDuringRun: codeNote !== undefined },
      calls,
      idle,
    },
    plots,
  };
}

const capacity: Benchmark = {
  name: 'capacity',
  title: 'Capacity: concurrent calls one server process holds, memory and CPU per call',
  async run({ quick, log, scratchDir }) {
    const plan = quick ? PLAN.quick : PLAN.full;
    const maxCalls = plan.steps.at(-1)!;
    const starting = startWorkers('bench/lib/load/callWorker.ts', plan.workers);
    // Seeding overlaps the workers' start; a failed start is awaited (and thrown) below.
    starting.catch(() => {});
    log(`seeding ${maxCalls} agents and signing ${2 * maxCalls} tokens`);
    const fleetDir = path.join(scratchDir, 'fleet');
    mkdirSync(fleetDir);
    const fleet = await prepareFleet(fleetDir, maxCalls);
    const pairs = await callPairs(fleet);
    const pool = await starting;
    try {
      return await measure({ plan, fleet, pairs, pool, scratchDir, log });
    } finally {
      await pool.close();
    }
  },
};

export default capacity;
