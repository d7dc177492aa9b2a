/**
 * Random walks for "nobody is ever stuck" properties: a machine on a simulated clock takes events and
 * waits, and the snapshot after every step is checked.
 */
import fc from 'fast-check';
import { expect } from 'vitest';
import { createActor, SimulatedClock, type Actor, type AnyMachineSnapshot, type AnyStateMachine, type EventFromLogic, type InputFrom, type SnapshotFrom } from 'xstate';

export type Step<E> = { kind: 'event'; event: E } | { kind: 'tick'; ms: number };

/** Up to 30 steps: events from `alphabet`, four times as often as a wait of one of `ticks` ms. */
export function stepsArb<E>(alphabet: readonly E[], ticks: readonly number[]): fc.Arbitrary<Step<E>[]> {
  const step = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...alphabet).map((event): Step<E> => ({ kind: 'event', event })) },
    { weight: 1, arbitrary: fc.constantFrom(...ticks).map((ms): Step<E> => ({ kind: 'tick', ms })) },
  );
  return fc.array(step, { maxLength: 30 });
}

/** Starts `machine` and takes `steps`, handing `check` the snapshot after each; returns the actor, still running. */
export function walk<M extends AnyStateMachine>(
  machine: M,
  input: InputFrom<M>,
  steps: readonly Step<EventFromLogic<M>>[],
  check: (snapshot: SnapshotFrom<M>) => void,
): Actor<M> {
  const clock = new SimulatedClock();
  const actor = createActor(machine, { clock, input });
  actor.start();
  for (const step of steps) {
    if (step.kind === 'tick') clock.increment(step.ms);
    else actor.send(step.event);
    check(actor.getSnapshot());
  }
  return actor;
}

/**
 * `walk`, checking after each step, before `check`, that the actor is still running and that `goalReachable`
 * still finds a goal in reach: nobody stuck.
 */
export function walkNeverStuck<M extends AnyStateMachine>(
  machine: M,
  input: InputFrom<M>,
  steps: readonly Step<EventFromLogic<M>>[],
  goalReachable: (snapshot: SnapshotFrom<M>) => boolean,
  check: (snapshot: SnapshotFrom<M>) => void,
): Actor<M> {
  return walk(machine, input, steps, (snapshot) => {
    expect((snapshot as AnyMachineSnapshot).status).toBe('active');
    expect(goalReachable(snapshot)).toBe(true);
    check(snapshot);
  });
}
