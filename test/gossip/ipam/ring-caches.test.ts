/**
 * What the ring and the codecs keep or build for speed gives what the plain way gives: rings
 * written entry by entry against a `pack` of the whole value, the orphan index against a sweep of
 * every entry, owners by size against sorting `ownerSizes`, assembled messages and state files
 * against `pack`.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { PeerName } from '../../../gossip/contracts.js';
import { EntryBytes } from '../../../gossip/ipam/entry-bytes.js';
import { PackBuilder, encodeRing, pack, writeEntries } from '../../../gossip/ipam/ring-codec.js';
import { Ring, type RingEntry } from '../../../gossip/ipam/ring.js';
import { SeenGossip } from '../../../gossip/ipam/seen-gossip.js';
import { offsetToBytes, space } from '../../../gossip/ipam/space.js';
import { encodeState, type PersistedState } from '../../../gossip/ipam/state-file.js';
import { encodeGave, encodeGossip } from '../../../gossip/ipam/wire.js';

const P = ['a000000000000001', 'b000000000000002', 'c000000000000003', 'd000000000000004', 'e000000000000005', 'f000000000000006'];
const SEEDS = P.slice(0, 3);

type Op = { kind: 'donate'; by: number; to: number; frac: number } | { kind: 'forget'; peer: number } | { kind: 'materialize'; peer: number } | { kind: 'adopt'; peer: number } | { kind: 'merge' } | { kind: 'full' } | { kind: 'encode' };

const peer = fc.integer({ min: 0, max: P.length - 1 });
const ops = fc.array(
  fc.oneof(
    { weight: 8, arbitrary: fc.record({ kind: fc.constant('donate' as const), by: peer, to: peer, frac: fc.double({ min: 0, max: 0.999, noNaN: true }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('forget' as const), peer }) },
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
    a.assign(e - (e - s) / 2n, e, P[3 + (k % 3)]!, SEEDS[k % 3]!);
  }
  const b = a.clone();
  a.encode();
  b.encode();
  let deltas: (Ring | undefined)[] = [];
  for (const op of list) {
    if (op.kind === 'forget') deltas.push(a.forget(P[op.peer]!));
    else if (op.kind === 'adopt') deltas.push(a.adopt(P[op.peer]!));
    else if (op.kind === 'materialize') deltas.push(a.materialize(P[op.peer]!)?.delta);
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
      deltas.push(a.assign(r[1] - give, r[1], P[op.to]!, P[op.by]!));
    }
    check(a);
    check(b);
  }
}

/** The ring as `pack` writes the whole of it. */
function packed(r: Ring): Uint8Array {
  const w = r.space.bytes;
  const entries = r.entryList().map((e) => {
    const f: unknown[] = [offsetToBytes(e.token, w), e.owner, e.version, offsetToBytes(e.end - 1n, w)];
    if (e.reclaimed === true) f.push(true);
    return f;
  });
  return pack([1, r.genesis.clusterId, r.genesis.space, r.genesis.seeds, r.adopted(), r.tombstones(), entries]);
}

/** What `materialize(self)` takes, by a sweep of every entry (the heir: the nearest live owner before, wrapping). */
function sweep(r: Ring, self: PeerName): { tokens: bigint[]; taken: [bigint, bigint][] } {
  const es = r.entryList();
  const tokens: bigint[] = [];
  const taken: [bigint, bigint][] = [];
  if (r.isTombstoned(self)) return { tokens, taken };
  let live: PeerName | undefined;
  for (let k = es.length - 1; k >= 0 && live === undefined; k--) if (!r.isTombstoned(es[k]!.owner)) live = es[k]!.owner;
  es.forEach((e, i) => {
    if (!r.isTombstoned(e.owner)) live = e.owner;
    else if (live === self) {
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
          expect(Buffer.from(r.encode())).toEqual(Buffer.from(packed(r)));
          expect(Buffer.from(encodeRing({ genesis: r.genesis, entries: r.entryList(), tombstones: r.tombstones(), adopted: r.adopted() }, r.space.bytes))).toEqual(Buffer.from(packed(r)));
          expect(r.orphans()).toBe(r.entryList().filter((e) => r.isTombstoned(e.owner)).length);
          const sizes = [...r.ownerSizes()].sort((x, y) => (x[1] > y[1] ? -1 : x[1] < y[1] ? 1 : x[0] < y[0] ? -1 : 1));
          expect(r.ownersBySize()).toEqual(sizes);
          for (const self of P) {
            const want = sweep(r, self);
            const got = r.clone().materialize(self);
            expect(got?.taken ?? []).toEqual(want.taken);
            expect(got?.delta.entryList().map((e) => e.token) ?? []).toEqual(want.tokens);
          }
        });
      }),
      { numRuns: 60 },
    );
  });
});

describe('entry bytes', () => {
  const entry = fc.record({ owner: fc.constantFrom(...P, 'x', 'é0'), version: fc.constantFrom(1, 127, 128, 300, 70_000, 2 ** 33), reclaimed: fc.boolean() });
  const change = fc.record({ at: fc.nat(), insert: fc.boolean(), e: entry, read: fc.boolean() });

  it.each([4, 16])('follow inserts and replacements of entries of every size as writing them all does (width %i)', (width) => {
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 20 }), fc.array(change, { maxLength: 40 }), (start, changes) => {
        const made = (e: { owner: string; version: number; reclaimed: boolean }, token: bigint): RingEntry => (e.reclaimed ? { token, owner: e.owner, version: e.version, end: token + 1n, reclaimed: true } : { token, owner: e.owner, version: e.version, end: token + 1n });
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
          return j % 2 === 0 ? { token, owner, version, end: token + 2n, reclaimed: true as const } : { token, owner, version, end: token + 3n };
        }),
      );
      const genesis = { clusterId: 'c1', space: range, seeds: SEEDS };
      const want = pack([1, 'c1', range, SEEDS, [], [P[5]], entries.map((e) => [offsetToBytes(e.token, width), e.owner, e.version, offsetToBytes(e.end - 1n, width), ...('reclaimed' in e ? [true] : [])])]);
      expect(Buffer.from(encodeRing({ genesis, entries, tombstones: [P[5]!], adopted: [] }, width))).toEqual(Buffer.from(want));
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
    expect(Buffer.from(encodeGossip([], [{ name: P[0]!, initPeers: 3 }]))).toEqual(Buffer.from(pack([1, 'g', [], [[P[0], 3]]])));
    expect(Buffer.from(encodeGave('10.0.0.0/24', small))).toEqual(Buffer.from(pack([1, 'gave', '10.0.0.0/24', small])));
    const spaces = [space('10.0.0.0/24'), space('fd00::/64')];
    const s: PersistedState = {
      clusterId: 'c1',
      self: P[0]!,
      ranges: spaces.map((x) => x.cidr),
      rings: [],
      allocations: [{ containerId: 'c', ifName: 'eth0', allocatedAt: 5, offsets: [3n, undefined] }],
      released: [[[4n, 6]], []],
      held: [[], [{ start: 1n, end: 1n << 64n, until: 7 }]],
    };
    const want = pack([
      'weft-ipam-state',
      1,
      'c1',
      P[0],
      s.ranges,
      [big, null],
      [['c', 'eth0', 5, [offsetToBytes(3n, 4), null]]],
      [[[offsetToBytes(4n, 4), 6]], []],
      [[], [[offsetToBytes(1n, 16), offsetToBytes(1n << 64n, 16), 7]]],
    ]);
    expect(Buffer.from(encodeState(s, spaces, [big, undefined]))).toEqual(Buffer.from(want));
  });
});

describe('seen gossip', () => {
  it('remembers small messages by content, the newest `capacity` of them', () => {
    const seen = new SeenGossip(2, 8);
    const key = (...b: number[]) => seen.keyOf(Uint8Array.from(b))!;
    expect(seen.keyOf(new Uint8Array(9))).toBeUndefined();
    seen.add(key(1));
    seen.add(key(2));
    expect(seen.has(key(1))).toBe(true);
    expect(seen.has(seen.keyOf(new Uint8Array([9, 2]).subarray(1))!)).toBe(true);
    seen.add(key(3));
    expect([seen.has(key(1)), seen.has(key(2)), seen.has(key(3))]).toEqual([false, true, true]);
  });
});
