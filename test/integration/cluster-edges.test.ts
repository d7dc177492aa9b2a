/**
 * The edges of a cluster, on three real node processes sharing one Postgres and one Redis, each node behind
 * a Redis link of its own that a test can cut, and Debian's haproxy in front:
 * - a logout on one node cuts the session's sockets on every node, the inspector's included;
 * - the page-close cancel answers only once the request's node took it, and says why when it could not;
 * - a cluster that cannot act now is `unavailable` to a socket, never `store-unavailable`;
 * - behind the balancer the limits count each client, named by haproxy's X-Forwarded-For, and a client
 *   cannot choose its own address by sending one.
 */
import { request } from 'node:http';
import { io as ioClient, type Socket } from 'socket.io-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster, type ClusterNode } from '../support/cluster.ts';
import { ClusterPeople, emitWithin, expectIdle } from '../support/clusterClients.ts';
import { requestCall } from '../support/routing.ts';
import { TestClient, agentToken, sleep, visitorToken, type DemoAgent } from '../support/server.ts';

// Long enough that no timer a scenario does not exercise fires on a loaded machine.
const TIMINGS = {
  RING_TIMEOUT_MS: '20000',
  MAX_QUEUE_WAIT_MS: '60000',
  AGENT_GRACE_MS: '15000',
  RECONNECTION_TIMEOUT_MS: '20000',
  RESUME_WINDOW_MS: '20000',
};
// haproxy connects to the nodes from 127.0.0.1; the test's clients come from other loopback addresses.
const BALANCER = '127.0.0.1';
const ADDRESS_FAILURES = 3;
/** Lets in-flight messages land, so that a check that something did NOT happen means something. */
const settle = () => sleep(500);

let cluster: Cluster;
let people: ClusterPeople;
let n1: ClusterNode;
let n2: ClusterNode;
let n3: ClusterNode;
const sockets: Socket[] = [];

beforeAll(async () => {
  cluster = await startCluster({
    nodes: 3,
    balancer: true,
    redisLinks: true,
    env: { ...TIMINGS, TRUST_PROXY: BALANCER, LIMIT_LOGIN_ADDRESS_FAILURES: String(ADDRESS_FAILURES) },
  });
  [n1, n2, n3] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
  people = new ClusterPeople(cluster);
}, 120_000);

afterEach(async () => {
  for (const node of cluster.nodes) if (cluster.redisLink(node).state !== 'open') cluster.redisLink(node).heal();
  for (const socket of sockets.splice(0)) socket.disconnect();
  await people.closeAll();
  await expectIdle(cluster);
}, 30_000);

afterAll(async () => {
  await cluster?.stop();
}, 60_000);

/** A fresh login: a logout revokes its token, which no other scenario may be holding. */
async function freshLogin(agent: DemoAgent): Promise<string> {
  return agentToken(people.anyNode().url, agent);
}

/** The inspector page's socket on `node`, connected and sent its first list. */
async function inspectorPage(node: ClusterNode, token: string): Promise<Socket> {
  const socket = ioClient(`${node.url}/inspect`, { auth: { token }, reconnection: false, transports: ['websocket'], forceNew: true });
  sockets.push(socket);
  await new Promise<void>((resolve, reject) => {
    socket.once('inspect.calls', () => resolve());
    socket.once('connect_error', reject);
  });
  return socket;
}

/** A POST from the loopback address `from`, so the balancer and the nodes see a client of its own. */
function postFrom(from: string, url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: unknown }> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const sent = request(
      url,
      { method: 'POST', localAddress: from, agent: false, headers: { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(payload)), ...headers } },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: text === '' ? null : (JSON.parse(text) as unknown) }));
      },
    );
    sent.on('error', reject);
    sent.end(payload);
  });
}

/** The page-close beacon, as a browser sends it, to one node. */
async function beacon(node: ClusterNode, token: string, requestId: string): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${node.url}/api/visitor-session/cancel`, {
    method: 'POST',
    headers: { 'Content-Type': 'text/plain;charset=UTF-8' },
    body: JSON.stringify({ token, requestId }),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await response.text();
  return { status: response.status, body: text === '' ? null : (JSON.parse(text) as unknown) };
}

async function storedRequest(requestId: string): Promise<{ end_reason: string | null; ended_at: string | null } | undefined> {
  const [row] = await cluster.sql<{ end_reason: string | null; ended_at: string | null }>('SELECT end_reason, ended_at FROM requests WHERE id = $1', [requestId]);
  return row;
}

/** Cuts the node off from Redis, and waits until it says so (its /readyz), so the test acts on a node that knows. */
async function cutOff(node: ClusterNode): Promise<void> {
  cluster.redisLink(node).cut();
  await expect.poll(async () => (await cluster.readiness(node)).body, { timeout: 15_000, interval: 200 }).toEqual({ ready: false, reason: 'redis' });
}

async function heal(node: ClusterNode): Promise<void> {
  cluster.redisLink(node).heal();
  await expect.poll(async () => (await cluster.readiness(node)).status, { timeout: 15_000, interval: 200 }).toBe(200);
}

describe('a logout in a cluster', () => {
  it("cuts off the session's sockets on the other nodes too: refused everything, never rung, and not put back as available", async () => {
    const token = await freshLogin('grace');
    const tab = people.track(await TestClient.connect(n1.url, token));
    const twin = people.track(await TestClient.connect(n2.url, token));
    expect(await twin.emit('agent.presence', { status: 'available' })).toEqual({ ok: true });

    expect(await tab.emit('agent.logout', {})).toEqual({ ok: true });
    // The other node hears of it through Redis, a moment later.
    await expect
      .poll(async () => twin.emit('agent.presence', { status: 'available' }), { timeout: 5_000, interval: 100 })
      .toMatchObject({ ok: false, error: { code: 'unauthorized', message: expect.stringMatching(/logged out/) } });
    expect(await twin.emit('agent.accept', { requestId: 'req_unknown' })).toMatchObject({ ok: false, error: { code: 'unauthorized' } });
    // Cut off, not closed, as on the node that took the logout: the client decides when to go.
    expect(twin.socket.connected).toBe(true);

    // Grace is the only agent of the pool who was online: a visitor now waits, and nobody rings her socket.
    const { client: visitor } = await people.visitor(n3);
    const requestId = await requestCall(visitor);
    await visitor.next('routing.update', (u) => u.requestId === requestId && u.state === 'queued', 10_000);
    await settle();
    expect(twin.saw('agent.ring') || tab.saw('agent.ring')).toBe(false);
    expect(await visitor.emit('visitor.cancel', { requestId })).toEqual({ ok: true });

    // The token is refused at every node's door.
    for (const node of cluster.nodes) {
      const refused = await new Promise<string>((resolve, reject) => {
        const socket = ioClient(node.url, { auth: { token }, reconnection: false, transports: ['websocket'], forceNew: true });
        sockets.push(socket);
        socket.once('connect_error', (error) => resolve(error.message));
        socket.once('connect', () => reject(new Error(`${node.name} took a revoked token`)));
      });
      expect(refused).toBe('unauthorized');
    }
  });

  it("closes the session's inspector page on a node where the session has no other socket", async () => {
    const token = await freshLogin('inspector');
    const dashboard = people.track(await TestClient.connect(n1.url, token));
    const page = await inspectorPage(n3, token);
    // Another login of the same account stays: only the session that logged out loses its sockets.
    const otherPage = await inspectorPage(n3, await freshLogin('inspector'));
    const closed = new Promise<string>((resolve) => page.once('disconnect', (reason) => resolve(reason)));

    expect(await dashboard.emit('agent.logout', {})).toEqual({ ok: true });
    expect(await Promise.race([closed, sleep(5_000).then(() => 'still open after 5 s')])).toBe('io server disconnect');
    await settle();
    expect(otherPage.connected).toBe(true);
  });
});

describe('the page-close cancel in a cluster', () => {
  it("is taken at the request's node when sent to another, and answers 204 once it was", async () => {
    const { client: visitor, token } = await people.visitor(n1);
    const requestId = await requestCall(visitor);
    await visitor.next('routing.update', (u) => u.requestId === requestId && u.state === 'queued', 10_000);
    expect((await cluster.ownerOf(requestId))?.node).toBe(n1);

    expect(await beacon(n2, token, requestId)).toEqual({ status: 204, body: null });
    await expect.poll(async () => (await storedRequest(requestId))?.end_reason, { timeout: 5_000 }).toBe('cancelled');
  });

  it("answers 404 for a request no node runs and 403 for another visitor's, as one process does", async () => {
    const { client: visitor } = await people.visitor(n1);
    const requestId = await requestCall(visitor);
    await visitor.next('routing.update', (u) => u.requestId === requestId && u.state === 'queued', 10_000);
    const other = await visitorToken(n2.url, 'Otto Other');

    expect(await beacon(n2, other.token, 'req_nobody_runs_this')).toEqual({ status: 404, body: { error: { code: 'not-found', message: expect.any(String) } } });
    expect(await beacon(n2, other.token, requestId)).toEqual({ status: 403, body: { error: { code: 'forbidden', message: expect.any(String) } } });
    await settle();
    expect(await storedRequest(requestId)).toMatchObject({ ended_at: null });
    expect(await visitor.emit('visitor.cancel', { requestId })).toEqual({ ok: true });
  });

  it('answers 503 unavailable when the node it reached cannot reach the cluster, and nothing is cancelled', async () => {
    const { client: visitor, token } = await people.visitor(n1);
    const requestId = await requestCall(visitor);
    await visitor.next('routing.update', (u) => u.requestId === requestId && u.state === 'queued', 10_000);

    await cutOff(n2);
    expect(await beacon(n2, token, requestId)).toEqual({ status: 503, body: { error: { code: 'unavailable', message: expect.any(String) } } });
    await settle();
    expect(await storedRequest(requestId)).toMatchObject({ ended_at: null });
    expect((await cluster.ownerOf(requestId))?.node).toBe(n1);

    // Sent again once the node is back, it is taken.
    await heal(n2);
    expect(await beacon(n2, token, requestId)).toEqual({ status: 204, body: null });
    await expect.poll(async () => (await storedRequest(requestId))?.end_reason, { timeout: 5_000 }).toBe('cancelled');
  });
});

describe('a cluster that cannot act now', () => {
  it('refuses a socket event as unavailable, not as the store being unavailable', async () => {
    const { client: visitor } = await people.visitor(n2);
    await cutOff(n2);
    const reply = await emitWithin(visitor, 'visitor.request', { pool: 'support' }, 20_000);
    expect(reply).toEqual({ ok: false, error: { code: 'unavailable', message: expect.any(String) } });
    await heal(n2);
    // Nothing was done: once the node is back, the visitor may ask.
    const requestId = await requestCall(visitor);
    expect(await visitor.emit('visitor.cancel', { requestId })).toEqual({ ok: true });
  });
});

describe('client addresses behind haproxy', () => {
  const login = (from: string, url: string, attempt: number, headers: Record<string, string> = {}) =>
    postFrom(from, `${url}/api/agents/login`, { email: `nobody-${from}-${String(attempt)}@example.com`, password: 'wrong' }, headers);

  it('locks the address of the client that guessed, named by the balancer, and not every client behind it', async () => {
    const guesser = '127.0.0.2';
    const bystander = '127.0.0.3';
    for (let attempt = 1; attempt <= ADDRESS_FAILURES; attempt += 1) expect((await login(guesser, cluster.url, attempt)).status).toBe(401);
    expect(await login(guesser, cluster.url, 99)).toEqual({ status: 429, body: { error: { code: 'rate-limited', message: expect.any(String) } } });
    // Round robin spread the guesses over the nodes: the count is shared, and holds at each node's own door.
    for (const node of cluster.nodes) expect((await login(guesser, node.url, 100)).status).toBe(429);
    expect((await login(bystander, cluster.url, 1)).status).toBe(401);
    // What the guesser writes into X-Forwarded-For itself comes before the balancer's entry, and is not read.
    expect((await login(guesser, cluster.url, 101, { 'X-Forwarded-For': '198.51.100.20' })).status).toBe(429);
  });

  it('ignores X-Forwarded-For from a peer that is not a trusted proxy', async () => {
    const spoofer = '127.0.0.4';
    const named = '198.51.100.7';
    for (let attempt = 1; attempt <= ADDRESS_FAILURES; attempt += 1) {
      expect((await login(spoofer, n1.url, attempt, { 'X-Forwarded-For': named })).status).toBe(401);
    }
    // Counted against the spoofer's own address, whatever it named...
    expect((await login(spoofer, n2.url, 4, { 'X-Forwarded-For': '198.51.100.8' })).status).toBe(429);
    // ...and not against the address it named: the balancer naming that client finds it unlocked.
    expect((await login(BALANCER, n3.url, 1, { 'X-Forwarded-For': named })).status).toBe(401);
  });
});
