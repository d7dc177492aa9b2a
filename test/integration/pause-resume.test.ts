/**
 * Mid-call pause and resume against a real server: a leg lost by its socket or by its media pauses the call
 * for both peers, the leg's return resumes it, and a leg that does not return ends the call (or, for the
 * agent, hands the visitor to another agent). Also the telemetry this leaves behind, and resume tokens.
 */
import type { ServerPayload } from '@callchart/machines';
import { afterEach, describe, expect, it } from 'vitest';
import {
  SAMPLE_CANDIDATE,
  SAMPLE_SDP,
  TestClient,
  agentToken,
  closeClientsThenServer,
  getJson,
  sleep,
  startTestServer,
  stored,
  visitorAndAgents,
  visitorToken,
  type DemoAgent,
  type TestServer,
} from '../support/server.ts';

const UP = { socket: 'up', media: 'connected' } as const;
const GONE = { socket: 'down', media: 'unreported' } as const;
const RECONNECTING = { socket: 'up', media: 'reconnecting' } as const;
const FAILED = { socket: 'up', media: 'failed' } as const;

/** Whether a `call.paused` names `leg` as lost: its socket gone, or its media not connected. */
const legLost = (paused: ServerPayload<'call.paused'>, leg: 'agent' | 'visitor') =>
  paused.legs[leg].socket === 'down' || paused.legs[leg].media !== 'connected';

let t: TestServer | null = null;
const clients: TestClient[] = [];

afterEach(async () => {
  await closeClientsThenServer(clients, t);
  t = null;
});

async function server(env: Record<string, string> = {}): Promise<TestServer> {
  t = await startTestServer(env);
  return t;
}

function track(client: TestClient): TestClient {
  clients.push(client);
  return client;
}

/** Reconnects as the same person, presenting the resume token of the connection that was lost. */
function reconnect(url: string, token: string, resumeToken: string | null): TestClient {
  if (!resumeToken) throw new Error('the lost connection never received a resume token');
  return track(new TestClient(url, token, resumeToken));
}

/**
 * A visitor in a call with the first of `agents` (ada, when every agent is new: ties go by id), with both
 * media connections reported connected.
 */
async function inCall(url: string, agents: DemoAgent[] = ['ada']) {
  const setup = await visitorAndAgents(url, agents);
  for (const client of [setup.visitor, ...Object.values(setup.agents)]) track(client);
  const first = setup.agents[agents[0]!];
  const requested = await setup.visitor.emit('visitor.request', { pool: 'support' });
  if (!requested.ok) throw new Error(`request refused: ${requested.error.message}`);
  const { requestId } = requested;
  await first.next('agent.ring', (ring) => ring.requestId === requestId);
  expect(await first.emit('agent.accept', { requestId })).toEqual({ ok: true });
  const { callId } = await first.next('call.accepted');
  await setup.visitor.next('call.accepted', (accepted) => accepted.callId === callId);
  expect(await first.emit('call.media', { callId, state: 'connected' })).toEqual({ ok: true });
  expect(await setup.visitor.emit('call.media', { callId, state: 'connected' })).toEqual({ ok: true });
  return { ...setup, agent: first, requestId, callId };
}

/** A waiting visitor whose request rings ada, on a server that keeps a lost session for `resumeWindowMs`. */
async function ringingRequest(resumeWindowMs: string) {
  const { url } = await server({ RESUME_WINDOW_MS: resumeWindowMs, RING_TIMEOUT_MS: '15000' });
  const { agents, visitor, visitorTokenValue } = await visitorAndAgents(url, ['ada']);
  const ada = track(agents.ada);
  track(visitor);
  const requested = await visitor.emit('visitor.request', { pool: 'support' });
  const { requestId } = requested as { requestId: string };
  await ada.next('agent.ring');
  return { url, ada, visitor, visitorTokenValue, requestId };
}

/** Resolves once the client's socket is gone, so the server has been told (or the process is dead). */
function closed(client: TestClient): Promise<void> {
  if (!client.socket.connected) return Promise.resolve();
  return new Promise((resolve) => client.socket.once('disconnect', () => resolve()));
}

/** Closes `leaving`'s socket: `staying` must be told at once that the call is paused, as `paused`. */
async function expectPausedOnDrop(leaving: TestClient, staying: TestClient, paused: ServerPayload<'call.paused'>) {
  const droppedAt = Date.now();
  leaving.close();
  expect(await staying.next('call.paused')).toEqual(paused);
  expect(Date.now() - droppedAt).toBeLessThan(1_000);
}

const LONG = { RECONNECTION_TIMEOUT_MS: '15000', AGENT_GRACE_MS: '15000', RESUME_WINDOW_MS: '15000' };

describe('a leg whose socket drops mid-call', () => {
  it('pauses the call for the visitor who dropped and the agent who stayed, and resumes it when the visitor is back', async () => {
    const { url } = await server(LONG);
    const { agent: ada, visitor, visitorTokenValue, callId } = await inCall(url);

    await expectPausedOnDrop(visitor, ada, { callId, legs: { agent: UP, visitor: GONE } });

    const back = reconnect(url, visitorTokenValue, visitor.resumeToken);
    expect(await back.next('session.resumed')).toEqual({
      call: { callId, role: 'answerer', peerName: 'Ada Lovelace', state: 'paused' },
      request: null,
    });
    await back.next('session.ready');
    expect(await back.emit('call.media', { callId, state: 'connected' })).toEqual({ ok: true });
    expect(await ada.next('call.resumed')).toEqual({ callId });
    expect(await back.next('call.resumed')).toEqual({ callId });

    // The resumed connection is a leg of the same call again: relays reach it, and it reaches the agent.
    await ada.emit('signal.iceRestart', { callId, sdp: SAMPLE_SDP });
    expect(await back.next('signal.iceRestart')).toEqual({ callId, sdp: SAMPLE_SDP });
    await back.emit('signal.answer', { callId, sdp: SAMPLE_SDP });
    expect(await ada.next('signal.answer')).toEqual({ callId, sdp: SAMPLE_SDP });
    expect(ada.saw('call.ended')).toBe(false);
    expect(await stored(t!.server, (store) => store.calls.get(callId))).toMatchObject({ state: 'active', endReason: null });
  });

  it("pauses the call when the agent's socket drops, and the same call goes on when the agent resumes within the grace", async () => {
    const { url } = await server(LONG);
    const { agent: ada, visitor, requestId, callId } = await inCall(url);

    await expectPausedOnDrop(ada, visitor, { callId, legs: { agent: GONE, visitor: UP } });

    const back = reconnect(url, await agentToken(url, 'ada'), ada.resumeToken);
    expect(await back.next('session.resumed')).toEqual({
      call: { callId, role: 'offerer', peerName: 'Vera Visitor', state: 'paused' },
      request: null,
    });
    await back.next('session.ready');
    await back.emit('call.media', { callId, state: 'connected' });
    expect(await visitor.next('call.resumed')).toEqual({ callId });
    expect(await back.next('call.resumed')).toEqual({ callId });

    await back.emit('signal.offer', { callId, sdp: SAMPLE_SDP });
    expect(await visitor.next('signal.offer')).toEqual({ callId, sdp: SAMPLE_SDP });
    expect(visitor.events.some((e) => e.event === 'routing.update' && (e.payload as { state: string }).state === 'reassigning')).toBe(false);
    const routingStates = (await stored(t!.server, (store) => store.events.forRequest(requestId))).filter((e) => e.actor === 'routing').map((e) => e.toState);
    expect(routingStates).toEqual(['searching', 'ringing', 'connected.agentPresent', 'connected.agentAway', 'connected.agentPresent']);
  });

  it('also resumes when the token comes in a session.resume message instead of the handshake', async () => {
    const { url } = await server(LONG);
    const { agent: ada, visitor, visitorTokenValue, callId } = await inCall(url);

    visitor.close();
    await ada.next('call.paused', (p) => legLost(p, 'visitor'));
    const back = track(await TestClient.connect(url, visitorTokenValue));
    expect(await back.emit('session.resume', { resumeToken: visitor.resumeToken! })).toEqual({ ok: true });
    expect(await back.next('session.resumed')).toEqual({
      call: { callId, role: 'answerer', peerName: 'Ada Lovelace', state: 'paused' },
      request: null,
    });
    await back.emit('call.media', { callId, state: 'connected' });
    expect(await ada.next('call.resumed')).toEqual({ callId });
    expect(await back.next('call.resumed')).toEqual({ callId });
  });
});

describe('a peer socket that no longer answers', () => {
  // Fake: a client that receives but never acknowledges stands in for one whose path died, because on
  // loopback one socket's packets cannot be lost alone (the browser suite cuts a real path).
  it('is closed when it does not acknowledge a relayed restart within PEER_ACK_TIMEOUT_MS: the leg is lost at once, and further restarts are refused', async () => {
    const { url } = await server({ ...LONG, PEER_ACK_TIMEOUT_MS: '500' });
    const { agent: ada, visitor, callId } = await inCall(url);
    visitor.acknowledges = false;

    const sentAt = Date.now();
    expect(await ada.emit('signal.iceRestart', { callId, sdp: SAMPLE_SDP })).toEqual({ ok: true });
    // It did arrive: the socket is open, only its receipts are gone.
    expect(await visitor.next('signal.iceRestart')).toEqual({ callId, sdp: SAMPLE_SDP });
    await closed(visitor);
    expect(await ada.next('call.paused')).toEqual({ callId, legs: { agent: UP, visitor: GONE } });
    const pausedAt = Date.now();
    expect(pausedAt - sentAt).toBeGreaterThanOrEqual(450);
    expect(pausedAt - sentAt).toBeLessThan(2_000);
    const reply = await ada.emit('signal.iceRestart', { callId, sdp: SAMPLE_SDP });
    expect(reply).toMatchObject({ ok: false, error: { code: 'peer-unavailable' } });
  });

  it('stays open when it acknowledges, however many restarts are relayed, and a healthy call is not paused', async () => {
    const { url } = await server({ ...LONG, PEER_ACK_TIMEOUT_MS: '500' });
    const { agent: ada, visitor, callId } = await inCall(url);
    for (let i = 0; i < 3; i++) {
      expect(await ada.emit('signal.iceRestart', { callId, sdp: SAMPLE_SDP })).toEqual({ ok: true });
      expect(await visitor.emit('signal.restartRequest', { callId })).toEqual({ ok: true });
    }
    await sleep(1_000);
    expect(visitor.socket.connected).toBe(true);
    expect(ada.socket.connected).toBe(true);
    expect(ada.saw('call.paused') || visitor.saw('call.paused')).toBe(false);
    expect(await stored(t!.server, (store) => store.calls.get(callId))).toMatchObject({ state: 'active' });
  });
});

describe('a leg whose media drops while both sockets stay up', () => {
  it('pauses for both peers while either leg reports reconnecting, and resumes only when every leg reports connected', async () => {
    const { url } = await server(LONG);
    const call = await inCall(url);
    const callId = call.callId;

    for (const leg of ['agent', 'visitor'] as const) {
      const [lost, other] = leg === 'agent' ? [call.agent, call.visitor] : [call.visitor, call.agent];
      const reportedAt = Date.now();
      expect(await lost.emit('call.media', { callId, state: 'reconnecting', attempt: 1 })).toEqual({ ok: true });
      const legs = leg === 'agent' ? { agent: RECONNECTING, visitor: UP } : { agent: UP, visitor: RECONNECTING };
      expect(await other.next('call.paused')).toEqual({ callId, legs });
      expect(await lost.next('call.paused')).toEqual({ callId, legs });
      expect(Date.now() - reportedAt).toBeLessThan(1_000);
      expect(await stored(t!.server, (store) => store.calls.get(callId))).toMatchObject({ state: 'paused' });

      await lost.emit('call.media', { callId, state: 'connected' });
      expect(await other.next('call.resumed')).toEqual({ callId });
      expect(await lost.next('call.resumed')).toEqual({ callId });
      expect(await stored(t!.server, (store) => store.calls.get(callId))).toMatchObject({ state: 'active' });
    }

    // Both lost: the first one back does not resume the call.
    await call.agent.emit('call.media', { callId, state: 'reconnecting' });
    await call.visitor.next('call.paused', (p) => legLost(p, 'agent'));
    await call.visitor.emit('call.media', { callId, state: 'reconnecting' });
    await call.agent.emit('call.media', { callId, state: 'connected' });
    await sleep(300);
    expect(call.visitor.saw('call.resumed')).toBe(false);
    expect(call.agent.saw('call.resumed')).toBe(false);

    await call.visitor.emit('call.media', { callId, state: 'connected' });
    expect(await call.agent.next('call.resumed')).toEqual({ callId });
    expect(await call.visitor.next('call.resumed')).toEqual({ callId });
  });
});

describe('a leg that does not come back within the reconnection timeout', () => {
  it('ends the call as reconnect-timeout when it is the visitor', async () => {
    const { url } = await server({ RECONNECTION_TIMEOUT_MS: '1000', RESUME_WINDOW_MS: '15000' });
    const { agent: ada, visitor, visitorTokenValue, requestId, callId } = await inCall(url);

    const droppedAt = Date.now();
    visitor.close();
    await ada.next('call.paused', (p) => legLost(p, 'visitor'));
    expect(await ada.next('call.ended')).toEqual({ callId, reason: 'reconnect-timeout' });
    // Not before the timeout, which started after the drop (a timer may fire a millisecond early).
    expect(Date.now() - droppedAt).toBeGreaterThanOrEqual(995);

    expect(await stored(t!.server, (store) => store.calls.get(callId))).toMatchObject({ state: 'ended', endReason: 'reconnect-timeout' });
    expect(await stored(t!.server, (store) => store.requests.get(requestId))).toMatchObject({ endReason: 'completed' });
    // Coming back late, though within the resume window, finds the session but no call to go back to.
    const back = reconnect(url, visitorTokenValue, visitor.resumeToken);
    expect(await back.next('session.resumed')).toMatchObject({ call: null });
  });

  it('ends the call for the agent as reassigned and rings another agent for the visitor when it is the agent whose socket stayed gone', async () => {
    // The grace is longer than the timeout, so it is the call's own timer that hands the visitor on.
    const { url } = await server({ RECONNECTION_TIMEOUT_MS: '1000', AGENT_GRACE_MS: '20000', RING_TIMEOUT_MS: '15000' });
    const { agent: ada, agents, visitor, requestId, callId } = await inCall(url, ['ada', 'alan']);
    const alan = agents.alan;

    ada.close();
    expect(await visitor.next('call.paused')).toEqual({ callId, legs: { agent: GONE, visitor: UP } });
    expect(await visitor.next('routing.update', (u) => u.state === 'reassigning', 8_000)).toEqual({ requestId, state: 'reassigning' });

    const ring = await alan.next('agent.ring');
    expect(ring).toMatchObject({ requestId, visitorName: 'Vera Visitor' });
    expect(await visitor.next('routing.update', (u) => u.state === 'ringing' && u.agentName !== 'Ada Lovelace')).toEqual({
      requestId,
      state: 'ringing',
      agentName: 'Alan Turing',
    });
    await alan.emit('agent.accept', { requestId });
    const second = await alan.next('call.accepted');
    expect(second.callId).not.toBe(callId);
    expect(await visitor.next('call.accepted')).toMatchObject({ callId: second.callId, peerName: 'Alan Turing' });

    // The visitor's flow moves on to the new agent; a call.ended would end it instead.
    expect(visitor.saw('call.ended')).toBe(false);
    expect(await stored(t!.server, (store) => store.calls.get(callId))).toMatchObject({ state: 'ended', endReason: 'reassigned' });
    expect(await stored(t!.server, (store) => store.calls.get(second.callId))).toMatchObject({ state: 'active', agentId: 'alan' });
  });

  it('ends the call as reconnect-timeout for both people when the path stays down with both sockets up, and rings nobody', async () => {
    const { url } = await server({ RECONNECTION_TIMEOUT_MS: '1000', RING_TIMEOUT_MS: '15000' });
    const { agent: ada, agents, visitor, callId } = await inCall(url, ['ada', 'alan']);

    await ada.emit('call.media', { callId, state: 'reconnecting', attempt: 1 });
    expect(await visitor.next('call.paused')).toEqual({ callId, legs: { agent: RECONNECTING, visitor: UP } });
    expect(await ada.next('call.ended', undefined, 8_000)).toEqual({ callId, reason: 'reconnect-timeout' });
    expect(await visitor.next('call.ended')).toEqual({ callId, reason: 'reconnect-timeout' });
    await sleep(300);
    expect(agents.alan.saw('agent.ring')).toBe(false);
    expect(await stored(t!.server, (store) => store.calls.get(callId))).toMatchObject({ state: 'ended', endReason: 'reconnect-timeout' });
  });

  it('ends the call as reconnect-timeout, never a reassignment, when the visitor is gone, whatever the agent’s media did meanwhile', async () => {
    const { url } = await server({ RECONNECTION_TIMEOUT_MS: '1000', RING_TIMEOUT_MS: '15000' });
    const { agent: ada, agents, visitor, callId } = await inCall(url, ['ada', 'alan']);

    visitor.close();
    expect(await ada.next('call.paused')).toEqual({ callId, legs: { agent: UP, visitor: GONE } });
    // The agent's attempts run out while the visitor is away: still the visitor's absence decides.
    await ada.emit('call.media', { callId, state: 'failed' });
    expect(await ada.next('call.paused', (p) => p.legs.agent.media === 'failed')).toEqual({ callId, legs: { agent: FAILED, visitor: GONE } });
    expect(await ada.next('call.ended', undefined, 8_000)).toEqual({ callId, reason: 'reconnect-timeout' });
    await sleep(300);
    expect(agents.alan.saw('agent.ring')).toBe(false);
    expect(await stored(t!.server, (store) => store.calls.get(callId))).toMatchObject({ state: 'ended', endReason: 'reconnect-timeout' });
  });
});

describe('one media connection failed', () => {
  it('ends the call as media-failed for both people at once when one side fails with both sockets up', async () => {
    const { url } = await server({ RECONNECTION_TIMEOUT_MS: '60000' });
    const { agent: ada, visitor, callId } = await inCall(url);

    const failedAt = Date.now();
    await visitor.emit('call.media', { callId, state: 'failed' });
    expect(await ada.next('call.ended')).toEqual({ callId, reason: 'media-failed' });
    expect(await visitor.next('call.ended')).toEqual({ callId, reason: 'media-failed' });
    // Far below the 60 s reconnection timeout: nothing was waited out.
    expect(Date.now() - failedAt).toBeLessThan(1_000);
    expect(await stored(t!.server, (store) => store.calls.get(callId))).toMatchObject({ state: 'ended', endReason: 'media-failed' });
  });

  it('tells both people of every change of the pause, not only its start', async () => {
    const { url } = await server({ RECONNECTION_TIMEOUT_MS: '60000' });
    const { agent: ada, visitor, callId } = await inCall(url);

    await ada.emit('call.media', { callId, state: 'reconnecting', attempt: 1 });
    expect(await visitor.next('call.paused')).toEqual({ callId, legs: { agent: RECONNECTING, visitor: UP } });
    await visitor.emit('call.media', { callId, state: 'reconnecting', attempt: 1 });
    expect(await ada.next('call.paused', (p) => p.legs.visitor.media === 'reconnecting')).toEqual({ callId, legs: { agent: RECONNECTING, visitor: RECONNECTING } });
    await ada.emit('call.media', { callId, state: 'connected' });
    expect(await visitor.next('call.paused', (p) => p.legs.agent.media === 'connected')).toEqual({ callId, legs: { agent: UP, visitor: RECONNECTING } });
    await visitor.emit('call.media', { callId, state: 'connected' });
    expect(await ada.next('call.resumed')).toEqual({ callId });
  });
});

interface CallDetail {
  call: { id: string; totalPauseMs: number; state: string; endReason: string | null };
  events: unknown[];
  telemetry: {
    disconnections: { leg: string; at: number; cause: string | null }[];
    reconnectionAttempts: { leg: string; at: number; durationMs: number; outcome: string }[];
    totalPauseMs: number;
  };
}

/** RFC 4180 as the server writes it: CRLF records, quoted fields with doubled quotes. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i++;
    } else field += c;
  }
  if (field !== '' || row.length > 0) throw new Error('CSV does not end with CRLF');
  return rows;
}

describe('reconnection telemetry', () => {
  it('stores every disconnection, every reported attempt and the pause time, and exports them as JSON and CSV', async () => {
    const { url } = await server(LONG);
    const { agent: ada, visitor, visitorTokenValue, callId } = await inCall(url);

    // A media loss with two ICE-restart attempts, the second one recovering.
    await visitor.emit('call.media', { callId, state: 'reconnecting', attempt: 1 });
    await ada.next('call.paused');
    const firstAttemptAt = Date.now();
    expect(await visitor.emit('call.telemetry', { callId, attempt: 1, at: firstAttemptAt, durationMs: 40, outcome: 'failed' })).toEqual({
      ok: true,
    });
    // The pause has to last long enough to be measured in whole milliseconds.
    await sleep(60);
    await visitor.emit('call.telemetry', { callId, attempt: 2, at: firstAttemptAt + 41, durationMs: 25, outcome: 'recovered' });
    await visitor.emit('call.media', { callId, state: 'connected' });
    await ada.next('call.resumed');

    // Then the agent's socket drops, and the agent resumes.
    ada.close();
    await visitor.next('call.paused', (p) => legLost(p, 'agent'));
    const adaBack = reconnect(url, await agentToken(url, 'ada'), ada.resumeToken);
    await adaBack.next('session.ready');
    await adaBack.emit('call.media', { callId, state: 'connected' });
    await visitor.next('call.resumed');
    await adaBack.emit('call.hangup', { callId });
    await visitor.next('call.ended');

    const token = await agentToken(url, 'ada');
    const detail = await getJson<CallDetail>(`${url}/api/calls/${callId}`, token);
    expect(detail.status).toBe(200);
    const { telemetry } = detail.body;
    expect(telemetry.disconnections).toEqual([
      { leg: 'visitor', at: expect.any(Number), cause: 'media' },
      { leg: 'agent', at: expect.any(Number), cause: 'socket' },
    ]);
    expect(telemetry.disconnections[0]!.at).toBeLessThanOrEqual(telemetry.disconnections[1]!.at);
    expect(telemetry.reconnectionAttempts).toEqual([
      { leg: 'visitor', at: firstAttemptAt, durationMs: 40, outcome: 'failed' },
      { leg: 'visitor', at: firstAttemptAt + 41, durationMs: 25, outcome: 'recovered' },
    ]);
    expect(telemetry.totalPauseMs).toBeGreaterThanOrEqual(50);
    expect(detail.body.call).toMatchObject({ state: 'ended', endReason: 'hangup', totalPauseMs: telemetry.totalPauseMs });

    // Someone else's call is not even admitted to exist.
    expect((await getJson(`${url}/api/calls/${callId}`, await agentToken(url, 'grace'))).status).toBe(404);
    expect((await getJson(`${url}/api/calls/${callId}`, visitorTokenValue)).status).toBe(403);

    const json = await fetch(`${url}/api/calls/${callId}/export?format=json`, { headers: { authorization: `Bearer ${token}` } });
    expect(json.status).toBe(200);
    expect(json.headers.get('content-type')).toMatch(/^application\/json/);
    expect(json.headers.get('content-disposition')).toContain(`call-${callId}.json`);
    const exported = (await json.json()) as CallDetail;
    expect(exported.telemetry).toEqual(telemetry);
    expect(exported.call).toMatchObject({ id: callId, totalPauseMs: telemetry.totalPauseMs });
    expect(exported.events).toEqual(detail.body.events);

    const csv = await fetch(`${url}/api/calls/${callId}/export?format=csv`, { headers: { authorization: `Bearer ${token}` } });
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(csv.headers.get('content-disposition')).toContain(`call-${callId}.csv`);
    const [header, ...rows] = parseCsv(await csv.text());
    expect(header).toEqual(['call_id', 'visitor_name', 'agent_name', 'kind', 'leg', 'at', 'duration_ms', 'outcome', 'cause', 'total_pause_ms']);
    const records = rows.map((row) => Object.fromEntries(header!.map((name, i) => [name, row[i]])));
    expect(records).toHaveLength(4);
    for (const record of records) {
      expect(record).toMatchObject({
        call_id: callId,
        visitor_name: 'Vera Visitor',
        agent_name: 'Ada Lovelace',
        total_pause_ms: String(telemetry.totalPauseMs),
      });
      expect(new Date(record.at!).toISOString()).toBe(record.at);
    }
    const disconnections = records.filter((r) => r.kind === 'disconnection');
    const attempts = records.filter((r) => r.kind === 'reconnection-attempt');
    expect(disconnections.map((r) => [r.leg, r.cause, r.duration_ms, r.outcome])).toEqual([
      ['visitor', 'media', '', ''],
      ['agent', 'socket', '', ''],
    ]);
    expect(disconnections.map((r) => Date.parse(r.at!))).toEqual(telemetry.disconnections.map((d) => d.at));
    expect(attempts.map((r) => [r.leg, Date.parse(r.at!), r.duration_ms, r.outcome, r.cause])).toEqual([
      ['visitor', firstAttemptAt, '40', 'failed', ''],
      ['visitor', firstAttemptAt + 41, '25', 'recovered', ''],
    ]);
  });
});

describe('resume tokens', () => {
  it('resume a session within the window: a waiting visitor keeps its request, nobody is rung while they are away, and the call comes once they are back', async () => {
    const { url, ada, visitor, visitorTokenValue, requestId } = await ringingRequest('15000');

    visitor.close();
    await closed(visitor);
    // A ring for someone who is not there is withdrawn.
    expect(await ada.next('agent.ringCancelled')).toEqual({ requestId });
    const back = reconnect(url, visitorTokenValue, visitor.resumeToken);
    // The resume tells the visitor where its request stands, in case an update was missed while away.
    expect(await back.next('session.resumed')).toEqual({ call: null, request: { requestId, state: 'searching' } });
    await back.next('session.ready');
    expect(await back.next('routing.update', (u) => u.state === 'ringing')).toEqual({ requestId, state: 'ringing', agentName: 'Ada Lovelace' });
    await ada.next('agent.ring', (ring) => ring.requestId === requestId);

    await ada.emit('agent.accept', { requestId });
    const { callId } = await ada.next('call.accepted');
    expect(await back.next('call.accepted')).toMatchObject({ callId, role: 'answerer' });
  });

  it('expire after the window: the request was given up, and the session cannot be taken up again', async () => {
    const { url, ada, visitor, visitorTokenValue, requestId } = await ringingRequest('300');

    visitor.close();
    // The ring is withdrawn at once; the window is over when the server gives up the request.
    expect(await ada.next('agent.ringCancelled')).toEqual({ requestId });
    await expect.poll(async () => (await stored(t!.server, (store) => store.requests.get(requestId)))?.endReason, { timeout: 5_000 }).toBe('cancelled');
    const late = reconnect(url, visitorTokenValue, visitor.resumeToken);
    await late.next('session.expired');
    await late.next('session.ready');
    expect(late.saw('session.resumed')).toBe(false);
    // The fresh session works: the visitor can ask again.
    expect(await late.emit('visitor.request', { pool: 'support' })).toMatchObject({ ok: true });
  });

  it("of another person are refused, and nothing of that person's call reaches the client that presented it", async () => {
    const { url } = await server(LONG);
    const { agent: ada, agents, visitor, visitorTokenValue, callId } = await inCall(url, ['ada', 'grace']);
    const grace = agents.grace;

    visitor.close();
    await ada.next('call.paused', (p) => legLost(p, 'visitor'));
    const stolenToken = visitor.resumeToken!;

    const intruder = reconnect(url, (await visitorToken(url, 'Ivan Intruder')).token, stolenToken);
    await intruder.next('session.expired');
    await intruder.next('session.ready');
    const agentIntruder = reconnect(url, await agentToken(url, 'grace'), stolenToken);
    await agentIntruder.next('session.expired');
    await agentIntruder.next('session.ready');
    expect(await intruder.emit('session.resume', { resumeToken: stolenToken })).toEqual({ ok: true });
    await intruder.next('session.expired');

    // Neither can act on the call...
    expect(await intruder.emit('call.media', { callId, state: 'connected' })).toMatchObject({ ok: false, error: { code: 'forbidden' } });
    expect(await intruder.emit('signal.answer', { callId, sdp: SAMPLE_SDP })).toMatchObject({ ok: false, error: { code: 'forbidden' } });
    expect(await agentIntruder.emit('signal.offer', { callId, sdp: SAMPLE_SDP })).toMatchObject({ ok: false, error: { code: 'forbidden' } });
    // ...and the call did not count the intruder as the visitor coming back.
    await sleep(200);
    expect(ada.saw('call.resumed')).toBe(false);

    // The real visitor resumes; everything the call sends from now on goes to it alone.
    const back = reconnect(url, visitorTokenValue, stolenToken);
    await back.next('session.resumed', (r) => r.call?.callId === callId);
    await back.emit('call.media', { callId, state: 'connected' });
    await ada.next('call.resumed');
    await back.next('call.resumed');
    await ada.emit('signal.offer', { callId, sdp: SAMPLE_SDP });
    await ada.emit('signal.candidate', { callId, candidate: SAMPLE_CANDIDATE });
    await back.next('signal.offer');
    await back.next('signal.candidate');
    await ada.emit('call.hangup', { callId });
    await back.next('call.ended');
    await sleep(200);
    for (const outsider of [intruder, agentIntruder]) {
      const seen = outsider.events.map((e) => e.event);
      expect(seen.filter((event) => event.startsWith('signal.') || event.startsWith('call.'))).toEqual([]);
    }
    expect(grace.events.map((e) => e.event).filter((event) => event.startsWith('signal.') || event.startsWith('call.'))).toEqual([]);
  });
});
