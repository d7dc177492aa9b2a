/**
 * Breadth-first reachability over a machine's pure transition function, for "nobody is ever stuck"
 * properties: from a snapshot, can some goal state be reached within a few events? Pending `after` timers
 * are part of the alphabet, since waiting is something a stuck person could always do.
 */
import { transition, type AnyStateMachine, type AnyStateNode, type EventFromLogic, type SnapshotFrom } from 'xstate';

export interface Reachability<M extends AnyStateMachine> {
  /** True when a goal is reachable from `start` in at most `maxDepth` events (memoised by value and context). */
  reachable(start: SnapshotFrom<M>, maxDepth?: number): boolean;
  /** Forgets memoised answers, for a test that probes different depths from the same snapshot. */
  clear(): void;
}

function pendingDelays<M extends AnyStateMachine>(snapshot: SnapshotFrom<M>): EventFromLogic<M>[] {
  const nodes = (snapshot as unknown as { _nodes: AnyStateNode[] })._nodes;
  return nodes.flatMap((node) => node.after.map((t) => ({ type: t.eventType }) as unknown as EventFromLogic<M>));
}

export function reachability<M extends AnyStateMachine>(
  machine: M,
  events: readonly EventFromLogic<M>[],
  isGoal: (snapshot: SnapshotFrom<M>) => boolean,
): Reachability<M> {
  const keyOf = (snapshot: SnapshotFrom<M>) => {
    const { value, context } = snapshot as unknown as { value: unknown; context: unknown };
    return JSON.stringify([value, context]);
  };
  const memo = new Map<string, boolean>();
  return {
    reachable(start, maxDepth = 4) {
      const startKey = keyOf(start);
      const known = memo.get(startKey);
      if (known !== undefined) return known;
      let found = isGoal(start);
      const seen = new Set([startKey]);
      let frontier = [start];
      for (let depth = 0; depth < maxDepth && !found && frontier.length; depth++) {
        const next: SnapshotFrom<M>[] = [];
        for (const snapshot of frontier) {
          for (const event of [...events, ...pendingDelays(snapshot)]) {
            const [after] = transition(machine, snapshot as never, event as never) as unknown as [SnapshotFrom<M>];
            const key = keyOf(after);
            if (seen.has(key)) continue;
            if (isGoal(after)) {
              found = true;
              break;
            }
            seen.add(key);
            next.push(after);
          }
          if (found) break;
        }
        frontier = next;
      }
      memo.set(startKey, found);
      return found;
    },
    clear: () => memo.clear(),
  };
}
