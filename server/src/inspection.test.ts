import { describe, expect, it } from 'vitest';
import { Inspection, REDACTED, TIMELINE_LIMIT, historyEntries, sanitize, sanitizeEvent } from './inspection.ts';

describe('sanitize', () => {
  it('redacts secrets and session descriptions at any depth, whatever the key case', () => {
    const clean = sanitize({
      type: 'signal.offer',
      sdp: 'v=0\r\n…',
      nested: { Token: 'abc', resumeToken: 'def', password: 'pw', candidate: { candidate: 'candidate:1 1 udp' } },
      iceServers: [{ urls: 'turn:example.org', username: 'u', credential: 'c' }],
      keep: 'visible',
    });
    expect(clean).toEqual({
      type: 'signal.offer',
      sdp: REDACTED,
      nested: { Token: REDACTED, resumeToken: REDACTED, password: REDACTED, candidate: REDACTED },
      iceServers: [{ urls: 'turn:example.org', username: 'u', credential: REDACTED }],
      keep: 'visible',
    });
  });

  it('leaves an absent secret absent rather than claiming one was there', () => {
    expect(sanitize({ token: null, sdp: undefined })).toEqual({ token: null });
  });

  it('caps strings at 200 characters and arrays at 50 items, saying how much was cut', () => {
    const clean = sanitize({ text: 'x'.repeat(1_000), list: Array.from({ length: 80 }, (_, i) => i) }) as { text: string; list: unknown[] };
    expect(clean.text).toBe(`${'x'.repeat(200)}…`);
    expect(clean.list).toHaveLength(51);
    expect(clean.list.at(49)).toBe(49);
    expect(clean.list.at(-1)).toBe('[+30 more]');
  });

  it('bounds nesting, so a cyclic or hostile value cannot run away', () => {
    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic.self = cyclic;
    expect(JSON.stringify(sanitize(cyclic))).toContain('[too deep]');
  });

  it('keeps plain JSON as it is and drops what JSON cannot hold', () => {
    expect(sanitize({ a: 1, b: [true, null, 'x'], c: { d: 'e' } })).toEqual({ a: 1, b: [true, null, 'x'], c: { d: 'e' } });
    expect(sanitize({ f: () => 1, s: Symbol('x'), n: 10n })).toEqual({ n: '10' });
  });

  it('redacts the fields of an event but keeps its type', () => {
    expect(sanitizeEvent({ type: 'ice.failed', sdp: 'v=0' } as { type: string })).toEqual({ type: 'ice.failed', sdp: REDACTED });
  });
});

describe('Inspection', () => {
  it('keeps the last entries of a request, sanitized, and streams new ones to subscribers', () => {
    const inspection = new Inspection(() => 5);
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
