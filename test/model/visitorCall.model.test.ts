import { createMachine } from 'xstate';
import { visitorCallMachine } from '../../machines/src/visitorCall.machine.ts';
import { iceEvents, mediaOutcomes, visitorServerEvents } from '../support/call-leg-events.ts';
import { describeModel } from './harness.ts';

// Model-test double for the media child: the real peerConnection has timers of its own, which the
// simulated clock would fire behind the model's back. Its outcomes are sent as events instead.
const inertMediaDouble = createMachine({ id: 'inertMedia' });

describeModel({
  name: 'visitorCall',
  machine: visitorCallMachine.provide({ actors: { peerConnection: inertMediaDouble as never } }),
  input: { pool: 'default' },
  events: [
    { type: 'call.request', pool: 'sales' },
    ...visitorServerEvents,
    ...iceEvents(1_000),
    ...mediaOutcomes,
  ],
  // The model keeps one snapshot per serialized state, so what is compared must follow from what is
  // serialized. The agent's name, the queue position and the call id only loop on a state (the harness
  // still takes those loops as edge paths); the end reason decides the UI, and mute and signaling
  // decide what the media gets told.
  serializeState: (snapshot) => {
    const { endReason, muted, signalingUp } = snapshot.context;
    return JSON.stringify([snapshot.value, endReason, muted, signalingUp]);
  },
  compareContext: ({ timings, pool, endReason, muted, signalingUp }) => ({ timings, pool, endReason, muted, signalingUp }),
});
