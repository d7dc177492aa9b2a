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

/** Client entries for a request this server does not run, already sanitized, for the node that does. */
export type ClientEntriesElsewhere = (target: { requestId: string; callId: string | null }, side: 'agent' | 'visitor', kind: InspectedKind, entries: ClientEntryInput[]) => void;

export class Inspection {
  private readonly timelines = new Map<string, TimelineEntry[]>();
  // The server's own snapshots share unchanged parts from one transition to the next; so do their copies here.
  private readonly sanitizeOwn = createSharingSanitizer();
  private readonly sanitizeOwnEvent = (event: { type: string }) => sanitizeEvent(event, this.sanitizeOwn);
  /** The latest view of every actor, keyed by request and actor: each client names its actors only by kind. */
  private readonly actors = new Map<string, ActorView>();
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly entryListeners = new Set<Listener>();
  private readonly serverListeners = new Set<() => void>();
  /** Requests whose tree this server brought back from a snapshot: what they did before is in the store, not here. */
  private readonly restored = new Set<string>();
  private elsewhere: ClientEntriesElsewhere | null = null;

  constructor(private readonly now: () => number = Date.now) {}

  /** The switchboard's `inspect` option. */
  readonly record = (inspection: InspectionEvent, actor: { kind: 'routing' | 'callSession'; requestId: string; callId: string | null }): void => {
    if (inspection.type !== '@xstate.snapshot') return;
    const snapshot = inspection.snapshot as AnyMachineSnapshot;
    // Stopping is the server shutting down or a call handed on, not something the machine did. A stopped
    // routing actor takes its request away from this server (in a cluster, to another node), so what is kept
    // of it here would only go stale.
    if (snapshot.status === 'stopped') {
      if (actor.kind === 'routing' && this.timelines.has(actor.requestId)) {
        this.forget(actor.requestId);
        for (const listener of this.serverListeners) listener();
      }
      return;
    }
    if (!this.timelines.has(actor.requestId) && startedFromSnapshot(inspection)) this.restored.add(actor.requestId);
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
    if (actor.kind === 'routing' && snapshot.status !== 'active') this.forget(actor.requestId);
    for (const listener of this.serverListeners) listener();
  };

  private forget(requestId: string): void {
    this.timelines.delete(requestId);
    this.listeners.delete(requestId);
    this.restored.delete(requestId);
    for (const [other, view] of this.actors) if (view.requestId === requestId) this.actors.delete(other);
  }

  /** Entries a client reported about its own machines; the caller has checked the request is the sender's. */
  addClient(
    target: { requestId: string; callId: string | null },
    side: 'agent' | 'visitor',
    kind: InspectedKind,
    entries: ClientEntryInput[],
    options: { forwarded?: boolean } = {},
  ): void {
    // A request that has ended takes no more entries: nothing would ever clear them. In a cluster one that
    // runs on another node is that node's to keep (entries forwarded once are not sent on again).
    if (!this.timelines.has(target.requestId)) {
      if (this.elsewhere && !options.forwarded) {
        this.elsewhere(
          target,
          side,
          kind,
          // No undefined field: the adapter's msgpack would send it as null.
          entries.map((entry) => ({
            at: entry.at,
            ...(entry.actorId === undefined ? {} : { actorId: entry.actorId }),
            event: sanitizeEvent(entry.event),
            state: sanitize(entry.state) ?? null,
            context: sanitize(entry.context) ?? null,
          })),
        );
      }
      return;
    }
    for (const entry of entries) {
      // Prefixed by side, so a client can never pass itself off as a server actor.
      const actorId = `${side}:${entry.actorId ?? kind}`;
      const state = sanitize(entry.state) ?? null;
      const context = sanitize(entry.context) ?? null;
      this.actors.set(actorKey(target.requestId, actorId), { actorId, kind, side, requestId: target.requestId, callId: target.callId, status: 'active', state, context });
      this.append({ at: entry.at, requestId: target.requestId, callId: target.callId, actorId, kind, side, event: sanitizeEvent(entry.event), state, context });
    }
  }

  /** In a cluster: where client entries go for a request that runs on another node. */
  sendClientEntriesElsewhere(handler: ClientEntriesElsewhere | null): void {
    this.elsewhere = handler;
  }

  /** Every entry of every request, as it is added; returns the unsubscribe. */
  onEntry(listener: Listener): () => void {
    this.entryListeners.add(listener);
    return () => {
      this.entryListeners.delete(listener);
    };
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
    for (const listener of this.entryListeners) listener(entry);
  }

  /** Whether the request is live here: only a live request has entries to replay and stream. */
  isLive(requestId: string): boolean {
    return this.timelines.has(requestId);
  }

  /** Whether the request's tree was brought back here from a snapshot, after running elsewhere or before a restart. */
  isRestored(requestId: string): boolean {
    return this.restored.has(requestId);
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

/** XState starts a restored actor with the snapshot it was given; a new one has none. */
function startedFromSnapshot(inspection: InspectionEvent): boolean {
  const options = (inspection.actorRef as { options?: { snapshot?: unknown } } | undefined)?.options;
  return options?.snapshot !== undefined;
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
