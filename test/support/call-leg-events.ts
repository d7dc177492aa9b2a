/**
 * Events for the property and model tests of the two call legs, the agent and visitorCall machines: what
 * both take alike from their adapter and their media child, and what the server tells each.
 */
import type { AgentEvent } from '../../machines/src/agent.machine.ts';
import type { CallLegEvent } from '../../machines/src/callLeg.ts';
import type { VisitorCallEvent } from '../../machines/src/visitorCall.machine.ts';

/** The connection's three reports, a second apart from `from`. */
export function iceEvents(from: number): CallLegEvent[] {
  return [
    { type: 'ice.connected', at: from },
    { type: 'ice.disconnected', at: from + 1_000 },
    { type: 'ice.failed', at: from + 2_000 },
  ];
}

/** What a leg hears alike: the other person's socket, a lost session, the connection, signaling and the network. */
export function legEvents(iceFrom: number): (CallLegEvent | { type: 'session.lost' })[] {
  return [
    { type: 'peer.away' },
    { type: 'peer.back' },
    { type: 'session.lost' },
    ...iceEvents(iceFrom),
    { type: 'signal.up' },
    { type: 'signal.down' },
    { type: 'network.online' },
  ];
}

/** A pure search cannot run the media child, so its two outcomes are sent as events instead. */
export const mediaOutcomes: CallLegEvent[] = [
  { type: 'xstate.done.actor.media', output: { outcome: 'failed' } },
  { type: 'xstate.done.actor.media', output: { outcome: 'closed' } },
];

/** What the server tells an agent: a ring, the call accepted and ended, a refused accept, and each kind of resume. */
export const agentServerEvents: AgentEvent[] = [
  { type: 'ring', requestId: 'req-1', visitorName: 'Vera', at: 1_000 },
  { type: 'call.accepted', callId: 'call-1' },
  { type: 'call.ended', reason: 'visitor-hangup' },
  { type: 'call.ended', reason: 'reconnect-timeout' },
  { type: 'call.ended', reason: 'media-failed' },
  { type: 'accept.refused', requestId: 'req-1' },
  { type: 'server.resumed', call: { callId: 'call-1' } },
  { type: 'server.resumed', call: null },
];

/**
 * What the server tells a visitor with a payload: the request ringing, queued and ended, the call accepted
 * and ended, and each kind of resume (the call `call-1`, nothing, or the request in each of its states).
 */
export const visitorServerEvents: VisitorCallEvent[] = [
  { type: 'routing.ringing', agentName: 'Ada' },
  { type: 'routing.queued', position: 2 },
  { type: 'routing.ended', reason: 'no-agents' },
  { type: 'routing.ended', reason: 'reassign-limit' },
  { type: 'routing.ended', reason: 'cancelled' },
  { type: 'call.accepted', callId: 'call-1', agentName: 'Ada' },
  { type: 'call.ended', reason: 'agent-hangup' },
  { type: 'call.ended', reason: 'reconnect-timeout' },
  { type: 'server.resumed', call: { callId: 'call-1' }, request: null },
  { type: 'server.resumed', call: null, request: null },
  { type: 'server.resumed', call: null, request: { state: 'ringing', agentName: 'Grace' } },
  { type: 'server.resumed', call: null, request: { state: 'queued', position: 3 } },
  { type: 'server.resumed', call: null, request: { state: 'searching' } },
];
