/**
 * A real Redis (Debian's redis-server) for tests, on a free 127.0.0.1 port in its own temporary directory.
 *
 * Without `appendonly` it keeps nothing on disk, so a restart comes back empty: the Redis outage a cluster
 * must survive without persistence. With it, every write is fsynced to the append-only file before it is
 * answered, so even a SIGKILL keeps every acknowledged write and a restart comes back with all of them.
 *
 * Each server has its own port and directory, so any number of test files may run one at once; whatever a
 * test leaves running is killed, and its directory removed, when the test process exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const REDIS_SERVER_PATH = '/usr/bin/redis-server';
/** util-linux's setpriv: `--pdeathsig` has the kernel kill the server if the test process dies, even by SIGKILL. */
const SETPRIV_PATH = '/usr/bin/setpriv';
const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;
const START_ATTEMPTS = 5;

export interface RedisServerOptions {
  /** Keep data across restarts (and a SIGKILL): the append-only file, fsynced on every write. */
  appendonly?: boolean;
}

export interface RestartOptions {
  /** Come back with the data on disk (only there with `appendonly`); false wipes it first. Default true. */
  keepData?: boolean;
}

export interface RedisServer {
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  /** Whether the process is up (a paused one counts as up). */
  readonly running: boolean;
  /** The server process's id while it runs. */
  readonly pid: number | undefined;
  /** Everything the server has printed, for a failing test's message. */
  output(): string;
  /** Shuts the server down (SIGTERM, then SIGKILL if it hangs) and removes its directory: the end of it. */
  stop(): Promise<void>;
  /** SIGKILL: the server vanishes mid-command, with no goodbye; `restart()` brings it back. */
  kill(): Promise<void>;
  /** Down (gracefully, if it is up) and up again on the same port. */
  restart(options?: RestartOptions): Promise<void>;
  /** SIGSTOP: connections stay open but nothing is answered, as when a network path silently drops packets. */
  pause(): void;
  resume(): void;
}

const live = new Set<{ child: ChildProcess | null; dir: string }>();
let exitHookInstalled = false;

function cleanUp(): void {
  for (const server of live) {
    try {
      server.child?.kill('SIGKILL');
    } catch {
      // Already gone.
    }
    rmSync(server.dir, { recursive: true, force: true });
  }
  live.clear();
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // A test that failed before its `stop()`, or a worker torn down early, must not leave a server behind.
  process.once('exit', cleanUp);
  // The test runner ends its workers with SIGTERM, which skips 'exit'. After cleaning up, the signal does
  // what it would have done: kills the process, unless someone else listens for it.
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.once(signal, () => {
      cleanUp();
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

export function requireRedisServer(): void {
  if (!existsSync(REDIS_SERVER_PATH)) {
    throw new Error(
      `redis-server is not installed (${REDIS_SERVER_PATH} is missing). The cluster tests need it; ` +
        '`npm test` installs it with apt-get (apt-get install -y redis-server).',
    );
  }
}

/** A port the kernel just handed out; the server may still lose it to someone else, and then tries another. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

/** One PING over a fresh socket: true once the server answers PONG (not merely accepts the connection). */
function pong(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let answer = '';
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 500);
    socket.once('error', () => done(false));
    socket.on('data', (chunk) => {
      answer += chunk.toString('latin1');
      if (answer.includes('\r\n')) done(answer.startsWith('+PONG'));
    });
    socket.once('connect', () => socket.write('PING\r\n'));
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

class TestRedis implements RedisServer {
  private child: ChildProcess | null = null;
  private log = '';
  private readonly entry: { child: ChildProcess | null; dir: string };
  private stopped = false;

  constructor(
    private portNumber: number,
    readonly dir: string,
    private readonly appendonly: boolean,
  ) {
    this.entry = { child: null, dir };
    live.add(this.entry);
  }

  get port(): number {
    return this.portNumber;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.portNumber}`;
  }

  get pid(): number | undefined {
    return this.running ? this.child!.pid : undefined;
  }

  get running(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  output(): string {
    return this.log;
  }

  /** Starts on the current port; false when that port was taken (the caller may pick another). */
  async start(): Promise<boolean> {
    if (this.stopped) throw new Error('this Redis was stopped for good; start another');
    if (this.running) return true;
    const args = [
      '--port', String(this.portNumber),
      '--bind', '127.0.0.1',
      '--dir', this.dir,
      '--daemonize', 'no',
      '--save', '',
      '--appendonly', this.appendonly ? 'yes' : 'no',
      '--appendfsync', 'always',
      '--logfile', '',
      '--loglevel', 'notice',
      // As the product requires of a production Redis: never drop a lease or a hold to make room.
      '--maxmemory-policy', 'noeviction',
    ];
    const [command, commandArgs] = existsSync(SETPRIV_PATH)
      ? [SETPRIV_PATH, ['--pdeathsig', 'SIGKILL', REDIS_SERVER_PATH, ...args]]
      : [REDIS_SERVER_PATH, args];
    const child = spawn(command, commandArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.entry.child = child;
    const startedAt = this.log.length;
    child.stdout!.on('data', (chunk) => (this.log += chunk));
    child.stderr!.on('data', (chunk) => (this.log += chunk));
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        if (/Address already in use/i.test(this.log.slice(startedAt))) return false;
        throw new Error(`redis-server exited at start (${String(child.exitCode ?? child.signalCode)}):\n${this.log.slice(-2_000)}`);
      }
      if (await pong(this.portNumber)) return true;
      if (Date.now() > deadline) {
        await this.kill();
        throw new Error(`redis-server on port ${this.portNumber} did not answer PING within ${START_TIMEOUT_MS} ms:\n${this.log.slice(-2_000)}`);
      }
      await sleep(20);
    }
  }

  private async end(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    // A paused server must run again to shut down; a killed one must not (it would answer what it was sent).
    if (signal !== 'SIGKILL') child.kill('SIGCONT');
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  }

  async kill(): Promise<void> {
    await this.end('SIGKILL');
  }

  async restart({ keepData = true }: RestartOptions = {}): Promise<void> {
    await this.end('SIGTERM');
    if (!keepData) for (const name of readdirSync(this.dir)) rmSync(path.join(this.dir, name), { recursive: true, force: true });
    // The same port: clients reconnect to where Redis was. It is ours until the kernel gives it away, which
    // a restart that follows at once rarely sees; a few tries cover a port still in its last moments.
    for (let attempt = 1; ; attempt++) {
      if (await this.start()) return;
      if (attempt === START_ATTEMPTS) throw new Error(`port ${this.portNumber} stayed taken; Redis could not come back on it`);
      await sleep(100 * attempt);
    }
  }

  pause(): void {
    if (this.running) this.child!.kill('SIGSTOP');
  }

  resume(): void {
    if (this.running) this.child!.kill('SIGCONT');
  }

  async stop(): Promise<void> {
    await this.end('SIGTERM');
    this.stopped = true;
    live.delete(this.entry);
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** For the first start only: a new port when another process took the one picked. */
  async startOnSomeFreePort(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      if (await this.start()) return;
      if (attempt === START_ATTEMPTS) throw new Error(`no free port for redis-server after ${START_ATTEMPTS} tries`);
      this.portNumber = await freePort();
    }
  }
}

/** Starts a Redis and answers once it answers PING; call `stop()` when done (after each test file, say). */
export async function startRedis({ appendonly = false }: RedisServerOptions = {}): Promise<RedisServer> {
  requireRedisServer();
  installExitHook();
  const dir = mkdtempSync(path.join(tmpdir(), 'callchart-redis-'));
  const server = new TestRedis(await freePort(), dir, appendonly);
  try {
    await server.startOnSomeFreePort();
  } catch (error) {
    await server.stop();
    throw error;
  }
  return server;
}
