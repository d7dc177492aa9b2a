import { describe, expect, it } from 'vitest';
import { inWords, viewAfter as machineViewAfter } from '../../test/support/view-after.ts';
import { agentMachine, defaultAgentTimings, type AgentEvent } from './agent.machine.ts';
import { defaultPeerConnectionTimings } from './peerConnection.machine.ts';
import { agentView, ringSecondsLeft } from './agent.view.ts';
import { agentTranslator, type AgentMessage, type Language } from './locales/index.ts';

const rawViewAfter = (events: AgentEvent[], advance: number[] = []) => machineViewAfter(agentMachine, {}, agentView, events, advance);

/** The view as the dashboard shows it in `lang`: its messages put into words. */
function viewAfter(events: AgentEvent[], advance: number[] = [], lang: Language = 'en') {
  const translator = agentTranslator(lang);
  return inWords(rawViewAfter(events, advance), (message: AgentMessage) => translator.text(message));
}

const login: AgentEvent = { type: 'login' };
const ring: AgentEvent = { type: 'ring', requestId: 'req-1', visitorName: 'Vera', at: 50_000 };
const connecting = [login, ring, { type: 'accept' } as const];
// In a call means media seen arriving, not only a connection reporting connected.
const inCall = [...connecting, { type: 'ice.connected', at: 51_000 } as const, { type: 'media.flowing', at: 51_500 } as const];
const { attemptTimeout, disconnectedGrace } = defaultPeerConnectionTimings;

describe('agentView', () => {
  it('shows presence and its controls', () => {
    const quiet = { ringing: null, connection: null, overlay: null, message: null, showVideo: false };
    expect(viewAfter([])).toEqual({ ...quiet, presence: 'offline', controls: ['login'] });
    expect(viewAfter([login])).toEqual({ ...quiet, presence: 'available', controls: ['away', 'logout'] });
    expect(viewAfter([login, { type: 'presence.away' }])).toEqual({
      ...quiet,
      presence: 'away',
      controls: ['available', 'logout'],
    });
  });

  it('rings with the visitor, accept and reject, and the deadline for the countdown', () => {
    const view = viewAfter([login, ring]);
    expect(view.presence).toBe('busy');
    expect(view.controls).toEqual(['accept', 'reject']);
    expect(view.ringing).toEqual({
      requestId: 'req-1',
      visitorName: 'Vera',
      expiresAt: 50_000 + defaultAgentTimings.ringTimeout,
    });
  });

  it('counts the ring down in whole seconds, never below zero', () => {
    expect(ringSecondsLeft(65_000, 50_000)).toBe(15);
    expect(ringSecondsLeft(65_000, 64_001)).toBe(1);
    expect(ringSecondsLeft(65_000, 65_000)).toBe(0);
    expect(ringSecondsLeft(65_000, 70_000)).toBe(0);
  });

  it('is amber while the first connection is set up', () => {
    expect(viewAfter(connecting)).toMatchObject({
      connection: 'amber',
      message: 'Connecting to Vera…',
      controls: ['hangup'],
      showVideo: true,
      ringing: null,
    });
  });

  it('is green in a connected call', () => {
    expect(viewAfter(inCall)).toEqual({
      presence: 'busy',
      ringing: null,
      connection: 'green',
      overlay: null,
      message: null,
      controls: ['hangup'],
      showVideo: true,
    });
  });

  it('is amber while unstable, without an overlay', () => {
    const view = viewAfter([...inCall, { type: 'ice.disconnected', at: 60_000 }]);
    expect(view.connection).toBe('amber');
    expect(view.overlay).toBeNull();
  });

  it('is amber with the "Connection problem, reconnecting… (attempt n of 3)" overlay during an ICE restart', () => {
    const first = viewAfter([...inCall, { type: 'ice.disconnected', at: 60_000 }], [disconnectedGrace]);
    expect(first).toMatchObject({ connection: 'amber', overlay: 'Connection problem, reconnecting… (attempt 1 of 3)' });
    const third = viewAfter([...inCall, { type: 'ice.failed', at: 60_000 }], [attemptTimeout, attemptTimeout]);
    expect(third.overlay).toBe('Connection problem, reconnecting… (attempt 3 of 3)');
  });

  it('stays amber on a connection that reports connected until media is seen arriving', () => {
    expect(viewAfter([...connecting, { type: 'ice.connected', at: 51_000 }]).connection).toBe('amber');
    // A stall is amber while it is looked into, before it counts as lost.
    expect(viewAfter([...inCall, { type: 'media.stalled', at: 52_000 }]).connection).toBe('amber');
    const back = viewAfter([...inCall, { type: 'ice.failed', at: 60_000 }, { type: 'ice.connected', at: 61_000 }]);
    expect(back.connection).toBe('amber');
    const flowing = viewAfter([...inCall, { type: 'ice.failed', at: 60_000 }, { type: 'ice.connected', at: 61_000 }, { type: 'media.flowing', at: 61_250 }]);
    expect(flowing.connection).toBe('green');
  });

  it('says how the last call ended when the server ended it', () => {
    expect(viewAfter([...inCall, { type: 'call.ended', reason: 'reconnect-timeout' }])).toMatchObject({
      presence: 'available',
      message: 'The call with Vera has ended: the connection could not be restored in time',
    });
    expect(viewAfter([...inCall, { type: 'hangup' }]).message).toBeNull();
    expect(rawViewAfter([...inCall, { type: 'call.ended', reason: 'visitor-hangup' }]).message).toEqual({
      key: 'agent.lastCall.visitorHangup',
      params: { name: 'Vera' },
    });
    expect(viewAfter([...inCall, { type: 'call.ended', reason: 'reassigned' }], [], 'de').message).toBe(
      'Vera wurde während Ihrer Abwesenheit mit jemand anderem aus dem Team verbunden',
    );
  });

  it("is amber with one notice while the visitor's socket is gone", () => {
    expect(viewAfter([...inCall, { type: 'peer.away' }, { type: 'ice.failed', at: 60_000 }])).toMatchObject({
      connection: 'amber',
      overlay: 'Connection lost, waiting for Vera…',
      message: null,
    });
    expect(viewAfter([...inCall, { type: 'peer.away' }, { type: 'peer.back' }]).connection).toBe('green');
  });

  it('is red with "We couldn\'t reconnect the call" when the media fails, until dismissed', () => {
    const failed = [...inCall, { type: 'ice.failed', at: 60_000 } as const];
    expect(viewAfter(failed, [attemptTimeout, attemptTimeout, attemptTimeout])).toEqual({
      presence: 'busy',
      ringing: null,
      connection: 'red',
      overlay: null,
      message: "We couldn't reconnect the call",
      controls: ['dismiss'],
      showVideo: false,
    });
    expect(viewAfter([...connecting, { type: 'ice.failed', at: 52_000 }]).connection).toBe('red');
    expect(viewAfter([...connecting, { type: 'ice.failed', at: 52_000 }, { type: 'dismiss' }]).presence).toBe('available');
  });
});
