/**
 * The routing benchmark's client side, run as a worker process: the whole fleet of agents (1,000 sockets
 * fit in one process) and one visitor, all connected to one callchart server, driving `cascade`s when the
 * parent asks.
 */
import { io, type Socket } from 'socket.io-client';
import { reportReady, serveParent } from '../processes.ts';
import { cascade, type Trigger } from './cascade.ts';
import { RingBoard } from './ringBoard.ts';

const BATCH = 50;
const board = new RingBoard();
let agents: Socket[] = [];
let visitor: Socket | null = null;
let settings = { url: '', pool: '', ringTimeoutMs: 0 };

function connect(token: string): Promise<Socket> {
  const socket = io(settings.url, { auth: { token }, reconnection: false, transports: ['websocket'], forceNew: true });
  return new Promise((resolve, reject) => {
    socket.once('session.ready', () => resolve(socket));
    socket.once('connect_error', reject);
  });
}

async function ask(socket: Socket, event: string, payload: unknown): Promise<void> {
  const reply = (await socket.timeout(10_000).emitWithAck(event, payload)) as { ok: boolean; error?: { code: string } };
  if (!reply.ok) throw new Error(`${event} refused: ${reply.error?.code}`);
}

serveParent({
  async connect(options: { url: string; pool: string; ringTimeoutMs: number; agentTokens: string[]; visitorToken: string }) {
    settings = { url: options.url, pool: options.pool, ringTimeoutMs: options.ringTimeoutMs };
    const started = performance.now();
    for (let i = 0; i < options.agentTokens.length; i += BATCH) {
      const batch = await Promise.all(options.agentTokens.slice(i, i + BATCH).map(connect));
      batch.forEach((socket, j) => {
        const agent = i + j;
        socket.on('agent.ring', (ring: { requestId: string; expiresAt: number }) =>
          board.ring({ agent, requestId: ring.requestId, expiresAt: ring.expiresAt, at: performance.now() }),
        );
      });
      agents.push(...batch);
      // Available is every agent's status on connecting (docs/protocol.md), but a dashboard says so anyway.
      await Promise.all(batch.map((socket) => ask(socket, 'agent.presence', { status: 'available' })));
    }
    visitor = await connect(options.visitorToken);
    visitor.on('routing.ended', (ended: { requestId: string; reason: string }) => board.end(ended.requestId, ended.reason));
    return { agents: agents.length, connectMs: Math.round(performance.now() - started) };
  },
  run({ trigger, samples }: { trigger: Trigger; samples: number }) {
    if (!visitor) throw new Error('connect first');
    return cascade({ trigger, samples, pool: settings.pool, ringTimeoutMs: settings.ringTimeoutMs }, { agents, visitor, board });
  },
  close() {
    for (const socket of [...agents, ...(visitor ? [visitor] : [])]) socket.disconnect();
    agents = [];
    visitor = null;
  },
});
reportReady();
