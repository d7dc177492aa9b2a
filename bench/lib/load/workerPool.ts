/**
 * Simulated-client worker processes: the fleet's sockets live outside the benchmark's process (and the
 * server's), a few thousand per worker, so the clients' own CPU does not starve the one being measured of
 * its timers. Each worker answers one request at a time per id over IPC.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { repoRoot } from '../../../scripts/repoRoot.ts';
import { captureOutput, killOnExit } from '../processes.ts';

export interface WorkerReply<T = unknown> {
  id: number;
  ok: boolean;
  result?: T;
  error?: string;
}

export interface Worker {
  index: number;
  request<T>(op: string, args?: object, timeoutMs?: number): Promise<T>;
}

export interface WorkerPool {
  workers: Worker[];
  /** The same request to every worker, in parallel. */
  all<T>(op: string, args: (worker: Worker) => object, timeoutMs?: number): Promise<T[]>;
  close(): Promise<void>;
}

const OUTPUT_KEPT = 8_192;

export async function startWorkers(entry: string, count: number): Promise<WorkerPool> {
  const children: ChildProcess[] = [];
  const workers: Worker[] = [];
  const readiness: Promise<void>[] = [];
  try {
    for (let index = 0; index < count; index++) {
      const child = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, entry)], {
        cwd: repoRoot,
        env: process.env,
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      });
      children.push(child);
      killOnExit(child);
      const output = captureOutput(child, OUTPUT_KEPT);
      let nextId = 1;
      const pending = new Map<number, (reply: WorkerReply) => void>();
      let markReady: () => void = () => {};
      const ready = new Promise<void>((resolve) => (markReady = resolve));
      child.on('message', (reply: WorkerReply | { ready: true }) => {
        if ('ready' in reply) return markReady();
        pending.get(reply.id)?.(reply);
        pending.delete(reply.id);
      });
      readiness.push(ready);
      child.once('exit', (code, signal) => {
        for (const resolve of pending.values()) resolve({ id: 0, ok: false, error: `worker ${index} exited (${code ?? signal}):\n${output()}` });
        pending.clear();
      });
      workers.push({
        index,
        request<T>(op: string, args: object = {}, timeoutMs = 120_000): Promise<T> {
          return new Promise((resolve, reject) => {
            if (!child.connected) return reject(new Error(`worker ${index} is gone:\n${output()}`));
            const id = nextId++;
            const timer = setTimeout(() => {
              pending.delete(id);
              reject(new Error(`worker ${index}: ${op} took longer than ${timeoutMs} ms`));
            }, timeoutMs);
            pending.set(id, (reply) => {
              clearTimeout(timer);
              if (reply.ok) resolve(reply.result as T);
              else reject(new Error(`worker ${index}: ${op} failed: ${reply.error}`));
            });
            child.send({ id, op, ...args });
          });
        },
      });
    }
    // A request sent before the worker listens would be lost: wait for each to say it is listening.
    const started = Promise.all(readiness);
    const exited = new Promise<never>((_, reject) =>
      children.forEach((child, i) => child.once('exit', (code, signal) => reject(new Error(`worker ${i} exited while starting (${code ?? signal})`)))),
    );
    await Promise.race([started, exited]);
  } catch (error) {
    for (const child of children) child.kill('SIGKILL');
    throw error;
  }
  return {
    workers,
    all: <T>(op: string, args: (worker: Worker) => object, timeoutMs?: number) => Promise.all(workers.map((worker) => worker.request<T>(op, args(worker), timeoutMs))),
    async close() {
      await Promise.all(
        children.map(
          (child) =>
            new Promise<void>((resolve) => {
              if (child.exitCode !== null || child.signalCode !== null) return resolve();
              child.once('exit', () => resolve());
              // The worker closes its sockets on disconnect; SIGKILL if it does not go in time.
              const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
              child.once('exit', () => clearTimeout(timer));
              if (child.connected) child.disconnect();
              else child.kill('SIGKILL');
            }),
        ),
      );
    },
  };
}

/** Serves a worker's requests: `handlers[op](args)`; exits when the parent goes. */
export function serveWorker(handlers: Record<string, (args: Record<string, unknown>) => Promise<unknown> | unknown>, onExit: () => void): void {
  process.on('message', async (message: { id: number; op: string } & Record<string, unknown>) => {
    const handler = handlers[message.op];
    try {
      if (!handler) throw new Error(`unknown op ${message.op}`);
      process.send?.({ id: message.id, ok: true, result: await handler(message) } satisfies WorkerReply);
    } catch (error) {
      process.send?.({ id: message.id, ok: false, error: error instanceof Error ? error.stack ?? error.message : String(error) } satisfies WorkerReply);
    }
  });
  process.on('disconnect', () => {
    onExit();
    process.exit(0);
  });
  process.send?.({ ready: true });
}

/** Splits `items` into `parts` nearly equal slices, in order. */
export function split<T>(items: readonly T[], parts: number): T[][] {
  return Array.from({ length: parts }, (_, i) => items.slice(Math.floor((i * items.length) / parts), Math.floor(((i + 1) * items.length) / parts)));
}
