/**
 * The baselines: two RTCPeerConnections in one page, signaled in-page, relay-only through the same TURN
 * server as the app, so a relay outage hits them exactly as it hits a callchart call. What differs is
 * who reacts: nobody (the browser alone), or the common app handler that renegotiates with an ICE
 * restart when `connectionState` becomes `failed`.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, Page } from 'playwright-core';
import { newPerson, openPage } from '../../../test/support/browser.ts';
import { flowingAt, SAMPLING_SCRIPT, type ByteSample, type StateChange } from './samples.ts';

/** `none`: no controller at all. `restart-on-failed`: one ICE restart the first time the offerer reports `failed`. */
export type BaselinePolicy = 'none' | 'restart-on-failed';

// Plain script text, never a serialized function: the bench runs under tsx, whose name-keeping helpers
// do not exist in the page.
const PAGE = `<!doctype html><meta charset="utf-8"><title>baseline pair</title><body>
<script>
const SAMPLE_MS = 100;
const log = { states: [], restarts: [], samples: { a: [], b: [] } };
let pair = null;
let stream = null;
${SAMPLING_SCRIPT}
async function negotiate(a, b, iceRestart) {
  const offer = await a.createOffer({ iceRestart });
  await a.setLocalDescription(offer);
  await b.setRemoteDescription(offer);
  const answer = await b.createAnswer();
  await b.setLocalDescription(answer);
  await a.setRemoteDescription(answer);
}

window.baseline = {
  async connect(config, policy) {
    window.baseline.close();
    stream = stream || (await navigator.mediaDevices.getUserMedia({ video: true, audio: true }));
    const a = new RTCPeerConnection(config);
    const b = new RTCPeerConnection(config);
    const current = { a, b, closed: false, restarted: false };
    pair = current;
    // Trickled straight across: addIceCandidate waits in the peer's operations chain behind the
    // description it belongs to.
    a.addEventListener('icecandidate', (e) => { if (e.candidate) b.addIceCandidate(e.candidate).catch(() => {}); });
    b.addEventListener('icecandidate', (e) => { if (e.candidate) a.addIceCandidate(e.candidate).catch(() => {}); });
    for (const [name, pc] of [['a', a], ['b', b]]) {
      pc.addEventListener('connectionstatechange', () => {
        if (current.closed) return;
        log.states.push({ what: name, value: pc.connectionState, at: Date.now() });
        if (name === 'a' && pc.connectionState === 'failed' && policy === 'restart-on-failed' && !current.restarted) {
          current.restarted = true;
          log.restarts.push({ at: Date.now(), error: null });
          negotiate(a, b, true).catch((error) => log.restarts.push({ at: Date.now(), error: String(error) }));
        }
      });
    }
    for (const track of stream.getTracks()) {
      a.addTrack(track, stream);
      b.addTrack(track, stream);
    }
    await negotiate(a, b, false);
  },
  close() {
    if (!pair) return;
    pair.closed = true;
    pair.a.close();
    pair.b.close();
    pair = null;
  },
  state() {
    return pair ? { a: pair.a.connectionState, b: pair.b.connectionState, restarted: pair.restarted } : null;
  },
  read(since) {
    const from = since - 1000;
    return {
      states: log.states.filter((s) => s.at >= from),
      restarts: log.restarts.filter((r) => r.at >= from),
      samples: { a: log.samples.a.filter((s) => s.at >= from), b: log.samples.b.filter((s) => s.at >= from) },
    };
  },
};

let busy = false;
setInterval(async () => {
  const current = pair;
  if (busy || !current) return;
  busy = true;
  try {
    const [a, b] = await Promise.all([current.a.getStats(), current.b.getStats()]);
    if (current !== pair) return;
    keep(log.samples.a, inbound(a));
    keep(log.samples.b, inbound(b));
  } catch {
    // A pair closed between the tick and its stats.
  } finally {
    busy = false;
  }
}, SAMPLE_MS);
</script>`;

export interface BaselineSite {
  origin: string;
  close(): Promise<void>;
}

/** Serves the page from 127.0.0.1: a secure context, so getUserMedia works without TLS. */
export async function startBaselineSite(): Promise<BaselineSite> {
  const server: Server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export interface BaselineReading {
  states: StateChange[];
  restarts: { at: number; error: string | null }[];
  sides: ByteSample[][];
}

export interface BaselineState {
  a: RTCPeerConnectionState;
  b: RTCPeerConnectionState;
  restarted: boolean;
}

export class BaselinePair {
  private constructor(
    readonly policy: BaselinePolicy,
    readonly page: Page,
    private readonly config: RTCConfiguration,
  ) {}

  static async open(browser: Browser, site: BaselineSite, policy: BaselinePolicy, config: RTCConfiguration): Promise<BaselinePair> {
    const context = await newPerson(browser);
    const page = await openPage(context, `${site.origin}/`);
    return new BaselinePair(policy, page, config);
  }

  /** Fresh peer connections, connected: what a baseline starts each run with after losing a call. */
  async connect(): Promise<void> {
    await this.page.evaluate(`window.baseline.connect(${JSON.stringify(this.config)}, ${JSON.stringify(this.policy)})`);
  }

  /** `connect()`, then waits (bounded) until media flows both ways on the new connections. */
  async connectFlowing(timeoutMs = 15_000): Promise<void> {
    const startedAt = Date.now();
    await this.connect();
    for (;;) {
      if (flowingAt((await this.read(startedAt)).sides, startedAt) !== null) return;
      if (Date.now() - startedAt > timeoutMs) throw new Error(`the ${this.policy} baseline pair carried no media within ${timeoutMs} ms of connecting: ${JSON.stringify(await this.state())}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  async state(): Promise<BaselineState | null> {
    return (await this.page.evaluate('window.baseline.state()')) as BaselineState | null;
  }

  async read(since: number): Promise<BaselineReading> {
    const raw = (await this.page.evaluate(`window.baseline.read(${since})`)) as {
      states: StateChange[];
      restarts: { at: number; error: string | null }[];
      samples: { a: ByteSample[]; b: ByteSample[] };
    };
    return { states: raw.states, restarts: raw.restarts, sides: [raw.samples.a, raw.samples.b] };
  }

  async close(): Promise<void> {
    await this.page.context().close();
  }
}
