/* eslint-disable @typescript-eslint/no-explicit-any -- the paths carry any machine's snapshots and events */
/**
 * The routing and callSession model paths from test/model, run against the real server: every model event
 * is produced by what real clients do (accept, reject, drop a socket, go away, report media, hang up…) and,
 * after every step, the server's own actor must be in the state the model predicts. Transition coverage is
 * measured from the server's actors, so the figures say what the server really did.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { AnyStateNode, AnyTransitionDefinition, InspectionEvent } from 'xstate';
import { allStates, allTransitions, coveringPaths, generatePaths, transitionKey, type ModelSpec } from '../model/harness.ts';
import { routingSpec } from '../model/routing.spec.ts';
import { callSessionSpec } from '../model/callSession.spec.ts';
import type { LegStatus } from '@callchart/machines';
import { agentToken, startTestServer, TestClient, visitorToken, sleep, type DemoAgent, type TestServer } from '../support/server.ts';

type Step = { event: { type: string; [key: string]: unknown }; state: { value: unknown; status: string; context: any } };
type Path = { steps: Step[] };

/** Queue positions are computed across real visitors; the reassignment suite covers them. */
const ELSEWHERE = new Set(['queue.position']);

/**
 * Transitions no client can cause, because a client reports its media only over its socket: a lost leg
 * hearing that its media is connected while its socket is still down, and the socket coming back to find
 * the media already connected (a socket drop leaves it unreported until the client reports again).
 */
const ONLY_IN_THE_MODEL = new Set(
  (['agent', 'visitor'] as const).flatMap((leg) => [
    `callSession.active.${leg}.lost|leg.mediaConnected|1`,
    `callSession.active.${leg}.lost|leg.socketBack|0`,
  ]),
);

/**
 * The model's own events, less those no client can produce: a media report from a leg whose socket is
 * down (it can only report over its socket), and the facts only the server computes.
 */
function producible<M extends ModelSpec<any>>(spec: M): M {
  return {
    ...spec,
    filterEvents: (snapshot: any, event: { type: string; leg?: string }) => {
      if (ELSEWHERE.has(event.type)) return false;
      // A visitor away has no socket: they can neither hang up nor cancel until they are back, and nobody
      // else can end the call while its agent is gone too. Only the resume window gives up their request,
      // and only while it is not in a call.
      if (snapshot.context.visitorPresent === false) {
        if (event.type === 'call.ended' && !snapshot.matches('connected')) return false;
        if (event.type === 'visitor.cancelled' && !snapshot.matches('waitingForVisitor')) return false;
      }
      const legs = snapshot.context.legs as Record<string, { socket: string }> | undefined;
      // A leg whose socket is down can neither report nor hang up until it is back.
      const leg = event.leg ?? (event as { by?: string }).by;
      const reports = event.type.startsWith('leg.media') || event.type === 'leg.attempt' || event.type === 'call.hangup';
      return !(legs && leg && reports && legs[leg]?.socket === 'down');
    },
  };
}

function selectPaths(spec: ModelSpec<any>): Path[] {
  const { shortest, edges, simple } = generatePaths(spec);
  return coveringPaths(spec, [...shortest, ...edges, ...simple] as never) as unknown as Path[];
}

class Coverage {
  readonly states = new Set<string>();
  readonly transitions = new Set<string>();
  record(inspection: InspectionEvent): void {
    if (inspection.type !== '@xstate.microstep' && inspection.type !== '@xstate.snapshot') return;
    for (const node of (inspection.snapshot as unknown as { _nodes: AnyStateNode[] })._nodes) this.states.add(node.id);
    if (inspection.type === '@xstate.microstep') {
      for (const t of (inspection as unknown as { _transitions: AnyTransitionDefinition[] })._transitions) this.transitions.add(transitionKey(t));
    }
  }
  line(name: string, spec: ModelSpec<any>): { text: string; missing: string[] } {
    const states = allStates(spec.machine).map((node) => node.id);
    const transitions = allTransitions(spec.machine).map(transitionKey);
    const coveredStates = states.filter((id) => this.states.has(id)).length;
    const coveredTransitions = transitions.filter((key) => this.transitions.has(key)).length;
    const modelOnly = transitions.filter((key) => ONLY_IN_THE_MODEL.has(key)).length;
    return {
      text:
        `server model coverage ${name}: states ${coveredStates}/${states.length} transitions ${coveredTransitions}/${transitions.length}` +
        (modelOnly ? ` (${modelOnly} no client can cause)` : ''),
      missing: transitions.filter((key) => !this.transitions.has(key) && !ONLY_IN_THE_MODEL.has(key)),
    };
  }
}

/**
 * The server restarts (restored actors get `timers.rearm`) and every client that was connected comes back
 * with its resume token, as the signaling machine does; clients already gone stay gone.
 */
async function restartAndResume(t: TestServer, clients: Record<string, TestClient>, tokens: Record<string, string>): Promise<void> {
  const connected = Object.entries(clients).filter(([, client]) => client.socket.connected);
  await t.restart();
  for (const [name, client] of connected) {
    clients[name] = await TestClient.connect(t.url, tokens[name]!, client.resumeToken!);
    await clients[name]!.next('session.resumed');
  }
}

/**
 * Timers keep running through a restart (they are re-armed with the time left), while the model's
 * `timers.rearm` assumes none passed: a path that restarts gets timers longer than a restart takes.
 */
function timerFor(path: Path, short: number): number {
  return path.steps.some((step) => step.event.type === 'timers.rearm') ? 8_000 : short;
}

async function until(check: () => string | null, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let problem = check();
  while (problem !== null) {
    if (Date.now() > deadline) throw new Error(problem);
    await sleep(15);
    problem = check();
  }
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

// ---------------------------------------------------------------------------------------------
// callSession

const callCoverage = new Coverage();
const CALL_TIMEOUT_MS = 500;

describe('callSession model paths on the real server', () => {
  const paths = selectPaths(producible(callSessionSpec));
  afterAll(() => {
    const { text, missing } = callCoverage.line('callSession', callSessionSpec);
    console.log(`${text} (${paths.length} paths)`);
    expect(missing, 'callSession transitions the server never took').toEqual([]);
  });

  for (const [index, path] of paths.entries()) {
    it(`path ${index + 1}: ${path.steps.slice(1).map((s) => s.event.type).join(' → ')}`, async () => {
      const timeoutMs = timerFor(path, CALL_TIMEOUT_MS);
      const t = await startTestServer(
        { RECONNECTION_TIMEOUT_MS: String(timeoutMs), AGENT_GRACE_MS: '60000', RESUME_WINDOW_MS: '60000', RING_TIMEOUT_MS: '30000' },
        { inspect: (inspection, actor) => actor.kind === 'callSession' && callCoverage.record(inspection) },
      );
      try {
        await runCallPath(t, path, timeoutMs);
      } finally {
        await t.close();
      }
    });
  }
});

async function runCallPath(t: TestServer, path: Path, timeoutMs: number): Promise<void> {
  const tokens = { agent: await agentToken(t.url, 'ada'), visitor: (await visitorToken(t.url)).token };
  const legs: Record<'agent' | 'visitor', TestClient> = {
    agent: await TestClient.connect(t.url, tokens.agent),
    visitor: await TestClient.connect(t.url, tokens.visitor),
  };
  const { requestId } = (await legs.visitor.emit('visitor.request', { pool: 'support' })) as { requestId: string };
  await legs.agent.next('agent.ring');
  await legs.agent.emit('agent.accept', { requestId });
  const { callId } = await legs.agent.next('call.accepted');
  try {
    for (const step of path.steps.slice(1)) {
      const event = step.event;
      const leg = (event.leg ?? event.by) as 'agent' | 'visitor';
      switch (event.type) {
        case 'leg.socketLost':
          legs[leg].close();
          break;
        case 'leg.socketBack':
          legs[leg] = await TestClient.connect(t.url, tokens[leg], legs[leg].resumeToken!);
          break;
        case 'leg.mediaReconnecting':
        case 'leg.mediaConnected':
        case 'leg.mediaFailed': {
          const state = event.type === 'leg.mediaConnected' ? 'connected' : event.type === 'leg.mediaReconnecting' ? 'reconnecting' : 'failed';
          expect(await legs[leg].emit('call.media', { callId, state })).toEqual({ ok: true });
          break;
        }
        case 'leg.attempt':
          expect(
            await legs[leg].emit('call.telemetry', { callId, attempt: 1, at: Date.now(), durationMs: event.durationMs as number, outcome: event.outcome as 'recovered' }),
          ).toEqual({ ok: true });
          break;
        case 'call.hangup':
          expect(await legs[leg].emit('call.hangup', { callId })).toEqual({ ok: true });
          break;
        case 'timers.rearm': {
          await restartAndResume(t, legs, tokens);
          // The restart dropped every socket, so the server forgot the media; a resumed client reports it
          // again. The model has no restart: its legs are as they were.
          const model = step.state.context.legs as Record<'agent' | 'visitor', LegStatus>;
          for (const name of ['agent', 'visitor'] as const) {
            const { socket, media: state } = model[name];
            if (socket === 'up' && state !== 'unreported') expect(await legs[name].emit('call.media', { callId, state })).toEqual({ ok: true });
          }
          break;
        }
        default:
          if (!event.type.startsWith('xstate.after.')) throw new Error(`no client action produces ${event.type}`);
      }
      const expected = step.state;
      await until(() => {
        const live = t.server.switchboard.callSnapshot(callId);
        if (expected.status === 'done') {
          const row = t.server.store.calls.get(callId);
          const reason = expected.context.endReason === 'agent-lost' ? 'reassigned' : expected.context.endReason;
          return row?.state === 'ended' && row.endReason === reason ? null : `after ${event.type}: call row ${JSON.stringify(row)} should end with ${reason}`;
        }
        if (!live) return `after ${event.type}: the call ended, the model says ${JSON.stringify(expected.value)}`;
        if (!same(live.value, expected.value) || !same(live.context.legs, expected.context.legs)) {
          return `after ${event.type}: server ${JSON.stringify(live.value)} ${JSON.stringify(live.context.legs)}, model ${JSON.stringify(expected.value)} ${JSON.stringify(expected.context.legs)}`;
        }
        return null;
      }, event.type.startsWith('xstate.after.') ? timeoutMs + 4_000 : 4_000);
    }
  } finally {
    for (const client of Object.values(legs)) client.close();
  }
}

// ---------------------------------------------------------------------------------------------
// routing

const routingCoverage = new Coverage();
const SHORT_MS = 400;
/** The model's agents a, b and c are played by ada, grace and alan (ids order them the same way). */
const PLAYER: Record<string, DemoAgent> = { a: 'ada', b: 'grace', c: 'alan' };

describe('routing model paths on the real server', () => {
  const paths = selectPaths(producible(routingSpec));
  afterAll(() => {
    const { text, missing } = routingCoverage.line('routing', routingSpec);
    console.log(`${text} (${paths.length} paths)`);
    expect(missing, 'routing transitions the server never took').toEqual([]);
  });

  for (const [index, path] of paths.entries()) {
    it(`path ${index + 1}: ${path.steps.slice(1).map((s) => s.event.type).join(' → ')}`, async () => {
      const events = path.steps.map((step) => step.event.type);
      // One real timer cannot be both the shorter and the longer: each path gets the order it needs.
      const graceFirst = events.some((type) => type.startsWith('xstate.after.agentGrace'));
      // A visitor who stays away is given up by the resume window, so a path that needs it gets a short one.
      const givenUp = path.steps.some((step, i) => step.event.type === 'visitor.cancelled' && path.steps[i - 1]?.state.value === 'waitingForVisitor');
      const short = timerFor(path, SHORT_MS);
      const t = await startTestServer(
        {
          RING_TIMEOUT_MS: String(short),
          MAX_QUEUE_WAIT_MS: String(short),
          AGENT_GRACE_MS: graceFirst ? String(short) : '60000',
          RECONNECTION_TIMEOUT_MS: graceFirst ? '60000' : String(short),
          RESUME_WINDOW_MS: givenUp ? String(SHORT_MS * 4) : '60000',
          MAX_REASSIGNMENTS: '1',
        },
        { inspect: (inspection, actor) => actor.kind === 'routing' && routingCoverage.record(inspection) },
      );
      try {
        await runRoutingPath(t, path, short);
      } finally {
        await t.close();
      }
    });
  }
});

async function runRoutingPath(t: TestServer, path: Path, short: number): Promise<void> {
  const tokens = Object.fromEntries(
    await Promise.all((['ada', 'grace', 'alan', 'inspector'] as DemoAgent[]).map(async (name) => [name, await agentToken(t.url, name)])),
  ) as Record<DemoAgent, string>;
  const agents = {} as Record<DemoAgent, TestClient>;
  for (const name of ['ada', 'grace', 'alan'] as DemoAgent[]) agents[name] = await TestClient.connect(t.url, tokens[name]);
  // Model: a available, b busy, c away. Grace plays a busy agent by being away: neither can be rung.
  await agents.grace.emit('agent.presence', { status: 'away' });
  await agents.alan.emit('agent.presence', { status: 'away' });
  const visitorSession = await visitorToken(t.url);
  let visitor = await TestClient.connect(t.url, visitorSession.token);
  const extras: TestClient[] = [];
  const { requestId } = (await visitor.emit('visitor.request', { pool: 'support' })) as { requestId: string };
  let callId: string | null = null;
  try {
    await check(t, requestId, path.steps[0]!, 'start', 4_000);
    for (const step of path.steps.slice(1)) {
      const event = step.event;
      const player = typeof event.agentId === 'string' ? PLAYER[event.agentId]! : null;
      switch (event.type) {
        case 'agent.accepted':
          await agents[player!].emit('agent.accept', { requestId });
          callId = (await visitor.next('call.accepted')).callId;
          break;
        case 'agent.rejected': {
          const reply = await agents[player!].emit('agent.reject', { requestId });
          // A reject naming someone who is not being rung is refused and changes nothing.
          if (event.agentId === 'c') expect(reply).toMatchObject({ ok: false, error: { code: 'forbidden' } });
          break;
        }
        case 'agent.lost':
          // An agent whose socket is gone can still go away or log out from a newly opened dashboard.
          if (event.cause !== 'socket' && !agents[player!].socket.connected) agents[player!] = await TestClient.connect(t.url, tokens[player!]);
          if (event.cause === 'socket') agents[player!].close();
          else if (event.cause === 'away') await agents[player!].emit('agent.presence', { status: 'away' });
          else await agents[player!].emit('agent.logout', {});
          break;
        case 'agent.returned':
          agents[player!] = await TestClient.connect(t.url, tokens[player!], agents[player!].resumeToken!);
          break;
        case 'agents.updated': {
          const bFree = (event.agents as { id: string; status: string }[]).some((agent) => agent.id === 'b' && agent.status === 'available');
          if (bFree) await agents.grace.emit('agent.presence', { status: 'available' });
          // Someone outside the pool coming online changes the agents' view but nobody's eligibility.
          else extras.push(await TestClient.connect(t.url, tokens.inspector));
          break;
        }
        case 'session.agentTimedOut': {
          // The agent's media never comes back: the call session times out and asks for reassignment.
          const current = t.server.switchboard.routingSnapshot(requestId)?.context.currentAgentId;
          const live = current ? agents[current as DemoAgent] : null;
          if (live?.socket.connected && callId) await live.emit('call.media', { callId, state: 'reconnecting' });
          break;
        }
        case 'call.ended': {
          // The visitor hangs up; while they are away, the agent in the call does.
          const current = t.server.switchboard.routingSnapshot(requestId)?.context.currentAgentId;
          await (visitor.socket.connected ? visitor : agents[PLAYER[current!]!]).emit('call.hangup', { callId: callId! });
          break;
        }
        case 'timers.rearm': {
          const clients: Record<string, TestClient> = { ...agents, visitor };
          await restartAndResume(t, clients, { ...tokens, visitor: visitorSession.token });
          Object.assign(agents, { ada: clients.ada, grace: clients.grace, alan: clients.alan });
          visitor = clients.visitor!;
          break;
        }
        case 'visitor.cancelled':
          // A visitor away has no socket to cancel with: their resume window would end the request, so
          // they come back to cancel it, which the routing model does not see as a return.
          // Away, the visitor is given up by the resume window, which this path was given short.
          if (visitor.socket.connected) await visitor.emit('visitor.cancel', { requestId });
          break;
        case 'visitor.away':
          if (visitor.socket.connected) {
            const gone = new Promise<void>((resolve) => visitor.socket.once('disconnect', () => resolve()));
            visitor.close();
            await gone;
          }
          break;
        case 'visitor.back':
          if (!visitor.socket.connected) visitor = await TestClient.connect(t.url, visitorSession.token, visitor.resumeToken ?? undefined);
          break;
        default:
          if (!event.type.startsWith('xstate.after.')) throw new Error(`no client action produces ${event.type}`);
      }
      const waits = event.type.startsWith('xstate.after.') || event.type === 'session.agentTimedOut' || event.type === 'visitor.cancelled';
      await check(t, requestId, step, event.type, waits ? short + 4_000 : 4_000);
    }
  } finally {
    for (const client of [...Object.values(agents), visitor, ...extras]) client.close();
  }
}

async function check(t: TestServer, requestId: string, step: Step, label: string, timeoutMs: number): Promise<void> {
  const expected = step.state;
  const expectedTried = (expected.context.triedAgentIds as string[]).map((id) => PLAYER[id]);
  await until(() => {
    const live = t.server.switchboard.routingSnapshot(requestId);
    if (expected.status === 'done') {
      const row = t.server.store.requests.get(requestId);
      return row && row.state === expected.value && row.endReason === expected.context.endReason
        ? null
        : `after ${label}: request row ${JSON.stringify(row)}, model ${JSON.stringify(expected.value)}`;
    }
    if (!live) return `after ${label}: the request ended, the model says ${JSON.stringify(expected.value)}`;
    const actual = {
      value: live.value,
      tried: live.context.triedAgentIds,
      current: live.context.currentAgentId,
      reassignments: live.context.reassignments,
    };
    const model = {
      value: expected.value,
      tried: expectedTried,
      current: expected.context.currentAgentId ? PLAYER[expected.context.currentAgentId] : null,
      reassignments: expected.context.reassignments,
    };
    return same(actual, model) ? null : `after ${label}: server ${JSON.stringify(actual)}, model ${JSON.stringify(model)}`;
  }, timeoutMs);
}

