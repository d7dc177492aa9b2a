/**
 * Socket.IO's long-polling transport is plain HTTP that any page can send. A page from an origin the
 * allowlist (ALLOWED_ORIGINS) leaves out is refused at its very first request, before a session exists;
 * allowed pages, the server's own, and clients that send no Origin (no browser) still poll.
 */
import { Writable } from 'node:stream';
import { io, type Socket } from 'socket.io-client';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../server/src/logger.ts';
import { closeClientsThenServer, startTestServer, visitorToken, type TestServer } from '../support/server.ts';

let t: TestServer | null = null;
const sockets: Socket[] = [];

afterEach(async () => {
  await closeClientsThenServer(sockets, t);
  t = null;
});

/** The polling transport's opening request, as a page on `origin` would send it. */
async function pollingHandshake(url: string, origin?: string): Promise<{ status: number; body: string }> {
  const response = await fetch(`${url}/socket.io/?EIO=4&transport=polling`, { headers: origin ? { origin } : {} });
  return { status: response.status, body: await response.text() };
}

/** A real client on the polling transport alone: `connected`, or the refusal's message. */
function pollFrom(url: string, token: string, origin?: string): Promise<string> {
  const socket = io(url, { auth: { token }, transports: ['polling'], reconnection: false, forceNew: true, ...(origin ? { extraHeaders: { origin } } : {}) });
  sockets.push(socket);
  return new Promise((resolve) => {
    socket.once('connect', () => resolve('connected'));
    socket.once('connect_error', (error) => resolve(error.message));
  });
}

const opened = (reply: { status: number; body: string }) => reply.status === 200 && reply.body.includes('"sid"');

describe('the polling transport from other origins', () => {
  it('by default opens only for loopback pages, the server itself and clients without an Origin, and logs each refusal', async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    t = await startTestServer({}, { logger: createLogger('info', sink) });
    const refused = await pollingHandshake(t.url, 'https://evil.example');
    expect(refused.status).toBe(403);
    expect(JSON.parse(refused.body)).toEqual({ code: 4, message: 'origin-not-allowed' });
    expect(lines.filter((line) => line.msg === 'socket refused')).toEqual([
      expect.objectContaining({ code: 'origin-not-allowed', transport: 'polling', origin: 'https://evil.example', address: expect.stringMatching(/127\.0\.0\.1/) }),
    ]);
    expect(opened(await pollingHandshake(t.url, 'http://localhost:5173'))).toBe(true);
    expect(opened(await pollingHandshake(t.url, t.url))).toBe(true);
    expect(opened(await pollingHandshake(t.url))).toBe(true);
  });

  it('follows ALLOWED_ORIGINS: a listed site polls, any other is refused, and a real client says it could not connect', async () => {
    t = await startTestServer({ ALLOWED_ORIGINS: 'https://shop.example' });
    expect(opened(await pollingHandshake(t.url, 'https://shop.example'))).toBe(true);
    expect((await pollingHandshake(t.url, 'http://localhost:5173')).status).toBe(403);
    expect((await pollingHandshake(t.url, 'https://shop.example.evil.example')).status).toBe(403);

    const session = await fetch(`${t.url}/api/visitor-session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: 'https://shop.example' },
      body: '{}',
    });
    const { token } = (await session.json()) as { token: string };
    expect(await pollFrom(t.url, token, 'https://shop.example')).toBe('connected');
    expect(await pollFrom(t.url, token, 'https://other.example')).toBe('xhr poll error');
  });

  it('leaves the WebSocket handshake to the socket layer, which refuses the same origins with a reason', async () => {
    t = await startTestServer();
    const { token } = await visitorToken(t.url);
    const socket = io(t.url, { auth: { token }, transports: ['websocket'], reconnection: false, forceNew: true, extraHeaders: { origin: 'https://evil.example' } });
    sockets.push(socket);
    const refusal = await new Promise<string>((resolve) => socket.once('connect_error', (error) => resolve(error.message)));
    expect(refusal).toBe('origin-not-allowed');
  });
});
