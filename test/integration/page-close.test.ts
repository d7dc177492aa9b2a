/**
 * A visitor's page closing, through the real client and a real server: a request still waiting for an agent
 * is cancelled at once by the page's beacon, so the visitors queued behind move up without waiting out
 * RESUME_WINDOW_MS; a call already accepted is left to its resume window, as a dropped network is.
 * Node has no `navigator.sendBeacon`: the beacon here is what a browser sends, a text/plain POST that the
 * page does not wait for.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from 'xstate';
import { createVisitorClient, pageLifecycle, type VisitorClient } from '@callchart/client';
import { TestClient, agentToken, closeClientsThenServer, sleep, startTestServer, stored, visitorToken, type TestServer } from '../support/server.ts';
import { recordedRtc } from '../support/callFixture.ts';

const RESUME_WINDOW_MS = 20_000;
const WAIT = { timeout: 5_000 };

let t: TestServer | null = null;
const opened: { close(): unknown }[] = [];
afterEach(async () => {
  await closeClientsThenServer(opened, t);
  t = null;
});

interface Page {
  /** What the browser does as the page goes: `pagehide`, then the page and its socket are gone. */
  close(): void;
  beacons: { url: string; body: string; status: Promise<number> }[];
}

async function visitorPage(url: string, name: string): Promise<{ client: VisitorClient; page: Page; visitorId: string }> {
  const window = new EventTarget();
  const beacons: Page['beacons'] = [];
  const sendBeacon = (to: string, body: string) => {
    const status = fetch(to, { method: 'POST', headers: { 'content-type': 'text/plain;charset=UTF-8' }, body, keepalive: true }).then((r) => r.status);
    beacons.push({ url: to, body, status });
    return true;
  };
  const session = await visitorToken(url, name);
  const client = createVisitorClient({ url, token: session.token, pool: 'support', rtc: recordedRtc().rtc, page: pageLifecycle(window, sendBeacon) });
  opened.push({ close: () => client.stop() });
  await waitFor(client.signaling, (s) => s.matches({ connected: 'ready' }), WAIT);
  const page: Page = {
    close() {
      window.dispatchEvent(new Event('pagehide'));
      client.stop();
    },
    beacons,
  };
  return { client, page, visitorId: session.visitorId };
}

async function connect(url: string, token: string): Promise<TestClient> {
  const client = await TestClient.connect(url, token);
  opened.push(client);
  return client;
}

async function queuedAt(visitor: TestClient, position: number, timeout = WAIT.timeout): Promise<string> {
  const update = await visitor.next('routing.update', (u) => u.state === 'queued' && u.position === position, timeout);
  return update.requestId;
}

describe('a visitor page that closes', () => {
  it('cancels its queued request at once, and the visitor behind is first in line for good, not after the resume window', async () => {
    t = await startTestServer({ RESUME_WINDOW_MS: String(RESUME_WINDOW_MS), RING_TIMEOUT_MS: '60000', MAX_QUEUE_WAIT_MS: '60000' });
    const server = t.server;
    const vera = await visitorPage(t.url, 'Vera');
    vera.client.call.send({ type: 'call.request' });
    await waitFor(vera.client.call, (s) => s.matches({ waiting: 'queued' }) && s.context.queuePosition === 1, WAIT);
    const walt = await connect(t.url, (await visitorToken(t.url, 'Walt')).token);
    const waltRequest = (await walt.emit('visitor.request', { pool: 'support' })) as { requestId: string };
    expect(await queuedAt(walt, 2)).toBe(waltRequest.requestId);
    const veraRequest = server.switchboard.live().find((r) => r.visitorName === 'Vera')!.requestId;

    const closedAt = Date.now();
    vera.page.close();
    expect(await queuedAt(walt, 1)).toBe(waltRequest.requestId);
    // Ended, not held for a visitor who cannot come back: a closed page has no socket to resume with.
    await expect.poll(async () => (await stored(server, (store) => store.requests.get(veraRequest)))?.endReason, { timeout: WAIT.timeout }).toBe('cancelled');
    expect(Date.now() - closedAt).toBeLessThan(RESUME_WINDOW_MS / 4);
    expect(server.switchboard.live().map((r) => r.requestId)).toEqual([waltRequest.requestId]);

    expect(vera.client.call.getSnapshot()).toMatchObject({ value: 'ended', context: { endReason: 'cancelled' } });
    expect(vera.page.beacons).toHaveLength(1);
    const [beacon] = vera.page.beacons;
    expect(beacon!.url).toBe(`${t.url}/api/visitor-session/cancel`);
    expect(JSON.parse(beacon!.body)).toEqual({ token: expect.any(String), requestId: veraRequest });
    expect(await beacon!.status).toBe(204);
  });

  it('keeps the request of a visitor whose network merely dropped, for the resume window', async () => {
    t = await startTestServer({ RESUME_WINDOW_MS: String(RESUME_WINDOW_MS), RING_TIMEOUT_MS: '60000', MAX_QUEUE_WAIT_MS: '60000' });
    const vera = await visitorPage(t.url, 'Vera');
    vera.client.call.send({ type: 'call.request' });
    await waitFor(vera.client.call, (s) => s.matches({ waiting: 'queued' }), WAIT);
    const walt = await connect(t.url, (await visitorToken(t.url, 'Walt')).token);
    await walt.emit('visitor.request', { pool: 'support' });
    await queuedAt(walt, 2);

    const veraRequest = t.server.switchboard.live().find((r) => r.visitorName === 'Vera')!.requestId;
    vera.client.stop();
    // The queue does not count a visitor who is away, so the one behind is told position 1 at once; the
    // request itself waits for its visitor to come back.
    await queuedAt(walt, 1);
    await sleep(1_000);
    expect(await stored(t.server, (store) => store.requests.get(veraRequest))).toMatchObject({ endedAt: null });
    expect(t.server.switchboard.live().map((r) => r.requestId)).toContain(veraRequest);
    expect(vera.page.beacons).toEqual([]);
  });

  it('leaves an accepted call to its resume window: no beacon, and the call goes on for the agent', async () => {
    t = await startTestServer({ RESUME_WINDOW_MS: String(RESUME_WINDOW_MS), RECONNECTION_TIMEOUT_MS: '20000' });
    const ada = await connect(t.url, await agentToken(t.url, 'ada'));
    const vera = await visitorPage(t.url, 'Vera');
    vera.client.call.send({ type: 'call.request' });
    const ring = await ada.next('agent.ring');
    expect(await ada.emit('agent.accept', { requestId: ring.requestId })).toEqual({ ok: true });
    const { callId } = await ada.next('call.accepted');
    await waitFor(vera.client.call, (s) => s.matches('connecting'), WAIT);

    vera.page.close();
    await ada.next('call.paused', (p) => p.callId === callId && p.legs.visitor.socket === 'down');
    expect(vera.page.beacons).toEqual([]);
    expect(ada.saw('call.ended')).toBe(false);
    expect(await stored(t.server, (store) => store.calls.get(callId))).toMatchObject({ endedAt: null });
  });
});
