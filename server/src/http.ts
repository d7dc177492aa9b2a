/**
 * The HTTP API: agent login, visitor sessions, and call history with its reconnection telemetry.
 * Everything under /api answers JSON, errors included, as `{ error: { code, message, field? } }`, so
 * the widget and the dashboard handle one shape. Pages and Socket.IO are mounted beside it.
 *
 * Each endpoint is a route of the protocol's (machines/src/http.ts): its path, the schemas its request is
 * validated with and the one its answer is typed by, all of which the OpenAPI document is made from.
 */
import { randomUUID } from 'node:crypto';
import {
  callDetailRoute,
  callExportRoute,
  callListRoute,
  healthRoute,
  loginRoute,
  metricsRoute,
  openApiRoute,
  readyRoute,
  visitorCancelRoute,
  visitorSessionRoute,
  type CallTelemetry,
  type HttpErrorCode,
  type HttpRoute,
  type RouteReply,
} from '@callchart/machines';
import cors from 'cors';
import express, { type ErrorRequestHandler, type Express, type Request, type RequestHandler, type Response, type Router } from 'express';
import { z } from 'zod/mini';
import { authenticateAgent, isInspector } from './agents.ts';
import { AuthError, type Auth, type Principal } from './auth.ts';
import { clientAddress, proxyTrust, type ProxyTrust } from './clientAddress.ts';
import type { ServerConfig } from './config.ts';
import { toCsv } from './csv.ts';
import { Limits, retryAfterSeconds } from './limits.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics.ts';
import { openApiDocument } from './openapi.ts';
import { issuedTo, originAllowed, type AllowedOrigins } from './origins.ts';
import type { CallRecord, Store, TelemetryRecord } from './store.ts';
import { storeRead, StoreUnavailableError, STORE_READ_DEADLINE_MS } from './storeReads.ts';
import { SwitchboardError } from './switchboard/entries.ts';
import { firstIssue, issueFragment } from './validation.ts';

export const MAX_BODY_BYTES = 16 * 1024;
const DEFAULT_VISITOR_NAME = 'Visitor';

/** An error a client is meant to see: `message` is one sentence, `field` names what to fix. */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    readonly status: number,
    readonly code: HttpErrorCode,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

/** A 429: `Retry-After` tells the client when to come back. */
export class RateLimitedError extends HttpError {
  constructor(
    readonly retryAfterS: number,
    message: string,
  ) {
    super(429, 'rate-limited', message);
  }
}

export interface HttpDeps {
  store: Store;
  auth: Auth;
  config: ServerConfig;
  logger: Logger;
  metrics?: Metrics;
  /** Why the server cannot take traffic now (`store`, `draining`), or null when it can. */
  notReady?: () => string | null | Promise<string | null>;
  /** How long a store read (and the readiness check) may take before the answer is a 503; `STORE_READ_DEADLINE_MS` by default. */
  storeDeadlineMs?: number;
  /** The server's limits; made from `config.limits` when left out. */
  limits?: Limits;
  /**
   * Cancels a visitor's call request as `visitor.cancel` does, resolving once the node that runs it has
   * taken it; throws (or rejects with) the switchboard's refusals. In a cluster it may wait for that node.
   */
  cancelRequest?: (visitorId: string, requestId: string) => void | Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Requests and answers

function parse<S extends z.core.$ZodType>(schema: S, value: unknown, where: 'body' | 'query'): z.output<S> {
  const result = z.safeParse(schema, value, { error: issueFragment });
  if (result.success) return result.data;
  const { field, fragment } = firstIssue(result.error);
  const message = field === undefined ? `The ${where} ${fragment}.` : `Field "${field}" ${fragment}.`;
  throw new HttpError(400, 'invalid-payload', message, field);
}

/** Express's form of a route's path, relative to where its router is mounted (`/api`). */
function expressPath(route: HttpRoute, mount = ''): string {
  return route.path.slice(mount.length).replace(/\{(\w+)\}/g, ':$1');
}

function reply<R extends HttpRoute>(res: Response, route: R, body: RouteReply<R>): void {
  res.status(route.status).json(body);
}

// express.json() leaves `req.body` undefined both when there is no body and when it is not JSON; only
// the first may be read as an empty object.
function jsonBody(req: Request): unknown {
  if (req.body !== undefined) return req.body;
  const length = req.headers['content-length'];
  const hasBody = req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
  if (hasBody) throw new HttpError(415, 'unsupported-media-type', 'The body must be JSON (application/json).');
  return {};
}

// A beacon's body arrives as text (the media type a cross-origin beacon may use); it holds JSON all the same.
function beaconBody(req: Request): unknown {
  if (typeof req.body !== 'string') return jsonBody(req);
  try {
    return JSON.parse(req.body) as unknown;
  } catch {
    throw new HttpError(400, 'invalid-payload', 'The body must be a JSON object.');
  }
}


// ---------------------------------------------------------------------------------------------
// Who is asking

const BEARER = /^Bearer\s+(\S+)\s*$/i;

async function principalOf(req: Request, auth: Auth): Promise<Principal> {
  const match = BEARER.exec(req.headers.authorization ?? '');
  if (match?.[1] === undefined) throw new AuthError('no bearer token');
  return auth.verifyToken(match[1]);
}

async function requireAgent(req: Request, auth: Auth): Promise<Extract<Principal, { kind: 'agent' }>> {
  const principal = await principalOf(req, auth);
  if (principal.kind !== 'agent') throw new HttpError(403, 'forbidden', 'Only agents can see call history.');
  return principal;
}

// An agent may not learn that someone else's call exists, so those calls are "not found" too; so is an
// id that could not be one.
async function visibleCall(
  read: <T>(answer: Promise<T>) => Promise<T>,
  store: Store,
  params: unknown,
  agent: Extract<Principal, { kind: 'agent' }>,
): Promise<CallRecord> {
  const parsed = z.safeParse(callDetailRoute.params, params);
  const call = parsed.success ? await read(store.calls.get(parsed.data.id)) : undefined;
  if (call === undefined || (!isInspector(agent.roles) && call.agentId !== agent.agentId)) {
    throw new HttpError(404, 'not-found', 'There is no such call.');
  }
  return call;
}

// ---------------------------------------------------------------------------------------------
// Telemetry views

function telemetryOf(call: CallRecord, records: readonly TelemetryRecord[]): CallTelemetry {
  const telemetry: CallTelemetry = { disconnections: [], reconnectionAttempts: [], totalPauseMs: call.totalPauseMs };
  for (const record of records) {
    if (record.kind === 'disconnection') {
      telemetry.disconnections.push({ leg: record.leg, at: record.at, cause: record.cause });
    } else {
      telemetry.reconnectionAttempts.push({
        leg: record.leg,
        at: record.at,
        durationMs: record.durationMs,
        outcome: record.outcome,
      });
    }
  }
  return telemetry;
}

const CSV_HEADER = [
  'call_id',
  'visitor_name',
  'agent_name',
  'kind',
  'leg',
  'at',
  'duration_ms',
  'outcome',
  'cause',
  'total_pause_ms',
] as const;

function telemetryCsv(call: CallRecord, records: readonly TelemetryRecord[]): string {
  return toCsv(
    CSV_HEADER,
    records.map((record) => [
      call.id,
      call.visitorName,
      call.agentName,
      record.kind,
      record.leg,
      new Date(record.at).toISOString(),
      record.kind === 'reconnection-attempt' ? record.durationMs : null,
      record.kind === 'reconnection-attempt' ? record.outcome : null,
      record.kind === 'disconnection' ? record.cause : null,
      call.totalPauseMs,
    ]),
  );
}

// ---------------------------------------------------------------------------------------------
// Routes

/**
 * The visitor's endpoints serve pages on other origins (the widget is pasted into other people's sites).
 * Every origin may ask (the preflight grants nothing) and read the answer; an origin that is not allowed
 * gets `origin-not-allowed` and no session. Readable on purpose: a refusal the browser hid would look to
 * the widget like a network failure, and the site's owner would never learn why.
 */
function visitorOrigins(allowed: AllowedOrigins, log: Logger): RequestHandler[] {
  const guard: RequestHandler = (req, _res, next) => {
    if (originAllowed(allowed, req.headers.origin, req.headers.host)) return next();
    log.info({ origin: req.headers.origin, path: req.path }, 'origin not allowed');
    next(new HttpError(403, 'origin-not-allowed', 'Video calls are not enabled for this website.'));
  };
  return [cors({ origin: true, methods: ['POST'], allowedHeaders: ['Content-Type'], maxAge: 600 }), guard];
}

const API = '/api';

function loginLocked(ms: number): RateLimitedError {
  const seconds = retryAfterSeconds(ms);
  return new RateLimitedError(seconds, `Too many failed sign-ins; try again in ${String(seconds)} s.`);
}

/** The /api routes with their own JSON body parser and error handler; mount at /api. */
export function createApiRouter({
  store,
  auth,
  logger,
  config,
  metrics,
  limits = new Limits(config.limits),
  cancelRequest,
  storeDeadlineMs = STORE_READ_DEADLINE_MS,
}: HttpDeps): Router {
  const router = express.Router();
  const log = logger.child({ component: 'http' });
  // Where each request came from, for the limits and the log: X-Forwarded-For only from TRUST_PROXY's proxies.
  const trust: ProxyTrust = proxyTrust(config.trustProxy);
  const sourceAddress = (req: Request): string => clientAddress(req, trust);
  // Every read of the store goes through here: one that fails or stalls is answered 503, never 500 or silence.
  const read = <T,>(answer: Promise<T>): Promise<T> => storeRead(answer, storeDeadlineMs);

  router.use((_req, res, next) => {
    // Tokens and call history must not be kept by shared caches or the browser's back button.
    res.set('Cache-Control', 'no-store');
    next();
  });
  router.use(express.json({ limit: MAX_BODY_BYTES }));

  router.get(expressPath(openApiRoute, API), (_req, res) => {
    reply(res, openApiRoute, openApiDocument());
  });

  router.post(expressPath(loginRoute, API), async (req, res) => {
    const { email: typed, password } = parse(loginRoute.body, jsonBody(req), 'body');
    const email = typed.toLowerCase();
    const address = sourceAddress(req);
    // Counted before the password, so a lock holds against the right one too (only time lifts it), and
    // guesses sent all at once cannot all slip in before the first of them has failed.
    const locked = await limits.login.attempt(email, address);
    if (locked > 0) {
      log.info({ email, address, reason: 'locked', retryAfterS: retryAfterSeconds(locked) }, 'agent login refused');
      throw loginLocked(locked);
    }
    const agent = await authenticateAgent(store, email, password, storeDeadlineMs);
    if (agent === null) {
      const lock = await limits.login.failed(email, address);
      log.info({ email, address, reason: 'wrong-credentials', ...(lock > 0 ? { lockedForS: retryAfterSeconds(lock) } : {}) }, 'agent login refused');
      throw new HttpError(401, 'unauthorized', 'The email or password is incorrect.');
    }
    await limits.login.succeeded(email, address);
    const { token, expiresAt } = await auth.issueAgentToken(agent);
    log.info({ agentId: agent.id }, 'agent logged in');
    reply(res, loginRoute, { token, expiresAt, agent: { id: agent.id, name: agent.name, pools: agent.pools, roles: agent.roles } });
  });

  const fromAllowedOrigin = visitorOrigins(config.allowedOrigins, log);
  router.options(expressPath(visitorSessionRoute, API), ...fromAllowedOrigin);
  router.post(expressPath(visitorSessionRoute, API), ...fromAllowedOrigin, async (req, res) => {
    const address = sourceAddress(req);
    const allowed = await limits.visitorSessions.take(address);
    if (!allowed.ok) {
      const seconds = retryAfterSeconds(allowed.retryAfterMs);
      log.info({ address, retryAfterS: seconds }, 'visitor session refused: rate limited');
      throw new RateLimitedError(seconds, `Too many new sessions from this address; try again in ${String(seconds)} s.`);
    }
    const { name = DEFAULT_VISITOR_NAME } = parse(visitorSessionRoute.body, jsonBody(req), 'body');
    const visitorId = `visitor-${randomUUID()}`;
    // The page it was issued to: its socket must come from the same one.
    const origin = req.headers.origin;
    const { token, expiresAt } = await auth.issueVisitorToken({ visitorId, name, ...(origin === undefined ? {} : { origin }) });
    log.debug({ visitorId }, 'visitor session issued');
    reply(res, visitorSessionRoute, { token, visitorId, name, expiresAt });
  });

  router.options(expressPath(visitorCancelRoute, API), ...fromAllowedOrigin);
  router.post(
    expressPath(visitorCancelRoute, API),
    ...fromAllowedOrigin,
    express.text({ type: 'text/plain', limit: MAX_BODY_BYTES }),
    async (req, res) => {
      const { token, requestId } = parse(visitorCancelRoute.body, beaconBody(req), 'body');
      const principal = await auth.verifyToken(token, 'visitor');
      if (principal.kind !== 'visitor') throw new AuthError('not a visitor token');
      // As for the visitor's socket: a session issued to one page is no use from another.
      if (!issuedTo(principal.origin, req.headers.origin)) throw new HttpError(403, 'origin-not-allowed', 'This session belongs to another page.');
      if (cancelRequest === undefined) throw new HttpError(404, 'not-found', 'There is no such call request.');
      try {
        // Answered only once it was taken: in a cluster the node running the request may be out of reach.
        await cancelRequest(principal.visitorId, requestId);
      } catch (error) {
        throw cancelRefusal(error, log, { visitorId: principal.visitorId, requestId });
      }
      log.info({ visitorId: principal.visitorId, requestId }, 'call request cancelled by the closing page');
      res.status(visitorCancelRoute.status).end();
    },
  );

  router.get(expressPath(callListRoute, API), async (req, res) => {
    const agent = await requireAgent(req, auth);
    const { limit, before } = parse(callListRoute.query, req.query, 'query');
    const calls = await read(
      store.calls.list({
        limit,
        ...(before === undefined ? {} : { before }),
        ...(isInspector(agent.roles) ? {} : { agentId: agent.agentId }),
      }),
    );
    const last = calls.at(-1);
    reply(res, callListRoute, { calls, next: calls.length === limit && last !== undefined ? last.id : null });
  });

  router.get(expressPath(callDetailRoute, API), async (req, res) => {
    const agent = await requireAgent(req, auth);
    const call = await visibleCall(read, store, req.params, agent);
    const [events, records] = await Promise.all([read(store.events.forCall(call.id)), read(store.telemetry.forCall(call.id))]);
    reply(res, callDetailRoute, { call, events, telemetry: telemetryOf(call, records) });
  });

  router.get(expressPath(callExportRoute, API), async (req, res) => {
    const agent = await requireAgent(req, auth);
    const { format } = parse(callExportRoute.query, req.query, 'query');
    const call = await visibleCall(read, store, req.params, agent);
    const [events, records] = await Promise.all([read(store.events.forCall(call.id)), read(store.telemetry.forCall(call.id))]);
    // Ids may hold ':', which some file systems refuse in a file name.
    const filename = `call-${call.id.replaceAll(':', '_')}.${format}`;
    res.attachment(filename);
    if (format === 'csv') {
      res.type('text/csv; charset=utf-8').send(telemetryCsv(call, records));
    } else {
      const body: RouteReply<typeof callExportRoute> = { call, telemetry: telemetryOf(call, records), events };
      res.type('application/json').send(`${JSON.stringify(body, null, 2)}\n`);
    }
  });

  router.use(() => {
    throw new HttpError(404, 'not-found', 'There is no such API endpoint.');
  });
  router.use(apiErrorHandler(log, metrics));
  return router;
}

/** The switchboard's refusal of a cancel in HTTP's words; anything else (the store's trouble included) as it came. */
function cancelRefusal(error: unknown, log: Logger, detail: Record<string, unknown>): unknown {
  if (!(error instanceof SwitchboardError)) return error;
  switch (error.code) {
    case 'forbidden':
      return new HttpError(403, 'forbidden', error.message);
    case 'not-found':
      return new HttpError(404, 'not-found', error.message);
    case 'unavailable':
      log.warn({ ...detail, reason: error.message }, 'page-close cancel refused: the cluster cannot take it now');
      return new HttpError(503, 'unavailable', error.message);
    default:
      return error;
  }
}

interface BodyParserError {
  type: string;
  status: number;
}

function isBodyParserError(error: unknown): error is BodyParserError {
  return (
    typeof error === 'object' &&
    error !== null &&
    typeof (error as { type?: unknown }).type === 'string' &&
    typeof (error as { status?: unknown }).status === 'number'
  );
}

function toHttpError(error: unknown): HttpError | undefined {
  if (error instanceof HttpError) return error;
  if (error instanceof AuthError) return new HttpError(401, 'unauthorized', 'Sign in again: the token is missing, invalid or expired.');
  // Also what a token that could not be checked against the revocations gets: refused, but not as a bad token.
  if (error instanceof StoreUnavailableError) return new HttpError(503, 'store-unavailable', 'The server cannot reach its database right now; try again in a moment.');
  if (!isBodyParserError(error)) return undefined;
  switch (error.type) {
    case 'entity.too.large':
      return new HttpError(413, 'payload-too-large', `The body must be at most ${String(MAX_BODY_BYTES)} bytes.`);
    case 'entity.parse.failed':
      return new HttpError(400, 'invalid-payload', 'The body must be a JSON object.');
    case 'charset.unsupported':
    case 'encoding.unsupported':
      return new HttpError(415, 'unsupported-media-type', 'The body must be JSON in UTF-8.');
    default:
      return error.status >= 400 && error.status < 500
        ? new HttpError(400, 'invalid-payload', 'The body could not be read.')
        : undefined;
  }
}

function apiErrorHandler(log: Logger, metrics: Metrics | undefined): ErrorRequestHandler {
  return (error: unknown, req, res, _next) => {
    const known = toHttpError(error);
    if (known === undefined) {
      log.error({ err: error, method: req.method, path: req.path }, 'request failed');
    } else if (error instanceof AuthError) {
      log.info({ reason: error.reason, path: req.path }, 'request unauthorized');
    } else if (error instanceof StoreUnavailableError) {
      log.warn({ err: error.cause, method: req.method, path: req.path }, 'request refused: store unavailable');
    }
    const reply = known ?? new HttpError(500, 'internal', 'Something went wrong on our side. Please try again.');
    metrics?.error(reply.code);
    if (reply.status === 401) res.set('WWW-Authenticate', 'Bearer');
    if (reply instanceof RateLimitedError) res.set('Retry-After', String(reply.retryAfterS));
    res.status(reply.status).json({
      error: { code: reply.code, message: reply.message, ...(reply.field === undefined ? {} : { field: reply.field }) },
    });
  };
}

const healthz: RequestHandler = (_req, res) => {
  reply(res, healthRoute, { ok: true });
};

/**
 * Ready means able to serve: the store answers and the server is not shutting down. A check that fails
 * or takes longer than `deadlineMs` is a "not ready" too: a load balancer must get an answer.
 */
function readyz(notReady: () => string | null | Promise<string | null>, deadlineMs: number, log: Logger): RequestHandler {
  return async (_req, res) => {
    let reason: string | null;
    try {
      reason = await storeRead(Promise.resolve(notReady()), deadlineMs);
    } catch (error) {
      log.warn({ err: error instanceof StoreUnavailableError ? error.cause : error }, 'readiness check failed');
      reason = 'store';
    }
    res.set('Cache-Control', 'no-store');
    if (reason === null) reply(res, readyRoute, { ready: true });
    else res.status(503).json({ ready: false, reason } satisfies z.input<(typeof readyRoute.otherResponses)[503]>);
  };
}

function metricsEndpoint(metrics: Metrics): RequestHandler {
  return async (_req, res) => {
    res.set('Content-Type', metrics.registry.contentType);
    res.set('Cache-Control', 'no-store');
    res.end(await metrics.registry.metrics());
  };
}

/** The express app: /api, /healthz, /readyz and /metrics. The server adds its pages and attaches Socket.IO to it. */
export function createHttpApp(deps: HttpDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  // Liveness: the process answers. Readiness is /readyz.
  app.get(expressPath(healthRoute), healthz);
  app.get(
    expressPath(readyRoute),
    readyz(deps.notReady ?? (() => null), deps.storeDeadlineMs ?? STORE_READ_DEADLINE_MS, deps.logger.child({ component: 'http' })),
  );
  if (deps.metrics) app.get(expressPath(metricsRoute), metricsEndpoint(deps.metrics));
  app.use(API, createApiRouter(deps));
  return app;
}
