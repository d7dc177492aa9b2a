import { describe, expect, it } from 'vitest';
import { setup } from 'xstate';
import { edgeLabel, toMermaid } from '../../scripts/machine-docs.ts';

const machine = setup({
  guards: { allowed: () => true },
  delays: { grace: 1000 },
  actions: { noop: () => {} },
}).createMachine({
  id: 'demo',
  initial: 'idle',
  on: { reset: '.idle' },
  states: {
    idle: { description: 'idle', on: { start: { guard: 'allowed', target: 'busy' } } },
    busy: {
      description: 'two regions',
      type: 'parallel',
      states: {
        left: { description: 'left', initial: 'a', states: { a: { description: 'a', after: { grace: 'b' } }, b: { description: 'b' } } },
        right: { description: 'right', initial: 'c', states: { c: { description: 'c', always: { guard: 'allowed', target: '#demo.done' } } } },
      },
    },
    done: { description: 'done', type: 'final' },
  },
});

describe('mermaid diagrams from the directed graph', () => {
  const text = toMermaid(machine);
  it('nests compound states, separates parallel regions and marks initial and final states', () => {
    expect(text.startsWith('stateDiagram-v2\n')).toBe(true);
    expect(text).toContain('  [*] --> idle');
    expect(text).toContain('state busy {');
    expect(text).toContain('    state busy_left {');
    expect(text).toMatch(/state busy_left \{[\s\S]*\n {4}--\n[\s\S]*state busy_right \{/);
    expect(text).toContain('      [*] --> busy_left_a');
    expect(text).toContain('  done --> [*]');
  });
  it('labels edges with event, guard and delay names', () => {
    expect(text).toContain('  idle --> busy : start [allowed]');
    expect(text).toContain('  busy_left_a --> busy_left_b : after grace');
    expect(text).toContain('  busy_right_c --> done : always [allowed]');
    expect(text).toContain('  any_state --> idle : reset');
  });
  it('keeps labels free of characters Mermaid would misread', () => {
    const [transition] = machine.root.states.idle!.transitions.get('start')!;
    expect(edgeLabel({ ...transition!, eventType: 'a:b;c{d}' } as never)).toBe('a b c d  [allowed]');
  });
});
