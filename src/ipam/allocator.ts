/**
 * One peer's addresses in one space, inside what the ring says it owns.
 *
 *   owned        what the ring gives this peer (synced after every ring change)
 *   fresh        owned offsets never handed out here: allocation takes the lowest (a cursor per
 *                run, so a /12 or a /64 is never enumerated)
 *   released     offsets handed out before and released, in release order with the release time:
 *                quarantined for `quarantineMs`, then the least recently released is reused
 *                once `fresh` is empty
 *   allocated    offset → allocation key
 *   held         reclaimed runs (from a forgotten peer) not allocatable until their time is up
 *   reserved     the IPv4 network and broadcast addresses of the whole space, never handed out
 *
 * Memory follows the number of runs, allocations and releases, never the size of the space.
 * An allocated offset outside `owned` is a conflict (the ring moved it away, or this peer was
 * forgotten); it stays allocated until released and is reported.
 */
import { IntervalSet, type Interval } from './intervals.js';
import { reservedOffsets, type AddressSpace } from './space.js';

export interface Held {
  readonly start: bigint;
  readonly end: bigint;
  /** Clock time (ms) when the run becomes allocatable. */
  readonly until: number;
}

export interface SpaceCounts {
  free: bigint;
  allocated: bigint;
  quarantined: bigint;
  reserved: bigint;
  held: bigint;
  owned: bigint;
}

export class SpaceAllocator {
  readonly space: AddressSpace;
  readonly quarantineMs: number;
  private owned = new IntervalSet();
  private readonly fresh = new IntervalSet();
  private readonly released = new Map<bigint, number>();
  private readonly allocated = new Map<bigint, string>();
  private held: Held[] = [];
  private readonly reserved: bigint[];

  constructor(space: AddressSpace, quarantineMs: number) {
    this.space = space;
    this.quarantineMs = quarantineMs;
    this.reserved = reservedOffsets(space);
  }

  /** Adopts the ring's view of what this peer owns; returns whether anything changed. */
  sync(owned: readonly Interval[]): boolean {
    const next = IntervalSet.of(owned);
    if (next.equals(this.owned)) return false;
    const lost = this.owned.minus(next);
    const gained = next.minus(this.owned);
    this.owned = next;
    for (const [a, b] of lost.intervals()) this.fresh.remove(a, b);
    if (!lost.isEmpty()) {
      for (const off of [...this.released.keys()]) if (lost.has(off)) this.released.delete(off);
      this.held = this.held.flatMap((h) => next.within(h.start, h.end).map(([s, e]) => ({ start: s, end: e, until: h.until })));
    }
    for (const [a, b] of gained.intervals()) this.addFresh(a, b);
    return true;
  }

  /** Adds [a, b) to fresh minus whatever is allocated, released, held or reserved in it. */
  private addFresh(a: bigint, b: bigint): void {
    this.fresh.add(a, b);
    for (const h of this.held) this.fresh.remove(h.start, h.end);
    for (const r of this.reserved) this.fresh.remove(r, r + 1n);
    if (this.allocated.size + this.released.size > 0) {
      for (const off of this.allocated.keys()) if (off >= a && off < b) this.fresh.remove(off, off + 1n);
      for (const off of this.released.keys()) if (off >= a && off < b) this.fresh.remove(off, off + 1n);
    }
  }

  /** Makes reclaimed runs unallocatable until `until`. */
  hold(runs: readonly Interval[], until: number): void {
    for (const [a, b] of runs) {
      this.held.push({ start: a, end: b, until });
      this.fresh.remove(a, b);
    }
  }

  /** Whether [a, b) lies inside one hold. */
  heldWhole(a: bigint, b: bigint): boolean {
    return this.held.some((h) => h.start <= a && h.end >= b);
  }

  /** Releases holds whose time is up; returns whether any did. */
  expireHolds(now: number): boolean {
    const done = this.held.filter((h) => h.until <= now);
    if (done.length === 0) return false;
    this.held = this.held.filter((h) => h.until > now);
    for (const h of done) for (const [a, b] of this.owned.within(h.start, h.end)) this.addFresh(a, b);
    return true;
  }

  /** Hands out the best free offset (never used first, then least recently released) or undefined. */
  allocate(key: string, now: number): bigint | undefined {
    let off = this.fresh.takeFirst();
    if (off === undefined) {
      const first = this.released.entries().next();
      if (first.done === true || now - first.value[1] < this.quarantineMs) return undefined;
      off = first.value[0];
      this.released.delete(off);
    }
    this.allocated.set(off, key);
    return off;
  }

  /** Frees an allocated offset into quarantine (dropped when it is not ours any more). */
  release(off: bigint, now: number): void {
    if (!this.allocated.delete(off)) return;
    if (this.owned.has(off)) this.released.set(off, now);
  }

  /** Restores an allocation from persisted state (before the first `sync`). */
  restoreAllocated(off: bigint, key: string): void {
    this.allocated.set(off, key);
  }

  /** Restores a release from persisted state, in release order (before the first `sync`). */
  restoreReleased(off: bigint, at: number): void {
    this.released.set(off, at);
  }

  restoreHeld(h: Held): void {
    this.held.push(h);
  }

  /** Whether at least `n` offsets are allocatable now. */
  hasFree(now: number, n = 1): boolean {
    if (this.fresh.size >= BigInt(n)) return true;
    let k = Number(this.fresh.size);
    for (const at of this.released.values()) {
      if (now - at < this.quarantineMs) return false;
      if (++k >= n) return true;
    }
    return false;
  }

  owns(off: bigint): boolean {
    return this.owned.has(off);
  }

  /**
   * What to give a peer that asks: the upper half of the longest never-used run (at least one
   * address; never the last free one while `keepLast`).
   */
  donatable(now: number, keepLast: boolean): Interval | undefined {
    const run = this.fresh.largest();
    if (run === undefined) return undefined;
    const len = run[1] - run[0];
    const give = len >= 2n ? len / 2n : keepLast && !this.hasFree(now, 2) ? 0n : 1n;
    return give === 0n ? undefined : [run[1] - give, run[1]];
  }

  ownedRuns(): Interval[] {
    return this.owned.intervals();
  }

  heldRuns(): readonly Held[] {
    return this.held;
  }

  /** Released offsets with their release times, oldest first. */
  releasedEntries(): [bigint, number][] {
    return [...this.released.entries()];
  }

  /** Allocated offsets this peer does not own (anymore). */
  conflicts(): bigint[] {
    return [...this.allocated.keys()].filter((o) => !this.owned.has(o));
  }

  counts(now: number): SpaceCounts {
    let quarantined = 0n;
    let expired = 0n;
    for (const at of this.released.values()) {
      if (now - at < this.quarantineMs) quarantined++;
      else expired++;
    }
    let allocated = 0n;
    for (const off of this.allocated.keys()) if (this.owned.has(off)) allocated++;
    let held = 0n;
    for (const h of this.held) for (const [a, b] of this.owned.within(h.start, h.end)) held += b - a;
    const reserved = BigInt(this.reserved.filter((r) => this.owned.has(r)).length);
    return { free: this.fresh.size + expired, allocated, quarantined, reserved, held, owned: this.owned.size };
  }
}
