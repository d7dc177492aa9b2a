import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { createActor, SimulatedClock } from 'xstate';
import { signalingMachine, type SignalingEmitted, type SignalingEvent } from './signaling.machine.ts';

type Step = { kind: 'event'; make: (at: number) => SignalingEvent } | { kind: 'advance'; ms: number };

const event = (make: (at: number) => SignalingEvent): Step => ({ kind: 'event', make });

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 2, arbitrary: fc.constant(event(() => ({ type: 'connect' }))) },
  { weight: 1, arbitrary: fc.constant(event(() => ({ type: 'disconnect' }))) },
  { weight: 4, arbitrary: fc.constant(event((at) => ({ type: 'socket.connected', at }))) },
  {
    weight: 5,
    arbitrary: fc
      .constantFrom('clean' as const, 'transport' as const, 'transport' as const, 'transport' as const)
      .map((reason) => event((at) => ({ type: 'socket.closed', reason, at }))),
  },
  // Unauthorized ends the run; keep it rare so runs get deep.
  { weight: 1, arbitrary: fc.constant(event(() => ({ type: 'socket.unauthorized' }))) },
  { weight: 2, arbitrary: fc.constant(event(() => ({ type: 'network.online' }))) },
  { weight: 2, arbitrary: fc.constant(event(() => ({ type: 'network.offline' }))) },
  { weight: 1, arbitrary: fc.constant(event(() => ({ type: 'session.ready', resumeToken: 'tok' }))) },
  { weight: 1, arbitrary: fc.constant(event((at) => ({ type: 'session.resumed', at }))) },
  { weight: 1, arbitrary: fc.constant(event((at) => ({ type: 'session.expired', at }))) },
  { weight: 1, arbitrary: fc.constant(event(() => ({ type: 'link.suspect' }))) },
  { weight: 1, arbitrary: fc.constant(event(() => ({ type: 'socket.alive' }))) },
  {
    weight: 4,
    arbitrary: fc
      .option(fc.integer({ min: 0, max: 60000 }), { nil: undefined })
      .map((ttlMs) => event((at) => ({ type: 'send', event: 'm', payload: at, at, ...(ttlMs === undefined ? {} : { ttlMs }) }))),
  },
  { weight: 8, arbitrary: fc.integer({ min: 0, max: 40000 }).map((ms): Step => ({ kind: 'advance', ms })) },
);

const inputArb = fc.record({
  timings: fc
    .record({
      initialDelay: fc.integer({ min: 1, max: 3000 }),
      extra: fc.integer({ min: 0, max: 40000 }),
      maxJitter: fc.integer({ min: 0, max: 1000 }),
    })
    .map(({ initialDelay, extra, maxJitter }) => ({ initialDelay, maxDelay: initialDelay + extra, maxJitter })),
  maxAttempts: fc.option(fc.integer({ min: 1, max: 5 }), { nil: null }),
  outboxLimit: fc.integer({ min: 0, max: 5 }),
  randomSeed: fc.integer(),
  resumeToken: fc.option(fc.constant('initial-token'), { nil: null }),
});

describe('signaling properties', () => {
  it('retry delays stay in range, the outbox within its limit, and nothing reconnects after disconnect or a clean close until connect', () => {
    // Events keep arriving after the final `unauthorized` state on purpose; XState warns about each one.
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      fc.assert(
        fc.property(inputArb, fc.array(stepArb, { maxLength: 60, size: 'max' }), (input, steps) => {
          const clock = new SimulatedClock();
          let opened = 0;
          const actor = createActor(signalingMachine.provide({ actions: { openSocket: () => void opened++ } }), {
            clock,
            input,
          });
          const emitted: SignalingEmitted[] = [];
          actor.on('*', (e) => void emitted.push(e));
          actor.start();

          const { initialDelay, maxDelay, maxJitter } = input.timings;
          // True from entering `disconnected` until the next `connect`: no socket may be opened meanwhile.
          let stoppedOnPurpose = false;
          let finished = false;

          for (const step of steps) {
            const before = actor.getSnapshot();
            const openedBefore = opened;
            const emittedBefore = emitted.length;
            let sent: SignalingEvent | null = null;
            if (step.kind === 'advance') clock.increment(step.ms);
            else {
              sent = step.make(clock.now());
              actor.send(sent);
            }
            const snap = actor.getSnapshot();
            const ctx = snap.context;

            if (finished) {
              expect(snap.value).toBe('unauthorized');
              expect(opened).toBe(openedBefore);
              continue;
            }

            for (const e of emitted.slice(emittedBefore)) {
              if (e.type !== 'reconnect.scheduled') continue;
              const base = Math.min(initialDelay * 2 ** (e.attempt - 1), maxDelay);
              expect(e.delayMs).toBeGreaterThanOrEqual(base);
              expect(e.delayMs).toBeLessThan(base + Math.max(1, maxJitter));
              if (maxJitter === 0) expect(e.delayMs).toBe(base);
            }

            expect(ctx.outbox.length).toBeLessThanOrEqual(input.outboxLimit);
            if (ctx.maxAttempts !== null) expect(ctx.attempts).toBeLessThanOrEqual(ctx.maxAttempts);
            if (snap.matches('connected')) expect(ctx.attempts).toBe(0);
            if (snap.matches({ connected: { ready: 'trusted' } })) expect(ctx.outbox).toEqual([]);
            expect(JSON.parse(JSON.stringify(ctx))).toEqual(ctx);

            if (sent?.type === 'connect') stoppedOnPurpose = false;
            const socketExists =
              before.matches('connecting') || before.matches('connected') || before.matches({ reconnecting: 'connecting' });
            const userStop = sent?.type === 'disconnect' && !before.matches('idle');
            const cleanClose = sent?.type === 'socket.closed' && sent.reason === 'clean' && socketExists;
            if (userStop || cleanClose) expect(snap.value).toBe('disconnected');
            if (stoppedOnPurpose) {
              expect(opened).toBe(openedBefore);
              expect(emitted.length).toBe(emittedBefore);
              expect(snap.value).toBe('disconnected');
            }
            if (snap.matches('disconnected')) {
              // Counting from here covers both disconnect() and a clean close (and giving up).
              stoppedOnPurpose = true;
            }
            if (snap.status === 'done') finished = true;
          }
          actor.stop();
        }),
        { numRuns: 300 },
      );
    } finally {
      warn.mockRestore();
    }
  });

  it('flushes every queued, unexpired message exactly once and in order', () => {
    fc.assert(
      fc.property(fc.array(stepArb, { maxLength: 60, size: 'max' }), (steps) => {
        const clock = new SimulatedClock();
        const transmitted: unknown[] = [];
        const expiresAt: (number | null)[] = [];
        const actor = createActor(
          signalingMachine.provide({
            actions: {
              transmit: (_: unknown, params: { payload: unknown }) => {
                const expiry = expiresAt[params.payload as number];
                // Every event carries the clock's time, so the flush happens at clock.now().
                if (expiry !== null && expiry !== undefined) expect(expiry).toBeGreaterThanOrEqual(clock.now());
                transmitted.push(params.payload);
              },
            },
          }),
          { clock, input: { outboxLimit: 1000, timings: { maxJitter: 0 } } },
        );
        actor.start();
        const sentAt: number[] = [];
        for (const step of steps) {
          if (actor.getSnapshot().status === 'done') break;
          if (step.kind === 'advance') clock.increment(step.ms);
          else {
            const e = step.make(clock.now());
            // Unique payloads so order and duplicates are visible.
            if (e.type === 'send') {
              e.payload = sentAt.length;
              sentAt.push(sentAt.length);
              expiresAt.push(e.ttlMs === undefined ? null : e.at + e.ttlMs);
            }
            actor.send(e);
          }
        }
        const { outbox, outboxExpired } = actor.getSnapshot().context;
        // Transmitted payloads are strictly increasing: in order, never twice.
        for (let i = 1; i < transmitted.length; i++) expect(transmitted[i]).toBeGreaterThan(transmitted[i - 1] as number);
        // Every message was transmitted, expired, or is still waiting.
        expect(transmitted.length + outboxExpired + outbox.length).toBe(sentAt.length);
        actor.stop();
      }),
      { numRuns: 300 },
    );
  });
});
