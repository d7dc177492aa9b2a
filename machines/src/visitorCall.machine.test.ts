import { describe, expect, it } from 'vitest';
import { effectSpies } from '../../test/support/effect-spies.ts';
import { startSimulated } from '../../test/support/simulated-actor.ts';
import { peerConnectionPhase } from './peerConnection.phase.ts';
import { defaultPeerConnectionTimings } from './peerConnection.machine.ts';
import { defaultVisitorCallTimings, visitorCallMachine, type VisitorCallInput } from './visitorCall.machine.ts';

const spies = () => effectSpies('requestCall', 'cancelRequest', 'sendHangup', 'reportCallFailure', 'setMuted', 'startMedia', 'stopMedia', 'reportMediaState');

function start(input: VisitorCallInput = {}) {
  const effects = spies();
  const { actor, clock } = startSimulated(visitorCallMachine, effects, input);
  return { actor, clock, effects };
}

function toConnecting(input: VisitorCallInput = {}) {
  const started = start(input);
  started.actor.send({ type: 'call.request', pool: 'sales' });
  started.actor.send({ type: 'call.accepted', callId: 'call-1', agentName: 'Ada' });
  return started;
}

function toInCall(input: VisitorCallInput = {}) {
  const started = toConnecting(input);
  started.actor.send({ type: 'ice.connected', at: 1_000 });
  return started;
}

const { attemptTimeout, disconnectedGrace } = defaultPeerConnectionTimings;
const media = (actor: ReturnType<typeof start>['actor']) => actor.getSnapshot().children.media?.getSnapshot();

describe('visitorCall', () => {
  it('starts idle with the default timings, which input can override', () => {
    expect(start().actor.getSnapshot().value).toBe('idle');
    expect(start().actor.getSnapshot().context.timings).toEqual(defaultVisitorCallTimings);
    expect(start({ timings: { connectTimeout: 5 } }).actor.getSnapshot().context.timings.connectTimeout).toBe(5);
  });

  it('requests a call for the pool the visitor chose and starts searching', () => {
    const { actor, effects } = start({ pool: 'default' });
    actor.send({ type: 'call.request', pool: 'sales' });
    expect(actor.getSnapshot().value).toEqual({ waiting: 'searching' });
    expect(actor.getSnapshot().context.pool).toBe('sales');
    expect(effects.requestCall).toHaveBeenCalledTimes(1);
  });

  it('keeps the input pool when the request names none', () => {
    const { actor } = start({ pool: 'default' });
    actor.send({ type: 'call.request' });
    expect(actor.getSnapshot().context.pool).toBe('default');
  });

  it('follows the routing updates: ringing an agent, queued with a position, reassigning, searching', () => {
    const { actor } = start();
    actor.send({ type: 'call.request' });
    actor.send({ type: 'routing.ringing', agentName: 'Ada' });
    expect(actor.getSnapshot().value).toEqual({ waiting: 'ringing' });
    expect(actor.getSnapshot().context.agentName).toBe('Ada');
    actor.send({ type: 'routing.reassigning' });
    expect(actor.getSnapshot().value).toEqual({ waiting: 'reassigning' });
    expect(actor.getSnapshot().context.agentName).toBeNull();
    actor.send({ type: 'routing.queued', position: 3 });
    expect(actor.getSnapshot().value).toEqual({ waiting: 'queued' });
    expect(actor.getSnapshot().context.queuePosition).toBe(3);
    actor.send({ type: 'routing.queued', position: 2 });
    expect(actor.getSnapshot().context.queuePosition).toBe(2);
    actor.send({ type: 'routing.searching' });
    expect(actor.getSnapshot().value).toEqual({ waiting: 'searching' });
  });

  it('cancels a pending request', () => {
    const { actor, effects } = start();
    actor.send({ type: 'call.request' });
    actor.send({ type: 'routing.ringing', agentName: 'Ada' });
    actor.send({ type: 'call.cancel' });
    expect(actor.getSnapshot().value).toBe('ended');
    expect(actor.getSnapshot().context.endReason).toBe('cancelled');
    expect(effects.cancelRequest).toHaveBeenCalledTimes(1);
  });

  it.each(['no-agents', 'reassign-limit', 'cancelled'] as const)('ends the request when routing ends with %s', (reason) => {
    const { actor } = start();
    actor.send({ type: 'call.request' });
    actor.send({ type: 'routing.queued', position: 1 });
    actor.send({ type: 'routing.ended', reason });
    expect(actor.getSnapshot().value).toBe('ended');
    expect(actor.getSnapshot().context.endReason).toBe(reason);
  });

  it('connects once an agent accepts, and has no media child before the first connection', () => {
    const { actor, effects } = toConnecting();
    expect(actor.getSnapshot().value).toBe('connecting');
    expect(actor.getSnapshot().context).toMatchObject({ callId: 'call-1', agentName: 'Ada', queuePosition: null });
    expect(effects.startMedia).toHaveBeenCalledTimes(1);
    expect(actor.getSnapshot().children.media).toBeUndefined();
  });

  it('enters the call on the first ice.connected and hands it to an answering media child', () => {
    const { actor, effects } = toInCall();
    expect(actor.getSnapshot().value).toEqual({ inCall: { media: {}, peer: 'present' } });
    expect(peerConnectionPhase(media(actor)?.value)).toBe('connected');
    expect(media(actor)?.context.role).toBe('answerer');
    expect(effects.stopMedia).not.toHaveBeenCalled();
  });

  it('fails the connection when ICE fails before it ever connected', () => {
    const { actor, effects } = toConnecting();
    actor.send({ type: 'ice.failed', at: 2_000 });
    expect(actor.getSnapshot().value).toBe('ended');
    expect(actor.getSnapshot().context.endReason).toBe('connect-failed');
    expect(effects.stopMedia).toHaveBeenCalledTimes(1);
    expect(effects.reportCallFailure).toHaveBeenCalledTimes(1);
  });

  it('fails the connection after connectTimeout, read from context', () => {
    const { actor, clock, effects } = toConnecting({ timings: { connectTimeout: 3_000 } });
    clock.increment(2_999);
    expect(actor.getSnapshot().value).toBe('connecting');
    clock.increment(1);
    expect(actor.getSnapshot().context.endReason).toBe('connect-failed');
    expect(effects.reportCallFailure).toHaveBeenCalledTimes(1);
  });

  it('hangs up while connecting', () => {
    const { actor, effects } = toConnecting();
    actor.send({ type: 'hangup' });
    expect(actor.getSnapshot().context.endReason).toBe('hangup');
    expect(effects.sendHangup).toHaveBeenCalledTimes(1);
    expect(effects.stopMedia).toHaveBeenCalledTimes(1);
  });

  it('hangs up in call: tells the server and stops the media', () => {
    const { actor, effects } = toInCall();
    actor.send({ type: 'hangup' });
    expect(actor.getSnapshot().value).toBe('ended');
    expect(actor.getSnapshot().context.endReason).toBe('hangup');
    expect(effects.sendHangup).toHaveBeenCalledTimes(1);
    expect(effects.stopMedia).toHaveBeenCalledTimes(1);
    expect(actor.getSnapshot().children.media).toBeUndefined();
  });

  it.each(['agent-hangup', 'reconnect-timeout', 'media-failed'] as const)('ends when the server ends the call with %s', (reason) => {
    const { actor, effects } = toInCall();
    actor.send({ type: 'call.ended', reason });
    expect(actor.getSnapshot().value).toBe('ended');
    expect(actor.getSnapshot().context.endReason).toBe(reason);
    expect(effects.sendHangup).not.toHaveBeenCalled();
  });

  it('ends when the server ends the call while it is still connecting', () => {
    const { actor } = toConnecting();
    actor.send({ type: 'call.ended', reason: 'agent-hangup' });
    expect(actor.getSnapshot().context.endReason).toBe('agent-hangup');
  });

  it('forwards ICE events to the media child, which restarts ICE without ending the call', () => {
    const { actor, clock } = toInCall();
    actor.send({ type: 'ice.disconnected', at: 5_000 });
    expect(peerConnectionPhase(media(actor)?.value)).toBe('unstable');
    clock.increment(disconnectedGrace);
    expect(peerConnectionPhase(media(actor)?.value)).toEqual({ reconnecting: 'attempting' });
    expect(media(actor)?.context.attempts).toBe(1);
    expect(actor.getSnapshot().matches('inCall')).toBe(true);
    actor.send({ type: 'ice.connected', at: 7_100 });
    expect(peerConnectionPhase(media(actor)?.value)).toEqual({ reconnecting: { verifying: 'probing' } });
    actor.send({ type: 'media.flowing', at: 7_300 });
    expect(peerConnectionPhase(media(actor)?.value)).toBe('connected');
    expect(media(actor)?.context.lastRecovery).toEqual({ attempts: 1, durationMs: 2_300 });
  });

  it('goes to waiting for the network at once when the browser goes offline, and attempts again when it is back', () => {
    const { actor } = toInCall();
    actor.send({ type: 'network.offline', at: 5_000 });
    expect(peerConnectionPhase(media(actor)?.value)).toEqual({ reconnecting: 'waitingForNetwork' });
    actor.send({ type: 'network.online', at: 9_000 });
    expect(peerConnectionPhase(media(actor)?.value)).toEqual({ reconnecting: 'attempting' });
    expect(media(actor)?.context.attempts).toBe(1);
  });

  it('follows the agent away and back, and tells its media child', () => {
    const { actor } = toInCall();
    actor.send({ type: 'peer.away' });
    expect(actor.getSnapshot().matches({ inCall: { peer: 'away' } })).toBe(true);
    expect(media(actor)?.context.peerReachable).toBe(false);
    actor.send({ type: 'peer.back' });
    expect(actor.getSnapshot().matches({ inCall: { peer: 'present' } })).toBe(true);
    expect(media(actor)?.context.peerReachable).toBe(true);
  });

  it('restarts at once on network.online while unstable', () => {
    const { actor } = toInCall();
    actor.send({ type: 'ice.disconnected', at: 5_000 });
    actor.send({ type: 'network.online' });
    expect(peerConnectionPhase(media(actor)?.value)).toEqual({ reconnecting: 'attempting' });
  });

  it('ends with media-failed once the media child gives up', () => {
    const { actor, clock, effects } = toInCall();
    actor.send({ type: 'ice.failed', at: 5_000 });
    clock.increment(attemptTimeout);
    clock.increment(attemptTimeout);
    expect(actor.getSnapshot().matches('inCall')).toBe(true);
    clock.increment(attemptTimeout);
    expect(actor.getSnapshot().value).toBe('ended');
    expect(actor.getSnapshot().context.endReason).toBe('media-failed');
    expect(effects.reportCallFailure).toHaveBeenCalledTimes(1);
    expect(effects.stopMedia).toHaveBeenCalledTimes(1);
  });

  it('treats a media connection closed underneath the call as a hang-up', () => {
    const { actor, effects } = toInCall();
    actor.getSnapshot().children.media?.send({ type: 'hangup' });
    expect(actor.getSnapshot().value).toBe('ended');
    expect(actor.getSnapshot().context.endReason).toBe('hangup');
    expect(effects.sendHangup).toHaveBeenCalledTimes(1);
  });

  it('spends no restart attempt while signaling is down, even when it went down before the call', () => {
    const { actor, clock } = start();
    actor.send({ type: 'call.request' });
    actor.send({ type: 'call.accepted', callId: 'call-1', agentName: 'Ada' });
    actor.send({ type: 'signal.down' });
    actor.send({ type: 'ice.connected', at: 1_000 });
    expect(media(actor)?.context.signalingUp).toBe(false);
    actor.send({ type: 'ice.failed', at: 5_000 });
    clock.increment(60_000);
    expect(peerConnectionPhase(media(actor)?.value)).toEqual({ reconnecting: 'waitingForSignaling' });
    expect(media(actor)?.context.attempts).toBe(0);
    actor.send({ type: 'signal.up' });
    expect(actor.getSnapshot().context.signalingUp).toBe(true);
    expect(peerConnectionPhase(media(actor)?.value)).toEqual({ reconnecting: 'attempting' });
  });

  it('goes back to waiting when the server reassigns mid-call, and drops the old call', () => {
    const { actor, effects } = toInCall();
    actor.send({ type: 'peer.away' });
    actor.send({ type: 'routing.reassigning' });
    expect(actor.getSnapshot().value).toEqual({ waiting: 'reassigning' });
    expect(actor.getSnapshot().context).toMatchObject({ agentName: null, callId: null, endReason: null });
    expect(effects.stopMedia).toHaveBeenCalledTimes(1);
    expect(actor.getSnapshot().children.media).toBeUndefined();
  });

  it('goes back to waiting when the agent is lost before the media connected', () => {
    const { actor, effects } = toConnecting();
    actor.send({ type: 'routing.reassigning' });
    expect(actor.getSnapshot().value).toEqual({ waiting: 'reassigning' });
    expect(effects.stopMedia).toHaveBeenCalledTimes(1);
  });

  it('toggles mute while connecting and in call, and unmutes for the next call', () => {
    const { actor, effects } = toConnecting();
    actor.send({ type: 'mute.toggle' });
    expect(actor.getSnapshot().context.muted).toBe(true);
    actor.send({ type: 'ice.connected', at: 1_000 });
    actor.send({ type: 'mute.toggle' });
    expect(actor.getSnapshot().context.muted).toBe(false);
    actor.send({ type: 'mute.toggle' });
    expect(effects.setMuted).toHaveBeenCalledTimes(3);
    actor.send({ type: 'hangup' });
    actor.send({ type: 'retry' });
    expect(actor.getSnapshot().context.muted).toBe(false);
  });

  it('retries from ended with the same pool', () => {
    const { actor, effects } = toInCall();
    actor.send({ type: 'call.ended', reason: 'media-failed' });
    actor.send({ type: 'retry' });
    expect(actor.getSnapshot().value).toEqual({ waiting: 'searching' });
    expect(actor.getSnapshot().context).toMatchObject({ pool: 'sales', endReason: null, agentName: null, callId: null });
    expect(effects.requestCall).toHaveBeenCalledTimes(2);
  });

  it('accepts a new call request from ended, possibly for another pool', () => {
    const { actor, effects } = start();
    actor.send({ type: 'call.request', pool: 'sales' });
    actor.send({ type: 'routing.ended', reason: 'no-agents' });
    actor.send({ type: 'call.request', pool: 'support' });
    expect(actor.getSnapshot().value).toEqual({ waiting: 'searching' });
    expect(actor.getSnapshot().context.pool).toBe('support');
    expect(effects.requestCall).toHaveBeenCalledTimes(2);
  });

  it('ignores events that do not apply, such as hangup before any call', () => {
    const { actor, effects } = start();
    for (const event of [{ type: 'hangup' }, { type: 'ice.connected', at: 1 }, { type: 'peer.away' }] as const) actor.send(event);
    expect(actor.getSnapshot().value).toBe('idle');
    expect(effects.sendHangup).not.toHaveBeenCalled();
  });

  it('after a resume, catches up on where a waiting request stands', () => {
    const { actor } = start();
    actor.send({ type: 'call.request' });
    actor.send({ type: 'server.resumed', call: null, request: { state: 'ringing', agentName: 'Ada' } });
    expect(actor.getSnapshot().value).toEqual({ waiting: 'ringing' });
    expect(actor.getSnapshot().context.agentName).toBe('Ada');
    actor.send({ type: 'server.resumed', call: null, request: { state: 'queued', position: 4 } });
    expect(actor.getSnapshot().value).toEqual({ waiting: 'queued' });
    expect(actor.getSnapshot().context.queuePosition).toBe(4);
    // Neither a ring nor a position: nothing new to show.
    actor.send({ type: 'server.resumed', call: null, request: { state: 'searching' } });
    actor.send({ type: 'server.resumed', call: null, request: null });
    expect(actor.getSnapshot().value).toEqual({ waiting: 'queued' });
  });

  it('after a resume, reports the media of a call the server still holds, and keeps it', () => {
    for (const run of [toConnecting(), toInCall()]) {
      const before = run.actor.getSnapshot().value;
      run.actor.send({ type: 'server.resumed', call: { callId: 'call-1' }, request: null });
      expect(run.actor.getSnapshot().value).toEqual(before);
      expect(run.effects.reportMediaState).toHaveBeenCalledTimes(1);
      expect(run.effects.stopMedia).not.toHaveBeenCalled();
    }
  });

  it('after a resume with the call gone and the request going on, follows the request to its new agent', () => {
    const cases = [
      [{ state: 'ringing', agentName: 'Grace' }, { waiting: 'ringing' }, { agentName: 'Grace', callId: null }],
      [{ state: 'queued', position: 2 }, { waiting: 'queued' }, { agentName: null, queuePosition: 2, callId: null }],
      [{ state: 'searching' }, { waiting: 'reassigning' }, { agentName: null, callId: null }],
    ] as const;
    for (const [request, value, context] of cases) {
      for (const run of [toConnecting(), toInCall()]) {
        run.actor.send({ type: 'server.resumed', call: null, request });
        expect(run.actor.getSnapshot().value).toEqual(value);
        expect(run.actor.getSnapshot().context).toMatchObject({ ...context, endReason: null });
        expect(run.effects.stopMedia).toHaveBeenCalledTimes(1);
        expect(run.actor.getSnapshot().children.media).toBeUndefined();
      }
    }
  });

  it('after a resume with neither the call nor a request, ends the call: its call.ended never arrived', () => {
    for (const run of [toConnecting(), toInCall()]) {
      run.actor.send({ type: 'server.resumed', call: null, request: null });
      expect(run.actor.getSnapshot().value).toBe('ended');
      expect(run.actor.getSnapshot().context.endReason).toBe('reconnect-timeout');
      expect(run.effects.stopMedia).toHaveBeenCalledTimes(1);
      expect(run.effects.sendHangup).not.toHaveBeenCalled();
    }
    // A call the server holds that is not this one ends nothing.
    const other = toInCall();
    other.actor.send({ type: 'server.resumed', call: { callId: 'call-other' }, request: null });
    expect(other.actor.getSnapshot().matches('inCall')).toBe(true);
    expect(other.effects.reportMediaState).not.toHaveBeenCalled();
  });

  it('when the server kept nothing of the session, ends the request or the call it had', () => {
    const waiting = start();
    waiting.actor.send({ type: 'call.request' });
    waiting.actor.send({ type: 'session.lost' });
    expect(waiting.actor.getSnapshot().value).toBe('ended');
    expect(waiting.actor.getSnapshot().context.endReason).toBe('cancelled');
    expect(waiting.effects.cancelRequest).not.toHaveBeenCalled();
    for (const run of [toConnecting(), toInCall()]) {
      run.actor.send({ type: 'session.lost' });
      expect(run.actor.getSnapshot().value).toBe('ended');
      expect(run.actor.getSnapshot().context.endReason).toBe('reconnect-timeout');
      expect(run.effects.stopMedia).toHaveBeenCalledTimes(1);
    }
    const idle = start();
    idle.actor.send({ type: 'session.lost' });
    idle.actor.send({ type: 'server.resumed', call: null, request: null });
    expect(idle.actor.getSnapshot().value).toBe('idle');
  });

  it('keeps a JSON-serializable context', () => {
    const { actor } = toInCall();
    const { context } = actor.getSnapshot();
    expect(JSON.parse(JSON.stringify(context))).toEqual(context);
  });
});
