import { existsSync } from 'node:fs';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from 'socket.io';
import { io as connectClient } from 'socket.io-client';
import { afterEach, describe, expect, it } from 'vitest';
import { haproxyConfig, startHaproxy, type Haproxy } from './haproxy.ts';

/** A plain HTTP backend that says who it is, with a readiness the test can switch. */
interface Backend {
  name: string;
  port: number;
  http: HttpServer;
  ready: boolean;
  close(): Promise<void>;
}

async function backend(name: string): Promise<Backend> {
  const state: Backend = { name, port: 0, ready: true, http: createServer(), close: () => Promise.resolve() };
  state.http.on('request', (req, res) => {
    if (req.url === '/readyz') {
      res.writeHead(state.ready ? 200 : 503).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' }).end(name);
  });
  await new Promise<void>((resolve) => state.http.listen(0, '127.0.0.1', resolve));
  state.port = (state.http.address() as AddressInfo).port;
  state.close = () => new Promise<void>((resolve) => state.http.close(() => resolve()).closeAllConnections());
  return state;
}

async function whoAnswers(url: string, times: number): Promise<string[]> {
  const answers: string[] = [];
  for (let i = 0; i < times; i += 1) answers.push(await (await fetch(url)).text());
  return answers;
}

const running: { close(): Promise<void> }[] = [];
let proxy: Haproxy | null = null;

afterEach(async () => {
  await proxy?.stop();
  proxy = null;
  for (const item of running.splice(0)) await item.close();
});

describe('haproxy in front of plain HTTP backends', () => {
  it('balances round robin over the backends it checks on /readyz', async () => {
    const a = await backend('a');
    const b = await backend('b');
    running.push(a, b);
    proxy = await startHaproxy({ backends: [a, b] });
    await proxy.waitForBackends(['a', 'b']);
    const answers = await whoAnswers(proxy.url, 6);
    expect(answers.filter((name) => name === 'a')).toHaveLength(3);
    expect(answers.filter((name) => name === 'b')).toHaveLength(3);
  });

  it('takes a backend whose /readyz says 503 out of rotation, and back once it is ready', async () => {
    const a = await backend('a');
    const b = await backend('b');
    running.push(a, b);
    proxy = await startHaproxy({ backends: [a, b] });
    await proxy.waitForBackends(['a', 'b']);
    b.ready = false;
    await proxy.waitForBackends(['a']);
    expect(new Set(await whoAnswers(proxy.url, 4))).toEqual(new Set(['a']));
    b.ready = true;
    await proxy.waitForBackends(['a', 'b']);
    expect(new Set(await whoAnswers(proxy.url, 4))).toEqual(new Set(['a', 'b']));
    expect(proxy.logs()).toMatch(/Server nodes\/b is DOWN/);
  });

  it('with balance first, sends everything to the first backend that is up, and to the next once it is down', async () => {
    const a = await backend('a');
    const b = await backend('b');
    running.push(a, b);
    proxy = await startHaproxy({ backends: [a, b], balance: 'first' });
    await proxy.waitForBackends(['a', 'b']);
    expect(await whoAnswers(proxy.url, 4)).toEqual(['a', 'a', 'a', 'a']);
    a.ready = false;
    await proxy.waitForBackends(['b']);
    expect(await whoAnswers(proxy.url, 4)).toEqual(['b', 'b', 'b', 'b']);
  });

  it('sends a request meant for a backend that just died to one that lives', async () => {
    const a = await backend('a');
    const b = await backend('b');
    running.push(a);
    proxy = await startHaproxy({ backends: [a, b] });
    await proxy.waitForBackends(['a', 'b']);
    await b.close();
    // Before the checks notice: the refused connection is redispatched, so no request fails.
    expect(await whoAnswers(proxy.url, 4)).toEqual(['a', 'a', 'a', 'a']);
    await proxy.waitForBackends(['a']);
  });

  it('carries a websocket-only Socket.IO connection through, both ways', async () => {
    const http = createServer((req, res) => res.writeHead(req.url === '/readyz' ? 200 : 404).end());
    const io = new Server(http);
    io.on('connection', (socket) => socket.on('ping', (text: string, ack: (reply: string) => void) => ack(`pong ${text}`)));
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    running.push({ close: () => new Promise<void>((resolve) => void io.close(() => resolve())) });
    proxy = await startHaproxy({ backends: [{ name: 'io', port: (http.address() as AddressInfo).port }] });
    await proxy.waitForBackends(['io']);
    const client = connectClient(proxy.url, { transports: ['websocket'], reconnection: false, forceNew: true });
    try {
      await new Promise<void>((resolve, reject) => {
        client.once('connect', resolve);
        client.once('connect_error', reject);
      });
      expect(client.io.engine.transport.name).toBe('websocket');
      expect(await client.timeout(2_000).emitWithAck('ping', 'one')).toBe('pong one');
    } finally {
      client.disconnect();
    }
  });

  it('stops listening and removes its directory when stopped', async () => {
    const a = await backend('a');
    running.push(a);
    const started = await startHaproxy({ backends: [a] });
    await started.stop();
    expect(existsSync(started.dir)).toBe(false);
    await expect(fetch(started.url)).rejects.toThrow();
  });
});

describe('haproxy config', () => {
  const base = { port: 4000, adminSocket: '/tmp/x/admin.sock' };

  it('binds loopback only, keeps its stats on a private socket, and checks /readyz fast', () => {
    const config = haproxyConfig({ ...base, backends: [{ name: 'node-1', port: 4001 }, { name: 'node-2', port: 4002 }] });
    expect(config.match(/^\s*bind .*$/gm)).toEqual(['  bind 127.0.0.1:4000']);
    expect(config).not.toMatch(/stats (uri|enable)|listen stats/);
    expect(config).toContain('stats socket /tmp/x/admin.sock mode 600');
    expect(config).toContain('option httpchk GET /readyz');
    expect(config).toContain('default-server inter 500ms fall 2 rise 1');
    expect(config).toContain('timeout tunnel 1h');
    expect(config).toContain('  server node-2 127.0.0.1:4002 check');
  });

  it.each([
    [[], 'at least one backend'],
    [[{ name: 'a b', port: 1 }], 'backend name "a b" must be'],
    [[{ name: 'a\nlisten x', port: 1 }], 'must be letters'],
    [[{ name: 'a', port: 1 }, { name: 'a', port: 2 }], 'used twice'],
    [[{ name: 'a', port: 0 }], 'no valid port'],
    [[{ name: 'a', port: 70_000 }], 'no valid port'],
    [[{ name: 'a', port: 1, host: '127.0.0.1\n' }], 'no valid host'],
  ])('refuses backends %j', (backends, message) => {
    expect(() => haproxyConfig({ ...base, backends })).toThrow(message);
  });

  it('refuses to wait for a backend it does not have', async () => {
    const a = await backend('a');
    running.push(a);
    proxy = await startHaproxy({ backends: [a] });
    await expect(proxy.waitForBackends(['b'])).rejects.toThrow('no backend b');
  });
});
