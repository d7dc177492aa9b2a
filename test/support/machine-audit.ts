import type { AnyStateMachine } from 'xstate';

export interface ConfigAudit {
  inline: string[];
  unknown: string[];
  undescribed: string[];
  literalDelays: string[];
}

type Config = Record<string, unknown>;
export type ImplementationKind = 'actions' | 'guards' | 'delays' | 'actors';
type Kind = ImplementationKind;

/** Every name of each kind that a machine's config refers to. */
export type ReferencedNames = Record<ImplementationKind, Set<string>>;

const asArray = (value: unknown): unknown[] => (value === undefined ? [] : Array.isArray(value) ? value : [value]);

/**
 * Walks a machine's raw config. XState offers no named alternative for two data mappings on the root:
 * the `context` factory (how `input` becomes context) and the root `output` (how a final state's output
 * becomes the actor's output). They shape data and carry no behaviour, so they are the only functions
 * tolerated; every state-level `output` must be static.
 */
export function auditConfig(machine: AnyStateMachine, names?: ReferencedNames): ConfigAudit {
  const audit: ConfigAudit = { inline: [], unknown: [], undescribed: [], literalDelays: [] };
  const implementations = machine.implementations as unknown as Record<Kind, Record<string, unknown>>;

  const reference = (kind: Kind, ref: unknown, where: string) => {
    if (typeof ref === 'function') {
      audit.inline.push(`${where}: inline ${kind.slice(0, -1)}`);
      return;
    }
    const name = typeof ref === 'string' ? ref : (ref as { type?: unknown; src?: unknown } | null)?.type;
    if (typeof name !== 'string') {
      audit.inline.push(`${where}: ${kind.slice(0, -1)} without a name`);
      return;
    }
    names?.[kind].add(name);
    if (!(name in (implementations[kind] ?? {}))) audit.unknown.push(`${where}: ${kind.slice(0, -1)} '${name}'`);
  };

  const transition = (value: unknown, where: string) => {
    for (const t of asArray(value)) {
      if (typeof t === 'string' || t === undefined) continue;
      if (typeof t === 'function') {
        audit.inline.push(`${where}: inline transition`);
        continue;
      }
      const { guard, actions } = t as Config;
      if (guard !== undefined) reference('guards', guard, `${where} guard`);
      for (const action of asArray(actions)) reference('actions', action, `${where} action`);
    }
  };

  const findFunctions = (value: unknown, where: string, seen = new Set<unknown>()) => {
    if (typeof value === 'function') {
      audit.inline.push(`${where}: inline function`);
      return;
    }
    if (value === null || typeof value !== 'object' || seen.has(value)) return;
    seen.add(value);
    for (const [key, child] of Object.entries(value)) findFunctions(child, `${where}.${key}`, seen);
  };

  const visit = (node: Config, where: string, isRoot: boolean) => {
    if (!isRoot && typeof node.description !== 'string') audit.undescribed.push(where);
    for (const key of ['entry', 'exit'] as const) {
      for (const action of asArray(node[key])) reference('actions', action, `${where} ${key}`);
    }
    for (const [event, value] of Object.entries((node.on as Config) ?? {})) transition(value, `${where} on ${event}`);
    transition(node.always, `${where} always`);
    transition(node.onDone, `${where} onDone`);
    for (const [delay, value] of Object.entries((node.after as Config) ?? {})) {
      if (Number.isFinite(Number(delay))) audit.literalDelays.push(`${where} after ${delay}`);
      else reference('delays', delay, `${where} after`);
      transition(value, `${where} after ${delay}`);
    }
    for (const invoke of asArray(node.invoke) as Config[]) {
      reference('actors', invoke.src, `${where} invoke`);
      transition(invoke.onDone, `${where} invoke onDone`);
      transition(invoke.onError, `${where} invoke onError`);
      transition(invoke.onSnapshot, `${where} invoke onSnapshot`);
      findFunctions(invoke.input, `${where} invoke input`);
    }
    if (!isRoot) findFunctions(node.output, `${where} output`);
    findFunctions(node.meta, `${where} meta`);
    for (const [key, child] of Object.entries((node.states as Record<string, Config>) ?? {})) {
      visit(child, `${where}.${key}`, false);
    }
  };

  const rootConfig = machine.config as unknown as Config;
  const { context: _context, output: _output, states: _states, ...rest } = rootConfig;
  visit(rootConfig, machine.id, true);
  // Anything else on the root (on, entry, output…) is checked above; look for stray functions too.
  findFunctions({ ...rest, on: undefined, entry: undefined, exit: undefined, always: undefined, after: undefined, invoke: undefined }, machine.id);
  return audit;
}

/** The actions, guards, delays and actors a machine's config names, found by the same walk as the audit. */
export function referencedNames(machine: AnyStateMachine): ReferencedNames {
  const names: ReferencedNames = { actions: new Set(), guards: new Set(), delays: new Set(), actors: new Set() };
  auditConfig(machine, names);
  return names;
}
