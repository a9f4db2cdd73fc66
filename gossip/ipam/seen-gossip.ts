/**
 * Gossip a peer merged recently, by content. The same delta arrives from every neighbour that
 * relays it; merging it again changes nothing (ring merges are idempotent and a ring only grows),
 * so `Ipam.onGossip` skips a message found here without decoding it. Only small messages (deltas,
 * not full states) are kept, at most `capacity` of them, the oldest dropped first.
 */
export class SeenGossip {
  private readonly capacity: number;
  private readonly maxBytes: number;
  private readonly keys = new Set<string>();

  constructor(capacity = 256, maxBytes = 2048) {
    this.capacity = capacity;
    this.maxBytes = maxBytes;
  }

  /** The key of a message (undefined: too large to be kept). */
  keyOf(data: Uint8Array): string | undefined {
    return data.length > this.maxBytes ? undefined : Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('latin1');
  }

  has(key: string): boolean {
    return this.keys.has(key);
  }

  add(key: string): void {
    if (this.keys.has(key)) return;
    this.keys.add(key);
    if (this.keys.size > this.capacity) this.keys.delete(this.keys.values().next().value!);
  }
}
