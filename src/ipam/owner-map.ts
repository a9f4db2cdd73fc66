/**
 * Who held each offset of a space, as runs covering [0, size) without gaps: `starts[i]` begins a
 * run held by `owners[i]` that ends where the next begins. 'unknown': nobody known (custody.ts).
 * Memory follows the number of runs, never the size of the space.
 */
import type { PeerName } from '../mesh/contracts.js';

export type Holder = PeerName | 'unknown';

export interface Run {
  readonly start: bigint;
  readonly end: bigint;
  readonly owner: Holder;
}

export class OwnerMap {
  readonly size: bigint;
  private starts: bigint[];
  private owners: Holder[];

  constructor(size: bigint, owner: Holder = 'unknown') {
    this.size = size;
    this.starts = [0n];
    this.owners = [owner];
  }

  /** A map from runs (sorted, covering [0, size) or not: what they leave out is 'unknown'). */
  static of(size: bigint, runs: Iterable<Run>): OwnerMap {
    const m = new OwnerMap(size);
    for (const r of runs) m.set(r.start, r.end, r.owner);
    return m;
  }

  /** Index of the run containing `x`. */
  private find(x: bigint): number {
    let lo = 0;
    let hi = this.starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.starts[mid]! <= x) lo = mid + 1;
      else hi = mid;
    }
    return lo - 1;
  }

  private endOf(i: number): bigint {
    return this.starts[i + 1] ?? this.size;
  }

  /** The runs of [a, b), cut to it. */
  runs(a: bigint, b: bigint): Run[] {
    const out: Run[] = [];
    for (let i = this.find(a); i < this.starts.length && this.starts[i]! < b; i++) {
      const s = this.starts[i]! > a ? this.starts[i]! : a;
      const e = this.endOf(i) < b ? this.endOf(i) : b;
      if (s < e) out.push({ start: s, end: e, owner: this.owners[i]! });
    }
    return out;
  }

  /** Every run. */
  all(): Run[] {
    return this.runs(0n, this.size);
  }

  /** [a, b) is held by `owner` from now on. */
  set(a: bigint, b: bigint, owner: Holder): void {
    if (a < 0n) a = 0n;
    if (b > this.size) b = this.size;
    if (a >= b) return;
    const i = this.find(a);
    const j = this.find(b - 1n);
    const after = this.owners[j]!;
    const newStarts: bigint[] = [];
    const newOwners: Holder[] = [];
    if (this.starts[i]! < a) {
      newStarts.push(this.starts[i]!);
      newOwners.push(this.owners[i]!);
    }
    newStarts.push(a);
    newOwners.push(owner);
    if (b < this.endOf(j)) {
      newStarts.push(b);
      newOwners.push(after);
    }
    this.starts.splice(i, j - i + 1, ...newStarts);
    this.owners.splice(i, j - i + 1, ...newOwners);
    // Runs of the same holder side by side become one.
    const lo = Math.max(i - 1, 0);
    const hi = Math.min(i + newStarts.length, this.starts.length - 1);
    for (let k = hi; k > lo; k--) {
      if (this.owners[k] === this.owners[k - 1]) {
        this.starts.splice(k, 1);
        this.owners.splice(k, 1);
      }
    }
  }
}
