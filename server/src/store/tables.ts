/**
 * Each table once: its name, its key, and how every field of its record is written to and read from a
 * column. Column names are the fields' names in snake_case, so a record's shape is the table's shape.
 * Nothing here knows the database: a driver builds its statements from these and maps rows through them.
 */
import type { CallLeg } from '@callchart/machines';
import {
  StoreError,
  type ActorSnapshotRecord,
  type AgentRecord,
  type CallEventRecord,
  type CallRecord,
  type RequestRecord,
  type RevokedTokenRecord,
  type TelemetryRecord,
} from './records.ts';

/** How one field is stored: what goes into its column (an optional field left out comes as undefined), and what comes back out. */
export interface Field<V> {
  write(value: V | undefined): unknown;
  read(column: unknown): V;
}

export type Fields<R> = { readonly [K in keyof R]-?: Field<R[K]> };

export interface Table<R> {
  readonly name: string;
  readonly key: keyof R & string;
  readonly fields: Fields<R>;
}

/** `totalPauseMs` → `total_pause_ms`. */
export function columnOf(field: string): string {
  return field.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}

/** A row as the database returns it (snake_case columns), as its record. */
export function fromRow<R>(table: Table<R>, row: Readonly<Record<string, unknown>>): R {
  const record: Partial<Record<keyof R, unknown>> = {};
  for (const field of Object.keys(table.fields) as (keyof R & string)[]) {
    record[field] = table.fields[field].read(row[columnOf(field)]);
  }
  return record as R;
}

/** The given fields of `record` as column values, keyed by field name. */
export function toColumns<R, K extends keyof R & string>(
  table: Table<R>,
  fields: readonly K[],
  record: Partial<Pick<R, K>>,
): Record<K, unknown> {
  const values = {} as Record<K, unknown>;
  for (const field of fields) values[field] = table.fields[field].write(record[field]);
  return values;
}

// ---------------------------------------------------------------------------------------------
// Fields

/** Stored as it is; an optional field left out is null. */
function asIs<V>(): Field<V> {
  return { write: (value) => value ?? null, read: (column) => column as V };
}

function toJson(value: unknown, what: string): string {
  const text = JSON.stringify(value);
  if (text === undefined) throw new TypeError(`${what} must be JSON-serializable`);
  return text;
}

/** A JSON value, kept as its text. */
function json<V>(what: string): Field<V> {
  return { write: (value) => toJson(value, what), read: (column) => JSON.parse(column as string) as V };
}

/** A JSON array; anything else is refused before it reaches the database. */
function jsonArray<V extends unknown[]>(what: string): Field<V> {
  return {
    write: (value) => {
      if (!Array.isArray(value)) throw new TypeError(`${what} must be an array`);
      return toJson(value, what);
    },
    read: (column) => JSON.parse(column as string) as V,
  };
}

/** Any JSON value or none: null and undefined are a null column, which reads as null. */
function optionalJson(what: string): Field<unknown> {
  return {
    write: (value) => (value === undefined || value === null ? null : toJson(value, what)),
    read: (column) => (column === null ? null : (JSON.parse(column as string) as unknown)),
  };
}

// Clients measure with performance.now(), which has fractions of a millisecond; the columns are integers.
function wholeMs<V extends number | null>(): Field<V> {
  return {
    write: (value) => (typeof value === 'number' ? Math.round(value) : null),
    read: (column) => column as V,
  };
}

// ---------------------------------------------------------------------------------------------
// The tables

export interface SettingRecord {
  key: string;
  value: string;
}

export const settings: Table<SettingRecord> = {
  name: 'settings',
  key: 'key',
  fields: { key: asIs(), value: asIs() },
};

export const agents: Table<AgentRecord> = {
  name: 'agents',
  key: 'id',
  fields: {
    id: asIs(),
    name: asIs(),
    email: asIs(),
    passwordHash: asIs(),
    pools: json('pools'),
    roles: json('roles'),
    lastAssignedAt: asIs(),
  },
};

export const requests: Table<RequestRecord> = {
  name: 'requests',
  key: 'id',
  fields: {
    id: asIs(),
    visitorId: asIs(),
    visitorName: asIs(),
    pool: asIs(),
    state: asIs(),
    createdAt: asIs(),
    endedAt: asIs(),
    endReason: asIs(),
  },
};

/** `agentName` is not a column of `calls`: reads join it in from `agents`. */
export const calls: Table<CallRecord> = {
  name: 'calls',
  key: 'id',
  fields: {
    id: asIs(),
    requestId: asIs(),
    visitorId: asIs(),
    visitorName: asIs(),
    agentId: asIs(),
    agentName: asIs(),
    pool: asIs(),
    state: asIs(),
    startedAt: asIs(),
    connectedAt: asIs(),
    endedAt: asIs(),
    endReason: asIs(),
    totalPauseMs: wholeMs(),
  },
};

export const callEvents: Table<CallEventRecord> = {
  name: 'call_events',
  key: 'id',
  fields: {
    id: asIs(),
    callId: asIs(),
    requestId: asIs(),
    actor: asIs(),
    type: asIs(),
    fromState: asIs(),
    toState: asIs(),
    cause: asIs(),
    detail: optionalJson('detail'),
    at: asIs(),
  },
};

/** Both kinds of telemetry in one table: the fields the other kind has are null. */
export interface TelemetryRow {
  id: number;
  callId: string;
  kind: TelemetryRecord['kind'];
  leg: CallLeg;
  at: number;
  durationMs: number | null;
  outcome: 'recovered' | 'failed' | null;
  cause: string | null;
}

export const telemetry: Table<TelemetryRow> = {
  name: 'telemetry',
  key: 'id',
  fields: {
    id: asIs(),
    callId: asIs(),
    kind: asIs(),
    leg: asIs(),
    at: asIs(),
    durationMs: wholeMs(),
    outcome: asIs(),
    cause: asIs(),
  },
};

export function toTelemetry(row: TelemetryRow): TelemetryRecord {
  const { id, callId, leg, at } = row;
  if (row.kind === 'disconnection') return { id, callId, kind: row.kind, leg, at, cause: row.cause };
  // The table's CHECK guarantees both for an attempt.
  if (row.durationMs === null || row.outcome === null) {
    throw new StoreError(`Telemetry ${String(id)} is an attempt without a duration or outcome.`);
  }
  return { id, callId, kind: row.kind, leg, at, durationMs: row.durationMs, outcome: row.outcome };
}

export const actorSnapshots: Table<ActorSnapshotRecord> = {
  name: 'actor_snapshots',
  key: 'actorId',
  fields: {
    actorId: asIs(),
    kind: asIs(),
    requestId: asIs(),
    callId: asIs(),
    snapshot: json('snapshot'),
    outbox: jsonArray('outbox'),
    updatedAt: asIs(),
  },
};

export const revokedTokens: Table<RevokedTokenRecord> = {
  name: 'revoked_tokens',
  key: 'jti',
  fields: { jti: asIs(), expiresAt: asIs(), revokedAt: asIs() },
};
