import { describeModel } from './harness.ts';
import { peerConnectionMachine } from '../../machines/src/peerConnection.machine.ts';

describeModel({
  name: 'peerConnection',
  machine: peerConnectionMachine,
  // The offerer runs every effect, including the restart offer the answerer never sends.
  input: { role: 'offerer', maxAttempts: 3 },
  events: [
    { type: 'ice.connected', at: 20000 },
    { type: 'ice.disconnected', at: 5000 },
    { type: 'ice.failed', at: 15000 },
  ],
  serializeState: (snapshot) =>
    JSON.stringify({
      value: snapshot.value,
      attempts: snapshot.context.attempts,
      signalingUp: snapshot.context.signalingUp,
      online: snapshot.context.online,
      peerReachable: snapshot.context.peerReachable,
      attemptInProgress: snapshot.context.attemptInProgress,
      outageStartedAt: snapshot.context.outageStartedAt,
    }),
  // The last recovery is history, not state: it is left out of the abstraction (which keeps the graph
  // small enough for simple paths) and therefore out of the comparison; unit tests check it.
  compareContext: ({ lastRecovery: _history, ...rest }) => rest,
});
