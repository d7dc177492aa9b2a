/**
 * Benchmark helpers that run in their own Node process: a TypeScript module started with `--import tsx`,
 * spoken to over the IPC channel. Load has to come from another process than the one measured, and a
 * second core is only used by a second process.
 *
 * Parent side: `spawnWorker(module, args)` waits for the worker's `ready` and returns `{ ready, call, send,
 * next, kill }`. Worker side: `serveParent(handlers)` answers `call`s and `reportReady(data)` says it is up.
 * Every child is killed when the parent exits, and a worker exits when its parent's channel closes.
 *
 * Also here: `spawnQuietServer` (the callchart server at any log level), `cpuSeconds` (a child's CPU time)
 * and `busyMachineNote` (whether other work shared the machine).
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from '../../scripts/repoRoot.ts';
import type { SpawnedServer } from '../../test/support/server.ts';

export interface WorkerMessage {
  type: string;
  [key: string]: unknown;
}

interface Reply {
  type: 'reply';
  id: number;
  ok: boolean;
  result?: unknown;
  error?: string;
}

// ---------------------------------------------------------------------------------------------
// Kill on exit

const children = new Set<ChildProcess>();
let exitHooked = false;

function killAll(): void {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

/** Kills `child` when this process exits, also on SIGINT or SIGTERM, so no benchmark leaves a process behind. */
export function killOnExit(child: ChildProcess): void {
  children.add(child);
  child.once('exit', () => children.delete(child));
  if (exitHooked) return;
  exitHooked = true;
  process.once('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      killAll();
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  }
}

/** The child's stdout and stderr as they arrive, for an error's message; only the last `keepLast` characters when given. */
export function captureOutput(child: ChildProcess, keepLast = Infinity): () => string {
  let output = '';
  const keep = (chunk: Buffer) => {
    output += chunk.toString();
    if (output.length > keepLast) output = output.slice(-keepLast);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return () => output;
}

/** CPU time (user + system) a live process has used, in seconds; null where /proc is not available. */
export function cpuSeconds(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces; the fields after its closing parenthesis are fixed.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? ticks / 100 : null;
  } catch {
    return null;
  }
}

/**
 * A warning for a figure's note when other work shared the machine during a measurement (a 1-minute load
 * average above the core count at its start or end); empty otherwise.
 */
export function busyMachineNote(loadAtStart: readonly number[]): string {
  const cores = os.cpus().length;
  const loads = [loadAtStart[0] ?? 0, os.loadavg()[0] ?? 0];
  if (Math.max(...loads) <= cores) return '';
  return `; the machine was busy with other work (1-min load average ${loads.map((l) => l.toFixed(1)).join(' → ')} on ${cores} cores): noisy`;
}

// ---------------------------------------------------------------------------------------------
// Parent side

export interface Worker<Ready = Record<string, unknown>> {
  child: ChildProcess;
  /** What the worker passed to `reportReady`. */
  ready: Ready;
  /** Runs the worker's handler for `type` and resolves with what it returned (rejects with its error). */
  call<T = unknown>(type: string, payload?: unknown, timeoutMs?: number): Promise<T>;
  /** A message that is not an answer to a call, for workers that report on their own. */
  send(message: WorkerMessage): void;
  /** The first unanswered message of `type` the worker sent on its own, already received or still to come. */
  next<T extends WorkerMessage = WorkerMessage>(type: string, timeoutMs?: number): Promise<T>;
  /** The worker's stdout and stderr so far. */
  output(): string;
  kill(): Promise<void>;
}

export interface SpawnOptions {
  env?: Record<string, string>;
  /** How long the worker may take to report ready. */
  readyTimeoutMs?: number;
}

/** Starts `modulePath` (a .ts file) in a child Node process and waits for it to report ready. */
export async function spawnWorker<Ready = Record<string, unknown>>(modulePath: string, args: string[] = [], options: SpawnOptions = {}): Promise<Worker<Ready>> {
  const child = fork(modulePath, args, {
    cwd: repoRoot,
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  killOnExit(child);
  const output = captureOutput(child);

  const inbox: WorkerMessage[] = [];
  const waiters: { type: string; resolve: (message: WorkerMessage) => void; reject: (error: Error) => void }[] = [];
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  let nextId = 1;
  let exited: Error | null = null;

  child.on('message', (raw) => {
    const message = raw as WorkerMessage;
    if (message.type === 'reply') {
      const reply = message as unknown as Reply;
      const call = pending.get(reply.id);
      pending.delete(reply.id);
      if (reply.ok) call?.resolve(reply.result);
      else call?.reject(new Error(`worker ${path.basename(modulePath)}: ${reply.error ?? 'failed'}`));
      return;
    }
    const waiter = waiters.find((w) => w.type === message.type);
    if (waiter) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve(message);
    } else {
      inbox.push(message);
    }
  });
  child.once('exit', (code, signal) => {
    exited = new Error(`worker ${path.basename(modulePath)} exited (${signal ?? code})\n${output().slice(-4000)}`);
    for (const call of pending.values()) call.reject(exited);
    pending.clear();
    for (const waiter of waiters.splice(0)) waiter.reject(exited);
  });

  function next<T extends WorkerMessage>(type: string, timeoutMs = 60_000): Promise<T> {
    const index = inbox.findIndex((message) => message.type === type);
    if (index >= 0) return Promise.resolve(inbox.splice(index, 1)[0] as T);
    if (exited) return Promise.reject(exited);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters.splice(waiters.indexOf(waiter), 1);
        reject(new Error(`worker ${path.basename(modulePath)} sent no ${type} within ${timeoutMs} ms\n${output().slice(-4000)}`));
      }, timeoutMs);
      const waiter = {
        type,
        resolve: (message: WorkerMessage) => {
          clearTimeout(timer);
          resolve(message as T);
        },
        reject: (error: Error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      waiters.push(waiter);
    });
  }

  async function kill(): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await gone;
  }

  try {
    const { type: _type, ...ready } = await next('ready', options.readyTimeoutMs ?? 30_000);
    return {
      child,
      ready: ready as Ready,
      call<T>(type: string, payload?: unknown, timeoutMs = 600_000): Promise<T> {
        if (exited) return Promise.reject(exited);
        const id = nextId++;
        return new Promise<T>((resolve, reject) => {
          const timer = setTimeout(() => {
            pending.delete(id);
            reject(new Error(`worker ${path.basename(modulePath)} did not answer ${type} within ${timeoutMs} ms`));
          }, timeoutMs);
          pending.set(id, {
            resolve: (value) => {
              clearTimeout(timer);
              resolve(value as T);
            },
            reject: (error) => {
              clearTimeout(timer);
              reject(error);
            },
          });
          child.send({ type: 'call', id, call: type, payload });
        });
      },
      send: (message) => void child.send(message),
      next,
      output,
      kill,
    };
  } catch (error) {
    await kill();
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// Worker side

// Each handler declares its own payload type; the parent's message is trusted to match it.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- handlers of different payloads in one record
type Handler = (payload: any) => unknown;

/** Answers the parent's `call`s with `handlers[type]`; the worker exits when the parent goes away. */
export function serveParent(handlers: Record<string, Handler>): void {
  if (!process.send) throw new Error('serveParent: this process was not started with an IPC channel');
  process.on('disconnect', () => process.exit(0));
  process.on('message', (raw) => {
    const message = raw as { type: string; id: number; call: string; payload: unknown };
    if (message.type !== 'call') return;
    const handler = handlers[message.call];
    void (async () => {
      try {
        if (!handler) throw new Error(`no handler for ${message.call}`);
        const result = await handler(message.payload);
        process.send!({ type: 'reply', id: message.id, ok: true, result } satisfies Reply);
      } catch (error) {
        process.send!({ type: 'reply', id: message.id, ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) } satisfies Reply);
      }
    })();
  });
}

/** Tells the parent this worker is up; `data` becomes the parent's `worker.ready`. */
export function reportReady(data: Record<string, unknown> = {}): void {
  process.send!({ ...data, type: 'ready' });
}

/** Sends the parent a message of its own (see `Worker.next`). */
export function tellParent(message: WorkerMessage): void {
  process.send!(message);
}

// ---------------------------------------------------------------------------------------------
// The callchart server

/**
 * `spawnServer` from test/support/server.ts, for any LOG_LEVEL: that one waits for the info-level
 * "listening" line, which a quieter server never prints, so this one waits for `/healthz` instead.
 */
export async function spawnQuietServer(env: Record<string, string>): Promise<SpawnedServer> {
  // Loaded here, not at the top: workers import this module too, and need none of the server's modules.
  const { FAST_TIMINGS } = await import('../../test/support/server.ts');
  const child = spawn(process.execPath, ['--import', 'tsx', 'server/src/main.ts'], {
    cwd: repoRoot,
    env: { ...process.env, HOST: '127.0.0.1', ...FAST_TIMINGS, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  killOnExit(child);
  const output = captureOutput(child);
  const url = `http://127.0.0.1:${env.PORT}`;
  const kill = async (signal: NodeJS.Signals = 'SIGKILL') => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(signal);
    await exited;
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited early:\n${output()}`);
    const healthy = await fetch(`${url}/healthz`).then(
      (response) => response.ok,
      () => false,
    );
    if (healthy) break;
    if (Date.now() > deadline) {
      await kill();
      throw new Error(`server did not start:\n${output()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { url, child, output, kill };
}
