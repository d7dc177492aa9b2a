/**
 * Cluster nodes as the load benchmarks run them: each one the capacity benchmark's measured server process
 * (`lib/load/serverEntry.ts`: the real `startServer`, reporting its own memory, CPU and event-loop delay over
 * IPC, its open-file limit raised), started with DATABASE_URL and REDIS_URL so that it is one node of a
 * cluster. With `cluster: null` the same thing is one process on the SQLite file of the env, the baseline.
 */
import path from 'node:path';
import { startServerProcess, type ServerProcess } from '../load/serverProcess.ts';

export interface BenchNode {
  /** `node-1` … `node-N`, or `single` for the one process. */
  name: string;
  server: ServerProcess;
}

export interface StartNodesOptions {
  count: number;
  /** The fleet's env (secret, agents file, limits) and whatever the phase adds. */
  env: Record<string, string>;
  /** The phase's DATABASE_URL and REDIS_URL; null for one process on the env's DATABASE_PATH. */
  cluster: { DATABASE_URL: string; REDIS_URL: string } | null;
  /** Where each node's unused SQLite path points, so that none can write into the checkout. */
  scratchDir: string;
}

export async function startBenchNodes({ count, env, cluster, scratchDir }: StartNodesOptions): Promise<BenchNode[]> {
  if (cluster === null && count !== 1) throw new RangeError(`one process is one node, not ${count}`);
  const names = cluster === null ? ['single'] : Array.from({ length: count }, (_, i) => `node-${i + 1}`);
  const started = await Promise.allSettled(
    names.map((name) =>
      startServerProcess({
        ...env,
        PORT: '0',
        ...(cluster === null ? {} : { ...cluster, NODE_ID: name, DATABASE_PATH: path.join(scratchDir, `${name}.unused.db`) }),
      }),
    ),
  );
  const up = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const failed = started.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed) {
    await Promise.all(up.map((server) => server.kill()));
    throw failed.reason;
  }
  return up.map((server, i) => ({ name: names[i]!, server }));
}

export async function stopBenchNodes(nodes: readonly BenchNode[]): Promise<void> {
  await Promise.all(nodes.map((node) => node.server.kill()));
}
