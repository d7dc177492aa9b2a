import { describe, expect, it, vi } from 'vitest';
import { createActor, SimulatedClock } from 'xstate';
import { agent } from '../../test/support/agent-info.ts';
import { callSessionMachine, defaultCallSessionTimings, type CallSessionContext } from './callSession.machine.ts';
import type { CallLeg } from './protocol.ts';
import {
  defaultMaxReassignments,
  defaultRoutingTimings,
  routingMachine,
  type RoutingContext,
  type RoutingInput,
} from './routing.machine.ts';

const T = defaultRoutingTimings;
const CALL_TIMEOUT = defaultCallSessionTimings.reconnectionTimeout;
/** Epoch ms of the simulated clock's zero. */
const BASE = 1_700_000_000_000;

/** a, b and c are free in the pool and would be rung in that order. */
const threeAgents = [agent('c', { lastAssignedAt: 300 }), agent('b', { lastAssignedAt: 200 }), agent('a')];

const EFFECTS = [
  'ringAgent',
  'cancelRing',
  'connectCall',
  'notifyVisitorSearching',
  'notifyVisitorRinging',
  'notifyVisitorReassigning',
  'notifyQueued',
  'notifyNoAgents',
  'notifyExhausted',
  'notifyCancelled',
  'endCallForBoth',
  'endCallForAgent',
] as const;
type Effect = (typeof EFFECTS)[number];

const IN_CALL = { connected: 'agentPresent' };
const AGENT_AWAY = { connected: 'agentAway' };

function start(patch: Partial<RoutingInput> = {}, snapshot?: unknown) {
  /** Each effect with the agent it concerned and the call end it was told, in call order. */
  const effects: { name: Effect; agentId: string | null; callEnd: RoutingContext['callEnd'] }[] = [];
  const spies = Object.fromEntries(
    EFFECTS.map((name) => [
      name,
      vi.fn(({ context }: { context: RoutingContext }) => void effects.push({ name, agentId: context.currentAgentId, callEnd: context.callEnd })),
    ]),
  ) as Record<Effect, ReturnType<typeof vi.fn>>;
  /** The effects of the call's own session, run by the child routing invokes. */
  const callEffects: string[] = [];
  const callSession = callSessionMachine.provide({
    actions: {
      notifyPaused: () => void callEffects.push('notifyPaused'),
      notifyResumed: () => void callEffects.push('notifyResumed'),
    },
  });
  const clock = new SimulatedClock();
  const input: RoutingInput = { requestId: 'r1', visitorId: 'v1', pool: 'support', agents: threeAgents, at: BASE, ...patch };
  const machine = routingMachine.provide({ actions: spies as never, actors: { callSession } });
  const actor = createActor(machine, snapshot ? { clock, snapshot: snapshot as never, input } : { clock, input });
  actor.start();
  const at = () => BASE + clock.now();
  const named = (name: Effect) => effects.filter((e) => e.name === name).map((e) => e.agentId);
  const ends = (name: Effect) => effects.filter((e) => e.name === name).map((e) => e.callEnd);
  const leg = (type: 'leg.socketLost' | 'leg.socketBack' | 'leg.mediaReconnecting' | 'leg.mediaConnected' | 'leg.mediaFailed', which: CallLeg) =>
    actor.send({ type, leg: which, at: at() });
  return { actor, clock, spies, effects, callEffects, named, ends, at, leg };
}
type Run = ReturnType<typeof start>;

const value = (run: Run) => run.actor.getSnapshot().value;
const context = (run: Run) => run.actor.getSnapshot().context;
/** The call's session and whether each leg is up, as its state and `context.legs` tell them together. */
function callView(run: Run) {
  const snapshot = call(run)?.getSnapshot();
  if (!snapshot) return undefined;
  const { legs } = snapshot.context;
  const up = (leg: 'agent' | 'visitor') => (legs[leg].socket === 'up' && legs[leg].media === 'connected' ? 'up' : 'lost');
  return { active: { agent: up('agent'), visitor: up('visitor'), session: (snapshot.value as { active?: string }).active } };
}

/** The call's session: the child the connected state invokes. */
const call = (run: Run) => run.actor.getSnapshot().children.call;
const callContext = (run: Run): CallSessionContext => call(run)!.getSnapshot().context;

function connect(run: Run, callId = 'call-1') {
  run.actor.send({ type: 'agent.accepted', agentId: context(run).currentAgentId!, callId, at: run.at() });
}

/** A request in a call with agent `a`: present, or in their grace after a socket drop. */
const IN_CALL_PHASES = [
  ['with the agent present', (_run: Run) => {}],
  ['in the agent’s grace', (run: Run) => run.actor.send({ type: 'agent.lost', agentId: 'a', cause: 'socket', at: run.at() })],
] as const;

function inCall(reach: (run: Run) => void): Run {
  const run = start();
  connect(run);
  reach(run);
  return run;
}

describe('routing: choosing an agent', () => {
  it('starts by telling the visitor it is searching, then rings the least recently assigned eligible agent', () => {
    const run = start();
    expect(value(run)).toBe('ringing');
    expect(run.effects.map((e) => e.name)).toEqual(['notifyVisitorSearching', 'ringAgent', 'notifyVisitorRinging']);
    expect(run.named('ringAgent')).toEqual(['a']);
    expect(context(run)).toMatchObject({ currentAgentId: 'a', triedAgentIds: ['a'], reassignments: 0, queuePosition: null });
  });

  it('uses the defaults from DESIGN unless input overrides them', () => {
    expect(context(start())).toMatchObject({ timings: T, maxReassignments: defaultMaxReassignments, callTimings: defaultCallSessionTimings });
    expect(T).toEqual({ ringTimeout: 15_000, agentGrace: 10_000, maxQueueWait: 120_000 });
    expect(defaultMaxReassignments).toBe(5);
    const run = start({ timings: { ringTimeout: 3_000 }, maxReassignments: 2, callTimings: { reconnectionTimeout: 4_000 } });
    expect(context(run)).toMatchObject({
      timings: { ...T, ringTimeout: 3_000 },
      maxReassignments: 2,
      callTimings: { reconnectionTimeout: 4_000 },
    });
    expect(context(run)).toMatchObject({ callId: null, callEnd: null });
  });

  it('rings only agents in the pool who are available', () => {
    const run = start({
      agents: [
        agent('a', { pools: ['sales'] }),
        agent('b', { status: 'away' }),
        agent('c', { status: 'busy' }),
        agent('d', { status: 'offline' }),
        agent('e', { lastAssignedAt: 9 }),
      ],
    });
    expect(run.named('ringAgent')).toEqual(['e']);
  });

  it('orders by least recently assigned, never-assigned first, ties by id', () => {
    const run = start({
      agents: [agent('z', { lastAssignedAt: 50 }), agent('y', { lastAssignedAt: 50 }), agent('x', { lastAssignedAt: 10 })],
    });
    run.actor.send({ type: 'agent.rejected', agentId: 'x', at: run.at() });
    run.actor.send({ type: 'agent.rejected', agentId: 'y', at: run.at() });
    expect(run.named('ringAgent')).toEqual(['x', 'y', 'z']);
  });
});

describe('routing: agents held off for the visitor', () => {
  const HOLD_OFF = 5_000;
  const heldOff = (...agentIds: string[]) => ({ heldOff: { agentIds, until: BASE + HOLD_OFF } });

  it('never rings an agent rung for the visitor moments before, and does not count the others as moves', () => {
    const run = start(heldOff('a'));
    expect(run.named('ringAgent')).toEqual(['b']);
    expect(context(run)).toMatchObject({ triedAgentIds: ['b'], reassignments: 0 });
    run.actor.send({ type: 'agent.rejected', agentId: 'b', at: run.at() });
    expect(run.named('ringAgent')).toEqual(['b', 'c']);
  });

  it('queues when every free agent is held off, and a presence change that frees only them does not move it', () => {
    const run = start({ ...heldOff('a'), agents: [agent('a')] });
    expect(value(run)).toBe('queued');
    expect(run.named('ringAgent')).toEqual([]);
    run.actor.send({ type: 'agents.updated', agents: [agent('a', { lastAssignedAt: 5 })], at: run.at() });
    expect(value(run)).toBe('queued');
    run.actor.send({ type: 'agents.updated', agents: [agent('a'), agent('b')], at: run.at() });
    expect(run.named('ringAgent')).toEqual(['b']);
  });

  it('rings the held-off agent when the hold-off ends in the queue, with a full ring from that moment', () => {
    const run = start({ ...heldOff('a'), agents: [agent('a')] });
    run.clock.increment(HOLD_OFF - 1);
    expect(value(run)).toBe('queued');
    run.clock.increment(1);
    expect(value(run)).toBe('ringing');
    expect(run.named('ringAgent')).toEqual(['a']);
    expect(context(run)).toMatchObject({ heldOffAgentIds: [], triedAgentIds: ['a'], reassignments: 0, deadlineAt: BASE + HOLD_OFF + T.ringTimeout });
  });

  it('a hold-off that ends with its agent not free leaves the queue wait running, and the agent is rung once free', () => {
    const run = start({ ...heldOff('a'), agents: [agent('a', { status: 'away' })] });
    run.clock.increment(HOLD_OFF);
    expect(value(run)).toBe('queued');
    expect(context(run)).toMatchObject({ heldOffAgentIds: [], deadlineAt: BASE + T.maxQueueWait });
    run.actor.send({ type: 'agents.updated', agents: [agent('a')], at: run.at() });
    expect(run.named('ringAgent')).toEqual(['a']);

    const idle = start({ ...heldOff('a'), agents: [agent('a', { status: 'away' })] });
    idle.clock.increment(T.maxQueueWait - 1);
    expect(value(idle)).toBe('queued');
    idle.clock.increment(1);
    expect(value(idle)).toBe('noAgents');
  });

  it('a hold-off that ended while another agent was rung lets the next search ring its agent without queueing', () => {
    const run = start({ ...heldOff('a'), agents: [agent('a'), agent('b')] });
    expect(run.named('ringAgent')).toEqual(['b']);
    run.clock.increment(HOLD_OFF + 1);
    run.actor.send({ type: 'agent.rejected', agentId: 'b', at: run.at() });
    expect(run.named('ringAgent')).toEqual(['b', 'a']);
    expect(run.named('notifyQueued')).toEqual([]);
  });

  it('a hold-off that ends after the queue wait changes nothing: the wait runs out first', () => {
    const run = start({ heldOff: { agentIds: ['a'], until: BASE + T.maxQueueWait + 1 }, agents: [agent('a')] });
    run.clock.increment(T.maxQueueWait);
    expect(value(run)).toBe('noAgents');
    expect(run.named('ringAgent')).toEqual([]);
  });

  it.each([
    ['ends at its original time when the restart was shorter', 1_000, 2_000, HOLD_OFF],
    ['ends at once when it passed during the restart', 1_000, HOLD_OFF * 2, 1_000 + HOLD_OFF * 2],
  ])('after a restart, the hold-off %s', (_, persistAt, downMs, rungAt) => {
    const run = start({ ...heldOff('a'), agents: [agent('a')] });
    run.clock.set(persistAt);
    const persisted = JSON.parse(JSON.stringify(run.actor.getPersistedSnapshot()));
    run.actor.stop();
    const restored = start({ agents: [agent('a')] }, persisted);
    restored.clock.set(persistAt + downMs);
    restored.actor.send({ type: 'timers.rearm', at: restored.at() });
    expect(context(restored)).toMatchObject({ heldOffAgentIds: ['a'], heldOffUntil: BASE + HOLD_OFF, deadlineAt: BASE + T.maxQueueWait });
    restored.clock.set(Math.max(rungAt - 1, persistAt + downMs));
    if (rungAt > persistAt + downMs) expect(restored.named('ringAgent')).toEqual([]);
    restored.clock.set(rungAt);
    expect(restored.named('ringAgent')).toEqual(['a']);
    expect(context(restored).deadlineAt).toBe(BASE + Math.max(HOLD_OFF, persistAt + downMs) + T.ringTimeout);
  });
});

describe('routing: moving on before the call', () => {
  it('agent.rejected cancels the ring and rings the next agent', () => {
    const run = start();
    run.actor.send({ type: 'agent.rejected', agentId: 'a', at: BASE + 10 });
    expect(value(run)).toBe('ringing');
    expect(run.named('cancelRing')).toEqual(['a']);
    expect(run.named('ringAgent')).toEqual(['a', 'b']);
    expect(context(run)).toMatchObject({
      currentAgentId: 'b',
      triedAgentIds: ['a', 'b'],
      reassignments: 1,
      lastTrigger: { cause: 'rejected', agentId: 'a', at: BASE + 10 },
    });
  });

  it('ring.refused (the agent was claimed elsewhere) rings the next agent without counting a try or a trigger', () => {
    const run = start();
    run.actor.send({ type: 'ring.refused', agentId: 'a', at: BASE + 10 });
    expect(value(run)).toBe('ringing');
    // Nothing reached `a`, so nothing is cancelled at `a` either.
    expect(run.named('cancelRing')).toEqual([]);
    expect(run.named('ringAgent')).toEqual(['a', 'b']);
    expect(context(run)).toMatchObject({ currentAgentId: 'b', triedAgentIds: ['b'], reassignments: 0, lastTrigger: null });
    expect(context(run).agents.map((a) => a.id)).not.toContain('a');
    // A fresh list with `a` free again offers them to the request like anyone it never tried.
    run.actor.send({ type: 'agent.rejected', agentId: 'b', at: BASE + 20 });
    expect(run.named('ringAgent')).toEqual(['a', 'b', 'c']);
  });

  it('ring.refused for another agent than the one rung, or outside ringing, changes nothing', () => {
    const run = start();
    run.actor.send({ type: 'ring.refused', agentId: 'b', at: BASE + 10 });
    expect(context(run)).toMatchObject({ currentAgentId: 'a', triedAgentIds: ['a'] });
    expect(run.named('ringAgent')).toEqual(['a']);
    const queued = start({ agents: [] });
    expect(value(queued)).toBe('queued');
    queued.actor.send({ type: 'ring.refused', agentId: 'a', at: BASE + 10 });
    expect(value(queued)).toBe('queued');
  });

  it('ring.refused of the last eligible agent queues the visitor', () => {
    const run = start({ agents: [agent('a')] });
    run.actor.send({ type: 'ring.refused', agentId: 'a', at: BASE + 10 });
    expect(value(run)).toBe('queued');
    expect(context(run)).toMatchObject({ currentAgentId: null, triedAgentIds: [], reassignments: 0 });
  });

  it('ring-no-answer after ringTimeout rings the next agent', () => {
    const run = start();
    run.clock.increment(T.ringTimeout - 1);
    expect(run.named('ringAgent')).toEqual(['a']);
    run.clock.increment(1);
    expect(run.named('cancelRing')).toEqual(['a']);
    expect(run.named('ringAgent')).toEqual(['a', 'b']);
    expect(context(run).lastTrigger).toEqual({ cause: 'ring-timeout', agentId: 'a', at: BASE + T.ringTimeout });
    run.clock.increment(T.ringTimeout);
    expect(run.named('ringAgent')).toEqual(['a', 'b', 'c']);
  });

  it.each(['socket', 'away', 'logout'] as const)('agent.lost (%s) of the ringing agent moves on at once, without grace', (cause) => {
    const run = start();
    run.actor.send({ type: 'agent.lost', agentId: 'a', cause, at: BASE + 5 });
    expect(value(run)).toBe('ringing');
    expect(run.named('cancelRing')).toEqual(['a']);
    expect(run.named('ringAgent')).toEqual(['a', 'b']);
    expect(context(run).lastTrigger).toEqual({ cause, agentId: 'a', at: BASE + 5 });
  });

  it('ignores triggers that name another agent than the one being rung', () => {
    const run = start();
    const before = run.actor.getSnapshot();
    run.actor.send({ type: 'agent.rejected', agentId: 'b', at: run.at() });
    run.actor.send({ type: 'agent.accepted', agentId: 'c', callId: 'call-1', at: run.at() });
    run.actor.send({ type: 'agent.lost', agentId: 'b', cause: 'logout', at: run.at() });
    run.actor.send({ type: 'agent.returned', agentId: 'b', at: run.at() });
    run.actor.send({ type: 'agent.rejected', agentId: 'nobody', at: run.at() });
    expect(run.actor.getSnapshot().value).toBe('ringing');
    expect(run.actor.getSnapshot().context).toEqual(before.context);
    expect(run.named('ringAgent')).toEqual(['a']);
    expect(run.named('cancelRing')).toEqual([]);
  });

  it('never offers an agent twice, even when the server lists them as free again', () => {
    const run = start({ agents: [agent('a'), agent('b')] });
    run.actor.send({ type: 'agent.rejected', agentId: 'a', at: run.at() });
    run.actor.send({ type: 'agents.updated', agents: [agent('a'), agent('b')], at: run.at() });
    run.actor.send({ type: 'agent.rejected', agentId: 'b', at: run.at() });
    expect(value(run)).toBe('queued');
    run.actor.send({ type: 'agents.updated', agents: [agent('a'), agent('b')], at: run.at() });
    expect(value(run)).toBe('queued');
    expect(run.named('ringAgent')).toEqual(['a', 'b']);
  });

  it('agent.accepted from the ringing agent connects the call without cancelling the ring', () => {
    const run = start();
    connect(run);
    expect(value(run)).toEqual(IN_CALL);
    expect(run.named('connectCall')).toEqual(['a']);
    expect(run.named('cancelRing')).toEqual([]);
    // The ring timer is gone with the ringing state.
    run.clock.increment(T.ringTimeout * 2);
    expect(value(run)).toEqual(IN_CALL);
  });

  it('agent.accepted names the call it starts', () => {
    const run = start();
    connect(run, 'call-7');
    expect(context(run)).toMatchObject({ callId: 'call-7', callEnd: null, currentAgentId: 'a' });
  });
});

describe('routing: the call it invokes', () => {
  it('the accept starts a callSession child and hands it the call: its id, its timings and when it connected', () => {
    const run = start({ callTimings: { reconnectionTimeout: 4_000 } });
    expect(call(run)).toBeUndefined();
    run.clock.increment(1_200);
    connect(run, 'call-9');
    expect(callView(run)).toEqual({ active: { agent: 'up', visitor: 'up', session: 'live' } });
    expect(callContext(run)).toMatchObject({
      callId: 'call-9',
      timings: { reconnectionTimeout: 4_000 },
      startedAt: BASE + 1_200,
      endReason: null,
    });
  });

  it('forwards the call events to the child, which tracks the legs while the request stays connected', () => {
    const run = start();
    connect(run);
    const before = context(run);
    run.clock.increment(500);
    run.leg('leg.socketLost', 'visitor');
    expect(callView(run)).toEqual({ active: { agent: 'up', visitor: 'lost', session: 'paused' } });
    run.actor.send({ type: 'leg.attempt', leg: 'agent', at: run.at(), durationMs: 80, outcome: 'recovered' });
    run.leg('leg.mediaReconnecting', 'agent');
    run.leg('leg.socketBack', 'visitor');
    run.leg('leg.mediaConnected', 'visitor');
    run.leg('leg.mediaConnected', 'agent');
    expect(callView(run)).toEqual({ active: { agent: 'up', visitor: 'up', session: 'live' } });
    expect(callContext(run)).toMatchObject({
      disconnections: [
        { leg: 'visitor', at: BASE + 500, cause: 'socket' },
        { leg: 'agent', at: BASE + 500, cause: 'media' },
      ],
      reconnectionAttempts: [{ leg: 'agent', at: BASE + 500, durationMs: 80, outcome: 'recovered' }],
    });
    expect(run.callEffects).toEqual(['notifyPaused', 'notifyPaused', 'notifyPaused', 'notifyPaused', 'notifyResumed']);
    // The request itself only carries the events: nothing of it changed.
    expect(value(run)).toEqual(IN_CALL);
    expect(context(run)).toEqual(before);
  });

  it('call events outside a call change nothing', () => {
    const run = start();
    const before = run.actor.getSnapshot();
    run.leg('leg.socketLost', 'visitor');
    run.leg('leg.mediaFailed', 'agent');
    run.actor.send({ type: 'call.hangup', by: 'visitor', at: run.at() });
    expect(value(run)).toBe('ringing');
    expect(context(run)).toEqual(before.context);
    expect(call(run)).toBeUndefined();
  });
});

describe('routing: what follows the end of the call', () => {
  it.each(['agent', 'visitor'] as const)('a hang-up by the %s ends the request as done, for both people', (by) => {
    const run = start();
    connect(run);
    run.clock.increment(2_000);
    run.actor.send({ type: 'call.hangup', by, at: run.at() });
    expect(value(run)).toBe('done');
    expect(run.actor.getSnapshot().status).toBe('done');
    expect(context(run)).toMatchObject({ endReason: 'completed', callEnd: { callId: 'call-1', reason: 'hangup' } });
    expect(run.named('endCallForBoth')).toEqual(['a']);
    expect(run.ends('endCallForBoth')).toEqual([{ callId: 'call-1', reason: 'hangup' }]);
    expect(run.named('endCallForAgent')).toEqual([]);
    expect(run.named('notifyVisitorReassigning')).toEqual([]);
    expect(call(run)).toBeUndefined();
  });

  it('media that failed with both people present ends the request as done with media-failed', () => {
    const run = start();
    connect(run);
    run.leg('leg.mediaFailed', 'agent');
    expect(value(run)).toBe('done');
    expect(context(run).callEnd).toEqual({ callId: 'call-1', reason: 'media-failed' });
    expect(run.ends('endCallForBoth')).toEqual([{ callId: 'call-1', reason: 'media-failed' }]);
  });

  it.each([
    ['the visitor’s socket gone', [['leg.socketLost', 'visitor']]],
    ['the visitor’s socket gone and the agent’s media down', [['leg.socketLost', 'visitor'], ['leg.mediaReconnecting', 'agent']]],
    ['both sockets gone', [['leg.socketLost', 'visitor'], ['leg.socketLost', 'agent']]],
    ['both sockets up and the path down', [['leg.mediaReconnecting', 'agent'], ['leg.mediaReconnecting', 'visitor']]],
    ['only the visitor’s media down', [['leg.mediaReconnecting', 'visitor']]],
  ] as const)('a pause that runs out with %s ends the request as done with reconnect-timeout, never a reassignment', (_, losses) => {
    const run = start();
    connect(run);
    for (const [type, leg] of losses) run.leg(type, leg);
    run.clock.increment(CALL_TIMEOUT - 1);
    expect(value(run)).toEqual(IN_CALL);
    run.clock.increment(1);
    expect(value(run)).toBe('done');
    expect(context(run)).toMatchObject({ endReason: 'completed', callEnd: { callId: 'call-1', reason: 'reconnect-timeout' } });
    expect(run.named('endCallForBoth')).toEqual(['a']);
    expect(run.named('notifyVisitorReassigning')).toEqual([]);
    expect(run.named('ringAgent')).toEqual(['a']);
  });

  it('a pause that runs out with only the agent’s socket gone reassigns the visitor (session-timeout)', () => {
    const run = start();
    connect(run);
    // The agent's media broke first, so the pause began before the socket dropped and runs out before the grace.
    run.leg('leg.mediaReconnecting', 'agent');
    run.clock.increment(CALL_TIMEOUT - 5_000);
    run.leg('leg.socketLost', 'agent');
    run.actor.send({ type: 'agent.lost', agentId: 'a', cause: 'socket', at: run.at() });
    run.leg('leg.mediaReconnecting', 'visitor');
    expect(value(run)).toEqual(AGENT_AWAY);
    run.clock.increment(5_000);
    expect(value(run)).toBe('ringing');
    expect(context(run)).toMatchObject({
      currentAgentId: 'b',
      reassignments: 1,
      lastTrigger: { cause: 'session-timeout', agentId: 'a', at: BASE + CALL_TIMEOUT },
      callEnd: { callId: 'call-1', reason: 'reassigned' },
    });
    expect(run.named('endCallForAgent')).toEqual(['a']);
    expect(run.ends('endCallForAgent')).toEqual([{ callId: 'call-1', reason: 'reassigned' }]);
    expect(run.named('endCallForBoth')).toEqual([]);
    expect(run.named('notifyVisitorReassigning')).toEqual([null]);
    expect(run.named('ringAgent')).toEqual(['a', 'b']);
    expect(call(run)).toBeUndefined();
    // The grace the pause overtook is gone with the call.
    run.clock.increment(T.agentGrace);
    expect(context(run).lastTrigger?.cause).toBe('session-timeout');
  });

  it('the decision follows how the call left the legs, not whether the request heard of the agent’s loss', () => {
    const run = start({ callTimings: { reconnectionTimeout: 4_000 } });
    connect(run);
    run.leg('leg.socketLost', 'agent');
    expect(value(run)).toEqual(IN_CALL);
    run.clock.increment(4_000);
    expect(value(run)).toBe('ringing');
    expect(context(run).lastTrigger).toEqual({ cause: 'session-timeout', agentId: 'a', at: BASE + 4_000 });
  });

  it('the next call gets its own id, and the last one’s end is cleared', () => {
    const run = start({ callTimings: { reconnectionTimeout: 4_000 } });
    connect(run, 'call-1');
    run.leg('leg.socketLost', 'agent');
    run.clock.increment(4_000);
    expect(context(run).callEnd).toEqual({ callId: 'call-1', reason: 'reassigned' });
    connect(run, 'call-2');
    expect(context(run)).toMatchObject({ currentAgentId: 'b', callId: 'call-2', callEnd: null });
    expect(callContext(run)).toMatchObject({ callId: 'call-2', startedAt: BASE + 4_000 });
    run.actor.send({ type: 'call.hangup', by: 'agent', at: run.at() });
    expect(run.ends('endCallForBoth')).toEqual([{ callId: 'call-2', reason: 'hangup' }]);
  });
});

describe('routing: losing the agent mid-call', () => {
  it("a socket drop gives the agent agentGrace; agent.returned resumes the same call", () => {
    const run = start();
    connect(run);
    run.actor.send({ type: 'agent.lost', agentId: 'a', cause: 'socket', at: run.at() });
    expect(value(run)).toEqual(AGENT_AWAY);
    expect(context(run).currentAgentId).toBe('a');
    const session = call(run);
    run.clock.increment(T.agentGrace - 1);
    run.actor.send({ type: 'agent.returned', agentId: 'a', at: run.at() });
    expect(value(run)).toEqual(IN_CALL);
    expect(context(run)).toMatchObject({ currentAgentId: 'a', reassignments: 0, callId: 'call-1', callEnd: null });
    expect(run.named('ringAgent')).toEqual(['a']);
    expect(run.named('notifyVisitorReassigning')).toEqual([]);
    expect(run.named('endCallForAgent')).toEqual([]);
    // The same call: the session was neither stopped nor started again.
    expect(call(run)).toBe(session);
    run.clock.increment(T.agentGrace);
    expect(value(run)).toEqual(IN_CALL);
  });

  it('agent.returned from another agent does not end the grace', () => {
    const run = start();
    connect(run);
    run.actor.send({ type: 'agent.lost', agentId: 'a', cause: 'socket', at: run.at() });
    run.actor.send({ type: 'agent.returned', agentId: 'b', at: run.at() });
    expect(value(run)).toEqual(AGENT_AWAY);
  });

  it('grace expiry reassigns the visitor to the next agent', () => {
    const run = start();
    connect(run);
    run.actor.send({ type: 'agent.lost', agentId: 'a', cause: 'socket', at: run.at() });
    run.clock.increment(T.agentGrace - 1);
    expect(value(run)).toEqual(AGENT_AWAY);
    run.clock.increment(1);
    expect(value(run)).toBe('ringing');
    expect(run.named('notifyVisitorReassigning')).toEqual([null]);
    expect(run.named('ringAgent')).toEqual(['a', 'b']);
    expect(context(run)).toMatchObject({
      currentAgentId: 'b',
      reassignments: 1,
      lastTrigger: { cause: 'grace-expired', agentId: 'a', at: BASE + T.agentGrace },
    });
  });

  it('grace expiry ends the call for the agent only, and stops its session', () => {
    const run = start();
    connect(run);
    run.leg('leg.socketLost', 'agent');
    run.actor.send({ type: 'agent.lost', agentId: 'a', cause: 'socket', at: run.at() });
    run.clock.increment(T.agentGrace);
    expect(context(run).callEnd).toEqual({ callId: 'call-1', reason: 'reassigned' });
    expect(run.named('endCallForAgent')).toEqual(['a']);
    expect(run.ends('endCallForAgent')).toEqual([{ callId: 'call-1', reason: 'reassigned' }]);
    expect(run.named('endCallForBoth')).toEqual([]);
    expect(call(run)).toBeUndefined();
    // The session's own pause timer went with it: nothing more of that call happens when it would have run out.
    run.clock.increment(CALL_TIMEOUT - T.agentGrace);
    expect(context(run).callEnd).toEqual({ callId: 'call-1', reason: 'reassigned' });
    expect(run.named('endCallForAgent')).toEqual(['a']);
    expect(run.named('endCallForBoth')).toEqual([]);
  });

  it('the call goes on through the grace: its events still reach the session, and a hang-up ends it for both', () => {
    const run = start();
    connect(run);
    run.leg('leg.socketLost', 'agent');
    run.actor.send({ type: 'agent.lost', agentId: 'a', cause: 'socket', at: run.at() });
    run.leg('leg.mediaReconnecting', 'visitor');
    expect(callContext(run).legs.visitor.media).toBe('reconnecting');
    run.actor.send({ type: 'call.hangup', by: 'visitor', at: run.at() });
    expect(value(run)).toBe('done');
    expect(context(run).callEnd).toEqual({ callId: 'call-1', reason: 'hangup' });
    expect(run.named('endCallForBoth')).toEqual(['a']);
    expect(run.named('notifyVisitorReassigning')).toEqual([]);
  });

  it.each(['away', 'logout'] as const)('going %s mid-call reassigns at once', (cause) => {
    const run = start();
    connect(run);
    run.actor.send({ type: 'agent.lost', agentId: 'a', cause, at: run.at() });
    expect(value(run)).toBe('ringing');
    expect(run.named('ringAgent')).toEqual(['a', 'b']);
    expect(context(run).lastTrigger?.cause).toBe(cause);
    expect(context(run).callEnd).toEqual({ callId: 'call-1', reason: 'reassigned' });
    expect(run.named('endCallForAgent')).toEqual(['a']);
    expect(run.named('notifyVisitorReassigning')).toEqual([null]);
    expect(call(run)).toBeUndefined();
  });

  it.each(['away', 'logout'] as const)('going %s during the grace reassigns at once', (cause) => {
    const run = start();
    connect(run);
    run.actor.send({ type: 'agent.lost', agentId: 'a', cause: 'socket', at: run.at() });
    run.actor.send({ type: 'agent.lost', agentId: 'a', cause, at: run.at() });
    expect(value(run)).toBe('ringing');
    expect(run.named('ringAgent')).toEqual(['a', 'b']);
    expect(run.named('endCallForAgent')).toEqual(['a']);
    // The grace went with the call: it does not fire on the next agent's ring.
    run.clock.increment(T.agentGrace);
    expect(context(run)).toMatchObject({ currentAgentId: 'b', lastTrigger: { cause } });
  });

  it('a second socket loss during the grace does not restart it', () => {
    const run = start();
    connect(run);
    run.actor.send({ type: 'agent.lost', agentId: 'a', cause: 'socket', at: run.at() });
    run.clock.increment(T.agentGrace / 2);
    run.actor.send({ type: 'agent.lost', agentId: 'a', cause: 'socket', at: run.at() });
    run.clock.increment(T.agentGrace / 2);
    expect(value(run)).toBe('ringing');
    expect(context(run).lastTrigger).toEqual({ cause: 'grace-expired', agentId: 'a', at: BASE + T.agentGrace });
  });

  it('ignores a loss of another agent mid-call', () => {
    const run = start();
    connect(run);
    run.actor.send({ type: 'agent.lost', agentId: 'b', cause: 'logout', at: run.at() });
    run.actor.send({ type: 'agent.lost', agentId: 'c', cause: 'socket', at: run.at() });
    expect(value(run)).toEqual(IN_CALL);
  });
});

describe('routing: queueing', () => {
  const nobodyFree = [agent('a', { status: 'busy' }), agent('b', { status: 'away' })];

  it('queues the visitor when no agent is eligible, and forwards queue positions', () => {
    const run = start({ agents: nobodyFree });
    expect(value(run)).toBe('queued');
    expect(run.named('notifyQueued')).toHaveLength(1);
    run.actor.send({ type: 'queue.position', position: 3, at: run.at() });
    expect(context(run).queuePosition).toBe(3);
    expect(run.spies.notifyQueued).toHaveBeenCalledTimes(2);
    expect(run.spies.notifyQueued.mock.calls[1]![0].context.queuePosition).toBe(3);
  });

  it('rings an agent as soon as an update makes one eligible', () => {
    const run = start({ agents: nobodyFree });
    run.actor.send({ type: 'queue.position', position: 1, at: run.at() });
    run.actor.send({ type: 'agents.updated', agents: [agent('a', { status: 'busy' }), agent('b')], at: run.at() });
    expect(value(run)).toBe('ringing');
    expect(run.named('ringAgent')).toEqual(['b']);
    expect(context(run)).toMatchObject({ queuePosition: null, reassignments: 0 });
  });

  it('an update with nobody eligible keeps waiting, without restarting the wait', () => {
    const run = start({ agents: nobodyFree });
    run.clock.increment(T.maxQueueWait / 2);
    run.actor.send({ type: 'agents.updated', agents: [agent('a', { status: 'offline' })], at: run.at() });
    expect(value(run)).toBe('queued');
    expect(context(run).agents).toEqual([agent('a', { status: 'offline' })]);
    run.clock.increment(T.maxQueueWait / 2);
    expect(value(run)).toBe('noAgents');
  });

  it('ends as noAgents after maxQueueWait, with a message to the visitor', () => {
    const run = start({ agents: [] });
    run.clock.increment(T.maxQueueWait - 1);
    expect(value(run)).toBe('queued');
    run.clock.increment(1);
    expect(value(run)).toBe('noAgents');
    expect(run.actor.getSnapshot().status).toBe('done');
    expect(context(run).endReason).toBe('no-agents');
    expect(run.spies.notifyNoAgents).toHaveBeenCalledTimes(1);
  });

  it('queues after every agent has been tried, and a mid-call reassignment may queue too', () => {
    const run = start({ agents: [agent('a')] });
    connect(run);
    run.actor.send({ type: 'agent.lost', agentId: 'a', cause: 'logout', at: run.at() });
    expect(value(run)).toBe('queued');
    expect(context(run).currentAgentId).toBeNull();
  });
});

describe('routing: the reassignment bound', () => {
  it('every move after the first ring counts; one move beyond maxReassignments ends as exhausted', () => {
    const agents = ['a', 'b', 'c', 'd', 'e'].map((id) => agent(id));
    const run = start({ agents, maxReassignments: 2 });
    run.actor.send({ type: 'agent.rejected', agentId: 'a', at: run.at() });
    expect(context(run).reassignments).toBe(1);
    run.clock.increment(T.ringTimeout);
    expect(context(run).reassignments).toBe(2);
    expect(value(run)).toBe('ringing');
    run.actor.send({ type: 'agent.rejected', agentId: 'c', at: run.at() });
    expect(value(run)).toBe('exhausted');
    expect(run.actor.getSnapshot().status).toBe('done');
    expect(context(run)).toMatchObject({ endReason: 'reassign-limit', reassignments: 2, currentAgentId: null });
    expect(run.named('ringAgent')).toEqual(['a', 'b', 'c']);
    expect(run.spies.notifyExhausted).toHaveBeenCalledTimes(1);
  });

  it('mid-call reassignments count against the same bound', () => {
    // The first call's pause runs out with only the agent gone, before the agent's grace does.
    const run = start({ maxReassignments: 1, callTimings: { reconnectionTimeout: T.agentGrace / 2 } });
    connect(run);
    run.leg('leg.socketLost', 'agent');
    run.actor.send({ type: 'agent.lost', agentId: 'a', cause: 'socket', at: run.at() });
    run.clock.increment(T.agentGrace / 2);
    expect(context(run).lastTrigger?.cause).toBe('session-timeout');
    connect(run);
    run.actor.send({ type: 'agent.lost', agentId: 'b', cause: 'away', at: run.at() });
    expect(value(run)).toBe('exhausted');
  });

  it('a grace that runs out counts against the bound too', () => {
    const run = start({ maxReassignments: 1 });
    connect(run);
    run.actor.send({ type: 'agent.lost', agentId: 'a', cause: 'socket', at: run.at() });
    run.clock.increment(T.agentGrace);
    connect(run);
    run.actor.send({ type: 'agent.lost', agentId: 'b', cause: 'socket', at: run.at() });
    run.clock.increment(T.agentGrace);
    expect(value(run)).toBe('exhausted');
    expect(run.named('endCallForAgent')).toEqual(['a', 'b']);
  });

  it('maxReassignments 0 allows the first ring only', () => {
    const run = start({ maxReassignments: 0 });
    run.actor.send({ type: 'agent.rejected', agentId: 'a', at: run.at() });
    expect(value(run)).toBe('exhausted');
  });
});

describe('routing: the end of a request', () => {
  it('visitor.cancelled while ringing cancels the ring', () => {
    const run = start();
    run.actor.send({ type: 'visitor.cancelled', at: run.at() });
    expect(value(run)).toBe('cancelled');
    expect(context(run).endReason).toBe('cancelled');
    expect(run.named('cancelRing')).toEqual(['a']);
    expect(run.named('notifyCancelled')).toEqual(['a']);
  });

  it('visitor.cancelled ends the request from queued, connected and the agent’s grace', () => {
    const queued = start({ agents: [] });
    queued.actor.send({ type: 'visitor.cancelled', at: queued.at() });
    expect(value(queued)).toBe('cancelled');

    const connected = start();
    connect(connected);
    connected.actor.send({ type: 'visitor.cancelled', at: connected.at() });
    expect(value(connected)).toBe('cancelled');

    const lost = start();
    connect(lost);
    lost.actor.send({ type: 'agent.lost', agentId: 'a', cause: 'socket', at: lost.at() });
    lost.actor.send({ type: 'visitor.cancelled', at: lost.at() });
    expect(value(lost)).toBe('cancelled');
    for (const run of [queued, connected, lost]) {
      expect(run.spies.cancelRing).not.toHaveBeenCalled();
      expect(run.spies.notifyCancelled).toHaveBeenCalledTimes(1);
      expect(context(run).endReason).toBe('cancelled');
    }
  });

  it.each(IN_CALL_PHASES)('visitor.cancelled mid-call (%s) is the visitor hanging up: the call ends for both and its session stops', (_, reach) => {
    const run = inCall(reach);
    run.actor.send({ type: 'visitor.cancelled', at: run.at() });
    expect(context(run).callEnd).toEqual({ callId: 'call-1', reason: 'hangup' });
    expect(run.named('endCallForBoth')).toEqual(['a']);
    expect(run.ends('endCallForBoth')).toEqual([{ callId: 'call-1', reason: 'hangup' }]);
    expect(call(run)).toBeUndefined();
  });

  it('visitor.gone (the resume window ran out) cancels a request waiting for the visitor', () => {
    const run = start();
    run.actor.send({ type: 'visitor.away', at: run.at() });
    expect(value(run)).toBe('waitingForVisitor');
    run.actor.send({ type: 'visitor.gone', at: run.at() });
    expect(value(run)).toBe('cancelled');
    expect(context(run).endReason).toBe('cancelled');
    expect(run.spies.notifyCancelled).toHaveBeenCalledTimes(1);
  });

  // After a restart nobody told routing that a restored visitor left: their window runs out while the
  // request still rings or waits in line.
  it.each([
    ['ringing', (_run: Run) => {}],
    ['queued', (run: Run) => ['a', 'b', 'c'].forEach((agentId) => run.actor.send({ type: 'agent.rejected', agentId, at: run.at() }))],
  ] as const)('visitor.gone cancels a restored request the visitor never came back to, from %s', (state, reach) => {
    const run = start();
    reach(run);
    expect(value(run)).toBe(state);
    const ringsCancelled = run.named('cancelRing').length;
    run.actor.send({ type: 'visitor.gone', at: run.at() });
    expect(value(run)).toBe('cancelled');
    expect(context(run).endReason).toBe('cancelled');
    expect(run.spies.notifyCancelled).toHaveBeenCalledTimes(1);
    // Only a ring still going is withdrawn.
    expect(run.named('cancelRing').length - ringsCancelled).toBe(state === 'ringing' ? 1 : 0);
  });

  it.each(IN_CALL_PHASES)('visitor.gone means nothing in a call (%s): the call session waits for the visitor', (_, reach) => {
    const run = inCall(reach);
    run.actor.send({ type: 'visitor.away', at: run.at() });
    run.leg('leg.socketLost', 'visitor');
    const before = run.actor.getSnapshot();
    const callBefore = callContext(run);
    run.actor.send({ type: 'visitor.gone', at: run.at() });
    expect(run.actor.getSnapshot().value).toEqual(before.value);
    expect(context(run)).toEqual(before.context);
    expect(callContext(run)).toEqual(callBefore);
    expect(run.spies.notifyCancelled).not.toHaveBeenCalled();
  });

  it.each(IN_CALL_PHASES)('the end of the call ends the request as done (%s)', (_, reach) => {
    const run = inCall(reach);
    run.actor.send({ type: 'call.hangup', by: 'visitor', at: run.at() });
    expect(value(run)).toBe('done');
    expect(context(run).endReason).toBe('completed');
  });

  it('a final state accepts nothing more', () => {
    const run = start();
    connect(run);
    run.actor.send({ type: 'call.hangup', by: 'agent', at: run.at() });
    const before = run.actor.getSnapshot();
    run.actor.send({ type: 'visitor.cancelled', at: run.at() });
    run.actor.send({ type: 'visitor.gone', at: run.at() });
    run.actor.send({ type: 'agents.updated', agents: [], at: run.at() });
    run.leg('leg.socketLost', 'agent');
    expect(run.actor.getSnapshot().value).toBe('done');
    expect(run.actor.getSnapshot().context).toEqual(before.context);
    expect(run.named('endCallForBoth')).toEqual(['a']);
  });
});

describe('routing: server restart', () => {
  it.each([
    ['ringing', T.ringTimeout, (_run: Run) => {}],
    [AGENT_AWAY, T.agentGrace, (run: Run) => {
      connect(run);
      run.actor.send({ type: 'agent.lost', agentId: 'a', cause: 'socket', at: run.at() });
    }],
    ['queued', T.maxQueueWait, (run: Run) => {
      run.actor.send({ type: 'agent.rejected', agentId: 'a', at: run.at() });
      run.actor.send({ type: 'agent.rejected', agentId: 'b', at: run.at() });
      run.actor.send({ type: 'agent.rejected', agentId: 'c', at: run.at() });
    }],
  ] as const)('a restored actor in %j re-arms its timer with the time left', (state, duration, reach) => {
    const run = start();
    reach(run);
    expect(value(run)).toEqual(state);
    const deadlineAt = context(run).deadlineAt!;
    expect(deadlineAt).toBe(BASE + duration);
    run.clock.increment(duration * 0.4);
    const persisted = JSON.parse(JSON.stringify(run.actor.getPersistedSnapshot()));
    run.actor.stop();

    // The new process has its own clock; 1000 ms passed while it restarted.
    const restored = start({}, persisted);
    restored.clock.set(duration * 0.4 + 1000);
    expect(restored.actor.getSnapshot().value).toEqual(state);
    restored.actor.send({ type: 'timers.rearm', at: restored.at() });
    const left = duration * 0.6 - 1000;
    expect(context(restored).timerMs).toBe(left);
    const fired = () =>
      JSON.stringify(context(restored).lastTrigger) !== JSON.stringify(context(run).lastTrigger) ||
      JSON.stringify(value(restored)) !== JSON.stringify(state);
    restored.clock.increment(left - 1);
    expect(fired()).toBe(false);
    restored.clock.increment(1);
    expect(fired()).toBe(true);
  });

  it('a deadline that passed during the restart fires at once', () => {
    const run = start();
    const persisted = run.actor.getPersistedSnapshot();
    const restored = start({}, persisted);
    restored.clock.set(T.ringTimeout * 3);
    restored.actor.send({ type: 'timers.rearm', at: restored.at() });
    restored.clock.increment(0);
    expect(restored.named('ringAgent')).toEqual(['b']);
    expect(context(restored).lastTrigger).toMatchObject({ cause: 'ring-timeout', agentId: 'a', at: restored.at() });
    // The next ring gets its full time from now.
    expect(context(restored).deadlineAt).toBe(restored.at() + T.ringTimeout);
  });

  it('timers.rearm does not ring the agent again', () => {
    const run = start();
    run.actor.send({ type: 'timers.rearm', at: run.at() });
    expect(run.named('ringAgent')).toEqual(['a']);
    expect(run.named('notifyVisitorRinging')).toEqual(['a']);
  });

  /** Persists `run` after `persistAt` ms and restores it in a new process that comes up `downMs` later and re-arms. */
  function restart(run: Run, persistAt: number, downMs: number, patch: Partial<RoutingInput> = {}) {
    run.clock.set(persistAt);
    const persisted = JSON.parse(JSON.stringify(run.actor.getPersistedSnapshot()));
    run.actor.stop();
    const restored = start(patch, persisted);
    restored.clock.set(persistAt + downMs);
    restored.actor.send({ type: 'timers.rearm', at: restored.at() });
    return restored;
  }

  it('a restored call is the same call: its session comes back as it was, and is not started again', () => {
    const run = start();
    connect(run);
    run.clock.increment(1_000);
    run.leg('leg.socketLost', 'visitor');
    const before = callContext(run);
    const restored = restart(run, 2_000, 1_000);
    expect(value(restored)).toEqual(IN_CALL);
    expect(callView(restored)).toEqual({ active: { agent: 'up', visitor: 'lost', session: 'paused' } });
    // The re-arm is forwarded: the session's timer now runs with the time left, and nothing else changed.
    expect(callContext(restored)).toEqual({ ...before, timerMs: before.deadlineAt! - (BASE + 3_000) });
    expect(restored.callEffects).toEqual([]);
    expect(restored.named('connectCall')).toEqual([]);
  });

  it('in a call, the session’s pause runs out at its original deadline after a restart', () => {
    const run = start();
    connect(run);
    run.clock.increment(1_000);
    run.leg('leg.socketLost', 'visitor');
    const restored = restart(run, 10_000, 5_000);
    restored.clock.set(1_000 + CALL_TIMEOUT - 1);
    expect(value(restored)).toEqual(IN_CALL);
    restored.clock.increment(1);
    expect(value(restored)).toBe('done');
    expect(context(restored).callEnd).toEqual({ callId: 'call-1', reason: 'reconnect-timeout' });
    expect(restored.named('endCallForBoth')).toEqual(['a']);
  });

  it('in the grace, the re-arm reaches both timers: the one due first decides, at its original deadline', () => {
    // The session's pause (8 s) is due before the agent's grace (10 s), both from the same socket loss.
    const callTimings = { reconnectionTimeout: 8_000 };
    const run = start({ callTimings });
    connect(run);
    run.clock.increment(1_000);
    run.leg('leg.socketLost', 'agent');
    run.actor.send({ type: 'agent.lost', agentId: 'a', cause: 'socket', at: run.at() });
    const restored = restart(run, 3_000, 1_000, { callTimings });
    expect(value(restored)).toEqual(AGENT_AWAY);
    expect(context(restored)).toMatchObject({ deadlineAt: BASE + 11_000, timerMs: 7_000 });
    expect(callContext(restored)).toMatchObject({ deadlineAt: BASE + 9_000, timerMs: 5_000 });
    restored.clock.set(9_000 - 1);
    expect(value(restored)).toEqual(AGENT_AWAY);
    restored.clock.increment(1);
    expect(value(restored)).toBe('ringing');
    expect(context(restored)).toMatchObject({
      currentAgentId: 'b',
      lastTrigger: { cause: 'session-timeout', agentId: 'a', at: BASE + 9_000 },
      callEnd: { callId: 'call-1', reason: 'reassigned' },
    });
  });

  it('in the grace, a deadline that passed during the restart reassigns at once', () => {
    const run = start();
    connect(run);
    run.actor.send({ type: 'agent.lost', agentId: 'a', cause: 'socket', at: run.at() });
    const restored = restart(run, 1_000, T.agentGrace * 2);
    restored.clock.increment(0);
    expect(value(restored)).toBe('ringing');
    expect(context(restored).lastTrigger).toEqual({ cause: 'grace-expired', agentId: 'a', at: BASE + 1_000 + T.agentGrace * 2 });
    expect(restored.named('endCallForAgent')).toEqual(['a']);
  });
});

describe('routing: context', () => {
  it('stays JSON-serializable in every state', () => {
    const run = start({ agents: [agent('a'), agent('b')] });
    const seen: unknown[] = [];
    run.actor.subscribe((s) => seen.push(s.context));
    connect(run);
    run.leg('leg.socketLost', 'agent');
    run.actor.send({ type: 'agent.lost', agentId: 'a', cause: 'socket', at: run.at() });
    run.clock.increment(T.agentGrace);
    run.actor.send({ type: 'agent.rejected', agentId: 'b', at: run.at() });
    run.actor.send({ type: 'queue.position', position: 2, at: run.at() });
    run.clock.increment(T.maxQueueWait);
    expect(value(run)).toBe('noAgents');
    for (const c of seen) expect(JSON.parse(JSON.stringify(c))).toEqual(c);
  });

  it('the persisted snapshot, with the call session inside it, survives JSON', () => {
    const run = start();
    connect(run);
    run.leg('leg.mediaReconnecting', 'visitor');
    const persisted = run.actor.getPersistedSnapshot();
    expect(JSON.parse(JSON.stringify(persisted))).toEqual(persisted);
    expect(persisted).toMatchObject({ children: { call: { src: 'callSession', snapshot: { context: { callId: 'call-1' } } } } });
  });
});

describe('routing: nobody is rung for a visitor who has no socket', () => {
  it('withdraws a ring when the visitor goes, waits, and rings the same agent again when they are back', () => {
    const run = start();
    expect(run.named('ringAgent')).toEqual(['a']);
    run.actor.send({ type: 'visitor.away', at: run.at() });
    expect(value(run)).toBe('waitingForVisitor');
    expect(run.named('cancelRing')).toEqual(['a']);
    // The withdrawn ring was no answer from the agent: not tried, and not a move against the bound.
    expect(context(run)).toMatchObject({ currentAgentId: null, triedAgentIds: [], reassignments: 0, visitorPresent: false });
    // Time passes and agents come and go: still nobody is rung.
    run.clock.increment(T.ringTimeout * 3);
    run.actor.send({ type: 'agents.updated', agents: threeAgents, at: run.at() });
    expect(run.named('ringAgent')).toEqual(['a']);
    run.actor.send({ type: 'visitor.back', at: run.at() });
    expect(value(run)).toBe('ringing');
    expect(run.named('ringAgent')).toEqual(['a', 'a']);
    expect(context(run)).toMatchObject({ triedAgentIds: ['a'], reassignments: 0, visitorPresent: true });
  });

  it('a withdrawn ring after a move gives the move back too', () => {
    const run = start();
    run.actor.send({ type: 'agent.rejected', agentId: 'a', at: run.at() });
    expect(context(run)).toMatchObject({ currentAgentId: 'b', reassignments: 1 });
    run.actor.send({ type: 'visitor.away', at: run.at() });
    expect(context(run)).toMatchObject({ triedAgentIds: ['a'], reassignments: 0 });
    run.actor.send({ type: 'visitor.back', at: run.at() });
    expect(context(run)).toMatchObject({ currentAgentId: 'b', triedAgentIds: ['a', 'b'], reassignments: 1 });
  });

  it('leaves the queue while the visitor is away and joins it again when they are back', () => {
    const run = start({ agents: [] });
    expect(value(run)).toBe('queued');
    run.actor.send({ type: 'visitor.away', at: run.at() });
    expect(value(run)).toBe('waitingForVisitor');
    run.clock.increment(T.maxQueueWait * 2);
    expect(value(run)).toBe('waitingForVisitor');
    run.actor.send({ type: 'visitor.back', at: run.at() });
    expect(value(run)).toBe('queued');
  });

  it("does not reassign a visitor who is away when the agent's grace runs out, and rings the next agent once they are back", () => {
    const run = start();
    connect(run);
    run.actor.send({ type: 'visitor.away', at: run.at() });
    expect(value(run)).toEqual(IN_CALL);
    run.actor.send({ type: 'agent.lost', agentId: 'a', cause: 'socket', at: run.at() });
    run.clock.increment(T.agentGrace);
    expect(value(run)).toBe('waitingForVisitor');
    // The agent's call ends as reassigned at the end of the grace, as it would with the visitor there.
    expect(run.spies.notifyVisitorReassigning).toHaveBeenCalledTimes(1);
    expect(run.ends('endCallForAgent')).toEqual([{ callId: 'call-1', reason: 'reassigned' }]);
    expect(run.named('ringAgent')).toEqual(['a']);
    run.actor.send({ type: 'visitor.back', at: run.at() });
    expect(run.named('ringAgent')).toEqual(['a', 'b']);
  });

  it.each([
    ['a visitor who never comes back is given up by the resume window, without anyone rung', 'visitor.gone'],
    ['a visitor who comes back only to cancel ends the request too', 'visitor.cancelled'],
  ] as const)('%s', (_name, type) => {
    const run = start();
    run.actor.send({ type: 'visitor.away', at: run.at() });
    run.actor.send({ type, at: run.at() });
    expect(value(run)).toBe('cancelled');
    expect(run.named('ringAgent')).toEqual(['a']);
  });
});
