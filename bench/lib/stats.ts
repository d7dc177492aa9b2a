/** Order statistics for benchmark samples. Medians are what the reports quote; p99 where a tail matters. */

/** The q-quantile (0..1) by linear interpolation between closest ranks; null for no samples. */
export function quantile(samples: readonly number[], q: number): number | null {
  if (samples.length === 0) return null;
  return sortedQuantile([...samples].sort((a, b) => a - b), q);
}

function sortedQuantile(sorted: readonly number[], q: number): number {
  const position = (sorted.length - 1) * Math.min(1, Math.max(0, q));
  const lower = Math.floor(position);
  const upper = Math.ceil(position);
  return sorted[lower]! + (sorted[upper]! - sorted[lower]!) * (position - lower);
}

export const median = (samples: readonly number[]) => quantile(samples, 0.5);

export interface Summary {
  n: number;
  min: number | null;
  p50: number | null;
  p90: number | null;
  p99: number | null;
  max: number | null;
}

/** Smallest and largest by a loop: spreading a long run's samples as arguments overflows the call stack. */
export function extent(values: readonly number[]): { min: number; max: number } | null {
  if (values.length === 0) return null;
  let min = values[0]!;
  let max = values[0]!;
  for (const value of values) {
    if (value < min) min = value;
    if (value > max) max = value;
  }
  return { min, max };
}

export function summarize(samples: readonly number[]): Summary {
  if (samples.length === 0) return { n: 0, min: null, p50: null, p90: null, p99: null, max: null };
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    n: sorted.length,
    min: sorted[0]!,
    p50: sortedQuantile(sorted, 0.5),
    p90: sortedQuantile(sorted, 0.9),
    p99: sortedQuantile(sorted, 0.99),
    max: sorted[sorted.length - 1]!,
  };
}

/** a / b, or null when either is missing or b is zero. */
export function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  if (a === null || a === undefined || b === null || b === undefined || b === 0) return null;
  return a / b;
}

/** Counts of `samples` in buckets of `width` starting at `start`; the last bucket holds everything beyond. */
export function histogram(samples: readonly number[], width: number, start = 0): { from: number; to: number; count: number }[] {
  if (samples.length === 0) return [];
  const top = extent(samples)!.max;
  const buckets = Math.max(1, Math.floor((top - start) / width) + 1);
  const counts = new Array<number>(buckets).fill(0);
  for (const sample of samples) counts[Math.min(buckets - 1, Math.max(0, Math.floor((sample - start) / width)))]! += 1;
  return counts.map((count, i) => ({ from: start + i * width, to: start + (i + 1) * width, count }));
}
