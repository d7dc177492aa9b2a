/**
 * The real widget and dashboard on a three-node cluster (Postgres, Redis and Debian's haproxy, as
 * `npm run cluster` runs them), with the node that owns the call SIGKILLed mid-call. The visitor comes in
 * through haproxy, pinned to node 1 (`balance first`), so its request is made and owned there; Ada's
 * dashboard is opened on node 3's own port. Killing node 1 takes the visitor's socket with it: the widget
 * reconnects through haproxy, which now sends it to node 2, and resumes its session there, while another
 * node takes the request's lease. Media runs peer to peer through the local relay and must not notice;
 * a relay fault after the takeover is then mended by an ICE restart signalled through the surviving nodes.
 */
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { waitForMediaFlowing, waitForMediaStopped } from '../support/browser.ts';
import { browserSuite } from '../support/browser-suite.ts';
import { connectCall, connectionIndicator, hangUpButton, statusCleared, TEXT } from '../support/call-steps.ts';
import { INBOUND_KEYS, mediaDeltas, sampleMedia, waitForLogEntry, waitForSignaling } from '../support/cluster-browser.ts';
import { startCluster, type Cluster, type ClusterNode } from '../support/cluster.ts';
import { BROWSER_TIMINGS, openAgent, openVisitor, status, visitorCallId, waitForCall, waitForText } from '../support/e2e.ts';
import { sleep } from '../support/server.ts';

const SAMPLE_MS = 1_000;
// Samples (a second apart) taken before the kill, and after both the resume and the takeover.
const SAMPLES_BEFORE_KILL = 3;
const SAMPLES_AFTER_RECOVERY = 3;
const SAMPLES_TIMEOUT_MS = 15_000;
// Audio is a constant-rate stream and the fake camera a constant frame rate: a second of either after
// the kill must carry at least this share of a second before it.
const KEPT_RATE = 0.5;
// Chromium's own timers: disconnected at about 5 s, then the 2 s grace before the first attempt.
const RELAY_FAULT_NOTICE_MS = 20_000;

describe('a call across cluster nodes when the owner node is SIGKILLed (Chromium with a fake camera and microphone, media through a local relay)', () => {
  const suite = browserSuite();
  let cluster: Cluster;

  beforeAll(async () => {
    const startedAt = Date.now();
    const phases: string[] = [];
    cluster = await startCluster({
      nodes: 3,
      env: { ...BROWSER_TIMINGS, ...suite.turn.serverEnv },
      balancer: { balance: 'first' },
      progress: (line) => phases.push(`${line} at ${String(Date.now() - startedAt)} ms`),
    });
    console.log(`cluster of 3 nodes behind haproxy up in ${String(Date.now() - startedAt)} ms (${phases.join(', ')})`);
  }, 120_000);

  afterAll(async () => {
    await cluster?.stop();
  }, 60_000);

  it('keeps media flowing and both screens in the call, resumes the visitor on a live node, then hangs up and stores the call', async () => {
    const [n1, n2, n3] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
    const balancer = cluster.balancer!;
    const visitor = await openVisitor(suite.browser, { url: balancer.url });
    const ada = await openAgent(suite.browser, { url: n3.url }, 'ada');
    await connectCall(visitor, ada, 'ada');
    const callId = await visitorCallId(visitor.page);
    const [row] = await cluster.sql<{ request_id: string }>('SELECT request_id FROM calls WHERE id = $1', [callId]);
    const requestId = row!.request_id;
    // The request was made on the node the visitor's socket is on, and is owned there.
    expect((await cluster.ownerOf(requestId))?.node?.name).toBe(n1.name);

    const sampler = sampleMedia({ visitor: visitor.page, agent: ada.page }, SAMPLE_MS);
    // What each screen says while the node dies, watched alongside the media: neither may leave the call.
    const screens = { visitor: [] as string[], agent: [] as string[] };
    const leftCall: string[] = [];
    let watching = true;
    const watched = (async () => {
      while (watching) {
        for (const [side, page] of [['visitor', visitor.page], ['agent', ada.page]] as const) {
          const shown = (await page.getByRole('status').allInnerTexts()).join(' | ');
          if (screens[side].at(-1) !== shown) screens[side].push(shown);
          if (!(await hangUpButton(page).isVisible())) leftCall.push(`${side} at ${String(Date.now())} showed no Hang up (status: ${JSON.stringify(shown)})`);
        }
        await sleep(250);
      }
    })();
    // Its failure surfaces where it is awaited, not as an unhandled rejection in between.
    watched.catch(() => undefined);
    const stopWatching = async () => {
      watching = false;
      await watched;
      return sampler.stop();
    };
    try {
      await sampler.taken(SAMPLES_BEFORE_KILL, { timeoutMs: SAMPLES_TIMEOUT_MS });

      const killedAt = Date.now();
      await cluster.kill(n1, 'SIGKILL');

      // The widget's URL is the balancer's, so its reconnect lands on a node still up, which takes up its session.
      const survivors = [n2, n3];
      const resumed = await waitForLogEntry(
        cluster,
        survivors,
        (entry) => entry.msg === 'session resumed' && String(entry.who).startsWith('visitor:') && entry.call === callId && (entry.time ?? 0) >= killedAt,
        `the visitor's session resumed with call ${callId}`,
        20_000,
      );
      await waitForSignaling(visitor.page, /^\{"connected":\{"ready"/, 20_000);
      const newOwner = await cluster.waitForOwner(requestId, (owner) => owner?.node !== undefined && owner.node !== n1, 15_000);
      const recoveredAt = Date.now();
      console.log(
        `owner ${n1.name} killed: visitor resumed on ${resumed.node.name} after ${String((resumed.entry.time ?? 0) - killedAt)} ms, ` +
          `request taken over by ${newOwner!.node!.name} within ${String(recoveredAt - killedAt)} ms`,
      );
      expect(survivors).toContain(resumed.node);
      expect(await visitorCallId(visitor.page)).toBe(callId);
      await sampler.taken(SAMPLES_AFTER_RECOVERY, { after: recoveredAt, timeoutMs: SAMPLES_TIMEOUT_MS });

      const samples = await stopWatching();
      console.log(`screens while the node died: visitor ${JSON.stringify(screens.visitor)}, agent ${JSON.stringify(screens.agent)}`);
      expect(leftCall).toEqual([]);
      const deltas = mediaDeltas(samples);
      for (const delta of deltas) {
        for (const key of INBOUND_KEYS) {
          expect(delta.growth[key], `${delta.page} ${key} from ${String(delta.from - killedAt)} to ${String(delta.to - killedAt)} ms after the kill`).toBeGreaterThan(0);
        }
      }
      // Compared per second, so that a sample the loaded machine took late counts for what it spans.
      const rate = (page: string, key: 'audioBytes' | 'videoFrames', keep: (delta: (typeof deltas)[number]) => boolean) => {
        const chosen = deltas.filter((delta) => delta.page === page && keep(delta));
        return chosen.map((delta) => (delta.growth[key] * 1_000) / (delta.to - delta.from));
      };
      const spansKill = (delta: (typeof deltas)[number]) => delta.to > killedAt;
      for (const page of ['visitor', 'agent']) {
        for (const key of ['audioBytes', 'videoFrames'] as const) {
          const before = rate(page, key, (delta) => !spansKill(delta));
          const after = rate(page, key, spansKill);
          const baseline = before.reduce((sum, value) => sum + value, 0) / before.length;
          console.log(`${page} ${key}/s before the kill ${before.map(Math.round).join(', ')}; from the kill on ${after.map(Math.round).join(', ')}`);
          expect(Math.min(...after), `${page} ${key} per second after the kill, against ${String(Math.round(baseline))} before`).toBeGreaterThanOrEqual(baseline * KEPT_RATE);
        }
      }
    } finally {
      await stopWatching().catch(() => undefined);
    }

    // Both screens are back to a plain call: nobody waits for the other, and Ada's indicator is green.
    await Promise.all([statusCleared(visitor.page, /Connection lost/), statusCleared(ada.page, TEXT.waitingFor('Visitor'))]);
    await connectionIndicator(ada.page, 'green', 'Connection good');
    await Promise.all([waitForMediaFlowing(visitor.page), waitForMediaFlowing(ada.page)]);

    // A relay fault after the takeover breaks the media path for real; the ICE restart that mends it is
    // signalled through the surviving nodes, and the new owner records the attempt.
    const faultAt = Date.now();
    await suite.turn.stop();
    try {
      await Promise.all([waitForMediaStopped(visitor.page), waitForMediaStopped(ada.page)]);
      await Promise.all([status(visitor.page, TEXT.reconnecting, RELAY_FAULT_NOTICE_MS), status(ada.page, TEXT.reconnecting, RELAY_FAULT_NOTICE_MS)]);
    } finally {
      await suite.turn.start();
    }
    const relayBackAt = Date.now();
    const flows = await Promise.all([waitForMediaFlowing(visitor.page, { timeoutMs: 25_000 }), waitForMediaFlowing(ada.page, { timeoutMs: 25_000 })]);
    console.log(`relay fault after the takeover: media flowing again ${String(Math.max(...flows.map((flow) => flow.at)) - relayBackAt)} ms after the relay restarted`);
    await Promise.all([statusCleared(visitor.page, TEXT.reconnecting), statusCleared(ada.page, TEXT.reconnecting)]);
    await waitForLogEntry(cluster, [n2, n3], (entry) => entry.msg === 'ICE restart offer relayed' && entry.callId === callId && (entry.time ?? 0) >= faultAt, 'the ICE restart offer relayed', 5_000);

    // The visitor, now on another node, hangs up: the new owner ends the call on both screens and in the store.
    await hangUpButton(visitor.page).click();
    await status(visitor.page, 'The call has ended');
    await status(ada.page, 'Visitor ended the call');
    const history = ada.page.getByRole('region', { name: /history/i });
    await waitForText(ada.page, history.locator(`tr[data-call-id="${callId}"]`), 'Visitor');
    const [stored] = await cluster.sql<{ state: string; end_reason: string; agent_id: string; connected_at: unknown; ended_at: unknown }>(
      'SELECT state, end_reason, agent_id, connected_at, ended_at FROM calls WHERE id = $1',
      [callId],
    );
    expect(stored).toMatchObject({ state: 'ended', end_reason: 'hangup', agent_id: 'ada' });
    expect(stored!.connected_at).not.toBeNull();
    expect(stored!.ended_at).not.toBeNull();
    const details = await waitForCall({ url: n2.url }, callId, (call) => call.telemetry.reconnectionAttempts.some((attempt) => attempt.outcome === 'recovered'));
    expect(details.call).toMatchObject({ state: 'ended', endReason: 'hangup' });
  }, 90_000);
});
