/**
 * Every machine stays visually editable: the config names its implementations and never inlines them,
 * because `machine.toJSON()` (what Stately Studio imports) turns an inline function into `{type:'entry'}`
 * and an inline built-in such as `assign(...)` into `null`.
 */
import { describe, expect, it } from 'vitest';
import config from '../../stately.config.ts';
import { loadMachine } from '../../scripts/machine-docs.ts';
import { auditConfig } from '../support/machine-audit.ts';

describe('machine configs', async () => {
  for (const entry of config.machines) {
    const machine = await loadMachine(entry);
    describe(entry.name, () => {
      const audit = auditConfig(machine);
      it('has the id of its name', () => expect(machine.id).toBe(entry.name));
      it('inlines no function and no built-in action or guard', () => expect(audit.inline).toEqual([]));
      it('names only implementations that exist', () => expect(audit.unknown).toEqual([]));
      it('gives every state a description', () => expect(audit.undescribed).toEqual([]));
      it('names every delay instead of a literal duration', () => expect(audit.literalDelays).toEqual([]));
    });
  }
});
