import { describe, expect, it } from 'vitest';
import { assign, setup } from 'xstate';
import { auditConfig } from '../support/machine-audit.ts';

const base = setup({
  types: {} as { context: { n: number } },
  actions: { bump: assign({ n: ({ context }) => context.n + 1 }) },
  guards: { small: ({ context }) => context.n < 3 },
  delays: { grace: 100 },
});

describe('config audit', () => {
  it('accepts a machine that names everything', () => {
    const machine = base.createMachine({
      id: 'ok',
      context: { n: 0 },
      initial: 'a',
      states: {
        a: { description: 'a', on: { go: { guard: 'small', actions: 'bump', target: 'b' } } },
        b: { description: 'b', after: { grace: 'a' } },
      },
    });
    expect(auditConfig(machine)).toEqual({ inline: [], unknown: [], undescribed: [], literalDelays: [] });
  });

  it('finds inline functions, inline built-ins, unknown names, literal delays and missing descriptions', () => {
    const machine = base.createMachine({
      id: 'bad',
      context: { n: 0 },
      initial: 'a',
      states: {
        a: {
          description: 'a',
          entry: assign({ n: 1 }),
          on: { go: { guard: () => true, actions: ['missing', () => {}], target: 'b' } },
        },
        b: { after: { 500: 'a' } },
      },
    } as never);
    const audit = auditConfig(machine as never);
    expect(audit.inline).toEqual([
      'bad.a entry: inline action',
      'bad.a on go guard: inline guard',
      'bad.a on go action: inline action',
    ]);
    expect(audit.unknown).toEqual(["bad.a on go action: action 'missing'"]);
    expect(audit.undescribed).toEqual(['bad.b']);
    expect(audit.literalDelays).toEqual(['bad.b after 500']);
  });
});
