/**
 * Every effect a chart names is real wherever the machine runs. A machine leaves its effects to the adapter
 * as empty placeholders, so that it stays pure; an adapter that forgot one, or provided it as an empty
 * function, would run a chart that shows an effect nobody performs. The adapters are read as they run:
 * the machines inside real clients connected to a real server, and the server's own.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AnyStateMachine } from 'xstate';
import { agentMachine, callSessionMachine, connectionMachine, peerConnectionMachine, routingMachine, signalingMachine, visitorCallMachine } from '@callchart/machines';
import { createAgentClient, type AgentClient } from '../../apps/client/src/agentClient.ts';
import { recordedRtc } from '../support/callFixture.ts';
import { createVisitorClient, type VisitorClient } from '../../apps/client/src/visitorClient.ts';
import { referencedNames, type ImplementationKind } from '../support/machine-audit.ts';
import { agentToken, startTestServer, visitorToken, type TestServer } from '../support/server.ts';

const KINDS: ImplementationKind[] = ['actions', 'guards', 'delays', 'actors'];

const withoutComments = (source: string) => source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/[^\n]*/g, '');

/** A function whose body does nothing: `() => {}`, `function () {}`, `() => undefined`. */
function isEmptyFunction(value: unknown): boolean {
  if (typeof value !== 'function') return false;
  const source = withoutComments(Function.prototype.toString.call(value)).trim();
  return /^(?:async\s*)?(?:function\b[^(]*)?\([^)]*\)\s*(?:=>\s*)?(?:\{\s*\}|undefined|void 0)$/.test(source) || /^(?:async\s*)?\w+\s*=>\s*(?:\{\s*\}|undefined|void 0)$/.test(source);
}

const isMachine = (value: unknown): value is AnyStateMachine =>
  typeof value === 'object' && value !== null && 'config' in value && 'implementations' in value && 'provide' in value;

type Implementations = Record<ImplementationKind, Record<string, unknown>>;
const implementationsOf = (machine: AnyStateMachine) => machine.implementations as unknown as Implementations;

/**
 * What is wrong with `adapted` as the adapter's version of `base`: a name the chart uses that resolves to
 * nothing or to an empty function, a placeholder the adapter left in place, and a name the chart does not
 * have. Invoked machines are checked the same way, against the machine the chart invokes.
 */
function namedEffectProblems(base: AnyStateMachine, adapted: AnyStateMachine, where = base.id): string[] {
  const problems: string[] = [];
  const own = implementationsOf(base);
  const provided = implementationsOf(adapted);
  const names = referencedNames(base);
  for (const kind of KINDS) {
    for (const name of names[kind]) {
      const implementation = provided[kind]?.[name];
      if (implementation === undefined) problems.push(`${where}: ${kind} '${name}' has no implementation`);
      else if (isEmptyFunction(implementation)) problems.push(`${where}: ${kind} '${name}' is an empty function`);
    }
    for (const [name, implementation] of Object.entries(provided[kind] ?? {})) {
      if (!(name in (own[kind] ?? {}))) problems.push(`${where}: ${kind} '${name}' is provided but not in the chart`);
      // Effects a chart reaches only through an action of its own (an enqueue) are placeholders too.
      else if (isEmptyFunction(implementation)) problems.push(`${where}: ${kind} '${name}' is an empty function`);
    }
  }
  for (const name of names.actors) {
    const invoked = own.actors?.[name];
    const adaptedActor = provided.actors?.[name];
    if (isMachine(invoked) && isMachine(adaptedActor)) problems.push(...namedEffectProblems(invoked, adaptedActor, `${where} > ${name}`));
  }
  return problems;
}

describe('the named-effects check', () => {
  it('tells an empty function from one that does something', () => {
    expect([() => {}, function named() {}, (_: unknown) => {}, () => undefined, async () => {}].map(isEmptyFunction)).toEqual([true, true, true, true, true]);
    expect([(list: number[]) => list.pop(), (x: number) => x + 1, { type: 'not-a-function' }].map(isEmptyFunction)).toEqual([false, false, false]);
  });

  it('finds every placeholder of a machine nobody adapted, including those of the machine it invokes', () => {
    const problems = namedEffectProblems(visitorCallMachine, visitorCallMachine);
    expect(problems).toContain("visitorCall: actions 'requestCall' is an empty function");
    expect(problems).toContain("visitorCall > peerConnection: actions 'restartIce' is an empty function");
    // The pure parts are the machine's own and pass.
    expect(problems.filter((problem) => problem.includes("'resetCall'") || problem.includes("'connectTimeout'"))).toEqual([]);
  });

  it('finds a name an adapter provides that the chart does not have', () => {
    const stale = visitorCallMachine.provide({ actions: { gone: () => void 0 } } as never);
    expect(namedEffectProblems(visitorCallMachine, stale)).toContain("visitorCall: actions 'gone' is provided but not in the chart");
  });
});

describe('every adapter performs every effect its chart names', () => {
  let t: TestServer;
  let visitor: VisitorClient;
  let agent: AgentClient;

  beforeAll(async () => {
    t = await startTestServer();
    const { token } = await visitorToken(t.url);
    visitor = createVisitorClient({ url: t.url, token, pool: 'support', rtc: recordedRtc().rtc });
    agent = createAgentClient({ url: t.url, token: await agentToken(t.url, 'ada'), rtc: recordedRtc().rtc });
  });

  afterAll(async () => {
    visitor?.stop();
    agent?.stop();
    await t?.close();
  });

  it("the visitor's client: visitorCall with its peerConnection, and signaling", () => {
    expect(namedEffectProblems(visitorCallMachine, visitor.call.logic)).toEqual([]);
    expect(namedEffectProblems(signalingMachine, visitor.signaling.logic)).toEqual([]);
  });

  it("the agent's client: agent with its peerConnection, and signaling", () => {
    expect(namedEffectProblems(agentMachine, agent.call.logic)).toEqual([]);
    expect(namedEffectProblems(signalingMachine, agent.signaling.logic)).toEqual([]);
    // The media child is the adapter's, not the pure one the chart invokes.
    expect(implementationsOf(agent.call.logic).actors.peerConnection).not.toBe(peerConnectionMachine);
  });

  it("the server's switchboard: routing and callSession", () => {
    // The registry provides the request tree once, for all its actors, and keeps it to itself; the call
    // session it invokes is the server's, not the pure one the chart names.
    const routing = t.server.switchboard['registry']['machine'];
    const callSession = implementationsOf(routing).actors.callSession as AnyStateMachine;
    expect(callSession).not.toBe(callSessionMachine);
    expect(namedEffectProblems(routingMachine, routing)).toEqual([]);
    expect(namedEffectProblems(callSessionMachine, callSession)).toEqual([]);
  });

  it("the server's connections: every person's connection actor", () => {
    expect(namedEffectProblems(connectionMachine, t.server.connections.logic)).toEqual([]);
  });
});
