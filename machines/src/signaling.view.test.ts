import { describe, expect, it } from 'vitest';
import { createActor, SimulatedClock } from 'xstate';
import { signalingMachine, type SignalingEvent, type SignalingInput } from './signaling.machine.ts';
import { signalingStatus } from './signaling.view.ts';

function statusAfter(events: SignalingEvent[], input: SignalingInput = {}) {
  const actor = createActor(signalingMachine, { clock: new SimulatedClock(), input: { timings: { maxJitter: 0 }, ...input } });
  actor.start();
  for (const event of events) actor.send(event);
  return { status: signalingStatus(actor.getSnapshot()), value: actor.getSnapshot().value };
}

const connect: SignalingEvent = { type: 'connect' };
const connected: SignalingEvent = { type: 'socket.connected', at: 0 };
const dropped: SignalingEvent = { type: 'socket.closed', reason: 'transport', at: 0 };

describe('signalingStatus', () => {
  it('is connecting before and during the first connection', () => {
    expect(statusAfter([])).toEqual({ status: 'connecting', value: 'idle' });
    expect(statusAfter([connect])).toEqual({ status: 'connecting', value: 'connecting' });
  });

  it('is ready once connected, also while the socket is being checked', () => {
    expect(statusAfter([connect, connected])).toEqual({ status: 'ready', value: { connected: { ready: 'trusted' } } });
    expect(statusAfter([connect, connected, { type: 'link.suspect' }])).toEqual({ status: 'ready', value: { connected: { ready: 'checking' } } });
  });

  it('is reconnecting from a lost socket until the session is resumed', () => {
    expect(statusAfter([connect, connected, dropped]).status).toBe('reconnecting');
    const resuming = statusAfter([connect, connected, { type: 'session.ready', resumeToken: 'tok' }, dropped, { type: 'network.online' }, connected]);
    expect(resuming).toEqual({ status: 'reconnecting', value: { connected: 'resuming' } });
    expect(
      statusAfter([connect, connected, { type: 'session.ready', resumeToken: 'tok' }, dropped, { type: 'network.online' }, connected, { type: 'session.resumed', at: 0 }]).status,
    ).toBe('ready');
  });

  it('is offline while the device has no network', () => {
    expect(statusAfter([connect, connected, { type: 'network.offline' }, dropped])).toEqual({ status: 'offline', value: { reconnecting: 'offline' } });
  });

  it('is disconnected after a clean close or the last attempt, and unauthorized after a refusal', () => {
    expect(statusAfter([connect, connected, { type: 'disconnect' }]).status).toBe('disconnected');
    expect(statusAfter([connect, connected, dropped, { type: 'network.online' }, dropped], { maxAttempts: 1 }).status).toBe('disconnected');
    expect(statusAfter([connect, { type: 'socket.unauthorized' }]).status).toBe('unauthorized');
  });
});
