import { describe, expect, it } from 'vitest';
import { appendEntry, eventSummary, foldActors, formatClock, historyEntries, replayEntries } from './timeline.ts';
import type { ActorView, TimelineEntry } from '@callchart/machines';

let clock = 1_700_000_000_000;
function entry(actorId: string, kind: TimelineEntry['kind'], side: TimelineEntry['side'], state: unknown, context: unknown = { n: clock }): TimelineEntry {
  clock += 10;
  return { at: clock, requestId: 'req_1', callId: 'call_1', actorId, kind, side, event: { type: 'e' }, state, context };
}

describe('foldActors', () => {
  const entries = [
    entry('routing:req_1', 'routing', 'server', 'searching'),
    entry('visitor:peerConnection', 'peerConnection', 'visitor', 'connecting'),
    entry('routing:req_1', 'routing', 'server', 'ringing'),
    entry('agent:agent', 'agent', 'agent', 'ringing'),
    entry('callSession:call_1', 'callSession', 'server', { active: { agent: 'up', visitor: 'up', session: 'live' } }),
    entry('visitor:peerConnection', 'peerConnection', 'visitor', { reconnecting: 'attempting' }),
    entry('agent:signaling', 'signaling', 'agent', { connected: 'ready' }),
    entry('visitor:visitorCall', 'visitorCall', 'visitor', { inCall: { media: {}, peer: 'present' } }),
  ];

  it('keeps the latest state of each actor, ordered server, agent, visitor', () => {
    const actors = foldActors(entries);
    expect(actors.map((actor) => actor.actorId)).toEqual([
      'routing:req_1',
      'callSession:call_1',
      'agent:agent',
      'agent:signaling',
      'visitor:visitorCall',
      'visitor:peerConnection',
    ]);
    expect(actors.map((actor) => actor.label)).toEqual([
      'ringing',
      'active(agent.up, visitor.up, session.live)',
      'ringing',
      'connected.ready',
      'inCall(media, peer.present)',
      'reconnecting.attempting',
    ]);
    expect(actors.every((actor) => actor.known)).toBe(true);
    expect(actors[0]!.entry).toBe(entries[2]);
    expect(actors[5]!.context).toEqual(entries[5]!.context);
  });

  it('shows the request as it was at an entry, keeping later actors as not known yet', () => {
    const actors = foldActors(entries, { until: 2 });
    expect(actors.map((actor) => [actor.actorId, actor.known, actor.label])).toEqual([
      ['routing:req_1', true, 'ringing'],
      ['callSession:call_1', false, ''],
      ['agent:agent', false, ''],
      ['agent:signaling', false, ''],
      ['visitor:visitorCall', false, ''],
      ['visitor:peerConnection', true, 'connecting'],
    ]);
    expect(foldActors(entries, { until: 0 })[0]).toMatchObject({ actorId: 'routing:req_1', label: 'searching' });
  });

  it('fills actors the timeline has lost from the replay views, for the present only', () => {
    const baseline: ActorView[] = [
      { actorId: 'routing:req_1', kind: 'routing', side: 'server', requestId: 'req_1', callId: null, status: 'active', state: 'connected', context: { stale: true } },
      // No side: sent by a server from before client actors were reported.
      { actorId: 'callSession:call_2', kind: 'callSession', requestId: 'req_1', callId: 'call_2', status: 'active', state: { active: { agent: 'up', visitor: 'up', session: 'live' } }, context: { kept: 1 } },
    ];
    const present = foldActors(entries.slice(0, 2), { baseline });
    expect(present.map((actor) => [actor.actorId, actor.side, actor.label])).toEqual([
      ['routing:req_1', 'server', 'searching'],
      ['callSession:call_2', 'server', 'active(agent.up, visitor.up, session.live)'],
      ['visitor:peerConnection', 'visitor', 'connecting'],
    ]);
    expect(present[1]).toMatchObject({ known: true, context: { kept: 1 }, entry: null });
    expect(foldActors(entries.slice(0, 2), { baseline, until: 1 })[1]).toMatchObject({ actorId: 'callSession:call_2', known: false });
  });

  it('gives entries without a state no actor of their own', () => {
    const note = { ...entry('server', 'routing', 'server', null, null), event: { type: 'reassigned' } };
    expect(foldActors([entries[0]!, note]).map((actor) => actor.actorId)).toEqual(['routing:req_1']);
  });
});

describe('historyEntries', () => {
  it('reads stored state names back into values', () => {
    const stored = { ...entry('callSession:call_1', 'callSession', 'server', 'active.(agent.lost,visitor.up,session.paused)', null), fromState: 'active.(agent.up,visitor.up,session.live)' };
    const [read] = historyEntries([stored as never]);
    expect(read!.state).toEqual({ active: { agent: 'lost', visitor: 'up', session: 'paused' } });
    expect(read!.fromState).toEqual({ active: { agent: 'up', visitor: 'up', session: 'live' } });
    expect(historyEntries([{ ...stored, state: null, fromState: null } as never])[0]).toMatchObject({ state: null, fromState: null });
  });
});

describe('appendEntry', () => {
  it('drops the oldest past the limit', () => {
    const [a, b, c] = [entry('x', 'routing', 'server', 'a'), entry('x', 'routing', 'server', 'b'), entry('x', 'routing', 'server', 'c')];
    expect(appendEntry([a!, b!], c!, 2)).toEqual([b, c]);
    expect(appendEntry([a!], b!, 2)).toEqual([a, b]);
  });
});

describe('formatClock', () => {
  it('gives local time to the millisecond', () => {
    expect(formatClock(new Date(2024, 0, 2, 3, 4, 5, 6).getTime())).toBe('03:04:05.006');
    expect(formatClock(new Date(2024, 0, 2, 23, 59, 59, 999).getTime())).toBe('23:59:59.999');
  });
});

describe('eventSummary', () => {
  it('adds the first plain fields but the time to the type', () => {
    expect(eventSummary({ type: 'leg.mediaReconnecting', at: 5, leg: 'agent', attempt: 2, nested: { a: 1 }, more: true })).toBe('leg.mediaReconnecting (leg: agent, attempt: 2)');
    expect(eventSummary({ type: 'ice.failed' })).toBe('ice.failed');
    expect(eventSummary({ type: 'ring', requestId: 'req_f7b6a280-8671-4704-9177-e08f92bbd4bd' })).toBe('ring (requestId: req_f7b6a280-8671-4704-…)');
  });
});

describe('replayEntries', () => {
  it("reads the stored part of a replay (a node that took the request over) back into state values, and leaves live values as they are", () => {
    const live = { active: { agent: 'up', visitor: 'up', session: 'live' } };
    const entries = replayEntries([
      entry('callSession:call_1', 'callSession', 'server', 'active.(agent.up,visitor.down,session.paused)', null),
      entry('routing:req_1', 'routing', 'server', 'ringing', null),
      entry('callSession:call_1', 'callSession', 'server', live),
      entry('routing:req_1', 'routing', 'server', null),
    ]);
    expect(entries.map((e) => e.state)).toEqual([{ active: { agent: 'up', visitor: 'down', session: 'paused' } }, 'ringing', live, null]);
    expect(entries[2]!.state).toBe(live);
  });
});
