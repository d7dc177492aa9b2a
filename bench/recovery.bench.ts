/**
 * Recovery after real relay outages, in Chromium: all media runs through a local relay-only TURN server,
 * which is SIGKILLed for 3, 8, 20 or 45 s and started again on the same ports. Three calls ride every
 * outage side by side: a callchart call (visitor widget and agent dashboard), and two baseline pairs of
 * plain RTCPeerConnections, one with nothing reacting (the browser alone) and one that restarts ICE once
 * when `connectionState` becomes `failed` (what most apps do).
 */
import type { Browser } from 'playwright-core';
import { loadConfig } from '@callchart/server/config';
import { buildApps } from '../scripts/build-apps.ts';
import { launchBrowser } from '../test/support/browser.ts';
import { startApp, type App } from '../test/support/e2e.ts';
import { TurnServer } from '../test/support/turn.ts';
import type { Benchmark } from './lib/bench.ts';
import { BaselinePair, startBaselineSite, type BaselineSite } from './lib/recovery/baseline-page.ts';
import { CallchartPair } from './lib/recovery/callchart-pair.ts';
import { buildFigures, RECONNECTION_WINDOW_S, recoveryPlot } from './lib/recovery/figures.ts';
import { runOutage, SURVIVAL_WAIT_MS, type OutageRun } from './lib/recovery/outage.ts';

const FULL = { outagesS: [3, 8, 20, 45], runs: 5 };
const QUICK = { outagesS: [3], runs: 1 };
/** How long media flows before each outage, so that a fresh baseline pair is past its start-up. */
const SETTLE_MS = 1_000;

/** Each round takes the lengths in a rotated order, so no length always follows the same one. */
export function schedule(outagesS: readonly number[], runs: number): number[] {
  return Array.from({ length: runs }, (_, round) => outagesS.map((_, i) => outagesS[(i + round) % outagesS.length]!)).flat();
}

// The app's own reconnection timeout, not the longer pause the browser tests give the server.
const SERVER_TIMINGS = { RECONNECTION_TIMEOUT_MS: String(loadConfig({}).timings.reconnectionTimeoutMs) };

const recovery: Benchmark = {
  name: 'recovery',
  title: 'Call recovery after real relay outages (Chromium), against the browser alone and restart-on-failed',
  async run({ quick, log }) {
    const settings = quick ? QUICK : FULL;
    const order = schedule(settings.outagesS, settings.runs);
    await buildApps({ onlyStale: true, log });

    const turn = await TurnServer.create();
    let app: App | undefined;
    let site: BaselineSite | undefined;
    let browser: Browser | undefined;
    let callchart: CallchartPair | undefined;
    const runs: OutageRun[] = [];
    try {
      await turn.start();
      app = await startApp(turn, SERVER_TIMINGS);
      site = await startBaselineSite();
      browser = await launchBrowser();
      // The same relay and policy the app hands its clients, on credentials minted the same way, so the
      // baselines relay through the same server the same way.
      const rtc: RTCConfiguration = {
        iceServers: turn.iceServers,
        iceTransportPolicy: turn.serverEnv.ICE_TRANSPORT_POLICY as RTCIceTransportPolicy,
      };
      callchart = new CallchartPair(browser, app, log);
      const browserAlone = await BaselinePair.open(browser, site, 'none', rtc);
      const restartOnFailed = await BaselinePair.open(browser, site, 'restart-on-failed', rtc);

      for (const [index, outageS] of order.entries()) {
        // Fresh baseline connections every run: the browser-alone pair never comes back, and the
        // restart-on-failed pair has spent its one restart.
        await Promise.all([callchart.ensureFlowing(), browserAlone.connectFlowing(), restartOnFailed.connectFlowing()]);
        await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
        const run = await runOutage(turn, { callchart, browserAlone, restartOnFailed }, outageS, index);
        runs.push(run);
        const show = (v: OutageRun['callchart' | 'browserAlone' | 'restartOnFailed']) =>
          v.survived ? `kept, flowing ${v.recoveryMs} ms after the relay` : 'lost';
        log(
          `run ${index + 1}/${order.length}, ${outageS} s outage: callchart ${show(run.callchart)} (first attempt ${run.callchart.firstAttemptMs ?? '–'} ms` +
            `${run.callchart.failure ? `, graceful failure ${run.callchart.failure.graceful}` : ''}); restart on failed ${show(run.restartOnFailed)} ` +
            `(restart ${run.restartOnFailed.firstAttemptMs ?? '–'} ms); browser alone ${show(run.browserAlone)}`,
        );
      }
    } finally {
      await callchart?.close();
      await browser?.close().catch(() => {});
      await site?.close();
      await app?.close();
      await turn.dispose();
    }

    return {
      figures: buildFigures(runs),
      data: {
        settings: {
          ...settings,
          order,
          survivalWaitMs: SURVIVAL_WAIT_MS,
          reconnectionWindowS: RECONNECTION_WINDOW_S,
          serverEnv: SERVER_TIMINGS,
          sampleIntervalMs: 100,
          definitions: {
            relayBack: 'the restarted TURN server answers a STUN Binding request on its old port',
            flowing: 'inbound video and audio bytes both grew between two ~100 ms samples, on both ends of the call',
            survived: `flowing again within ${SURVIVAL_WAIT_MS / 1000} s of the relay being back (and, for callchart, both sides still in the call)`,
            firstAttempt: "callchart: the agent's (offerer's) peerConnection machine entering reconnecting.attempting; restart on failed: its one renegotiation",
          },
        },
        runs,
      },
      plots: [{ file: 'recovery.svg', svg: recoveryPlot(runs) }],
    };
  },
};

export default recovery;
