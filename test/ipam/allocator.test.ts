import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SpaceAllocator } from '../../src/ipam/allocator.js';
import { space } from '../../src/ipam/space.js';

const Q = 1000;
const v4 = space('10.0.0.0/26'); // 64 offsets, 0 and 63 reserved

describe('space allocator', () => {
  it('hands out never-used addresses first, lowest first, skipping network and broadcast', () => {
    const a = new SpaceAllocator(v4, Q);
    a.sync([[0n, 64n]]);
    expect([a.allocate('k1', 0), a.allocate('k2', 0), a.allocate('k3', 0)]).toEqual([1n, 2n, 3n]);
    a.release(2n, 10);
    expect(a.allocate('k4', 20)).toBe(4n); // 2 is quarantined, and never-used ones come first anyway
    expect(a.counts(20)).toMatchObject({ owned: 64n, allocated: 3n, quarantined: 1n, reserved: 2n, free: 58n, held: 0n });
  });

  it('reuses the least recently released address once its quarantine is over', () => {
    const a = new SpaceAllocator(space('10.0.0.0/30'), Q); // offsets 1 and 2 usable
    a.sync([[0n, 4n]]);
    expect(a.allocate('a', 0)).toBe(1n);
    expect(a.allocate('b', 0)).toBe(2n);
    expect(a.allocate('c', 0)).toBeUndefined();
    a.release(2n, 100);
    a.release(1n, 200);
    expect(a.allocate('c', 1099)).toBeUndefined(); // 2 rests until 1100
    expect(a.hasFree(1100)).toBe(true);
    expect(a.allocate('c', 1100)).toBe(2n);
    expect(a.allocate('d', 1150)).toBeUndefined(); // 1 rests until 1200
    expect(a.allocate('d', 1200)).toBe(1n);
  });

  it('donates the upper half of its longest never-used run, and never the last free address while asked to keep it', () => {
    const a = new SpaceAllocator(v4, Q);
    a.sync([[0n, 64n]]);
    expect(a.donatable(0, false)).toEqual([32n, 63n]); // run 1..62 (63 is reserved)
    a.sync([[0n, 3n]]); // owns 0..2: fresh = {1, 2}
    expect(a.donatable(0, true)).toEqual([2n, 3n]);
    a.allocate('x', 0);
    expect(a.donatable(0, true)).toBeUndefined();
    expect(a.donatable(0, false)).toEqual([2n, 3n]);
  });

  it('holds reclaimed runs until their time is up', () => {
    const a = new SpaceAllocator(v4, Q);
    a.sync([[0n, 8n]]);
    a.hold([[8n, 16n]], 500);
    a.sync([[0n, 16n]]);
    expect(a.counts(0)).toMatchObject({ held: 8n, free: 7n });
    for (let i = 0; i < 7; i++) a.allocate(`k${i}`, 0);
    expect(a.allocate('more', 0)).toBeUndefined();
    expect(a.expireHolds(499)).toBe(false);
    expect(a.expireHolds(500)).toBe(true);
    expect(a.allocate('more', 500)).toBe(8n);
  });

  it('reports allocations outside what it owns as conflicts', () => {
    const a = new SpaceAllocator(v4, Q);
    a.sync([[0n, 16n]]);
    a.allocate('a', 0);
    a.allocate('b', 0);
    a.sync([[2n, 16n]]);
    expect(a.conflicts()).toEqual([1n]);
    a.release(1n, 0); // not ours: not quarantined either
    expect(a.conflicts()).toEqual([]);
    expect(a.counts(0).quarantined).toBe(0n);
  });

  type Op = { k: 'alloc' } | { k: 'release'; i: number } | { k: 'advance'; ms: number } | { k: 'gain'; a: number; n: number; hold: boolean } | { k: 'lose'; a: number; n: number };
  const op: fc.Arbitrary<Op> = fc.oneof(
    { weight: 5, arbitrary: fc.constant({ k: 'alloc' as const }) },
    { weight: 3, arbitrary: fc.record({ k: fc.constant('release' as const), i: fc.nat() }) },
    { weight: 2, arbitrary: fc.record({ k: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 700 }) }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('gain' as const), a: fc.integer({ min: 0, max: 63 }), n: fc.integer({ min: 1, max: 16 }), hold: fc.boolean() }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant('lose' as const), a: fc.integer({ min: 0, max: 63 }), n: fc.integer({ min: 1, max: 16 }) }) },
  );

  it('a hold ends with the range: lost and gained again without a hold, the range is allocatable at once', () => {
    // The counterexample a property run found once against an older model (which kept the hold).
    const a = new SpaceAllocator(v4, Q);
    a.hold([[0n, 2n]], 500);
    a.sync([[0n, 2n]]);
    expect(a.allocate('x', 0)).toBeUndefined(); // 0 is reserved (network address), 1 is held
    a.sync([]);
    expect(a.heldRuns()).toEqual([]);
    a.sync([[0n, 2n]]);
    expect(a.allocate('y', 0)).toBe(1n);
  });

  it('matches a naive model (owned set, release order, holds) on random sequences', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 120 }), (ops) => {
        const a = new SpaceAllocator(v4, Q);
        const owned = new Set<number>();
        const allocated = new Map<number, string>();
        let released: [number, number][] = [];
        // Held addresses until when; a hold covers only what is owned (losing a range drops its holds).
        const held = new Map<number, number>();
        let now = 0;
        let seq = 0;
        const runs = () => {
          const out: [bigint, bigint][] = [];
          for (let i = 0; i < 64; i++)
            if (owned.has(i)) {
              const l = out.at(-1);
              if (l && l[1] === BigInt(i)) l[1]++;
              else out.push([BigInt(i), BigInt(i + 1)]);
            }
          return out;
        };
        for (const o of ops) {
          if (o.k === 'alloc') {
            const isHeld = (x: number) => (held.get(x) ?? -1) > now;
            let want: number | undefined;
            for (let x = 1; x < 63 && want === undefined; x++) if (owned.has(x) && !allocated.has(x) && !released.some(([r]) => r === x) && !isHeld(x)) want = x;
            if (want === undefined && released[0] !== undefined && now - released[0][1] >= Q) want = released.shift()![0];
            else if (want !== undefined) released = released.filter(([r]) => r !== want);
            const got = a.allocate(`k${++seq}`, now);
            expect(got === undefined ? undefined : Number(got)).toBe(want);
            if (want !== undefined) allocated.set(want, `k${seq}`);
          } else if (o.k === 'release') {
            const keys = [...allocated.keys()];
            if (keys.length === 0) continue;
            const x = keys[o.i % keys.length]!;
            allocated.delete(x);
            a.release(BigInt(x), now);
            if (owned.has(x)) released.push([x, now]);
          } else if (o.k === 'advance') {
            now += o.ms;
            a.expireHolds(now);
          } else {
            const hi = Math.min(64, o.a + o.n);
            if (o.k === 'gain') {
              const added = [];
              for (let x = o.a; x < hi; x++) if (!owned.has(x)) added.push(x);
              if (o.hold && added.length > 0) {
                for (let x = o.a; x < hi; x++) held.set(x, Math.max(held.get(x) ?? -1, now + 500));
                a.hold([[BigInt(o.a), BigInt(hi)]], now + 500);
              }
              for (const x of added) owned.add(x);
            } else {
              for (let x = o.a; x < hi; x++) owned.delete(x);
              released = released.filter(([r]) => owned.has(r));
              for (const x of [...held.keys()]) if (!owned.has(x)) held.delete(x);
            }
            a.sync(runs());
          }
          expect(a.conflicts().map(Number).sort((x, y) => x - y)).toEqual([...allocated.keys()].filter((x) => !owned.has(x)).sort((x, y) => x - y));
        }
      }),
      { numRuns: 300, seed: -485441599 },
    );
  });
});
