/**
 * Runs one server actor tree (a call request's routing actor and the callSession it invokes) so that every
 * transition of any actor in it is persisted: each transition is journaled for the request's event log with
 * the event that caused it, and at each settled snapshot the step is sealed, so its writes land with the
 * whole tree's snapshot before anything it sends goes out. A restored tree starts from its persisted
 * snapshot, children included; the caller then sends `timers.rearm` (XState does not re-arm `after` timers
 * on restore).
 */
import {
  createActor,
  type Actor,
  type AnyActorRef,
  type AnyMachineSnapshot,
  type AnyStateMachine,
  type InspectionEvent,
  type SnapshotFrom,
} from 'xstate';
import type { Logger } from './logger.ts';
import type { Fence, SnapshotKind, StaleFenceError } from './store.ts';
import type { Journal, Journals, SnapshotWrite } from './switchboard/journal.ts';

/** One actor of the tree as the log and the inspector name it. */
export interface TreeMember {
  kind: SnapshotKind;
  requestId: string;
  callId: string | null;
}

export interface HostOptions<M extends AnyStateMachine> {
  actorId: string;
  requestId: string;
  machine: M;
  input?: unknown;
  snapshot?: unknown;
  journals: Journals;
  logger: Logger;
  now: () => number;
  /** Names an actor of the tree (the root or one of its children) for the log and the inspector. */
  member: (actor: AnyActorRef, snapshot: AnyMachineSnapshot, isRoot: boolean) => TreeMember;
  /** Sees every inspection event of every actor of the tree (the live inspector and the model tests listen here). */
  inspect?: (inspection: InspectionEvent, member: TreeMember) => void;
  /**
   * Called at each settled snapshot of the root, with the previous and the new snapshot, before the step is
   * sealed: what it journals lands with the step.
   */
  onSnapshot?: (next: SnapshotFrom<M>, previous: SnapshotFrom<M> | null) => void;
  /** Called at each settled snapshot of a child, with its previous and new snapshot, before the step is sealed. */
  onChildSnapshot?: (member: TreeMember, next: AnyMachineSnapshot, previous: AnyMachineSnapshot | null) => void;
  /**
   * Called once a step of the root is sealed: what it makes other trees do (a presence change, queue places)
   * is journaled after it, so their messages cannot overtake the ones this step sends.
   */
  afterStep?: (next: SnapshotFrom<M>, previous: SnapshotFrom<M> | null) => void;
  /** The tree's ownership in a cluster: every commit of the tree carries it. */
  fence?: Fence;
  /** The store refused the tree's writes: another owner has it. */
  onStale?: (error: StaleFenceError) => void;
  /** A ring of the tree's was not sent: its agent is held for another request. */
  onRingRefused?: (agentId: string) => void;
}

/** A tree as it is run: the root actor, and the journal its steps and their effects write to. */
export interface HostedTree<M extends AnyStateMachine> {
  actor: Actor<M>;
  journal: Journal;
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

interface Tracked {
  lastState: string | null;
  previous: AnyMachineSnapshot | null;
  initial: unknown;
}

export function hostActor<M extends AnyStateMachine>(options: HostOptions<M>): HostedTree<M> {
  const { actorId, requestId, logger, now } = options;
  const tracked = new Map<AnyActorRef, Tracked>();
  const persisted = options.snapshot as { value: unknown; children?: Record<string, { snapshot?: { value?: unknown } }> } | undefined;
  // Declared apart from its assignment: createActor reports the actor's start to `inspect` before it
  // returns, where a const would not be readable yet.
  // eslint-disable-next-line prefer-const -- read by `inspect` before createActor returns
  let actor: Actor<M> | undefined;
  // What the tree's snapshot row is when a commit is made, whichever step was last: the commit takes the
  // tree as it stands, so steps sealed while the one before was committing land as one.
  const snapshotNow = (): SnapshotWrite | null => {
    const root = actor!;
    const rootSnapshot = root.getSnapshot() as AnyMachineSnapshot;
    // A stopped tree (the process going) has no snapshot worth keeping: its row stays as last committed.
    if (rootSnapshot.status === 'stopped') return null;
    if (rootSnapshot.status !== 'active') return { delete: actorId };
    const { kind } = options.member(root, rootSnapshot, true);
    return { save: { actorId, kind, requestId, callId: null, snapshot: root.getPersistedSnapshot(), updatedAt: now() } };
  };
  // Until the root's first settled snapshot: the start of a restored tree, its children's included.
  let restoring = options.snapshot !== undefined;
  const journal = options.journals.open({
    snapshot: snapshotNow,
    what: { requestId },
    ...(options.fence ? { fence: options.fence } : {}),
    ...(options.onStale ? { onStale: options.onStale } : {}),
    ...(options.onRingRefused ? { onRingRefused: options.onRingRefused } : {}),
  });

  const trackOf = (ref: AnyActorRef, isRoot: boolean): Tracked => {
    let entry = tracked.get(ref);
    if (!entry) {
      // A restored actor continues from its persisted state; a new one starts from nothing.
      const restored = isRoot ? persisted?.value : persisted?.children?.[ref.id]?.snapshot?.value;
      const logic = (ref as { logic?: { config?: { initial?: unknown } } }).logic;
      entry = { lastState: restored === undefined ? null : stateName(restored), previous: null, initial: logic?.config?.initial };
      tracked.set(ref, entry);
    }
    return entry;
  };

  const logTransition = (member: TreeMember, entry: Tracked, to: string, event: { type: string }, detail: boolean) => {
    const record = {
      callId: member.callId,
      requestId,
      actor: member.kind,
      type: 'transition',
      fromState: entry.lastState,
      toState: to,
      cause: event.type,
      ...(detail ? { detail: eventDetail(event) } : {}),
      at: now(),
    };
    journal.write((writes) => writes.events.append(record));
    logger.info({ requestId, callId: member.callId, actor: member.kind, from: entry.lastState, to, cause: event.type }, `${member.kind} ${entry.lastState ?? '(start)'} -> ${to}`);
    entry.lastState = to;
  };

  // createActor's conditional option types cannot be satisfied for a generic machine.
  const create = createActor as (machine: AnyStateMachine, options: object) => Actor<M>;
  actor = create(options.machine, {
    ...(options.snapshot ? { snapshot: options.snapshot } : { input: options.input }),
    inspect: (inspection: InspectionEvent) => {
      // The root is unknown only while createActor has not returned, before anything has run.
      const root = actor;
      if (root === undefined) return;
      const ref = inspection.actorRef as AnyActorRef;
      const isRoot = ref === root;
      // Only this tree's own machine actors.
      if (!isRoot && inspection.rootId !== root.sessionId) return;
      const raw = (inspection as { snapshot?: unknown }).snapshot as AnyMachineSnapshot | undefined;
      if (!raw || typeof raw !== 'object' || !('value' in raw)) return;
      const member = options.member(ref, raw, isRoot);
      options.inspect?.(inspection, member);
      const entry = trackOf(ref, isRoot);
      // Microsteps, not settled snapshots, so transient states (routing's `searching`) are logged too.
      if (inspection.type === '@xstate.microstep') {
        const to = stateName(raw.value);
        if (to !== entry.lastState) logTransition(member, entry, to, inspection.event, true);
        return;
      }
      if (inspection.type !== '@xstate.snapshot') return;
      // Stopping an actor (server shutdown, or a call left with its request) is not a transition: the
      // persisted tree must survive a shutdown, and a call left behind is closed by its request's effects.
      if (raw.status === 'stopped') return;
      // The start's eventless steps are not inspected as microsteps; the initial state is logged for them.
      if (entry.lastState === null && typeof entry.initial === 'string' && stateName(raw.value) !== entry.initial) {
        logTransition(member, entry, entry.initial, inspection.event, false);
      }
      const to = stateName(raw.value);
      if (entry.lastState === null || to !== entry.lastState) logTransition(member, entry, to, inspection.event, true);
      const before = entry.previous;
      entry.previous = raw;
      if (isRoot) options.onSnapshot?.(raw as SnapshotFrom<M>, before as SnapshotFrom<M> | null);
      else options.onChildSnapshot?.(member, raw, before);
      // A restored tree's start leaves it as the store has it: only what the start journaled needs writing.
      journal.seal(!restoring);
      if (isRoot) {
        restoring = false;
        options.afterStep?.(raw as SnapshotFrom<M>, before as SnapshotFrom<M> | null);
      }
    },
  });
  return { actor, journal };
}
