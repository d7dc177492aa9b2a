/**
 * The composition root: one process serving the HTTP API and Socket.IO on one port, with the store, the
 * auth, the switchboard (routing and callSession actors) and the socket layer wired together. With
 * `config.cluster` the process is one node of a cluster: the store is the shared Postgres, and one Redis
 * connection carries the fan-out, the leases, the shared presence, the limits and the node-to-node bus.
 */
import { createServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import type { Redis } from 'ioredis';
import { Server } from 'socket.io';
import type { ClientToServerEvents, ServerToClientEvents } from '@callchart/machines';
import { loadAgentsFile, seedAgents } from './agents.ts';
import { createAuth, resolveAuthSecret, storeTokenRegistry } from './auth.ts';
import { AgentClaims } from './cluster/agentClaims.ts';
import { ClusterBus } from './cluster/bus.ts';
import { attachFanout, type Fanout } from './cluster/fanout.ts';
import { LeaseKeeper } from './cluster/lease.ts';
import { Ownership } from './cluster/ownership.ts';
import { createRedis, RedisKeys, whenReady } from './cluster/redis.ts';
import type { ClusterConfig, ServerConfig } from './config.ts';
import { Connections } from './connections.ts';
import { withCommonHeaders } from './headers.ts';
import { createHttpApp } from './http.ts';
import { limiterFactory, Limits } from './limits.ts';
import { attachInspectNamespace } from './inspectNamespace.ts';
import { Inspection } from './inspection.ts';
import { createLogger, type Logger } from './logger.ts';
import { createMetrics } from './metrics.ts';
import { originAllowed, type AllowedOrigins } from './origins.ts';
import { mountPages } from './pages.ts';
import { ResumeSessions } from './resume.ts';
import { attachSocketLayer, cutOffSockets, type Io } from './socket.ts';
import { SocketLimits } from './socketLimits.ts';
import { openStore, type Store } from './store.ts';
import { storeRead } from './storeReads.ts';
import { Switchboard, type SwitchboardOptions } from './switchboard/index.ts';

/** Socket.IO's own cap on one message; the protocol's per-field limits are far below it. */
const MAX_MESSAGE_BYTES = 256 * 1024;
// How stale the record of a crash's time can be: a lost socket is dated at most this much early.
const HEARTBEAT_MS = 1_000;

/**
 * Polling is plain HTTP that any page can send, so a page from an origin outside the allowlist is refused
 * before Socket.IO opens a session for it. The WebSocket handshake is left to the socket layer, which
 * refuses the same origins per principal with a reason the widget can show (`origin-not-allowed`).
 */
function pollingFromAllowedOrigin(allowed: AllowedOrigins, logger: Logger) {
  return (req: IncomingMessage, answer: (error: string | null | undefined, success: boolean) => void) => {
    const polling = new URL(req.url ?? '/', 'http://localhost').searchParams.get('transport') === 'polling';
    if (!polling || originAllowed(allowed, req.headers.origin, req.headers.host)) return answer(null, true);
    // As the socket layer logs its refused handshakes: the reason and where it came from.
    logger.info({ code: 'origin-not-allowed', reason: 'origin-not-allowed', transport: 'polling', address: req.socket.remoteAddress, origin: req.headers.origin }, 'socket refused');
    answer('origin-not-allowed', false);
  };
}

/** A node's parts of the cluster, for the server's own wiring and for tests that play a node's faults. */
export interface ClusterParts {
  nodeId: string;
  redis: Redis;
  keys: RedisKeys;
  leases: LeaseKeeper;
  claims: AgentClaims;
  ownership: Ownership;
  bus: ClusterBus;
}

export interface CallchartServer {
  http: HttpServer;
  /** The express app behind `http`: the HTTP API and the pages. */
  app: Express;
  io: Server<ClientToServerEvents, ServerToClientEvents>;
  store: Store;
  switchboard: Switchboard;
  /** Each person's connection actor: their sockets and their resume window. */
  connections: Connections;
  inspection: Inspection;
  logger: Logger;
  /** The port actually bound (useful with PORT=0). */
  port: number;
  /** Null in one process. */
  cluster: ClusterParts | null;
  /** Keeps serving for `ms` while /readyz says `draining`, then closes. */
  drain(ms: number): Promise<void>;
  close(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  inspect?: SwitchboardOptions['inspect'];
}

/** How often a Redis connection error is logged while Redis stays away: ioredis reports every attempt. */
const REDIS_ERROR_LOG_MS = 10_000;

/** The node's Redis parts, connected; rejects with a clear error when Redis does not answer at start. */
async function connectCluster(cluster: ClusterConfig, logger: Logger, handlers: { lost: (requestId: string) => void; retaken: (requestId: string) => void }): Promise<ClusterParts> {
  let lastErrorLog = 0;
  const onError = (error: unknown) => {
    if (Date.now() - lastErrorLog < REDIS_ERROR_LOG_MS) return;
    lastErrorLog = Date.now();
    logger.warn({ err: error }, 'Redis connection error');
  };
  const redis = createRedis({ url: cluster.redisUrl, connectionName: cluster.nodeId, onError });
  try {
    await whenReady(redis);
  } catch (error) {
    redis.disconnect();
    throw new Error(`Redis did not answer at start: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  const keys = new RedisKeys();
  const leases = new LeaseKeeper({
    redis,
    keys,
    nodeId: cluster.nodeId,
    settings: { ttlMs: cluster.leaseTtlMs, renewMs: cluster.leaseRenewMs },
    onLost: (lost) => {
      logger.warn({ requestId: lost.key, reason: lost.reason, token: lost.token }, 'lease lost');
      handlers.lost(lost.key);
    },
    onRetaken: (lease) => handlers.retaken(lease.key),
    onError: (error) => logger.warn({ err: error }, 'lease renewal failed'),
  });
  const claims = new AgentClaims({ redis, keys, nodeId: cluster.nodeId, onError: (error) => logger.warn({ err: error }, 'shared presence error') });
  const ownership = new Ownership({ redis, keys, leases, logger });
  const bus = new ClusterBus({
    redis,
    keys,
    nodeId: cluster.nodeId,
    owners: ownership,
    // A dead owner's lease lapses within the TTL, the next scan (every renewal) takes it over, and the
    // new owner runs it once it has read it from the store: twice the TTL leaves room for a slow one.
    forwardBudgetMs: 2 * cluster.leaseTtlMs + 2 * cluster.leaseRenewMs + 1_000,
    replyTimeoutMs: Math.min(2_000, cluster.leaseTtlMs),
    maxBackoffMs: Math.max(50, Math.floor(cluster.leaseRenewMs / 2)),
    onError: (error, detail) => logger.warn({ err: error, ...detail }, 'cluster bus error'),
  });
  return { nodeId: cluster.nodeId, redis, keys, leases, claims, ownership, bus };
}

export async function startServer(config: ServerConfig, options: StartOptions = {}): Promise<CallchartServer> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const store = await openStore({ databasePath: config.databasePath, databaseUrl: config.cluster?.databaseUrl });
  // The switchboard is made after the parts that report to it; what they report before then is nobody's.
  let switchboardReady: Switchboard | null = null;
  const cluster = config.cluster
    ? await connectCluster(config.cluster, logger, {
        lost: (requestId) => switchboardReady?.leaseLost(requestId),
        retaken: (requestId) => switchboardReady?.leaseRetaken(requestId),
      }).catch(async (error: unknown) => {
        await store.close();
        throw error;
      })
    : null;
  await seedAgents(store, loadAgentsFile(config.agentsFile));
  const secret = await resolveAuthSecret(config, store);
  const auth = createAuth({
    secret,
    agentTtlSeconds: config.tokenTtlSeconds.agent,
    visitorTtlSeconds: config.tokenTtlSeconds.visitor,
    registry: storeTokenRegistry(store),
  });

  let draining = false;
  // The gauges read the switchboard and the sockets when scraped, after both exist.
  const metrics = createMetrics({
    calls: () => switchboard.stats().calls,
    queued: () => switchboard.queuedCount(),
    agents: () => switchboard.presence.view(),
    sockets: () => io.engine.clientsCount,
  });
  const notReady = async () => {
    if (draining) return 'draining';
    try {
      await store.ping();
    } catch {
      return 'store';
    }
    if (cluster) {
      try {
        await cluster.redis.ping();
      } catch {
        return 'redis';
      }
    }
    return null;
  };
  const limits = new Limits(config.limits, limiterFactory({ redis: cluster?.redis, prefix: cluster?.keys.prefix ?? '' }));
  const app = createHttpApp({
    store,
    auth,
    config,
    logger,
    metrics,
    notReady,
    limits,
    cancelRequest: (visitorId, requestId) => switchboard.cancel(visitorId, requestId),
  });
  mountPages(app);
  const http = createServer(withCommonHeaders(app));
  const io: Io = new Server(http, {
    maxHttpBufferSize: MAX_MESSAGE_BYTES,
    // The client's signaling machine owns reconnection and resume; the server keeps no recovery buffer.
    connectionStateRecovery: undefined,
    // The only liveness a socket that died without a FIN has: the ring on a dead agent moves on once it closes.
    pingInterval: config.timings.pingIntervalMs,
    pingTimeout: config.timings.pingTimeoutMs,
    allowRequest: pollingFromAllowedOrigin(config.allowedOrigins, logger),
  });
  // Before any socket joins a room: rooms and emits reach every node's sockets from the first one.
  const fanout: Fanout | null = cluster ? attachFanout(io, cluster.redis) : null;

  const inspection = new Inspection();
  const switchboard = new Switchboard({
    io,
    store,
    config,
    logger,
    inspect: (event, actor) => {
      inspection.record(event, actor);
      options.inspect?.(event, actor);
    },
    onReassignment: (trigger) => metrics.reassignment(trigger),
    cluster: cluster && { bus: cluster.bus, ownership: cluster.ownership, claims: cluster.claims },
    awaitVisitors: (visitorIds) => connections.awaitReturn(visitorIds),
  });
  switchboardReady = switchboard;
  const connections = new Connections({
    windowMs: config.timings.resumeWindowMs,
    switchboard,
    cutOff: (socketIds) => inspectors.closeSessions(cutOffSockets(io, socketIds, switchboard.sent())),
    cluster: cluster !== null,
  });
  const resume = new ResumeSessions(secret, connections);
  const socketLimits = new SocketLimits({ limits, logger, metrics });
  attachSocketLayer({
    io,
    auth,
    switchboard,
    resume,
    connections,
    logger,
    peerAckTimeoutMs: config.timings.peerAckTimeoutMs,
    allowedOrigins: config.allowedOrigins,
    metrics,
    clientInspection: config.inspectClients ? inspection : null,
    limits: socketLimits,
    cluster: cluster !== null,
    trustProxy: config.trustProxy,
    closeInspectorSessions: (sessionIds) => inspectors.closeSessions(sessionIds),
  });
  // After the socket layer's middleware, which reads who a handshake is for.
  socketLimits.install(io);
  const inspectors = attachInspectNamespace({ io, auth, inspection, switchboard, store, logger, clientInspection: config.inspectClients, node: cluster?.nodeId ?? null });
  // Read before this process writes its own: the old one's last heartbeat is when its sockets were lost.
  const lastAliveAt = cluster ? null : await switchboard.lastAliveAt();
  const restoreStartedAt = Date.now();
  if (cluster) {
    cluster.leases.start();
    // Before the switchboard loads: its presence listens to every node's changes from the start.
    await cluster.claims.start();
  }
  const restored = await switchboard.restore();
  if (restored.requests || restored.calls) logger.info({ ...restored, ms: Date.now() - restoreStartedAt }, 'restored actors from the store');

  let beating: Promise<void> | null = null;
  // A store that stops answering is what /readyz reports; the heartbeat must not crash the process over it,
  // nor pile up writes behind one that hangs: a beat still out is the one every caller waits for.
  const beat = (): Promise<void> =>
    (beating ??= (async () => {
      try {
        await storeRead(switchboard.markAlive());
      } catch (error) {
        logger.error({ err: error }, 'heartbeat could not be written');
      } finally {
        beating = null;
      }
    })());
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(config.port, config.host, () => resolve());
  });
  // Every socket was lost with the old process. The windows to come back in open now that anyone can
  // connect, not when the process started: a slow restore must not use them up before the listen.
  connections.open(switchboard.waitingVisitors());
  await switchboard.armRestored(lastAliveAt);
  // A node's requests outlive it in the cluster, which takes them over: no heartbeat dates its sockets' loss.
  let heartbeat: NodeJS.Timeout | null = null;
  if (cluster) {
    await switchboard.joinCluster();
  } else {
    await beat();
    heartbeat = setInterval(() => {
      void beat();
    }, HEARTBEAT_MS);
    heartbeat.unref();
  }
  const port = (http.address() as AddressInfo).port;
  logger.info({ port, host: config.host, database: store.path, engine: store.engine, ...(cluster ? { nodeId: cluster.nodeId } : {}) }, 'callchart server listening');

  let closing: Promise<void> | null = null;
  const close = () =>
    (closing ??= (async () => {
      draining = true;
      if (heartbeat) clearInterval(heartbeat);
      // A clean stop dates the loss of every socket exactly, rather than up to a heartbeat early.
      if (!cluster) await beat();
      // A node going away says nothing of its sockets: their people come back on another node, and the
      // trees there hear of it only if they do not.
      connections.stop();
      // A scan every renewal takes each over; a few renewals cover a scan under way and a slow store.
      if (cluster) await switchboard.handOff(3 * config.cluster!.leaseRenewMs + 500);
      else switchboard.stop();
      // What the trees' last steps wrote lands, and what they send goes out, before the sockets close.
      await switchboard.settled();
      await new Promise<void>((resolve) => io.close(() => resolve()));
      if (cluster) {
        fanout?.close();
        cluster.bus.stop();
        cluster.leases.stop();
        await cluster.claims.stop();
        cluster.redis.disconnect();
      }
      await store.close();
    })());

  return {
    http,
    app,
    io,
    store,
    switchboard,
    connections,
    inspection,
    logger,
    port,
    cluster,
    async drain(ms) {
      // Still serving everyone connected; only new traffic is asked to go elsewhere.
      draining = true;
      logger.info({ ms }, 'draining');
      if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms));
      await close();
    },
    close,
  };
}
