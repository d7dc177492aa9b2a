/** What the load benchmarks ask their server process (`serverEntry.ts`) over IPC, and what it answers. */

export interface ServerRequest {
  id: number;
  /** Collect garbage first (the entry runs with --expose-gc), so heapUsed is the live heap. */
  gc?: boolean;
  /** Reset the event-loop delay histogram after reading it: the next report covers only what follows. */
  resetDelay?: boolean;
  /** Include the byte size of every persisted actor snapshot (`actor_snapshots`). */
  snapshots?: boolean;
}

export interface SnapshotSizes {
  routing: number[];
  callSession: number[];
  /** Routing plus callSession bytes of each request that has a live call. */
  perCall: number[];
}

export interface ServerReport {
  id: number;
  at: number;
  memory: NodeJS.MemoryUsage;
  /** Cumulative since the process started, in µs. */
  cpu: NodeJS.CpuUsage;
  /** Since the last reset (or the listen). */
  eventLoopDelayMs: { min: number; p50: number; p90: number; p99: number; max: number; samples: number };
  actors: { requests: number; calls: number };
  sockets: number;
  gcExposed: boolean;
  snapshotBytes?: SnapshotSizes;
}

export interface ListeningMessage {
  type: 'listening';
  port: number;
  at: number;
  /** From the process's first line to the listen: module loading, the store, and a restart's restore. */
  startMs: number;
  restored: { requests: number; calls: number };
}
