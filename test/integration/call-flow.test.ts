import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { relay } from '../support/relay.ts';
import { SAMPLE_CANDIDATE, SAMPLE_SDP, getJson, agentToken, startTestServer, stored, visitorAndAgents, type TestServer } from '../support/server.ts';

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
    const routingStates = (await stored(t.server, (store) => store.events.forRequest(requestId))).filter((e) => e.actor === 'routing').map((e) => e.toState);
    expect(routingStates).toEqual(['searching', 'ringing', 'connected.agentPresent', 'done']);
    expect(await stored(t.server, (store) => store.snapshots.all())).toEqual([]);
    ada.close();
    visitor.close();
  });

  it("stores each step's messages with the step, each under an id of its own that the client receives, and gives relays none", async () => {
    const { agents, visitor } = await visitorAndAgents(t.url, ['ada']);
    const ada = agents.ada;
    const { requestId } = (await visitor.emit('visitor.request', { pool: 'support' })) as { requestId: string };
    const searching = await visitor.next('routing.update', (u) => u.state === 'searching');
    const ring = await ada.next('agent.ring');
    const ringing = await visitor.next('routing.update', (u) => u.state === 'ringing');
    const eids = [visitor.eidOf(searching), ada.eidOf(ring), visitor.eidOf(ringing)];
    for (const eid of eids) expect(eid).toMatch(/^[0-9a-f-]{36}$/);
    expect(new Set(eids).size).toBe(3);

    // The request's first step asked, looked and rang at once: its row holds what it sent, ids included, so a
    // server taking the request over could send the same messages again and the clients could drop them.
    const sent = (event: string, payload: object, eid: string | undefined) => expect.objectContaining({ eid, event, payload: { ...payload, eid } });
    const tree = `routing:${requestId}`;
    expect((await stored(t.server, (store) => store.snapshots.get(tree)))?.outbox).toEqual([
      sent('routing.update', searching, eids[0]),
      sent('agent.ring', ring, eids[1]),
      sent('routing.update', ringing, eids[2]),
    ]);

    expect(await ada.emit('agent.accept', { requestId })).toEqual({ ok: true });
    const agentSide = await ada.next('call.accepted');
    const visitorSide = await visitor.next('call.accepted');
    const accepted = [ada.eidOf(agentSide), visitor.eidOf(visitorSide)];
    expect(accepted.every((eid) => eid !== undefined && !eids.includes(eid))).toBe(true);
    const outbox = (await stored(t.server, (store) => store.snapshots.get(tree)))?.outbox;
    expect(outbox).toEqual(expect.arrayContaining([sent('call.accepted', agentSide, accepted[0]), sent('call.accepted', visitorSide, accepted[1])]));
    expect(outbox).not.toEqual(expect.arrayContaining([expect.objectContaining({ eid: eids[1] })]));

    // A relayed signal is no step of a machine: it is neither stored nor numbered.
    const callId = agentSide.callId;
    expect(await ada.emit('signal.offer', { callId, sdp: SAMPLE_SDP })).toEqual({ ok: true });
    const offer = await visitor.next('signal.offer');
    expect(offer).toEqual({ callId, sdp: SAMPLE_SDP });
    expect(visitor.eidOf(offer)).toBeUndefined();
    expect(await visitor.emit('call.hangup', { callId })).toEqual({ ok: true });
    expect(ada.eidOf(await ada.next('call.ended'))).toMatch(/^[0-9a-f-]{36}$/);
    await visitor.next('call.ended');
    expect(await stored(t.server, (store) => store.snapshots.get(tree))).toBeUndefined();
    ada.close();
    visitor.close();
  });
});
