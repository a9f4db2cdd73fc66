/**
 * Fuzz of the IPAM ring intake (wire decoder, ring decoder, admission, custody, merge): rings with
 * validly signed, unsigned, wrongly signed, tampered and out-of-bound records, tombstones and
 * adoptions, as gossip and as donations, whole or with bytes flipped or cut. Nothing may throw but
 * `GossipDecodeError`; a refused message changes nothing; a message whose every record is refused
 * changes nothing either; and whatever the receiver's ring holds afterwards is validly signed.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { simWriter } from '../../sim/ipam-sim.js';
import type { GossipTransport, RouteTable } from '../../src/mesh/contracts.js';
import { GossipDecodeError } from '../../src/mesh/errors.js';
import { Ipam, MemoryIpamStore } from '../../src/ipam/index.js';
import { Ring, genesisEntries, type LifeRecord, type RingEntry } from '../../src/ipam/ring.js';
import { decodeRing, encodeRing, withProofs } from '../../src/ipam/ring-codec.js';
import { LIFE_LABEL, MAX_VERSION, RingVerifier, lifeBody } from '../../src/ipam/ring-signing.js';
import { encodeGave, encodeGossip } from '../../src/ipam/wire.js';
import { FakeClock } from '../fakes/fake-clock.js';

const W = [0, 1, 2, 3, 4].map((i) => simWriter(700 + i)).sort((a, b) => (a.name < b.name ? -1 : 1));
const SEEDS = [W[0]!.name, W[1]!.name];
const SPACE = '10.7.0.0/24';

/** Valid records of every kind, from a ring where seeds donate, forget and revive. */
function pool(): { ring: Ring; entries: RingEntry[]; life: LifeRecord[] } {
  const r = Ring.fromGenesis('fuzz', SPACE, SEEDS);
  r.adopt(W[0]!);
  r.adopt(W[1]!);
  const entries: RingEntry[] = [];
  const take = (d: Ring) => entries.push(...d.entryList());
  take(r.assign(100n, 128n, W[2]!.name, W[0]!));
  take(r.assign(200n, 220n, W[3]!.name, W[1]!));
  take(r.assign(110n, 120n, W[4]!.name, W[2]!));
  take(r.assign(130n, 140n, W[3]!.name, W[1]!));
  const life = [...r.forget(W[4]!.name, W[0]!)!.lifeRecords()];
  take(r.reclaim(W[0]!)!.delta);
  life.push(...r.forget(W[3]!.name, W[2]!)!.lifeRecords(), ...r.revive(W[3]!)!.lifeRecords());
  return { ring: r, entries, life };
}

const P = pool();
const GENESIS = Ring.fromGenesis('fuzz', SPACE, SEEDS);
const GEN = genesisEntries(GENESIS.space, SEEDS);

type EntryKind = 'valid' | 'unsigned' | 'genesis' | 'randomSig' | 'otherSig' | 'tampered' | 'otherKey' | 'overBound' | 'reclaimByOther';
const entryKinds: EntryKind[] = ['valid', 'unsigned', 'genesis', 'randomSig', 'otherSig', 'tampered', 'otherKey', 'overBound', 'reclaimByOther'];

function entryOf(kind: EntryKind, i: number, j: number): RingEntry {
  const e = P.entries[i % P.entries.length]!;
  const o = P.entries[j % P.entries.length]!;
  switch (kind) {
    case 'valid':
      return e;
    case 'unsigned':
      return { token: e.token, owner: e.owner, version: e.version, end: e.end };
    case 'genesis':
      return GEN[i % GEN.length]!;
    case 'randomSig':
      return { ...e, sig: Buffer.alloc(64, (i * 31 + j) & 0xff) };
    case 'otherSig':
      return { ...e, sig: o.sig };
    case 'tampered':
      return j % 3 === 0 ? { ...e, version: e.version + 1 } : j % 3 === 1 ? { ...e, owner: W[(j + 1) % W.length]!.name } : { ...e, end: e.end + 1n > 256n ? e.end - 1n : e.end + 1n };
    case 'otherKey':
      return { ...e, writer: W[j % W.length]!.name, writerKey: W[j % W.length]!.publicKey };
    case 'overBound':
      return { ...GENESIS.sign(W[0]!, { token: e.token, owner: e.owner, version: MAX_VERSION, end: e.end }), version: MAX_VERSION + 1 + j };
    case 'reclaimByOther':
      return GENESIS.sign(W[2]!, { token: e.token, owner: W[1]!.name, version: 9, end: e.end, reclaimed: { from: W[4]!.name, epoch: 1 } });
  }
}

type LifeKind = 'valid' | 'badSig' | 'selfForget' | 'overBound' | 'badPrev';
function lifeOf(kind: LifeKind, i: number): LifeRecord {
  const l = P.life[i % P.life.length]!;
  switch (kind) {
    case 'valid':
      return l;
    case 'badSig':
      return { ...l, sig: Buffer.alloc(64, 9) };
    case 'selfForget': {
      const w = W[i % W.length]!;
      return { peer: w.name, epoch: 1, writer: w.name, writerKey: w.publicKey, sig: w.sign(lifeBody(GENESIS.id, w.name, 1, w.name)) };
    }
    case 'overBound':
      return { ...l, epoch: MAX_VERSION + 2, prev: l.prev ?? { writer: l.writer, writerKey: l.writerKey, sig: l.sig } };
    case 'badPrev':
      return { ...l, epoch: 3, prev: { writer: W[0]!.name, writerKey: W[0]!.publicKey, sig: Buffer.from(W[0]!.sign(Buffer.from(LIFE_LABEL))) } };
  }
}

const message = fc.record({
  entries: fc.array(fc.record({ kind: fc.constantFrom(...entryKinds), i: fc.nat(50), j: fc.nat(50) }), { maxLength: 8 }),
  life: fc.array(fc.record({ kind: fc.constantFrom<LifeKind>('valid', 'badSig', 'selfForget', 'overBound', 'badPrev'), i: fc.nat(20) }), { maxLength: 3 }),
  proofs: fc.array(fc.record({ kind: fc.constantFrom(...entryKinds), i: fc.nat(50), j: fc.nat(50) }), { maxLength: 3 }),
  asGave: fc.boolean(),
  mangle: fc.oneof(fc.constant(undefined), fc.record({ at: fc.nat(), bit: fc.nat(7), cut: fc.boolean() })),
});

/** Whether a record would pass admission's signature and bound checks (the fuzz's own oracle). */
function validEntry(e: RingEntry, v: RingVerifier): boolean {
  if (e.version > MAX_VERSION) return false;
  if (e.sig === undefined) return GEN.some((g) => g.token === e.token && g.owner === e.owner && g.end === e.end && g.version === e.version);
  if (e.reclaimed !== undefined && e.writer !== e.owner) return false;
  return v.entry(GENESIS.id, 4, { ...e, writer: e.writer!, writerKey: e.writerKey!, sig: e.sig }) !== undefined;
}

const oracle = new RingVerifier();

type Message = typeof message extends fc.Arbitrary<infer T> ? T : never;

function build(m: Message): { data: Uint8Array; allRefused: boolean } {
  const byToken = new Map<bigint, RingEntry>();
  for (const x of m.entries) {
    const e = entryOf(x.kind, x.i, x.j);
    byToken.set(e.token, e);
  }
  const entries = [...byToken.values()].sort((a, b) => (a.token < b.token ? -1 : 1));
  const byPeer = new Map<string, LifeRecord>();
  for (const x of m.life) {
    const l = lifeOf(x.kind, x.i);
    byPeer.set(l.peer, l);
  }
  const life = [...byPeer.values()].sort((a, b) => (a.peer < b.peer ? -1 : 1));
  let allRefused = !entries.some((e) => validEntry(e, oracle)) && !life.some((l) => P.life.includes(l));
  const proofs = m.proofs.map((x) => entryOf(x.kind, x.i, x.j));
  const ring = withProofs(encodeRing({ genesis: GENESIS.genesis, entries, life, adopted: [] }, 4), proofs, 4);
  let data = m.asGave ? encodeGave(SPACE, ring) : encodeGossip([ring], []);
  if (m.mangle !== undefined) {
    const b = Buffer.from(data);
    const at = m.mangle.at % b.length;
    if (m.mangle.cut) data = b.subarray(0, at);
    else {
      b[at]! ^= 1 << m.mangle.bit;
      data = b;
    }
    allRefused = false; // a flipped bit may leave a valid message
  }
  return { data, allRefused };
}

function receiver(): Ipam {
  const transport: GossipTransport = { gossipToNeighbours: () => undefined, unicast: () => true, broadcast: () => undefined };
  const routes: RouteTable = { nextHop: () => undefined, broadcastNext: () => [], reachable: () => W.map((w) => w.name), distance: () => 1, onChange: () => () => undefined };
  return new Ipam({ clock: new FakeClock(), transport, routes, store: new MemoryIpamStore(), writer: W[1]! }, { self: W[1]!.name, ranges: [SPACE], init: { seeds: SEEDS }, clusterId: 'fuzz' });
}

describe('IPAM ring intake under fuzz', () => {
  it('throws nothing but GossipDecodeError; refusals change nothing; the ring holds only validly signed records', async () => {
    const check = new RingVerifier();
    const ip = receiver();
    await ip.start();
    let decodeErrors = 0;
    let refused = 0;
    let merged = 0;
    await fc.assert(
      fc.asyncProperty(message, async (m) => {
        const { data, allRefused } = build(m);
        const before = Buffer.from(ip.ringBytes(0)!);
        const counted = ip.counters.refusedSignature + ip.counters.refusedVersion + ip.counters.refusedRecord;
        let threw: unknown;
        try {
          if (m.asGave) ip.onUnicast(W[0]!.name, data);
          else ip.onGossip(data);
        } catch (err) {
          threw = err;
        }
        await Promise.resolve();
        const after = Buffer.from(ip.ringBytes(0)!);
        if (threw !== undefined) {
          expect(threw).toBeInstanceOf(GossipDecodeError);
          expect(after.equals(before)).toBe(true);
          decodeErrors++;
          return;
        }
        if (ip.counters.refusedSignature + ip.counters.refusedVersion + ip.counters.refusedRecord > counted) refused++;
        if (allRefused) expect(after.equals(before)).toBe(true);
        else if (!after.equals(before)) merged++;
        // Whatever is in the ring is validly signed (or the genesis's own).
        const p = decodeRing(after);
        const id = GENESIS.id;
        for (const e of p.entries) {
          if (e.sig === undefined) expect(GEN.some((g) => g.token === e.token && g.owner === e.owner && g.end === e.end && e.version === 1)).toBe(true);
          else expect(check.entry(id, 4, { ...e, writer: e.writer!, writerKey: e.writerKey!, sig: e.sig })).toBeDefined();
          expect(e.version).toBeLessThanOrEqual(MAX_VERSION);
        }
        for (const l of p.life) expect(check.check(l.writerKey, LIFE_LABEL, lifeBody(id, l.peer, l.epoch, l.writer), l.sig)).toBe(true);
      }),
      { numRuns: 400 },
    );
    // The fuzz reached every outcome.
    expect(decodeErrors).toBeGreaterThan(0);
    expect(refused).toBeGreaterThan(0);
    expect(merged).toBeGreaterThan(0);
    await ip.stop();
  });
});
