import { afterEach, describe, expect, it } from 'vitest';
import { io, type Socket } from 'socket.io-client';
import { REDACTED, type ActorView, type TimelineEntry } from '../../server/src/inspection.ts';
import type { LiveRequest } from '../../server/src/switchboard/index.ts';
import { SAMPLE_SDP, TestClient, agentToken, startTestServer, visitorAndAgents, type TestServer } from '../support/server.ts';

let t: TestServer | undefined;
const sockets: { close(): void }[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  await t?.close();
  t = undefined;
});

/** An `/inspect` connection that records what it is sent. */
class InspectClient {
  readonly events: { event: string; payload: unknown }[] = [];
  private waiters: { event: string; match: (payload: unknown) => boolean; resolve: (payload: unknown) => void }[] = [];
  constructor(readonly socket: Socket) {
    socket.onAny((event: string, payload: unknown) => {
      const waiter = this.waiters.find((w) => w.event === event && w.match(payload));
      if (waiter) {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        waiter.resolve(payload);
      } else {
        this.events.push({ event, payload });
      }
    });
  }

  next<T>(event: string, match: (payload: T) => boolean = () => true): Promise<T> {
    const index = this.events.findIndex((e) => e.event === event && match(e.payload as T));
    if (index >= 0) return Promise.resolve(this.events.splice(index, 1)[0]!.payload as T);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${event}`)), 5_000);
      this.waiters.push({
        event,
        match: match as (payload: unknown) => boolean,
        resolve: (payload) => {
          clearTimeout(timer);
          resolve(payload as T);
        },
      });
    });
  }

  emit(event: string, payload: unknown): Promise<{ ok: boolean } & Record<string, unknown>> {
    return this.socket.timeout(5_000).emitWithAck(event, payload);
  }

  close(): void {
    this.socket.disconnect();
  }
}

function inspectSocket(url: string, token: string): Socket {
  return io(`${url}/inspect`, { auth: { token }, reconnection: false, transports: ['websocket'], forceNew: true });
}

async function connectInspector(url: string): Promise<InspectClient> {
  const client = new InspectClient(inspectSocket(url, await agentToken(url, 'inspector')));
  sockets.push(client);
  await new Promise<void>((resolve, reject) => {
    client.socket.once('connect', () => resolve());
    client.socket.once('connect_error', reject);
  });
  return client;
}

async function refusal(url: string, token: string): Promise<string> {
  const socket = inspectSocket(url, token);
  sockets.push(socket);
  return new Promise<string>((resolve, reject) => {
    socket.once('connect_error', (error) => resolve(error.message));
    socket.once('connect', () => reject(new Error('connected, but should have been refused')));
  });
}

async function placeCall(visitor: TestClient, agent: TestClient): Promise<{ requestId: string; callId: string }> {
  const requested = await visitor.emit('visitor.request', { pool: 'support' });
  const { requestId } = requested as { requestId: string };
  await agent.next('agent.ring', (r) => r.requestId === requestId);
  expect(await agent.emit('agent.accept', { requestId })).toEqual({ ok: true });
  const { callId } = await agent.next('call.accepted');
  await visitor.next('call.accepted', (c) => c.callId === callId);
  expect(await agent.emit('call.media', { callId, state: 'connected' })).toEqual({ ok: true });
  expect(await visitor.emit('call.media', { callId, state: 'connected' })).toEqual({ ok: true });
  return { requestId, callId };
}

const session = (entry: TimelineEntry) => (entry.state as { active?: string }).active;

/** Routing's `connected` state, whichever of its substates. */
const isConnected = (state: unknown) => typeof state === 'object' && state !== null && 'connected' in state;

describe('the /inspect namespace', () => {
  it('lists a live call, replays its timeline mid-call, streams its pause and resume, and serves its history once ended', async () => {
    t = await startTestServer();
    const { agents, visitor } = await visitorAndAgents(t.url, ['ada']);
    sockets.push(agents.ada, visitor);
    const { requestId, callId } = await placeCall(visitor, agents.ada);

    const inspector = await connectInspector(t.url);
    const { requests } = await inspector.next<{ requests: LiveRequest[] }>('inspect.calls');
    expect(requests).toEqual([
      expect.objectContaining({ requestId, pool: 'support', visitorName: 'Vera Visitor', agentName: 'Ada Lovelace', state: { connected: 'agentPresent' }, call: expect.objectContaining({ callId }) }),
    ]);

    expect(await inspector.emit('inspect.subscribe', { requestId })).toEqual({ ok: true });
    const replay = await inspector.next<{ requestId: string; entries: TimelineEntry[]; actors: ActorView[] }>('inspect.replay');
    expect(replay.requestId).toBe(requestId);
    const routing = replay.entries.filter((entry) => entry.kind === 'routing');
    expect(routing.map((entry) => entry.state)).toContain('ringing');
    expect(routing.at(-1)).toMatchObject({ actorId: `routing:${requestId}`, side: 'server', state: { connected: 'agentPresent' } });
    expect(replay.entries.some((entry) => entry.kind === 'callSession' && entry.callId === callId)).toBe(true);
    expect(replay.actors.map((actor) => actor.kind).sort()).toEqual(['callSession', 'routing']);

    await agents.ada.emit('call.media', { callId, state: 'reconnecting' });
    const paused = await inspector.next<TimelineEntry>('inspect.entry', (entry) => entry.kind === 'callSession' && session(entry) === 'paused');
    expect(paused).toMatchObject({ callId, requestId, actorId: `callSession:${callId}`, event: { type: 'leg.mediaReconnecting', leg: 'agent' } });
    await agents.ada.emit('call.media', { callId, state: 'connected' });
    const resumed = await inspector.next<TimelineEntry>('inspect.entry', (entry) => entry.kind === 'callSession' && session(entry) === 'live');
    expect(resumed.event).toMatchObject({ type: 'leg.mediaConnected', leg: 'agent' });

    expect(await visitor.emit('call.hangup', { callId })).toEqual({ ok: true });
    await agents.ada.next('call.ended');
    const history = await inspector.emit('inspect.history', { callId });
    expect(history).toMatchObject({ ok: true, call: { id: callId, requestId, state: 'ended', endReason: 'hangup' } });
    const states = (history.entries as TimelineEntry[]).filter((entry) => entry.kind === 'callSession').map((entry) => entry.state);
    expect(states).toContain('active.paused');
    expect(states.at(-1)).toBe('ended');
    // The request's routing is part of the story: how the call came to be, and that it ended.
    const routingStates = (history.entries as TimelineEntry[]).filter((entry) => entry.kind === 'routing').map((entry) => entry.state);
    expect(routingStates).toEqual(expect.arrayContaining(['ringing', 'connected.agentPresent', 'done']));
  });

  it('pushes the list of live requests to open inspectors as requests start, connect and end', async () => {
    t = await startTestServer();
    const inspector = await connectInspector(t.url);
    expect(await inspector.next<{ requests: LiveRequest[] }>('inspect.calls')).toEqual({ requests: [], clientInspection: false });
    const { agents, visitor } = await visitorAndAgents(t.url, ['ada']);
    sockets.push(agents.ada, visitor);
    const { requestId, callId } = await placeCall(visitor, agents.ada);
    await inspector.next<{ requests: LiveRequest[] }>('inspect.calls', ({ requests }) => requests.some((r) => r.requestId === requestId && r.call?.callId === callId && isConnected(r.state)));
    expect(await visitor.emit('call.hangup', { callId })).toEqual({ ok: true });
    await inspector.next<{ requests: LiveRequest[] }>('inspect.calls', ({ requests }) => requests.length === 0);
  });

  it('refuses agents without the inspector role and visitors, and names a bad field', async () => {
    t = await startTestServer();
    expect(await refusal(t.url, await agentToken(t.url, 'ada'))).toBe('forbidden');
    const { visitor, visitorTokenValue } = await visitorAndAgents(t.url, []);
    sockets.push(visitor);
    expect(await refusal(t.url, visitorTokenValue)).toBe('forbidden');
    expect(await refusal(t.url, 'not-a-token')).toBe('unauthorized');

    const inspector = await connectInspector(t.url);
    expect(await inspector.emit('inspect.subscribe', { requestId: 'bad id!' })).toMatchObject({
      ok: false,
      error: { code: 'invalid-payload', field: 'requestId' },
    });
    expect(await inspector.emit('inspect.history', { callId: 'call_missing' })).toMatchObject({ ok: false, error: { code: 'not-found' } });
  });

  it('answers not-found to a subscription of a request that is unknown or has ended, and replays nothing', async () => {
    t = await startTestServer();
    const inspector = await connectInspector(t.url);
    await inspector.next('inspect.calls');
    expect(await inspector.emit('inspect.subscribe', { requestId: 'req_never-made' })).toMatchObject({
      ok: false,
      error: { code: 'not-found', field: 'requestId' },
    });

    const { agents, visitor } = await visitorAndAgents(t.url, ['ada']);
    sockets.push(agents.ada, visitor);
    const { requestId, callId } = await placeCall(visitor, agents.ada);
    expect(await visitor.emit('call.hangup', { callId })).toEqual({ ok: true });
    await inspector.next<{ requests: LiveRequest[] }>('inspect.calls', ({ requests }) => requests.length === 0);
    expect(await inspector.emit('inspect.subscribe', { requestId })).toMatchObject({ ok: false, error: { code: 'not-found', field: 'requestId' } });
    // Its story is still there, where the refusal points.
    expect(await inspector.emit('inspect.history', { callId })).toMatchObject({ ok: true, call: { requestId } });
    expect(inspector.events.some((e) => e.event === 'inspect.replay')).toBe(false);
  });
});

describe('client inspection (inspect.client)', () => {
  const entry = { at: 1_700_000_000_000, event: { type: 'signal.offer', sdp: SAMPLE_SDP }, state: 'connecting', context: { attempts: 0 } };

  it('is refused while INSPECT_CLIENTS is off', async () => {
    t = await startTestServer();
    const { agents, visitor } = await visitorAndAgents(t.url, ['ada']);
    sockets.push(agents.ada, visitor);
    const { callId } = await placeCall(visitor, agents.ada);
    const reply = await visitor.emit('inspect.client', { callId, actor: 'peerConnection', entries: [entry] });
    expect(reply).toMatchObject({ ok: false, error: { code: 'forbidden', message: expect.stringContaining('INSPECT_CLIENTS') } });
  });

  it('adds a leg’s own entries, sanitized, to its call’s timeline when on, and refuses another call', async () => {
    t = await startTestServer({ INSPECT_CLIENTS: 'on' });
    const { agents, visitor } = await visitorAndAgents(t.url, ['ada', 'grace']);
    sockets.push(agents.ada, agents.grace, visitor);
    const { requestId, callId } = await placeCall(visitor, agents.ada);
    const inspector = await connectInspector(t.url);
    await inspector.emit('inspect.subscribe', { requestId });
    await inspector.next('inspect.replay');

    expect(await visitor.emit('inspect.client', { callId, actor: 'peerConnection', entries: [entry] })).toEqual({ ok: true });
    const live = await inspector.next<TimelineEntry>('inspect.entry', (e) => e.side === 'visitor');
    expect(live).toMatchObject({
      requestId,
      callId,
      actorId: 'visitor:peerConnection',
      kind: 'peerConnection',
      side: 'visitor',
      event: { type: 'signal.offer', sdp: REDACTED },
      state: 'connecting',
    });
    expect(JSON.stringify(t.server.inspection.timeline(requestId))).not.toContain('v=0');

    // Grace is a signed-in agent, but not a leg of this call.
    expect(await agents.grace.emit('inspect.client', { callId, actor: 'agent', entries: [entry] })).toMatchObject({
      ok: false,
      error: { code: 'forbidden' },
    });
    expect(await visitor.emit('inspect.client', { requestId: 'req_someone-else', actor: 'visitorCall', entries: [entry] })).toMatchObject({
      ok: false,
      error: { code: 'not-found' },
    });
    expect(await visitor.emitRaw('inspect.client', { actor: 'visitorCall', entries: [entry] })).toMatchObject({
      ok: false,
      error: { code: 'invalid-payload', field: 'callId' },
    });
  });

  it('shows none of an agent’s real JWT, whether it rides under a credential key or inside any other text', async () => {
    t = await startTestServer({ INSPECT_CLIENTS: 'on' });
    const jwt = await agentToken(t.url, 'ada');
    const agent = await TestClient.connect(t.url, jwt);
    const { visitor } = await visitorAndAgents(t.url, []);
    sockets.push(agent, visitor);
    const { requestId, callId } = await placeCall(visitor, agent);
    const inspector = await connectInspector(t.url);
    await inspector.emit('inspect.subscribe', { requestId });
    await inspector.next('inspect.replay');

    const leaky = {
      at: Date.now(),
      event: { type: 'session.ready', jwt },
      state: 'ready',
      context: { jwt, accessToken: jwt, header: `Authorization: Bearer ${jwt}`, tokens: [jwt] },
    };
    expect(await agent.emit('inspect.client', { callId, actor: 'agent', entries: [leaky] })).toEqual({ ok: true });
    const live = await inspector.next<TimelineEntry>('inspect.entry', (e) => e.side === 'agent');
    expect(live).toMatchObject({
      event: { type: 'session.ready', jwt: REDACTED },
      context: { jwt: REDACTED, accessToken: REDACTED, header: `Authorization: Bearer ${REDACTED}`, tokens: [REDACTED] },
    });
    // No part of the token: its header and payload would already tell who the agent is.
    const [header, payload] = jwt.split('.');
    for (const seen of [JSON.stringify(live), JSON.stringify(t.server.inspection.timeline(requestId))]) {
      expect(seen).not.toContain(header);
      expect(seen).not.toContain(payload);
    }
  });
});
