/**
 * The live inspector's memory: a bounded timeline per visitor request of what every machine of it did
 * (the server's routing and callSession actors, and the clients' own machines when they are allowed to
 * report), plus each server actor's current snapshot. Everything is sanitized on the way in, so nothing
 * kept or sent from here carries a session description, a token or a credential.
 */
import type { AnyMachineSnapshot, InspectionEvent } from 'xstate';
import {
  createSharingSanitizer,
  sanitize,
  sanitizeEvent,
  type ActorKind,
  type ActorSide,
  type ActorView as WireActorView,
  type StoredEntry,
  type TimelineEntry,
} from '@callchart/machines';
import type { CallEventRecord } from './store.ts';

export { REDACTED, sanitize, sanitizeEvent } from '@callchart/machines';
export type { TimelineEntry };

export type InspectedKind = ActorKind;
export type InspectedSide = ActorSide;

/** The wire's actor view, with the side that this server always knows. */
export type ActorView = WireActorView & { side: InspectedSide };

export const TIMELINE_LIMIT = 500;
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
  // The server's own snapshots share unchanged parts from one transition to the next; so do their copies here.
  private readonly sanitizeOwn = createSharingSanitizer();
  private readonly sanitizeOwnEvent = (event: { type: string }) => sanitizeEvent(event, this.sanitizeOwn);
  /** The latest view of every actor, keyed by request and actor: each client names its actors only by kind. */
  private readonly actors = new Map<string, ActorView>();
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly serverListeners = new Set<() => void>();

  constructor(private readonly now: () => number = Date.now) {}

  /** The switchboard's `inspect` option. */
  readonly record = (inspection: InspectionEvent, actor: { kind: 'routing' | 'callSession'; requestId: string; callId: string | null }): void => {
    if (inspection.type !== '@xstate.snapshot') return;
    const snapshot = inspection.snapshot as AnyMachineSnapshot;
    // Stopping is the server shutting down or a call handed on, not something the machine did.
    if (snapshot.status === 'stopped') return;
    const actorId = actor.kind === 'routing' ? `routing:${actor.requestId}` : `callSession:${actor.callId ?? ''}`;
    const state = this.sanitizeOwn(snapshot.value);
    const context = this.sanitizeOwn(snapshot.context);
    const key = actorKey(actor.requestId, actorId);
    this.actors.set(key, { actorId, kind: actor.kind, side: 'server', requestId: actor.requestId, callId: actor.callId, status: snapshot.status, state, context });
    this.append({
      at: this.now(),
      requestId: actor.requestId,
      callId: actor.callId,
      actorId,
      kind: actor.kind,
      side: 'server',
      // Shared too: an event's payload is often what the context took in (agents.updated's list).
      event: this.sanitizeOwnEvent(inspection.event),
      state,
      context,
    });
    if (snapshot.status !== 'active') this.actors.delete(key);
    // A request's machines are all done once its routing actor is: its history is in the store from here on.
    if (actor.kind === 'routing' && snapshot.status !== 'active') {
      this.timelines.delete(actor.requestId);
      this.listeners.delete(actor.requestId);
      for (const [other, view] of this.actors) if (view.requestId === actor.requestId) this.actors.delete(other);
    }
    for (const listener of this.serverListeners) listener();
  };

  /** Entries a client reported about its own machines; the caller has checked the request is the sender's. */
  addClient(target: { requestId: string; callId: string | null }, side: 'agent' | 'visitor', kind: InspectedKind, entries: ClientEntryInput[]): void {
    // A request that has ended takes no more entries: nothing would ever clear them.
    if (!this.timelines.has(target.requestId)) return;
    for (const entry of entries) {
      // Prefixed by side, so a client can never pass itself off as a server actor.
      const actorId = `${side}:${entry.actorId ?? kind}`;
      const state = sanitize(entry.state) ?? null;
      const context = sanitize(entry.context) ?? null;
      this.actors.set(actorKey(target.requestId, actorId), { actorId, kind, side, requestId: target.requestId, callId: target.callId, status: 'active', state, context });
      this.append({ at: entry.at, requestId: target.requestId, callId: target.callId, actorId, kind, side, event: sanitizeEvent(entry.event), state, context });
    }
  }

  /** Called after every transition of a server actor, which is what the inspector's list of requests shows. */
  onServerChange(listener: () => void): () => void {
    this.serverListeners.add(listener);
    return () => {
      this.serverListeners.delete(listener);
    };
  }

  private append(entry: TimelineEntry): void {
    let timeline = this.timelines.get(entry.requestId);
    if (!timeline) this.timelines.set(entry.requestId, (timeline = []));
    timeline.push(entry);
    if (timeline.length > TIMELINE_LIMIT) timeline.splice(0, timeline.length - TIMELINE_LIMIT);
    for (const listener of this.listeners.get(entry.requestId) ?? []) listener(entry);
  }

  /** Whether the request is live here: only a live request has entries to replay and stream. */
  isLive(requestId: string): boolean {
    return this.timelines.has(requestId);
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

function actorKey(requestId: string, actorId: string): string {
  return `${requestId} ${actorId}`;
}

/** A finished call's stored transitions as timeline entries (the store keeps states and causes, not contexts). */
export function historyEntries(events: CallEventRecord[]): StoredEntry[] {
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
