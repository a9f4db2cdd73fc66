/**
 * The simulation kit shared by the gossip and IPAM simulations: a seeded random source, a
 * simulated clock whose timers fire in order as time is stepped, and the links a connection
 * maker would add to join components.
 */
import type { Clock, TimerHandle } from '../src/core/clock.js';

/** mulberry32: small, fast, good enough for a simulation. */
export class Prng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  sample<T>(xs: readonly T[], k: number): T[] {
    const a = [...xs];
    for (let i = 0; i < Math.min(k, a.length); i++) {
      const j = i + this.int(a.length - i);
      [a[i], a[j]] = [a[j]!, a[i]!];
    }
    return a.slice(0, Math.min(k, a.length));
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
}

/** A clock the simulation moves; `FakeClock` (test/fakes) fits too. */
export interface SteppableClock extends Clock {
  advance(ms: number): void;
}

interface Timer {
  at: number;
  seq: number;
  every: number;
  fn: () => void;
  live: boolean;
}

/**
 * A fake clock with a binary heap of timers (thousands of peers, each with a few timers). Fires in
 * the same order as test/fakes FakeClock: by time, then by creation.
 */
export class HeapClock implements SteppableClock {
  private t = 0;
  private seq = 0;
  private readonly heap: Timer[] = [];
  now(): number {
    return this.t;
  }
  wallNow(): number {
    return Date.UTC(2026, 0, 1) + this.t;
  }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    return this.add(fn, ms, 0);
  }
  setInterval(fn: () => void, ms: number): TimerHandle {
    return this.add(fn, ms, Math.max(ms, 1));
  }
  advance(ms: number): void {
    const end = this.t + ms;
    for (let top = this.heap[0]; top !== undefined && top.at <= end; top = this.heap[0]) {
      this.pop();
      if (!top.live) continue;
      this.t = top.at;
      if (top.every > 0) {
        top.at += top.every; // keeps its seq: ties go to the older timer, as in FakeClock
        this.push(top);
      } else top.live = false;
      top.fn();
    }
    this.t = end;
  }
  private add(fn: () => void, ms: number, every: number): TimerHandle {
    const tm: Timer = { at: this.t + Math.max(ms, 0), seq: ++this.seq, every, fn, live: true };
    this.push(tm);
    return { cancel: () => (tm.live = false) };
  }
  private less(a: Timer, b: Timer): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }
  private push(tm: Timer): void {
    const h = this.heap;
    h.push(tm);
    for (let i = h.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }
  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    for (let i = 0; ; ) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
      if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
}

/**
 * The links a connection maker adds: one from a random member of every smaller component to a
 * random member of the largest one of its side (`sideOf`; one side by default).
 */
export function repairLinks<T>(components: T[][], sideOf: (x: T) => number, rng: Prng): (readonly [T, T])[] {
  const main = new Map<number, T[]>();
  const pairs: (readonly [T, T])[] = [];
  for (const c of [...components].sort((a, b) => b.length - a.length)) {
    const side = sideOf(c[0]!);
    const m = main.get(side);
    if (m === undefined) main.set(side, c);
    else pairs.push([rng.pick(c), rng.pick(m)]);
  }
  return pairs;
}
