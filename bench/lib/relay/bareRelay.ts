/**
 * The relay benchmark's baseline, run as a worker process: a bare Socket.IO server with the callchart
 * server's engine settings that relays every event between two paired sockets, room to room as the callchart
 * server does, and acknowledges it. No authentication, no validation, no calls, no machines: what a relay
 * costs before any of that.
 *
 * A socket names its pair and side in the handshake: `auth: { pair, side: 'offerer' | 'answerer' }`.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from 'socket.io';
import { reportReady, serveParent } from '../processes.ts';

const http = createServer();
const io = new Server(http, { maxHttpBufferSize: 256 * 1024, pingInterval: 10_000, pingTimeout: 5_000 });

io.on('connection', (socket) => {
  const { pair, side } = socket.handshake.auth as { pair: string; side: 'offerer' | 'answerer' };
  const peerRoom = `${side === 'offerer' ? 'answerer' : 'offerer'}:${pair}`;
  void socket.join(`${side}:${pair}`);
  socket.onAny((event: string, payload: unknown, ack?: unknown) => {
    io.to(peerRoom).emit(event, payload);
    if (typeof ack === 'function') ack({ ok: true });
  });
});

serveParent({
  close: () => new Promise<void>((resolve) => io.close(() => resolve())),
});

http.listen(0, '127.0.0.1', () => reportReady({ port: (http.address() as AddressInfo).port }));
