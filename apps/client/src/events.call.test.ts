/**
 * The clients' `on` events through a whole call against the real server, with real sockets and real
 * RTCPeerConnections (`@roamhq/wrtc`) carrying a real (frameless) video track each way.
 */
import { createRequire } from 'node:module';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { waitFor } from 'xstate';
import { agentToken, startTestServer, visitorToken, type TestServer } from '../../../test/support/server.ts';
import { createAgentClient, type AgentClient } from './agentClient.ts';
import { FAST_SIGNALING } from '../../../test/support/callFixture.ts';
import type { ClientError } from './errors.ts';
import type { CallClientEventMap, ClientEvents } from './events.ts';
import type { RtcEnvironment } from './mediaSession.ts';
import { createVisitorClient, type VisitorClient } from './visitorClient.ts';
import type { VisitorClientEvents } from './visitorEvents.ts';
import type { AgentClientEvents } from './agentEvents.ts';

const wrtc = createRequire(import.meta.url)('@roamhq/wrtc') as typeof import('@roamhq/wrtc');

/** wrtc's RTCPeerConnection, and a camera that is one video track without frames. */
const rtc: RtcEnvironment = {
  RTCPeerConnection: wrtc.RTCPeerConnection as unknown as RtcEnvironment['RTCPeerConnection'],
  getUserMedia: async () => new wrtc.MediaStream([new wrtc.nonstandard.RTCVideoSource().createTrack()]) as unknown as MediaStream,
};

/** Every event of every kind a client emits, in order, from the moment it is created. */
function record<M extends CallClientEventMap<unknown, unknown, unknown>>(client: ClientEvents<M>) {
  const seen = { status: [], state: [], localStream: [], remoteStream: [], error: [], ended: [] } as unknown as { [E in keyof M]: M[E][] };
  for (const event of Object.keys(seen) as (keyof M)[]) {
    client.on(event, (payload) => void seen[event].push(payload));
  }
  return seen;
}

const WAIT = { timeout: 10_000 };

/** Polls until `condition` holds: what it reads (recorded events, the server's sockets) is no actor's snapshot. */
const until = (condition: () => boolean) =>
  vi.waitFor(() => expect(condition(), condition.toString()).toBe(true), { timeout: 10_000, interval: 20 });

let t: TestServer;
let clients: (VisitorClient | AgentClient)[] = [];
beforeEach(async () => {
  t = await startTestServer();
});
afterEach(async () => {
  for (const client of clients) client.stop();
  clients = [];
  await t.close();
});

// Each client is recorded from the moment it is created: its socket may be up before the next line runs.
async function visitorClient(onError?: (error: ClientError) => void) {
  const { token } = await visitorToken(t.url);
  const client = createVisitorClient({ url: t.url, token, pool: 'support', rtc, signaling: FAST_SIGNALING, ...(onError ? { onError } : {}) });
  clients.push(client);
  return { client, seen: record<VisitorClientEvents>(client) };
}

async function agentClient() {
  const token = await agentToken(t.url, 'ada');
  const client = createAgentClient({ url: t.url, token, rtc, signaling: FAST_SIGNALING });
  clients.push(client);
  return { client, seen: record<AgentClientEvents>(client) };
}

/** The states a sequence of statuses went through, each once per stay. */
const stays = (statuses: { state: string }[]) => statuses.map((s) => s.state).filter((state, i, all) => state !== all[i - 1]);

describe('the clients’ events', () => {
  it('tell the status, the snapshots, the streams and the end of a call, each change once, and nothing after stop()', async () => {
    const { client: visitor, seen: v } = await visitorClient();
    const { client: agent, seen: a } = await agentClient();
    // A second listener, added late and removed early, hears exactly what was told in between.
    const heardBefore = v.status.length;
    const late: unknown[] = [];
    const stopLate = visitor.on('status', (status) => late.push(status));

    await until(() => v.status.some((s) => s.connection === 'ready'));
    await until(() => a.status.some((s) => s.connection === 'ready'));
    expect(v.status[0]).toMatchObject({ connection: 'ready', state: 'idle', view: { controls: ['call'] } });
    expect(a.status[0]).toMatchObject({ connection: 'ready', state: 'offline', view: { controls: ['login'] } });
    stopLate();
    const heardWhileLate = v.status.length;

    agent.call.send({ type: 'login' });
    visitor.call.send({ type: 'call.request' });
    await until(() => a.status.at(-1)?.state === 'ringing');
    expect(a.status.at(-1)?.view.ringing).toMatchObject({ visitorName: 'Vera Visitor' });
    agent.call.send({ type: 'accept' });
    await until(() => v.status.at(-1)?.state === 'inCall' && a.status.at(-1)?.state === 'inCall');
    // Both cameras are open and each side has the other's stream.
    await until(() => v.remoteStream.length > 0 && a.remoteStream.length > 0);
    expect(v.localStream).toHaveLength(1);
    expect(v.localStream[0]).toBe(visitor.localStream);
    expect(v.remoteStream[0]).toBe(visitor.remoteStream);
    expect(v.remoteStream[0]!.getVideoTracks()).toHaveLength(1);
    const callId = visitor.call.getSnapshot().context.callId;

    visitor.call.send({ type: 'hangup' });
    await until(() => a.ended.length > 0);

    expect(v.ended).toEqual([{ reason: 'hangup', callId }]);
    expect(a.ended).toEqual([{ requestId: expect.any(String), callId, visitorName: 'Vera Visitor', reason: 'visitor-hangup' }]);
    expect(stays(v.status)).toEqual(['idle', 'waiting', 'connecting', 'inCall', 'ended']);
    expect(stays(a.status)).toEqual(['offline', 'available', 'ringing', 'connecting', 'inCall', 'available']);
    expect(v.status.find((s) => s.state === 'waiting')?.view).toMatchObject({ controls: ['cancel'], showVideo: false });
    expect(v.status.find((s) => s.state === 'inCall')?.view).toMatchObject({ controls: ['mute', 'hangup'], showVideo: true });
    expect(v.status.at(-1)).toMatchObject({ connection: 'ready', state: 'ended', view: { controls: ['call'], showVideo: false } });
    // A status is told when it changes, never twice in a row the same.
    for (const statuses of [v.status, a.status]) {
      statuses.forEach((status, i) => i > 0 && expect(status).not.toEqual(statuses[i - 1]));
    }
    // `state` is every snapshot of the call actor, the last one being the one it has now.
    expect(v.state.at(-1)).toBe(visitor.call.getSnapshot());
    expect(new Set(v.state).size).toBe(v.state.length);
    // Hanging up closed the media: the streams went back to null.
    expect(v.localStream.at(-1)).toBeNull();
    expect(v.remoteStream.at(-1)).toBeNull();
    expect(late).toEqual(v.status.slice(heardBefore, heardWhileLate));
    // The status read at any moment is the last one told.
    expect(visitor.status).toEqual(v.status.at(-1));
    expect([...v.error, ...a.error]).toEqual([]);

    const counts = () => Object.values(v).map((list) => list.length);
    const before = counts();
    visitor.stop();
    // The socket closed and the actors stopped: none of it reaches a listener.
    await until(() => t.server.io.of('/').sockets.size === 1);
    expect(counts()).toEqual(before);
  });

  it('tell a request the server refused as an error, to the listeners and to the onError option', async () => {
    const fromOption: ClientError[] = [];
    const { client: visitor, seen: v } = await visitorClient((error) => fromOption.push(error));
    await waitFor(visitor.signaling, (s) => s.matches({ connected: 'ready' }), WAIT);

    // A pool name the protocol does not allow: the server answers `ok: false`.
    visitor.call.send({ type: 'call.request', pool: 'not a pool!' });
    await until(() => v.error.length > 0);

    expect(v.error).toHaveLength(1);
    expect(v.error[0]).toMatchObject({ name: 'ClientError', code: 'request-rejected', details: { event: 'visitor.request' } });
    expect(fromOption).toEqual(v.error);
  });

  it('keep quiet about a media report that raced the end of its call, and tell any other refusal of it', async () => {
    const { client: visitor, seen: v } = await visitorClient();
    await waitFor(visitor.signaling, (s) => s.matches({ connected: 'ready' }), WAIT);

    // The server knows no such call any more (it ended while the report was on its way): `not-found`.
    visitor.signaling.send({ type: 'send', event: 'call.media', payload: { callId: 'call_ended-meanwhile', state: 'connected' }, at: Date.now() });
    visitor.signaling.send({ type: 'send', event: 'call.telemetry', payload: { callId: 'call_ended-meanwhile', attempt: 1, at: Date.now(), durationMs: 5, outcome: 'recovered' }, at: Date.now() });
    // A report that is wrong in itself is still an error.
    visitor.signaling.send({ type: 'send', event: 'call.media', payload: { callId: 'call_ended-meanwhile', state: 'sideways' }, at: Date.now() });
    await until(() => v.error.length > 0);

    expect(v.error).toHaveLength(1);
    expect(v.error[0]).toMatchObject({ code: 'request-rejected', details: { event: 'call.media', protocolError: { code: 'invalid-payload' } } });
  });
});
