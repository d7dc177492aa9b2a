/**
 * Debian's haproxy in front of a set of HTTP backends, with a generated config in a temporary directory:
 * one frontend on a loopback port, health checks on `/readyz`, and WebSocket-friendly timeouts. The
 * cluster tests and `npm run cluster` put it in front of the nodes, as an operator's load balancer would be.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, constants, mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort, sleep } from './server.ts';

export interface HaproxyBackend {
  /** The server's name in haproxy's config and its stats; letters, digits, `.`, `_` or `-`. */
  name: string;
  host?: string;
  port: number;
}

export interface HaproxyOptions {
  backends: readonly HaproxyBackend[];
  /** The frontend's port on 127.0.0.1; a free one when omitted. */
  port?: number;
  /**
   * `leastconn` suits long WebSocket connections once some have closed; round robin spreads a fresh start
   * evenly. `first` sends every connection to the first backend that is up, in the order given (with no
   * per-server maxconn, it never spills over): a balancer pinned to one node, which moves to the next only
   * when its health checks take that node out, so a test knows where each connection lands.
   */
  balance?: 'roundrobin' | 'leastconn' | 'first';
  /**
   * The most connections the frontend holds at once. Each WebSocket costs haproxy two descriptors (one
   * each side), and haproxy refuses to start when the process's descriptor limit cannot cover them.
   */
  maxConnections?: number;
}

/** A backend as haproxy's health checks see it: `UP`, `DOWN`, or on its way (`UP 1/2`, `DOWN 1/2`). */
export interface BackendState {
  name: string;
  status: string;
}

export interface Haproxy {
  url: string;
  port: number;
  /** The temporary directory with the config, the admin socket and the log. */
  dir: string;
  /** Every backend's health-check state, read from the admin socket. */
  backends(): Promise<BackendState[]>;
  /** Waits (bounded) until exactly the `up` backends are UP and every other one is DOWN. */
  waitForBackends(up: readonly string[], timeoutMs?: number): Promise<void>;
  /** What haproxy wrote: its warnings and every backend it marked up or down. */
  logs(): string;
  stop(): Promise<void>;
}

/** A Debian package the cluster tooling needs is not installed. */
export class MissingPackageError extends Error {
  override readonly name = 'MissingPackageError';
  constructor(readonly packageName: string) {
    super(`${packageName} is not installed: run \`bash scripts/ensure-system-packages.sh\` (as root it installs what scripts/system-packages.txt lists)`);
  }
}

const HAPROXY_CANDIDATES = ['/usr/sbin/haproxy', '/usr/bin/haproxy'];
const BACKEND_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const HOST = /^[A-Za-z0-9.:-]+$/;
const START_TIMEOUT_MS = 10_000;
const POLL_MS = 50;

// A balancer a test left running (it threw before its stop) dies with the test process, and its directory goes.
const live = new Map<ChildProcess, string>();
process.once('exit', () => {
  for (const [child, dir] of live) {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Where Debian's haproxy package puts the binary; throws MissingPackageError without it. */
export function haproxyBinary(): string {
  for (const candidate of HAPROXY_CANDIDATES) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // the next one
    }
  }
  throw new MissingPackageError('haproxy');
}

/** The config haproxy runs with; exported so a test can read what the balancer was told. */
export function haproxyConfig(options: HaproxyOptions & { port: number; adminSocket: string }): string {
  if (options.backends.length === 0) throw new Error('haproxy needs at least one backend');
  const names = new Set<string>();
  for (const backend of options.backends) {
    if (!BACKEND_NAME.test(backend.name)) throw new Error(`haproxy backend name ${JSON.stringify(backend.name)} must be letters, digits, ".", "_" or "-"`);
    if (names.has(backend.name)) throw new Error(`haproxy backend name ${backend.name} is used twice`);
    names.add(backend.name);
    if (!Number.isInteger(backend.port) || backend.port < 1 || backend.port > 65_535) throw new Error(`haproxy backend ${backend.name} has no valid port`);
    if (backend.host !== undefined && !HOST.test(backend.host)) throw new Error(`haproxy backend ${backend.name} has no valid host`);
  }
  // Unset, haproxy sizes it from the file-descriptor limit it is given (two descriptors a connection).
  const maxconn = options.maxConnections === undefined ? [] : [`  maxconn ${String(options.maxConnections)}`];
  return [
    'global',
    // Up and down transitions and warnings only (notice and above), not a line per request.
    '  log stdout format raw local0 notice',
    ...maxconn,
    // The admin socket lives in the temporary directory, readable by its owner only: no stats page on any address.
    `  stats socket ${options.adminSocket} mode 600 level user`,
    '',
    'defaults',
    '  mode http',
    '  log global',
    // A connection refused by a node that just died goes to another one rather than failing the request.
    '  option redispatch',
    '  retries 2',
    '  option forwardfor',
    '  timeout connect 2s',
    '  timeout client 30s',
    '  timeout server 30s',
    '  timeout http-request 10s',
    '  timeout http-keep-alive 10s',
    '  timeout queue 5s',
    // An upgraded WebSocket is a tunnel: it lives as long as the call, and Socket.IO\'s own pings prove it alive.
    '  timeout tunnel 1h',
    '  timeout client-fin 5s',
    '  timeout check 1s',
    '',
    'frontend callchart',
    `  bind 127.0.0.1:${String(options.port)}`,
    ...maxconn,
    '  default_backend nodes',
    '',
    'backend nodes',
    `  balance ${options.balance ?? 'roundrobin'}`,
    // A draining or store-less node answers 503 and gets no new connections; those it holds stay.
    '  option httpchk GET /readyz',
    '  http-check expect status 200',
    // Fast enough that a dead node is out within about a second.
    '  default-server inter 500ms fall 2 rise 1',
    ...options.backends.map((backend) => `  server ${backend.name} ${backend.host ?? '127.0.0.1'}:${String(backend.port)} check`),
    '',
  ].join('\n');
}

function waitForPort(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function adminCommand(socketPath: string, command: string): Promise<string> {
  const socket = connect(socketPath);
  let answer = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => (answer += chunk));
  socket.end(`${command}\n`);
  await once(socket, 'close');
  return answer;
}

/** `show stat` is CSV whose header line starts with `# `; the servers are the rows of our backend. */
function parseStat(csv: string): BackendState[] {
  const [header, ...rows] = csv.trim().split('\n');
  const columns = (header ?? '').replace(/^# /, '').split(',');
  const proxy = columns.indexOf('pxname');
  const server = columns.indexOf('svname');
  const status = columns.indexOf('status');
  return rows
    .map((row) => row.split(','))
    .filter((cells) => cells[proxy] === 'nodes' && cells[server] !== 'BACKEND' && cells[server] !== 'FRONTEND')
    .map((cells) => ({ name: cells[server] ?? '', status: cells[status] ?? '' }));
}

export async function startHaproxy(options: HaproxyOptions): Promise<Haproxy> {
  const binary = haproxyBinary();
  const dir = mkdtempSync(path.join(tmpdir(), 'callchart-haproxy-'));
  const port = options.port ?? (await freePort());
  const adminSocket = path.join(dir, 'admin.sock');
  const configFile = path.join(dir, 'haproxy.cfg');
  const logFile = path.join(dir, 'haproxy.log');
  const remove = () => rmSync(dir, { recursive: true, force: true });
  let child: ChildProcess | undefined;
  try {
    writeFileSync(configFile, haproxyConfig({ ...options, port, adminSocket }));
    // A bad config is reported by haproxy's own check, before anything listens.
    await promisify(execFile)(binary, ['-c', '-f', configFile]).catch((error: { stderr?: string; message: string }) => {
      throw new Error(`haproxy refused its config:\n${error.stderr || error.message}`);
    });
    const log = openSync(logFile, 'a');
    try {
      child = spawn(binary, ['-db', '-f', configFile], { stdio: ['ignore', log, log] });
    } finally {
      closeSync(log);
    }
    const started = child;
    live.set(started, dir);
    started.once('exit', () => live.delete(started));
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`haproxy exited at start:\n${readFileSync(logFile, 'utf8')}`);
      if ((await waitForPort(port)) && (await adminCommand(adminSocket, 'show info').catch(() => '')).includes('Name: HAProxy')) break;
      if (Date.now() > deadline) throw new Error(`haproxy did not listen on 127.0.0.1:${String(port)} within ${String(START_TIMEOUT_MS)} ms:\n${readFileSync(logFile, 'utf8')}`);
      await sleep(POLL_MS);
    }
  } catch (error) {
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    }
    remove();
    throw error;
  }
  const running = child;
  const exited = new Promise<void>((resolve) => running.once('exit', () => resolve()));

  const backends = async () => parseStat(await adminCommand(adminSocket, 'show stat'));
  return {
    url: `http://127.0.0.1:${String(port)}`,
    port,
    dir,
    backends,
    async waitForBackends(up, timeoutMs = 10_000) {
      const wanted = new Set(up);
      const known = new Set(options.backends.map((backend) => backend.name));
      const unknown = [...wanted].filter((name) => !known.has(name));
      if (unknown.length > 0) throw new Error(`haproxy has no backend ${unknown.join(', ')}`);
      const deadline = Date.now() + timeoutMs;
      let seen: BackendState[] = [];
      while (Date.now() <= deadline) {
        seen = await backends();
        if (seen.every((backend) => (wanted.has(backend.name) ? backend.status === 'UP' : backend.status === 'DOWN'))) return;
        await sleep(POLL_MS);
      }
      throw new Error(`haproxy backends did not settle to ${[...wanted].join(', ') || 'none'} up within ${String(timeoutMs)} ms: ${JSON.stringify(seen)}`);
    },
    logs: () => readFileSync(logFile, 'utf8'),
    async stop() {
      if (running.exitCode === null && running.signalCode === null) {
        // SIGTERM is haproxy's hard stop: it closes every connection at once, as a balancer that dies would.
        running.kill('SIGTERM');
        await exited;
      }
      remove();
    },
  };
}
