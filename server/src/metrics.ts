/**
 * What an operator scrapes at /metrics (Prometheus text format, prom-client). Gauges read the live state
 * when scraped; counters are moved by the server as things happen. One registry per server, so that
 * servers sharing a process (tests, benchmarks) never mix their figures.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';

export interface MetricsSources {
  calls(): number;
  queued(): number;
  agents(): readonly { pools: readonly string[] }[];
  sockets(): number;
}

export interface Metrics {
  readonly registry: Registry;
  /** A reported ICE-restart attempt, by its outcome. */
  iceRestart(outcome: 'recovered' | 'failed'): void;
  /** A socket that came back with a resume token: the session was `resumed`, or had `expired`. */
  reconnection(outcome: 'resumed' | 'expired'): void;
  /** A request moved on to another agent, by what made it move. */
  reassignment(trigger: string): void;
  /** An error code sent to a client, over HTTP or a socket. */
  error(code: string): void;
}

export function createMetrics(sources: MetricsSources): Metrics {
  const registry = new Registry();
  // Event-loop lag (callchart_nodejs_eventloop_lag_seconds and its percentiles), memory, CPU, handles.
  collectDefaultMetrics({ register: registry, prefix: 'callchart_' });
  const registers = [registry];
  new Gauge({
    name: 'callchart_calls_active',
    help: 'Calls in progress, paused ones included.',
    registers,
    collect() {
      this.set(sources.calls());
    },
  });
  new Gauge({
    name: 'callchart_requests_queued',
    help: 'Visitor requests waiting in the queue for a free agent.',
    registers,
    collect() {
      this.set(sources.queued());
    },
  });
  new Gauge({
    name: 'callchart_agents_online',
    help: 'Agents with a socket, by pool (an agent in two pools counts in each).',
    labelNames: ['pool'],
    registers,
    collect() {
      this.reset();
      const byPool = new Map<string, number>();
      for (const agent of sources.agents()) for (const pool of agent.pools) byPool.set(pool, (byPool.get(pool) ?? 0) + 1);
      for (const [pool, count] of byPool) this.set({ pool }, count);
    },
  });
  new Gauge({
    name: 'callchart_sockets',
    help: 'Open Socket.IO connections.',
    registers,
    collect() {
      this.set(sources.sockets());
    },
  });
  const iceRestarts = new Counter({ name: 'callchart_ice_restarts_total', help: 'ICE-restart attempts reported by the clients, by outcome.', labelNames: ['outcome'], registers });
  const reconnections = new Counter({
    name: 'callchart_signaling_reconnections_total',
    help: 'Sockets that came back with a resume token, by whether the session was resumed or had expired.',
    labelNames: ['outcome'],
    registers,
  });
  const reassignments = new Counter({ name: 'callchart_reassignments_total', help: 'Moves of a request to another agent, by trigger.', labelNames: ['trigger'], registers });
  const errors = new Counter({ name: 'callchart_errors_total', help: 'Error codes sent to clients, over HTTP and sockets.', labelNames: ['code'], registers });
  return {
    registry,
    iceRestart: (outcome) => iceRestarts.inc({ outcome }),
    reconnection: (outcome) => reconnections.inc({ outcome }),
    reassignment: (trigger) => reassignments.inc({ trigger }),
    error: (code) => errors.inc({ code }),
  };
}
