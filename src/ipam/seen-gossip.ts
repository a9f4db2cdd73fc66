/**
 * Gossip a peer merged recently, by content. The same delta arrives from every neighbour that
 * relays it; merging it again changes nothing (ring merges are idempotent and a ring only grows),
 * so `Ipam.onGossip` skips a message found here without decoding it, unless it carried proofs and
 * custody now waits for some (they may help now). Only small messages (deltas, not full states)
 * are kept, at most `capacity` of them, the oldest dropped first.
 */
export class SeenGossip {
  private readonly capacity: number;
  private readonly maxBytes: number;
  /** Key → whether the message carried proofs. */
  private readonly keys = new Map<string, boolean>();

  constructor(capacity = 256, maxBytes = 2048) {
    this.capacity = capacity;
    this.maxBytes = maxBytes;
  }

  /** The key of a message (undefined: too large to be kept). */
  keyOf(data: Uint8Array): string | undefined {
    return data.length > this.maxBytes ? undefined : Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('latin1');
  }

  /** Whether the message was merged before: undefined (no), or whether it carried proofs. */
  get(key: string): boolean | undefined {
    return this.keys.get(key);
  }

  add(key: string, proofs = false): void {
    if (this.keys.has(key)) return;
    this.keys.set(key, proofs);
    if (this.keys.size > this.capacity) this.keys.delete(this.keys.keys().next().value!);
  }
}
