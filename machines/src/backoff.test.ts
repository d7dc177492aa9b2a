import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { baseDelay, jitterFrom, nextRandom, retryDelay, seedRandom } from './backoff.ts';

const policy = { initialDelay: 1000, maxDelay: 30000, maxJitter: 500 };

describe('backoff policy', () => {
  it('doubles from initialDelay up to maxDelay', () => {
    expect(Array.from({ length: 8 }, (_, n) => baseDelay(n, policy))).toEqual([
      1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000,
    ]);
  });

  it('stays finite and capped for huge attempt numbers', () => {
    expect(baseDelay(5000, policy)).toBe(30000);
    expect(baseDelay(Number.MAX_SAFE_INTEGER, policy)).toBe(30000);
  });

  it('jitter is an integer in [0, maxJitter), and 0 when jitter is off', () => {
    expect(jitterFrom(0, 500)).toBe(0);
    expect(jitterFrom(0.999999, 500)).toBe(499);
    expect(jitterFrom(0.5, 0)).toBe(0);
  });

  it('retryDelay = baseDelay + jitter, always within [base, base + maxJitter)', () => {
    fc.assert(
      fc.property(fc.nat(100), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (attempt, random) => {
        const base = baseDelay(attempt, policy);
        const delay = retryDelay(attempt, policy, random);
        expect(delay).toBeGreaterThanOrEqual(base);
        expect(delay).toBeLessThan(base + policy.maxJitter);
        expect(Number.isInteger(delay)).toBe(true);
      }),
    );
  });
});

describe('seeded PRNG', () => {
  it('draws uniform values in [0, 1) and is deterministic per state', () => {
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        const state = seedRandom(seed);
        const a = nextRandom(state);
        expect(a).toEqual(nextRandom(state));
        expect(a.value).toBeGreaterThanOrEqual(0);
        expect(a.value).toBeLessThan(1);
        expect(Number.isInteger(a.state) && a.state >= 0 && a.state <= 0xffffffff).toBe(true);
      }),
    );
  });

  it('spreads draws across the range', () => {
    let state = seedRandom(12345);
    const buckets = new Array<number>(10).fill(0);
    for (let i = 0; i < 10000; i++) {
      const draw = nextRandom(state);
      state = draw.state;
      buckets[Math.floor(draw.value * 10)]!++;
    }
    for (const count of buckets) expect(count).toBeGreaterThan(850);
  });

  it('normalises any seed to a uint32 state', () => {
    expect(seedRandom(-1)).toBe(0xffffffff);
    expect(seedRandom(2 ** 32 + 5)).toBe(5);
    expect(seedRandom(Number.NaN)).toBe(0);
    expect(seedRandom(3.7)).toBe(3);
  });
});
