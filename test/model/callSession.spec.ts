import type { ModelSpec } from './harness.ts';
import {
  callSessionMachine,
  type CallSessionContext,
  type CallSessionEvent,
  type LegStatus,
} from '../../machines/src/callSession.machine.ts';
import type { CallLeg } from '../../machines/src/protocol.ts';

const AT = 1_000;
const LEGS: CallLeg[] = ['agent', 'visitor'];

const isUp = (status: LegStatus) => status.socket === 'up' && status.media === 'connected';
const other = (leg: CallLeg): CallLeg => (leg === 'agent' ? 'visitor' : 'agent');

function legEvents(leg: CallLeg, types: CallSessionEvent['type'][]): CallSessionEvent[] {
  return types.map((type) => ({ type, leg, at: AT }) as CallSessionEvent);
}

/**
 * The reports a lost leg may receive next, by its status. Each of a lost leg's transitions is reachable
 * from one of these; offering every report in every status would only add paths that cross the same
 * transitions in another order (simple paths grow factorially with them).
 */
function lostLegReports(leg: CallLeg, status: LegStatus): CallSessionEvent[] {
  const key = `${status.socket}/${status.media}`;
  switch (key) {
    case 'down/unreported':
      // A media report before the socket is back is the one way the socket coming back finds the media
      // connected; no client can send it, but the machine accepts it.
      return legEvents(leg, ['leg.socketBack', 'leg.mediaConnected']);
    case 'down/connected':
      return legEvents(leg, ['leg.socketBack']);
    case 'up/unreported':
      // The client's first report after its socket came back: its media held, or it broke too.
      return legEvents(leg, ['leg.mediaConnected', 'leg.mediaReconnecting']);
    case 'up/reconnecting':
      // A second report of reconnecting is the next restart attempt starting.
      return legEvents(leg, ['leg.mediaConnected', 'leg.socketLost', 'leg.mediaFailed', 'leg.mediaReconnecting']);
    case 'up/failed':
      // The other leg failing too is the one way both legs end the call together.
      return [...legEvents(leg, ['leg.mediaConnected']), ...legEvents(other(leg), ['leg.mediaFailed'])];
    default:
      return [];
  }
}

// Once the call has ended, the legs' last statuses steer nothing; and the telemetry arrays only ever
// grow and steer nothing either. Both are checked by the behaviour tests instead.
function behaviour(context: CallSessionContext) {
  const { disconnections: _d, reconnectionAttempts: _r, ...rest } = context;
  if (context.endReason === null) return rest;
  const { endReason, endedBy, endedAt, totalPauseMs, pausedAt } = context;
  return { endReason, endedBy, endedAt, totalPauseMs, pausedAt };
}

export const callSessionSpec: ModelSpec<typeof callSessionMachine> = {
  name: 'callSession',
  machine: callSessionMachine,
  // One leg is disturbed at a time (every pair of leg statuses would be a state of its own).
  events: (snapshot): CallSessionEvent[] => {
    const { legs } = snapshot.context;
    const events: CallSessionEvent[] = [
      // How routing hands the invoked session its call; only the starting state takes it.
      { type: 'call.start', callId: 'c1', at: AT },
      { type: 'call.hangup', by: 'agent', at: AT },
      { type: 'call.hangup', by: 'visitor', at: AT },
      { type: 'leg.attempt', leg: 'agent', at: AT, durationMs: 120, outcome: 'recovered' },
      { type: 'timers.rearm', at: AT },
    ];
    const lost = LEGS.find((leg) => !isUp(legs[leg]));
    if (lost) events.push(...lostLegReports(lost, legs[lost]));
    else for (const leg of LEGS) events.push(...legEvents(leg, ['leg.socketLost', 'leg.mediaReconnecting', 'leg.mediaFailed']));
    return events;
  },
  serializeState: (snapshot) => JSON.stringify({ value: snapshot.value, status: snapshot.status, context: behaviour(snapshot.context) }),
  compareContext: behaviour,
};
