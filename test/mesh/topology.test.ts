import fc from 'fast-check';
import { pack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { peerIdFromPeerName } from '../../src/core/ids.js';
import { GossipDecodeError, TopologyUpdateError } from '../../src/mesh/errors.js';
import { Topology, TopologyState, type PeerRecord, type RecordRefusal, type TopologyClone, type TopologyConflict } from '../../src/mesh/topology.js';
import type { KnownRecord } from '../../src/mesh/topology-codec.js';
import { FakeClock } from '../fakes/fake-clock.js';
import { recordingLogger } from '../fakes/recording-logger.js';
import { checkGossipDataLaws } from './gossip-data-laws.js';
import { TEST_INCARNATION, signed, testAuthor, tombstone, type TestAuthor } from './test-authors.js';

/** Six identities with distinct wire ids. */
const POOL = Array.from({ length: 6 }, (_, i) => testAuthor(`law-peer-${i}`));
if (new Set(POOL.map((a) => peerIdFromPeerName(a.name))).size !== POOL.length) throw new Error('pool has a wire-id collision');

const EPS = ['198.18.0.1:6784', '[fd00::1]:6784', '198.18.0.2:6784'];

const recordArb = (author: TestAuthor): fc.Arbitrary<KnownRecord> => {
  const others = POOL.map((a) => a.name).filter((n) => n !== author.name);
  return fc
    .record({
      version: fc.integer({ min: 1, max: 3 }),
      nickname: fc.constantFrom('', 'a', 'b'),
      endpoints: fc.subarray(EPS),
      conns: fc.subarray(others),
      established: fc.array(fc.boolean(), { minLength: 5, maxLength: 5 }),
      withEndpoint: fc.boolean(),
      incarnation: fc.constantFrom(TEST_INCARNATION, '00000000000000bb'),
      left: fc.constantFrom(undefined, undefined, 'forgotten' as const, 'gone' as const),
      writer: fc.integer({ min: 0, max: 1 }),
    })
    .map(({ version, nickname, endpoints, conns, established, withEndpoint, incarnation, left, writer }): KnownRecord => {
      const connections = [...conns].sort().map((peer, i) => ({ peer, established: established[i]!, ...(withEndpoint ? { endpoint: EPS[0]! } : {}) }));
      const live = signed(author, { version, nickname, endpoints, connections, incarnation });
      // Tombstones by one of two writers: equal versions with different bytes happen often.
      return left === undefined ? live : tombstone(live, left, POOL[writer]!);
    });
};

const stateArb: fc.Arbitrary<() => TopologyState> = fc
  .tuple(...POOL.map((a) => fc.option(recordArb(a), { nil: undefined })))
  .map((recs) => () => TopologyState.of(recs.filter((r): r is KnownRecord => r !== undefined)));

checkGossipDataLaws('TopologyState', stateArb);

// --- helpers for Topology ---

const AUTHORS = Array.from({ length: 8 }, (_, i) => testAuthor(`topo-peer-${i}`));
const NAMES = AUTHORS.map((a) => a.name);

type TopologyArgs = ConstructorParameters<typeof Topology>;

function make(i: number, clock = new FakeClock(), extra: Partial<TopologyArgs[1]> = {}, components: Partial<TopologyArgs[0]> = {}) {
  const a = AUTHORS[i]!;
  // A fixed run id: two topologies of one identity in a test are the same run unless told otherwise.
  const incarnation = (0x100 + i).toString(16).padStart(16, '0');
  return new Topology({ clock, signer: a.signer, ...components }, { publicKey: a.publicKey, nickname: `n${i}`, endpoints: [`198.18.0.${i + 1}:6784`], incarnation, ...extra });
}

function rec(i: number, version: number, more: Partial<PeerRecord> = {}): KnownRecord {
  return signed(AUTHORS[i]!, { nickname: `n${i}`, version, endpoints: [`198.18.0.${i + 1}:6784`], ...more });
}

const msg = (records: KnownRecord[]) => TopologyState.of(records).encode();

/** Symmetric established links among topologies. */
function connect(...pairs: [Topology, Topology][]) {
  const links = new Map<Topology, Set<string>>();
  for (const [a, b] of pairs) {
    (links.get(a) ?? links.set(a, new Set()).get(a)!).add(b.name);
    (links.get(b) ?? links.set(b, new Set()).get(b)!).add(a.name);
  }
  for (const [t, peers] of links) t.updateSelf({ connections: [...peers].map((peer) => ({ peer, established: true })) });
}

/** Exchanges full state until nothing changes. */
function sync(...ts: Topology[]) {
  for (let changed = true; changed; ) {
    changed = false;
    for (const a of ts) for (const b of ts) if (a !== b && b.onGossip(a.gossip()) !== undefined) changed = true;
  }
}

describe('Topology: versions', () => {
  it('starts at max(persisted + 1, wall clock ms)', () => {
    const clock = new FakeClock();
    expect(make(0, clock).self.version).toBe(clock.wallNow());
    expect(make(0, clock, { version: clock.wallNow() + 5000 }).self.version).toBe(clock.wallNow() + 5001);
  });

  it('updateSelf bumps the version only when something changed, and sorts connections', () => {
    const clock = new FakeClock();
    const t = make(0, clock);
    const v0 = t.self.version;
    expect(t.updateSelf({ endpoints: ['198.18.0.1:6784'] })).toBe(false);
    expect(t.self.version).toBe(v0);
    expect(t.updateSelf({ connections: [{ peer: NAMES[3]!, established: true }, { peer: NAMES[1]!, established: false }] })).toBe(true);
    expect(t.self.version).toBeGreaterThan(v0);
    expect(t.self.connections.map((c) => c.peer)).toEqual([NAMES[3]!, NAMES[1]!].sort());
    const v1 = t.self.version;
    t.updateSelf({ nickname: 'renamed' });
    expect(t.self.version).toBe(v1 + 1); // the wall clock did not move: +1
  });

  it.each([
    ['a bad endpoint', { endpoints: ['example.com:80'] }, 'is not ip:port'],
    ['a connection to itself', { connections: [{ peer: NAMES[0]!, established: true }] }, 'connection to itself'],
    ['duplicate connections', { connections: [{ peer: NAMES[1]!, established: true }, { peer: NAMES[1]!, established: false }] }, 'not strictly ascending'],
    ['a long nickname', { nickname: 'x'.repeat(65) }, 'nickname longer than 64'],
    ['65 endpoints', { endpoints: Array.from({ length: 65 }, (_, i) => `10.0.0.${i}:1`) }, '65 endpoints'],
  ])('updateSelf refuses %s', (_what, update, reason) => {
    const t = make(0);
    const before = Buffer.from(t.gossip());
    const err = (() => {
      try {
        t.updateSelf(update);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(TopologyUpdateError);
    expect((err as TopologyUpdateError).code).toBe('ERR_TOPOLOGY_UPDATE');
    expect((err as Error).message).toContain(reason);
    expect(Buffer.from(t.gossip())).toEqual(before);
  });

  it('the higher version wins; a lower one changes nothing', () => {
    const t = make(0);
    expect(t.onGossip(msg([rec(1, 5)]))).toBeDefined();
    expect(t.get(NAMES[1]!)?.version).toBe(5);
    expect(t.onGossip(msg([rec(1, 4, { nickname: 'old' })]))).toBeUndefined();
    expect(t.get(NAMES[1]!)?.nickname).toBe('n1');
    const delta = t.onGossip(msg([rec(1, 6, { nickname: 'new' })]));
    expect(TopologyState.decode(delta!).records().map((r) => [r.name, r.version])).toEqual([[NAMES[1]!, 6]]);
  });

  it('equal versions with different content: every peer keeps the same one', () => {
    const a = rec(1, 7, { nickname: 'left' });
    const b = rec(1, 7, { nickname: 'right' });
    const x = make(0);
    const y = make(2);
    x.onGossip(msg([a]));
    x.onGossip(msg([b]));
    y.onGossip(msg([b]));
    y.onGossip(msg([a]));
    expect(x.get(NAMES[1]!)).toEqual(y.get(NAMES[1]!));
    const winner = Buffer.compare(a.bytes, b.bytes) > 0 ? 'left' : 'right';
    expect(x.get(NAMES[1]!)?.nickname).toBe(winner);
  });

  it('returns only the changed records as delta, fires onChange once per changing merge', () => {
    const t = make(0);
    const changes: (readonly string[])[] = [];
    t.onChange((c) => changes.push(c));
    t.onGossip(msg([rec(1, 2), rec(2, 2)]));
    const delta = t.onGossip(msg([rec(1, 2), rec(2, 3), rec(3, 1)]));
    expect(TopologyState.decode(delta!).records().map((r) => r.name)).toEqual([NAMES[2]!, NAMES[3]!].sort());
    expect(t.onGossip(msg([rec(1, 2)]))).toBeUndefined();
    expect(changes).toEqual([[NAMES[1]!, NAMES[2]!].sort(), [NAMES[2]!, NAMES[3]!].sort()]);
    expect(t.stats.merges).toBe(2);
  });

  it('recognises its own full state without decoding it', () => {
    const t = make(0);
    t.onGossip(msg([rec(1, 2)]));
    expect(t.onGossip(Uint8Array.from(t.gossip()))).toBeUndefined();
  });

  it('accepts non-canonical msgpack (versions as float64) and keeps canonical bytes', () => {
    const k = rec(1, 1767225600123);
    const r = k.record;
    const raw = pack([2, [[r.name, r.nickname, r.publicKey, r.version, r.endpoints, [], Buffer.from(r.incarnation, 'hex'), r.started, k.bytes.subarray(k.bytes.length - 64)]]]);
    expect(Buffer.from(raw).includes(0xcb)).toBe(true); // msgpackr writes this version as a float64
    const t = make(0);
    t.onGossip(raw);
    const u = make(0);
    u.onGossip(msg([k]));
    expect(t.get(r.name)?.version).toBe(r.version);
    expect(Buffer.from(t.gossip())).toEqual(Buffer.from(u.gossip()));
  });
});

describe('Topology: our own record', () => {
  it('never takes a remote copy of itself; re-asserts above it', () => {
    const t = make(0);
    const local: Uint8Array[] = [];
    t.onLocalUpdate((d) => local.push(d));
    // Our own record from before a restart (signed by our key, another run).
    const past = rec(0, t.self.version + 100, { nickname: 'past', endpoints: ['6.6.6.6:1'] });
    t.onGossip(msg([past]));
    expect(t.self.nickname).toBe('n0');
    expect(t.self.endpoints).toEqual(['198.18.0.1:6784']);
    expect(t.self.version).toBeGreaterThan(past.record.version);
    expect(local).toHaveLength(1);
    expect(TopologyState.decode(local[0]!).get(t.name)?.version).toBe(t.self.version);
  });

  it('ignores an older copy of itself', () => {
    const t = make(0);
    const v = t.self.version;
    const local: Uint8Array[] = [];
    t.onLocalUpdate((d) => local.push(d));
    expect(t.onGossip(msg([rec(0, v - 1, { nickname: 'old' })]))).toBeUndefined();
    expect(t.self.version).toBe(v);
    expect(local).toEqual([]);
  });
});

describe('Topology: two routers with one key', () => {
  /** Runs of identity 0 started `ms` apart, each with its own incarnation, and a third peer between them. */
  function clones() {
    const clock = new FakeClock();
    const events: { who: string; clone: TopologyClone }[] = [];
    const older = make(0, clock, { incarnation: '00000000000000a1', endpoints: ['198.18.0.1:6784'] }, { onClone: (c) => events.push({ who: 'older', clone: c }) });
    clock.advance(5000);
    const newer = make(0, clock, { incarnation: '00000000000000b2', endpoints: ['198.18.0.9:6784'] }, { onClone: (c) => events.push({ who: 'newer', clone: c }) });
    const relay = make(1, clock);
    return { clock, older, newer, relay, events };
  }

  /** Gossip through the relay, one round at a time, until nothing changes (false after `rounds`). */
  function settle(ts: Topology[], rounds = 20): boolean {
    for (let i = 0; i < rounds; i++) {
      const before = ts.map((t) => Buffer.from(t.gossip()));
      for (const a of ts) for (const b of ts) if (a !== b) b.onGossip(a.gossip());
      if (ts.every((t, k) => before[k]!.equals(t.gossip()))) return true;
    }
    return false;
  }

  it('the later one is told to stop, the earlier one warns once and keeps its record; versions stop climbing', () => {
    const { older, newer, relay, events } = clones();
    expect(settle([older, relay, newer])).toBe(true);
    expect(events.map((e) => [e.who, e.clone.action])).toEqual([
      ['older', 'warn'],
      ['newer', 'stop'],
    ]);
    expect(events[1]!.clone).toMatchObject({
      name: older.name,
      self: { incarnation: '00000000000000b2', endpoints: ['198.18.0.9:6784'] },
      other: { incarnation: '00000000000000a1', endpoints: ['198.18.0.1:6784'] },
    });
    expect(relay.get(older.name)).toEqual(older.self);
    expect(older.stats.clones).toBe(1);
    expect(newer.stats.clones).toBe(1);
    const v = older.self.version;
    expect(settle([older, relay, newer])).toBe(true);
    expect(older.self.version).toBe(v);
  });

  it('our own record from before a restart is re-asserted over, and is no clone', () => {
    const clock = new FakeClock();
    const events: TopologyClone[] = [];
    const before = make(0, clock, { incarnation: '00000000000000a1' });
    before.updateSelf({ nickname: 'before' });
    before.updateSelf({ nickname: 'before again' });
    const past = before.gossip();
    // Restarted 1 ms later without its version file: it starts below its last version.
    clock.advance(1);
    const after = make(0, clock, { incarnation: '00000000000000b2' }, { onClone: (c) => events.push(c) });
    const relay = make(1, clock);
    relay.onGossip(past);
    expect(after.self.version).toBeLessThan(before.self.version);
    expect(settle([after, relay])).toBe(true);
    expect(after.self.version).toBeGreaterThan(before.self.version);
    expect(relay.get(after.name)).toEqual(after.self);
    after.onGossip(past);
    expect(events).toEqual([]);
    expect(after.stats.clones).toBe(0);
  });
});

describe('Topology: tombstones', () => {
  it('forget writes a "forgotten" tombstone at the buried version + 1, signed by its writer, tells the daemon, and spreads', () => {
    const forgottenA: string[] = [];
    const forgottenC: string[] = [];
    const clock = new FakeClock();
    const a = make(0, clock, {}, { onForgotten: (n) => forgottenA.push(n) });
    const b = make(1, clock);
    const c = make(2, clock, {}, { onForgotten: (n) => forgottenC.push(n) });
    const d = make(3, clock);
    sync(a, b, c);
    const local: Uint8Array[] = [];
    a.onLocalUpdate((x) => local.push(x));
    const known = a.get(b.name)!.version;
    expect(a.forget(b.name)).toBe(true);
    expect(a.get(b.name)).toMatchObject({ version: known + 1, left: 'forgotten', endpoints: [], connections: [], writer: a.name, incarnation: b.incarnation });
    expect(forgottenA).toEqual([b.name]);
    expect(local).toHaveLength(1);
    // Another peer forgetting the same record writes its own tombstone of the same version;
    // every peer keeps the same one of the two.
    c.forget(b.name);
    expect(c.get(b.name)).toMatchObject({ version: known + 1, left: 'forgotten', writer: c.name });
    sync(a, c);
    expect(a.get(b.name)).toEqual(c.get(b.name));
    d.onGossip(local[0]!);
    expect(d.get(b.name)?.left).toBe('forgotten');
    expect(forgottenC).toEqual([b.name]);
    expect(a.forget(b.name)).toBe(false);
    expect(a.forget(a.name)).toBe(false);
    expect(a.forget(NAMES[7]!)).toBe(false);
    expect(a.peers().map((r) => r.name)).not.toContain(b.name);
    expect(a.stats.tombstones).toBe(1);
  });

  it('a live peer that sees its own tombstone comes back with a higher version', () => {
    const clock = new FakeClock();
    const a = make(0, clock);
    const b = make(1, clock);
    sync(a, b);
    a.forget(b.name);
    const tomb = a.get(b.name)!;
    b.onGossip(a.gossip());
    expect(b.self.left).toBeUndefined();
    expect(b.self.version).toBeGreaterThan(tomb.version);
    a.onGossip(b.gossip());
    expect(a.get(b.name)?.left).toBeUndefined();
    expect(a.stats.tombstones).toBe(0);
  });

  it('peers unreachable for goneAfterMs become "gone" on every peer, at the buried version + 1', () => {
    const clock = new FakeClock();
    const opts = { goneAfterMs: 600_000, sweepIntervalMs: 30_000 };
    const [a, b, c] = [make(0, clock, opts), make(1, clock, opts), make(2, clock, opts)];
    connect([a, b], [b, c]);
    sync(a, b, c);
    for (const t of [a, c]) t.start();
    // b dies: a and c drop their connections to it.
    a.updateSelf({ connections: [] });
    c.updateSelf({ connections: [] });
    sync(a, c);
    clock.advance(600_000);
    expect(a.get(b.name)?.left).toBeUndefined(); // unreachable since the first sweep, not 10 min yet
    clock.advance(60_000);
    expect(a.get(b.name)?.left).toBe('gone');
    expect(c.get(b.name)?.left).toBe('gone');
    expect(Buffer.from(a.gossip())).not.toEqual(Buffer.from(c.gossip())); // a and c are cut from each other too
    const lastB = b.self.version;
    expect(a.get(b.name)).toMatchObject({ version: lastB + 1, left: 'gone', writer: a.name });
    expect(c.get(b.name)).toMatchObject({ version: lastB + 1, left: 'gone', writer: c.name });
    expect(a.get(c.name)?.left).toBe('gone');
    expect(a.self.left).toBeUndefined();
    a.stop();
    c.stop();
  });

  it('reachable peers are never tombstoned', () => {
    const clock = new FakeClock();
    const [a, b] = [make(0, clock, { goneAfterMs: 1000, sweepIntervalMs: 500 }), make(1, clock)];
    connect([a, b]);
    sync(a, b);
    a.start();
    clock.advance(10_000);
    expect(a.get(b.name)?.left).toBeUndefined();
    a.stop();
  });

  it('tombstones are dropped tombstoneTtlMs after they were written or received', () => {
    const clock = new FakeClock();
    const a = make(0, clock, { tombstoneTtlMs: 3_600_000, sweepIntervalMs: 60_000 });
    const b = make(1, clock);
    a.onGossip(b.gossip());
    a.start();
    a.forget(b.name);
    clock.advance(3_540_000);
    expect(a.get(b.name)?.left).toBe('forgotten');
    clock.advance(120_000);
    expect(a.get(b.name)).toBeUndefined();
    expect(a.stats).toMatchObject({ records: 1, tombstones: 0 });
    a.stop();
  });
});

describe('Topology: wire-id collisions', () => {
  // Found by a birthday search over sha256("collide-N") secrets: both names start with 8163958d.
  const big = testAuthor('collide-20978');
  const small = testAuthor('collide-14420');
  const bigName = big.name;
  const smallName = small.name;
  const r = (a: TestAuthor, v = 1, more: Partial<PeerRecord> = {}): KnownRecord => signed(a, { version: v, ...more });

  it('the pair collides', () => {
    expect(bigName > smallName).toBe(true);
    expect(peerIdFromPeerName(bigName)).toBe(peerIdFromPeerName(smallName));
  });

  it.each([
    ['larger first', [big, small]],
    ['smaller first', [small, big]],
  ])('a third peer keeps the smaller name (%s), counts and reports once', (_order, order) => {
    const conflicts: TopologyConflict[] = [];
    const t = make(0, new FakeClock(), {}, { onConflict: (c) => conflicts.push(c) });
    for (const pk of order) t.onGossip(msg([r(pk)]));
    t.onGossip(msg([r(big, 2)]));
    expect(t.get(smallName)).toBeDefined();
    expect(t.get(bigName)).toBeUndefined();
    expect(t.stats.conflicts).toBe(2);
    expect(conflicts).toEqual([{ refused: bigName, holder: smallName, id: peerIdFromPeerName(bigName) }]);
  });

  it('the owner of the larger name keeps itself and refuses the other', () => {
    const t = new Topology({ clock: new FakeClock(), signer: big.signer }, { publicKey: big.publicKey });
    expect(t.onGossip(msg([r(small)]))).toBeUndefined();
    expect(t.get(smallName)).toBeUndefined();
    expect(t.stats.conflicts).toBe(1);
  });

  it('a tombstone holds no wire id', () => {
    const t = make(0);
    t.onGossip(msg([tombstone(r(small, 1), 'gone', AUTHORS[3]!)]));
    t.onGossip(msg([r(big)]));
    expect(t.get(bigName)?.left).toBeUndefined();
    expect(t.stats.conflicts).toBe(0);
  });
});

/** The fields of a live record as msgpack values (signature included), to break one at a time. */
function liveFields(k: KnownRecord): unknown[] {
  const r = k.record;
  return [r.name, r.nickname, r.publicKey, r.version, r.endpoints, r.connections.map((c) => [c.peer, c.established, c.endpoint ?? null]), Buffer.from(r.incarnation, 'hex'), r.started, k.bytes.subarray(k.bytes.length - 64)];
}

/** A message of raw records, sorted by name where they have one. */
function rawMessage(records: unknown[][]): Uint8Array {
  const nameOf = (f: unknown[]) => String(Array.isArray(f[0]) ? (f[0] as unknown[])[0] : f[0]);
  return pack([2, [...records].sort((x, y) => (nameOf(x) < nameOf(y) ? -1 : 1))]);
}

describe('Topology: malformed gossip', () => {
  const good = rec(1, 5, { connections: [{ peer: NAMES[2]!, established: true, endpoint: '198.18.0.3:6784' }] });
  const validFull = msg([good, rec(3, 1)]);

  const cases: [string, Uint8Array, string][] = [
    ['empty', new Uint8Array(0), 'not a complete msgpack value'],
    ['truncated', validFull.subarray(0, validFull.length - 3), 'not a complete msgpack value'],
    ['trailing bytes', Buffer.concat([validFull, Buffer.of(0)]), 'not a complete msgpack value'],
    ['a reserved byte', Buffer.of(0xc1), 'expected an array'],
    ['a map', pack({ records: [] }), 'message is object, expected an array'],
    ['three fields', pack([2, [], 0]), 'message has 3 fields'],
    ['format 1 (unsigned records)', pack([1, []]), 'format 1 is not 2'],
    ['records not an array', pack([2, 'x']), 'records is string'],
    ['unsorted records', pack([2, [liveFields(rec(3, 1)), liveFields(rec(1, 1))].sort((x, y) => ((x[0] as string) < (y[0] as string) ? 1 : -1))]), 'not strictly ascending by name'],
    ['duplicate records', pack([2, [liveFields(rec(3, 1)), liveFields(rec(3, 2))]]), 'not strictly ascending by name'],
  ];

  it.each(cases)('rejects a message with %s (GossipDecodeError), state untouched', (_what, data, reason) => {
    const t = make(0);
    t.onGossip(msg([rec(1, 2), rec(2, 3)]));
    const before = Buffer.from(t.gossip());
    const changes: unknown[] = [];
    t.onChange((c) => changes.push(c));
    let err: unknown;
    try {
      t.onGossip(data);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GossipDecodeError);
    expect((err as GossipDecodeError).code).toBe('ERR_GOSSIP_DECODE');
    expect((err as GossipDecodeError).channel).toBe('topology');
    expect((err as Error).message).toContain(reason);
    expect(Buffer.from(t.gossip())).toEqual(before);
    expect(changes).toEqual([]);
    expect(t.stats.decodeErrors).toBe(1);
  });

  // Each bad record goes with a good one of another peer: the bad one is refused by itself.
  const withField = (i: number, v: unknown) => {
    const f = liveFields(good);
    f[i] = v;
    return f;
  };
  const conn = (c: unknown[]) => withField(5, [c]);
  const tombFields = (left: unknown, key: unknown, sig: unknown) => [liveFields(good), left, key, sig];
  const goodTomb = tombstone(good, 'forgotten', AUTHORS[4]!);
  const goodTombSig = goodTomb.bytes.subarray(goodTomb.bytes.length - 64);
  const recordCases: [string, unknown[], RecordRefusal, string][] = [
    ['6 fields', liveFields(good).slice(0, 6), 'malformed', 'has 6 fields, expected 9'],
    ['the unsigned layout of format 1', [...liveFields(good).slice(0, 6), null], 'unsigned', 'no signature'],
    ['a nil signature', withField(8, null), 'unsigned', 'has no signature'],
    ['a 63-byte signature', withField(8, new Uint8Array(63)), 'unsigned', 'signature is 63 bytes'],
    ['a numeric name', withField(0, 7), 'malformed', 'name is number'],
    ['a bad name', withField(0, 'XYZ'), 'malformed', 'is not a peer name'],
    ['a long nickname', withField(1, 'n'.repeat(65)), 'malformed', 'nickname longer than 64'],
    ['a string public key', withField(2, 'key'), 'malformed', 'publicKey is string, expected binary'],
    ['a 31-byte public key', withField(2, new Uint8Array(31)), 'malformed', 'publicKey is 31 bytes'],
    ['a name that is not its key', withField(2, AUTHORS[4]!.publicKey), 'nameMismatch', 'name does not match its public key'],
    ['version 0', withField(3, 0), 'malformed', 'version 0 is not a positive integer'],
    ['version -3', withField(3, -3), 'malformed', 'version -3'],
    ['version 1.5', withField(3, 1.5), 'malformed', 'version 1.5'],
    ['version "5"', withField(3, '5'), 'malformed', 'version is string'],
    ['version 2^53 − 1', withField(3, Number.MAX_SAFE_INTEGER), 'versionBound', 'above the bound'],
    ['endpoints not an array', withField(4, '1.2.3.4:5'), 'malformed', 'endpoints is string'],
    ['65 endpoints', withField(4, Array.from({ length: 65 }, (_, i) => `10.0.0.${i}:1`)), 'malformed', '65 endpoints'],
    ['a hostname endpoint', withField(4, ['example.com:80']), 'malformed', 'is not ip:port'],
    ['port 0', withField(4, ['1.2.3.4:0']), 'malformed', 'is not ip:port'],
    ['4097 connections', withField(5, Array.from({ length: 4097 }, () => [NAMES[2], true, null])), 'malformed', '4097 connections'],
    ['a connection of 2 fields', conn([NAMES[2], true]), 'malformed', 'has 2 fields, expected 3'],
    ['a connection to a non-name', conn(['peer', true, null]), 'malformed', 'is not a peer name'],
    ['established "yes"', conn([NAMES[2], 'yes', null]), 'malformed', 'established is string'],
    ['a bad connection endpoint', conn([NAMES[2], true, '1.2.3.4']), 'malformed', 'is not ip:port'],
    ['a connection to itself', conn([NAMES[1], true, null]), 'malformed', 'connection to itself'],
    ['unsorted connections', withField(5, [[NAMES[2], true, null], [NAMES[0], true, null]].sort((x, y) => ((x[0] as string) < (y[0] as string) ? 1 : -1))), 'malformed', 'not strictly ascending'],
    ['a 7-byte incarnation', withField(6, new Uint8Array(7)), 'malformed', 'incarnation is 7 bytes'],
    ['a negative start', withField(7, -1), 'malformed', 'started -1'],
    ['a changed field under the owner\'s signature', withField(1, 'renamed'), 'badSignature', 'signature'],
    ['a signature by another key', liveFields(signed(AUTHORS[1]!, { ...good.record }, AUTHORS[4]!)), 'badSignature', 'signature'],
    ['a tombstone left "dead"', tombFields('dead', AUTHORS[4]!.publicKey, goodTombSig), 'malformed', 'left is "dead"'],
    ['a tombstone without a writer signature', tombFields('forgotten', AUTHORS[4]!.publicKey, null), 'unsigned', 'writer signature is nil'],
    ['a tombstone whose writer did not sign it', tombFields('forgotten', AUTHORS[5]!.publicKey, goodTombSig), 'badSignature', 'signature'],
    ['a tombstone of a changed record', [withField(4, []), 'forgotten', AUTHORS[4]!.publicKey, goodTombSig], 'badSignature', 'signature'],
  ];

  it.each(recordCases)('refuses a record with %s by itself, counts it, and merges the rest', (_what, bad, reason) => {
    const { logger, lines } = recordingLogger();
    const t = make(0, new FakeClock(), {}, { logger });
    t.onGossip(msg([rec(1, 2), rec(2, 3)]));
    const held = t.get(NAMES[1]!);
    const data = rawMessage([bad, liveFields(rec(3, 7))]);
    expect(() => t.onGossip(data, 'aaaaaaaaaaaaaaaa')).not.toThrow();
    expect(t.get(NAMES[1]!)).toBe(held);
    expect(t.get(NAMES[3]!)?.version).toBe(7);
    expect(t.stats.refused[reason]).toBe(1);
    expect(Object.values(t.stats.refused).reduce((x, y) => x + y, 0)).toBe(1);
    expect(t.stats.decodeErrors).toBe(0);
    // logged once for this peer and reason, then only counted
    t.onGossip(rawMessage([bad]), 'aaaaaaaaaaaaaaaa');
    expect(t.stats.refused[reason]).toBe(2);
    expect(lines.filter((l) => String(l.msg).startsWith('topology record refused'))).toHaveLength(1);
    expect(lines.find((l) => String(l.msg).startsWith('topology record refused'))).toMatchObject({ peer: 'aaaaaaaaaaaaaaaa', reason });
  });

  it('a tombstone holding a valid record and signed by its writer is accepted', () => {
    const t = make(0);
    t.onGossip(msg([rec(1, 2)]));
    t.onGossip(rawMessage([[liveFields(good), 'forgotten', AUTHORS[4]!.publicKey, goodTombSig]]));
    expect(t.get(NAMES[1]!)).toMatchObject({ version: 6, left: 'forgotten', writer: AUTHORS[4]!.name });
  });

  it('rejects oversized messages and too many records (limits)', () => {
    const t = make(0, new FakeClock(), { limits: { maxMessageBytes: 200, maxRecords: 1 } });
    expect(() => t.onGossip(new Uint8Array(201))).toThrow(/201 bytes exceeds 200/);
    const two = rawMessage([liveFields(rec(1, 1)), liveFields(rec(2, 1))]);
    const u = make(0, new FakeClock(), { limits: { maxRecords: 1 } });
    expect(() => u.onGossip(two)).toThrow(/2 records \(at most 1\)/);
    expect(() => u.onGossip(msg([rec(1, 1), rec(2, 1)]))).toThrow(/2 records \(at most 1\)/);
  });

  it('the default limit is 4 MiB', () => {
    expect(() => make(0).onGossip(new Uint8Array(4 * 1024 * 1024 + 1))).toThrow(GossipDecodeError);
  });

  it('rejects a canonical-looking message whose record bytes are not msgpack', () => {
    const bytes = Uint8Array.from(msg([rec(1, 1)]));
    bytes[3] = 0xc1; // the record's array header: a reserved byte
    expect(() => make(0).onGossip(bytes)).toThrow(GossipDecodeError);
  });

  it('never throws anything but GossipDecodeError on random bytes or mutations; a mutated record never lands', () => {
    const base = msg([good, tombstone(rec(3, 1), 'gone', AUTHORS[4]!)]);
    const merged = make(0);
    merged.onGossip(base);
    const after = Buffer.from(merged.gossip());
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })).map(([i, b]) => {
        const m = Uint8Array.from(base);
        m[i] = b;
        return m;
      })), (data) => {
        const t = make(0);
        const before = Buffer.from(t.gossip());
        try {
          t.onGossip(data);
        } catch (e) {
          expect(e).toBeInstanceOf(GossipDecodeError);
          expect(Buffer.from(t.gossip())).toEqual(before);
          return;
        }
        // Every record that landed is one of the base's (a flipped byte breaks a signature).
        for (const r of t.records()) if (r.name !== t.name) expect(r).toEqual(merged.get(r.name));
        expect(t.records().length).toBeLessThanOrEqual(after.length);
      }),
      { numRuns: 500 },
    );
  });
});

describe('Topology: other entry points', () => {
  it('onUnicast merges and announces what changed as a local update; onBroadcast relays the data', () => {
    const t = make(0);
    const local: Uint8Array[] = [];
    t.onLocalUpdate((d) => local.push(d));
    t.onUnicast(NAMES[1]!, msg([rec(1, 1)]));
    expect(local).toHaveLength(1);
    const data = msg([rec(2, 1)]);
    expect(t.onBroadcast(NAMES[2]!, data)).toBe(data);
    expect(t.get(NAMES[2]!)).toBeDefined();
  });

  it('mergeDeltas combines its own deltas into the newest record of each name', () => {
    const t = make(0);
    const d1 = t.onGossip(msg([rec(1, 1)]))!;
    const d2 = t.onGossip(msg([rec(1, 2), rec(2, 1)]))!;
    const merged = TopologyState.decode(t.mergeDeltas([d1, d2]));
    expect(merged.records().map((r) => [r.name, r.version])).toEqual([
      [NAMES[1]!, 2],
      [NAMES[2]!, 1],
    ].sort());
    // Deltas it did not produce are decoded.
    expect(TopologyState.decode(t.mergeDeltas([msg([rec(2, 1)])])).size).toBe(1);
  });

  it('peers() lists live records, records() everything, both sorted', () => {
    const t = make(0);
    t.onGossip(msg([rec(1, 1), tombstone(rec(2, 1), 'gone', AUTHORS[3]!)]));
    expect(t.peers().map((r) => r.name)).toEqual([NAMES[0]!, NAMES[1]!].sort());
    expect(t.records().map((r) => r.name)).toEqual([NAMES[0]!, NAMES[1]!, NAMES[2]!].sort());
  });
});
