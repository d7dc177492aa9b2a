/**
 * Integration-test support: a real callchart server on a free loopback port with a real SQLite file, and
 * real socket.io-client connections. Either in this process (`startTestServer`) or as a child process that
 * a test can SIGKILL and start again on the same database (`spawnServer`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { io, type Socket } from 'socket.io-client';
import type { ClientAck, ClientEventName, ClientPayload, ServerPayload, ServerEventName } from '@callchart/machines';
import { loadConfig } from '../../server/src/config.ts';
import { startServer, type CallchartServer, type StartOptions } from '../../server/src/server.ts';
import type { Store } from '../../server/src/store.ts';
import { repoRoot } from '../../scripts/repoRoot.ts';

export const DEMO = {
  ada: { email: 'ada@example.com', password: 'demo-ada', id: 'ada', name: 'Ada Lovelace' },
  grace: { email: 'grace@example.com', password: 'demo-grace', id: 'grace', name: 'Grace Hopper' },
  alan: { email: 'alan@example.com', password: 'demo-alan', id: 'alan', name: 'Alan Turing' },
  inspector: { email: 'inspector@example.com', password: 'demo-inspector', id: 'inspector', name: 'Call Inspector' },
} as const;
export type DemoAgent = keyof typeof DEMO;

export function tempDatabase(): { path: string; remove: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'callchart-test-'));
  return { path: path.join(dir, 'callchart.db'), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface TestServer {
  server: CallchartServer;
  url: string;
  databasePath: string;
  /** Stops the server (its actors' snapshots stay in the database) and starts it again on the same port. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

/** Timings short enough for tests; any of them can be overridden with the server's env names. */
/**
 * Every test client comes from 127.0.0.1, so the per-address limits would take a whole suite for one abusive
 * visitor, and the re-ring hold-off would stall the suites that ask again after a refusal. The limits' own
 * tests (limits.test.ts, fuzz.test.ts) set theirs explicitly.
 */
export const LOOPBACK_CROWD: Record<string, string> = {
  LIMIT_VISITOR_SESSIONS: '100000',
  LIMIT_LOGIN_ADDRESS_FAILURES: '100000',
  LIMIT_VISITOR_REQUESTS: '10000',
  LIMIT_RERING_WINDOW_MS: '0',
};

export const FAST_TIMINGS: Record<string, string> = {
  RING_TIMEOUT_MS: '600',
  AGENT_GRACE_MS: '600',
  MAX_QUEUE_WAIT_MS: '1500',
  RECONNECTION_TIMEOUT_MS: '1000',
  RESUME_WINDOW_MS: '2000',
  ...LOOPBACK_CROWD,
};

export async function startTestServer(env: Record<string, string> = {}, options: StartOptions = {}): Promise<TestServer> {
  const db = tempDatabase();
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    DATABASE_PATH: db.path,
    LOG_LEVEL: 'silent',
    AGENTS_FILE: path.join(repoRoot, 'server/config/agents.json'),
    ...FAST_TIMINGS,
    ...env,
  });
  const first = await startServer(config, options);
  const port = first.port;
  const handle: TestServer = {
    server: first,
    url: `http://127.0.0.1:${port}`,
    databasePath: db.path,
    async restart() {
      await handle.server.close();
      handle.server = await startServer({ ...config, port }, options);
    },
    async close() {
      await handle.server.close();
      db.remove();
    },
  };
  return handle;
}

/**
 * The server's store once every step its machines have taken is committed, so a read sees what the test's
 * last action led to, whether or not that step sent the test a message.
 */
export async function settledStore(server: CallchartServer): Promise<Store> {
  await server.switchboard.settled();
  return server.store;
}

/** One read of the settled store (`settledStore`). */
export async function stored<T>(server: CallchartServer, read: (store: Store) => Promise<T>): Promise<T> {
  return read(await settledStore(server));
}

/** What a test's afterEach does: closes the connections the test opened (emptying the list), then its server. */
export async function closeClientsThenServer(connections: { close(): unknown }[], server: TestServer | null): Promise<void> {
  for (const connection of connections.splice(0)) connection.close();
  await server?.close();
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, host, () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

export interface SpawnedServer {
  url: string;
  child: ChildProcess;
  output: () => string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** The real entry point in a child process, so a test can kill it like an operator's crash would. */
export async function spawnServer(env: Record<string, string>): Promise<SpawnedServer> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'server/src/main.ts'], {
    cwd: repoRoot,
    env: { ...process.env, HOST: '127.0.0.1', LOG_LEVEL: 'info', ...FAST_TIMINGS, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const url = `http://${env.HOST ?? '127.0.0.1'}:${env.PORT}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited early:\n${output}`);
    if (output.includes('callchart server listening')) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`server did not start:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    url,
    child,
    output: () => output,
    async kill(signal = 'SIGKILL') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill(signal);
      await exited;
    },
  };
}

async function postJson<T>(url: string, body: unknown, token?: string): Promise<{ status: number; body: T }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as T };
}

export async function agentToken(url: string, agent: DemoAgent): Promise<string> {
  const { status, body } = await postJson<{ token: string }>(`${url}/api/agents/login`, {
    email: DEMO[agent].email,
    password: DEMO[agent].password,
  });
  if (status !== 200) throw new Error(`login failed for ${agent}: ${status}`);
  return body.token;
}

export async function visitorToken(url: string, name = 'Vera Visitor'): Promise<{ token: string; visitorId: string }> {
  const { status, body } = await postJson<{ token: string; visitorId: string }>(`${url}/api/visitor-session`, { name });
  if (status !== 201) throw new Error(`visitor session failed: ${status}`);
  return body;
}

export async function getJson<T>(url: string, token: string): Promise<{ status: number; body: T }> {
  const response = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
  return { status: response.status, body: (await response.json()) as T };
}

/**
 * A message a server machine's step sends carries the id it was stored with (`eid`), so a client can drop a
 * message sent again by a server taking the request over. The test client keeps it aside (`eidOf`): the
 * tests compare what was said.
 */
function withoutEid(payload: unknown): { payload: unknown; eid: string | undefined } {
  if (typeof payload !== 'object' || payload === null || !('eid' in payload)) return { payload, eid: undefined };
  const { eid, ...rest } = payload as { eid: unknown };
  if (typeof eid !== 'string') throw new Error(`a message's eid is not a string: ${JSON.stringify(payload)}`);
  return { payload: rest, eid };
}

/** A socket.io-client connection that records every server event, so tests can await them in order. */
export class TestClient {
  readonly socket: Socket;
  readonly events: { event: string; payload: unknown }[] = [];
  /** The event ids of the payloads received with one, by payload (as `next` returns it). */
  private readonly eids = new WeakMap<object, string>();
  private waiters: { event: string; match: (payload: unknown) => boolean; resolve: (payload: unknown) => void }[] = [];
  resumeToken: string | null = null;
  /** Off, the client receives what it is sent but gives no receipt, as a socket whose path died would look. */
  acknowledges = true;

  constructor(url: string, token: string, resumeToken?: string) {
    this.socket = io(url, {
      auth: resumeToken ? { token, resumeToken } : { token },
      reconnection: false,
      transports: ['websocket'],
      forceNew: true,
    });
    this.socket.onAny((event: string, received: unknown, ack?: unknown) => {
      // As the real client does: a relayed restart asks for a receipt, and a socket that gives none is closed.
      if (this.acknowledges && typeof ack === 'function') (ack as (reply: { ok: true }) => void)({ ok: true });
      const { payload, eid } = withoutEid(received);
      if (eid !== undefined) this.eids.set(payload as object, eid);
      this.events.push({ event, payload });
      if (event === 'session.ready') this.resumeToken = (payload as { resumeToken: string }).resumeToken;
      for (const waiter of [...this.waiters]) {
        if (waiter.event === event && waiter.match(payload)) {
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          waiter.resolve(payload);
        }
      }
    });
  }

  static async connect(url: string, token: string, resumeToken?: string): Promise<TestClient> {
    const client = new TestClient(url, token, resumeToken);
    await client.next('session.ready');
    return client;
  }

  /** The first matching event not yet consumed, already received or still to come. */
  next<E extends ServerEventName>(
    event: E,
    match: (payload: ServerPayload<E>) => boolean = () => true,
    timeoutMs = 5_000,
  ): Promise<ServerPayload<E>> {
    const index = this.events.findIndex((e) => e.event === event && match(e.payload as ServerPayload<E>));
    if (index >= 0) {
      const [found] = this.events.splice(index, 1);
      return Promise.resolve(found!.payload as ServerPayload<E>);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(new Error(`timed out waiting for ${event}; saw ${this.events.map((e) => e.event).join(', ') || 'nothing'}`));
      }, timeoutMs);
      const done = (payload: unknown) => {
        clearTimeout(timer);
        const index = this.events.findIndex((e) => e.payload === payload);
        if (index >= 0) this.events.splice(index, 1);
        resolve(payload as ServerPayload<E>);
      };
      this.waiters.push({ event, match: match as (payload: unknown) => boolean, resolve: done });
    });
  }

  /** The event id a received payload came with; undefined for a message no machine step sent. */
  eidOf(payload: object): string | undefined {
    return this.eids.get(payload);
  }

  /** True when no such event has arrived (for "nothing else happened" checks after a settle time). */
  saw(event: ServerEventName): boolean {
    return this.events.some((e) => e.event === event);
  }

  emit<E extends ClientEventName>(event: E, payload: ClientPayload<E>): Promise<ClientAck<E>> {
    return this.socket.timeout(5_000).emitWithAck(event, payload) as Promise<ClientAck<E>>;
  }

  /** Sends anything at all, for malformed-input tests. */
  emitRaw(event: string, payload: unknown): Promise<unknown> {
    return this.socket.timeout(5_000).emitWithAck(event, payload);
  }

  close(): void {
    this.socket.disconnect();
  }
}

export async function connectFailure(url: string, auth: unknown): Promise<string> {
  const socket = io(url, { auth: auth as Record<string, unknown>, reconnection: false, transports: ['websocket'], forceNew: true });
  try {
    return await new Promise<string>((resolve, reject) => {
      socket.once('connect_error', (error) => resolve(error.message));
      socket.once('connect', () => reject(new Error('connected, but should have been refused')));
    });
  } finally {
    socket.disconnect();
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export const SAMPLE_SDP = 'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n';
export const SAMPLE_CANDIDATE = {
  candidate: 'candidate:1 1 udp 2122260223 127.0.0.1 54400 typ host',
  sdpMid: '0',
  sdpMLineIndex: 0,
};

/** A visitor and the agents it may reach, connected; the helper every scenario starts from. */
export async function visitorAndAgents(url: string, agents: DemoAgent[], visitorName = 'Vera Visitor') {
  const connected = Object.fromEntries(
    await Promise.all(agents.map(async (agent) => [agent, await TestClient.connect(url, await agentToken(url, agent))] as const)),
  ) as Record<DemoAgent, TestClient>;
  const session = await visitorToken(url, visitorName);
  const visitor = await TestClient.connect(url, session.token);
  return { agents: connected, visitor, visitorId: session.visitorId, visitorTokenValue: session.token };
}
