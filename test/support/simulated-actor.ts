/**
 * A machine's actor for unit tests: on a simulated clock, with test doubles in place of its named
 * actions, and every event it emits recorded. Started before it is returned.
 */
import { createActor, SimulatedClock, type AnyStateMachine, type EmittedFrom, type InputFrom } from 'xstate';

/** Epoch ms of the simulated clock's zero, for tests that stamp events with the time they happen. */
export const BASE = 1_700_000_000_000;

export function startSimulated<M extends AnyStateMachine>(machine: M, actions: Parameters<M['provide']>[0]['actions'], input: InputFrom<M>) {
  const clock = new SimulatedClock();
  const actor = createActor(machine.provide({ actions }) as M, { clock, input });
  const emitted: EmittedFrom<M>[] = [];
  actor.on('*', (event) => void emitted.push(event));
  actor.start();
  return { actor, clock, emitted };
}
