import { describe, expect, it } from 'vitest';
import { assign, setup } from 'xstate';
import { auditConfig } from '../support/machine-audit.ts';

const base = setup({
  types: {} as { context: { n: number } },
  actions: { bump: assign({ n: ({ context }) => context.n + 1 }) },
  guards: { small: ({ context }) => context.n < 3 },
  delays: { grace: 100 },
});

/** A machine of `base` with `states`, starting in `a`. */
const machineWith = (id: string, states: Parameters<typeof base.createMachine>[0]['states']) => base.createMachine({ id, context: { n: 0 }, initial: 'a', states });

describe('config audit', () => {
  it('accepts a machine that names everything', () => {
    const machine = machineWith('ok', {
      a: { description: 'a', on: { go: { guard: 'small', actions: 'bump', target: 'b' } } },
      b: { description: 'b', after: { grace: 'a' } },
    });
    expect(auditConfig(machine)).toEqual({ inline: [], unknown: [], undescribed: [], literalDelays: [] });
  });

  it('finds inline functions, inline built-ins, unknown names, literal delays and missing descriptions', () => {
    // Cast: these states hold what the setup's types forbid, which is what the audit must find.
    const machine = machineWith('bad', {
      a: {
        description: 'a',
        entry: assign({ n: 1 }),
        on: { go: { guard: () => true, actions: ['missing', () => {}], target: 'b' } },
      },
      b: { after: { 500: 'a' } },
    } as never);
    const audit = auditConfig(machine);
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
