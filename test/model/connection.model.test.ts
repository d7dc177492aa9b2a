/**
 * The connection chart branches on the person's kind, so its paths are generated once for an agent and once
 * for a visitor; together they must take every transition, as each other machine's paths do on their own.
 */
import { describe, expect, it } from 'vitest';
import type { AnyStateNode, AnyTransitionDefinition } from 'xstate';
import { connectionMachine } from '../../machines/src/connection.machine.ts';
import { allStates, allTransitions, executePath, generatePaths, measure } from './harness.ts';
import { connectionSpec } from './connection.spec.ts';

describe('model: connection', () => {
  const seenStates = new Set<AnyStateNode>();
  const seenTransitions = new Set<AnyTransitionDefinition>();
  const counts: string[] = [];

  for (const kind of ['agent', 'visitor'] as const) {
    const spec = connectionSpec(kind);
    const { shortest, edges, simple } = generatePaths(spec);
    counts.push(`${kind}: shortest ${shortest.length} edge ${edges.length} simple ${simple.length}`);
    describe(spec.name, () => {
      for (const [group, paths] of Object.entries({ 'shortest paths': shortest, 'edge paths': edges, 'simple paths': simple })) {
        if (paths.length === 0) continue;
        describe(group, () => {
          for (const path of paths) {
            const events = path.steps.slice(1).map((step) => step.event.type);
            it(`${JSON.stringify(path.state.value)} via ${events.length ? events.join(' → ') : '(initial)'}`, () =>
              executePath(spec, path, seenStates, seenTransitions));
          }
        });
      }
    });
  }

  it('covers every state and transition, the two kinds together', () => {
    const coverage = measure(allStates(connectionMachine), allTransitions(connectionMachine), seenStates, seenTransitions);
    console.log(`model paths connection: ${counts.join(', ')}`);
    console.log(
      `model coverage connection: states ${coverage.states.covered}/${coverage.states.total} transitions ${coverage.transitions.covered}/${coverage.transitions.total}`,
    );
    expect(coverage.states.missing, 'states never visited').toEqual([]);
    expect(coverage.transitions.missing, 'transitions never taken').toEqual([]);
  });
});
