/**
 * Model-based testing: paths generated from a machine with xstate/graph are executed against a live actor
 * driven by a SimulatedClock. Coverage is measured from what the live actor actually did (its microsteps),
 * not from what the model claims, so a path that silently diverges cannot inflate the figures.
 */
import { describe, expect, it } from 'vitest';
import {
  createActor,
  SimulatedClock,
  type AnyStateMachine,
  type AnyMachineSnapshot,
  type AnyTransitionDefinition,
  type AnyStateNode,
  type EventFromLogic,
  type InputFrom,
  type SnapshotFrom,
} from 'xstate';
import { TestModel, getStateNodes, type StatePath } from 'xstate/graph';

export interface ModelSpec<M extends AnyStateMachine> {
  /** Name used in the coverage line. */
  name: string;
  /** The machine under test; invoked actors with timers of their own should be replaced by inert doubles. */
  machine: M;
  input?: InputFrom<M>;
  /** Events with payloads; accepted event types that are not listed are explored as `{ type }`. */
  events?: EventFromLogic<M>[] | ((snapshot: SnapshotFrom<M>) => EventFromLogic<M>[]);
  /** Events to leave out of the exploration (listed or not), e.g. those a slower target cannot produce. */
  filterEvents?: (snapshot: SnapshotFrom<M>, event: EventFromLogic<M>) => boolean;
  /** Abstraction of a snapshot that bounds the state space (default: value and full context). */
  serializeState?: (snapshot: SnapshotFrom<M>) => string;
  /** Projection of context compared between the model and the live actor after every step (default: all). */
  compareContext?: (context: SnapshotFrom<M>['context']) => unknown;
  /** How many simple paths to run on top of the shortest and edge paths (default 60). */
  maxSimplePaths?: number;
  /** How many events a simple path may hold at most (default 8). */
  simplePathDepth?: number;
}

type Snapshot = AnyMachineSnapshot;
type AnyEvent = { type: string; [key: string]: unknown };
type Path = StatePath<Snapshot, AnyEvent>;

const AFTER_PREFIX = 'xstate.after.';

/** Every transition the machine defines, keyed by identity, so coverage counts real definitions. */
export function allTransitions(machine: AnyStateMachine): AnyTransitionDefinition[] {
  const nodes: AnyStateNode[] = [machine.root, ...getStateNodes(machine.root)];
  return nodes.flatMap((node) => [...[...node.transitions.values()].flat(), ...(node.always ?? [])]);
}

export function allStates(machine: AnyStateMachine): AnyStateNode[] {
  return getStateNodes(machine.root);
}

/** The delayed transition's own node and delay key, recovered from `xstate.after.<delay>.<stateId>`. */
function delayOf(snapshot: Snapshot, eventType: string): { node: AnyStateNode; delay: string } | undefined {
  for (const node of snapshot._nodes as AnyStateNode[]) {
    const suffix = `.${node.id}`;
    if (node.transitions.has(eventType) && eventType.endsWith(suffix)) {
      return { node, delay: eventType.slice(AFTER_PREFIX.length, -suffix.length) };
    }
  }
  return undefined;
}

function delayMs(machine: AnyStateMachine, snapshot: Snapshot, eventType: string): number {
  const found = delayOf(snapshot, eventType);
  if (!found) throw new Error(`no active state owns the delayed event ${eventType}`);
  const numeric = Number(found.delay);
  if (Number.isFinite(numeric)) return numeric;
  const impl = (machine.implementations.delays as Record<string, unknown>)[found.delay];
  if (typeof impl === 'number') return impl;
  if (typeof impl === 'function') return impl({ context: snapshot.context, event: { type: eventType } }, undefined);
  throw new Error(`delay '${found.delay}' has no implementation`);
}

function isTick(snapshot: Snapshot, eventType: string): boolean {
  const found = delayOf(snapshot, eventType);
  const definitions = found?.node.transitions.get(eventType) ?? [];
  return (
    definitions.length > 0 &&
    definitions.every((t: AnyTransitionDefinition) => t.reenter && t.target?.length === 1 && t.target[0] === found!.node && !t.guard)
  );
}

function ownEventTypes(snapshot: Snapshot): string[] {
  return [...new Set((snapshot._nodes as AnyStateNode[]).flatMap((node) => node.ownEvents as string[]))];
}

function matchesDescriptor(descriptor: string, type: string): boolean {
  if (descriptor === '*') return true;
  if (descriptor.endsWith('.*')) return type.startsWith(descriptor.slice(0, -1));
  return descriptor === type;
}

/**
 * The events the model explores from a snapshot: every type the active states accept, with the listed
 * payloads where given. Of the pending delays only the shortest is offered, because on a real clock the
 * shorter timer always fires first.
 */
function eventsFor<M extends AnyStateMachine>(spec: ModelSpec<M>) {
  return (snapshot: Snapshot): AnyEvent[] => {
    // A finished actor ignores everything; the pure transition function would not.
    if (snapshot.status !== 'active') return [];
    const listed = (typeof spec.events === 'function' ? spec.events(snapshot as SnapshotFrom<M>) : spec.events ?? []) as AnyEvent[];
    const events: AnyEvent[] = [];
    const delayed: { event: AnyEvent; ms: number }[] = [];
    for (const descriptor of ownEventTypes(snapshot)) {
      if (descriptor.startsWith(AFTER_PREFIX)) {
        delayed.push({ event: { type: descriptor }, ms: delayMs(spec.machine, snapshot, descriptor) });
        continue;
      }
      const payloads = listed.filter((event) => matchesDescriptor(descriptor, event.type));
      if (payloads.length) events.push(...payloads);
      else if (!descriptor.includes('*')) events.push({ type: descriptor });
    }
    // A tick that re-enters its own state re-arms only itself, so it never pre-empts a longer timer of an
    // enclosing state: that one is offered as well, the ticks firing on the way.
    const ticks = delayed.filter((d) => isTick(snapshot, d.event.type));
    const timers = delayed.filter((d) => !ticks.includes(d));
    if (timers.length) {
      const shortest = Math.min(...timers.map((d) => d.ms));
      events.push(...timers.filter((d) => d.ms === shortest).map((d) => d.event));
      events.push(...ticks.filter((d) => d.ms < shortest).map((d) => d.event));
    } else if (ticks.length) {
      const shortest = Math.min(...ticks.map((d) => d.ms));
      events.push(...ticks.filter((d) => d.ms === shortest).map((d) => d.event));
    }
    const keep = spec.filterEvents;
    return keep ? events.filter((event) => keep(snapshot as SnapshotFrom<M>, event as EventFromLogic<M>)) : events;
  };
}

function defaultSerialize(snapshot: Snapshot): string {
  return JSON.stringify({ value: snapshot.value, context: snapshot.context, status: snapshot.status });
}

function pathKey(path: Path): string {
  return path.steps.map((step) => JSON.stringify(step.event)).join(' > ');
}

function describePath(path: Path): string {
  const events = path.steps.slice(1).map((step) => step.event.type);
  return `${JSON.stringify(path.state.value)} via ${events.length ? events.join(' → ') : '(initial)'}`;
}

/** Spreads a bounded selection across the list, so long and short simple paths are both represented. */
function spread<T>(items: T[], max: number): T[] {
  if (items.length <= max) return items;
  const picked: T[] = [];
  for (let i = 0; i < max; i++) picked.push(items[Math.floor((i * items.length) / max)]!);
  return picked;
}

export interface ModelPaths {
  shortest: Path[];
  /** One path per model edge that no shortest path takes: the shortest path to its source, then the edge. */
  edges: Path[];
  simple: Path[];
}

export function generatePaths<M extends AnyStateMachine>(spec: ModelSpec<M>): ModelPaths {
  const model = new TestModel(spec.machine as AnyStateMachine, {
    input: spec.input,
    events: eventsFor(spec),
    serializeState: (snapshot: Snapshot) =>
      spec.serializeState ? spec.serializeState(snapshot as SnapshotFrom<M>) : defaultSerialize(snapshot),
  } as never);
  const serialize = (snapshot: Snapshot) =>
    spec.serializeState ? spec.serializeState(snapshot as SnapshotFrom<M>) : defaultSerialize(snapshot);
  const shortest = model.getShortestPaths() as unknown as Path[];
  // getShortestPaths drops paths contained in longer ones, so every prefix is a shortest path too.
  const toState = new Map<string, Path>();
  for (const path of shortest) {
    path.steps.forEach((step, i) => {
      const key = serialize(step.state);
      if (!toState.has(key)) toState.set(key, { state: step.state, steps: path.steps.slice(0, i + 1), weight: i });
    });
  }
  // Shortest and simple paths never revisit a state, so an edge back to a visited state (a hang-up, a
  // recovery) would go untested; every such edge gets a path of its own.
  const taken = new Set(
    shortest.flatMap((path) => path.steps.slice(1).map((step, i) => `${serialize(path.steps[i]!.state)}|${JSON.stringify(step.event)}`)),
  );
  const edges: Path[] = [];
  const adjacency = model.getAdjacencyMap() as unknown as Adjacency;
  for (const [from, { transitions }] of Object.entries(adjacency)) {
    const head = toState.get(from);
    if (!head) continue;
    for (const { event, state } of Object.values(transitions)) {
      if (taken.has(`${from}|${JSON.stringify(event)}`)) continue;
      edges.push({ state, steps: [...head.steps, { event, state }], weight: head.weight + 1 });
    }
  }
  const seen = new Set([...shortest, ...edges].map(pathKey));
  const simple = boundedSimplePaths(adjacency, serialize, serialize(shortest[0]!.steps[0]!.state), spec.simplePathDepth ?? 8)
    .filter((path) => !seen.has(pathKey(path)));
  simple.sort((a, b) => a.steps.length - b.steps.length || pathKey(a).localeCompare(pathKey(b)));
  return { shortest, edges, simple: spread(simple, spec.maxSimplePaths ?? 60) };
}

type Adjacency = Record<string, { state: Snapshot; transitions: Record<string, { event: AnyEvent; state: Snapshot }> }>;

/**
 * Maximal simple paths from the initial state, at most `depth` events long, over xstate/graph's adjacency
 * map. xstate/graph's own getSimplePaths enumerates every simple path, which grows exponentially with the
 * context-distinguished states of a real machine, so the enumeration is bounded here and stops early.
 */
function boundedSimplePaths(
  adjacency: Adjacency,
  keyOf: (snapshot: Snapshot) => string,
  start: string,
  depth: number,
  cap = 5000,
): Path[] {
  const paths: Path[] = [];
  const initial = adjacency[start];
  if (!initial) return paths;
  const visited = new Set([start]);
  const steps: Path['steps'] = [{ event: { type: 'xstate.init' }, state: initial.state }];
  const walk = (key: string) => {
    if (paths.length >= cap) return;
    const next = Object.values(adjacency[key]?.transitions ?? {}).filter(({ state }) => !visited.has(keyOf(state)));
    if (steps.length > depth || next.length === 0) {
      if (steps.length > 1) paths.push({ state: steps.at(-1)!.state, steps: [...steps], weight: steps.length - 1 });
      return;
    }
    for (const { event, state } of next) {
      const nextKey = keyOf(state);
      visited.add(nextKey);
      steps.push({ event, state });
      walk(nextKey);
      steps.pop();
      visited.delete(nextKey);
    }
  };
  walk(start);
  return paths;
}

export interface Coverage {
  states: { covered: number; total: number; missing: string[] };
  transitions: { covered: number; total: number; missing: string[] };
}

function transitionLabel(t: AnyTransitionDefinition): string {
  const targets = (t.target ?? []).map((node: AnyStateNode) => node.id).join(',') || '(self)';
  return `${t.source.id} --${t.eventType || 'always'}--> ${targets}`;
}

/** Executes one path on a live actor; returns the state nodes and transitions the actor really went through. */
export function executePath<M extends AnyStateMachine>(
  spec: ModelSpec<M>,
  path: Path,
  seenStates: Set<AnyStateNode>,
  seenTransitions: Set<AnyTransitionDefinition>,
): void {
  const clock = new SimulatedClock();
  const actor = createActor(spec.machine as AnyStateMachine, {
    input: spec.input,
    clock,
    inspect: (inspection) => {
      if (inspection.type === '@xstate.microstep') {
        for (const t of (inspection as unknown as { _transitions: AnyTransitionDefinition[] })._transitions) seenTransitions.add(t);
        // A state left by an eventless transition never shows in a settled snapshot, only in its microstep.
        for (const node of (inspection.snapshot as Snapshot)._nodes as AnyStateNode[]) seenStates.add(node);
      }
    },
  });
  const project = (snapshot: Snapshot) => (spec.compareContext ? spec.compareContext(snapshot.context) : snapshot.context);
  const check = (expected: Snapshot, stepLabel: string) => {
    const live = actor.getSnapshot() as Snapshot;
    expect(live.value, `state after ${stepLabel}`).toEqual(expected.value);
    expect(project(live), `context after ${stepLabel}`).toEqual(project(expected));
    for (const node of live._nodes as AnyStateNode[]) seenStates.add(node);
  };
  actor.start();
  const [first, ...rest] = path.steps;
  if (first) check(first.state, 'start');
  for (const step of rest) {
    const before = actor.getSnapshot() as Snapshot;
    if (step.event.type.startsWith(AFTER_PREFIX)) {
      clock.increment(delayMs(spec.machine, before, step.event.type));
    } else {
      actor.send(step.event as EventFromLogic<M>);
    }
    check(step.state, step.event.type);
  }
  actor.stop();
}

/** Registers the model suite for one machine and prints its coverage line. */
export function describeModel<M extends AnyStateMachine>(spec: ModelSpec<M>): void {
  describe(`model: ${spec.name}`, () => {
    const { shortest, edges, simple } = generatePaths(spec);
    const seenStates = new Set<AnyStateNode>();
    const seenTransitions = new Set<AnyTransitionDefinition>();
    const states = allStates(spec.machine);
    const transitions = allTransitions(spec.machine);

    const groups = { 'shortest paths': shortest, 'edge paths': edges, 'simple paths': simple };
    for (const [name, paths] of Object.entries(groups)) {
      // An empty group would be an error in vitest, so a group is only declared when it has paths.
      if (paths.length === 0) continue;
      describe(name, () => {
        for (const path of paths) {
          it(describePath(path), () => executePath(spec, path, seenStates, seenTransitions));
        }
      });
    }

    it('covers every state and transition', () => {
      const coverage = measure(states, transitions, seenStates, seenTransitions);
      console.log(`model paths ${spec.name}: shortest ${shortest.length} edge ${edges.length} simple ${simple.length}`);
      console.log(
        `model coverage ${spec.name}: states ${coverage.states.covered}/${coverage.states.total} transitions ${coverage.transitions.covered}/${coverage.transitions.total}`,
      );
      expect(coverage.states.missing, 'states never visited').toEqual([]);
      expect(coverage.transitions.missing, 'transitions never taken').toEqual([]);
    });

  });
}

export function measure(
  states: AnyStateNode[],
  transitions: AnyTransitionDefinition[],
  seenStates: Set<AnyStateNode>,
  seenTransitions: Set<AnyTransitionDefinition>,
): Coverage {
  const missingStates = states.filter((node) => !seenStates.has(node)).map((node) => node.id);
  const missingTransitions = transitions.filter((t) => !seenTransitions.has(t)).map(transitionLabel);
  return {
    states: { covered: states.length - missingStates.length, total: states.length, missing: missingStates },
    transitions: {
      covered: transitions.length - missingTransitions.length,
      total: transitions.length,
      missing: missingTransitions,
    },
  };
}

/** A transition's identity across `machine.provide()` copies, which rebuild every state node. */
export function transitionKey(t: AnyTransitionDefinition): string {
  const siblings = t.eventType ? (t.source.transitions.get(t.eventType) ?? []) : (t.source.always ?? []);
  return `${t.source.id}|${t.eventType || 'always'}|${siblings.indexOf(t)}`;
}

/**
 * The fewest paths (greedily) whose runs on the bare machine take every transition that the given paths
 * take together: what a slower target, such as the real server, needs to run to cover as much.
 */
export function coveringPaths<M extends AnyStateMachine>(spec: ModelSpec<M>, candidates: Path[]): Path[] {
  const taken = candidates.map((path) => {
    const transitions = new Set<AnyTransitionDefinition>();
    executePath(spec, path, new Set(), transitions);
    return new Set([...transitions].map(transitionKey));
  });
  const uncovered = new Set(taken.flatMap((keys) => [...keys]));
  const chosen: Path[] = [];
  while (uncovered.size) {
    let best = -1;
    let bestGain = 0;
    taken.forEach((keys, i) => {
      const gain = [...keys].filter((key) => uncovered.has(key)).length;
      if (gain > bestGain || (gain === bestGain && gain > 0 && candidates[i]!.steps.length < candidates[best]!.steps.length)) {
        best = i;
        bestGain = gain;
      }
    });
    if (best < 0) break;
    for (const key of taken[best]!) uncovered.delete(key);
    chosen.push(candidates[best]!);
  }
  return chosen;
}

