/**
 * /metrics as an operator scrapes it during a call, and /readyz beside /healthz: the figures follow what
 * happens (a call starts and ends, an attempt is reported, a ring moves on, a bad message is refused).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { closeClientsThenServer, freePort, SAMPLE_SDP, sleep, spawnServer, startTestServer, tempDatabase, TestClient, visitorAndAgents, type TestServer } from '../support/server.ts';

let t: TestServer | null = null;
const clients: TestClient[] = [];

afterEach(async () => {
  await closeClientsThenServer(clients, t);
  t = null;
});

/** One sample's value from the text format, 0 when the series is absent. */
async function scrape(url: string): Promise<(series: string) => number> {
  const response = await fetch(`${url}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toContain('text/plain');
  const text = await response.text();
  return (series) => {
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return line ? Number(line.slice(series.length + 1)) : 0;
  };
}

describe('/metrics', () => {
  it('moves with a call: calls, queue, agents by pool, sockets, attempts, reassignments and errors', async () => {
    t = await startTestServer({ RING_TIMEOUT_MS: '60000' });
    const before = await scrape(t.url);
    expect(before('callchart_calls_active')).toBe(0);
    expect(before('callchart_sockets')).toBe(0);
    expect(before('callchart_nodejs_eventloop_lag_seconds')).toBeGreaterThanOrEqual(0);

    const { agents, visitor } = await visitorAndAgents(t.url, ['ada', 'grace']);
    clients.push(visitor, ...Object.values(agents));
    const online = await scrape(t.url);
    expect(online('callchart_sockets')).toBe(3);
    expect(online('callchart_agents_online{pool="support"}')).toBe(2);

    const { requestId } = (await visitor.emit('visitor.request', { pool: 'support' })) as { requestId: string };
    const first = (await Promise.race([agents.ada.next('agent.ring').then(() => 'ada'), agents.grace.next('agent.ring').then(() => 'grace')])) as 'ada' | 'grace';
    const second = first === 'ada' ? 'grace' : 'ada';
    await agents[first].emit('agent.reject', { requestId });
    await agents[second].next('agent.ring');
    await agents[second].emit('agent.accept', { requestId });
    const { callId } = await agents[second].next('call.accepted');
    await agents[second].emit('call.telemetry', { callId, attempt: 1, at: Date.now(), durationMs: 900, outcome: 'recovered' });
    await agents[second].emit('signal.offer', { callId: 'not an id', sdp: SAMPLE_SDP });

    const during = await scrape(t.url);
    expect(during('callchart_calls_active')).toBe(1);
    expect(during('callchart_reassignments_total{trigger="rejected"}')).toBe(1);
    expect(during('callchart_ice_restarts_total{outcome="recovered"}')).toBe(1);
    expect(during('callchart_errors_total{code="invalid-payload"}')).toBe(1);

    await visitor.emit('call.hangup', { callId });
    await agents[second].next('call.ended');
    const after = await scrape(t.url);
    expect(after('callchart_calls_active')).toBe(0);
    expect(after('callchart_requests_queued')).toBe(0);
  });

  it('counts a queued visitor and refused handshakes', async () => {
    t = await startTestServer({ MAX_QUEUE_WAIT_MS: '60000' });
    const { visitor } = await visitorAndAgents(t.url, []);
    clients.push(visitor);
    await visitor.emit('visitor.request', { pool: 'support' });
    await visitor.next('routing.update', (u) => u.state === 'queued');
    const bad = new TestClient(t.url, 'not-a-token');
    clients.push(bad);
    await new Promise((resolve) => bad.socket.once('connect_error', resolve));
    const figures = await scrape(t.url);
    expect(figures('callchart_requests_queued')).toBe(1);
    expect(figures('callchart_errors_total{code="unauthorized"}')).toBe(1);
  });
});

describe('/readyz and /healthz', () => {
  it('is ready while the store answers, and not once it does not; liveness stays up', async () => {
    t = await startTestServer();
    expect(await (await fetch(`${t.url}/readyz`)).json()).toEqual({ ready: true });
    await t.server.store.close();
    const response = await fetch(`${t.url}/readyz`);
    expect(response.status).toBe(503);
    expect(await response.json()).toEqual({ ready: false, reason: 'store' });
    expect((await fetch(`${t.url}/healthz`)).status).toBe(200);
  });
});

describe('SIGTERM with DRAIN_MS', () => {
  it('keeps serving while /readyz says draining, then exits on its own', async () => {
    const port = await freePort();
    const db = tempDatabase();
    const server = await spawnServer({ PORT: String(port), DATABASE_PATH: db.path, DRAIN_MS: '1500' });
    const url = `http://127.0.0.1:${port}`;
    try {
      expect((await fetch(`${url}/readyz`)).status).toBe(200);
      const exited = new Promise<number>((resolve) => server.child.once('exit', () => resolve(Date.now())));
      const signalledAt = Date.now();
      server.child.kill('SIGTERM');
      await sleep(300);
      const draining = await fetch(`${url}/readyz`);
      expect(draining.status).toBe(503);
      expect(await draining.json()).toEqual({ ready: false, reason: 'draining' });
      // Still alive and serving those already here.
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      const exitedAt = await exited;
      expect(exitedAt - signalledAt).toBeGreaterThanOrEqual(1_400);
      expect(exitedAt - signalledAt).toBeLessThan(8_000);
    } finally {
      await server.kill();
      db.remove();
    }
  });
});
