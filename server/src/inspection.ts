/**
 * The live inspector's memory: a bounded timeline per visitor request of what every machine of it did
 * (the server's routing and callSession actors, and the clients' own machines when they are allowed to
 * report), plus each server actor's current snapshot. Everything is sanitized on the way in, so nothing
 * kept or sent from here carries a session description, a token or a credential.
 */
import type { AnyMachineSnapshot, InspectionEvent } from 'xstate';
import type { CallEventRecord } from './store.ts';

export type InspectedKind = 'routing' | 'callSession' | 'visitorCall' | 'agent' | 'peerConnection' | 'signaling';
export type InspectedSide = 'server' | 'agent' | 'visitor';

export interface TimelineEntry {
  at: number;
  requestId: string;
  callId: string | null;
  actorId: string;
  kind: InspectedKind;
  side: InspectedSide;
  event: { type: string } & Record<string, unknown>;
  state: unknown;
  context: unknown;
}

export interface ActorView {
  actorId: string;
  kind: 'routing' | 'callSession';
  requestId: string;
  callId: string | null;
  status: string;
  state: unknown;
  context: unknown;
}

export const TIMELINE_LIMIT = 500;
const MAX_STRING = 200;
const MAX_ITEMS = 50;
const MAX_DEPTH = 8;
// Keys whose values are secrets or bulky session descriptions; matched case-insensitively at any depth.
const REDACTED_KEYS = new Set(['sdp', 'token', 'resumetoken', 'password', 'candidate', 'credential', 'secret', 'authorization']);
export const REDACTED = '[redacted]';

/** A JSON copy that is safe and small enough to show: secrets redacted, strings, arrays and depth capped. */
export function sanitize(value: unknown, depth = 0): unknown {
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return value;
  if (typeof value === 'string') return value.length > MAX_STRING ? `${value.slice(0, MAX_STRING)}…` : value;
  if (typeof value === 'bigint') return value.toString();
  if (typeof value !== 'object') return undefined;
  if (depth >= MAX_DEPTH) return '[too deep]';
  if (Array.isArray(value)) {
    const items = value.slice(0, MAX_ITEMS).map((item) => sanitize(item, depth + 1) ?? null);
    if (value.length > MAX_ITEMS) items.push(`[+${value.length - MAX_ITEMS} more]`);
    return items;
  }
  const entries = Object.entries(value as Record<string, unknown>);
  const out: Record<string, unknown> = {};
  for (const [key, item] of entries.slice(0, MAX_ITEMS)) {
    const clean = REDACTED_KEYS.has(key.toLowerCase()) && item !== null && item !== undefined ? REDACTED : sanitize(item, depth + 1);
    if (clean !== undefined) out[key.length > MAX_STRING ? key.slice(0, MAX_STRING) : key] = clean;
  }
  if (entries.length > MAX_ITEMS) out['[more]'] = entries.length - MAX_ITEMS;
  return out;
}

export function sanitizeEvent(event: { type: string }): TimelineEntry['event'] {
  const clean = sanitize(event) as Record<string, unknown>;
  return { ...clean, type: String(clean.type ?? event.type) };
}

export interface ClientEntryInput {
  at: number;
  actorId?: string | undefined;
  event: { type: string };
  state: unknown;
  context?: unknown;
}

type Listener = (entry: TimelineEntry) => void;

export class Inspection {
  private readonly timelines = new Map<string, TimelineEntry[]>();
  private readonly actors = new Map<string, ActorView>();
  private readonly listeners = new Map<string, Set<Listener>>();

  constructor(private readonly now: () => number = Date.now) {}

  /** The switchboard's `inspect` option. */
  readonly record = (inspection: InspectionEvent, actor: { kind: 'routing' | 'callSession'; requestId: string; callId: string | null }): void => {
    if (inspection.type !== '@xstate.snapshot') return;
    const snapshot = inspection.snapshot as AnyMachineSnapshot;
    // Stopping is the server shutting down or a call handed on, not something the machine did.
    if (snapshot.status === 'stopped') return;
    const actorId = actor.kind === 'routing' ? `routing:${actor.requestId}` : `callSession:${actor.callId ?? ''}`;
    const state = sanitize(snapshot.value);
    const context = sanitize(snapshot.context);
    this.actors.set(actorId, { actorId, kind: actor.kind, requestId: actor.requestId, callId: actor.callId, status: snapshot.status, state, context });
    this.append({
      at: this.now(),
      requestId: actor.requestId,
      callId: actor.callId,
      actorId,
      kind: actor.kind,
      side: 'server',
      event: sanitizeEvent(inspection.event),
      state,
      context,
    });
    if (snapshot.status !== 'active') this.actors.delete(actorId);
    // A request's machines are all done once its routing actor is: its history is in the store from here on.
    if (actor.kind === 'routing' && snapshot.status !== 'active') {
      this.timelines.delete(actor.requestId);
      this.listeners.delete(actor.requestId);
    }
  };

  /** Entries a client reported about its own machines; the caller has checked the request is the sender's. */
  addClient(target: { requestId: string; callId: string | null }, side: 'agent' | 'visitor', kind: InspectedKind, entries: ClientEntryInput[]): void {
    for (const entry of entries) {
      this.append({
        at: entry.at,
        requestId: target.requestId,
        callId: target.callId,
        // Prefixed by side, so a client can never pass itself off as a server actor.
        actorId: `${side}:${entry.actorId ?? kind}`,
        kind,
        side,
        event: sanitizeEvent(entry.event),
        state: sanitize(entry.state) ?? null,
        context: sanitize(entry.context) ?? null,
      });
    }
  }

  private append(entry: TimelineEntry): void {
    let timeline = this.timelines.get(entry.requestId);
    if (!timeline) this.timelines.set(entry.requestId, (timeline = []));
    timeline.push(entry);
    if (timeline.length > TIMELINE_LIMIT) timeline.splice(0, timeline.length - TIMELINE_LIMIT);
    for (const listener of this.listeners.get(entry.requestId) ?? []) listener(entry);
  }

  timeline(requestId: string): TimelineEntry[] {
    return [...(this.timelines.get(requestId) ?? [])];
  }

  actorsOf(requestId: string): ActorView[] {
    return [...this.actors.values()].filter((actor) => actor.requestId === requestId);
  }

  /** Live entries of one request; returns the unsubscribe. */
  subscribe(requestId: string, listener: Listener): () => void {
    let set = this.listeners.get(requestId);
    if (!set) this.listeners.set(requestId, (set = new Set()));
    set.add(listener);
    return () => {
      this.listeners.get(requestId)?.delete(listener);
    };
  }
}

/** A finished call's stored transitions as timeline entries (the store keeps states and causes, not contexts). */
export function historyEntries(events: CallEventRecord[]): (TimelineEntry & { fromState: string | null })[] {
  return events.map((event) => ({
    at: event.at,
    requestId: event.requestId,
    callId: event.callId,
    actorId: event.actor === 'server' ? 'server' : `${event.actor}:${event.actor === 'routing' ? event.requestId : (event.callId ?? '')}`,
    kind: event.actor === 'server' ? 'routing' : event.actor,
    side: 'server',
    event: sanitizeEvent({ type: event.cause ?? event.type, ...(event.detail && typeof event.detail === 'object' ? event.detail : {}) }),
    fromState: event.fromState,
    state: event.toState,
    context: null,
  }));
}
