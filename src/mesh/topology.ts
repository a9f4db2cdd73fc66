/**
 * Topology: what every peer knows about every peer, spread by gossip on the "topology" channel.
 * A CRDT of peer records (`topology-codec.ts` has the record and its wire format). This file is
 * the state side (records, merge, tombstones, queries); `topology-gossiper.ts` is the channel
 * side (encode/decode for the channel, deltas, full state for a new neighbour), and `Topology`
 * is the channel's gossiper through it.
 *
 * Merge, per record: the higher version wins; two different records of the same version are
 * ordered by their canonical bytes (so merge is commutative, associative and idempotent; the law
 * suite checks it). Only the owner bumps its record's version (`updateSelf`); a peer starts at
 * max(persisted version + 1, wall clock in ms), so a restart without state still wins.
 *
 * Signatures. Every live record is signed by its owner's identity key and every tombstone by its
 * writer (`topology-record.ts`); records are refused by themselves when their signatures, name
 * or version do not check out (counted by reason in `stats.refused`, logged once per sending peer
 * and reason), and the rest of the message is merged. Signatures are checked only for records
 * that would be stored; held copies and records in the shared `RecordCache` are not checked again.
 *
 * Tombstones. `forget(name)` (the user's `weft forget PEER`) writes a "forgotten" tombstone; a
 * peer with no path from us (symmetric established connections, as routes use) for `goneAfterMs`
 * becomes a "gone" one. A tombstone carries the live record it buries (owner-signed) and its
 * writer's key and signature, and its version is the buried version + 1. At equal versions a live
 * record sorts above a tombstone, and "forgotten" above "gone". Tombstones are dropped
 * `tombstoneTtlMs` after they were written or received here (an older live record arriving after
 * that is accepted again and, if its peer is really gone, tombstoned again after `goneAfterMs`).
 * After a partition longer than `goneAfterMs` each side holds the other as "gone"; when it heals,
 * every peer sees its tombstone and re-asserts, so for a few gossip rounds peers are missing from
 * routes.
 *
 * Forget semantics. A tombstone removes a peer from routes and status everywhere, and
 * `onForgotten(name)` (fired on every peer, for local and gossiped "forgotten" tombstones) lets the
 * daemon stop dialing it and drop its keys. It does not ban: if the forgotten peer is alive and
 * connected to any member, it sees its own tombstone and re-asserts itself with a higher version
 * (a peer forgotten by mistake comes back). Forget a peer after stopping it; a peer that should
 * never return must lose its key. The same re-assert answers any record signed by our key with
 * a version at or above ours (our record from before a restart): remote data never replaces the
 * local record.
 *
 * Wire-id collisions. Two live records with different names but the same `peerIdFromPeerName`:
 * the lexicographically larger name is refused (or evicted when it came first), counted, and
 * reported once per pair through `onConflict`; our own record always wins locally. This is the one
 * rule that depends on arrival order; every peer still ends up keeping the smaller name.
 *
 * Two routers with one key. Each record carries its owner's run (`incarnation`, 8 random bytes
 * drawn at start, and `started`, the wall clock then), signed with the rest. A signed record with
 * our name from another run is either our own past (a restart) or a clone. A run that started
 * later than ours is a clone: reported once (`onClone` with action "warn"), and we keep
 * re-asserting. A run that started earlier is a clone only once it proves to be alive: seen again
 * at a higher version above our start version (a dead past run never changes); then `onClone`
 * fires with action "stop" (the daemon exits) and we stop re-asserting.
 */
import { randomBytes } from 'node:crypto';
import type { Clock, TimerHandle } from '../core/clock.js';
import { peerIdFromPeerName, peerNameFromPublicKey } from '../core/ids.js';
import { silentLogger, type Logger } from '../core/logger.js';
import type { Gossiper, PeerName } from './contracts.js';
import { TopologyUpdateError } from './errors.js';
import { reachableFrom } from './routes.js';
import { Verifier } from './signing.js';
import {
  DEFAULT_TOPOLOGY_LIMITS,
  INCARNATION_BYTES,
  MAX_LIVE_VERSION,
  recordProblems,
  sameRecord,
  signLive,
  writeTombstone,
  type DecodedMessage,
  type DecodedRecord,
  type KnownRecord,
  type PeerConnection,
  type PeerRecord,
  type RecordAuthor,
  type RecordCache,
  type RecordRefusal,
  type RecordSigner,
  type TopologyLimits,
} from './topology-codec.js';
import { TopologyGossiper } from './topology-gossiper.js';
import { TopologyState, verifyDecoded } from './topology-state.js';

export { RecordCache, TOPOLOGY_CHANNEL, MAX_LIVE_VERSION, type PeerConnection, type PeerLeft, type PeerRecord, type RecordRefusal, type TopologyLimits } from './topology-codec.js';
export { TopologyState } from './topology-state.js';

export interface TopologyComponents {
  clock: Clock;
  logger?: Logger;
  /** Signs our records with the identity key whose public key is `init.publicKey` (`Identity.signer`). */
  signer: RecordSigner;
  /** Checks others' signatures; share one among topologies of a process (it caches key conversions). */
  verifier?: Verifier;
  /** A peer became a "forgotten" tombstone here (local `forget` or gossip): stop dialing it. */
  onForgotten?: (name: PeerName) => void;
  /** A live record was refused because its wire id is taken (reported once per pair). */
  onConflict?: (conflict: TopologyConflict) => void;
  /** Another router runs with our identity key (see the file header). */
  onClone?: (clone: TopologyClone) => void;
  /** Shared by many topologies in one process (the simulation): each distinct record is decoded and verified once. */
  recordCache?: RecordCache;
}

export interface TopologyInit {
  publicKey: Uint8Array;
  nickname?: string;
  endpoints?: readonly string[];
  /** Last version this peer used (persisted); the start version is max(version + 1, wall clock ms). */
  version?: number;
  /** This run's id, 16 hex digits (default: random). */
  incarnation?: string;
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

/** One run of a router: what a record says about who wrote it. */
export interface RouterRun {
  incarnation: string;
  /** Wall clock ms. */
  started: number;
  endpoints: readonly string[];
}

export interface TopologyClone {
  /** "stop": another router with our key started before us and is alive; "warn": one started after us (it stops). */
  action: 'stop' | 'warn';
  name: PeerName;
  self: RouterRun;
  other: RouterRun;
}

export interface TopologyStats {
  records: number;
  tombstones: number;
  /** Received messages that changed the state. */
  merges: number;
  decodeErrors: number;
  /** Live records refused (or evicted) for a wire-id collision. */
  conflicts: number;
  /** Records refused by themselves, by reason (the rest of their message was merged). */
  refused: Record<RecordRefusal, number>;
  /** Other runs of our identity key seen (clones). */
  clones: number;
}

export interface SelfUpdate {
  endpoints?: readonly string[];
  connections?: readonly PeerConnection[];
  nickname?: string;
}

/** Other runs of our key we have seen (bounded: a handful in practice). */
const MAX_RUNS = 64;

export class Topology implements Gossiper {
  readonly name: PeerName;
  readonly incarnation: string;
  /** When this run started (wall clock ms). */
  readonly started: number;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly components: TopologyComponents;
  private readonly author: RecordAuthor;
  private readonly verifier: Verifier;
  private readonly limits: Readonly<TopologyLimits>;
  private readonly goneAfterMs: number;
  private readonly tombstoneTtlMs: number;
  private readonly sweepIntervalMs: number;
  private readonly startVersion: number;
  private readonly state: TopologyState;
  private readonly gossiper: TopologyGossiper;
  private readonly cache: RecordCache | undefined;
  private readonly tombstoneSince = new Map<PeerName, number>();
  /** Peers `onForgotten` was called for (once per forget, whoever's tombstone wins). */
  private readonly forgottenNotified = new Set<PeerName>();
  private readonly unreachableSince = new Map<PeerName, number>();
  private readonly reported = new Set<string>();
  private readonly changeListeners = new Set<(changed: readonly PeerName[]) => void>();
  /** Other runs of our key: the highest version seen of each. */
  private readonly runs = new Map<string, number>();
  /** Another run of our key started first and is alive: we stop re-asserting (the daemon exits). */
  private yielded = false;
  private timer: TimerHandle | undefined = undefined;
  /** Reachable set for `reachableFor` records (recomputed only when the records changed). */
  private reachable: { for: readonly PeerRecord[]; names: Set<PeerName> } | undefined = undefined;
  private readonly counters = { merges: 0, conflicts: 0, clones: 0 };
  private readonly refusals: Record<RecordRefusal, number> = { malformed: 0, unsigned: 0, nameMismatch: 0, versionBound: 0, badSignature: 0 };

  constructor(components: TopologyComponents, init: TopologyInit) {
    this.components = components;
    this.clock = components.clock;
    this.log = components.logger ?? silentLogger;
    this.verifier = components.verifier ?? new Verifier();
    this.limits = { ...DEFAULT_TOPOLOGY_LIMITS, ...init.limits };
    this.goneAfterMs = init.goneAfterMs ?? 10 * 60_000;
    this.tombstoneTtlMs = init.tombstoneTtlMs ?? 24 * 3600_000;
    this.sweepIntervalMs = init.sweepIntervalMs ?? 30_000;
    this.cache = components.recordCache;
    this.state = new TopologyState(this.cache);
    this.gossiper = new TopologyGossiper(
      { state: this.state, mergeMessage: (msg, from) => this.mergeMessage(msg, from), logger: this.log, recordCache: this.cache },
      { limits: this.limits },
    );
    const publicKey = Uint8Array.from(init.publicKey);
    this.author = { publicKey, signer: components.signer };
    this.name = peerNameFromPublicKey(publicKey);
    this.incarnation = init.incarnation ?? randomBytes(INCARNATION_BYTES).toString('hex');
    this.started = Math.floor(this.clock.wallNow());
    const version = Math.max((init.version ?? 0) + 1, this.started);
    const self: PeerRecord = {
      name: this.name,
      nickname: init.nickname ?? '',
      publicKey,
      version,
      endpoints: [...(init.endpoints ?? [])],
      connections: [],
      incarnation: this.incarnation,
      started: this.started,
    };
    const problems = recordProblems(self, this.limits);
    if (version > MAX_LIVE_VERSION) problems.push(`version ${version} is above the bound ${MAX_LIVE_VERSION}`);
    if (problems.length > 0) throw new TopologyUpdateError(problems);
    this.startVersion = version;
    this.state.put(signLive(self, this.author));
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
    const { merges, conflicts, clones } = this.counters;
    return { records: this.state.size, tombstones: this.tombstoneSince.size, merges, decodeErrors: this.gossiper.decodeErrors, conflicts, clones, refused: { ...this.refusals } };
  }

  /** Fired once per change (merge, local update, tombstone, expiry) with the names that changed. */
  onChange(listener: (changed: readonly PeerName[]) => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  /** Our own changes (self updates, re-asserts, tombstones we write), to send to every neighbour. */
  onLocalUpdate(listener: (delta: Uint8Array) => void): () => void {
    return this.gossiper.onLocalUpdate(listener);
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
      incarnation: this.incarnation,
      started: this.started,
    };
    const problems = recordProblems(next, this.limits);
    if (problems.length > 0) throw new TopologyUpdateError(problems);
    if (sameRecord(next, cur)) return false;
    return this.bumpSelf(next, cur.version);
  }

  /** `weft forget PEER`: writes a "forgotten" tombstone. False when unknown, ourselves, or already forgotten. */
  forget(name: PeerName): boolean {
    const cur = this.state.entry(name);
    if (name === this.name || cur === undefined || cur.record.left === 'forgotten') return false;
    const e = writeTombstone(cur, 'forgotten', this.author);
    this.state.put(e);
    this.afterStored([e], []);
    this.emitLocal([e]);
    this.notify([name]);
    return true;
  }

  // ------------------------------------------------------------------ the channel (topology-gossiper.ts)

  gossip(): Uint8Array {
    return this.gossiper.gossip();
  }

  /** Gossip from neighbour `from` (named in logs). Throws `GossipDecodeError` only for a malformed message. */
  onGossip(data: Uint8Array, from?: PeerName): Uint8Array | undefined {
    return this.gossiper.onGossip(data, from);
  }

  /**
   * One delta for several we produced (coalesced sends): the current record of every name they
   * carry, which is at least as new as any of them.
   */
  mergeDeltas(deltas: readonly Uint8Array[]): Uint8Array {
    return this.gossiper.mergeDeltas(deltas);
  }

  /** Topology uses gossip only; a unicast is merged like gossip and what changed goes to every neighbour. */
  onUnicast(from: PeerName, data: Uint8Array): void {
    this.gossiper.onUnicast(from, data);
  }

  /** A broadcast is merged like gossip and relayed unchanged down the tree. */
  onBroadcast(source: PeerName, data: Uint8Array): Uint8Array | undefined {
    return this.gossiper.onBroadcast(source, data);
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
    const gone: KnownRecord[] = [];
    for (const r of records) {
      if (r.left !== undefined || r.name === this.name) continue;
      if (reachable.has(r.name)) {
        this.unreachableSince.delete(r.name);
        continue;
      }
      const since = this.unreachableSince.get(r.name) ?? now;
      this.unreachableSince.set(r.name, since);
      if (now - since >= this.goneAfterMs) {
        const e = writeTombstone(this.state.entry(r.name)!, 'gone', this.author);
        this.state.put(e);
        gone.push(e);
      }
    }
    this.afterStored(gone, []);
    for (const [name, since] of this.tombstoneSince) {
      if (now - since < this.tombstoneTtlMs) continue;
      this.state.remove(name);
      this.tombstoneSince.delete(name);
      this.forgottenNotified.delete(name);
      changed.push(name);
    }
    if (gone.length > 0) this.emitLocal(gone);
    changed.push(...gone.map((e) => e.record.name));
    if (changed.length > 0) this.notify(changed);
  }

  /**
   * Merges a decoded message from neighbour `from` (the channel side's `onGossip`): refused records
   * are counted and logged, the others offered; returns the entries stored (the delta to pass on).
   */
  private mergeMessage(msg: DecodedMessage, from: PeerName | undefined): readonly KnownRecord[] {
    for (const r of msg.refused) this.refuse(from, r.name, r.reason, r.detail);
    const stored: KnownRecord[] = [];
    const evicted: KnownRecord[] = [];
    let reassertAbove = 0;
    for (const d of msg.records) {
      const r = d.entry.record;
      if (r.name === this.name) {
        reassertAbove = Math.max(reassertAbove, this.ownName(d, from));
        continue;
      }
      const o = this.state.offer(d, this.name, this.verifier);
      if (o.kind === 'stored') {
        stored.push(this.state.entry(r.name)!);
        if (o.evicted !== undefined) evicted.push(o.evicted);
      } else if (o.kind === 'refused') this.conflict(r.name, o.holder);
      else if (o.kind === 'badSignature') this.refuse(from, r.name, 'badSignature', `${r.left === undefined ? 'record' : 'tombstone'} ${r.name} version ${r.version}: a signature does not check out`);
    }
    for (const e of evicted) this.conflict(e.record.name, stored.find((s) => s.id === e.id)?.record.name ?? '?');
    this.afterStored(stored, evicted);
    const changed = [...stored, ...evicted].map((e) => e.record.name);
    if (reassertAbove > 0 && !this.yielded) {
      this.log.info('re-asserting our record over a newer copy from the mesh', { version: reassertAbove });
      if (this.bumpSelf(this.self, reassertAbove, false)) changed.push(this.name);
    }
    if (changed.length > 0) {
      this.counters.merges++;
      this.notify(changed);
    }
    return stored;
  }

  /**
   * A record with our name: returns the version to re-assert above (0: none). Only what our key
   * signed counts; another run of our key is checked for a clone (see the file header).
   */
  private ownName(d: DecodedRecord, from: PeerName | undefined): number {
    const r = d.entry.record;
    const self = this.self;
    const newer = r.version > self.version || (r.version === self.version && !sameRecord(r, self));
    const otherRun = r.left === undefined && r.incarnation !== this.incarnation;
    if (!newer && !otherRun) return 0; // an older copy or an echo of ours
    if (!newer && (this.runs.get(r.incarnation) ?? 0) >= r.version) return 0; // seen already
    if (!verifyDecoded(d, this.verifier)) {
      this.refuse(from, r.name, 'badSignature', `a ${r.left === undefined ? 'record' : 'tombstone'} with our name at version ${r.version} not signed by our key`);
      return 0;
    }
    if (otherRun) this.otherRun(r);
    return newer ? r.version : 0;
  }

  private otherRun(r: PeerRecord): void {
    const prev = this.runs.get(r.incarnation);
    if (prev === undefined && this.runs.size >= MAX_RUNS) this.runs.clear();
    this.runs.set(r.incarnation, Math.max(prev ?? 0, r.version));
    const later = r.started > this.started || (r.started === this.started && r.incarnation > this.incarnation);
    let action: TopologyClone['action'] | undefined;
    if (later) {
      if (prev === undefined) action = 'warn';
    } else if (prev !== undefined && r.version > prev && r.version > this.startVersion && !this.yielded) {
      // A run older than ours wrote a new record after we started: it is alive.
      action = 'stop';
      this.yielded = true;
    }
    if (action === undefined) return;
    this.counters.clones++;
    const clone: TopologyClone = {
      action,
      name: this.name,
      self: { incarnation: this.incarnation, started: this.started, endpoints: this.self.endpoints },
      other: { incarnation: r.incarnation, started: r.started, endpoints: r.endpoints },
    };
    this.log.error(action === 'stop' ? 'another router runs with our identity key and started first; this one must stop' : 'another router runs with our identity key; it started later and must stop', { ...clone });
    this.call(() => this.components.onClone?.(clone));
  }

  private refuse(from: PeerName | undefined, name: PeerName | undefined, reason: RecordRefusal, detail: string): void {
    this.refusals[reason]++;
    const key = `refused ${from ?? '-'} ${reason}`;
    if (this.reported.has(key)) return;
    this.reported.add(key);
    this.log.warn('topology record refused (logged once per peer and reason, then counted)', { peer: from, record: name, reason, detail });
  }

  /** Signs and stores our record at max(above + 1, wall clock); false (logged) past the version bound. */
  private bumpSelf(next: PeerRecord, above: number, notify = true): boolean {
    const version = Math.max(above + 1, Math.floor(this.clock.wallNow()));
    if (version > MAX_LIVE_VERSION) {
      this.log.error('our record cannot take a version above the bound; not updated', { version, bound: MAX_LIVE_VERSION });
      return false;
    }
    const e = signLive({ ...next, version }, this.author);
    this.state.put(e);
    this.emitLocal([e]);
    if (notify) this.notify([this.name]);
    return true;
  }

  private afterStored(stored: readonly KnownRecord[], evicted: readonly KnownRecord[]): void {
    const now = this.clock.now();
    for (const e of evicted) {
      this.tombstoneSince.delete(e.record.name);
      this.unreachableSince.delete(e.record.name);
      this.forgottenNotified.delete(e.record.name);
    }
    for (const e of stored) {
      const name = e.record.name;
      if (e.record.left === undefined) {
        this.tombstoneSince.delete(name);
        this.forgottenNotified.delete(name);
        continue;
      }
      this.unreachableSince.delete(name);
      this.tombstoneSince.set(name, now);
      if (e.record.left === 'forgotten' && !this.forgottenNotified.has(name)) {
        this.forgottenNotified.add(name);
        this.log.info('peer forgotten', { peer: name, by: e.record.writer });
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

  private emitLocal(entries: readonly KnownRecord[]): void {
    this.gossiper.publish(entries);
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
