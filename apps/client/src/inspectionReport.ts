/**
 * Reports this client's machines to the server's live inspector, when the server says it takes reports
 * (`session.ready` with `inspect: true`, a development setting). Every transition becomes a sanitized entry
 * tagged with the request it belongs to; the entries of one burst (a transition's microsteps, an attach of
 * every actor) go out together, straight on the socket, once the current task is done. No timer: the
 * client keeps no clock of its own.
 *
 * Reports bypass the signaling outbox on purpose: the outbox is itself an inspected machine, so a report
 * queued there would cause a transition that is reported in turn, forever. A report lost with the socket
 * costs nothing, and the next attach after a reconnect sends every actor's current state again.
 */
import type { AnyMachineSnapshot, InspectionEvent, Observer } from 'xstate';
import {
  INSPECTABLE_CLIENT_ACTORS,
  MAX_INSPECT_ENTRIES,
  MAX_INSPECT_ENTRY_BYTES,
  sanitize,
  sanitizeEvent,
  type ClientPayload,
} from '@callchart/machines';

export type InspectableActor = (typeof INSPECTABLE_CLIENT_ACTORS)[number];
/** What the server files a report under: the sender's own request, or the call it is in. */
export type InspectionTarget = { requestId: string } | { callId: string };
export type Inspect = Observer<InspectionEvent> | ((event: InspectionEvent) => void);

/** The event of the entry that (re)introduces an actor's current state to a new target or a new socket. */
export const ATTACHED_EVENT = 'inspector.attached';

type Entry = ClientPayload<'inspect.client'>['entries'][number];
interface Pending {
  actor: InspectableActor;
  target: InspectionTarget;
  entry: Entry;
}

export interface InspectionReporter {
  /** The inspect observer for every actor of the client. */
  readonly inspect: (event: InspectionEvent) => void;
  /** Turns reporting on or off; turning it on sends every actor's current state. */
  setEnabled(enabled: boolean): void;
  /** Where entries belong from now on; `null` (no request yet, or none any more) drops them. */
  setTargetSource(target: () => InspectionTarget | null): void;
  stop(): void;
}

export interface InspectionReporterOptions {
  emit: (payload: ClientPayload<'inspect.client'>) => void;
  now?: () => number;
}

const isInspectable = (id: string | undefined): id is InspectableActor => (INSPECTABLE_CLIENT_ACTORS as readonly (string | undefined)[]).includes(id);

const fits = (entry: Entry) => new TextEncoder().encode(JSON.stringify(entry)).byteLength <= MAX_INSPECT_ENTRY_BYTES;

/** An entry the server will take: a context too big to send is left out rather than the whole entry. */
export function reportEntry(at: number, event: { type: string }, snapshot: Pick<AnyMachineSnapshot, 'value' | 'context'>): Entry {
  const entry: Entry = { at, event: sanitizeEvent(event), state: sanitize(snapshot.value) ?? null, context: sanitize(snapshot.context) ?? null };
  if (fits(entry)) return entry;
  const lean: Entry = { at, event: { type: entry.event.type }, state: entry.state, context: '[too large to report]' };
  return fits(lean) ? lean : { at, event: { type: entry.event.type }, state: '[too large to report]' };
}

function sameTarget(a: InspectionTarget | null, b: InspectionTarget | null): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export function createInspectionReporter(options: InspectionReporterOptions): InspectionReporter {
  const now = options.now ?? Date.now;
  const latest = new Map<InspectableActor, AnyMachineSnapshot>();
  let pending: Pending[] = [];
  let scheduled = false;
  let enabled = false;
  let targetSource: () => InspectionTarget | null = () => null;
  let attachedTo: InspectionTarget | null = null;

  const flush = () => {
    scheduled = false;
    const batch = pending;
    pending = [];
    // One message per run of entries with the same actor and target, in the order they happened.
    for (let start = 0; start < batch.length; ) {
      const { actor, target } = batch[start]!;
      let end = start + 1;
      while (end < batch.length && end - start < MAX_INSPECT_ENTRIES && batch[end]!.actor === actor && sameTarget(batch[end]!.target, target)) end++;
      options.emit({ ...target, actor, entries: batch.slice(start, end).map((item) => item.entry) });
      start = end;
    }
  };

  const enqueue = (item: Pending) => {
    pending.push(item);
    if (scheduled) return;
    scheduled = true;
    queueMicrotask(flush);
  };

  /** Every actor's current state under `target`; `cause` is the event that just moved `causeActor`. */
  const attach = (target: InspectionTarget, causeActor?: InspectableActor, cause?: { type: string }) => {
    attachedTo = target;
    for (const [actor, snapshot] of latest) {
      const event = actor === causeActor && cause ? cause : { type: ATTACHED_EVENT };
      enqueue({ actor, target, entry: reportEntry(now(), event, snapshot) });
    }
  };

  return {
    inspect(inspection) {
      if (inspection.type !== '@xstate.snapshot') return;
      const snapshot = inspection.snapshot as AnyMachineSnapshot;
      const actor = snapshot.machine?.id;
      if (!isInspectable(actor)) return;
      // A stopped actor is the client shutting down or a call's media going away, not a transition.
      if (snapshot.status === 'stopped') {
        latest.delete(actor);
        return;
      }
      const previous = latest.get(actor);
      latest.set(actor, snapshot);
      if (!enabled) return;
      // A tick that re-enters its own state (the media watch samples twice a second) changes nothing worth
      // a line in the timeline: same state, same context.
      if (previous && previous.context === snapshot.context && JSON.stringify(previous.value) === JSON.stringify(snapshot.value)) return;
      const target = targetSource();
      if (target === null) return;
      if (!sameTarget(target, attachedTo)) return attach(target, actor, inspection.event);
      enqueue({ actor, target, entry: reportEntry(now(), inspection.event, snapshot) });
    },
    setEnabled(value) {
      enabled = value;
      attachedTo = null;
      if (!value) {
        pending = [];
        return;
      }
      const target = targetSource();
      if (target !== null) attach(target);
    },
    setTargetSource(source) {
      targetSource = source;
    },
    stop() {
      enabled = false;
      pending = [];
      latest.clear();
    },
  };
}

/** One inspect observer that hands every event to each of `inspectors` (ours, Stately's, a test's). */
export function combineInspectors(...inspectors: (Inspect | undefined)[]): (event: InspectionEvent) => void {
  const present = inspectors.filter((inspector): inspector is Inspect => inspector !== undefined);
  return (event) => {
    for (const inspector of present) {
      if (typeof inspector === 'function') inspector(event);
      else inspector.next?.(event);
    }
  };
}
