/** Who may do what: a socket may only speak about its own request, its own ring and its own call. */
import type { CallLeg as Leg } from '@callchart/machines';
import { SwitchboardError, type CallEntry, type RequestEntry } from './entries.ts';
import type { Registry } from './registry.ts';
import { agentRoom, visitorRoom, type Person } from './rooms.ts';

export function ownRequest(registry: Registry, visitorId: string, requestId: string): RequestEntry {
  const entry = registry.requests.get(requestId);
  if (!entry) throw new SwitchboardError('not-found', 'There is no such call request.');
  if (entry.visitorId !== visitorId) throw new SwitchboardError('forbidden', 'This call request belongs to someone else.');
  return entry;
}

/** An agent may only answer a ring that is ringing for them right now. */
export function ringFor(registry: Registry, agentId: string, requestId: string): RequestEntry {
  const entry = registry.requests.get(requestId);
  const snapshot = entry?.actor.getSnapshot();
  if (!entry || !snapshot?.matches('ringing') || snapshot.context.currentAgentId !== agentId) {
    throw new SwitchboardError('forbidden', 'This call is not ringing for you.');
  }
  return entry;
}

export interface LegOfCall {
  entry: CallEntry;
  leg: Leg;
  peerRoom: string;
}

/** The live call a person is a leg of, checked so a socket can only address its own call. */
export function legOf(registry: Registry, callId: string, person: Person): LegOfCall {
  return legIn(registry.calls.get(callId), person);
}

/** The person's leg of `entry` (a call of this node's, or one every node reads in a cluster). */
export function legIn(entry: CallEntry | null | undefined, person: Person): LegOfCall {
  if (!entry) throw new SwitchboardError('not-found', 'There is no such live call.');
  if (person.kind === 'agent' && entry.agentId === person.id) return { entry, leg: 'agent', peerRoom: visitorRoom(entry.visitorId) };
  if (person.kind === 'visitor' && entry.visitorId === person.id) return { entry, leg: 'visitor', peerRoom: agentRoom(entry.agentId) };
  throw new SwitchboardError('forbidden', 'You are not part of this call.');
}

/**
 * The request a person may speak about: a visitor's own, or the one ringing or connected to an agent.
 * With a callId, the call must be theirs (as for every call event).
 */
export function requestOf(registry: Registry, person: Person, ref: { requestId?: string | undefined; callId?: string | undefined }): { requestId: string; callId: string | null } {
  if (ref.callId !== undefined) {
    const { entry } = legOf(registry, ref.callId, person);
    if (ref.requestId !== undefined && ref.requestId !== entry.requestId) throw new SwitchboardError('forbidden', 'This call belongs to another request.');
    return { requestId: entry.requestId, callId: entry.callId };
  }
  const requestId = ref.requestId ?? '';
  if (person.kind === 'visitor') return { requestId: ownRequest(registry, person.id, requestId).requestId, callId: null };
  const entry = registry.requests.get(requestId);
  if (!entry || entry.actor.getSnapshot().context.currentAgentId !== person.id) {
    throw new SwitchboardError('forbidden', 'This call request is not yours.');
  }
  return { requestId, callId: null };
}
