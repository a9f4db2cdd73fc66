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
