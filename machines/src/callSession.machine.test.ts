import { describe, expect, it, vi } from 'vitest';
import { createActor, SimulatedClock } from 'xstate';
import { BASE } from '../../test/support/simulated-actor.ts';
import {
  callSessionMachine,
  defaultCallSessionTimings,
  type CallSessionContext,
  type CallSessionEvent,
  type CallStart,
} from './callSession.machine.ts';
import type { CallLeg } from './protocol.ts';

const TIMEOUT = defaultCallSessionTimings.reconnectionTimeout;

const EFFECTS = ['notifyPaused', 'notifyResumed'] as const;
type Effect = (typeof EFFECTS)[number];

/** A session as routing starts one: invoked, then handed the call with `call.start` (none for a restored one). */
function start(patch: Partial<Omit<CallStart, 'type'>> | null = {}, snapshot?: unknown) {
  const effects: Effect[] = [];
  const spies = Object.fromEntries(
    EFFECTS.map((name) => [name, vi.fn((_: { context: CallSessionContext }) => void effects.push(name))]),
  ) as Record<Effect, ReturnType<typeof vi.fn>>;
  const clock = new SimulatedClock();
  const machine = callSessionMachine.provide({ actions: spies as never });
  const actor = createActor(machine, snapshot ? { clock, snapshot: snapshot as never } : { clock });
  actor.start();
  if (patch && !snapshot) actor.send({ type: 'call.start', callId: 'call-1', at: BASE, ...patch });
  const at = () => BASE + clock.now();
  type LegEventType = Exclude<CallSessionEvent['type'], 'leg.attempt' | 'call.hangup' | 'timers.rearm'>;
  const leg = (type: LegEventType, which: CallLeg) => actor.send({ type, leg: which, at: at() } as CallSessionEvent);
  return { actor, clock, spies, effects, at, leg };
}
type Run = ReturnType<typeof start>;

const value = (run: Run) => run.actor.getSnapshot().value;
const context = (run: Run) => run.actor.getSnapshot().context;
const session = (run: Run) => (value(run) as { active?: string }).active;
/** The session and whether each leg is up, as the state and `context.legs` tell them together. */
const legsAndSession = (run: Run) => {
  const { legs } = context(run);
  const up = (leg: CallLeg) => (legs[leg].socket === 'up' && legs[leg].media === 'connected' ? 'up' : 'lost');
  return { active: { agent: up('agent'), visitor: up('visitor'), session: session(run) } };
};
const output = (run: Run) => run.actor.getSnapshot().output;

/** The paused call is still paused a millisecond short of `ms` from now, and has ended at `ms`. */
function expectEndIn(run: Run, ms: number) {
  run.clock.increment(ms - 1);
  expect(session(run)).toBe('paused');
  run.clock.increment(1);
  expect(value(run)).toBe('ended');
}

/** A started call that heard these leg reports in turn, the clock moved on by each number between them. */
function played(...steps: (Parameters<Run['leg']> | number)[]): Run {
  const run = start();
  for (const step of steps) {
    if (typeof step === 'number') run.clock.increment(step);
    else run.leg(...step);
  }
  return run;
}

/** A started call that heard these leg reports, then sat out the whole reconnection timeout: it must have ended on it. */
function timedOutAfter(...reports: Parameters<Run['leg']>[]): Run {
  const run = played(...reports, TIMEOUT);
  expect(context(run).endReason).toBe('reconnect-timeout');
  return run;
}

describe('callSession: the start', () => {
  it('waits in starting for routing to hand over the call, and hears nothing else until then', () => {
    const run = start(null);
    expect(value(run)).toBe('starting');
    expect(context(run)).toMatchObject({ callId: '', timings: defaultCallSessionTimings, startedAt: 0 });
    const before = run.actor.getSnapshot();
    run.leg('leg.socketLost', 'agent');
    run.actor.send({ type: 'leg.attempt', leg: 'agent', at: BASE, durationMs: 5, outcome: 'failed' });
    run.actor.send({ type: 'timers.rearm', at: BASE });
    run.actor.send({ type: 'call.hangup', by: 'visitor', at: BASE });
    expect(value(run)).toBe('starting');
    expect(context(run)).toEqual(before.context);
    expect(run.effects).toEqual([]);
  });

  it('call.start names the call, sets its timings over the defaults, and starts it live at its `at`', () => {
    const run = start(null);
    run.clock.increment(700);
    run.actor.send({ type: 'call.start', callId: 'call-5', timings: { reconnectionTimeout: 4_000 }, at: BASE + 650 });
    expect(legsAndSession(run)).toEqual({ active: { agent: 'up', visitor: 'up', session: 'live' } });
    expect(context(run)).toMatchObject({ callId: 'call-5', timings: { reconnectionTimeout: 4_000 }, startedAt: BASE + 650 });
    // A second start is not a new call.
    run.actor.send({ type: 'call.start', callId: 'call-6', at: BASE + 900 });
    expect(context(run)).toMatchObject({ callId: 'call-5', startedAt: BASE + 650 });
  });
});

describe('callSession: legs', () => {
  it('starts live with both legs up, and the defaults from DESIGN', () => {
    const run = start();
    expect(legsAndSession(run)).toEqual({ active: { agent: 'up', visitor: 'up', session: 'live' } });
    expect(context(run)).toMatchObject({
      callId: 'call-1',
      timings: { reconnectionTimeout: 30_000 },
      legs: { agent: { socket: 'up', media: 'connected' }, visitor: { socket: 'up', media: 'connected' } },
      disconnections: [],
      reconnectionAttempts: [],
      totalPauseMs: 0,
      pausedAt: null,
      endReason: null,
    });
    expect(context(start({ timings: { reconnectionTimeout: 45_000 } })).timings.reconnectionTimeout).toBe(45_000);
    expect(context(start({ timings: {} })).timings.reconnectionTimeout).toBe(30_000);
  });

  it("a socket drop loses the leg and pauses the session, telling both peers once", () => {
    const run = start();
    run.clock.increment(500);
    run.leg('leg.socketLost', 'visitor');
    expect(legsAndSession(run)).toEqual({ active: { agent: 'up', visitor: 'lost', session: 'paused' } });
    expect(run.effects).toEqual(['notifyPaused']);
    expect(context(run).pausedAt).toBe(BASE + 500);
    expect(context(run).disconnections).toEqual([{ leg: 'visitor', at: BASE + 500, cause: 'socket' }]);
  });

  it('media reconnecting loses the leg even while its socket is up', () => {
    const run = start();
    run.leg('leg.mediaReconnecting', 'agent');
    expect(legsAndSession(run)).toEqual({ active: { agent: 'lost', visitor: 'up', session: 'paused' } });
    expect(context(run).disconnections).toEqual([{ leg: 'agent', at: BASE, cause: 'media' }]);
  });

  it('a leg is up again only when its socket is back and its media reports connected', () => {
    const run = start();
    run.leg('leg.mediaReconnecting', 'agent');
    run.leg('leg.socketLost', 'agent');
    run.leg('leg.socketBack', 'agent');
    expect(session(run)).toBe('paused');
    run.leg('leg.socketLost', 'agent');
    run.leg('leg.mediaConnected', 'agent');
    expect(session(run)).toBe('paused');
    run.leg('leg.socketBack', 'agent');
    expect(legsAndSession(run)).toEqual({ active: { agent: 'up', visitor: 'up', session: 'live' } });
    // A loss while already lost is the same disconnection.
    expect(context(run).disconnections).toHaveLength(1);
  });

  it('a socket drop leaves the media unreported: the socket back alone keeps the call paused, the report resumes it', () => {
    const run = start();
    run.leg('leg.socketLost', 'agent');
    expect(context(run).legs.agent).toEqual({ socket: 'down', media: 'unreported' });
    run.clock.increment(2_000);
    run.leg('leg.socketBack', 'agent');
    expect(legsAndSession(run)).toEqual({ active: { agent: 'lost', visitor: 'up', session: 'paused' } });
    expect(context(run).legs.agent).toEqual({ socket: 'up', media: 'unreported' });
    // Told at the start, and again when the socket came back: the visitor's screen follows the legs.
    expect(run.effects).toEqual(['notifyPaused', 'notifyPaused']);
    run.clock.increment(500);
    run.leg('leg.mediaConnected', 'agent');
    expect(legsAndSession(run)).toEqual({ active: { agent: 'up', visitor: 'up', session: 'live' } });
    expect(run.effects).toEqual(['notifyPaused', 'notifyPaused', 'notifyResumed']);
    expect(context(run)).toMatchObject({ totalPauseMs: 2_500, pausedAt: null });
  });

  it('reports about one leg never touch the other', () => {
    const run = start();
    run.leg('leg.socketLost', 'visitor');
    run.leg('leg.mediaFailed', 'visitor');
    run.leg('leg.socketBack', 'agent');
    run.leg('leg.mediaConnected', 'agent');
    expect(legsAndSession(run)).toEqual({ active: { agent: 'up', visitor: 'lost', session: 'paused' } });
    expect(context(run).legs).toEqual({
      agent: { socket: 'up', media: 'connected' },
      visitor: { socket: 'down', media: 'failed' },
    });
  });
});

describe('callSession: pause and resume', () => {
  it('stays paused while any leg is lost, and resumes when both are back', () => {
    const run = start();
    run.leg('leg.socketLost', 'agent');
    run.clock.increment(1_000);
    run.leg('leg.mediaReconnecting', 'visitor');
    // The second leg lost is told too, not only the first.
    expect(run.effects).toEqual(['notifyPaused', 'notifyPaused']);
    run.clock.increment(1_000);
    run.leg('leg.socketBack', 'agent');
    run.leg('leg.mediaConnected', 'agent');
    expect(session(run)).toBe('paused');
    expect(run.effects).toEqual(['notifyPaused', 'notifyPaused', 'notifyPaused', 'notifyPaused']);
    run.clock.increment(1_000);
    run.leg('leg.mediaConnected', 'visitor');
    expect(session(run)).toBe('live');
    expect(run.effects).toEqual(['notifyPaused', 'notifyPaused', 'notifyPaused', 'notifyPaused', 'notifyResumed']);
    expect(context(run).totalPauseMs).toBe(3_000);
  });

  it('accumulates totalPauseMs over several pauses, from the events’ times', () => {
    const run = start();
    run.actor.send({ type: 'leg.socketLost', leg: 'agent', at: BASE + 10_000 });
    run.actor.send({ type: 'leg.socketBack', leg: 'agent', at: BASE + 13_900 });
    run.actor.send({ type: 'leg.mediaConnected', leg: 'agent', at: BASE + 14_000 });
    run.actor.send({ type: 'leg.mediaReconnecting', leg: 'visitor', at: BASE + 20_000 });
    run.actor.send({ type: 'leg.mediaConnected', leg: 'visitor', at: BASE + 20_250 });
    expect(context(run).totalPauseMs).toBe(4_250);
    expect(context(run).disconnections).toEqual([
      { leg: 'agent', at: BASE + 10_000, cause: 'socket' },
      { leg: 'visitor', at: BASE + 20_000, cause: 'media' },
    ]);
  });

  it('one timer, measured from the start of the pause: a second lost leg does not restart it', () => {
    const run = played(['leg.socketLost', 'visitor'], TIMEOUT - 5_000, ['leg.socketLost', 'agent'], ['leg.socketBack', 'visitor']);
    expectEndIn(run, 5_000);
  });

  it('a resume cancels the timer, and the next pause gets the full time again', () => {
    const run = played(
      ['leg.socketLost', 'visitor'],
      TIMEOUT - 1,
      ['leg.socketBack', 'visitor'],
      ['leg.mediaConnected', 'visitor'],
      ['leg.mediaReconnecting', 'visitor'],
    );
    expectEndIn(run, TIMEOUT);
  });
});

describe('callSession: the end of a call', () => {
  it('timeout with the agent’s leg lost ends with reconnect-timeout, and the output shows only the agent gone', () => {
    const run = start();
    run.leg('leg.socketLost', 'agent');
    expectEndIn(run, TIMEOUT);
    expect(run.actor.getSnapshot().status).toBe('done');
    expect(context(run)).toMatchObject({ endReason: 'reconnect-timeout', endedBy: null, endedAt: BASE + TIMEOUT, totalPauseMs: TIMEOUT });
    // What routing reads to find the visitor another agent.
    expect(output(run)).toMatchObject({
      reason: 'reconnect-timeout',
      legs: { agent: { socket: 'down' }, visitor: { socket: 'up', media: 'connected' } },
    });
    expect(run.effects).toEqual(['notifyPaused']);
  });

  it('timeout with the visitor’s socket gone ends with reconnect-timeout and the visitor gone in the output, whatever the agent’s leg', () => {
    for (const agentLoss of ['leg.mediaReconnecting', 'leg.mediaFailed', 'leg.socketLost'] as const) {
      const run = timedOutAfter(['leg.socketLost', 'visitor'], [agentLoss, 'agent']);
      expect(output(run)?.legs.visitor.socket).toBe('down');
    }
  });

  it('timeout with only the agent’s socket gone leaves the visitor’s socket up in the output', () => {
    const run = timedOutAfter(['leg.socketLost', 'agent'], ['leg.mediaReconnecting', 'visitor']);
    expect(output(run)?.legs).toEqual({
      agent: { socket: 'down', media: 'unreported' },
      visitor: { socket: 'up', media: 'reconnecting' },
    });
  });

  it('timeout with both sockets up and the path down ends with reconnect-timeout', () => {
    const run = timedOutAfter(['leg.mediaReconnecting', 'agent'], ['leg.mediaReconnecting', 'visitor']);
    expect(output(run)?.legs).toEqual({
      agent: { socket: 'up', media: 'reconnecting' },
      visitor: { socket: 'up', media: 'reconnecting' },
    });
  });

  it('timeout with only the visitor’s leg lost ends with reconnect-timeout', () => {
    const run = timedOutAfter(
      ['leg.socketLost', 'agent'],
      ['leg.mediaReconnecting', 'visitor'],
      ['leg.socketBack', 'agent'],
      ['leg.mediaConnected', 'agent'],
    );
    expect(output(run)?.legs.agent).toEqual({ socket: 'up', media: 'connected' });
    expect(run.actor.getSnapshot().status).toBe('done');
  });

  it('one side’s media failed while both sockets are up ends the call at once with media-failed', () => {
    const run = start();
    run.leg('leg.mediaReconnecting', 'visitor');
    expect(session(run)).toBe('paused');
    run.clock.increment(3_000);
    run.leg('leg.mediaFailed', 'agent');
    expect(value(run)).toBe('ended');
    expect(context(run)).toMatchObject({ endReason: 'media-failed', endedAt: BASE + 3_000, totalPauseMs: 3_000, pausedAt: null });
    expect(output(run)).toMatchObject({ reason: 'media-failed', endedAt: BASE + 3_000 });
    expect(run.actor.getSnapshot().status).toBe('done');
  });

  it('a failed side waits while the other socket is gone, and ends the call as media-failed once it is back', () => {
    const run = start();
    run.leg('leg.socketLost', 'visitor');
    run.leg('leg.mediaFailed', 'agent');
    expect(session(run)).toBe('paused');
    run.clock.increment(2_000);
    run.leg('leg.socketBack', 'visitor');
    expect(value(run)).toBe('ended');
    expect(context(run).endReason).toBe('media-failed');
  });

  it.each(['agent', 'visitor'] as const)('call.hangup by the %s ends the call, live or paused', (by) => {
    const live = start();
    live.actor.send({ type: 'call.hangup', by, at: BASE + 7 });
    expect(value(live)).toBe('ended');
    expect(context(live)).toMatchObject({ endReason: 'hangup', endedBy: by, endedAt: BASE + 7 });
    expect(live.actor.getSnapshot().status).toBe('done');
    expect(live.effects).toEqual([]);

    const paused = start();
    paused.leg('leg.socketLost', 'agent');
    paused.actor.send({ type: 'call.hangup', by, at: BASE + 1_500 });
    expect(context(paused)).toMatchObject({ endReason: 'hangup', endedBy: by, totalPauseMs: 1_500, pausedAt: null });
    const ended = paused.actor.getSnapshot();
    // The pause timer went with the call: nothing happens when it would have run out.
    paused.clock.increment(TIMEOUT);
    expect(paused.actor.getSnapshot().context).toEqual(ended.context);
    expect(output(paused)).toMatchObject({ reason: 'hangup', endedBy: by, endedAt: BASE + 1_500 });
  });
});

describe('callSession: the output', () => {
  it('is what the call ended with: why, who, when, how each leg was left, and the telemetry', () => {
    const run = start();
    run.clock.increment(1_000);
    run.leg('leg.socketLost', 'visitor');
    run.actor.send({ type: 'leg.attempt', leg: 'agent', at: run.at(), durationMs: 40, outcome: 'recovered' });
    run.clock.increment(2_000);
    run.leg('leg.socketBack', 'visitor');
    run.leg('leg.mediaConnected', 'visitor');
    run.clock.increment(500);
    run.leg('leg.mediaReconnecting', 'agent');
    run.clock.increment(250);
    run.actor.send({ type: 'call.hangup', by: 'agent', at: run.at() });
    expect(output(run)).toEqual({
      reason: 'hangup',
      endedBy: 'agent',
      endedAt: BASE + 3_750,
      legs: { agent: { socket: 'up', media: 'reconnecting' }, visitor: { socket: 'up', media: 'connected' } },
      telemetry: {
        disconnections: [
          { leg: 'visitor', at: BASE + 1_000, cause: 'socket' },
          { leg: 'agent', at: BASE + 3_500, cause: 'media' },
        ],
        reconnectionAttempts: [{ leg: 'agent', at: BASE + 1_000, durationMs: 40, outcome: 'recovered' }],
        totalPauseMs: 2_250,
      },
    });
    expect(JSON.parse(JSON.stringify(output(run)))).toEqual(output(run));
  });

  it('is there only once the call is over', () => {
    const run = start();
    expect(output(run)).toBeUndefined();
    run.leg('leg.socketLost', 'agent');
    expect(output(run)).toBeUndefined();
  });
});

describe('callSession: telemetry', () => {
  it('records every reconnection attempt, live or paused', () => {
    const run = start();
    run.leg('leg.mediaReconnecting', 'visitor');
    run.actor.send({ type: 'leg.attempt', leg: 'visitor', at: BASE + 10_000, durationMs: 10_000, outcome: 'failed' });
    run.actor.send({ type: 'leg.attempt', leg: 'visitor', at: BASE + 10_140, durationMs: 140, outcome: 'recovered' });
    run.leg('leg.mediaConnected', 'visitor');
    run.actor.send({ type: 'leg.attempt', leg: 'agent', at: BASE + 10_150, durationMs: 150, outcome: 'recovered' });
    expect(context(run).reconnectionAttempts).toEqual([
      { leg: 'visitor', at: BASE + 10_000, durationMs: 10_000, outcome: 'failed' },
      { leg: 'visitor', at: BASE + 10_140, durationMs: 140, outcome: 'recovered' },
      { leg: 'agent', at: BASE + 10_150, durationMs: 150, outcome: 'recovered' },
    ]);
  });

  it('a pause whose events arrive out of order never counts negative time', () => {
    const run = start();
    run.actor.send({ type: 'leg.socketLost', leg: 'agent', at: BASE + 5_000 });
    run.actor.send({ type: 'leg.socketBack', leg: 'agent', at: BASE + 4_980 });
    run.actor.send({ type: 'leg.mediaConnected', leg: 'agent', at: BASE + 4_990 });
    expect(session(run)).toBe('live');
    expect(context(run).totalPauseMs).toBe(0);
  });

  it('the context stays JSON-serializable', () => {
    const run = start();
    const seen: unknown[] = [];
    run.actor.subscribe((s) => seen.push(s.context));
    run.leg('leg.socketLost', 'agent');
    run.actor.send({ type: 'leg.attempt', leg: 'agent', at: run.at(), durationMs: 5, outcome: 'recovered' });
    run.leg('leg.socketBack', 'agent');
    run.leg('leg.mediaFailed', 'agent');
    run.clock.increment(TIMEOUT);
    expect(value(run)).toBe('ended');
    for (const c of seen) expect(JSON.parse(JSON.stringify(c))).toEqual(c);
  });
});

describe('callSession: server restart', () => {
  it('a restored paused session re-arms its one timer with the time left', () => {
    const run = start();
    run.leg('leg.socketLost', 'agent');
    run.clock.increment(12_000);
    const persisted = JSON.parse(JSON.stringify(run.actor.getPersistedSnapshot()));
    run.actor.stop();

    const restored = start({}, persisted);
    restored.clock.set(12_000 + 3_000);
    expect(session(restored)).toBe('paused');
    restored.actor.send({ type: 'timers.rearm', at: restored.at() });
    expect(context(restored).timerMs).toBe(TIMEOUT - 15_000);
    // A re-arm is not a new pause.
    expect(restored.effects).toEqual([]);
    expect(context(restored).pausedAt).toBe(BASE);
    restored.clock.increment(TIMEOUT - 15_000 - 1);
    expect(session(restored)).toBe('paused');
    restored.clock.increment(1);
    expect(value(restored)).toBe('ended');
    expect(context(restored)).toMatchObject({ endReason: 'reconnect-timeout', totalPauseMs: TIMEOUT });
    expect(output(restored)).toMatchObject({ reason: 'reconnect-timeout', endedAt: BASE + TIMEOUT, legs: { agent: { socket: 'down' } } });
    expect(restored.effects).toEqual([]);
  });

  it('a deadline that passed during the restart fires at once', () => {
    const run = start();
    run.leg('leg.mediaReconnecting', 'visitor');
    const persisted = run.actor.getPersistedSnapshot();
    const restored = start({}, persisted);
    restored.clock.set(TIMEOUT + 60_000);
    restored.actor.send({ type: 'timers.rearm', at: restored.at() });
    restored.clock.increment(0);
    expect(context(restored)).toMatchObject({ endReason: 'reconnect-timeout', endedAt: BASE + TIMEOUT + 60_000 });
  });

  it('a restored session keeps the call it was handed', () => {
    const run = start({ callId: 'call-3', timings: { reconnectionTimeout: 9_000 }, at: BASE + 40 });
    const restored = start({}, JSON.parse(JSON.stringify(run.actor.getPersistedSnapshot())));
    expect(context(restored)).toMatchObject({ callId: 'call-3', timings: { reconnectionTimeout: 9_000 }, startedAt: BASE + 40 });
    expect(session(restored)).toBe('live');
  });

  it('timers.rearm while live changes nothing', () => {
    const run = start();
    const before = run.actor.getSnapshot();
    run.actor.send({ type: 'timers.rearm', at: BASE + 99 });
    expect(run.actor.getSnapshot().context).toEqual(before.context);
  });
});
