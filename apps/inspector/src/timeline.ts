/**
 * A request's timeline folded into what each of its actors looked like at one moment, in the order the
 * page shows them: the server's actors, then the agent's, then the visitor's.
 */
import { parseStoredState, stateLabel } from './stateValue.ts';
import type { ActorKind, ActorSide, ActorView, StoredHistory, TimelineEntry } from '@callchart/machines';

/** A stored transition of a finished call, its states read back into state values. */
export interface HistoryEntry extends TimelineEntry {
  fromState: unknown;
}

export interface ActorMoment {
  actorId: string;
  kind: ActorKind;
  side: ActorSide;
  /** False when nothing is known of the actor as of the moment shown; `state` is then null. */
  known: boolean;
  state: unknown;
  context: unknown;
  /** `stateLabel(state)`, or '' when not known. */
  label: string;
  /** The entry that left the actor in this state; null when the state came from the replay's actor view. */
  entry: TimelineEntry | null;
}

const sideOrder: readonly ActorSide[] = ['server', 'agent', 'visitor'];
// Within a side, from the outermost machine to the innermost: who routes, the call, the peer's own view,
// its socket, its media.
const kindOrder: readonly ActorKind[] = ['routing', 'callSession', 'agent', 'visitorCall', 'signaling', 'peerConnection'];

function rank<T>(order: readonly T[], value: T): number {
  const index = order.indexOf(value);
  return index === -1 ? order.length : index;
}

function compareActors(a: Pick<ActorMoment, 'side' | 'kind' | 'actorId'>, b: Pick<ActorMoment, 'side' | 'kind' | 'actorId'>): number {
  return rank(sideOrder, a.side) - rank(sideOrder, b.side) || rank(kindOrder, a.kind) - rank(kindOrder, b.kind) || a.actorId.localeCompare(b.actorId);
}

export interface FoldOptions {
  /** Fold only the entries up to and including this index: the request as it was at that moment. */
  until?: number;
  /**
   * The replay's current actor views. They stand in for actors whose entries the server's bounded
   * timeline has dropped, and only when showing the present (without `until`).
   */
  baseline?: readonly ActorView[];
}

/**
 * Every actor that ever had a state in `entries` or `baseline`, each with its latest state as of the
 * moment shown. Entries without a state (a stored reassignment note) name no actor of their own.
 */
export function foldActors(entries: readonly TimelineEntry[], options: FoldOptions = {}): ActorMoment[] {
  const { until, baseline = [] } = options;
  const actors = new Map<string, ActorMoment>();
  const ensure = (actorId: string, kind: ActorKind, side: ActorSide): ActorMoment => {
    let actor = actors.get(actorId);
    if (!actor) actors.set(actorId, (actor = { actorId, kind, side, known: false, state: null, context: null, label: '', entry: null }));
    return actor;
  };

  entries.forEach((entry, index) => {
    if (entry.state === null || entry.state === undefined) return;
    const actor = ensure(entry.actorId, entry.kind, entry.side);
    if (until !== undefined && index > until) return;
    Object.assign(actor, { known: true, state: entry.state, context: entry.context, label: stateLabel(entry.state), entry });
  });
  for (const view of baseline) {
    const actor = ensure(view.actorId, view.kind, view.side ?? 'server');
    if (until === undefined && !actor.known) {
      Object.assign(actor, { known: true, state: view.state, context: view.context, label: stateLabel(view.state) });
    }
  }
  return [...actors.values()].sort(compareActors);
}

/** How many entries a live request keeps in the page; the server keeps fewer, so this only bounds a long watch. */
export const PAGE_TIMELINE_LIMIT = 2_000;

/** `entries` with `entry` appended, the oldest dropped past `limit`. */
export function appendEntry(entries: readonly TimelineEntry[], entry: TimelineEntry, limit = PAGE_TIMELINE_LIMIT): TimelineEntry[] {
  const next = [...entries, entry];
  return next.length > limit ? next.slice(next.length - limit) : next;
}

const pad = (value: number, width = 2) => String(value).padStart(width, '0');

/** Local wall-clock time to the millisecond, `HH:MM:SS.mmm`: transitions often lie milliseconds apart. */
export function formatClock(at: number): string {
  const time = new Date(at);
  return `${pad(time.getHours())}:${pad(time.getMinutes())}:${pad(time.getSeconds())}.${pad(time.getMilliseconds(), 3)}`;
}

/**
 * A live replay's entries, ready to fold: in a cluster, a node that took the request over replays what the
 * store kept from before it came, whose states are the store's names. A live state value that is a string
 * is one state's plain name, which reads back as itself.
 */
export function replayEntries(entries: readonly TimelineEntry[]): TimelineEntry[] {
  return entries.map((entry) => (typeof entry.state === 'string' ? { ...entry, state: parseStoredState(entry.state) } : entry));
}

/** A stored call's entries with their state names read back into state values, ready to fold and chart. */
export function historyEntries(stored: StoredHistory['entries']): HistoryEntry[] {
  return stored.map((entry) => ({ ...entry, state: parseStoredState(entry.state), fromState: parseStoredState(entry.fromState) }));
}

const SUMMARY_FIELDS = 2;

// Fields a row has no room for: the time has its own column.
const UNSUMMARIZED = new Set(['type', 'at']);
const SUMMARY_VALUE_LENGTH = 24;

function summaryValue(value: string | number | boolean): string {
  const text = String(value);
  return text.length > SUMMARY_VALUE_LENGTH ? `${text.slice(0, SUMMARY_VALUE_LENGTH - 1)}…` : text;
}

/**
 * The event's type and its first few plain fields, `leg.mediaReconnecting (leg: agent)`: enough to tell
 * apart two events of one type in a table row. The whole event is one click away.
 */
export function eventSummary(event: TimelineEntry['event']): string {
  const fields = Object.entries(event)
    .filter((field): field is [string, string | number | boolean] => !UNSUMMARIZED.has(field[0]) && ['string', 'number', 'boolean'].includes(typeof field[1]))
    .slice(0, SUMMARY_FIELDS)
    .map(([key, value]) => `${key}: ${summaryValue(value)}`);
  return fields.length === 0 ? event.type : `${event.type} (${fields.join(', ')})`;
}

/** How the page names an actor: its machine, then whose it is, `peerConnection · visitor`. */
export function actorName(actor: { kind: string; side: string }): string {
  return `${actor.kind} · ${actor.side}`;
}
