/**
 * Bounded reassembly of fragmented sleeve messages.
 *
 * Fragments of one message share (peer, key id, counter); fragment `index` carries bytes
 * [index * fsize, ...) of a `total`-byte sealed message, and a token (wire.ts, FragmentTokens)
 * that only holders of the session key can compute. A fragment touches the buffer only once its
 * token checks out: the first fragment of a message computes the message's tokens (one keystream
 * call) before a slot is taken, later ones compare 8 bytes with the slot's tokens. Unauthenticated
 * fragments therefore take no slot and evict nothing (`fragAuth`); the caller has already refused
 * replays with the session's replay window. A message given up (evicted or timed out) marks its
 * counter in that window, so its late or replayed fragments are replays, not new slots.
 *
 * Slots come from a fixed pool (buffers allocated on first use, then reused); each peer may hold
 * at most `maxPerPeer` of them. A peer at its limit loses its own oldest slot; when the pool is
 * full, the peer holding the most slots loses its oldest, so a peer that floods competes with
 * itself. `sweep` frees slots older than the timeout. Every drop is counted by reason. Memory is
 * bounded by `maxSlots * slotSize`. Without tokens (plaintext mode, nothing is authenticated)
 * fragments are taken as they come.
 *
 * A complete message whose open is queued in a crypto batch is `pin`ned until `release`: it is
 * never evicted nor timed out, so its buffer holds still until the batch has run. The receive
 * path runs its batch before `pinned` reaches `maxPinned` (fewer than a peer's slots), so a new
 * message always finds a slot it may take.
 */
import { TOKEN_LEN, TokenScratch, tokenEquals, type FragmentTokens } from '../crypto/fragment-tokens.js';
import type { ReplayWindow } from '../crypto/replay-window.js';
import { COUNTER_OFFSET, FRAG_HDR_LEN, FRAG_TOKEN_OFFSET, MAX_FRAGMENTS, MAX_MESSAGE, readU16, readU32 } from './wire.js';

export const REASSEMBLY_INCOMPLETE = -1;

export interface ReassemblyDrops {
  fragBad: number;
  /** A fragment whose token does not check out: forged, or under another key. */
  fragAuth: number;
  fragDuplicate: number;
  fragEvicted: number;
  fragTimeout: number;
  fragMismatch: number;
}

/** The receive session fragments belong to: its token key (undefined: plaintext) and window. */
export interface FragmentOwner {
  readonly tokens: FragmentTokens | undefined;
  readonly window: ReplayWindow;
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
  /** Complete, its open queued: not to be evicted or timed out until released. */
  pinned = false;
  owner: FragmentOwner | undefined = undefined;
  readonly bits = new Uint32Array(MAX_FRAGMENTS / 32);
  /** The header of the message's first fragment to arrive (type, flags, ids, key id, counter). */
  readonly header = Buffer.alloc(FRAG_HDR_LEN);
  buf: Buffer | undefined = undefined;
  tokens: Buffer | undefined = undefined;
}

export class Reassembler {
  readonly slots: Slot[];
  readonly drops: ReassemblyDrops = { fragBad: 0, fragAuth: 0, fragDuplicate: 0, fragEvicted: 0, fragTimeout: 0, fragMismatch: 0 };
  completed = 0;
  /** Fragments stored into a slot (every fragment is either stored or counted as a drop). */
  stored = 0;
  /** Complete slots pinned (`pin`) and not yet released. */
  pinned = 0;
  /** The receive path runs its queued opens before this many slots are pinned. */
  readonly maxPinned: number;
  private readonly maxPerPeer: number;
  private readonly timeoutMs: number;
  private readonly scratch = new TokenScratch(MAX_FRAGMENTS);
  /** Slots held per peer index (for the pool's eviction choice). */
  private readonly held: Int32Array;

  constructor(init: { maxSlots?: number; maxPerPeer?: number; timeoutMs?: number; maxPeers?: number } = {}) {
    const n = init.maxSlots ?? 32;
    this.held = new Int32Array(init.maxPeers ?? 512);
    this.maxPerPeer = Math.min(init.maxPerPeer ?? 8, n);
    this.maxPinned = Math.max(1, this.maxPerPeer - 1);
    this.timeoutMs = init.timeoutMs ?? 1000;
    this.slots = [];
    for (let i = 0; i < n; i++) this.slots.push(new Slot());
  }

  /**
   * Adds the fragment buf[off, off+len) (header included) from `peer`, validated header fields
   * `keyId` and `counter`, under the receive session `owner`. Returns the slot index when the
   * message is complete (the caller then reads `slots[i].buf[0, total)` and calls `release(i)`,
   * or `giveUp(i)` if it cannot be used), REASSEMBLY_INCOMPLETE, or -2 when the fragment was
   * dropped (counted).
   */
  add(peer: number, buf: Buffer, off: number, len: number, keyId: number, counter: number, now: number, owner: FragmentOwner): number {
    const total = readU32(buf, off + 24);
    const fsize = readU16(buf, off + 28);
    const index = readU16(buf, off + 30);
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
    const tokens = owner.tokens;
    let slotIdx = this.find(peer, keyId, counter);
    let slot: Slot;
    if (slotIdx < 0) {
      if (tokens !== undefined) {
        // Authenticate before any state: the message's tokens from its counter and length.
        const s = this.scratch;
        buf.copy(s.nonce, 0, off + COUNTER_OFFSET, off + COUNTER_OFFSET + 12);
        tokens.fill(s, count);
        if (!tokenEquals(buf, off + FRAG_TOKEN_OFFSET, s.buf, index * TOKEN_LEN)) {
          this.drops.fragAuth++;
          return -2;
        }
      }
      slotIdx = this.allocate(peer, now);
      if (slotIdx < 0) {
        // (only when every busy slot is pinned: the receive path runs its batch long before)
        this.drops.fragEvicted++;
        return -2;
      }
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
      slot.owner = owner;
      slot.bits.fill(0);
      buf.copy(slot.header, 0, off, off + FRAG_HDR_LEN);
      if (slot.buf === undefined) {
        slot.buf = Buffer.allocUnsafeSlow(MAX_MESSAGE);
        slot.tokens = Buffer.allocUnsafeSlow(MAX_FRAGMENTS * TOKEN_LEN);
      }
      if (tokens !== undefined) this.scratch.buf.copy(slot.tokens!, 0, 0, count * TOKEN_LEN);
      this.held[peer]!++;
    } else {
      slot = this.slots[slotIdx]!;
      if (tokens !== undefined && (index >= slot.count || !tokenEquals(buf, off + FRAG_TOKEN_OFFSET, slot.tokens!, index * TOKEN_LEN))) {
        this.drops.fragAuth++;
        return -2;
      }
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

  /** Holds a complete slot (its open is queued) until `release`: never evicted nor timed out. */
  pin(i: number): void {
    const s = this.slots[i];
    if (s !== undefined && s.busy && !s.pinned) {
      s.pinned = true;
      this.pinned++;
    }
  }

  /** Frees a slot whose message was delivered (or refused by the AEAD: its counter stays open). */
  release(i: number): void {
    const s = this.slots[i];
    if (s !== undefined && s.busy) this.free(s);
  }

  /** Frees slots older than the timeout; returns how many. Called from a coarse timer. */
  sweep(now: number): number {
    let n = 0;
    for (const s of this.slots) {
      if (s.busy && !s.pinned && now - s.started > this.timeoutMs) {
        this.giveUp(s);
        n++;
      }
    }
    this.drops.fragTimeout += n;
    return n;
  }

  /** Drops every slot of a peer (peer removed or re-keyed). */
  forgetPeer(peer: number): void {
    for (const s of this.slots) if (s.busy && s.peer === peer) this.free(s);
  }

  inUse(): number {
    let n = 0;
    for (const s of this.slots) if (s.busy) n++;
    return n;
  }

  /** Bytes held by slot buffers allocated so far. */
  memoryBytes(): number {
    let n = 0;
    for (const s of this.slots) if (s.buf !== undefined) n += s.buf.length + s.tokens!.length;
    return n;
  }

  private free(s: Slot): void {
    if (s.pinned) {
      s.pinned = false;
      this.pinned--;
    }
    s.busy = false;
    s.owner = undefined;
    this.held[s.peer]!--;
  }

  /**
   * Frees an incomplete slot and, when its fragments were authenticated, marks the message's
   * counter as seen: what still arrives of it can never be completed, so it is a replay.
   */
  private giveUp(s: Slot): void {
    const owner = s.owner;
    if (owner !== undefined && owner.tokens !== undefined && owner.window.check(s.counter)) owner.window.mark(s.counter);
    this.free(s);
  }

  /** The oldest busy, unpinned slot of `peer` (-1: of any peer), or -1. */
  private oldestUnpinned(peer: number): number {
    const slots = this.slots;
    let oldest = -1;
    for (let i = 0; i < slots.length; i++) {
      const s = slots[i]!;
      if (s.busy && !s.pinned && (peer < 0 || s.peer === peer) && (oldest < 0 || s.started < slots[oldest]!.started)) oldest = i;
    }
    return oldest;
  }

  private find(peer: number, keyId: number, counter: number): number {
    const slots = this.slots;
    for (let i = 0; i < slots.length; i++) {
      const s = slots[i]!;
      if (s.busy && s.peer === peer && s.counter === counter && s.keyId === keyId) return i;
    }
    return -1;
  }

  /**
   * A free slot for `peer`, giving up the oldest slot of `peer` or of the biggest holder if needed
   * (pinned slots are never given up; -1 when every busy slot is pinned).
   */
  private allocate(peer: number, now: number): number {
    const slots = this.slots;
    let free = -1;
    for (let i = 0; i < slots.length; i++) {
      const s = slots[i]!;
      if (s.busy && !s.pinned && now - s.started > this.timeoutMs) {
        this.giveUp(s);
        this.drops.fragTimeout++;
      }
      if (!s.busy && (free < 0 || (slots[free]!.buf === undefined && s.buf !== undefined))) free = i;
    }
    let victim = -1;
    if (this.held[peer]! >= this.maxPerPeer) victim = peer;
    else if (free >= 0) return free;
    else {
      let most = 0;
      for (let p = 0; p < this.held.length; p++) {
        const n = this.held[p]!;
        if (n > most || (n === most && n > 0 && p === peer)) {
          most = n;
          victim = p;
        }
      }
    }
    let oldest = this.oldestUnpinned(victim);
    // The victim's slots all pinned (the receive path keeps pins below a peer's share): any peer's.
    if (oldest < 0) oldest = this.oldestUnpinned(-1);
    if (oldest < 0) return -1;
    this.drops.fragEvicted++;
    this.giveUp(slots[oldest]!);
    return oldest;
  }
}
