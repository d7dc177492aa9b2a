import { describe, expect, it } from 'vitest';
import { assign, setup } from 'xstate';
import { allStates, allTransitions, executePath, generatePaths, measure } from './harness.ts';

// A small fixture with a delay, a guard and an eventless transition, to prove the harness itself can fail.
const fixture = setup({
  types: {} as { context: { count: number; timings: { grace: number } }; events: { type: 'go' } | { type: 'bump' } | { type: 'stop' } },
  actions: { bump: assign({ count: ({ context }) => context.count + 1 }) },
  guards: { belowTwo: ({ context }) => context.count < 2, atTwo: ({ context }) => context.count >= 2 },
  delays: { grace: ({ context }) => context.timings.grace },
}).createMachine({
  id: 'fixture',
  initial: 'idle',
  context: { count: 0, timings: { grace: 500 } },
  states: {
    idle: { description: 'idle', on: { go: 'running' } },
    running: {
      description: 'running',
      always: { guard: 'atTwo', target: 'full' },
      on: { bump: { guard: 'belowTwo', actions: 'bump' }, stop: 'idle' },
      after: { grace: 'idle' },
    },
    full: { description: 'full', type: 'final' },
  },
});

/** Runs every path the harness generates for the spec on a live actor, and measures what they covered. */
function coverageOfAllPaths(spec: { name: string; machine: typeof fixture }) {
  const { shortest, edges, simple } = generatePaths(spec);
  const states = new Set<never>();
  const transitions = new Set<never>();
  for (const path of [...shortest, ...edges, ...simple]) executePath(spec, path, states, transitions);
  return measure(allStates(spec.machine), allTransitions(spec.machine), states, transitions);
}

describe('model harness', () => {
  it('reaches full coverage on a machine whose every transition is reachable', () => {
    const coverage = coverageOfAllPaths({ name: 'fixture', machine: fixture });
    expect(coverage.states.missing).toEqual([]);
    expect(coverage.transitions.missing).toEqual([]);
    expect(coverage.transitions.total).toBe(5);
  });

  it('reports a transition that no path can take', () => {
    const dead = fixture.provide({ guards: { belowTwo: () => false } });
    const coverage = coverageOfAllPaths({ name: 'dead', machine: dead });
    expect(coverage.states.missing).toEqual(['fixture.full']);
    expect(coverage.transitions.missing).toEqual([
      'fixture.running --bump--> (self)',
      'fixture.running --always--> fixture.full',
    ]);
  });

  it('fails a path when the live actor diverges from the model', () => {
    const { shortest } = generatePaths({ name: 'fixture', machine: fixture });
    const toFull = shortest.find((path) => path.state.value === 'full')!;
    const divergent = fixture.provide({ actions: { bump: assign({ count: ({ context }) => context.count }) } });
    expect(() => executePath({ name: 'divergent', machine: divergent }, toFull, new Set(), new Set())).toThrow();
  });
});
