/**
 * People on a cluster: agents and visitors whose sockets open straight on a node the scenario chooses (no
 * balancer in between), so a test decides who is on which node, moves a person to another node with their
 * resume token, and reads what any node stores. Also the steps the cluster scenarios repeat.
 */
import type { ClientAck, ClientEventName, ClientPayload } from '@callchart/machines';
import { expect } from 'vitest';
import type { Cluster, ClusterNode, Nodes } from './cluster.ts';
import { accept, expectRung, requestCall } from './routing.ts';
import { TestClient, agentToken, getJson, sleep, visitorToken, type DemoAgent } from './server.ts';

export interface Visitor {
  client: TestClient;
  /** The session token: what the visitor comes back with on another socket. */
  token: string;
  visitorId: string;
  name: string;
}

export interface CallDetail {
  call: {
    id: string;
    requestId: string;
    agentId: string;
    state: string;
    endReason: string | null;
    connectedAt: number | null;
    endedAt: number | null;
    totalPauseMs: number;
  };
  events: { id: number; actor: string; type: string; fromState: string | null; toState: string | null; cause: string | null; at: number }[];
  telemetry: {
    disconnections: { leg: string; at: number; cause: string | null }[];
    reconnectionAttempts: { leg: string; at: number; durationMs: number; outcome: string }[];
    totalPauseMs: number;
  };
}

const IDLE_TIMEOUT_MS = 10_000;
const CLOSE_SETTLE_MS = 300;

/** One message a client received, with the id a machine's step gave it (none for a relay). */
export interface Heard {
  event: string;
  eid: string | undefined;
  /** What it said, without its eid. */
  payload: unknown;
  at: number;
  /** Its place among everything these people's clients received: later messages have higher numbers. */
  seq: number;
}

/**
 * A point in what the clients received, as `ClusterPeople.mark()` takes it. A count rather than a clock
 * reading: two messages in the same millisecond as the mark fall on the side of it they arrived on.
 */
export interface HeardMark {
  readonly seq: number;
}

export class ClusterPeople {
  private readonly tokens = new Map<DemoAgent, Promise<string>>();
  private readonly clients: TestClient[] = [];
  private readonly log = new WeakMap<TestClient, Heard[]>();
  private heardSoFar = 0;

  constructor(private readonly cluster: Nodes) {}

  /** The first node still running: where a login or a history read goes when it may go anywhere. */
  anyNode(): ClusterNode {
    const node = this.cluster.nodes.find((candidate) => candidate.running);
    if (!node) throw new Error('no node of the cluster is running');
    return node;
  }

  /**
   * The agent's token, logged in once per file: a login runs scrypt, and every node takes any node's
   * tokens (one secret, one store).
   */
  agentToken(agent: DemoAgent): Promise<string> {
    let token = this.tokens.get(agent);
    if (!token) {
      token = agentToken(this.anyNode().url, agent);
      this.tokens.set(agent, token);
      token.catch(() => this.tokens.delete(agent));
    }
    return token;
  }

  /** The agent connected to `node`, resuming a lost socket's session when given its resume token. */
  async agent(node: ClusterNode, agent: DemoAgent, resumeToken?: string): Promise<TestClient> {
    return this.track(await TestClient.connect(node.url, await this.agentToken(agent), resumeToken));
  }

  /** A new visitor session, its socket on `node`. */
  async visitor(node: ClusterNode, name = 'Vera Visitor'): Promise<Visitor> {
    const session = await visitorToken(node.url, name);
    const client = this.track(await TestClient.connect(node.url, session.token));
    return { client, token: session.token, visitorId: session.visitorId, name };
  }

  /**
   * The same person back on `node`, presenting the resume token of the socket it lost, as the client does
   * after its socket drops. Resolves once the session is ready; `session.resumed` waits in its events.
   */
  async resume(node: ClusterNode, token: string, lost: TestClient): Promise<TestClient> {
    if (!lost.resumeToken) throw new Error('the lost connection never received a resume token');
    return this.track(await TestClient.connect(node.url, token, lost.resumeToken));
  }

  track(client: TestClient): TestClient {
    this.clients.push(client);
    const heard: Heard[] = [];
    this.log.set(client, heard);
    // Kept apart from `events`, which `next` consumes: a scenario asks afterwards what arrived, and when.
    client.socket.onAny((event: string, received: unknown) => {
      if (typeof received === 'object' && received !== null && 'eid' in received) {
        const { eid, ...payload } = received as { eid: unknown };
        heard.push({ event, eid: String(eid), payload, at: Date.now(), seq: ++this.heardSoFar });
      } else heard.push({ event, eid: undefined, payload: received, at: Date.now(), seq: ++this.heardSoFar });
    });
    return client;
  }

  /** Every message the client received since it connected, in order. */
  heard(client: TestClient): readonly Heard[] {
    const heard = this.log.get(client);
    if (!heard) throw new Error('not a client of these people');
    return heard;
  }

  /**
   * The requests the agent's socket was rung for, one entry per ring as the dashboard shows it: a ring sent
   * again with the id it already had (a node re-sending a step), or told again without one (the rings open
   * for a socket that just connected), is the same ring if it names the same request and deadline.
   */
  rings(agent: TestClient): string[] {
    const seen = new Set<string>();
    return this.heard(agent).flatMap((heard) => {
      if (heard.event !== 'agent.ring') return [];
      const { requestId, expiresAt } = heard.payload as { requestId: string; expiresAt: number };
      const ring = `${requestId}@${String(expiresAt)}`;
      if (seen.has(ring)) return [];
      seen.add(ring);
      return [requestId];
    });
  }

  /** Everything received so far lies before this mark; whatever arrives from now on, after it. */
  mark(): HeardMark {
    return { seq: this.heardSoFar };
  }

  /**
   * The messages of these names the clients received after `since` whose ids none of them had received
   * before it: what is new, not a step re-sent by a node that took a request over (a client drops those).
   * `since` is a mark, or a clock reading (a message in its very millisecond counts as after it).
   */
  newSince(clients: readonly TestClient[], since: HeardMark | number, names: readonly string[]): Heard[] {
    const after = typeof since === 'number' ? (heard: Heard) => heard.at >= since : (heard: Heard) => heard.seq > since.seq;
    const all = clients.flatMap((client) => this.heard(client));
    const before = new Set(all.filter((heard) => !after(heard) && heard.eid !== undefined).map((heard) => heard.eid));
    return all.filter((heard) => after(heard) && names.includes(heard.event) && (heard.eid === undefined || !before.has(heard.eid))).sort((a, b) => a.seq - b.seq);
  }

  /** Every message of these names the clients received after `since`, in arrival order, copies of earlier ones included. */
  heardSince(clients: readonly TestClient[], since: HeardMark, names: readonly string[]): Heard[] {
    return clients
      .flatMap((client) => this.heard(client))
      .filter((heard) => heard.seq > since.seq && names.includes(heard.event))
      .sort((a, b) => a.seq - b.seq);
  }

  /** The call's history as the HTTP API of `node` gives it to `agent`. */
  async callDetail(node: ClusterNode, agent: DemoAgent, callId: string): Promise<CallDetail> {
    const detail = await getJson<CallDetail>(`${node.url}/api/calls/${callId}`, await this.agentToken(agent));
    if (detail.status !== 200) throw new Error(`GET /api/calls/${callId} on ${node.name} answered ${String(detail.status)}: ${JSON.stringify(detail.body)}`);
    return detail.body;
  }

  /**
   * Closes every socket the file opened so far, and gives the nodes a moment to take the agents offline,
   * so the next scenario does not find one of them still counted as free.
   */
  async closeAll(): Promise<void> {
    const open = this.clients.splice(0).filter((client) => client.socket.connected);
    for (const client of open) client.close();
    if (open.length > 0) await sleep(CLOSE_SETTLE_MS);
  }
}

/** The visitor asks, `agent` (the only one free) is rung and accepts, and both report their media connected. */
export async function connectCall(agent: TestClient, who: DemoAgent, visitor: TestClient): Promise<{ requestId: string; callId: string }> {
  const requestId = await requestCall(visitor);
  await expectRung(agent, visitor, requestId, who);
  const callId = await accept(agent, visitor, requestId);
  expect(await agent.emit('call.media', { callId, state: 'connected' })).toEqual({ ok: true });
  expect(await visitor.emit('call.media', { callId, state: 'connected' })).toEqual({ ok: true });
  return { requestId, callId };
}

/** `emit` with a longer wait for the answer, for an event whose answer may wait on a takeover or a store outage. */
export function emitWithin<E extends ClientEventName>(client: TestClient, event: E, payload: ClientPayload<E>, timeoutMs: number): Promise<ClientAck<E>> {
  return client.socket.timeout(timeoutMs).emitWithAck(event, payload) as Promise<ClientAck<E>>;
}

/** Resolves once the client's socket is gone (closed by it, by the server, or with the server's process). */
export function lost(client: TestClient): Promise<void> {
  if (!client.socket.connected) return Promise.resolve();
  return new Promise((resolve) => client.socket.once('disconnect', () => resolve()));
}

/** Every event of these names that any of the clients received and the test did not consume, for "nobody was told" checks. */
export function received(clients: readonly TestClient[], names: readonly string[]): { event: string; payload: unknown }[] {
  return clients.flatMap((client) => client.events.filter((e) => names.includes(e.event)));
}

/**
 * Waits (bounded) until the cluster holds no live request: no actor snapshot and no call left unended in the
 * shared store, so the next scenario starts from nothing. Fails naming what was left.
 */
export async function expectIdle(cluster: Pick<Cluster, 'sql'>): Promise<void> {
  const deadline = Date.now() + IDLE_TIMEOUT_MS;
  for (;;) {
    const snapshots = await cluster.sql<{ actor_id: string }>('SELECT actor_id FROM actor_snapshots ORDER BY actor_id');
    const calls = await cluster.sql<{ id: string; state: string }>("SELECT id, state FROM calls WHERE state <> 'ended' OR ended_at IS NULL ORDER BY id");
    if (snapshots.length === 0 && calls.length === 0) return;
    if (Date.now() > deadline) {
      throw new Error(`the scenario left live requests behind: snapshots ${JSON.stringify(snapshots)}, calls ${JSON.stringify(calls)}`);
    }
    await sleep(100);
  }
}
