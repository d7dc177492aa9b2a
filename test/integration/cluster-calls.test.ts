/**
 * The server scenarios (a call, its relay, pause and resume, reassignment, the queue) on a cluster of three
 * real node processes sharing one Postgres and one Redis, with the two people of each call on different
 * nodes: every socket opens straight on the node the scenario names, so nothing depends on a balancer's luck.
 * One cluster serves the whole file; each scenario ends every request it starts.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster, type ClusterNode } from '../support/cluster.ts';
import { ClusterPeople, connectCall, expectIdle, lost } from '../support/clusterClients.ts';
import { relay } from '../support/relay.ts';
import { accept, expectRung, hangUp, requestCall } from '../support/routing.ts';
import { SAMPLE_CANDIDATE, SAMPLE_SDP, getJson, sleep, type TestClient } from '../support/server.ts';

// Long enough that no timer a scenario does not exercise fires on a loaded machine.
const TIMINGS = {
  RING_TIMEOUT_MS: '20000',
  MAX_QUEUE_WAIT_MS: '30000',
  AGENT_GRACE_MS: '15000',
  RECONNECTION_TIMEOUT_MS: '20000',
  RESUME_WINDOW_MS: '20000',
};
const UP = { socket: 'up', media: 'connected' } as const;
const GONE = { socket: 'down', media: 'unreported' } as const;
/** Lets in-flight messages land, so that a check that something did NOT happen means something. */
const settle = () => sleep(500);

let cluster: Cluster;
let people: ClusterPeople;
let n1: ClusterNode;
let n2: ClusterNode;
let n3: ClusterNode;

beforeAll(async () => {
  cluster = await startCluster({ nodes: 3, env: TIMINGS });
  [n1, n2, n3] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
  people = new ClusterPeople(cluster);
  await Promise.all((['ada', 'grace', 'alan'] as const).map((agent) => people.agentToken(agent)));
}, 120_000);

// Longer than expectIdle's own bound, so a scenario that left something behind fails saying what.
afterEach(async () => {
  await people.closeAll();
  await expectIdle(cluster);
}, 30_000);

// Room for a node that hangs on its way out to be killed (cluster.ts waits 20 s for it).
afterAll(async () => {
  await cluster?.stop();
}, 60_000);

/** The routing actor's states for a request, oldest first, as the shared store has them. */
async function routingStates(requestId: string): Promise<string[]> {
  const rows = await cluster.sql<{ to_state: string }>("SELECT to_state FROM call_events WHERE request_id = $1 AND actor = 'routing' ORDER BY id", [requestId]);
  return rows.map((row) => row.to_state);
}

/** Whether the visitor holds an unconsumed routing update in this state. */
const holdsUpdate = (visitor: TestClient, state: string) =>
  visitor.events.some((e) => e.event === 'routing.update' && (e.payload as { state: string }).state === state);

describe('a call whose two people are on different nodes', () => {
  it('rings the agent on node 2 for the visitor on node 1, relays signaling both ways, hangs up, and node 3 serves the history', async () => {
    const ada = await people.agent(n2, 'ada');
    const { client: visitor } = await people.visitor(n1);

    const requestId = await requestCall(visitor);
    await visitor.next('routing.update', (u) => u.requestId === requestId && u.state === 'searching');
    expect(await ada.next('agent.ring')).toMatchObject({ requestId, visitorName: 'Vera Visitor' });
    expect(await visitor.next('routing.update', (u) => u.state === 'ringing')).toEqual({ requestId, state: 'ringing', agentName: 'Ada Lovelace' });
    // The visitor's node took the request: it holds the lease.
    expect((await cluster.ownerOf(requestId))?.node).toBe(n1);

    expect(await ada.emit('agent.accept', { requestId })).toEqual({ ok: true });
    const agentSide = await ada.next('call.accepted');
    const visitorSide = await visitor.next('call.accepted');
    expect(agentSide).toMatchObject({ role: 'offerer', peerName: 'Vera Visitor' });
    expect(visitorSide).toMatchObject({ role: 'answerer', peerName: 'Ada Lovelace', callId: agentSide.callId });
    const callId = agentSide.callId;

    expect(await relay(ada, visitor, 'signal.offer', { callId, sdp: SAMPLE_SDP })).toEqual({ ok: true });
    expect(await relay(visitor, ada, 'signal.answer', { callId, sdp: SAMPLE_SDP })).toEqual({ ok: true });
    expect(await relay(visitor, ada, 'signal.candidate', { callId, candidate: SAMPLE_CANDIDATE })).toEqual({ ok: true });
    expect(await relay(ada, visitor, 'signal.candidate', { callId, candidate: SAMPLE_CANDIDATE })).toEqual({ ok: true });
    expect(await relay(ada, visitor, 'signal.iceRestart', { callId, sdp: SAMPLE_SDP })).toEqual({ ok: true });
    expect(await relay(visitor, ada, 'signal.restartRequest', { callId })).toEqual({ ok: true });
    await settle();
    // The sender never receives its own relay, and nobody receives one twice.
    expect(ada.saw('signal.offer') || ada.saw('signal.iceRestart') || visitor.saw('signal.answer') || visitor.saw('signal.candidate')).toBe(false);

    expect(await ada.emit('call.media', { callId, state: 'connected' })).toEqual({ ok: true });
    expect(await visitor.emit('call.media', { callId, state: 'connected' })).toEqual({ ok: true });
    expect(await visitor.emit('call.hangup', { callId })).toEqual({ ok: true });
    expect(await ada.next('call.ended')).toEqual({ callId, reason: 'hangup' });
    expect(await visitor.next('call.ended')).toEqual({ callId, reason: 'hangup' });

    const detail = await people.callDetail(n3, 'ada', callId);
    expect(detail.call).toMatchObject({ id: callId, requestId, agentId: 'ada', state: 'ended', endReason: 'hangup' });
    expect(detail.call.connectedAt).toEqual(expect.any(Number));
    expect(detail.call.endedAt).toBeGreaterThanOrEqual(detail.call.connectedAt!);
    expect(await routingStates(requestId)).toEqual(['searching', 'ringing', 'connected.agentPresent', 'done']);
    const history = await getJson<{ calls: { id: string }[] }>(`${n3.url}/api/calls`, await people.agentToken('ada'));
    expect(history.body.calls.map((call) => call.id)).toContain(callId);
    // Over: the lease is given up.
    await cluster.waitForOwner(requestId, (owner) => owner === null);
  });
});

describe('pause and resume across nodes', () => {
  it('pauses when the visitor on node 1 drops, resumes when it comes back on node 3, and again for the agent moving from node 2 to node 1', async () => {
    const ada = await people.agent(n2, 'ada');
    const { client: visitor, token } = await people.visitor(n1);
    const { requestId, callId } = await connectCall(ada, 'ada', visitor);

    visitor.close();
    expect(await ada.next('call.paused')).toEqual({ callId, legs: { agent: UP, visitor: GONE } });
    const visitorBack = await people.resume(n3, token, visitor);
    expect(await visitorBack.next('session.resumed')).toEqual({
      call: { callId, role: 'answerer', peerName: 'Ada Lovelace', state: 'paused' },
      request: null,
    });
    expect(await visitorBack.emit('call.media', { callId, state: 'connected' })).toEqual({ ok: true });
    expect(await ada.next('call.resumed')).toEqual({ callId });
    expect(await visitorBack.next('call.resumed')).toEqual({ callId });
    // The new socket on node 3 is the visitor's leg: relays reach it and come from it.
    expect(await relay(ada, visitorBack, 'signal.iceRestart', { callId, sdp: SAMPLE_SDP })).toEqual({ ok: true });
    expect(await relay(visitorBack, ada, 'signal.answer', { callId, sdp: SAMPLE_SDP })).toEqual({ ok: true });

    ada.close();
    await lost(ada);
    // On its return the visitor was told how the pause stood (its own media not reported yet): not this one.
    expect(await visitorBack.next('call.paused', (p) => p.legs.agent.socket === 'down')).toEqual({ callId, legs: { agent: GONE, visitor: UP } });
    const adaBack = await people.agent(n1, 'ada', ada.resumeToken!);
    expect(await adaBack.next('session.resumed')).toEqual({
      call: { callId, role: 'offerer', peerName: 'Vera Visitor', state: 'paused' },
      request: null,
    });
    expect(await adaBack.emit('call.media', { callId, state: 'connected' })).toEqual({ ok: true });
    expect(await visitorBack.next('call.resumed')).toEqual({ callId });
    expect(await adaBack.next('call.resumed')).toEqual({ callId });
    expect(await relay(adaBack, visitorBack, 'signal.offer', { callId, sdp: SAMPLE_SDP })).toEqual({ ok: true });
    await settle();
    // The old sockets are no legs any more; the agent was never handed to anyone else.
    expect(holdsUpdate(visitorBack, 'reassigning')).toBe(false);
    expect(visitorBack.saw('call.ended') || adaBack.saw('call.ended')).toBe(false);

    await hangUp(visitorBack, adaBack, callId);
    const detail = await people.callDetail(n2, 'ada', callId);
    expect(detail.call).toMatchObject({ state: 'ended', endReason: 'hangup' });
    expect(detail.telemetry.disconnections).toEqual([
      { leg: 'visitor', at: expect.any(Number), cause: 'socket' },
      { leg: 'agent', at: expect.any(Number), cause: 'socket' },
    ]);
    expect(detail.telemetry.totalPauseMs).toBeGreaterThan(0);
    expect(await routingStates(requestId)).toEqual(['searching', 'ringing', 'connected.agentPresent', 'connected.agentAway', 'connected.agentPresent', 'done']);
  });
});

describe('reassignment across nodes', () => {
  it('hands the visitor on node 1 to a second agent on node 3 when the agent on node 2 goes away mid-call', async () => {
    const ada = await people.agent(n2, 'ada');
    const { client: visitor } = await people.visitor(n1);
    const { requestId, callId: firstCall } = await connectCall(ada, 'ada', visitor);
    const grace = await people.agent(n3, 'grace');

    expect(await ada.emit('agent.presence', { status: 'away' })).toEqual({ ok: true });
    expect(await ada.next('call.ended')).toEqual({ callId: firstCall, reason: 'reassigned' });
    expect(await visitor.next('routing.update', (u) => u.requestId === requestId && u.state === 'reassigning')).toEqual({ requestId, state: 'reassigning' });
    await expectRung(grace, visitor, requestId, 'grace');
    const secondCall = await accept(grace, visitor, requestId);
    expect(secondCall).not.toBe(firstCall);
    // The visitor moved on without its call ending; the agent who left cannot signal into the old call.
    expect(visitor.saw('call.ended') || visitor.saw('call.paused')).toBe(false);
    expect(await ada.emit('signal.offer', { callId: firstCall, sdp: SAMPLE_SDP })).toMatchObject({ ok: false, error: { code: 'not-found' } });
    expect(await relay(grace, visitor, 'signal.offer', { callId: secondCall, sdp: SAMPLE_SDP })).toEqual({ ok: true });
    expect(await relay(visitor, grace, 'signal.answer', { callId: secondCall, sdp: SAMPLE_SDP })).toEqual({ ok: true });
    await settle();
    expect(people.rings(ada), 'ada, away, rung again').toEqual([requestId]);
    expect(ada.saw('signal.answer')).toBe(false);

    const [first] = await cluster.sql<{ state: string; end_reason: string; agent_id: string }>('SELECT state, end_reason, agent_id FROM calls WHERE id = $1', [firstCall]);
    expect(first).toEqual({ state: 'ended', end_reason: 'reassigned', agent_id: 'ada' });
    await hangUp(visitor, grace, secondCall);
    expect(await routingStates(requestId)).toEqual([
      'searching',
      'ringing',
      'connected.agentPresent',
      'reassigning',
      'searching',
      'ringing',
      'connected.agentPresent',
      'done',
    ]);
    // Ada's chosen status outlives her sockets: back to available, so the next scenario finds her free.
    expect(await ada.emit('agent.presence', { status: 'available' })).toEqual({ ok: true });
  });
});

describe('the queue across nodes', () => {
  // Which of two visitors queued on different nodes is rung first when an agent frees up is not ordered
  // across nodes (docs/operations.md, "What is and is not guaranteed"): each node offers the agent to its
  // own queue, and the atomic claim lets exactly one of them ring. What holds is asserted: the places,
  // one ring at a time, and the other visitor served next.
  it('numbers visitors on two nodes in the order they asked, rings one of them once when an agent comes online on a third, and the other after that call', async () => {
    const { client: vera } = await people.visitor(n1, 'Vera Visitor');
    const { client: walt } = await people.visitor(n2, 'Walt Visitor');
    const veraRequest = await requestCall(vera);
    await vera.next('routing.update', (u) => u.requestId === veraRequest && u.state === 'queued' && u.position === 1);
    const waltRequest = await requestCall(walt);
    await walt.next('routing.update', (u) => u.requestId === waltRequest && u.state === 'queued' && u.position === 2);

    const alan = await people.agent(n3, 'alan');
    const { requestId: rungFirst } = await alan.next('agent.ring');
    const [first, second, firstRequest, secondRequest] = rungFirst === veraRequest ? [vera, walt, veraRequest, waltRequest] : [walt, vera, waltRequest, veraRequest];
    await first.next('routing.update', (u) => u.requestId === firstRequest && u.state === 'ringing' && u.agentName === 'Alan Turing');
    await second.next('routing.update', (u) => u.requestId === secondRequest && u.state === 'queued' && u.position === 1);
    await settle();
    // Only one of them is rung, once.
    expect(people.rings(alan)).toEqual([firstRequest]);
    expect(holdsUpdate(second, 'ringing')).toBe(false);

    const call = await accept(alan, first, firstRequest);
    expect(await relay(alan, first, 'signal.offer', { callId: call, sdp: SAMPLE_SDP })).toEqual({ ok: true });
    await hangUp(first, alan, call);
    // Free again, alan is put through to the one still in line, whichever node it is on.
    await expectRung(alan, second, secondRequest, 'alan');
    expect(await second.emit('visitor.cancel', { requestId: secondRequest })).toEqual({ ok: true });
    expect(await second.next('routing.ended')).toEqual({ requestId: secondRequest, reason: 'cancelled' });
    expect(await alan.next('agent.ringCancelled')).toEqual({ requestId: secondRequest });
  });
});

describe('one free agent and two visitors on two nodes asking at once', () => {
  it('rings the agent for one of them only, and for the other once the first call is over, whichever nodes they are on', async () => {
    const rounds: [agentOn: ClusterNode, visitorsOn: [ClusterNode, ClusterNode]][] = [
      [n3, [n1, n2]],
      [n1, [n2, n3]],
      [n2, [n3, n1]],
    ];
    for (const [agentOn, [firstOn, secondOn]] of rounds) {
      const grace = await people.agent(agentOn, 'grace');
      const visitors = [(await people.visitor(firstOn, 'Vera Visitor')).client, (await people.visitor(secondOn, 'Walt Visitor')).client];
      const requests = await Promise.all(visitors.map((visitor) => requestCall(visitor)));

      const ring = await grace.next('agent.ring');
      const rungIndex = requests.indexOf(ring.requestId);
      expect(rungIndex).toBeGreaterThanOrEqual(0);
      const [rung, waiting] = rungIndex === 0 ? [visitors[0]!, visitors[1]!] : [visitors[1]!, visitors[0]!];
      const waitingRequest = requests[1 - rungIndex]!;
      await rung.next('routing.update', (u) => u.requestId === ring.requestId && u.state === 'ringing');
      await waiting.next('routing.update', (u) => u.requestId === waitingRequest && u.state === 'queued' && u.position === 1);
      await settle();
      expect(people.rings(grace), `rings with ${agentOn.name} serving ${firstOn.name} and ${secondOn.name}`).toEqual([ring.requestId]);
      expect(holdsUpdate(waiting, 'ringing')).toBe(false);

      await hangUp(rung, grace, await accept(grace, rung, ring.requestId));
      await expectRung(grace, waiting, waitingRequest, 'grace');
      await hangUp(waiting, grace, await accept(grace, waiting, waitingRequest));
      await people.closeAll();
    }
  });
});
