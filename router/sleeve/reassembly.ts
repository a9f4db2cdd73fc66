/**
 * Bounded reassembly of fragmented sleeve messages.
 *
 * Fragments of one message share (peer, key id, counter); fragment `index` carries bytes
 * [index * fsize, ...) of a `total`-byte sealed message. Slots come from a fixed pool (buffers
 * allocated on first use, then reused); each peer may hold at most `maxPerPeer` of them. When a
 * peer or the pool is full, the oldest incomplete slot is evicted; `sweep` frees slots older than
 * the timeout. Every drop is counted by reason. Memory is bounded by `maxSlots * slotSize`.
 */
import { FRAG_HDR_LEN, MAX_FRAGMENTS, MAX_MESSAGE } from './wire.js';

export const REASSEMBLY_INCOMPLETE = -1;

export interface ReassemblyDrops {
  fragBad: number;
  fragDuplicate: number;
  fragEvicted: number;
  fragTimeout: number;
  fragMismatch: number;
}

export class Slot {
  busy = false;
  peer = -1;
  keyId = 0;
  counter = 0;
  total = 0;
  fsize = 0;
  count = 0;
  received = 0;
  started = 0;
  readonly bits = new Uint32Array(MAX_FRAGMENTS / 32);
  /** The DATA-sized header of the message (type, flags, ids, key id, counter). */
  readonly header = Buffer.alloc(FRAG_HDR_LEN);
  buf: Buffer | undefined = undefined;
}

export class Reassembler {
  readonly slots: Slot[];
  readonly drops: ReassemblyDrops = { fragBad: 0, fragDuplicate: 0, fragEvicted: 0, fragTimeout: 0, fragMismatch: 0 };
  completed = 0;
  /** Fragments stored into a slot (every fragment is either stored or counted as a drop). */
  stored = 0;
  private readonly maxPerPeer: number;
  private readonly timeoutMs: number;

  constructor(init: { maxSlots?: number; maxPerPeer?: number; timeoutMs?: number } = {}) {
    const n = init.maxSlots ?? 32;
    this.maxPerPeer = Math.min(init.maxPerPeer ?? 8, n);
    this.timeoutMs = init.timeoutMs ?? 1000;
    this.slots = [];
    for (let i = 0; i < n; i++) this.slots.push(new Slot());
  }

  /**
   * Adds the fragment buf[off, off+len) (header included) from `peer`, validated header fields
   * `keyId` and `counter`. Returns the slot index when the message is complete (the caller then
   * reads `slots[i].buf[0, total)` and calls `release(i)`), REASSEMBLY_INCOMPLETE, or -2 when the
   * fragment was dropped (counted).
   */
  add(peer: number, buf: Buffer, off: number, len: number, keyId: number, counter: number, now: number): number {
    const total = buf.readUInt32BE(off + 24);
    const fsize = buf.readUInt16BE(off + 28);
    const index = buf.readUInt16BE(off + 30);
    const chunk = len - FRAG_HDR_LEN;
    if (total === 0 || total > MAX_MESSAGE || fsize === 0 || chunk <= 0) {
      this.drops.fragBad++;
      return -2;
    }
    const count = Math.ceil(total / fsize);
    const last = count - 1;
    if (count > MAX_FRAGMENTS || index > last || chunk !== (index === last ? total - last * fsize : fsize)) {
      this.drops.fragBad++;
      return -2;
    }
    let slotIdx = this.find(peer, keyId, counter);
    let slot: Slot;
    if (slotIdx < 0) {
      slotIdx = this.allocate(peer, now);
      slot = this.slots[slotIdx]!;
      slot.busy = true;
      slot.peer = peer;
      slot.keyId = keyId;
      slot.counter = counter;
      slot.total = total;
      slot.fsize = fsize;
      slot.count = count;
      slot.received = 0;
      slot.started = now;
      slot.bits.fill(0);
      buf.copy(slot.header, 0, off, off + FRAG_HDR_LEN);
      if (slot.buf === undefined) slot.buf = Buffer.allocUnsafeSlow(MAX_MESSAGE);
    } else {
      slot = this.slots[slotIdx]!;
      if (slot.total !== total || slot.fsize !== fsize) {
        this.drops.fragMismatch++;
        return -2;
      }
    }
    const word = index >>> 5;
    const bit = 1 << (index & 31);
    if ((slot.bits[word]! & bit) !== 0) {
      this.drops.fragDuplicate++;
      return -2;
    }
    slot.bits[word]! |= bit;
    buf.copy(slot.buf!, index * fsize, off + FRAG_HDR_LEN, off + len);
    this.stored++;
    if (++slot.received === slot.count) {
      this.completed++;
      return slotIdx;
    }
    return REASSEMBLY_INCOMPLETE;
  }

  release(i: number): void {
    const s = this.slots[i];
    if (s !== undefined) s.busy = false;
  }

  /** Frees slots older than the timeout; returns how many. Called from a coarse timer. */
  sweep(now: number): number {
    let n = 0;
    for (const s of this.slots) {
      if (s.busy && now - s.started > this.timeoutMs) {
        s.busy = false;
        n++;
      }
    }
    this.drops.fragTimeout += n;
    return n;
  }

  /** Drops every slot of a peer (peer removed or re-keyed). */
  forgetPeer(peer: number): void {
    for (const s of this.slots) if (s.busy && s.peer === peer) s.busy = false;
  }

  inUse(): number {
    let n = 0;
    for (const s of this.slots) if (s.busy) n++;
    return n;
  }

  /** Bytes held by slot buffers allocated so far. */
  memoryBytes(): number {
    let n = 0;
    for (const s of this.slots) if (s.buf !== undefined) n += s.buf.length;
    return n;
  }

  private find(peer: number, keyId: number, counter: number): number {
    const slots = this.slots;
    for (let i = 0; i < slots.length; i++) {
      const s = slots[i]!;
      if (s.busy && s.peer === peer && s.counter === counter && s.keyId === keyId) return i;
    }
    return -1;
  }

  private allocate(peer: number, now: number): number {
    const slots = this.slots;
    let free = -1;
    let mine = 0;
    let oldestMine = -1;
    let oldestAny = -1;
    for (let i = 0; i < slots.length; i++) {
      const s = slots[i]!;
      if (!s.busy) {
        if (free < 0 || (slots[free]!.buf === undefined && s.buf !== undefined)) free = i;
        continue;
      }
      if (now - s.started > this.timeoutMs) {
        s.busy = false;
        this.drops.fragTimeout++;
        if (free < 0) free = i;
        continue;
      }
      if (s.peer === peer) {
        mine++;
        if (oldestMine < 0 || s.started < slots[oldestMine]!.started) oldestMine = i;
      }
      if (oldestAny < 0 || s.started < slots[oldestAny]!.started) oldestAny = i;
    }
    if (mine >= this.maxPerPeer && oldestMine >= 0) {
      this.drops.fragEvicted++;
      return oldestMine;
    }
    if (free >= 0) return free;
    this.drops.fragEvicted++;
    return oldestAny;
  }
}
