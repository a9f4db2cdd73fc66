import type { Clock, TimerHandle } from '../../src/core/clock.js';

/** A clock that moves only when told; timers fire during `advance`, in time order. */
export class FakeClock implements Clock {
  private t = 0;
  private wall = Date.UTC(2026, 0, 1);
  private seq = 0;
  private readonly timers = new Map<number, { at: number; every: number; fn: () => void }>();

  now(): number {
    return this.t;
  }
  wallNow(): number {
    return this.wall + this.t;
  }
  setWall(ms: number): void {
    this.wall = ms - this.t;
  }
  setInterval(fn: () => void, ms: number): TimerHandle {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + ms, every: ms, fn });
    return { cancel: () => this.timers.delete(id) };
  }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + ms, every: 0, fn });
    return { cancel: () => this.timers.delete(id) };
  }
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let nextId = -1;
      let nextAt = Infinity;
      for (const [id, tm] of this.timers) if (tm.at < nextAt) [nextId, nextAt] = [id, tm.at];
      if (nextId < 0 || nextAt > end) break;
      const tm = this.timers.get(nextId)!;
      this.t = nextAt;
      if (tm.every > 0) tm.at += tm.every;
      else this.timers.delete(nextId);
      tm.fn();
    }
    this.t = end;
  }
}
