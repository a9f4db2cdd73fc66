/**
 * The ring: who owns which part of one address space, as a CRDT gossiped on the "ipam" channel
 * (one ring per space: one for IPv4, one for IPv6 when dual-stack).
 *
 * State
 *   genesis     { clusterId, space, seeds } fixed for the ring's life; `id` is a hash of it
 *   entries     token (offset) → { owner, version, end }: the entry owns [token, end). Tokens are
 *               never removed; an owner that splits an entry bumps its version with the new end.
 *               Ranges are explicit so that a peer that missed the gossip creating a token never
 *               believes an entry reaches past its end (a view that holds a stale, longer version
 *               of an entry still stops it at the next token it knows).
 *   tombstones  grow-only set of forgotten peers (`weft forget`)
 *   adopted     grow-only set of seeds that adopted this genesis
 *
 * Genesis: the space split into len(seeds) near-equal runs, seed i (sorted) owning run i at
 * version 1; peers computing it from the same seeds hold byte-equal rings.
 *
 * Merge: per token the greatest of (version, handover over reclaim, owner) wins (see `beats`;
 * equal versions only come from races around a forgotten peer). That is a total order per token,
 * so merge is a join: commutative, associative, idempotent. Sets merge by union. Rings with different geneses
 * never merge (`IpamRingConflictError`).
 *
 * Updates (only a token's owner changes it): `assign` hands [start, end) to another peer by
 * inserting tokens at its bounds (version 1), shortening the entry it splits and giving the
 * entries inside to the recipient (version + 1). `forget` adds a tombstone. The heir of an entry whose owner is tombstoned is the
 * owner of the nearest preceding entry (wrapping) whose owner is not: a function of the merged
 * state, so in a converged state exactly one live peer is heir; it takes the entry over with
 * `materialize` (owner = itself, version + 1, marked reclaimed). A tombstoned peer owns nothing
 * (it is fenced).
 */
import { createHash } from 'node:crypto';
import type { GossipData, PeerName } from '../contracts.js';
import { IpamRingConflictError } from './errors.js';
import type { Interval } from './intervals.js';
import { EntryBytes } from './entry-bytes.js';
import { assembleRing } from './ring-codec.js';
import { space as parseSpaceOrThrow, type AddressSpace } from './space.js';

export interface Genesis {
  readonly clusterId: string;
  /** Normalized CIDR of the space. */
  readonly space: string;
  /** Sorted, unique. */
  readonly seeds: readonly PeerName[];
}

export interface RingEntry {
  readonly token: bigint;
  readonly owner: PeerName;
  readonly version: number;
  /** Exclusive end of the entry's range. */
  readonly end: bigint;
  /** Set when an heir took the entry over from a forgotten peer (absent otherwise). */
  readonly reclaimed?: true;
}

/**
 * Whether `a` wins over `b` at the same token: the higher version; between equal versions a
 * handover beats a reclaim (an heir working from a stale view, e.g. just restarted, bumps the
 * version it knows, which can equal that of a handover the forgotten peer made before it was
 * forgotten; the handover must win); then the owner whose name sorts last.
 */
export function beats(a: RingEntry, b: RingEntry): boolean {
  if (a.version !== b.version) return a.version > b.version;
  if (a.reclaimed !== b.reclaimed) return b.reclaimed === true;
  if (a.owner !== b.owner) return a.owner > b.owner;
  return a.end > b.end;
}

export function genesisId(g: Genesis): string {
  return createHash('sha256').update(JSON.stringify(['weft-ipam-genesis', g.clusterId, g.space, g.seeds])).digest('hex').slice(0, 16);
}

/** Whether two geneses are the same (exactly when their `genesisId`s are, without hashing). */
export function sameGenesis(a: Genesis, b: Genesis): boolean {
  if (a === b) return true;
  if (a.clusterId !== b.clusterId || a.space !== b.space || a.seeds.length !== b.seeds.length) return false;
  for (let i = 0; i < a.seeds.length; i++) if (a.seeds[i] !== b.seeds[i]) return false;
  return true;
}

export class Ring implements GossipData {
  readonly genesis: Genesis;
  readonly space: AddressSpace;
  private entries: RingEntry[];
  /** The entries' encodings, kept in step with them once the ring was encoded. */
  private entryBytes: EntryBytes | undefined = undefined;
  private readonly tombs: Set<PeerName>;
  private readonly adoptedBy: Set<PeerName>;
  /** Tokens of the entries whose owner is tombstoned, kept up to date once asked for (`orphaned`). */
  private orphanTokens: Set<bigint> | undefined = undefined;
  private genesisHash: string | undefined;
  /** Derived from the state, dropped by `changed()`. */
  private cache: Uint8Array | undefined = undefined;
  private bySize: (readonly [PeerName, bigint])[] | undefined = undefined;

  private constructor(genesis: Genesis, space: AddressSpace, entries: RingEntry[], tombs: Iterable<PeerName>, adopted: Iterable<PeerName>, id?: string) {
    this.genesis = genesis;
    this.genesisHash = id;
    this.space = space;
    this.entries = entries;
    this.tombs = new Set(tombs);
    this.adoptedBy = new Set(adopted);
  }

  private orphaned(): Set<bigint> {
    if (this.orphanTokens === undefined) {
      this.orphanTokens = new Set();
      this.findOrphans(this.tombs);
    }
    return this.orphanTokens;
  }

  /** Records the entries owned by peers of `tombstoned` as orphaned (when they are followed). */
  private findOrphans(tombstoned: ReadonlySet<PeerName>): void {
    const o = this.orphanTokens;
    if (o !== undefined && tombstoned.size > 0) for (const e of this.entries) if (tombstoned.has(e.owner)) o.add(e.token);
  }

  /** A hash of the genesis (computed on first use). */
  get id(): string {
    this.genesisHash ??= genesisId(this.genesis);
    return this.genesisHash;
  }

  /** The ring every peer computes from the same cluster, space and seeds. */
  static fromGenesis(clusterId: string, spaceText: string, seeds: readonly PeerName[]): Ring {
    const sp = parseSpaceOrThrow(spaceText);
    const sorted = [...new Set(seeds)].sort();
    if (sorted.length === 0) throw new TypeError('a genesis needs at least one seed');
    if (BigInt(sorted.length) > sp.size) throw new TypeError(`${sorted.length} seeds cannot share ${sp.cidr}`);
    const n = BigInt(sorted.length);
    const entries = sorted.map((owner, i) => ({ token: (BigInt(i) * sp.size) / n, owner, version: 1, end: (BigInt(i + 1) * sp.size) / n }));
    return new Ring({ clusterId, space: sp.cidr, seeds: sorted }, sp, entries, [], []);
  }

  /**
   * A ring (or delta) from decoded parts; the codec has validated them. `known`: the parsed space
   * when the caller has it (used when its CIDR is the genesis space; parsed otherwise).
   */
  static fromParts(genesis: Genesis, entries: readonly RingEntry[], tombstones: readonly PeerName[], adopted: readonly PeerName[], known?: AddressSpace): Ring {
    const sp = known !== undefined && known.cidr === genesis.space ? known : parseSpaceOrThrow(genesis.space);
    return new Ring(genesis, sp, [...entries], tombstones, adopted);
  }

  private emptyLike(entries: RingEntry[] = []): Ring {
    return new Ring(this.genesis, this.space, entries, [], [], this.genesisHash);
  }

  /** A copy (entries are immutable and shared). */
  clone(): Ring {
    return new Ring(this.genesis, this.space, [...this.entries], this.tombs, this.adoptedBy, this.genesisHash);
  }

  /** The state changed: drops what was derived from it. */
  private changed(): void {
    this.cache = undefined;
    this.bySize = undefined;
  }

  /** The ring's bytes (cached until it changes). */
  encode(): Uint8Array {
    this.entryBytes ??= new EntryBytes(this.space.bytes);
    this.cache ??= assembleRing({ genesis: this.genesis, tombstones: this.tombstones(), adopted: this.adopted() }, this.entries.length, this.entryBytes.of(this.entries));
    return this.cache;
  }

  /** Whether `data` is this ring's encoding, without encoding it when that is not cached. */
  encodesAs(data: Uint8Array): boolean {
    const c = this.cache;
    return c !== undefined && c.length === data.length && Buffer.from(c.buffer, c.byteOffset, c.byteLength).equals(data);
  }

  entryList(): readonly RingEntry[] {
    return this.entries;
  }

  tombstones(): PeerName[] {
    return [...this.tombs].sort();
  }

  adopted(): PeerName[] {
    return [...this.adoptedBy].sort();
  }

  isTombstoned(peer: PeerName): boolean {
    return this.tombs.has(peer);
  }

  /** Seeds that neither adopted the ring nor were forgotten (empty: the ring is confirmed). */
  unconfirmedSeeds(): PeerName[] {
    return this.genesis.seeds.filter((s) => !this.adoptedBy.has(s) && !this.tombs.has(s));
  }

  confirmed(): boolean {
    return this.unconfirmedSeeds().length === 0;
  }

  /** End (exclusive) of entry i's range as far as this view knows: its end, or the next token. */
  end(i: number): bigint {
    const next = this.entries[i + 1]?.token ?? this.space.size;
    const e = this.entries[i]!.end;
    return e < next ? e : next;
  }

  /** Index of the entry containing `offset` (-1 when there is none: a delta). */
  indexOf(offset: bigint): number {
    let lo = 0;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.entries[mid]!.token <= offset) lo = mid + 1;
      else hi = mid;
    }
    return lo - 1;
  }

  /** The live peer that inherits entry i if its owner is tombstoned (undefined: none left). */
  heir(i: number): PeerName | undefined {
    const n = this.entries.length;
    for (let k = 1; k < n; k++) {
      const e = this.entries[(i - k + n) % n]!;
      if (!this.tombs.has(e.owner)) return e.owner;
    }
    return undefined;
  }

  /** What `peer` owns now (merged adjacent runs); nothing when it is tombstoned. */
  ownedBy(peer: PeerName): Interval[] {
    if (this.tombs.has(peer)) return [];
    const out: [bigint, bigint][] = [];
    for (let i = 0; i < this.entries.length; i++) {
      if (this.entries[i]!.owner !== peer) continue;
      const a = this.entries[i]!.token;
      const b = this.end(i);
      const last = out.at(-1);
      if (last !== undefined && last[1] === a) last[1] = b;
      else out.push([a, b]);
    }
    return out;
  }

  /** Size owned by each live (not tombstoned) owner. */
  ownerSizes(): Map<PeerName, bigint> {
    const out = new Map<PeerName, bigint>();
    for (let i = 0; i < this.entries.length; i++) {
      const o = this.entries[i]!.owner;
      if (!this.tombs.has(o)) out.set(o, (out.get(o) ?? 0n) + this.end(i) - this.entries[i]!.token);
    }
    return out;
  }

  /** `ownerSizes` largest first, then by name (cached until the ring changes; do not modify). */
  ownersBySize(): readonly (readonly [PeerName, bigint])[] {
    this.bySize ??= [...this.ownerSizes()].sort((x, y) => (x[1] > y[1] ? -1 : x[1] < y[1] ? 1 : x[0] < y[0] ? -1 : 1));
    return this.bySize;
  }

  /** Entries whose owner is tombstoned (not yet taken over by their heir). */
  orphans(): number {
    return this.tombs.size === 0 ? 0 : this.orphaned().size;
  }

  /**
   * `by` hands [start, end) to `to`. Every offset of it must be owned by `by` (throws otherwise).
   * Returns the delta.
   */
  assign(start: bigint, end: bigint, to: PeerName, by: PeerName): Ring {
    if (!(start >= 0n && start < end && end <= this.space.size)) throw new RangeError(`bad range [${start}, ${end}) in ${this.space.cidr}`);
    const i0 = this.indexOf(start);
    const i1 = this.indexOf(end - 1n);
    let covered = start;
    for (let i = i0; i <= i1 && i >= 0; i++) {
      const e = this.entries[i]!;
      if (e.owner !== by || e.token > covered || this.end(i) <= covered) break;
      covered = this.end(i);
    }
    if (i0 < 0 || covered < end || this.tombs.has(by)) throw new RangeError(`${by} does not own all of [${start}, ${end}) in ${this.space.cidr}`);
    const changed: RingEntry[] = [];
    for (let i = i0; i <= i1; i++) {
      const e = this.entries[i]!;
      const eEnd = this.end(i);
      if (e.token < start) {
        changed.push({ token: e.token, owner: by, version: e.version + 1, end: start });
        changed.push({ token: start, owner: to, version: 1, end: eEnd < end ? eEnd : end });
      } else changed.push({ token: e.token, owner: to, version: e.version + 1, end: eEnd < end ? eEnd : end });
      if (eEnd > end) changed.push({ token: end, owner: by, version: 1, end: eEnd });
    }
    return this.apply(changed);
  }

  /** `weft forget peer`: the delta, or undefined when it was already forgotten. */
  forget(peer: PeerName): Ring | undefined {
    if (this.tombs.has(peer)) return undefined;
    this.tombs.add(peer);
    this.findOrphans(new Set([peer]));
    this.changed();
    const d = this.emptyLike();
    d.tombs.add(peer);
    return d;
  }

  /** A seed records that it adopted this genesis. */
  adopt(seed: PeerName): Ring | undefined {
    if (this.adoptedBy.has(seed) || !this.genesis.seeds.includes(seed)) return undefined;
    this.adoptedBy.add(seed);
    this.changed();
    const d = this.emptyLike();
    d.adoptedBy.add(seed);
    return d;
  }

  /** Takes over every entry `self` is heir of; returns the delta and the ranges taken. */
  materialize(self: PeerName): { delta: Ring; taken: Interval[] } | undefined {
    if (this.orphans() === 0 || this.tombs.has(self)) return undefined;
    const changed: RingEntry[] = [];
    const taken: Interval[] = [];
    for (const token of [...this.orphaned()].sort((a, b) => (a < b ? -1 : 1))) {
      const i = this.indexOf(token);
      if (this.heir(i) !== self) continue;
      const e = this.entries[i]!;
      changed.push({ token: e.token, owner: self, version: e.version + 1, end: e.end, reclaimed: true });
      taken.push([e.token, this.end(i)]);
    }
    if (changed.length === 0) return undefined;
    return { delta: this.apply(changed), taken };
  }

  /** Stores entries that beat ours (all of `changed` do); returns them as a delta. */
  private apply(changed: RingEntry[]): Ring {
    return this.emptyLike(this.mergeEntries([...changed].sort((a, b) => (a.token < b.token ? -1 : a.token > b.token ? 1 : 0))));
  }

  /** Merges sorted entries; returns those that changed this ring. */
  private mergeEntries(incoming: readonly RingEntry[]): RingEntry[] {
    const won: RingEntry[] = [];
    const mine = this.entries;
    const bytes = this.entryBytes;
    if (incoming.length * 16 < mine.length) {
      for (const e of incoming) {
        const i = this.indexOf(e.token);
        const cur = i >= 0 ? mine[i] : undefined;
        if (cur !== undefined && cur.token === e.token) {
          if (!beats(e, cur)) continue;
          mine[i] = e;
          bytes?.set(i, e, false);
        } else {
          mine.splice(i + 1, 0, e);
          bytes?.set(i + 1, e, true);
        }
        won.push(e);
      }
    } else {
      // Until the first winner the merged list is a prefix of ours: it is only built from there on.
      let out: RingEntry[] | undefined;
      /** Where each winner went in `out`, and whether it went in beside the entries already there. */
      const at: number[] = [];
      const inserted: boolean[] = [];
      let i = 0;
      let j = 0;
      while (i < mine.length || j < incoming.length) {
        const a = mine[i];
        const b = incoming[j];
        if (b === undefined || (a !== undefined && a.token < b.token)) {
          out?.push(a!);
          i++;
        } else if (a === undefined || b.token < a.token) {
          out ??= mine.slice(0, i);
          at.push(out.length);
          inserted.push(true);
          out.push(b);
          won.push(b);
          j++;
        } else {
          if (beats(b, a)) {
            out ??= mine.slice(0, i);
            at.push(out.length);
            inserted.push(false);
            out.push(b);
            won.push(b);
          } else out?.push(a);
          i++;
          j++;
        }
      }
      if (out !== undefined) {
        this.entries = out;
        // Winners in order of their place: each lands where the ones before it left the bytes.
        if (won.length > 32) bytes?.reset();
        else if (bytes !== undefined) for (let k = 0; k < won.length; k++) bytes.set(at[k]!, won[k]!, inserted[k]!);
      }
    }
    if (won.length > 0) {
      const o = this.orphanTokens;
      if (o !== undefined && this.tombs.size > 0)
        for (const e of won) {
          if (this.tombs.has(e.owner)) o.add(e.token);
          else o.delete(e.token);
        }
      this.changed();
    }
    return won;
  }

  /** GossipData merge; throws `IpamRingConflictError` (merging nothing) for another genesis. */
  merge(other: this): this | undefined {
    if (!sameGenesis(other.genesis, this.genesis)) {
      throw new IpamRingConflictError(this.space.cidr, this.genesis.seeds, other.genesis.seeds, other.genesis.clusterId !== this.genesis.clusterId || other.genesis.space !== this.genesis.space ? ` (cluster ${JSON.stringify(other.genesis.clusterId)}, space ${other.genesis.space})` : '');
    }
    const d = this.emptyLike(this.mergeEntries(other.entries));
    for (const t of other.tombs) if (!this.tombs.has(t)) d.tombs.add(t);
    for (const a of other.adoptedBy) if (!this.adoptedBy.has(a)) d.adoptedBy.add(a);
    if (d.entries.length === 0 && d.tombs.size === 0 && d.adoptedBy.size === 0) return undefined;
    for (const t of d.tombs) this.tombs.add(t);
    for (const a of d.adoptedBy) this.adoptedBy.add(a);
    this.findOrphans(d.tombs);
    this.changed();
    return d as this;
  }
}
