/**
 * A bare WebRTC peer page for proving a network fault without the app: the test itself carries complete
 * SDPs between two pages through playwright, so signaling never touches the network under test and the
 * only path the media can take is whatever the RTCConfiguration allows.
 */
import type { Page } from 'playwright-core';

const PEER_SCRIPT = `
let pc;
const states = [];
// Relay candidates arrive once the TURN server answers; one that is unreachable must not hang the test.
const GATHERING_LIMIT_MS = 5000;
const endOfCandidates = () => new Promise((resolve) => {
  const done = () => { clearTimeout(timer); pc.removeEventListener('icecandidate', onCandidate); resolve(); };
  const onCandidate = (event) => { if (!event.candidate) done(); };
  const timer = setTimeout(done, GATHERING_LIMIT_MS);
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
    if (!pair) return null;
    const local = report.get(pair.localCandidateId);
    const remote = report.get(pair.remoteCandidateId);
    return { local: local?.candidateType, remote: remote?.candidateType, localAddress: local?.address };
  },
};
`;

/** The peer page, with `extraScript` run after it (for a test's own probes). */
export const peerPage = (extraScript = '') =>
  `<!doctype html><meta charset="utf-8"><title>peer</title><body><video autoplay muted playsinline></video>
<script>${PEER_SCRIPT}${extraScript}</script>`;

export interface PeerApi {
  setup(config: RTCConfiguration): Promise<void>;
  offer(iceRestart: boolean): Promise<string>;
  answer(sdp: string): Promise<string>;
  accept(sdp: string): Promise<void>;
  states(): { state: RTCPeerConnectionState; ice: RTCIceConnectionState; at: number }[];
  /** For a relay candidate `localAddress` is the relay's own; Chromium does not say which local address it used. */
  selectedPath(): Promise<{ local: string; remote: string; localAddress: string } | null>;
}

export const peer = <K extends keyof PeerApi>(page: Page, method: K, ...args: Parameters<PeerApi[K]>) =>
  page.evaluate(
    ([name, rest]) => (window as unknown as { peer: Record<string, (...a: unknown[]) => unknown> }).peer[name]!(...rest),
    [method, args] as const,
  ) as Promise<Awaited<ReturnType<PeerApi[K]>>>;

export async function negotiate(offerer: Page, answerer: Page, iceRestart: boolean): Promise<void> {
  const offer = await peer(offerer, 'offer', iceRestart);
  await peer(offerer, 'accept', await peer(answerer, 'answer', offer));
}

/** When connectionState first became `state` at or after `since`. */
export async function waitForState(page: Page, state: RTCPeerConnectionState, since: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const reached = (await peer(page, 'states')).find((s) => s.state === state && s.at >= since);
    if (reached) return reached.at;
    if (Date.now() > deadline) throw new Error(`connectionState never became ${state}; saw ${JSON.stringify(await peer(page, 'states'))}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
