/**
 * A commit's writes, gathered before any database sees them: `fill` records each write as the column
 * values it will store, so a record the caller changes afterwards cannot change the commit, and a value
 * that cannot be stored (JSON that is not JSON) fails the whole commit before anything is written. Each
 * engine turns the list into its own statements, applied in order in one transaction.
 */
import type { Fence, StoreWrites } from './records.ts';
import * as tables from './tables.ts';
import { toColumns, type Table } from './tables.ts';

/** Column values keyed by field name, as `toColumns` gives them (JSON as its text). */
export type Values = Record<string, unknown>;

export const settingFields = ['key', 'value'] as const;
export const agentSeedFields = ['id', 'name', 'email', 'passwordHash', 'pools', 'roles'] as const;
export const requestFields = ['id', 'visitorId', 'visitorName', 'pool', 'state', 'createdAt'] as const;
export const requestPatchFields = ['state', 'endedAt', 'endReason'] as const;
export const callFields = ['id', 'requestId', 'visitorId', 'visitorName', 'agentId', 'pool', 'state', 'startedAt'] as const;
export const callPatchFields = ['state', 'connectedAt', 'endedAt', 'endReason', 'totalPauseMs'] as const;
export const eventFields = ['callId', 'requestId', 'actor', 'type', 'fromState', 'toState', 'cause', 'detail', 'at'] as const;
export const telemetryFields = ['callId', 'kind', 'leg', 'at', 'durationMs', 'outcome', 'cause'] as const;
export const snapshotFields = ['actorId', 'kind', 'requestId', 'callId', 'snapshot', 'outbox', 'updatedAt'] as const;
export const revokedTokenFields = ['jti', 'expiresAt', 'revokedAt'] as const;

export type Write =
  | { op: 'setSetting'; values: Values }
  | { op: 'markAssigned'; id: string; at: unknown }
  | { op: 'createRequest'; values: Values }
  /** `values` holds only the fields the patch gives: the others keep their columns. */
  | { op: 'updateRequest'; id: string; values: Values }
  | { op: 'createCall'; values: Values }
  | { op: 'updateCall'; id: string; values: Values }
  | { op: 'markConnected'; id: string; at: unknown }
  | { op: 'appendEvent'; values: Values }
  | { op: 'appendTelemetry'; values: Values }
  | { op: 'saveSnapshot'; values: Values }
  | { op: 'deleteSnapshot'; actorId: string };

/** The fields of `patch` that are given (null included: it clears the column), as column values. */
function patchValues<R, K extends keyof R & string>(table: Table<R>, fields: readonly K[], patch: Partial<Pick<R, K>>): Values {
  return toColumns(
    table,
    fields.filter((field) => patch[field] !== undefined),
    patch,
  );
}

/** Runs `fill` and answers what it wrote, in order. Throws (writing nothing) when a value cannot be stored. */
export function gatherWrites(fill: (writes: StoreWrites) => void): Write[] {
  const list: Write[] = [];
  let open = true;
  const add = (write: () => Write): void => {
    // A write recorded after `fill` returned would silently miss the transaction.
    if (!open) throw new Error('A write was recorded after its commit was gathered.');
    list.push(write());
  };
  const writes: StoreWrites = {
    settings: {
      set: (key, value) => add(() => ({ op: 'setSetting', values: toColumns(tables.settings, settingFields, { key, value }) })),
    },
    agents: { markAssigned: (id, at) => add(() => ({ op: 'markAssigned', id, at })) },
    requests: {
      create: (request) => add(() => ({ op: 'createRequest', values: toColumns(tables.requests, requestFields, request) })),
      update: (id, patch) =>
        add(() => ({ op: 'updateRequest', id, values: patchValues(tables.requests, requestPatchFields, patch) })),
    },
    calls: {
      create: (call) => add(() => ({ op: 'createCall', values: toColumns(tables.calls, callFields, call) })),
      update: (id, patch) => add(() => ({ op: 'updateCall', id, values: patchValues(tables.calls, callPatchFields, patch) })),
      markConnected: (id, at) => add(() => ({ op: 'markConnected', id, at })),
    },
    events: {
      append: (event) => add(() => ({ op: 'appendEvent', values: toColumns(tables.callEvents, eventFields, event) })),
    },
    telemetry: {
      // A record of one kind leaves the other kind's columns null, whatever else it carries.
      append: (record) =>
        add(() => ({
          op: 'appendTelemetry',
          values: toColumns(
            tables.telemetry,
            telemetryFields,
            record.kind === 'reconnection-attempt' ? { ...record, cause: null } : { ...record, durationMs: null, outcome: null },
          ),
        })),
    },
    snapshots: {
      save: (record) => add(() => ({ op: 'saveSnapshot', values: toColumns(tables.actorSnapshots, snapshotFields, record) })),
      delete: (actorId) => add(() => ({ op: 'deleteSnapshot', actorId })),
    },
  };
  const result: unknown = fill(writes);
  open = false;
  if (typeof (result as { then?: unknown } | undefined)?.then === 'function') {
    throw new TypeError('A commit is filled synchronously: its writes would land outside the transaction.');
  }
  return list;
}

/** A fence must be a request id and a whole token, or the comparison the store makes means nothing. */
export function checkFence(fence: Fence): void {
  if (typeof fence.requestId !== 'string' || fence.requestId === '') throw new TypeError('fence.requestId must be a non-empty string');
  if (!Number.isSafeInteger(fence.token) || fence.token < 0) throw new TypeError('fence.token must be a whole number from 0');
}
