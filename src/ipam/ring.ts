/**
 * The ring: who owns which part of one address space, as a CRDT gossiped on the "ipam" channel
 * (one ring per space: one for IPv4, one for IPv6 when dual-stack).
 *
 * State
 *   genesis     { clusterId, space, seeds } fixed for the ring's life; `id` is a hash of it
 *   entries     token (offset) → { owner, version, end, writer, signature }: the entry owns
 *               [token, end). Tokens are never removed; an owner that splits an entry bumps its
 *               version with the new end. Ranges are explicit so that a peer that missed the
 *               gossip creating a token never believes an entry reaches past its end (a view that
 *               holds a stale, longer version of an entry still stops it at the next token it knows).
 *   life        per peer, the newest of its "forgotten" (odd epoch, a tombstone written by the
 *               peer that ran `weft forget`) and "revived" (even epoch, written by the peer itself)
 *               records
 *   adopted     the seeds that adopted this genesis, each with its signature
 *
 * Every record is signed by the router that wrote it (ring-signing.ts), except the genesis entries,
 * which the genesis defines. The ring itself merges what it is given: `admitRing` (admission.ts)
 * checks signatures and bounds before anything received is merged, so the merge stays a join of
 * validly signed records. Whether a valid record's writer had the right to write it is a question
 * of history this state does not keep; custody.ts answers it locally.
 *
 * Genesis: the space split into len(seeds) near-equal runs, seed i (sorted) owning run i at
 * version 1; peers computing it from the same seeds hold byte-equal rings.
 *
 * Merge: per token the greatest entry by `beats` wins; per peer the greatest life record by
 * `lifeBeats`; per seed the greatest adoption by signature. Each is a total order, so merge is a
 * join: commutative, associative, idempotent. Rings with different geneses never merge
 * (`IpamRingConflictError`).
 *
 * Updates (all signed by the writer `w`): `assign` hands [start, end) to another peer by inserting
 * tokens at its bounds (version 1), shortening the entry it splits and giving the entries inside to
 * the recipient (version + 1). `forget` writes a tombstone (epoch + 1, carrying the revival it
 * supersedes, so that no tombstone names an epoch its peer never reached); `revive` answers a
 * tombstone of ourselves (epoch + 1, carrying that tombstone). The heir of a forgotten peer is the
 * peer that forgot it (or, when that one was forgotten too, its heir): a function of the merged
 * life records that does not move when entries change hands, so every peer names the same heir at
 * any time. The heir takes entries over with `reclaim` (owner = itself, version + 1, marked with
 * the peer and epoch it took them from). A tombstoned peer owns nothing (it is fenced).
 */
import type { GossipData, PeerName } from '../mesh/contracts.js';
import { adoptionBeats, beats, genesisEntries, genesisId, lifeBeats, sameGenesis, type Adoption, type EntryDraft, type Genesis, type LifeRecord, type RingEntry } from './ring-records.js';
import { IpamArgumentError, IpamRingConflictError, IpamRingWriteError } from './errors.js';
import type { Interval } from './intervals.js';
import { EntryBytes } from './entry-bytes.js';
import { assembleRing } from './ring-codec.js';
import { ADOPT_LABEL, ENTRY_LABEL, LIFE_LABEL, MAX_VERSION, adoptBody, entryBody, lifeBody, signBody, type RingWriter } from './ring-signing.js';
import { space as parseSpaceOrThrow, type AddressSpace } from './space.js';

export * from './ring-records.js';

export class Ring implements GossipData {
  readonly genesis: Genesis;
  readonly space: AddressSpace;
  private entries: RingEntry[];
  /** The entries' encodings, kept in step with them once the ring was encoded. */
  private entryBytes: EntryBytes | undefined = undefined;
  private readonly life: Map<PeerName, LifeRecord>;
  private readonly adoptions: Map<PeerName, Adoption>;
  /** Tokens of the entries whose owner is tombstoned, kept up to date once asked for (`orphaned`). */
  private orphanTokens: Set<bigint> | undefined = undefined;
  private genesisHash: string | undefined;
  /** Derived from the state, dropped by `changed()`. */
  private cache: Uint8Array | undefined = undefined;
  private bySize: (readonly [PeerName, bigint])[] | undefined = undefined;
  /** On a delta of local writes: the entries they replaced here. */
  superseded: readonly RingEntry[] = [];

  private constructor(genesis: Genesis, space: AddressSpace, entries: RingEntry[], life: Iterable<LifeRecord>, adopted: Iterable<Adoption>, id?: string) {
    this.genesis = genesis;
    this.genesisHash = id;
    this.space = space;
    this.entries = entries;
    this.life = new Map();
    for (const r of life) this.life.set(r.peer, r);
    this.adoptions = new Map();
    for (const a of adopted) this.adoptions.set(a.seed, a);
  }

  private orphaned(): Set<bigint> {
    if (this.orphanTokens === undefined) {
      this.orphanTokens = new Set();
      for (const e of this.entries) if (this.isTombstoned(e.owner)) this.orphanTokens.add(e.token);
    }
    return this.orphanTokens;
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
    if (sorted.length === 0) throw new IpamArgumentError('a genesis needs at least one seed');
    if (BigInt(sorted.length) > sp.size) throw new IpamArgumentError(`${sorted.length} seeds cannot share ${sp.cidr}`);
    return new Ring({ clusterId, space: sp.cidr, seeds: sorted }, sp, genesisEntries(sp, sorted), [], []);
  }

  /**
   * A ring (or delta) from decoded parts (validated by the codec; signatures by `admitRing` when
   * they came from the network). `known`: the parsed space when the caller has it.
   */
  static fromParts(genesis: Genesis, entries: readonly RingEntry[], life: readonly LifeRecord[], adopted: readonly Adoption[], known?: AddressSpace): Ring {
    const sp = known !== undefined && known.cidr === genesis.space ? known : parseSpaceOrThrow(genesis.space);
    return new Ring(genesis, sp, [...entries], life, adopted);
  }

  private emptyLike(entries: RingEntry[] = []): Ring {
    return new Ring(this.genesis, this.space, entries, [], [], this.genesisHash);
  }

  /** A copy (records are immutable and shared). */
  clone(): Ring {
    return new Ring(this.genesis, this.space, [...this.entries], this.life.values(), this.adoptions.values(), this.genesisHash);
  }

  /** The state changed: drops what was derived from it. */
  private changed(): void {
    this.cache = undefined;
    this.bySize = undefined;
  }

  /** The ring's bytes (cached until it changes). */
  encode(): Uint8Array {
    this.entryBytes ??= new EntryBytes(this.space.bytes);
    this.cache ??= assembleRing({ genesis: this.genesis, life: this.lifeRecords(), adopted: this.adoptionList() }, this.entries.length, this.entryBytes.of(this.entries));
    return this.cache;
  }

  /**
   * Whether `data` is this ring's encoding (`withProofs`: or that encoding with proofs appended),
   * without encoding it when that is not cached.
   */
  encodesAs(data: Uint8Array, withProofs = false): boolean {
    const c = this.cache;
    if (c === undefined) return false;
    if (c.length === data.length) return Buffer.from(c.buffer, c.byteOffset, c.byteLength).equals(data);
    // [0x98, the same 6 fields and entries, proofs] against [0x97, fields, entries].
    return withProofs && data.length > c.length && c[0] === 0x97 && data[0] === 0x98 && Buffer.from(c.buffer, c.byteOffset + 1, c.byteLength - 1).equals(data.subarray(1, c.length));
  }

  entryList(): readonly RingEntry[] {
    return this.entries;
  }

  /** Life records by peer name. */
  lifeRecords(): LifeRecord[] {
    return [...this.life.values()].sort((a, b) => (a.peer < b.peer ? -1 : 1));
  }

  lifeOf(peer: PeerName): LifeRecord | undefined {
    return this.life.get(peer);
  }

  adoptionList(): Adoption[] {
    return [...this.adoptions.values()].sort((a, b) => (a.seed < b.seed ? -1 : 1));
  }

  /** Peers forgotten now (their newest life record is a tombstone), sorted. */
  tombstones(): PeerName[] {
    const out: PeerName[] = [];
    for (const r of this.life.values()) if (r.epoch % 2 === 1) out.push(r.peer);
    return out.sort();
  }

  adopted(): PeerName[] {
    return [...this.adoptions.keys()].sort();
  }

  isTombstoned(peer: PeerName): boolean {
    const r = this.life.get(peer);
    return r !== undefined && r.epoch % 2 === 1;
  }

  /** Seeds that neither adopted the ring nor were forgotten (empty: the ring is confirmed). */
  unconfirmedSeeds(): PeerName[] {
    return this.genesis.seeds.filter((s) => !this.adoptions.has(s) && !this.isTombstoned(s));
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

  /** The token after entry i (the space's size after the last). */
  nextToken(i: number): bigint {
    return this.entries[i + 1]?.token ?? this.space.size;
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

  /** The entry at exactly `token`, if any. */
  entryAt(token: bigint): RingEntry | undefined {
    const e = this.entries[this.indexOf(token)];
    return e !== undefined && e.token === token ? e : undefined;
  }

  /**
   * The live peer that inherits a forgotten peer's space: the peer that forgot it, or that one's
   * heir when it was forgotten too (undefined: the peer is not forgotten, or the chain has no live end).
   */
  heirOf(peer: PeerName): PeerName | undefined {
    let r = this.life.get(peer);
    if (r === undefined || r.epoch % 2 === 0) return undefined;
    const seen = new Set<PeerName>([peer]);
    for (;;) {
      const w = r.writer;
      r = this.life.get(w);
      if (r === undefined || r.epoch % 2 === 0) return w;
      if (seen.has(w)) return undefined;
      seen.add(w);
    }
  }

  /** What `peer` owns now (merged adjacent runs), skipping entries `skip` names; nothing when it is tombstoned. */
  ownedBy(peer: PeerName, skip?: (token: bigint) => boolean): Interval[] {
    if (this.isTombstoned(peer)) return [];
    const out: [bigint, bigint][] = [];
    for (let i = 0; i < this.entries.length; i++) {
      const e = this.entries[i]!;
      if (e.owner !== peer || (skip !== undefined && skip(e.token))) continue;
      const a = e.token;
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
      if (!this.isTombstoned(o)) out.set(o, (out.get(o) ?? 0n) + this.end(i) - this.entries[i]!.token);
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
    return this.life.size === 0 ? 0 : this.orphaned().size;
  }

  /** Tokens of the orphaned entries, ascending. */
  orphanTokenList(): bigint[] {
    return this.orphans() === 0 ? [] : [...this.orphaned()].sort((a, b) => (a < b ? -1 : 1));
  }

  /** An entry signed by `w` (the ring's id binds it to this ring). */
  sign(w: RingWriter, d: EntryDraft): RingEntry {
    if (!(d.version >= 1 && d.version <= MAX_VERSION)) throw new IpamRingWriteError(`version ${d.version} is outside 1..${MAX_VERSION}`);
    const fields = { ...d, writer: w.name };
    const sig = signBody(w, ENTRY_LABEL, entryBody(this.id, this.space.bytes, fields));
    return d.reclaimed === undefined
      ? { token: d.token, owner: d.owner, version: d.version, end: d.end, writer: w.name, writerKey: w.publicKey, sig }
      : { token: d.token, owner: d.owner, version: d.version, end: d.end, reclaimed: d.reclaimed, writer: w.name, writerKey: w.publicKey, sig };
  }

  /** Writes entries signed by `w` (each must beat the one at its token); returns the delta. */
  write(w: RingWriter, drafts: readonly EntryDraft[]): Ring {
    return this.apply(drafts.map((d) => this.sign(w, d)));
  }

  /**
   * `w` hands [start, end) to `to`. Every offset of it must be owned by `w` (throws otherwise).
   * Returns the delta.
   */
  assign(start: bigint, end: bigint, to: PeerName, w: RingWriter): Ring {
    const by = w.name;
    if (!(start >= 0n && start < end && end <= this.space.size)) throw new IpamRingWriteError(`bad range [${start}, ${end}) in ${this.space.cidr}`);
    const i0 = this.indexOf(start);
    const i1 = this.indexOf(end - 1n);
    let covered = start;
    for (let i = i0; i <= i1 && i >= 0; i++) {
      const e = this.entries[i]!;
      if (e.owner !== by || e.token > covered || this.end(i) <= covered) break;
      covered = this.end(i);
    }
    if (i0 < 0 || covered < end || this.isTombstoned(by)) throw new IpamRingWriteError(`${by} does not own all of [${start}, ${end}) in ${this.space.cidr}`);
    const changed: EntryDraft[] = [];
    for (let i = i0; i <= i1; i++) {
      const e = this.entries[i]!;
      const eEnd = this.end(i);
      if (e.token < start) {
        changed.push({ token: e.token, owner: by, version: e.version + 1, end: start });
        changed.push({ token: start, owner: to, version: 1, end: eEnd < end ? eEnd : end });
      } else changed.push({ token: e.token, owner: to, version: e.version + 1, end: eEnd < end ? eEnd : end });
      if (eEnd > end) changed.push({ token: end, owner: by, version: 1, end: eEnd });
    }
    return this.write(w, changed);
  }

  /**
   * `w` runs `weft forget peer`: a tombstone at the next odd epoch, carrying the revival it
   * supersedes. The delta, or undefined when the peer is forgotten already.
   */
  forget(peer: PeerName, w: RingWriter): Ring | undefined {
    if (peer === w.name) throw new IpamRingWriteError('a peer cannot forget itself');
    const cur = this.life.get(peer);
    if (cur !== undefined && cur.epoch % 2 === 1) return undefined;
    return this.setLife(peer, (cur?.epoch ?? 0) + 1, w, cur);
  }

  /** `w` answers a tombstone of itself with a revival (the delta; undefined when it is not forgotten). */
  revive(w: RingWriter): Ring | undefined {
    const cur = this.life.get(w.name);
    if (cur === undefined || cur.epoch % 2 === 0) return undefined;
    return this.setLife(w.name, cur.epoch + 1, w, cur);
  }

  private setLife(peer: PeerName, epoch: number, w: RingWriter, cur: LifeRecord | undefined): Ring {
    if (epoch > MAX_VERSION) throw new IpamRingWriteError(`epoch ${epoch} of ${peer} would pass ${MAX_VERSION}`);
    const sig = signBody(w, LIFE_LABEL, lifeBody(this.id, peer, epoch, w.name));
    const rec: LifeRecord =
      cur === undefined ? { peer, epoch, writer: w.name, writerKey: w.publicKey, sig } : { peer, epoch, writer: w.name, writerKey: w.publicKey, sig, prev: { writer: cur.writer, writerKey: cur.writerKey, sig: cur.sig } };
    const d = this.emptyLike();
    this.mergeLife([rec], d);
    return d;
  }

  /** A seed records that it adopted this genesis. */
  adopt(w: RingWriter): Ring | undefined {
    const seed = w.name;
    if (this.adoptions.has(seed) || !this.genesis.seeds.includes(seed)) return undefined;
    const a: Adoption = { seed, key: w.publicKey, sig: signBody(w, ADOPT_LABEL, adoptBody(this.id, seed)) };
    this.adoptions.set(seed, a);
    this.changed();
    const d = this.emptyLike();
    d.adoptions.set(seed, a);
    return d;
  }

  /**
   * `w` takes over the orphaned entries it is heir of and `accept` agrees to (their index); returns
   * the delta and the ranges taken.
   */
  reclaim(w: RingWriter, accept: (i: number) => boolean = () => true): { delta: Ring; taken: Interval[] } | undefined {
    const self = w.name;
    if (this.orphans() === 0 || this.isTombstoned(self)) return undefined;
    const drafts: EntryDraft[] = [];
    const taken: Interval[] = [];
    for (const token of this.orphanTokenList()) {
      const i = this.indexOf(token);
      const e = this.entries[i]!;
      if (this.heirOf(e.owner) !== self || !accept(i)) continue;
      drafts.push({ token: e.token, owner: self, version: e.version + 1, end: e.end, reclaimed: { from: e.owner, epoch: this.life.get(e.owner)!.epoch } });
      taken.push([e.token, this.end(i)]);
    }
    if (drafts.length === 0) return undefined;
    return { delta: this.write(w, drafts), taken };
  }

  /**
   * Stores entries that beat ours (all of `changed` do); returns them as a delta, whose
   * `superseded` lists the entries they replaced.
   */
  private apply(changed: RingEntry[]): Ring {
    const sorted = [...changed].sort((a, b) => (a.token < b.token ? -1 : a.token > b.token ? 1 : 0));
    const old = sorted.map((e) => this.entryAt(e.token)).filter((e) => e !== undefined);
    const d = this.emptyLike(this.mergeEntries(sorted));
    d.superseded = old;
    return d;
  }

  /** Merges life records into this ring; those that changed it go to `delta`. */
  private mergeLife(incoming: Iterable<LifeRecord>, delta: Ring): void {
    let revived = false;
    for (const r of incoming) {
      const cur = this.life.get(r.peer);
      if (cur !== undefined && !lifeBeats(r, cur)) continue;
      this.life.set(r.peer, r);
      delta.life.set(r.peer, r);
      const wasDead = cur !== undefined && cur.epoch % 2 === 1;
      const dead = r.epoch % 2 === 1;
      if (wasDead && !dead) revived = true;
      else if (dead && !wasDead && this.orphanTokens !== undefined) for (const e of this.entries) if (e.owner === r.peer) this.orphanTokens.add(e.token);
    }
    if (revived) this.orphanTokens = undefined;
    if (delta.life.size > 0) this.changed();
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
      if (o !== undefined && this.life.size > 0)
        for (const e of won) {
          if (this.isTombstoned(e.owner)) o.add(e.token);
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
    const d = this.emptyLike();
    // Life first: the orphan index then sees the owners' new state when entries merge.
    this.mergeLife(other.life.values(), d);
    d.entries = this.mergeEntries(other.entries);
    for (const a of other.adoptions.values()) {
      const cur = this.adoptions.get(a.seed);
      if (cur !== undefined && !adoptionBeats(a, cur)) continue;
      this.adoptions.set(a.seed, a);
      d.adoptions.set(a.seed, a);
    }
    if (d.entries.length === 0 && d.life.size === 0 && d.adoptions.size === 0) return undefined;
    this.changed();
    return d as this;
  }
}
