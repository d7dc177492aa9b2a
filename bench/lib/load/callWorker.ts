/**
 * A capacity-benchmark worker process: thousands of plain socket.io-client sockets (websocket only, no
 * reconnection: a dropped socket stays dropped and is counted), each an agent or a visitor following
 * `callFlow.ts`. Driven over IPC by `capacity.bench.ts` through `workerPool.ts`.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { io, type Socket } from 'socket.io-client';
import { followCalls, newCounters, pooled, requestCall, type AckReply, type LegState, type Party } from './callFlow.ts';
import type { Identity } from './identities.ts';
import { serveWorker } from './workerPool.ts';

interface Client {
  identity: Identity;
  socket: Socket;
  party: Party;
  leg: LegState;
  requested: boolean;
}

const ACK_TIMEOUT_MS = 60_000;
let clients: Client[] = [];
let counters = newCounters();
let disconnectReasons: Record<string, number> = {};
let closing = false;
// The clients' own stalls: a socket can time out its heartbeat because its worker was busy, not the server.
const delay = monitorEventLoopDelay({ resolution: 10 });
delay.enable();

function partyOf(identity: Identity, socket: Socket): Party {
  return {
    kind: identity.kind,
    id: identity.id,
    send(event, payload, onAck) {
      socket.timeout(ACK_TIMEOUT_MS).emit(event, payload as never, (error: Error | null, ack: AckReply) => {
        onAck?.((error ? { ok: false, error: { code: 'ack-timeout' } } : ack) as AckReply & Record<string, unknown>);
      });
    },
    on(event, handler) {
      socket.on(event as string, handler as (payload: unknown) => void);
    },
  };
}

function connect(url: string, identity: Identity, timeoutMs: number): Promise<string | null> {
  const socket = io(url, { auth: { token: identity.token }, transports: ['websocket'], reconnection: false, forceNew: true });
  const party = partyOf(identity, socket);
  const client: Client = { identity, socket, party, leg: followCalls(party, counters), requested: false };
  clients.push(client);
  socket.on('disconnect', (reason) => {
    if (!closing) disconnectReasons[reason] = (disconnectReasons[reason] ?? 0) + 1;
  });
  return new Promise((resolve) => {
    const timer = setTimeout(() => finish('timeout'), timeoutMs);
    function finish(failure: string | null) {
      clearTimeout(timer);
      socket.off('session.ready', ready);
      socket.off('connect_error', refused);
      resolve(failure);
    }
    const ready = () => {
      if (identity.kind === 'agent') party.send('agent.presence', { status: 'available' });
      finish(null);
    };
    const refused = (error: Error) => finish(`connect_error: ${error.message}`);
    socket.once('session.ready', ready);
    socket.once('connect_error', refused);
  });
}

serveWorker(
  {
    async connect(args) {
      const { url, identities, concurrency, timeoutMs, deadlineAt } = args as { url: string; identities: Identity[]; concurrency: number; timeoutMs: number; deadlineAt: number };
      const started = Date.now();
      const failures = await pooled(identities, concurrency, (identity) => connect(url, identity, timeoutMs), () => Date.now() > deadlineAt);
      const reasons: Record<string, number> = {};
      for (const failure of failures) if (failure) reasons[failure] = (reasons[failure] ?? 0) + 1;
      const notStarted = identities.length - failures.length;
      if (notStarted > 0) reasons['not started by the deadline'] = notStarted;
      return { connected: failures.filter((f) => f === null).length, failed: identities.length - failures.filter((f) => f === null).length, reasons, ms: Date.now() - started };
    },
    async calls(args) {
      const { count, concurrency, timeoutMs, deadlineAt } = args as { count: number; concurrency: number; timeoutMs: number; deadlineAt: number };
      const idle = clients.filter((c) => c.identity.kind === 'visitor' && !c.requested && c.socket.connected).slice(0, count);
      const setupMs: number[] = [];
      const outcomes = { connected: 0, failed: 0, timeout: 0, notStarted: 0 };
      let failedSoFar = 0;
      // Past the deadline, or once calls fail, starting more would only measure a server that already broke.
      const stop = () => Date.now() > deadlineAt || failedSoFar > 0;
      const results = await pooled(
        idle,
        concurrency,
        async (client) => {
          client.requested = true;
          const started = Date.now();
          const outcome = await requestCall(client.party, client.leg, counters, Math.max(1, Math.min(timeoutMs, deadlineAt - started)));
          if (outcome === 'connected') setupMs.push(Date.now() - started);
          else failedSoFar++;
          return outcome;
        },
        stop,
      );
      for (const outcome of results) if (outcome) outcomes[outcome]++;
      outcomes.notStarted = idle.length - results.filter(Boolean).length;
      return { ...outcomes, setupMs };
    },
    /** Counts so far; the event-loop delay covers the time since the last `stats`. */
    stats() {
      const eventLoopDelayMs = { p99: delay.percentile(99) / 1e6, max: delay.max / 1e6 };
      delay.reset();
      return {
        eventLoopDelayMs,
        sockets: clients.length,
        connected: clients.filter((c) => c.socket.connected).length,
        legsConnected: clients.filter((c) => c.leg.connected).length,
        agentLegsConnected: clients.filter((c) => c.identity.kind === 'agent' && c.leg.connected).length,
        visitorLegsConnected: clients.filter((c) => c.identity.kind === 'visitor' && c.leg.connected).length,
        disconnectReasons,
        counters,
      };
    },
    /** Closes every socket and forgets them, for the next ladder on another server. */
    reset() {
      closeAll();
      const closed = clients.length;
      clients = [];
      counters = newCounters();
      disconnectReasons = {};
      closing = false;
      return { closed };
    },
  },
  () => closeAll(),
);

function closeAll() {
  closing = true;
  for (const client of clients) client.socket.disconnect();
}
