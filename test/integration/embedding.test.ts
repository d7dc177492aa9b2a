/**
 * The widget on someone else's page: the visitor's session API answers CORS for allowed origins (preflight
 * included) and refuses others with `origin-not-allowed`; the visitor's socket must come from an allowed
 * origin, and from the very page its session was issued to; agents' sockets only from the server's own.
 */
import { io, type Socket } from 'socket.io-client';
import { afterEach, describe, expect, it } from 'vitest';
import { agentToken, closeClientsThenServer, startTestServer, type TestServer } from '../support/server.ts';

let t: TestServer | null = null;
const sockets: Socket[] = [];

afterEach(async () => {
  await closeClientsThenServer(sockets, t);
  t = null;
});

const SHOP = 'https://shop.example';
const LOCAL_PAGE = 'http://localhost:5173';

async function session(url: string, origin?: string) {
  return fetch(`${url}/api/visitor-session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(origin ? { origin } : {}) },
    body: '{}',
  });
}

async function preflight(url: string, origin: string) {
  return fetch(`${url}/api/visitor-session`, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
  });
}

/** Resolves to `connected`, or to the refusal's message. */
function connectFrom(url: string, token: string, origin?: string): Promise<string> {
  const socket = io(url, {
    auth: { token },
    transports: ['websocket'],
    reconnection: false,
    forceNew: true,
    ...(origin ? { extraHeaders: { origin } } : {}),
  });
  sockets.push(socket);
  return new Promise((resolve) => {
    socket.once('connect', () => resolve('connected'));
    socket.once('connect_error', (error) => resolve(error.message));
  });
}

describe('the visitor session API from other origins', () => {
  it('by default issues sessions to a loopback page on any port, and refuses any other site with a reason it can read', async () => {
    t = await startTestServer();
    const allowed = await preflight(t.url, LOCAL_PAGE);
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get('access-control-allow-origin')).toBe(LOCAL_PAGE);
    expect(allowed.headers.get('access-control-allow-methods')).toBe('POST');
    const issued = await session(t.url, LOCAL_PAGE);
    expect(issued.status).toBe(201);
    expect(issued.headers.get('access-control-allow-origin')).toBe(LOCAL_PAGE);

    // Any site may ask, and read the refusal: the widget can then say why, instead of "could not reach".
    expect((await preflight(t.url, SHOP)).status).toBe(204);
    const refused = await session(t.url, SHOP);
    expect(refused.status).toBe(403);
    expect(refused.headers.get('access-control-allow-origin')).toBe(SHOP);
    expect(await refused.json()).toEqual({ error: { code: 'origin-not-allowed', message: 'Video calls are not enabled for this website.' } });
    // No Origin at all is no browser's cross-origin request: a server or curl gets its session.
    expect((await session(t.url)).status).toBe(201);
  });

  it('with ALLOWED_ORIGINS, serves exactly those sites and the server itself, and no loopback page', async () => {
    t = await startTestServer({ ALLOWED_ORIGINS: `${SHOP}, https://help.example:8443` });
    expect((await session(t.url, SHOP)).status).toBe(201);
    expect((await session(t.url, 'https://help.example:8443')).status).toBe(201);
    expect((await session(t.url, 'https://help.example')).status).toBe(403);
    expect((await session(t.url, LOCAL_PAGE)).status).toBe(403);
    expect((await session(t.url, 'null')).status).toBe(403);
    expect((await session(t.url, t.url)).status).toBe(201);
  });

  it('allows any site only when told * explicitly', async () => {
    t = await startTestServer({ ALLOWED_ORIGINS: '*' });
    const response = await session(t.url, SHOP);
    expect(response.status).toBe(201);
    expect(response.headers.get('access-control-allow-origin')).toBe(SHOP);
  });
});

describe('the visitor socket from other origins', () => {
  it('takes a session only from the page it was issued to, and an allowed one', async () => {
    t = await startTestServer({ ALLOWED_ORIGINS: `${SHOP},https://other.example` });
    const { token } = (await (await session(t.url, SHOP)).json()) as { token: string };
    expect(await connectFrom(t.url, token, SHOP)).toBe('connected');
    // Carried to another allowed site, or used with no origin at all, the token is refused.
    expect(await connectFrom(t.url, token, 'https://other.example')).toBe('origin-not-allowed');
    expect(await connectFrom(t.url, token)).toBe('origin-not-allowed');

    // A session issued without an origin (a server's) is still bound by the list for a browser.
    const { token: plain } = (await (await session(t.url)).json()) as { token: string };
    expect(await connectFrom(t.url, plain, 'https://evil.example')).toBe('origin-not-allowed');
    expect(await connectFrom(t.url, plain)).toBe('connected');
  });

  it("refuses an agent's socket from any page but the server's own", async () => {
    t = await startTestServer({ ALLOWED_ORIGINS: SHOP });
    const token = await agentToken(t.url, 'ada');
    expect(await connectFrom(t.url, token, SHOP)).toBe('origin-not-allowed');
    expect(await connectFrom(t.url, token, t.url)).toBe('connected');
  });
});
