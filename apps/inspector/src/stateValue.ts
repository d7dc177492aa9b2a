/**
 * Reading XState state values: as one line of text, as the ids of the states they make active in a
 * machine definition, and back from the names the store keeps for finished calls.
 */
import type { StateDefinition } from './statechartGraph.ts';

type ValueObject = Record<string, unknown>;

function isValueObject(value: unknown): value is ValueObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function regions(value: ValueObject): string {
  return Object.entries(value)
    .map(([key, child]) => key + below(child))
    .join(', ');
}

function below(child: unknown): string {
  if (typeof child === 'string') return `.${child}`;
  if (!isValueObject(child)) return '';
  const keys = Object.keys(child);
  // An atomic region of a parallel state has the value `{}`: nothing below it to show.
  if (keys.length === 0) return '';
  return keys.length === 1 ? `.${regions(child)}` : `(${regions(child)})`;
}

/**
 * One line for a state value: `reconnecting.attempting` for nested states, and parallel regions in
 * parentheses, `inCall(media, peer.present)`. Anything that is not a state value reads as ''.
 */
export function stateLabel(value: unknown): string {
  if (typeof value === 'string') return value;
  return isValueObject(value) ? regions(value) : '';
}

/**
 * The full ids of the states a value makes active, the machine's root excluded: it is active for as
 * long as the actor runs, and highlighting it would tint the whole chart.
 */
export function activeStateIds(definition: StateDefinition, value: unknown): string[] {
  const ids: string[] = [];
  const enter = (state: StateDefinition, value: unknown): void => {
    ids.push(state.id);
    if (typeof value === 'string') {
      const child = state.children.find((candidate) => candidate.key === value);
      if (child) enter(child, undefined);
    } else if (isValueObject(value) && Object.keys(value).length > 0) {
      for (const [key, childValue] of Object.entries(value)) {
        const child = state.children.find((candidate) => candidate.key === key);
        // A key the definition lacks comes from a client on another version: shown as far as it matches.
        if (child) enter(child, childValue);
      }
    } else {
      // A value that stops at a container means its default entry. XState always spells values out in
      // full, but the store names a machine's start by its top state only.
      const defaults = state.type === 'parallel' ? state.children : state.children.filter((child) => state.initial?.includes(child.id));
      for (const child of defaults) enter(child, undefined);
    }
  };
  if (typeof value === 'string' || isValueObject(value)) {
    enter(definition, value);
    ids.shift();
  }
  return ids;
}

class StoredNameError extends Error {}

/**
 * The state value behind a name the store keeps (`server/src/actorHost.ts` writes them):
 * `connected`, `reconnecting.attempting`, `active.(session.paused,agent.up)`, `inCall.(media.(),peer.present)`.
 * A name that does not parse is kept as it is, so the timeline still shows it.
 */
export function parseStoredState(name: string | null): unknown {
  if (name === null) return null;
  if (!/[.(),]/.test(name)) return name;
  let at = 0;
  const key = (): string => {
    const start = at;
    while (at < name.length && !'.(),'.includes(name[at]!)) at++;
    if (at === start) throw new StoredNameError();
    return name.slice(start, at);
  };
  const list = (): ValueObject => {
    const value: ValueObject = {};
    if (name[at] === ')') return value;
    for (;;) {
      const itemKey = key();
      if (name[at] !== '.') throw new StoredNameError();
      at++;
      if (name[at] === '(') {
        at++;
        value[itemKey] = list();
        if (name[at] !== ')') throw new StoredNameError();
        at++;
      } else {
        value[itemKey] = key();
      }
      if (name[at] !== ',') return value;
      at++;
    }
  };
  try {
    const value = list();
    return at === name.length ? value : name;
  } catch (error) {
    if (error instanceof StoredNameError) return name;
    throw error;
  }
}
