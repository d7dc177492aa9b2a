import { describeModel } from './harness.ts';
import { signalingMachine, type SignalingContext } from '../../machines/src/signaling.machine.ts';

// The PRNG state, the stale delay of the last retry and the drop counters are history that grows
// without bound; they are left out of the abstraction (which keeps the graph finite) and therefore
// out of the comparison. Everything that decides a transition stays in both.
const abstraction = ({ randomState: _r, retryDelayMs: _d, outboxDropped: _o, outboxExpired: _e, ...rest }: SignalingContext) => rest;

describeModel({
  name: 'signaling',
  machine: signalingMachine,
  // No jitter, so a retry's delay depends only on the attempt number; a limit of 3 bounds the attempts
  // and an outbox of 1 still exercises dropping the oldest message.
  input: { maxAttempts: 3, outboxLimit: 1, timings: { maxJitter: 0 } },
  events: [
    { type: 'socket.connected', at: 10 },
    { type: 'socket.closed', reason: 'clean', at: 10 },
    { type: 'socket.closed', reason: 'transport', at: 10 },
    { type: 'session.ready', resumeToken: 'tok' },
    { type: 'session.resumed', at: 10 },
    { type: 'session.expired', at: 10 },
    { type: 'send', event: 'chat', payload: 1, at: 0 },
    // Expired by the time any event at t=10 makes the connection ready.
    { type: 'send', event: 'typing', payload: 2, at: 0, ttlMs: 5 },
  ],
  serializeState: (snapshot) => JSON.stringify({ value: snapshot.value, context: abstraction(snapshot.context) }),
  compareContext: abstraction,
});
