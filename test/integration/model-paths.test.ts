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
import { agentToken, startTestServer, TestClient, visitorToken, sleep, stored, type DemoAgent, type TestServer } from '../support/server.ts';

type Step = { event: { type: string; [key: string]: unknown }; state: { value: unknown; status: string; context: any } };
type Path = { steps: Step[] };

/**
 * Queue positions are computed across real visitors; the reassignment suite covers them. The call events
 * routing only carries to its session cannot be caused one at a time on a real server (a dropped socket is
 * also the person lost, a hang-up ends the real call): the callSession paths cause each of them, through
 * the very same routing actors, and the coverage below counts them there.
 */
// `ring.refused` comes from another node's claim on the agent: one process has no other node.
const ELSEWHERE = new Set(['queue.position', 'ring.refused']);
const FORWARDED = new Set(['leg.socketLost', 'leg.socketBack', 'leg.mediaReconnecting', 'leg.mediaConnected', 'leg.mediaFailed', 'leg.attempt', 'call.hangup']);

/**
 * Transitions no client can cause: a socket coming back to find its media already connected (a socket drop
 * leaves the media unreported until the client reports again over its new socket), and a re-arm reaching a
 * call whose agent is still there (a restart loses every socket first, so the re-arm finds the grace running).
 */
const ONLY_IN_THE_MODEL = new Set<string>([
  'callSession.active|leg.socketBack|0',
  'routing.connected|timers.rearm|0',
  // The resume window gives up a visitor still ringing or in line only when a restart restored their request
  // and they never came back; the connections suite covers it on a real server.
  'routing.ringing|visitor.gone|0',
  'routing.queued|visitor.gone|0',
  // Each path's visitor is new, so nobody is held off for them; the limits suite ends a hold-off on a real server.
  'routing.queued|xstate.after.holdOffEnd.routing.queued|0',
  'routing.queued|xstate.after.holdOffEnd.routing.queued|1',
  // Another node's claim on the agent; the cluster suites refuse a ring on real nodes.
  'routing.ringing|ring.refused|0',
]);

type CallEnd = { reason: string; legs: Record<'agent' | 'visitor', { socket: string }> };
/** A call session's end that routing answers by finding the visitor another agent. */
const endsOnAgent = (output: CallEnd) => output.reason === 'reconnect-timeout' && output.legs.agent.socket === 'down' && output.legs.visitor.socket === 'up';

/**
 * The model's own events, less those no client can produce: a media report from a leg whose socket is
 * down (it can only report over its socket), and the facts only the server computes.
 */
function producible<M extends ModelSpec<any>>(spec: M): M {
  return {
    ...spec,
    filterEvents: (snapshot: any, event: { type: string; leg?: string }) => {
      if (ELSEWHERE.has(event.type)) return false;
      // The server's accept hands the call to its session; no client says it.
      if (snapshot.value === 'starting') return event.type === 'call.start';
      const routing = spec.name === 'routing';
      if (routing && FORWARDED.has(event.type)) return false;
      if (routing && event.type === 'xstate.done.actor.call') {
        const output = (event as unknown as { output: CallEnd }).output;
        // Only a socket drop takes the agent away from a call, and that is the grace first.
        if (endsOnAgent(output)) return snapshot.matches({ connected: 'agentAway' });
        // A visitor away can neither hang up nor be the only one left; an agent away is what the grace is for.
        if (output.reason === 'hangup') return snapshot.context.visitorPresent !== false || snapshot.matches({ connected: 'agentPresent' });
        return snapshot.matches({ connected: 'agentPresent' });
      }
      // Only the resume window gives up a visitor who is away, and only one who is away.
      if (event.type === 'visitor.gone') return snapshot.context.visitorPresent === false;

      const legs = snapshot.context.legs as Record<string, { socket: string }> | undefined;
      // A leg whose socket is down can neither report nor hang up until it is back.
      const leg = event.leg ?? (event as { by?: string }).by;
      const reports = event.type.startsWith('leg.media') || event.type === 'leg.attempt' || event.type === 'call.hangup';
      // Every report a client can make names its leg.
      if (event.type.startsWith('leg.') && !leg) return false;
      if (legs && leg && reports && legs[leg]?.socket === 'down') return false;
      // A socket closes only while open, and comes back only once closed.
      if (legs && leg && event.type === 'leg.socketLost') return legs[leg]?.socket === 'up';
      if (legs && leg && event.type === 'leg.socketBack') return legs[leg]?.socket === 'down';
      return true;
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

const coverageOf: Record<string, Coverage> = { routing: new Coverage(), callSession: new Coverage() };

/**
 * One test per producible path of `spec`, each on a fresh server started with the env `plan` gives for it
 * and closed after it. The transitions the server's `kind` actors take are counted across all of them, and
 * after the last the server must have taken every one a client can cause.
 */
function pathsOnServer(kind: string, spec: ModelSpec<any>, plan: (path: Path) => { env: Record<string, string>; run: (t: TestServer) => Promise<void> }): void {
  const paths = selectPaths(producible(spec));
  const coverage = coverageOf[kind]!;
  afterAll(() => {
    const { text, missing } = coverage.line(kind, spec);
    console.log(`${text} (${paths.length} paths)`);
    expect(missing, `${kind} transitions the server never took`).toEqual([]);
  });

  for (const [index, path] of paths.entries()) {
    it(`path ${index + 1}: ${path.steps.slice(1).map((s) => s.event.type).join(' → ')}`, async () => {
      const { env, run } = plan(path);
      // Every server actor's transitions count, whichever suite made them: the callSession paths run through
      // routing's forwarding too (they run first, so routing's count includes them).
      const t = await startTestServer(env, { inspect: (inspection, actor) => coverageOf[actor.kind]?.record(inspection) });
      try {
        await run(t);
      } finally {
        await t.close();
      }
    });
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

async function until(check: () => Promise<string | null> | string | null, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let problem = await check();
  while (problem !== null) {
    if (Date.now() > deadline) throw new Error(problem);
    await sleep(15);
    problem = await check();
  }
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

// ---------------------------------------------------------------------------------------------
// callSession

const CALL_TIMEOUT_MS = 500;

describe('callSession model paths on the real server', () => {
  pathsOnServer('callSession', callSessionSpec, (path) => {
    const timeoutMs = timerFor(path, CALL_TIMEOUT_MS);
    return {
      env: { RECONNECTION_TIMEOUT_MS: String(timeoutMs), AGENT_GRACE_MS: '60000', RESUME_WINDOW_MS: '60000', RING_TIMEOUT_MS: '30000' },
      run: (t) => runCallPath(t, path, timeoutMs),
    };
  });
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
    for (const [index, step] of path.steps.slice(1).entries()) {
      const before = path.steps[index]!.state;
      const event = step.event;
      const leg = (event.leg ?? event.by) as 'agent' | 'visitor';
      switch (event.type) {
        case 'call.start':
          // The accept above did it.
          break;
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
      await until(async () => {
        const live = t.server.switchboard.callSnapshot(callId);
        if (expected.status === 'done') {
          const row = await stored(t.server, (store) => store.calls.get(callId));
          // A timeout with only the agent gone is the agent lost: routing ends the call as reassigned. The
          // legs are read from before the step: the model's ended states are told apart without them.
          const reason = endsOnAgent({ reason: expected.context.endReason, legs: before.context.legs }) ? 'reassigned' : expected.context.endReason;
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

const SHORT_MS = 400;
/** The model's agents a, b and c are played by ada, grace and alan (ids order them the same way). */
const PLAYER: Record<string, DemoAgent> = { a: 'ada', b: 'grace', c: 'alan' };

/** The model's request as a new visitor's: nobody was rung for them before, so nobody is held off. */
const { heldOff: _heldOff, ...newVisitorInput } = routingSpec.input!;
const newVisitorSpec: typeof routingSpec = { ...routingSpec, input: newVisitorInput };

describe('routing model paths on the real server', () => {
  pathsOnServer('routing', newVisitorSpec, (path) => {
    const events = path.steps.map((step) => step.event.type);
    // One real timer cannot be both the shorter and the longer: each path gets the order it needs.
    const graceFirst = events.some((type) => type.startsWith('xstate.after.agentGrace'));
    // A visitor who stays away is given up by the resume window, so a path that needs it gets a short one.
    const givenUp = events.includes('visitor.gone');
    const short = timerFor(path, SHORT_MS);
    return {
      env: {
        RING_TIMEOUT_MS: String(short),
        MAX_QUEUE_WAIT_MS: String(short),
        AGENT_GRACE_MS: graceFirst ? String(short) : '60000',
        RECONNECTION_TIMEOUT_MS: graceFirst ? '60000' : String(short),
        RESUME_WINDOW_MS: givenUp ? String(SHORT_MS * 4) : '60000',
        MAX_REASSIGNMENTS: '1',
      },
      run: (t) => runRoutingPath(t, path, short),
    };
  });
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
        case 'xstate.done.actor.call': {
          const output = event.output as CallEnd;
          const current = t.server.switchboard.routingSnapshot(requestId)?.context.currentAgentId;
          const inCall = current ? agents[current as DemoAgent] : null;
          if (output.reason === 'hangup') {
            // The visitor hangs up; while they are away, the agent in the call does.
            await (visitor.socket.connected ? visitor : inCall!).emit('call.hangup', { callId: callId! });
          } else if (!endsOnAgent(output) && visitor.socket.connected && inCall?.socket.connected) {
            // Nobody is gone: the agent's media never comes back, and the call's own timeout ends it.
            await inCall.emit('call.media', { callId: callId!, state: 'reconnecting' });
          }
          // Otherwise a leg is gone already, and the call's timeout runs out on its own.
          break;
        }
        case 'visitor.gone':
          // The visitor is away, and the resume window (short on this path) gives the request up.
          break;
        case 'timers.rearm': {
          const clients: Record<string, TestClient> = { ...agents, visitor };
          await restartAndResume(t, clients, { ...tokens, visitor: visitorSession.token });
          Object.assign(agents, { ada: clients.ada, grace: clients.grace, alan: clients.alan });
          visitor = clients.visitor!;
          break;
        }
        case 'visitor.cancelled':
          // A visitor away cancels from a new socket that does not take up their old session, which routing
          // does not hear as their return.
          if (!visitor.socket.connected) visitor = await TestClient.connect(t.url, visitorSession.token);
          await visitor.emit('visitor.cancel', { requestId });
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
      const waits = event.type.startsWith('xstate.after.') || event.type === 'xstate.done.actor.call' || event.type === 'visitor.gone';
      await check(t, requestId, step, event.type, waits ? short + 4_000 : 4_000);
    }
  } finally {
    for (const client of [...Object.values(agents), visitor, ...extras]) client.close();
  }
}

async function check(t: TestServer, requestId: string, step: Step, label: string, timeoutMs: number): Promise<void> {
  const expected = step.state;
  const expectedTried = (expected.context.triedAgentIds as string[]).map((id) => PLAYER[id]);
  await until(async () => {
    const live = t.server.switchboard.routingSnapshot(requestId);
    if (expected.status === 'done') {
      const row = await stored(t.server, (store) => store.requests.get(requestId));
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

