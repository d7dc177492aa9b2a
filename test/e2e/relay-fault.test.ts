/**
 * The fault the browser scenarios rely on, proven without the app: two Chromium pages connected only
 * through the local coturn lose their media when it is SIGKILLed, Chromium reports the fault with its
 * fixed timings, and an ICE restart after the relay comes back restores media. If this fails, a failing
 * call scenario says nothing about the app.
 */
import { describe, expect, it } from 'vitest';
import { browserDisableFeatures, mediaStats, newPerson, openPage, waitForMediaFlowing, waitForMediaStopped } from '../support/browser.ts';
import { browserSuite } from '../support/browser-suite.ts';
import { negotiate, peer, peerPage, waitForState } from '../support/peer-page.ts';

describe('a relay-only TURN server as a real ICE fault, in Chromium', () => {
  const suite = browserSuite();

  it('starts Chromium with one --disable-features switch that keeps playwright\'s list and adds ours', async () => {
    const switches = await browserDisableFeatures(suite.browser);
    expect(switches).toHaveLength(1);
    const features = switches[0]!.slice('--disable-features='.length).split(',');
    expect(features).toContain('WebRtcHideLocalIpsWithMdns');
    // One of playwright's own: losing it is what a second switch would silently do.
    expect(features).toContain('PaintHolding');
  });

  it('loses media when the relay is killed and recovers it with an ICE restart once the relay is back', async () => {
    const site = await suite.page(peerPage());
    const [left, right] = await Promise.all([1, 2].map(async () => openPage(await newPerson(suite.browser), site)));
    const config = { iceServers: suite.turn.iceServers, iceTransportPolicy: 'relay' as const };
    await Promise.all([peer(left!, 'setup', config), peer(right!, 'setup', config)]);
    await negotiate(left!, right!, false);
    await Promise.all([waitForMediaFlowing(left!), waitForMediaFlowing(right!)]);
    expect(await peer(left!, 'selectedPath')).toMatchObject({ local: 'relay', remote: 'relay' });

    const killedAt = Date.now();
    await suite.turn.stop();
    await Promise.all([waitForMediaStopped(left!), waitForMediaStopped(right!)]);
    const disconnectedAt = await waitForState(left!, 'disconnected', killedAt, 10_000);
    const failedAt = await waitForState(left!, 'failed', killedAt, 20_000);
    // Chromium's fixed timers: about 5 s to disconnected, then 10 s more to failed.
    expect(disconnectedAt - killedAt).toBeGreaterThan(3_000);
    expect(failedAt - disconnectedAt).toBeGreaterThan(8_000);
    const frozen = await mediaStats(left!);

    await suite.turn.start();
    const relayBackAt = Date.now();
    await negotiate(left!, right!, true);
    const [leftFlow, rightFlow] = await Promise.all([waitForMediaFlowing(left!), waitForMediaFlowing(right!)]);
    expect(leftFlow.stats.video).toBeGreaterThan(frozen.video);
    expect((await peer(right!, 'states')).at(-1)?.state).toBe('connected');
    console.log(
      `relay fault: disconnected after ${disconnectedAt - killedAt} ms, failed after ${failedAt - killedAt} ms; ` +
        `media flowing again ${Math.max(leftFlow.at, rightFlow.at) - relayBackAt} ms after the relay restarted`,
    );
  }, 60_000);
});
