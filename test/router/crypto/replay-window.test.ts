import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ReplayWindow, WINDOW_BITS } from '../../../src/router/crypto/replay-window.js';

/** The obvious model: remember everything, refuse repeats and counters too far below the top. */
class NaiveWindow {
  private readonly seen = new Set<number>();
  private top = -1;
  accept(c: number): boolean {
    if (this.seen.has(c)) return false;
    if (c <= this.top && this.top - c >= WINDOW_BITS - 32) return false;
    this.seen.add(c);
    this.top = Math.max(this.top, c);
    return true;
  }
}

describe('ReplayWindow', () => {
  it('accepts each counter once', () => {
    const w = new ReplayWindow();
    for (const c of [0, 1, 5, 3, 2, 4]) {
      expect(w.check(c)).toBe(true);
      w.mark(c);
      expect(w.check(c)).toBe(false);
    }
  });

  it('refuses counters too far behind the highest', () => {
    const w = new ReplayWindow();
    w.mark(100_000);
    expect(w.check(100_000 - WINDOW_BITS)).toBe(false);
    expect(w.check(100_000 - 10)).toBe(true);
  });

  it('handles counters beyond 2^32', () => {
    const w = new ReplayWindow();
    const big = 2 ** 40 + 7;
    w.mark(big);
    expect(w.check(big)).toBe(false);
    expect(w.check(big + 1)).toBe(true);
    expect(w.check(big - 1)).toBe(true);
  });

  it('agrees with a naive model on random streams (jumps, reorders, repeats)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.integer({ min: -40, max: 40 }), fc.integer({ min: -6000, max: 9000 })), { minLength: 1, maxLength: 400 }),
        (steps) => {
          const w = new ReplayWindow();
          const m = new NaiveWindow();
          let c = 1000;
          for (const s of steps) {
            c = Math.max(0, c + s);
            const ok = w.check(c);
            if (ok) w.mark(c);
            expect(ok).toBe(m.accept(c));
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
