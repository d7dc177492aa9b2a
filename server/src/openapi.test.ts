/**
 * The OpenAPI document a real server serves: valid OpenAPI 3.1, one operation for every route the server
 * registers (read from its express app, so a new undocumented route fails here) and none it does not, and
 * real answers of every operation valid against the document's own schemas.
 */
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import express, { type Express } from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpClient } from '@callchart/client/http';
import { callDetailRoute, callListRoute, loginRoute } from '@callchart/machines';
import { mountPages } from './pages.ts';
import { DEMO, SAMPLE_SDP, TestClient, agentToken, startTestServer, visitorAndAgents, type TestServer } from '../../test/support/server.ts';

interface Layer {
  rawPath?: string | string[];
  route?: { path: string | string[]; methods: Record<string, boolean> };
  handle: { stack?: Layer[] };
}

// Express 5 keeps each layer's path as written; a mounted router's layers are relative to its mount path.
function registered(stack: readonly Layer[], prefix = ''): Set<string> {
  const found = new Set<string>();
  for (const layer of stack) {
    if (layer.route) {
      const paths = ([] as string[]).concat(layer.route.path);
      for (const path of paths) for (const method of Object.keys(layer.route.methods)) found.add(`${method.toUpperCase()} ${prefix}${path}`);
    } else if (layer.handle.stack) {
      const mount = typeof layer.rawPath === 'string' && layer.rawPath !== '/' ? layer.rawPath : '';
      for (const route of registered(layer.handle.stack, prefix + mount)) found.add(route);
    }
  }
  return found;
}

const routesOf = (app: Express) => registered((app as unknown as { router: { stack: Layer[] } }).router.stack);
const openApiPath = (expressRoute: string) => expressRoute.replace(/:(\w+)/g, '{$1}');
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

interface Document {
  openapi: string;
  paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, unknown> }> }>>;
  components: { securitySchemes: Record<string, { type: string; scheme?: string }>; schemas: Record<string, unknown> };
}

let t: TestServer;
let doc: Document;
let ajv: Ajv2020;

beforeAll(async () => {
  t = await startTestServer();
  const response = await fetch(`${t.url}/api/openapi.json`);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^application\/json/);
  doc = (await response.json()) as Document;
  // OpenAPI 3.1's schema dialect is JSON Schema 2020-12; its own keywords are not ajv's business.
  ajv = new Ajv2020({ strict: false, allErrors: true });
  ajv.addSchema(doc, 'openapi.json');
});

afterAll(async () => {
  await t.close();
});

const pointer = (...segments: string[]) => segments.map((segment) => segment.replaceAll('~', '~0').replaceAll('/', '~1')).join('/');
const operations = () => Object.entries(doc.paths).flatMap(([path, item]) => Object.keys(item).filter((key) => METHODS.includes(key)).map((method) => `${method.toUpperCase()} ${path}`));

describe('GET /api/openapi.json', () => {
  it('is a valid OpenAPI 3.1 document', async () => {
    expect(doc.openapi).toMatch(/^3\.1\.\d+$/);
    const validator = new Validator();
    const result = await validator.validate(doc as unknown as Record<string, unknown>);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
  });

  it('documents every route the server registers, besides its pages, and no other', () => {
    const pagesOnly = express();
    mountPages(pagesOnly);
    const pages = routesOf(pagesOnly);
    const api = [...routesOf(t.server.app)].filter((route) => !pages.has(route)).map((route) => {
      const [method, path] = route.split(' ') as [string, string];
      return `${method} ${openApiPath(path)}`;
    });
    // Not vacuous: the routes are read from the app, and the login is one of them.
    expect(api).toContain('POST /api/agents/login');
    expect(api).toContain('GET /healthz');
    expect(operations().sort()).toEqual([...new Set(api)].sort());
  });

  it('names the bearer scheme and the error body, and asks for the token where the server does', () => {
    expect(doc.components.securitySchemes).toEqual({ agentToken: expect.objectContaining({ type: 'http', scheme: 'bearer' }) });
    expect(doc.components.schemas.Error).toMatchObject({ properties: { error: { required: ['code', 'message'] } } });
    const secured = Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.entries(item)
        .filter(([, operation]) => 'security' in operation)
        .map(([method]) => `${method.toUpperCase()} ${path}`),
    );
    expect(secured.sort()).toEqual(['GET /api/calls', 'GET /api/calls/{id}', 'GET /api/calls/{id}/export']);
  });
});

describe('real answers against the document', () => {
  const checked = new Set<string>();
  const validators = new Map<string, ValidateFunction>();

  function validatorFor(path: string, method: string, status: number, media: string): ValidateFunction {
    const key = pointer('paths', path, method, 'responses', String(status), 'content', media, 'schema');
    let validate = validators.get(key);
    if (!validate) {
      const operation = doc.paths[path]?.[method];
      expect(operation?.responses[String(status)]?.content?.[media], `${method} ${path} documents ${String(status)} ${media}`).toBeDefined();
      validate = ajv.compile({ $ref: `openapi.json#/${key}` });
      validators.set(key, validate);
    }
    return validate;
  }

  /** Sends the request and checks that the document describes the status, the media type and the body. */
  async function answer(path: string, url: string, init: RequestInit & { token?: string } = {}): Promise<{ status: number; body: unknown }> {
    const method = (init.method ?? 'GET').toLowerCase();
    const headers = new Headers(init.headers);
    if (init.token) headers.set('Authorization', `Bearer ${init.token}`);
    const response = await fetch(`${t.url}${url}`, { ...init, headers });
    const documented = doc.paths[path]?.[method]?.responses[String(response.status)];
    expect(documented, `${method.toUpperCase()} ${path} documents its ${String(response.status)}`).toBeDefined();
    checked.add(`${method.toUpperCase()} ${path} ${String(response.status)}`);
    if (!documented?.content) return { status: response.status, body: null };
    const media = (response.headers.get('content-type') ?? '').split(';')[0]!.trim();
    const text = await response.text();
    const body = media === 'application/json' ? (JSON.parse(text) as unknown) : text;
    const validate = validatorFor(path, method, response.status, media);
    expect(validate(body) ? [] : validate.errors, `${method.toUpperCase()} ${url} answered ${String(response.status)} as documented`).toEqual([]);
    return { status: response.status, body };
  }

  const json = (body: unknown): RequestInit => ({ method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });

  it('validates an answer of every operation, errors included, and the typed client reads them', async () => {
    // A real call, so the history holds what the server itself records: transitions and telemetry.
    const { agents, visitor } = await visitorAndAgents(t.url, ['ada']);
    const { requestId } = (await visitor.emit('visitor.request', { pool: 'support' })) as { requestId: string };
    await agents.ada.next('agent.ring');
    await agents.ada.emit('agent.accept', { requestId });
    const { callId } = await agents.ada.next('call.accepted');
    await agents.ada.emit('signal.offer', { callId, sdp: SAMPLE_SDP });
    await agents.ada.emit('call.media', { callId, state: 'connected' });
    await visitor.emit('call.media', { callId, state: 'connected' });
    expect(await visitor.emit('call.telemetry', { callId, attempt: 1, at: Date.now(), durationMs: 1_250, outcome: 'recovered' })).toEqual({ ok: true });
    await visitor.emit('call.hangup', { callId });
    await agents.ada.next('call.ended');
    agents.ada.close();
    visitor.close();

    const ada = await agentToken(t.url, 'ada');
    const { token: visitorToken } = (await answer('/api/visitor-session', '/api/visitor-session', json({ name: 'Vera' }))).body as { token: string };

    expect((await answer('/api/agents/login', '/api/agents/login', json({ email: DEMO.inspector.email, password: DEMO.inspector.password }))).status).toBe(200);
    expect((await answer('/api/agents/login', '/api/agents/login', json({ email: DEMO.ada.email, password: 'wrong' }))).status).toBe(401);
    expect((await answer('/api/agents/login', '/api/agents/login', json({ email: DEMO.ada.email }))).status).toBe(400);
    expect((await answer('/api/agents/login', '/api/agents/login', json({ email: 'x'.repeat(20_000), password: 'p' }))).status).toBe(413);
    expect((await answer('/api/agents/login', '/api/agents/login', { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: 'hi' })).status).toBe(415);
    expect((await answer('/api/visitor-session', '/api/visitor-session', { ...json({}), headers: { 'Content-Type': 'application/json', Origin: 'https://elsewhere.example' } })).status).toBe(403);
    expect((await answer('/api/visitor-session', '/api/visitor-session', { method: 'OPTIONS', headers: { Origin: 'https://elsewhere.example', 'Access-Control-Request-Method': 'POST' } })).status).toBe(204);

    // The page-close cancel, sent as a beacon: a live request once, then it is gone.
    const cancel = '/api/visitor-session/cancel';
    expect((await answer(cancel, cancel, { method: 'OPTIONS', headers: { Origin: 'https://elsewhere.example', 'Access-Control-Request-Method': 'POST' } })).status).toBe(204);
    const beacon = (body: unknown): RequestInit => ({ method: 'POST', headers: { 'Content-Type': 'text/plain;charset=UTF-8' }, body: JSON.stringify(body) });
    const waiting = await TestClient.connect(t.url, visitorToken);
    const { requestId: live } = (await waiting.emit('visitor.request', { pool: 'support' })) as { requestId: string };
    expect((await answer(cancel, cancel, beacon({ token: visitorToken, requestId: live }))).status).toBe(204);
    expect((await answer(cancel, cancel, beacon({ token: visitorToken, requestId: live }))).status).toBe(404);
    expect((await answer(cancel, cancel, beacon({ token: ada, requestId: live }))).status).toBe(401);
    expect((await answer(cancel, cancel, beacon({ token: visitorToken }))).status).toBe(400);
    expect((await answer(cancel, cancel, { ...beacon({ token: visitorToken, requestId: live }), headers: { 'Content-Type': 'text/plain', Origin: 'https://elsewhere.example' } })).status).toBe(403);
    waiting.close();

    const page = (await answer('/api/calls', '/api/calls?limit=5', { token: ada })).body as { calls: { id: string }[] };
    expect(page.calls.map((call) => call.id)).toEqual([callId]);
    expect((await answer('/api/calls', '/api/calls?limit=ten', { token: ada })).status).toBe(400);
    expect((await answer('/api/calls', '/api/calls')).status).toBe(401);
    expect((await answer('/api/calls', '/api/calls', { token: visitorToken })).status).toBe(403);

    const detail = (await answer('/api/calls/{id}', `/api/calls/${callId}`, { token: ada })).body as { events: unknown[]; telemetry: { reconnectionAttempts: unknown[] } };
    expect(detail.events.length).toBeGreaterThan(0);
    expect(detail.telemetry.reconnectionAttempts).toEqual([{ leg: 'visitor', at: expect.any(Number), durationMs: 1_250, outcome: 'recovered' }]);
    expect((await answer('/api/calls/{id}', '/api/calls/nope', { token: ada })).status).toBe(404);
    expect((await answer('/api/calls/{id}', `/api/calls/${callId}`, { token: visitorToken })).status).toBe(403);
    expect((await answer('/api/calls/{id}', `/api/calls/${callId}`)).status).toBe(401);

    expect((await answer('/api/calls/{id}/export', `/api/calls/${callId}/export`, { token: ada })).status).toBe(200);
    const csv = await answer('/api/calls/{id}/export', `/api/calls/${callId}/export?format=csv`, { token: ada });
    expect(String(csv.body)).toMatch(/^call_id,/);
    expect((await answer('/api/calls/{id}/export', `/api/calls/${callId}/export?format=xml`, { token: ada })).status).toBe(400);
    expect((await answer('/api/calls/{id}/export', '/api/calls/nope/export', { token: ada })).status).toBe(404);
    expect((await answer('/api/calls/{id}/export', `/api/calls/${callId}/export`, { token: visitorToken })).status).toBe(403);
    expect((await answer('/api/calls/{id}/export', `/api/calls/${callId}/export`)).status).toBe(401);

    expect((await answer('/api/openapi.json', '/api/openapi.json')).status).toBe(200);
    expect((await answer('/healthz', '/healthz')).status).toBe(200);
    expect((await answer('/readyz', '/readyz')).status).toBe(200);
    expect((await answer('/metrics', '/metrics')).status).toBe(200);

    // Every success status the document promises was seen from the server.
    const promised = Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.entries(item).flatMap(([method, operation]) =>
        Object.keys(operation.responses)
          .filter((status) => status.startsWith('2'))
          .map((status) => `${method.toUpperCase()} ${path} ${status}`),
      ),
    );
    expect(promised.filter((operation) => !checked.has(operation))).toEqual([]);

    // The apps' client reads the same answers through the schemas, typed.
    const client = createHttpClient({ baseUrl: t.url, token: ada });
    const session = await createHttpClient({ baseUrl: t.url }).request(loginRoute, { body: { email: DEMO.ada.email, password: DEMO.ada.password } });
    expect(session.agent).toEqual({ id: 'ada', name: DEMO.ada.name, pools: expect.any(Array), roles: ['agent'] });
    const listed = await client.request(callListRoute, { query: { limit: 5 } });
    expect(listed).toEqual({ calls: [expect.objectContaining({ id: callId, requestId, state: 'ended', endReason: 'hangup' })], next: null });
    const read = await client.request(callDetailRoute, { params: { id: callId } });
    expect(read.call.connectedAt).toEqual(expect.any(Number));
    await expect(client.request(callDetailRoute, { params: { id: 'nope' } })).rejects.toMatchObject({
      failure: 'refused',
      status: 404,
      error: { code: 'not-found', message: 'There is no such call.' },
    });
  });

  it('answers 503 with its reason while draining, as documented', async () => {
    const draining = await startTestServer();
    try {
      // Long enough for the request to arrive on a loaded machine; the server closes itself after it.
      const stopped = draining.server.drain(2_000);
      const response = await fetch(`${draining.url}/readyz`);
      expect(response.status).toBe(503);
      const validate = validatorFor('/readyz', 'get', 503, 'application/json');
      const body: unknown = await response.json();
      expect(validate(body) ? [] : validate.errors).toEqual([]);
      expect(body).toEqual({ ready: false, reason: 'draining' });
      await stopped;
    } finally {
      await draining.close().catch(() => {});
    }
  });
});
