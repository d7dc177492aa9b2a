/**
 * The OpenAPI 3.1 document of the HTTP API, made from the protocol's routes and schemas
 * (machines/src/http.ts), so it cannot say something the server does not check. Served at
 * /api/openapi.json. It lives here rather than beside the schemas so no browser bundle carries the generator.
 */
import {
  AgentSession,
  CallDetail,
  CallPage,
  HTTP_ROUTES,
  HttpErrorBody,
  LoginRequest,
  VisitorSession,
  VisitorSessionRequest,
  type HttpRoute,
  visitorCancelRoute,
  type openApiRoute,
  type RouteReply,
} from '@callchart/machines';
import { z } from 'zod/mini';
import {
  createDocument,
  type ZodOpenApiContentObject,
  type ZodOpenApiObject,
  type ZodOpenApiOperationObject,
  type ZodOpenApiPathsObject,
  type ZodOpenApiResponsesObject,
} from 'zod-openapi';
import serverPackage from '../package.json' with { type: 'json' };

/** The security scheme of the routes that need an agent's token. */
export const AGENT_TOKEN = 'agentToken';

const ERRORS: Readonly<Record<number, string>> = {
  400: '`invalid-payload`: the body or query is invalid; `field` names the first offending field. Malformed JSON is a 400 too.',
  401: '`unauthorized`: the credentials are wrong, or the token is missing, invalid or expired. Carries `WWW-Authenticate: Bearer`.',
  404: "`not-found`: no such call, or one the agent may not see (someone else's call answers exactly like a missing one).",
  413: '`payload-too-large`: the body is over 16 KiB.',
  415: '`unsupported-media-type`: the body is not JSON in UTF-8.',
  429: '`rate-limited`: too many attempts; `Retry-After` says in how many seconds to try again.',
  500: '`internal`: something went wrong on the server.',
  503: '`store-unavailable`: the database could not be read (or the token checked against the revocations) in time; try again shortly.',
};
// The one 403 of a route without a token is the visitor-origin check.
const FORBIDDEN = {
  agent: "`forbidden`: the token is a visitor's, and only agents may read calls.",
  none: "`origin-not-allowed`: the page's `Origin` is not one of the server's ALLOWED_ORIGINS.",
} as const satisfies Record<HttpRoute['auth'], string>;

// The cancel carries a visitor's token in its body, so its refusals are the visitor's, not the agent's.
const CANCEL_ERRORS: Readonly<Record<number, string>> = {
  401: "`unauthorized`: the token is missing, invalid or expired, or it is not a visitor's.",
  403: "`origin-not-allowed`: the page's `Origin` is not allowed; `forbidden`: the request is another visitor's.",
  404: '`not-found`: no such call request, or one that has already ended.',
  503: '`unavailable`: the cluster cannot reach the node running the request now; nothing was cancelled, send again. `store-unavailable`: the token could not be checked in time.',
};

function errorResponse(route: HttpRoute, status: number): ZodOpenApiResponsesObject[`4${string}`] {
  const description =
    (route.path === visitorCancelRoute.path ? CANCEL_ERRORS[status] : undefined) ?? (status === 403 ? FORBIDDEN[route.auth] : ERRORS[status]);
  if (description === undefined) throw new Error(`${route.path}: no description for the error status ${String(status)}`);
  return {
    description,
    content: { 'application/json': { schema: HttpErrorBody } },
    ...(status === 401 ? { headers: z.object({ 'WWW-Authenticate': z.literal('Bearer') }) } : {}),
    ...(status === 429 ? { headers: z.object({ 'Retry-After': z.string() }) } : {}),
  };
}

function operation(route: HttpRoute): ZodOpenApiOperationObject {
  const content: ZodOpenApiContentObject = { [route.media]: { schema: route.response } };
  for (const [media, schema] of Object.entries(route.alternatives ?? {})) content[media] = { schema };
  const responses: ZodOpenApiResponsesObject = {
    [String(route.status)]:
      route.status === 204
        ? { description: 'Done; no body.' }
        : {
            description: route.attachment ? 'A download (`Content-Disposition: attachment`).' : 'Success.',
            content,
            ...(route.attachment ? { headers: z.object({ 'Content-Disposition': z.string() }) } : {}),
          },
  };
  for (const [status, schema] of Object.entries(route.otherResponses ?? {})) {
    responses[status as `5${string}`] = { description: 'Not ready; `reason` says why.', content: { 'application/json': { schema } } };
  }
  const errors = route.path.startsWith('/api/') ? [...route.errors, 500] : route.errors;
  for (const status of errors) responses[String(status) as `4${string}`] = errorResponse(route, status);

  return {
    summary: route.summary,
    ...(route.params || route.query ? { requestParams: { ...(route.params ? { path: route.params } : {}), ...(route.query ? { query: route.query } : {}) } } : {}),
    ...(route.body
      ? {
          requestBody: {
            // The server reads a missing body as `{}`: a body that accepts that may be left out.
            required: !z.safeParse(route.body, {}).success,
            content: Object.fromEntries(['application/json', ...(route.bodyMedia ?? [])].map((media) => [media, { schema: route.body }])),
          },
        }
      : {}),
    ...(route.auth === 'agent' ? { security: [{ [AGENT_TOKEN]: [] }] } : {}),
    responses,
  };
}

// A page on another origin may call it: the preflight is answered for every origin and grants nothing by itself.
function preflight(route: HttpRoute): ZodOpenApiOperationObject {
  return {
    summary: `CORS preflight for ${route.method} ${route.path}, answered for every origin.`,
    responses: { '204': { description: `Allows ${route.method} with \`Content-Type\`.` } },
  };
}

function paths(): ZodOpenApiPathsObject {
  const out: ZodOpenApiPathsObject = {};
  for (const route of HTTP_ROUTES) {
    const item = (out[route.path] ??= {});
    item[route.method === 'GET' ? 'get' : 'post'] = operation(route);
    if (route.crossOrigin) item.options = preflight(route);
  }
  return out;
}

type Document = RouteReply<typeof openApiRoute>;

function build(): Document {
  const document: ZodOpenApiObject = {
    openapi: '3.1.0',
    info: {
      title: 'callchart HTTP API',
      version: serverPackage.version,
      description:
        'Agent login, visitor sessions and call history. Everything under /api answers JSON with `Cache-Control: no-store`; ' +
        'its errors answer `{ error: { code, message, field? } }`. The calls themselves run over Socket.IO (see docs/protocol.md).',
    },
    paths: paths(),
    components: {
      securitySchemes: {
        [AGENT_TOKEN]: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description: "An agent's token from POST /api/agents/login; an inspector's token sees every agent's calls.",
        },
      },
      schemas: {
        Error: HttpErrorBody,
        LoginRequest,
        AgentSession,
        VisitorSessionRequest,
        VisitorSession,
        CallPage,
        CallDetail,
      },
    },
  };
  const created = createDocument(document);
  return { ...created, paths: created.paths ?? {} };
}

let cached: Document | undefined;

/** The document, made once: it depends only on the code. */
export function openApiDocument(): Document {
  cached ??= build();
  return cached;
}
