/**
 * No visitor is ever stuck: whatever the server, the network and the visitor do, a call or an end is
 * still reachable from where the visitor is.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createActor, type SnapshotFrom } from 'xstate';
import { legEvents, mediaOutcomes, visitorServerEvents } from '../../test/support/call-leg-events.ts';
import { reachability } from '../../test/support/reachability.ts';
import { stepsArb, walkNeverStuck } from '../../test/support/steps.ts';
import { visitorCallMachine, type VisitorCallEvent } from './visitorCall.machine.ts';

type Snapshot = SnapshotFrom<typeof visitorCallMachine>;

const alphabet: VisitorCallEvent[] = [
  { type: 'call.request' },
  { type: 'call.request', pool: 'sales' },
  { type: 'call.cancel' },
  { type: 'hangup' },
  { type: 'retry' },
  { type: 'mute.toggle' },
  { type: 'routing.searching' },
  { type: 'routing.reassigning' },
  ...visitorServerEvents,
  ...legEvents(1_000),
];

const search = reachability(visitorCallMachine, [...alphabet, ...mediaOutcomes], (snapshot) => snapshot.matches('ended') || snapshot.matches('inCall'));
const goalReachable = (snapshot: Snapshot, maxDepth?: number) => search.reachable(snapshot, maxDepth);

const steps = stepsArb(alphabet, [500, 2_000, 10_000, 20_000]);

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
      fc.property(steps, (walked) => {
        const actor = walkNeverStuck(visitorCallMachine, {}, walked, goalReachable, (snapshot) => {
          // The media child exists exactly while in call.
          expect(snapshot.children.media !== undefined).toBe(snapshot.matches('inCall'));
          expect(snapshot.context.endReason !== null).toBe(snapshot.matches('ended'));
          const media = snapshot.children.media?.getSnapshot();
          if (media) expect(media.context.attempts).toBeLessThanOrEqual(media.context.maxAttempts);
        });
        actor.stop();
      }),
      { numRuns: 300 },
    );
  });
});
