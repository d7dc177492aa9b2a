import { createActor, createMachine, type InspectionEvent } from 'xstate';
import { describe, expect, it } from 'vitest';
import { Inspection, REDACTED, TIMELINE_LIMIT, historyEntries, type ClientEntryInput } from './inspection.ts';

/** What a server routing actor reports, as XState's inspect option would hand it over. */
function routingSnapshot(requestId: string, value: string, status: 'active' | 'done' | 'stopped' = 'active') {
  return [
    { type: '@xstate.snapshot', snapshot: { status, value, context: { requestId } }, event: { type: 'agent.rejected' } } as unknown as InspectionEvent,
    { kind: 'routing' as const, requestId, callId: null },
  ] as const;
}

describe('Inspection', () => {
  it('keeps the last entries of a request, sanitized, and streams new ones to subscribers', () => {
    const inspection = new Inspection(() => 5);
    inspection.record(...routingSnapshot('req-1', 'searching'));
    const seen: unknown[] = [];
    const unsubscribe = inspection.subscribe('req-1', (entry) => seen.push(entry.event));
    for (let i = 0; i < TIMELINE_LIMIT + 20; i++) {
      inspection.addClient({ requestId: 'req-1', callId: 'call-1' }, 'visitor', 'peerConnection', [
        { at: i, event: { type: 'signal.offer', sdp: 'v=0', n: i } as { type: string }, state: 'connecting', context: { attempts: i } },
      ]);
    }
    const timeline = inspection.timeline('req-1');
    expect(timeline).toHaveLength(TIMELINE_LIMIT);
    expect(timeline[0]).toMatchObject({ at: 20, actorId: 'visitor:peerConnection', side: 'visitor', kind: 'peerConnection', callId: 'call-1' });
    expect(timeline.at(-1)?.event).toEqual({ type: 'signal.offer', sdp: REDACTED, n: TIMELINE_LIMIT + 19 });
    expect(seen).toHaveLength(TIMELINE_LIMIT + 20);
    unsubscribe();
    inspection.addClient({ requestId: 'req-1', callId: null }, 'agent', 'agent', [{ at: 1, event: { type: 'go' }, state: 'available' }]);
    expect(seen).toHaveLength(TIMELINE_LIMIT + 20);
    expect(inspection.timeline('other')).toEqual([]);
  });

  it('keeps each actor’s latest view per request, the clients’ beside the server’s, until the request ends', () => {
    const inspection = new Inspection(() => 5);
    let changes = 0;
    inspection.onServerChange(() => changes++);
    inspection.record(...routingSnapshot('req-1', 'searching'));
    inspection.record(...routingSnapshot('req-2', 'ringing'));
    inspection.addClient({ requestId: 'req-1', callId: 'call-1' }, 'visitor', 'peerConnection', [
      { at: 1, event: { type: 'ice.disconnected' }, state: 'unstable', context: { attempt: 0 } },
      { at: 2, event: { type: 'ice.failed' }, state: { reconnecting: 'attempting' }, context: { attempt: 1 } },
    ]);
    inspection.addClient({ requestId: 'req-2', callId: null }, 'visitor', 'peerConnection', [{ at: 3, event: { type: 'x' }, state: 'connecting' }]);
    expect(inspection.actorsOf('req-1')).toEqual([
      { actorId: 'routing:req-1', kind: 'routing', side: 'server', requestId: 'req-1', callId: null, status: 'active', state: 'searching', context: { requestId: 'req-1' } },
      { actorId: 'visitor:peerConnection', kind: 'peerConnection', side: 'visitor', requestId: 'req-1', callId: 'call-1', status: 'active', state: { reconnecting: 'attempting' }, context: { attempt: 1 } },
    ]);
    expect(inspection.actorsOf('req-2').map((view) => view.state)).toEqual(['ringing', 'connecting']);
    expect(changes).toBe(2);

    inspection.record(...routingSnapshot('req-1', 'done', 'done'));
    expect(changes).toBe(3);
    expect(inspection.actorsOf('req-1')).toEqual([]);
    expect(inspection.timeline('req-1')).toEqual([]);
    // An ended request, or one the server never had, takes no more client entries.
    inspection.addClient({ requestId: 'req-1', callId: 'call-1' }, 'visitor', 'signaling', [{ at: 4, event: { type: 'late' }, state: 'connected' }]);
    inspection.addClient({ requestId: 'req-9', callId: null }, 'agent', 'agent', [{ at: 4, event: { type: 'stray' }, state: 'ringing' }]);
    expect(inspection.actorsOf('req-1')).toEqual([]);
    expect(inspection.timeline('req-9')).toEqual([]);
    expect(inspection.actorsOf('req-2')).toHaveLength(2);
  });

  it('turns stored transitions into timeline entries', () => {
    const entries = historyEntries([
      { id: 1, callId: 'call-1', requestId: 'req-1', actor: 'callSession', type: 'transition', fromState: 'active', toState: 'paused', cause: 'leg.mediaReconnecting', detail: { leg: 'agent' }, at: 10 },
    ]);
    expect(entries).toEqual([
      {
        at: 10,
        requestId: 'req-1',
        callId: 'call-1',
        actorId: 'callSession:call-1',
        kind: 'callSession',
        side: 'server',
        event: { type: 'leg.mediaReconnecting', leg: 'agent' },
        fromState: 'active',
        state: 'paused',
        context: null,
      },
    ]);
  });

  it('lets a stopped routing actor take its request away: its timeline and views go, the list is told, and entries stop', () => {
    const inspection = new Inspection(() => 5);
    const everything: string[] = [];
    inspection.onEntry((entry) => everything.push(`${entry.requestId} ${entry.event.type}`));
    let changes = 0;
    inspection.onServerChange(() => changes++);
    inspection.record(...routingSnapshot('req-1', 'ringing'));
    inspection.record(...routingSnapshot('req-2', 'queued'));
    expect(everything).toEqual(['req-1 agent.rejected', 'req-2 agent.rejected']);

    inspection.record(...routingSnapshot('req-1', 'ringing', 'stopped'));
    expect(inspection.isLive('req-1')).toBe(false);
    expect(inspection.actorsOf('req-1')).toEqual([]);
    expect(changes).toBe(3);
    inspection.addClient({ requestId: 'req-1', callId: null }, 'visitor', 'visitorCall', [{ at: 6, event: { type: 'late' }, state: 'waiting' }]);
    expect(inspection.isLive('req-1')).toBe(false);
    // Stopping one that is not here any more is nothing new.
    inspection.record(...routingSnapshot('req-1', 'ringing', 'stopped'));
    expect(changes).toBe(3);
    expect(inspection.isLive('req-2')).toBe(true);
    expect(everything).toHaveLength(2);
  });

  it('tells a request whose tree was brought back from a snapshot from one that began here', () => {
    const machine = createMachine({ id: 'routing', initial: 'ringing', states: { ringing: { on: { 'ring.timeout': 'queued' } }, queued: {} } });
    const inspection = new Inspection(() => 5);
    const inspect = (requestId: string) => (event: InspectionEvent) => inspection.record(event, { kind: 'routing', requestId, callId: null });
    const first = createActor(machine, { inspect: inspect('req-new') }).start();
    first.send({ type: 'ring.timeout' });
    createActor(machine, { snapshot: first.getPersistedSnapshot(), inspect: inspect('req-moved') }).start();
    expect(inspection.isRestored('req-new')).toBe(false);
    expect(inspection.isRestored('req-moved')).toBe(true);
    expect(inspection.timeline('req-moved').map((entry) => [entry.event.type, entry.state])).toEqual([['xstate.init', 'queued']]);
  });

  it("hands a client's entries for a request it does not run to the node that does, sanitized, and forwarded ones no further", () => {
    const inspection = new Inspection(() => 5);
    const handed: { requestId: string; entries: ClientEntryInput[] }[] = [];
    inspection.sendClientEntriesElsewhere((target, _side, _kind, entries) => handed.push({ requestId: target.requestId, entries }));
    const entry = { at: 7, event: { type: 'signal.offer', sdp: 'v=0' }, state: 'connecting', context: { token: 'secret' } };
    inspection.addClient({ requestId: 'req-elsewhere', callId: 'call-1' }, 'visitor', 'peerConnection', [entry]);
    expect(handed).toEqual([{ requestId: 'req-elsewhere', entries: [{ at: 7, actorId: undefined, event: { type: 'signal.offer', sdp: REDACTED }, state: 'connecting', context: { token: REDACTED } }] }]);
    inspection.addClient({ requestId: 'req-elsewhere', callId: 'call-1' }, 'visitor', 'peerConnection', [entry], { forwarded: true });
    expect(handed).toHaveLength(1);
    // One it runs keeps them.
    inspection.record(...routingSnapshot('req-here', 'connected'));
    inspection.addClient({ requestId: 'req-here', callId: null }, 'agent', 'agent', [entry], { forwarded: true });
    expect(inspection.timeline('req-here').map((e) => e.actorId)).toEqual(['routing:req-here', 'agent:agent']);
    expect(handed).toHaveLength(1);
  });
});
