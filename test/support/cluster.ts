/**
 * A real cluster on this machine: N callchart node processes (the real entry point, as `npm start` runs
 * it) sharing one Postgres and one Redis, each started in a temporary directory on free loopback ports,
 * and optionally Debian's haproxy in front. A test can SIGKILL or SIGTERM any node, restart it on the
 * same port, and read what each node logged. `npm run cluster` runs the same thing for development.
 *
 * For the fault suites it can also say which node owns a request (the lease in Redis), read the shared
 * database, and run each node's Redis connection through a link of its own on loopback that a test can
 * freeze or cut, so one node is partitioned from Redis while it keeps running and keeps its database.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { repoRoot } from '../../scripts/repoRoot.ts';
import { RedisKeys } from '../../server/src/cluster/redis.ts';
import { startHaproxy, type Haproxy, type HaproxyOptions } from './haproxy.ts';
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
const SETPRIV_PATH = '/usr/bin/setpriv';

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
  /** Added to one node's environment after `env`, by its name (`node-2`): a setting only that node has. */
  nodeEnv?: Readonly<Record<string, Record<string, string>>>;
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
      const node = [process.execPath, '--import', 'tsx', 'server/src/main.ts'];
      // util-linux's setpriv: with `--pdeathsig` the kernel kills the node if this process dies, even by a
      // signal that runs no exit hook (a test runner ending its worker).
      const [command, ...args] = existsSync(SETPRIV_PATH) ? [SETPRIV_PATH, '--pdeathsig', 'SIGKILL', ...node] : node;
      this.child = spawn(command!, args, {
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
  const unknown = Object.keys(options.nodeEnv ?? {}).filter((name) => !/^node-\d+$/.test(name) || Number(name.slice(5)) > options.count || Number(name.slice(5)) < 1);
  if (unknown.length > 0) throw new RangeError(`no such node in a cluster of ${String(options.count)}: ${unknown.join(', ')}`);
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
      ...options.nodeEnv?.[name],
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

export type LinkState = 'open' | 'frozen' | 'cut';

/** Bytes on their way one direction through a link, with the end of the stream as `null`. */
type Held = Buffer | null;

interface LinkPair {
  client: Socket;
  /** Null until the link is open: a connection made while frozen reaches Redis only when it heals. */
  upstream: Socket | null;
  toUpstream: Held[];
  toClient: Held[];
}

/**
 * A TCP hop on loopback between one node and Redis, so a test can partition that node from Redis while
 * the process runs on and keeps its database:
 * - `freeze()`: nothing passes either way and nothing is closed, as when a network path silently drops
 *   packets; what is sent meanwhile is held, as TCP would keep retransmitting it, and a connection opened
 *   meanwhile is accepted and held too. The node finds out only from its own timeouts.
 * - `cut()`: every connection is reset and new ones are refused, as when the route is gone.
 * - `heal()`: open again; what a frozen link held goes on in order, as a healed path delivers it late.
 */
export class RedisLink {
  private current: LinkState = 'open';
  private readonly pairs = new Set<LinkPair>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly targetPort: number,
  ) {
    server.on('connection', (client) => this.accept(client));
  }

  /** Listens on a free 127.0.0.1 port and passes every connection to the Redis on `targetPort`. */
  static async start(targetPort: number): Promise<RedisLink> {
    const server = createServer();
    const port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port));
    });
    return new RedisLink(server, port, targetPort);
  }

  get url(): string {
    return `redis://127.0.0.1:${String(this.port)}`;
  }

  get state(): LinkState {
    return this.current;
  }

  /** Connections through the link now: a node that uses it has at least one. */
  get connections(): number {
    return this.pairs.size;
  }

  freeze(): void {
    if (this.current === 'open') this.current = 'frozen';
  }

  cut(): void {
    this.current = 'cut';
    for (const pair of [...this.pairs]) this.drop(pair);
  }

  heal(): void {
    this.current = 'open';
    for (const pair of [...this.pairs]) {
      this.connectUpstream(pair);
      this.flush(pair);
    }
  }

  async close(): Promise<void> {
    for (const pair of [...this.pairs]) this.drop(pair);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    client.on('error', () => {});
    if (this.current === 'cut') {
      client.resetAndDestroy();
      return;
    }
    const pair: LinkPair = { client, upstream: null, toUpstream: [], toClient: [] };
    this.pairs.add(pair);
    client.on('data', (chunk: Buffer) => this.pass(pair, 'toUpstream', chunk));
    client.once('end', () => this.pass(pair, 'toUpstream', null));
    client.once('close', () => this.closed(pair));
    if (this.current === 'open') this.connectUpstream(pair);
  }

  private connectUpstream(pair: LinkPair): void {
    if (pair.upstream !== null || !this.pairs.has(pair)) return;
    const upstream = connect({ host: '127.0.0.1', port: this.targetPort });
    pair.upstream = upstream;
    upstream.on('error', () => {});
    upstream.on('data', (chunk: Buffer) => this.pass(pair, 'toClient', chunk));
    upstream.once('end', () => this.pass(pair, 'toClient', null));
    upstream.once('close', () => this.closed(pair));
    // Written before the connection is up, they wait in the socket, in order.
    this.flush(pair);
  }

  private pass(pair: LinkPair, direction: 'toUpstream' | 'toClient', chunk: Held): void {
    pair[direction].push(chunk);
    if (this.current === 'open') this.flush(pair);
  }

  private flush(pair: LinkPair): void {
    const deliver = (queue: Held[], to: Socket | null) => {
      if (to === null || to.destroyed) return;
      for (const chunk of queue.splice(0)) {
        if (chunk === null) to.end();
        else to.write(chunk);
      }
    };
    deliver(pair.toUpstream, pair.upstream);
    deliver(pair.toClient, pair.client);
  }

  /** One side is gone: while open, the other goes too; while frozen, it learns only once the link heals. */
  private closed(pair: LinkPair): void {
    if (!this.pairs.has(pair)) return;
    const clientGone = pair.client.destroyed;
    const upstreamGone = pair.upstream?.destroyed ?? false;
    if (this.current !== 'open') {
      if (clientGone && upstreamGone) this.pairs.delete(pair);
      return;
    }
    if (clientGone || upstreamGone) this.drop(pair);
  }

  private drop(pair: LinkPair): void {
    this.pairs.delete(pair);
    for (const socket of [pair.client, pair.upstream]) {
      if (socket === null || socket.destroyed) continue;
      try {
        socket.resetAndDestroy();
      } catch {
        socket.destroy();
      }
    }
  }
}

/** Who holds a request's lease in Redis now: a node id and its fencing token. */
export interface Owner {
  nodeId: string;
  token: number;
  /** The node whose current process that is; undefined for a process that has since died or been restarted. */
  node: ClusterNode | undefined;
}

export interface ClusterOptions {
  nodes: number;
  env?: Record<string, string>;
  /** Settings only some nodes have, by node name (`node-2`). */
  nodeEnv?: Readonly<Record<string, Record<string, string>>>;
  /** FAST_CLUSTER_TIMINGS unless false. */
  fast?: boolean;
  /** haproxy in front of the nodes, on `port` (a free one when omitted), balancing by `balance` (round robin when omitted). */
  balancer?: boolean | { port?: number; balance?: HaproxyOptions['balance'] };
  /** Each node reaches Redis through a `RedisLink` of its own, which the test may freeze or cut. */
  redisLinks?: boolean;
  /** Called as each part comes up, for a script that tells a person what it is doing. */
  progress?: (line: string) => void;
}

export interface Cluster extends Nodes {
  readonly postgres: PostgresInstance;
  readonly redis: RedisServer;
  readonly balancer: Haproxy | null;
  /** The balancer's URL, or the first node's without one. */
  readonly url: string;
  /** The node's link to Redis; only with `redisLinks`. */
  redisLink(node: ClusterNode): RedisLink;
  /** The node whose current process has this NODE_ID. */
  nodeById(nodeId: string): ClusterNode | undefined;
  /** The holder of the request's lease, read from Redis itself (not through any node's link); null when none. */
  ownerOf(requestId: string): Promise<Owner | null>;
  /** Polls `ownerOf` until `wanted` accepts what it reads; throws with the last reading after `timeoutMs`. */
  waitForOwner(requestId: string, wanted: (owner: Owner | null) => boolean, timeoutMs?: number): Promise<Owner | null>;
  /**
   * Resolves once Redis holds a keyspace epoch that no grace follows: after Redis lost its data, the nodes
   * have found it again and put their leases and claims back, and fresh ones may be taken.
   */
  redisSettled(timeoutMs?: number): Promise<void>;
  /** The newest fencing token the store has taken a commit with for the request; null before any. */
  fenceOf(requestId: string): Promise<number | null>;
  /** A query on the shared database, for a test to read what the nodes stored. */
  sql<Row extends Record<string, unknown>>(text: string, values?: unknown[]): Promise<Row[]>;
  /** What the node's /readyz answers now; status 0 when it does not answer within 2 s. */
  readiness(node: ClusterNode): Promise<{ status: number; body: unknown }>;
  /** Stops the balancer, the nodes, Redis and Postgres, in that order, and removes their directories. */
  stop(): Promise<void>;
}

// The lease key of a request, as the nodes' LeaseKeeper names it: `lease:<requestId>` after the key prefix.
const leaseKey = (requestId: string) => new RedisKeys().key('lease', requestId);
const OWNER_TIMEOUT_MS = 10_000;

function parseOwner(value: string, nodes: readonly ClusterNode[]): Owner {
  const colon = value.lastIndexOf(':');
  const nodeId = value.slice(0, colon);
  return { nodeId, token: Number(value.slice(colon + 1)), node: nodes.find((node) => node.running && node.nodeId === nodeId) };
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
    const links = new Map<string, RedisLink>();
    const nodeEnv: Record<string, Record<string, string>> = {};
    for (const [name, env] of Object.entries(options.nodeEnv ?? {})) nodeEnv[name] = { ...env };
    if (options.redisLinks) {
      for (let index = 1; index <= options.nodes; index += 1) {
        const name = `node-${String(index)}`;
        const link = await RedisLink.start(redis.port);
        started.push({ stop: () => link.close() });
        links.set(name, link);
        nodeEnv[name] = { ...nodeEnv[name], REDIS_URL: link.url };
      }
    }
    // The test's own connections, opened when first used and closed before Redis and Postgres stop.
    let redisClient: Redis | null = null;
    let pool: pg.Pool | null = null;
    started.push({
      async stop() {
        redisClient?.disconnect();
        await pool?.end().catch(() => undefined);
      },
    });
    progress(`starting ${String(options.nodes)} node${options.nodes === 1 ? '' : 's'}`);
    const nodes = await startNodes({ databaseUrl: postgres.url, redisUrl: redis.url, count: options.nodes, fast: options.fast, env: options.env, nodeEnv });
    started.push({ stop: () => nodes.stopAll() });
    let balancer: Haproxy | null = null;
    if (options.balancer) {
      progress('starting haproxy');
      balancer = await startHaproxy({
        port: typeof options.balancer === 'object' ? options.balancer.port : undefined,
        balance: typeof options.balancer === 'object' ? options.balancer.balance : undefined,
        backends: nodes.nodes.map((node) => ({ name: node.name, port: node.port })),
      });
      started.push(balancer);
      await balancer.waitForBackends(nodes.nodes.map((node) => node.name));
    }

    const redisCommands = () =>
      (redisClient ??= (() => {
        // Straight to Redis, never through a node's link; commands fail fast while Redis is down.
        const client = new Redis(redis.url, { maxRetriesPerRequest: 1, enableOfflineQueue: true, connectTimeout: 2_000, commandTimeout: 2_000, lazyConnect: false });
        client.on('error', () => {});
        return client;
      })());
    const ownerOf = async (requestId: string) => {
      const value = await redisCommands().get(leaseKey(requestId));
      return value === null ? null : parseOwner(value, nodes.nodes);
    };
    const sql = async <Row extends Record<string, unknown>>(text: string, values: unknown[] = []) => {
      pool ??= (() => {
        const created = new pg.Pool({ connectionString: postgres.url, max: 2, connectionTimeoutMillis: 2_000 });
        created.on('error', () => {});
        return created;
      })();
      return (await pool.query<Row>(text, values)).rows;
    };

    let stopped: Promise<void> | null = null;
    return {
      ...nodes,
      postgres,
      redis,
      balancer,
      url: balancer?.url ?? nodes.nodes[0]!.url,
      redisLink(node) {
        const link = links.get(node.name);
        if (!link) throw new Error(`${node.name} has no Redis link: start the cluster with redisLinks`);
        return link;
      },
      nodeById: (nodeId) => nodes.nodes.find((node) => node.running && node.nodeId === nodeId),
      ownerOf,
      async waitForOwner(requestId, wanted, timeoutMs = OWNER_TIMEOUT_MS) {
        const deadline = Date.now() + timeoutMs;
        let last: Owner | null | string = 'nothing read yet';
        for (;;) {
          try {
            const owner = await ownerOf(requestId);
            if (wanted(owner)) return owner;
            last = owner;
          } catch (error) {
            last = `Redis did not answer: ${String(error)}`;
          }
          if (Date.now() > deadline) throw new Error(`the lease of ${requestId} did not settle as wanted within ${String(timeoutMs)} ms; last: ${JSON.stringify(last)}`);
          await sleep(POLL_MS);
        }
      },
      async redisSettled(timeoutMs = OWNER_TIMEOUT_MS) {
        const [epoch, , grace] = new RedisKeys().epochKeys;
        const deadline = Date.now() + timeoutMs;
        let last = 'nothing read yet';
        for (;;) {
          try {
            const [current, graced] = await redisCommands().mget(epoch, grace);
            if (current !== null && graced === null) return;
            last = `epoch ${String(current)}, grace ${graced === null ? 'over' : 'running'}`;
          } catch (error) {
            last = `Redis did not answer: ${String(error)}`;
          }
          if (Date.now() > deadline) throw new Error(`Redis did not settle within ${String(timeoutMs)} ms; last: ${last}`);
          await sleep(POLL_MS);
        }
      },
      async fenceOf(requestId) {
        const rows = await sql<{ token: string }>('SELECT token FROM request_fences WHERE request_id = $1', [requestId]);
        return rows[0] === undefined ? null : Number(rows[0].token);
      },
      sql,
      async readiness(node) {
        try {
          const response = await fetch(`${nodes.urlOf(node)}/readyz`, { signal: AbortSignal.timeout(2_000) });
          return { status: response.status, body: await response.json().catch(() => null) };
        } catch (error) {
          return { status: 0, body: String(error) };
        }
      },
      stop() {
        // Traffic first, then the nodes while their store and Redis still answer, then those.
        stopped ??= (async () => {
          // A node cut off from Redis would spend its shutdown waiting on it: every link opens again first.
          for (const link of links.values()) if (link.state !== 'open') link.heal();
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
