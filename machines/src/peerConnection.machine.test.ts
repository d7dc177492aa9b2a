import { describe, expect, it, vi } from 'vitest';
import { peerConnectionPhase } from './peerConnection.phase.ts';
import {
  defaultPeerConnectionTimings,
  peerConnectionMachine,
  type PeerConnectionEvent,
  type PeerConnectionInput,
} from './peerConnection.machine.ts';
import { startSimulated } from '../../test/support/simulated-actor.ts';

const T = defaultPeerConnectionTimings;

function start(input: PeerConnectionInput = { role: 'offerer' }) {
  const effects: string[] = [];
  const record = (name: string) => vi.fn(() => void effects.push(name));
  const spies = {
    rollbackLocalOffer: record('rollbackLocalOffer'),
    restartIce: record('restartIce'),
    sendRestartOffer: record('sendRestartOffer'),
    resendRestartOffer: record('resendRestartOffer'),
    sendRestartRequest: record('sendRestartRequest'),
    // The media watch samples all along; only the restart effects' order is recorded.
    startMediaProbe: vi.fn(),
    probeMedia: vi.fn(),
    checkSignaling: vi.fn(),
  };
  return { ...startSimulated(peerConnectionMachine, spies, input), spies, effects };
}

/** Started and connected, at t = 0 of the simulated clock. */
function startConnected(input?: PeerConnectionInput) {
  const run = start(input);
  run.actor.send({ type: 'ice.connected', at: 0 });
  return run;
}

/** Started, connected at t = 0, then told `events` in turn. */
function connectedThen(...events: PeerConnectionEvent[]) {
  const run = startConnected();
  for (const event of events) run.actor.send(event);
  return run;
}

/** SimulatedClock arms a timer set during a flush from the advanced time, so step through each one. */
function advance(run: ReturnType<typeof start>, ms: number, times: number) {
  for (let i = 0; i < times; i++) run.clock.increment(ms);
}

const value = (run: ReturnType<typeof start>) => peerConnectionPhase(run.actor.getSnapshot().value);
const context = (run: ReturnType<typeof start>) => run.actor.getSnapshot().context;

/** What an offerer does for a fresh restart offer, in order. */
const FRESH_OFFER = ['rollbackLocalOffer', 'restartIce', 'sendRestartOffer'];

/** `event` has the offerer send a fresh restart offer at once, under attempt number `attempts`. */
function expectFreshOfferOn(run: ReturnType<typeof start>, event: PeerConnectionEvent, attempts: number) {
  run.effects.length = 0;
  run.actor.send(event);
  expect(context(run).attempts).toBe(attempts);
  expect(run.effects).toEqual(FRESH_OFFER);
}

/** In `reconnecting.<waiting>` with `attempts` spent, and no attempt timer left: waiting however long spends nothing. */
function expectWaitingWithoutSpending(run: ReturnType<typeof start>, waiting: 'waitingForSignaling' | 'waitingForPeer', attempts: number) {
  expect(value(run)).toEqual({ reconnecting: waiting });
  expect(context(run).attempts).toBe(attempts);
  advance(run, T.attemptTimeout, 10);
  expect(value(run)).toEqual({ reconnecting: waiting });
  expect(context(run).attempts).toBe(attempts);
}

describe('peerConnection: first connection', () => {
  it('starts in connecting with defaults from DESIGN', () => {
    const run = start({ role: 'answerer' });
    expect(value(run)).toBe('connecting');
    expect(context(run)).toEqual({
      role: 'answerer',
      attempts: 0,
      attemptInProgress: false,
      maxAttempts: 3,
      timings: T,
      signalingUp: true,
      peerReachable: true,
      online: true,
      outageStartedAt: null,
      lastRecovery: null,
    });
  });

  it('ice.connected in connecting → connected', () => {
    const run = start();
    run.actor.send({ type: 'ice.connected', at: 5 });
    expect(value(run)).toBe('connected');
  });

  it('ice.failed in connecting → reconnecting and starts an attempt', () => {
    const run = start();
    run.actor.send({ type: 'ice.failed', at: 100 });
    expect(value(run)).toEqual({ reconnecting: 'attempting' });
    expect(context(run).attempts).toBe(1);
    expect(context(run).outageStartedAt).toBe(100);
  });

  it('fails after connectTimeout in connecting, with no attempt spent', () => {
    const run = start();
    run.clock.increment(T.connectTimeout - 1);
    expect(value(run)).toBe('connecting');
    run.clock.increment(1);
    expect(value(run)).toBe('failed');
    expect(run.actor.getSnapshot().status).toBe('done');
    expect(run.actor.getSnapshot().output).toEqual({ outcome: 'failed' });
    expect(run.emitted).toEqual([{ type: 'failed', attempts: 0 }]);
    expect(run.spies.restartIce).not.toHaveBeenCalled();
  });

  it('timings and maxAttempts come from input', () => {
    const run = start({ role: 'offerer', maxAttempts: 5, timings: { connectTimeout: 50 } });
    expect(context(run).maxAttempts).toBe(5);
    expect(context(run).timings).toEqual({ ...T, connectTimeout: 50 });
    run.clock.increment(50);
    expect(value(run)).toBe('failed');
  });
});

describe('peerConnection: unstable', () => {
  it('ice.disconnected in connected → unstable and remembers when the outage began', () => {
    const run = connectedThen({ type: 'ice.disconnected', at: 1000 });
    expect(value(run)).toBe('unstable');
    expect(context(run).outageStartedAt).toBe(1000);
  });

  it('ice.connected in unstable → connected without spending an attempt', () => {
    const run = connectedThen({ type: 'ice.disconnected', at: 1000 });
    run.clock.increment(T.disconnectedGrace - 1);
    run.actor.send({ type: 'ice.connected', at: 2999 });
    expect(value(run)).toBe('connected');
    expect(context(run).attempts).toBe(0);
    expect(context(run).outageStartedAt).toBeNull();
    expect(run.spies.restartIce).not.toHaveBeenCalled();
    // The grace timer left with the state: nothing happens when it would have fired.
    advance(run, T.disconnectedGrace, 3);
    expect(value(run)).toBe('connected');
  });

  it('after disconnectedGrace in unstable → reconnecting', () => {
    const run = connectedThen({ type: 'ice.disconnected', at: 1000 });
    run.clock.increment(T.disconnectedGrace - 1);
    expect(value(run)).toBe('unstable');
    run.clock.increment(1);
    expect(value(run)).toEqual({ reconnecting: 'attempting' });
    expect(context(run).attempts).toBe(1);
  });
});

describe('peerConnection: immediate restarts', () => {
  it('ice.failed in connected → reconnecting at once', () => {
    const run = connectedThen({ type: 'ice.failed', at: 7 });
    expect(value(run)).toEqual({ reconnecting: 'attempting' });
    expect(context(run).outageStartedAt).toBe(7);
  });

  it('ice.failed in unstable → reconnecting at once, keeping the original outage start', () => {
    const run = connectedThen({ type: 'ice.disconnected', at: 5000 }, { type: 'ice.failed', at: 15000 });
    expect(value(run)).toEqual({ reconnecting: 'attempting' });
    expect(context(run).outageStartedAt).toBe(5000);
  });

  it('network.online in unstable → reconnecting at once', () => {
    const run = connectedThen({ type: 'ice.disconnected', at: 5000 }, { type: 'network.online' });
    expect(value(run)).toEqual({ reconnecting: 'attempting' });
  });
});

describe('peerConnection: attempts', () => {
  it('offerer: increments, then rolls back, restarts ICE and sends the restart offer, in that order', () => {
    const run = startConnected({ role: 'offerer' });
    const attemptsSeenByEffects: number[] = [];
    run.spies.rollbackLocalOffer.mockImplementation(() => {
      attemptsSeenByEffects.push(run.actor.getSnapshot().context.attempts);
      run.effects.push('rollbackLocalOffer');
    });
    run.actor.send({ type: 'ice.failed', at: 0 });
    expect(run.effects).toEqual(FRESH_OFFER);
    expect(run.emitted).toEqual([{ type: 'attempt.started', attempt: 1, maxAttempts: 3 }]);
    expect(context(run).attempts).toBe(1);
  });

  it('answerer: rolls back and restarts ICE but never sends a restart offer', () => {
    const run = startConnected({ role: 'answerer' });
    run.actor.send({ type: 'ice.failed', at: 0 });
    run.clock.increment(T.attemptTimeout);
    run.clock.increment(T.attemptTimeout);
    expect(run.spies.restartIce).toHaveBeenCalledTimes(3);
    expect(run.spies.rollbackLocalOffer).toHaveBeenCalledTimes(3);
    expect(run.spies.sendRestartOffer).not.toHaveBeenCalled();
  });

  it('shows the current attempt number while attempting', () => {
    const run = connectedThen({ type: 'ice.failed', at: 0 });
    const seen = [context(run).attempts];
    run.clock.increment(T.attemptTimeout);
    seen.push(context(run).attempts);
    run.clock.increment(T.attemptTimeout);
    seen.push(context(run).attempts);
    expect(seen).toEqual([1, 2, 3]);
    expect(value(run)).toEqual({ reconnecting: 'attempting' });
  });

  it('each attempt is bounded by attemptTimeout and retried until maxAttempts are spent → failed', () => {
    const run = connectedThen({ type: 'ice.failed', at: 0 });
    advance(run, T.attemptTimeout, 2);
    run.clock.increment(T.attemptTimeout - 1);
    expect(value(run)).toEqual({ reconnecting: 'attempting' });
    run.clock.increment(1);
    expect(value(run)).toBe('failed');
    expect(context(run).attempts).toBe(3);
    expect(run.actor.getSnapshot().output).toEqual({ outcome: 'failed' });
    expect(run.emitted).toEqual([
      { type: 'attempt.started', attempt: 1, maxAttempts: 3 },
      { type: 'attempt.failed', attempt: 1, maxAttempts: 3 },
      { type: 'attempt.started', attempt: 2, maxAttempts: 3 },
      { type: 'attempt.failed', attempt: 2, maxAttempts: 3 },
      { type: 'attempt.started', attempt: 3, maxAttempts: 3 },
      { type: 'attempt.failed', attempt: 3, maxAttempts: 3 },
      { type: 'failed', attempts: 3 },
    ]);
    expect(run.spies.restartIce).toHaveBeenCalledTimes(3);
  });

  it('a restart offer is sent once per attempt, never more', () => {
    const run = startConnected({ role: 'offerer', maxAttempts: 2 });
    run.actor.send({ type: 'ice.failed', at: 0 });
    advance(run, T.attemptTimeout, 10);
    expect(run.spies.sendRestartOffer).toHaveBeenCalledTimes(2);
    expect(value(run)).toBe('failed');
  });
});

describe('peerConnection: signaling', () => {
  it('tracks signalingUp from signal.up/signal.down in every state', () => {
    const run = start();
    run.actor.send({ type: 'signal.down' });
    expect(context(run).signalingUp).toBe(false);
    run.actor.send({ type: 'ice.connected', at: 0 });
    run.actor.send({ type: 'signal.up' });
    expect(context(run).signalingUp).toBe(true);
    run.actor.send({ type: 'signal.down' });
    run.actor.send({ type: 'ice.disconnected', at: 0 });
    run.actor.send({ type: 'signal.up' });
    expect(value(run)).toBe('unstable');
    expect(context(run).signalingUp).toBe(true);
  });

  it('signal.down while attempting → waitingForSignaling, giving the attempt back', () => {
    const run = connectedThen({ type: 'ice.failed', at: 0 });
    run.clock.increment(T.attemptTimeout); // attempt 2 now
    run.actor.send({ type: 'signal.down' });
    expect(context(run).signalingUp).toBe(false);
    expect(run.emitted.at(-1)).toEqual({ type: 'attempt.abandoned', attempt: 2, maxAttempts: 3 });
    expectWaitingWithoutSpending(run, 'waitingForSignaling', 1);
  });

  it('entering reconnecting while signaling is down waits without spending an attempt', () => {
    const run = connectedThen({ type: 'signal.down' }, { type: 'ice.failed', at: 0 });
    expect(value(run)).toEqual({ reconnecting: 'waitingForSignaling' });
    expect(context(run).attempts).toBe(0);
    expect(run.spies.restartIce).not.toHaveBeenCalled();
  });

  it('signal.up in waitingForSignaling → attempting', () => {
    const run = connectedThen({ type: 'signal.down' }, { type: 'ice.failed', at: 0 }, { type: 'signal.up' });
    expect(value(run)).toEqual({ reconnecting: 'attempting' });
    expect(context(run).attempts).toBe(1);
    expect(run.spies.restartIce).toHaveBeenCalledTimes(1);
  });

  it('flapping signaling never lets attempts exceed maxAttempts', () => {
    const run = connectedThen({ type: 'ice.failed', at: 0 });
    for (let i = 0; i < 10; i++) {
      run.actor.send({ type: 'signal.down' });
      run.actor.send({ type: 'signal.up' });
    }
    expect(context(run).attempts).toBe(1);
    advance(run, T.attemptTimeout, 3);
    expect(value(run)).toBe('failed');
    expect(context(run).attempts).toBe(3);
  });
});

describe('peerConnection: recovery', () => {
  it('ice.connected during reconnecting → connected, resets attempts, records and emits the recovery', () => {
    const run = connectedThen({ type: 'ice.disconnected', at: 5000 });
    run.clock.increment(T.disconnectedGrace);
    run.clock.increment(T.attemptTimeout); // attempt 2
    run.actor.send({ type: 'ice.connected', at: 17100 });
    expect(value(run)).toEqual({ reconnecting: { verifying: 'probing' } });
    run.actor.send({ type: 'media.flowing', at: 17100 });
    expect(value(run)).toBe('connected');
    expect(context(run).attempts).toBe(0);
    expect(context(run).outageStartedAt).toBeNull();
    expect(context(run).lastRecovery).toEqual({ attempts: 2, durationMs: 12100 });
    expect(run.emitted.at(-1)).toEqual({ type: 'recovered', attempts: 2, durationMs: 12100 });
    // The attempt timer is gone with the state.
    advance(run, T.attemptTimeout, 5);
    expect(value(run)).toBe('connected');
  });

  it('ice.connected while waiting for signaling also recovers', () => {
    const run = connectedThen(
      { type: 'signal.down' },
      { type: 'ice.failed', at: 100 },
      { type: 'ice.connected', at: 350 },
      { type: 'media.flowing', at: 400 },
    );
    expect(value(run)).toBe('connected');
    expect(run.emitted.at(-1)).toEqual({ type: 'recovered', attempts: 0, durationMs: 300 });
  });

  it('a later outage starts again from attempt 1', () => {
    const run = connectedThen({ type: 'ice.failed', at: 0 });
    advance(run, T.attemptTimeout, 2);
    run.actor.send({ type: 'ice.connected', at: 20000 });
    run.actor.send({ type: 'media.flowing' });
    run.actor.send({ type: 'ice.failed', at: 30000 });
    expect(context(run).attempts).toBe(1);
    expect(context(run).outageStartedAt).toBe(30000);
  });
});

describe('peerConnection: recovered means media', () => {
  it('connected after a restart is still reconnecting until media is seen, probing every mediaProbeInterval', () => {
    const run = connectedThen({ type: 'ice.failed', at: 1000 });
    const probes = () => run.spies.probeMedia.mock.calls.length;
    const baselines = () => run.spies.startMediaProbe.mock.calls.length;
    const baselinesBefore = baselines();
    run.actor.send({ type: 'ice.connected', at: 1500 });
    expect(value(run)).toEqual({ reconnecting: { verifying: 'probing' } });
    expect(baselines() - baselinesBefore).toBe(1);
    const before = probes();
    advance(run, T.mediaProbeInterval, 3);
    expect(probes() - before).toBe(3);
    expect(run.emitted.some((e) => e.type === 'recovered')).toBe(false);
    run.actor.send({ type: 'media.flowing' });
    expect(value(run)).toBe('connected');
    expect(run.emitted.at(-1)).toMatchObject({ type: 'recovered', attempts: 1 });
    // Connected again, media is only watched, at the slower interval.
    const after = probes();
    advance(run, T.mediaWatchInterval, 2);
    expect(probes() - after).toBe(2);
  });

  it('no media within mediaProofTimeout fails that attempt and starts the next', () => {
    const run = connectedThen({ type: 'ice.failed', at: 0 }, { type: 'ice.connected', at: 100 });
    // The probing loop re-arms itself; step through it until the proof timer fires.
    advance(run, T.mediaProbeInterval, T.mediaProofTimeout / T.mediaProbeInterval);
    expect(value(run)).toEqual({ reconnecting: 'attempting' });
    expect(context(run).attempts).toBe(2);
    expect(run.emitted.filter((e) => e.type === 'attempt.failed')).toEqual([{ type: 'attempt.failed', attempt: 1, maxAttempts: 3 }]);
  });

  it('the last attempt without media ends in failed', () => {
    const run = startConnected({ role: 'offerer', maxAttempts: 1 });
    run.actor.send({ type: 'ice.failed', at: 0 });
    run.actor.send({ type: 'ice.connected', at: 100 });
    advance(run, T.mediaProbeInterval, T.mediaProofTimeout / T.mediaProbeInterval);
    expect(value(run)).toBe('failed');
  });
});

describe('peerConnection: no attempt without a reachable peer', () => {
  it('peer.away during an attempt gives the attempt back and waits without spending any', () => {
    const run = connectedThen({ type: 'ice.failed', at: 0 });
    expect(context(run).attempts).toBe(1);
    run.actor.send({ type: 'peer.away' });
    expect(run.emitted.at(-1)).toEqual({ type: 'attempt.abandoned', attempt: 1, maxAttempts: 3 });
    expectWaitingWithoutSpending(run, 'waitingForPeer', 0);
  });

  it('a loss while the peer is away waits for it at once', () => {
    const run = connectedThen({ type: 'peer.away' });
    expect(value(run)).toBe('connected');
    run.actor.send({ type: 'ice.failed', at: 0 });
    expect(value(run)).toEqual({ reconnecting: 'waitingForPeer' });
    expect(run.spies.sendRestartOffer).not.toHaveBeenCalled();
  });

  it('peer.back rolls back and sends a fresh restart offer at once', () => {
    const run = connectedThen({ type: 'peer.away' }, { type: 'ice.failed', at: 0 });
    expectFreshOfferOn(run, { type: 'peer.back' }, 1);
    expect(value(run)).toEqual({ reconnecting: 'attempting' });
  });

  it('peer.back during an attempt sends a fresh offer under the same attempt number', () => {
    const run = connectedThen({ type: 'ice.failed', at: 0 });
    run.clock.increment(T.attemptTimeout); // attempt 2
    expectFreshOfferOn(run, { type: 'peer.back' }, 2);
  });

  it('the answerer asks for a restart offer on each attempt and never sends one', () => {
    const run = startConnected({ role: 'answerer' });
    run.actor.send({ type: 'ice.failed', at: 0 });
    run.clock.increment(T.attemptTimeout);
    expect(run.spies.sendRestartRequest).toHaveBeenCalledTimes(2);
    expect(run.spies.sendRestartOffer).not.toHaveBeenCalled();
  });

  it('the offerer acts on a restart request at once from connected or unstable, and during an attempt sends its offer again', () => {
    const fromConnected = startConnected();
    fromConnected.actor.send({ type: 'restart.requested', at: 50 });
    expect(value(fromConnected)).toEqual({ reconnecting: 'attempting' });
    expect(context(fromConnected).outageStartedAt).toBe(50);
    expect(fromConnected.spies.sendRestartOffer).toHaveBeenCalledTimes(1);
    // The answerer asks again: the offer in flight may have gone into its dead socket. The same offer goes
    // again; a new one would race the answer to the first.
    fromConnected.actor.send({ type: 'restart.requested', at: 60 });
    expect(fromConnected.spies.sendRestartOffer).toHaveBeenCalledTimes(1);
    expect(fromConnected.spies.resendRestartOffer).toHaveBeenCalledTimes(1);
    expect(fromConnected.spies.rollbackLocalOffer).toHaveBeenCalledTimes(1);
    expect(context(fromConnected).attempts).toBe(1);
    expect(context(fromConnected).outageStartedAt).toBe(50);

    const fromUnstable = startConnected();
    fromUnstable.actor.send({ type: 'ice.disconnected', at: 10 });
    fromUnstable.actor.send({ type: 'restart.requested', at: 20 });
    expect(value(fromUnstable)).toEqual({ reconnecting: 'attempting' });

    const answerer = startConnected({ role: 'answerer' });
    answerer.actor.send({ type: 'restart.requested', at: 20 });
    expect(value(answerer)).toBe('connected');
  });
});

describe('peerConnection: no attempt without a network', () => {
  it('offline while connected waits for the network at once, spending nothing', () => {
    const run = connectedThen({ type: 'network.offline', at: 700 });
    expect(value(run)).toEqual({ reconnecting: 'waitingForNetwork' });
    expect(context(run).outageStartedAt).toBe(700);
    advance(run, T.attemptTimeout, 10);
    expect(context(run).attempts).toBe(0);
    run.actor.send({ type: 'network.online' });
    expect(value(run)).toEqual({ reconnecting: 'attempting' });
    expect(context(run).attempts).toBe(1);
  });

  it('offline during an attempt gives it back', () => {
    const run = connectedThen({ type: 'ice.failed', at: 0 }, { type: 'network.offline' });
    expect(value(run)).toEqual({ reconnecting: 'waitingForNetwork' });
    expect(context(run).attempts).toBe(0);
  });

  it('online again while offline signaling is still down waits for signaling, then attempts', () => {
    const run = connectedThen({ type: 'network.offline', at: 0 }, { type: 'signal.down' }, { type: 'network.online' });
    expect(value(run)).toEqual({ reconnecting: 'waitingForSignaling' });
    run.actor.send({ type: 'signal.up' });
    expect(value(run)).toEqual({ reconnecting: 'attempting' });
  });

  it('an address change (online without offline) restarts at once', () => {
    const run = connectedThen({ type: 'network.online', at: 300 });
    expect(value(run)).toEqual({ reconnecting: 'attempting' });
    run.clock.increment(1000);
    expectFreshOfferOn(run, { type: 'network.online' }, 1);
  });
});

describe('peerConnection: hangup', () => {
  it.each([
    ['connecting', []],
    ['connected', [{ type: 'ice.connected', at: 0 }]],
    ['unstable', [{ type: 'ice.connected', at: 0 }, { type: 'ice.disconnected', at: 1 }]],
    ['attempting', [{ type: 'ice.failed', at: 0 }]],
    ['waitingForSignaling', [{ type: 'signal.down' }, { type: 'ice.failed', at: 0 }]],
  ] as const)('hangup from %s → closed (final), timers cancelled', (_name, before) => {
    const run = start();
    for (const event of before) run.actor.send(event);
    run.actor.send({ type: 'hangup' });
    expect(value(run)).toBe('closed');
    expect(run.actor.getSnapshot().status).toBe('done');
    expect(run.actor.getSnapshot().output).toEqual({ outcome: 'closed' });
    const emittedBefore = run.emitted.length;
    advance(run, T.disconnectedGrace, 50);
    expect(run.emitted.length).toBe(emittedBefore);
  });

  it('a final state is never left', () => {
    const run = start();
    run.actor.send({ type: 'hangup' });
    run.actor.send({ type: 'ice.connected', at: 0 });
    run.actor.send({ type: 'ice.failed', at: 0 });
    expect(value(run)).toBe('closed');
  });
});

describe('peerConnection: context stays serializable', () => {
  it('round-trips through JSON in every phase', () => {
    const run = connectedThen({ type: 'ice.disconnected', at: 0 });
    run.clock.increment(T.disconnectedGrace);
    run.actor.send({ type: 'ice.connected', at: 3000 });
    const ctx = context(run);
    expect(JSON.parse(JSON.stringify(ctx))).toEqual(ctx);
  });
});

describe('peerConnection: a connected call watches its media', () => {
  const flowing = (input?: PeerConnectionInput) => {
    const run = startConnected(input);
    run.actor.send({ type: 'media.flowing', at: 100 });
    return run;
  };

  it('looks for no stall before media was first seen, however long the start takes', () => {
    const run = startConnected();
    expect(run.actor.getSnapshot().value).toEqual({ connected: { starting: 'sampling' } });
    run.actor.send({ type: 'media.stalled', at: 50 });
    advance(run, T.mediaWatchInterval, 10);
    expect(run.actor.getSnapshot().value).toEqual({ connected: { starting: 'sampling' } });
    expect(run.spies.checkSignaling).not.toHaveBeenCalled();
    expect(run.spies.probeMedia.mock.calls.length).toBe(10);
  });

  it('asks signaling to prove its socket at the first stalled sample, and a stall that ends in time costs nothing', () => {
    const run = flowing();
    expect(run.actor.getSnapshot().value).toEqual({ connected: { flowing: 'sampling' } });
    run.actor.send({ type: 'media.stalled', at: 1000 });
    expect(run.actor.getSnapshot().value).toEqual({ connected: { stalled: 'sampling' } });
    expect(run.spies.checkSignaling).toHaveBeenCalledTimes(1);
    expect(context(run).outageStartedAt).toBe(1000);
    // Sampling goes on through the stall, without asking signaling again.
    advance(run, T.mediaWatchInterval, 1);
    expect(run.spies.checkSignaling).toHaveBeenCalledTimes(1);
    run.actor.send({ type: 'media.flowing', at: 1600 });
    expect(run.actor.getSnapshot().value).toEqual({ connected: { flowing: 'sampling' } });
    expect(context(run)).toMatchObject({ outageStartedAt: null, attempts: 0 });
    expect(run.spies.sendRestartOffer).not.toHaveBeenCalled();
  });

  it('restarts once nothing has arrived for mediaStallTimeout, long before ICE would report disconnected', () => {
    const run = flowing();
    run.actor.send({ type: 'media.stalled', at: 1000 });
    advance(run, T.mediaStallTimeout, 1);
    expect(value(run)).toEqual({ reconnecting: 'attempting' });
    expect(context(run)).toMatchObject({ attempts: 1, outageStartedAt: 1000 });
    expect(run.spies.sendRestartOffer).toHaveBeenCalledTimes(1);
    // ICE noticing later does not move the start of the outage.
    run.actor.send({ type: 'ice.disconnected', at: 6000 });
    expect(context(run).outageStartedAt).toBe(1000);
  });

  it('the answerer asks for the restart the stall started', () => {
    const run = flowing({ role: 'answerer' });
    run.actor.send({ type: 'media.stalled', at: 1000 });
    advance(run, T.mediaStallTimeout, 1);
    expect(value(run)).toEqual({ reconnecting: 'attempting' });
    expect(run.spies.sendRestartRequest).toHaveBeenCalledTimes(1);
    expect(run.spies.sendRestartOffer).not.toHaveBeenCalled();
  });

  it('media seen arriving during an attempt is the recovery, though the connection never reported anything else', () => {
    const run = flowing();
    run.actor.send({ type: 'media.stalled', at: 1000 });
    advance(run, T.mediaStallTimeout, 1);
    run.actor.send({ type: 'media.flowing', at: 2500 });
    expect(value(run)).toBe('connected');
    expect(run.emitted.at(-1)).toEqual({ type: 'recovered', attempts: 1, durationMs: 1500 });
    expect(context(run)).toMatchObject({ attempts: 0, attemptInProgress: false, outageStartedAt: null });
  });
});
