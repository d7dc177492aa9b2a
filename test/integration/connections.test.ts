/**
 * Each person's connection actor on a real server: it counts their sockets for presence, gives them the
 * resume window once the last one goes, gives up a visitor's waiting request when it runs out (also after a
 * restart, counted from when the new process opened), and is forgotten once it has nothing left to wait for.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { TestClient, agentToken, sleep, startTestServer, stored, visitorToken, type TestServer } from '../support/server.ts';

let t: TestServer | null = null;
const clients: TestClient[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await t?.close();
  t = null;
});

async function server(env: Record<string, string>): Promise<TestServer> {
  t = await startTestServer(env);
  return t;
}

async function connect(url: string, token: string, resumeToken?: string): Promise<TestClient> {
  const client = await TestClient.connect(url, token, resumeToken);
  clients.push(client);
  return client;
}

/** Resolves once the server has seen the client's socket go. */
async function closeAndWait(client: TestClient): Promise<void> {
  const gone = new Promise<void>((resolve) => client.socket.once('disconnect', () => resolve()));
  client.close();
  await gone;
}

const ada = { kind: 'agent', id: 'ada' } as const;
const statusOf = (s: TestServer, agentId: string) => s.server.switchboard.presence.view().find((agent) => agent.id === agentId)?.status;

describe('connection actors', () => {
  it("keep an agent online while any of their sockets is open, and offline once the last goes; then forget them after the window", async () => {
    const s = await server({ RESUME_WINDOW_MS: '600' });
    const token = await agentToken(s.url, 'ada');
    const first = await connect(s.url, token);
    const second = await connect(s.url, token);
    await expect.poll(() => statusOf(s, 'ada')).toBe('available');
    expect(s.server.connections.snapshotOf(ada)?.context.sockets).toHaveLength(2);

    await closeAndWait(first);
    await expect.poll(() => s.server.connections.snapshotOf(ada)?.context.sockets.length).toBe(1);
    expect(statusOf(s, 'ada')).toBe('available');

    await closeAndWait(second);
    await expect.poll(() => statusOf(s, 'ada')).toBe('offline');
    expect(s.server.connections.snapshotOf(ada)?.value).toBe('grace');
    await expect.poll(() => s.server.connections.snapshotOf(ada), { timeout: 3_000 }).toBeUndefined();
  });

  it('take an agent back within the window with their session, and refuse it once the window is over', async () => {
    const s = await server({ RESUME_WINDOW_MS: '500' });
    const token = await agentToken(s.url, 'ada');
    const first = await connect(s.url, token);
    await closeAndWait(first);
    const back = await connect(s.url, token, first.resumeToken!);
    expect(back.saw('session.resumed')).toBe(true);
    expect(s.server.connections.snapshotOf(ada)?.value).toBe('online');

    await closeAndWait(back);
    await expect.poll(() => s.server.connections.snapshotOf(ada), { timeout: 3_000 }).toBeUndefined();
    const late = new TestClient(s.url, token, back.resumeToken!);
    clients.push(late);
    await late.next('session.expired');
    await late.next('session.ready');
    expect(late.saw('session.resumed')).toBe(false);
  });

  it('sign an agent out of presence on logout, and forget them when their socket closes, without a loss', async () => {
    const s = await server({ RESUME_WINDOW_MS: '60000' });
    const agent = await connect(s.url, await agentToken(s.url, 'ada'));
    await expect.poll(() => statusOf(s, 'ada')).toBe('available');
    expect(await agent.emit('agent.logout', {})).toEqual({ ok: true });
    expect(statusOf(s, 'ada')).toBeUndefined();
    expect(s.server.connections.snapshotOf(ada)?.value).toBe('loggedOut');
    await closeAndWait(agent);
    // No grace is left running for someone who logged out: the actor is gone at once.
    await expect.poll(() => s.server.connections.snapshotOf(ada)).toBeUndefined();
  });

  it("give up a waiting visitor's request after the window, counted from when the restarted server opened; one who comes back keeps it", async () => {
    const windowMs = 1_500;
    // Nobody can take the requests, and the queue waits far longer than the window.
    const s = await server({ RESUME_WINDOW_MS: String(windowMs), MAX_QUEUE_WAIT_MS: '60000' });
    const stays = await visitorToken(s.url, 'Stella Stays');
    const leaves = await visitorToken(s.url, 'Lena Leaves');
    const staying = await connect(s.url, stays.token);
    const leaving = await connect(s.url, leaves.token);
    const kept = (await staying.emit('visitor.request', { pool: 'support' })) as { requestId: string };
    const given = (await leaving.emit('visitor.request', { pool: 'support' })) as { requestId: string };
    await staying.next('routing.update', (update) => update.state === 'queued');
    await leaving.next('routing.update', (update) => update.state === 'queued');

    await s.restart();
    const openedAt = Date.now();
    const leavingId = { kind: 'visitor', id: leaves.visitorId } as const;
    expect(s.server.connections.snapshotOf(leavingId)?.value).toBe('grace');

    const back = await connect(s.url, stays.token, staying.resumeToken!);
    expect(back.saw('session.resumed')).toBe(true);

    await sleep(windowMs / 2);
    expect(s.server.switchboard.routingSnapshot(given.requestId)?.value).toBe('queued');
    await expect.poll(async () => (await stored(s.server, (store) => store.requests.get(given.requestId)))?.endReason, { timeout: windowMs + 3_000, interval: 20 }).toBe('cancelled');
    expect(Date.now() - openedAt).toBeGreaterThanOrEqual(windowMs - 50);
    expect(s.server.connections.snapshotOf(leavingId)).toBeUndefined();

    await sleep(300);
    expect((await stored(s.server, (store) => store.requests.get(kept.requestId)))?.endReason ?? null).toBeNull();
    expect(s.server.switchboard.routingSnapshot(kept.requestId)?.value).toBe('queued');
  });
});
