/**
 * A set of offsets as sorted, disjoint, non-adjacent half-open intervals [start, end). Memory is
 * proportional to the number of intervals, never to how many offsets they cover.
 */
export type Interval = readonly [start: bigint, end: bigint];

export class IntervalSet {
  private starts: bigint[] = [];
  private ends: bigint[] = [];
  private total = 0n;

  static of(intervals: Iterable<Interval>): IntervalSet {
    const s = new IntervalSet();
    for (const [a, b] of intervals) s.add(a, b);
    return s;
  }

  /** Offsets in the set. */
  get size(): bigint {
    return this.total;
  }

  isEmpty(): boolean {
    return this.starts.length === 0;
  }

  intervals(): Interval[] {
    return this.starts.map((s, i) => [s, this.ends[i]!] as const);
  }

  clone(): IntervalSet {
    const c = new IntervalSet();
    c.starts = [...this.starts];
    c.ends = [...this.ends];
    c.total = this.total;
    return c;
  }

  /** Index of the first interval whose end is > x. */
  private firstEndingAfter(x: bigint): number {
    let lo = 0;
    let hi = this.ends.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.ends[mid]! > x) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  has(x: bigint): boolean {
    const i = this.firstEndingAfter(x);
    return i < this.starts.length && this.starts[i]! <= x;
  }

  /** Whether [a, b) is entirely inside the set. */
  covers(a: bigint, b: bigint): boolean {
    if (a >= b) return true;
    const i = this.firstEndingAfter(a);
    return i < this.starts.length && this.starts[i]! <= a && this.ends[i]! >= b;
  }

  add(a: bigint, b: bigint): void {
    if (a >= b) return;
    // Intervals touching or overlapping [a, b) merge with it.
    let i = this.firstEndingAfter(a - 1n);
    let j = i;
    let start = a;
    let end = b;
    let removed = 0n;
    while (j < this.starts.length && this.starts[j]! <= b) {
      if (this.starts[j]! < start) start = this.starts[j]!;
      if (this.ends[j]! > end) end = this.ends[j]!;
      removed += this.ends[j]! - this.starts[j]!;
      j++;
    }
    if (i > this.starts.length) i = this.starts.length;
    this.starts.splice(i, j - i, start);
    this.ends.splice(i, j - i, end);
    this.total += end - start - removed;
  }

  remove(a: bigint, b: bigint): void {
    if (a >= b) return;
    const i = this.firstEndingAfter(a);
    let j = i;
    const keepS: bigint[] = [];
    const keepE: bigint[] = [];
    let removed = 0n;
    while (j < this.starts.length && this.starts[j]! < b) {
      const s = this.starts[j]!;
      const e = this.ends[j]!;
      if (s < a) {
        keepS.push(s);
        keepE.push(a);
      }
      if (e > b) {
        keepS.push(b);
        keepE.push(e);
      }
      removed += (e < b ? e : b) - (s > a ? s : a);
      j++;
    }
    if (j === i) return;
    this.starts.splice(i, j - i, ...keepS);
    this.ends.splice(i, j - i, ...keepE);
    this.total -= removed;
  }

  /** The part of the set inside [a, b). */
  within(a: bigint, b: bigint): Interval[] {
    const out: Interval[] = [];
    if (a >= b) return out;
    for (let i = this.firstEndingAfter(a); i < this.starts.length && this.starts[i]! < b; i++) {
      const s = this.starts[i]!;
      const e = this.ends[i]!;
      out.push([s > a ? s : a, e < b ? e : b]);
    }
    return out;
  }

  /** Removes and returns the lowest offset. */
  takeFirst(): bigint | undefined {
    const s = this.starts[0];
    if (s === undefined) return undefined;
    this.remove(s, s + 1n);
    return s;
  }

  /** The longest interval (the lowest one among equals). */
  largest(): Interval | undefined {
    let best = -1;
    let len = 0n;
    for (let i = 0; i < this.starts.length; i++) {
      const l = this.ends[i]! - this.starts[i]!;
      if (l > len) [best, len] = [i, l];
    }
    return best < 0 ? undefined : [this.starts[best]!, this.ends[best]!];
  }

  /** This set minus `other` (a new set). */
  minus(other: IntervalSet): IntervalSet {
    const out = this.clone();
    for (const [a, b] of other.intervals()) out.remove(a, b);
    return out;
  }

  equals(other: IntervalSet): boolean {
    if (other.starts.length !== this.starts.length) return false;
    for (let i = 0; i < this.starts.length; i++) if (this.starts[i] !== other.starts[i] || this.ends[i] !== other.ends[i]) return false;
    return true;
  }
}
