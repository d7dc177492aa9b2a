import { createMachine } from 'xstate';
import { visitorCallMachine } from '../../machines/src/visitorCall.machine.ts';
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
    { type: 'routing.ringing', agentName: 'Ada' },
    { type: 'routing.queued', position: 2 },
    { type: 'routing.ended', reason: 'no-agents' },
    { type: 'routing.ended', reason: 'reassign-limit' },
    { type: 'routing.ended', reason: 'cancelled' },
    { type: 'call.accepted', callId: 'call-1', agentName: 'Ada' },
    { type: 'call.ended', reason: 'agent-hangup' },
    { type: 'server.resumed', call: { callId: 'call-1' }, request: null },
    { type: 'server.resumed', call: null, request: null },
    { type: 'server.resumed', call: null, request: { state: 'ringing', agentName: 'Grace' } },
    { type: 'server.resumed', call: null, request: { state: 'queued', position: 3 } },
    { type: 'server.resumed', call: null, request: { state: 'searching' } },
    { type: 'ice.connected', at: 1_000 },
    { type: 'ice.disconnected', at: 2_000 },
    { type: 'ice.failed', at: 3_000 },
    { type: 'xstate.done.actor.media', output: { outcome: 'failed' } },
    { type: 'xstate.done.actor.media', output: { outcome: 'closed' } },
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
