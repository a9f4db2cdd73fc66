/**
 * The shared law suite for `GossipData` (ARCHITECTURE.md "Main contracts"): every implementation
 * calls `checkGossipDataLaws` with an arbitrary of factories (each call builds a fresh, equal
 * instance, since `merge` mutates its receiver). States are compared by their encoding.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { GossipData } from '../../src/mesh/contracts.js';

export interface LawOptions {
  numRuns?: number;
}

function enc(x: GossipData): Buffer {
  return Buffer.from(x.encode());
}

export function checkGossipDataLaws<T extends GossipData>(name: string, arbitrary: fc.Arbitrary<() => T>, options: LawOptions = {}): void {
  const params = { numRuns: options.numRuns ?? 200 };

  describe(`${name} obeys the GossipData laws`, () => {
    it('factories build equal states (precondition)', () => {
      fc.assert(
        fc.property(arbitrary, (a) => {
          expect(enc(a())).toEqual(enc(a()));
        }),
        params,
      );
    });

    it('merge is commutative: a ⊔ b = b ⊔ a', () => {
      fc.assert(
        fc.property(arbitrary, arbitrary, (a, b) => {
          const ab = a();
          ab.merge(b());
          const ba = b();
          ba.merge(a());
          expect(enc(ab)).toEqual(enc(ba));
        }),
        params,
      );
    });

    it('merge is associative: (a ⊔ b) ⊔ c = a ⊔ (b ⊔ c)', () => {
      fc.assert(
        fc.property(arbitrary, arbitrary, arbitrary, (a, b, c) => {
          const left = a();
          left.merge(b());
          left.merge(c());
          const bc = b();
          bc.merge(c());
          const right = a();
          right.merge(bc);
          expect(enc(left)).toEqual(enc(right));
        }),
        params,
      );
    });

    it('merge is idempotent: merging what is already in yields no delta', () => {
      fc.assert(
        fc.property(arbitrary, arbitrary, (a, b) => {
          const x = a();
          expect(x.merge(a())).toBeUndefined();
          x.merge(b());
          const once = enc(x);
          expect(x.merge(b())).toBeUndefined();
          expect(enc(x)).toEqual(once);
        }),
        params,
      );
    });

    it('the delta carries exactly the change: old ⊔ delta = old ⊔ other', () => {
      fc.assert(
        fc.property(arbitrary, arbitrary, (a, b) => {
          const merged = a();
          const delta = merged.merge(b());
          const old = a();
          if (delta === undefined) {
            expect(enc(merged)).toEqual(enc(old));
            return;
          }
          expect(enc(merged)).not.toEqual(enc(old));
          old.merge(delta);
          expect(enc(old)).toEqual(enc(merged));
          // Nothing in the delta is news to the merged state.
          expect(merged.merge(delta)).toBeUndefined();
        }),
        params,
      );
    });
  });
}
