/**
 * Security and bad input. Every rejection is checked twice: the offender gets a clear error, and a healthy
 * call running alongside on the same server is proven untouched (its relays still arrive, nothing else
 * arrives, and its stored state and event log do not move).
 */
import { Writable } from 'node:stream';
import { SignJWT } from 'jose';
import { io as ioClient } from 'socket.io-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MAX_CANDIDATE_BYTES, MAX_SDP_BYTES, type ClientEventName } from '@callchart/machines';
import {
  SAMPLE_CANDIDATE,
  SAMPLE_SDP,
  TestClient,
  agentToken,
  connectFailure,
  getJson,
  settledStore,
  sleep,
  startTestServer,
  stored,
  visitorToken,
  type DemoAgent,
  type TestServer,
} from '../support/server.ts';
import { createLogger } from '../../server/src/logger.ts';

// Long timings: nothing in this file may be decided by a timer firing on a slow machine.
const CALM_TIMINGS = {
  RING_TIMEOUT_MS: '60000',
  AGENT_GRACE_MS: '60000',
  MAX_QUEUE_WAIT_MS: '60000',
  RECONNECTION_TIMEOUT_MS: '60000',
  RESUME_WINDOW_MS: '60000',
};

/** Long enough for a stray emit to cross loopback; the relay barrier below does the real proving. */
const SETTLE_MS = 150;

type Reply = { ok: true } | { ok: false; error: { code: string; message: string; field?: string } };

function expectError(reply: unknown, code: string, field?: string): void {
  expect(reply).toMatchObject({ ok: false, error: { code, message: expect.any(String) } });
  const error = (reply as Extract<Reply, { ok: false }>).error;
  expect(error.message.length).toBeGreaterThan(0);
  if (field === undefined) expect(error.field).toBeUndefined();
  else expect(error.field).toBe(field);
}

function expectQuiet(...clients: TestClient[]): void {
  for (const client of clients) {
    expect(client.events, 'no stray events').toEqual([]);
    expect(client.socket.connected).toBe(true);
  }
}

/** Agent logins cost a scrypt hash each, so a file logs each agent in once per server. */
function tokenCache(url: () => string) {
  const tokens = new Map<DemoAgent, Promise<string>>();
  return (agent: DemoAgent) => {
    let token = tokens.get(agent);
    if (!token) tokens.set(agent, (token = agentToken(url(), agent)));
    return token;
  };
}

interface PlacedCall {
  agent: TestClient;
  visitor: TestClient;
  callId: string;
  requestId: string;
}

/**
 * What a failed test may have left behind (a call not hung up, a request not cancelled); undone after each
 * test so one failure does not cascade into the next.
 */
const leftovers: (() => Promise<unknown>)[] = [];

/** Requests, rings, accepts and reports both media legs connected, consuming every event that brings. */
async function placeCall(visitor: TestClient, agent: TestClient, pool: string, { track = true } = {}): Promise<PlacedCall> {
  const requested = await visitor.emit('visitor.request', { pool });
  expect(requested.ok).toBe(true);
  const { requestId } = requested as { requestId: string };
  if (track) leftovers.push(() => visitor.emitRaw('visitor.cancel', { requestId }));
  await visitor.next('routing.update', (u) => u.requestId === requestId && u.state === 'searching');
  await agent.next('agent.ring', (r) => r.requestId === requestId);
  await visitor.next('routing.update', (u) => u.requestId === requestId && u.state === 'ringing');
  expect(await agent.emit('agent.accept', { requestId })).toEqual({ ok: true });
  const { callId } = await agent.next('call.accepted');
  if (track) leftovers.push(() => visitor.emitRaw('call.hangup', { callId }));
  await visitor.next('call.accepted', (c) => c.callId === callId);
  expect(await agent.emit('call.media', { callId, state: 'connected' })).toEqual({ ok: true });
  expect(await visitor.emit('call.media', { callId, state: 'connected' })).toEqual({ ok: true });
  return { agent, visitor, callId, requestId };
}

async function hangUp(call: PlacedCall): Promise<void> {
  expect(await call.visitor.emit('call.hangup', { callId: call.callId })).toEqual({ ok: true });
  expect(await call.agent.next('call.ended', (e) => e.callId === call.callId)).toEqual({ callId: call.callId, reason: 'hangup' });
  expect(await call.visitor.next('call.ended', (e) => e.callId === call.callId)).toEqual({ callId: call.callId, reason: 'hangup' });
}

/**
 * Relays one of each signaling message both ways and expects each leg to receive exactly those, in order,
 * and nothing else. Socket.IO keeps order per connection and a relay is emitted before its sender's ack, so
 * a stray message caused by anything acknowledged earlier would show up ahead of these and fail the check.
 */
async function expectRelaysWork(call: PlacedCall): Promise<void> {
  const { agent, visitor, callId } = call;
  const toVisitor = [
    ['signal.offer', { callId, sdp: SAMPLE_SDP }],
    ['signal.candidate', { callId, candidate: SAMPLE_CANDIDATE }],
    ['signal.iceRestart', { callId, sdp: SAMPLE_SDP }],
  ] as const;
  const toAgent = [
    ['signal.answer', { callId, sdp: SAMPLE_SDP }],
    ['signal.candidate', { callId, candidate: SAMPLE_CANDIDATE }],
  ] as const;
  for (const [event, payload] of toVisitor) expect(await agent.emitRaw(event, payload)).toEqual({ ok: true });
  for (const [event, payload] of toAgent) expect(await visitor.emitRaw(event, payload)).toEqual({ ok: true });
  await visitor.next('signal.iceRestart', (p) => p.callId === callId);
  await agent.next('signal.candidate', (p) => p.callId === callId);
  // next() consumed the last of each; what is left must be exactly the earlier ones, in order.
  expect(visitor.events.splice(0)).toEqual(toVisitor.slice(0, -1).map(([event, payload]) => ({ event, payload })));
  expect(agent.events.splice(0)).toEqual(toAgent.slice(0, -1).map(([event, payload]) => ({ event, payload })));
}

/** The call that must never notice anything: ada and her visitor in the sales pool, which only ada serves. */
class HealthyCall {
  private constructor(
    private readonly t: TestServer,
    readonly call: PlacedCall,
    private readonly baseline: { callEvents: number; requestEvents: number },
  ) {}

  static async open(
    t: TestServer,
    token: (agent: DemoAgent) => Promise<string>,
    session: (url: string, name: string) => Promise<{ token: string }> = visitorToken,
  ): Promise<HealthyCall> {
    const agent = await TestClient.connect(t.url, await token('ada'));
    const visitor = await TestClient.connect(t.url, (await session(t.url, 'Helen Healthy')).token);
    const call = await placeCall(visitor, agent, 'sales', { track: false });
    const store = await settledStore(t.server);
    return new HealthyCall(t, call, {
      callEvents: (await store.events.forCall(call.callId)).length,
      requestEvents: (await store.events.forRequest(call.requestId)).length,
    });
  }

  get callId(): string {
    return this.call.callId;
  }

  get requestId(): string {
    return this.call.requestId;
  }

  async assertUntouched(): Promise<void> {
    await sleep(SETTLE_MS);
    expectQuiet(this.call.agent, this.call.visitor);
    await expectRelaysWork(this.call);
    expectQuiet(this.call.agent, this.call.visitor);
    const store = await settledStore(this.t.server);
    expect(await store.calls.get(this.callId)).toMatchObject({ state: 'active', endedAt: null });
    expect(await store.events.forCall(this.callId)).toHaveLength(this.baseline.callEvents);
    expect(await store.events.forRequest(this.requestId)).toHaveLength(this.baseline.requestEvents);
    expect(await store.telemetry.forCall(this.callId)).toEqual([]);
  }
}

/** Clients a test opened; closed after it, after any call or request they hold has been ended. */
const opened: TestClient[] = [];
async function connect(url: string, token: string): Promise<TestClient> {
  const client = await TestClient.connect(url, token);
  opened.push(client);
  return client;
}
async function newVisitor(url: string, name = 'Vic Visitor'): Promise<{ client: TestClient; token: string; visitorId: string }> {
  const session = await visitorToken(url, name);
  return { client: await connect(url, session.token), ...session };
}
async function closeOpened(): Promise<void> {
  // Hang-ups before cancels: a request in a call is finished by its call's end.
  for (const undo of leftovers.splice(0).reverse()) await undo().catch(() => undefined);
  for (const client of opened.splice(0)) client.close();
}

/** Waits until the server holds exactly the healthy request and call, so no test leaks into the next. */
async function expectOnlyHealthyLeft(t: TestServer): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline) {
    const stats = t.server.switchboard.stats();
    if (stats.requests === 1 && stats.calls === 1) return;
    await sleep(25);
  }
  expect(t.server.switchboard.stats()).toEqual({ requests: 1, calls: 1 });
}

async function foreignToken(claims: { aud: string; sub: string; name: string }, secret: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ name: claims.name })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuer('callchart')
    .setAudience(claims.aud)
    .setSubject(claims.sub)
    .setIssuedAt(now)
    .setExpirationTime(now + 600)
    .sign(new TextEncoder().encode(secret));
}

/**
 * A visitor session issued just after a second boundary. With a one-second TTL a token expires at the next
 * whole second after it was issued, which may be only milliseconds away; this way it has most of a second.
 */
async function earlyInTheSecond(url: string, name: string): Promise<{ token: string; expiresAt: number }> {
  await sleep(1_000 - (Date.now() % 1_000));
  const response = await fetch(`${url}/api/visitor-session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name }),
  });
  expect(response.status).toBe(201);
  return (await response.json()) as { token: string; expiresAt: number };
}

function base64url(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

describe('security and bad input, beside a healthy call', () => {
  let t: TestServer;
  let healthy: HealthyCall;
  const token = tokenCache(() => t.url);

  beforeAll(async () => {
    t = await startTestServer(CALM_TIMINGS);
    healthy = await HealthyCall.open(t, token);
  });

  /** Grace, the one free agent in the support pool while Ada is in the healthy call, in a call with a new visitor. */
  async function graceInCallWith(visitorName: string) {
    const grace = await connect(t.url, await token('grace'));
    const visitor = await newVisitor(t.url, visitorName);
    return { grace, visitor, own: await placeCall(visitor.client, grace, 'support') };
  }
  afterEach(async () => {
    await closeOpened();
    await expectOnlyHealthyLeft(t);
  });
  afterAll(async () => {
    await closeOpened();
    healthy?.call.agent.close();
    healthy?.call.visitor.close();
    await t?.close();
  });

  describe('the Socket.IO handshake', () => {
    it('refuses a missing, malformed, forged, unsigned or wrong-audience token and a handshake with extra keys', async () => {
      const visitor = await visitorToken(t.url, 'Val Valid');
      const secret = 'another-secret-that-is-long-enough-to-sign-with';
      const forged = await foreignToken({ aud: 'visitor', sub: visitor.visitorId, name: 'Val Valid' }, secret);
      const forgedAgent = await foreignToken({ aud: 'agent', sub: 'ada', name: 'Ada Lovelace' }, secret);
      const [header, payload] = visitor.token.split('.');
      const unsigned = `${base64url({ alg: 'none', typ: 'JWT' })}.${payload!}.`;
      // Same signature, different claims: a token cannot be edited, only reissued.
      const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as Record<string, unknown>;
      const tampered = `${header!}.${base64url({ ...claims, sub: 'visitor-someone-else' })}.${visitor.token.split('.')[2]!}`;
      const resumeToken = healthy.call.visitor.resumeToken!;

      const refused: [string, unknown][] = [
        ['no auth at all', undefined],
        ['no token', {}],
        ['an empty token', { token: '' }],
        ['a token that is not a string', { token: 42 }],
        ['a malformed token', { token: 'not-a-token' }],
        ['three dotted segments of nothing', { token: 'a.b.c' }],
        ['an oversized token', { token: 'a'.repeat(5_000) }],
        ['a token signed with another secret', { token: forged }],
        ['an agent token signed with another secret', { token: forgedAgent }],
        ['an unsigned (alg none) token', { token: unsigned }],
        ['a token whose claims were edited', { token: tampered }],
        ['a resume token used as the auth token', { token: resumeToken }],
        ['a valid token with an extra key', { token: visitor.token, role: 'agent' }],
        ['a valid token with a malformed resume token', { token: visitor.token, resumeToken: 'not a token' }],
      ];
      for (const [why, auth] of refused) {
        expect(await connectFailure(t.url, auth), why).toBe('unauthorized');
      }

      // The same valid token, presented properly, is accepted: the refusals above are about what was wrong.
      const accepted = await connect(t.url, visitor.token);
      expect(accepted.socket.connected).toBe(true);
      expect(t.server.switchboard.stats()).toEqual({ requests: 1, calls: 1 });
      await healthy.assertUntouched();
    });
  });

  describe('signaling is relayed only between the two legs of the same call', () => {
    it('refuses to relay into a call the sender is not part of, and answers not-found for an unknown call', async () => {
      const { grace, visitor: intruder, own } = await graceInCallWith('Ivan Intruder');
      const bystander = await newVisitor(t.url, 'Bea Bystander');
      const target = healthy.callId;

      const relays: [ClientEventName, object][] = [
        ['signal.offer', { callId: target, sdp: SAMPLE_SDP }],
        ['signal.answer', { callId: target, sdp: SAMPLE_SDP }],
        ['signal.candidate', { callId: target, candidate: SAMPLE_CANDIDATE }],
        ['signal.iceRestart', { callId: target, sdp: SAMPLE_SDP }],
        ['signal.restartRequest', { callId: target }],
        ['call.media', { callId: target, state: 'failed' }],
        ['call.telemetry', { callId: target, attempt: 1, at: Date.now(), durationMs: 10, outcome: 'failed' }],
        ['call.hangup', { callId: target }],
      ];
      // A visitor in another call, a visitor in no call, and the agent of another call.
      for (const sender of [intruder.client, bystander.client, grace]) {
        for (const [event, payload] of relays) expectError(await sender.emitRaw(event, payload), 'forbidden');
      }
      for (const sender of [intruder.client, grace]) {
        for (const [event, payload] of relays) {
          expectError(await sender.emitRaw(event, { ...payload, callId: 'call_00000000-0000-0000-0000-000000000000' }), 'not-found');
        }
      }

      await healthy.assertUntouched();
      expectQuiet(grace, intruder.client, bystander.client);
      // The intruder's own call was not disturbed either: it still relays, to its own peer only.
      await expectRelaysWork(own);
      expect(await stored(t.server, (store) => store.calls.get(own.callId))).toMatchObject({ state: 'active' });
      await hangUp(own);
    });

    it('forgets a socket\'s call when it ends: the next call relays to its own visitor only, and the ended one is refused', async () => {
      const { grace, visitor: first, own: earlier } = await graceInCallWith('Fran First');
      await expectRelaysWork(earlier);
      await hangUp(earlier);
      for (const sender of [grace, first.client]) {
        expectError(await sender.emitRaw('signal.candidate', { callId: earlier.callId, candidate: SAMPLE_CANDIDATE }), 'not-found');
      }

      const second = await newVisitor(t.url, 'Sam Second');
      const later = await placeCall(second.client, grace, 'support');
      await expectRelaysWork(later);
      expectError(await grace.emitRaw('signal.offer', { callId: earlier.callId, sdp: SAMPLE_SDP }), 'not-found');
      // Bound to its own call, the agent's socket is still refused another's.
      expectError(await grace.emitRaw('signal.offer', { callId: healthy.callId, sdp: SAMPLE_SDP }), 'forbidden');
      expectError(await first.client.emitRaw('signal.answer', { callId: later.callId, sdp: SAMPLE_SDP }), 'forbidden');
      await sleep(SETTLE_MS);
      expectQuiet(first.client, second.client, grace);
      await hangUp(later);
      await healthy.assertUntouched();
    });

    it('keeps each leg to its role: only the agent offers (ICE restarts included), only the visitor answers, and nothing refused is relayed', async () => {
      const { grace, visitor, own } = await graceInCallWith('Rhea Roles');
      const refused: [TestClient, ClientEventName, object, RegExp][] = [
        [visitor.client, 'signal.offer', { callId: own.callId, sdp: SAMPLE_SDP }, /Only the offerer \(the agent\)/],
        [visitor.client, 'signal.iceRestart', { callId: own.callId, sdp: SAMPLE_SDP }, /Only the offerer \(the agent\)/],
        [grace, 'signal.answer', { callId: own.callId, sdp: SAMPLE_SDP }, /Only the answerer \(the visitor\)/],
        [grace, 'signal.restartRequest', { callId: own.callId }, /Only the answerer \(the visitor\)/],
      ];
      for (const [sender, event, payload, message] of refused) {
        const reply = await sender.emitRaw(event, payload);
        expectError(reply, 'forbidden');
        expect((reply as Extract<Reply, { ok: false }>).error.message, event).toMatch(message);
      }
      await sleep(SETTLE_MS);
      expectQuiet(grace, visitor.client);
      // The call itself is untouched: each leg's own signals still go through.
      await expectRelaysWork(own);
      expect(await stored(t.server, (store) => store.calls.get(own.callId))).toMatchObject({ state: 'active', endedAt: null });
      await hangUp(own);
      await healthy.assertUntouched();
    });

    it('lets only the visitor ask for an ICE restart, and refuses a relay whose peer has no socket with peer-unavailable, sending nothing later', async () => {
      const graceToken = await token('grace');
      const grace = await connect(t.url, graceToken);
      const caller = await newVisitor(t.url, 'Rita Restart');
      const own = await placeCall(caller.client, grace, 'support');
      const callId = own.callId;

      expect(await caller.client.emit('signal.restartRequest', { callId })).toEqual({ ok: true });
      expect(await grace.next('signal.restartRequest')).toEqual({ callId });
      // The offerer decides when to restart: an agent asking the visitor is refused, and nothing reaches the visitor.
      expectError(await grace.emitRaw('signal.restartRequest', { callId }), 'forbidden');
      expectError(await grace.emitRaw('signal.restartRequest', { callId: 'not an id' }), 'invalid-payload', 'callId');

      // The agent's socket goes: what the visitor sends meanwhile is refused, not held for later.
      const resumeToken = grace.resumeToken;
      if (!resumeToken) throw new Error('the agent never received a resume token');
      grace.close();
      await caller.client.next('call.paused', (p) => p.legs.agent.socket === 'down');
      const refused: [ClientEventName, object][] = [
        ['signal.answer', { callId, sdp: SAMPLE_SDP }],
        ['signal.candidate', { callId, candidate: SAMPLE_CANDIDATE }],
        ['signal.restartRequest', { callId }],
      ];
      for (const [event, payload] of refused) expectError(await caller.client.emitRaw(event, payload), 'peer-unavailable');
      expect(await stored(t.server, (store) => store.calls.get(callId))).toMatchObject({ state: 'paused', endedAt: null });

      const back = await TestClient.connect(t.url, graceToken, resumeToken);
      opened.push(back);
      await sleep(SETTLE_MS);
      expect(back.saw('signal.answer') || back.saw('signal.candidate') || back.saw('signal.restartRequest')).toBe(false);
      // Relays work again the moment the peer is back.
      expect(await caller.client.emit('signal.answer', { callId, sdp: SAMPLE_SDP })).toEqual({ ok: true });
      expect(await back.next('signal.answer')).toEqual({ callId, sdp: SAMPLE_SDP });
      await hangUp({ ...own, agent: back });
      await healthy.assertUntouched();
    });

    it("does not hand a call to someone presenting another visitor's resume token", async () => {
      const thief = await visitorToken(t.url, 'Theo Thief');
      const stolen = healthy.call.visitor.resumeToken!;
      const client = new TestClient(t.url, thief.token, stolen);
      opened.push(client);
      await client.next('session.expired');
      await client.next('session.ready');
      expect(client.saw('session.resumed')).toBe(false);

      expect(await client.emit('session.resume', { resumeToken: stolen })).toEqual({ ok: true });
      await client.next('session.expired');
      expectError(await client.emitRaw('signal.answer', { callId: healthy.callId, sdp: SAMPLE_SDP }), 'forbidden');

      // The healthy call's relays reach its own visitor only; the thief's socket joined none of its rooms.
      await healthy.assertUntouched();
      expectQuiet(client);
    });
  });

  describe('a socket can act only in its own role, on its own request and ring', () => {
    it("refuses an agent answering a ring meant for another agent, and the ring stays with the right agent", async () => {
      // ada is busy in the healthy call, so grace, alone in the support pool, is the one rung.
      const grace = await connect(t.url, await token('grace'));
      const caller = await newVisitor(t.url, 'Cal Caller');
      const requested = await caller.client.emit('visitor.request', { pool: 'support' });
      const { requestId } = requested as { requestId: string };
      leftovers.push(() => caller.client.emitRaw('visitor.cancel', { requestId }));
      await caller.client.next('routing.update', (u) => u.state === 'searching');
      const ring = await grace.next('agent.ring', (r) => r.requestId === requestId);
      expect(ring.visitorName).toBe('Cal Caller');
      await caller.client.next('routing.update', (u) => u.state === 'ringing');

      // alan comes online while grace is being rung; he is not rung for a request that is already ringing.
      const alan = await connect(t.url, await token('alan'));
      const ada = healthy.call.agent;
      for (const other of [alan, ada]) {
        expectError(await other.emit('agent.accept', { requestId }), 'forbidden');
        expectError(await other.emit('agent.reject', { requestId }), 'forbidden');
      }
      expectError(await alan.emit('agent.accept', { requestId: 'req_unknown' }), 'forbidden');
      // The visitor cannot answer its own ring either.
      expectError(await caller.client.emitRaw('agent.accept', { requestId }), 'forbidden');

      await sleep(SETTLE_MS);
      expectQuiet(grace, alan, caller.client);
      expect(await stored(t.server, (store) => store.requests.get(requestId))).toMatchObject({ state: 'ringing', endedAt: null });
      const states = (await stored(t.server, (store) => store.events.forRequest(requestId))).map((e) => e.toState);
      expect(states).toEqual(['searching', 'ringing']);

      // The ring is still grace's to take.
      expect(await grace.emit('agent.accept', { requestId })).toEqual({ ok: true });
      const accepted = await grace.next('call.accepted');
      await caller.client.next('call.accepted', (c) => c.callId === accepted.callId);
      expect(alan.saw('call.accepted')).toBe(false);
      await healthy.assertUntouched();
      await hangUp({ agent: grace, visitor: caller.client, callId: accepted.callId, requestId });
      expectQuiet(alan);
    });

    it('refuses agent events from a visitor and visitor events from an agent', async () => {
      const grace = await connect(t.url, await token('grace'));
      const visitor = await newVisitor(t.url, 'Rita Role');
      const agentOnly: [ClientEventName, object][] = [
        ['agent.accept', { requestId: healthy.requestId }],
        ['agent.reject', { requestId: healthy.requestId }],
        ['agent.presence', { status: 'away' }],
        ['agent.logout', {}],
      ];
      for (const [event, payload] of agentOnly) expectError(await visitor.client.emitRaw(event, payload), 'forbidden');
      // Not even the healthy call's visitor may act as an agent on her own request.
      for (const [event, payload] of agentOnly) expectError(await healthy.call.visitor.emitRaw(event, payload), 'forbidden');

      const visitorOnly: [ClientEventName, object][] = [
        ['visitor.request', { pool: 'support' }],
        ['visitor.cancel', { requestId: healthy.requestId }],
      ];
      for (const [event, payload] of visitorOnly) expectError(await grace.emitRaw(event, payload), 'forbidden');
      for (const [event, payload] of visitorOnly) expectError(await healthy.call.agent.emitRaw(event, payload), 'forbidden');

      expect(t.server.switchboard.stats()).toEqual({ requests: 1, calls: 1 });
      await healthy.assertUntouched();
      expectQuiet(grace, visitor.client);
    });

    it("refuses cancelling someone else's request and a second request while one is live", async () => {
      // ada is the only sales agent and she is busy, so this request waits in the queue.
      const waiting = await newVisitor(t.url, 'Quinn Queued');
      const requested = await waiting.client.emit('visitor.request', { pool: 'sales' });
      const { requestId } = requested as { requestId: string };
      leftovers.push(() => waiting.client.emitRaw('visitor.cancel', { requestId }));
      await waiting.client.next('routing.update', (u) => u.state === 'searching');
      // Queued is told at once, then again with the position once the server has counted the line.
      expect(await waiting.client.next('routing.update', (u) => u.state === 'queued')).toEqual({ requestId, state: 'queued' });
      expect(await waiting.client.next('routing.update', (u) => u.state === 'queued')).toEqual({ requestId, state: 'queued', position: 1 });

      const other = await newVisitor(t.url, 'Otto Other');
      expectError(await other.client.emit('visitor.cancel', { requestId }), 'forbidden');
      expectError(await other.client.emit('visitor.cancel', { requestId: healthy.requestId }), 'forbidden');
      expectError(await other.client.emit('visitor.cancel', { requestId: 'req_unknown' }), 'not-found');

      expectError(await waiting.client.emit('visitor.request', { pool: 'sales' }), 'conflict');
      expectError(await waiting.client.emit('visitor.request', { pool: 'support' }), 'conflict');
      // The healthy visitor is in a call: that is a live request too.
      expectError(await healthy.call.visitor.emit('visitor.request', { pool: 'support' }), 'conflict');
      expect(t.server.switchboard.stats()).toEqual({ requests: 2, calls: 1 });

      await sleep(SETTLE_MS);
      expectQuiet(waiting.client, other.client);
      await healthy.assertUntouched();

      // The request still belongs to its visitor, who can cancel it.
      expect(await waiting.client.emit('visitor.cancel', { requestId })).toEqual({ ok: true });
      expect(await waiting.client.next('routing.ended')).toEqual({ requestId, reason: 'cancelled' });
    });
    it('a visitor who cancels its own request mid-call cannot keep that call and open a second request beside it', async () => {
      const { grace, visitor, own } = await graceInCallWith('Carl Canceller');

      expect(await visitor.client.emit('visitor.cancel', { requestId: own.requestId })).toEqual({ ok: true });
      expect(await visitor.client.next('routing.ended')).toEqual({ requestId: own.requestId, reason: 'cancelled' });
      // The request was the call's reason to exist: both legs are told the call is over.
      expect(await visitor.client.next('call.ended')).toEqual({ callId: own.callId, reason: 'hangup' });
      expect(await grace.next('call.ended')).toEqual({ callId: own.callId, reason: 'hangup' });
      expect(await stored(t.server, (store) => store.calls.get(own.callId))).toMatchObject({ state: 'ended', endReason: 'hangup' });
      expect(t.server.switchboard.stats()).toEqual({ requests: 1, calls: 1 });
      expectError(await visitor.client.emit('signal.offer', { callId: own.callId, sdp: SAMPLE_SDP }), 'not-found');

      // Only now, with nothing live, may the visitor ask again; grace is free again and is rung.
      const again = await visitor.client.emit('visitor.request', { pool: 'support' });
      expect(again.ok).toBe(true);
      const { requestId } = again as { requestId: string };
      leftovers.push(() => visitor.client.emitRaw('visitor.cancel', { requestId }));
      await grace.next('agent.ring', (r) => r.requestId === requestId);
      expect(await visitor.client.emit('visitor.cancel', { requestId })).toEqual({ ok: true });
      await grace.next('agent.ringCancelled', (r) => r.requestId === requestId);
      await healthy.assertUntouched();
    });
  });

  describe('malformed payloads', () => {
    it('rejects a missing field, a wrong type, an extra key, a non-object and a non-SDP, naming the field', async () => {
      const { grace, visitor: sender, own } = await graceInCallWith('Mal Formed');
      const { callId } = own;
      const callEventsBefore = (await stored(t.server, (store) => store.events.forCall(callId))).length;
      const longKey = 'k'.repeat(200);

      const cases: [ClientEventName, unknown, string | undefined, RegExp][] = [
        ['signal.offer', { callId }, 'sdp', /^Field "sdp" is required\.$/],
        ['signal.offer', { sdp: SAMPLE_SDP }, 'callId', /^Field "callId" is required\.$/],
        ['signal.offer', { callId: 42, sdp: SAMPLE_SDP }, 'callId', /must be a string/],
        ['signal.offer', { callId, sdp: ['v=0'] }, 'sdp', /must be a string/],
        ['signal.offer', { callId, sdp: SAMPLE_SDP, extra: true }, 'extra', /is not an allowed field/],
        ['signal.offer', 'v=0', undefined, /^The payload must be an object\.$/],
        ['signal.offer', null, undefined, /^The payload must be an object\.$/],
        ['signal.offer', [callId, SAMPLE_SDP], undefined, /^The payload must be an object\.$/],
        ['signal.offer', undefined, undefined, /^The payload must be an object\.$/],
        ['signal.offer', { callId, sdp: 'o=- 1 2 IN IP4 127.0.0.1' }, 'sdp', /starting with "v=0"/],
        ['signal.answer', { callId, sdp: '' }, 'sdp', /starting with "v=0"/],
        ['signal.iceRestart', { callId, sdp: ' v=0' }, 'sdp', /starting with "v=0"/],
        ['signal.offer', { callId: 'call id with spaces', sdp: SAMPLE_SDP }, 'callId', /may only contain/],
        ['signal.candidate', { callId }, 'candidate', /is required/],
        ['signal.candidate', { callId, candidate: 'candidate:1' }, 'candidate', /must be an object/],
        ['signal.candidate', { callId, candidate: { candidate: 'a=foo' } }, 'candidate.candidate', /candidate:/],
        ['signal.candidate', { callId, candidate: { ...SAMPLE_CANDIDATE, sdpMLineIndex: -1 } }, 'candidate.sdpMLineIndex', /at least 0/],
        ['signal.candidate', { callId, candidate: { ...SAMPLE_CANDIDATE, port: 1 } }, 'candidate.port', /is not an allowed field/],
        ['signal.offer', { callId, sdp: SAMPLE_SDP, [longKey]: 1 }, `${'k'.repeat(64)}…`, /is not an allowed field/],
        ['call.media', { callId, state: 'exploded' }, 'state', /must be one of/],
        ['call.media', { callId, state: 'reconnecting', attempt: 0 }, 'attempt', /at least 1/],
        ['call.telemetry', { callId, at: Date.now(), durationMs: 5, outcome: 'recovered' }, 'attempt', /is required/],
        ['call.hangup', { callId, reason: 'hangup' }, 'reason', /is not an allowed field/],
        ['visitor.request', { pool: '' }, 'pool', /must not be empty/],
        ['visitor.request', { pool: 'support', name: 'Eve\nAdmin: hello' }, 'name', /control characters/],
        ['visitor.cancel', {}, 'requestId', /is required/],
        ['session.resume', { resumeToken: 7 }, 'resumeToken', /must be a string/],
        ['agent.logout', { everyone: true }, 'everyone', /is not an allowed field/],
      ];
      for (const [event, payload, field, message] of cases) {
        const reply = await sender.client.emitRaw(event, payload);
        const why = `${event} ${JSON.stringify(payload)?.slice(0, 80)}`;
        expect(reply, why).toMatchObject({ ok: false, error: { code: 'invalid-payload' } });
        const error = (reply as Extract<Reply, { ok: false }>).error;
        expect(error.field, why).toBe(field);
        expect(error.message, why).toMatch(message);
      }
      // Validation comes before the role check, so an agent learns the field too.
      expectError(await grace.emitRaw('agent.presence', { status: 'busy' }), 'invalid-payload', 'status');

      await sleep(SETTLE_MS);
      expectQuiet(grace, sender.client);
      expect(await stored(t.server, (store) => store.events.forCall(callId))).toHaveLength(callEventsBefore);
      expect(await stored(t.server, (store) => store.calls.get(callId))).toMatchObject({ state: 'active' });
      expect(t.server.switchboard.stats()).toEqual({ requests: 2, calls: 2 });
      await healthy.assertUntouched();
      await hangUp(own);
    });

    it('rejects an SDP over 64 KiB and a candidate over 2 KiB, and relays both at exactly the limit', async () => {
      const { grace, visitor: sender, own } = await graceInCallWith('Big Sender');
      const { callId } = own;
      const head = 'v=0\r\n';
      const sdpAtLimit = head + 'a'.repeat(MAX_SDP_BYTES - head.length);
      const sdpOver = sdpAtLimit + 'a';
      // Bytes, not characters: 32 771 characters, 65 537 bytes of UTF-8.
      const sdpOverInBytes = head + 'é'.repeat((MAX_SDP_BYTES + 1 - head.length) / 2);
      expect(Buffer.byteLength(sdpOver)).toBe(MAX_SDP_BYTES + 1);
      expect(Buffer.byteLength(sdpOverInBytes)).toBe(MAX_SDP_BYTES + 1);
      expect(sdpOverInBytes.length).toBeLessThan(MAX_SDP_BYTES / 2 + 10);
      const prefix = 'candidate:';
      const candidateAtLimit = prefix + 'x'.repeat(MAX_CANDIDATE_BYTES - prefix.length);
      const candidateOver = candidateAtLimit + 'x';
      expect(Buffer.byteLength(candidateOver)).toBe(MAX_CANDIDATE_BYTES + 1);

      for (const event of ['signal.offer', 'signal.answer', 'signal.iceRestart'] as const) {
        for (const sdp of [sdpOver, sdpOverInBytes]) {
          const reply = await sender.client.emitRaw(event, { callId, sdp });
          expectError(reply, 'invalid-payload', 'sdp');
          expect((reply as Extract<Reply, { ok: false }>).error.message).toBe(`Field "sdp" must be at most ${MAX_SDP_BYTES} bytes of UTF-8.`);
        }
      }
      const overCandidate = await sender.client.emitRaw('signal.candidate', { callId, candidate: { ...SAMPLE_CANDIDATE, candidate: candidateOver } });
      expectError(overCandidate, 'invalid-payload', 'candidate.candidate');
      expect((overCandidate as Extract<Reply, { ok: false }>).error.message).toBe(
        `Field "candidate.candidate" must be at most ${MAX_CANDIDATE_BYTES} bytes of UTF-8.`,
      );
      // A rejected message is not echoed back: the error never quotes the input.
      expect(JSON.stringify(overCandidate).length).toBeLessThan(500);

      await sleep(SETTLE_MS);
      expectQuiet(grace, sender.client);

      // At the limit both are valid and reach the peer intact, and only the peer.
      expect(await sender.client.emit('signal.answer', { callId, sdp: sdpAtLimit })).toEqual({ ok: true });
      expect(await grace.next('signal.answer')).toEqual({ callId, sdp: sdpAtLimit });
      const candidate = { ...SAMPLE_CANDIDATE, candidate: candidateAtLimit };
      expect(await grace.emit('signal.candidate', { callId, candidate })).toEqual({ ok: true });
      expect(await sender.client.next('signal.candidate')).toEqual({ callId, candidate });
      expectQuiet(grace, sender.client);
      await healthy.assertUntouched();
      await hangUp(own);
    });

    it('answers an unknown event name with unknown-event, prototype names included', async () => {
      const visitor = await newVisitor(t.url, 'Una Known');
      for (const event of ['signal.bogus', 'call.transfer', 'toString', '__proto__', 'constructor', 'hasOwnProperty', 'error', '']) {
        expectError(await visitor.client.emitRaw(event, { callId: healthy.callId }), 'unknown-event');
      }
      await sleep(SETTLE_MS);
      expectQuiet(visitor.client);
      await healthy.assertUntouched();
    });

    it('sends an error event when a rejected message came without an acknowledgement callback', async () => {
      const visitor = await newVisitor(t.url, 'Noah Ack');
      visitor.client.socket.emit('signal.offer', { callId: healthy.callId });
      expect(await visitor.client.next('error')).toEqual({
        code: 'invalid-payload',
        message: 'Field "sdp" is required.',
        field: 'sdp',
      });
      visitor.client.socket.emit('signal.offer', { callId: healthy.callId, sdp: SAMPLE_SDP });
      expect(await visitor.client.next('error')).toMatchObject({ code: 'forbidden' });
      visitor.client.socket.emit('signal.nonsense', {});
      expect(await visitor.client.next('error')).toMatchObject({ code: 'unknown-event' });
      visitor.client.socket.emit('visitor.cancel', { requestId: 'req_unknown' });
      expect(await visitor.client.next('error')).toMatchObject({ code: 'not-found' });

      await sleep(SETTLE_MS);
      expectQuiet(visitor.client);
      await healthy.assertUntouched();
    });

    it('survives hand-written packets that a well-behaved client library would never send', async () => {
      const visitor = await newVisitor(t.url, 'Pat Packet');
      // Socket.IO EVENT packets (type 2) written straight to the engine, with no acknowledgement id.
      const write = (packet: string) => visitor.client.socket.io.engine.write(`2${packet}`);
      // Nested 60 000 deep: the client library's JSON.stringify would overflow its own stack on this.
      const deep = `${'['.repeat(60_000)}${']'.repeat(60_000)}`;
      const packets: [string, object][] = [
        [`["signal.offer",${deep}]`, { code: 'invalid-payload', message: 'The payload must be an object.' }],
        [`["signal.offer",{"callId":"x","sdp":"v=0","extra":${deep}}]`, { code: 'invalid-payload', field: 'extra' }],
        ['["signal.offer",{"callId":"x","sdp":"v=0","__proto__":{"admin":true}}]', { code: 'invalid-payload', field: '__proto__' }],
        ['["signal.offer"]', { code: 'invalid-payload', message: 'The payload must be an object.' }],
        ['["__proto__",{}]', { code: 'unknown-event' }],
        ['[42,{}]', { code: 'unknown-event' }],
      ];
      for (const [packet, error] of packets) {
        write(packet);
        expect(await visitor.client.next('error'), packet.slice(0, 60)).toMatchObject(error);
      }
      expectQuiet(visitor.client);

      // A packet Socket.IO cannot decode at all closes that one connection, and only that one.
      const broken = await newVisitor(t.url, 'Bruno Broken');
      const closed = new Promise<string>((resolve) => broken.client.socket.once('disconnect', resolve));
      broken.client.socket.io.engine.write('2{"not":"an event"}');
      expect(await closed).toBe('transport close');
      expectError(await visitor.client.emit('visitor.cancel', { requestId: 'req_unknown' }), 'not-found');
      await sleep(SETTLE_MS);
      expectQuiet(visitor.client);
      await healthy.assertUntouched();
    });

    it('accepts a valid message without a callback silently', async () => {
      const { grace, visitor: sender, own } = await graceInCallWith('Sam Silent');
      sender.client.socket.emit('signal.answer', { callId: own.callId, sdp: SAMPLE_SDP });
      expect(await grace.next('signal.answer')).toEqual({ callId: own.callId, sdp: SAMPLE_SDP });
      await sleep(SETTLE_MS);
      expectQuiet(grace, sender.client);
      await healthy.assertUntouched();
      await hangUp(own);
    });

    it("disconnects only the socket that sends a message over Socket.IO's buffer limit", async () => {
      const session = await visitorToken(t.url, 'Olga Oversize');
      const offender = await connect(t.url, session.token);
      const sibling = await connect(t.url, session.token);
      const disconnected = new Promise<string>((resolve) => offender.socket.once('disconnect', resolve));
      offender.socket.emit('signal.offer', { callId: healthy.callId, sdp: `v=0\r\n${'a'.repeat(300 * 1024)}` });
      expect(await disconnected).toMatch(/transport (close|error)/);

      // The same visitor's other socket, everyone else, and new connections carry on.
      expect(sibling.socket.connected).toBe(true);
      expectError(await sibling.emit('visitor.cancel', { requestId: 'req_unknown' }), 'not-found');
      const newcomer = await newVisitor(t.url, 'Nina Newcomer');
      expectError(await newcomer.client.emit('visitor.cancel', { requestId: 'req_unknown' }), 'not-found');
      expect(offender.events.map((e) => e.event)).toEqual([]);
      await healthy.assertUntouched();
      expectQuiet(sibling, newcomer.client);
      const health = await fetch(`${t.url}/healthz`);
      expect(health.status).toBe(200);
    });
  });

  describe('the HTTP API', () => {
    it('refuses a wrong password and an unknown email alike with 401', async () => {
      const post = (body: object) =>
        fetch(`${t.url}/api/agents/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const wrongPassword = await post({ email: 'ada@example.com', password: 'demo-grace' });
      const unknownEmail = await post({ email: 'mallory@example.com', password: 'demo-ada' });
      expect(wrongPassword.status).toBe(401);
      expect(unknownEmail.status).toBe(401);
      const bodies = [await wrongPassword.json(), await unknownEmail.json()];
      expect(bodies[0]).toEqual({ error: { code: 'unauthorized', message: 'The email or password is incorrect.' } });
      // Nothing tells an attacker which of the two was wrong.
      expect(bodies[1]).toEqual(bodies[0]);
      expect(wrongPassword.headers.get('www-authenticate')).toBe('Bearer');
      expect(wrongPassword.headers.get('cache-control')).toBe('no-store');
      expect((await post({ email: 'ada@example.com', password: 'demo-ada' })).status).toBe(200);
    });

    it('guards call history: 401 without a valid token, 403 for a visitor, 404 for another agent’s call', async () => {
      const callsUrl = `${t.url}/api/calls`;
      const noToken = await fetch(callsUrl);
      expect(noToken.status).toBe(401);
      expect(await noToken.json()).toMatchObject({ error: { code: 'unauthorized' } });
      expect(noToken.headers.get('www-authenticate')).toBe('Bearer');
      const forged = await foreignToken({ aud: 'agent', sub: 'ada', name: 'Ada Lovelace' }, 'another-secret-that-is-long-enough-to-sign-with');
      for (const bad of ['garbage', forged, healthy.call.visitor.resumeToken!]) {
        const reply = await getJson<{ error: { code: string } }>(callsUrl, bad);
        expect(reply.status).toBe(401);
        expect(reply.body.error.code).toBe('unauthorized');
      }

      const visitor = await visitorToken(t.url, 'Vince Visitor');
      for (const url of [callsUrl, `${callsUrl}/${healthy.callId}`, `${callsUrl}/${healthy.callId}/export?format=csv`]) {
        const reply = await getJson<{ error: { code: string } }>(url, visitor.token);
        expect(reply.status, url).toBe(403);
        expect(reply.body.error.code).toBe('forbidden');
      }

      // grace may not read ada's call, and cannot even tell it from a call that does not exist.
      const grace = await token('grace');
      const missing = await getJson<unknown>(`${callsUrl}/call_00000000-0000-0000-0000-000000000000`, grace);
      expect(missing.status).toBe(404);
      for (const url of [`${callsUrl}/${healthy.callId}`, `${callsUrl}/${healthy.callId}/export?format=json`, `${callsUrl}/${healthy.callId}/export?format=csv`]) {
        const reply = await getJson<unknown>(url, grace);
        expect(reply.status, url).toBe(404);
        expect(reply.body).toEqual(missing.body);
      }
      const graceList = await getJson<{ calls: { id: string }[] }>(callsUrl, grace);
      expect(graceList.status).toBe(200);
      expect(graceList.body.calls.map((c) => c.id)).not.toContain(healthy.callId);

      // The call exists: its own agent and the inspector can read it.
      for (const reader of ['ada', 'inspector'] as const) {
        const reply = await getJson<{ call: { id: string } }>(`${callsUrl}/${healthy.callId}`, await token(reader));
        expect(reply.status, reader).toBe(200);
        expect(reply.body.call.id).toBe(healthy.callId);
      }
      await healthy.assertUntouched();
    });
  });

  describe('after all of that', () => {
    it('is still serving: a fresh call completes end to end, and so does the healthy one', async () => {
      const alan = await connect(t.url, await token('alan'));
      const fresh = await newVisitor(t.url, 'Fay Fresh');
      const call = await placeCall(fresh.client, alan, 'support');
      await expectRelaysWork(call);
      await hangUp(call);
      expect(await stored(t.server, (store) => store.calls.get(call.callId))).toMatchObject({ state: 'ended', endReason: 'hangup' });
      expectQuiet(alan, fresh.client);

      await healthy.assertUntouched();
      await hangUp(healthy.call);
      expect(await stored(t.server, (store) => store.calls.get(healthy.callId))).toMatchObject({ state: 'ended', endReason: 'hangup' });
      const states = (await stored(t.server, (store) => store.events.forRequest(healthy.requestId))).filter((e) => e.actor === 'routing').map((e) => e.toState);
      expect(states).toEqual(['searching', 'ringing', 'connected.agentPresent', 'done']);
      // Start the next healthy call so the afterEach invariant (one request, one call) still holds.
      healthy.call.agent.close();
      healthy.call.visitor.close();
      healthy = await HealthyCall.open(t, token);
    });
  });
});

describe('an expired visitor token', () => {
  let t: TestServer;
  let healthy: HealthyCall;
  const token = tokenCache(() => t.url);

  beforeAll(async () => {
    t = await startTestServer({ ...CALM_TIMINGS, VISITOR_TOKEN_TTL_SECONDS: '1' });
    healthy = await HealthyCall.open(t, token, earlyInTheSecond);
  });
  afterAll(async () => {
    await closeOpened();
    healthy?.call.agent.close();
    healthy?.call.visitor.close();
    await t?.close();
  });

  it('is refused at the handshake and by the API once it has expired, and a call already running goes on', async () => {
    const session = await earlyInTheSecond(t.url, 'Tess Timeout');
    expect(session.expiresAt - Date.now()).toBeLessThanOrEqual(1_000);
    // Valid while fresh: the refusal below is the expiry, nothing else.
    const fresh = await connect(t.url, session.token);
    fresh.close();
    expect((await getJson(`${t.url}/api/calls`, session.token)).status).toBe(403);

    await sleep(Math.max(0, session.expiresAt - Date.now()) + 100);
    expect(await connectFailure(t.url, { token: session.token })).toBe('unauthorized');
    const api = await getJson<{ error: { code: string } }>(`${t.url}/api/calls`, session.token);
    expect(api.status).toBe(401);
    expect(api.body.error.code).toBe('unauthorized');

    // The healthy visitor's token has expired too; a token is checked at the handshake, not mid-call.
    await healthy.assertUntouched();
    expect(t.server.switchboard.stats()).toEqual({ requests: 1, calls: 1 });
  });
});

describe('a refused handshake', () => {
  it('is logged with its reason and the source address, and never with the token', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(...String(chunk).split('\n').filter(Boolean));
        done();
      },
    });
    const t = await startTestServer(CALM_TIMINGS, { logger: createLogger('debug', sink) });
    try {
      const forged = await foreignToken({ aud: 'visitor', sub: 'visitor-someone', name: 'Fay Forged' }, 'another-secret-that-is-long-enough-to-sign-with');
      const valid = await visitorToken(t.url, 'Otto Origin');
      expect(await connectFailure(t.url, {})).toBe('unauthorized');
      expect(await connectFailure(t.url, { token: forged })).toBe('unauthorized');
      const fromElsewhere = await new Promise<string>((resolve) => {
        const socket = ioClient(t.url, { transports: ['websocket'], auth: { token: valid.token }, reconnection: false, extraHeaders: { origin: 'https://elsewhere.test' } });
        socket.on('connect_error', (error) => {
          socket.close();
          resolve(error.message);
        });
      });
      expect(fromElsewhere).toBe('origin-not-allowed');
      const refused = lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line.msg === 'socket refused');
      expect(refused).toEqual([
        expect.objectContaining({ reason: 'no-token', code: 'unauthorized', address: expect.stringMatching(/127\.0\.0\.1/) }),
        expect.objectContaining({ reason: 'token-invalid', code: 'unauthorized', address: expect.stringMatching(/127\.0\.0\.1/) }),
        expect.objectContaining({ reason: 'origin-not-allowed', code: 'origin-not-allowed', origin: 'https://elsewhere.test', address: expect.stringMatching(/127\.0\.0\.1/) }),
      ]);
      const everything = lines.join('\n');
      for (const token of [forged, valid.token]) expect(everything).not.toContain(token.split('.')[2]!);
    } finally {
      await t.close();
    }
  });
});
