/**
 * The calls the relay benchmark drives: a pair of Socket.IO client sockets per call, one per leg, against
 * either server. Against callchart each pair is a real call (agent and visitor with signed tokens, request,
 * ring, accept, both legs' media reported connected); against the bare relay it is two sockets that name
 * the same pair. The client options are the same for both.
 */
import { io, type Socket } from 'socket.io-client';

export interface Link {
  callId: string;
  offerer: Socket;
  answerer: Socket;
}

const connect = (url: string, auth: Record<string, string>) => io(url, { auth, reconnection: false, transports: ['websocket'], forceNew: true });

/** The next `event` on `socket` that `match`es; listen before doing what causes it. */
export function waitFor<T>(socket: Socket, event: string, match: (payload: T) => boolean = () => true, timeoutMs = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off(event, listener);
      reject(new Error(`no ${event} within ${timeoutMs} ms`));
    }, timeoutMs);
    const listener = (payload: T) => {
      if (!match(payload)) return;
      clearTimeout(timer);
      socket.off(event, listener);
      resolve(payload);
    };
    socket.on(event, listener);
  });
}

async function ask(socket: Socket, event: string, payload: unknown): Promise<Record<string, unknown>> {
  const reply = (await socket.timeout(10_000).emitWithAck(event, payload)) as { ok: boolean; error?: { code: string; message: string } };
  if (!reply.ok) throw new Error(`${event} refused: ${reply.error?.code} ${reply.error?.message}`);
  return reply as Record<string, unknown>;
}

async function connected(socket: Socket, readyEvent: string | null): Promise<Socket> {
  const ready = readyEvent ? waitFor(socket, readyEvent) : new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  const refused = new Promise<never>((_, reject) => socket.once('connect_error', (error) => reject(error)));
  await Promise.race([ready, refused]);
  return socket;
}

/**
 * One live call on the callchart server. Calls are set up one at a time and each agent comes online just
 * before its visitor asks, so the ring can only go to that agent (the others are busy in their calls).
 */
export async function callchartLink(url: string, pool: string, agentToken: string, visitorToken: string): Promise<Link> {
  const agent = connect(url, { token: agentToken });
  const ring = waitFor<{ requestId: string }>(agent, 'agent.ring');
  await connected(agent, 'session.ready');
  const visitor = await connected(connect(url, { token: visitorToken }), 'session.ready');
  const accepted = Promise.all([waitFor<{ callId: string }>(agent, 'call.accepted'), waitFor<{ callId: string }>(visitor, 'call.accepted')]);
  const { requestId } = await ask(visitor, 'visitor.request', { pool });
  const rung = await ring;
  if (rung.requestId !== requestId) throw new Error(`the agent was rung for ${rung.requestId}, not ${String(requestId)}`);
  await ask(agent, 'agent.accept', { requestId });
  const [{ callId }] = await accepted;
  await Promise.all([ask(agent, 'call.media', { callId, state: 'connected' }), ask(visitor, 'call.media', { callId, state: 'connected' })]);
  return { callId, offerer: agent, answerer: visitor };
}

export async function bareLink(url: string, index: number): Promise<Link> {
  const callId = `call_bench_${index}`;
  const [offerer, answerer] = await Promise.all([
    connected(connect(url, { pair: callId, side: 'offerer' }), null),
    connected(connect(url, { pair: callId, side: 'answerer' }), null),
  ]);
  return { callId, offerer, answerer };
}

export function closeLinks(links: readonly Link[]): void {
  for (const link of links) {
    link.offerer.disconnect();
    link.answerer.disconnect();
  }
}
