/**
 * The live inspector on a cluster of three real node processes (one Postgres, one Redis): an inspector on
 * any node lists every node's live requests, each under the node that runs it, with each node's gauges,
 * and follows a request whichever node runs it, through a takeover after its owner is SIGKILLed.
 */
import { io, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TimelineEntry } from '../../server/src/inspection.ts';
import type { ClusterLiveList } from '../../server/src/inspectNodes.ts';
import { startCluster, type Cluster, type ClusterNode } from '../support/cluster.ts';
import { ClusterPeople, lost } from '../support/clusterClients.ts';
import { accept, expectRung, hangUp, requestCall } from '../support/routing.ts';
import { TestClient } from '../support/server.ts';

// Long enough that no timer this scenario does not exercise fires on a loaded machine.
const TIMINGS = {
  RING_TIMEOUT_MS: '20000',
  MAX_QUEUE_WAIT_MS: '30000',
  AGENT_GRACE_MS: '30000',
  RECONNECTION_TIMEOUT_MS: '30000',
  RESUME_WINDOW_MS: '30000',
  INSPECT_CLIENTS: 'on',
};
const WAIT_MS = 10_000;

let cluster: Cluster;
let people: ClusterPeople;
let n1: ClusterNode;
let n2: ClusterNode;
let n3: ClusterNode;
const inspectors: InspectClient[] = [];

beforeAll(async () => {
  cluster = await startCluster({ nodes: 3, env: TIMINGS });
  [n1, n2, n3] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
  people = new ClusterPeople(cluster);
  await Promise.all((['ada', 'inspector'] as const).map((agent) => people.agentToken(agent)));
}, 120_000);

afterAll(async () => {
  for (const inspector of inspectors.splice(0)) inspector.close();
  await people?.closeAll();
  await cluster?.stop();
}, 60_000);

/** An `/inspect` connection on one node that keeps everything it is sent. */
class InspectClient {
  readonly received: { event: string; payload: unknown }[] = [];
  private readonly waiters = new Set<() => void>();

  constructor(readonly socket: Socket) {
    socket.onAny((event: string, payload: unknown) => {
      this.received.push({ event, payload });
      for (const waiter of [...this.waiters]) waiter();
    });
  }

  static async connect(node: ClusterNode, token: string): Promise<InspectClient> {
    const client = new InspectClient(io(`${node.url}/inspect`, { auth: { token }, reconnection: false, transports: ['websocket'], forceNew: true }));
    inspectors.push(client);
    await new Promise<void>((resolve, reject) => {
      client.socket.once('connect', () => resolve());
      client.socket.once('connect_error', reject);
    });
    return client;
  }

  /** The first message of `event` from index `from` on that `match` accepts, already received or still to come. */
  next<T>(event: string, match: (payload: T) => boolean, what: string, from = 0): Promise<T> {
    const find = () => this.received.slice(from).find((m) => m.event === event && match(m.payload as T))?.payload as T | undefined;
    const found = find();
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        const lists = this.received.filter((m) => m.event === 'inspect.calls').slice(-2);
        reject(new Error(`timed out waiting for ${what}; the last lists: ${JSON.stringify(lists)}`));
      }, WAIT_MS);
      const check = () => {
        const payload = find();
        if (payload === undefined) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(payload);
      };
      this.waiters.add(check);
    });
  }

  /** The first list pushed from index `from` on that `match` accepts. */
  list(match: (list: ClusterLiveList) => boolean, what: string, from = 0): Promise<ClusterLiveList> {
    return this.next('inspect.calls', match, what, from);
  }

  emit(event: string, payload: unknown): Promise<{ ok: boolean } & Record<string, unknown>> {
    return this.socket.timeout(WAIT_MS).emitWithAck(event, payload);
  }

  close(): void {
    this.socket.disconnect();
  }
}

function refusal(node: ClusterNode, token: string): Promise<string> {
  const socket = io(`${node.url}/inspect`, { auth: { token }, reconnection: false, transports: ['websocket'], forceNew: true });
  return new Promise<string>((resolve, reject) => {
    socket.once('connect_error', (error) => resolve(error.message));
    socket.once('connect', () => reject(new Error('connected, but should have been refused')));
  }).finally(() => socket.disconnect());
}

const nodeOf = (list: ClusterLiveList, requestId: string) => list.requests.find((request) => request.requestId === requestId)?.node;
// Tolerant of a list without gauges, so a server that sends none fails by what it lacks.
const gauges = (list: ClusterLiveList, node: ClusterNode) => (list.nodes ?? []).find((gauge) => gauge.node === node.nodeId);
const nodeIds = (list: ClusterLiveList) => (list.nodes ?? []).map((gauge) => gauge.node).sort();

describe('the inspector on a cluster', () => {
  it("lists and follows, on node 3, a request node 1 runs, with every node's gauges, and finds it under its new owner after node 1 is SIGKILLed", async () => {
    const inspectorToken = await people.agentToken('inspector');
    const watcher = await InspectClient.connect(n3, inspectorToken);
    await watcher.list((list) => nodeIds(list).join() === [n1, n2, n3].map((node) => node.nodeId).sort().join(), 'every node in the gauges');
    // No node runs it: every node says so.
    expect(await watcher.emit('inspect.subscribe', { requestId: 'req_never-made' })).toMatchObject({ ok: false, error: { code: 'not-found', field: 'requestId' } });

    const ada = await people.agent(n2, 'ada');
    const vera = await people.visitor(n1);
    const requestId = await requestCall(vera.client);
    await expectRung(ada, vera.client, requestId, 'ada');
    expect((await cluster.ownerOf(requestId))?.node).toBe(n1);

    // Listed on node 3 under node 1, which counts it; node 3's own list is empty.
    const ringing = await watcher.list((list) => nodeOf(list, requestId) === n1.nodeId, 'the request under node 1');
    expect(ringing.requests).toHaveLength(1);
    expect(ringing.requests[0]).toMatchObject({ requestId, pool: 'support', visitorName: 'Vera Visitor', node: n1.nodeId });
    expect(gauges(ringing, n1)).toMatchObject({ requests: 1, calls: 0 });
    expect(gauges(ringing, n3)).toMatchObject({ requests: 0, calls: 0 });

    // Replayed from node 1's memory, then streamed from there.
    expect(await watcher.emit('inspect.subscribe', { requestId })).toEqual({ ok: true });
    const replay = await watcher.next<{ requestId: string; entries: TimelineEntry[]; actors: { actorId: string }[] }>('inspect.replay', (r) => r.requestId === requestId, 'the replay');
    expect(replay.entries.some((entry) => entry.kind === 'routing' && entry.state === 'ringing')).toBe(true);
    expect(replay.actors.map((actor) => actor.actorId)).toContain(`routing:${requestId}`);
    const afterReplay = watcher.received.length;
    const callId = await accept(ada, vera.client, requestId);
    await watcher.next<TimelineEntry>('inspect.entry', (e) => e.requestId === requestId && e.kind === 'callSession', 'a callSession entry from node 1', afterReplay);
    // The agent's browser reports through node 2; its entry joins node 1's timeline.
    expect(await ada.emit('inspect.client', { callId, actor: 'agent', entries: [{ at: Date.now(), event: { type: 'probe.fromNode2' }, state: 'inCall' }] })).toEqual({ ok: true });
    await watcher.next<TimelineEntry>('inspect.entry', (e) => e.side === 'agent' && e.event.type === 'probe.fromNode2', "the agent's entry", afterReplay);

    // Per node: node 1 runs the call, each node holds its people's sockets (and node 3 the inspector's).
    const inCall = await watcher.list((list) => gauges(list, n1)?.calls === 1, 'node 1 counting the call');
    expect(gauges(inCall, n1)).toMatchObject({ requests: 1, calls: 1 });
    expect(gauges(inCall, n2)).toMatchObject({ requests: 0, calls: 0 });
    for (const node of [n1, n2, n3]) expect(gauges(inCall, node)!.sockets).toBeGreaterThanOrEqual(1);

    const killedAt = Date.now();
    const beforeKill = watcher.received.length;
    await cluster.kill(n1, 'SIGKILL');
    await lost(vera.client);
    const veraBack = await people.resume(n3, vera.token, vera.client);
    const owner = await cluster.waitForOwner(requestId, (o) => o?.node !== undefined && o.node !== n1, WAIT_MS);

    // The same request, now under its new owner; node 1 is gone from the gauges.
    const moved = await watcher.list(
      (list) => nodeOf(list, requestId) === owner!.nodeId && !nodeIds(list).includes(n1.nodeId),
      'the request under its new owner, without node 1',
    );
    expect(moved.requests.map((request) => request.requestId)).toEqual([requestId]);
    expect(gauges(moved, owner!.node!)).toMatchObject({ requests: 1, calls: 1 });
    // Still followed: the new owner's steps reach the subscription node 3 made to node 1.
    await watcher.next<TimelineEntry>('inspect.entry', (e) => e.requestId === requestId && e.at >= killedAt, 'an entry from the new owner', beforeKill);

    // A new inspector on a node that does not run it: the replay begins with what the store kept from node 1.
    const elsewhere = owner!.node === n2 ? n3 : n2;
    const late = await InspectClient.connect(elsewhere, inspectorToken);
    const asked = (await late.emit('inspect.calls', {})) as unknown as ClusterLiveList;
    expect(asked.requests.map((request) => [request.requestId, request.node])).toEqual([[requestId, owner!.nodeId]]);
    expect(await late.emit('inspect.subscribe', { requestId })).toEqual({ ok: true });
    const resumed = await late.next<{ entries: TimelineEntry[] }>('inspect.replay', () => true, 'the replay after the takeover');
    const stored = resumed.entries.filter((entry) => entry.at < killedAt);
    expect(stored.some((entry) => entry.kind === 'routing' && entry.state === 'ringing')).toBe(true);
    expect(resumed.entries.some((entry) => entry.at >= killedAt)).toBe(true);

    const beforeEnd = watcher.received.length;
    await hangUp(veraBack, ada, callId);
    await watcher.list((list) => list.requests.length === 0, 'the request gone once it ended', beforeEnd);

    // Authorization is each node's own: once the login is revoked on node 2, node 3 refuses it too.
    const session = await TestClient.connect(n2.url, inspectorToken);
    expect(await session.emit('agent.logout', {})).toEqual({ ok: true });
    session.close();
    expect(await refusal(n3, inspectorToken)).toBe('unauthorized');
    expect(await refusal(n2, inspectorToken)).toBe('unauthorized');
  }, 90_000);
});
