import { describe, expect, it } from 'vitest';
import { REDACTED } from '@callchart/machines';
import { STATELY_SWITCH, inspectorForPage, sanitizeForStately, statelyInspectorRequested } from './statelyInspector.ts';

const storage = (value: string | null) => ({ getItem: (key: string) => (key === STATELY_SWITCH.storageKey ? value : null) });

describe('the Stately inspector switch', () => {
  it('is on only when the address or local storage asks for it', () => {
    expect(statelyInspectorRequested('http://127.0.0.1:3000/agent?inspect=stately')).toBe(true);
    expect(statelyInspectorRequested('http://127.0.0.1:3000/agent', storage('stately'))).toBe(true);
    expect(statelyInspectorRequested('http://127.0.0.1:3000/agent')).toBe(false);
    expect(statelyInspectorRequested('http://127.0.0.1:3000/agent?inspect=on', storage('yes'))).toBe(false);
    expect(statelyInspectorRequested('not a url', storage(null))).toBe(false);
    const throwing = {
      getItem: () => {
        throw new Error('denied');
      },
    };
    expect(statelyInspectorRequested('http://127.0.0.1:3000/', throwing)).toBe(false);
  });

  it('gives no inspector, and loads nothing, outside a browser page', async () => {
    await expect(inspectorForPage()).resolves.toBeUndefined();
  });

  it('sanitizes what would go to Stately: events and snapshot contexts, not the rest', () => {
    const snapshotEvent = {
      type: '@xstate.snapshot',
      sessionId: 'x:1',
      event: { type: 'signal.offer', sdp: 'v=0' },
      snapshot: { status: 'active', value: 'connecting', context: { resumeToken: 'jwt', attempt: 2 } },
    };
    expect(sanitizeForStately(snapshotEvent)).toEqual({
      type: '@xstate.snapshot',
      sessionId: 'x:1',
      event: { type: 'signal.offer', sdp: REDACTED },
      snapshot: { status: 'active', value: 'connecting', context: { resumeToken: REDACTED, attempt: 2 } },
    });
    const actorEvent = { type: '@xstate.actor', definition: '{"id":"signaling"}', snapshot: { status: 'active', context: { token: 't' }, input: { token: 't' } } };
    expect(sanitizeForStately(actorEvent)).toEqual({
      type: '@xstate.actor',
      definition: '{"id":"signaling"}',
      snapshot: { status: 'active', context: { token: REDACTED }, input: { token: REDACTED } },
    });
    // The original stays as it was: the live actor's own context must never be touched.
    expect(snapshotEvent.snapshot.context.resumeToken).toBe('jwt');
  });
});
