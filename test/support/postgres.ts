/**
 * A throwaway PostgreSQL 15 (Debian's) for tests: its own data directory in a fresh temporary directory,
 * on a free 127.0.0.1 port, TCP only. fsync is off for speed: a commit still reaches the OS before it is
 * acknowledged, so killing postgres (`kill()`) loses nothing; only a crash of the machine could. Postgres
 * refuses to run as root, so initdb and the server run as the `postgres` user.
 *
 * Every call starts its own instance, so test files running at once never share one; a file that wants a
 * clean database per test asks its instance for one with `createDatabase()`. Every wait is bounded, and an
 * instance a test forgot to stop is killed when the test process exits.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';

export const POSTGRES_BIN = '/usr/lib/postgresql/15/bin';
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 15_000;
const START_TRIES = 3;

export interface PostgresInstance {
  /** The test database, `postgres://postgres@127.0.0.1:<port>/callchart`. */
  readonly url: string;
  readonly port: number;
  /** A new empty database on this instance; answers its URL. */
  createDatabase(): Promise<string>;
  /** A fast shutdown (clients are disconnected); the data directory is removed. */
  stop(): Promise<void>;
  /** A fast shutdown, then the server again on the same port and data. */
  restart(): Promise<void>;
  /** SIGKILL to the server and every backend, as a crash would; `restart()` brings it back with crash recovery. */
  kill(): Promise<void>;
}

// Its own rather than test/support/server.ts's: the store's tests import this module and need none of the server.
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

export function requirePostgres(): void {
  if (!existsSync(path.join(POSTGRES_BIN, 'postgres'))) {
    throw new Error(
      `PostgreSQL 15 is not installed (${POSTGRES_BIN}/postgres is missing). The store and cluster tests need it; ` +
        'install Debian\'s postgresql package (apt-get install -y postgresql).',
    );
  }
}

function asPostgres(command: string, args: readonly string[]): string[] {
  return ['-u', 'postgres', '--', path.join(POSTGRES_BIN, command), ...args];
}

function postgresIds(): { uid: number; gid: number } {
  const uid = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (uid.status !== 0 || gid.status !== 0) throw new Error('There is no postgres user to run PostgreSQL as.');
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

// Instances still running when the process exits (a test that threw before its afterAll): killed, so no
// server outlives its test run.
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) killGroup(child, 'SIGKILL');
});

/** The server and its backends share the process group `spawn({ detached })` gave them. */
function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

function exited(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

async function sleep(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

/** Connects until the server answers, the process dies, or the time is up. */
async function waitReady(child: ChildProcess, url: string, log: () => string): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  let last: unknown;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`postgres exited while starting (${String(child.exitCode ?? child.signalCode)}):\n${log()}`);
    }
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1_000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('SELECT 1');
      await client.end();
      return;
    } catch (error) {
      last = error;
      await client.end().catch(() => undefined);
      await sleep(100);
    }
  }
  throw new Error(`postgres did not accept connections within ${String(START_TIMEOUT_MS)} ms (${String(last)}):\n${log()}`);
}

/** Starts a new instance with an empty `callchart` database. */
export async function startPostgres(): Promise<PostgresInstance> {
  requirePostgres();
  const root = mkdtempSync(path.join(tmpdir(), 'callchart-pg-'));
  const dataDir = path.join(root, 'data');
  const { uid, gid } = postgresIds();
  chownSync(root, uid, gid);
  let child: ChildProcess | undefined;
  let stopped = false;
  try {
    const init = spawnSync(
      'runuser',
      asPostgres('initdb', ['-D', dataDir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync']),
      { encoding: 'utf8', timeout: START_TIMEOUT_MS },
    );
    if (init.status !== 0) throw new Error(`initdb failed (${String(init.status ?? init.signal)}):\n${init.stderr}`);

    let port = 0;
    let output = '';
    const launch = async (): Promise<void> => {
      output = '';
      const server = spawn(
        'runuser',
        asPostgres('postgres', [
          '-D', dataDir,
          '-p', String(port),
          '-h', '127.0.0.1',
          // TCP only: no socket file to collide on.
          '-c', 'unix_socket_directories=',
          '-c', 'fsync=off',
          '-c', 'full_page_writes=off',
          '-c', 'max_connections=200',
        ]),
        { detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      running.add(server);
      server.once('exit', () => running.delete(server));
      const collect = (chunk: Buffer) => {
        // Only the start is needed to explain a failure; later output is dropped.
        if (output.length < 20_000) output += chunk.toString();
      };
      server.stdout?.on('data', collect);
      server.stderr?.on('data', collect);
      child = server;
      await waitReady(server, `postgres://postgres@127.0.0.1:${String(port)}/postgres`, () => output);
    };

    // Another process may take the free port before postgres binds it: try again on another.
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      try {
        await launch();
        break;
      } catch (error) {
        if (child !== undefined) {
          killGroup(child, 'SIGKILL');
          await exited(child, STOP_TIMEOUT_MS);
        }
        if (attempt >= START_TRIES || !/could not bind|Address already in use/i.test(output)) throw error;
      }
    }

    const adminUrl = `postgres://postgres@127.0.0.1:${String(port)}/postgres`;
    let databases = 0;
    const createDatabase = async (): Promise<string> => {
      databases += 1;
      const name = `callchart_${String(databases)}`;
      const admin = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5_000 });
      admin.on('error', () => undefined);
      try {
        await admin.connect();
        await admin.query(`CREATE DATABASE ${name}`);
      } finally {
        await admin.end().catch(() => undefined);
      }
      return `postgres://postgres@127.0.0.1:${String(port)}/${name}`;
    };
    const firstUrl = await createDatabase();

    const shutDown = async (signal: 'SIGINT' | 'SIGKILL'): Promise<void> => {
      const server = child;
      if (server === undefined) return;
      const pid = postmasterPid(dataDir);
      // The backends each run in a session of their own, so they are found as the postmaster's children.
      const backends = pid === undefined ? [] : childrenOf(pid);
      // SIGINT to the postmaster is postgres's fast shutdown. SIGKILL goes to the postmaster and every
      // backend at once, as a crash of the machine would. Either way runuser, left alone, reaps the
      // postmaster and exits: a postmaster left a zombie would keep its lock file looking alive.
      if (pid === undefined) killGroup(server, signal);
      else for (const target of signal === 'SIGKILL' ? [pid, ...backends] : [pid]) signalPid(target, signal);
      if (!(await exited(server, STOP_TIMEOUT_MS))) {
        killGroup(server, 'SIGKILL');
        await exited(server, STOP_TIMEOUT_MS);
      }
      // A new postmaster refuses a data directory whose old processes are still alive.
      for (const leftover of pid === undefined ? backends : [pid, ...backends]) await gone(leftover, STOP_TIMEOUT_MS);
      child = undefined;
    };

    return {
      url: firstUrl,
      port,
      createDatabase,
      stop: async () => {
        if (stopped) return;
        stopped = true;
        await shutDown('SIGINT');
        rmSync(root, { recursive: true, force: true });
      },
      restart: async () => {
        if (stopped) throw new Error('This postgres was stopped for good.');
        await shutDown('SIGINT');
        await launch();
      },
      kill: async () => {
        await shutDown('SIGKILL');
      },
    };
  } catch (error) {
    if (child !== undefined) {
      killGroup(child, 'SIGKILL');
      await exited(child, STOP_TIMEOUT_MS);
    }
    rmSync(root, { recursive: true, force: true });
    throw error;
  }
}

/** The postmaster's pid from its lock file, while the file is there. */
function postmasterPid(dataDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/** The pids whose parent is `pid`, from /proc. */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // The command name in parentheses may hold spaces; the parent pid is the second field after it.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (parent === pid) children.push(Number(entry));
    } catch {
      // exited while being read
    }
  }
  return children;
}

/** Running, not merely a zombie waiting for whoever adopted it to reap it. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

async function gone(pid: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (alive(pid)) {
    if (Date.now() > deadline) throw new Error(`postgres ${String(pid)} did not exit within ${String(timeoutMs)} ms`);
    await sleep(50);
  }
}
