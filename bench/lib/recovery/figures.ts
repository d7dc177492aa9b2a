/** The recovery benchmark's figures and plot, from its runs. */
import { defaultPeerConnectionMaxAttempts, defaultPeerConnectionTimings } from '@callchart/machines';
import { atMost, type Figure } from '../bench.ts';
import { linePlotSvg, type PlotSeries } from '../plot.ts';
import { extent, median, ratio } from '../stats.ts';
import { SURVIVAL_WAIT_MS, type OutageRun, type VariantRun } from './outage.ts';

export const FIRST_ATTEMPT_TARGET_MS = 7_200;
export const RECOVERY_TARGET_MS = 1_000;
/**
 * The last outage a callchart call can outlive: the first attempt (target 7.2 s after the outage starts)
 * plus every attempt's timeout. Longer outages must end in the graceful failure instead.
 */
export const RECONNECTION_WINDOW_S = FIRST_ATTEMPT_TARGET_MS / 1000 + (defaultPeerConnectionMaxAttempts * defaultPeerConnectionTimings.attemptTimeout) / 1000;

const VARIANTS = [
  { key: 'callchart', name: 'callchart' },
  { key: 'restartOnFailed', name: 'restart on failed' },
  { key: 'browserAlone', name: 'browser alone' },
] as const;
type VariantKey = (typeof VARIANTS)[number]['key'];

const BASELINE = VARIANTS[1];
const round = (value: number | null) => (value === null ? null : Math.round(value));
const present = (values: (number | null)[]) => values.filter((v): v is number => v !== null);

function spread(values: number[]): string {
  const range = extent(values);
  return range ? `min ${Math.round(range.min)}, max ${Math.round(range.max)} ms` : 'no samples';
}

interface Group {
  outageS: number;
  runs: OutageRun[];
  of: (key: VariantKey) => VariantRun[];
}

function groups(runs: OutageRun[]): Group[] {
  return [...new Set(runs.map((r) => r.outageS))]
    .sort((a, b) => a - b)
    .map((outageS) => {
      const mine = runs.filter((r) => r.outageS === outageS);
      return { outageS, runs: mine, of: (key: VariantKey) => mine.map((r) => r[key]) };
    });
}

function survivalFigures({ outageS, runs, of }: Group): Figure[] {
  const n = runs.length;
  const kept = (key: VariantKey) => of(key).filter((r) => r.survived).length;
  const inWindow = outageS < RECONNECTION_WINDOW_S;
  return VARIANTS.map(({ key, name }) => {
    const k = kept(key);
    const figure: Figure = { name: `${outageS} s outage: calls kept, ${name}`, value: k, unit: `of ${n}` };
    if (key === 'callchart') {
      figure.baseline = { name: BASELINE.name, value: kept(BASELINE.key) };
      if (inWindow) {
        figure.target = `${n} of ${n} (shorter than the ~${Math.round(RECONNECTION_WINDOW_S)} s window)`;
        figure.met = k === n;
        if (k < n) figure.note = `lost ${n - k} call(s) inside the reconnection window`;
      } else {
        figure.target = `0 of ${n} (past the window: graceful failure)`;
        figure.met = k === 0;
      }
    } else if (k < n) {
      figure.note = `lost ${n - k} of ${n}: no media within ${SURVIVAL_WAIT_MS / 1000} s of the relay restart`;
    }
    return figure;
  });
}

function recoveryFigures({ outageS, of }: Group): Figure[] {
  const medianOf = (key: VariantKey) => round(median(present(of(key).map((r) => r.recoveryMs))));
  const inWindow = outageS < RECONNECTION_WINDOW_S;
  return VARIANTS.map(({ key, name }) => {
    const samples = present(of(key).map((r) => r.recoveryMs));
    const value = medianOf(key);
    const figure: Figure = { name: `${outageS} s outage: relay back → media flowing, ${name}`, value, unit: 'ms' };
    const notes = [`${samples.length} kept call(s): ${spread(samples)}`];
    if (key === 'callchart') {
      const base = medianOf(BASELINE.key);
      figure.baseline = { name: BASELINE.name, value: base };
      figure.ratio = round2(ratio(value, base));
      if (inWindow) {
        figure.target = `≤ ${RECOVERY_TARGET_MS} ms`;
        figure.met = atMost(value, RECOVERY_TARGET_MS);
      }
      const both = of('callchart').filter((r, i) => r.survived && of(BASELINE.key)[i]!.survived).length;
      notes.push(`both kept the call in ${both} run(s)`);
      const firstAttempt = median(present(of('callchart').map((r) => r.firstAttemptMs)));
      if (firstAttempt !== null && firstAttempt > outageS * 1000) {
        notes.push(`the relay was back before the first attempt (median ${Math.round(firstAttempt)} ms into the outage), so the call waited for it`);
      }
    }
    if (samples.length === 0) notes.push('no call of this kind carried media again, so there is no recovery time');
    figure.note = notes.join('; ');
    return figure;
  });
}

function firstAttemptFigures({ outageS, of }: Group): Figure[] {
  return VARIANTS.map(({ key, name }) => {
    const samples = present(of(key).map((r) => r.firstAttemptMs));
    const value = round(median(samples));
    const figure: Figure = { name: `${outageS} s outage: outage → first ICE restart, ${name}`, value, unit: 'ms' };
    if (key === 'callchart') {
      const base = round(median(present(of(BASELINE.key).map((r) => r.firstAttemptMs))));
      figure.baseline = { name: BASELINE.name, value: base };
      figure.ratio = round2(ratio(value, base));
      figure.target = `≤ ${FIRST_ATTEMPT_TARGET_MS} ms`;
      figure.met = atMost(value, FIRST_ATTEMPT_TARGET_MS);
      figure.note = `the agent's (offerer's) attempt, whose offer restarts ICE; ${spread(samples)}`;
    } else if (key === 'browserAlone') {
      figure.note = 'nothing restarts ICE';
    } else {
      figure.note = spread(samples);
    }
    return figure;
  });
}

/**
 * The ICE work alone: from the later of the relay being back and the restart that succeeded, to both ends
 * reporting connected. What remains of "relay back → media flowing" once waiting for an attempt is taken out.
 */
function iceWorkFigure({ outageS, runs }: Group): Figure {
  const work = (key: 'callchart' | 'restartOnFailed') =>
    present(
      runs.map((r) => {
        const v = r[key];
        if (!v.survived || v.connectedMs === null || v.restartBeforeConnectedMs === null) return null;
        return v.connectedMs - Math.max(r.relayBackMs, v.restartBeforeConnectedMs);
      }),
    );
  const mine = work('callchart');
  const restartedFirst = runs.filter((r) => r.callchart.survived && r.callchart.restartBeforeConnectedMs !== null && r.callchart.restartBeforeConnectedMs < r.relayBackMs).length;
  const value = round(median(mine));
  const base = round(median(work('restartOnFailed')));
  return {
    name: `${outageS} s outage: later of relay back and last restart → connected, callchart`,
    value,
    unit: 'ms',
    baseline: { name: BASELINE.name, value: base },
    ratio: round2(ratio(value, base)),
    note:
      `what is left once the relay and the restart are both in place (TURN allocation, ICE checks, DTLS); ${spread(mine)}` +
      (restartedFirst > runs.length / 2 ? `; in ${restartedFirst} run(s) the attempt began while the relay was down, so this waits for Chromium to retry its TURN allocation` : ''),
  };
}

function gracefulFigure({ outageS, runs }: Group): Figure {
  const failures = runs.map((r) => r.callchart.failure).filter((f) => f !== null);
  const graceful = failures.filter((f) => f.graceful).length;
  const n = runs.length;
  const ungraceful = failures.filter((f) => !f.graceful);
  return {
    name: `${outageS} s outage: graceful failure on both sides, callchart`,
    value: graceful,
    unit: `of ${n}`,
    target: `${n} of ${n}`,
    met: graceful === n,
    note:
      'visitor shows the failure message, dashboard shows "Connection lost", both media ended as media-failed and so did the server record' +
      (ungraceful.length ? `; not so in ${ungraceful.length}: ${JSON.stringify(ungraceful)}` : ''),
  };
}

const round2 = (value: number | null) => (value === null ? null : Math.round(value * 100) / 100);

export function buildFigures(runs: OutageRun[]): Figure[] {
  const figures: Figure[] = [];
  for (const group of groups(runs)) {
    figures.push(...survivalFigures(group), ...recoveryFigures(group), iceWorkFigure(group), ...firstAttemptFigures(group));
    if (group.outageS >= RECONNECTION_WINDOW_S) figures.push(gracefulFigure(group));
  }
  const grace = present(runs.map((r) => r.callchart.lostToAttemptMs));
  figures.push({
    name: "callchart: agent's connection lost → its first ICE restart (all runs)",
    value: round(median(grace)),
    unit: 'ms',
    note: `the unstable grace of the peerConnection machine; the rest of "outage → first ICE restart" is Chromium noticing the loss; ${spread(grace)}`,
  });
  const disconnected = present(runs.map((r) => r.browserAlone.disconnectedMs));
  figures.push({
    name: 'outage → Chromium reports disconnected (all runs)',
    value: round(median(disconnected)),
    unit: 'ms',
    note: `the browser-alone pair, which nothing steers; ${spread(disconnected)}`,
  });
  const cut = runs.filter((r) => r.callchart.mediaCut && r.browserAlone.mediaCut && r.restartOnFailed.mediaCut).length;
  figures.push({
    name: 'runs whose outage cut the media of all three calls',
    value: cut,
    unit: `of ${runs.length}`,
    target: `${runs.length} of ${runs.length}`,
    met: cut === runs.length,
    note:
      'a check on the fault itself: inbound bytes stop growing within 0.5 s of the kill and stay still until the relay restarts; ' +
      `last growth after the kill: ${spread(present(runs.flatMap((r) => [r.callchart.lastGrowthMs, r.browserAlone.lastGrowthMs, r.restartOnFailed.lastGrowthMs])))}`,
  });
  return figures;
}

export function recoveryPlot(runs: OutageRun[]): string {
  const missing: string[] = [];
  const series: PlotSeries[] = VARIANTS.map(({ key, name }) => {
    const lost: number[] = [];
    const points = groups(runs).flatMap(({ outageS, of }) => {
      const kept = present(of(key).map((r) => r.recoveryMs));
      if (kept.length === 0) {
        lost.push(outageS);
        return [];
      }
      return [{ x: outageS, y: median(kept)! / 1000, label: `${kept.length}/${of(key).length}` }];
    });
    if (lost.length) missing.push(`${name} at ${lost.join(', ')} s`);
    return { name, points };
  });
  return linePlotSvg({
    title: 'Relay restart → media flowing again, by outage length (median)',
    xLabel: 'relay outage (s)',
    yLabel: 'relay back → media flowing both ways (s)',
    series,
    guides: [{ y: RECOVERY_TARGET_MS / 1000, label: `target ${RECOVERY_TARGET_MS / 1000} s` }],
    note: `labels: calls kept / runs; no point where every call was lost${missing.length ? `\nno point: ${missing.join('; ')}` : ''}`,
  });
}
