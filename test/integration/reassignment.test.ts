/**
 * Every trigger that moves a visitor's request to another agent, before and during a call, through a real
 * server and real sockets: who is rung next (least recently assigned first, never the same agent twice),
 * what the previous agent and the visitor are told, the grace a dropped agent gets mid-call, the bound on
 * the cascade, and the trail each request leaves in the store.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { sleep, stored, type TestClient } from '../support/server.ts';
import {
  NEVER,
  RoutingSuite,
  accept,
  expectRung,
  hangUp,
  lastAssignedAt,
  requestCall,
  ringOrder,
  routingTrail,
  serverEvents,
  settle,
} from '../support/routing.ts';

const suite = new RoutingSuite();
afterEach(() => suite.cleanUp());
afterAll(() => suite.closeAll());

const SUPPORT = ['ada', 'grace', 'alan'] as const;
type SupportAgent = (typeof SUPPORT)[number];

// Tests with the same timings share a server; each timing a test exercises is set short in its own group.
const PRE_CALL = { RING_TIMEOUT_MS: NEVER, MAX_QUEUE_WAIT_MS: '1500' };
// A grace long enough for an agent to reconnect on a loaded machine; the call's own timeout is longer still,
// as in production, so the grace is what decides.
const MID_CALL_GRACE_MS = 15_000;
const MID_CALL = { AGENT_GRACE_MS: String(MID_CALL_GRACE_MS), RECONNECTION_TIMEOUT_MS: '30000', RESUME_WINDOW_MS: '30000', RING_TIMEOUT_MS: NEVER };
// Short timers for the scenarios that wait them out. Both run from the same socket drop, so the grace always
// fires first there; with both sockets up only the call's own timeout applies.
const SHORT_GRACE_MS = 800;
const SHORT_RECONNECTION_MS = 1_600;
const SHORT_MID_CALL = {
  AGENT_GRACE_MS: String(SHORT_GRACE_MS),
  RECONNECTION_TIMEOUT_MS: String(SHORT_RECONNECTION_MS),
  RESUME_WINDOW_MS: '30000',
  RING_TIMEOUT_MS: NEVER,
};

/** A visitor and the three support agents, connected; and the order the agents should be rung in. */
async function supportDesk(env: Record<string, string>, options: { fresh?: boolean } = {}) {
  const t = await suite.server(env, options);
  const agents = await suite.agents(t, SUPPORT);
  const visitor = await suite.visitor(t);
  const order = (await (await ringOrder(t, SUPPORT))) as [SupportAgent, SupportAgent, SupportAgent];
  return { t, agents, visitor, order };
}

/** The support desk with the visitor's request accepted by the first agent in ring order: a call under way. */
async function callWithFirstAgent(env: Record<string, string>) {
  const desk = await supportDesk(env);
  const [first, second, third] = desk.order;
  const requestId = await requestCall(desk.visitor);
  await expectRung(desk.agents[first], desk.visitor, requestId, first);
  const callId = await accept(desk.agents[first], desk.visitor, requestId);
  return { ...desk, first, second, third, requestId, callId };
}

/** True when the visitor holds a routing update in this state that the test has not consumed. */
const sawUpdate = (visitor: TestClient, state: 'ringing' | 'reassigning' | 'queued') =>
  visitor.events.some((e) => e.event === 'routing.update' && (e.payload as { state: string }).state === state);

describe('before the call: every trigger rings the next eligible agent', () => {
  it('on reject, rings the least recently assigned agent next, and an agent who just took a call last', async () => {
    const { t, agents, visitor } = await supportDesk(PRE_CALL, { fresh: true });
    const { ada, grace, alan } = agents;

    // Nobody has taken a call yet, so the tie breaks on the id: ada, then alan.
    const first = await requestCall(visitor);
    await expectRung(ada, visitor, first, 'ada');
    await hangUp(visitor, ada, await accept(ada, visitor, first));
    expect(await (await lastAssignedAt(t, 'ada'))).toEqual(expect.any(Number));

    const second = await requestCall(visitor);
    await expectRung(alan, visitor, second, 'alan');
    await hangUp(visitor, alan, await accept(alan, visitor, second));
    expect((await (await lastAssignedAt(t, 'alan')))!).toBeGreaterThan((await (await lastAssignedAt(t, 'ada')))!);
    expect(await (await lastAssignedAt(t, 'grace'))).toBeNull();

    // Never assigned first, then the oldest assignment, and the agent who just took a call last.
    const third = await requestCall(visitor);
    await expectRung(grace, visitor, third, 'grace');
    expect(await grace.emit('agent.reject', { requestId: third })).toEqual({ ok: true });
    expect(await grace.next('agent.ringCancelled')).toEqual({ requestId: third });
    await expectRung(ada, visitor, third, 'ada');
    expect(await ada.emit('agent.reject', { requestId: third })).toEqual({ ok: true });
    expect(await ada.next('agent.ringCancelled')).toEqual({ requestId: third });
    await expectRung(alan, visitor, third, 'alan');
    const thirdCall = await accept(alan, visitor, third);
    expect(await stored(t.server, (store) => store.calls.get(thirdCall))).toMatchObject({ agentId: 'alan', requestId: third });

    expect(await (await routingTrail(t, third))).toEqual([
      'searching <- xstate.init',
      'ringing <- xstate.init',
      'searching <- agent.rejected (grace)',
      'ringing <- agent.rejected (grace)',
      'searching <- agent.rejected (ada)',
      'ringing <- agent.rejected (ada)',
      'connected.agentPresent <- agent.accepted (alan)',
    ]);
    await hangUp(visitor, alan, thirdCall);
  });

  it('on ring-no-answer, cancels the ring and rings the next agent once RING_TIMEOUT_MS has passed', async () => {
    const ringTimeout = 800;
    const { t, agents, visitor, order } = await supportDesk({ RING_TIMEOUT_MS: String(ringTimeout), MAX_QUEUE_WAIT_MS: NEVER });
    const [first, second, third] = order;

    // Taken before the request and after the ring, so the server's own clock reading lies between them.
    const askedAt = Date.now();
    const requestId = await requestCall(visitor);
    const ring = await expectRung(agents[first], visitor, requestId, first);
    expect(ring.expiresAt).toBeGreaterThanOrEqual(askedAt + ringTimeout);
    expect(ring.expiresAt).toBeLessThanOrEqual(Date.now() + ringTimeout);

    expect(await agents[first].next('agent.ringCancelled')).toEqual({ requestId });
    expect(Date.now() - askedAt).toBeGreaterThanOrEqual(ringTimeout - 20);
    await expectRung(agents[second], visitor, requestId, second);
    // A ring that timed out cannot be answered late.
    expect(await agents[first].emit('agent.accept', { requestId })).toMatchObject({ ok: false, error: { code: 'forbidden' } });
    expect(await agents[second].next('agent.ringCancelled')).toEqual({ requestId });
    await expectRung(agents[third], visitor, requestId, third);

    expect(await (await routingTrail(t, requestId))).toEqual([
      'searching <- xstate.init',
      'ringing <- xstate.init',
      expect.stringMatching(/^searching <- xstate\.after\.ringTimeout/),
      expect.stringMatching(/^ringing <- xstate\.after\.ringTimeout/),
      expect.stringMatching(/^searching <- xstate\.after\.ringTimeout/),
      expect.stringMatching(/^ringing <- xstate\.after\.ringTimeout/),
    ]);
    expect(await visitor.emit('visitor.cancel', { requestId })).toEqual({ ok: true });
    expect(await agents[third].next('agent.ringCancelled')).toEqual({ requestId });
  });

  it("keeps each ring's announced expiresAt when the timer before it fired late", async () => {
    const ringTimeout = 800;
    const lateBy = 600;
    const { agents, visitor, order } = await supportDesk({ RING_TIMEOUT_MS: String(ringTimeout), MAX_QUEUE_WAIT_MS: NEVER });
    const [first, second] = order;
    const requestId = await requestCall(visitor);
    const firstRing = await expectRung(agents[first], visitor, requestId, first);
    // The server runs in this process: holding the thread past the deadline makes its ring timer fire late.
    const resumeAt = firstRing.expiresAt + lateBy;
    while (Date.now() < resumeAt) {
      /* busy: a real stall, as a loaded event loop has */
    }
    const secondRing = await expectRung(agents[second], visitor, requestId, second);
    // Counted from the first ring's deadline: the stall was the first ring's lateness, not the second's time.
    expect(secondRing.expiresAt).toBe(firstRing.expiresAt + ringTimeout);
    expect(await agents[second].next('agent.ringCancelled')).toEqual({ requestId });
    const cancelledAt = Date.now();
    // The ring ends when the agent was told, not a whole lateness after it.
    expect(cancelledAt).toBeGreaterThanOrEqual(secondRing.expiresAt - 20);
    expect(cancelledAt).toBeLessThan(secondRing.expiresAt + lateBy - 100);
    expect(await visitor.emit('visitor.cancel', { requestId })).toEqual({ ok: true });
  });

  it("when the rung agent's socket drops, rings the next agent at once", async () => {
    const { t, agents, visitor, order } = await supportDesk(PRE_CALL);
    const [first, second, third] = order;

    const requestId = await requestCall(visitor);
    await expectRung(agents[first], visitor, requestId, first);
    agents[first].close();
    await expectRung(agents[second], visitor, requestId, second);
    await settle();
    expect(agents[third].saw('agent.ring')).toBe(false);
    expect((await (await routingTrail(t, requestId))).slice(2)).toEqual([`searching <- agent.lost (${first}, socket)`, `ringing <- agent.lost (${first}, socket)`]);
    expect(await visitor.emit('visitor.cancel', { requestId })).toEqual({ ok: true });
  });

  for (const how of ['away', 'logout'] as const) {
    it(`when the rung agent ${how === 'away' ? 'goes away' : 'logs out'}, cancels that ring and rings the next agent`, async () => {
      const { t, agents, visitor, order } = await supportDesk(PRE_CALL);
      const [first, second, third] = order;

      const requestId = await requestCall(visitor);
      await expectRung(agents[first], visitor, requestId, first);
      const ack = how === 'away' ? await agents[first].emit('agent.presence', { status: 'away' }) : await agents[first].emit('agent.logout', {});
      expect(ack).toEqual({ ok: true });
      expect(await agents[first].next('agent.ringCancelled')).toEqual({ requestId });
      await expectRung(agents[second], visitor, requestId, second);
      await settle();
      expect(agents[third].saw('agent.ring')).toBe(false);
      expect((await (await routingTrail(t, requestId))).slice(2)).toEqual([`searching <- agent.lost (${first}, ${how})`, `ringing <- agent.lost (${first}, ${how})`]);
      expect(await visitor.emit('visitor.cancel', { requestId })).toEqual({ ok: true });
      expect(await agents[second].next('agent.ringCancelled')).toEqual({ requestId });
    });
  }

  it('does not lose an agent who still has another socket open when one of them drops', async () => {
    const { t, agents, visitor, order } = await supportDesk(PRE_CALL);
    const [first, second] = order;
    const secondTab = await suite.agent(t, first);

    const requestId = await requestCall(visitor);
    await expectRung(agents[first], visitor, requestId, first);
    expect(await secondTab.next('agent.ring')).toMatchObject({ requestId });
    agents[first].close();
    await settle();
    expect(agents[second].saw('agent.ring')).toBe(false);
    expect(sawUpdate(visitor, 'ringing')).toBe(false);

    const callId = await accept(secondTab, visitor, requestId);
    expect(await stored(t.server, (store) => store.calls.get(callId))).toMatchObject({ agentId: first });
    await hangUp(visitor, secondTab, callId);
  });

  it('rings two visitors who ask at the same time to two different agents', async () => {
    const { t, agents, visitor, order } = await supportDesk(PRE_CALL);
    const [first, second, third] = order;
    const other = await suite.visitor(t, 'Walt Visitor');

    const [one, two] = await Promise.all([requestCall(visitor), requestCall(other)]);
    const rings = await Promise.all([agents[first].next('agent.ring'), agents[second].next('agent.ring')]);
    expect(rings.map((ring) => ring.requestId).sort()).toEqual([one, two].sort());
    await settle();
    // An agent being rung is busy: nobody is rung twice, and the third agent is not needed.
    expect(agents[first].saw('agent.ring') || agents[second].saw('agent.ring') || agents[third].saw('agent.ring')).toBe(false);

    for (const [index, ring] of rings.entries()) {
      const agent = agents[index === 0 ? first : second];
      const caller = ring.requestId === one ? visitor : other;
      await hangUp(caller, agent, await accept(agent, caller, ring.requestId));
    }
  });

  it('never rings an agent twice for the same request: turned down by all three, the visitor waits in line, then no-agents', async () => {
    const wait = Number(PRE_CALL.MAX_QUEUE_WAIT_MS);
    const { t, agents, visitor, order } = await supportDesk(PRE_CALL);

    const requestId = await requestCall(visitor);
    let lastRejectAt = 0;
    for (const who of order) {
      await expectRung(agents[who], visitor, requestId, who);
      lastRejectAt = Date.now();
      expect(await agents[who].emit('agent.reject', { requestId })).toEqual({ ok: true });
      await agents[who].next('agent.ringCancelled');
    }
    await visitor.next('routing.update', (u) => u.requestId === requestId && u.state === 'queued' && u.position === 1);

    // Presence changes reach the waiting request, yet an agent who was tried is never eligible again.
    expect(await agents.ada.emit('agent.presence', { status: 'away' })).toEqual({ ok: true });
    expect(await agents.ada.emit('agent.presence', { status: 'available' })).toEqual({ ok: true });
    agents.grace.close();
    const graceAgain = await suite.agent(t, 'grace');

    expect(await visitor.next('routing.ended', (e) => e.requestId === requestId)).toEqual({ requestId, reason: 'no-agents' });
    expect(Date.now() - lastRejectAt).toBeGreaterThanOrEqual(wait - 20);
    for (const client of [agents.ada, agents.alan, agents.grace, graceAgain]) expect(client.saw('agent.ring')).toBe(false);
    expect(sawUpdate(visitor, 'ringing')).toBe(false);
    expect(await stored(t.server, (store) => store.requests.get(requestId))).toMatchObject({ endReason: 'no-agents' });
    expect((await (await routingTrail(t, requestId))).slice(-2)).toEqual([`queued <- agent.rejected (${order[2]})`, expect.stringMatching(/^noAgents <- xstate\.after\.maxQueueWait/)]);
  });
});

describe('the reassignment bound', () => {
  it('with MAX_REASSIGNMENTS=1, ends the request as reassign-limit instead of ringing a third agent', async () => {
    const { t, agents, visitor, order } = await supportDesk({ RING_TIMEOUT_MS: NEVER, MAX_REASSIGNMENTS: '1' });
    const [first, second, third] = order;

    const requestId = await requestCall(visitor);
    await expectRung(agents[first], visitor, requestId, first);
    await agents[first].emit('agent.reject', { requestId });
    await expectRung(agents[second], visitor, requestId, second);
    await agents[second].emit('agent.reject', { requestId });
    expect(await visitor.next('routing.ended')).toEqual({ requestId, reason: 'reassign-limit' });
    await settle();
    expect(agents[third].saw('agent.ring')).toBe(false);
    expect(sawUpdate(visitor, 'ringing')).toBe(false);
    expect(await stored(t.server, (store) => store.requests.get(requestId))).toMatchObject({ state: 'exhausted', endReason: 'reassign-limit' });
    expect((await (await routingTrail(t, requestId))).slice(-2)).toEqual([`searching <- agent.rejected (${second})`, `exhausted <- agent.rejected (${second})`]);
    expect(await stored(t.server, (store) => store.snapshots.get(`routing:${requestId}`))).toBeUndefined();
  });

  it('counts mid-call moves too: the second agent leaving the call ends the request', async () => {
    const { t, agents, visitor, first, second, third, requestId } = await callWithFirstAgent({ RING_TIMEOUT_MS: NEVER, MAX_REASSIGNMENTS: '1' });
    await agents[first].emit('agent.presence', { status: 'away' });
    await visitor.next('routing.update', (u) => u.state === 'reassigning');
    await expectRung(agents[second], visitor, requestId, second);
    const secondCall = await accept(agents[second], visitor, requestId);
    await agents[second].emit('agent.logout', {});
    expect(await agents[second].next('call.ended')).toEqual({ callId: secondCall, reason: 'reassigned' });
    await visitor.next('routing.update', (u) => u.state === 'reassigning');
    expect(await visitor.next('routing.ended')).toEqual({ requestId, reason: 'reassign-limit' });
    await settle();
    expect(agents[third].saw('agent.ring')).toBe(false);
    expect(visitor.saw('call.ended')).toBe(false);
    expect(await stored(t.server, (store) => store.calls.get(secondCall))).toMatchObject({ state: 'ended', endReason: 'reassigned' });
    expect((await (await routingTrail(t, requestId))).slice(-2)).toEqual([`searching <- agent.lost (${second}, logout)`, `exhausted <- agent.lost (${second}, logout)`]);
  });
});

describe('during the call', () => {
  it('an agent whose socket dropped and who comes back within the grace resumes the same call', async () => {
    const { t, agents, visitor, first, second, third, requestId, callId } = await callWithFirstAgent(MID_CALL);

    const resumeToken = agents[first].resumeToken!;
    agents[first].close();
    expect(await visitor.next('call.paused')).toEqual({
      callId,
      legs: { agent: { socket: 'down', media: 'unreported' }, visitor: { socket: 'up', media: 'connected' } },
    });

    const back = await suite.agent(t, first, resumeToken);
    // Told while the call is still paused for it; the pause ends once it reports its media over the new socket.
    expect(await back.next('session.resumed')).toMatchObject({ call: { callId, role: 'offerer', peerName: 'Vera Visitor', state: 'paused' } });
    expect(await back.emit('call.media', { callId, state: 'connected' })).toEqual({ ok: true });
    expect(await visitor.next('call.resumed')).toEqual({ callId });
    expect(await back.next('call.resumed')).toEqual({ callId });

    // The call goes on over the new socket.
    expect(await back.emit('signal.iceRestart', { callId, sdp: 'v=0\r\n' })).toEqual({ ok: true });
    expect(await visitor.next('signal.iceRestart')).toEqual({ callId, sdp: 'v=0\r\n' });
    await settle();
    expect(visitor.saw('call.ended')).toBe(false);
    expect(sawUpdate(visitor, 'reassigning') || sawUpdate(visitor, 'ringing')).toBe(false);
    expect(agents[second].saw('agent.ring') || agents[third].saw('agent.ring')).toBe(false);
    expect((await (await routingTrail(t, requestId))).slice(-2)).toEqual([`connected.agentAway <- agent.lost (${first}, socket)`, `connected.agentPresent <- agent.returned (${first})`]);
    expect(await stored(t.server, (store) => store.calls.get(callId))).toMatchObject({ state: 'active', agentId: first });
    expect(await (await serverEvents(t, requestId))).toEqual([]);

    await hangUp(visitor, back, callId);
    expect((await (await routingTrail(t, requestId))).at(-1)).toBe('done <- xstate.done.actor.call');
  });

  it("rings nobody for a visitor whose socket is gone too when the agent's grace runs out, and the next agent once the visitor is back", async () => {
    const t = await suite.server(SHORT_MID_CALL);
    const agents = await suite.agents(t, SUPPORT);
    const [first, second, third] = (await (await ringOrder(t, SUPPORT))) as [SupportAgent, SupportAgent, SupportAgent];
    const { client: visitor, token } = await suite.visitorSession(t);
    const requestId = await requestCall(visitor);
    await expectRung(agents[first], visitor, requestId, first);
    const oldCall = await accept(agents[first], visitor, requestId);

    // Both people lose their sockets, the visitor first.
    visitor.close();
    await agents[first].next('call.paused');
    agents[first].close();
    await sleep(SHORT_GRACE_MS + 700);
    // The grace is over: the agent's call is ended as reassigned, but nobody is rung for a visitor who is not there.
    expect(await stored(t.server, (store) => store.calls.get(oldCall))).toMatchObject({ state: 'ended', endReason: 'reassigned', agentId: first });
    expect(agents[second].saw('agent.ring') || agents[third].saw('agent.ring')).toBe(false);
    expect((await (await routingTrail(t, requestId))).at(-1)).toMatch(/^waitingForVisitor <- xstate\.after\.agentGrace/);

    const back = await suite.resumeVisitor(t, token, visitor);
    // Told the request goes on (the old call is gone), so the widget shows the search, not an ending.
    expect(await back.next('session.resumed')).toEqual({ call: null, request: { requestId, state: 'searching' } });
    await expectRung(agents[second], back, requestId, second);
    expect((await (await routingTrail(t, requestId))).slice(-2)).toEqual(['searching <- visitor.back', `ringing <- visitor.back`]);
    const newCall = await accept(agents[second], back, requestId);
    await hangUp(back, agents[second], newCall);
  });

  it('when the grace runs out, the visitor is reassigned and a new call connects with the next agent', async () => {
    const grace = SHORT_GRACE_MS;
    const { t, agents, visitor, first, second, requestId, callId: oldCall } = await callWithFirstAgent(SHORT_MID_CALL);

    const resumeToken = agents[first].resumeToken!;
    const lostAt = Date.now();
    agents[first].close();
    await visitor.next('call.paused');
    await visitor.next('routing.update', (u) => u.requestId === requestId && u.state === 'reassigning');
    expect(Date.now() - lostAt).toBeGreaterThanOrEqual(grace - 20);
    await expectRung(agents[second], visitor, requestId, second);
    const newCall = await accept(agents[second], visitor, requestId);
    expect(newCall).not.toBe(oldCall);
    // The visitor moves on without its call ending: an ended call would end its whole session.
    expect(visitor.saw('call.ended')).toBe(false);
    // Neither leg can signal into the old call any more.
    expect(await visitor.emit('signal.answer', { callId: oldCall, sdp: 'v=0\r\n' })).toMatchObject({ ok: false, error: { code: 'not-found' } });
    expect(await stored(t.server, (store) => store.calls.get(oldCall))).toMatchObject({ state: 'ended', endReason: 'reassigned', agentId: first });
    expect(await stored(t.server, (store) => store.calls.get(newCall))).toMatchObject({ state: 'active', agentId: second });
    expect(await (await serverEvents(t, requestId))).toEqual([expect.objectContaining({ type: 'reassigned', callId: oldCall, cause: 'grace-expired' })]);
    expect((await (await routingTrail(t, requestId))).slice(2)).toEqual([
      `connected.agentPresent <- agent.accepted (${first})`,
      `connected.agentAway <- agent.lost (${first}, socket)`,
      expect.stringMatching(/^reassigning <- xstate\.after\.agentGrace/),
      expect.stringMatching(/^searching <- xstate\.after\.agentGrace/),
      expect.stringMatching(/^ringing <- xstate\.after\.agentGrace/),
      `connected.agentPresent <- agent.accepted (${second})`,
    ]);

    // Coming back late finds no call, and the request does not go back to the agent it left.
    const late = await suite.agent(t, first, resumeToken);
    expect(await late.next('session.resumed')).toMatchObject({ call: null });
    await settle();
    expect(late.saw('agent.ring')).toBe(false);
    expect(visitor.saw('call.paused') || visitor.saw('call.resumed')).toBe(false);
    await hangUp(visitor, agents[second], newCall);
  });

  for (const how of ['away', 'logout'] as const) {
    it(`an agent who ${how === 'away' ? 'goes away' : 'logs out'} mid-call has the visitor reassigned at once, without the grace`, async () => {
      const { t, agents, visitor, first, second, requestId, callId: oldCall } = await callWithFirstAgent(MID_CALL);

      const leftAt = Date.now();
      const ack = how === 'away' ? await agents[first].emit('agent.presence', { status: 'away' }) : await agents[first].emit('agent.logout', {});
      expect(ack).toEqual({ ok: true });
      expect(await agents[first].next('call.ended')).toEqual({ callId: oldCall, reason: 'reassigned' });
      await visitor.next('routing.update', (u) => u.requestId === requestId && u.state === 'reassigning');
      expect(Date.now() - leftAt).toBeLessThan(MID_CALL_GRACE_MS / 2);
      await expectRung(agents[second], visitor, requestId, second);
      const newCall = await accept(agents[second], visitor, requestId);
      expect(newCall).not.toBe(oldCall);
      expect(visitor.saw('call.ended')).toBe(false);
      expect(visitor.saw('call.paused')).toBe(false);
      // The agent who left is out of the old call: it can no longer signal into it. A logged-out socket can do nothing at all.
      expect(await agents[first].emit('signal.offer', { callId: oldCall, sdp: 'v=0\r\n' })).toMatchObject({ ok: false, error: { code: how === 'away' ? 'not-found' : 'unauthorized' } });
      expect(await (await serverEvents(t, requestId))).toEqual([expect.objectContaining({ type: 'reassigned', callId: oldCall, cause: how })]);
      expect((await (await routingTrail(t, requestId))).slice(2)).toEqual([
        `connected.agentPresent <- agent.accepted (${first})`,
        `reassigning <- agent.lost (${first}, ${how})`,
        `searching <- agent.lost (${first}, ${how})`,
        `ringing <- agent.lost (${first}, ${how})`,
        `connected.agentPresent <- agent.accepted (${second})`,
      ]);
      await hangUp(visitor, agents[second], newCall);
    });
  }

  it('an agent whose media stays down past RECONNECTION_TIMEOUT_MS with both sockets up ends the call as reconnect-timeout: a path fault is nobody to reassign', async () => {
    const timeout = SHORT_RECONNECTION_MS;
    const { t, agents, visitor, first, second, requestId, callId: oldCall } = await callWithFirstAgent(SHORT_MID_CALL);

    const lostAt = Date.now();
    expect(await agents[first].emit('call.media', { callId: oldCall, state: 'reconnecting', attempt: 1 })).toEqual({ ok: true });
    expect(await visitor.next('call.paused')).toEqual({
      callId: oldCall,
      legs: { agent: { socket: 'up', media: 'reconnecting' }, visitor: { socket: 'up', media: 'connected' } },
    });
    expect(await visitor.next('call.ended', undefined, timeout + 5_000)).toEqual({ callId: oldCall, reason: 'reconnect-timeout' });
    expect(Date.now() - lostAt).toBeGreaterThanOrEqual(timeout - 20);
    expect(await agents[first].next('call.ended')).toEqual({ callId: oldCall, reason: 'reconnect-timeout' });
    await settle();
    expect(agents[second].saw('agent.ring')).toBe(false);
    expect(await stored(t.server, (store) => store.calls.get(oldCall))).toMatchObject({ state: 'ended', endReason: 'reconnect-timeout' });
    expect((await (await routingTrail(t, requestId))).slice(2)).toEqual([`connected.agentPresent <- agent.accepted (${first})`, 'done <- xstate.done.actor.call']);
  });

});
