/**
 * MAC learning table: 48-bit MAC (as a number) → port, with last-seen time. Learning on the hot
 * path mutates an existing entry and allocates only for a new MAC; expiry runs from one coarse
 * timer (`expire`), never per entry.
 */
export const PORT_LOCAL = -1;

export class MacEntry {
  port: number;
  seen: number;
  constructor(port: number, seen: number) {
    this.port = port;
    this.seen = seen;
  }
}

export class MacTable {
  private readonly map = new Map<number, MacEntry>();
  private readonly maxEntries: number;
  moves = 0;
  overflows = 0;

  constructor(init: { maxEntries?: number } = {}) {
    this.maxEntries = init.maxEntries ?? 65536;
  }

  /** Port for `mac`, or undefined when unknown. */
  lookup(mac: number): number | undefined {
    return this.map.get(mac)?.port;
  }

  /** Records that `mac` was seen on `port`; returns true when it moved from another port. */
  learn(mac: number, port: number, now: number): boolean {
    const e = this.map.get(mac);
    if (e !== undefined) {
      e.seen = now;
      if (e.port === port) return false;
      e.port = port;
      this.moves++;
      return true;
    }
    if (this.map.size >= this.maxEntries) {
      this.overflows++;
      return false;
    }
    this.map.set(mac, new MacEntry(port, now));
    return false;
  }

  /** Removes entries not seen for `maxAgeMs`; returns how many. */
  expire(now: number, maxAgeMs: number): number {
    let n = 0;
    for (const [mac, e] of this.map) {
      if (now - e.seen > maxAgeMs) {
        this.map.delete(mac);
        n++;
      }
    }
    return n;
  }

  /** Forgets every MAC behind `port` (a peer went away). */
  forgetPort(port: number): number {
    let n = 0;
    for (const [mac, e] of this.map) {
      if (e.port === port) {
        this.map.delete(mac);
        n++;
      }
    }
    return n;
  }

  get size(): number {
    return this.map.size;
  }

  entries(): IterableIterator<[number, MacEntry]> {
    return this.map.entries();
  }
}
