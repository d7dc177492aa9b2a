/**
 * Two real Socket.IO servers on loopback sharing one real Redis (Debian's redis-server, in a temporary
 * directory), each with its clients on websocket only, as the product's are.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';
import { io as connectClient, type Socket as ClientSocket } from 'socket.io-client';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startRedis, type RedisServer } from '../../../test/support/redis.ts';
import { attachFanout } from './fanout.ts';
import { createRedis } from './redis.ts';

interface Node {
  name: string;
  io: Server;
  /** The node's command connection, whose state shows when the node has noticed an outage. */
  redis: Redis;
  url: string;
  close(): Promise<void>;
}

interface Client {
  socket: ClientSocket;
  received: unknown[];
}

let redis: RedisServer;
const nodes: Node[] = [];
const clients: Client[] = [];

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  await redis.stop();
});

afterEach(async () => {
  for (const client of clients.splice(0)) client.socket.disconnect();
  for (const node of nodes.splice(0)) await node.close();
  // One stream for every test: a test's leftovers must not be read by the next one's fresh readers.
  const admin = new Redis(redis.url);
  await admin.flushall();
  admin.disconnect();
});

async function startNode(name: string): Promise<Node> {
  const http = createServer();
  const io = new Server(http, { transports: ['websocket'] });
  const connection = createRedis({ url: redis.url, connectionName: name });
  const fanout = attachFanout(io, connection);
  io.on('connection', (socket) => {
    const room = (socket.handshake.auth as { room?: string }).room;
    if (room) void socket.join(room);
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const node: Node = {
    name,
    io,
    redis: connection,
    url: `http://127.0.0.1:${String((http.address() as AddressInfo).port)}`,
    async close() {
      await io.close();
      fanout.close();
      connection.disconnect();
    },
  };
  nodes.push(node);
  return node;
}

async function connect(node: Node, room?: string): Promise<Client> {
  const socket = connectClient(node.url, { transports: ['websocket'], reconnection: false, forceNew: true, auth: room ? { room } : {} });
  const client: Client = { socket, received: [] };
  socket.on('news', (payload: unknown) => client.received.push(payload));
  clients.push(client);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('connect_error', reject);
  });
  return client;
}

/**
 * The adapter starts reading the stream a moment after it is attached, and an emit made before that is not
 * seen by the late node (a node that just started has no sockets to miss it). Probes until `to` hears `from`.
 */
async function untilLinked(from: Node, to: Node): Promise<void> {
  const probe = await connect(to, `probe-${to.name}`);
  await vi.waitFor(
    () => {
      from.io.to(`probe-${to.name}`).emit('news', 'probe');
      expect(probe.received).toContain('probe');
    },
    { timeout: 10_000, interval: 100 },
  );
  probe.socket.disconnect();
}

/** Delivery across nodes is asynchronous; a bounded wait for what the test expects, then a look for extras. */
async function settle(check: () => void): Promise<void> {
  await vi.waitFor(check, { timeout: 5_000, interval: 20 });
}

describe('fan-out across nodes through Redis', () => {
  it('delivers an emit made on one node to the room on another, once, and to no one outside it', async () => {
    const a = await startNode('a');
    const b = await startNode('b');
    await untilLinked(b, a);
    const inRoomOnA = await connect(a, 'call-1');
    const inRoomOnB = await connect(b, 'call-1');
    const elsewhereOnA = await connect(a, 'call-2');

    b.io.to('call-1').emit('news', { eid: 'e1' });
    // A later emit to another room on the same stream: once it has arrived, the first one has too.
    b.io.to('call-2').emit('news', { eid: 'e2' });
    await settle(() => expect(elsewhereOnA.received).toEqual([{ eid: 'e2' }]));
    expect(inRoomOnA.received).toEqual([{ eid: 'e1' }]);
    expect(inRoomOnB.received).toEqual([{ eid: 'e1' }]);
  });

  it('finds the sockets of a room on every node, and makes those on another node leave it', async () => {
    const a = await startNode('a');
    const b = await startNode('b');
    await untilLinked(b, a);
    const onA = await connect(a, 'call-1');
    const onB = await connect(b, 'call-1');

    const found = await b.io.in('call-1').fetchSockets();
    expect(found.map((socket) => socket.id).sort()).toEqual([onA.socket.id, onB.socket.id].sort());
    expect(found.every((socket) => socket.rooms.has('call-1'))).toBe(true);

    b.io.in('call-1').socketsLeave('call-1');
    await settle(() => expect(a.io.of('/').adapter.rooms.get('call-1')).toBeUndefined());
    expect(b.io.of('/').adapter.rooms.get('call-1')).toBeUndefined();
    expect(await a.io.in('call-1').fetchSockets()).toEqual([]);

    // Left on every node: an emit to the room reaches nobody.
    b.io.to('call-1').emit('news', 'after leaving');
    const witness = await connect(a, 'witness');
    b.io.to('witness').emit('news', 'later');
    await settle(() => expect(witness.received).toEqual(['later']));
    expect(onA.received).toEqual([]);
    expect(onB.received).toEqual([]);
  });

  it('delivers an emit made while Redis is down once it is back, after a restart that lost every key', async () => {
    const a = await startNode('a');
    const b = await startNode('b');
    await untilLinked(b, a);
    const onA = await connect(a, 'call-1');
    b.io.to('call-1').emit('news', 'before');
    await settle(() => expect(onA.received).toEqual(['before']));

    let attempts = 0;
    b.redis.on('reconnecting', () => (attempts += 1));
    await redis.kill();
    // Emitted once the node knows Redis is gone, not while its connections still look up.
    await vi.waitFor(() => expect(b.redis.status).not.toBe('ready'), { timeout: 5_000, interval: 5 });
    b.io.to('call-1').emit('news', 'while down');
    // An outage of some failed reconnections, not a blink: the emit must outlast them.
    await vi.waitFor(() => expect(attempts).toBeGreaterThanOrEqual(3), { timeout: 10_000, interval: 20 });
    await redis.restart();
    await settle(() => expect(onA.received).toEqual(['before', 'while down']));

    b.io.to('call-1').emit('news', 'after');
    await settle(() => expect(onA.received).toEqual(['before', 'while down', 'after']));
    // fetchSockets asks the other nodes over pub/sub, and counts them by their subscriptions: it sees
    // node A again once A's subscriber is back, on its own reconnection schedule (about a second at most).
    await vi.waitFor(async () => expect((await b.io.in('call-1').fetchSockets()).map((socket) => socket.id)).toEqual([onA.socket.id]), {
      timeout: 5_000,
      interval: 100,
    });
  });

  it('leaves no connection open in Redis once its server is closed', async () => {
    const admin = new Redis(redis.url);
    try {
      const ownId = String(await admin.client('ID'));
      const a = await startNode('a');
      await untilLinked(a, a);
      const others = async () =>
        String(await admin.client('LIST'))
          .trim()
          .split('\n')
          .filter((line) => !line.startsWith(`id=${ownId} `));
      // The node's command connection, the fan-out's, its stream reader and its subscriber.
      expect((await others()).length).toBe(4);
      nodes.splice(nodes.indexOf(a), 1);
      await a.close();
      // The reader goes once its blocking read returns, within the adapter's block time (5 s).
      await vi.waitFor(async () => expect(await others()).toEqual([]), { timeout: 8_000, interval: 100 });
    } finally {
      admin.disconnect();
    }
  });
});
