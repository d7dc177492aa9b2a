import { describe, expect, it } from 'vitest';
import { inWords, viewAfter as machineViewAfter } from '../../test/support/view-after.ts';
import { visitorTranslator, type Language, type VisitorMessage } from './locales/index.ts';
import { visitorCallMachine, type VisitorCallEvent } from './visitorCall.machine.ts';
import { visitorControlLabels, visitorView } from './visitorCall.view.ts';

const rawViewAfter = (events: VisitorCallEvent[], advance: number[] = []) => machineViewAfter(visitorCallMachine, {}, visitorView, events, advance);

/** The view as the widget shows it in `lang`: its messages put into words. */
function viewAfter(events: VisitorCallEvent[], advance: number[] = [], lang: Language = 'en') {
  const translator = visitorTranslator(lang);
  return inWords(rawViewAfter(events, advance), (message: VisitorMessage) => translator.text(message));
}

const request: VisitorCallEvent = { type: 'call.request' };
const accepted: VisitorCallEvent = { type: 'call.accepted', callId: 'call-1', agentName: 'Ada' };
const connected: VisitorCallEvent = { type: 'ice.connected', at: 1_000 };
const flowing: VisitorCallEvent = { type: 'media.flowing', at: 1_500 };
// In a call means media seen arriving, not only a connection reporting connected.
const inCall = [request, accepted, connected, flowing];

describe('visitorView', () => {
  it('offers "Call an agent" when idle', () => {
    expect(viewAfter([])).toEqual({ message: null, overlay: null, connection: null, controls: ['call'], showVideo: false });
    expect(visitorTranslator('en').t(visitorControlLabels.call)).toBe('Call an agent');
    expect(visitorTranslator('de').t(visitorControlLabels.call)).toBe('Videoanruf starten');
  });

  it('names its texts by key and values, in no language of its own', () => {
    expect(rawViewAfter([request, { type: 'routing.queued', position: 4 }]).message).toEqual({ key: 'visitor.queued', params: { position: 4 } });
    expect(viewAfter([request, { type: 'routing.queued', position: 4 }], [], 'de').message).toBe('Sie sind Nummer 4 in der Warteschlange');
    expect(viewAfter([...inCall, { type: 'peer.away' }], [], 'de').overlay).toBe('Verbindung unterbrochen, wir warten auf Ada…');
  });

  it('shows "Finding an agent…" while searching, with cancel', () => {
    expect(viewAfter([request])).toEqual({
      message: 'Finding an agent…',
      overlay: null,
      connection: null,
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
      connection: 'amber',
      controls: ['mute', 'hangup'],
      showVideo: true,
    });
    expect(viewAfter(inCall)).toEqual({ message: null, overlay: null, connection: 'green', controls: ['mute', 'hangup'], showVideo: true });
  });

  it('keeps the call on screen while merely unstable', () => {
    expect(viewAfter([...inCall, { type: 'ice.disconnected', at: 2_000 }]).overlay).toBeNull();
  });

  it('overlays "Connection problem, reconnecting… (attempt n of 3)" during an ICE restart without ending the call', () => {
    const first = viewAfter([...inCall, { type: 'ice.failed', at: 2_000 }]);
    expect(first.overlay).toBe('Connection problem, reconnecting… (attempt 1 of 3)');
    const second = viewAfter([...inCall, { type: 'ice.failed', at: 2_000 }], [10_000]);
    expect(second).toEqual({
      message: null,
      overlay: 'Connection problem, reconnecting… (attempt 2 of 3)',
      connection: 'amber',
      controls: ['mute', 'hangup'],
      showVideo: true,
    });
  });

  it('names the next attempt while a restart waits for signaling', () => {
    const view = viewAfter([...inCall, { type: 'signal.down' }, { type: 'ice.failed', at: 2_000 }]);
    expect(view.overlay).toBe('Connection problem, reconnecting… (attempt 1 of 3)');
  });

  it('counts a connection back but not yet proven by media as the attempt that brought it back', () => {
    const view = viewAfter([...inCall, { type: 'ice.failed', at: 2_000 }, { type: 'ice.connected', at: 3_000 }]);
    expect(view.overlay).toBe('Connection problem, reconnecting… (attempt 1 of 3)');
    expect(view.connection).toBe('amber');
    const proven = viewAfter([...inCall, { type: 'ice.failed', at: 2_000 }, { type: 'ice.connected', at: 3_000 }, { type: 'media.flowing', at: 3_200 }]);
    expect(proven.overlay).toBeNull();
    expect(proven.connection).toBe('green');
  });

  it('says at once that the browser is offline, before anything else, with a red dot', () => {
    const view = viewAfter([...inCall, { type: 'peer.away' }, { type: 'network.offline', at: 2_000 }]);
    expect(view.overlay).toBe("You're offline; we'll reconnect when your network is back");
    expect(view.message).toBeNull();
    expect(view.connection).toBe('red');
  });

  it("shows one notice, \"Connection lost, waiting for Ada…\", while the agent's socket is gone, even while the media restarts", () => {
    const away = viewAfter([...inCall, { type: 'peer.away' }, { type: 'ice.failed', at: 2_000 }]);
    expect(away.overlay).toBe('Connection lost, waiting for Ada…');
    expect(away.message).toBeNull();
    expect(away.connection).toBe('amber');
    expect(viewAfter([...inCall, { type: 'peer.away' }, { type: 'peer.back' }]).overlay).toBeNull();
  });

  it('shows "We couldn\'t reconnect the call" with Retry when the media fails', () => {
    const view = viewAfter([...inCall, { type: 'ice.failed', at: 2_000 }], [10_000, 10_000, 10_000]);
    expect(view).toEqual({
      message: "We couldn't reconnect the call",
      overlay: null,
      connection: null,
      controls: ['retry'],
      showVideo: false,
    });
    expect(viewAfter([request, accepted, { type: 'ice.failed', at: 2_000 }]).message).toBe(
      "We couldn't reconnect the call",
    );
    const timedOut = viewAfter([...inCall, { type: 'call.ended', reason: 'reconnect-timeout' }]);
    expect(timedOut.controls).toEqual(['retry']);
    expect(timedOut.message).toBe('The connection could not be restored in time, so the call has ended');
  });

  it('shows "No agents are available right now" when nobody is free', () => {
    for (const reason of ['no-agents', 'reassign-limit'] as const) {
      expect(viewAfter([request, { type: 'routing.ended', reason }])).toEqual({
        message: 'No agents are available right now',
        overlay: null,
        connection: null,
        controls: ['retry'],
        showVideo: false,
      });
    }
  });

  it('offers a new call after a hang-up or a cancel', () => {
    expect(viewAfter([...inCall, { type: 'hangup' }])).toEqual({
      message: 'The call has ended',
      overlay: null,
      connection: null,
      controls: ['call'],
      showVideo: false,
    });
    expect(viewAfter([...inCall, { type: 'call.ended', reason: 'agent-hangup' }]).message).toBe('The call has ended');
    expect(viewAfter([request, { type: 'call.cancel' }])).toEqual({
      message: null,
      overlay: null,
      connection: null,
      controls: ['call'],
      showVideo: false,
    });
  });
});
