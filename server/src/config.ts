/**
 * The server's configuration, read once from the environment at start. Every variable is validated, so
 * a typo fails the start with a message naming the variable instead of surfacing later as odd behaviour.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { IceServer, MAX_ICE_SERVERS } from '@callchart/machines/protocol';
import { z } from 'zod';
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
  ice: { servers: IceServer[]; transportPolicy: 'all' | 'relay' };
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
  // (the server's own ping takes up to 15 s). Long enough for a slow link's round trip.
  PEER_ACK_TIMEOUT_MS: wholeNumber(100, 60_000).default(2_500),
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
  return {
    port: e.PORT,
    host: e.HOST,
    databasePath: e.DATABASE_PATH,
    authSecret: e.AUTH_SECRET ?? null,
    tokenTtlSeconds: { agent: e.AGENT_TOKEN_TTL_SECONDS, visitor: e.VISITOR_TOKEN_TTL_SECONDS },
    agentsFile: e.AGENTS_FILE,
    ice: { servers: e.ICE_SERVERS, transportPolicy: e.ICE_TRANSPORT_POLICY },
    timings: {
      ringTimeoutMs: e.RING_TIMEOUT_MS,
      agentGraceMs: e.AGENT_GRACE_MS,
      maxQueueWaitMs: e.MAX_QUEUE_WAIT_MS,
      reconnectionTimeoutMs: e.RECONNECTION_TIMEOUT_MS,
      resumeWindowMs: e.RESUME_WINDOW_MS,
      peerAckTimeoutMs: e.PEER_ACK_TIMEOUT_MS,
    },
    maxReassignments: e.MAX_REASSIGNMENTS,
    logLevel: e.LOG_LEVEL,
    inspectClients: e.INSPECT_CLIENTS,
    allowedOrigins: e.ALLOWED_ORIGINS,
    drainMs: e.DRAIN_MS,
  };
}
