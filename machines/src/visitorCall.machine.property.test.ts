/**
 * No visitor is ever stuck: whatever the server, the network and the visitor do, a call or an end is
 * still reachable from where the visitor is.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createActor, SimulatedClock, type SnapshotFrom } from 'xstate';
import { reachability } from '../../test/support/reachability.ts';
import { visitorCallMachine, type VisitorCallEvent } from './visitorCall.machine.ts';

type Snapshot = SnapshotFrom<typeof visitorCallMachine>;
type Step = { kind: 'event'; event: VisitorCallEvent } | { kind: 'tick'; ms: number };

const alphabet: VisitorCallEvent[] = [
  { type: 'call.request' },
  { type: 'call.request', pool: 'sales' },
  { type: 'call.cancel' },
  { type: 'hangup' },
  { type: 'retry' },
  { type: 'mute.toggle' },
  { type: 'routing.searching' },
  { type: 'routing.ringing', agentName: 'Ada' },
  { type: 'routing.reassigning' },
  { type: 'routing.queued', position: 2 },
  { type: 'routing.ended', reason: 'no-agents' },
  { type: 'routing.ended', reason: 'reassign-limit' },
  { type: 'routing.ended', reason: 'cancelled' },
  { type: 'call.accepted', callId: 'call-1', agentName: 'Ada' },
  { type: 'peer.away' },
  { type: 'peer.back' },
  { type: 'call.ended', reason: 'agent-hangup' },
  { type: 'call.ended', reason: 'reconnect-timeout' },
  { type: 'server.resumed', call: { callId: 'call-1' }, request: null },
  { type: 'server.resumed', call: null, request: null },
  { type: 'server.resumed', call: null, request: { state: 'ringing', agentName: 'Grace' } },
  { type: 'server.resumed', call: null, request: { state: 'queued', position: 3 } },
  { type: 'server.resumed', call: null, request: { state: 'searching' } },
  { type: 'session.lost' },
  { type: 'ice.connected', at: 1_000 },
  { type: 'ice.disconnected', at: 2_000 },
  { type: 'ice.failed', at: 3_000 },
  { type: 'signal.up' },
  { type: 'signal.down' },
  { type: 'network.online' },
];

// The pure search cannot run the media child, so its two outcomes join the alphabet instead.
const mediaOutcomes: VisitorCallEvent[] = [
  { type: 'xstate.done.actor.media', output: { outcome: 'failed' } },
  { type: 'xstate.done.actor.media', output: { outcome: 'closed' } },
];

const search = reachability(visitorCallMachine, [...alphabet, ...mediaOutcomes], (snapshot) => snapshot.matches('ended') || snapshot.matches('inCall'));
const goalReachable = (snapshot: Snapshot, maxDepth?: number) => search.reachable(snapshot, maxDepth);

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...alphabet).map((event): Step => ({ kind: 'event', event })) },
  { weight: 1, arbitrary: fc.constantFrom(500, 2_000, 10_000, 20_000).map((ms): Step => ({ kind: 'tick', ms })) },
);

describe('visitorCall properties', () => {
  it('has a search that can tell a goal out of reach', () => {
    const idle = createActor(visitorCallMachine, { input: {} }).getSnapshot();
    // From idle, an end takes two steps (request, cancel): one is not enough.
    expect(goalReachable(idle, 1)).toBe(false);
    search.clear();
    expect(goalReachable(idle, 2)).toBe(true);
  });

  it('never strands the visitor: an end or a call stays reachable, and the state stays coherent', () => {
    fc.assert(
      fc.property(fc.array(stepArb, { maxLength: 30 }), (steps) => {
        const clock = new SimulatedClock();
        const actor = createActor(visitorCallMachine, { clock, input: {} });
        actor.start();
        for (const step of steps) {
          if (step.kind === 'tick') clock.increment(step.ms);
          else actor.send(step.event);
          const snapshot = actor.getSnapshot();
          expect(snapshot.status).toBe('active');
          expect(goalReachable(snapshot)).toBe(true);
          // The media child exists exactly while in call.
          expect(snapshot.children.media !== undefined).toBe(snapshot.matches('inCall'));
          expect(snapshot.context.endReason !== null).toBe(snapshot.matches('ended'));
          const media = snapshot.children.media?.getSnapshot();
          if (media) expect(media.context.attempts).toBeLessThanOrEqual(media.context.maxAttempts);
        }
        actor.stop();
      }),
      { numRuns: 300 },
    );
  });
});
