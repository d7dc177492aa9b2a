/**
 * An agent's socket that dies without a FIN: a TCP hop between the agent and the server stops
 * forwarding and closes nothing, so the server holds an open connection to nobody. Its pings are the only
 * way it can tell; the ring on that agent must move on within 6 s of the cut, even when the cut comes at
 * the worst moment, just after a ping was answered.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { agentToken, closeClientsThenServer, startTestServer, TestClient, visitorToken, type TestServer } from '../support/server.ts';
import { SilentProxy } from '../support/silent-proxy.ts';

const PROMISED_MS = 6_000;
// Long enough for the old 10 s + 5 s ping to show how late it was, rather than a bare timeout.
const WAIT_MS = 20_000;
// A ping's answer crosses the hop well within this on loopback.
const PONG_MS = 200;

let t: TestServer | null = null;
let proxy: SilentProxy | null = null;
const clients: TestClient[] = [];

afterEach(async () => {
  await proxy?.close();
  proxy = null;
  await closeClientsThenServer(clients, t);
  t = null;
});

async function connect(url: string, token: string): Promise<TestClient> {
  const client = await TestClient.connect(url, token);
  clients.push(client);
  return client;
}

/** A server whose rings never time out, so only the socket's death can move one; ada reaches it through the hop. */
async function adaBehindHop() {
  t = await startTestServer({ RING_TIMEOUT_MS: '60000', MAX_QUEUE_WAIT_MS: '60000' });
  proxy = await SilentProxy.start(t.url);
  const ada = await connect(proxy.url, await agentToken(t.url, 'ada'));
  const visitor = await connect(t.url, (await visitorToken(t.url)).token);
  const ack = await visitor.emit('visitor.request', { pool: 'support' });
  if (!ack.ok) throw new Error(`request refused: ${ack.error.message}`);
  await ada.next('agent.ring', (ring) => ring.requestId === ack.requestId);
  return { ada, visitor, requestId: ack.requestId, hop: proxy };
}

/** Cuts the hop just after a ping went through and was answered; resolves to when. */
async function cutAfterPing(hop: SilentProxy): Promise<number> {
  await hop.nextPing();
  await new Promise((resolve) => setTimeout(resolve, PONG_MS));
  hop.cut();
  return Date.now();
}

describe('a ring on an agent whose socket died silently', () => {
  it('moves to the next agent within 6 s of the cut', async () => {
    const { visitor, requestId, hop } = await adaBehindHop();
    const grace = await connect(t!.url, await agentToken(t!.url, 'grace'));
    // Ada's ring holds while her socket lives: grace coming online takes nothing from her.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(grace.saw('agent.ring')).toBe(false);

    const cutAt = await cutAfterPing(hop);
    await grace.next('agent.ring', (ring) => ring.requestId === requestId, WAIT_MS);
    const movedAfter = Date.now() - cutAt;
    expect(movedAfter).toBeLessThanOrEqual(PROMISED_MS);
    await visitor.next('routing.update', (update) => update.requestId === requestId && update.state === 'ringing' && update.agentName === 'Grace Hopper');
  });

  it('queues the visitor within 6 s of the cut when nobody else is free', async () => {
    const { visitor, requestId, hop } = await adaBehindHop();
    const cutAt = await cutAfterPing(hop);
    await visitor.next('routing.update', (update) => update.requestId === requestId && update.state === 'queued', WAIT_MS);
    expect(Date.now() - cutAt).toBeLessThanOrEqual(PROMISED_MS);
  });
});
