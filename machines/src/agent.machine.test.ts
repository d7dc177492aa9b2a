import { describe, expect, it } from 'vitest';
import { effectSpies } from '../../test/support/effect-spies.ts';
import { startSimulated } from '../../test/support/simulated-actor.ts';
import { peerConnectionPhase } from './peerConnection.phase.ts';
import { agentMachine, defaultAgentTimings, type AgentInput } from './agent.machine.ts';
import { defaultPeerConnectionTimings } from './peerConnection.machine.ts';

const spies = () =>
  effectSpies('setPresence', 'acceptRing', 'rejectRing', 'sendHangup', 'notifyLogout', 'reportCallFailure', 'startMedia', 'stopMedia', 'reportMediaState', 'hangUpStrayCall');

function start(input: AgentInput = {}) {
  const effects = spies();
  const { actor, clock } = startSimulated(agentMachine, effects, input);
  return { actor, clock, effects };
}

const ring = { type: 'ring', requestId: 'req-1', visitorName: 'Vera', at: 50_000 } as const;

function toRinging(input: AgentInput = {}) {
  const started = start(input);
  started.actor.send({ type: 'login' });
  started.actor.send(ring);
  return started;
}

function toConnecting(input: AgentInput = {}) {
  const started = toRinging(input);
  started.actor.send({ type: 'accept' });
  started.actor.send({ type: 'call.accepted', callId: 'call-1' });
  return started;
}

function toInCall(input: AgentInput = {}) {
  const started = toConnecting(input);
  started.actor.send({ type: 'ice.connected', at: 51_000 });
  return started;
}

const media = (actor: ReturnType<typeof start>['actor']) => actor.getSnapshot().children.media?.getSnapshot();
const presenceCalls = (effects: ReturnType<typeof spies>) =>
  effects.setPresence.mock.calls.map(([, params]) => (params as { presence: string }).presence);

describe('agent', () => {
  it('starts offline with the default timings, which input can override', () => {
    const { actor } = start();
    expect(actor.getSnapshot().value).toBe('offline');
    expect(actor.getSnapshot().context.timings).toEqual(defaultAgentTimings);
    expect(start({ timings: { ringTimeout: 5_000 } }).actor.getSnapshot().context.timings.ringTimeout).toBe(5_000);
  });

  it('logs in, goes away and comes back, publishing each presence', () => {
    const { actor, effects } = start();
    actor.send({ type: 'login' });
    expect(actor.getSnapshot().value).toBe('available');
    actor.send({ type: 'presence.away' });
    expect(actor.getSnapshot().value).toBe('away');
    actor.send({ type: 'presence.available' });
    expect(actor.getSnapshot().value).toBe('available');
    expect(presenceCalls(effects)).toEqual(['available', 'away', 'available']);
  });

  it('only rings while available', () => {
    const { actor } = start();
    actor.send(ring);
    expect(actor.getSnapshot().value).toBe('offline');
    actor.send({ type: 'login' });
    actor.send({ type: 'presence.away' });
    actor.send(ring);
    expect(actor.getSnapshot().value).toBe('away');
    actor.send({ type: 'presence.available' });
    actor.send(ring);
    expect(actor.getSnapshot().value).toBe('ringing');
  });

  it('rings with the visitor and a deadline for the countdown', () => {
    const { actor } = toRinging();
    expect(actor.getSnapshot().context).toMatchObject({
      requestId: 'req-1',
      visitorName: 'Vera',
      ringExpiresAt: 50_000 + defaultAgentTimings.ringTimeout,
    });
  });

  it('accepts a ring and connects', () => {
    const { actor, effects } = toConnecting();
    expect(actor.getSnapshot().value).toBe('connecting');
    expect(actor.getSnapshot().context).toMatchObject({ callId: 'call-1', visitorName: 'Vera', ringExpiresAt: null });
    expect(effects.acceptRing).toHaveBeenCalledTimes(1);
    expect(effects.startMedia).toHaveBeenCalledTimes(1);
    expect(actor.getSnapshot().children.media).toBeUndefined();
  });

  it('rejects a ring', () => {
    const { actor, effects } = toRinging();
    actor.send({ type: 'reject' });
    expect(actor.getSnapshot().value).toBe('available');
    expect(actor.getSnapshot().context).toMatchObject({ requestId: null, visitorName: null, ringExpiresAt: null });
    expect(effects.rejectRing).toHaveBeenCalledTimes(1);
  });

  it('gives up on an unanswered ring after ringTimeout without rejecting it: the server times it out too', () => {
    const { actor, clock, effects } = toRinging({ timings: { ringTimeout: 4_000 } });
    expect(actor.getSnapshot().context.ringExpiresAt).toBe(54_000);
    clock.increment(3_999);
    expect(actor.getSnapshot().value).toBe('ringing');
    clock.increment(1);
    expect(actor.getSnapshot().value).toBe('available');
    expect(actor.getSnapshot().context).toMatchObject({ requestId: null, ringExpiresAt: null });
    expect(effects.rejectRing).not.toHaveBeenCalled();
  });

  it("counts down to the server's ring deadline when the ring carries one", () => {
    const { actor, clock, effects } = start();
    actor.send({ type: 'login' });
    actor.send({ ...ring, expiresAt: ring.at + 8_000 });
    expect(actor.getSnapshot().context.ringExpiresAt).toBe(ring.at + 8_000);
    clock.increment(7_999);
    expect(actor.getSnapshot().value).toBe('ringing');
    clock.increment(1);
    expect(actor.getSnapshot().value).toBe('available');
    expect(effects.rejectRing).not.toHaveBeenCalled();
  });

  it('stops ringing when the server withdraws the ring', () => {
    const { actor, effects } = toRinging();
    actor.send({ type: 'ring.cancelled' });
    expect(actor.getSnapshot().value).toBe('available');
    expect(effects.rejectRing).not.toHaveBeenCalled();
  });

  it('goes away while ringing', () => {
    const { actor } = toRinging();
    actor.send({ type: 'presence.away' });
    expect(actor.getSnapshot().value).toBe('away');
    expect(actor.getSnapshot().context.requestId).toBeNull();
  });

  it('enters the call on the first ice.connected with an offering media child', () => {
    const { actor } = toInCall();
    expect(actor.getSnapshot().value).toEqual({ inCall: { media: {}, peer: 'present' } });
    expect(peerConnectionPhase(media(actor)?.value)).toBe('connected');
    expect(media(actor)?.context.role).toBe('offerer');
  });

  it('fails the call when ICE fails before it ever connected, or after connectTimeout', () => {
    const failed = toConnecting();
    failed.actor.send({ type: 'ice.failed', at: 52_000 });
    expect(failed.actor.getSnapshot().value).toBe('callFailed');
    expect(failed.actor.getSnapshot().context.lastCallEnd).toEqual({
      requestId: 'req-1',
      callId: 'call-1',
      visitorName: 'Vera',
      reason: 'connect-failed',
    });
    expect(failed.effects.reportCallFailure).toHaveBeenCalledTimes(1);
    expect(failed.effects.stopMedia).toHaveBeenCalledTimes(1);

    const slow = toConnecting({ timings: { connectTimeout: 7_000 } });
    slow.clock.increment(6_999);
    expect(slow.actor.getSnapshot().value).toBe('connecting');
    slow.clock.increment(1);
    expect(slow.actor.getSnapshot().value).toBe('callFailed');
  });

  it('restarts ICE in call through the media child', () => {
    const { actor, clock } = toInCall();
    actor.send({ type: 'ice.disconnected', at: 60_000 });
    expect(peerConnectionPhase(media(actor)?.value)).toBe('unstable');
    clock.increment(2_000);
    expect(peerConnectionPhase(media(actor)?.value)).toEqual({ reconnecting: 'attempting' });
    actor.send({ type: 'ice.connected', at: 62_500 });
    // Connected is not recovered until the adapter sees media arrive.
    expect(peerConnectionPhase(media(actor)?.value)).toEqual({ reconnecting: { verifying: 'probing' } });
    actor.send({ type: 'media.flowing', at: 62_700 });
    expect(peerConnectionPhase(media(actor)?.value)).toBe('connected');
  });

  it('waits for a visitor whose socket is gone without spending an attempt, then restarts at once when they are back', () => {
    const { actor, clock } = toInCall();
    actor.send({ type: 'peer.away' });
    expect(actor.getSnapshot().matches({ inCall: { peer: 'away' } })).toBe(true);
    actor.send({ type: 'ice.disconnected', at: 60_000 });
    clock.increment(2_000);
    expect(peerConnectionPhase(media(actor)?.value)).toEqual({ reconnecting: 'waitingForPeer' });
    clock.increment(60_000);
    expect(peerConnectionPhase(media(actor)?.value)).toEqual({ reconnecting: 'waitingForPeer' });
    actor.send({ type: 'peer.back' });
    expect(actor.getSnapshot().matches({ inCall: { peer: 'present' } })).toBe(true);
    expect(peerConnectionPhase(media(actor)?.value)).toEqual({ reconnecting: 'attempting' });
    expect(media(actor)?.context.attempts).toBe(1);
  });

  it("restarts at once on the visitor's restart request", () => {
    const { actor } = toInCall();
    actor.send({ type: 'restart.requested', at: 60_000 });
    expect(peerConnectionPhase(media(actor)?.value)).toEqual({ reconnecting: 'attempting' });
  });

  it('shows the failure when the server ends the call as media-failed, and returns to waiting for any other end', () => {
    const failed = toInCall();
    failed.actor.send({ type: 'call.ended', reason: 'media-failed' });
    expect(failed.actor.getSnapshot().value).toBe('callFailed');
    expect(failed.actor.getSnapshot().context.lastCallEnd?.reason).toBe('media-failed');
    const timedOut = toInCall();
    timedOut.actor.send({ type: 'call.ended', reason: 'reconnect-timeout' });
    expect(timedOut.actor.getSnapshot().value).toBe('available');
    expect(timedOut.actor.getSnapshot().context.lastCallEnd?.reason).toBe('reconnect-timeout');
  });

  it('shows the failure once the media child gives up, until dismissed', () => {
    const { actor, clock, effects } = toInCall();
    actor.send({ type: 'ice.failed', at: 60_000 });
    for (let attempt = 1; attempt <= 3; attempt++) clock.increment(defaultPeerConnectionTimings.attemptTimeout);
    expect(actor.getSnapshot().value).toBe('callFailed');
    expect(actor.getSnapshot().context.lastCallEnd?.reason).toBe('media-failed');
    expect(effects.reportCallFailure).toHaveBeenCalledTimes(1);
    expect(effects.stopMedia).toHaveBeenCalledTimes(1);
    actor.send({ type: 'dismiss' });
    expect(actor.getSnapshot().value).toBe('available');
    expect(actor.getSnapshot().context.callId).toBeNull();
  });

  it('treats a media connection closed underneath the call as a hang-up', () => {
    const { actor, effects } = toInCall();
    actor.getSnapshot().children.media?.send({ type: 'hangup' });
    expect(actor.getSnapshot().value).toBe('available');
    expect(effects.sendHangup).toHaveBeenCalledTimes(1);
  });

  it('hangs up, in call or while connecting', () => {
    const inCall = toInCall();
    inCall.actor.send({ type: 'hangup' });
    expect(inCall.actor.getSnapshot().value).toBe('available');
    expect(inCall.actor.getSnapshot().context.lastCallEnd?.reason).toBe('hangup');
    expect(inCall.effects.sendHangup).toHaveBeenCalledTimes(1);
    expect(inCall.effects.stopMedia).toHaveBeenCalledTimes(1);

    const connecting = toConnecting();
    connecting.actor.send({ type: 'hangup' });
    expect(connecting.actor.getSnapshot().value).toBe('available');
    expect(connecting.effects.sendHangup).toHaveBeenCalledTimes(1);
  });

  it('returns to available when the server ends the call', () => {
    const inCall = toInCall();
    inCall.actor.send({ type: 'call.ended', reason: 'visitor-hangup' });
    expect(inCall.actor.getSnapshot().value).toBe('available');
    expect(inCall.actor.getSnapshot().context.lastCallEnd?.reason).toBe('visitor-hangup');
    expect(inCall.effects.sendHangup).not.toHaveBeenCalled();

    const connecting = toConnecting();
    connecting.actor.send({ type: 'call.ended', reason: 'cancelled' });
    expect(connecting.actor.getSnapshot().value).toBe('available');
    expect(connecting.effects.stopMedia).toHaveBeenCalledTimes(1);
  });

  it('logs out from any state', () => {
    const { actor, effects } = start();
    actor.send({ type: 'logout' });
    expect(actor.getSnapshot().value).toBe('offline');
    for (const setUp of [toRinging, toConnecting, toInCall]) {
      const started = setUp();
      started.actor.send({ type: 'logout' });
      expect(started.actor.getSnapshot().value).toBe('offline');
      expect(started.effects.notifyLogout).toHaveBeenCalledTimes(1);
      expect(started.actor.getSnapshot().context).toMatchObject({ requestId: null, callId: null, ringExpiresAt: null });
    }
    expect(effects.notifyLogout).toHaveBeenCalledTimes(1);
  });

  it('ends the call for the agent on logout mid-call, so the server reassigns the visitor', () => {
    const { actor, effects } = toInCall();
    actor.send({ type: 'logout' });
    expect(actor.getSnapshot().context.lastCallEnd?.reason).toBe('logout');
    expect(effects.sendHangup).toHaveBeenCalledTimes(1);
    expect(effects.stopMedia).toHaveBeenCalledTimes(1);
    expect(effects.notifyLogout).toHaveBeenCalledTimes(1);
    // Going offline is the logout itself: the wire's presence has no `offline`.
    expect(presenceCalls(effects)).toEqual(['available']);
    expect(actor.getSnapshot().children.media).toBeUndefined();
  });

  it('hands a signaling outage that began before the call to the media child', () => {
    const { actor } = toConnecting();
    actor.send({ type: 'signal.down' });
    actor.send({ type: 'ice.connected', at: 51_000 });
    expect(media(actor)?.context.signalingUp).toBe(false);
    actor.send({ type: 'signal.up' });
    expect(media(actor)?.context.signalingUp).toBe(true);
  });

  it('leaves a connecting call whose accept the server refused, unless the call was already accepted', () => {
    const refused = toRinging();
    refused.actor.send({ type: 'accept' });
    refused.actor.send({ type: 'accept.refused', requestId: 'req-other' });
    expect(refused.actor.getSnapshot().value).toBe('connecting');
    refused.actor.send({ type: 'accept.refused', requestId: 'req-1' });
    expect(refused.actor.getSnapshot().value).toBe('available');
    expect(refused.actor.getSnapshot().context.lastCallEnd).toEqual({ requestId: 'req-1', callId: null, visitorName: 'Vera', reason: 'cancelled' });
    expect(refused.effects.stopMedia).toHaveBeenCalledTimes(1);

    const accepted = toConnecting();
    accepted.actor.send({ type: 'accept.refused', requestId: 'req-1' });
    expect(accepted.actor.getSnapshot().value).toBe('connecting');
  });

  it('hangs up a call accepted on the server for a ring this side has already left, and only that', () => {
    const left = toRinging();
    left.actor.send({ type: 'accept' });
    left.actor.send({ type: 'hangup' });
    left.actor.send({ type: 'call.accepted', callId: 'call-1' });
    expect(left.actor.getSnapshot().value).toBe('available');
    expect(left.effects.hangUpStrayCall).toHaveBeenCalledTimes(1);
    expect(left.effects.hangUpStrayCall.mock.calls[0]?.[0]).toMatchObject({ event: { type: 'call.accepted', callId: 'call-1' } });

    const own = toInCall();
    own.actor.send({ type: 'call.accepted', callId: 'call-1' });
    expect(own.effects.hangUpStrayCall).not.toHaveBeenCalled();
    own.actor.send({ type: 'call.accepted', callId: 'call-2' });
    expect(own.actor.getSnapshot().matches('inCall')).toBe(true);
    expect(own.actor.getSnapshot().context.callId).toBe('call-1');
    expect(own.effects.hangUpStrayCall).toHaveBeenCalledTimes(1);
    expect(toConnecting().effects.hangUpStrayCall).not.toHaveBeenCalled();
  });

  it('after a resume, reports the media of a call the server still holds, and keeps it', () => {
    for (const run of [toConnecting(), toInCall()]) {
      const before = run.actor.getSnapshot().value;
      run.actor.send({ type: 'server.resumed', call: { callId: 'call-1' } });
      expect(run.actor.getSnapshot().value).toEqual(before);
      expect(run.effects.reportMediaState).toHaveBeenCalledTimes(1);
      expect(run.effects.stopMedia).not.toHaveBeenCalled();
    }
  });

  it('after a resume without the call, counts it as reassigned: its call.ended never arrived', () => {
    for (const run of [toConnecting(), toInCall()]) {
      run.actor.send({ type: 'server.resumed', call: null });
      expect(run.actor.getSnapshot().value).toBe('available');
      expect(run.actor.getSnapshot().context.lastCallEnd).toMatchObject({ callId: 'call-1', reason: 'reassigned' });
      expect(run.effects.stopMedia).toHaveBeenCalledTimes(1);
      expect(run.effects.reportMediaState).not.toHaveBeenCalled();
    }
  });

  it('after a resume with a call it does not know, stays where it is', () => {
    const run = toConnecting();
    run.actor.send({ type: 'server.resumed', call: { callId: 'call-other' } });
    expect(run.actor.getSnapshot().value).toBe('connecting');
    expect(run.effects.reportMediaState).not.toHaveBeenCalled();
    const available = start();
    available.actor.send({ type: 'login' });
    available.actor.send({ type: 'server.resumed', call: null });
    expect(available.actor.getSnapshot().value).toBe('available');
  });

  it('when the server kept nothing of the session, drops the ring or the call it had', () => {
    const ringing = toRinging();
    ringing.actor.send({ type: 'session.lost' });
    expect(ringing.actor.getSnapshot().value).toBe('available');
    expect(ringing.effects.rejectRing).not.toHaveBeenCalled();
    for (const run of [toConnecting(), toInCall()]) {
      run.actor.send({ type: 'session.lost' });
      expect(run.actor.getSnapshot().value).toBe('available');
      expect(run.actor.getSnapshot().context.lastCallEnd).toMatchObject({ callId: 'call-1', reason: 'reassigned' });
      expect(run.effects.stopMedia).toHaveBeenCalledTimes(1);
      expect(run.effects.sendHangup).not.toHaveBeenCalled();
    }
    const away = start();
    away.actor.send({ type: 'login' });
    away.actor.send({ type: 'presence.away' });
    away.actor.send({ type: 'session.lost' });
    expect(away.actor.getSnapshot().value).toBe('away');
  });

  it('keeps a JSON-serializable context', () => {
    const { actor } = toInCall();
    const { context } = actor.getSnapshot();
    expect(JSON.parse(JSON.stringify(context))).toEqual(context);
  });
});
