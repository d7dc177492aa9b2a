import { describe, expect, it } from 'vitest';
import type { InspectionEvent } from 'xstate';
import { MAX_INSPECT_ENTRY_BYTES, REDACTED, parseClientEvent, type ClientPayload } from '@callchart/machines';
import { ATTACHED_EVENT, combineInspectors, createInspectionReporter, reportEntry, type InspectionTarget } from './inspectionReport.ts';

/** An inspection event as XState hands it to `inspect`, for a machine with id `machine`. */
function snapshotEvent(machine: string, value: unknown, event: { type: string } & Record<string, unknown>, context: unknown = {}, status = 'active'): InspectionEvent {
  return { type: '@xstate.snapshot', snapshot: { machine: { id: machine }, status, value, context }, event } as unknown as InspectionEvent;
}

function reporter(target: InspectionTarget | null = { requestId: 'req-1' }) {
  const sent: ClientPayload<'inspect.client'>[] = [];
  const report = createInspectionReporter({ emit: (payload) => sent.push(payload), now: () => 42 });
  let current = target;
  report.setTargetSource(() => current);
  return { report, sent, retarget: (next: InspectionTarget | null) => (current = next) };
}

/** Lets the reporter's end-of-task flush run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('the inspection reporter', () => {
  it('leaves out a transition that changes neither the state nor the context, such as a sampling tick', async () => {
    const { report, sent } = reporter();
    report.setEnabled(true);
    const context = { attempts: 0 };
    const watching = { connected: { flowing: 'sampling' } };
    report.inspect(snapshotEvent('peerConnection', watching, { type: 'media.flowing' }, context));
    report.inspect(snapshotEvent('peerConnection', { connected: { flowing: 'sampling' } }, { type: 'xstate.after.mediaWatchInterval' }, context));
    report.inspect(snapshotEvent('peerConnection', { connected: { stalled: 'sampling' } }, { type: 'media.stalled' }, context));
    report.inspect(snapshotEvent('peerConnection', { connected: { stalled: 'sampling' } }, { type: 'xstate.after.mediaStallTimeout' }, { attempts: 1 }));
    await settle();
    expect(sent.flatMap((payload) => payload.entries.map((entry) => entry.event.type))).toEqual([
      'media.flowing',
      'media.stalled',
      'xstate.after.mediaStallTimeout',
    ]);
  });

  it('sends nothing until the server says it takes reports, then every actor’s current state, then each transition', async () => {
    const { report, sent } = reporter();
    report.inspect(snapshotEvent('signaling', { connected: 'ready' }, { type: 'session.ready', resumeToken: 'secret' }));
    report.inspect(snapshotEvent('visitorCall', { waiting: 'searching' }, { type: 'call.request' }, { pool: 'support' }));
    await settle();
    expect(sent).toEqual([]);

    report.setEnabled(true);
    report.inspect(snapshotEvent('visitorCall', { waiting: 'ringing' }, { type: 'routing.ringing', agentName: 'Ada' }));
    await settle();
    // Every payload is one the server's own schema accepts.
    for (const payload of sent) expect(parseClientEvent('inspect.client', payload).ok).toBe(true);
    expect(sent).toEqual([
      { requestId: 'req-1', actor: 'signaling', entries: [{ at: 42, event: { type: ATTACHED_EVENT }, state: { connected: 'ready' }, context: {} }] },
      {
        requestId: 'req-1',
        actor: 'visitorCall',
        entries: [
          { at: 42, event: { type: ATTACHED_EVENT }, state: { waiting: 'searching' }, context: { pool: 'support' } },
          { at: 42, event: { type: 'routing.ringing', agentName: 'Ada' }, state: { waiting: 'ringing' }, context: {} },
        ],
      },
    ]);
  });

  it('redacts secrets and session descriptions before they leave, and ignores other machines and other inspection events', async () => {
    const { report, sent } = reporter({ callId: 'call-1' });
    report.setEnabled(true);
    report.inspect(snapshotEvent('peerConnection', 'connecting', { type: 'signal.offer', sdp: 'v=0 secret' }, { resumeToken: 'jwt', iceServers: [{ credential: 'pw' }] }));
    report.inspect(snapshotEvent('somethingElse', 'x', { type: 'y' }));
    report.inspect({ type: '@xstate.event', event: { type: 'z' } } as unknown as InspectionEvent);
    await settle();
    expect(sent).toEqual([
      {
        callId: 'call-1',
        actor: 'peerConnection',
        entries: [{ at: 42, event: { type: 'signal.offer', sdp: REDACTED }, state: 'connecting', context: { resumeToken: REDACTED, iceServers: [{ credential: REDACTED }] } }],
      },
    ]);
  });

  it('drops transitions without a request, re-attaches when the request changes or the session starts again, and forgets stopped actors', async () => {
    const { report, sent, retarget } = reporter(null);
    report.setEnabled(true);
    report.inspect(snapshotEvent('agent', 'available', { type: 'login' }));
    report.inspect(snapshotEvent('peerConnection', 'closed', { type: 'close' }, {}, 'stopped'));
    await settle();
    expect(sent).toEqual([]);

    retarget({ requestId: 'req-2' });
    report.inspect(snapshotEvent('agent', 'ringing', { type: 'ring' }));
    await settle();
    expect(sent).toEqual([{ requestId: 'req-2', actor: 'agent', entries: [{ at: 42, event: { type: 'ring' }, state: 'ringing', context: {} }] }]);

    // A new socket (after a server restart, say) may face a server that has forgotten everything.
    sent.length = 0;
    report.setEnabled(false);
    report.setEnabled(true);
    await settle();
    expect(sent).toEqual([{ requestId: 'req-2', actor: 'agent', entries: [{ at: 42, event: { type: ATTACHED_EVENT }, state: 'ringing', context: {} }] }]);

    sent.length = 0;
    report.inspect(snapshotEvent('agent', 'connecting', { type: 'accept' }));
    report.setEnabled(false);
    await settle();
    expect(sent).toEqual([]);
    report.stop();
  });

  it('keeps an entry within the server’s byte limit by leaving out a context that is too large', () => {
    const context = { notes: Array.from({ length: 50 }, (_, i) => `${i}`.padEnd(190, 'x')) };
    const entry = reportEntry(1, { type: 'big' }, { value: 'connected', context });
    expect(entry).toEqual({ at: 1, event: { type: 'big' }, state: 'connected', context: '[too large to report]' });
    expect(JSON.stringify(reportEntry(1, { type: 'small' }, { value: 'x', context: { a: 1 } })).length).toBeLessThan(MAX_INSPECT_ENTRY_BYTES);
  });

  it('splits a long burst into messages of at most 50 entries', async () => {
    const { report, sent } = reporter();
    report.setEnabled(true);
    for (let i = 0; i < 120; i++) report.inspect(snapshotEvent('signaling', 'connecting', { type: 'send', n: i }));
    await settle();
    expect(sent.map((payload) => payload.entries.length)).toEqual([50, 50, 20]);
    expect(sent.flatMap((payload) => payload.entries.map((entry) => entry.event.n))).toEqual(Array.from({ length: 120 }, (_, i) => i));
  });
});

describe('combineInspectors', () => {
  it('hands every event to functions and observers alike, skipping the missing ones', () => {
    const seen: string[] = [];
    const inspect = combineInspectors((event) => seen.push(`fn:${event.type}`), undefined, { next: (event) => seen.push(`observer:${event.type}`) });
    inspect({ type: '@xstate.event' } as InspectionEvent);
    expect(seen).toEqual(['fn:@xstate.event', 'observer:@xstate.event']);
  });
});
