import { describe, expect, it } from 'vitest';
import { createActor, SimulatedClock } from 'xstate';
import { visitorCallMachine, type VisitorCallEvent } from './visitorCall.machine.ts';
import { visitorControlLabels, visitorView } from './visitorCall.view.ts';

function viewAfter(events: VisitorCallEvent[], advance: number[] = []) {
  const clock = new SimulatedClock();
  const actor = createActor(visitorCallMachine, { clock, input: {} });
  actor.start();
  for (const event of events) actor.send(event);
  for (const ms of advance) clock.increment(ms);
  return visitorView(actor.getSnapshot());
}

const request: VisitorCallEvent = { type: 'call.request' };
const accepted: VisitorCallEvent = { type: 'call.accepted', callId: 'call-1', agentName: 'Ada' };
const connected: VisitorCallEvent = { type: 'ice.connected', at: 1_000 };
const inCall = [request, accepted, connected];

describe('visitorView', () => {
  it('offers "Call an agent" when idle', () => {
    expect(viewAfter([])).toEqual({ message: null, overlay: null, controls: ['call'], showVideo: false });
    expect(visitorControlLabels.call).toBe('Call an agent');
  });

  it('shows "Finding an agent…" while searching, with cancel', () => {
    expect(viewAfter([request])).toEqual({
      message: 'Finding an agent…',
      overlay: null,
      controls: ['cancel'],
      showVideo: false,
    });
  });

  it('shows the position in line while queued', () => {
    expect(viewAfter([request, { type: 'routing.queued', position: 4 }]).message).toBe('You are number 4 in line');
  });

  it('shows the agent being rung', () => {
    expect(viewAfter([request, { type: 'routing.ringing', agentName: 'Ada' }]).message).toBe('Ringing Ada…');
  });

  it('explains a reassignment', () => {
    expect(viewAfter([request, { type: 'routing.reassigning' }]).message).toBe(
      'Your agent is unavailable, connecting you to another agent…',
    );
  });

  it('shows video with mute and hang up while connecting and in call', () => {
    expect(viewAfter([request, accepted])).toEqual({
      message: 'Connecting to Ada…',
      overlay: null,
      controls: ['mute', 'hangup'],
      showVideo: true,
    });
    expect(viewAfter(inCall)).toEqual({ message: null, overlay: null, controls: ['mute', 'hangup'], showVideo: true });
  });

  it('keeps the call on screen while merely unstable', () => {
    expect(viewAfter([...inCall, { type: 'ice.disconnected', at: 2_000 }]).overlay).toBeNull();
  });

  it('overlays "Reconnecting… (attempt n of 3)" during an ICE restart without ending the call', () => {
    const first = viewAfter([...inCall, { type: 'ice.failed', at: 2_000 }]);
    expect(first.overlay).toBe('Reconnecting… (attempt 1 of 3)');
    const second = viewAfter([...inCall, { type: 'ice.failed', at: 2_000 }], [10_000]);
    expect(second).toEqual({
      message: null,
      overlay: 'Reconnecting… (attempt 2 of 3)',
      controls: ['mute', 'hangup'],
      showVideo: true,
    });
  });

  it('names the next attempt while a restart waits for signaling', () => {
    const view = viewAfter([...inCall, { type: 'signal.down' }, { type: 'ice.failed', at: 2_000 }]);
    expect(view.overlay).toBe('Reconnecting… (attempt 1 of 3)');
  });

  it('shows "Connection lost, waiting for your agent…" while the agent is paused', () => {
    expect(viewAfter([...inCall, { type: 'peer.paused' }]).message).toBe('Connection lost, waiting for your agent…');
    expect(viewAfter([...inCall, { type: 'peer.paused' }, { type: 'peer.resumed' }]).message).toBeNull();
  });

  it('shows "We couldn\'t reconnect the call" with Retry when the media fails', () => {
    const view = viewAfter([...inCall, { type: 'ice.failed', at: 2_000 }], [10_000, 10_000, 10_000]);
    expect(view).toEqual({
      message: "We couldn't reconnect the call",
      overlay: null,
      controls: ['retry'],
      showVideo: false,
    });
    expect(viewAfter([request, accepted, { type: 'ice.failed', at: 2_000 }]).message).toBe(
      "We couldn't reconnect the call",
    );
    expect(viewAfter([...inCall, { type: 'call.ended', reason: 'reconnect-timeout' }]).controls).toEqual(['retry']);
  });

  it('shows "No agents are available right now" when nobody is free', () => {
    for (const reason of ['no-agents', 'reassign-limit'] as const) {
      expect(viewAfter([request, { type: 'routing.ended', reason }])).toEqual({
        message: 'No agents are available right now',
        overlay: null,
        controls: ['retry'],
        showVideo: false,
      });
    }
  });

  it('offers a new call after a hang-up or a cancel', () => {
    expect(viewAfter([...inCall, { type: 'hangup' }])).toEqual({
      message: 'The call has ended',
      overlay: null,
      controls: ['call'],
      showVideo: false,
    });
    expect(viewAfter([...inCall, { type: 'call.ended', reason: 'agent-hangup' }]).message).toBe('The call has ended');
    expect(viewAfter([request, { type: 'call.cancel' }])).toEqual({
      message: null,
      overlay: null,
      controls: ['call'],
      showVideo: false,
    });
  });
});
