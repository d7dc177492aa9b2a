/**
 * The cluster relay benchmark's load generator, a worker process: the relay benchmark's traffic
 * (`lib/relay/drive.ts`, the same mix, windows and rates) over calls whose two people are connected to
 * nodes the parent chooses per call: both to one node, or each to another. Both legs of every call live
 * here, so a message's latency is measured on one clock.
 */
import { io, type Socket } from 'socket.io-client';
import { closedLoop, openLoop } from '../relay/drive.ts';
import { closeLinks, waitFor, type Link } from '../relay/links.ts';
import { reportReady, serveParent } from '../processes.ts';

export interface CallPlan {
  agentUrl: string;
  visitorUrl: string;
  agentToken: string;
  visitorToken: string;
}

const links = new Map<string, Link[]>();

// The relay benchmark's client options: websocket only, no reconnection (a dropped leg stays dropped).
const connect = (url: string, token: string) => io(url, { auth: { token }, reconnection: false, transports: ['websocket'], forceNew: true });

async function ask(socket: Socket, event: string, payload: unknown): Promise<Record<string, unknown>> {
  const reply = (await socket.timeout(10_000).emitWithAck(event, payload)) as { ok: boolean; error?: { code: string; message: string } };
  if (!reply.ok) throw new Error(`${event} refused: ${reply.error?.code} ${reply.error?.message}`);
  return reply as Record<string, unknown>;
}

async function ready(socket: Socket): Promise<Socket> {
  const refused = new Promise<never>((_, reject) => socket.once('connect_error', (error) => reject(error)));
  await Promise.race([waitFor(socket, 'session.ready'), refused]);
  return socket;
}

/**
 * One live call, set up as the relay benchmark sets its calls up: one at a time, the agent online just
 * before its visitor asks, so the ring can only go to that agent (the others are busy in their calls).
 */
async function link(pool: string, plan: CallPlan): Promise<Link> {
  const opened: Socket[] = [];
  try {
    return await linkOn(pool, plan, opened);
  } catch (error) {
    for (const socket of opened) socket.disconnect();
    throw error;
  }
}

async function linkOn(pool: string, plan: CallPlan, opened: Socket[]): Promise<Link> {
  const agent = connect(plan.agentUrl, plan.agentToken);
  opened.push(agent);
  const ring = waitFor<{ requestId: string }>(agent, 'agent.ring');
  // Awaited below, or not at all when a step before fails: that must not bring the process down.
  ring.catch(() => undefined);
  await ready(agent);
  const visitorSocket = connect(plan.visitorUrl, plan.visitorToken);
  opened.push(visitorSocket);
  const visitor = await ready(visitorSocket);
  const accepted = Promise.all([waitFor<{ callId: string }>(agent, 'call.accepted'), waitFor<{ callId: string }>(visitor, 'call.accepted')]);
  accepted.catch(() => undefined);
  const { requestId } = await ask(visitor, 'visitor.request', { pool });
  const rung = await ring;
  if (rung.requestId !== requestId) throw new Error(`the agent was rung for ${rung.requestId}, not ${String(requestId)}`);
  await ask(agent, 'agent.accept', { requestId });
  const [{ callId }] = await accepted;
  await Promise.all([ask(agent, 'call.media', { callId, state: 'connected' }), ask(visitor, 'call.media', { callId, state: 'connected' })]);
  return { callId, offerer: agent, answerer: visitor };
}

function linksOf(target: string): Link[] {
  const found = links.get(target);
  if (!found) throw new Error(`no calls set up for ${target}`);
  return found;
}

serveParent({
  async connect({ target, pool, calls }: { target: string; pool: string; calls: CallPlan[] }) {
    const set: Link[] = [];
    try {
      for (const plan of calls) set.push(await link(pool, plan));
    } catch (error) {
      // A kind of call that cannot be set up is left out of the rounds; its sockets go now.
      closeLinks(set);
      throw error;
    }
    links.set(target, set);
    return { calls: set.length };
  },
  closedLoop: ({ target, ...options }: { target: string; window: number; warmupMs: number; durationMs: number }) => closedLoop(linksOf(target), options),
  openLoop: ({ target, ...options }: { target: string; rate: number; warmupMs: number; durationMs: number }) => openLoop(linksOf(target), options),
  close() {
    for (const set of links.values()) closeLinks(set);
    links.clear();
  },
});
reportReady();
