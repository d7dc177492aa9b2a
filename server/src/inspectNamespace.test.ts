/**
 * The `/inspect` namespace when its store cannot answer: a real Socket.IO server on loopback, real token
 * checks against a real SQLite store, and that store closed under it. What the inspector does while calls
 * are live is covered end to end with the whole server; here no call is live, so the switchboard is left
 * out and the list of live requests is empty.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { Server } from 'socket.io';
import { io as connect, type Socket } from 'socket.io-client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createAuth, storeTokenRegistry, type Auth } from './auth.ts';
import { attachInspectNamespace } from './inspectNamespace.ts';
import { Inspection } from './inspection.ts';
import { createLogger } from './logger.ts';
import { openStore, type Store } from './store.ts';

const SECRET = 'inspect-namespace-test-secret-long-enough';
const inspector = { id: 'inspector', name: 'Call Inspector', email: 'inspector@example.com', passwordHash: 'scrypt$x', pools: [], roles: ['inspector'] };

let dir: string;
let store: Store;
let auth: Auth;
let http: HttpServer;
let io: Server;
let url: string;
const sockets: Socket[] = [];
const logLines: string[] = [];

beforeEach(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'callchart-inspect-'));
  store = await openStore({ databasePath: path.join(dir, 'db.sqlite') });
  await store.agents.seed([inspector]);
  await store.commit((writes) => {
    writes.requests.create({ id: 'req-1', visitorId: 'visitor-1', visitorName: 'Vera', pool: 'support', state: 'ended', createdAt: 1_000 });
    writes.calls.create({ id: 'call-1', requestId: 'req-1', visitorId: 'visitor-1', visitorName: 'Vera', agentId: 'inspector', pool: 'support', state: 'active', startedAt: 1_100 });
    writes.calls.update('call-1', { state: 'ended', endedAt: 9_000, endReason: 'hangup' });
    writes.events.append({ requestId: 'req-1', callId: 'call-1', actor: 'callSession', type: 'call.hangup', fromState: 'live', toState: 'ended', at: 9_000 });
  });
  const registry = storeTokenRegistry(store);
  await registry.purged;
  auth = createAuth({ secret: SECRET, agentTtlSeconds: 600, visitorTtlSeconds: 600, registry });
  const logger = createLogger(
    'info',
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        logLines.push(chunk.toString());
        done();
      },
    }),
  );
  http = createServer();
  io = new Server(http);
  attachInspectNamespace({ io, auth, inspection: new Inspection(), switchboard: { live: () => [], stats: () => ({ requests: 0, calls: 0 }), queuedCount: () => 0 }, store, logger, clientInspection: false });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${String((http.address() as AddressInfo).port)}`;
});

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.disconnect();
  await new Promise<void>((resolve) => void io.close(() => resolve()));
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  logLines.length = 0;
});

async function token(): Promise<string> {
  return (await auth.issueAgentToken(inspector)).token;
}

/** Resolves once connected; rejects with the handshake's refusal. */
async function inspectorSocket(bearer: string): Promise<Socket> {
  const socket = connect(`${url}/inspect`, { auth: { token: bearer }, reconnection: false, transports: ['websocket'], forceNew: true });
  sockets.push(socket);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', reject);
  });
  return socket;
}

const ask = (socket: Socket, event: string, payload: unknown) => socket.timeout(5_000).emitWithAck(event, payload) as Promise<Record<string, unknown>>;

describe('the /inspect namespace with its store down', () => {
  it("answers a finished call's history, then store-unavailable once the store is closed, and keeps the socket", async () => {
    const socket = await inspectorSocket(await token());
    expect(await ask(socket, 'inspect.history', { callId: 'call-1' })).toMatchObject({
      ok: true,
      call: { id: 'call-1', requestId: 'req-1', state: 'ended', endReason: 'hangup' },
      entries: [expect.objectContaining({ callId: 'call-1', state: 'ended' })],
    });

    await store.close();
    expect(await ask(socket, 'inspect.history', { callId: 'call-1' })).toEqual({
      ok: false,
      error: { code: 'store-unavailable', message: 'The call history cannot be read right now; try again in a moment.' },
    });
    // Nothing else depended on the store: the socket is still there and still answered.
    expect(socket.connected).toBe(true);
    expect(await ask(socket, 'inspect.calls', {})).toEqual({ ok: true, requests: [], clientInspection: false });
    expect(await ask(socket, 'inspect.history', { callId: 'not an id!' })).toMatchObject({ ok: false, error: { code: 'invalid-payload', field: 'callId' } });
    expect(logLines.some((line) => line.includes('inspector event refused: store unavailable'))).toBe(true);
    expect(logLines.some((line) => line.includes('inspector event failed'))).toBe(false);
    // Reopened for afterEach, which closes it.
    store = await openStore({ databasePath: path.join(dir, 'db.sqlite') });
  });

  it('refuses a new inspector whose token cannot be checked with store-unavailable, not unauthorized', async () => {
    const bearer = await token();
    await store.close();
    await expect(inspectorSocket(bearer)).rejects.toThrow('store-unavailable');
    // A token that is bad on its face is still refused as such.
    await expect(inspectorSocket('not-a-token')).rejects.toThrow('unauthorized');
    store = await openStore({ databasePath: path.join(dir, 'db.sqlite') });
  });
});
