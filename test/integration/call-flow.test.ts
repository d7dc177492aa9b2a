import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { relay } from '../support/relay.ts';
import { SAMPLE_CANDIDATE, SAMPLE_SDP, getJson, agentToken, startTestServer, visitorAndAgents, type TestServer } from '../support/server.ts';

let t: TestServer;
beforeEach(async () => {
  t = await startTestServer();
});
afterEach(async () => {
  await t.close();
});

describe('a call from request to hang-up', () => {
  it('rings an agent, connects on accept, relays signaling between the two legs only, and records the call', async () => {
    const { agents, visitor } = await visitorAndAgents(t.url, ['ada']);
    const ada = agents.ada;

    const requested = await visitor.emit('visitor.request', { pool: 'support' });
    expect(requested.ok).toBe(true);
    const requestId = (requested as { requestId: string }).requestId;
    await visitor.next('routing.update', (u) => u.state === 'searching');
    const ring = await ada.next('agent.ring');
    expect(ring).toMatchObject({ requestId, visitorName: 'Vera Visitor' });
    expect(await visitor.next('routing.update', (u) => u.state === 'ringing')).toMatchObject({ agentName: 'Ada Lovelace' });

    expect(await ada.emit('agent.accept', { requestId })).toEqual({ ok: true });
    const agentSide = await ada.next('call.accepted');
    const visitorSide = await visitor.next('call.accepted');
    expect(agentSide).toMatchObject({ role: 'offerer', peerName: 'Vera Visitor' });
    expect(visitorSide).toMatchObject({ role: 'answerer', peerName: 'Ada Lovelace', callId: agentSide.callId });
    const callId = agentSide.callId;

    expect(await relay(ada, visitor, 'signal.offer', { callId, sdp: SAMPLE_SDP })).toEqual({ ok: true });
    expect(await relay(visitor, ada, 'signal.answer', { callId, sdp: SAMPLE_SDP })).toEqual({ ok: true });
    await relay(visitor, ada, 'signal.candidate', { callId, candidate: SAMPLE_CANDIDATE });
    await relay(ada, visitor, 'signal.candidate', { callId, candidate: SAMPLE_CANDIDATE });
    // The sender never receives its own relay.
    expect(ada.saw('signal.offer')).toBe(false);

    await ada.emit('call.media', { callId, state: 'connected' });
    await visitor.emit('call.media', { callId, state: 'connected' });
    expect(await visitor.emit('call.hangup', { callId })).toEqual({ ok: true });
    expect(await ada.next('call.ended')).toEqual({ callId, reason: 'hangup' });
    expect(await visitor.next('call.ended')).toEqual({ callId, reason: 'hangup' });

    const token = await agentToken(t.url, 'ada');
    const detail = await getJson<{ call: Record<string, unknown>; events: { actor: string; toState: string }[] }>(`${t.url}/api/calls/${callId}`, token);
    expect(detail.status).toBe(200);
    expect(detail.body.call).toMatchObject({ id: callId, requestId, agentId: 'ada', state: 'ended', endReason: 'hangup' });
    expect(detail.body.call.endedAt).toEqual(expect.any(Number));
    expect(detail.body.call.connectedAt).toEqual(expect.any(Number));
    const routingStates = t.server.store.events.forRequest(requestId).filter((e) => e.actor === 'routing').map((e) => e.toState);
    expect(routingStates).toEqual(['searching', 'ringing', 'connected.agentPresent', 'done']);
    expect(t.server.store.snapshots.all()).toEqual([]);
    ada.close();
    visitor.close();
  });
});
