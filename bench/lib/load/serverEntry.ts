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
    const rows = db
      .prepare<[], { kind: string; requestId: string; bytes: number }>('SELECT kind, request_id AS requestId, length(CAST(snapshot AS BLOB)) AS bytes FROM actor_snapshots')
      .all();
    const byRequest = new Map<string, { routing: number; callSession: number | null }>();
    for (const row of rows) {
      const entry = byRequest.get(row.requestId) ?? { routing: 0, callSession: null };
      if (row.kind === 'routing') entry.routing += row.bytes;
      else entry.callSession = (entry.callSession ?? 0) + row.bytes;
      byRequest.set(row.requestId, entry);
    }
    return {
      routing: rows.filter((row) => row.kind === 'routing').map((row) => row.bytes),
      callSession: rows.filter((row) => row.kind === 'callSession').map((row) => row.bytes),
      perCall: [...byRequest.values()].filter((entry) => entry.callSession !== null).map((entry) => entry.routing + entry.callSession!),
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
