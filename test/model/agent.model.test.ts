import { createMachine } from 'xstate';
import { agentMachine } from '../../machines/src/agent.machine.ts';
import { describeModel } from './harness.ts';

// Model-test double for the media child: the real peerConnection has timers of its own, which the
// simulated clock would fire behind the model's back. Its outcomes are sent as events instead.
const inertMediaDouble = createMachine({ id: 'inertMedia' });

describeModel({
  name: 'agent',
  machine: agentMachine.provide({ actors: { peerConnection: inertMediaDouble as never } }),
  input: {},
  events: [
    { type: 'ring', requestId: 'req-1', visitorName: 'Vera', at: 1_000 },
    { type: 'call.accepted', callId: 'call-1' },
    { type: 'call.ended', reason: 'visitor-hangup' },
    { type: 'call.ended', reason: 'media-failed' },
    { type: 'accept.refused', requestId: 'req-1' },
    { type: 'server.resumed', call: { callId: 'call-1' } },
    { type: 'server.resumed', call: null },
    { type: 'ice.connected', at: 2_000 },
    { type: 'ice.disconnected', at: 3_000 },
    { type: 'ice.failed', at: 4_000 },
    { type: 'xstate.done.actor.media', output: { outcome: 'failed' } },
    { type: 'xstate.done.actor.media', output: { outcome: 'closed' } },
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
