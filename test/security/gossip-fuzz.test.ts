/**
 * Fuzz of every topology and MAC decoder (`decodeTopologyMessage`, `TopologyState.decode`,
 * `Topology.onGossip`, `decodeMacMessage`, `MacOwnersState.decode`, `MacOwners.onGossip`) with
 * random bytes, mutated, truncated and spliced messages, and structured records that are signed,
 * unsigned, signed by the wrong key, over the version bound or malformed. Checked every time:
 * nothing throws but GossipDecodeError; a refused message changes nothing; whatever the state
 * holds afterwards still verifies; and a valid record in the same message still merges.
 */
import fc from 'fast-check';
import { pack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { arrayHeader } from '../../src/mesh/canonical-msgpack.js';
import { GossipDecodeError } from '../../src/mesh/errors.js';
import { MacOwners, MacOwnersState, decodeMacMessage, signMacRecord, type MacEntry } from '../../src/mesh/mac-owners.js';
import { Verifier, signedBytes } from '../../src/mesh/signing.js';
import { MAX_LIVE_VERSION, Topology, TopologyState } from '../../src/mesh/topology.js';
import { decodeTopologyMessage, encodeTopologyMessage, type KnownRecord } from '../../src/mesh/topology-codec.js';
import { FakeClock } from '../fakes/fake-clock.js';
import { signed, testAuthor, tombstone } from '../mesh/test-authors.js';

const RUNS = 300;
const A = Array.from({ length: 5 }, (_, i) => testAuthor(`fuzz-peer-${i}`));
const verifier = new Verifier();

function onlyDecodeErrors(fn: () => unknown): boolean {
  try {
    fn();
    return true;
  } catch (err) {
    expect(err).toBeInstanceOf(GossipDecodeError);
    return false;
  }
}

// ------------------------------------------------------------------ topology

/** Signed records (live and tombstones) of peers 1..4, sorted by name as a message needs. */
const topologyRecordsArb: fc.Arbitrary<KnownRecord[]> = fc
  .uniqueArray(
    fc.record({
      peer: fc.integer({ min: 1, max: 4 }),
      version: fc.integer({ min: 1, max: 5 }),
      endpoints: fc.subarray(['198.18.0.1:6784', '[2001:2::1]:6784']),
      conns: fc.subarray([A[0]!.name, A[1]!.name, A[2]!.name]),
      left: fc.constantFrom(undefined, undefined, 'forgotten' as const, 'gone' as const),
      writer: fc.integer({ min: 0, max: 4 }),
    }),
    { selector: (r) => r.peer, maxLength: 4 },
  )
  .map((rs) =>
    rs
      .map(({ peer, version, endpoints, conns, left, writer }) => {
        const a = A[peer]!;
        const connections = conns.filter((c) => c !== a.name).sort().map((p) => ({ peer: p, established: true }));
        const live = signed(a, { version, endpoints, connections, nickname: `p${peer}` });
        return left === undefined ? live : tombstone(live, left, A[writer]!);
      })
      .sort((x, y) => (x.record.name < y.record.name ? -1 : 1)),
  );

const topologyMessageArb = topologyRecordsArb.map((rs) => encodeTopologyMessage(rs.map((r) => r.bytes)));

/** Bytes derived from valid messages: mutated, truncated, extended, spliced; and plain random bytes. */
function corrupted(valid: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  const mutate = fc.tuple(valid, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 })).map(([m, edits]) => {
    const out = Uint8Array.from(m);
    for (const [i, b] of edits) if (out.length > 0) out[i % out.length] = b;
    return out;
  });
  const truncate = fc.tuple(valid, fc.nat()).map(([m, n]) => m.subarray(0, m.length === 0 ? 0 : n % m.length));
  const extend = fc.tuple(valid, fc.uint8Array({ minLength: 1, maxLength: 40 })).map(([m, tail]) => Buffer.concat([m, tail]));
  const splice = fc.tuple(valid, valid, fc.nat(), fc.nat()).map(([a, b, i, j]) => Buffer.concat([a.subarray(0, a.length === 0 ? 0 : i % a.length), b.subarray(b.length === 0 ? 0 : j % b.length)]));
  return fc.oneof(mutate, truncate, extend, splice, fc.uint8Array({ maxLength: 400 }));
}

/** Structured format-2 records with every field chosen to be valid or not, as msgpack values. */
const rawTopologyRecordArb: fc.Arbitrary<unknown> = fc
  .record({
    owner: fc.integer({ min: 1, max: 4 }),
    key: fc.constantFrom('own', 'other', 'short', 'none'),
    version: fc.oneof(fc.integer({ min: 1, max: 9 }), fc.constantFrom(0, -1, 1.5, MAX_LIVE_VERSION, MAX_LIVE_VERSION + 1, Number.MAX_SAFE_INTEGER, 2 ** 64, '7', null)),
    signature: fc.constantFrom('owner', 'wrongKey', 'random', 'nil', 'short', 'absent'),
    tomb: fc.constantFrom(undefined, 'forgotten', 'gone', 'dead'),
    writerSig: fc.constantFrom('valid', 'random', 'nil'),
    extra: fc.constantFrom(undefined, 'map', 'nested'),
  })
  .map(({ owner, key, version, signature, tomb, writerSig, extra }) => {
    const a = A[owner]!;
    const v = typeof version === 'number' && Number.isSafeInteger(version) && version >= 1 && version <= MAX_LIVE_VERSION ? version : 3;
    const good = signed(a, { version: v });
    const bad = signed(a, { version: v }, A[0]!);
    const sig = { owner: good.bytes.subarray(-64), wrongKey: bad.bytes.subarray(-64), random: new Uint8Array(64).fill(owner), nil: null, short: new Uint8Array(12), absent: undefined }[signature];
    const publicKey = { own: a.publicKey, other: A[0]!.publicKey, short: new Uint8Array(31), none: null }[key];
    const live: unknown[] = [a.name, `p${owner}`, publicKey, version, [], [], Buffer.from(good.record.incarnation, 'hex'), 0];
    if (sig !== undefined) live.push(sig);
    if (extra === 'map') live[4] = { a: 1 };
    if (extra === 'nested') live[5] = [[[[[[[[[[1]]]]]]]]]];
    if (tomb === undefined) return live;
    const t = tombstone(good, tomb === 'dead' ? 'gone' : tomb, A[0]!);
    return [live, tomb, A[0]!.publicKey, { valid: t.bytes.subarray(-64), random: new Uint8Array(64), nil: null }[writerSig]];
  });

const rawTopologyMessageArb = fc.array(rawTopologyRecordArb, { maxLength: 4 }).map((records) => {
  const nameOf = (r: unknown) => String(Array.isArray(r) ? (Array.isArray(r[0]) ? (r[0] as unknown[])[0] : r[0]) : '');
  return pack([2, [...records].sort((x, y) => (nameOf(x) < nameOf(y) ? -1 : nameOf(x) > nameOf(y) ? 1 : 0))]);
});

function receiver(): Topology {
  const a = A[0]!;
  const t = new Topology({ clock: new FakeClock(), signer: a.signer, verifier }, { publicKey: a.publicKey, nickname: 'r', incarnation: '00000000000000f0' });
  t.onGossip(encodeTopologyMessage([signed(A[1]!, { version: 2 }).bytes]));
  return t;
}

/** Checks the signature at the end of canonical record bytes over the rest (array header one smaller). */
function signatureHolds(label: string, bytes: Uint8Array, key: Uint8Array): boolean {
  const body = Buffer.from(bytes.subarray(0, bytes.length - 66));
  body[0] = body[0]! - 1;
  return new Verifier().verify(key, signedBytes(label, body), bytes.subarray(bytes.length - 64));
}

/** Everything the topology holds carries valid signatures (checked here, not through the topology's code). */
function expectAllVerified(t: Topology): void {
  const records = decodeTopologyMessage(t.gossip()).records;
  expect(records.length).toBe(t.records().length);
  for (const { entry } of records) {
    expect(signatureHolds('topology-record v2', entry.live, entry.record.publicKey)).toBe(true);
    if (entry.record.left !== undefined) expect(signatureHolds('topology-tombstone v2', entry.bytes, entry.bytes.subarray(entry.bytes.length - 66 - 32, entry.bytes.length - 66))).toBe(true);
  }
}

function checkTopology(data: Uint8Array): void {
  onlyDecodeErrors(() => decodeTopologyMessage(data));
  onlyDecodeErrors(() => TopologyState.decode(data, undefined, verifier));
  const t = receiver();
  const before = Buffer.from(t.gossip());
  if (!onlyDecodeErrors(() => t.onGossip(data, 'ffffffffffffffff'))) expect(Buffer.from(t.gossip())).toEqual(before);
  expect(t.self.version).toBeLessThanOrEqual(MAX_LIVE_VERSION);
  expectAllVerified(t);
}

describe('fuzz: topology decoders', () => {
  it('valid messages merge, and hold only verified records', () => {
    fc.assert(
      fc.property(topologyMessageArb, (data) => {
        const t = receiver();
        t.onGossip(data);
        for (const d of decodeTopologyMessage(data).records) {
          const held = t.get(d.entry.record.name);
          expect(held === undefined ? 0 : held.version).toBeGreaterThanOrEqual(d.entry.record.name === A[1]!.name ? 2 : d.entry.record.version);
        }
        expectAllVerified(t);
      }),
      { numRuns: RUNS },
    );
  });

  it('random, mutated, truncated, extended and spliced messages: only GossipDecodeError, no change on refusal', () => {
    fc.assert(fc.property(corrupted(topologyMessageArb), checkTopology), { numRuns: RUNS * 3 });
  });

  it('structured records (signed, unsigned, wrong key, over the bound, malformed): only GossipDecodeError, only verified records land', () => {
    fc.assert(fc.property(rawTopologyMessageArb, checkTopology), { numRuns: RUNS * 2 });
  });

  it('a valid record merges whatever bad records share its message', () => {
    fc.assert(
      fc.property(fc.array(rawTopologyRecordArb, { maxLength: 3 }), fc.integer({ min: 10, max: 1000 }), (bad, version) => {
        const good = signed(A[1]!, { version });
        const t = receiver();
        const records: unknown[] = [...bad.filter((r) => !Array.isArray(r) || (Array.isArray(r[0]) ? (r[0] as unknown[])[0] : r[0]) !== A[1]!.name), good.bytes];
        const nameOf = (r: unknown) => (r instanceof Uint8Array ? A[1]!.name : String(Array.isArray(r) ? (Array.isArray(r[0]) ? (r[0] as unknown[])[0] : r[0]) : ''));
        const sorted = [...records].sort((x, y) => (nameOf(x) < nameOf(y) ? -1 : nameOf(x) > nameOf(y) ? 1 : 0));
        // Duplicate names make the message itself invalid; skip those draws.
        if (new Set(sorted.map(nameOf)).size !== sorted.length) return;
        const data = rawMessage(sorted);
        expect(() => t.onGossip(data)).not.toThrow();
        expect(t.get(A[1]!.name)?.version).toBe(version);
      }),
      { numRuns: RUNS },
    );
  });
});

/** A format-2 message of raw msgpack values and canonical record bytes (kept as they are). */
function rawMessage(records: unknown[]): Uint8Array {
  const parts = records.map((r) => (r instanceof Uint8Array ? Buffer.from(r) : pack(r)));
  return Buffer.concat([Buffer.of(0x92, 2), arrayHeader(records.length), ...parts]);
}

// ------------------------------------------------------------------ MAC records

const MACS = ['02:40:00:00:01:02', '02:40:00:00:01:03', '02:40:00:00:02:02', '0a:00:00:00:00:01'];

function macEntry(owner: number, version: number, macs: string[], by = owner): MacEntry {
  const a = A[owner]!;
  return signMacRecord({ owner: a.name, publicKey: a.publicKey, version, macs }, A[by]!);
}

const macMessageArb = fc
  .uniqueArray(fc.record({ owner: fc.integer({ min: 1, max: 4 }), version: fc.integer({ min: 1, max: 5 }), macs: fc.subarray(MACS) }), { selector: (r) => r.owner, maxLength: 4 })
  .map((rs) => MacOwnersState.of(rs.map((r) => macEntry(r.owner, r.version, [...r.macs].sort()))).encode());

const rawMacRecordArb: fc.Arbitrary<unknown> = fc
  .record({
    owner: fc.integer({ min: 1, max: 4 }),
    key: fc.constantFrom('own', 'other', 'short'),
    version: fc.oneof(fc.integer({ min: 1, max: 9 }), fc.constantFrom(0, 1.5, MAX_LIVE_VERSION + 1, 2 ** 64, 'x')),
    macs: fc.oneof(fc.subarray(MACS), fc.constantFrom(['02:AA:00:00:00:01'], [MACS[1]!, MACS[0]!], 'x')),
    signature: fc.constantFrom('owner', 'wrongKey', 'random', 'nil', 'absent'),
  })
  .map(({ owner, key, version, macs, signature }) => {
    const a = A[owner]!;
    const m = Array.isArray(macs) ? [...macs].sort() : macs;
    const v = typeof version === 'number' && Number.isSafeInteger(version) && version > 0 && version <= MAX_LIVE_VERSION ? version : 1;
    const list = Array.isArray(m) ? m : [];
    const sig = { owner: macEntry(owner, v, list).bytes.subarray(-64), wrongKey: macEntry(owner, v, list, 0).bytes.subarray(-64), random: new Uint8Array(64).fill(9), nil: null, absent: undefined }[signature];
    const out: unknown[] = [a.name, { own: a.publicKey, other: A[0]!.publicKey, short: new Uint8Array(5) }[key], version, m];
    if (sig !== undefined) out.push(sig);
    return out;
  });

const rawMacMessageArb = fc.array(rawMacRecordArb, { maxLength: 4 }).map((records) => pack([2, [...records].sort((x, y) => (String((x as unknown[])[0]) < String((y as unknown[])[0]) ? -1 : 1))]));

function macReceiver(): MacOwners {
  const a = A[0]!;
  const m = new MacOwners({ clock: new FakeClock(), signer: a.signer, verifier }, { self: a.name, publicKey: a.publicKey });
  m.onGossip(MacOwnersState.of([macEntry(1, 2, [MACS[3]!])]).encode());
  return m;
}

function checkMacs(data: Uint8Array): void {
  onlyDecodeErrors(() => decodeMacMessage(data));
  onlyDecodeErrors(() => MacOwnersState.decode(data, verifier));
  const m = macReceiver();
  const before = Buffer.from(m.gossip());
  if (!onlyDecodeErrors(() => m.onGossip(data, 'ffffffffffffffff'))) expect(Buffer.from(m.gossip())).toEqual(before);
  // Everything held carries its owner's valid signature.
  for (const e of decodeMacMessage(m.gossip()).entries) expect(signatureHolds('macs-record v2', e.bytes, e.record.publicKey)).toBe(true);
}

describe('fuzz: MAC decoders', () => {
  it('valid messages merge', () => {
    fc.assert(
      fc.property(macMessageArb, (data) => {
        const m = macReceiver();
        m.onGossip(data);
        const held = MacOwnersState.decode(m.gossip(), verifier);
        for (const e of decodeMacMessage(data).entries) expect(held.get(e.record.owner)!.version).toBeGreaterThanOrEqual(e.record.version);
        checkMacs(data);
      }),
      { numRuns: RUNS },
    );
  });

  it('random, mutated, truncated, extended and spliced messages: only GossipDecodeError, no change on refusal', () => {
    fc.assert(fc.property(corrupted(macMessageArb), checkMacs), { numRuns: RUNS * 3 });
  });

  it('structured records (signed, unsigned, wrong key, over the bound, malformed): only GossipDecodeError, only verified records land', () => {
    fc.assert(fc.property(rawMacMessageArb, checkMacs), { numRuns: RUNS * 2 });
  });
});
