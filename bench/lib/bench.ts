/**
 * What every benchmark in `bench/` is and returns. A benchmark is a `bench/<name>.bench.ts` module whose
 * default export is a `Benchmark`; `bench/run.ts` finds, runs, prints and stores them.
 */
export interface BenchContext {
  /** The smoke mode: the same code paths with the fewest repetitions and smallest loads. */
  quick: boolean;
  /** Progress lines; the runner prefixes them with the benchmark's name. */
  log: (line: string) => void;
  /** A directory the benchmark may write scratch files into; removed afterwards. */
  scratchDir: string;
}

/** One reported figure, against its baseline (measured in the same run) and its target. */
export interface Figure {
  name: string;
  /** The median unless `name` says otherwise; null when it could not be measured (say why in `note`). */
  value: number | null;
  unit: string;
  baseline?: { name: string; value: number | null };
  /** value / baseline.value. */
  ratio?: number | null;
  /** The target in words, e.g. `≤ 1000 ms`. */
  target?: string;
  /** Whether the target was met; null when there is no target or no value. */
  met?: boolean | null;
  note?: string;
}

export interface BenchOutcome {
  figures: Figure[];
  /** The raw measurements: every run, sample and setting the figures come from. */
  data: unknown;
  /** Plots drawn from `data`: file name (written next to the results) and SVG text. */
  plots?: { file: string; svg: string }[];
}

export interface Benchmark {
  name: string;
  title: string;
  run(context: BenchContext): Promise<BenchOutcome>;
}

export interface BenchResult extends BenchOutcome {
  name: string;
  title: string;
  quick: boolean;
  startedAt: string;
  durationMs: number;
  machine: { cpus: number; cpuModel: string; memoryGiB: number; node: string; platform: string };
}

/** `met` for a figure whose value must not exceed `limit`. */
export const atMost = (value: number | null, limit: number): boolean | null => (value === null ? null : value <= limit);
/** `met` for a figure whose value must reach `floor`. */
export const atLeast = (value: number | null, floor: number): boolean | null => (value === null ? null : value >= floor);
