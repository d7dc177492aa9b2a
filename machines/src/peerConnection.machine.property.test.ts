import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { createActor, SimulatedClock } from 'xstate';
import {
  defaultPeerConnectionTimings,
  peerConnectionMachine,
  type PeerConnectionEmitted,
  type PeerConnectionEvent,
  type PeerRole,
} from './peerConnection.machine.ts';

type Step = { kind: 'event'; event: Omit<PeerConnectionEvent, 'at'> & { type: PeerConnectionEvent['type'] } } | { kind: 'advance'; ms: number };

const eventTypes: PeerConnectionEvent['type'][] = [
  'ice.connected',
  'ice.disconnected',
  'ice.failed',
  'signal.up',
  'signal.down',
  'network.online',
  'network.offline',
  'peer.away',
  'peer.back',
  'restart.requested',
  'media.flowing',
  'media.stalled',
  'hangup',
];

const T = defaultPeerConnectionTimings;

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  // Hang-ups end the run; keep them rare so long sequences explore the reconnect logic.
  { weight: 12, arbitrary: fc.constantFrom(...eventTypes.filter((t) => t !== 'hangup')).map((type) => ({ kind: 'event' as const, event: { type } })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'event' as const, event: { type: 'hangup' as const } }) },
  {
    weight: 8,
    arbitrary: fc
      .oneof(
        fc.integer({ min: 0, max: T.connectTimeout + 1000 }),
        fc.constantFrom(T.disconnectedGrace, T.attemptTimeout, T.connectTimeout, T.mediaProbeInterval, T.mediaProofTimeout, T.mediaWatchInterval, T.mediaStallTimeout),
      )
      .map((ms) => ({ kind: 'advance' as const, ms })),
  },
);

function withTime(event: Step & { kind: 'event' }, now: number): PeerConnectionEvent {
  const { type } = event.event;
  return (type === 'ice.connected' || type === 'ice.disconnected' || type === 'ice.failed'
    ? { type, at: now }
    : { type }) as PeerConnectionEvent;
}

describe('peerConnection properties', () => {
  it('attempts stay within maxAttempts, final states are never left, and failed needs exactly maxAttempts timed-out attempts', () => {
    // Events keep arriving after a final state on purpose; XState warns about each one.
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
    fc.assert(
      fc.property(
        fc.constantFrom<PeerRole>('offerer', 'answerer'),
        fc.integer({ min: 1, max: 4 }),
        fc.boolean(),
        fc.array(stepArb, { maxLength: 60, size: 'max' }),
        (role, maxAttempts, signalingUp, steps) => {
          const clock = new SimulatedClock();
          const actor = createActor(peerConnectionMachine, { clock, input: { role, maxAttempts, signalingUp } });
          const emitted: PeerConnectionEmitted[] = [];
          actor.on('*', (e) => void emitted.push(e));
          actor.start();

          let failedAttemptsThisOutage = 0;
          let leftConnecting = false;
          let lastSignal = signalingUp;
          let lastPeer = true;
          let lastOnline = true;
          let finalValue: unknown = null;

          for (const step of steps) {
            const before = actor.getSnapshot();
            const emittedBefore = emitted.length;
            if (step.kind === 'advance') clock.increment(step.ms);
            else {
              const event = withTime(step, clock.now());
              if (event.type === 'signal.up') lastSignal = true;
              if (event.type === 'signal.down') lastSignal = false;
              if (event.type === 'peer.away') lastPeer = false;
              // A restart request can only come from a peer with a socket.
              if (event.type === 'peer.back' || event.type === 'restart.requested') lastPeer = true;
              if (event.type === 'network.offline') lastOnline = false;
              if (event.type === 'network.online') lastOnline = true;
              actor.send(event);
            }
            const snap = actor.getSnapshot();
            const ctx = snap.context;

            if (finalValue !== null) {
              expect(snap.value).toEqual(finalValue);
              expect(emitted.length).toBe(emittedBefore);
              continue;
            }
            if (!before.matches('connecting')) leftConnecting = true;

            expect(ctx.attempts).toBeGreaterThanOrEqual(0);
            expect(ctx.attempts).toBeLessThanOrEqual(ctx.maxAttempts);
            expect(ctx.maxAttempts).toBe(maxAttempts);
            expect(JSON.parse(JSON.stringify(ctx))).toEqual(ctx);
            if (snap.status === 'active') {
              expect(ctx.signalingUp, 'signalingUp').toBe(lastSignal);
              expect(ctx.online, 'online').toBe(lastOnline);
              expect(ctx.peerReachable, 'peerReachable').toBe(lastPeer);
            }
            if (snap.matches({ reconnecting: 'attempting' })) {
              // An attempt needs a network, signaling and a peer to reach; without any of them it is lost.
              expect(ctx.signalingUp, 'attempting with signaling down').toBe(true);
              expect(ctx.online, 'attempting offline').toBe(true);
              expect(ctx.peerReachable, 'attempting with the peer away').toBe(true);
              expect(ctx.attempts).toBeGreaterThanOrEqual(1);
            }
            if (snap.matches('connected') || snap.matches('connecting')) expect(ctx.attempts).toBe(0);

            for (const e of emitted.slice(emittedBefore)) {
              if (e.type === 'attempt.failed') failedAttemptsThisOutage++;
              if (e.type === 'recovered') failedAttemptsThisOutage = 0;
              if (e.type === 'failed') {
                if (leftConnecting || failedAttemptsThisOutage > 0) {
                  expect(failedAttemptsThisOutage).toBe(maxAttempts);
                  expect(e.attempts).toBe(maxAttempts);
                } else {
                  expect(e.attempts).toBe(0);
                }
              }
            }
            if (snap.matches('failed')) expect(emitted.at(-1)?.type).toBe('failed');
            if (snap.status === 'done') finalValue = snap.value;
          }
          actor.stop();
        },
      ),
      { numRuns: 300 },
    );
    } finally {
      warn.mockRestore();
    }
  });

  it('the answerer never sends a restart offer and the offerer sends exactly one per attempt', () => {
    fc.assert(
      fc.property(fc.constantFrom<PeerRole>('offerer', 'answerer'), fc.array(stepArb, { maxLength: 40, size: 'max' }), (role, steps) => {
        const clock = new SimulatedClock();
        let offers = 0;
        let restarts = 0;
        const actor = createActor(
          peerConnectionMachine.provide({
            actions: { sendRestartOffer: () => void offers++, restartIce: () => void restarts++ },
          }),
          { clock, input: { role } },
        );
        actor.start();
        for (const step of steps) {
          if (actor.getSnapshot().status === 'done') break;
          if (step.kind === 'advance') clock.increment(step.ms);
          else actor.send(withTime(step, clock.now()));
        }
        expect(offers).toBe(role === 'offerer' ? restarts : 0);
        actor.stop();
      }),
      { numRuns: 300 },
    );
  });
});
