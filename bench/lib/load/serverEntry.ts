/**
 * The callchart server as the load benchmarks run it: the real `startServer(loadConfig(process.env))`, as
 * `server/src/main.ts` starts it, in a child process that answers the parent's questions over IPC with its
 * own measurements (memory, CPU, event-loop delay, live actors, persisted actor state). Measuring from inside
 * keeps the client fleet's cost out of the figures.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { startServer } from '@callchart/server';
import { loadConfig } from '@callchart/server/config';
import type { ServerReport, ServerRequest, SnapshotSizes } from './serverProtocol.ts';

const send = (message: unknown) => process.send?.(message);
const spawnedAt = Date.now();
const config = loadConfig(process.env);
const server = await startServer(config);
// Started after the listen: a restart's restore runs before it and is timed apart, as `startMs`.
const delay = monitorEventLoopDelay({ resolution: 10 });
delay.enable();
const collect = (globalThis as { gc?: () => void }).gc;

function snapshotSizes(): SnapshotSizes {
  if (config.databasePath === ':memory:') return { routing: [], callSession: [], perCall: [] };
  // A second, read-only connection: the server's own store has no query for sizes, and this one never writes.
  const db = new Database(config.databasePath, { readonly: true, fileMustExist: true });
  try {
    // One row per call request: its whole actor tree, the call's session (while there is a call) inside it.
    const rows = db
      .prepare<[], { snapshot: string; bytes: number }>("SELECT snapshot, length(CAST(snapshot AS BLOB)) AS bytes FROM actor_snapshots WHERE kind = 'routing'")
      .all();
    const trees = rows.map((row) => {
      const call = (JSON.parse(row.snapshot) as { children?: { call?: unknown } }).children?.call;
      const callBytes = call === undefined ? null : Buffer.byteLength(JSON.stringify(call));
      return { bytes: row.bytes, callBytes };
    });
    const inCall = trees.filter((tree) => tree.callBytes !== null);
    return {
      routing: trees.map((tree) => tree.bytes - (tree.callBytes ?? 0)),
      callSession: inCall.map((tree) => tree.callBytes!),
      perCall: inCall.map((tree) => tree.bytes),
    };
  } finally {
    db.close();
  }
}

function report(request: ServerRequest): ServerReport {
  if (request.gc) collect?.();
  const ms = (ns: number) => ns / 1e6;
  const report: ServerReport = {
    id: request.id,
    at: Date.now(),
    memory: process.memoryUsage(),
    cpu: process.cpuUsage(),
    eventLoopDelayMs: {
      min: ms(delay.min),
      p50: ms(delay.percentile(50)),
      p90: ms(delay.percentile(90)),
      p99: ms(delay.percentile(99)),
      max: ms(delay.max),
      samples: delay.count,
    },
    actors: server.switchboard.stats(),
    sockets: server.io.of('/').sockets.size,
    gcExposed: collect !== undefined,
    ...(request.snapshots ? { snapshotBytes: snapshotSizes() } : {}),
  };
  if (request.resetDelay) delay.reset();
  return report;
}

process.on('message', (request: ServerRequest) => {
  try {
    send(report(request));
  } catch (error) {
    // Out of file descriptors, memoryUsage() itself fails (it reads /proc): the parent hears why.
    send({ id: request.id, error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) });
  }
});
process.on('disconnect', () => process.exit(0));
send({ type: 'listening', port: server.port, at: Date.now(), startMs: Date.now() - spawnedAt, restored: server.switchboard.stats() });
