import type { InspectionEvent } from 'xstate';
import { describe, expect, it } from 'vitest';
import { Inspection, REDACTED, TIMELINE_LIMIT, historyEntries } from './inspection.ts';

/** What a server routing actor reports, as XState's inspect option would hand it over. */
function routingSnapshot(requestId: string, value: string, status: 'active' | 'done' = 'active') {
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
});
