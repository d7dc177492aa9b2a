/**
 * The fault the browser scenarios rely on, proven without the app: two Chromium pages connected only
 * through the local coturn lose their media when it is SIGKILLed, Chromium reports the fault with its
 * fixed timings, and an ICE restart after the relay comes back restores media. If this fails, a failing
 * call scenario says nothing about the app.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browserDisableFeatures, launchBrowser, mediaStats, newPerson, openPage, waitForMediaFlowing, waitForMediaStopped } from '../support/browser.ts';
import { TurnServer } from '../support/turn.ts';

// Signaling is the test itself passing complete SDPs between the pages, so the only network path the
// media can take is the relay.
const PEER_PAGE = `<!doctype html><meta charset="utf-8"><title>peer</title><body><video autoplay muted playsinline></video>
<script>
let pc;
const states = [];
const endOfCandidates = () => new Promise((resolve) => {
  const onCandidate = (event) => { if (!event.candidate) { pc.removeEventListener('icecandidate', onCandidate); resolve(); } };
  pc.addEventListener('icecandidate', onCandidate);
});
window.peer = {
  async setup(config) {
    pc = new RTCPeerConnection(config);
    pc.addEventListener('connectionstatechange', () => states.push({ state: pc.connectionState, ice: pc.iceConnectionState, at: Date.now() }));
    pc.addEventListener('track', (event) => { document.querySelector('video').srcObject = event.streams[0]; });
    const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
    for (const track of stream.getTracks()) pc.addTrack(track, stream);
    window.callchart = { getStats: () => pc.getStats() };
  },
  async offer(iceRestart) {
    const gathered = endOfCandidates();
    await pc.setLocalDescription(await pc.createOffer({ iceRestart }));
    await gathered;
    return pc.localDescription.sdp;
  },
  async answer(sdp) {
    await pc.setRemoteDescription({ type: 'offer', sdp });
    const gathered = endOfCandidates();
    await pc.setLocalDescription(await pc.createAnswer());
    await gathered;
    return pc.localDescription.sdp;
  },
  accept: (sdp) => pc.setRemoteDescription({ type: 'answer', sdp }),
  states: () => states,
  async selectedPath() {
    const report = await pc.getStats();
    const stats = [...report.values()];
    const transport = stats.find((s) => s.type === 'transport' && s.selectedCandidatePairId);
    const pair = transport && report.get(transport.selectedCandidatePairId);
    return pair ? { local: report.get(pair.localCandidateId)?.candidateType, remote: report.get(pair.remoteCandidateId)?.candidateType } : null;
  },
};
</script>`;

interface PeerApi {
  setup(config: RTCConfiguration): Promise<void>;
  offer(iceRestart: boolean): Promise<string>;
  answer(sdp: string): Promise<string>;
  accept(sdp: string): Promise<void>;
  states(): { state: RTCPeerConnectionState; ice: RTCIceConnectionState; at: number }[];
  selectedPath(): Promise<{ local: string; remote: string } | null>;
}

const peer = <K extends keyof PeerApi>(page: Page, method: K, ...args: Parameters<PeerApi[K]>) =>
  page.evaluate(
    ([name, rest]) => (window as unknown as { peer: Record<string, (...a: unknown[]) => unknown> }).peer[name]!(...rest),
    [method, args] as const,
  ) as Promise<Awaited<ReturnType<PeerApi[K]>>>;

async function negotiate(offerer: Page, answerer: Page, iceRestart: boolean): Promise<void> {
  const offer = await peer(offerer, 'offer', iceRestart);
  await peer(offerer, 'accept', await peer(answerer, 'answer', offer));
}

async function waitForState(page: Page, state: RTCPeerConnectionState, since: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const reached = (await peer(page, 'states')).find((s) => s.state === state && s.at >= since);
    if (reached) return reached.at;
    if (Date.now() > deadline) throw new Error(`connectionState never became ${state}; saw ${JSON.stringify(await peer(page, 'states'))}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('a relay-only TURN server as a real ICE fault, in Chromium', () => {
  let browser: Browser;
  let turn: TurnServer;
  let site: Server;
  let origin: string;

  beforeAll(async () => {
    turn = await TurnServer.create();
    await turn.start();
    site = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(PEER_PAGE));
    await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
    browser = await launchBrowser();
  }, 30_000);

  afterAll(async () => {
    await browser?.close();
    await turn?.dispose();
    await new Promise((resolve) => site?.close(resolve));
  });

  it('starts Chromium with one --disable-features switch that keeps playwright\'s list and adds ours', async () => {
    const switches = await browserDisableFeatures(browser);
    expect(switches).toHaveLength(1);
    const features = switches[0]!.slice('--disable-features='.length).split(',');
    expect(features).toContain('WebRtcHideLocalIpsWithMdns');
    // One of playwright's own: losing it is what a second switch would silently do.
    expect(features).toContain('PaintHolding');
  });

  it('loses media when the relay is killed and recovers it with an ICE restart once the relay is back', async () => {
    const [left, right] = await Promise.all([1, 2].map(async () => openPage(await newPerson(browser), `${origin}/`)));
    const config = { iceServers: turn.iceServers, iceTransportPolicy: 'relay' as const };
    await Promise.all([peer(left!, 'setup', config), peer(right!, 'setup', config)]);
    await negotiate(left!, right!, false);
    await Promise.all([waitForMediaFlowing(left!), waitForMediaFlowing(right!)]);
    expect(await peer(left!, 'selectedPath')).toEqual({ local: 'relay', remote: 'relay' });

    const killedAt = Date.now();
    await turn.stop();
    await Promise.all([waitForMediaStopped(left!), waitForMediaStopped(right!)]);
    const disconnectedAt = await waitForState(left!, 'disconnected', killedAt, 10_000);
    const failedAt = await waitForState(left!, 'failed', killedAt, 20_000);
    // Chromium's fixed timers: about 5 s to disconnected, then 10 s more to failed.
    expect(disconnectedAt - killedAt).toBeGreaterThan(3_000);
    expect(failedAt - disconnectedAt).toBeGreaterThan(8_000);
    const frozen = await mediaStats(left!);

    await turn.start();
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
