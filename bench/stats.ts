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
