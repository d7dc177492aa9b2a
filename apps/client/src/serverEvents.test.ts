/**
 * A node that takes a request over sends that request's last messages again: the client handles each
 * effect id once, across reconnections of the same socket, and never drops a message without an id.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { Server } from 'socket.io';
import { io as connect, type Socket } from 'socket.io-client';
import { onServerEvents } from './serverEvents.ts';

let cleanup: (() => Promise<void>) | null = null;
afterEach(async () => {
  await cleanup?.();
  cleanup = null;
});

async function pair(): Promise<{ server: Server; client: Socket }> {
  const http = createServer();
  const server = new Server(http);
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const client = connect(`http://127.0.0.1:${String((http.address() as AddressInfo).port)}`, { transports: ['websocket'] });
  cleanup = async () => {
    client.close();
    await new Promise((resolve) => server.close(resolve));
  };
  await new Promise<void>((resolve) => client.once('connect', () => resolve()));
  return { server, client };
}

const serverSocket = async (server: Server) => {
  const sockets = await server.fetchSockets();
  return sockets[0]!;
};

it('handles an effect id once, however often it arrives, and every message without one', async () => {
  const { server, client } = await pair();
  const seen: string[] = [];
  const errors: unknown[] = [];
  onServerEvents(client, { 'call.resumed': ({ callId }) => seen.push(callId), 'signal.restartRequest': ({ callId }) => seen.push(`restart:${callId}`) }, (error) => errors.push(error));
  const socket = await serverSocket(server);
  socket.emit('call.resumed', { callId: 'c1', eid: 'e-1' });
  socket.emit('call.resumed', { callId: 'c1', eid: 'e-1' });
  socket.emit('call.resumed', { callId: 'c2', eid: 'e-2' });
  socket.emit('signal.restartRequest', { callId: 'c1' });
  socket.emit('signal.restartRequest', { callId: 'c1' });
  socket.emit('call.resumed', { callId: 'done', eid: 'e-3' });
  await expect.poll(() => seen.at(-1)).toBe('done');
  expect(seen).toEqual(['c1', 'c2', 'restart:c1', 'restart:c1', 'done']);
  expect(errors).toEqual([]);
});

it('remembers the ids it handled across a reconnection of the same socket', async () => {
  const { server, client } = await pair();
  const seen: string[] = [];
  onServerEvents(client, { 'call.ended': ({ callId }) => seen.push(callId) }, () => {});
  (await serverSocket(server)).emit('call.ended', { callId: 'c1', reason: 'hangup', eid: 'e-1' });
  await expect.poll(() => seen.length).toBe(1);
  (await serverSocket(server)).disconnect(true);
  await new Promise<void>((resolve) => client.once('disconnect', () => resolve()));
  client.connect();
  await new Promise<void>((resolve) => client.once('connect', () => resolve()));
  const again = await serverSocket(server);
  again.emit('call.ended', { callId: 'c1', reason: 'hangup', eid: 'e-1' });
  again.emit('call.ended', { callId: 'c9', reason: 'hangup', eid: 'e-9' });
  await expect.poll(() => seen.length).toBe(2);
  expect(seen).toEqual(['c1', 'c9']);
});

it('refuses a malformed effect id as an invalid message, and handles nothing of it', async () => {
  const { server, client } = await pair();
  const seen: string[] = [];
  const errors: { code?: string }[] = [];
  onServerEvents(client, { 'call.resumed': ({ callId }) => seen.push(callId) }, (error) => errors.push(error as { code?: string }));
  const socket = await serverSocket(server);
  socket.emit('call.resumed', { callId: 'c1', eid: 'has spaces' });
  socket.emit('call.resumed', { callId: 'c2', eid: 42 });
  socket.emit('call.resumed', { callId: 'ok' });
  await expect.poll(() => seen.length).toBe(1);
  expect(seen).toEqual(['ok']);
  expect(errors.map((error) => error.code)).toEqual(['invalid-server-event', 'invalid-server-event']);
});
