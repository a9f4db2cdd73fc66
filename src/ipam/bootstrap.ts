/**
 * The `initPeers` quorum: peers without a ring announce "waiting (name, N)", signed by the peer
 * they name (checked by the receiver before `merge`); the announcements spread as a grow-only set.
 * A peer decides (adopts genesis with those peers as seeds) only when it has seen exactly N
 * distinct peers with its own N and nobody with another N.
 *
 * Bootstrap without split brain. With `{ seeds }` every peer computes the same genesis ring. With
 * `{ initPeers: N }` a peer without a ring gossips "waiting (name, N)"; once it has seen exactly N
 * distinct waiting peers with the same N (itself included), no other N and no ring, it adopts the
 * genesis whose seeds are those N. In both modes a seed adds itself to the ring's `adopted` set,
 * and nobody allocates, donates or reclaims until every seed adopted it (or was forgotten): the
 * ring is then confirmed. A peer adopts at most one genesis ever (the file keeps it), and a peer
 * without a ring adopts any ring it receives instead of deciding. Two confirmed rings therefore
 * need two disjoint groups of N seeds, each member of which adopted its own group's genesis:
 * at least 2N peers started with the same N, split so that each group saw exactly N waiting
 * peers and no ring. A group that sees more than N waiting peers does not decide (status says to
 * use seeds). When two such rings meet, the merge is refused (`IpamRingConflictError`), counted
 * and shown in status; nothing merges.
 */
import type { PeerName } from '../mesh/contracts.js';
import { waitingKey, type WaitingPeer } from './wire.js';

export class WaitingQuorum {
  readonly initPeers: number;
  private readonly seen = new Map<string, WaitingPeer>();

  /** `self`: our own signed announcement. */
  constructor(self: WaitingPeer) {
    this.initPeers = self.initPeers;
    this.seen.set(waitingKey(self), self);
  }

  /** Adds announcements; returns those that were new. */
  merge(incoming: readonly WaitingPeer[]): WaitingPeer[] {
    const added: WaitingPeer[] = [];
    for (const w of incoming) {
      const k = waitingKey(w);
      if (this.seen.has(k)) continue;
      this.seen.set(k, w);
      added.push(w);
    }
    return added;
  }

  /** Every announcement seen, in wire order. */
  list(): WaitingPeer[] {
    return [...this.seen.values()].sort((a, b) => (waitingKey(a) < waitingKey(b) ? -1 : 1));
  }

  private split(): { same: PeerName[]; other: WaitingPeer[] } {
    const same = new Set<PeerName>();
    const other: WaitingPeer[] = [];
    for (const w of this.seen.values()) {
      if (w.initPeers === this.initPeers) same.add(w.name);
      else other.push(w);
    }
    return { same: [...same].sort(), other };
  }

  /** The seeds when the quorum is exactly met, else undefined. */
  decision(): PeerName[] | undefined {
    const { same, other } = this.split();
    return other.length === 0 && same.length === this.initPeers ? same : undefined;
  }

  /** Why there is no decision (for `ready()` and status). */
  reason(): string {
    const { same, other } = this.split();
    const n = this.initPeers;
    if (other.length > 0)
      return `peers announce different initPeers values (${[...new Set(other.map((w) => w.initPeers))].join(', ')}, here ${n}): not deciding; start every peer with the same value, or give an explicit seed list`;
    if (same.length > n) return `${same.length} peers wait for a quorum of ${n}: more than expected, not deciding; restart them with an explicit seed list`;
    return `waiting for ${n} initial peers to agree on the address space (seen ${same.length}: ${same.join(', ')})`;
  }
}
