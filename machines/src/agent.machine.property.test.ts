/**
 * No agent is ever stuck: whatever the server, the network and the agent do, `available` or `offline`
 * stays reachable, and `logout` always lands in `offline`.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createActor, SimulatedClock, transition, type SnapshotFrom } from 'xstate';
import { reachability } from '../../test/support/reachability.ts';
import { agentMachine, type AgentEvent } from './agent.machine.ts';

type Snapshot = SnapshotFrom<typeof agentMachine>;
type Step = { kind: 'event'; event: AgentEvent } | { kind: 'tick'; ms: number };

const alphabet: AgentEvent[] = [
  { type: 'login' },
  { type: 'logout' },
  { type: 'presence.away' },
  { type: 'presence.available' },
  { type: 'accept' },
  { type: 'reject' },
  { type: 'hangup' },
  { type: 'dismiss' },
  { type: 'ring', requestId: 'req-1', visitorName: 'Vera', at: 1_000 },
  { type: 'ring.cancelled' },
  { type: 'call.accepted', callId: 'call-1' },
  { type: 'peer.away' },
  { type: 'peer.back' },
  { type: 'call.ended', reason: 'visitor-hangup' },
  { type: 'call.ended', reason: 'reconnect-timeout' },
  { type: 'accept.refused', requestId: 'req-1' },
  { type: 'server.resumed', call: { callId: 'call-1' } },
  { type: 'server.resumed', call: null },
  { type: 'session.lost' },
  { type: 'ice.connected', at: 2_000 },
  { type: 'ice.disconnected', at: 3_000 },
  { type: 'ice.failed', at: 4_000 },
  { type: 'signal.up' },
  { type: 'signal.down' },
  { type: 'network.online' },
];

// The pure search cannot run the media child, so its two outcomes join the alphabet instead.
const mediaOutcomes: AgentEvent[] = [
  { type: 'xstate.done.actor.media', output: { outcome: 'failed' } },
  { type: 'xstate.done.actor.media', output: { outcome: 'closed' } },
];

// `logout` is left out of the search on purpose: it would make every state trivially good, and it
// is checked on its own.
const search = reachability(agentMachine, [...alphabet.filter((event) => event.type !== 'logout'), ...mediaOutcomes], (snapshot) => snapshot.matches('available') || snapshot.matches('offline'));
const goalReachable = (snapshot: Snapshot, maxDepth?: number) => search.reachable(snapshot, maxDepth);

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...alphabet).map((event): Step => ({ kind: 'event', event })) },
  { weight: 1, arbitrary: fc.constantFrom(500, 2_000, 10_000, 15_000, 20_000).map((ms): Step => ({ kind: 'tick', ms })) },
);

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
      fc.property(fc.array(stepArb, { maxLength: 30 }), (steps) => {
        const clock = new SimulatedClock();
        const actor = createActor(agentMachine, { clock, input: {} });
        actor.start();
        for (const step of steps) {
          if (step.kind === 'tick') clock.increment(step.ms);
          else actor.send(step.event);
          const snapshot = actor.getSnapshot();
          expect(snapshot.status).toBe('active');
          expect(goalReachable(snapshot)).toBe(true);
          const [afterLogout] = transition(agentMachine, snapshot, { type: 'logout' });
          expect(afterLogout.value).toBe('offline');
          expect(afterLogout.context).toMatchObject({ requestId: null, callId: null, ringExpiresAt: null });
          // A ring deadline exists exactly while ringing, and the media child exactly while in call.
          expect(snapshot.context.ringExpiresAt !== null).toBe(snapshot.matches('ringing'));
          expect(snapshot.children.media !== undefined).toBe(snapshot.matches('inCall'));
        }
        actor.send({ type: 'logout' });
        expect(actor.getSnapshot().value).toBe('offline');
        expect(actor.getSnapshot().children.media).toBeUndefined();
        actor.stop();
      }),
      { numRuns: 300 },
    );
  });
});
