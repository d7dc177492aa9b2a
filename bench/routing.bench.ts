/**
 * Routing latency: with a large fleet of agents online and available, the time from a reject, or from a
 * ring's deadline passing unanswered, to the next agent's `agent.ring`. The baseline is the same
 * measurement against a server with 10 agents online, in the same run: how routing scales with the number
 * of agents. Each fleet has its own server and its own client worker process; the two are measured in
 * alternating blocks so drift on a shared machine hits both alike.
 */
import os from 'node:os';
import path from 'node:path';
import { atMost, type Benchmark, type Figure } from './lib/bench.ts';
import { prepareFleet } from './lib/fleet.ts';
import { busyMachineNote, spawnQuietServer, spawnWorker, type Worker } from './lib/processes.ts';
import type { CascadeResult, Trigger } from './lib/routing/cascade.ts';
import { histogram, quantile, ratio, summarize } from './lib/stats.ts';
import { freePort, type SpawnedServer } from '../test/support/server.ts';

const P99_TARGET_MS = 5;
const POOL = 'support';
const RING_TIMEOUT_MS = 200;

const SETTINGS = {
  full: { fleet: 1_000, baselineFleet: 10, rejects: 500, timeouts: 150, blocks: 5, warmupRejects: 20 },
  quick: { fleet: 100, baselineFleet: 10, rejects: 50, timeouts: 10, blocks: 2, warmupRejects: 5 },
};

interface Side {
  agents: number;
  server: SpawnedServer;
  worker: Worker;
  connectMs: number;
  warmup: CascadeResult | null;
  runs: (CascadeResult & { block: number })[];
}

const TRIGGER_LABEL: Record<Trigger, string> = { reject: 'reject', timeout: 'ring-no-answer' };

const routing: Benchmark = {
  name: 'routing',
  title: 'Routing latency: reject or ring-no-answer to the next agent rung, 1,000 agents online vs 10',
  async run({ quick, scratchDir, log }) {
    const settings = quick ? SETTINGS.quick : SETTINGS.full;
    const loadBefore = os.loadavg();
    const servers: SpawnedServer[] = [];
    const workers: Worker[] = [];
    try {
      const sides: Side[] = [];
      for (const agents of [settings.fleet, settings.baselineFleet]) {
        const fleet = await prepareFleet(path.join(scratchDir, `fleet-${agents}`), agents, { pool: POOL });
        // The server's default log level: a transition's log line is part of what routing costs in production.
        const server = await spawnQuietServer({ ...fleet.env, PORT: String(await freePort()), LOG_LEVEL: 'info', RING_TIMEOUT_MS: String(RING_TIMEOUT_MS) });
        servers.push(server);
        const worker = await spawnWorker(path.join(import.meta.dirname, 'lib/routing/fleetWorker.ts'));
        workers.push(worker);
        const agentTokens = await Promise.all(fleet.agents.map((agent) => fleet.agentToken(agent)));
        const { connectMs } = await worker.call<{ connectMs: number }>('connect', {
          url: server.url,
          pool: POOL,
          ringTimeoutMs: RING_TIMEOUT_MS,
          agentTokens,
          visitorToken: await fleet.visitorToken('visitor-routing-bench'),
        });
        log(`${agents} agents online in ${connectMs} ms`);
        sides.push({ agents, server, worker, connectMs, warmup: null, runs: [] });
      }

      for (const side of sides) side.warmup = await side.worker.call<CascadeResult>('run', { trigger: 'reject', samples: settings.warmupRejects });
      for (const [trigger, total] of [['reject', settings.rejects], ['timeout', settings.timeouts]] as const) {
        for (let block = 0; block < settings.blocks; block++) {
          const samples = Math.ceil(total / settings.blocks);
          for (const side of block % 2 === 0 ? sides : [...sides].reverse()) {
            const result = await side.worker.call<CascadeResult>('run', { trigger, samples });
            side.runs.push({ ...result, block });
          }
        }
        for (const side of sides) {
          const samples = side.runs.filter((run) => run.trigger === trigger).flatMap((run) => run.samples);
          log(`${TRIGGER_LABEL[trigger]}, ${side.agents} agents: p50 ${quantile(samples, 0.5)?.toFixed(2)} ms, p99 ${quantile(samples, 0.99)?.toFixed(2)} ms (${samples.length} samples)`);
        }
      }
      await Promise.all(workers.map((worker) => worker.call('close')));

      const [large, small] = sides as [Side, Side];
      const samplesOf = (side: Side, trigger: Trigger) => side.runs.filter((run) => run.trigger === trigger).flatMap((run) => run.samples);
      const round2 = (value: number | null) => (value === null ? null : Math.round(value * 100) / 100);
      const load = busyMachineNote(loadBefore);
      const figures: Figure[] = [];
      for (const trigger of ['reject', 'timeout'] as const) {
        const mine = samplesOf(large, trigger);
        const base = samplesOf(small, trigger);
        const refused = large.runs.filter((run) => run.trigger === trigger).reduce((sum, run) => sum + run.refused, 0);
        const from = trigger === 'reject' ? 'from the agent sending agent.reject' : `from the ring's deadline (RING_TIMEOUT_MS=${RING_TIMEOUT_MS}; expiresAt, epoch ms, so the timer's lateness and the server's work before arming it count)`;
        for (const q of [0.99, 0.5]) {
          const value = quantile(mine, q);
          const baseline = quantile(base, q);
          figures.push({
            name: `${TRIGGER_LABEL[trigger]} → next agent rung, p${q * 100} (${large.agents} agents online)`,
            value: round2(value),
            unit: 'ms',
            baseline: { name: `${small.agents} agents online`, value: round2(baseline) },
            ratio: round2(ratio(value, baseline)),
            ...(q === 0.99 ? { target: `≤ ${P99_TARGET_MS} ms`, met: atMost(value, P99_TARGET_MS) } : {}),
            ...(q === 0.99
              ? {
                  note:
                    `${mine.length} samples (${base.length} for the baseline) ${from} to the next agent's agent.ring at the client` +
                    `${refused ? `; ${refused} rejects refused, left out` : ''}${load}`,
                }
              : {}),
          });
        }
      }

      const busyOf = (side: Side) => side.runs.flatMap((run) => run.busyAfterMs);
      const busy = { large: busyOf(large), small: busyOf(small) };
      figures.push({
        name: `server still busy after a move, p50 (${large.agents} agents online)`,
        value: round2(quantile(busy.large, 0.5)),
        unit: 'ms',
        baseline: { name: `${small.agents} agents online`, value: round2(quantile(busy.small, 0.5)) },
        ratio: round2(ratio(quantile(busy.large, 0.5), quantile(busy.small, 0.5))),
        note:
          `from the next ring's arrival to the answer of a probe sent then (a no-op event): the work the server does after ringing, ` +
          `which delays whatever arrives meanwhile; p99 ${round2(quantile(busy.large, 0.99))} ms (baseline ${round2(quantile(busy.small, 0.99))} ms); ${busy.large.length} probes`,
      });

      const describe = (side: Side) => ({
        agents: side.agents,
        connectMs: side.connectMs,
        warmup: side.warmup,
        runs: side.runs,
        summary: Object.fromEntries((['reject', 'timeout'] as const).map((trigger) => [trigger, summarize(samplesOf(side, trigger))])),
        busyAfter: summarize(busyOf(side)),
        histogram: Object.fromEntries((['reject', 'timeout'] as const).map((trigger) => [trigger, histogram(samplesOf(side, trigger), 0.5)])),
      });
      return {
        figures,
        data: {
          settings: { ...settings, ringTimeoutMs: RING_TIMEOUT_MS, logLevel: 'info', pool: POOL },
          loadAverage: { before: loadBefore, after: os.loadavg() },
          fleets: [describe(large), describe(small)],
        },
      };
    } finally {
      for (const worker of workers) await worker.kill();
      for (const server of servers) await server.kill();
    }
  },
};

export default routing;
