/**
 * One relay outage, three calls riding it side by side: the TURN server is SIGKILLed, kept down for the
 * outage, started again on the same ports, and each call is then watched until it is decided (media
 * flowing both ways again, or given up for good) or the survival wait runs out.
 */
import type { TurnServer } from '../../../test/support/turn.ts';
import type { BaselinePair } from './baseline-page.ts';
import type { CallchartPair, Current } from './callchart-pair.ts';
import { firstChange, flowingAt, type ByteSample, type StateChange } from './samples.ts';
import { extent } from '../stats.ts';

/** How long after the relay is back a call may take to carry media again and still count as survived. */
export const SURVIVAL_WAIT_MS = 20_000;
/** Media counts as cut when nothing grows from this long after the kill until the relay restarts. */
const CUT_MARGIN_MS = 500;

export interface VariantRun {
  survived: boolean;
  /** Relay serving again → media flowing both ways; null when it never did within the wait. */
  recoveryMs: number | null;
  /** Outage start → the first ICE restart; null when none was made. */
  firstAttemptMs: number | null;
  /** Outage start → the first side reporting the connection lost (`disconnected`, or `unstable` for callchart). */
  disconnectedMs: number | null;
  /** Outage start → the connection reported connected again on both ends; null when it never was. */
  connectedMs: number | null;
  /** Outage start → the ICE restart that led to that connection (the last one before it). */
  restartBeforeConnectedMs: number | null;
  /** Whether the outage really stopped this call's media (a check on the fault, not a result). */
  mediaCut: boolean;
  /** Outage start → the last inbound bytes seen before the relay restarted, on any side. */
  lastGrowthMs: number | null;
  /** Every state change seen from the outage on, relative to its start. */
  changes: { what: string; value: string; ms: number }[];
}

export interface CallchartRun extends VariantRun {
  /** The visitor's (answerer's) first attempt; `firstAttemptMs` is the agent's, the offerer whose offer restarts ICE. */
  visitorFirstAttemptMs: number | null;
  /** The agent's media going `unstable` → its first attempt: the controller's own share of the first-attempt time. */
  lostToAttemptMs: number | null;
  /** ICE restart attempts the agent's machine started from the outage on (at most its maxAttempts). */
  attempts: number;
  final: { visitor: Current; agent: Current };
  /** Outage start → each side's media giving up, when it did. */
  failedMs: { visitor: number | null; agent: number | null };
  /** Filled when the call did not survive: what each side showed, and the server's end reason. */
  failure: { visitorMessage: boolean; agentIndicator: boolean; serverEndReason: string | null; graceful: boolean } | null;
  server: { reconnectionAttempts: { leg: string; ms: number; durationMs: number | null; outcome: string }[] } | null;
}

export interface BaselineRun extends VariantRun {
  restarts: { ms: number; error: string | null }[];
}

export interface OutageRun {
  index: number;
  outageS: number;
  /** Wall-clock time of the kill, for lining runs up with logs. */
  killedAt: string;
  /** Kill → relay answering STUN again (the outage actually applied). */
  relayBackMs: number;
  /** Relay process spawned → answering STUN. */
  relayStartupMs: number;
  /** Relay back → the last of the three calls decided (or the wait ran out). */
  decidedAfterMs: number;
  callchart: CallchartRun;
  browserAlone: BaselineRun;
  restartOnFailed: BaselineRun;
}

export interface Variants {
  callchart: CallchartPair;
  browserAlone: BaselinePair;
  restartOnFailed: BaselinePair;
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const inCall = (side: Current) => side.call === 'inCall';

/** The last sample before `to` showing any inbound growth, at or after `from`; null when none did. */
function lastGrowth(samples: readonly ByteSample[], from: number, to: number): number | null {
  let last: number | null = null;
  for (let i = 1; i < samples.length; i++) {
    const now = samples[i]!;
    if (now.at >= from && now.at < to && (now.video > samples[i - 1]!.video || now.audio > samples[i - 1]!.audio)) last = now.at;
  }
  return last;
}

/** Outage start → the last inbound growth on any side before the relay restarted. */
function lastGrowthMs(sides: readonly (readonly ByteSample[])[], killedAt: number, relayStartAt: number): number | null {
  const times = sides.map((side) => lastGrowth(side, killedAt, relayStartAt)).filter((t): t is number => t !== null);
  return times.length ? extent(times)!.max - killedAt : null;
}

const cut = (lastMs: number | null) => lastMs === null || lastMs < CUT_MARGIN_MS;

const relative = (changes: readonly StateChange[], origin: number) =>
  changes.filter((c) => c.at >= origin).map((c) => ({ what: c.what, value: c.value, ms: c.at - origin }));

const since = (at: number | null | undefined, origin: number) => (at === null || at === undefined ? null : at - origin);

function earliest(...values: (number | null)[]): number | null {
  const present = values.filter((v): v is number => v !== null);
  return present.length ? Math.min(...present) : null;
}

/** When every one of `whats` had last changed to `value`, looking only at changes after `origin`. */
function allReachedAt(changes: readonly StateChange[], whats: readonly string[], origin: number, value: string): number | null {
  let latest = -Infinity;
  for (const what of whats) {
    const mine = changes.filter((c) => c.what === what && c.at >= origin);
    const last = mine.at(-1);
    if (!last || last.value !== value) return null;
    latest = Math.max(latest, last.at);
  }
  return latest;
}

function latestBefore(times: readonly number[], limit: number): number | null {
  const before = times.filter((t) => t <= limit);
  return extent(before)?.max ?? null;
}

async function baselineRun(pair: BaselinePair, killedAt: number, relayStartAt: number, relayBackAt: number): Promise<BaselineRun> {
  const reading = await pair.read(killedAt);
  const flowing = flowingAt(reading.sides, relayBackAt);
  const survived = flowing !== null && flowing - relayBackAt <= SURVIVAL_WAIT_MS;
  const restarts = reading.restarts.filter((r) => r.at >= killedAt);
  const lost = (side: string) => firstChange(reading.states, side, killedAt, (v) => v === 'disconnected' || v === 'failed')?.at ?? null;
  const connected = allReachedAt(reading.states, ['a', 'b'], killedAt, 'connected');
  return {
    survived,
    recoveryMs: survived ? flowing! - relayBackAt : null,
    firstAttemptMs: since(restarts[0]?.at, killedAt),
    disconnectedMs: since(earliest(lost('a'), lost('b')), killedAt),
    connectedMs: since(connected, killedAt),
    restartBeforeConnectedMs: since(connected === null ? null : latestBefore(restarts.map((r) => r.at), connected), killedAt),
    mediaCut: cut(lastGrowthMs(reading.sides, killedAt, relayStartAt)),
    lastGrowthMs: lastGrowthMs(reading.sides, killedAt, relayStartAt),
    changes: relative(reading.states, killedAt),
    restarts: restarts.map((r) => ({ ms: r.at - killedAt, error: r.error })),
  };
}

async function callchartRun(pair: CallchartPair, killedAt: number, relayStartAt: number, relayBackAt: number): Promise<CallchartRun> {
  const [reading, final] = await Promise.all([pair.read(killedAt), pair.state()]);
  const flowing = flowingAt([reading.visitor.samples, reading.agent.samples], relayBackAt);
  const survived = flowing !== null && flowing - relayBackAt <= SURVIVAL_WAIT_MS && inCall(final.visitor) && inCall(final.agent);
  const attempt = (states: StateChange[]) => firstChange(states, 'media', killedAt, (v) => v.startsWith('reconnecting.attempting'))?.at ?? null;
  const unstable = (states: StateChange[]) => firstChange(states, 'media', killedAt, (v) => v !== 'connected')?.at ?? null;
  const gaveUp = (states: StateChange[]) => firstChange(states, 'media', killedAt, (v) => v === 'failed')?.at ?? null;
  const changes = [
    ...relative(reading.visitor.states, killedAt).map((c) => ({ ...c, what: `visitor ${c.what}` })),
    ...relative(reading.agent.states, killedAt).map((c) => ({ ...c, what: `agent ${c.what}` })),
  ].sort((a, b) => a.ms - b.ms);
  const connectedMs = allReachedAt(
    changes.map((c) => ({ what: c.what, value: c.value, at: c.ms })),
    ['visitor media', 'agent media'],
    0,
    'connected',
  );
  const agentAttempts = reading.agent.states.filter((c) => c.what === 'media' && c.at >= killedAt && c.value.startsWith('reconnecting.attempting')).map((c) => c.at);
  const agentAttempt = attempt(reading.agent.states);
  const agentUnstable = unstable(reading.agent.states);
  const record = await pair.serverRecord();
  let failure: CallchartRun['failure'] = null;
  if (!survived) {
    const shown = await pair.failureShown();
    let endReason = record?.call.endReason ?? null;
    // The store is written just after the clients show the failure.
    for (let i = 0; i < 25 && endReason === null; i++) {
      await delay(200);
      endReason = (await pair.serverRecord())?.call.endReason ?? null;
    }
    failure = {
      visitorMessage: shown.visitor,
      agentIndicator: shown.agent,
      serverEndReason: endReason,
      graceful:
        shown.visitor && shown.agent && endReason === 'media-failed' && final.visitor.call === 'ended:media-failed' && final.agent.call === 'callFailed:media-failed',
    };
  }
  return {
    survived,
    recoveryMs: survived ? flowing! - relayBackAt : null,
    firstAttemptMs: since(agentAttempt, killedAt),
    visitorFirstAttemptMs: since(attempt(reading.visitor.states), killedAt),
    attempts: agentAttempts.length,
    lostToAttemptMs: agentAttempt === null || agentUnstable === null ? null : agentAttempt - agentUnstable,
    disconnectedMs: since(earliest(unstable(reading.visitor.states), agentUnstable), killedAt),
    connectedMs,
    restartBeforeConnectedMs: connectedMs === null ? null : since(latestBefore(agentAttempts, killedAt + connectedMs), killedAt),
    mediaCut: cut(lastGrowthMs([reading.visitor.samples, reading.agent.samples], killedAt, relayStartAt)),
    lastGrowthMs: lastGrowthMs([reading.visitor.samples, reading.agent.samples], killedAt, relayStartAt),
    changes,
    final,
    failedMs: { visitor: since(gaveUp(reading.visitor.states), killedAt), agent: since(gaveUp(reading.agent.states), killedAt) },
    failure,
    server: record
      ? {
          reconnectionAttempts: record.telemetry.reconnectionAttempts
            .filter((a) => a.at >= killedAt)
            .map((a) => ({ leg: a.leg, ms: a.at - killedAt, durationMs: a.durationMs, outcome: a.outcome })),
        }
      : null,
  };
}

/** Kills the relay, restarts it after `outageS`, and waits until every call is decided. */
export async function runOutage(turn: TurnServer, variants: Variants, outageS: number, index: number): Promise<OutageRun> {
  const killedAt = Date.now();
  await turn.stop();
  await delay(Math.max(0, killedAt + outageS * 1000 - Date.now()));
  const relayStartAt = Date.now();
  await turn.start();
  const relayBackAt = Date.now();

  const deadline = relayBackAt + SURVIVAL_WAIT_MS;
  for (;;) {
    const [cc, ccState, alone, aloneState, restart] = await Promise.all([
      variants.callchart.read(killedAt),
      variants.callchart.state(),
      variants.browserAlone.read(killedAt),
      variants.browserAlone.state(),
      variants.restartOnFailed.read(killedAt),
    ]);
    const ccDecided = flowingAt([cc.visitor.samples, cc.agent.samples], relayBackAt) !== null || (!inCall(ccState.visitor) && !inCall(ccState.agent));
    // With nobody to restart ICE, `failed` on both connections is final: only a restart leaves it.
    const aloneDecided = flowingAt(alone.sides, relayBackAt) !== null || (aloneState?.a === 'failed' && aloneState.b === 'failed');
    const restartDecided = flowingAt(restart.sides, relayBackAt) !== null;
    if ((ccDecided && aloneDecided && restartDecided) || Date.now() > deadline) break;
    await delay(250);
  }
  const decidedAfterMs = Date.now() - relayBackAt;

  const [callchart, browserAlone, restartOnFailed] = await Promise.all([
    callchartRun(variants.callchart, killedAt, relayStartAt, relayBackAt),
    baselineRun(variants.browserAlone, killedAt, relayStartAt, relayBackAt),
    baselineRun(variants.restartOnFailed, killedAt, relayStartAt, relayBackAt),
  ]);
  return {
    index,
    outageS,
    killedAt: new Date(killedAt).toISOString(),
    relayBackMs: relayBackAt - killedAt,
    relayStartupMs: relayBackAt - relayStartAt,
    decidedAfterMs,
    callchart,
    browserAlone,
    restartOnFailed,
  };
}
