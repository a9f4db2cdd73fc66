import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IntervalSet } from '../../src/ipam/intervals.js';

/** Naive model: the set of offsets, for a space of 64. */
function model(s: Set<number>): [bigint, bigint][] {
  const out: [bigint, bigint][] = [];
  for (let i = 0; i < 64; i++) {
    if (!s.has(i)) continue;
    const last = out.at(-1);
    if (last !== undefined && last[1] === BigInt(i)) last[1]++;
    else out.push([BigInt(i), BigInt(i + 1)]);
  }
  return out;
}

describe('IntervalSet', () => {
  it('matches a naive set under random add / remove / takeFirst', () => {
    const op = fc.record({ kind: fc.constantFrom('add', 'remove', 'take'), a: fc.integer({ min: 0, max: 63 }), len: fc.integer({ min: 0, max: 20 }) });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const s = new IntervalSet();
        const m = new Set<number>();
        for (const o of ops) {
          const b = Math.min(64, o.a + o.len);
          if (o.kind === 'add') {
            s.add(BigInt(o.a), BigInt(b));
            for (let i = o.a; i < b; i++) m.add(i);
          } else if (o.kind === 'remove') {
            s.remove(BigInt(o.a), BigInt(b));
            for (let i = o.a; i < b; i++) m.delete(i);
          } else {
            const first = [...m].sort((x, y) => x - y)[0];
            expect(s.takeFirst()).toBe(first === undefined ? undefined : BigInt(first));
            if (first !== undefined) m.delete(first);
          }
          expect(s.intervals()).toEqual(model(m));
          expect(s.size).toBe(BigInt(m.size));
          expect(s.has(BigInt(o.a))).toBe(m.has(o.a));
          expect(s.covers(BigInt(o.a), BigInt(b))).toBe(Array.from({ length: b - o.a }, (_, k) => o.a + k).every((x) => m.has(x)));
          expect(s.within(BigInt(o.a), BigInt(b))).toEqual(model(new Set([...m].filter((x) => x >= o.a && x < b))));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('finds the largest run and subtracts sets', () => {
    const s = IntervalSet.of([[0n, 4n], [10n, 20n], [30n, 40n]]);
    expect(s.largest()).toEqual([10n, 20n]);
    expect(s.minus(IntervalSet.of([[2n, 12n]])).intervals()).toEqual([[0n, 2n], [12n, 20n], [30n, 40n]]);
    expect(new IntervalSet().largest()).toBeUndefined();
  });
});
