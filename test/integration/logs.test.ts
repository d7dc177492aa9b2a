/**
 * Log hygiene, read back from a real server: a scenario of requests, rings, a reassignment, a queue, a call
 * with a lost and recovered leg and a hang-up writes JSON lines, and no line names a key twice. Each line is
 * read as raw text, since `JSON.parse` would quietly keep the last of two equal keys.
 */
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../server/src/logger.ts';
import { repeatedKeys } from '../support/jsonKeys.ts';
import { TestClient, agentToken, closeClientsThenServer, connectFailure, startTestServer, visitorToken, type TestServer } from '../support/server.ts';

let t: TestServer | null = null;
const clients: TestClient[] = [];
afterEach(async () => {
  await closeClientsThenServer(clients, t);
  t = null;
});

function capture(): { stream: Writable; lines: () => string[] } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  return { stream, lines: () => text.split('\n').filter((line) => line !== '') };
}

async function connect(url: string, token: string): Promise<TestClient> {
  const client = await TestClient.connect(url, token);
  clients.push(client);
  return client;
}

async function request(visitor: TestClient): Promise<string> {
  const ack = await visitor.emit('visitor.request', { pool: 'support' });
  if (!ack.ok || !('requestId' in ack)) throw new Error(`request refused: ${JSON.stringify(ack)}`);
  return ack.requestId;
}

describe('server logs', () => {
  it('finds a repeated key that JSON.parse would hide', () => {
    const line = '{"level":30,"requestId":"a","nested":{"x":1,"x":2},"requestId":"b"}';
    expect(JSON.parse(line)).toMatchObject({ requestId: 'b' });
    expect(repeatedKeys(line)).toEqual(['nested.x', 'requestId']);
    expect(repeatedKeys('{"a":[{"b":1},{"b":2}],"c":"\\"c\\""}')).toEqual([]);
  });

  it('never repeat a key in a line, through rings, a reassignment, a queue, a call with a lost leg and a hang-up', async () => {
    const { stream, lines } = capture();
    t = await startTestServer({ RING_TIMEOUT_MS: '60000', MAX_QUEUE_WAIT_MS: '60000' }, { logger: createLogger('debug', stream) });
    const { url } = t;
    expect(await connectFailure(url, { token: 'not-a-token' })).toBe('unauthorized');
    const wrong = await fetch(`${url}/api/agents/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'ada@example.com', password: 'wrong' }),
    });
    expect(wrong.status).toBe(401);

    const ada = await connect(url, await agentToken(url, 'ada'));
    const grace = await connect(url, await agentToken(url, 'grace'));
    const vera = await connect(url, (await visitorToken(url, 'Vera')).token);
    const walt = await connect(url, (await visitorToken(url, 'Walt')).token);

    // Vera is rung at one agent, turned down, and rung at the other, who takes her call.
    const veraRequest = await request(vera);
    const first = await Promise.race([
      ada.next('agent.ring', (r) => r.requestId === veraRequest).then(() => ({ rung: ada, other: grace })),
      grace.next('agent.ring', (r) => r.requestId === veraRequest).then(() => ({ rung: grace, other: ada })),
    ]);
    expect(await first.rung.emit('agent.reject', { requestId: veraRequest })).toEqual({ ok: true });
    await first.other.next('agent.ring', (r) => r.requestId === veraRequest);
    expect(await first.other.emit('agent.accept', { requestId: veraRequest })).toEqual({ ok: true });
    const { callId } = await first.other.next('call.accepted');
    await vera.next('call.accepted', (c) => c.callId === callId);

    // Walt finds the one free agent, who goes away: Walt waits in line.
    const waltRequest = await request(walt);
    await first.rung.next('agent.ring', (r) => r.requestId === waltRequest);
    expect(await first.rung.emit('agent.presence', { status: 'away' })).toEqual({ ok: true });
    await walt.next('routing.update', (u) => u.requestId === waltRequest && u.state === 'queued' && u.position === 1);

    // The call's agent loses and regains media; an event with a bad payload is refused.
    expect(await first.other.emit('call.media', { callId, state: 'connected' })).toEqual({ ok: true });
    expect(await vera.emit('call.media', { callId, state: 'connected' })).toEqual({ ok: true });
    expect(await first.other.emit('call.media', { callId, state: 'reconnecting', attempt: 1 })).toEqual({ ok: true });
    await vera.next('call.paused');
    expect(await first.other.emit('call.media', { callId, state: 'connected' })).toEqual({ ok: true });
    await vera.next('call.resumed');
    expect(await vera.emitRaw('call.media', { callId, state: 'sideways' })).toMatchObject({ ok: false });

    expect(await vera.emit('call.hangup', { callId })).toEqual({ ok: true });
    await first.other.next('call.ended');
    // The agent now free takes Walt from the queue, and Walt cancels while it rings.
    await first.other.next('agent.ring', (r) => r.requestId === waltRequest);
    expect(await walt.emit('visitor.cancel', { requestId: waltRequest })).toEqual({ ok: true });
    await walt.next('routing.ended', (e) => e.requestId === waltRequest);

    const written = lines();
    const messages = written.map((line) => (JSON.parse(line) as { msg?: string }).msg);
    // The scenario reached the lines that used to repeat their ids.
    expect(messages).toEqual(expect.arrayContaining(['reassignment', 'call connected', 'leg lost', 'call ended']));
    expect(messages.some((msg) => msg?.startsWith('routing '))).toBe(true);
    const repeats = written.flatMap((line) => repeatedKeys(line).map((key) => `${key} in ${line}`));
    expect(repeats).toEqual([]);
  });
});
