/** What both call legs do alike in a call, checked on each: the agent's machine and the visitor's. */
import { describe, expect, it } from 'vitest';
import { createActor, SimulatedClock, type AnyEventObject, type AnyStateMachine } from 'xstate';
import { agentMachine } from './agent.machine.ts';
import { visitorCallMachine } from './visitorCall.machine.ts';

interface Leg {
  name: string;
  peer: string;
  machine: AnyStateMachine;
  /** From the machine's first state into a call. */
  toInCall: AnyEventObject[];
}

const legs: Leg[] = [
  {
    name: 'agent',
    peer: 'the visitor',
    machine: agentMachine,
    toInCall: [
      { type: 'login' },
      { type: 'ring', requestId: 'req-1', visitorName: 'Vera', at: 50_000 },
      { type: 'accept' },
      { type: 'call.accepted', callId: 'call-1' },
      { type: 'ice.connected', at: 51_000 },
    ],
  },
  {
    name: 'visitorCall',
    peer: 'the agent',
    machine: visitorCallMachine,
    toInCall: [
      { type: 'call.request', pool: 'sales' },
      { type: 'call.accepted', callId: 'call-1', agentName: 'Ada' },
      { type: 'ice.connected', at: 1_000 },
    ],
  },
];

describe.each(legs)('$name in a call', ({ peer, machine, toInCall }) => {
  it(`pauses and resumes with ${peer}`, () => {
    const actor = createActor(machine, { clock: new SimulatedClock(), input: {} });
    actor.start();
    for (const event of toInCall) actor.send(event);
    actor.send({ type: 'peer.away' });
    expect(actor.getSnapshot().value).toEqual({ inCall: { media: {}, peer: 'away' } });
    actor.send({ type: 'peer.back' });
    expect(actor.getSnapshot().value).toEqual({ inCall: { media: {}, peer: 'present' } });
  });
});
