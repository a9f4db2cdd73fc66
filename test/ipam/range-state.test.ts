import { describe, expect, it } from 'vitest';
import { RangeState } from '../../src/ipam/range-state.js';
import { Ring } from '../../src/ipam/ring.js';
import { space } from '../../src/ipam/space.js';
import { parseState, snapshotState } from '../../src/ipam/state-file.js';
import { FakeClock } from '../fakes/fake-clock.js';
import { fastWriters, names } from './keys.js';

const P = [...names.slice(0, 4)].sort();
const W = P.map((n) => fastWriters.find((w) => w.name === n)!);
const SEEDS = P.slice(0, 2);
const SPACES = [space('10.0.0.0/24'), space('fd00:1::/120')];

function ranges(): RangeState[] {
  return SPACES.map((s, i) => new RangeState(s, i, 1000));
}

/** The genesis ring of `cidr`, adopted by both seeds (confirmed). */
function confirmed(cidr: string): Ring {
  const ring = Ring.fromGenesis('c1', cidr, SEEDS);
  ring.adopt(W[0]!);
  ring.adopt(W[1]!);
  return ring;
}

const hex = (b: Uint8Array | undefined): string => Buffer.from(b ?? []).toString('hex');

describe('RangeState', () => {
  // Who adopts a ring decides what custody starts from: a seed knows the genesis is right.
  it.each([
    { who: 'a seed', self: 0, pending: 0 },
    { who: 'a peer that is not a seed', self: 3, pending: 2 },
  ])('adopting as $who: $pending genesis entries wait for proofs', ({ self, pending }) => {
    const r = ranges()[0]!;
    expect(r.ring).toBeUndefined();
    expect(r.fullState()).toBeUndefined();
    r.adopt(confirmed(r.space.cidr), P[self]!);
    expect(r.custody!.pendingCount()).toBe(pending);
    expect(r.waitsForProofs()).toBe(pending > 0);
    expect(r.syncOwned(P[self]!, false)).toBe(self === 0);
    expect(r.allocator.ownedRuns()).toEqual(self === 0 ? [[0n, 128n]] : []);
  });

  it('knows its own ring in gossip, and only its own', () => {
    const [a, b] = ranges();
    a!.adopt(Ring.fromGenesis('c1', a!.space.cidr, SEEDS), P[0]!);
    b!.adopt(Ring.fromGenesis('c1', b!.space.cidr, SEEDS), P[0]!);
    const bytes = a!.ring!.encode();
    expect(a!.isOurRing(bytes)).toBe(true);
    expect(b!.isOurRing(bytes)).toBe(false);
    expect(hex(a!.fullState())).toBe(hex(bytes));
  });

  it('makes custody bytes again only when custody changed', () => {
    const r = ranges()[0]!;
    r.adopt(Ring.fromGenesis('c1', r.space.cidr, SEEDS), P[0]!);
    const first = r.snapshot().custody;
    expect(r.snapshot().custody).toBe(first);
    const delta = r.ring!.assign(100n, 128n, P[3]!, W[0]!);
    r.wrote(delta, P[0]!);
    const after = r.snapshot().custody;
    expect(after).not.toBe(first);
    expect(r.snapshot().custody).toBe(after);
  });

  it('restores its own part of a state file: ring, custody, allocations, releases', () => {
    const clock = new FakeClock();
    const before = ranges();
    for (const r of before) {
      r.adopt(confirmed(r.space.cidr), P[0]!);
      r.syncOwned(P[0]!, false);
    }
    const v4 = before[0]!.allocator.allocate('a\0eth0', clock.now())!;
    const v6 = before[1]!.allocator.allocate('a\0eth0', clock.now())!;
    const gone = before[1]!.allocator.allocate('b\0eth0', clock.now())!;
    before[1]!.allocator.release(gone, clock.now());
    const bytes = snapshotState({
      clusterId: 'c1',
      self: P[0]!,
      ranges: before.map((r) => r.snapshot()),
      fenced: false,
      allocations: [{ containerId: 'a', ifName: 'eth0', allocatedAt: 0, offsets: [v4, v6] }],
      clock,
    });
    const s = parseState(bytes, 'memory', { clusterId: 'c1', self: P[0]!, ranges: SPACES.map((x) => x.cidr) });
    const after = ranges();
    for (const r of after) r.restore(s, clock.now());
    for (const [i, r] of after.entries()) {
      expect(hex(r.ring!.encode())).toBe(hex(before[i]!.ring!.encode()));
      r.syncOwned(P[0]!, false);
      expect(r.allocator.counts(clock.now())).toEqual(before[i]!.allocator.counts(clock.now()));
    }
    // Written again from the restored ranges, the file is the same.
    expect(hex(snapshotState({ clusterId: 'c1', self: P[0]!, ranges: after.map((r) => r.snapshot()), fenced: false, allocations: s.allocations, clock }))).toBe(hex(bytes));
    expect(after[1]!.allocator.counts(clock.now())).toMatchObject({ allocated: 1n, quarantined: 1n });
  });
});
