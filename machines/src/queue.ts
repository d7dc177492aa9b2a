/**
 * The queue's order, a rule across requests that no one request's machine can see: first come, first
 * served, per pool. Pure, so the server only applies it.
 */

export interface Arrival {
  /** When the request was made, in epoch ms. */
  createdAt: number;
}

export interface QueuedRequest extends Arrival {
  pool: string;
}

/**
 * Oldest first. The sort is stable, so requests made in the same millisecond keep the order they were
 * given in (the order they arrived in), rather than the order of their random ids.
 */
export function byArrival<T extends Arrival>(requests: Iterable<T>): T[] {
  return [...requests].sort((a, b) => a.createdAt - b.createdAt);
}

/** Each queued request's place in its pool's line, from 1. */
export function queuePositions<T extends QueuedRequest>(queued: Iterable<T>): Map<T, number> {
  const positions = new Map<T, number>();
  const lengths = new Map<string, number>();
  for (const request of byArrival(queued)) {
    const position = (lengths.get(request.pool) ?? 0) + 1;
    lengths.set(request.pool, position);
    positions.set(request, position);
  }
  return positions;
}
