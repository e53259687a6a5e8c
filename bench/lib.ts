// Shared benchmark vocabulary. Each bench module default-exports a function that returns rows;
// bench/run.ts runs them all, prints a table and writes bench/results.json.

export interface BenchRow {
  name: string;
  unit: string;
  median: number;
  p99?: number;
  /** The peer this row is compared with, when it is one (e.g. "raw node:sqlite inserts"). */
  peer?: string;
  /** The target from the issue, e.g. ">= 100000". */
  target?: string;
}

export interface BenchContext {
  /** A scratch directory removed after the run. */
  tmpDir: string;
  /** PostgreSQL URL for benches that need it. */
  postgresUrl: string;
  /** Repetitions for medians (REWIND_BENCH_RUNS, default 5). */
  runs: number;
  log(message: string): void;
}

export type Bench = (context: BenchContext) => Promise<BenchRow[]>;

export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const position = (sorted.length - 1) * q;
  const lower = Math.floor(position);
  const upper = Math.ceil(position);
  return sorted[lower]! + (sorted[upper]! - sorted[lower]!) * (position - lower);
}
