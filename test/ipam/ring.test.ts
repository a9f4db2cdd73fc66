import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GossipDecodeError } from '../../src/mesh/errors.js';
import { IpamRingConflictError } from '../../src/ipam/errors.js';
import { Ring, beats, lifeBeats } from '../../src/ipam/ring.js';
import { decodeRing, encodeRing, pack } from '../../src/ipam/ring-codec.js';
import { checkGossipDataLaws } from '../mesh/gossip-data-laws.js';
import { names, plain, writerOf, writers } from './keys.js';

const P = [...names.slice(0, 5)].sort();
const W = P.map(writerOf);
const SEEDS = P.slice(0, 3);
const SPACE = '10.0.0.0/24';

type Op =
  | { kind: 'donate'; by: number; to: number; frac: number }
  | { kind: 'forget'; peer: number; by: number }
  | { kind: 'materialize'; peer: number }
  | { kind: 'adopt'; peer: number }
  | { kind: 'revive'; peer: number };

/** Applies ops that are legal in the ring's current view (others are skipped). */
function build(ops: readonly Op[]): Ring {
  const r = Ring.fromGenesis('c1', SPACE, SEEDS);
  for (const op of ops) {
    if (op.kind === 'forget') {
      if (op.peer !== op.by && !r.isTombstoned(P[op.by]!)) r.forget(P[op.peer]!, W[op.by]!);
    } else if (op.kind === 'adopt') r.adopt(W[op.peer]!);
    else if (op.kind === 'materialize') r.reclaim(W[op.peer]!);
    else if (op.kind === 'revive') r.revive(W[op.peer]!);
    else {
      const runs = r.ownedBy(P[op.by]!);
      const run = runs[Math.floor(op.frac * runs.length)];
      if (run === undefined || op.by === op.to || r.isTombstoned(P[op.to]!)) continue;
      const len = run[1] - run[0];
      const give = len < 2n ? len : BigInt(Math.max(1, Math.floor(Number(len) * op.frac)));
      r.assign(run[1] - give, run[1], P[op.to]!, W[op.by]!);
    }
  }
  return r;
}

const peer = fc.integer({ min: 0, max: P.length - 1 });
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('donate' as const), by: peer, to: peer, frac: fc.double({ min: 0, max: 0.999, noNaN: true }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('forget' as const), peer, by: peer }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('materialize' as const), peer }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('adopt' as const), peer }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('revive' as const), peer }) },
);
const rings = fc.array(op, { maxLength: 25 }).map((ops) => () => build(ops));

checkGossipDataLaws('ipam Ring', rings, { numRuns: 150 });

describe('ring', () => {
  it('genesis is deterministic from the seeds and splits the space near-equally', () => {
    const a = Ring.fromGenesis('c1', SPACE, [SEEDS[2]!, SEEDS[0]!, SEEDS[1]!]);
    const b = Ring.fromGenesis('c1', SPACE, SEEDS);
    expect(Buffer.from(a.encode())).toEqual(Buffer.from(b.encode()));
    expect(a.id).toBe(b.id);
    expect(a.entryList().map(plain)).toEqual([
      [0n, SEEDS[0], 1, 85n, undefined],
      [85n, SEEDS[1], 1, 170n, undefined],
      [170n, SEEDS[2], 1, 256n, undefined],
    ]);
    expect(a.ownedBy(SEEDS[2]!)).toEqual([[170n, 256n]]);
    expect(Ring.fromGenesis('c2', SPACE, SEEDS).id).not.toBe(a.id);
  });

  it('is confirmed once every seed adopted it or was forgotten', () => {
    const r = Ring.fromGenesis('c1', SPACE, SEEDS);
    expect(r.unconfirmedSeeds()).toEqual(SEEDS);
    r.adopt(W[0]!);
    expect(r.adopt(W[4]!)).toBeUndefined(); // not a seed
    r.forget(SEEDS[1]!, W[3]!);
    expect(r.confirmed()).toBe(false);
    r.adopt(W[2]!);
    expect(r.confirmed()).toBe(true);
    expect(r.adoptionList().map((a) => a.seed)).toEqual([SEEDS[0], SEEDS[2]]);
  });

  it('assigns runs, inserting bounding tokens, signed by their owner, and only by it', () => {
    const r = Ring.fromGenesis('c1', SPACE, SEEDS);
    const d = r.assign(40n, 60n, P[3]!, W[0]!);
    expect(d.entryList().map(plain)).toEqual([
      [0n, SEEDS[0], 2, 40n, SEEDS[0]], // the split entry is shortened
      [40n, P[3], 1, 60n, SEEDS[0]],
      [60n, SEEDS[0], 1, 85n, SEEDS[0]],
    ]);
    expect(d.superseded.map(plain)).toEqual([[0n, SEEDS[0], 1, 85n, undefined]]);
    expect(r.ownedBy(SEEDS[0]!)).toEqual([[0n, 40n], [60n, 85n]]);
    expect(r.ownedBy(P[3]!)).toEqual([[40n, 60n]]);
    expect(() => r.assign(30n, 50n, P[4]!, W[0]!)).toThrow(RangeError);
    // A whole entry changes hands with a version bump, written by its owner.
    r.assign(40n, 60n, P[4]!, W[3]!);
    expect(plain(r.entryAt(40n)!)).toEqual([40n, P[4], 2, 60n, P[3]]);
  });

  it('forgets with tombstones that carry the revival they supersede; a forgotten peer revives one epoch up', () => {
    const r = Ring.fromGenesis('c1', SPACE, SEEDS);
    expect(() => r.forget(P[3]!, W[3]!)).toThrow(/cannot forget itself/);
    const t1 = r.forget(P[3]!, W[0]!)!;
    expect(t1.lifeRecords().map((l) => [l.peer, l.epoch, l.writer, l.prev])).toEqual([[P[3], 1, P[0], undefined]]);
    expect(r.forget(P[3]!, W[1]!)).toBeUndefined(); // already forgotten
    expect(r.revive(W[4]!)).toBeUndefined(); // not forgotten
    const v2 = r.revive(W[3]!)!;
    expect(v2.lifeRecords().map((l) => [l.peer, l.epoch, l.writer, l.prev?.writer])).toEqual([[P[3], 2, P[3], P[0]]]);
    expect(r.isTombstoned(P[3]!)).toBe(false);
    const t3 = r.forget(P[3]!, W[1]!)!;
    expect(t3.lifeRecords().map((l) => [l.peer, l.epoch, l.writer, l.prev?.writer])).toEqual([[P[3], 3, P[1], P[3]]]);
    expect(r.tombstones()).toEqual([P[3]]);
  });

  it('hands a forgotten peer\u2019s entries to the peer that forgot it, once; the heir of a forgotten heir is its own heir', () => {
    const r = Ring.fromGenesis('c1', SPACE, SEEDS);
    r.assign(200n, 256n, P[3]!, W[2]!);
    r.forget(SEEDS[0]!, W[3]!);
    expect(r.heirOf(SEEDS[0]!)).toBe(P[3]);
    expect(r.heirOf(SEEDS[1]!)).toBeUndefined(); // not forgotten
    expect(r.reclaim(W[1]!)).toBeUndefined(); // not the heir
    const m = r.reclaim(W[3]!)!;
    expect(m.taken).toEqual([[0n, 85n]]);
    expect(m.delta.entryList().map(plain)).toEqual([[0n, P[3], 2, 85n, P[3], SEEDS[0], 1]]);
    expect(r.ownedBy(P[3]!)).toEqual([[0n, 85n], [200n, 256n]]);
    expect(r.orphans()).toBe(0);
    expect(r.reclaim(W[3]!)).toBeUndefined();
    // A forgotten peer owns nothing (it is fenced), and its heir is the peer that forgot it.
    r.forget(P[3]!, W[4]!);
    expect(r.ownedBy(P[3]!)).toEqual([]);
    expect(r.heirOf(SEEDS[0]!)).toBe(P[4]);
    expect(r.reclaim(W[3]!)).toBeUndefined();
    // Two peers that forgot each other leave no heir.
    const loop = Ring.fromGenesis('c1', SPACE, SEEDS);
    loop.forget(P[3]!, W[4]!);
    loop.forget(P[4]!, W[3]!);
    expect(loop.heirOf(P[3]!)).toBeUndefined();
  });

  it('knows where a run ends even when it missed the gossip that created the next token', () => {
    const owner = Ring.fromGenesis('c1', SPACE, SEEDS);
    const first = owner.assign(40n, 60n, P[3]!, W[0]!); // lost on its way to P[4]
    void first;
    const second = owner.assign(20n, 40n, P[4]!, W[0]!);
    const p4 = Ring.fromGenesis('c1', SPACE, SEEDS);
    p4.merge(second);
    expect(p4.ownedBy(P[4]!)).toEqual([[20n, 40n]]);
    expect(p4.ownedBy(SEEDS[0]!)).toEqual([[0n, 20n]]); // and nothing it cannot know about
  });

  it('breaks equal-version ties by the owner that sorts last, then by writer and signature (a total order)', () => {
    const a = Ring.fromGenesis('c1', SPACE, SEEDS);
    const b = Ring.fromGenesis('c1', SPACE, SEEDS);
    a.assign(0n, 85n, P[3]!, W[0]!);
    b.assign(0n, 85n, P[4]!, W[0]!);
    a.merge(b);
    expect(plain(a.entryList()[0]!)).toEqual([0n, P[4], 2, 85n, SEEDS[0]]);
    const x = a.sign(W[1]!, { token: 5n, owner: P[1]!, version: 3, end: 9n });
    const y = a.sign(W[2]!, { token: 5n, owner: P[1]!, version: 3, end: 9n });
    expect(beats(x, y) !== beats(y, x)).toBe(true);
    expect(beats(x, x)).toBe(false);
    const same = { ...x, sig: Buffer.from(x.sig!).fill(1) };
    expect(beats(x, same) !== beats(same, x)).toBe(true);
    const l1 = a.forget(P[4]!, W[1]!)!.lifeRecords()[0]!;
    const c = Ring.fromGenesis('c1', SPACE, SEEDS);
    const l2 = c.forget(P[4]!, W[2]!)!.lifeRecords()[0]!;
    expect(lifeBeats(l1, l2) !== lifeBeats(l2, l1)).toBe(true);
  });

  it('lets a handover win over a reclaim of the same version (an heir with a stale view)', () => {
    const real = Ring.fromGenesis('c1', SPACE, SEEDS);
    const stale = real.clone();
    real.assign(0n, 85n, P[3]!, W[0]!); // the seed hands its entry over (v2) ...
    real.forget(SEEDS[0]!, W[2]!); // ... and is forgotten later
    stale.forget(SEEDS[0]!, W[2]!); // its heir never heard of the handover and reclaims it (v2 too)
    expect(stale.reclaim(W[2]!)?.taken).toEqual([[0n, 85n]]);
    const a = real.clone();
    a.merge(stale);
    stale.merge(real);
    for (const r of [a, stale]) expect(plain(r.entryList()[0]!)).toEqual([0n, P[3], 2, 85n, SEEDS[0]]);
  });

  it('refuses to merge a ring of another genesis', () => {
    const a = Ring.fromGenesis('c1', SPACE, SEEDS);
    const b = Ring.fromGenesis('c1', SPACE, [P[3]!, P[4]!]);
    const before = Buffer.from(a.encode());
    expect(() => a.merge(b)).toThrow(IpamRingConflictError);
    expect(() => a.merge(b)).toThrow(`seeded by [${SEEDS.join(', ')}], the other by [${P[3]}, ${P[4]}]`);
    expect(Buffer.from(a.encode())).toEqual(before);
  });

  it('never writes a version past the bound', () => {
    const r = Ring.fromGenesis('c1', SPACE, SEEDS);
    expect(() => r.write(W[0]!, [{ token: 0n, owner: SEEDS[0]!, version: 2 ** 32, end: 85n }])).toThrow(RangeError);
  });
});

describe('ring codec', () => {
  it('round-trips rings and deltas, IPv4 and IPv6', () => {
    fc.assert(
      fc.property(rings, (f) => {
        const r = f();
        const p = decodeRing(r.encode());
        const back = Ring.fromParts(p.genesis, p.entries, p.life, p.adopted);
        expect(Buffer.from(back.encode())).toEqual(Buffer.from(r.encode()));
      }),
      { numRuns: 100 },
    );
    const v6 = Ring.fromGenesis('c1', 'fd00::/64', SEEDS);
    v6.assign(1n << 60n, 1n << 61n, P[4]!, W[0]!);
    const p = decodeRing(v6.encode());
    expect(Buffer.from(Ring.fromParts(p.genesis, p.entries, p.life, p.adopted).encode())).toEqual(Buffer.from(v6.encode()));
  });

  const good = Ring.fromGenesis('c1', SPACE, SEEDS);
  const parts = decodeRing(good.encode());
  const entries = (es: unknown[]) => pack([2, 'c1', SPACE, SEEDS, [], [], es]);
  const lives = (ls: unknown[]) => pack([2, 'c1', SPACE, SEEDS, [], ls, []]);
  const tok = (n: number) => Uint8Array.of(0, 0, 0, n);
  const L = tok(9);
  const K = Buffer.from(writers[0]!.publicKey);
  const S = Buffer.alloc(64, 7);
  it.each<[string, Uint8Array, string]>([
    ['not msgpack', Uint8Array.of(0x92, 0xc1), 'not a complete msgpack value'],
    ['truncated', good.encode().subarray(0, 20), 'not a complete msgpack value'],
    ['not an array', pack('x'), 'expected an array'],
    ['the unsigned format 1', pack([1, 'c1', SPACE, SEEDS, [], [], []]), 'format 1 is not 2'],
    ['missing fields', pack([2, 'c1', SPACE]), 'has 3 fields, expected 7 or 8'],
    ['bad space', pack([2, 'c1', '10.0.0.1/24', SEEDS, [], [], []]), 'host bits set'],
    ['space not normal', pack([2, 'c1', 'FD00::/64', SEEDS, [], [], []]), 'not in normal form'],
    ['no seeds', pack([2, 'c1', SPACE, [], [], [], []]), 'has no seeds'],
    ['seeds unsorted', pack([2, 'c1', SPACE, [SEEDS[1], SEEDS[0]], [], [], []]), 'seeds not strictly ascending'],
    ['bad seed name', pack([2, 'c1', SPACE, ['XYZ'], [], [], []]), 'seeds[0] is not a peer name'],
    ['adoption of a non-seed', pack([2, 'c1', SPACE, SEEDS, [[writerOf(P[4]!).publicKey, S]], [], []]), 'is not a seed'],
    ['adoption without a signature', pack([2, 'c1', SPACE, SEEDS, [[K]], [], []]), 'is not [key, signature]'],
    ['token width', entries([[Uint8Array.of(1), SEEDS[0], 1, L, K, S]]), 'token is not 4 bytes'],
    ['token outside', entries([[Uint8Array.of(0, 0, 1, 0), SEEDS[0], 1, L, K, S]]), 'outside 10.0.0.0/24'],
    ['tokens unsorted', entries([[tok(5), SEEDS[0], 1, L, K, S], [tok(5), SEEDS[1], 1, L, K, S]]), 'not strictly ascending'],
    ['bad owner', entries([[tok(5), 'nobody', 1, L, K, S]]), 'owner is not a peer name'],
    ['bad version', entries([[tok(5), SEEDS[0], 0, L, K, S]]), 'version is not a positive integer'],
    ['float version', entries([[tok(5), SEEDS[0], 1.5, L, K, S]]), 'version is not a positive integer'],
    ['last before token', entries([[tok(5), SEEDS[0], 1, tok(4), K, S]]), 'last is not in [token, end'],
    ['last width', entries([[tok(5), SEEDS[0], 1, Uint8Array.of(9), K, S]]), 'last is not 4 bytes'],
    ['an unsigned entry (format 1 shape)', entries([[tok(5), SEEDS[0], 1, L]]), 'is not [token, owner, version, last, key, signature(, from, epoch)]'],
    ['a short signature', entries([[tok(5), SEEDS[0], 1, L, K, S.subarray(1)]]), 'has no key and signature'],
    ['a key without signature', entries([[tok(5), SEEDS[0], 1, L, K, null]]), 'has no key and signature'],
    ['a bad reclaim', entries([[tok(5), SEEDS[0], 1, L, K, S, 'nobody', 1]]), 'reclaim is not [from: peer name, epoch]'],
    ['life unsorted', lives([[P[1], 1, K, S], [P[0], 1, K, S]]), 'life not strictly ascending'],
    ['life epoch 1 with a previous record', lives([[P[1], 1, K, S, K, S]]), 'epoch 1 has the previous record'],
    ['life epoch 2 without one', lives([[P[1], 2, K, S]]), 'epoch 2 lacks the previous record'],
    ['life epoch 0', lives([[P[1], 0, K, S]]), 'epoch is not a positive integer'],
    ['proofs not entries', pack([2, 'c1', SPACE, SEEDS, [], [], [], [[1]]]), 'proof 0 is not'],
  ])('refuses %s without changing the receiver', (_name, data, reason) => {
    const r = Ring.fromGenesis('c1', SPACE, SEEDS);
    const before = Buffer.from(r.encode());
    let err: unknown;
    try {
      const p = decodeRing(data);
      r.merge(Ring.fromParts(p.genesis, p.entries, p.life, p.adopted));
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
