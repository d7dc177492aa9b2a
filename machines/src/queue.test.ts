import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { byArrival, queuePositions } from './queue.ts';

describe('the queue order', () => {
  it('numbers each pool from 1, oldest first', () => {
    const a = { id: 'a', pool: 'support', createdAt: 30 };
    const b = { id: 'b', pool: 'sales', createdAt: 10 };
    const c = { id: 'c', pool: 'support', createdAt: 20 };
    const d = { id: 'd', pool: 'support', createdAt: 40 };
    const positions = queuePositions([a, b, c, d]);
    expect([a, b, c, d].map((request) => positions.get(request))).toEqual([2, 1, 1, 3]);
  });

  it('keeps requests of the same millisecond in the order they came', () => {
    const requests = ['x', 'y', 'z'].map((id) => ({ id, pool: 'support', createdAt: 5 }));
    expect(byArrival(requests).map((request) => request.id)).toEqual(['x', 'y', 'z']);
    expect([...queuePositions(requests).values()]).toEqual([1, 2, 3]);
  });

  it('gives every pool the positions 1..n, with no one who came later ahead of someone earlier', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ pool: fc.constantFrom('a', 'b', 'c'), createdAt: fc.integer({ min: 0, max: 20 }) })), (requests) => {
        const positions = queuePositions(requests);
        for (const pool of ['a', 'b', 'c']) {
          const inPool = requests.filter((request) => request.pool === pool);
          expect(inPool.map((request) => positions.get(request)).sort((x, y) => x! - y!)).toEqual(inPool.map((_, i) => i + 1));
          for (const earlier of inPool) {
            for (const later of inPool) {
              if (earlier.createdAt < later.createdAt) expect(positions.get(earlier)!).toBeLessThan(positions.get(later)!);
            }
          }
        }
      }),
    );
  });
});
