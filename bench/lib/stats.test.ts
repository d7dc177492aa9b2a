import { describe, expect, it } from 'vitest';
import { extent, histogram, quantile, summarize } from './stats.ts';

describe('bench statistics', () => {
  it('summarizes a million samples without spreading them onto the call stack', () => {
    const samples = Array.from({ length: 1_000_000 }, (_, i) => (i * 7919) % 1_000_000);
    const summary = summarize(samples);
    expect(summary).toEqual({ n: 1_000_000, min: 0, p50: 499_999.5, p90: 899_999.1, p99: expect.closeTo(989_999.01, 6), max: 999_999 });
    expect(histogram(samples, 100_000).map((bucket) => bucket.count)).toEqual(new Array(10).fill(100_000));
  });

  it('agrees with quantile and reports nothing for no samples', () => {
    const samples = [5, 1, 4, 2, 3];
    expect(summarize(samples)).toEqual({ n: 5, min: 1, p50: quantile(samples, 0.5), p90: quantile(samples, 0.9), p99: quantile(samples, 0.99), max: 5 });
    expect(summarize([])).toEqual({ n: 0, min: null, p50: null, p90: null, p99: null, max: null });
    expect(extent([])).toBeNull();
    expect(extent([-3, 8, 0])).toEqual({ min: -3, max: 8 });
  });
});
