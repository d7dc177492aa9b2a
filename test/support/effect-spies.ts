/** Test doubles for a machine's named effects, to provide in place of the placeholders the chart names. */
import { vi, type Mock } from 'vitest';

/** One `vi.fn()` for each effect named. */
export function effectSpies<const N extends string>(...names: N[]): Record<N, Mock> {
  return Object.fromEntries(names.map((name) => [name, vi.fn()])) as Record<N, Mock>;
}
