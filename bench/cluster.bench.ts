/**
 * The cluster: several nodes on one Postgres and one Redis (Debian's, in temporary directories on loopback
 * ports), each figure against a baseline measured in the same run.
 *
 * 1. Capacity: concurrent calls held across 4 nodes, stepped up until a step breaks (the capacity
 *    benchmark's criteria: setup fails or overruns, sockets or calls drop, a node's event-loop delay p99 over
 *    the hold passes 1 s, a node dies), against one process on SQLite stepped up by the same client workers
 *    and the same ladder. People are spread round robin, so most calls join two nodes (`lib/cluster/ladder.ts`).
 * 2. Relay: the relay benchmark's signaling load on a two-node cluster when the two people of each call are
 *    on different nodes, against calls whose two people share a node, round by round (`lib/cluster/relay.ts`).
 * 3. Failover: the owner of live calls and ringing requests SIGKILLed at least 10 times, restarted after
 *    each; the time from the kill until a new owner acted on every one of them, against the time the killed
 *    node takes to restart (`lib/cluster/failover.ts`).
 *
 * Each phase has a database and a Redis of its own. The machine's few cores are shared by every node, the
 * clients, Postgres and Redis: the figures say what one host holds, not what a cluster of hosts would.
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '@callchart/server/config';
import { FAST_CLUSTER_TIMINGS } from '../test/support/cluster.ts';
import { atLeast, atMost, type Benchmark, type Figure } from './lib/bench.ts';
import { startBacking, type Backing } from './lib/cluster/backing.ts';
import { runFailoverPhase, type FailoverPhaseResult, type FailoverSettings } from './lib/cluster/failover.ts';
import { runClusterLadder, type ClusterLadderResult, type ClusterStep } from './lib/cluster/ladder.ts';
import { startBenchNodes, stopBenchNodes, type BenchNode } from './lib/cluster/nodes.ts';
import { callPlacement } from './lib/cluster/observe.ts';
import { RELAY_TARGET_NAMES, runRelayPhase, type RelayPhaseResult, type RelaySettings } from './lib/cluster/relay.ts';
import { prepareFleet, type Fleet } from './lib/fleet.ts';
import { codeChangedNote } from './lib/load/codeFingerprint.ts';
import { callPairs, type CallPair } from './lib/load/identities.ts';
import { startWorkers, type WorkerPool } from './lib/load/workerPool.ts';
import { busyMachineNote } from './lib/processes.ts';
import { median, ratio } from './lib/stats.ts';

const TARGET_CALLS = 10_000;
const TARGET_KILLS = 10;
const MAX_EVENT_LOOP_P99_MS = 1_000;
const KB = 1000;
// The lease every node runs with by default: the failover's full mode measures the product as it ships.
const DEFAULT_LEASE = (() => {
  const cluster = loadConfig({ DATABASE_URL: 'postgres://127.0.0.1/defaults', REDIS_URL: 'redis://127.0.0.1' }).cluster!;
  return { ttlMs: cluster.leaseTtlMs, renewMs: cluster.leaseRenewMs };
})();
const FAST_LEASE = { ttlMs: Number(FAST_CLUSTER_TIMINGS.LEASE_TTL_MS), renewMs: Number(FAST_CLUSTER_TIMINGS.LEASE_RENEW_MS) };

interface CapacityPlan {
  nodes: number;
  steps: number[];
  workers: number;
  holdMs: number;
  setupBudget: { baseMs: number; perCallMs: number };
}

interface Plan {
  capacity: CapacityPlan;
  relay: RelaySettings;
  failover: FailoverSettings;
}

// The product's ring timeout: a ring set up just before a kill times out some seconds after the takeover.
const RING_TIMEOUT_MS = loadConfig({}).timings.ringTimeoutMs;
// The quick mode's lease is short, and so is its ring timeout: still past the takeover.
const QUICK_RING_TIMEOUT_MS = 6_000;
// A takeover waits out the lease, and a forwarded command retries for up to twice its TTL; a ring runs out
// its timeout: room for all of that and more.
const failoverWait = (lease: { ttlMs: number }, ringTimeoutMs: number) => Math.max(4 * lease.ttlMs + 15_000, ringTimeoutMs + 10_000);

const PLAN: Record<'full' | 'quick', Plan> = {
  full: {
    // The capacity benchmark's steps and budgets, and one past the target to see how far the nodes go.
    capacity: { nodes: 4, steps: [50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 15_000], workers: 4, holdMs: 25_000, setupBudget: { baseMs: 60_000, perCallMs: 50 } },
    // The relay benchmark's settings.
    relay: { calls: 50, rounds: 8, window: 4, warmupMs: 500, durationMs: 3_000, rate: 1_000, latencyWarmupMs: 500, latencyDurationMs: 3_000 },
    failover: { nodes: 4, kills: 12, callsPerKill: 10, ringsPerKill: 4, lease: DEFAULT_LEASE, ringTimeoutMs: RING_TIMEOUT_MS, waitMs: failoverWait(DEFAULT_LEASE, RING_TIMEOUT_MS) },
  },
  quick: {
    capacity: { nodes: 2, steps: [10, 20], workers: 2, holdMs: 2_000, setupBudget: { baseMs: 15_000, perCallMs: 50 } },
    relay: { calls: 4, rounds: 1, window: 4, warmupMs: 300, durationMs: 1_000, rate: 1_000, latencyWarmupMs: 300, latencyDurationMs: 1_000 },
    failover: { nodes: 2, kills: 2, callsPerKill: 2, ringsPerKill: 1, lease: FAST_LEASE, ringTimeoutMs: QUICK_RING_TIMEOUT_MS, waitMs: failoverWait(FAST_LEASE, QUICK_RING_TIMEOUT_MS) },
  },
};
// As the capacity benchmark's: a steady arrival of calls, not a burst.
const SETUP_IN_FLIGHT = 8;

const round = (value: number | null | undefined, digits = 1) => (value === null || value === undefined ? null : Math.round(value * 10 ** digits) / 10 ** digits);
const kb = (bytes: number | null | undefined) => round(bytes === null || bytes === undefined ? null : bytes / KB);
const med = (values: readonly (number | null | undefined)[]) => median(values.filter((v): v is number => v !== null && v !== undefined));
const maxOf = (values: readonly (number | null)[]) => {
  const kept = values.filter((v): v is number => v !== null);
  return kept.length === 0 ? null : Math.max(...kept);
};

// ---------------------------------------------------------------------------------------------
// Capacity

interface CapacityOutcome {
  single: ClusterLadderResult;
  cluster: ClusterLadderResult;
}

async function measureCapacity(plan: CapacityPlan, fleet: Fleet, pairs: CallPair[], pool: WorkerPool, backing: Backing, scratchDir: string, log: (line: string) => void): Promise<CapacityOutcome> {
  const setupConcurrency = Math.ceil(SETUP_IN_FLIGHT / plan.workers);
  const common = { steps: plan.steps, pairs, pool, holdMs: plan.holdMs, setupConcurrency, setupBudget: plan.setupBudget, log };
  const maxCalls = plan.steps.at(-1)!;

  const singleDb = path.join(scratchDir, 'capacity-single.db');
  copyFileSync(fleet.databasePath, singleDb);
  let nodes: BenchNode[] = await startBenchNodes({ count: 1, env: { ...fleet.env, DATABASE_PATH: singleDb }, cluster: null, scratchDir });
  let single: ClusterLadderResult;
  try {
    single = await runClusterLadder({ ...common, label: 'one process', nodes });
  } finally {
    await stopBenchNodes(nodes);
  }

  const phase = await backing.phase(fleet.agents.slice(0, maxCalls));
  try {
    nodes = await startBenchNodes({ count: plan.nodes, env: fleet.env, cluster: phase.env, scratchDir });
    try {
      const cluster = await runClusterLadder({
        ...common,
        label: `${plan.nodes} nodes`,
        nodes,
        placement: (placeOf) => callPlacement(phase.databaseUrl, placeOf),
      });
      return { single, cluster };
    } finally {
      await stopBenchNodes(nodes);
    }
  } finally {
    await phase.close();
  }
}

function capacityFigures(plan: CapacityPlan, { single, cluster }: CapacityOutcome): Figure[] {
  const lastHeld = (ladder: ClusterLadderResult) => ladder.steps.filter((step) => !step.broke).at(-1);
  const held = { single: lastHeld(single), cluster: lastHeld(cluster) };
  const calls = { single: held.single?.calls ?? 0, cluster: held.cluster?.calls ?? 0 };
  const brokeNote = (ladder: ClusterLadderResult) => (ladder.broke ? `broke at ${ladder.broke.calls} calls: ${ladder.broke.reason}` : `held every step up to ${plan.steps.at(-1)}`);
  const codeNote = codeChangedNote([...single.code, ...cluster.code]);
  // Compared where both held: the largest step the one process held, if the nodes held it too.
  const common = Math.min(calls.single, calls.cluster);
  const at = (ladder: ClusterLadderResult) => ladder.steps.find((step) => step.calls === common && !step.broke);
  const both = { single: at(single), cluster: at(cluster) };
  const where = common > 0 ? `at ${common} calls` : '';
  const top = held.cluster;
  const span = top?.placement ? (100 * top.placement.crossNode) / Math.max(1, top.placement.liveCalls) : null;
  const criteria =
    ` A step breaks when its new calls are not all up within ${plan.setupBudget.baseMs / 1000} s + ${plan.setupBudget.perCallMs} ms per call (${SETUP_IN_FLIGHT} set up at once), ` +
    `when sockets or calls drop, when a node's event-loop delay p99 over the ${plan.holdMs / 1000} s hold passes ${MAX_EVENT_LOOP_P99_MS} ms, or when a node dies.`;
  const pick = (step: ClusterStep | undefined, of: (s: ClusterStep) => number | null) => (step ? of(step) : null);
  return [
    {
      name: `concurrent calls held across ${plan.nodes} nodes`,
      value: calls.cluster,
      unit: 'calls',
      baseline: { name: 'one process (SQLite), same clients', value: calls.single },
      ratio: round(ratio(calls.cluster, calls.single), 2),
      target: `≥ ${TARGET_CALLS} calls`,
      met: atLeast(calls.cluster, TARGET_CALLS),
      note:
        `${codeNote ? `${codeNote} ` : ''}The nodes ${brokeNote(cluster)}; the one process ${brokeNote(single)}.` +
        (top ? ` At ${top.calls} calls the nodes' switchboards held ${top.actorCalls} calls between them (${top.nodes.map((n) => `${n.name} ${n.actors.calls}`).join(', ')}).` : '') +
        criteria,
    },
    {
      name: `calls joining two nodes ${top ? `at ${top.calls} calls` : ''}`.trim(),
      value: round(span),
      unit: '%',
      note: top?.placement
        ? `${top.placement.crossNode} of the ${top.placement.liveCalls} live calls in the store have their agent and their visitor on different nodes (pair i's agent on node i mod ${plan.nodes}, its visitor on the next; routing chooses the agent).`
        : 'Not read: no step held.',
    },
    {
      name: `nodes' heap per call ${where}`.trim(),
      value: kb(pick(both.cluster, (s) => s.perCall.heapUsed)),
      unit: 'kB',
      baseline: { name: 'one process', value: kb(pick(both.single, (s) => s.perCall.heapUsed)) },
      ratio: round(ratio(pick(both.cluster, (s) => s.perCall.heapUsed), pick(both.single, (s) => s.perCall.heapUsed)), 2),
      note: 'Live heap after a full GC summed over the nodes, minus their sum before any client, over the calls; medians of three.',
    },
    {
      name: `nodes' CPU during the hold ${where}`.trim(),
      value: round(pick(both.cluster, (s) => s.cpuPercent)),
      unit: '% of a core',
      baseline: { name: 'one process', value: round(pick(both.single, (s) => s.cpuPercent)) },
      ratio: round(ratio(pick(both.cluster, (s) => s.cpuPercent), pick(both.single, (s) => s.cpuPercent)), 2),
      note: `Summed over the nodes, over a ${plan.holdMs / 1000} s hold with heartbeats only; each node also renews its leases and reads its fan-out stream. Postgres and Redis not counted.`,
    },
    {
      name: `event-loop delay p99 during the hold, worst node, ${where}`.trim(),
      value: round(pick(both.cluster, (s) => s.holdEventLoopP99Ms)),
      unit: 'ms',
      baseline: { name: 'one process', value: round(pick(both.single, (s) => s.holdEventLoopP99Ms)) },
      ratio: round(ratio(pick(both.cluster, (s) => s.holdEventLoopP99Ms), pick(both.single, (s) => s.holdEventLoopP99Ms)), 2),
      note: 'monitorEventLoopDelay (10 ms resolution) in each node process.',
    },
    {
      name: `event-loop delay p99 during the hold, worst node, at the nodes' largest step held${top ? ` (${top.calls} calls)` : ''}`,
      value: round(top?.holdEventLoopP99Ms),
      unit: 'ms',
      target: `≤ ${MAX_EVENT_LOOP_P99_MS} ms`,
      met: atMost(round(top?.holdEventLoopP99Ms), MAX_EVENT_LOOP_P99_MS),
      ...(top ? { note: `Per node: ${top.nodes.map((n) => `${n.name} ${round(n.holdEventLoopDelayMs?.p99)} ms`).join(', ')}.` } : { note: 'No step held.' }),
    },
    {
      name: `call setup rate ${where}`.trim(),
      value: round(pick(both.cluster, (s) => s.setupRatePerS)),
      unit: 'calls/s',
      baseline: { name: 'one process', value: round(pick(both.single, (s) => s.setupRatePerS)) },
      ratio: round(ratio(pick(both.cluster, (s) => s.setupRatePerS), pick(both.single, (s) => s.setupRatePerS)), 2),
      note: `The step's new calls, ${SETUP_IN_FLIGHT} in flight; median request-to-connected ${round(both.cluster?.callSetupMs.p50, 0) ?? '–'} ms on the nodes, ${round(both.single?.callSetupMs.p50, 0) ?? '–'} ms on one process.`,
    },
  ];
}

// ---------------------------------------------------------------------------------------------
// Relay

function relayFigures(relay: RelayPhaseResult, loadNote: string): Figure[] {
  const { settings, throughput, latency } = relay;
  const tput = (t: keyof typeof throughput) => med(throughput[t].map((r) => r.throughput));
  const p = (t: keyof typeof latency, q: 'p50' | 'p99') => med(latency[t].map((r) => r.latencyMs[q]));
  const cpuPerMessage = (t: keyof typeof throughput) =>
    med(throughput[t].map((r) => (r.cpu.serverSeconds === null || r.deliveredTotal === 0 ? null : (r.cpu.serverSeconds / r.deliveredTotal) * 1e6)));
  const paired = <R extends { round: number }>(runs: Record<'cross' | 'same', R[]>, of: (r: R) => number | null) =>
    med(runs.cross.map((run) => ratio(of(run), of(runs.same.find((b) => b.round === run.round) ?? run))));
  const missing = Object.entries(relay.setUpFailed)
    .map(([target, reason]) => `; the calls of ${RELAY_TARGET_NAMES[target as keyof typeof RELAY_TARGET_NAMES]} could not be set up (${reason}), so they were not measured`)
    .join('');
  const problems = [...Object.values(throughput), ...Object.values(latency)].flat().filter((r) => r.refused > 0 || r.lost > 0).length;
  const round2 = (v: number | null) => round(v, 2);
  const shape =
    `${settings.calls} calls per kind, ${settings.window} messages in flight per call, ${settings.durationMs / 1000} s per run, median of ${settings.rounds} rounds, ` +
    `the order of the kinds turning each round; the relay benchmark's mix (offer and answer ~4 KB, candidates ~100 B)`;
  return [
    {
      name: 'relay throughput, people on different nodes',
      value: round(tput('cross'), 0),
      unit: 'msg/s',
      baseline: { name: RELAY_TARGET_NAMES.same, value: round(tput('same'), 0) },
      ratio: round2(ratio(tput('cross'), tput('same'))),
      note: `${shape}; median of the rounds' own ratios ${round2(paired(throughput, (r) => r.throughput))}; the generator used ${med(throughput.cross.map((r) => r.cpu.generator))} cores against ${med(throughput.same.map((r) => r.cpu.generator))}` + (problems ? `; ${problems} runs had refused or lost messages (see data)` : '') + missing + loadNote,
    },
    {
      name: `relay latency p99 at ${relay.latencyRate} msg/s, people on different nodes`,
      value: round2(p('cross', 'p99')),
      unit: 'ms',
      baseline: { name: RELAY_TARGET_NAMES.same, value: round2(p('same', 'p99')) },
      ratio: round2(ratio(p('cross', 'p99'), p('same', 'p99'))),
      note: `open loop, send to receipt at the other leg, p99 per round, median of ${settings.rounds} rounds; ${relay.latencyRate < settings.rate ? `at half the slowest kind's first closed-loop throughput, so as to stay well within what it sustains (the relay benchmark's ${settings.rate} msg/s would not)` : `the relay benchmark's rate`}; median of the rounds' own ratios ${round2(paired(latency, (r) => r.latencyMs.p99))}${loadNote}`,
    },
    {
      name: `relay latency p50 at ${relay.latencyRate} msg/s, people on different nodes`,
      value: round2(p('cross', 'p50')),
      unit: 'ms',
      baseline: { name: RELAY_TARGET_NAMES.same, value: round2(p('same', 'p50')) },
      ratio: round2(ratio(p('cross', 'p50'), p('same', 'p50'))),
      note: `the same runs as the p99${missing}`,
    },
    {
      name: 'relay throughput, people on the same node of a cluster',
      value: round(tput('same'), 0),
      unit: 'msg/s',
      baseline: { name: RELAY_TARGET_NAMES.single, value: round(tput('single'), 0) },
      ratio: round2(ratio(tput('same'), tput('single'))),
      note: `what being a node costs a relay whose two ends share it: the fan-out adapter and the limits in Redis; p99 at ${relay.latencyRate} msg/s ${round2(p('same', 'p99'))} ms against ${round2(p('single', 'p99'))} ms`,
    },
    {
      name: 'CPU per relayed message, people on different nodes',
      value: round(cpuPerMessage('cross'), 0),
      unit: 'µs',
      baseline: { name: RELAY_TARGET_NAMES.same, value: round(cpuPerMessage('same'), 0) },
      ratio: round2(ratio(cpuPerMessage('cross'), cpuPerMessage('same'))),
      note: `closed-loop runs: both nodes' and Redis's user+system time over the messages delivered (${round(cpuPerMessage('single'), 0) ?? '–'} µs on one process)`,
    },
  ];
}

// ---------------------------------------------------------------------------------------------
// Failover

function failoverFigures(failover: FailoverPhaseResult): Figure[] {
  const { settings, rounds } = failover;
  const done = rounds.filter((r) => r.allActedMs !== null);
  const items = rounds.flatMap((r) => r.items);
  const calls = items.filter((i) => i.kind === 'call');
  const rings = items.filter((i) => i.kind === 'ring');
  const answered = calls.filter((i) => i.hangupAck === 'ok');
  const resent = rings.filter((i) => i.sameEid === true);
  const timedOut = rings.filter((i) => i.ringOverLateMs !== null);
  const owned = rounds.reduce((n, r) => n + r.ownedByVictim, 0);
  const restart = { median: med(rounds.map((r) => r.restartMs)), max: maxOf(rounds.map((r) => r.restartMs)) };
  const acted = { median: med(done.map((r) => r.allActedMs)), max: maxOf(done.map((r) => r.allActedMs)) };
  const failedRounds = rounds.filter((r) => r.allActedMs === null);
  const failures = failedRounds.length
    ? ` ${failedRounds.length} kills are left out: ${failedRounds
        .slice(0, 3)
        .map((r) => `kill ${r.round + 1}: ${r.error ? r.error.split('\n')[0] : `${r.items.filter((i) => i.kind === 'call' && i.actedMs === null).length} of ${settings.callsPerKill} calls not acted on within ${settings.waitMs / 1000} s`}`)
        .join('; ')}${failedRounds.length > 3 ? '; …' : ''}.`
    : '';
  const lease = `LEASE_TTL_MS ${settings.lease.ttlMs}, LEASE_RENEW_MS ${settings.lease.renewMs}`;
  const shape =
    `${settings.nodes} nodes; each kill took the owner of ${settings.callsPerKill} connected calls and ${settings.ringsPerKill} ringing requests (visitors on the victim, agents on the others), the victim a different node each time; ` +
    `${owned} of ${items.length} requests were held by the victim's lease just before its kill. ${lease}.`;
  const ms = (v: number | null) => round(v, 0);
  return [
    {
      name: 'owner SIGKILL → new owner acting on all its calls, median',
      value: ms(acted.median),
      unit: 'ms',
      baseline: { name: 'the killed node restarting to ready, median', value: ms(restart.median) },
      ratio: round(ratio(acted.median, restart.median), 2),
      note: `over ${done.length} kills; per kill, the last of its calls to be acted on: the first message about the call to its agent after the kill (the call paused for the lost visitor, or ended) or the hangup sent right after the kill answered, whichever came first. ${shape}${failures}`,
    },
    {
      name: 'owner SIGKILL → new owner acting on all its calls, maximum',
      value: ms(acted.max),
      unit: 'ms',
      baseline: { name: 'the killed node restarting to ready, maximum', value: ms(restart.max) },
      ratio: round(ratio(acted.max, restart.max), 2),
      note: `the slowest of the ${done.length} kills, against the slowest restart.${failures}`,
    },
    {
      name: 'owner kills measured',
      value: done.length,
      unit: 'kills',
      target: `≥ ${TARGET_KILLS} kills`,
      met: atLeast(done.length, TARGET_KILLS),
      note: `${rounds.length} tried.${failures}`,
    },
    {
      name: 'owner SIGKILL → hangup answered by the new owner, median',
      value: ms(med(answered.map((i) => i.hangupAckMs))),
      unit: 'ms',
      note: `${answered.length} of ${calls.length} hangups sent right after a kill were answered ok (${calls.filter((i) => i.hangupAck !== 'ok').map((i) => i.hangupAck ?? 'none').join(', ') || 'no other answers'}); maximum ${ms(maxOf(answered.map((i) => i.hangupAckMs))) ?? '–'} ms.`,
    },
    {
      name: 'ring timeout on the new owner, after its original deadline, median',
      value: ms(med(timedOut.map((i) => i.ringOverLateMs))),
      unit: 'ms',
      note:
        `${timedOut.length} of ${rings.length} rings running at a kill ended for their agent (agent.ringCancelled) on the new owner; the time is from the ring's announced expiresAt to that message, ` +
        `maximum ${ms(maxOf(timedOut.map((i) => i.ringOverLateMs))) ?? '–'} ms. RING_TIMEOUT_MS ${settings.ringTimeoutMs}. ` +
        `${resent.length} of them reached their agent again after the kill with the ring's own eid (the takeover re-sending its outbox)` +
        (resent.length > 0 ? `, a median ${ms(med(resent.map((i) => i.ringAgainMs)))} ms after the kill.` : '.'),
    },
  ];
}

// ---------------------------------------------------------------------------------------------

/** A phase that failed as a whole (its nodes would not start, say) leaves the others to be measured. */
async function attempt<T>(phase: string, log: (line: string) => void, run: () => Promise<T>): Promise<{ value: T } | { error: string }> {
  try {
    return { value: await run() };
  } catch (error) {
    const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
    log(`${phase}: failed: ${text.split('\n')[0]}`);
    return { error: text.slice(0, 8_000) };
  }
}

const unmeasured = (name: string, unit: string, error: string): Figure => ({ name, value: null, unit, note: `Not measured: the phase failed (${error.split('\n')[0]}); see data.` });

const cluster: Benchmark = {
  name: 'cluster',
  title: 'Cluster: calls held across nodes against one process, relay across nodes, and failover after the owner is SIGKILLed',
  async run({ quick, log, scratchDir }) {
    const plan = quick ? PLAN.quick : PLAN.full;
    const loadBefore = os.loadavg();
    const fleetSize = Math.max(plan.capacity.steps.at(-1)!, 3 * plan.relay.calls, plan.failover.kills * (plan.failover.callsPerKill + plan.failover.ringsPerKill));
    const starting = startWorkers('bench/lib/load/callWorker.ts', plan.capacity.workers);
    starting.catch(() => {});
    log(`seeding ${fleetSize} agents, signing their tokens, starting Postgres`);
    const fleetDir = path.join(scratchDir, 'fleet');
    mkdirSync(fleetDir);
    const fleet = await prepareFleet(fleetDir, fleetSize);
    const pairs = (await callPairs(fleet)).slice(0, plan.capacity.steps.at(-1)!);
    const backing = await startBacking();
    const pool = await starting;
    try {
      const capacity = await attempt('capacity', log, () => measureCapacity(plan.capacity, fleet, pairs, pool, backing, scratchDir, log));
      await pool.close();
      const relayLoad = os.loadavg();
      const relay = await attempt('relay', log, () => runRelayPhase({ settings: plan.relay, fleet, backing, scratchDir, log }));
      const relayNote = busyMachineNote(relayLoad);
      const failover = await attempt('failover', log, () => runFailoverPhase({ settings: plan.failover, fleet, backing, log }));
      return {
        figures: [
          ...('error' in capacity ? [unmeasured(`concurrent calls held across ${plan.capacity.nodes} nodes`, 'calls', capacity.error)] : capacityFigures(plan.capacity, capacity.value)),
          ...('error' in relay ? [unmeasured('relay throughput, people on different nodes', 'msg/s', relay.error)] : relayFigures(relay.value, relayNote)),
          ...('error' in failover ? [unmeasured('owner SIGKILL → new owner acting on all its calls, median', 'ms', failover.error)] : failoverFigures(failover.value)),
        ],
        data: {
          plan,
          setupInFlight: SETUP_IN_FLIGHT,
          loadAverage: { before: loadBefore, after: os.loadavg() },
          capacity: 'error' in capacity ? capacity : capacity.value,
          relay: 'error' in relay ? relay : relay.value,
          failover: 'error' in failover ? failover : failover.value,
        },
      };
    } finally {
      await pool.close();
      await backing.stop();
    }
  },
};

export default cluster;
