/**
 * The parent's handle on a server child process running `serverEntry.ts`: start it (and wait for its listen),
 * ask it for reports, kill it. The child is started through `sh` so that its open-file limit can be raised
 * to what the host allows before node starts: every client socket is a file descriptor on the server.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { repoRoot } from '../../../scripts/repoRoot.ts';
import { captureOutput, killOnExit } from '../processes.ts';
import { codeFingerprint } from './codeFingerprint.ts';
import type { ListeningMessage, ServerReport, ServerRequest } from './serverProtocol.ts';

export interface ServerProcess {
  url: string;
  port: number;
  listening: ListeningMessage;
  /** Open-file limit the child runs with (from /proc/<pid>/limits). */
  fileLimit: number | null;
  /** `codeFingerprint()` of the source the child was started from. */
  code: string;
  /** Rejects with `ReportTimeout` after `timeoutMs` when given: a server whose event loop is stuck answers late. */
  report(request?: Omit<ServerRequest, 'id'>, timeoutMs?: number): Promise<ServerReport>;
  /** SIGKILL by default: a crash, with no goodbye to the sockets and nothing flushed. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** The last lines the server printed (warnings, errors), for a failure's message. */
  output(): string;
  exited(): boolean;
}

export class ReportTimeout extends Error {
  override readonly name = 'ReportTimeout';
}

const ENTRY = path.join(repoRoot, 'bench/lib/load/serverEntry.ts');
// Raise the soft limit as far as the host lets us; where the hard limit is lower the raise fails quietly.
const RAISE_FILE_LIMIT = 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"';
const OUTPUT_KEPT = 16_384;

async function readFileLimit(pid: number | undefined): Promise<number | null> {
  if (pid === undefined) return null;
  const { readFile } = await import('node:fs/promises');
  try {
    const match = /Max open files\s+(\d+)/.exec(await readFile(`/proc/${pid}/limits`, 'utf8'));
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

export async function startServerProcess(env: Record<string, string>, { timeoutMs = 60_000 } = {}): Promise<ServerProcess> {
  const code = codeFingerprint();
  const child: ChildProcess = spawn('sh', ['-c', RAISE_FILE_LIMIT, process.execPath, '--expose-gc', '--import', 'tsx', ENTRY], {
    cwd: repoRoot,
    env: { ...process.env, HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  killOnExit(child);
  const output = captureOutput(child, OUTPUT_KEPT);
  let nextId = 1;
  const pending = new Map<number, { resolve: (report: ServerReport) => void; reject: (error: Error) => void }>();
  const exit = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exit.then(() => {
    for (const waiter of pending.values()) waiter.reject(new Error(`server process exited:\n${output()}`));
    pending.clear();
  });

  const listening = await new Promise<ListeningMessage>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server did not start within ${timeoutMs} ms:\n${output()}`));
    }, timeoutMs);
    child.on('message', (message: ListeningMessage | ServerReport | { id: number; error: string }) => {
      if ('type' in message && message.type === 'listening') {
        clearTimeout(timer);
        resolve(message);
        return;
      }
      const report = message as ServerReport | { id: number; error: string };
      const waiter = pending.get(report.id);
      pending.delete(report.id);
      if ('error' in report) waiter?.reject(new Error(`the server could not report: ${report.error}`));
      else waiter?.resolve(report);
    });
    void exit.then(() => {
      clearTimeout(timer);
      reject(new Error(`server exited before listening:\n${output()}`));
    });
  });

  return {
    url: `http://127.0.0.1:${listening.port}`,
    port: listening.port,
    listening,
    fileLimit: await readFileLimit(child.pid),
    code,
    report(request = {}, timeoutMs) {
      return new Promise((resolve, reject) => {
        if (!child.connected) return reject(new Error(`server process is gone:\n${output()}`));
        const id = nextId++;
        const timer = timeoutMs === undefined ? undefined : setTimeout(() => {
          pending.delete(id);
          reject(new ReportTimeout(`the server did not answer within ${timeoutMs} ms`));
        }, timeoutMs);
        const settle = () => clearTimeout(timer);
        pending.set(id, { resolve: (report) => (settle(), resolve(report)), reject: (error) => (settle(), reject(error)) });
        child.send({ ...request, id } satisfies ServerRequest);
      });
    },
    async kill(signal = 'SIGKILL') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      await exit;
    },
    output,
    exited: () => child.exitCode !== null || child.signalCode !== null,
  };
}
