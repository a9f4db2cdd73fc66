/**
 * Custody: which entries of a ring this peer has verified the right of, kept beside the ring.
 *
 * A signature proves who wrote an entry, not that its writer could give the range away: that is a
 * question of history, and state-based gossip keeps none (a peer that missed A→B at v5 sees B's v6
 * while it still believes A owns the token). Refusing such entries in the merge would make honest
 * views diverge for good, so the merge stays a join of validly signed records (admission.ts) and
 * custody is local knowledge used for the decisions that matter (ipam.ts): allocating, accepting a
 * donation, reclaiming, defending what we own.
 *
 *   holders     offset → the peer that held it last, as far as this peer verified (owner-map.ts)
 *   pending     token → the last entry confirmed there (null: a new token never confirmed;
 *               'unknown': nothing known, see below). Every other token's winner is confirmed.
 *
 * An entry is confirmed when its writer held every offset of it here (a self-write, a donation);
 * or it is a reclaim, by the heir, of offsets a forgotten peer held that this peer cannot reach;
 * or it is a handover that beats a reclaim of the same version, written by the forgotten peer
 * itself (the race the ring's `beats` settles that way). A confirmed entry makes its owner the
 * holder of its range here (up to the next token, and on over tokens never confirmed that its
 * writer held: the space it was written over, before anyone cut it).
 *
 * Trust on first use: a peer that adopts a ring it did not seed knows nothing of its history, so
 * everything starts 'unknown' and the first entries seen there are taken as they are (versions up
 * to `TOFU_MAX_VERSION`, and never entries that give that peer itself anything). Past that, only
 * confirmed changes move custody. A losing entry newer than a pending token's custody still teaches
 * custody (it may be the link that was missing), so links that arrive out of order confirm later.
 *
 * Proofs: gossip passes on only what wins, so a grant to B that B rewrites at once (it shortens the
 * entry to give a part on) may never reach a peer that sees only B's rewrite. So each peer keeps,
 * per token it owns, its title (the entries that gave it that space, oldest first, at most
 * `MAX_CHAIN`), and per token the last `HISTORY` entries custody moved past there; it sends them
 * as proofs with what it writes (an heir's reclaim carries the entries it took over), its titles
 * with its full state, both to a peer that asks (`prove`), and relays proofs that taught it
 * something. Proofs only teach custody (`learn`), they are never merged.
 */
import type { PeerName } from '../mesh/contracts.js';
import { OwnerMap, type Holder, type Run } from './owner-map.js';
import { beats, writerOf, type Ring, type RingEntry } from './ring.js';

/** Entries above this version are never trusted on first use (a forger would need the peers' help to get there). */
export const TOFU_MAX_VERSION = 1 << 20;

/** Links of a title kept and sent (custody transfers a peer that missed them can still follow). */
export const MAX_CHAIN = 4;

/** Entries kept per token that custody moved past. */
export const HISTORY = 2;

export type CustodyValue = RingEntry | null | 'unknown';

/** What custody needs to know of the moment. */
export interface CustodyContext {
  readonly self: PeerName;
  /** Whether a peer can be reached from here now (a reclaim of a reachable peer waits). */
  reachable(peer: PeerName): boolean;
}

/** The decision about one incoming entry, taken before the merge (see `prepare`). */
export interface Decision {
  readonly entry: RingEntry;
  /** It wins the ring here; otherwise it only advances a pending token's custody. */
  readonly wins: boolean;
  readonly confirmed: boolean;
  /** Custody at its token before it (for a new token: null). */
  readonly before: CustodyValue;
}

/**
 * What custody keeps across a restart. `holders` lists only where they differ from what the ring
 * says (each winner's owner over its range; nobody in a gap): the rest follows from the ring.
 */
export interface CustodyState {
  pending: [bigint, CustodyValue][];
  holders: Run[];
  titles: [bigint, readonly RingEntry[]][];
}

/** The holders the ring alone gives: each winner's owner over its range (gaps: 'unknown'). */
function ringHolders(ring: Ring): OwnerMap {
  const list = ring.entryList();
  return OwnerMap.of(ring.space.size, list.map((e, i) => ({ start: e.token, end: ring.end(i), owner: e.owner })));
}

function same(a: CustodyValue, b: RingEntry): boolean {
  return a === b || (a !== null && a !== 'unknown' && !beats(a, b) && !beats(b, a));
}

export class Custody {
  private readonly ring: Ring;
  private readonly pending: Map<bigint, CustodyValue>;
  private readonly holders: OwnerMap;
  /** Per token we own by a grant or a reclaim: the entries that gave it to us, oldest first. */
  private readonly titles = new Map<bigint, readonly RingEntry[]>();
  /** Per token, the last entries custody moved past there, oldest first (not persisted). */
  private readonly history = new Map<bigint, RingEntry[]>();
  /** Bumped whenever what `state()` returns may have changed. */
  revision = 0;

  private constructor(ring: Ring, pending: Map<bigint, CustodyValue>, holders: OwnerMap) {
    this.ring = ring;
    this.pending = pending;
    this.holders = holders;
  }

  /** Custody of a ring whose every entry this peer knows to be right (it seeded it). */
  static known(ring: Ring): Custody {
    return new Custody(ring, new Map(), ringHolders(ring));
  }

  /** Custody of a ring adopted from others: nothing known yet. */
  static unknown(ring: Ring): Custody {
    return new Custody(ring, new Map(ring.entryList().map((e) => [e.token, 'unknown' as const])), new OwnerMap(ring.space.size));
  }

  /** Custody restored from the state file. */
  static restored(ring: Ring, s: CustodyState): Custody {
    const m = new Map<bigint, CustodyValue>();
    for (const [t, v] of s.pending) if (ring.entryAt(t) !== undefined) m.set(t, v);
    const holders = ringHolders(ring);
    for (const r of s.holders) holders.set(r.start, r.end, r.owner);
    const c = new Custody(ring, m, holders);
    for (const [t, chain] of s.titles) if (chain.length > 0) c.titles.set(t, chain);
    return c;
  }

  state(): CustodyState {
    const diff: Run[] = [];
    const list = this.ring.entryList();
    let i = 0;
    for (const r of this.holders.all()) {
      // The ring's runs over r: winners' ranges, and gaps (nobody) between them.
      for (let at = r.start; at < r.end; ) {
        while (i < list.length && this.ring.nextToken(i) <= at) i++;
        const e = list[i];
        let owner: string;
        let until: bigint;
        if (e === undefined || e.token > at) {
          owner = 'unknown';
          until = e === undefined ? r.end : e.token;
        } else if (at < this.ring.end(i)) {
          owner = e.owner;
          until = this.ring.end(i);
        } else {
          owner = 'unknown';
          until = this.ring.nextToken(i);
        }
        const b = until < r.end ? until : r.end;
        if (owner !== r.owner) {
          const last = diff.at(-1);
          if (last !== undefined && last.end === at && last.owner === r.owner) diff[diff.length - 1] = { start: last.start, end: b, owner: r.owner };
          else diff.push({ start: at, end: b, owner: r.owner });
        }
        at = b;
      }
    }
    return { pending: this.pendingList(), holders: diff, titles: [...this.titles].sort((a, b) => (a[0] < b[0] ? -1 : 1)) };
  }

  /** Tokens whose winner is not confirmed here, with their custody. */
  pendingList(): [bigint, CustodyValue][] {
    return [...this.pending].sort((a, b) => (a[0] < b[0] ? -1 : 1));
  }

  pendingCount(): number {
    return this.pending.size;
  }

  isConfirmed(token: bigint): boolean {
    return !this.pending.has(token);
  }

  /** Who held [token, next token) as far as custody knows (cut into runs). */
  holdersAt(token: bigint): Run[] {
    const i = this.ring.indexOf(token);
    return this.holders.runs(token, this.ring.nextToken(i));
  }

  // ─── proofs ───────────────────────────────────────────────────────────────────────────────

  /** Every entry of our titles, once each (for a full state). */
  allProofs(max = 256): RingEntry[] {
    const out = new Set<RingEntry>();
    for (const chain of this.titles.values()) for (const e of chain) out.add(e);
    return [...out].slice(-max);
  }

  /**
   * The title of the space `offset` is in: that of its token, or of the nearest titled token before
   * it (a token we just cut out of our space has none yet; titles exist only for our tokens).
   */
  private titleAt(offset: bigint): readonly RingEntry[] | undefined {
    const list = this.ring.entryList();
    const i = this.ring.indexOf(offset);
    for (let k = i; k >= 0 && k > i - 8; k--) {
      const t = this.titles.get(list[k]!.token);
      if (t !== undefined) return t;
    }
    return undefined;
  }

  /** The proofs to send with our writes `delta` (before `wrote` records them). */
  proofsFor(delta: Ring, max = 64): RingEntry[] {
    return this.titlesFor(delta.entryList().map((e) => e.token), max, false);
  }

  /**
   * What we know of how these tokens came to be as they are (a peer asked): titles, the entries
   * custody moved past, and (`winners`) the winner when confirmed here; once each, at most `max`.
   */
  titlesFor(tokens: readonly bigint[], max = 64, winners = true): RingEntry[] {
    const out = new Set<RingEntry>();
    for (const t of tokens) {
      for (const p of this.titles.get(t) ?? this.titleAt(t) ?? []) out.add(p);
      for (const p of this.history.get(t) ?? []) out.add(p);
      const w = this.ring.entryAt(t);
      if (winners && w !== undefined && w.sig !== undefined && this.isConfirmed(t)) out.add(w);
    }
    return [...out].slice(-max);
  }

  /** Custody moved past `old` at its token: kept in the history. */
  remember(old: CustodyValue | undefined): void {
    if (old === undefined || old === null || old === 'unknown' || old.sig === undefined) return;
    const h = this.history.get(old.token);
    if (h === undefined) this.history.set(old.token, [old]);
    else if (!h.includes(old)) {
      h.push(old);
      if (h.length > HISTORY) h.shift();
    }
  }

  /** Records the title of a winner of ours confirmed now: `proofs` that came with it, then itself. */
  private entitle(w: RingEntry, self: PeerName, proofs: readonly RingEntry[]): void {
    if (w.owner !== self) {
      this.titles.delete(w.token);
      return;
    }
    if (writerOf(w) === self && w.reclaimed === undefined) return;
    const mine = proofs.filter((p) => p.token < w.end && p.end > w.token);
    this.titles.set(w.token, [...mine, w].slice(-MAX_CHAIN));
  }

  // ─── changes ──────────────────────────────────────────────────────────────────────────────

  /**
   * Our own writes are right by construction: confirmed, their owners hold their ranges. Titles
   * follow them: an entry we keep keeps (or inherits, for a new token in our space) its title, a
   * reclaim starts one, one we gave away loses it. `superseded`: what they replaced (history).
   */
  wrote(delta: Ring, self: PeerName): void {
    this.revision++;
    const next: [bigint, readonly RingEntry[] | undefined][] = [];
    for (const e of delta.superseded) if (this.isConfirmed(e.token)) this.remember(e);
    for (const e of delta.entryList()) {
      if (e.owner !== self) next.push([e.token, undefined]);
      else if (e.reclaimed !== undefined) next.push([e.token, [e]]);
      else next.push([e.token, this.titles.get(e.token) ?? this.titleAt(e.token)]);
    }
    for (const e of delta.entryList()) {
      this.pending.delete(e.token);
      this.hold(e, undefined);
    }
    for (const [t, chain] of next) {
      if (chain === undefined) this.titles.delete(t);
      else this.titles.set(t, chain);
    }
  }

  /** A losing entry custody can still learn from: newer than a pending token's custody. */
  wants(e: RingEntry): boolean {
    const p = this.pending.get(e.token);
    if (p === undefined) return false;
    return p === null || p === 'unknown' || beats(e, p);
  }

  /** A proof that may teach custody something: `wants` it, or its range covers a pending token. */
  mayLearn(e: RingEntry): boolean {
    if (this.wants(e)) return true;
    for (const t of this.pending.keys()) if (t > e.token && t < e.end) return true;
    return false;
  }

  /**
   * Decides, before they are merged, about entries admitted from a received ring (sorted by
   * token): which win here and whether each is confirmed. Pass the result to `apply` after the merge.
   */
  prepare(entries: readonly RingEntry[], ctx: CustodyContext): Decision[] {
    const out: Decision[] = [];
    for (const e of entries) {
      const cur = this.ring.entryAt(e.token);
      const wins = cur === undefined || beats(e, cur);
      if (!wins && !this.wants(e)) continue;
      const before: CustodyValue = this.pending.has(e.token) ? this.pending.get(e.token)! : (cur ?? null);
      out.push({ entry: e, wins, confirmed: this.authorized(e, before, ctx), before });
    }
    return out;
  }

  /** Records the decisions once the entries are merged; `proofs` came with them. */
  apply(decisions: readonly Decision[], ctx: CustodyContext, proofs: readonly RingEntry[] = []): void {
    if (decisions.length > 0) this.revision++;
    let moved = false;
    for (const d of decisions) {
      const t = d.entry.token;
      if (!d.wins) {
        if (d.confirmed && this.pending.has(t)) {
          this.remember(this.pending.get(t));
          this.pending.set(t, d.entry);
          this.hold(d.entry, ctx);
          moved = true;
        }
        continue;
      }
      if (this.ring.entryAt(t) !== d.entry) continue; // another entry of the same message beat it
      if (d.confirmed) {
        this.pending.delete(t);
        this.remember(d.before);
        this.hold(d.entry, ctx);
        this.entitle(d.entry, ctx.self, proofs);
        moved = true;
      } else this.pending.set(t, d.before);
    }
    if (moved) this.recheck(ctx, proofs);
  }

  /**
   * Learns from proofs (admitted, oldest link first): each one newer than a pending token's
   * custody that its writer had the right to write advances that custody. Then rechecks. Returns
   * how many winners that confirmed.
   */
  learn(proofs: readonly RingEntry[], ctx: CustodyContext): number {
    let confirmed = 0;
    // A link may depend on one sent after it (another token's): a few passes, while they help.
    for (let pass = 0; pass < 3; pass++) {
      let advanced = false;
      for (const p of proofs) {
        if (!this.wants(p)) {
          if (this.handOn(p)) advanced = true;
          continue;
        }
        const before = this.pending.get(p.token)!;
        if (!this.authorized(p, before, ctx)) continue;
        this.remember(before);
        this.pending.set(p.token, p);
        this.hold(p, ctx);
        this.revision++;
        advanced = true;
      }
      if (!advanced) break;
      confirmed += this.recheck(ctx, proofs);
    }
    return confirmed;
  }

  /**
   * A proof older than what custody holds at its own token may still be the link for space cut
   * out of it later: over the pending tokens inside its range, what its giver held (as far as this
   * peer knows) passes to its owner. Returns whether anything did.
   */
  private handOn(p: RingEntry): boolean {
    if (p.sig === undefined) return false;
    const giver = Custody.giver(p);
    const list = this.ring.entryList();
    let moved = false;
    for (let k = this.ring.indexOf(p.token) + 1; k < list.length && list[k]!.token < p.end; k++) {
      const u = list[k]!.token;
      const v = this.pending.get(u);
      if (v === undefined || v === 'unknown') continue;
      const b = this.ring.nextToken(k) < p.end ? this.ring.nextToken(k) : p.end;
      for (const r of this.holders.runs(u, b)) {
        if (r.owner !== giver) continue;
        this.holders.set(r.start, r.end, p.owner);
        moved = true;
      }
    }
    if (moved) this.revision++;
    return moved;
  }

  /**
   * Confirms the pending winners custody now allows (links arrived, an owner became unreachable).
   * Returns how many it confirmed.
   */
  recheck(ctx: CustodyContext, proofs: readonly RingEntry[] = []): number {
    let confirmed = 0;
    for (let pass = 0; pass < 4; pass++) {
      let changed = 0;
      for (const [t, before] of this.pending) {
        const w = this.ring.entryAt(t);
        if (w === undefined) {
          this.pending.delete(t);
          this.revision++;
          continue;
        }
        const known = same(before, w);
        // Trust on first use is for entries as they arrive, never for what we held already.
        if (!known && (before === 'unknown' || !this.authorized(w, before, ctx))) continue;
        this.pending.delete(t);
        this.revision++;
        if (!known) this.remember(before);
        this.hold(w, ctx);
        this.entitle(w, ctx.self, before !== null && before !== 'unknown' && !known ? [...proofs, before] : proofs);
        changed++;
      }
      confirmed += changed;
      if (changed === 0) break;
    }
    return confirmed;
  }

  // ─── the rules ────────────────────────────────────────────────────────────────────────────

  /** The first token after `token` in the ring (the space's size after the last). */
  private nextAfter(token: bigint): bigint {
    const i = this.ring.indexOf(token);
    const list = this.ring.entryList();
    return list[i]?.token === token ? this.ring.nextToken(i) : (list[i + 1]?.token ?? this.ring.space.size);
  }

  /** Where `e`'s range ends in this view: its own end, or the next token after its token. */
  private effEnd(e: RingEntry): bigint {
    const next = this.nextAfter(e.token);
    return e.end < next ? e.end : next;
  }

  /** Who could give away the space `e` was written over: its writer, or for a reclaim the forgotten peer. */
  private static giver(e: RingEntry): PeerName {
    return e.reclaimed?.from ?? writerOf(e);
  }

  /**
   * A confirmed entry's owner now holds its range: up to the next token, and on over the tokens
   * never confirmed here (space cut out of it that this peer saw no confirmed entry of yet) that its
   * giver held. `ctx` undefined: our own write (we hold what we write over).
   */
  private hold(e: RingEntry, ctx: CustodyContext | undefined): void {
    const end = this.effEnd(e);
    this.holders.set(e.token, end, e.owner);
    const next = this.nextAfter(e.token);
    if (e.end < next) {
      // Cut short before the next token: its writer gave the rest away. Where nothing is known (a
      // joiner's first view), that rest is taken as the writer's to have given.
      for (const r of this.holders.runs(e.end, next)) if (r.owner === 'unknown') this.holders.set(r.start, r.end, writerOf(e));
    }
    if (e.end <= end) return;
    const giver = Custody.giver(e);
    const list = this.ring.entryList();
    for (let k = this.ring.indexOf(end); k < list.length && list[k]!.token < e.end; k++) {
      const u = list[k]!.token;
      if (u < end || this.pending.get(u) !== null) break;
      const b = this.ring.nextToken(k) < e.end ? this.ring.nextToken(k) : e.end;
      for (const r of this.holders.runs(u, b)) if (ctx === undefined || r.owner === giver || r.owner === 'unknown') this.holders.set(r.start, r.end, e.owner);
    }
  }

  private authorized(e: RingEntry, before: CustodyValue, ctx: CustodyContext): boolean {
    // The genesis's own entry (admission checked it). Where nothing is known, a joiner trusts it
    // when it arrives (a full state that still has it), not because its own genesis has it.
    if (e.sig === undefined) return before !== 'unknown' || e.owner !== ctx.self;
    const w = e.writer!;
    // A handover by a forgotten peer beats an heir's reclaim of the same version (ring.ts `beats`).
    if (before !== null && before !== 'unknown' && before.reclaimed !== undefined && e.reclaimed === undefined && before.version === e.version && w === before.reclaimed.from) return true;
    const runs = this.holders.runs(e.token, this.effEnd(e));
    const unknown = runs.some((s) => s.owner === 'unknown');
    const tofu = e.version <= TOFU_MAX_VERSION && e.owner !== ctx.self;
    if (unknown && !tofu) return false;
    const r = e.reclaimed;
    if (r !== undefined) {
      const life = this.ring.lifeOf(r.from);
      if (life === undefined || life.epoch !== r.epoch || life.epoch % 2 === 0) return false;
      if (w !== life.writer && w !== this.ring.heirOf(r.from)) return false;
      if (!runs.every((s) => s.owner === r.from || s.owner === 'unknown')) return false;
      return w === ctx.self || unknown || !ctx.reachable(r.from);
    }
    // What we hold given back to us (or handed to us again) takes nothing from anyone.
    if (e.owner === ctx.self && runs.every((s) => s.owner === ctx.self)) return true;
    return runs.every((s) => s.owner === w || s.owner === 'unknown');
  }
}

export type { Holder };
