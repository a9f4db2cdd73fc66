/**
 * The mergeable topology state (a CRDT of signed peer records, one per name): the higher version
 * wins; two different records of the same version are ordered by their canonical bytes, so merge
 * is commutative, associative and idempotent (the law suite checks it). A state holds only
 * records whose signatures were checked (or that its owner signed); `offer` checks those it would
 * store. Wire-id collisions (two live names with one 32-bit id) keep the smaller name.
 */
import { WeftError } from '../core/errors.js';
import { peerNameFromPublicKey } from '../core/ids.js';
import type { GossipData, PeerName } from './contracts.js';
import { Verifier } from './signing.js';
import {
  DEFAULT_TOPOLOGY_LIMITS,
  compareBytes,
  decodeTopologyMessage,
  encodeTopologyMessage,
  recordProblems,
  tombstoneWriterKey,
  verifyKnown,
  type DecodedRecord,
  type KnownRecord,
  type PeerRecord,
  type RecordCache,
  type TopologyLimits,
} from './topology-codec.js';

export type Offer =
  | { kind: 'unchanged' }
  | { kind: 'stored'; evicted?: KnownRecord }
  | { kind: 'refused'; holder: PeerName }
  | { kind: 'badSignature' };

const UNCHANGED: Offer = { kind: 'unchanged' };
const STORED: Offer = { kind: 'stored' };
const BAD_SIGNATURE: Offer = { kind: 'badSignature' };

function encodedSize(records: number, recordBytes: number): number {
  return 2 + (records < 16 ? 1 : records < 0x10000 ? 3 : 5) + recordBytes;
}

function keyEquals(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(b);
}

/** Checks a decoded record's signatures (the owner's, and a tombstone's writer's). */
export function verifyDecoded(d: DecodedRecord, verifier: Verifier): boolean {
  if (d.verified) return true;
  const e = d.entry;
  return verifyKnown(e, e.record.left === undefined ? undefined : tombstoneWriterKey(e.bytes), verifier);
}

/**
 * The mergeable state: records by name. `merge` mutates the receiver and returns a state holding
 * only the records that changed in it (undefined when none did).
 */
export class TopologyState implements GossipData {
  private readonly entries = new Map<PeerName, KnownRecord>();
  private readonly liveById = new Map<number, PeerName>();
  private cached: Uint8Array | undefined = undefined;
  /** Sum of the entries' canonical sizes: the size of `encode()` without building it. */
  private recordBytes = 0;
  /** Names in order (kept while only versions change) and the records in that order. */
  private names: PeerName[] | undefined = undefined;
  private sorted: readonly PeerRecord[] | undefined = undefined;
  private readonly cache: RecordCache | undefined;

  /** `cache`: records this state verifies are added to it (see `RecordCache`). */
  constructor(cache?: RecordCache) {
    this.cache = cache;
  }

  /** Decodes a message and keeps the records that check out (throws `GossipDecodeError` for a malformed message). */
  static decode(data: Uint8Array, limits: Readonly<TopologyLimits> = DEFAULT_TOPOLOGY_LIMITS, verifier = new Verifier()): TopologyState {
    const s = new TopologyState();
    for (const d of decodeTopologyMessage(data, limits).records) s.offer(d, undefined, verifier);
    return s;
  }

  /**
   * A state from signed records (`signLive`, `writeTombstone`; their fields are checked, their
   * signatures trusted), offered in name order so wire-id conflicts resolve as in merge. A record
   * with bad fields throws `WeftError` `ERR_TOPOLOGY_RECORD`.
   */
  static of(entries: Iterable<KnownRecord>): TopologyState {
    const s = new TopologyState();
    for (const e of [...entries].sort((a, b) => (a.record.name < b.record.name ? -1 : a.record.name > b.record.name ? 1 : 0))) {
      const r = e.record;
      const problems = recordProblems(r);
      if (peerNameFromPublicKey(r.publicKey) !== r.name) problems.push('name does not match the public key');
      if (problems.length > 0) throw new WeftError('ERR_TOPOLOGY_RECORD', `invalid peer record ${r.name}: ${problems.join('; ')}`);
      s.offer({ entry: e, verified: true });
    }
    return s;
  }

  get size(): number {
    return this.entries.size;
  }

  get(name: PeerName): PeerRecord | undefined {
    return this.entries.get(name)?.record;
  }

  /** Every record (tombstones included), sorted by name: a frozen snapshot, shared until the next change. */
  records(): readonly PeerRecord[] {
    this.sorted ??= Object.freeze(this.sortedEntries().map((e) => e.record));
    return this.sorted;
  }

  encode(): Uint8Array {
    this.cached ??= encodeTopologyMessage(this.sortedEntries().map((e) => e.bytes));
    return this.cached;
  }

  /** True when `data` is byte for byte our current encoding (steady-state gossip: nothing to do). */
  encodes(data: Uint8Array): boolean {
    if (data.length !== encodedSize(this.entries.size, this.recordBytes)) return false;
    const mine = this.encode();
    return data.length === mine.length && keyEquals(data, mine);
  }

  merge(other: this): this | undefined {
    // The class is not meant to be subclassed; `this` is the contract's way of saying "same type".
    const delta = new TopologyState() as this;
    for (const e of other.sortedEntries()) {
      const d: DecodedRecord = { entry: e, verified: true };
      if (this.offer(d).kind === 'stored') delta.offer(d);
    }
    return delta.size > 0 ? delta : undefined;
  }

  clone(): TopologyState {
    const s = new TopologyState(this.cache);
    for (const [k, v] of this.entries) s.entries.set(k, v);
    for (const [k, v] of this.liveById) s.liveById.set(k, v);
    s.cached = this.cached;
    s.recordBytes = this.recordBytes;
    s.names = this.names;
    s.sorted = this.sorted;
    return s;
  }

  /**
   * Offers one record: stored when it is newer than what we hold (version, then bytes), its
   * signatures check out (unless `d.verified`; without a `verifier` an unverified record is
   * refused), and it does not collide on the wire id with a live record of a smaller name or
   * with `selfName`.
   * @internal used by `Topology`
   */
  offer(d: DecodedRecord, selfName?: PeerName, verifier?: Verifier): Offer {
    const e = d.entry;
    const record = e.record;
    const cur = this.entries.get(record.name);
    if (cur !== undefined) {
      if (record.version < cur.record.version) return UNCHANGED;
      // (bytes, not fields: two tombstones with equal fields can bury different records)
      if (record.version === cur.record.version && (e === cur || compareBytes(e.bytes, cur.bytes) <= 0)) return UNCHANGED;
    }
    if (!d.verified) {
      if (verifier === undefined || !verifyDecoded(d, verifier)) return BAD_SIGNATURE;
      this.cache?.add(e);
    }
    let evicted: KnownRecord | undefined;
    if (record.left === undefined) {
      const holder = this.liveById.get(e.id);
      if (holder !== undefined && holder !== record.name) {
        if (holder === selfName || holder < record.name) return { kind: 'refused', holder };
        evicted = this.entries.get(holder);
        this.remove(holder);
      }
    }
    this.put(e);
    return evicted === undefined ? STORED : { kind: 'stored', evicted };
  }

  /** Stores unconditionally (our own record). @internal */
  put(e: KnownRecord): void {
    const cur = this.entries.get(e.record.name);
    if (cur !== undefined) {
      if (this.liveById.get(cur.id) === cur.record.name) this.liveById.delete(cur.id);
      this.recordBytes -= cur.bytes.length;
    } else this.names = undefined;
    this.entries.set(e.record.name, e);
    this.recordBytes += e.bytes.length;
    if (e.record.left === undefined) this.liveById.set(e.id, e.record.name);
    this.cached = undefined;
    this.sorted = undefined;
  }

  /** @internal */
  remove(name: PeerName): boolean {
    const cur = this.entries.get(name);
    if (cur === undefined) return false;
    this.entries.delete(name);
    if (this.liveById.get(cur.id) === name) this.liveById.delete(cur.id);
    this.recordBytes -= cur.bytes.length;
    this.cached = undefined;
    this.sorted = undefined;
    this.names = undefined;
    return true;
  }

  /** @internal */
  entry(name: PeerName): KnownRecord | undefined {
    return this.entries.get(name);
  }

  private sortedEntries(): KnownRecord[] {
    this.names ??= [...this.entries.keys()].sort();
    return this.names.map((n) => this.entries.get(n)!);
  }
}
