/**
 * An attacking member for the IPAM attack tests: it holds the cluster secret and an identity key of
 * its own (so it can sign as itself, never as another peer), reads the ring the honest peers
 * gossip, and writes forged records into it. It is not a simulated peer: it hands its messages to
 * an honest peer's gossip channel as a neighbour would (`inject`), and that peer relays what it
 * merged to the others.
 */
import { simWriter, type IpamSim, type SimNode } from '../../sim/ipam-sim.js';
import type { PeerName } from '../../src/mesh/contracts.js';
import { Ring, type EntryDraft, type RingEntry } from '../../src/ipam/ring.js';
import { decodeRing } from '../../src/ipam/ring-codec.js';
import type { RingWriter } from '../../src/ipam/ring-signing.js';
import { encodeGave, encodeGossip } from '../../src/ipam/wire.js';

export class Attacker {
  readonly w: RingWriter;

  constructor(index = 900) {
    this.w = simWriter(index);
  }

  get name(): PeerName {
    return this.w.name;
  }

  /** Ring si as `node` sees it (a copy the attacker may write into). */
  view(node: SimNode, si = 0): Ring {
    const p = decodeRing(node.ipam.ringBytes(si)!);
    return Ring.fromParts(p.genesis, p.entries, p.life, p.adopted);
  }

  /** The entry of `owner` in ring si of `node`'s view with the most space (its token, end and version). */
  largest(node: SimNode, owner: PeerName, si = 0): RingEntry {
    const r = this.view(node, si);
    let best: RingEntry | undefined;
    let size = -1n;
    r.entryList().forEach((e, i) => {
      if (e.owner === owner && r.end(i) - e.token > size) [best, size] = [e, r.end(i) - e.token];
    });
    if (best === undefined) throw new Error(`${owner} owns nothing in ${node.name}'s view`);
    return best;
  }

  /** A gossip message with entries the attacker signs (they need not beat anything: the receiver decides). */
  entries(view: Ring, drafts: readonly EntryDraft[]): Uint8Array {
    return encodeGossip([Ring.fromParts(view.genesis, drafts.map((d) => view.sign(this.w, d)), [], [], view.space).encode()], []);
  }

  /** A gossip message with the attacker's tombstone of `victim` in ring si. */
  tombstone(view: Ring, victim: PeerName): Uint8Array {
    return encodeGossip([view.forget(victim, this.w)!.encode()], []);
  }

  /** Hands `data` to `to` as gossip from a neighbour (the attacker); returns what `to` threw, if anything. */
  inject(sim: IpamSim, to: SimNode, data: Uint8Array): unknown {
    void sim;
    try {
      to.channel.receiveGossip(this.name, data);
      return undefined;
    } catch (err) {
      return err;
    }
  }

  /** Sends `to` a donation message (unicast "gave") carrying `delta`. */
  gave(to: SimNode, range: string, delta: Uint8Array): unknown {
    try {
      to.channel.receiveUnicast(this.name, encodeGave(range, delta));
      return undefined;
    } catch (err) {
      return err;
    }
  }
}

/** Offsets [a, b) of space si held or allocated by `node` (its allocator's view). */
export function owns(node: SimNode, a: bigint, b: bigint, si = 0): boolean {
  return node.ipam.ownership()[si]!.owned.some(([s, e]) => s < b && e > a);
}
