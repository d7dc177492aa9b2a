/**
 * Persist, then emit, on a real server and its SQLite file: whatever a client hears from a machine's step is
 * in the store by the time it arrives (read without waiting for the server to settle), with the id it came
 * with in the outbox of the tree's snapshot; a step the store cannot take is not heard at all, and the
 * server goes on answering.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startTestServer, visitorAndAgents, type TestServer } from '../../../test/support/server.ts';

let t: TestServer | null = null;
afterEach(async () => {
  await t?.close();
  t = null;
});

describe('persist, then emit', () => {
  it('has every message a client hears already in the store, with its id in the outbox of the step that sent it', async () => {
    t = await startTestServer();
    const { store } = t.server;
    const { agents, visitor } = await visitorAndAgents(t.url, ['ada']);
    const requested = (await visitor.emit('visitor.request', { pool: 'support' })) as { ok: true; requestId: string };
    // The answer comes once the request's record is in.
    expect(await store.requests.get(requested.requestId)).toMatchObject({ visitorName: 'Vera Visitor', pool: 'support' });

    const ring = await agents.ada.next('agent.ring');
    const ringId = agents.ada.eidOf(ring);
    expect(ringId).toBeDefined();
    const ringing = await store.snapshots.get(`routing:${requested.requestId}`);
    expect(ringing?.snapshot).toMatchObject({ value: 'ringing' });
    expect((ringing?.outbox as { eid: string }[]).map((message) => message.eid)).toContain(ringId);

    expect(await agents.ada.emit('agent.accept', { requestId: requested.requestId })).toEqual({ ok: true });
    const accepted = await agents.ada.next('call.accepted');
    expect(await store.calls.get(accepted.callId)).toMatchObject({ requestId: requested.requestId, agentId: 'ada', state: 'active' });
    expect((await store.agents.get('ada'))?.lastAssignedAt).not.toBeNull();
    const connected = await store.snapshots.get(`routing:${requested.requestId}`);
    const visitorSide = await visitor.next('call.accepted');
    expect((connected?.outbox as { eid: string }[]).map((message) => message.eid)).toEqual(
      expect.arrayContaining([agents.ada.eidOf(accepted), visitor.eidOf(visitorSide)]),
    );
    // Two messages of one step, each with an id of its own.
    expect(agents.ada.eidOf(accepted)).not.toBe(visitor.eidOf(visitorSide));

    expect(await visitor.emit('call.media', { callId: accepted.callId, state: 'connected' })).toEqual({ ok: true });
    expect(await visitor.emit('call.hangup', { callId: accepted.callId })).toEqual({ ok: true });
    const ended = await agents.ada.next('call.ended');
    expect(ended).toEqual({ callId: accepted.callId, reason: 'hangup' });
    const call = await store.calls.get(accepted.callId);
    expect(call).toMatchObject({ state: 'ended', endReason: 'hangup' });
    expect(call?.connectedAt).not.toBeNull();
  });

  it('sends nothing of a step the store cannot take, and keeps answering', async () => {
    t = await startTestServer();
    const { agents, visitor } = await visitorAndAgents(t.url, ['ada']);
    const { requestId } = (await visitor.emit('visitor.request', { pool: 'support' })) as { ok: true; requestId: string };
    await agents.ada.next('agent.ring');
    await t.server.switchboard.settled();
    // The database goes away: every commit fails from here on.
    await t.server.store.close();
    const heard = { ada: agents.ada.events.length, visitor: visitor.events.length };
    expect(await agents.ada.emit('agent.reject', { requestId })).toEqual({ ok: true });
    // The reject moves the request on (the ring cancelled, the visitor told where it stands): not while that is unwritten.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(agents.ada.events.slice(heard.ada)).toEqual([]);
    expect(visitor.events.slice(heard.visitor)).toEqual([]);
    expect((await fetch(`${t.url}/healthz`)).status).toBe(200);
    expect(await visitor.emit('session.ping', {})).toEqual({ ok: true });
    // Shutting down gives the unwritten step up instead of waiting for a store that will not come back.
    await t.close();
    t = null;
  });
});
