import { Writable } from 'node:stream';
import { io as ioClient } from 'socket.io-client';
import { afterEach, describe, expect, it } from 'vitest';
import { closeClientsThenServer, startTestServer, type TestServer } from '../../test/support/server.ts';
import { clientAddress, handshakeAddress, proxyTrust, trustNoProxy } from './clientAddress.ts';
import { createLogger } from './logger.ts';

const peer = (remoteAddress: string | undefined, forwardedFor?: string) => ({
  headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor },
  socket: { remoteAddress },
});

describe('clientAddress', () => {
  it('is the peer when no proxy is trusted, whatever X-Forwarded-For says', () => {
    expect(clientAddress(peer('192.0.2.10', '203.0.113.5'), trustNoProxy)).toBe('192.0.2.10');
    expect(clientAddress(peer('192.0.2.10', '203.0.113.5'), proxyTrust([]))).toBe('192.0.2.10');
    // A proxy that is not the peer is no proxy of this request's.
    expect(clientAddress(peer('192.0.2.10', '203.0.113.5'), proxyTrust(['10.0.0.5']))).toBe('192.0.2.10');
  });

  it('is the nearest hop a trusted proxy named, and not what the client wrote before it', () => {
    const trust = proxyTrust(['10.0.0.0/8']);
    expect(clientAddress(peer('10.0.0.5', '203.0.113.5'), trust)).toBe('203.0.113.5');
    expect(clientAddress(peer('10.0.0.5', '198.51.100.1, 203.0.113.5'), trust)).toBe('203.0.113.5');
    // Two proxies of ours in a row: the client is the first address neither is.
    expect(clientAddress(peer('10.0.0.5', '198.51.100.1, 203.0.113.5, 10.1.2.3'), trust)).toBe('203.0.113.5');
    // A trusted proxy that forwarded nothing: the proxy is all there is to count.
    expect(clientAddress(peer('10.0.0.5'), trust)).toBe('10.0.0.5');
  });

  it('takes an IPv4 peer as the IPv6 socket spells it, and IPv6 proxies and clients', () => {
    expect(clientAddress(peer('::ffff:127.0.0.1', '203.0.113.5'), proxyTrust(['loopback']))).toBe('203.0.113.5');
    expect(clientAddress(peer('fd00::1', '2001:db8::7'), proxyTrust(['fd00::/8']))).toBe('2001:db8::7');
  });

  it('counts a trusted proxy that forwarded something other than an address as the proxy, and an unknown peer as unknown', () => {
    expect(clientAddress(peer('10.0.0.5', 'not-an-address'), proxyTrust(['10.0.0.5']))).toBe('10.0.0.5');
    expect(clientAddress(peer(undefined, '203.0.113.5'), proxyTrust(['10.0.0.5']))).toBe('unknown');
  });

  it('reads a Socket.IO handshake the same way', () => {
    const trust = proxyTrust(['127.0.0.1']);
    expect(handshakeAddress({ address: '127.0.0.1', headers: { 'x-forwarded-for': '203.0.113.5' } }, trust)).toBe('203.0.113.5');
    expect(handshakeAddress({ address: '127.0.0.2', headers: { 'x-forwarded-for': '203.0.113.5' } }, trust)).toBe('127.0.0.2');
  });
});

describe('a server behind a proxy (the test, on 127.0.0.1, plays the proxy when TRUST_PROXY names it)', () => {
  let t: TestServer | null = null;
  const opened: { close(): unknown }[] = [];
  afterEach(async () => {
    await closeClientsThenServer(opened, t);
    t = null;
  });

  async function server(env: Record<string, string>) {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    t = await startTestServer({ LIMIT_VISITOR_SESSIONS: '2', ...env }, { logger: createLogger('info', sink) });
    return { url: t.url, lines };
  }

  const session = (url: string, forwardedFor: string) =>
    fetch(`${url}/api/visitor-session`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Forwarded-For': forwardedFor }, body: '{}' }).then((r) => r.status);

  /** The address the server logged for a handshake it refused (a token that is no token). */
  async function refusedHandshakeAddress(url: string, lines: Record<string, unknown>[], forwardedFor: string): Promise<unknown> {
    const socket = ioClient(url, { auth: { token: 'x.y.z' }, reconnection: false, transports: ['websocket'], forceNew: true, extraHeaders: { 'X-Forwarded-For': forwardedFor } });
    opened.push(socket);
    expect(await new Promise((resolve) => socket.once('connect_error', (error) => resolve(error.message)))).toBe('unauthorized');
    await expect.poll(() => lines.filter((line) => line.msg === 'socket refused').length).toBeGreaterThan(0);
    return lines.findLast((line) => line.msg === 'socket refused')?.address;
  }

  it('ignores X-Forwarded-For without TRUST_PROXY: every session from the peer counts against it', async () => {
    const { url, lines } = await server({});
    expect(await session(url, '203.0.113.1')).toBe(201);
    expect(await session(url, '203.0.113.2')).toBe(201);
    expect(await session(url, '203.0.113.3')).toBe(429);
    expect(await refusedHandshakeAddress(url, lines, '203.0.113.4')).toBe('127.0.0.1');
  });

  it('counts and logs the client a trusted proxy names, each against its own limit', async () => {
    const { url, lines } = await server({ TRUST_PROXY: '127.0.0.1' });
    expect(await session(url, '203.0.113.1')).toBe(201);
    expect(await session(url, '203.0.113.1')).toBe(201);
    expect(await session(url, '203.0.113.1')).toBe(429);
    expect(await session(url, '203.0.113.2')).toBe(201);
    // What the client itself wrote ahead of the proxy's entry is not read.
    expect(await session(url, '203.0.113.2, 203.0.113.1')).toBe(429);
    const refusal = lines.find((line) => line.msg === 'visitor session refused: rate limited');
    expect(refusal).toMatchObject({ address: '203.0.113.1' });
    expect(await refusedHandshakeAddress(url, lines, '203.0.113.9')).toBe('203.0.113.9');
  });
});
