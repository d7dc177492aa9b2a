/**
 * Socket.IO across nodes: rooms, emits, `fetchSockets` and `socketsLeave` reach the sockets of every
 * node through Redis Streams (@socket.io/redis-streams-adapter).
 *
 * No sticky sessions: a load balancer needs them only for the polling transport, whose requests must all
 * reach the process holding the session. Our clients open a WebSocket straight away, one long connection
 * that stays on whichever node accepted it, so any node may take any client.
 *
 * No connection-state recovery: Socket.IO saves a recovery session when a node sees its socket close,
 * which a node killed mid-call never does, and what it restores is missed packets, not the call's state.
 * The client's resume token, which any node can check, is the one recovery path, whether the socket
 * dropped or its node died.
 */
import { createAdapter } from '@socket.io/redis-streams-adapter';
import type { Redis } from 'ioredis';
import type { Server } from 'socket.io';

// Our own names, so one Redis can serve other applications' Socket.IO beside ours.
const STREAM = 'callchart:socket.io';
// A node that falls further behind than this many messages misses the oldest: room for a burst of call
// set-ups (a few dozen emits each) while a busy node catches up.
const STREAM_MAX_LENGTH = 50_000;

/**
 * Unlike the node's command connections, which fail fast so each caller can decide, fan-out waits out an
 * outage: an emit made while Redis is away is sent when it is back (late, not lost; clients drop an event
 * id they have seen, so one sent twice after a dropped connection is harmless), and the adapter's readers,
 * which block on XREAD for seconds at a time, must not be cut short by a command timeout or, with no
 * offline queue, fail and retry at once in a loop for as long as Redis is down.
 */
const FANOUT_CONNECTION = {
  enableOfflineQueue: true,
  maxRetriesPerRequest: null,
  autoResendUnfulfilledCommands: true,
  commandTimeout: undefined,
  lazyConnect: false,
} as const;

export interface Fanout {
  /** Closes the fan-out's own connection; `io.close()` closes the adapter's readers. */
  close(): void;
}

/**
 * Routes `io`'s rooms and emits through Redis. `redis` gives the server and its settings; fan-out opens
 * its own connections from it (the adapter adds a reader and a subscriber per node).
 */
export function attachFanout(io: Pick<Server, 'adapter'>, redis: Redis): Fanout {
  const name = redis.options.connectionName;
  const connection = redis.duplicate({ ...FANOUT_CONNECTION, ...(name ? { connectionName: `${name}-fanout` } : {}) });
  // The node's own connections report an outage; these would only repeat it.
  connection.on('error', () => {});
  io.adapter(
    createAdapter(connection, {
      streamName: STREAM,
      channelPrefix: STREAM,
      maxLen: STREAM_MAX_LENGTH,
      // Every payload is JSON by the protocol's schemas, so the adapter need not walk each one for binary data.
      onlyPlaintext: true,
    }),
  );
  return { close: () => connection.disconnect() };
}
