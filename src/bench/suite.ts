/**
 * What a benchmark suite is. Each file in `suites/` exports `suite: Suite`; the runner (run.ts)
 * finds them by listing that folder, so a new benchmark (apply, daemon, call control) is one new
 * file and no change to the runner.
 */
import type { Summary } from './stats.js';

export interface Goal {
  /** What the issue asks for, e.g. "≤ 150 ms". */
  text: string;
  /** Met when the judged figure is at most this. */
  max: number;
  /** Which figure is judged (default: median). */
  on?: 'median' | 'max' | 'p99' | 'rss';
}

/** One line of the results table. */
export interface Row {
  suite: string;
  /** What was measured, e.g. "10k render (cold) + write". */
  name: string;
  unit: 'ms' | 'MB';
  stats: Summary;
  /** Peak RSS (MB) of the measured process(es): the largest over the samples. */
  rssMB?: number;
  /** Median CPU time (user + system, ms) of the measured step: steadier than wall time on a busy machine. */
  cpuMs?: number;
  goal?: Goal;
  /** Every sample, in the order taken (kept in results.json, not printed). */
  samples?: number[];
  /** Free-form details (counts, phases) kept in results.json. */
  detail?: Record<string, unknown>;
}

export interface SuiteContext {
  /** Fewer sizes and repetitions (for a quick check, < 1 min in all). */
  quick: boolean;
  /** Package root (where dist/ and .bench/ live). */
  root: string;
  /** Progress lines (stderr), so stdout carries only the table. */
  log(msg: string): void;
}

export interface Suite {
  /** Short name for `--suite NAME`. */
  name: string;
  description: string;
  /** Lower runs first; suites with equal order run by name. */
  order?: number;
  run(ctx: SuiteContext): Promise<Row[]>;
}

export function goalMet(row: Row): boolean | undefined {
  if (!row.goal) return undefined;
  const on = row.goal.on ?? 'median';
  const v = on === 'rss' ? row.rssMB : row.stats[on];
  return v === undefined || Number.isNaN(v) ? undefined : v <= row.goal.max;
}
