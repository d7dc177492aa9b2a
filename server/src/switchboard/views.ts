/** What each person is shown of the requests and calls they are part of, and the inspector's list. */
import type { LiveRequest, ServerPayload } from '@callchart/machines';
import type { CallEntry } from './entries.ts';
import type { Registry } from './registry.ts';
import { callRoom, personRoom, type Person } from './rooms.ts';

const isLeg = (call: CallEntry, person: Person) => (person.kind === 'agent' ? call.agentId : call.visitorId) === person.id;

export type CallView = ServerPayload<'session.resumed'>['call'];

/** What a resuming client is told about its call. */
export function callFor(registry: Registry, person: Person): CallView {
  for (const call of registry.calls.values()) {
    if (!isLeg(call, person)) continue;
    return callView(call, person, registry.callActor(call.callId)?.getSnapshot().hasTag('paused') ?? false);
  }
  return null;
}

/** A call as one of its legs is told of it. */
export function callView(call: CallEntry, person: Person, paused: boolean): NonNullable<CallView> {
  return {
    callId: call.callId,
    role: person.kind === 'agent' ? 'offerer' : 'answerer',
    peerName: person.kind === 'agent' ? call.visitorName : call.agentName,
    state: paused ? 'paused' : 'active',
  };
}

/** Rooms a (re)connecting socket belongs in: the person's own, and those of `calls` they are a leg of. */
export function roomsFor(registry: Registry, person: Person, calls: Iterable<CallEntry> = registry.calls.values()): string[] {
  const rooms = new Set([personRoom(person)]);
  for (const call of calls) if (isLeg(call, person)) rooms.add(callRoom(call.callId));
  return [...rooms];
}

/** The live calls a person is a leg of. */
export function callsOf(registry: Registry, person: Person): CallEntry[] {
  return [...registry.calls.values()].filter((call) => isLeg(call, person));
}

/** Where a visitor's request stands, for a visitor resuming before its call exists. */
export function requestFor(registry: Registry, visitorId: string): ServerPayload<'session.resumed'>['request'] {
  for (const entry of registry.requests.values()) {
    if (entry.visitorId !== visitorId) continue;
    const snapshot = entry.actor.getSnapshot();
    const { context } = snapshot;
    if (snapshot.matches('ringing')) {
      const name = context.currentAgentId ? registry.directory.name(context.currentAgentId) : undefined;
      return name ? { requestId: entry.requestId, state: 'ringing', agentName: name } : { requestId: entry.requestId, state: 'ringing' };
    }
    // Nobody was rung while this visitor was away; their return starts the search again.
    if (snapshot.matches('waitingForVisitor')) return { requestId: entry.requestId, state: 'searching' };
    if (snapshot.matches('queued')) {
      return context.queuePosition
        ? { requestId: entry.requestId, state: 'queued', position: context.queuePosition }
        : { requestId: entry.requestId, state: 'queued' };
    }
  }
  return null;
}

/** Live requests and their calls, for the inspector's list. */
export function live(registry: Registry): LiveRequest[] {
  return [...registry.requests.values()].map((entry) => {
    const snapshot = entry.actor.getSnapshot();
    const agentId = snapshot.context.currentAgentId;
    const callId = snapshot.context.callId;
    const call = callId ? registry.calls.get(callId) : undefined;
    const session = snapshot.children.call?.getSnapshot();
    return {
      requestId: entry.requestId,
      pool: entry.pool,
      visitorName: entry.visitorName,
      agentName: call?.agentName ?? (agentId ? (registry.directory.name(agentId) ?? null) : null),
      createdAt: entry.createdAt,
      state: snapshot.value,
      call: call && session ? { callId: call.callId, agentName: call.agentName, state: session.value } : null,
    };
  });
}

/** Requests waiting in the queue for a free agent. */
export function queuedCount(registry: Registry): number {
  let queued = 0;
  for (const entry of registry.requests.values()) if (entry.actor.getSnapshot().matches('queued')) queued++;
  return queued;
}
