/**
 * The server's configuration, read once from the environment at start. Every variable is validated, so
 * a typo fails the start with a message naming the variable instead of surfacing later as odd behaviour.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { IceServer, MAX_ICE_SERVERS } from '@callchart/machines/protocol';
import { z } from 'zod';
import { proxyTrust } from './clientAddress.ts';
import { firstIssue, issueFragment } from './validation.ts';
import { normaliseOrigin, type AllowedOrigins } from './origins.ts';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface ServerTimings {
  /** How long an agent's ring may go unanswered before the next agent is tried. */
  ringTimeoutMs: number;
  /** How long an agent lost mid-call may take to come back before the visitor is reassigned. */
  agentGraceMs: number;
  /** How long a visitor may wait in the queue before the request ends as no-agents. */
  maxQueueWaitMs: number;
  /** How long a paused call waits for its lost leg. */
  reconnectionTimeoutMs: number;
  /** How long after a socket drops its session may still be resumed. */
  resumeWindowMs: number;
  /** How long a peer's socket has to acknowledge a relayed restart offer or request before it is closed as dead. */
  peerAckTimeoutMs: number;
  /** How often the server pings each socket; with `pingTimeoutMs`, the longest a dead socket goes unnoticed. */
  pingIntervalMs: number;
  /** How long a ping may go unanswered before its socket is closed as dead. */
  pingTimeoutMs: number;
}

/** Ephemeral TURN credentials (TURN_SECRET): the TURN REST scheme, coturn's `use-auth-secret`. */
export interface TurnRestConfig {
  /** coturn's `static-auth-secret`. */
  secret: string;
  urls: string[];
  /** How long minted credentials are valid for, from the start of the call. */
  ttlSeconds: number;
}

/** The limits on every door; see limits.ts and the LIMIT_* variables. */
export interface LimitSettings {
  login: {
    /** Wrong passwords for one account within the window before it is locked. */
    accountFailures: number;
    /** Wrong passwords from one source address within the window before it is locked. */
    addressFailures: number;
    windowS: number;
    /** The first lock; each further lock within a day doubles it, up to `lockMaxS`. */
    lockS: number;
    lockMaxS: number;
  };
  /** Visitor sessions issued to one source address per window. */
  visitorSessions: { points: number; windowS: number };
  /** `visitor.request`s one visitor may make per window. */
  visitorRequests: { points: number; windowS: number };
  /** How long an agent rung for a visitor, and not taking the call, is not rung again for that visitor's next requests. */
  reringWindowMs: number;
  sockets: {
    /** Open sockets on one visitor's token. */
    perVisitor: number;
    /** Open sockets on one agent login (one token). */
    perAgentSession: number;
    /** Events a socket may send per second, sustained. */
    eventsPerSecond: number;
    /** Events a socket may send at once, above the sustained rate. */
    eventBurst: number;
    /** Events refused for the rate within a minute after which the socket is disconnected. */
    strikesPerMinute: number;
    /** Rejected-event warnings written per socket per minute; the rest are counted in one summary line. */
    rejectionLogsPerMinute: number;
  };
}

/** Cluster mode (DATABASE_URL and REDIS_URL both set): this process is one node of several. */
export interface ClusterConfig {
  /** The shared store, a postgres:// URL (it may carry a password: never log it). */
  databaseUrl: string;
  /** Fan-out, presence, leases and limits, a redis:// or rediss:// URL (it may carry a password too). */
  redisUrl: string;
  /** This node's name in leases, logs and metrics; unique among the nodes of one cluster. */
  nodeId: string;
  /** How long an owner's lease on a request outlives its last renewal: the longest a dead owner's requests wait for a new one. */
  leaseTtlMs: number;
  /** How often an owner renews its leases; under half the TTL, so one missed renewal loses nothing. */
  leaseRenewMs: number;
}

export interface ServerConfig {
  port: number;
  host: string;
  /** Absolute path of the SQLite file, or `:memory:`. */
  databasePath: string;
  /** From AUTH_SECRET; null means the secret kept in the database is used (see `resolveAuthSecret`). */
  authSecret: string | null;
  tokenTtlSeconds: { agent: number; visitor: number };
  /** Absolute path of the demo agents file seeded at start. */
  agentsFile: string;
  /** `turn` is null without TURN_SECRET: then only the static ICE_SERVERS are handed out. */
  ice: { servers: IceServer[]; transportPolicy: 'all' | 'relay'; turn: TurnRestConfig | null };
  timings: ServerTimings;
  /** Upper bound on how many times one visitor request moves to another agent. */
  maxReassignments: number;
  logLevel: LogLevel;
  /** Whether clients may send their own machines' inspection entries to the live inspector. */
  inspectClients: boolean;
  /** The pages that may host the widget (ALLOWED_ORIGINS). */
  allowedOrigins: AllowedOrigins;
  /** How long SIGTERM keeps serving while /readyz says draining, so a load balancer moves traffic first. */
  drainMs: number;
  /**
   * The proxies (addresses, CIDR ranges, or `loopback`, `linklocal`, `uniquelocal`) whose X-Forwarded-For
   * names the client to the limits and the log (TRUST_PROXY); empty: nobody's, the peer is the client.
   */
  trustProxy: string[];
  limits: LimitSettings;
  /** Null without DATABASE_URL and REDIS_URL: one process on the SQLite file at `databasePath`. */
  cluster: ClusterConfig | null;
}

/** A bad environment variable; `variable` names it, and the message is fit for the operator. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(message);
  }
}

// The agents file ships with the server, so its default must not depend on where the process starts.
const DEFAULT_AGENTS_FILE = fileURLToPath(new URL('../config/agents.json', import.meta.url));
const HOUR_S = 3_600;
const DAY_MS = 86_400_000;
const DAY_S = 86_400;
const MIN_SECRET_LENGTH = 32;

function wholeNumber(min: number, max: number) {
  return z
    .string()
    .regex(/^\d+$/, { error: 'must be a whole number' })
    .transform(Number)
    .pipe(
      z
        .number()
        .min(min, { error: `must be at least ${String(min)}` })
        .max(max, { error: `must be at most ${String(max)}` }),
    );
}

/**
 * A server's address as a URL of one of `schemes`. The value is never echoed in the message: connection
 * URLs carry passwords.
 */
function connectionUrl(schemes: readonly string[]) {
  const prefixes = schemes.map((scheme) => `${scheme}://`);
  return z
    .string()
    .max(4_096)
    .refine((value) => prefixes.some((prefix) => value.toLowerCase().startsWith(prefix)) && URL.canParse(value), {
      error: `must be a ${prefixes.join(' or ')} URL`,
    });
}

const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const NODE_ID_HOST_LENGTH = 40;

/**
 * Unique without configuration: two processes on one host differ by pid, and a restarted process (which
 * may get its old pid back in a container) by the random part, so it never inherits a dead node's name.
 */
export function defaultNodeId(host: string): string {
  const name = host.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, NODE_ID_HOST_LENGTH) || 'node';
  return `${name}-${String(process.pid)}-${randomBytes(3).toString('hex')}`;
}

const filePath = z.string().max(4_096).transform((value) => path.resolve(value));

const iceServers = z
  .string()
  .transform((text, ctx): unknown => {
    try {
      return JSON.parse(text);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be a JSON array of ICE servers' });
      return z.NEVER;
    }
  })
  .pipe(z.array(IceServer, { error: 'must be a JSON array of ICE servers' }).max(MAX_ICE_SERVERS));

const turnUrls = z
  .string()
  .transform((text): IceServer => ({ urls: text.split(',').map((url) => url.trim()).filter(Boolean) }))
  .pipe(IceServer)
  .refine(({ urls }) => [urls].flat().every((url) => /^turns?:/i.test(url)), { error: 'must be turn: or turns: URLs' })
  .transform(({ urls }) => [urls].flat());

const environment = z.object({
  PORT: wholeNumber(0, 65_535).default(3_000),
  // Loopback by default: exposing the server is a decision the operator makes with HOST=0.0.0.0.
  HOST: z
    .string()
    .max(253)
    .regex(/^[A-Za-z0-9.:[\]-]+$/, { error: 'must be a host name or an IP address' })
    .default('127.0.0.1'),
  DATABASE_PATH: z
    .string()
    .max(4_096)
    .transform((value) => (value === ':memory:' ? value : path.resolve(value)))
    .default(() => path.resolve('data/callchart.db')),
  AUTH_SECRET: z
    .string()
    .min(MIN_SECRET_LENGTH, { error: `must be at least ${String(MIN_SECRET_LENGTH)} characters` })
    .max(4_096)
    .optional(),
  AGENT_TOKEN_TTL_SECONDS: wholeNumber(1, 30 * 24 * HOUR_S).default(12 * HOUR_S),
  VISITOR_TOKEN_TTL_SECONDS: wholeNumber(1, 24 * HOUR_S).default(15 * 60),
  AGENTS_FILE: filePath.default(DEFAULT_AGENTS_FILE),
  ICE_SERVERS: iceServers.default([]),
  ICE_TRANSPORT_POLICY: z.enum(['all', 'relay']).default('all'),
  TURN_SECRET: z
    .string()
    .min(MIN_SECRET_LENGTH, { error: `must be at least ${String(MIN_SECRET_LENGTH)} characters` })
    .max(4_096)
    .optional(),
  TURN_URLS: turnUrls.optional(),
  // No call has a length limit, so the credentials outlast any support call one expects; a call that
  // outlives them keeps its relay until the allocation's next refresh is refused.
  TURN_CREDENTIAL_TTL_SECONDS: wholeNumber(60, 7 * 24 * HOUR_S).default(4 * HOUR_S),
  RING_TIMEOUT_MS: wholeNumber(1, DAY_MS).default(15_000),
  AGENT_GRACE_MS: wholeNumber(1, DAY_MS).default(10_000),
  MAX_QUEUE_WAIT_MS: wholeNumber(1, DAY_MS).default(120_000),
  MAX_REASSIGNMENTS: wholeNumber(0, 1_000).default(5),
  // Longer than the peers' own window (3 attempts × 10 s, which starts when the pause does): a call whose
  // media failed on both sides must end as media-failed, not be reassigned by a timer that won the race.
  RECONNECTION_TIMEOUT_MS: wholeNumber(1, DAY_MS).default(35_000),
  // Longer than the clients' longest backoff gap (30 s + 0.5 s jitter) with room for the connect itself: a
  // client whose attempt just missed the restarted server must still be inside the window at its next one.
  RESUME_WINDOW_MS: wholeNumber(1, DAY_MS).default(40_000),
  // A restart is relayed only when a path broke, and the peer's socket may have gone with it unnoticed
  // (the server's own ping takes up to PING_INTERVAL_MS + PING_TIMEOUT_MS). Long enough for a slow link's round trip.
  PEER_ACK_TIMEOUT_MS: wholeNumber(100, 60_000).default(2_500),
  // A socket that dies without a FIN (a lost Wi-Fi, a sleeping laptop) is noticed after at most the two
  // together: 5 s, so a ring on a dead agent moves on within the 6 s the protocol promises.
  PING_INTERVAL_MS: wholeNumber(100, 60_000).default(2_500),
  PING_TIMEOUT_MS: wholeNumber(100, 60_000).default(2_500),
  LOG_LEVEL: z.enum(LOG_LEVELS).default('info'),
  // 0 by default: a developer's Ctrl-C (SIGINT) never waits, and neither does SIGTERM unless asked to.
  DRAIN_MS: wholeNumber(0, 600_000).default(0),
  // Unset: the server's own origin and loopback ones, so the demo and local development need nothing.
  ALLOWED_ORIGINS: z
    .string()
    .optional()
    .transform((value, ctx): AllowedOrigins => {
      const trimmed = value?.trim() ?? '';
      if (trimmed === '') return { kind: 'loopback' };
      if (trimmed === '*') return { kind: 'any' };
      const origins: string[] = [];
      for (const entry of trimmed.split(',').map((part) => part.trim()).filter(Boolean)) {
        const origin = normaliseOrigin(entry);
        if (origin === null) {
          ctx.addIssue({ code: 'custom', message: `${JSON.stringify(entry)} is not an origin (scheme://host[:port]); use * for any` });
          return z.NEVER;
        }
        origins.push(origin);
      }
      return { kind: 'list', origins };
    }),
  // Limits. A person typing gets nowhere near them; a script does at once.
  LIMIT_LOGIN_ACCOUNT_FAILURES: wholeNumber(1, 1_000).default(5),
  // Higher than per account: an office behind one address has several people mistyping.
  LIMIT_LOGIN_ADDRESS_FAILURES: wholeNumber(1, 100_000).default(20),
  LIMIT_LOGIN_WINDOW_SECONDS: wholeNumber(1, DAY_S).default(15 * 60),
  LIMIT_LOGIN_LOCK_SECONDS: wholeNumber(1, DAY_S).default(60),
  LIMIT_LOGIN_LOCK_MAX_SECONDS: wholeNumber(1, DAY_S).default(HOUR_S),
  LIMIT_VISITOR_SESSIONS: wholeNumber(1, 1_000_000).default(30),
  LIMIT_VISITOR_SESSIONS_WINDOW_SECONDS: wholeNumber(1, DAY_S).default(60),
  LIMIT_VISITOR_REQUESTS: wholeNumber(1, 10_000).default(6),
  LIMIT_VISITOR_REQUESTS_WINDOW_SECONDS: wholeNumber(1, DAY_S).default(60),
  LIMIT_RERING_WINDOW_MS: wholeNumber(0, DAY_MS).default(10_000),
  // A reconnect opens its socket before the server notices the old one is dead (up to PING_INTERVAL_MS + PING_TIMEOUT_MS, 5 s by default): room for that.
  LIMIT_SOCKETS_PER_VISITOR: wholeNumber(1, 1_000).default(3),
  LIMIT_SOCKETS_PER_AGENT_SESSION: wholeNumber(1, 1_000).default(5),
  // A call's trickled candidates come in bursts of a few dozen; the sustained rate of a call is far lower.
  LIMIT_SOCKET_EVENTS_PER_SECOND: wholeNumber(1, 100_000).default(20),
  LIMIT_SOCKET_EVENT_BURST: wholeNumber(1, 100_000).default(100),
  LIMIT_SOCKET_STRIKES_PER_MINUTE: wholeNumber(1, 1_000_000).default(200),
  LIMIT_REJECTION_LOGS_PER_MINUTE: wholeNumber(0, 100_000).default(5),
  // Unset: no proxy, so a client cannot pick its own address for the limits by sending X-Forwarded-For.
  TRUST_PROXY: z
    .string()
    .max(4_096)
    .optional()
    .transform((value, ctx): string[] => {
      const proxies = (value ?? '').split(',').map((part) => part.trim()).filter(Boolean);
      for (const proxy of proxies) {
        try {
          proxyTrust([proxy]);
        } catch {
          ctx.addIssue({ code: 'custom', message: `${JSON.stringify(proxy)} is not an IP address, a CIDR range, or one of loopback, linklocal, uniquelocal` });
          return z.NEVER;
        }
      }
      return proxies;
    }),
  // Cluster mode: both or neither (checked below), so a half-configured node never starts alone on SQLite.
  DATABASE_URL: connectionUrl(['postgres', 'postgresql']).optional(),
  REDIS_URL: connectionUrl(['redis', 'rediss']).optional(),
  // It names Redis keys and log lines, hence the conservative characters.
  NODE_ID: z
    .string()
    .regex(NODE_ID, { error: 'must be 1 to 64 letters, digits, dots, underscores or hyphens, starting with a letter or a digit' })
    .default(() => defaultNodeId(hostname())),
  // A dead owner's requests wait this long at most for another node to take them over.
  LEASE_TTL_MS: wholeNumber(200, 600_000).default(5_000),
  LEASE_RENEW_MS: wholeNumber(50, 300_000).default(1_500),
  // Off unless asked for: client entries are extra traffic and show a client's internals, a development aid.
  INSPECT_CLIENTS: z
    .enum(['on', 'off', 'true', 'false', '1', '0'], { error: 'must be on or off' })
    .transform((value) => value === 'on' || value === 'true' || value === '1')
    .default(false),
});

type EnvironmentVariable = keyof typeof environment.shape;

/**
 * Reads and validates the configuration. An empty variable counts as unset, as shells and `.env` files
 * commonly mean it. Throws `ConfigError` naming the first bad variable.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const input: Partial<Record<EnvironmentVariable, string>> = {};
  for (const name of Object.keys(environment.shape) as EnvironmentVariable[]) {
    const value = env[name];
    if (value !== undefined && value !== '') input[name] = value;
  }
  const result = environment.safeParse(input, { error: issueFragment });
  if (!result.success) {
    const { field, fragment } = firstIssue(result.error);
    const variable = field ?? 'environment';
    throw new ConfigError(variable.replace(/[.[].*$/, ''), `Invalid configuration: ${variable} ${fragment}.`);
  }
  const e = result.data;
  if (e.TURN_SECRET !== undefined && e.TURN_URLS === undefined) {
    throw new ConfigError('TURN_URLS', 'Invalid configuration: TURN_URLS must be set with TURN_SECRET (the TURN servers the credentials are for).');
  }
  // The minted server is handed out beside the static ones, in a list the protocol caps.
  if (e.TURN_SECRET !== undefined && e.ICE_SERVERS.length >= MAX_ICE_SERVERS) {
    throw new ConfigError('ICE_SERVERS', `Invalid configuration: ICE_SERVERS must have at most ${String(MAX_ICE_SERVERS - 1)} servers with TURN_SECRET.`);
  }
  if (e.DATABASE_URL !== undefined && e.REDIS_URL === undefined) {
    throw new ConfigError('REDIS_URL', 'Invalid configuration: REDIS_URL must be set with DATABASE_URL (a cluster node needs both; unset both for one process on SQLite).');
  }
  if (e.REDIS_URL !== undefined && e.DATABASE_URL === undefined) {
    throw new ConfigError('DATABASE_URL', 'Invalid configuration: DATABASE_URL must be set with REDIS_URL (a cluster node needs both; unset both for one process on SQLite).');
  }
  // Two renewals per lifetime: a renewal lost to one slow round trip must not hand the lease to another node.
  if (e.LEASE_RENEW_MS * 2 >= e.LEASE_TTL_MS) {
    throw new ConfigError('LEASE_RENEW_MS', `Invalid configuration: LEASE_RENEW_MS must be less than half of LEASE_TTL_MS (${String(e.LEASE_TTL_MS)}), so one missed renewal does not lose a lease.`);
  }
  return {
    port: e.PORT,
    host: e.HOST,
    databasePath: e.DATABASE_PATH,
    authSecret: e.AUTH_SECRET ?? null,
    tokenTtlSeconds: { agent: e.AGENT_TOKEN_TTL_SECONDS, visitor: e.VISITOR_TOKEN_TTL_SECONDS },
    agentsFile: e.AGENTS_FILE,
    ice: {
      servers: e.ICE_SERVERS,
      transportPolicy: e.ICE_TRANSPORT_POLICY,
      turn: e.TURN_SECRET === undefined || e.TURN_URLS === undefined ? null : { secret: e.TURN_SECRET, urls: e.TURN_URLS, ttlSeconds: e.TURN_CREDENTIAL_TTL_SECONDS },
    },
    timings: {
      ringTimeoutMs: e.RING_TIMEOUT_MS,
      agentGraceMs: e.AGENT_GRACE_MS,
      maxQueueWaitMs: e.MAX_QUEUE_WAIT_MS,
      reconnectionTimeoutMs: e.RECONNECTION_TIMEOUT_MS,
      resumeWindowMs: e.RESUME_WINDOW_MS,
      peerAckTimeoutMs: e.PEER_ACK_TIMEOUT_MS,
      pingIntervalMs: e.PING_INTERVAL_MS,
      pingTimeoutMs: e.PING_TIMEOUT_MS,
    },
    maxReassignments: e.MAX_REASSIGNMENTS,
    logLevel: e.LOG_LEVEL,
    inspectClients: e.INSPECT_CLIENTS,
    allowedOrigins: e.ALLOWED_ORIGINS,
    drainMs: e.DRAIN_MS,
    trustProxy: e.TRUST_PROXY,
    limits: {
      login: {
        accountFailures: e.LIMIT_LOGIN_ACCOUNT_FAILURES,
        addressFailures: e.LIMIT_LOGIN_ADDRESS_FAILURES,
        windowS: e.LIMIT_LOGIN_WINDOW_SECONDS,
        lockS: e.LIMIT_LOGIN_LOCK_SECONDS,
        lockMaxS: e.LIMIT_LOGIN_LOCK_MAX_SECONDS,
      },
      visitorSessions: { points: e.LIMIT_VISITOR_SESSIONS, windowS: e.LIMIT_VISITOR_SESSIONS_WINDOW_SECONDS },
      visitorRequests: { points: e.LIMIT_VISITOR_REQUESTS, windowS: e.LIMIT_VISITOR_REQUESTS_WINDOW_SECONDS },
      reringWindowMs: e.LIMIT_RERING_WINDOW_MS,
      sockets: {
        perVisitor: e.LIMIT_SOCKETS_PER_VISITOR,
        perAgentSession: e.LIMIT_SOCKETS_PER_AGENT_SESSION,
        eventsPerSecond: e.LIMIT_SOCKET_EVENTS_PER_SECOND,
        eventBurst: e.LIMIT_SOCKET_EVENT_BURST,
        strikesPerMinute: e.LIMIT_SOCKET_STRIKES_PER_MINUTE,
        rejectionLogsPerMinute: e.LIMIT_REJECTION_LOGS_PER_MINUTE,
      },
    },
    cluster:
      e.DATABASE_URL === undefined || e.REDIS_URL === undefined
        ? null
        : { databaseUrl: e.DATABASE_URL, redisUrl: e.REDIS_URL, nodeId: e.NODE_ID, leaseTtlMs: e.LEASE_TTL_MS, leaseRenewMs: e.LEASE_RENEW_MS },
  };
}
