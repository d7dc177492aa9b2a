/**
 * A reconnect-storm worker process: thousands of clients that each keep a timeline of their connection:
 * when the socket dropped, every reconnection attempt, and when the session was resumed (or expired). Two
 * kinds of client:
 *
 * - `machine`: the real client signaling code, `createConnection` from apps/client, whose signaling machine
 *   reconnects with its jittered exponential backoff (the product's defaults) and resumes with the token of
 *   the last `session.ready` in the handshake. Attempts are its `openSocket` actions, seen by inspection.
 * - `fixed`: the baseline, socket.io-client's own reconnection every 1 s with no randomization, handing the
 *   same resume token in the handshake. Attempts are the manager's `reconnect_attempt` events.
 */
import type { InspectionEvent } from 'xstate';
import { io } from 'socket.io-client';
import { createConnection, type Connection } from '@callchart/client/connection';
import { followCalls, newCounters, pooled, requestCall, type AckReply, type LegState, type Party } from './callFlow.ts';
import type { Identity } from './identities.ts';
import { serveWorker } from './workerPool.ts';

export type StormClientMode = 'machine' | 'fixed';

export interface Timeline {
  kind: 'agent' | 'visitor';
  inCall: boolean;
  /** Epoch ms; every list holds only what happened since the last `arm`. */
  disconnects: number[];
  attempts: number[];
  resumed: number[];
  /** Whether a `session.resumed` brought the client's call back. */
  resumedCall: boolean;
  expired: number[];
  ready: number[];
}

interface Client {
  identity: Identity;
  party: Party;
  leg: LegState;
  timeline: Timeline;
  connected: () => boolean;
  stop: () => void;
  requested: boolean;
}

const FIXED_DELAY_MS = 1_000;
let clients: Client[] = [];
let counters = newCounters();

const emptyTimeline = (kind: Identity['kind']): Timeline => ({ kind, inCall: false, disconnects: [], attempts: [], resumed: [], resumedCall: false, expired: [], ready: [] });

function machineClient(url: string, identity: Identity): Client {
  const timeline = emptyTimeline(identity.kind);
  const replies = new Map<object, (ack: AckReply & Record<string, unknown>) => void>();
  let connection: Connection | null = null;
  const inspect = (event: InspectionEvent) => {
    if (event.actorRef !== connection?.actor) return;
    if (event.type === '@xstate.action' && event.action.type === 'openSocket') timeline.attempts.push(Date.now());
    if (event.type === '@xstate.event' && event.event.type === 'socket.closed') timeline.disconnects.push(Date.now());
  };
  connection = createConnection({ url, token: identity.token, inspect });
  const live = connection;
  live.onReply((_, payload, ack) => {
    const callback = replies.get(payload as object);
    replies.delete(payload as object);
    callback?.(ack as AckReply & Record<string, unknown>);
  });
  live.onServerEvents({
    'session.ready': () => timeline.ready.push(Date.now()),
    'session.resumed': ({ call }) => {
      timeline.resumed.push(Date.now());
      if (call) timeline.resumedCall = true;
    },
    'session.expired': () => timeline.expired.push(Date.now()),
  });
  const party: Party = {
    kind: identity.kind,
    id: identity.id,
    send(event, payload, onAck) {
      // The reply comes back with the very payload object that went through the outbox.
      if (onAck) replies.set(payload as object, onAck);
      live.send(event, payload);
    },
    on(event, handler) {
      live.onServerEvents({ [event]: handler });
    },
  };
  live.start();
  return {
    identity,
    party,
    leg: followCalls(party, counters),
    timeline,
    connected: () => live.actor.getSnapshot().matches({ connected: 'ready' }),
    stop: () => live.stop(),
    requested: false,
  };
}

function fixedClient(url: string, identity: Identity): Client {
  const timeline = emptyTimeline(identity.kind);
  let resumeToken: string | null = null;
  const socket = io(url, {
    transports: ['websocket'],
    forceNew: true,
    reconnection: true,
    reconnectionAttempts: Infinity,
    reconnectionDelay: FIXED_DELAY_MS,
    reconnectionDelayMax: FIXED_DELAY_MS,
    randomizationFactor: 0,
    // Asked again at every (re)connection, so each attempt carries the latest resume token.
    auth: (callback) => callback(resumeToken ? { token: identity.token, resumeToken } : { token: identity.token }),
  });
  socket.io.on('reconnect_attempt', () => timeline.attempts.push(Date.now()));
  socket.on('disconnect', () => timeline.disconnects.push(Date.now()));
  socket.on('session.ready', ({ resumeToken: token }: { resumeToken: string }) => {
    resumeToken = token;
    timeline.ready.push(Date.now());
  });
  socket.on('session.resumed', ({ call }: { call: unknown }) => {
    timeline.resumed.push(Date.now());
    if (call) timeline.resumedCall = true;
  });
  socket.on('session.expired', () => timeline.expired.push(Date.now()));
  const party: Party = {
    kind: identity.kind,
    id: identity.id,
    send(event, payload, onAck) {
      socket.timeout(60_000).emit(event, payload as never, (error: Error | null, ack: AckReply) => {
        onAck?.((error ? { ok: false, error: { code: 'ack-timeout' } } : ack) as AckReply & Record<string, unknown>);
      });
    },
    on(event, handler) {
      socket.on(event as string, handler as (payload: unknown) => void);
    },
  };
  return { identity, party, leg: followCalls(party, counters), timeline, connected: () => socket.connected, stop: () => socket.disconnect(), requested: false };
}

function waitReady(client: Client, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  return new Promise((resolve) => {
    const check = () => {
      if (client.timeline.ready.length > 0) return resolve(true);
      if (Date.now() > until) return resolve(false);
      setTimeout(check, 20);
    };
    check();
  });
}

serveWorker(
  {
    async connect(args) {
      const { url, identities, mode, concurrency, timeoutMs } = args as { url: string; identities: Identity[]; mode: StormClientMode; concurrency: number; timeoutMs: number };
      const ready = await pooled(identities, concurrency, async (identity) => {
        const client = mode === 'machine' ? machineClient(url, identity) : fixedClient(url, identity);
        clients.push(client);
        if (!(await waitReady(client, timeoutMs))) return false;
        if (identity.kind === 'agent') client.party.send('agent.presence', { status: 'available' });
        return true;
      });
      return { ready: ready.filter(Boolean).length, failed: ready.filter((ok) => !ok).length };
    },
    async calls(args) {
      const { count, concurrency, timeoutMs, deadlineAt } = args as { count: number; concurrency: number; timeoutMs: number; deadlineAt: number };
      const idle = clients.filter((c) => c.identity.kind === 'visitor' && !c.requested).slice(0, count);
      const outcomes = await pooled(
        idle,
        concurrency,
        async (client) => {
          client.requested = true;
          return requestCall(client.party, client.leg, counters, Math.max(1, Math.min(timeoutMs, deadlineAt - Date.now())));
        },
        () => Date.now() > deadlineAt,
      );
      return { connected: outcomes.filter((o) => o === 'connected').length, failed: outcomes.filter((o) => o && o !== 'connected').length };
    },
    /** Starts a storm: forgets every timeline so far and notes which clients are in a call. */
    arm() {
      for (const client of clients) {
        Object.assign(client.timeline, emptyTimeline(client.identity.kind));
        client.timeline.inCall = client.leg.connected;
      }
      return { armedAt: Date.now() };
    },
    stats() {
      return {
        clients: clients.length,
        connected: clients.filter((c) => c.connected()).length,
        resumed: clients.filter((c) => c.timeline.resumed.length > 0).length,
        expired: clients.filter((c) => c.timeline.expired.length > 0).length,
        legsConnected: clients.filter((c) => c.leg.connected).length,
        counters,
      };
    },
    timelines: () => clients.map((c) => c.timeline),
    reset() {
      for (const client of clients) client.stop();
      const closed = clients.length;
      clients = [];
      counters = newCounters();
      return { closed };
    },
  },
  () => {
    for (const client of clients) client.stop();
  },
);
