import type { ModelSpec } from './harness.ts';
import { connectionMachine, type ConnectionContext, type ConnectionEvent, type PersonKind } from '../../machines/src/connection.machine.ts';

const AT = 1_000;
const SOCKETS = ['s1', 's2'];

// When the window began and when the grace is due depend on the path taken (a timer fires at its own
// deadline), not on what the person does next, so they are left out of the abstraction and of the comparison.
function behaviour(context: ConnectionContext) {
  const { windowFrom: _from, deadlineAt: _deadline, timerMs: _timer, startedAt: _started, ...rest } = context;
  return rest;
}

/** A person of either kind: agents and visitors take different branches of the same chart. */
export function connectionSpec(kind: PersonKind): ModelSpec<typeof connectionMachine> {
  return {
    name: `connection (${kind})`,
    machine: connectionMachine,
    input: { kind, personId: kind === 'agent' ? 'ada' : 'v1', at: AT, timings: { resumeWindow: 500 } },
    events: (): ConnectionEvent[] => [
      ...SOCKETS.flatMap((socketId): ConnectionEvent[] => [
        { type: 'socket.connected', socketId, at: AT },
        { type: 'socket.ready', socketId, resumed: false, at: AT },
        { type: 'socket.ready', socketId, resumed: true, at: AT },
        { type: 'socket.disconnected', socketId, at: AT },
      ]),
      // One socket is enough for what a resume over an open socket does; a second only multiplies states.
      { type: 'session.resumed', socketId: 's1', at: AT },
      { type: 'presence.chosen', status: 'away', at: AT },
      { type: 'presence.chosen', status: 'available', at: AT },
      // One login of the two sockets, and both: the agent's other login staying, and the last one going.
      { type: 'session.loggedOut', socketIds: ['s1'], at: AT },
      { type: 'session.loggedOut', socketIds: SOCKETS, at: AT },
      { type: 'process.opened', at: AT },
      { type: 'timers.rearm', at: AT },
    ],
    serializeState: (snapshot) => JSON.stringify({ value: snapshot.value, status: snapshot.status, context: behaviour(snapshot.context) }),
    compareContext: behaviour,
  };
}
