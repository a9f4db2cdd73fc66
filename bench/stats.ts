import { percentile } from '../lab/traffic-parse.js';

export function median(xs: readonly number[]): number {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}

export function pct(x: number, ref: number): string {
  return Number.isFinite(x) && ref > 0 ? `${Math.round((x / ref) * 100)}%` : '–';
}

export function fmt(x: number, digits = 2): string {
  return Number.isFinite(x) ? x.toFixed(digits) : '–';
}

/** Nearest-rank percentile of unsorted samples (the lab's definition, as for ping). */
export function pctl(xs: readonly number[], p: number): number {
  return percentile([...xs].sort((a, b) => a - b), p);
}

export interface Summary {
  /** Finite samples counted. */
  n: number;
  p50: number;
  p99: number;
  min: number;
  max: number;
}

/** p50 / p99 (nearest rank) / min / max of the finite samples; NaN everywhere when there are none. */
export function summarize(xs: readonly number[]): Summary {
  const v = xs.filter((x) => Number.isFinite(x));
  if (v.length === 0) return { n: 0, p50: NaN, p99: NaN, min: NaN, max: NaN };
  return { n: v.length, p50: pctl(v, 50), p99: pctl(v, 99), min: Math.min(...v), max: Math.max(...v) };
}

/** One probe of a prober: when it was sent (wall ms) and whether it was answered. */
export interface ProbeSample {
  sentMs: number;
  ok: boolean;
}

/** When a change took effect, as a prober saw it (ms after the change, `fromMs`). */
export interface Settled {
  /** The first probe of the final streak: the change took effect at or before it was sent. */
  atMs: number;
  /** The last probe of the other state before the streak (NaN when none): the change took effect after it was sent. */
  afterMs: number;
}

/**
 * When the probes of one target settled in state `want` (answered or not) after a change at
 * `fromMs`: the final streak of `want` probes (in the order sent), if it began after `fromMs`
 * and spans at least `holdMs` of send times; undefined while it does not (not settled yet, or
 * the state was already `want` at the change). Probes still in flight are not in `samples`, so a
 * streak is only as recent as its slowest answer.
 */
export function settledAt(samples: readonly ProbeSample[], fromMs: number, want: boolean, holdMs: number): Settled | undefined {
  const v = [...samples].sort((a, b) => a.sentMs - b.sentMs);
  let i = v.length;
  while (i > 0 && v[i - 1]!.ok === want) i--;
  if (i === v.length) return undefined;
  const first = v[i]!;
  const last = v[v.length - 1]!;
  if (i === 0 || first.sentMs < fromMs || last.sentMs - first.sentMs < holdMs) return undefined;
  return { atMs: first.sentMs - fromMs, afterMs: v[i - 1]!.sentMs - fromMs };
}
