/**
 * The whole-network fault the browser scenarios can build on, proven without the app: a Chromium inside a
 * network namespace calls a Chromium on this machine through a coturn on the namespace's host-side
 * address. Taking the namespace's link down is one outage of everything, as a lost Wi-Fi is: the page
 * goes offline, cannot reach its server and loses media both ways; the link coming back and an ICE
 * restart bring it all back. Moving the namespace to a new address, as a switch to cellular does, keeps
 * the server reachable, and an ICE restart brings media back over the new address.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, launchBrowserIn, mediaStats, newPerson, openPage, waitForMediaFlowing, waitForMediaStopped } from '../support/browser.ts';
import { NetNamespace } from '../support/netns.ts';
import { negotiate, peer, peerPage, waitForState } from '../support/peer-page.ts';
import { TurnServer } from '../support/turn.ts';

const TICK_MS = 200;

// What a page can tell about its own network: the browser's events, a stream the server ticks into, and
// a fresh request that says which address the server saw it come from.
const NETWORK_PROBE = `
window.net = { events: [], ticks: [], streamErrors: [] };
for (const type of ['online', 'offline']) addEventListener(type, () => net.events.push({ type, onLine: navigator.onLine, at: Date.now() }));
net.stream = () => {
  const source = new EventSource('/events');
  source.onmessage = () => net.ticks.push(Date.now());
  source.onerror = () => net.streamErrors.push({ at: Date.now(), readyState: source.readyState });
};
net.whoami = async (timeoutMs) => {
  const started = Date.now();
  try {
    const response = await fetch('/whoami', { cache: 'no-store', signal: AbortSignal.timeout(timeoutMs) });
    return { ok: true, address: await response.text(), ms: Date.now() - started };
  } catch (error) {
    return { ok: false, error: String(error), ms: Date.now() - started };
  }
};
`;

interface NetworkLog {
  events: { type: 'online' | 'offline'; onLine: boolean; at: number }[];
  ticks: number[];
  streamErrors: { at: number; readyState: number }[];
}

const networkLog = (page: Page) => page.evaluate(() => (window as unknown as { net: NetworkLog }).net);
const whoami = (page: Page, timeoutMs: number) =>
  page.evaluate(
    (ms) => (window as unknown as { net: { whoami(ms: number): Promise<{ ok: boolean; address?: string; error?: string; ms: number }> } }).net.whoami(ms),
    timeoutMs,
  );

async function waitForEvent(page: Page, type: 'online' | 'offline', since: number, timeoutMs: number): Promise<NetworkLog['events'][number]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const event = (await networkLog(page)).events.find((e) => e.type === type && e.at >= since);
    if (event) return event;
    if (Date.now() > deadline) throw new Error(`no ${type} event within ${timeoutMs} ms; saw ${JSON.stringify((await networkLog(page)).events)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function ticksWithin(page: Page, ms: number): Promise<number> {
  const before = (await networkLog(page)).ticks.length;
  await new Promise((resolve) => setTimeout(resolve, ms));
  return (await networkLog(page)).ticks.length - before;
}

/** The page for both sides: on the host address for the namespace, on loopback for this machine. */
function site(): Server {
  const streams = new Set<ServerResponse>();
  const server = createServer((req, res) => {
    if (req.url === '/events') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
      streams.add(res);
      const timer = setInterval(() => res.write(`data: ${Date.now()}\n\n`), TICK_MS);
      res.on('close', () => {
        clearInterval(timer);
        streams.delete(res);
      });
      return;
    }
    // No keep-alive: each probe is a new connection from whatever address the namespace has now.
    res.setHeader('connection', 'close');
    if (req.url === '/whoami') res.writeHead(200, { 'content-type': 'text/plain' }).end(req.socket.remoteAddress);
    else res.writeHead(200, { 'content-type': 'text/html' }).end(peerPage(NETWORK_PROBE));
  });
  server.on('close', () => streams.forEach((res) => res.destroy()));
  return server;
}

const listen = (server: Server, host: string) =>
  new Promise<string>((resolve) => server.listen(0, host, () => resolve(`http://${host}:${(server.address() as AddressInfo).port}`)));

const closeServer = (server: Server | undefined) =>
  new Promise<void>((resolve) => {
    if (!server?.listening) return resolve();
    server.closeAllConnections();
    server.close(() => resolve());
  });

// No skip where namespaces are unavailable: NetNamespace.create() fails with the reason and the fix.
describe('a whole network outage for a Chromium in a network namespace', () => {
  let ns: NetNamespace;
  let turn: TurnServer;
  let hostSite: Server;
  let loopbackSite: Server;
  let insideBrowser: Browser;
  let outsideBrowser: Browser;
  let inside: Page;
  let outside: Page;

  beforeAll(async () => {
    ns = await NetNamespace.create();
    turn = await TurnServer.create({ listeningIp: ns.hostAddress });
    await turn.start();
    hostSite = site();
    loopbackSite = site();
    const insideOrigin = await listen(hostSite, ns.hostAddress);
    const outsideOrigin = await listen(loopbackSite, '127.0.0.1');
    [insideBrowser, outsideBrowser] = await Promise.all([launchBrowserIn(ns, { secureOrigins: [insideOrigin] }), launchBrowser()]);
    [inside, outside] = await Promise.all([
      openPage(await newPerson(insideBrowser), `${insideOrigin}/`),
      openPage(await newPerson(outsideBrowser), `${outsideOrigin}/`),
    ]);
  }, 30_000);

  afterAll(async () => {
    // Each on its own, so that one failing to close still lets the others go.
    await Promise.allSettled([insideBrowser?.close(), outsideBrowser?.close()]);
    await Promise.allSettled([turn?.dispose(), closeServer(hostSite), closeServer(loopbackSite)]);
    await ns?.dispose();
  });

  it('calls from inside the namespace through the relay on its host-side address', async () => {
    expect(await inside.evaluate(() => [isSecureContext, navigator.onLine])).toEqual([true, true]);
    expect(await whoami(inside, 2_000)).toMatchObject({ ok: true, address: ns.guestAddress });
    await inside.evaluate(() => (window as unknown as { net: { stream(): void } }).net.stream());
    expect(await ticksWithin(inside, 1_000)).toBeGreaterThan(2);

    const config = { iceServers: turn.iceServers, iceTransportPolicy: 'relay' as const };
    await Promise.all([peer(inside, 'setup', config), peer(outside, 'setup', config)]);
    await negotiate(inside, outside, false);
    await Promise.all([waitForMediaFlowing(inside, { timeoutMs: 10_000 }), waitForMediaFlowing(outside, { timeoutMs: 10_000 })]);
    expect(await peer(inside, 'selectedPath')).toMatchObject({ local: 'relay', remote: 'relay', localAddress: ns.hostAddress });
  });

  it('goes offline, loses its server and loses media both ways when the link goes down; online and an ICE restart bring it back', async () => {
    const downAt = Date.now();
    await ns.linkDown();
    const offline = await waitForEvent(inside, 'offline', downAt, 3_000);
    expect(offline.onLine).toBe(false);
    expect(await inside.evaluate(() => navigator.onLine)).toBe(false);
    const refused = await whoami(inside, 2_000);
    expect(refused.ok).toBe(false);
    // Ticks already on their way when the link went down may still be handed to the page; none after.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect((await networkLog(inside)).ticks.filter((at) => at > downAt + 2 * TICK_MS)).toEqual([]);
    await Promise.all([waitForMediaStopped(inside, { timeoutMs: 5_000 }), waitForMediaStopped(outside, { timeoutMs: 5_000 })]);
    const mediaStoppedAt = Date.now();
    // Traffic back within Chromium's consent timeout heals by itself; past `disconnected` an app restarts.
    const disconnectedAt = await waitForState(inside, 'disconnected', downAt, 10_000);
    const frozen = await mediaStats(outside);

    const upAt = Date.now();
    await ns.linkUp();
    const online = await waitForEvent(inside, 'online', upAt, 3_000);
    expect(online.onLine).toBe(true);
    expect(await whoami(inside, 2_000)).toMatchObject({ ok: true, address: ns.guestAddress });
    const streamResumed = (await ticksWithin(inside, 1_000)) > 0;

    const restartAt = Date.now();
    await negotiate(inside, outside, true);
    const [insideFlow, outsideFlow] = await Promise.all([
      waitForMediaFlowing(inside, { timeoutMs: 10_000 }),
      waitForMediaFlowing(outside, { timeoutMs: 10_000 }),
    ]);
    expect(outsideFlow.stats.video).toBeGreaterThan(frozen.video);
    expect((await peer(inside, 'states')).at(-1)?.state).toBe('connected');
    const log = await networkLog(inside);
    console.log(
      `link down: offline event after ${offline.at - downAt} ms; a new request failed in ${refused.ms} ms (${refused.error}); ` +
        `media seen stopped on both sides by ${mediaStoppedAt - downAt} ms; connectionState disconnected after ${disconnectedAt - downAt} ms. ` +
        `link up: online event after ${online.at - upAt} ms; the open event stream ${streamResumed ? 'resumed' : 'did not resume'} ` +
        `(${log.streamErrors.length} stream errors); media flowing again ${Math.max(insideFlow.at, outsideFlow.at) - restartAt} ms after the ICE restart began`,
    );
  });

  it('keeps reaching its server across an address change, and an ICE restart brings media back over the new address', async () => {
    const before = ns.guestAddress;
    const eventsBefore = (await networkLog(inside)).events.length;
    const changeAt = Date.now();
    const after = await ns.changeAddress();
    const changeMs = Date.now() - changeAt;
    expect(after).not.toBe(before);
    const reached = await whoami(inside, 2_000);
    expect(reached).toMatchObject({ ok: true, address: after });
    // Some link stayed up the whole time, so Chromium has no reason to say offline.
    expect(await inside.evaluate(() => navigator.onLine)).toBe(true);

    await waitForMediaStopped(outside, { timeoutMs: 8_000 });
    const mediaStoppedAt = Date.now();
    const restartAt = Date.now();
    await negotiate(inside, outside, true);
    const [insideFlow, outsideFlow] = await Promise.all([
      waitForMediaFlowing(inside, { timeoutMs: 10_000 }),
      waitForMediaFlowing(outside, { timeoutMs: 10_000 }),
    ]);
    // Chromium hides the address a relay candidate was allocated from (raddr 0.0.0.0), but the old one is
    // gone, so the media now flowing can only have left from the new one.
    expect(await ns.addresses()).toEqual([after]);
    expect(await peer(inside, 'selectedPath')).toMatchObject({ local: 'relay', remote: 'relay' });
    expect((await networkLog(inside)).events.slice(eventsBefore)).toEqual([]);
    console.log(
      `address change ${before} → ${after} in ${changeMs} ms: a new request reached the server in ${reached.ms} ms; ` +
        `media seen stopped by ${mediaStoppedAt - changeAt} ms; media flowing again ${Math.max(insideFlow.at, outsideFlow.at) - restartAt} ms after the ICE restart began`,
    );
  });
});

