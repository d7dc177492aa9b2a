/**
 * Support for the routing integration suites: servers shared between tests that use the same timings,
 * agent logins done once per file, clean-up that proves a test left no request or call behind, and the
 * few steps every routing scenario repeats (request, ring, accept, hang up, read the routing trail).
 */
import { expect } from 'vitest';
import {
  DEMO,
  TestClient,
  agentToken,
  stored,
  sleep,
  startTestServer,
  visitorToken,
  type DemoAgent,
  type TestServer,
} from './server.ts';

// Starting a server seeds the demo accounts and a login verifies a password, and both run scrypt, which
// costs about a second on a small machine. One shared secret lets a token from one server open a socket on
// any other, so each file logs every agent in once and starts one server per set of timings.
const AUTH_SECRET = 'routing-suites-shared-secret-not-for-production';

/** Long enough that a timer a scenario does not exercise never fires on a loaded machine. */
export const NEVER = '60000';

/** Lets in-flight events land, so that a check that something did NOT happen means something. */
export const settle = () => sleep(300);

const IDLE_TIMEOUT_MS = 5_000;

export class RoutingSuite {
  private readonly servers = new Map<string, Promise<TestServer>>();
  private readonly tokens = new Map<DemoAgent, Promise<string>>();
  private readonly clients: { client: TestClient; agent: boolean }[] = [];
  private readonly used = new Set<TestServer>();
  private fresh = 0;

  /**
   * A server with these timings, shared with earlier tests that asked for the same ones. `fresh` gives a
   * server of its own, for a test that needs agents with no call history.
   */
  async server(env: Record<string, string> = {}, options: { fresh?: boolean } = {}): Promise<TestServer> {
    const key = options.fresh ? `fresh:${++this.fresh}` : JSON.stringify(Object.entries(env).sort());
    let server = this.servers.get(key);
    if (!server) {
      server = startTestServer({ AUTH_SECRET, ...env });
      this.servers.set(key, server);
    }
    const started = await server;
    this.used.add(started);
    return started;
  }

  private token(url: string, agent: DemoAgent): Promise<string> {
    let token = this.tokens.get(agent);
    if (!token) {
      token = agentToken(url, agent);
      this.tokens.set(agent, token);
    }
    return token;
  }

  async agent(t: TestServer, agent: DemoAgent, resumeToken?: string): Promise<TestClient> {
    const client = await TestClient.connect(t.url, await this.token(t.url, agent), resumeToken);
    this.clients.push({ client, agent: true });
    return client;
  }

  async agents<A extends DemoAgent>(t: TestServer, agents: readonly A[]): Promise<Record<A, TestClient>> {
    const connected: Partial<Record<A, TestClient>> = {};
    // One at a time, so the connection order (and so the presence order) is the same on every run.
    for (const agent of agents) connected[agent] = await this.agent(t, agent);
    return connected as Record<A, TestClient>;
  }

  async visitor(t: TestServer, name = 'Vera Visitor'): Promise<TestClient> {
    return (await this.visitorSession(t, name)).client;
  }

  /** A visitor and the session token it can come back with. */
  async visitorSession(t: TestServer, name = 'Vera Visitor'): Promise<{ client: TestClient; token: string }> {
    const { token } = await visitorToken(t.url, name);
    const client = await TestClient.connect(t.url, token);
    this.clients.push({ client, agent: false });
    return { client, token };
  }

  /** The same visitor back on a new socket, presenting the resume token of the one it lost. */
  async resumeVisitor(t: TestServer, token: string, lost: TestClient): Promise<TestClient> {
    if (!lost.resumeToken) throw new Error('the lost connection never received a resume token');
    const client = await TestClient.connect(t.url, token, lost.resumeToken);
    this.clients.push({ client, agent: false });
    return client;
  }

  /**
   * Logs every connected agent out (so the next test does not inherit an `away`), closes every socket, and
   * fails the test if a request or a call it started is still alive, or still looks alive in the store, on
   * any server it used.
   */
  async cleanUp(): Promise<void> {
    const clients = this.clients.splice(0);
    await Promise.all(
      clients.filter(({ client, agent }) => agent && client.socket.connected).map(({ client }) => client.emit('agent.logout', {})),
    );
    // A logout revokes its token, so the next test logs in again.
    this.tokens.clear();
    for (const { client } of clients) client.close();
    const used = [...this.used];
    this.used.clear();
    for (const t of used) {
      const deadline = Date.now() + IDLE_TIMEOUT_MS;
      while (t.server.switchboard.stats().requests + t.server.switchboard.stats().calls > 0) {
        if (Date.now() > deadline) throw new Error(`the test left ${JSON.stringify(t.server.switchboard.stats())} behind`);
        await sleep(50);
      }
      // A snapshot left behind would be restored as a live actor on the next start; an unended call would
      // show in the history as still going.
      expect(await stored(t.server, (store) => store.snapshots.all()), 'actor snapshots left in the store').toEqual([]);
      const calls = await stored(t.server, (store) => store.calls.list({ limit: 500 }));
      expect(calls.filter((call) => call.state !== 'ended' || call.endedAt === null), 'calls never ended').toEqual([]);
    }
  }

  async closeAll(): Promise<void> {
    const servers = [...this.servers.values()];
    this.servers.clear();
    for (const server of servers) await (await server).close();
  }
}

export async function requestCall(visitor: TestClient, pool = 'support'): Promise<string> {
  const ack = await visitor.emit('visitor.request', { pool });
  if (!ack.ok) throw new Error(`request refused: ${ack.error.message}`);
  return ack.requestId;
}

/** The agent is rung for this request, and the visitor is told who is ringing. */
export async function expectRung(agent: TestClient, visitor: TestClient, requestId: string, who: DemoAgent) {
  const ring = await agent.next('agent.ring', (r) => r.requestId === requestId);
  await visitor.next('routing.update', (u) => u.requestId === requestId && u.state === 'ringing' && u.agentName === DEMO[who].name);
  return ring;
}

/** Accepts a ring; returns the call id both legs were given. */
export async function accept(agent: TestClient, visitor: TestClient, requestId: string): Promise<string> {
  expect(await agent.emit('agent.accept', { requestId })).toEqual({ ok: true });
  const agentSide = await agent.next('call.accepted');
  const visitorSide = await visitor.next('call.accepted');
  expect(visitorSide.callId).toBe(agentSide.callId);
  return agentSide.callId;
}

export async function hangUp(visitor: TestClient, agent: TestClient, callId: string): Promise<void> {
  expect(await visitor.emit('call.hangup', { callId })).toEqual({ ok: true });
  expect(await agent.next('call.ended', (e) => e.callId === callId)).toEqual({ callId, reason: 'hangup' });
  expect(await visitor.next('call.ended', (e) => e.callId === callId)).toEqual({ callId, reason: 'hangup' });
}

/**
 * The routing actor's transitions for a request as the store has them, each as
 * `state <- the event that caused it (the agent it was about, why)`.
 */
export async function routingTrail(t: TestServer, requestId: string): Promise<string[]> {
  const events = await stored(t.server, (store) => store.events.forRequest(requestId));
  return events
    .filter((e) => e.actor === 'routing')
    .map((e) => {
      const detail = e.detail ? ` (${Object.values(e.detail as Record<string, string>).join(', ')})` : '';
      return `${e.toState} <- ${e.cause}${detail}`;
    });
}

/** What the server itself logged for a request (reassignments), beside the actors' transitions. */
export async function serverEvents(t: TestServer, requestId: string) {
  const events = await stored(t.server, (store) => store.events.forRequest(requestId));
  return events.filter((e) => e.actor === 'server');
}

export async function lastAssignedAt(t: TestServer, agent: DemoAgent): Promise<number | null> {
  const record = await stored(t.server, (store) => store.agents.get(agent));
  if (!record) throw new Error(`no agent ${agent} in the store`);
  return record.lastAssignedAt;
}

/**
 * The order the pool should be rung in, worked out from the store alone: never assigned first, then the
 * oldest assignment, ties by id. Tests compare the rings they see against it.
 */
export async function ringOrder<A extends DemoAgent>(t: TestServer, agents: readonly A[]): Promise<A[]> {
  const assigned = new Map<A, number | null>();
  for (const agent of agents) assigned.set(agent, await lastAssignedAt(t, agent));
  return [...agents].sort((a, b) => {
    const at = assigned.get(a)!;
    const bt = assigned.get(b)!;
    if (at !== bt) return at === null ? -1 : bt === null ? 1 : at - bt;
    return a < b ? -1 : 1;
  });
}
