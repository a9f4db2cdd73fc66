/**
 * Authentication of fast-path probes with the pair's probe key (`PeerKeys.probe`: both ends
 * derive the same key from the pair's traffic keys; a new one at every rekey).
 *
 *   tag     BLAKE2b-128 (crypto_generichash, keyed) of the probe's bytes 0..40 (probe-frame.ts):
 *           MACs, ids, seq, echoes, flags and size
 *   keys    per peer: `cur` (newest), `prev` (the one before) and `tx` (what we send under).
 *           Probes under any of them are accepted: the two ends install a new key a moment
 *           apart, and a rekey must not look like a broken path.
 *   sending the responder of a rekey (confirmTx) keeps sending under its old key until a probe
 *           under the new one arrives (the initiator installs it only when the answer comes);
 *           anyone else switches at once. As in the sleeve.
 *   replays per key, the highest seq accepted; a probe must be newer (seq only grows under a key,
 *           and a restarted router gets new keys)
 *
 * Key bytes are copies (the mesh wipes its own after installing them) and are wiped here when
 * they fall out. Checking a probe allocates nothing.
 */
import sodium from 'sodium-native';
import { PROBE_AUTH_LEN, PROBE_TAG_LEN, probeSeq } from './probe-frame.js';

/** What `verify` found. */
export const ProbeVerdict = {
  ok: 0,
  /** No key for that peer (yet, or any more). */
  noKey: 1,
  /** The tag matches none of the peer's keys: forged, damaged, or under a key we no longer hold. */
  badTag: 2,
  /** Authentic, but not newer than a probe already accepted under that key. */
  replayed: 3,
} as const;
export type ProbeVerdict = (typeof ProbeVerdict)[keyof typeof ProbeVerdict];

const KEY_LEN = 32;

class KeySlot {
  readonly key: Buffer;
  /** Highest seq accepted under this key. */
  lastSeq = 0;

  constructor(material: Uint8Array) {
    this.key = Buffer.alloc(KEY_LEN);
    this.key.set(material.subarray(0, KEY_LEN));
  }

  wipe(): void {
    sodium.sodium_memzero(this.key);
  }
}

class Keyring {
  cur: KeySlot | undefined = undefined;
  prev: KeySlot | undefined = undefined;
  tx: KeySlot | undefined = undefined;

  holds(s: KeySlot): boolean {
    return s === this.cur || s === this.prev || s === this.tx;
  }

  wipeAll(): void {
    for (const s of [this.cur, this.prev, this.tx]) s?.wipe();
    this.cur = this.prev = this.tx = undefined;
  }
}

export class ProbeAuth {
  private readonly rings = new Map<number, Keyring>();
  private readonly input = Buffer.alloc(PROBE_AUTH_LEN);
  private readonly tag = Buffer.alloc(PROBE_TAG_LEN);
  private readonly got = Buffer.alloc(PROBE_TAG_LEN);

  /**
   * A new probe key for peer `id` (copied). `confirmTx`: keep sending under the current key until
   * the peer shows it holds the new one (we answered its rekey; it installs the key on our answer).
   */
  install(id: number, key: Uint8Array, confirmTx: boolean): void {
    if (key.length < KEY_LEN) return;
    let r = this.rings.get(id);
    if (r === undefined) {
      r = new Keyring();
      this.rings.set(id, r);
    }
    const slot = new KeySlot(key);
    const old = r.prev;
    r.prev = r.cur;
    r.cur = slot;
    const oldTx = r.tx;
    if (!confirmTx || r.tx === undefined) r.tx = slot;
    if (old !== undefined && !r.holds(old)) old.wipe();
    if (oldTx !== undefined && oldTx !== old && !r.holds(oldTx)) oldTx.wipe();
  }

  /** Forgets (and wipes) every key of peer `id`. */
  remove(id: number): void {
    this.rings.get(id)?.wipeAll();
    this.rings.delete(id);
  }

  has(id: number): boolean {
    return this.rings.get(id)?.tx !== undefined;
  }

  /** Ids of the peers we hold keys for. */
  ids(): number[] {
    return [...this.rings.keys()];
  }

  clear(): void {
    for (const r of this.rings.values()) r.wipeAll();
    this.rings.clear();
  }

  /** Writes the tag of the probe at `off` (written by writeProbe) for peer `id`; false when we hold no key for it. */
  sign(id: number, buf: Buffer, off: number): boolean {
    const tx = this.rings.get(id)?.tx;
    if (tx === undefined) return false;
    this.mac(tx, buf, off);
    this.tag.copy(buf, off + PROBE_AUTH_LEN);
    return true;
  }

  /** Checks the probe at `off` from peer `id` (shape already checked by isProbe); on ok, its seq is recorded. */
  verify(id: number, buf: Buffer, off: number): ProbeVerdict {
    const r = this.rings.get(id);
    if (r === undefined || r.tx === undefined) return ProbeVerdict.noKey;
    buf.copy(this.got, 0, off + PROBE_AUTH_LEN, off + PROBE_AUTH_LEN + PROBE_TAG_LEN);
    const slot = this.matching(r, buf, off);
    if (slot === undefined) return ProbeVerdict.badTag;
    const seq = probeSeq(buf, off);
    if (seq <= slot.lastSeq) return ProbeVerdict.replayed;
    slot.lastSeq = seq;
    if (slot === r.cur && r.tx !== slot) {
      // The peer holds our newest key: send under it from now on.
      const oldTx = r.tx;
      r.tx = slot;
      if (!r.holds(oldTx)) oldTx.wipe();
    }
    return ProbeVerdict.ok;
  }

  private matching(r: Keyring, buf: Buffer, off: number): KeySlot | undefined {
    if (r.cur !== undefined && this.tagMatches(r.cur, buf, off)) return r.cur;
    if (r.prev !== undefined && this.tagMatches(r.prev, buf, off)) return r.prev;
    if (r.tx !== undefined && r.tx !== r.cur && r.tx !== r.prev && this.tagMatches(r.tx, buf, off)) return r.tx;
    return undefined;
  }

  private tagMatches(s: KeySlot, buf: Buffer, off: number): boolean {
    this.mac(s, buf, off);
    return sodium.sodium_memcmp(this.tag, this.got);
  }

  private mac(s: KeySlot, buf: Buffer, off: number): void {
    buf.copy(this.input, 0, off, off + PROBE_AUTH_LEN);
    sodium.crypto_generichash(this.tag, this.input, s.key);
  }
}
