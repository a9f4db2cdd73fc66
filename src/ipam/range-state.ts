/**
 * One configured address range of a peer's IPAM and all that is kept about it: the ring (who owns
 * what in the cluster; none until adopted), custody (which of the ring's entries this peer verified
 * the right of), the allocator (what this peer hands out inside what it owns), asking other peers
 * for space, and whether entries of forgotten peers may remain to reclaim. The Ipam holds one per
 * range, in the configured order: `index` is the range's place in the state file's per-range
 * fields and in each allocation's offsets (messages name their range).
 */
import type { PeerName } from '../mesh/contracts.js';
import { SpaceAllocator } from './allocator.js';
import { Custody } from './custody.js';
import { Ring } from './ring.js';
import { withProofs } from './ring-codec.js';
import type { AddressSpace } from './space.js';
import { encodeCustody, restoreAllocator, type PersistedState, type RangeSnapshot } from './state-file.js';

/** Asking for space in one range (asker.ts). */
export interface AskState {
  /** The peer asked last, until it answers or times out. */
  target: PeerName | undefined;
  sentAt: number;
  /** Peers asked in this round. */
  tried: Set<PeerName>;
  /** No round starts before this time. */
  retryAt: number;
}

export class RangeState {
  readonly space: AddressSpace;
  /** Place in the configured ranges. */
  readonly index: number;
  readonly allocator: SpaceAllocator;
  readonly asking: AskState = { target: undefined, sentAt: 0, tried: new Set(), retryAt: 0 };
  /** Whether entries of forgotten peers may remain for us to reclaim (checked until none do). */
  orphanCheck = true;
  private currentRing: Ring | undefined = undefined;
  private currentCustody: Custody | undefined = undefined;
  /** The persisted form of custody, with the custody revision it was made at. */
  private custodyCache: { revision: number; bytes: Uint8Array } | undefined = undefined;

  constructor(space: AddressSpace, index: number, quarantineMs: number) {
    this.space = space;
    this.index = index;
    this.allocator = new SpaceAllocator(space, quarantineMs);
  }

  /** The ring (undefined: none adopted yet). */
  get ring(): Ring | undefined {
    return this.currentRing;
  }

  /** Custody of the ring (undefined exactly when there is no ring). */
  get custody(): Custody | undefined {
    return this.currentCustody;
  }

  /** Takes `ring` (this range had none): a seed knows the genesis is right; anyone else learns the ring's history on trust, once. */
  adopt(ring: Ring, self: PeerName): void {
    this.currentRing = ring;
    this.currentCustody = ring.genesis.seeds.includes(self) ? Custody.known(ring) : Custody.unknown(ring);
  }

  /**
   * This range's part of a state file: its ring and custody, then the allocations, releases and
   * holds of its allocator (before its first sync: ages and remaining times resume from `now`).
   */
  restore(s: PersistedState, now: number): void {
    const p = s.rings[this.index];
    if (p !== undefined) {
      const ring = Ring.fromParts(p.genesis, p.entries, p.life, p.adopted);
      const c = s.custody[this.index];
      this.currentRing = ring;
      this.currentCustody = c === undefined ? Custody.unknown(ring) : Custody.restored(ring, c);
    }
    restoreAllocator(s, this.index, this.allocator, now);
  }

  /** Whether custody waits for proofs of some winning entries. */
  waitsForProofs(): boolean {
    return this.currentCustody !== undefined && this.currentCustody.pendingCount() > 0;
  }

  /**
   * Syncs the allocator with what `self` owns: its winning entries that custody confirms (nothing
   * while the ring is not confirmed or we are `fenced`). Returns whether that changed.
   */
  syncOwned(self: PeerName, fenced: boolean): boolean {
    const ring = this.currentRing;
    const custody = this.currentCustody;
    const owned = ring !== undefined && custody !== undefined && ring.confirmed() && !fenced ? ring.ownedBy(self, (t) => !custody.isConfirmed(t)) : [];
    return this.allocator.sync(owned);
  }

  /**
   * Our own entries `delta` were just written in the ring: custody records them (they are right by
   * construction); returns the delta's bytes with the proofs of our custody of that space.
   */
  wrote(delta: Ring, self: PeerName): Uint8Array {
    const custody = this.currentCustody!;
    for (const e of delta.superseded) if (custody.isConfirmed(e.token)) custody.remember(e);
    const proofs = custody.proofsFor(delta);
    custody.wrote(delta, self);
    return withProofs(delta.encode(), proofs, this.space.bytes);
  }

  /** The ring with the proofs of our titles, as the full state gossips it (undefined: no ring). */
  fullState(): Uint8Array | undefined {
    const ring = this.currentRing;
    return ring === undefined ? undefined : withProofs(ring.encode(), this.currentCustody?.allProofs() ?? [], this.space.bytes);
  }

  /** Whether `data` is our ring's encoding (with proofs too while custody waits for none). */
  isOurRing(data: Uint8Array): boolean {
    return this.currentRing?.encodesAs(data, this.currentCustody?.pendingCount() === 0) ?? false;
  }

  /** What the state file keeps of this range now. */
  snapshot(): RangeSnapshot {
    return { space: this.space, ring: this.currentRing?.encode(), custody: this.custodyBytes(), allocator: this.allocator };
  }

  /** Custody as the state file keeps it (made again only when custody changed). */
  private custodyBytes(): Uint8Array | undefined {
    const c = this.currentCustody;
    if (c === undefined) return undefined;
    const cached = this.custodyCache;
    if (cached !== undefined && cached.revision === c.revision) return cached.bytes;
    const bytes = encodeCustody(c.state(), this.space.bytes);
    this.custodyCache = { revision: c.revision, bytes };
    return bytes;
  }
}
