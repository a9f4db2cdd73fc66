import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GossipDecodeError } from '../../../gossip/errors.js';
import { IpamRingConflictError } from '../../../gossip/ipam/errors.js';
import { Ring } from '../../../gossip/ipam/ring.js';
import { decodeRing, encodeRing, pack } from '../../../gossip/ipam/ring-codec.js';
import { checkGossipDataLaws } from '../gossip-data-laws.js';

const P = ['a000000000000001', 'b000000000000002', 'c000000000000003', 'd000000000000004', 'e000000000000005'];
const SEEDS = P.slice(0, 3);
const SPACE = '10.0.0.0/24';

type Op = { kind: 'donate'; by: number; to: number; frac: number } | { kind: 'forget'; peer: number } | { kind: 'materialize'; peer: number } | { kind: 'adopt'; peer: number };

/** Applies ops that are legal in the ring's current view (others are skipped). */
function build(ops: readonly Op[]): Ring {
  const r = Ring.fromGenesis('c1', SPACE, SEEDS);
  for (const op of ops) {
    if (op.kind === 'forget') r.forget(P[op.peer]!);
    else if (op.kind === 'adopt') r.adopt(P[op.peer]!);
    else if (op.kind === 'materialize') r.materialize(P[op.peer]!);
    else {
      const runs = r.ownedBy(P[op.by]!);
      const run = runs[Math.floor(op.frac * runs.length)];
      if (run === undefined || op.by === op.to || r.isTombstoned(P[op.to]!)) continue;
      const len = run[1] - run[0];
      const give = len < 2n ? len : BigInt(Math.max(1, Math.floor(Number(len) * op.frac)));
      r.assign(run[1] - give, run[1], P[op.to]!, P[op.by]!);
    }
  }
  return r;
}

const peer = fc.integer({ min: 0, max: P.length - 1 });
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('donate' as const), by: peer, to: peer, frac: fc.double({ min: 0, max: 0.999, noNaN: true }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('forget' as const), peer }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('materialize' as const), peer }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('adopt' as const), peer }) },
);
const rings = fc.array(op, { maxLength: 25 }).map((ops) => () => build(ops));

checkGossipDataLaws('ipam Ring', rings, { numRuns: 150 });

describe('ring', () => {
  it('genesis is deterministic from the seeds and splits the space near-equally', () => {
    const a = Ring.fromGenesis('c1', SPACE, [SEEDS[2]!, SEEDS[0]!, SEEDS[1]!]);
    const b = Ring.fromGenesis('c1', SPACE, SEEDS);
    expect(Buffer.from(a.encode())).toEqual(Buffer.from(b.encode()));
    expect(a.id).toBe(b.id);
    expect(a.entryList().map((e) => [e.token, e.owner, e.version, e.end])).toEqual([
      [0n, SEEDS[0], 1, 85n],
      [85n, SEEDS[1], 1, 170n],
      [170n, SEEDS[2], 1, 256n],
    ]);
    expect(a.ownedBy(SEEDS[2]!)).toEqual([[170n, 256n]]);
    expect(Ring.fromGenesis('c2', SPACE, SEEDS).id).not.toBe(a.id);
  });

  it('is confirmed once every seed adopted it or was forgotten', () => {
    const r = Ring.fromGenesis('c1', SPACE, SEEDS);
    expect(r.unconfirmedSeeds()).toEqual(SEEDS);
    r.adopt(SEEDS[0]!);
    expect(r.adopt(P[4]!)).toBeUndefined(); // not a seed
    r.forget(SEEDS[1]!);
    expect(r.confirmed()).toBe(false);
    r.adopt(SEEDS[2]!);
    expect(r.confirmed()).toBe(true);
  });

  it('assigns runs, inserting bounding tokens, and only by their owner', () => {
    const r = Ring.fromGenesis('c1', SPACE, SEEDS);
    const d = r.assign(40n, 60n, P[3]!, SEEDS[0]!);
    expect(d.entryList().map((e) => [e.token, e.owner, e.version, e.end])).toEqual([
      [0n, SEEDS[0], 2, 40n], // the split entry is shortened
      [40n, P[3], 1, 60n],
      [60n, SEEDS[0], 1, 85n],
    ]);
    expect(r.ownedBy(SEEDS[0]!)).toEqual([[0n, 40n], [60n, 85n]]);
    expect(r.ownedBy(P[3]!)).toEqual([[40n, 60n]]);
    expect(() => r.assign(30n, 50n, P[4]!, SEEDS[0]!)).toThrow(RangeError);
    // A whole entry changes hands with a version bump.
    r.assign(40n, 60n, P[4]!, P[3]!);
    expect(r.entryList().find((e) => e.token === 40n)).toEqual({ token: 40n, owner: P[4], version: 2, end: 60n });
  });

  it('hands a forgotten peer\u2019s entries to the nearest preceding live owner, once', () => {
    const r = Ring.fromGenesis('c1', SPACE, SEEDS);
    r.assign(200n, 256n, P[3]!, SEEDS[2]!);
    r.forget(SEEDS[0]!);
    expect(r.heir(0)).toBe(P[3]); // wraps around
    expect(r.materialize(SEEDS[1]!)).toBeUndefined();
    const m = r.materialize(P[3]!)!;
    expect(m.taken).toEqual([[0n, 85n]]);
    expect(r.ownedBy(P[3]!)).toEqual([[0n, 85n], [200n, 256n]]);
    expect(r.orphans()).toBe(0);
    expect(r.materialize(P[3]!)).toBeUndefined();
    // A forgotten peer owns nothing: it is fenced.
    r.forget(P[3]!);
    expect(r.ownedBy(P[3]!)).toEqual([]);
    expect(r.materialize(P[3]!)).toBeUndefined();
  });

  it('knows where a run ends even when it missed the gossip that created the next token', () => {
    const owner = Ring.fromGenesis('c1', SPACE, SEEDS);
    const first = owner.assign(40n, 60n, P[3]!, SEEDS[0]!); // lost on its way to P[4]
    void first;
    const second = owner.assign(20n, 40n, P[4]!, SEEDS[0]!);
    const p4 = Ring.fromGenesis('c1', SPACE, SEEDS);
    p4.merge(second);
    expect(p4.ownedBy(P[4]!)).toEqual([[20n, 40n]]);
    expect(p4.ownedBy(SEEDS[0]!)).toEqual([[0n, 20n]]); // and nothing it cannot know about
  });

  it('breaks equal-version ties by the owner that sorts last', () => {
    const a = Ring.fromGenesis('c1', SPACE, SEEDS);
    const b = Ring.fromGenesis('c1', SPACE, SEEDS);
    a.assign(0n, 85n, P[3]!, SEEDS[0]!);
    b.assign(0n, 85n, P[4]!, SEEDS[0]!);
    a.merge(b);
    expect(a.entryList()[0]).toEqual({ token: 0n, owner: P[4], version: 2, end: 85n });
  });

  it('lets a handover win over a reclaim of the same version (an heir with a stale view)', () => {
    const real = Ring.fromGenesis('c1', SPACE, SEEDS);
    const stale = real.clone();
    real.assign(0n, 85n, P[3]!, SEEDS[0]!); // the seed hands its entry over (v2) ...
    real.forget(SEEDS[0]!); // ... and is forgotten later
    stale.forget(SEEDS[0]!); // an heir that never heard of the handover reclaims it (v2 too)
    expect(stale.materialize(SEEDS[2]!)?.taken).toEqual([[0n, 85n]]);
    const a = real.clone();
    a.merge(stale);
    stale.merge(real);
    for (const r of [a, stale]) expect(r.entryList()[0]).toEqual({ token: 0n, owner: P[3], version: 2, end: 85n });
  });

  it('refuses to merge a ring of another genesis', () => {
    const a = Ring.fromGenesis('c1', SPACE, SEEDS);
    const b = Ring.fromGenesis('c1', SPACE, [P[3]!, P[4]!]);
    const before = Buffer.from(a.encode());
    expect(() => a.merge(b)).toThrow(IpamRingConflictError);
    expect(() => a.merge(b)).toThrow(/seeded by \[a000000000000001, b000000000000002, c000000000000003\], the other by \[d000000000000004, e000000000000005\]/);
    expect(Buffer.from(a.encode())).toEqual(before);
  });
});

describe('ring codec', () => {
  it('round-trips rings and deltas, IPv4 and IPv6', () => {
    fc.assert(
      fc.property(rings, (f) => {
        const r = f();
        const p = decodeRing(r.encode());
        const back = Ring.fromParts(p.genesis, p.entries, p.tombstones, p.adopted);
        expect(Buffer.from(back.encode())).toEqual(Buffer.from(r.encode()));
      }),
      { numRuns: 100 },
    );
    const v6 = Ring.fromGenesis('c1', 'fd00::/64', SEEDS);
    v6.assign(1n << 60n, 1n << 61n, P[4]!, SEEDS[0]!);
    const p = decodeRing(v6.encode());
    expect(Buffer.from(Ring.fromParts(p.genesis, p.entries, p.tombstones, p.adopted).encode())).toEqual(Buffer.from(v6.encode()));
  });

  const good = Ring.fromGenesis('c1', SPACE, SEEDS);
  const parts = decodeRing(good.encode());
  const entries = (es: unknown[]) => pack([1, 'c1', SPACE, SEEDS, [], [], es]);
  const tok = (n: number) => Uint8Array.of(0, 0, 0, n);
  const L = tok(9);
  it.each<[string, Uint8Array, string]>([
    ['not msgpack', Uint8Array.of(0x92, 0xc1), 'not a complete msgpack value'],
    ['truncated', good.encode().subarray(0, 20), 'not a complete msgpack value'],
    ['not an array', pack('x'), 'expected an array'],
    ['wrong format', pack([2, 'c1', SPACE, SEEDS, [], [], []]), 'format 2 is not 1'],
    ['missing fields', pack([1, 'c1', SPACE]), 'has 3 fields, expected 7'],
    ['bad space', pack([1, 'c1', '10.0.0.1/24', SEEDS, [], [], []]), 'host bits set'],
    ['space not normal', pack([1, 'c1', 'FD00::/64', SEEDS, [], [], []]), 'not in normal form'],
    ['no seeds', pack([1, 'c1', SPACE, [], [], [], []]), 'has no seeds'],
    ['seeds unsorted', pack([1, 'c1', SPACE, [SEEDS[1], SEEDS[0]], [], [], []]), 'seeds not strictly ascending'],
    ['bad seed name', pack([1, 'c1', SPACE, ['XYZ'], [], [], []]), 'seeds[0] is not a peer name'],
    ['adopted non-seed', pack([1, 'c1', SPACE, SEEDS, [P[4]], [], []]), 'is not a seed'],
    ['token width', entries([[Uint8Array.of(1), SEEDS[0], 1, L]]), 'token is not 4 bytes'],
    ['token outside', entries([[Uint8Array.of(0, 0, 1, 0), SEEDS[0], 1, L]]), 'outside 10.0.0.0/24'],
    ['tokens unsorted', entries([[tok(5), SEEDS[0], 1, L], [tok(5), SEEDS[1], 1, L]]), 'not strictly ascending'],
    ['bad owner', entries([[tok(5), 'nobody', 1, L]]), 'owner is not a peer name'],
    ['bad version', entries([[tok(5), SEEDS[0], 0, L]]), 'version is not a positive integer'],
    ['float version', entries([[tok(5), SEEDS[0], 1.5, L]]), 'version is not a positive integer'],
    ['last before token', entries([[tok(5), SEEDS[0], 1, tok(4)]]), 'last is not in [token, end'],
    ['last width', entries([[tok(5), SEEDS[0], 1, Uint8Array.of(9)]]), 'last is not 4 bytes'],
    ['entry shape', entries([[tok(5), SEEDS[0], 1]]), 'is not [token, owner, version, last(, true)]'],
    ['entry flag', entries([[tok(5), SEEDS[0], 1, L, false]]), 'is not [token, owner, version, last(, true)]'],
  ])('refuses %s without changing the receiver', (_name, data, reason) => {
    const r = Ring.fromGenesis('c1', SPACE, SEEDS);
    const before = Buffer.from(r.encode());
    let err: unknown;
    try {
      const p = decodeRing(data);
      r.merge(Ring.fromParts(p.genesis, p.entries, p.tombstones, p.adopted));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GossipDecodeError);
    expect((err as GossipDecodeError).channel).toBe('ipam');
    expect((err as GossipDecodeError).reason).toContain(reason);
    expect(Buffer.from(r.encode())).toEqual(before);
  });

  it('encodes deterministically', () => {
    expect(Buffer.from(encodeRing(parts, 4))).toEqual(Buffer.from(good.encode()));
  });
});
