/**
 * No agent is ever stuck: whatever the server, the network and the agent do, `available` or `offline`
 * stays reachable, and `logout` always lands in `offline`.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createActor, SimulatedClock, transition, type SnapshotFrom } from 'xstate';
import { agentServerEvents, legEvents, mediaOutcomes } from '../../test/support/call-leg-events.ts';
import { reachability } from '../../test/support/reachability.ts';
import { stepsArb, walkNeverStuck } from '../../test/support/steps.ts';
import { agentMachine, type AgentEvent } from './agent.machine.ts';

type Snapshot = SnapshotFrom<typeof agentMachine>;

const alphabet: AgentEvent[] = [
  { type: 'login' },
  { type: 'logout' },
  { type: 'presence.away' },
  { type: 'presence.available' },
  { type: 'accept' },
  { type: 'reject' },
  { type: 'hangup' },
  { type: 'dismiss' },
  { type: 'ring.cancelled' },
  ...agentServerEvents,
  ...legEvents(2_000),
];

// `logout` is left out of the search on purpose: it would make every state trivially good, and it
// is checked on its own.
const search = reachability(agentMachine, [...alphabet.filter((event) => event.type !== 'logout'), ...mediaOutcomes], (snapshot) => snapshot.matches('available') || snapshot.matches('offline'));
const goalReachable = (snapshot: Snapshot, maxDepth?: number) => search.reachable(snapshot, maxDepth);

const steps = stepsArb(alphabet, [500, 2_000, 10_000, 15_000, 20_000]);

describe('agent properties', () => {
  it('has a search that can tell a goal out of reach', () => {
    const clock = new SimulatedClock();
    const actor = createActor(agentMachine, { clock, input: {} }).start();
    actor.send({ type: 'login' });
    actor.send({ type: 'ring', requestId: 'req-1', visitorName: 'Vera', at: 1_000 });
    actor.send({ type: 'accept' });
    actor.send({ type: 'ice.connected', at: 2_000 });
    actor.send({ type: 'ice.failed', at: 3_000 });
    // From inCall, back to available takes one step (hangup), but not zero.
    expect(goalReachable(actor.getSnapshot(), 0)).toBe(false);
    search.clear();
    expect(goalReachable(actor.getSnapshot(), 1)).toBe(true);
    actor.stop();
  });

  it('never strands the agent, and logout always lands in offline', () => {
    fc.assert(
      fc.property(steps, (walked) => {
        const actor = walkNeverStuck(agentMachine, {}, walked, goalReachable, (snapshot) => {
          const [afterLogout] = transition(agentMachine, snapshot, { type: 'logout' });
          expect(afterLogout.value).toBe('offline');
          expect(afterLogout.context).toMatchObject({ requestId: null, callId: null, ringExpiresAt: null });
          // A ring deadline exists exactly while ringing, and the media child exactly while in call.
          expect(snapshot.context.ringExpiresAt !== null).toBe(snapshot.matches('ringing'));
          expect(snapshot.children.media !== undefined).toBe(snapshot.matches('inCall'));
        });
        actor.send({ type: 'logout' });
        expect(actor.getSnapshot().value).toBe('offline');
        expect(actor.getSnapshot().children.media).toBeUndefined();
        actor.stop();
      }),
      { numRuns: 300 },
    );
  });
});
