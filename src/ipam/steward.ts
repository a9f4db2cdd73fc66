/**
 * What a peer does about one ring with what custody (custody.ts) tells it: the local changes that
 * keep its own space its own, answer a `weft forget` of itself, and carry out its duties as an heir.
 * Each returns the entries to write (signed by the caller), or nothing; guard.ts writes them, and
 * announcer.ts persists and gossips them.
 *
 *   defend     an entry that won over space custody says is ours, written by someone else while
 *              we are not forgotten, is an attack: we write our entry back at a higher version
 *              (others confirm it: we are its confirmed owner). Not against: a reclaim of our own
 *              space from a tombstone we since answered (the heir gives it back, see `giveBack`),
 *              a writer that is forgotten (its late writes lose nothing of ours that is safe to
 *              fight for), the peer that gave us the space (it gave it twice: we let it go rather
 *              than fight the other recipient, who is honest too; counted), a version at the bound.
 *   answer     a tombstone of ourselves: while nothing of ours was taken we revive (a signed record
 *              one epoch up, cancelling it); once something was taken we are fenced, for good.
 *   reclaim    as heir (the peer that forgot the owner) we take over its confirmed entries once it
 *              has been unreachable from here for `reclaimAfterMs`.
 *   giveBack   a reclaimed entry we still hold (nothing allocated from it yet) goes back to its
 *              owner when that owner revived.
 */
import type { PeerName } from '../mesh/contracts.js';
import type { SpaceAllocator } from './allocator.js';
import type { Custody } from './custody.js';
import type { Interval } from './intervals.js';
import { writerOf, type EntryDraft, type Ring } from './ring.js';
import { MAX_VERSION } from './ring-signing.js';

/** Why a defence was not made (each counted and logged once per token). */
export type Restraint = 'doubleSpend' | 'versionLimit';

export interface Defence {
  drafts: EntryDraft[];
  /** Writers whose entries took space of ours (to log). */
  attackers: PeerName[];
  restraints: { token: bigint; writer: PeerName; why: Restraint }[];
}

export class Steward {
  private readonly self: PeerName;
  /** Tokens we already declined to defend (logged once). */
  private readonly declined = new Set<string>();

  constructor(self: PeerName) {
    this.self = self;
  }

  /** Entries to write back over what was taken from us (see the file header). */
  defend(ring: Ring, custody: Custody): Defence {
    const out: Defence = { drafts: [], attackers: [], restraints: [] };
    if (ring.isTombstoned(this.self)) return out;
    for (const [token, before] of custody.pendingList()) {
      const w = ring.entryAt(token);
      if (w === undefined || writerOf(w) === this.self) continue;
      const mine = custody.holdersAt(token).filter((s) => s.owner === this.self);
      if (mine.length === 0) continue;
      const writer = writerOf(w);
      if (w.reclaimed?.from === this.self || ring.isTombstoned(writer)) continue;
      const key = `${token}/${w.version}/${writer}`;
      if (before !== null && before !== 'unknown' && before.owner === this.self && writerOf(before) === writer) {
        if (!this.declined.has(key)) out.restraints.push({ token, writer, why: 'doubleSpend' });
        this.declined.add(key);
        continue;
      }
      if (w.version >= MAX_VERSION) {
        if (!this.declined.has(key)) out.restraints.push({ token, writer, why: 'versionLimit' });
        this.declined.add(key);
        continue;
      }
      if (!out.attackers.includes(writer)) out.attackers.push(writer);
      for (const s of mine) out.drafts.push(s.start === token ? { token, owner: this.self, version: w.version + 1, end: s.end } : { token: s.start, owner: this.self, version: 1, end: s.end });
    }
    return out;
  }

  /**
   * We are forgotten in this ring: 'revive' while custody shows nothing of ours taken, else
   * 'fenced'. Undefined when we are not forgotten.
   */
  answer(ring: Ring, custody: Custody): 'revive' | 'fenced' | undefined {
    if (!ring.isTombstoned(this.self)) return undefined;
    for (const [token] of custody.pendingList()) {
      const w = ring.entryAt(token);
      if (w === undefined || writerOf(w) === this.self) continue;
      if (custody.holdersAt(token).some((s) => s.owner === this.self)) return 'fenced';
    }
    return 'revive';
  }

  /**
   * Indexes of the orphaned entries we may reclaim now: we are their owner's heir, they are
   * confirmed here, and `gone(owner)` (unreachable long enough).
   */
  reclaimable(ring: Ring, custody: Custody, gone: (peer: PeerName) => boolean): Set<number> {
    const out = new Set<number>();
    if (ring.isTombstoned(this.self)) return out;
    const list = ring.entryList();
    for (const token of ring.orphanTokenList()) {
      const i = ring.indexOf(token);
      const e = list[i]!;
      if (ring.heirOf(e.owner) === this.self && custody.isConfirmed(token) && gone(e.owner)) out.add(i);
    }
    return out;
  }

  /** Reclaimed entries of ours still held whose former owner revived: what to give back. */
  giveBack(ring: Ring, custody: Custody, alloc: SpaceAllocator): { drafts: EntryDraft[]; runs: Interval[] } {
    const drafts: EntryDraft[] = [];
    const runs: Interval[] = [];
    const list = ring.entryList();
    for (let i = 0; i < list.length; i++) {
      const e = list[i]!;
      const r = e.reclaimed;
      if (r === undefined || e.owner !== this.self || !custody.isConfirmed(e.token)) continue;
      const life = ring.lifeOf(r.from);
      if (life === undefined || life.epoch <= r.epoch || life.epoch % 2 === 1 || e.version >= MAX_VERSION) continue;
      const end = ring.end(i);
      if (!alloc.heldWhole(e.token, end)) continue;
      drafts.push({ token: e.token, owner: r.from, version: e.version + 1, end: e.end });
      runs.push([e.token, end]);
    }
    return { drafts, runs };
  }
}
