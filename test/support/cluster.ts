/**
 * A real cluster on this machine: N callchart node processes (the real entry point, as `npm start` runs
 * it) sharing one Postgres and one Redis, each started in a temporary directory on free loopback ports,
 * and optionally Debian's haproxy in front. A test can SIGKILL or SIGTERM any node, restart it on the
 * same port, and read what each node logged. `npm run cluster` runs the same thing for development.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { repoRoot } from '../../scripts/repoRoot.ts';
import { startHaproxy, type Haproxy } from './haproxy.ts';
import { startPostgres, type PostgresInstance } from './postgres.ts';
import { startRedis, type RedisServer } from './redis.ts';
import { FAST_TIMINGS, freePort, sleep } from './server.ts';

/** FAST_TIMINGS, and leases short enough that a takeover after a kill is a matter of a second or two. */
export const FAST_CLUSTER_TIMINGS: Record<string, string> = {
  ...FAST_TIMINGS,
  LEASE_TTL_MS: '1500',
  LEASE_RENEW_MS: '400',
};

export const MAX_NODES = 16;
const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 20_000;
const POLL_MS = 100;

export interface ClusterNode {
  /** `node-1` … `node-N`: its name in the balancer and in a test's messages. */
  readonly name: string;
  /** NODE_ID of the process running now: the name and which start of it this is (`node-1.2` after a restart). */
  readonly nodeId: string;
  readonly port: number;
  readonly url: string;
  /** Everything the node's processes printed, one file across its restarts. */
  readonly logFile: string;
  /** Whether its process is alive (a stopped one counts: it was not asked to go). */
  readonly running: boolean;
  readonly child: ChildProcess;
}

export interface NodesOptions {
  databaseUrl: string;
  redisUrl: string;
  count: number;
  /** Added to every node's environment, after the cluster's own variables (so a test may override them). */
  env?: Record<string, string>;
  /** FAST_CLUSTER_TIMINGS unless false (`npm run cluster` runs the real defaults). */
  fast?: boolean;
  /** Where the node logs go; a new temporary directory when omitted, removed by `stopAll()`. */
  dir?: string;
}

export interface Nodes {
  readonly nodes: readonly ClusterNode[];
  /** The AUTH_SECRET every node shares, so a token one signs is good on all. */
  readonly authSecret: string;
  readonly dir: string;
  /** Resolves once the node's /readyz says ready; throws with its log if it exits or takes too long. */
  waitReady(node: ClusterNode, timeoutMs?: number): Promise<void>;
  /** Signals the node and waits for its process to exit (SIGTERM drains it first, for up to its DRAIN_MS). */
  kill(node: ClusterNode, signal: 'SIGKILL' | 'SIGTERM' | 'SIGINT'): Promise<void>;
  /** Starts the node again on its port, with the same settings and a new NODE_ID, and waits until it is ready. */
  restart(node: ClusterNode): Promise<void>;
  urlOf(node: ClusterNode): string;
  logs(node: ClusterNode): string;
  /** Stops every node still running (SIGINT, then SIGKILL if one hangs) and removes the directory if it made it. */
  stopAll(): Promise<void>;
}

class NodeProcess implements ClusterNode {
  child!: ChildProcess;
  starts = 0;

  constructor(
    readonly name: string,
    readonly port: number,
    readonly logFile: string,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  get nodeId(): string {
    return `${this.name}.${String(this.starts)}`;
  }

  get url(): string {
    return `http://127.0.0.1:${String(this.port)}`;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  spawn(): void {
    this.starts += 1;
    const log = openSync(this.logFile, 'a');
    try {
      // As scripts/start.mjs runs the server; the log file is the child's own stdout and stderr, so a node
      // that writes a lot never waits on this process to read it.
      this.child = spawn(process.execPath, ['--import', 'tsx', 'server/src/main.ts'], {
        cwd: repoRoot,
        env: { ...this.env, NODE_ID: this.nodeId },
        stdio: ['ignore', log, log],
      });
    } finally {
      closeSync(log);
    }
    live.add(this.child);
    this.child.once('exit', () => live.delete(this.child));
  }

  /** Resolves when the current process has exited (at once if it has). */
  exited(timeoutMs: number): Promise<boolean> {
    const child = this.child;
    if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }
}

// Nodes a test left running (it threw before its stopAll) die with the test process, and the log
// directories it made go with them.
const live = new Set<ChildProcess>();
const ownDirs = new Set<string>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
  for (const dir of ownDirs) rmSync(dir, { recursive: true, force: true });
});

function tail(text: string, chars = 4_000): string {
  return text.length > chars ? `…${text.slice(-chars)}` : text;
}

/** Starts `count` nodes on free ports against the given Postgres and Redis, and waits until all are ready. */
export async function startNodes(options: NodesOptions): Promise<Nodes> {
  if (!Number.isInteger(options.count) || options.count < 1 || options.count > MAX_NODES) {
    throw new RangeError(`a cluster has 1 to ${String(MAX_NODES)} nodes, not ${String(options.count)}`);
  }
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? mkdtempSync(path.join(tmpdir(), 'callchart-cluster-'));
  if (ownDir) ownDirs.add(dir);
  const authSecret = randomBytes(32).toString('base64url');
  const nodes: NodeProcess[] = [];
  for (let index = 1; index <= options.count; index += 1) {
    const name = `node-${String(index)}`;
    const port = await freePort();
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...(options.fast === false ? {} : FAST_CLUSTER_TIMINGS),
      HOST: '127.0.0.1',
      PORT: String(port),
      DATABASE_URL: options.databaseUrl,
      REDIS_URL: options.redisUrl,
      AUTH_SECRET: authSecret,
      AGENTS_FILE: path.join(repoRoot, 'server/config/agents.json'),
      // Unused in cluster mode; set so that nothing a node does can write into the checkout's data directory.
      DATABASE_PATH: path.join(dir, `${name}.db`),
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
      ...options.env,
    };
    nodes.push(new NodeProcess(name, port, path.join(dir, `${name}.log`), env));
  }

  const own = (node: ClusterNode): NodeProcess => {
    const found = nodes.find((candidate) => candidate === node);
    if (!found) throw new Error(`${node.name} is not a node of this cluster`);
    return found;
  };

  const logs = (node: ClusterNode) => {
    try {
      return readFileSync(own(node).logFile, 'utf8');
    } catch {
      return '';
    }
  };

  const waitReady = async (node: ClusterNode, timeoutMs = READY_TIMEOUT_MS) => {
    const target = own(node);
    const child = target.child;
    const deadline = Date.now() + timeoutMs;
    let last = 'no answer yet';
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`${target.name} (${target.nodeId}) exited (${String(child.exitCode ?? child.signalCode)}) before it was ready:\n${tail(logs(target))}`);
      }
      try {
        const response = await fetch(`${target.url}/readyz`, { signal: AbortSignal.timeout(2_000) });
        if (response.status === 200) return;
        last = `${String(response.status)} ${await response.text()}`;
      } catch (error) {
        last = String(error);
      }
      if (Date.now() > deadline) throw new Error(`${target.name} was not ready within ${String(timeoutMs)} ms (last: ${last}):\n${tail(logs(target))}`);
      await sleep(POLL_MS);
    }
  };

  const kill = async (node: ClusterNode, signal: 'SIGKILL' | 'SIGTERM' | 'SIGINT') => {
    const target = own(node);
    if (!target.running) return;
    target.child.kill(signal);
    if (await target.exited(STOP_TIMEOUT_MS)) return;
    target.child.kill('SIGKILL');
    await target.exited(STOP_TIMEOUT_MS);
    throw new Error(`${target.name} did not exit within ${String(STOP_TIMEOUT_MS)} ms of ${signal}; it was killed:\n${tail(logs(target))}`);
  };

  const stopAll = async () => {
    const results = await Promise.allSettled(nodes.filter((node) => node.child !== undefined).map((node) => kill(node, 'SIGINT')));
    if (ownDir) {
      rmSync(dir, { recursive: true, force: true });
      ownDirs.delete(dir);
    }
    const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failed) throw failed.reason;
  };

  try {
    for (const node of nodes) node.spawn();
    await Promise.all(nodes.map((node) => waitReady(node)));
  } catch (error) {
    await stopAll().catch(() => undefined);
    throw error;
  }

  return {
    nodes,
    authSecret,
    dir,
    waitReady,
    kill,
    async restart(node) {
      const target = own(node);
      if (target.running) await kill(target, 'SIGTERM');
      target.spawn();
      await waitReady(target);
    },
    urlOf: (node) => own(node).url,
    logs,
    stopAll,
  };
}

export interface ClusterOptions {
  nodes: number;
  env?: Record<string, string>;
  /** FAST_CLUSTER_TIMINGS unless false. */
  fast?: boolean;
  /** haproxy in front of the nodes, on `port` (a free one when omitted). */
  balancer?: boolean | { port?: number };
  /** Called as each part comes up, for a script that tells a person what it is doing. */
  progress?: (line: string) => void;
}

export interface Cluster extends Nodes {
  readonly postgres: PostgresInstance;
  readonly redis: RedisServer;
  readonly balancer: Haproxy | null;
  /** The balancer's URL, or the first node's without one. */
  readonly url: string;
  /** Stops the balancer, the nodes, Redis and Postgres, in that order, and removes their directories. */
  stop(): Promise<void>;
}

/** Postgres, Redis, `nodes` node processes and, if asked, haproxy in front: a whole cluster, ready. */
export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const progress = options.progress ?? (() => {});
  const started: { stop(): Promise<void> }[] = [];
  const stopStarted = async () => {
    for (const part of started.reverse()) await part.stop().catch(() => undefined);
  };
  try {
    progress('starting Postgres');
    const postgres = await startPostgres();
    started.push(postgres);
    progress('starting Redis');
    const redis = await startRedis();
    started.push(redis);
    progress(`starting ${String(options.nodes)} node${options.nodes === 1 ? '' : 's'}`);
    const nodes = await startNodes({ databaseUrl: postgres.url, redisUrl: redis.url, count: options.nodes, fast: options.fast, env: options.env });
    started.push({ stop: () => nodes.stopAll() });
    let balancer: Haproxy | null = null;
    if (options.balancer) {
      progress('starting haproxy');
      balancer = await startHaproxy({
        port: typeof options.balancer === 'object' ? options.balancer.port : undefined,
        backends: nodes.nodes.map((node) => ({ name: node.name, port: node.port })),
      });
      started.push(balancer);
      await balancer.waitForBackends(nodes.nodes.map((node) => node.name));
    }
    let stopped: Promise<void> | null = null;
    return {
      ...nodes,
      postgres,
      redis,
      balancer,
      url: balancer?.url ?? nodes.nodes[0]!.url,
      stop() {
        // Traffic first, then the nodes while their store and Redis still answer, then those.
        stopped ??= (async () => {
          const errors: unknown[] = [];
          for (const part of [...started].reverse()) await part.stop().catch((error: unknown) => errors.push(error));
          if (errors.length > 0) throw errors[0];
        })();
        return stopped;
      },
    };
  } catch (error) {
    await stopStarted();
    throw error;
  }
}
