/**
 * The failover phase: the owner of live calls SIGKILLed, again and again, and the time from the kill until
 * a new owner acts on them. Real node processes (the product's entry point, `test/support/cluster.ts`) on
 * one Postgres and one Redis; the clients are plain Socket.IO sockets in this process, so every time is read
 * on one clock.
 *
 * Each round, on a victim node (the next one each round): visitors connect to the victim and ask for calls,
 * so the victim creates and owns their requests (checked against the leases in Redis); their agents are on
 * the other nodes. Some calls are taken and connected; some requests are left ringing their agent, the ring's
 * timeout running. Then the victim is SIGKILLed, and at once each call's agent hangs up. What only a new
 * owner can send after that:
 * - for a call, its first message to the agent (the call paused for the visitor's lost leg, or ended by the
 *   hangup), or the hangup's acknowledgement, which the agent's node gives once the owner has taken it;
 * - for a ringing request, the ring again, if its step's outbox is re-sent (the same id);
 * - for a ringing request, its ring timeout, which the new owner re-arms at the original deadline: the
 *   agent told the ring is over, how long after the `expiresAt` its ring announced.
 * The round's time is the last of the calls' times: every call of the killed owner had a new owner acting.
 * The victim is then started again, and its restart (spawn to /readyz ready) is timed: what one process
 * would need at the least before it could act on anything.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { io, type Socket } from 'socket.io-client';
import { startNodes, type ClusterNode, type Nodes } from '../../../test/support/cluster.ts';
import type { Fleet, FleetAgent } from '../fleet.ts';
import { waitFor } from '../relay/links.ts';
import type { Backing } from './backing.ts';
import { leaseHolders } from './observe.ts';

export interface FailoverSettings {
  nodes: number;
  kills: number;
  callsPerKill: number;
  ringsPerKill: number;
  /** LEASE_TTL_MS and LEASE_RENEW_MS the nodes run with. */
  lease: { ttlMs: number; renewMs: number };
  /** RING_TIMEOUT_MS: longer than a takeover, so that the ring times out on the new owner. */
  ringTimeoutMs: number;
  /** How long after a kill the round waits for every call and request to be acted on. */
  waitMs: number;
}

interface Seen {
  at: number;
  /** Date.now() at receipt, to set against a deadline the server announced on its clock (the same host's). */
  wall: number;
  event: string;
  eid?: string;
}

export interface ItemResult {
  kind: 'call' | 'ring';
  requestId: string;
  callId: string | null;
  agentNode: string;
  /** Holder of the request's lease just before the kill. */
  leaseHolder: string | null;
  /** Kill → the first message about it that reached its agent after the kill. */
  firstMessageMs: number | null;
  firstMessage: string | null;
  /** Calls: kill → the hangup's acknowledgement, and what it said. */
  hangupAckMs: number | null;
  hangupAck: string | null;
  /** Rings: kill → the ring again, and whether it carried the id of the ring before the kill. */
  ringAgainMs: number | null;
  sameEid: boolean | null;
  /** Rings: kill → the agent told the ring is over, and that moment against the ring's announced `expiresAt`. */
  ringOverMs: number | null;
  ringOverLateMs: number | null;
  /** Kill → the new owner acting: the earlier of the first message and the acknowledgement. */
  actedMs: number | null;
}

export interface RoundResult {
  round: number;
  victim: string;
  victimNodeId: string;
  ownedByVictim: number;
  items: ItemResult[];
  /** Kill → the process gone. */
  exitMs: number;
  /** The last call's actedMs: null when one was not acted on within the wait. */
  allActedMs: number | null;
  firstActedMs: number | null;
  restartMs: number | null;
  /** Messages no item expected (rings of other requests), for the record. */
  stray: number;
  error: string | null;
}

export interface FailoverPhaseResult {
  settings: FailoverSettings;
  rounds: RoundResult[];
}

const POOL = 'support';
const SETUP_TIMEOUT_MS = 15_000;
const LOG_TAIL = 3_000;

const connect = (url: string, token: string) => io(url, { auth: { token }, reconnection: false, transports: ['websocket'], forceNew: true });

async function ask(socket: Socket, event: string, payload: unknown, timeoutMs = 10_000): Promise<Record<string, unknown>> {
  const reply = (await socket.timeout(timeoutMs).emitWithAck(event, payload)) as { ok: boolean; error?: { code: string; message: string } };
  if (!reply.ok) throw new Error(`${event} refused: ${reply.error?.code} ${reply.error?.message}`);
  return reply as Record<string, unknown>;
}

async function ready(socket: Socket): Promise<Socket> {
  const refused = new Promise<never>((_, reject) => socket.once('connect_error', (error) => reject(error)));
  await Promise.race([waitFor(socket, 'session.ready', () => true, SETUP_TIMEOUT_MS), refused]);
  return socket;
}

/** Every event a socket receives, timed, with the ids it is about. */
function record(socket: Socket): (Seen & { payload: Record<string, unknown> })[] & { about: (pick: (payload: Record<string, unknown>) => boolean, after: number) => Seen | undefined } {
  const seen: (Seen & { payload: Record<string, unknown> })[] = [];
  socket.onAny((event: string, payload: unknown) => {
    const body = (payload ?? {}) as Record<string, unknown>;
    seen.push({ at: performance.now(), wall: Date.now(), event, payload: body, ...(typeof body.eid === 'string' ? { eid: body.eid } : {}) });
  });
  return Object.assign(seen, { about: (pick: (payload: Record<string, unknown>) => boolean, after: number) => seen.find((s) => s.at >= after && pick(s.payload)) });
}

interface Person {
  socket: Socket;
  seen: ReturnType<typeof record>;
}

async function person(url: string, token: string, opened: Socket[] = []): Promise<Person> {
  const socket = connect(url, token);
  opened.push(socket);
  const seen = record(socket);
  await ready(socket);
  return { socket, seen };
}

interface Item {
  kind: 'call' | 'ring';
  agent: Person;
  agentNode: ClusterNode;
  visitorToken: string;
  requestId: string;
  callId: string | null;
  ringEid: string | null;
  ringExpiresAt: number | null;
  hangupAck: { at: number; said: string } | null;
}

async function setUp(kind: 'call' | 'ring', agentNode: ClusterNode, victim: ClusterNode, agentToken: string, visitorToken: string): Promise<Item & { visitor: Person }> {
  const sockets: Socket[] = [];
  try {
    return await setUpOn(kind, agentNode, victim, agentToken, visitorToken, sockets);
  } catch (error) {
    for (const socket of sockets) socket.disconnect();
    throw error;
  }
}

async function setUpOn(kind: 'call' | 'ring', agentNode: ClusterNode, victim: ClusterNode, agentToken: string, visitorToken: string, sockets: Socket[]): Promise<Item & { visitor: Person }> {
  const agent = await person(agentNode.url, agentToken, sockets);
  const ring = waitFor<{ requestId: string; eid?: string; expiresAt?: number }>(agent.socket, 'agent.ring', () => true, SETUP_TIMEOUT_MS);
  // Awaited below, or not at all when a step before fails: that must not bring the run down.
  ring.catch(() => undefined);
  const visitor = await person(victim.url, visitorToken, sockets);
  const accepted =
    kind === 'call'
      ? Promise.all([waitFor<{ callId: string }>(agent.socket, 'call.accepted', () => true, SETUP_TIMEOUT_MS), waitFor<{ callId: string }>(visitor.socket, 'call.accepted', () => true, SETUP_TIMEOUT_MS)])
      : null;
  accepted?.catch(() => undefined);
  const { requestId } = (await ask(visitor.socket, 'visitor.request', { pool: POOL })) as { requestId: string };
  const rung = await ring;
  if (rung.requestId !== requestId) throw new Error(`the agent was rung for ${rung.requestId}, not ${requestId}`);
  let callId: string | null = null;
  if (accepted) {
    await ask(agent.socket, 'agent.accept', { requestId });
    [{ callId }] = await accepted;
    await Promise.all([ask(agent.socket, 'call.media', { callId, state: 'connected' }), ask(visitor.socket, 'call.media', { callId, state: 'connected' })]);
  }
  return { kind, agent, agentNode, visitor, visitorToken, requestId, callId, ringEid: rung.eid ?? null, ringExpiresAt: rung.expiresAt ?? null, hangupAck: null };
}

const tail = (text: string) => (text.length > LOG_TAIL ? `…${text.slice(-LOG_TAIL)}` : text);

async function runRound(options: {
  round: number;
  nodes: Nodes;
  settings: FailoverSettings;
  agents: readonly FleetAgent[];
  fleet: Fleet;
  redisUrl: string;
  log: (line: string) => void;
}): Promise<RoundResult> {
  const { round, nodes, settings, agents, fleet, redisUrl, log } = options;
  const victim = nodes.nodes[round % nodes.nodes.length]!;
  const victimNodeId = victim.nodeId;
  const survivors = nodes.nodes.filter((node) => node !== victim);
  const items: (Item & { visitor: Person })[] = [];
  const result: RoundResult = { round, victim: victim.name, victimNodeId, ownedByVictim: 0, items: [], exitMs: 0, allActedMs: null, firstActedMs: null, restartMs: null, stray: 0, error: null };
  const perRound = settings.callsPerKill + settings.ringsPerKill;
  try {
    // Calls first: the rings are set up last, so that none of their timeouts runs long before the kill.
    for (let k = 0; k < perRound; k++) {
      const kind = k < settings.callsPerKill ? 'call' : 'ring';
      const agent = agents[round * perRound + k]!;
      items.push(await setUp(kind, survivors[k % survivors.length]!, victim, await fleet.agentToken(agent), await fleet.visitorToken(`visitor-failover-${round}-${k}`, `Visitor ${round}.${k}`)));
    }
    const holders = await leaseHolders(redisUrl, items.map((item) => item.requestId));
    result.ownedByVictim = items.filter((item) => holders.get(item.requestId) === victimNodeId).length;

    const killedAt = performance.now();
    await nodes.kill(victim, 'SIGKILL');
    result.exitMs = performance.now() - killedAt;
    // Right after the kill: only a new owner can take these.
    const hangupTimeoutMs = settings.waitMs;
    for (const item of items.filter((i) => i.kind === 'call')) {
      item.agent.socket.timeout(hangupTimeoutMs).emit('call.hangup', { callId: item.callId }, (error: Error | null, reply: { ok: boolean; error?: { code: string } }) => {
        item.hangupAck = { at: performance.now(), said: error ? 'no answer' : reply.ok ? 'ok' : (reply.error?.code ?? 'refused') };
      });
    }
    const aboutItem = (item: Item) => (payload: Record<string, unknown>) => (item.callId !== null && payload.callId === item.callId) || payload.requestId === item.requestId;
    const acted = (item: Item) => {
      const first = item.agent.seen.about(aboutItem(item), killedAt);
      const times = [first?.at, item.hangupAck?.said === 'ok' ? item.hangupAck.at : undefined].filter((t): t is number => t !== undefined);
      return times.length > 0 ? Math.min(...times) - killedAt : null;
    };
    const ringOver = (item: Item) => item.agent.seen.find((s) => s.at >= killedAt && s.event === 'agent.ringCancelled' && s.payload.requestId === item.requestId);
    // Done with an item: a call once its hangup is answered and it ended; a ring once its agent is told it is over.
    const settled = (item: Item) =>
      item.kind === 'call'
        ? item.hangupAck !== null && item.agent.seen.some((s) => s.at >= killedAt && s.event === 'call.ended' && s.payload.callId === item.callId)
        : ringOver(item) !== undefined;
    const deadline = killedAt + settings.waitMs;
    while (performance.now() < deadline && !items.every(settled)) await sleep(20);

    result.items = items.map((item) => {
      const first = item.agent.seen.about(aboutItem(item), killedAt);
      const again = item.kind === 'ring' ? item.agent.seen.about((p) => p.requestId === item.requestId, killedAt) : undefined;
      const ringAgain = again?.event === 'agent.ring' ? again : undefined;
      const over = item.kind === 'ring' ? ringOver(item) : undefined;
      return {
        kind: item.kind,
        requestId: item.requestId,
        callId: item.callId,
        agentNode: item.agentNode.name,
        leaseHolder: holders.get(item.requestId) ?? null,
        firstMessageMs: first ? first.at - killedAt : null,
        firstMessage: first?.event ?? null,
        hangupAckMs: item.hangupAck ? item.hangupAck.at - killedAt : null,
        hangupAck: item.hangupAck?.said ?? null,
        ringAgainMs: ringAgain ? ringAgain.at - killedAt : null,
        sameEid: ringAgain ? ringAgain.eid !== undefined && ringAgain.eid === item.ringEid : null,
        ringOverMs: item.kind === 'ring' && over ? over.at - killedAt : null,
        ringOverLateMs: item.kind === 'ring' && over && item.ringExpiresAt !== null ? over.wall - item.ringExpiresAt : null,
        actedMs: acted(item),
      };
    });
    result.stray = items.reduce((n, item) => n + item.agent.seen.filter((s) => s.at >= killedAt && s.event === 'agent.ring' && s.payload.requestId !== item.requestId).length, 0);
    const times = result.items.filter((item) => item.kind === 'call').map((item) => item.actedMs);
    result.allActedMs = times.length > 0 && times.every((t) => t !== null) ? Math.max(...(times as number[])) : null;
    result.firstActedMs = times.some((t) => t !== null) ? Math.min(...times.filter((t): t is number => t !== null)) : null;
    const rings = result.items.filter((item) => item.kind === 'ring');
    const late = rings.map((item) => item.ringOverLateMs).filter((t): t is number => t !== null);
    log(
      `kill ${round + 1} (${victim.name}, owner of ${result.ownedByVictim} of ${items.length}): ` +
        (result.allActedMs === null ? `${times.filter((t) => t === null).length} of ${times.length} calls not acted on within ${settings.waitMs / 1000} s` : `every call acted on ${Math.round(result.allActedMs)} ms after the kill`) +
        (result.firstActedMs !== null ? ` (the first at ${Math.round(result.firstActedMs)} ms)` : '') +
        `; rings re-sent ${rings.filter((item) => item.sameEid).length} of ${rings.length}, timed out on the new owner ${late.length} of ${rings.length}` +
        (late.length > 0 ? ` (${late.map((t) => Math.round(t)).join(', ')} ms after their deadline)` : ''),
    );
  } catch (error) {
    result.error = `${error instanceof Error ? error.message : String(error)}\n${nodes.nodes.map((node) => `--- ${node.name}\n${tail(nodes.logs(node))}`).join('\n')}`;
    log(`kill ${round + 1}: failed: ${(error instanceof Error ? error.message : String(error)).split('\n')[0]}`);
  } finally {
    await cleanUp(items, survivors);
  }
  if (!victim.running) {
    const restartAt = performance.now();
    try {
      await nodes.restart(victim);
      result.restartMs = performance.now() - restartAt;
    } catch (error) {
      result.error = `${result.error ?? ''}\nrestart of ${victim.name} failed: ${error instanceof Error ? error.message : String(error)}`.trim();
    }
  }
  return result;
}

/** Ends what a round left: requests still ringing are cancelled by their visitor, back on a surviving node; every socket goes. */
async function cleanUp(items: readonly (Item & { visitor: Person })[], survivors: readonly ClusterNode[]): Promise<void> {
  await Promise.allSettled(
    items.map(async (item, i) => {
      if (item.kind === 'ring') {
        const node = survivors[i % survivors.length]!;
        const visitor = await person(node.url, item.visitorToken).catch(() => null);
        if (visitor) {
          await ask(visitor.socket, 'visitor.cancel', { requestId: item.requestId }).catch(() => undefined);
          visitor.socket.disconnect();
        }
      }
      await ask(item.agent.socket, 'agent.presence', { status: 'away' }, 5_000).catch(() => undefined);
    }),
  );
  for (const item of items) {
    item.agent.socket.disconnect();
    item.visitor.socket.disconnect();
  }
}

export async function runFailoverPhase(options: { settings: FailoverSettings; fleet: Fleet; backing: Backing; log: (line: string) => void }): Promise<FailoverPhaseResult> {
  const { settings, fleet, backing, log } = options;
  const perRound = settings.callsPerKill + settings.ringsPerKill;
  const agents = fleet.agents.slice(0, settings.kills * perRound);
  const phase = await backing.phase(agents);
  let nodes: Nodes | null = null;
  try {
    const { DATABASE_PATH: _unused, ...fleetEnv } = fleet.env;
    nodes = await startNodes({
      databaseUrl: phase.databaseUrl,
      redisUrl: phase.redis.url,
      count: settings.nodes,
      // The product's timings but for the lease (the quick mode's is short) and a ring that outlasts a takeover.
      fast: false,
      env: {
        ...fleetEnv,
        LOG_LEVEL: 'warn',
        LEASE_TTL_MS: String(settings.lease.ttlMs),
        LEASE_RENEW_MS: String(settings.lease.renewMs),
        RING_TIMEOUT_MS: String(settings.ringTimeoutMs),
      },
    });
    log(`${settings.nodes} nodes up; ${settings.kills} kills of ${settings.callsPerKill} calls and ${settings.ringsPerKill} ringing requests each`);
    const rounds: RoundResult[] = [];
    for (let round = 0; round < settings.kills; round++) {
      rounds.push(await runRound({ round, nodes, settings, agents, fleet, redisUrl: phase.redis.url, log }));
      // Two rounds that could not even set up their calls say the cluster cannot carry them: the rest would too.
      if (rounds.length >= 2 && rounds.slice(-2).every((r) => r.error !== null && r.items.length === 0)) {
        log('two rounds in a row could not set up their calls; stopping the kills');
        break;
      }
    }
    return { settings, rounds };
  } finally {
    await nodes?.stopAll().catch(() => undefined);
    await phase.close();
  }
}
