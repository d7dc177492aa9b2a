import { createMachine } from 'xstate';
import { agentMachine } from '../../machines/src/agent.machine.ts';
import { agentServerEvents, iceEvents, mediaOutcomes } from '../support/call-leg-events.ts';
import { describeModel } from './harness.ts';

// Model-test double for the media child: the real peerConnection has timers of its own, which the
// simulated clock would fire behind the model's back. Its outcomes are sent as events instead.
const inertMediaDouble = createMachine({ id: 'inertMedia' });

describeModel({
  name: 'agent',
  machine: agentMachine.provide({ actors: { peerConnection: inertMediaDouble as never } }),
  input: {},
  events: [
    ...agentServerEvents,
    ...iceEvents(2_000),
    ...mediaOutcomes,
  ],
  // The model keeps one snapshot per serialized state, so what is compared must follow from what is
  // serialized. The signaling flag only loops on a state (the harness still takes those loops as edge
  // paths); whether the call id is known decides what a resume and a refused accept do; how the last call
  // ended is kept because it is what the dashboard's history shows.
  serializeState: (snapshot) =>
    JSON.stringify([snapshot.value, snapshot.context.callId !== null, snapshot.context.lastCallEnd?.reason ?? null]),
  compareContext: ({ timings, requestId, visitorName, ringExpiresAt, lastCallEnd }) => ({
    timings,
    requestId,
    visitorName,
    ringExpiresAt,
    lastCallEndReason: lastCallEnd?.reason ?? null,
  }),
});
