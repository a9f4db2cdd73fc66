/**
 * What the ring and the codecs keep or build for speed gives what the plain way gives: rings
 * written entry by entry against a `pack` of the whole value, the orphan index against a sweep of
 * every entry, owners by size against sorting `ownerSizes`, assembled messages and state files
 * against `pack`.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { PeerName } from '../../src/mesh/contracts.js';
import { EntryBytes } from '../../src/ipam/entry-bytes.js';
import { PackBuilder, encodeEntry, encodeRing, pack, withProofs, writeEntries } from '../../src/ipam/ring-codec.js';
import { Ring, type RingEntry } from '../../src/ipam/ring.js';
import { SeenGossip } from '../../src/ipam/seen-gossip.js';
import { offsetToBytes, space } from '../../src/ipam/space.js';
import { encodeCustody, encodeState, type PersistedState } from '../../src/ipam/state-file.js';
import { encodeGave, encodeGossip, encodeProve, waitingOf } from '../../src/ipam/wire.js';
import { fastWriters, names } from './keys.js';

const P = [...names.slice(0, 6)].sort();
const W = P.map((n) => fastWriters.find((w) => w.name === n)!);
const SEEDS = P.slice(0, 3);

type Op =
  | { kind: 'donate'; by: number; to: number; frac: number }
  | { kind: 'forget'; peer: number; by: number }
  | { kind: 'materialize'; peer: number }
  | { kind: 'adopt'; peer: number }
  | { kind: 'merge' }
  | { kind: 'full' }
  | { kind: 'encode' };

const peer = fc.integer({ min: 0, max: P.length - 1 });
const ops = fc.array(
  fc.oneof(
    { weight: 8, arbitrary: fc.record({ kind: fc.constant('donate' as const), by: peer, to: peer, frac: fc.double({ min: 0, max: 0.999, noNaN: true }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('forget' as const), peer, by: peer }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('materialize' as const), peer }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('adopt' as const), peer }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('merge' as const) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('full' as const) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('encode' as const) }) },
  ),
  { maxLength: 40 },
);

/**
 * Two replicas of one ring (split in about eighty entries first, so that small deltas are
 * merged in place): ops go to `a` (legal in its view), `merge` brings their deltas to `b` and
 * `full` all of `a`, and `encode` fills the caches of both in between, so later changes meet them.
 */
function run(range: string, list: readonly Op[], check: (r: Ring) => void): void {
  const a = Ring.fromGenesis('c1', range, SEEDS);
  for (let k = 0; k < 36; k++) {
    const [s, e] = a.ownedBy(SEEDS[k % 3]!).at(-1)!;
    a.assign(e - (e - s) / 2n, e, P[3 + (k % 3)]!, W[k % 3]!);
  }
  const b = a.clone();
  a.encode();
  b.encode();
  let deltas: (Ring | undefined)[] = [];
  for (const op of list) {
    if (op.kind === 'forget') deltas.push(op.peer === op.by || a.isTombstoned(P[op.by]!) ? undefined : a.forget(P[op.peer]!, W[op.by]!));
    else if (op.kind === 'adopt') deltas.push(a.adopt(W[op.peer]!));
    else if (op.kind === 'materialize') deltas.push(a.reclaim(W[op.peer]!)?.delta);
    else if (op.kind === 'merge') {
      for (const d of deltas) if (d !== undefined) b.merge(d);
      deltas = [];
    } else if (op.kind === 'full') b.merge(a.clone());
    else if (op.kind === 'encode') {
      a.encode();
      b.encode();
      a.ownersBySize();
      b.ownersBySize();
    } else {
      const runs = a.ownedBy(P[op.by]!);
      const r = runs[Math.floor(op.frac * runs.length)];
      if (r === undefined || op.by === op.to || a.isTombstoned(P[op.to]!)) continue;
      const len = r[1] - r[0];
      const give = len < 2n ? len : BigInt(Math.max(1, Math.floor(Number(len) * op.frac)));
      deltas.push(a.assign(r[1] - give, r[1], P[op.to]!, W[op.by]!));
    }
    check(a);
    check(b);
  }
}

/** An entry as `pack` writes it. */
function entryFields(e: RingEntry, w: number): unknown[] {
  const f: unknown[] = [offsetToBytes(e.token, w), e.owner, e.version, offsetToBytes(e.end - 1n, w), e.writerKey ?? null, e.sig ?? null];
  if (e.reclaimed !== undefined) f.push(e.reclaimed.from, e.reclaimed.epoch);
  return f;
}

/** The ring as `pack` writes the whole of it. */
function packed(r: Ring): Uint8Array {
  const w = r.space.bytes;
  const life = r.lifeRecords().map((l) => (l.prev === undefined ? [l.peer, l.epoch, l.writerKey, l.sig] : [l.peer, l.epoch, l.writerKey, l.sig, l.prev.writerKey, l.prev.sig]));
  return pack([2, r.genesis.clusterId, r.genesis.space, r.genesis.seeds, r.adoptionList().map((a) => [a.key, a.sig]), life, r.entryList().map((e) => entryFields(e, w))]);
}

/** What `reclaim` takes for `self`, by a sweep of every entry (the heir: the peer that forgot the owner, or its heir). */
function sweep(r: Ring, self: PeerName): { tokens: bigint[]; taken: [bigint, bigint][] } {
  const tokens: bigint[] = [];
  const taken: [bigint, bigint][] = [];
  if (r.isTombstoned(self)) return { tokens, taken };
  r.entryList().forEach((e, i) => {
    if (!r.isTombstoned(e.owner)) return;
    let heir: PeerName | undefined = r.lifeOf(e.owner)!.writer;
    for (let k = 0; heir !== undefined && r.isTombstoned(heir) && k < 10; k++) heir = r.lifeOf(heir)!.writer;
    if (heir === self) {
      tokens.push(e.token);
      taken.push([e.token, r.end(i)]);
    }
  });
  return { tokens, taken };
}

describe('ring caches', () => {
  it.each(['10.0.0.0/8', 'fd00::/64'])('encodings, orphans and owners by size match the plain computation (%s)', (range) => {
    fc.assert(
      fc.property(ops, (list) => {
        run(range, list, (r) => {
          // (Buffer.equals: a deep comparison of rings of signed entries is slow.)
          const want = Buffer.from(packed(r));
          expect(want.equals(r.encode())).toBe(true);
          expect(want.equals(encodeRing({ genesis: r.genesis, entries: r.entryList(), life: r.lifeRecords(), adopted: r.adoptionList() }, r.space.bytes))).toBe(true);
          expect(r.orphans()).toBe(r.entryList().filter((e) => r.isTombstoned(e.owner)).length);
          const sizes = [...r.ownerSizes()].sort((x, y) => (x[1] > y[1] ? -1 : x[1] < y[1] ? 1 : x[0] < y[0] ? -1 : 1));
          expect(r.ownersBySize()).toEqual(sizes);
          for (const self of W) {
            const want = sweep(r, self.name);
            const got = r.clone().reclaim(self);
            expect(got?.taken ?? []).toEqual(want.taken);
            expect(got?.delta.entryList().map((e) => e.token) ?? []).toEqual(want.tokens);
          }
        });
      }),
      { numRuns: 60 },
    );
  });
});

const KEY = Buffer.from(W[0]!.publicKey);
const SIG = Buffer.alloc(64, 3);

/** An entry with every kind of field: signed or not (genesis), reclaimed or not. */
function made(e: { owner: string; version: number; reclaimed: boolean; signed: boolean }, token: bigint): RingEntry {
  const signer = e.signed ? { writer: P[0]!, writerKey: KEY, sig: SIG } : {};
  return e.reclaimed ? { token, owner: e.owner, version: e.version, end: token + 1n, reclaimed: { from: P[1]!, epoch: e.version }, ...signer } : { token, owner: e.owner, version: e.version, end: token + 1n, ...signer };
}

describe('entry bytes', () => {
  const entry = fc.record({ owner: fc.constantFrom(...P, 'x', 'é0'), version: fc.constantFrom(1, 127, 128, 300, 70_000, 2 ** 33), reclaimed: fc.boolean(), signed: fc.boolean() });
  const change = fc.record({ at: fc.nat(), insert: fc.boolean(), e: entry, read: fc.boolean() });

  it.each([4, 16])('follow inserts and replacements of entries of every size as writing them all does (width %i)', (width) => {
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 20 }), fc.array(change, { maxLength: 40 }), (start, changes) => {
        const list = start.map((e, i) => made(e, BigInt(i)));
        const bytes = new EntryBytes(width);
        expect(Buffer.from(bytes.of(list))).toEqual(Buffer.from(writeEntries(list, width)));
        for (const c of changes) {
          const insert = c.insert || list.length === 0;
          const i = c.at % (list.length + (insert ? 1 : 0));
          const e = made(c.e, BigInt(1000 + i));
          if (insert) list.splice(i, 0, e);
          else list[i] = e;
          bytes.set(i, e, insert);
          if (c.read) expect(Buffer.from(bytes.of(list))).toEqual(Buffer.from(writeEntries(list, width)));
        }
        expect(Buffer.from(bytes.of(list))).toEqual(Buffer.from(writeEntries(list, width)));
      }),
      { numRuns: 300 },
    );
  });
});

describe('assembled msgpack', () => {
  it('writes every kind of entry as pack does (long versions and unusual owners are packed)', () => {
    const versions = [1, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER];
    const owners = [P[0]!, 'x', 'é000000000000000', 'a'.repeat(31), 'a'.repeat(32)];
    for (const [width, range] of [[4, '10.0.0.0/8'], [16, 'fd00::/64'], [1, '10.0.0.0/24']] as const) {
      const entries = versions.flatMap((version, i) =>
        owners.map((owner, j) => {
          const token = BigInt(i * owners.length + j) * 3n;
          return { ...made({ owner, version, reclaimed: j % 2 === 0, signed: j !== 1 }, token), end: token + 2n };
        }),
      );
      const genesis = { clusterId: 'c1', space: range, seeds: SEEDS };
      const life = [{ peer: P[5]!, epoch: 1, writer: P[0]!, writerKey: KEY, sig: SIG }];
      const want = pack([2, 'c1', range, SEEDS, [], [[P[5], 1, KEY, SIG]], entries.map((e) => entryFields(e, width))]);
      const got = encodeRing({ genesis, entries, life, adopted: [] }, width);
      expect(Buffer.from(got)).toEqual(Buffer.from(want));
      for (const e of entries) expect(Buffer.from(writeEntries([e], width))).toEqual(Buffer.from(encodeEntry(e, width)));
      const proofs = entries.slice(0, 7);
      expect(Buffer.from(withProofs(got, proofs, width))).toEqual(Buffer.from(pack([2, 'c1', range, SEEDS, [], [[P[5], 1, KEY, SIG]], entries.map((e) => entryFields(e, width)), proofs.map((e) => entryFields(e, width))])));
      expect(withProofs(got, [], width)).toBe(got);
    }
  });

  const bytes = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7) & 0xff);

  it.each([0, 1, 15, 16, 255, 256, 65535, 65536, 70000])('matches pack for an array of %i items and a binary of as many bytes', (n) => {
    const items = Array.from({ length: n }, (_, i) => i % 300);
    const b = new PackBuilder().array(n);
    for (const x of items) b.items(x);
    expect(Buffer.from(b.finish())).toEqual(Buffer.from(pack(items)));
    expect(Buffer.from(new PackBuilder().bin(bytes(n)).finish())).toEqual(Buffer.from(pack(bytes(n))));
  });

  it('builds gossip, gave and state files byte for byte as pack does', () => {
    const big = bytes(70_000);
    const small = bytes(40);
    expect(Buffer.from(encodeGossip([small, big], []))).toEqual(Buffer.from(pack([1, 'g', [small, big], []])));
    const w = waitingOf(W[0]!, 'c1', 3);
    expect(Buffer.from(encodeGossip([], [w]))).toEqual(Buffer.from(pack([1, 'g', [], [[w.key, 3, w.sig]]])));
    expect(Buffer.from(encodeGave('10.0.0.0/24', small))).toEqual(Buffer.from(pack([1, 'gave', '10.0.0.0/24', small])));
    expect(Buffer.from(encodeProve('10.0.0.0/24', [small.subarray(0, 4)]))).toEqual(Buffer.from(pack([1, 'prove', '10.0.0.0/24', [small.subarray(0, 4)]])));
    const spaces = [space('10.0.0.0/24'), space('fd00::/64')];
    const s: Omit<PersistedState, 'custody'> = {
      clusterId: 'c1',
      self: P[0]!,
      ranges: spaces.map((x) => x.cidr),
      rings: [],
      allocations: [{ containerId: 'c', ifName: 'eth0', allocatedAt: 5, offsets: [3n, undefined] }],
      released: [[[4n, 6]], []],
      held: [[], [{ start: 1n, end: 1n << 64n, until: 7 }]],
      fenced: false,
    };
    const e = made({ owner: P[2]!, version: 3, reclaimed: true, signed: true }, 7n);
    const custody = { pending: [[7n, e], [8n, null], [9n, 'unknown']] as [bigint, RingEntry | null | 'unknown'][], holders: [{ start: 7n, end: 9n, owner: P[1]! }, { start: 9n, end: 256n, owner: 'unknown' as const }], titles: [[7n, [e]]] as [bigint, RingEntry[]][] };
    const custodyWant = [
      [[offsetToBytes(7n, 4), 2, encodeEntry(e, 4)], [offsetToBytes(8n, 4), 0, null], [offsetToBytes(9n, 4), 1, null]],
      [[offsetToBytes(7n, 4), offsetToBytes(9n, 4), P[1]], [offsetToBytes(9n, 4), offsetToBytes(256n, 4), '']],
      [[offsetToBytes(7n, 4), [encodeEntry(e, 4)]]],
    ];
    expect(Buffer.from(encodeCustody(custody, 4))).toEqual(Buffer.from(pack(custodyWant)));
    const want = pack([
      'weft-ipam-state',
      2,
      'c1',
      P[0],
      s.ranges,
      [big, null],
      [['c', 'eth0', 5, [offsetToBytes(3n, 4), null]]],
      [[[offsetToBytes(4n, 4), 6]], []],
      [[], [[offsetToBytes(1n, 16), offsetToBytes(1n << 64n, 16), 7]]],
      [custodyWant, null],
      false,
    ]);
    expect(Buffer.from(encodeState(s, spaces, [big, undefined], [encodeCustody(custody, 4), undefined]))).toEqual(Buffer.from(want));
  });
});

describe('seen gossip', () => {
  it('remembers small messages by content, whether they carried proofs, the newest `capacity` of them', () => {
    const seen = new SeenGossip(2, 8);
    const key = (...b: number[]) => seen.keyOf(Uint8Array.from(b))!;
    expect(seen.keyOf(new Uint8Array(9))).toBeUndefined();
    seen.add(key(1));
    seen.add(key(2), true);
    expect(seen.get(key(1))).toBe(false);
    expect(seen.get(seen.keyOf(new Uint8Array([9, 2]).subarray(1))!)).toBe(true);
    seen.add(key(3));
    expect([seen.get(key(1)), seen.get(key(2)), seen.get(key(3))]).toEqual([undefined, true, false]);
  });
});
