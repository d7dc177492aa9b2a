import { describe, expect, it, vi } from 'vitest';
import { createActor, SimulatedClock } from 'xstate';
import {
  defaultMaxReassignments,
  defaultRoutingTimings,
  routingMachine,
  type AgentInfo,
  type RoutingContext,
  type RoutingInput,
} from './routing.machine.ts';

const T = defaultRoutingTimings;
/** Epoch ms of the simulated clock's zero. */
const BASE = 1_700_000_000_000;

const agent = (id: string, patch: Partial<AgentInfo> = {}): AgentInfo => ({
  id,
  name: id.toUpperCase(),
  pools: ['support'],
  status: 'available',
  lastAssignedAt: null,
  ...patch,
});

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
] as const;
type Effect = (typeof EFFECTS)[number];

function start(patch: Partial<RoutingInput> = {}, snapshot?: unknown) {
  /** Each effect with the agent it concerned, in call order. */
  const effects: { name: Effect; agentId: string | null }[] = [];
  const spies = Object.fromEntries(
    EFFECTS.map((name) => [
      name,
      vi.fn(({ context }: { context: RoutingContext }) => void effects.push({ name, agentId: context.currentAgentId })),
    ]),
  ) as Record<Effect, ReturnType<typeof vi.fn>>;
  const clock = new SimulatedClock();
  const input: RoutingInput = { requestId: 'r1', visitorId: 'v1', pool: 'support', agents: threeAgents, at: BASE, ...patch };
  const machine = routingMachine.provide({ actions: spies as never });
  const actor = createActor(machine, snapshot ? { clock, snapshot: snapshot as never, input } : { clock, input });
  actor.start();
  const at = () => BASE + clock.now();
  const named = (name: Effect) => effects.filter((e) => e.name === name).map((e) => e.agentId);
  return { actor, clock, spies, effects, named, at };
}
type Run = ReturnType<typeof start>;

const value = (run: Run) => run.actor.getSnapshot().value;
const context = (run: Run) => run.actor.getSnapshot().context;

function connect(run: Run) {
  run.actor.send({ type: 'agent.accepted', agentId: context(run).currentAgentId!, at: run.at() });
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
    expect(context(start())).toMatchObject({ timings: T, maxReassignments: defaultMaxReassignments });
    expect(T).toEqual({ ringTimeout: 15_000, agentGrace: 10_000, maxQueueWait: 120_000 });
    expect(defaultMaxReassignments).toBe(5);
    const run = start({ timings: { ringTimeout: 3_000 }, maxReassignments: 2 });
    expect(context(run)).toMatchObject({ timings: { ...T, ringTimeout: 3_000 }, maxReassignments: 2 });
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
    run.actor.send({ type: 'agent.accepted', agentId: 'c', at: run.at() });
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
    expect(value(run)).toBe('connected');
    expect(run.named('connectCall')).toEqual(['a']);
    expect(run.named('cancelRing')).toEqual([]);
    // The ring timer is gone with the ringing state.
    run.clock.increment(T.ringTimeout * 2);
    expect(value(run)).toBe('connected');
  });
});

describe('routing: losing the agent mid-call', () => {
  it("a socket drop gives the agent agentGrace; agent.returned resumes the same call", () => {
    const run = start();
    connect(run);
    run.actor.send({ type: 'agent.lost', agentId: 'a', cause: 'socket', at: run.at() });
    expect(value(run)).toBe('agentLost');
    expect(context(run).currentAgentId).toBe('a');
    run.clock.increment(T.agentGrace - 1);
    run.actor.send({ type: 'agent.returned', agentId: 'a', at: run.at() });
    expect(value(run)).toBe('connected');
    expect(context(run)).toMatchObject({ currentAgentId: 'a', reassignments: 0 });
    expect(run.named('ringAgent')).toEqual(['a']);
    expect(run.named('notifyVisitorReassigning')).toEqual([]);
    run.clock.increment(T.agentGrace);
    expect(value(run)).toBe('connected');
  });

  it('agent.returned from another agent does not end the grace', () => {
    const run = start();
    connect(run);
    run.actor.send({ type: 'agent.lost', agentId: 'a', cause: 'socket', at: run.at() });
    run.actor.send({ type: 'agent.returned', agentId: 'b', at: run.at() });
    expect(value(run)).toBe('agentLost');
  });

  it('grace expiry reassigns the visitor to the next agent', () => {
    const run = start();
    connect(run);
    run.actor.send({ type: 'agent.lost', agentId: 'a', cause: 'socket', at: run.at() });
    run.clock.increment(T.agentGrace);
    expect(value(run)).toBe('ringing');
    expect(run.named('notifyVisitorReassigning')).toEqual([null]);
    expect(run.named('ringAgent')).toEqual(['a', 'b']);
    expect(context(run)).toMatchObject({
      currentAgentId: 'b',
      reassignments: 1,
      lastTrigger: { cause: 'grace-expired', agentId: 'a', at: BASE + T.agentGrace },
    });
  });

  it.each(['away', 'logout'] as const)('going %s mid-call reassigns at once', (cause) => {
    const run = start();
    connect(run);
    run.actor.send({ type: 'agent.lost', agentId: 'a', cause, at: run.at() });
    expect(value(run)).toBe('ringing');
    expect(run.named('ringAgent')).toEqual(['a', 'b']);
    expect(context(run).lastTrigger?.cause).toBe(cause);
  });

  it.each(['away', 'logout'] as const)('going %s during the grace reassigns at once', (cause) => {
    const run = start();
    connect(run);
    run.actor.send({ type: 'agent.lost', agentId: 'a', cause: 'socket', at: run.at() });
    run.actor.send({ type: 'agent.lost', agentId: 'a', cause, at: run.at() });
    expect(value(run)).toBe('ringing');
    expect(run.named('ringAgent')).toEqual(['a', 'b']);
  });

  it('session.agentTimedOut reassigns at once during the grace, and means nothing while the agent is in the call', () => {
    const inCall = start();
    connect(inCall);
    inCall.actor.send({ type: 'session.agentTimedOut', at: inCall.at() });
    expect(value(inCall)).toBe('connected');
    expect(inCall.named('notifyVisitorReassigning')).toHaveLength(0);

    const inGrace = start();
    connect(inGrace);
    inGrace.actor.send({ type: 'agent.lost', agentId: 'a', cause: 'socket', at: inGrace.at() });
    inGrace.actor.send({ type: 'session.agentTimedOut', at: inGrace.at() });
    expect(value(inGrace)).toBe('ringing');
    expect(context(inGrace).lastTrigger).toMatchObject({ cause: 'session-timeout', agentId: 'a' });
    expect(inGrace.named('notifyVisitorReassigning')).toHaveLength(1);
    expect(inGrace.named('ringAgent')).toEqual(['a', 'b']);
  });

  it('ignores a loss of another agent mid-call', () => {
    const run = start();
    connect(run);
    run.actor.send({ type: 'agent.lost', agentId: 'b', cause: 'logout', at: run.at() });
    run.actor.send({ type: 'agent.lost', agentId: 'c', cause: 'socket', at: run.at() });
    expect(value(run)).toBe('connected');
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
    const run = start({ maxReassignments: 1 });
    connect(run);
    run.actor.send({ type: 'agent.lost', agentId: 'a', cause: 'socket', at: run.at() });
    run.actor.send({ type: 'session.agentTimedOut', at: run.at() });
    connect(run);
    run.actor.send({ type: 'agent.lost', agentId: 'b', cause: 'away', at: run.at() });
    expect(value(run)).toBe('exhausted');
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
  });

  it('visitor.cancelled ends the request from queued, connected and agentLost', () => {
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
    for (const run of [queued, connected, lost]) expect(run.spies.cancelRing).not.toHaveBeenCalled();
  });

  it('call.ended in connected or agentLost ends the request as done', () => {
    const connected = start();
    connect(connected);
    connected.actor.send({ type: 'call.ended', at: connected.at() });
    expect(value(connected)).toBe('done');
    expect(context(connected).endReason).toBe('completed');

    const lost = start();
    connect(lost);
    lost.actor.send({ type: 'agent.lost', agentId: 'a', cause: 'socket', at: lost.at() });
    lost.actor.send({ type: 'call.ended', at: lost.at() });
    expect(value(lost)).toBe('done');
  });

  it('a final state accepts nothing more', () => {
    const run = start();
    connect(run);
    run.actor.send({ type: 'call.ended', at: run.at() });
    const before = run.actor.getSnapshot();
    run.actor.send({ type: 'visitor.cancelled', at: run.at() });
    run.actor.send({ type: 'agents.updated', agents: [], at: run.at() });
    expect(run.actor.getSnapshot().value).toBe('done');
    expect(run.actor.getSnapshot().context).toEqual(before.context);
  });
});

describe('routing: server restart', () => {
  it.each([
    ['ringing', T.ringTimeout, (_run: Run) => {}],
    ['agentLost', T.agentGrace, (run: Run) => {
      connect(run);
      run.actor.send({ type: 'agent.lost', agentId: 'a', cause: 'socket', at: run.at() });
    }],
    ['queued', T.maxQueueWait, (run: Run) => {
      run.actor.send({ type: 'agent.rejected', agentId: 'a', at: run.at() });
      run.actor.send({ type: 'agent.rejected', agentId: 'b', at: run.at() });
      run.actor.send({ type: 'agent.rejected', agentId: 'c', at: run.at() });
    }],
  ] as const)('a restored actor in %s re-arms its timer with the time left', (state, duration, reach) => {
    const run = start();
    reach(run);
    expect(value(run)).toBe(state);
    const deadlineAt = context(run).deadlineAt!;
    expect(deadlineAt).toBe(BASE + duration);
    run.clock.increment(duration * 0.4);
    const persisted = JSON.parse(JSON.stringify(run.actor.getPersistedSnapshot()));
    run.actor.stop();

    // The new process has its own clock; 1000 ms passed while it restarted.
    const restored = start({}, persisted);
    restored.clock.set(duration * 0.4 + 1000);
    expect(restored.actor.getSnapshot().value).toBe(state);
    restored.actor.send({ type: 'timers.rearm', at: restored.at() });
    const left = duration * 0.6 - 1000;
    expect(context(restored).timerMs).toBe(left);
    const fired = () =>
      JSON.stringify(context(restored).lastTrigger) !== JSON.stringify(context(run).lastTrigger) || value(restored) !== state;
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
});

describe('routing: context', () => {
  it('stays JSON-serializable in every state', () => {
    const run = start({ agents: [agent('a'), agent('b')] });
    const seen: unknown[] = [];
    run.actor.subscribe((s) => seen.push(s.context));
    connect(run);
    run.actor.send({ type: 'agent.lost', agentId: 'a', cause: 'socket', at: run.at() });
    run.clock.increment(T.agentGrace);
    run.actor.send({ type: 'agent.rejected', agentId: 'b', at: run.at() });
    run.actor.send({ type: 'queue.position', position: 2, at: run.at() });
    run.clock.increment(T.maxQueueWait);
    expect(value(run)).toBe('noAgents');
    for (const c of seen) expect(JSON.parse(JSON.stringify(c))).toEqual(c);
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
    expect(value(run)).toBe('connected');
    run.actor.send({ type: 'agent.lost', agentId: 'a', cause: 'socket', at: run.at() });
    run.clock.increment(T.agentGrace);
    expect(value(run)).toBe('waitingForVisitor');
    // The agent's call ends as reassigned at the end of the grace, as it would with the visitor there.
    expect(run.spies.notifyVisitorReassigning).toHaveBeenCalledTimes(1);
    expect(run.named('ringAgent')).toEqual(['a']);
    run.actor.send({ type: 'visitor.back', at: run.at() });
    expect(run.named('ringAgent')).toEqual(['a', 'b']);
  });

  it('a visitor who never comes back is given up by the resume window, without anyone rung', () => {
    const run = start();
    run.actor.send({ type: 'visitor.away', at: run.at() });
    run.actor.send({ type: 'visitor.cancelled', at: run.at() });
    expect(value(run)).toBe('cancelled');
    expect(run.named('ringAgent')).toEqual(['a']);
  });
});
