/** What a machine's view shows after some events, for the view tests of the machines' screens. */
import { createActor, SimulatedClock, type AnyStateMachine, type EventFromLogic, type InputFrom, type SnapshotFrom } from 'xstate';

/** `view` of the machine's snapshot after `events`, with the simulated clock then moved on by each of `advance`. */
export function viewAfter<M extends AnyStateMachine, V>(
  machine: M,
  input: InputFrom<M>,
  view: (snapshot: SnapshotFrom<M>) => V,
  events: EventFromLogic<M>[],
  advance: number[] = [],
): V {
  const clock = new SimulatedClock();
  const actor = createActor(machine, { clock, input });
  actor.start();
  for (const event of events) actor.send(event);
  for (const ms of advance) clock.increment(ms);
  return view(actor.getSnapshot());
}

/** A view as the screen shows it: its message and its overlay put into words. */
export function inWords<T, V extends { message: T | null; overlay: T | null }>(view: V, words: (message: T) => string) {
  return { ...view, message: view.message ? words(view.message) : null, overlay: view.overlay ? words(view.overlay) : null };
}
