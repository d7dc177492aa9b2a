import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createActor, SimulatedClock, type SnapshotFrom } from 'xstate';
import { defaultCallSessionTimings } from './callSession.machine.ts';
import type { CallLeg } from './protocol.ts';
import { defaultRoutingTimings, routingMachine, type AgentInfo, type RoutingContext, type RoutingEvent } from './routing.machine.ts';

const T = defaultRoutingTimings;
const CALL_TIMEOUT = defaultCallSessionTimings.reconnectionTimeout;
const BASE = 1_700_000_000_000;
const POOL = 'support';
const IDS = ['a', 'b', 'c', 'd', 'e'] as const;
const LONGEST = Math.max(T.ringTimeout, T.agentGrace, T.maxQueueWait, CALL_TIMEOUT);
const FINAL = ['done', 'noAgents', 'cancelled', 'exhausted'];
const WITH_AGENT = ['ringing', 'connected'];

const agentArb: fc.Arbitrary<AgentInfo> = fc.record({
  id: fc.constantFrom(...IDS),
  name: fc.constant('Agent'),
  pools: fc.subarray([POOL, 'sales'], { minLength: 1 }),
  status: fc.constantFrom('available', 'available', 'away', 'offline', 'busy'),
  lastAssignedAt: fc.option(fc.nat(1_000), { nil: null }),
});
const agentsArb = fc.uniqueArray(agentArb, { selector: (a) => a.id, maxLength: IDS.length });

/** `current` is resolved when the step runs, so triggers hit the agent being rung often enough. */
const whoArb = fc.constantFrom<'current' | (typeof IDS)[number]>('current', 'current', 'current', ...IDS);

type Step =
  | { kind: 'send'; make: (current: string | null, at: number) => RoutingEvent }
  | { kind: 'advance'; ms: number }
  | { kind: 'restart'; downMs: number };

const pick = (who: 'current' | string, current: string | null) => (who === 'current' ? current ?? 'a' : who);

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 8, arbitrary: agentsArb.map((agents): Step => ({ kind: 'send', make: (_, at) => ({ type: 'agents.updated', agents, at }) })) },
  {
    weight: 3,
    arbitrary: fc
      .tuple(fc.constantFrom('agent.rejected', 'agent.returned'), whoArb)
      .map(([type, who]): Step => ({ kind: 'send', make: (current, at) => ({ type, agentId: pick(who, current), at }) })),
  },
  {
    weight: 2,
    arbitrary: whoArb.map((who): Step => ({
      kind: 'send',
      make: (current, at) => ({ type: 'agent.accepted', agentId: pick(who, current), callId: `call-${at}`, at }),
    })),
  },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.constantFrom('socket', 'away', 'logout'), whoArb)
      .map(([cause, who]): Step => ({ kind: 'send', make: (current, at) => ({ type: 'agent.lost', agentId: pick(who, current), cause, at }) })),
  },
  // What the call's session hears, through the request: the legs coming and going.
  {
    weight: 5,
    arbitrary: fc
      .tuple(
        fc.constantFrom('leg.socketLost', 'leg.socketBack', 'leg.mediaReconnecting', 'leg.mediaConnected', 'leg.mediaFailed'),
        fc.constantFrom<CallLeg>('agent', 'visitor'),
      )
      .map(([type, leg]): Step => ({ kind: 'send', make: (_, at) => ({ type, leg, at }) })),
  },
  { weight: 4, arbitrary: fc.integer({ min: 1, max: 50 }).map((position): Step => ({ kind: 'send', make: (_, at) => ({ type: 'queue.position', position, at }) })) },
  {
    weight: 2,
    arbitrary: fc.constantFrom<CallLeg>('agent', 'visitor').map((by): Step => ({ kind: 'send', make: (_, at) => ({ type: 'call.hangup', by, at }) })),
  },
  { weight: 4, arbitrary: fc.constant<Step>({ kind: 'send', make: (_, at) => ({ type: 'timers.rearm', at }) }) },
  // Rare, or most runs would end early.
  { weight: 1, arbitrary: fc.constant<Step>({ kind: 'send', make: (_, at) => ({ type: 'visitor.cancelled', at }) }) },
  { weight: 1, arbitrary: fc.constant<Step>({ kind: 'send', make: (_, at) => ({ type: 'visitor.gone', at }) }) },
  { weight: 2, arbitrary: fc.constant<Step>({ kind: 'send', make: (_, at) => ({ type: 'visitor.away', at }) }) },
  { weight: 3, arbitrary: fc.constant<Step>({ kind: 'send', make: (_, at) => ({ type: 'visitor.back', at }) }) },
  {
    weight: 3,
    arbitrary: fc
      .oneof(fc.constantFrom(T.ringTimeout, T.agentGrace, T.maxQueueWait, CALL_TIMEOUT), fc.integer({ min: 0, max: 20_000 }))
      .map((ms): Step => ({ kind: 'advance', ms })),
  },
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 30_000 }).map((downMs): Step => ({ kind: 'restart', downMs })) },
);

type Snapshot = SnapshotFrom<typeof routingMachine>;

/** Rings seen by the `ringAgent` effect, with what the actor knew of the agent at that moment. */
interface Ring {
  agentId: string;
  eligible: boolean;
  visitorPresent: boolean;
}

function harness(agents: AgentInfo[], maxReassignments: number) {
  const rings: Ring[] = [];
  const machine = routingMachine.provide({
    actions: {
      ringAgent: ({ context }: { context: RoutingContext }) => {
        const agent = context.agents.find((a) => a.id === context.currentAgentId);
        rings.push({
          agentId: context.currentAgentId!,
          eligible: !!agent && agent.status === 'available' && agent.pools.includes(context.pool),
          visitorPresent: context.visitorPresent,
        });
      },
    },
  });
  const input = { requestId: 'r', visitorId: 'v', pool: POOL, agents, maxReassignments, at: BASE };
  let clock = new SimulatedClock();
  let actor = createActor(machine, { clock, input }).start();
  const at = () => BASE + clock.now();

  const restore = (snapshot: unknown, now: number, logic = machine) => {
    const nextClock = new SimulatedClock();
    nextClock.set(now);
    const next = createActor(logic, { clock: nextClock, snapshot: snapshot as never, input }).start();
    next.send({ type: 'timers.rearm', at: BASE + now });
    return { clock: nextClock, actor: next };
  };

  return {
    rings,
    machine,
    snapshot: () => actor.getSnapshot() as Snapshot,
    apply(step: Step) {
      if (step.kind === 'advance') clock.increment(step.ms);
      else if (step.kind === 'send') {
        const event = step.make(actor.getSnapshot().context.currentAgentId, at());
        // A ring withdrawn because the visitor left is undone, not a try: it drops out of the rings counted.
        const withdrawn = event.type === 'visitor.away' && actor.getSnapshot().matches('ringing');
        actor.send(event);
        if (withdrawn) rings.pop();
      }
      else {
        const persisted = JSON.parse(JSON.stringify(actor.getPersistedSnapshot()));
        const now = clock.now() + step.downMs;
        actor.stop();
        ({ clock, actor } = restore(persisted, now));
      }
    },
    /** Left alone, with time passing and nothing else happening, the request must settle. */
    settlesAlone(): boolean {
      if (actor.getSnapshot().status === 'done') return true;
      // A copy without the spy, so its rings are not counted as the request's.
      const copy = restore(JSON.parse(JSON.stringify(actor.getPersistedSnapshot())), clock.now(), routingMachine);
      const settled = () => {
        const s = copy.actor.getSnapshot() as Snapshot;
        // Waiting for an absent visitor is settled here: the server's resume window ends it.
        return s.status === 'done' || s.matches('connected') || s.value === 'waitingForVisitor';
      };
      // Each timer either ends the request or rings a new agent, and rings are bounded by maxReassignments.
      for (let i = 0; i <= 2 * (maxReassignments + 2) && !settled(); i++) copy.clock.increment(LONGEST);
      const ok = settled();
      copy.actor.stop();
      return ok;
    },
  };
}

/** The top-level state: `connected` for either of its substates. */
const topLevel = (s: Snapshot) => (typeof s.value === 'string' ? s.value : Object.keys(s.value)[0]!);

function checkInvariants(s: Snapshot, rings: Ring[], maxReassignments: number) {
  const c = s.context;
  const rung = rings.map((r) => r.agentId);
  expect(new Set(rung).size, `an agent was rung twice: ${rung.join(',')}`).toBe(rung.length);
  expect(rings.every((r) => r.eligible), 'rang an agent that was not eligible').toBe(true);
  expect(rings.every((r) => r.visitorPresent), 'rang an agent for a visitor who had no socket').toBe(true);
  if (s.value === 'ringing') expect(c.visitorPresent, 'ringing while the visitor is away').toBe(true);
  expect(c.triedAgentIds).toEqual(rung);
  expect(c.reassignments).toBe(Math.max(0, rung.length - 1));
  expect(c.reassignments).toBeLessThanOrEqual(maxReassignments);
  expect(rung.length).toBeLessThanOrEqual(maxReassignments + 1);
  const value = topLevel(s);
  // The call's session lives exactly as long as the connected state, and runs the request's call.
  const call = s.children.call?.getSnapshot();
  expect(call !== undefined, `a call session in ${value}`).toBe(value === 'connected');
  if (call) expect(call.context.callId).toBe(c.callId);
  if (value === 'connected') expect(c.callEnd).toBeNull();
  if (value === 'done') expect(c.callEnd?.callId).toBe(c.callId);
  if (WITH_AGENT.includes(value)) expect(c.currentAgentId, `currentAgentId in ${value}`).not.toBeNull();
  if (value === 'queued') expect(c.currentAgentId).toBeNull();
  if (c.currentAgentId !== null) expect(c.currentAgentId).toBe(rung[rung.length - 1]);
  if (WITH_AGENT.includes(value)) expect(c.queuePosition).toBeNull();
  expect(s.status === 'done').toBe(FINAL.includes(value));
  expect(c.endReason !== null).toBe(FINAL.includes(value));
  expect(JSON.parse(JSON.stringify(c))).toEqual(c);
}

describe('routing properties', () => {
  it('never rings an agent twice, bounds reassignments, and never leaves a visitor stuck', () => {
    fc.assert(
      fc.property(agentsArb, fc.integer({ min: 0, max: 3 }), fc.array(stepArb, { maxLength: 40 }), (agents, maxReassignments, steps) => {
        const run = harness(agents, maxReassignments);
        checkInvariants(run.snapshot(), run.rings, maxReassignments);
        for (const [i, step] of steps.entries()) {
          if (run.snapshot().status === 'done') break;
          run.apply(step);
          checkInvariants(run.snapshot(), run.rings, maxReassignments);
          // Settling replays a restored copy for minutes of simulated time; sampling keeps the suite fast.
          if (i % 4 === 3 || i === steps.length - 1) {
            expect(run.settlesAlone(), `stuck in ${JSON.stringify(run.snapshot().value)}`).toBe(true);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it('a request that keeps losing agents ends within maxReassignments + 1 rings', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 5 }),
        fc.array(fc.constantFrom('rejected', 'timeout', 'socket', 'away', 'logout', 'midcall', 'calltimeout'), { minLength: 1, maxLength: 20 }),
        (maxReassignments, triggers) => {
          // Plenty of agents, so only the bound can stop the cascade.
          const agents = Array.from({ length: 12 }, (_, i): AgentInfo => ({
            id: `agent-${String(i).padStart(2, '0')}`,
            name: 'Agent',
            pools: [POOL],
            status: 'available',
            lastAssignedAt: null,
          }));
          const run = harness(agents, maxReassignments);
          for (const trigger of triggers) {
            const s = run.snapshot();
            if (s.status === 'done') break;
            const current = s.context.currentAgentId!;
            if (trigger === 'timeout') run.apply({ kind: 'advance', ms: T.ringTimeout });
            else if (trigger === 'rejected') run.apply({ kind: 'send', make: (_, at) => ({ type: 'agent.rejected', agentId: current, at }) });
            else if (trigger === 'midcall') {
              run.apply({ kind: 'send', make: (_, at) => ({ type: 'agent.accepted', agentId: current, callId: `call-${at}`, at }) });
              run.apply({ kind: 'send', make: (_, at) => ({ type: 'agent.lost', agentId: current, cause: 'socket', at }) });
              run.apply({ kind: 'advance', ms: T.agentGrace });
            } else if (trigger === 'calltimeout') {
              // The agent's media breaks, then their socket: the call's pause runs out before the grace does.
              run.apply({ kind: 'send', make: (_, at) => ({ type: 'agent.accepted', agentId: current, callId: `call-${at}`, at }) });
              run.apply({ kind: 'send', make: (_, at) => ({ type: 'leg.mediaReconnecting', leg: 'agent', at }) });
              run.apply({ kind: 'advance', ms: CALL_TIMEOUT - T.agentGrace / 2 });
              run.apply({ kind: 'send', make: (_, at) => ({ type: 'leg.socketLost', leg: 'agent', at }) });
              run.apply({ kind: 'send', make: (_, at) => ({ type: 'agent.lost', agentId: current, cause: 'socket', at }) });
              run.apply({ kind: 'advance', ms: T.agentGrace / 2 });
              expect(run.snapshot().context.lastTrigger?.cause).toBe('session-timeout');
            } else run.apply({ kind: 'send', make: (_, at) => ({ type: 'agent.lost', agentId: current, cause: trigger, at }) });
          }
          const s = run.snapshot();
          expect(run.rings.length).toBe(Math.min(triggers.length, maxReassignments) + 1);
          if (triggers.length > maxReassignments) expect(s.value).toBe('exhausted');
          else expect(s.value).toBe('ringing');
        },
      ),
      { numRuns: 300 },
    );
  });
});
