/**
 * One reconnect-storm run: a server process with calls set up by one kind of client (`stormWorker.ts`), then,
 * per round, SIGKILL and an immediate restart on the same port and database, and everything the clients and
 * the restarted server saw until every session was resumed (or expired), or the deadline passed.
 */
import { copyFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../../../test/support/server.ts';
import type { Fleet } from '../fleet.ts';
import type { CallPair, Identity } from './identities.ts';
import { ReportTimeout, startServerProcess, type ServerProcess } from './serverProcess.ts';
import type { ServerReport } from './serverProtocol.ts';
import type { StormClientMode, Timeline } from './stormWorker.ts';
import { split, type WorkerPool } from './workerPool.ts';

export interface StormPlan {
  calls: number;
  rounds: number;
  setupBudgetMs: number;
  /** How long after the restart's listen the clients are given to resume. */
  resumeDeadlineMs: number;
  setupInFlight: number;
}

export interface StormRound {
  /** Fingerprint of the server source the restarted server ran (`codeFingerprint.ts`). */
  code: string;
  killAt: number;
  /** The restarted server's listen. */
  listeningAt: number;
  /** Module loading, store opening and the restore of every persisted actor, as the new process timed it. */
  serverStartMs: number;
  restored: { requests: number; calls: number };
  /** Until every client had resumed or expired, or the deadline. */
  endedAt: number;
  deadlineHit: boolean;
  /** The restarted server exited during the storm (its output's tail is in `error`). */
  crashed: boolean;
  error: string | null;
  /** Since the listen; the last report the server answered when it crashed. */
  eventLoopDelayMs: ServerReport['eventLoopDelayMs'] | null;
  /** Progress every ~second: clients resumed so far, and the event-loop delay p99 and max since the listen. */
  progress: { atMs: number; resumed: number; expired: number; p99: number; max: number }[];
  timelines: Timeline[];
}

export interface StormRun {
  mode: StormClientMode;
  /** Fingerprints of the server source each of the run's server processes ran, in order. */
  code: string[];
  clients: number;
  callsWanted: number;
  callsUp: number;
  setupMs: number;
  rounds: StormRound[];
  /** Why the run stopped early, when it did. */
  error: string | null;
}

interface Stats {
  clients: number;
  connected: number;
  resumed: number;
  expired: number;
  legsConnected: number;
}

const CONNECT_CONCURRENCY = 25;
const CONNECT_TIMEOUT_MS = 60_000;
const POLL_MS = 1_000;
const REPORT_TIMEOUT_MS = 2_000;

async function totals(pool: WorkerPool): Promise<Stats> {
  const all = await pool.all<Stats>('stats', () => ({}));
  const sum = (pick: (s: Stats) => number) => all.reduce((n, s) => n + pick(s), 0);
  return { clients: sum((s) => s.clients), connected: sum((s) => s.connected), resumed: sum((s) => s.resumed), expired: sum((s) => s.expired), legsConnected: sum((s) => s.legsConnected) };
}

export async function runStorm(options: {
  mode: StormClientMode;
  plan: StormPlan;
  fleet: Fleet;
  pairs: readonly CallPair[];
  pool: WorkerPool;
  scratchDir: string;
  log: (line: string) => void;
  /** Set up only this many calls (the rest of the clients stay connected without one), within `setupBudgetMs`. */
  callLimit?: number;
  setupBudgetMs?: number;
}): Promise<StormRun> {
  const { mode, plan, fleet, pool } = options;
  const began = Date.now();
  const log = (line: string) => options.log(`[${((Date.now() - began) / 1000).toFixed(1)} s] ${mode}: ${line}`);
  const databasePath = path.join(options.scratchDir, `storm-${mode}.db`);
  copyFileSync(fleet.databasePath, databasePath);
  const env = { ...fleet.env, DATABASE_PATH: databasePath, PORT: String(await freePort()) };
  const pairs = options.pairs.slice(0, plan.calls);
  const shares = split(pairs, pool.workers.length);
  const callsWanted = Math.min(options.callLimit ?? pairs.length, pairs.length);
  const setupBudgetMs = options.setupBudgetMs ?? plan.setupBudgetMs;
  const run: StormRun = { mode, code: [], clients: 2 * pairs.length, callsWanted, callsUp: 0, setupMs: 0, rounds: [], error: null };
  let server: ServerProcess = await startServerProcess(env);
  run.code.push(server.code);
  try {
    const connected = await pool.all<{ ready: number; failed: number }>(
      'connect',
      (worker) => ({ url: server.url, mode, identities: shares[worker.index]!.flatMap((p): Identity[] => [p.agent, p.visitor]), concurrency: CONNECT_CONCURRENCY, timeoutMs: CONNECT_TIMEOUT_MS }),
      CONNECT_TIMEOUT_MS * Math.ceil(pairs.length / CONNECT_CONCURRENCY) + 10_000,
    );
    const failed = connected.reduce((n, c) => n + c.failed, 0);
    log(`${run.clients - failed} of ${run.clients} clients connected`);
    if (failed > 0) throw new Error(`${failed} of ${run.clients} clients did not connect`);

    const setupStarted = Date.now();
    const deadlineAt = setupStarted + setupBudgetMs;
    const concurrency = Math.ceil(plan.setupInFlight / pool.workers.length);
    const quotas = split(Array.from({ length: callsWanted }), pool.workers.length).map((share) => share.length);
    const calls = await pool.all<{ connected: number; failed: number }>(
      'calls',
      (worker) => ({ count: quotas[worker.index]!, concurrency, timeoutMs: setupBudgetMs, deadlineAt }),
      setupBudgetMs + 70_000,
    );
    run.setupMs = Date.now() - setupStarted;
    // Both legs up: the agent's `call.media` may still be on its way when the visitor's is acknowledged.
    for (let i = 0; i < 20; i++) {
      const stats = await totals(pool);
      run.callsUp = Math.floor(stats.legsConnected / 2);
      if (stats.legsConnected >= 2 * calls.reduce((n, c) => n + c.connected, 0)) break;
      await sleep(250);
    }
    log(`${run.callsUp} of ${run.callsWanted} calls up in ${Math.round(run.setupMs / 1000)} s`);

    for (let round = 0; round < plan.rounds; round++) {
      await pool.all('arm', () => ({}));
      const killAt = Date.now();
      await server.kill('SIGKILL');
      server = await startServerProcess(env);
      run.code.push(server.code);
      const listeningAt = server.listening.at;
      log(`round ${round + 1}: restarted in ${listeningAt - killAt} ms (restore ${JSON.stringify(server.listening.restored)})`);
      const progress: StormRound['progress'] = [];
      let deadlineHit = false;
      let lastReport: ServerReport | null = null;
      let failure: string | null = null;
      for (;;) {
        await sleep(POLL_MS);
        const stats = await totals(pool);
        try {
          lastReport = await server.report({}, REPORT_TIMEOUT_MS);
        } catch (error) {
          // A late answer is the storm's doing, and is in the delay figures once it comes; an exit is a crash.
          if (!(error instanceof ReportTimeout)) failure = error instanceof Error ? error.message : String(error);
        }
        progress.push({ atMs: Date.now() - listeningAt, resumed: stats.resumed, expired: stats.expired, p99: lastReport?.eventLoopDelayMs.p99 ?? NaN, max: lastReport?.eventLoopDelayMs.max ?? NaN });
        if (failure || stats.resumed + stats.expired >= run.clients) break;
        if (Date.now() - listeningAt > plan.resumeDeadlineMs) {
          deadlineHit = true;
          break;
        }
      }
      const endedAt = Date.now();
      if (!failure) {
        // The delay figures are cumulative since the listen: the last word on them is a report taken now.
        lastReport = await server.report({}, 30_000).catch(() => lastReport);
      }
      const last = progress.at(-1)!;
      const delay = lastReport?.eventLoopDelayMs;
      log(
        `round ${round + 1}: ${last.resumed} resumed, ${last.expired} expired after ${Math.round((endedAt - listeningAt) / 1000)} s` +
          (failure ? `; the server failed: ${failure.split('\n')[0]}` : `; event-loop delay p99 ${Math.round(delay?.p99 ?? NaN)} ms, max ${Math.round(delay?.max ?? NaN)} ms`),
      );
      const timelines = (await pool.all<Timeline[]>('timelines', () => ({}))).flat();
      run.rounds.push({
        code: server.code,
        killAt,
        listeningAt,
        serverStartMs: server.listening.startMs,
        restored: server.listening.restored,
        endedAt,
        deadlineHit,
        crashed: failure !== null,
        error: failure?.slice(-4_000) ?? null,
        eventLoopDelayMs: delay ?? null,
        progress,
        timelines,
      });
      // Each storm starts from every call up: one that left sessions expired (their calls ending, their requests
      // timing out) would hand the next a different load, so the rounds stop there.
      if (failure || deadlineHit || last.resumed < run.clients) break;
    }
  } catch (error) {
    run.error = error instanceof Error ? error.message : String(error);
    log(`stopped: ${run.error}`);
  } finally {
    await server.kill();
    await pool.all('reset', () => ({})).catch(() => {});
  }
  return run;
}
