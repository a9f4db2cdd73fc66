/**
 * MAC learning table: 48-bit MAC (as a number) → port, with last-seen time. Learning on the hot
 * path mutates an existing entry and allocates only for a new MAC; expiry runs from one coarse
 * timer (`expire`), never per entry. At most `maxLocal` entries are local (`learnLocal` refuses
 * more: port security against one pod sending from thousands of source MACs).
 */
import { MAX_LOCAL_MACS } from '../core/mac.js';

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
  private readonly maxLocal: number;
  private local = 0;
  moves = 0;
  overflows = 0;

  constructor(init: { maxEntries?: number; maxLocal?: number } = {}) {
    this.maxEntries = init.maxEntries ?? 65536;
    this.maxLocal = init.maxLocal ?? MAX_LOCAL_MACS;
  }

  /** Local entries now. */
  get localSize(): number {
    return this.local;
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
      if (e.port === PORT_LOCAL) this.local--;
      else if (port === PORT_LOCAL) this.local++;
      e.port = port;
      this.moves++;
      return true;
    }
    if (this.map.size >= this.maxEntries) {
      this.overflows++;
      return false;
    }
    this.map.set(mac, new MacEntry(port, now));
    if (port === PORT_LOCAL) this.local++;
    return false;
  }

  /**
   * Records a source MAC seen on the local port; false (nothing changed) when it is not local yet
   * and `maxLocal` local entries exist: the caller drops the frame.
   */
  learnLocal(mac: number, now: number): boolean {
    const e = this.map.get(mac);
    if (e !== undefined && e.port === PORT_LOCAL) {
      e.seen = now;
      return true;
    }
    if (this.local >= this.maxLocal) return false;
    this.learn(mac, PORT_LOCAL, now);
    return true;
  }

  /** Removes entries not seen for `maxAgeMs`; returns how many. */
  expire(now: number, maxAgeMs: number): number {
    let n = 0;
    for (const [mac, e] of this.map) {
      if (now - e.seen > maxAgeMs) {
        this.map.delete(mac);
        if (e.port === PORT_LOCAL) this.local--;
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
        if (port === PORT_LOCAL) this.local--;
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
