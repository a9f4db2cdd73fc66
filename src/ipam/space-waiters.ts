/**
 * Allocations waiting for space in a range, for whatever brings space (asker.ts asks peers,
 * claimer.ts claims blocks through the API): each resolves once its range has a free address or is
 * no longer usable, and fails at its deadline with the error its source gives.
 */
import type { IpamCounters } from './status.js';
import type { RangeState } from './range-state.js';

export interface SpaceWaiter {
  range: RangeState;
  deadline: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

export class SpaceWaiters {
  private waiters: SpaceWaiter[] = [];

  /** A promise that settles as the waiter does (see `wake`). */
  add(range: RangeState, deadline: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiters.push({ range, deadline, resolve, reject });
    });
  }

  get size(): number {
    return this.waiters.length;
  }

  has(range: RangeState): boolean {
    return this.waiters.some((w) => w.range === range);
  }

  count(range: RangeState): number {
    return this.waiters.filter((w) => w.range === range).length;
  }

  /**
   * Resolves the waiters whose range has a free address (or may not be allocated from), rejects
   * those past their deadline with `expired(waiter)` (each counted as exhausted); returns those left.
   */
  wake(now: number, usable: (range: RangeState) => boolean, counters: IpamCounters, expired: (w: SpaceWaiter) => Error): readonly SpaceWaiter[] {
    const keep: SpaceWaiter[] = [];
    for (const w of this.waiters) {
      if (w.range.allocator.hasFree(now, 1) || !usable(w.range)) w.resolve();
      else if (now >= w.deadline) {
        counters.exhausted++;
        w.reject(expired(w));
      } else keep.push(w);
    }
    this.waiters = keep;
    return keep;
  }

  /** Settles every waiter of `range` now: resolved when it has a free address, else rejected with `err` (counted). */
  settleRange(range: RangeState, now: number, counters: IpamCounters, err: () => Error): void {
    const keep: SpaceWaiter[] = [];
    for (const w of this.waiters) {
      if (w.range !== range) keep.push(w);
      else if (range.allocator.hasFree(now, 1)) w.resolve();
      else {
        counters.exhausted++;
        w.reject(err());
      }
    }
    this.waiters = keep;
  }

  rejectAll(err: Error): void {
    for (const w of this.waiters.splice(0)) w.reject(err);
  }
}
