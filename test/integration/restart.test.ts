/**
 * Server restart: the real entry point in a child process, killed with SIGKILL (nothing gets to clean up)
 * and started again on the same database and port. The persisted routing and callSession actors come back,
 * their timers re-armed with the time they had left, and clients take up their sessions with their resume
 * tokens. No AUTH_SECRET is set: the secret generated on the first start is kept in the database, which is
 * what lets the agents' and visitors' tokens from before the crash still open a socket.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { openStore } from '../../server/src/store.ts';
import { relay } from '../support/relay.ts';
import {
  SAMPLE_CANDIDATE,
  SAMPLE_SDP,
  TestClient,
  agentToken,
  freePort,
  getJson,
  sleep,
  spawnServer,
  tempDatabase,
  visitorToken,
  type DemoAgent,
  type SpawnedServer,
} from '../support/server.ts';

interface Instance {
  url: string;
  databasePath: string;
  start(): Promise<SpawnedServer>;
  crash(signal?: NodeJS.Signals): Promise<void>;
}

const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** One server identity (port and database) that can be started, crashed and started again. */
async function instance(env: Record<string, string>): Promise<Instance> {
  const port = await freePort();
  const db = tempDatabase();
  let running: SpawnedServer | null = null;
  const fullEnv = { PORT: String(port), DATABASE_PATH: db.path, AUTH_SECRET: '', LOG_LEVEL: 'info', ...env };
  cleanups.push(async () => {
    await running?.kill();
    db.remove();
  });
  return {
    url: `http://127.0.0.1:${port}`,
    databasePath: db.path,
    async start() {
      running = await spawnServer(fullEnv);
      return running;
    },
    async crash(signal: NodeJS.Signals = 'SIGKILL') {
      await running?.kill(signal);
      running = null;
    },
  };
}

function track(client: TestClient): TestClient {
  cleanups.push(() => client.close());
  return client;
}

/** Resolves once the client has seen its socket go away. */
function lost(client: TestClient): Promise<void> {
  if (!client.socket.connected) return Promise.resolve();
  return new Promise((resolve) => client.socket.once('disconnect', () => resolve()));
}

function resume(url: string, token: string, previous: TestClient): TestClient {
  if (!previous.resumeToken) throw new Error('the lost connection never received a resume token');
  return track(new TestClient(url, token, previous.resumeToken));
}

/** Like `visitorAndAgents`, keeping the agents' tokens: the same tokens must still be accepted after the restart. */
async function connected(url: string, names: DemoAgent[]) {
  const tokens = {} as Record<DemoAgent, string>;
  const agents = {} as Record<DemoAgent, TestClient>;
  for (const name of names) {
    tokens[name] = await agentToken(url, name);
    agents[name] = track(await TestClient.connect(url, tokens[name]));
  }
  const session = await visitorToken(url);
  const visitor = track(await TestClient.connect(url, session.token));
  return { agents, visitor, visitorTokenValue: session.token, tokens };
}

/** Waits until the wall clock reaches `at`, so a test can choose how long the server stays down. */
async function until(at: number): Promise<void> {
  const wait = at - Date.now();
  if (wait > 0) await sleep(wait);
}

interface CallDetail {
  call: { id: string; requestId: string; agentId: string; state: string; endReason: string | null };
  events: { id: number; actor: string; fromState: string | null; toState: string | null; at: number }[];
  telemetry: {
    disconnections: { leg: string; at: number; cause: string | null }[];
    reconnectionAttempts: { leg: string; at: number; durationMs: number; outcome: string }[];
  };
}

/** A server with windows long enough to outlast a restart, and a call it has put through between ada and a visitor. */
async function acceptedCall() {
  const server = await instance({ RECONNECTION_TIMEOUT_MS: '20000', AGENT_GRACE_MS: '20000', RESUME_WINDOW_MS: '20000' });
  await server.start();
  const { agents, visitor, visitorTokenValue, tokens } = await connected(server.url, ['ada']);
  const ada = agents.ada;
  const { requestId } = (await visitor.emit('visitor.request', { pool: 'support' })) as { requestId: string };
  await ada.next('agent.ring');
  await ada.emit('agent.accept', { requestId });
  const { callId } = await ada.next('call.accepted');
  await visitor.next('call.accepted');
  return { server, ada, visitor, visitorTokenValue, tokens, requestId, callId };
}

describe('a server killed and started again on the same database', () => {
  it('restores a call: both legs resume with their tokens, the same call goes on, and nothing recorded before is lost', async () => {
    const { server, ada, visitor, visitorTokenValue, tokens, requestId, callId } = await acceptedCall();
    await ada.emit('signal.offer', { callId, sdp: SAMPLE_SDP });
    await visitor.next('signal.offer');
    await ada.emit('call.media', { callId, state: 'connected' });
    await visitor.emit('call.media', { callId, state: 'connected' });
    const before = await getJson<CallDetail>(`${server.url}/api/calls/${callId}`, tokens.ada);
    expect(before.body.call).toMatchObject({ id: callId, state: 'active' });

    await server.crash();
    await Promise.all([lost(ada), lost(visitor)]);
    await server.start();

    const adaBack = resume(server.url, tokens.ada, ada);
    const visitorBack = resume(server.url, visitorTokenValue, visitor);
    expect(await adaBack.next('session.resumed')).toEqual({
      call: { callId, role: 'offerer', peerName: 'Vera Visitor', state: 'paused' },
      request: null,
    });
    expect(await visitorBack.next('session.resumed')).toEqual({
      call: { callId, role: 'answerer', peerName: 'Ada Lovelace', state: 'paused' },
      request: null,
    });
    await Promise.all([adaBack.next('session.ready'), visitorBack.next('session.ready')]);
    await adaBack.emit('call.media', { callId, state: 'connected' });
    await visitorBack.emit('call.media', { callId, state: 'connected' });
    expect(await adaBack.next('call.resumed')).toEqual({ callId });
    expect(await visitorBack.next('call.resumed')).toEqual({ callId });

    expect(await relay(adaBack, visitorBack, 'signal.iceRestart', { callId, sdp: SAMPLE_SDP })).toEqual({ ok: true });
    await relay(visitorBack, adaBack, 'signal.answer', { callId, sdp: SAMPLE_SDP });
    await relay(visitorBack, adaBack, 'signal.candidate', { callId, candidate: SAMPLE_CANDIDATE });

    // The restored call still holds ada: another visitor waits in line instead of ringing her mid-call.
    const other = track(await TestClient.connect(server.url, (await visitorToken(server.url, 'Otto Other')).token));
    const second = (await other.emit('visitor.request', { pool: 'support' })) as { requestId: string };
    expect(await other.next('routing.update', (u) => u.state === 'queued' && u.position !== undefined)).toEqual({
      requestId: second.requestId,
      state: 'queued',
      position: 1,
    });
    expect(adaBack.saw('agent.ring')).toBe(false);

    expect(await visitorBack.emit('call.hangup', { callId })).toEqual({ ok: true });
    expect(await adaBack.next('call.ended')).toEqual({ callId, reason: 'hangup' });
    expect(await visitorBack.next('call.ended')).toEqual({ callId, reason: 'hangup' });
    // Hung up, ada is free again and the waiting visitor is put through to her.
    expect(await adaBack.next('agent.ring')).toMatchObject({ requestId: second.requestId, visitorName: 'Otto Other' });

    const after = await getJson<CallDetail>(`${server.url}/api/calls/${callId}`, tokens.ada);
    expect(after.body.call).toMatchObject({ id: callId, requestId, agentId: 'ada', state: 'ended', endReason: 'hangup' });
    for (const event of before.body.events) expect(after.body.events).toContainEqual(event);
    const restoredStates = after.body.events.slice(before.body.events.length).filter((e) => e.actor === 'callSession');
    expect(restoredStates.length).toBeGreaterThan(0);
    expect(after.body.telemetry.disconnections).toEqual([
      { leg: 'agent', at: expect.any(Number), cause: 'socket' },
      { leg: 'visitor', at: expect.any(Number), cause: 'socket' },
    ]);
    const history = await getJson<{ calls: { id: string }[] }>(`${server.url}/api/calls`, tokens.ada);
    expect(history.body.calls.map((c) => c.id)).toEqual([callId]);
  });

  it('restores a call with the telemetry it had, and records only what comes after: nothing from before is written twice', async () => {
    const { server, ada, visitor, visitorTokenValue, tokens, callId } = await acceptedCall();
    await ada.emit('call.media', { callId, state: 'connected' });
    await visitor.emit('call.media', { callId, state: 'connected' });
    // A media outage the visitor recovers from, before the crash: one lost leg and one attempt.
    await visitor.emit('call.media', { callId, state: 'reconnecting', attempt: 1 });
    await ada.next('call.paused');
    const attemptAt = Date.now();
    expect(await visitor.emit('call.telemetry', { callId, attempt: 1, at: attemptAt, durationMs: 30, outcome: 'recovered' })).toEqual({ ok: true });
    await visitor.emit('call.media', { callId, state: 'connected' });
    await ada.next('call.resumed');
    const before = await getJson<CallDetail>(`${server.url}/api/calls/${callId}`, tokens.ada);
    expect(before.body.telemetry.disconnections).toEqual([{ leg: 'visitor', at: expect.any(Number), cause: 'media' }]);
    expect(before.body.telemetry.reconnectionAttempts).toEqual([{ leg: 'visitor', at: attemptAt, durationMs: 30, outcome: 'recovered' }]);

    await server.crash();
    await Promise.all([lost(ada), lost(visitor)]);
    await server.start();
    const adaBack = resume(server.url, tokens.ada, ada);
    const visitorBack = resume(server.url, visitorTokenValue, visitor);
    await Promise.all([adaBack.next('session.ready'), visitorBack.next('session.ready')]);
    await adaBack.emit('call.media', { callId, state: 'connected' });
    await visitorBack.emit('call.media', { callId, state: 'connected' });
    await adaBack.next('call.resumed');
    expect(await visitorBack.emit('call.hangup', { callId })).toEqual({ ok: true });
    await adaBack.next('call.ended');

    const after = await getJson<CallDetail>(`${server.url}/api/calls/${callId}`, tokens.ada);
    // What came after the crash is the two sockets lost with the old process; what came before, once.
    expect(after.body.telemetry.disconnections).toEqual([
      ...before.body.telemetry.disconnections,
      { leg: 'agent', at: expect.any(Number), cause: 'socket' },
      { leg: 'visitor', at: expect.any(Number), cause: 'socket' },
    ]);
    expect(after.body.telemetry.reconnectionAttempts).toEqual(before.body.telemetry.reconnectionAttempts);
  });

  it('dates a call\'s lost sockets from when the old process died: the reconnection timeout and the records count the time the server was down', async () => {
    // Room for a slow start: the visitor must be back before the window from the crash runs out.
    const reconnectionTimeout = 10_000;
    const server = await instance({ RECONNECTION_TIMEOUT_MS: String(reconnectionTimeout), AGENT_GRACE_MS: '30000', RESUME_WINDOW_MS: '30000' });
    await server.start();
    const { agents, visitor, visitorTokenValue, tokens } = await connected(server.url, ['ada']);
    const { requestId } = (await visitor.emit('visitor.request', { pool: 'support' })) as { requestId: string };
    await agents.ada.next('agent.ring');
    await agents.ada.emit('agent.accept', { requestId });
    const { callId } = await agents.ada.next('call.accepted');
    await visitor.next('call.accepted');
    await agents.ada.emit('call.media', { callId, state: 'connected' });
    await visitor.emit('call.media', { callId, state: 'connected' });
    // A beat for the heartbeat to be written after the call began, as it is on any server that has run a while.
    await sleep(1_500);

    const crashedAt = Date.now();
    await server.crash();
    // Down for 3 s: a timeout armed afresh at the restart could not end the call before crash + 13 s.
    await until(crashedAt + 3_000);
    await server.start();

    // The visitor comes back; the agent never does, so the call ends when the window from the crash runs out.
    const visitorBack = resume(server.url, visitorTokenValue, visitor);
    expect(await visitorBack.next('session.resumed')).toMatchObject({ call: { callId, state: 'paused' } });
    expect(await visitorBack.next('routing.update', (u) => u.state === 'reassigning', reconnectionTimeout + 5_000)).toEqual({
      requestId,
      state: 'reassigning',
    });
    const endedAt = Date.now();
    // The heartbeat is written every second, so the loss is dated up to a second before the crash.
    expect(endedAt).toBeGreaterThanOrEqual(crashedAt + reconnectionTimeout - 1_100);
    expect(endedAt).toBeLessThan(crashedAt + reconnectionTimeout + 2_000);

    const detail = await getJson<CallDetail>(`${server.url}/api/calls/${callId}`, tokens.ada);
    expect(detail.body.call).toMatchObject({ id: callId, state: 'ended' });
    const lostAt = detail.body.telemetry.disconnections.map((d) => d.at);
    expect(lostAt).toHaveLength(2);
    for (const at of lostAt) {
      expect(at).toBeLessThanOrEqual(crashedAt);
      expect(at).toBeGreaterThan(crashedAt - 1_100);
    }
  });

  it("re-sends a ring to the agent who comes back, with the ring's original deadline, and the call can be taken", async () => {
    const server = await instance({ RING_TIMEOUT_MS: '30000', RESUME_WINDOW_MS: '20000' });
    await server.start();
    const { agents, visitor, visitorTokenValue, tokens } = await connected(server.url, ['ada', 'grace']);
    const { requestId } = (await visitor.emit('visitor.request', { pool: 'support' })) as { requestId: string };
    const ring = await agents.ada.next('agent.ring');
    expect(ring.requestId).toBe(requestId);

    await server.crash();
    await server.start();

    const graceBack = resume(server.url, tokens.grace, agents.grace);
    await graceBack.next('session.ready');
    const visitorBack = resume(server.url, visitorTokenValue, visitor);
    expect(await visitorBack.next('session.resumed')).toMatchObject({ call: null });
    await visitorBack.next('session.ready');
    const adaBack = resume(server.url, tokens.ada, agents.ada);
    expect(await adaBack.next('agent.ring')).toEqual(ring);

    await adaBack.emit('agent.accept', { requestId });
    const accepted = await adaBack.next('call.accepted');
    expect(await visitorBack.next('call.accepted')).toMatchObject({ callId: accepted.callId, peerName: 'Ada Lovelace' });
    // The other agent was never offered the request, before or after the restart.
    expect(graceBack.saw('agent.ring')).toBe(false);
    expect(agents.grace.saw('agent.ring')).toBe(false);
  });

  it('re-arms every timer with the time it had left: an unanswered ring runs out and moves on, a queued visitor hears no-agents', async () => {
    const ringTimeout = 9_000;
    const maxQueueWait = 11_000;
    const server = await instance({
      RING_TIMEOUT_MS: String(ringTimeout),
      MAX_QUEUE_WAIT_MS: String(maxQueueWait),
      RESUME_WINDOW_MS: '20000',
    });
    await server.start();
    const { agents, visitor, visitorTokenValue, tokens } = await connected(server.url, ['ada', 'grace']);
    const { requestId } = (await visitor.emit('visitor.request', { pool: 'support' })) as { requestId: string };
    const { expiresAt } = await agents.ada.next('agent.ring');
    // Ada is the only agent in sales, and she is busy ringing: this visitor waits in line.
    const queuedSession = await visitorToken(server.url, 'Quinn Queued');
    const queued = track(await TestClient.connect(server.url, queuedSession.token));
    const queuedFrom = Date.now();
    const second = (await queued.emit('visitor.request', { pool: 'sales' })) as { requestId: string };
    expect(await queued.next('routing.update', (u) => u.state === 'queued' && u.position !== undefined)).toEqual({
      requestId: second.requestId,
      state: 'queued',
      position: 1,
    });

    await server.crash();
    // Down for 3 s at least: a timer armed afresh at the restart could not run out before its deadline + 3 s.
    await until(queuedFrom + 3_000);
    await server.start();

    // Everyone but ada comes back, the visitors first (session.resumed tells each where its request stands).
    const visitorBack = resume(server.url, visitorTokenValue, visitor);
    const queuedBack = resume(server.url, queuedSession.token, queued);
    expect(await queuedBack.next('session.resumed')).toMatchObject({ call: null });
    await Promise.all([visitorBack.next('session.ready'), queuedBack.next('session.ready')]);
    const graceBack = resume(server.url, tokens.grace, agents.grace);
    await graceBack.next('session.ready');
    // The queued request survived: a second one is refused while it is still waiting.
    expect(await queuedBack.emit('visitor.request', { pool: 'sales' })).toMatchObject({ ok: false, error: { code: 'conflict' } });

    const next = await graceBack.next('agent.ring', (r) => r.requestId === requestId, ringTimeout);
    const rangAt = Date.now();
    expect(rangAt).toBeGreaterThanOrEqual(expiresAt - 50);
    expect(rangAt).toBeLessThan(expiresAt + 2_500);
    expect(next).toMatchObject({ requestId, visitorName: 'Vera Visitor' });
    expect(next.expiresAt).toBeGreaterThanOrEqual(expiresAt + ringTimeout - 50);
    expect(await visitorBack.next('routing.update', (u) => u.state === 'ringing' && u.agentName !== 'Ada Lovelace')).toEqual({
      requestId,
      state: 'ringing',
      agentName: 'Grace Hopper',
    });

    expect(await queuedBack.next('routing.ended', undefined, maxQueueWait)).toEqual({ requestId: second.requestId, reason: 'no-agents' });
    const endedAt = Date.now();
    expect(endedAt).toBeGreaterThanOrEqual(queuedFrom + maxQueueWait - 50);
    expect(endedAt).toBeLessThan(queuedFrom + maxQueueWait + 2_500);

    // Ada, back now, was already tried for the first request, and the second one is over.
    const adaBack = resume(server.url, tokens.ada, agents.ada);
    await adaBack.next('session.ready');
    await sleep(200);
    expect(adaBack.saw('agent.ring')).toBe(false);

    // Killed again right after the last messages: a message leaves only once its step is stored, so
    // everything the clients were told is in the store, however abrupt the stop.
    await server.crash();
    const store = await openStore({ databasePath: server.databasePath });
    try {
      expect(await store.requests.get(second.requestId)).toMatchObject({ state: 'noAgents', endReason: 'no-agents' });
      expect((await store.events.forRequest(second.requestId)).map((e) => e.toState)).toEqual(['searching', 'queued', 'noAgents']);
      // Between the two rings it may also have been queued, had its deadline passed before grace was back.
      const ringing = (await store.events.forRequest(requestId)).map((e) => e.toState);
      expect(ringing.slice(0, 3)).toEqual(['searching', 'ringing', 'searching']);
      expect(ringing.at(-1)).toBe('ringing');
      expect((await store.snapshots.all()).map((record) => record.requestId)).toEqual([requestId]);
    } finally {
      await store.close();
    }
  });
});
