import { describe, expect, it, vi } from 'vitest';
import {
  defaultSignalingTimings,
  signalingMachine,
  type SignalingEmitted,
  type SignalingInput,
  type TransmitParams,
} from './signaling.machine.ts';
import { startSimulated } from '../../test/support/simulated-actor.ts';

const noJitter = { maxJitter: 0 };

function start(input: SignalingInput = {}) {
  const transmitted: TransmitParams[] = [];
  const spies = {
    openSocket: vi.fn(),
    closeSocket: vi.fn(),
    rejoin: vi.fn(),
    transmit: vi.fn((_: unknown, params: TransmitParams) => void transmitted.push(params)),
    sendLivenessPing: vi.fn(),
    abandonSocket: vi.fn(),
  };
  return { ...startSimulated(signalingMachine, spies, input), spies, transmitted };
}

type Run = ReturnType<typeof start>;

const value = (run: Run) => run.actor.getSnapshot().value;
const context = (run: Run) => run.actor.getSnapshot().context;
const now = (run: Run) => run.clock.now();

function connect(run: Run) {
  run.actor.send({ type: 'connect' });
  run.actor.send({ type: 'socket.connected', at: now(run) });
}

function dropConnection(run: Run) {
  run.actor.send({ type: 'socket.closed', reason: 'transport', at: now(run) });
}

/** Started, connected, and just lost its connection: reconnecting. */
function startDropped(input?: SignalingInput) {
  const run = start(input);
  connect(run);
  dropConnection(run);
  return run;
}

/** Reconnecting without jitter, then told the network is gone: offline. */
function startOffline() {
  const run = startDropped({ timings: noJitter });
  run.actor.send({ type: 'network.offline' });
  return run;
}

const scheduled = (run: Run) =>
  run.emitted.filter((e): e is Extract<SignalingEmitted, { type: 'reconnect.scheduled' }> => e.type === 'reconnect.scheduled');

describe('signaling: first connection', () => {
  it('starts idle and goes straight to ready on the first connection', () => {
    const run = start();
    expect(value(run)).toBe('idle');
    run.actor.send({ type: 'connect' });
    expect(value(run)).toBe('connecting');
    expect(run.spies.openSocket).toHaveBeenCalledTimes(1);
    run.actor.send({ type: 'socket.connected', at: 0 });
    expect(value(run)).toEqual({ connected: { ready: 'trusted' } });
  });

  it('a first connection goes to ready even with a resume token', () => {
    const run = start({ resumeToken: 'tok' });
    connect(run);
    expect(value(run)).toEqual({ connected: { ready: 'trusted' } });
  });

  it('a first connection that fails on the transport is retried with backoff', () => {
    const run = start({ timings: noJitter });
    run.actor.send({ type: 'connect' });
    dropConnection(run);
    expect(value(run)).toEqual({ reconnecting: 'waiting' });
    expect(scheduled(run)).toEqual([{ type: 'reconnect.scheduled', attempt: 1, delayMs: 1000 }]);
  });
});

describe('signaling: backoff', () => {
  it('waits min(initial·2^n, max) without jitter: 1s, 2s, 4s, 8s, 16s, 30s, 30s', () => {
    const run = startDropped({ timings: noJitter });
    const delays: number[] = [];
    for (let n = 0; n < 7; n++) {
      expect(value(run)).toEqual({ reconnecting: 'waiting' });
      const delay = context(run).retryDelayMs;
      delays.push(delay);
      // The timer fires exactly at the delay, not before.
      run.clock.increment(delay - 1);
      expect(value(run)).toEqual({ reconnecting: 'waiting' });
      run.clock.increment(1);
      expect(value(run)).toEqual({ reconnecting: 'connecting' });
      expect(context(run).attempts).toBe(n + 1);
      dropConnection(run);
    }
    expect(delays).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000]);
    // The last drop has scheduled an eighth attempt, capped like the seventh.
    expect(scheduled(run).map((e) => [e.attempt, e.delayMs])).toEqual([...delays, 30000].map((d, i) => [i + 1, d]));
    expect(run.spies.openSocket).toHaveBeenCalledTimes(1 + 7);
  });

  it('adds jitter in [0, maxJitter) drawn from the seeded PRNG', () => {
    const run = startDropped({ randomSeed: 42 });
    const jitters: number[] = [];
    for (let n = 0; n < 20; n++) {
      const base = Math.min(1000 * 2 ** n, 30000);
      const delay = context(run).retryDelayMs;
      expect(delay).toBeGreaterThanOrEqual(base);
      expect(delay).toBeLessThan(base + defaultSignalingTimings.maxJitter);
      jitters.push(delay - base);
      run.clock.increment(delay);
      dropConnection(run);
    }
    // Not a constant: the PRNG advances on every draw.
    expect(new Set(jitters).size).toBeGreaterThan(10);
  });

  it('the same seed gives the same delays and different seeds give different ones', () => {
    const delaysFor = (randomSeed: number) => {
      const run = startDropped({ randomSeed });
      const delays: number[] = [];
      for (let n = 0; n < 5; n++) {
        delays.push(context(run).retryDelayMs);
        run.clock.increment(context(run).retryDelayMs);
        dropConnection(run);
      }
      return delays;
    };
    expect(delaysFor(7)).toEqual(delaysFor(7));
    const seeds = [1, 2, 3, 4, 5, 0xdeadbeef];
    const distinct = new Set(seeds.map((seed) => JSON.stringify(delaysFor(seed))));
    expect(distinct.size).toBe(seeds.length);
  });

  it('timings come from input', () => {
    const run = startDropped({ timings: { initialDelay: 100, maxDelay: 250, maxJitter: 0 } });
    const delays: number[] = [];
    for (let n = 0; n < 4; n++) {
      delays.push(context(run).retryDelayMs);
      run.clock.increment(context(run).retryDelayMs);
      dropConnection(run);
    }
    expect(delays).toEqual([100, 200, 250, 250]);
  });
});

describe('signaling: maxAttempts', () => {
  it('is unlimited by default', () => {
    const run = start({ timings: noJitter });
    expect(context(run).maxAttempts).toBeNull();
    connect(run);
    dropConnection(run);
    for (let n = 0; n < 50; n++) {
      run.clock.increment(context(run).retryDelayMs);
      dropConnection(run);
    }
    expect(value(run)).toEqual({ reconnecting: 'waiting' });
    expect(context(run).attempts).toBe(50);
  });

  it('when reached, goes to disconnected with lastError and schedules nothing more', () => {
    const run = startDropped({ maxAttempts: 3, timings: noJitter });
    for (let n = 0; n < 3; n++) {
      run.clock.increment(context(run).retryDelayMs);
      expect(value(run)).toEqual({ reconnecting: 'connecting' });
      dropConnection(run);
    }
    expect(value(run)).toBe('disconnected');
    expect(context(run).lastError).toEqual({ code: 'max-attempts', attempts: 3 });
    expect(scheduled(run)).toHaveLength(3);
    run.clock.increment(60_000);
    expect(run.spies.openSocket).toHaveBeenCalledTimes(1 + 3);
  });

  it('connect after giving up starts again with fresh attempts', () => {
    const run = startDropped({ maxAttempts: 1, timings: noJitter });
    run.clock.increment(1000);
    dropConnection(run);
    expect(value(run)).toBe('disconnected');
    run.actor.send({ type: 'connect' });
    expect(value(run)).toBe('connecting');
    expect(context(run).attempts).toBe(0);
    run.actor.send({ type: 'socket.connected', at: now(run) });
    expect(value(run)).toEqual({ connected: { ready: 'trusted' } });
    expect(context(run).lastError).toBeNull();
  });
});

describe('signaling: clean close and disconnect', () => {
  it('a clean close from connected goes to disconnected and never reconnects', () => {
    const run = start();
    connect(run);
    run.actor.send({ type: 'socket.closed', reason: 'clean', at: 0 });
    expect(value(run)).toBe('disconnected');
    run.clock.increment(120_000);
    expect(value(run)).toBe('disconnected');
    expect(run.spies.openSocket).toHaveBeenCalledTimes(1);
    expect(scheduled(run)).toEqual([]);
  });

  it('disconnect while waiting cancels the pending retry', () => {
    const run = startDropped({ timings: noJitter });
    expect(value(run)).toEqual({ reconnecting: 'waiting' });
    run.actor.send({ type: 'disconnect' });
    expect(value(run)).toBe('disconnected');
    expect(run.spies.closeSocket).toHaveBeenCalledTimes(1);
    run.clock.increment(120_000);
    expect(value(run)).toBe('disconnected');
    expect(run.spies.openSocket).toHaveBeenCalledTimes(1);
  });

  it('disconnect from connected, connecting and offline closes without reconnecting', () => {
    for (const setupSteps of [
      (run: Run) => connect(run),
      (run: Run) => run.actor.send({ type: 'connect' }),
      (run: Run) => {
        connect(run);
        run.actor.send({ type: 'network.offline' });
        dropConnection(run);
      },
    ]) {
      const run = start();
      setupSteps(run);
      const opened = run.spies.openSocket.mock.calls.length;
      run.actor.send({ type: 'disconnect' });
      expect(value(run)).toBe('disconnected');
      run.actor.send({ type: 'network.online' });
      run.clock.increment(120_000);
      expect(value(run)).toBe('disconnected');
      expect(run.spies.openSocket).toHaveBeenCalledTimes(opened);
    }
  });

  it('a clean close during a reconnect attempt stops reconnecting', () => {
    const run = startDropped({ timings: noJitter });
    run.clock.increment(1000);
    run.actor.send({ type: 'socket.closed', reason: 'clean', at: now(run) });
    expect(value(run)).toBe('disconnected');
    run.clock.increment(120_000);
    expect(run.spies.openSocket).toHaveBeenCalledTimes(2);
  });

  it('connect from disconnected starts again', () => {
    const run = start();
    connect(run);
    run.actor.send({ type: 'disconnect' });
    run.actor.send({ type: 'connect' });
    expect(value(run)).toBe('connecting');
    expect(run.spies.openSocket).toHaveBeenCalledTimes(2);
  });
});

describe('signaling: unauthorized', () => {
  it('socket.unauthorized on the first connection is final and never retries', () => {
    const run = start();
    run.actor.send({ type: 'connect' });
    run.actor.send({ type: 'socket.unauthorized' });
    expect(value(run)).toBe('unauthorized');
    expect(run.actor.getSnapshot().status).toBe('done');
    expect(context(run).lastError).toEqual({ code: 'unauthorized', attempts: 0 });
    run.clock.increment(120_000);
    expect(run.spies.openSocket).toHaveBeenCalledTimes(1);
  });

  it('socket.unauthorized during a reconnect attempt is final', () => {
    const run = startDropped({ timings: noJitter });
    run.clock.increment(1000);
    run.actor.send({ type: 'socket.unauthorized' });
    expect(value(run)).toBe('unauthorized');
    expect(run.actor.getSnapshot().status).toBe('done');
    run.clock.increment(120_000);
    expect(run.spies.openSocket).toHaveBeenCalledTimes(2);
  });
});

describe('signaling: network', () => {
  it('network.online in waiting skips the wait and connects now', () => {
    const run = startDropped({ timings: noJitter });
    dropConnection(run); // ignored while waiting: there is no socket
    run.actor.send({ type: 'network.online' });
    expect(value(run)).toEqual({ reconnecting: 'connecting' });
    expect(context(run).attempts).toBe(1);
    expect(run.spies.openSocket).toHaveBeenCalledTimes(2);
  });

  it('network.offline in waiting → offline, and no attempt is made while offline', () => {
    const run = startOffline();
    expect(value(run)).toEqual({ reconnecting: 'offline' });
    run.clock.increment(600_000);
    expect(value(run)).toEqual({ reconnecting: 'offline' });
    expect(context(run).attempts).toBe(0);
    expect(run.spies.openSocket).toHaveBeenCalledTimes(1);
  });

  it('network.online in offline connects now', () => {
    const run = startOffline();
    run.actor.send({ type: 'network.online' });
    expect(value(run)).toEqual({ reconnecting: 'connecting' });
    expect(context(run).attempts).toBe(1);
  });

  it('losing the connection while known to be offline goes straight to offline', () => {
    const run = start();
    connect(run);
    run.actor.send({ type: 'network.offline' });
    dropConnection(run);
    expect(value(run)).toEqual({ reconnecting: 'offline' });
    expect(scheduled(run)).toEqual([]);
  });

  it('an attempt that fails while offline waits in offline instead of backing off', () => {
    const run = startDropped({ timings: noJitter });
    run.clock.increment(1000);
    run.actor.send({ type: 'network.offline' });
    dropConnection(run);
    expect(value(run)).toEqual({ reconnecting: 'offline' });
    expect(scheduled(run)).toHaveLength(1);
  });
});

describe('signaling: reconnect and resume', () => {
  it('a successful reconnect resets attempts and emits reconnected', () => {
    const run = startDropped({ timings: noJitter });
    run.clock.increment(1000);
    dropConnection(run);
    run.clock.increment(2000);
    run.actor.send({ type: 'socket.connected', at: now(run) });
    expect(value(run)).toEqual({ connected: { ready: 'trusted' } });
    expect(context(run).attempts).toBe(0);
    expect(run.emitted.at(-1)).toEqual({ type: 'reconnected', attempts: 2 });
    // The next outage starts the backoff from the beginning again.
    dropConnection(run);
    expect(context(run).retryDelayMs).toBe(1000);
  });

  it('after a reconnect with a resume token: the socket opens with it, resuming, then session.resumed → ready', () => {
    const run = start({ timings: noJitter });
    connect(run);
    run.actor.send({ type: 'session.ready', resumeToken: 'tok-1' });
    dropConnection(run);
    run.clock.increment(1000);
    run.actor.send({ type: 'socket.connected', at: now(run) });
    expect(value(run)).toEqual({ connected: 'resuming' });
    // The handshake carries the token: `openSocket` is the only effect of the resume.
    expect(run.spies.openSocket).toHaveBeenCalledTimes(2);
    expect(run.spies.openSocket.mock.calls.at(-1)?.[0]).toMatchObject({ context: { resumeToken: 'tok-1' } });
    run.actor.send({ type: 'session.resumed', at: now(run) });
    expect(value(run)).toEqual({ connected: { ready: 'trusted' } });
    expect(context(run).resumeToken).toBe('tok-1');
    expect(run.spies.rejoin).not.toHaveBeenCalled();
  });

  it('session.expired clears the token, rejoins and goes to ready', () => {
    const run = startDropped({ resumeToken: 'tok', timings: noJitter });
    run.clock.increment(1000);
    run.actor.send({ type: 'socket.connected', at: now(run) });
    run.actor.send({ type: 'session.expired', at: now(run) });
    expect(value(run)).toEqual({ connected: { ready: 'trusted' } });
    expect(context(run).resumeToken).toBeNull();
    expect(run.spies.rejoin).toHaveBeenCalledTimes(1);
  });

  it('after a reconnect without a token goes straight to ready', () => {
    const run = startDropped({ timings: noJitter });
    run.clock.increment(1000);
    run.actor.send({ type: 'socket.connected', at: now(run) });
    expect(value(run)).toEqual({ connected: { ready: 'trusted' } });
    expect(run.spies.openSocket.mock.calls.at(-1)?.[0]).toMatchObject({ context: { resumeToken: null } });
  });

  it('session.ready stores the resume token in any state', () => {
    const run = start();
    run.actor.send({ type: 'session.ready', resumeToken: 'a' });
    expect(context(run).resumeToken).toBe('a');
    connect(run);
    run.actor.send({ type: 'session.ready', resumeToken: 'b' });
    expect(context(run).resumeToken).toBe('b');
    dropConnection(run);
    run.actor.send({ type: 'session.ready', resumeToken: 'c' });
    expect(context(run).resumeToken).toBe('c');
    run.actor.send({ type: 'disconnect' });
    run.actor.send({ type: 'session.ready', resumeToken: 'd' });
    expect(context(run).resumeToken).toBe('d');
  });
});

describe('signaling: outbox', () => {
  it('send while ready transmits at once', () => {
    const run = start();
    connect(run);
    run.actor.send({ type: 'send', event: 'chat', payload: { text: 'hi' }, at: 1 });
    expect(run.transmitted).toEqual([{ event: 'chat', payload: { text: 'hi' } }]);
    expect(context(run).outbox).toEqual([]);
  });

  it('send while not ready is queued with its expiry', () => {
    const run = start();
    run.actor.send({ type: 'send', event: 'a', payload: 1, at: 100 });
    run.actor.send({ type: 'send', event: 'b', payload: 2, at: 200, ttlMs: 50 });
    expect(run.transmitted).toEqual([]);
    expect(context(run).outbox).toEqual([
      { event: 'a', payload: 1, queuedAt: 100, expiresAt: null },
      { event: 'b', payload: 2, queuedAt: 200, expiresAt: 250 },
    ]);
  });

  it('is flushed in order, one transmit per message, when ready is entered, then emptied', () => {
    const run = startDropped({ timings: noJitter });
    for (const [i, event] of ['one', 'two', 'three'].entries()) {
      run.actor.send({ type: 'send', event, payload: i, at: now(run) });
    }
    expect(run.transmitted).toEqual([]);
    run.clock.increment(1000);
    run.actor.send({ type: 'socket.connected', at: now(run) });
    expect(run.transmitted).toEqual([
      { event: 'one', payload: 0 },
      { event: 'two', payload: 1 },
      { event: 'three', payload: 2 },
    ]);
    expect(run.spies.transmit).toHaveBeenCalledTimes(3);
    expect(context(run).outbox).toEqual([]);
  });

  it('is held while resuming and flushed after session.resumed', () => {
    const run = startDropped({ resumeToken: 'tok', timings: noJitter });
    run.actor.send({ type: 'send', event: 'before', payload: null, at: 0 });
    run.clock.increment(1000);
    run.actor.send({ type: 'socket.connected', at: 1000 });
    run.actor.send({ type: 'send', event: 'during', payload: null, at: 1001 });
    expect(run.transmitted).toEqual([]);
    run.actor.send({ type: 'session.resumed', at: 1002 });
    expect(run.transmitted.map((m) => m.event)).toEqual(['before', 'during']);
  });

  it('the first connection flushes what was queued while idle', () => {
    const run = start();
    run.actor.send({ type: 'send', event: 'early', payload: 1, at: 0 });
    connect(run);
    expect(run.transmitted).toEqual([{ event: 'early', payload: 1 }]);
  });

  it('holds at most outboxLimit messages, dropping the oldest first', () => {
    const run = start();
    for (let i = 0; i < 105; i++) run.actor.send({ type: 'send', event: `m${i}`, payload: i, at: i });
    expect(context(run).outbox).toHaveLength(100);
    expect(context(run).outbox[0]!.event).toBe('m5');
    expect(context(run).outbox.at(-1)!.event).toBe('m104');
    expect(context(run).outboxDropped).toBe(5);
    connect(run);
    expect(run.transmitted.map((m) => m.payload)).toEqual(Array.from({ length: 100 }, (_, i) => i + 5));
  });

  it('outboxLimit comes from input', () => {
    const run = start({ outboxLimit: 2 });
    for (let i = 0; i < 4; i++) run.actor.send({ type: 'send', event: 'm', payload: i, at: i });
    expect(context(run).outbox.map((m) => m.payload)).toEqual([2, 3]);
    expect(context(run).outboxDropped).toBe(2);
  });

  it('skips messages whose expiresAt is before the event that made it ready', () => {
    const run = startDropped({ timings: noJitter });
    run.actor.send({ type: 'send', event: 'expired', payload: 1, at: 0, ttlMs: 500 });
    run.actor.send({ type: 'send', event: 'exactly-now', payload: 2, at: 0, ttlMs: 1000 });
    run.actor.send({ type: 'send', event: 'forever', payload: 3, at: 0 });
    run.actor.send({ type: 'send', event: 'later', payload: 4, at: 0, ttlMs: 5000 });
    run.clock.increment(1000);
    run.actor.send({ type: 'socket.connected', at: 1000 });
    expect(run.transmitted.map((m) => m.event)).toEqual(['exactly-now', 'forever', 'later']);
    expect(context(run).outbox).toEqual([]);
    expect(context(run).outboxExpired).toBe(1);
  });
});

describe('signaling: context', () => {
  it('stays JSON-serializable', () => {
    const run = start({ resumeToken: 'x' });
    run.actor.send({ type: 'send', event: 'a', payload: { deep: [1, 2] }, at: 0, ttlMs: 10 });
    connect(run);
    dropConnection(run);
    const ctx = context(run);
    expect(JSON.parse(JSON.stringify(ctx))).toEqual(ctx);
  });

  it('input defaults follow DESIGN', () => {
    const run = start();
    expect(context(run)).toMatchObject({
      resumeToken: null,
      timings: { initialDelay: 1000, maxDelay: 30000, maxJitter: 500 },
      maxAttempts: null,
      outboxLimit: 100,
      attempts: 0,
      outbox: [],
      outboxDropped: 0,
      lastError: null,
    });
  });
});

describe('signaling: a socket under suspicion', () => {
  const T = defaultSignalingTimings;

  it('pings when told the path may be dead, holds messages meanwhile, and sends them when the ping comes back', () => {
    const run = start();
    connect(run);
    run.actor.send({ type: 'link.suspect' });
    expect(value(run)).toEqual({ connected: { ready: 'checking' } });
    expect(run.spies.sendLivenessPing).toHaveBeenCalledTimes(1);
    // Still ready: a suspicion that proves wrong must not look like a lost socket to the call.
    expect(run.actor.getSnapshot().matches({ connected: 'ready' })).toBe(true);
    run.actor.send({ type: 'send', event: 'call.media', payload: { n: 1 }, at: now(run) });
    expect(run.transmitted).toEqual([]);
    expect(context(run).outbox.map((m) => m.payload)).toEqual([{ n: 1 }]);
    // A second suspicion while one ping is out sends no second ping.
    run.actor.send({ type: 'link.suspect' });
    expect(run.spies.sendLivenessPing).toHaveBeenCalledTimes(1);
    run.actor.send({ type: 'socket.alive' });
    expect(value(run)).toEqual({ connected: { ready: 'trusted' } });
    expect(run.transmitted).toEqual([{ event: 'call.media', payload: { n: 1 } }]);
    expect(context(run).outbox).toEqual([]);
    run.clock.increment(T.livenessTimeout * 2);
    expect(run.spies.abandonSocket).not.toHaveBeenCalled();
  });

  it('abandons a socket whose ping does not come back within livenessTimeout and reconnects at once, without a backoff', () => {
    const run = start();
    connect(run);
    run.actor.send({ type: 'session.ready', resumeToken: 'tok' });
    run.actor.send({ type: 'link.suspect' });
    run.actor.send({ type: 'send', event: 'signal.candidate', payload: { c: 1 }, at: now(run) });
    run.clock.increment(T.livenessTimeout);
    expect(value(run)).toBe('abandoning');
    expect(run.spies.abandonSocket).toHaveBeenCalledTimes(1);
    expect(run.actor.getSnapshot().matches({ connected: 'ready' })).toBe(false);
    const opened = run.spies.openSocket.mock.calls.length;
    run.actor.send({ type: 'socket.closed', reason: 'transport', at: now(run) });
    expect(value(run)).toEqual({ reconnecting: 'connecting' });
    expect(run.spies.openSocket.mock.calls.length).toBe(opened + 1);
    expect(scheduled(run)).toEqual([]);
    run.actor.send({ type: 'socket.connected', at: now(run) });
    expect(value(run)).toEqual({ connected: 'resuming' });
    expect(run.emitted.at(-1)).toEqual({ type: 'reconnected', attempts: 1 });
    // What was sent while the socket was in doubt goes out on the new one, not into the dead one.
    expect(run.transmitted).toEqual([]);
    run.actor.send({ type: 'session.resumed', at: now(run) });
    expect(run.transmitted).toEqual([{ event: 'signal.candidate', payload: { c: 1 } }]);
  });

  it('ignores a suspicion while not ready, and a late pong changes nothing once the socket was abandoned', () => {
    const run = start();
    run.actor.send({ type: 'link.suspect' });
    expect(value(run)).toBe('idle');
    connect(run);
    dropConnection(run);
    run.actor.send({ type: 'link.suspect' });
    expect(value(run)).toEqual({ reconnecting: 'waiting' });
    expect(run.spies.sendLivenessPing).not.toHaveBeenCalled();

    const other = start();
    connect(other);
    other.actor.send({ type: 'link.suspect' });
    other.clock.increment(T.livenessTimeout);
    other.actor.send({ type: 'socket.alive' });
    expect(value(other)).toBe('abandoning');
    other.actor.send({ type: 'disconnect' });
    expect(value(other)).toBe('disconnected');
    expect(other.spies.closeSocket).toHaveBeenCalledTimes(1);
  });
});
