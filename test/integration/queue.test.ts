/**
 * The queue, through a real server and real sockets: visitors who find nobody free wait in line with their
 * position, move up as the people ahead of them are served, are rung as soon as an agent of their pool comes
 * online or becomes available, and hear `no-agents` once MAX_QUEUE_WAIT_MS has passed.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { stored, type TestClient } from '../support/server.ts';
import { NEVER, RoutingSuite, accept, expectRung, hangUp, requestCall, routingTrail, settle } from '../support/routing.ts';

const suite = new RoutingSuite();
afterEach(() => suite.cleanUp());
afterAll(() => suite.closeAll());

async function expectPosition(visitor: TestClient, requestId: string, position: number) {
  await visitor.next('routing.update', (u) => u.requestId === requestId && u.state === 'queued' && u.position === position).catch((error: unknown) => {
    throw new Error(`${(error as Error).message}; wanted position ${position}; unconsumed: ${JSON.stringify(visitor.events)}`);
  });
}

/** Queue updates the visitor received and has not consumed, as positions. */
function pendingPositions(visitor: TestClient): (number | undefined)[] {
  return visitor.events
    .filter((e) => e.event === 'routing.update' && (e.payload as { state: string }).state === 'queued')
    .map((e) => (e.payload as { position?: number }).position);
}

describe('waiting in line', () => {
  it('numbers visitors 1, 2, 3 in the order they asked, and moves them up as agents come online and free up', async () => {
    const t = await suite.server({ RING_TIMEOUT_MS: NEVER, MAX_QUEUE_WAIT_MS: NEVER });
    const visitors = [await suite.visitor(t, 'Vera'), await suite.visitor(t, 'Walt'), await suite.visitor(t, 'Xena')];
    const [vera, walt, xena] = visitors as [TestClient, TestClient, TestClient];

    const requests: string[] = [];
    for (const [index, visitor] of visitors.entries()) {
      const requestId = await requestCall(visitor);
      requests.push(requestId);
      await expectPosition(visitor, requestId, index + 1);
    }
    const [veraRequest, waltRequest, xenaRequest] = requests as [string, string, string];
    await settle();
    // Someone joining behind you does not move you.
    expect(pendingPositions(vera).filter((p) => p !== undefined)).toEqual([]);
    expect(pendingPositions(walt).filter((p) => p !== undefined)).toEqual([]);

    // An agent logs in: the first in line is rung, and only the first; the others move up by one.
    const { ada } = await suite.agents(t, ['ada']);
    await expectRung(ada, vera, veraRequest, 'ada');
    await expectPosition(walt, waltRequest, 1);
    await expectPosition(xena, xenaRequest, 2);
    await settle();
    expect(ada.events.filter((e) => e.event === 'agent.ring')).toEqual([]);
    expect(walt.events.some((e) => (e.payload as { state?: string }).state === 'ringing')).toBe(false);
    const veraCall = await accept(ada, vera, veraRequest);

    // A second agent logs in: Walt is rung, Xena is now first in line.
    const { grace } = await suite.agents(t, ['grace']);
    await expectRung(grace, walt, waltRequest, 'grace');
    await expectPosition(xena, xenaRequest, 1);

    // Grace turns Walt down and is free again: Xena, who has not been offered to her, is rung; Walt, who has
    // nobody left, goes back to the head of the line.
    expect(await grace.emit('agent.reject', { requestId: waltRequest })).toEqual({ ok: true });
    await expectRung(grace, xena, xenaRequest, 'grace');
    await expectPosition(walt, waltRequest, 1);

    // Xena gives up while ringing; Grace stays off Walt's list.
    expect(await xena.emit('visitor.cancel', { requestId: xenaRequest })).toEqual({ ok: true });
    expect(await xena.next('routing.ended')).toEqual({ requestId: xenaRequest, reason: 'cancelled' });
    expect(await grace.next('agent.ringCancelled', (r) => r.requestId === xenaRequest)).toEqual({ requestId: xenaRequest });

    // Ada's call ends and she is free again: Walt, first in line, is rung.
    await hangUp(vera, ada, veraCall);
    await expectRung(ada, walt, waltRequest, 'ada');
    const waltCall = await accept(ada, walt, waltRequest);
    await hangUp(walt, ada, waltCall);
    await settle();
    expect(grace.saw('agent.ring')).toBe(false);

    expect(await routingTrail(t, waltRequest)).toEqual([
      'searching <- xstate.init',
      'queued <- xstate.init',
      'searching <- agents.updated',
      'ringing <- agents.updated',
      'searching <- agent.rejected (grace)',
      'queued <- agent.rejected (grace)',
      'searching <- agents.updated',
      'ringing <- agents.updated',
      'connected.agentPresent <- agent.accepted (ada)',
      'done <- xstate.done.actor.call',
    ]);
    expect((await routingTrail(t, xenaRequest)).slice(-3)).toEqual(['searching <- agents.updated', 'ringing <- agents.updated', 'cancelled <- visitor.cancelled']);
  });

  it('moves everyone behind a visitor who leaves the line up by one', async () => {
    const t = await suite.server({ RING_TIMEOUT_MS: NEVER, MAX_QUEUE_WAIT_MS: NEVER });
    const visitors = [await suite.visitor(t, 'Vera'), await suite.visitor(t, 'Walt'), await suite.visitor(t, 'Xena')];
    const requests: string[] = [];
    for (const [index, visitor] of visitors.entries()) {
      requests.push(await requestCall(visitor));
      await expectPosition(visitor, requests[index]!, index + 1);
    }
    const [vera, walt, xena] = visitors as [TestClient, TestClient, TestClient];
    const [veraRequest, waltRequest, xenaRequest] = requests as [string, string, string];

    // The middle one leaves: only the one behind moves.
    expect(await walt.emit('visitor.cancel', { requestId: waltRequest })).toEqual({ ok: true });
    expect(await walt.next('routing.ended')).toEqual({ requestId: waltRequest, reason: 'cancelled' });
    await expectPosition(xena, xenaRequest, 2);
    await settle();
    expect(pendingPositions(vera).filter((p) => p !== undefined)).toEqual([]);

    expect(await vera.emit('visitor.cancel', { requestId: veraRequest })).toEqual({ ok: true });
    await expectPosition(xena, xenaRequest, 1);
    expect(await xena.emit('visitor.cancel', { requestId: xenaRequest })).toEqual({ ok: true });
    expect(await xena.next('routing.ended')).toEqual({ requestId: xenaRequest, reason: 'cancelled' });
    expect(await routingTrail(t, waltRequest)).toEqual(['searching <- xstate.init', 'queued <- xstate.init', 'cancelled <- visitor.cancelled']);
  });

  it('rings the first in line when an agent comes back from away, and keeps pools apart', async () => {
    const t = await suite.server({ RING_TIMEOUT_MS: NEVER, MAX_QUEUE_WAIT_MS: NEVER });
    const { ada, grace } = await suite.agents(t, ['ada', 'grace']);
    expect(await ada.emit('agent.presence', { status: 'away' })).toEqual({ ok: true });

    // Grace is free but works only in support, so the sales visitors queue.
    const sally = await suite.visitor(t, 'Sally');
    const sam = await suite.visitor(t, 'Sam');
    const sallyRequest = await requestCall(sally, 'sales');
    await expectPosition(sally, sallyRequest, 1);
    const samRequest = await requestCall(sam, 'sales');
    await expectPosition(sam, samRequest, 2);
    expect(grace.saw('agent.ring')).toBe(false);

    // A support visitor is served at once, and has no place in the sales line.
    const vera = await suite.visitor(t, 'Vera');
    const veraRequest = await requestCall(vera, 'support');
    await expectRung(grace, vera, veraRequest, 'grace');
    expect(vera.events.some((e) => (e.payload as { state?: string }).state === 'queued')).toBe(false);
    expect(await vera.emit('visitor.cancel', { requestId: veraRequest })).toEqual({ ok: true });
    expect(await grace.next('agent.ringCancelled')).toEqual({ requestId: veraRequest });

    expect(await ada.emit('agent.presence', { status: 'available' })).toEqual({ ok: true });
    await expectRung(ada, sally, sallyRequest, 'ada');
    await expectPosition(sam, samRequest, 1);
    await settle();
    expect(ada.events.filter((e) => e.event === 'agent.ring')).toEqual([]);

    const sallyCall = await accept(ada, sally, sallyRequest);
    await hangUp(sally, ada, sallyCall);
    await expectRung(ada, sam, samRequest, 'ada');
    expect(await sam.emit('visitor.cancel', { requestId: samRequest })).toEqual({ ok: true });
    expect(await ada.next('agent.ringCancelled')).toEqual({ requestId: samRequest });
  });
});

describe('an agent who logs out', () => {
  it('is not offered to the visitors waiting in line, whether it was ringing or in a call', async () => {
    const t = await suite.server({ RING_TIMEOUT_MS: NEVER, MAX_QUEUE_WAIT_MS: NEVER });
    const vera = await suite.visitor(t, 'Vera');
    const walt = await suite.visitor(t, 'Walt');
    const { ada } = await suite.agents(t, ['ada']);

    const veraRequest = await requestCall(vera);
    await expectRung(ada, vera, veraRequest, 'ada');
    const waltRequest = await requestCall(walt);
    await expectPosition(walt, waltRequest, 1);

    // Logging out while ringing: Vera goes back in line ahead of Walt, and Ada is rung for nobody.
    expect(await ada.emit('agent.logout', {})).toEqual({ ok: true });
    expect(await ada.next('agent.ringCancelled')).toEqual({ requestId: veraRequest });
    await expectPosition(vera, veraRequest, 1);
    await expectPosition(walt, waltRequest, 2);
    await settle();
    expect(ada.saw('agent.ring')).toBe(false);
    expect(walt.events.some((e) => (e.payload as { state?: string }).state === 'ringing')).toBe(false);

    // Logging out in a call: Vera is reassigned and, with nobody left, waits first in line again.
    const { grace } = await suite.agents(t, ['grace']);
    await expectRung(grace, vera, veraRequest, 'grace');
    await expectPosition(walt, waltRequest, 1);
    const callId = await accept(grace, vera, veraRequest);
    expect(await grace.emit('agent.logout', {})).toEqual({ ok: true });
    expect(await grace.next('call.ended')).toEqual({ callId, reason: 'reassigned' });
    await vera.next('routing.update', (u) => u.requestId === veraRequest && u.state === 'reassigning');
    await expectPosition(vera, veraRequest, 1);
    await expectPosition(walt, waltRequest, 2);
    await settle();
    expect(grace.saw('agent.ring')).toBe(false);
    expect(walt.events.some((e) => (e.payload as { state?: string }).state === 'ringing')).toBe(false);

    for (const [visitor, requestId] of [[vera, veraRequest], [walt, waltRequest]] as const) {
      expect(await visitor.emit('visitor.cancel', { requestId })).toEqual({ ok: true });
      expect(await visitor.next('routing.ended')).toEqual({ requestId, reason: 'cancelled' });
    }
  });
});

describe('nobody comes', () => {
  it('ends every waiting request as no-agents once MAX_QUEUE_WAIT_MS has passed', async () => {
    // Long enough for both visitors to be in line before the first wait runs out, even on a loaded machine.
    const wait = 2_500;
    const t = await suite.server({ RING_TIMEOUT_MS: NEVER, MAX_QUEUE_WAIT_MS: String(wait) });
    const vera = await suite.visitor(t, 'Vera');
    const walt = await suite.visitor(t, 'Walt');

    const askedAt = Date.now();
    const veraRequest = await requestCall(vera);
    await expectPosition(vera, veraRequest, 1);
    const waltRequest = await requestCall(walt);
    await expectPosition(walt, waltRequest, 2);

    expect(await vera.next('routing.ended')).toEqual({ requestId: veraRequest, reason: 'no-agents' });
    expect(Date.now() - askedAt).toBeGreaterThanOrEqual(wait - 20);
    // Vera left the line, so Walt moves up before his own wait runs out.
    await expectPosition(walt, waltRequest, 1);
    expect(await walt.next('routing.ended')).toEqual({ requestId: waltRequest, reason: 'no-agents' });

    for (const requestId of [veraRequest, waltRequest]) {
      expect(await stored(t.server, (store) => store.requests.get(requestId))).toMatchObject({ state: 'noAgents', endReason: 'no-agents', endedAt: expect.any(Number) });
      expect(await routingTrail(t, requestId)).toEqual(['searching <- xstate.init', 'queued <- xstate.init', expect.stringMatching(/^noAgents <- xstate\.after/)]);
    }
    expect(await stored(t.server, (store) => store.snapshots.all())).toEqual([]);
  });
});
