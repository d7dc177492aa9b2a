/**
 * Runs one server actor (routing or callSession) so that every transition is persisted: its snapshot is
 * saved and the transition is appended to the call's event log, with the event that caused it. A restored
 * actor starts from its persisted snapshot; the caller then sends `timers.rearm` (XState does not re-arm
 * `after` timers on restore).
 */
import { createActor, type Actor, type AnyMachineSnapshot, type AnyStateMachine, type InspectionEvent, type SnapshotFrom } from 'xstate';
import type { Logger } from './logger.ts';
import type { SnapshotKind, Store } from './store.ts';

export interface HostOptions<M extends AnyStateMachine> {
  kind: SnapshotKind;
  actorId: string;
  requestId: string;
  callId: string | null;
  machine: M;
  input?: unknown;
  snapshot?: unknown;
  store: Store;
  logger: Logger;
  now: () => number;
  /** Sees every inspection event of the actor (the live inspector and the model tests listen here). */
  inspect?: (inspection: InspectionEvent) => void;
  /** Called after each persisted transition, with the previous and the new snapshot. */
  onSnapshot?: (next: SnapshotFrom<M>, previous: SnapshotFrom<M> | null) => void;
}

export function stateName(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object') {
    return Object.entries(value as Record<string, unknown>)
      .map(([key, child]) => (typeof child === 'string' ? `${key}.${child}` : `${key}.(${stateName(child)})`))
      .join(',');
  }
  return String(value);
}

/**
 * Who and why, beyond the event's type: the agent a routing event is about and the reason it was lost, the
 * leg of a call event. Kept with the transition, so the store tells an agent going away from a dropped socket.
 */
export function eventDetail(event: { type: string }): Record<string, unknown> | null {
  const { agentId, cause, leg, by } = event as { agentId?: unknown; cause?: unknown; leg?: unknown; by?: unknown };
  const detail = Object.fromEntries(Object.entries({ agentId, cause, leg, by }).filter(([, value]) => typeof value === 'string'));
  return Object.keys(detail).length > 0 ? detail : null;
}

export function hostActor<M extends AnyStateMachine>(options: HostOptions<M>): Actor<M> {
  const { kind, actorId, requestId, callId, store, logger, now } = options;
  let previous: AnyMachineSnapshot | null = null;
  // A restored actor continues from its persisted state; a new one starts from nothing.
  let lastState: string | null = options.snapshot ? stateName((options.snapshot as { value: unknown }).value) : null;
  // Declared apart from its assignment: createActor reports the actor's start to `inspect` before it
  // returns, where a const would not be readable yet.
  let actor: Actor<M>;
  // createActor's conditional option types cannot be satisfied for a generic machine.
  // eslint-disable-next-line prefer-const
  actor = (createActor as (machine: AnyStateMachine, options: object) => Actor<M>)(options.machine, {
    ...(options.snapshot ? { snapshot: options.snapshot } : { input: options.input }),
    inspect: (inspection: InspectionEvent) => {
      if (inspection.actorRef !== actor) return;
      options.inspect?.(inspection);
      // Microsteps, not settled snapshots, so transient states (routing's `searching`) are logged too.
      if (inspection.type === '@xstate.microstep') {
        const to = stateName((inspection.snapshot as AnyMachineSnapshot).value);
        if (to !== lastState) {
          const cause = inspection.event.type;
          store.events.append({ callId, requestId, actor: kind, type: 'transition', fromState: lastState, toState: to, cause, detail: eventDetail(inspection.event), at: now() });
          logger.info({ requestId, callId, actor: kind, from: lastState, to, cause }, `${kind} ${lastState ?? '(start)'} -> ${to}`);
          lastState = to;
        }
        return;
      }
      if (inspection.type !== '@xstate.snapshot') return;
      const snapshot = inspection.snapshot as AnyMachineSnapshot;
      // Stopping an actor (server shutdown) is not a transition: its persisted snapshot must survive.
      if (snapshot.status === 'stopped') return;
      // The start's eventless steps are not inspected as microsteps; the initial state is logged for them.
      const initial = options.machine.config.initial;
      if (lastState === null && typeof initial === 'string' && stateName(snapshot.value) !== initial) {
        store.events.append({ callId, requestId, actor: kind, type: 'transition', fromState: null, toState: initial, cause: inspection.event.type, at: now() });
        lastState = initial;
      }
      if (lastState === null || stateName(snapshot.value) !== lastState) {
        const to = stateName(snapshot.value);
        const cause = inspection.event.type;
        store.events.append({ callId, requestId, actor: kind, type: 'transition', fromState: lastState, toState: to, cause, detail: eventDetail(inspection.event), at: now() });
        logger.info({ requestId, callId, actor: kind, from: lastState, to, cause }, `${kind} ${lastState ?? '(start)'} -> ${to}`);
        lastState = to;
      }
      if (snapshot.status === 'active') {
        store.snapshots.save({ actorId, kind, requestId, callId, snapshot: actor.getPersistedSnapshot(), updatedAt: now() });
      } else {
        store.snapshots.delete(actorId);
      }
      const before = previous;
      previous = snapshot;
      options.onSnapshot?.(snapshot as SnapshotFrom<M>, before as SnapshotFrom<M> | null);
    },
  });
  return actor;
}
