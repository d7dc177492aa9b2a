import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createActor, SimulatedClock, type SnapshotFrom } from 'xstate';
import { BASE } from '../../test/support/simulated-actor.ts';
import {
  callSessionMachine,
  defaultCallSessionTimings,
  type CallSessionEndReason,
  type CallSessionEvent,
  type LegStatus,
} from './callSession.machine.ts';
import type { CallLeg } from './protocol.ts';

const TIMEOUT = defaultCallSessionTimings.reconnectionTimeout;
const LEGS: CallLeg[] = ['agent', 'visitor'];

type LegReport = 'leg.socketLost' | 'leg.socketBack' | 'leg.mediaReconnecting' | 'leg.mediaConnected' | 'leg.mediaFailed';

type Step =
  | { kind: 'report'; type: LegReport; leg: CallLeg }
  | { kind: 'attempt'; leg: CallLeg; outcome: 'recovered' | 'failed' }
  | { kind: 'hangup'; by: CallLeg }
  | { kind: 'rearm' }
  | { kind: 'advance'; ms: number }
  | { kind: 'restart'; downMs: number };

const legArb = fc.constantFrom<CallLeg>(...LEGS);
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 12,
    arbitrary: fc.record({
      kind: fc.constant('report' as const),
      type: fc.constantFrom<LegReport>('leg.socketLost', 'leg.socketBack', 'leg.mediaReconnecting', 'leg.mediaConnected', 'leg.mediaFailed'),
      leg: legArb,
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('attempt' as const), leg: legArb, outcome: fc.constantFrom<'recovered' | 'failed'>('recovered', 'failed') }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('hangup' as const), by: legArb }) },
  { weight: 2, arbitrary: fc.constant<Step>({ kind: 'rearm' }) },
  { weight: 5, arbitrary: fc.oneof(fc.constant(TIMEOUT), fc.integer({ min: 0, max: TIMEOUT })).map((ms): Step => ({ kind: 'advance', ms })) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 20_000 }).map((downMs): Step => ({ kind: 'restart', downMs })) },
);

/** A SimulatedClock that also tells how many timers are pending. */
class CountingClock extends SimulatedClock {
  readonly pending = new Set<number>();
  override setTimeout(fn: (...args: unknown[]) => void, timeout: number): number {
    const id: number = super.setTimeout((...args: unknown[]) => {
      this.pending.delete(id);
      fn(...args);
    }, timeout);
    this.pending.add(id);
    return id;
  }
  override clearTimeout(id: number): void {
    this.pending.delete(id);
    super.clearTimeout(id);
  }
}

/** An independent statement of DESIGN §2, to compare the machine against. */
class Reference {
  legs: Record<CallLeg, LegStatus> = { agent: { socket: 'up', media: 'connected' }, visitor: { socket: 'up', media: 'connected' } };
  pausedAt: number | null = null;
  totalPauseMs = 0;
  pauses = 0;
  resumes = 0;
  disconnections = 0;
  attempts = 0;
  endReason: CallSessionEndReason | null = null;
  endedBy: CallLeg | null = null;
  endedAt: number | null = null;
  /** Whether the call ran out with only the agent gone: what routing reassigns the visitor on. */
  agentLostAtEnd = false;

  static up(s: LegStatus) {
    return s.socket === 'up' && s.media === 'connected';
  }
  private end(reason: CallSessionEndReason, at: number, by: CallLeg | null = null) {
    if (this.pausedAt !== null) this.totalPauseMs += Math.max(0, at - this.pausedAt);
    this.pausedAt = null;
    this.endReason = reason;
    this.endedBy = by;
    this.endedAt = at;
  }
  /** The pause ran out. Only the agent gone, with the visitor here, is the visitor to be handed on. */
  private timeout(at: number) {
    this.agentLostAtEnd = this.legs.agent.socket === 'down' && this.legs.visitor.socket === 'up';
    this.end('reconnect-timeout', at);
  }
  /** Time passes up to `now`: the pause timer fires at its deadline if it is due. */
  advanceTo(now: number) {
    if (this.endReason || this.pausedAt === null) return;
    const deadline = this.pausedAt + TIMEOUT;
    if (now >= deadline) this.timeout(deadline);
  }
  /** After a restart, a deadline that passed while the server was down fires when the timer is re-armed. */
  restartAt(now: number) {
    if (this.endReason || this.pausedAt === null) return;
    if (now >= this.pausedAt + TIMEOUT) this.timeout(now);
  }
  report(type: LegReport, leg: CallLeg, at: number) {
    if (this.endReason) return;
    const before = this.legs[leg];
    const after: LegStatus = { ...before };
    // Without its socket the server hears nothing of the leg's media, so the last report no longer holds.
    if (type === 'leg.socketLost') {
      after.socket = 'down';
      after.media = 'unreported';
    }
    if (type === 'leg.socketBack') after.socket = 'up';
    if (type === 'leg.mediaReconnecting') after.media = 'reconnecting';
    if (type === 'leg.mediaConnected') after.media = 'connected';
    if (type === 'leg.mediaFailed') after.media = 'failed';
    // While up, only a report that takes the leg down is news; a stray "back" changes nothing.
    if (Reference.up(before) && Reference.up(after) === false) this.disconnections++;
    // While paused, both peers hear of every report that leaves the pause going on.
    const wasPaused = this.pausedAt !== null;
    const noticed = { ...this.legs, [leg]: after };
    if (wasPaused && LEGS.some((l) => !Reference.up(noticed[l]))) this.pauses++;
    if (Reference.up(before) && (type === 'leg.socketBack' || type === 'leg.mediaConnected')) return;
    this.legs[leg] = after;
    const anyLost = LEGS.some((l) => !Reference.up(this.legs[l]));
    if (anyLost && this.pausedAt === null) {
      this.pausedAt = at;
      this.pauses++;
    }
    const bothHere = this.legs.agent.socket === 'up' && this.legs.visitor.socket === 'up';
    if (bothHere && (this.legs.agent.media === 'failed' || this.legs.visitor.media === 'failed')) return this.end('media-failed', at);
    if (!anyLost && this.pausedAt !== null) {
      this.totalPauseMs += Math.max(0, at - this.pausedAt);
      this.pausedAt = null;
      this.resumes++;
    }
  }
  hangup(by: CallLeg, at: number) {
    if (!this.endReason) this.end('hangup', at, by);
  }
}

type Snapshot = SnapshotFrom<typeof callSessionMachine>;

describe('callSession properties', () => {
  it('matches the reference model of DESIGN §2 after every step, with one timer at most', () => {
    fc.assert(
      fc.property(fc.array(stepArb, { maxLength: 40 }), (steps) => {
        const effects = { notifyPaused: 0, notifyResumed: 0 };
        const machine = callSessionMachine.provide({
          actions: {
            notifyPaused: () => void effects.notifyPaused++,
            notifyResumed: () => void effects.notifyResumed++,
          },
        });
        let clock = new CountingClock();
        let actor = createActor(machine, { clock }).start();
        // As routing starts it: invoked, then handed the call.
        actor.send({ type: 'call.start', callId: 'c', at: BASE });
        const ref = new Reference();
        const at = () => BASE + clock.now();

        for (const step of steps) {
          if (actor.getSnapshot().status === 'done') break;
          if (step.kind === 'advance') {
            const target = clock.now() + step.ms;
            ref.advanceTo(BASE + target);
            clock.increment(step.ms);
          } else if (step.kind === 'report') {
            ref.report(step.type, step.leg, at());
            actor.send({ type: step.type, leg: step.leg, at: at() } as CallSessionEvent);
          } else if (step.kind === 'attempt') {
            ref.attempts++;
            actor.send({ type: 'leg.attempt', leg: step.leg, at: at(), durationMs: 100, outcome: step.outcome });
          } else if (step.kind === 'hangup') {
            ref.hangup(step.by, at());
            actor.send({ type: 'call.hangup', by: step.by, at: at() });
          } else if (step.kind === 'rearm') {
            actor.send({ type: 'timers.rearm', at: at() });
          } else {
            const persisted = JSON.parse(JSON.stringify(actor.getPersistedSnapshot()));
            actor.stop();
            const now = clock.now() + step.downMs;
            ref.restartAt(BASE + now);
            clock = new CountingClock();
            clock.set(now);
            actor = createActor(machine, { clock, snapshot: persisted }).start();
            actor.send({ type: 'timers.rearm', at: at() });
            clock.increment(0);
          }

          const s = actor.getSnapshot() as Snapshot;
          const c = s.context;
          expect(c.endReason).toBe(ref.endReason);
          expect(c.totalPauseMs).toBe(ref.totalPauseMs);
          expect(c.pausedAt).toBe(ref.pausedAt);
          expect(c.disconnections).toHaveLength(ref.disconnections);
          expect(c.reconnectionAttempts).toHaveLength(ref.attempts);
          expect(clock.pending.size).toBeLessThanOrEqual(1);
          if (ref.endReason) {
            expect(s.value).toBe('ended');
            expect(c.endedAt).toBe(ref.endedAt);
            expect(s.status).toBe('done');
            expect(clock.pending.size).toBe(0);
            // The output is all routing hears of the call: it must say how the call ended and how it left the legs.
            expect(s.output).toEqual({
              reason: ref.endReason,
              endedBy: ref.endedBy,
              endedAt: ref.endedAt,
              legs: ref.legs,
              telemetry: { disconnections: c.disconnections, reconnectionAttempts: c.reconnectionAttempts, totalPauseMs: ref.totalPauseMs },
            });
            const onlyAgentGone = s.output!.legs.agent.socket === 'down' && s.output!.legs.visitor.socket === 'up';
            expect(s.output!.reason === 'reconnect-timeout' && onlyAgentGone).toBe(ref.agentLostAtEnd);
          } else {
            expect(c.legs).toEqual(ref.legs);
            // Live exactly while both legs are up, as the legs in context say.
            expect(Reference.up(ref.legs.agent) && Reference.up(ref.legs.visitor)).toBe(ref.pausedAt === null);
            expect(s.value).toEqual({ active: ref.pausedAt === null ? 'live' : 'paused' });
            // A paused session always has its timer running; a live one never does.
            expect(clock.pending.size).toBe(ref.pausedAt === null ? 0 : 1);
            expect(s.status).toBe('active');
          }
          // Restarts re-arm without telling the peers again; every change while paused is told.
          expect(effects.notifyPaused).toBe(ref.pauses);
          expect(effects.notifyResumed).toBe(ref.resumes);
          expect(JSON.parse(JSON.stringify(c))).toEqual(c);
        }
      }),
      { numRuns: 300 },
    );
  });
});
