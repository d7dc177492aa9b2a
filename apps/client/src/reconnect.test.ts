/**
 * Losing the signaling socket mid-call, for real: the server restarts, or drops a socket's transport.
 * The signaling machine's backoff brings the socket back, the handshake's resume token takes the same
 * call up again, and what was sent meanwhile leaves the outbox in order. The peer connections are not
 * touched, so the media keeps flowing peer to peer throughout.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from 'xstate';
import type { SignalingEmitted } from '@callchart/machines';
import { sleep, startTestServer, visitorToken, type TestServer } from '../../../test/support/server.ts';
import { FAST_SIGNALING, Recorder, connectCall, mediaState, recordedRtc, type CallPair } from '../../../test/support/callFixture.ts';
import { createVisitorClient, type VisitorClient } from './visitorClient.ts';

let t: TestServer | null = null;
let pair: CallPair | null = null;
let lone: VisitorClient | null = null;
let readAgain: (() => void) | null = null;

afterEach(async () => {
  readAgain?.();
  readAgain = null;
  pair?.stop();
  lone?.stop();
  pair = null;
  lone = null;
  await t?.close();
  t = null;
});

/** Drops the server side of every socket in `room` without a goodbye, as a dead network path would. */
function dropTransport(server: TestServer, room: string): void {
  for (const socket of server.server.io.of('/').sockets.values()) {
    if (socket.rooms.has(room)) socket.conn.close();
  }
}

const ready = { connected: 'ready' } as const;

/**
 * The server stops reading this person's sockets: what they send is never seen, though they stay
 * connected. Returns the undo, without which the server could not close them (their close is never read).
 */
function stopReading(server: TestServer, room: string): () => void {
  const paused: { pause(): void; resume(): void }[] = [];
  for (const socket of server.server.io.of('/').sockets.values()) {
    if (!socket.rooms.has(room)) continue;
    const stream = (socket.conn.transport as unknown as { socket?: { _socket?: { pause(): void; resume(): void } } }).socket?._socket;
    stream?.pause();
    if (stream) paused.push(stream);
  }
  return () => {
    for (const stream of paused) stream.resume();
  };
}

describe('signaling reconnection', () => {
  it('reconnects with backoff after a server restart, resumes the same call and flushes the outbox in order', async () => {
    // Long enough that the paused call waits for both legs however slow the restart is: the agent's grace
    // runs from the moment the old server went, as the reconnection timeout does.
    t = await startTestServer({ RECONNECTION_TIMEOUT_MS: '20000', AGENT_GRACE_MS: '20000', RESUME_WINDOW_MS: '20000' });
    pair = await connectCall(t);
    const { agent, visitor, callId } = pair;
    const scheduled: Extract<SignalingEmitted, { type: 'reconnect.scheduled' }>[] = [];
    visitor.signaling.on('reconnect.scheduled', (event) => scheduled.push(event));

    const restarted = t.restart();
    await waitFor(visitor.signaling, (s) => s.matches('reconnecting'));
    expect(visitor.call.getSnapshot().context.signalingUp).toBe(false);
    // Reports made while the socket is down wait in the outbox.
    const at = Date.now();
    const queued = [
      { event: 'call.telemetry', payload: { callId, attempt: 1, at, durationMs: 120, outcome: 'failed' } },
      { event: 'call.telemetry', payload: { callId, attempt: 2, at: at + 1, durationMs: 80, outcome: 'recovered' } },
    ] as const;
    for (const { event, payload } of queued) visitor.signaling.send({ type: 'send', event, payload, at: Date.now() });
    expect(visitor.signaling.getSnapshot().context.outbox.map((m) => m.payload)).toEqual(queued.map((m) => m.payload));
    const sentBefore = pair.visitorLog.transmitted().length;
    await restarted;

    await Promise.all([waitFor(visitor.signaling, (s) => s.matches(ready)), waitFor(agent.signaling, (s) => s.matches(ready))]);
    expect(pair.visitorLog.received('session.resumed')).toHaveLength(1);
    expect(pair.visitorLog.received('session.expired')).toEqual([]);
    // The machine's backoff did the retrying: numbered attempts, each delay within the policy's bounds.
    expect(scheduled.length).toBeGreaterThanOrEqual(1);
    scheduled.forEach(({ attempt, delayMs }, index) => {
      expect(attempt).toBe(index + 1);
      const base = Math.min(50 * 2 ** index, 400);
      expect(delayMs).toBeGreaterThanOrEqual(base);
      expect(delayMs).toBeLessThan(base + 50);
    });
    // Flushed first and in order, before anything sent after the resume.
    expect(pair.visitorLog.transmitted().slice(sentBefore, sentBefore + 2)).toEqual(queued);
    expect(visitor.signaling.getSnapshot().context.outbox).toEqual([]);

    // The same call went on: the server took both legs back, the peer connections never dropped.
    await waitFor(visitor.call, (s) => s.context.signalingUp);
    expect(visitor.call.getSnapshot().matches('inCall')).toBe(true);
    expect(agent.call.getSnapshot().matches('inCall')).toBe(true);
    expect(visitor.call.getSnapshot().context.callId).toBe(callId);
    expect(mediaState(visitor)).toBe('connected');
    expect(pair.visitorRtc.created[0]!.connectionState).toBe('connected');
    const flushed = async () => (await t!.server.store.telemetry.forCall(callId)).filter((r) => r.kind === 'reconnection-attempt');
    await expect.poll(flushed).toHaveLength(2);
    expect((await flushed()).map((r) => r.kind === 'reconnection-attempt' && [r.leg, r.outcome])).toEqual([
      ['visitor', 'failed'],
      ['visitor', 'recovered'],
    ]);
    await expect.poll(() => JSON.stringify(t!.server.switchboard.callSnapshot(callId)?.value)).toContain('"live"');

    visitor.call.send({ type: 'hangup' });
    await waitFor(agent.call, (s) => s.matches('available'));
    expect(agent.call.getSnapshot().context.lastCallEnd).toMatchObject({ callId, reason: 'visitor-hangup' });
  });

  it('retries a dropped transport on its own schedule and resumes the call; the peer sees a pause and a resume', async () => {
    t = await startTestServer({ RECONNECTION_TIMEOUT_MS: '20000', RESUME_WINDOW_MS: '20000' });
    pair = await connectCall(t);
    const { agent, visitor, callId } = pair;

    dropTransport(t, 'agent:ada');
    await waitFor(agent.signaling, (s) => s.matches('reconnecting'));
    await waitFor(agent.signaling, (s) => s.matches(ready));
    expect(pair.agentLog.received('session.resumed')).toHaveLength(1);
    expect(agent.call.getSnapshot().matches('inCall')).toBe(true);
    expect(agent.call.getSnapshot().context.callId).toBe(callId);
    // The visitor was told the agent dropped out, and that the agent is back.
    await waitFor(visitor.call, (s) => s.matches({ inCall: { peer: 'present' } }) && pair!.visitorLog.received('peer.back').length > 0);
    // Told when the pause started and on each change of its legs while the agent was away.
    expect(pair.visitorLog.received('peer.away').length).toBeGreaterThan(0);
    expect(mediaState(agent)).toBe('connected');
  });

  // Fake: a server that stops reading the socket stands in for a path that died under it; on loopback the
  // path cannot die for one socket alone (the browser suite changes a real address).
  it('abandons a socket that does not answer its ping within livenessTimeout once media is in doubt, and resumes at once', async () => {
    t = await startTestServer({ RECONNECTION_TIMEOUT_MS: '20000', AGENT_GRACE_MS: '20000', RESUME_WINDOW_MS: '20000' });
    pair = await connectCall(t);
    const { visitor, callId } = pair;
    const scheduled: unknown[] = [];
    visitor.signaling.on('reconnect.scheduled', (event) => scheduled.push(event));

    readAgain = stopReading(t, `visitor:${pair.visitorId}`);
    const suspectedAt = Date.now();
    visitor.signaling.send({ type: 'link.suspect' });
    expect(visitor.signaling.getSnapshot().value).toEqual({ connected: { ready: 'checking' } });
    // Sent while in doubt: held, and delivered over the next socket instead of the dead one.
    visitor.signaling.send({ type: 'send', event: 'call.media', payload: { callId, state: 'connected' }, at: Date.now() });
    await waitFor(visitor.signaling, (s) => s.matches('abandoning') || s.matches('reconnecting'), { timeout: 5_000 });
    const abandonedAt = Date.now();
    await waitFor(visitor.signaling, (s) => s.matches({ connected: { ready: 'trusted' } }), { timeout: 5_000 });
    expect(abandonedAt - suspectedAt).toBeGreaterThanOrEqual(900);
    expect(abandonedAt - suspectedAt).toBeLessThan(2_500);
    // At once, not after a backoff: the server answers everyone else.
    expect(scheduled).toEqual([]);
    expect(pair.visitorLog.received('session.resumed')).toHaveLength(1);
    expect(visitor.call.getSnapshot().context.callId).toBe(callId);
    expect(visitor.signaling.getSnapshot().context.outbox).toEqual([]);
  });

  it('trusts a socket that answers its ping, and sends what it held meanwhile', async () => {
    t = await startTestServer();
    pair = await connectCall(t);
    const { visitor, callId } = pair;
    const sentBefore = pair.visitorLog.transmitted().length;
    visitor.signaling.send({ type: 'link.suspect' });
    visitor.signaling.send({ type: 'send', event: 'call.media', payload: { callId, state: 'connected' }, at: Date.now() });
    await waitFor(visitor.signaling, (s) => s.matches({ connected: { ready: 'trusted' } }), { timeout: 2_000 });
    expect(pair.visitorLog.transmitted().slice(sentBefore)).toEqual([{ event: 'call.media', payload: { callId, state: 'connected' } }]);
    expect(pair.visitorLog.received('session.resumed')).toEqual([]);
  });

  it('treats a server-side disconnect as a clean close and does not retry', async () => {
    t = await startTestServer();
    const visitorRtc = recordedRtc();
    const log = new Recorder();
    const session = await visitorToken(t.url);
    lone = createVisitorClient({ url: t.url, token: session.token, pool: 'support', rtc: visitorRtc.rtc, inspect: log.inspect, signaling: FAST_SIGNALING });
    await waitFor(lone.signaling, (s) => s.matches(ready) && s.context.resumeToken !== null);

    t.server.io.in(`visitor:${session.visitorId}`).disconnectSockets(true);
    await waitFor(lone.signaling, (s) => s.matches('disconnected'));
    await sleep(300);
    expect(lone.signaling.getSnapshot().value).toBe('disconnected');
    expect(lone.signaling.getSnapshot().context.attempts).toBe(0);
  });

  it('makes no attempt while the device is offline and connects at once when it is back online', async () => {
    t = await startTestServer();
    const network = new EventTarget();
    const log = new Recorder();
    const session = await visitorToken(t.url);
    // A long first delay: only `online` can explain a quick reconnect.
    lone = createVisitorClient({
      url: t.url,
      token: session.token,
      pool: 'support',
      rtc: recordedRtc().rtc,
      inspect: log.inspect,
      network,
      signaling: { timings: { initialDelay: 30_000, maxJitter: 0 } },
    });
    await waitFor(lone.signaling, (s) => s.matches(ready) && s.context.resumeToken !== null);

    network.dispatchEvent(new Event('offline'));
    dropTransport(t, `visitor:${session.visitorId}`);
    await waitFor(lone.signaling, (s) => s.matches({ reconnecting: 'offline' }));
    await sleep(300);
    expect(lone.signaling.getSnapshot().matches({ reconnecting: 'offline' })).toBe(true);
    expect(lone.signaling.getSnapshot().context.attempts).toBe(0);

    const back = Date.now();
    network.dispatchEvent(new Event('online'));
    await waitFor(lone.signaling, (s) => s.matches(ready));
    expect(Date.now() - back).toBeLessThan(5_000);
    expect(log.received('session.resumed')).toHaveLength(1);
  });

  it('stops for good on bad credentials', async () => {
    t = await startTestServer();
    lone = createVisitorClient({ url: t.url, token: 'not-a-valid-token', pool: 'support', rtc: recordedRtc().rtc, signaling: FAST_SIGNALING });
    await waitFor(lone.signaling, (s) => s.status === 'done');
    expect(lone.signaling.getSnapshot().value).toBe('unauthorized');
    expect(lone.signaling.getSnapshot().context.lastError).toEqual({ code: 'unauthorized', attempts: 0 });
  });
});
