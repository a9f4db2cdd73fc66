/**
 * Topology: what every peer knows about every peer, spread by gossip on the "topology" channel.
 * A CRDT of peer records (`topology-codec.ts` has the record and its wire format).
 *
 * Merge, per record: the higher version wins; two different records of the same version are
 * ordered by their canonical bytes (so merge is commutative, associative and idempotent; the law
 * suite checks it). Only the owner bumps its record's version (`updateSelf`); a peer starts at
 * max(persisted version + 1, wall clock in ms), so a restart without state still wins.
 *
 * Tombstones. `forget(name)` (the user's `weft forget PEER`) writes { version: known + 1,
 * left: 'forgotten' }; a peer with no path from us (symmetric established connections, as routes
 * use) for `goneAfterMs` becomes { version: known + 1, left: 'gone' }. Both are derived from the
 * known record only, so two peers writing the same tombstone write the same bytes. At equal
 * versions "forgotten" sorts above "gone". Tombstones are dropped `tombstoneTtlMs` after they were
 * written or received here (an older live record arriving after that is accepted again and, if its
 * peer is really gone, tombstoned again after `goneAfterMs`). After a partition longer than
 * `goneAfterMs` each side holds the other as "gone"; when it heals, every peer sees its tombstone
 * and re-asserts, so for a few gossip rounds peers are missing from routes.
 *
 * Forget semantics. A tombstone removes a peer from routes and status everywhere, and
 * `onForgotten(name)` (fired on every peer, for local and gossiped "forgotten" tombstones) lets the
 * daemon stop dialing it and drop its keys. It does not ban: if the forgotten peer is alive and
 * connected to any member, it sees its own tombstone and re-asserts itself with a higher version
 * (a peer forgotten by mistake comes back). Forget a peer after stopping it; a peer that should
 * never return must lose its key. The same re-assert answers any record carrying our name with a
 * version at or above ours (our record from before a restart): remote data never replaces the
 * local record.
 *
 * Wire-id collisions. Two live records with different names but the same `peerIdFromPeerName`:
 * the lexicographically larger name is refused (or evicted when it came first), counted, and
 * reported once per pair through `onConflict`; our own record always wins locally. This is the one
 * rule that depends on arrival order; every peer still ends up keeping the smaller name.
 */
import type { Clock, TimerHandle } from '../src/core/clock.js';
import { peerIdFromPeerName, peerNameFromPublicKey } from '../src/core/ids.js';
import { silentLogger, type Logger } from '../src/core/logger.js';
import type { GossipData, Gossiper, PeerName } from './contracts.js';
import { GossipDecodeError, TopologyUpdateError } from './errors.js';
import { reachableFrom } from './routes.js';
import {
  DEFAULT_TOPOLOGY_LIMITS,
  compareBytes,
  decodeTopologyMessage,
  knownRecord,
  type DecodedRecord,
  type KnownRecord,
  type RecordCache,
  encodeTopologyMessage,
  recordProblems,
  sameRecord,
  type PeerConnection,
  type PeerLeft,
  type PeerRecord,
  type TopologyLimits,
} from './topology-codec.js';

export { RecordCache, TOPOLOGY_CHANNEL, type PeerConnection, type PeerLeft, type PeerRecord, type TopologyLimits } from './topology-codec.js';

type Entry = KnownRecord;

type Offer = { kind: 'unchanged' } | { kind: 'stored'; evicted?: Entry } | { kind: 'refused'; holder: PeerName };

const UNCHANGED: Offer = { kind: 'unchanged' };
const STORED: Offer = { kind: 'stored' };


function encodedSize(records: number, recordBytes: number): number {
  return 2 + (records < 16 ? 1 : records < 0x10000 ? 3 : 5) + recordBytes;
}

function keyEquals(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(b);
}

/**
 * The mergeable state: records by name. `merge` mutates the receiver and returns a state holding
 * only the records that changed in it (undefined when none did).
 */
export class TopologyState implements GossipData {
  private readonly entries = new Map<PeerName, Entry>();
  private readonly liveById = new Map<number, PeerName>();
  private cached: Uint8Array | undefined = undefined;
  /** Sum of the entries' canonical sizes: the size of `encode()` without building it. */
  private recordBytes = 0;
  /** Names in order (kept while only versions change) and the records in that order. */
  private names: PeerName[] | undefined = undefined;
  private sorted: readonly PeerRecord[] | undefined = undefined;
  private readonly cache: RecordCache | undefined;

  /** `cache`: records this state encodes are added to it (see `RecordCache`). */
  constructor(cache?: RecordCache) {
    this.cache = cache;
  }

  /** Decodes and validates a message (throws `GossipDecodeError`). */
  static decode(data: Uint8Array, limits: Readonly<TopologyLimits> = DEFAULT_TOPOLOGY_LIMITS): TopologyState {
    const s = new TopologyState();
    for (const d of decodeTopologyMessage(data, limits)) s.offer(d);
    return s;
  }

  /** A state from records (validated; offered in name order, so wire-id conflicts resolve as in merge). */
  static of(records: Iterable<PeerRecord>): TopologyState {
    const s = new TopologyState();
    for (const r of [...records].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const problems = recordProblems(r);
      if (peerNameFromPublicKey(r.publicKey) !== r.name) problems.push('name does not match the public key');
      if (problems.length > 0) throw new TypeError(`invalid peer record ${r.name}: ${problems.join('; ')}`);
      s.offer({ record: r });
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
      if (this.offer(e).kind === 'stored') delta.offer(e);
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
   * Offers one record: stored when it is newer than what we hold (version, then bytes) and does
   * not collide on the wire id with a live record of a smaller name or with `selfName`.
   * @internal used by `Topology`
   */
  offer(d: DecodedRecord, selfName?: PeerName): Offer {
    const record = d.record;
    const cur = this.entries.get(record.name);
    if (cur !== undefined) {
      if (record.version < cur.record.version) return UNCHANGED;
      if (record.version === cur.record.version && sameRecord(record, cur.record)) return UNCHANGED;
    }
    let e: Entry;
    if (d.bytes !== undefined) e = d;
    else {
      e = knownRecord(record);
      this.cache?.add(e);
    }
    if (cur !== undefined && e.record.version === cur.record.version && compareBytes(e.bytes, cur.bytes) <= 0) return UNCHANGED;
    let evicted: Entry | undefined;
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
  put(e: Entry): void {
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
  entry(name: PeerName): Entry | undefined {
    return this.entries.get(name);
  }

  private sortedEntries(): Entry[] {
    this.names ??= [...this.entries.keys()].sort();
    return this.names.map((n) => this.entries.get(n)!);
  }
}

export interface TopologyComponents {
  clock: Clock;
  logger?: Logger;
  /** A peer became a "forgotten" tombstone here (local `forget` or gossip): stop dialing it. */
  onForgotten?: (name: PeerName) => void;
  /** A live record was refused because its wire id is taken (reported once per pair). */
  onConflict?: (conflict: TopologyConflict) => void;
  /** Shared by many topologies in one process (the simulation): each distinct record is decoded once. */
  recordCache?: RecordCache;
}

export interface TopologyInit {
  publicKey: Uint8Array;
  nickname?: string;
  endpoints?: readonly string[];
  /** Last version this peer used (persisted); the start version is max(version + 1, wall clock ms). */
  version?: number;
  /** Unreachable this long (ms) → "gone" tombstone. Default 10 min. */
  goneAfterMs?: number;
  /** Tombstones are dropped this long (ms) after they were written or received here. Default 24 h. */
  tombstoneTtlMs?: number;
  /** How often reachability and tombstone expiry are checked (ms). Default 30 s. */
  sweepIntervalMs?: number;
  limits?: Partial<TopologyLimits>;
}

export interface TopologyConflict {
  /** The record not merged. */
  refused: PeerName;
  /** The live record holding the wire id. */
  holder: PeerName;
  id: number;
}

export interface TopologyStats {
  records: number;
  tombstones: number;
  /** Received messages that changed the state. */
  merges: number;
  decodeErrors: number;
  /** Live records refused (or evicted) for a wire-id collision. */
  conflicts: number;
}

export interface SelfUpdate {
  endpoints?: readonly string[];
  connections?: readonly PeerConnection[];
  nickname?: string;
}

export class Topology implements Gossiper {
  readonly name: PeerName;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly components: TopologyComponents;
  private readonly limits: Readonly<TopologyLimits>;
  private readonly goneAfterMs: number;
  private readonly tombstoneTtlMs: number;
  private readonly sweepIntervalMs: number;
  private readonly state: TopologyState;
  private readonly cache: RecordCache | undefined;
  private readonly tombstoneSince = new Map<PeerName, number>();
  private readonly unreachableSince = new Map<PeerName, number>();
  private readonly reported = new Set<string>();
  private readonly changeListeners = new Set<(changed: readonly PeerName[]) => void>();
  private readonly localListeners = new Set<(delta: Uint8Array) => void>();
  /** Names carried by the deltas we produced, for `mergeDeltas`. */
  private readonly deltaNames = new WeakMap<Uint8Array, readonly PeerName[]>();
  private timer: TimerHandle | undefined = undefined;
  /** Reachable set for `reachableFor` records (recomputed only when the records changed). */
  private reachable: { for: readonly PeerRecord[]; names: Set<PeerName> } | undefined = undefined;
  private counters = { merges: 0, decodeErrors: 0, conflicts: 0 };

  constructor(components: TopologyComponents, init: TopologyInit) {
    this.components = components;
    this.clock = components.clock;
    this.log = components.logger ?? silentLogger;
    this.limits = { ...DEFAULT_TOPOLOGY_LIMITS, ...init.limits };
    this.goneAfterMs = init.goneAfterMs ?? 10 * 60_000;
    this.tombstoneTtlMs = init.tombstoneTtlMs ?? 24 * 3600_000;
    this.sweepIntervalMs = init.sweepIntervalMs ?? 30_000;
    this.cache = components.recordCache;
    this.state = new TopologyState(this.cache);
    const publicKey = Uint8Array.from(init.publicKey);
    this.name = peerNameFromPublicKey(publicKey);
    const version = Math.max((init.version ?? 0) + 1, Math.floor(this.clock.wallNow()));
    const self: PeerRecord = { name: this.name, nickname: init.nickname ?? '', publicKey, version, endpoints: [...(init.endpoints ?? [])], connections: [] };
    const problems = recordProblems(self, this.limits);
    if (problems.length > 0) throw new TopologyUpdateError(problems);
    this.state.put(knownRecord(self));
  }

  start(): void {
    this.timer ??= this.clock.setInterval(() => this.sweep(), this.sweepIntervalMs);
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }

  get self(): PeerRecord {
    return this.state.get(this.name)!;
  }

  get(name: PeerName): PeerRecord | undefined {
    return this.state.get(name);
  }

  /** Live records (ourselves included), sorted by name. */
  peers(): PeerRecord[] {
    return this.state.records().filter((r) => r.left === undefined);
  }

  /** Every record, tombstones included, sorted by name (a frozen array shared until the next change). */
  records(): readonly PeerRecord[] {
    return this.state.records();
  }

  get stats(): TopologyStats {
    return { records: this.state.size, tombstones: this.tombstoneSince.size, ...this.counters };
  }

  /** Fired once per change (merge, local update, tombstone, expiry) with the names that changed. */
  onChange(listener: (changed: readonly PeerName[]) => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  /** Our own changes (self updates, re-asserts, tombstones we write), to send to every neighbour. */
  onLocalUpdate(listener: (delta: Uint8Array) => void): () => void {
    this.localListeners.add(listener);
    return () => this.localListeners.delete(listener);
  }

  /** Changes our record (bumping its version) when anything differs; returns whether it did. */
  updateSelf(update: SelfUpdate): boolean {
    const cur = this.self;
    const connections = update.connections === undefined ? cur.connections : [...update.connections].sort((a, b) => (a.peer < b.peer ? -1 : a.peer > b.peer ? 1 : 0));
    const next: PeerRecord = {
      name: this.name,
      nickname: update.nickname ?? cur.nickname,
      publicKey: cur.publicKey,
      version: cur.version,
      endpoints: update.endpoints === undefined ? cur.endpoints : [...update.endpoints],
      connections: connections.map((c) => (c.endpoint === undefined ? { peer: c.peer, established: c.established } : { peer: c.peer, established: c.established, endpoint: c.endpoint })),
    };
    const problems = recordProblems(next, this.limits);
    if (problems.length > 0) throw new TopologyUpdateError(problems);
    if (sameRecord(next, cur)) return false;
    this.bumpSelf(next, cur.version);
    return true;
  }

  /** `weft forget PEER`: writes a "forgotten" tombstone. False when unknown, ourselves, or already forgotten. */
  forget(name: PeerName): boolean {
    const cur = this.state.get(name);
    if (name === this.name || cur === undefined || cur.left === 'forgotten') return false;
    const e = knownRecord(tombstone(cur, 'forgotten'));
    this.state.put(e);
    this.afterStored([e], []);
    this.emitLocal([e]);
    this.notify([name]);
    return true;
  }

  gossip(): Uint8Array {
    return this.state.encode();
  }

  onGossip(data: Uint8Array): Uint8Array | undefined {
    if (this.state.encodes(data)) return undefined;
    let records: DecodedRecord[];
    try {
      records = decodeTopologyMessage(data, this.limits, (n) => this.state.entry(n), this.cache);
    } catch (err) {
      if (err instanceof GossipDecodeError) this.counters.decodeErrors++;
      throw err;
    }
    const stored: Entry[] = [];
    const evicted: Entry[] = [];
    let reassertAbove = 0;
    for (const d of records) {
      const r = d.record;
      if (r.name === this.name) {
        const self = this.self;
        if (r.version > self.version || (r.version === self.version && !sameRecord(r, self))) reassertAbove = Math.max(reassertAbove, r.version);
        continue;
      }
      const o = this.state.offer(d, this.name);
      if (o.kind === 'stored') {
        stored.push(this.state.entry(r.name)!);
        if (o.evicted !== undefined) evicted.push(o.evicted);
      } else if (o.kind === 'refused') this.conflict(r.name, o.holder);
    }
    for (const e of evicted) this.conflict(e.record.name, stored.find((s) => s.id === e.id)?.record.name ?? '?');
    this.afterStored(stored, evicted);
    const changed = [...stored, ...evicted].map((e) => e.record.name);
    if (reassertAbove > 0) {
      this.log.info('re-asserting our record over a newer copy from the mesh', { version: reassertAbove });
      this.bumpSelf(this.self, reassertAbove, false);
      changed.push(this.name);
    }
    if (changed.length === 0) return undefined;
    this.counters.merges++;
    this.notify(changed);
    return stored.length > 0 ? this.encodeDelta(stored) : undefined;
  }

  /**
   * One delta for several we produced (coalesced sends): the current record of every name they
   * carry, which is at least as new as any of them.
   */
  mergeDeltas(deltas: readonly Uint8Array[]): Uint8Array {
    const names = new Set<PeerName>();
    for (const d of deltas) for (const n of this.deltaNames.get(d) ?? decodeTopologyMessage(d, this.limits).map((r) => r.record.name)) names.add(n);
    const entries: Entry[] = [];
    for (const n of names) {
      const e = this.state.entry(n);
      if (e !== undefined) entries.push(e);
    }
    return this.encodeDelta(entries);
  }

  /** Topology uses gossip only; a unicast is merged like gossip and what changed goes to every neighbour. */
  onUnicast(_from: PeerName, data: Uint8Array): void {
    const delta = this.onGossip(data);
    if (delta !== undefined) this.emitBytes(delta);
  }

  /** A broadcast is merged like gossip and relayed unchanged down the tree. */
  onBroadcast(_source: PeerName, data: Uint8Array): Uint8Array | undefined {
    this.onGossip(data);
    return data;
  }

  /**
   * Writes "gone" tombstones for peers unreachable for `goneAfterMs` and drops expired tombstones.
   * Runs every `sweepIntervalMs` once started; public for tests and the simulation.
   */
  sweep(): void {
    const now = this.clock.now();
    const changed: PeerName[] = [];
    const records = this.state.records();
    if (this.reachable?.for !== records) this.reachable = { for: records, names: reachableFrom(records, this.name) };
    const reachable = this.reachable.names;
    const gone: Entry[] = [];
    for (const r of records) {
      if (r.left !== undefined || r.name === this.name) continue;
      if (reachable.has(r.name)) {
        this.unreachableSince.delete(r.name);
        continue;
      }
      const since = this.unreachableSince.get(r.name) ?? now;
      this.unreachableSince.set(r.name, since);
      if (now - since >= this.goneAfterMs) {
        const e = knownRecord(tombstone(r, 'gone'));
        this.state.put(e);
        gone.push(e);
      }
    }
    this.afterStored(gone, []);
    for (const [name, since] of this.tombstoneSince) {
      if (now - since < this.tombstoneTtlMs) continue;
      this.state.remove(name);
      this.tombstoneSince.delete(name);
      changed.push(name);
    }
    if (gone.length > 0) this.emitLocal(gone);
    changed.push(...gone.map((e) => e.record.name));
    if (changed.length > 0) this.notify(changed);
  }

  private bumpSelf(next: PeerRecord, above: number, notify = true): void {
    const version = Math.max(above + 1, Math.floor(this.clock.wallNow()));
    const e = knownRecord({ ...next, version });
    this.state.put(e);
    this.emitLocal([e]);
    if (notify) this.notify([this.name]);
  }

  private afterStored(stored: readonly Entry[], evicted: readonly Entry[]): void {
    const now = this.clock.now();
    for (const e of evicted) {
      this.tombstoneSince.delete(e.record.name);
      this.unreachableSince.delete(e.record.name);
    }
    for (const e of stored) {
      const name = e.record.name;
      if (e.record.left === undefined) {
        this.tombstoneSince.delete(name);
        continue;
      }
      this.unreachableSince.delete(name);
      this.tombstoneSince.set(name, now);
      if (e.record.left === 'forgotten') {
        this.log.info('peer forgotten', { peer: name });
        this.call(() => this.components.onForgotten?.(name));
      }
    }
  }

  private conflict(refused: PeerName, holder: PeerName): void {
    this.counters.conflicts++;
    const key = `${refused}/${holder}`;
    if (this.reported.has(key)) return;
    this.reported.add(key);
    const id = peerIdFromPeerName(refused);
    this.log.warn('peer refused: its wire id is taken by another live peer', { refused, holder, id });
    this.call(() => this.components.onConflict?.({ refused, holder, id }));
  }

  private emitLocal(entries: readonly Entry[]): void {
    if (this.localListeners.size === 0) return;
    this.emitBytes(this.encodeDelta(entries));
  }

  private encodeDelta(entries: readonly Entry[]): Uint8Array {
    const sorted = [...entries].sort((a, b) => (a.record.name < b.record.name ? -1 : 1));
    const bytes = encodeTopologyMessage(sorted.map((e) => e.bytes));
    this.deltaNames.set(
      bytes,
      sorted.map((e) => e.record.name),
    );
    return bytes;
  }

  private emitBytes(delta: Uint8Array): void {
    for (const l of this.localListeners) this.call(() => l(delta));
  }

  private notify(changed: readonly PeerName[]): void {
    for (const l of this.changeListeners) this.call(() => l(changed));
  }

  private call(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.error('topology listener failed', { err });
    }
  }
}

function tombstone(r: PeerRecord, left: PeerLeft): PeerRecord {
  return { name: r.name, nickname: r.nickname, publicKey: r.publicKey, version: r.version + 1, endpoints: [], connections: [], left };
}
