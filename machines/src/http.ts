/**
 * The HTTP API as data: a zod schema for every request and response body, query and path, and one route
 * object per endpoint naming them. The server validates what it receives with these schemas and derives
 * its OpenAPI document from the routes; the apps' HTTP client checks every answer against them.
 *
 * Written with zod/mini, like the rest of the protocol, because the widget carries what it uses of this
 * module. Every route is its own constant, so a bundle keeps only the routes it calls.
 */
import { z } from 'zod/mini';
import { CallLeg, DisplayName, EpochMs, Id, Token } from './protocol.ts';

// ---------------------------------------------------------------------------------------------
// Limits

/** Longest password accepted, at login and in the agents file. */
export const MAX_PASSWORD_LENGTH = 1_024;
/** Longest email address (RFC 5321's path limit). */
export const MAX_EMAIL_LENGTH = 254;
export const DEFAULT_HISTORY_PAGE = 50;
export const MAX_HISTORY_PAGE = 100;

// ---------------------------------------------------------------------------------------------
// Errors

export const HTTP_ERROR_CODES = [
  'invalid-payload',
  'unauthorized',
  'forbidden',
  'origin-not-allowed',
  'not-found',
  'payload-too-large',
  'unsupported-media-type',
  /** Too many attempts: `Retry-After` says in how many seconds to try again. */
  'rate-limited',
  'store-unavailable',
  /** A cluster that cannot act on it now (the request's node is out of reach or being taken over): nothing was done, try again. */
  'unavailable',
  'internal',
] as const;
export const HttpErrorCode = z.enum(HTTP_ERROR_CODES);
export type HttpErrorCode = z.infer<typeof HttpErrorCode>;

/** What every error under /api answers: `message` is one sentence, `field` names what to fix. */
export const HttpErrorBody = z.object({
  error: z.object({
    code: HttpErrorCode,
    message: z.string(),
    field: z.optional(z.string()),
  }),
});
export type HttpErrorBody = z.infer<typeof HttpErrorBody>;

// ---------------------------------------------------------------------------------------------
// Bodies
//
// Requests are strict, as everywhere in the protocol: an unknown key is refused, not ignored. Responses
// are not, so a client keeps working when the server adds a field.

// `/* @__PURE__ */` on a `.check()` a bundle does not use lets it drop the call: a bundler cannot tell by itself.
export const LoginRequest = z.strictObject({
  email: /* @__PURE__ */ z.string().check(z.trim(), z.minLength(1), z.maxLength(MAX_EMAIL_LENGTH)),
  password: /* @__PURE__ */ z.string().check(z.minLength(1), z.maxLength(MAX_PASSWORD_LENGTH)),
});
export type LoginRequest = z.infer<typeof LoginRequest>;

/** An agent as the agent's own apps see it: never the email or the password hash. */
export const AgentProfile = z.object({
  id: Id,
  name: DisplayName,
  pools: z.array(Id),
  roles: z.array(z.string()),
});
export type AgentProfile = z.infer<typeof AgentProfile>;

export const AgentSession = z.object({
  token: Token,
  /** When the token stops being accepted. */
  expiresAt: EpochMs,
  agent: AgentProfile,
});
export type AgentSession = z.infer<typeof AgentSession>;

export const VisitorSessionRequest = z.strictObject({
  /** Shown to the agent; `Visitor` when left out. */
  name: z.optional(DisplayName),
});
export type VisitorSessionRequest = z.infer<typeof VisitorSessionRequest>;

/** Sent by a closing page (`navigator.sendBeacon`), which cannot set headers: the token travels in the body. */
export const VisitorCancelRequest = z.strictObject({
  token: Token,
  requestId: Id,
});
export type VisitorCancelRequest = z.infer<typeof VisitorCancelRequest>;

export const VisitorSession = z.object({
  token: Token,
  visitorId: Id,
  name: DisplayName,
  expiresAt: EpochMs,
});
export type VisitorSession = z.infer<typeof VisitorSession>;

// State and end reason are the store's words, kept as text so a history written by an older server still reads.
export const CallRecord = z.object({
  id: Id,
  requestId: Id,
  visitorId: Id,
  visitorName: z.string(),
  agentId: Id,
  agentName: z.string(),
  pool: Id,
  /** `active`, `paused` or `ended`. */
  state: z.string(),
  startedAt: EpochMs,
  connectedAt: z.nullable(EpochMs),
  endedAt: z.nullable(EpochMs),
  /** A `CallEndReason` once ended. */
  endReason: z.nullable(z.string()),
  totalPauseMs: z.number(),
});
export type CallRecord = z.infer<typeof CallRecord>;

/** One stored transition of a request's routing or callSession actor. */
export const CallEvent = z.object({
  id: z.int(),
  callId: z.nullable(Id),
  requestId: Id,
  actor: z.enum(['routing', 'callSession', 'server']),
  type: z.string(),
  fromState: z.nullable(z.string()),
  toState: z.nullable(z.string()),
  cause: z.nullable(z.string()),
  detail: z.unknown(),
  at: EpochMs,
});
export type CallEvent = z.infer<typeof CallEvent>;

export const CallTelemetry = z.object({
  disconnections: z.array(z.object({ leg: CallLeg, at: EpochMs, cause: z.nullable(z.string()) })),
  reconnectionAttempts: z.array(
    z.object({ leg: CallLeg, at: EpochMs, durationMs: z.number(), outcome: z.enum(['recovered', 'failed']) }),
  ),
  totalPauseMs: z.number(),
});
export type CallTelemetry = z.infer<typeof CallTelemetry>;

export const CallPage = z.object({
  /** Newest first. */
  calls: z.array(CallRecord),
  /** The `before` of the next, older page; null on the last one. */
  next: z.nullable(Id),
});
export type CallPage = z.infer<typeof CallPage>;

export const CallDetail = z.object({
  call: CallRecord,
  events: z.array(CallEvent),
  telemetry: CallTelemetry,
});
export type CallDetail = z.infer<typeof CallDetail>;

// ---------------------------------------------------------------------------------------------
// Queries and paths

// A query string carries text: the page size is read from its digits.
const PageSize = z.pipe(
  /* @__PURE__ */ z.string().check(z.regex(/^\d+$/, { error: 'must be a whole number' })),
  z.pipe(z.transform(Number), /* @__PURE__ */ z.number().check(z.gte(1), z.lte(MAX_HISTORY_PAGE))),
);

export const CallListQuery = z.strictObject({
  limit: z.prefault(PageSize, String(DEFAULT_HISTORY_PAGE)),
  /** A call id: the page starts after it. */
  before: z.optional(Id),
});

export const CallPath = z.object({ id: Id });

export const EXPORT_FORMATS = ['json', 'csv'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];
export const ExportQuery = z.strictObject({ format: z._default(z.enum(EXPORT_FORMATS), 'json') });

// ---------------------------------------------------------------------------------------------
// Operations endpoints

export const Health = z.object({ ok: z.literal(true) });
export const Ready = z.object({ ready: z.literal(true) });
export const NotReady = z.object({ ready: z.literal(false), reason: z.string() });
/** The OpenAPI document; its shape is the OpenAPI specification's, not described again here. */
export const OpenApiDocument = z.looseObject({ openapi: z.string(), paths: z.record(z.string(), z.unknown()) });

// ---------------------------------------------------------------------------------------------
// Routes

type Schema = z.core.$ZodType;
type ObjectSchema = z.core.$ZodObject;

export interface HttpRoute {
  readonly method: 'GET' | 'POST';
  /** The path as OpenAPI writes it: `{name}` for each path parameter. */
  readonly path: string;
  /** One sentence for the OpenAPI document. */
  readonly summary: string;
  /** `agent`: needs `Authorization: Bearer` with an agent's token. */
  readonly auth: 'none' | 'agent';
  /** Callable from pages on other origins: it answers CORS, preflight included. */
  readonly crossOrigin?: true;
  /** Other media types the body may be sent as (read as JSON all the same). */
  readonly bodyMedia?: readonly string[];
  readonly params?: ObjectSchema;
  readonly query?: ObjectSchema;
  readonly body?: ObjectSchema;
  /** The status of a successful answer; a 204 has no body, and `response` is then `z.undefined()`. */
  readonly status: 200 | 201 | 204;
  readonly response: Schema;
  /** The media type of `response`. */
  readonly media: 'application/json' | 'text/plain';
  /** Other media types a successful answer may have instead, chosen by the request. */
  readonly alternatives?: Readonly<Record<string, Schema>>;
  /** Answered as a download (`Content-Disposition: attachment`). */
  readonly attachment?: true;
  /** Other statuses that are not errors, and their bodies. */
  readonly otherResponses?: Readonly<Record<number, Schema>>;
  /** The statuses it answers with an `HttpErrorBody`. */
  readonly errors: readonly number[];
}

export const loginRoute = {
  method: 'POST',
  path: '/api/agents/login',
  summary: 'Log an agent in: a token for the socket and the call history.',
  auth: 'none',
  body: LoginRequest,
  status: 200,
  response: AgentSession,
  media: 'application/json',
  errors: [400, 401, 413, 415, 429, 503],
} as const satisfies HttpRoute;

export const visitorSessionRoute = {
  method: 'POST',
  path: '/api/visitor-session',
  summary: "A visitor's session token, for a page whose origin is allowed; the token records that origin.",
  auth: 'none',
  crossOrigin: true,
  body: VisitorSessionRequest,
  status: 201,
  response: VisitorSession,
  media: 'application/json',
  errors: [400, 403, 413, 415, 429],
} as const satisfies HttpRoute;

export const visitorCancelRoute = {
  method: 'POST',
  path: '/api/visitor-session/cancel',
  summary:
    "Cancels the visitor's call request at once, as `visitor.cancel` does: what a closing page sends, so the people behind it in the queue move up.",
  auth: 'none',
  crossOrigin: true,
  // A beacon's text/plain is CORS-safelisted; a cross-origin beacon with application/json is not sent.
  bodyMedia: ['text/plain'],
  body: VisitorCancelRequest,
  status: 204,
  response: z.undefined(),
  media: 'application/json',
  errors: [400, 401, 403, 404, 413, 415, 503],
} as const satisfies HttpRoute;

export const callListRoute = {
  method: 'GET',
  path: '/api/calls',
  summary: "A page of calls, newest first: the agent's own, or every call for an inspector.",
  auth: 'agent',
  query: CallListQuery,
  status: 200,
  response: CallPage,
  media: 'application/json',
  errors: [400, 401, 403, 503],
} as const satisfies HttpRoute;

export const callDetailRoute = {
  method: 'GET',
  path: '/api/calls/{id}',
  summary: "One call with its transition log and reconnection telemetry; someone else's call is not found.",
  auth: 'agent',
  params: CallPath,
  status: 200,
  response: CallDetail,
  media: 'application/json',
  errors: [401, 403, 404, 503],
} as const satisfies HttpRoute;

export const callExportRoute = {
  method: 'GET',
  path: '/api/calls/{id}/export',
  summary: "A call's telemetry as a download: the call detail as JSON, or one CSV row per telemetry record.",
  auth: 'agent',
  params: CallPath,
  query: ExportQuery,
  status: 200,
  response: CallDetail,
  media: 'application/json',
  alternatives: { 'text/csv': z.string() },
  attachment: true,
  errors: [400, 401, 403, 404, 503],
} as const satisfies HttpRoute;

export const openApiRoute = {
  method: 'GET',
  path: '/api/openapi.json',
  summary: 'This document.',
  auth: 'none',
  status: 200,
  response: OpenApiDocument,
  media: 'application/json',
  errors: [],
} as const satisfies HttpRoute;

export const healthRoute = {
  method: 'GET',
  path: '/healthz',
  summary: 'Liveness: the process answers.',
  auth: 'none',
  status: 200,
  response: Health,
  media: 'application/json',
  errors: [],
} as const satisfies HttpRoute;

export const readyRoute = {
  method: 'GET',
  path: '/readyz',
  summary: 'Readiness: the store answers and the server is not draining.',
  auth: 'none',
  status: 200,
  response: Ready,
  media: 'application/json',
  otherResponses: { 503: NotReady },
  errors: [],
} as const satisfies HttpRoute;

export const metricsRoute = {
  method: 'GET',
  path: '/metrics',
  summary: "Prometheus metrics, in Prometheus's text format.",
  auth: 'none',
  status: 200,
  response: z.string(),
  media: 'text/plain',
  errors: [],
} as const satisfies HttpRoute;

/** Every route the server serves besides its pages and Socket.IO. */
export const HTTP_ROUTES: readonly HttpRoute[] = [
  loginRoute,
  visitorSessionRoute,
  visitorCancelRoute,
  callListRoute,
  callDetailRoute,
  callExportRoute,
  openApiRoute,
  healthRoute,
  readyRoute,
  metricsRoute,
];

// ---------------------------------------------------------------------------------------------
// What a caller passes and gets

type Field<K extends string, R, Key extends keyof HttpRoute, T> = R extends Record<Key, infer S extends Schema>
  ? { [P in K]: T extends 'input' ? z.input<S> : Partial<z.output<S>> }
  : unknown;

/**
 * What a route takes: its path parameters and body as sent, its query as values (written out as text;
 * the server's defaults stand in for any left out).
 */
export type RouteInput<R extends HttpRoute> = Field<'params', R, 'params', 'input'> &
  Partial<Field<'query', R, 'query', 'output'>> &
  Field<'body', R, 'body', 'input'>;

/** The body of a route's successful answer, as its schema reads it. */
export type RouteOutput<R extends HttpRoute> = z.output<R['response']>;

/** The body a route's handler sends: what its schema reads. */
export type RouteReply<R extends HttpRoute> = z.input<R['response']>;

/** `route.path` with its `{name}` parameters filled in, each encoded as one path segment. */
export function routePath(route: HttpRoute, params: Readonly<Record<string, string>> = {}): string {
  return route.path.replace(/\{(\w+)\}/g, (_whole, name: string) => {
    const value = params[name];
    if (value === undefined) throw new Error(`${route.path} needs the path parameter ${name}`);
    return encodeURIComponent(value);
  });
}
