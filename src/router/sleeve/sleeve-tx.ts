/**
 * Sleeve transmit path: frames → sealed messages → UDP descriptors, flushed once per batch.
 *
 *   small frame ─ copy into the peer's open bundle in the tx arena:
 *                 [DATA hdr 24 | rec | rec | ... | tag 16]   (one datagram, one seal, one iov)
 *   big frame   ─ (larger than a bundle can hold: GSO super-frames) sealed in place in its TAP
 *                 slot, using the slot's headroom for the record header and tailroom for the tag,
 *                 then cut into fragments: iovs [FRAG hdr (tx arena) | slice (TAP arena)] ...,
 *                 grouped into UDP_SEGMENT sends of equal-size datagrams.
 *
 * Order per peer is kept: a big frame closes the peer's open bundle first. Nothing is allocated
 * per frame or per message (the AEAD key objects seal in place from offsets).
 * Seals are queued in the cipher's batch (AeadBatch) where the message is emitted, and run
 * together just before the flush hands the datagrams to the kernel: on several threads with
 * --crypto-threads > 1 (a sealed message is always len + 16 bytes, so its descriptors are built
 * before it is sealed). Before the tx arena, descriptor or iov tables could overflow, the batch
 * is flushed early.
 */
import type { UdpEndpoint } from '../../platform/udp.js';
import { TX_DESC_STRIDE, TX_IOV_STRIDE } from '../../platform/udp.js';
import type { AeadBatch } from '../../platform/aead.js';
import type { FrameCipher } from '../crypto/frame-cipher.js';
import { TOKEN_LEN, TokenScratch, copyToken } from '../crypto/fragment-tokens.js';
import type { SleevePeer, TxSession } from './peer.js';
import {
  COUNTER_LIMIT,
  DATA_HDR_LEN,
  FLAG_PROBE,
  FLAG_RELAYED,
  FLAG_SEALED,
  FRAG_HDR_LEN,
  FRAG_TOKEN_OFFSET,
  MAX_FRAGMENTS,
  REC_FRAME,
  REC_HDR_LEN,
  REC_HEARTBEAT,
  REC_PROBE,
  REC_VNET,
  TYPE_DATA,
  TYPE_FRAG,
  VNET_LEN,
  writeCounter,
  writeDataHeader,
  writeRecordHeader,
  writeU16,
  writeU32,
} from './wire.js';

export const BUF_TAP = 0;
const ZERO_TOKEN = Buffer.alloc(TOKEN_LEN);
export const BUF_TX = 1;
/** The UDP receive arena: relayed datagrams and trains are sent from where they were received. */
export const BUF_RX = 2;

export interface TxDrops {
  noKey: number;
  noEndpoint: number;
  tooBig: number;
  /** Messages not sealed because the send key reached COUNTER_LIMIT (new keys are asked for). */
  counterLimit: number;
  /** Messages not sealed because the send key is past its hard lifetime (new keys are asked for). */
  keyExpired: number;
}

export class SleeveTx {
  readonly arena: Buffer;
  readonly drops: TxDrops = { noKey: 0, noEndpoint: 0, tooBig: 0, counterLimit: 0, keyExpired: 0 };
  messages = 0;
  flushes = 0;
  /** Clock reading for the current batch (set by the owner before queuing). */
  now = 0;
  private readonly udp: UdpEndpoint;
  private readonly cipher: FrameCipher;
  private readonly selfId: number;
  private readonly flags: number;
  private readonly tag: number;
  private readonly maxUdpPayload: number;
  private tapArena: Buffer | undefined = undefined;
  private pos = 0;
  private ndesc = 0;
  private niov = 0;
  /** Peers with an open bundle: open[0, nOpen). Cleared by count, not `length = 0` (which drops the backing store: a new one per batch). */
  private readonly open: (SleevePeer | undefined)[] = [];
  private nOpen = 0;
  /** UDP destination slots from here on hold peers' direct endpoints (heartbeats). */
  private readonly probeBase: number;
  /** Destination slot override for the message being emitted (-1: the peer's data slot). */
  private emitDest = -1;
  /** Extra header flags for the message being emitted (FLAG_PROBE). */
  private emitFlags = 0;
  /** The UDP destination slot for probes to any endpoint: set, used and flushed at once. */
  private readonly scratchDest: number;
  /** Probe messages sent. */
  probes = 0;
  /** Unsealed datagrams sent (`raw`: STUN requests). */
  raws = 0;
  private readonly tokenScratch = new TokenScratch(MAX_FRAGMENTS);
  /** The seals of the batch being built (run at flush). */
  readonly seals: AeadBatch;
  /** Messages whose seal failed (the AEAD library refused: out of memory); sent damaged, refused by the peer. */
  sealFailures = 0;

  constructor(components: { udp: UdpEndpoint; cipher: FrameCipher }, init: { selfId: number; probeBase: number; arenaBytes?: number }) {
    this.udp = components.udp;
    this.probeBase = init.probeBase;
    this.scratchDest = 2 * init.probeBase;
    this.cipher = components.cipher;
    this.selfId = init.selfId;
    this.flags = this.cipher.sealed ? FLAG_SEALED : 0;
    this.tag = this.cipher.overhead;
    this.maxUdpPayload = this.udp.family === 6 ? 65527 : 65507;
    this.arena = Buffer.allocUnsafeSlow(init.arenaBytes ?? 4 << 20);
    this.seals = this.cipher.batch(this.udp.txMax);
    this.udp.registerBuffer(BUF_TX, this.arena);
    this.udp.registerBuffer(BUF_RX, this.udp.rxArena);
  }

  /** The TAP arena, so super-frames can be sealed and sent from where they were read. */
  registerTapArena(buf: Buffer): void {
    this.tapArena = buf;
    this.udp.registerBuffer(BUF_TAP, buf);
  }

  /**
   * Queues one frame for `peer`. `vnetOff` is the offset of a virtio_net_hdr to carry (or -1);
   * the frame is buf[frameOff, frameOff+frameLen). With `inPlace` (buf is the TAP arena and no
   * other peer will read this slot), a frame too big for a bundle is sealed where it lies.
   */
  frame(peer: SleevePeer, buf: Buffer, vnetOff: number, frameOff: number, frameLen: number, inPlace: boolean): void {
    const tx = peer.tx;
    if (tx === undefined) {
      this.drops.noKey++;
      return;
    }
    if (!peer.hasEndpoint) {
      this.drops.noEndpoint++;
      return;
    }
    const vlen = vnetOff >= 0 ? VNET_LEN : 0;
    const recLen = REC_HDR_LEN + vlen + frameLen;
    const kind = REC_FRAME | (vnetOff >= 0 ? REC_VNET : 0);
    peer.counters.txFrames++;
    peer.counters.txBytes += frameLen;
    if (!peer.viaRelay) peer.lastDataTx = this.now;
    if (recLen <= peer.bundleCapacity) {
      const at = this.bundleRoom(peer, recLen);
      this.copyRecord(at, kind, buf, vnetOff, frameOff, frameLen);
      peer.bundlePos = at + recLen;
      return;
    }
    if (peer.bundleStart >= 0) this.closeBundle(peer);
    if (recLen > 65536 + 64) {
      this.drops.tooBig++;
      return;
    }
    const frags = Math.ceil((recLen + this.tag) / (peer.maxDatagram - FRAG_HDR_LEN));
    if (inPlace && buf === this.tapArena) {
      this.reserve(frags * FRAG_HDR_LEN, frags);
      const recOff = (vnetOff >= 0 ? vnetOff : frameOff) - REC_HDR_LEN;
      writeRecordHeader(buf, recOff, kind, frameLen);
      this.emit(peer, tx, buf, BUF_TAP, recOff, recLen);
      return;
    }
    this.reserve(recLen + this.tag + frags * FRAG_HDR_LEN + 64, frags);
    const at = this.pos;
    this.copyRecord(at, kind, buf, vnetOff, frameOff, frameLen);
    this.pos = at + recLen + this.tag;
    this.emit(peer, tx, this.arena, BUF_TX, at, recLen);
  }

  /**
   * Sends a heartbeat record (body = buf[off, off+len)) to `peer` in a message of its own: to its
   * direct endpoint (`direct`), or along the data route (through a relay).
   */
  heartbeat(peer: SleevePeer, body: Buffer, len: number, direct: boolean): void {
    const tx = peer.tx;
    if (tx === undefined || (direct ? !peer.hasDirect : !peer.hasEndpoint)) return;
    if (peer.bundleStart >= 0) this.closeBundle(peer);
    const at = this.bundleRoom(peer, REC_HDR_LEN + len);
    writeRecordHeader(this.arena, at, REC_HEARTBEAT, len);
    body.copy(this.arena, at + REC_HDR_LEN, 0, len);
    peer.bundlePos = at + REC_HDR_LEN + len;
    this.emitDest = direct ? this.probeBase + peer.index : -1;
    this.closeBundle(peer);
    this.emitDest = -1;
  }

  /**
   * Sends a probe record (body = buf[0, len)) to `peer` at any endpoint, in a PROBE message of
   * its own through the scratch destination slot, and flushes at once (the slot is reused by the
   * next probe). Returns '' when sent, else why not: no send key, or the socket cannot send to
   * that address (an IPv6 address on an IPv4 socket: `setDest` throws).
   */
  probe(peer: SleevePeer, body: Buffer, len: number, address: string, port: number): string {
    const tx = peer.tx;
    if (tx === undefined) return 'no send key';
    try {
      this.udp.setDest(this.scratchDest, address, port);
    } catch (err) {
      return err instanceof Error ? err.message : String(err);
    }
    if (peer.bundleStart >= 0) this.closeBundle(peer);
    const at = this.bundleRoom(peer, REC_HDR_LEN + len);
    writeRecordHeader(this.arena, at, REC_PROBE, len);
    body.copy(this.arena, at + REC_HDR_LEN, 0, len);
    peer.bundlePos = at + REC_HDR_LEN + len;
    this.emitDest = this.scratchDest;
    this.emitFlags = FLAG_PROBE;
    this.closeBundle(peer);
    this.emitDest = -1;
    this.emitFlags = 0;
    this.probes++;
    this.flush();
    return '';
  }

  /**
   * Sends buf[0, len) unsealed (a STUN request) to any endpoint through the scratch destination
   * slot, flushing at once (queued messages go first). Returns '' when sent, else why not (like
   * `probe`).
   */
  raw(address: string, port: number, buf: Buffer, len: number): string {
    if (len <= 0 || len > 512) return `a raw datagram of ${len} bytes`;
    this.flush();
    try {
      this.udp.setDest(this.scratchDest, address, port);
    } catch (err) {
      return err instanceof Error ? err.message : String(err);
    }
    buf.copy(this.arena, 0, 0, len);
    this.pos = len;
    this.addIov(BUF_TX, 0, len);
    this.addDesc(this.niov - 1, 1, 0, this.scratchDest);
    this.raws++;
    this.flush();
    return '';
  }

  /**
   * Queues other peers' traffic for `to` straight from the UDP receive arena (zero-copy; hop
   * counts already decremented in place by the receive path): rxArena[off, off+len), one datagram
   * or, with `seg` > 0 and `len` > `seg`, consecutive `seg`-byte datagrams (the last may be
   * shorter) as one GSO send. Valid only until the batch is flushed: the next receive batch
   * rewrites the arena, and `Sleeve.onBatch` flushes before it returns (that invariant is what
   * makes this safe).
   */
  forwardRx(to: SleevePeer, off: number, len: number, seg: number): void {
    this.reserve(0, 1);
    this.addIov(BUF_RX, off, len);
    this.addDesc(this.niov - 1, 1, seg > 0 && len > seg ? seg : 0, to.index);
  }

  /** Copies a frame record (header, optional virtio header, frame) into the tx arena at `at`. */
  private copyRecord(at: number, kind: number, buf: Buffer, vnetOff: number, frameOff: number, frameLen: number): void {
    const a = this.arena;
    writeRecordHeader(a, at, kind, frameLen);
    const vlen = vnetOff >= 0 ? VNET_LEN : 0;
    if (vlen > 0) buf.copy(a, at + REC_HDR_LEN, vnetOff, vnetOff + VNET_LEN);
    buf.copy(a, at + REC_HDR_LEN + vlen, frameOff, frameOff + frameLen);
  }

  /** Seals open bundles and hands every queued datagram to the kernel in one call. */
  flush(): void {
    const open = this.open;
    for (let i = 0; i < this.nOpen; i++) {
      const p = open[i];
      open[i] = undefined;
      if (p !== undefined && p.bundleStart >= 0) this.closeBundle(p);
    }
    this.nOpen = 0;
    // Every queued seal runs before the datagrams reach the kernel.
    if (this.seals.pending > 0) this.sealFailures += this.seals.run();
    if (this.ndesc > 0) {
      this.udp.send(this.ndesc);
      this.flushes++;
    }
    this.pos = 0;
    this.ndesc = 0;
    this.niov = 0;
  }

  pending(): number {
    return this.ndesc + this.nOpen;
  }

  /** Returns where a record of `recLen` bytes goes in `peer`'s bundle, opening one if needed. */
  private bundleRoom(peer: SleevePeer, recLen: number): number {
    if (peer.bundleStart >= 0 && peer.bundlePos + recLen - peer.bundleStart <= peer.bundleCapacity) return peer.bundlePos;
    if (peer.bundleStart >= 0) this.closeBundle(peer);
    this.reserve(peer.maxDatagram + 64, 1);
    const start = this.pos + DATA_HDR_LEN;
    this.pos += peer.maxDatagram + 16;
    peer.bundleStart = start;
    peer.bundlePos = start;
    this.open[this.nOpen++] = peer;
    return start;
  }

  private closeBundle(peer: SleevePeer): void {
    const start = peer.bundleStart;
    const len = peer.bundlePos - start;
    peer.bundleStart = -1;
    if (len > 0 && peer.tx !== undefined) this.emit(peer, peer.tx, this.arena, BUF_TX, start, len);
  }

  /** Makes room for `bytes` of arena and `frags` fragments; flushes the batch when short. */
  private reserve(bytes: number, frags: number): void {
    const groups = Math.ceil(frags / 40) + 1;
    if (
      this.pos + bytes > this.arena.length ||
      this.ndesc + groups + this.nOpen > this.udp.txMax ||
      this.niov + 2 * frags + this.nOpen > this.udp.txIovMax
    ) {
      this.flush();
    }
  }

  /** Seals buf[off, off+len) under `tx` and queues it whole or as fragments. */
  private emit(peer: SleevePeer, tx: TxSession, buf: Buffer, bufId: number, off: number, len: number): void {
    if (tx.counter >= COUNTER_LIMIT) {
      this.drops.counterLimit++;
      return;
    }
    if (this.now >= tx.expiresAt) {
      this.drops.keyExpired++;
      return;
    }
    const counter = tx.counter++;
    writeCounter(tx.ctr, 0, counter);
    // RELAYED (authenticated: it is in the AD) when the message goes to the peer's relay.
    const flags = (this.emitDest < 0 && peer.viaRelay ? this.flags | FLAG_RELAYED : this.flags) | this.emitFlags;
    tx.ad[1] = flags;
    // Queued (AD and counter copied now): sealed in place at flush, always len + tag bytes.
    const seals = this.seals;
    if (seals.pending >= seals.capacity) this.sealFailures += seals.run();
    const job = seals.seal(tx.key, buf, off, len, tx.ad, 0, tx.ctr, 0);
    if (!seals.deferred && seals.results[job]! < 0) this.sealFailures++;
    const sealed = len + this.tag;
    this.messages++;
    peer.counters.txMessages++;
    const maxDg = peer.maxDatagram;
    if (DATA_HDR_LEN + sealed <= maxDg) {
      const h = off - DATA_HDR_LEN;
      writeDataHeader(buf, h, TYPE_DATA, flags, peer.id, this.selfId, tx.keyId, counter);
      this.addIov(bufId, h, DATA_HDR_LEN + sealed);
      this.addDesc(this.niov - 1, 1, 0, this.emitDest >= 0 ? this.emitDest : peer.index);
      return;
    }
    const fsize = maxDg - FRAG_HDR_LEN;
    const count = Math.ceil(sealed / fsize);
    const perSend = Math.min(64, Math.floor(this.maxUdpPayload / maxDg));
    const a = this.arena;
    // The message's fragment tokens, once: nonce = counter || total.
    const tokens = tx.tokens;
    const ts = this.tokenScratch;
    if (tokens !== undefined) {
      tx.ctr.copy(ts.nonce, 0, 0, 8);
      writeU32(ts.nonce, 8, sealed);
      tokens.fill(ts, count);
    }
    let index = 0;
    while (index < count) {
      const n = Math.min(perSend, count - index);
      const first = this.niov;
      for (let k = 0; k < n; k++, index++) {
        const h = this.pos;
        this.pos += FRAG_HDR_LEN;
        writeDataHeader(a, h, TYPE_FRAG, flags, peer.id, this.selfId, tx.keyId, counter);
        writeU32(a, h + 24, sealed);
        writeU16(a, h + 28, fsize);
        writeU16(a, h + 30, index);
        copyToken(a, h + FRAG_TOKEN_OFFSET, tokens !== undefined ? ts.buf : ZERO_TOKEN, tokens !== undefined ? index * TOKEN_LEN : 0);
        const s = index * fsize;
        this.addIov(BUF_TX, h, FRAG_HDR_LEN);
        this.addIov(bufId, off + s, Math.min(fsize, sealed - s));
      }
      this.addDesc(first, this.niov - first, n > 1 ? maxDg : 0, peer.index);
    }
  }

  private addIov(bufId: number, off: number, len: number): void {
    const t = this.udp.txIov;
    const i = this.niov++ * TX_IOV_STRIDE;
    t[i] = bufId;
    t[i + 1] = off;
    t[i + 2] = len;
  }

  private addDesc(iovStart: number, iovCount: number, gso: number, dest: number): void {
    const d = this.udp.txDesc;
    const i = this.ndesc++ * TX_DESC_STRIDE;
    d[i] = iovStart;
    d[i + 1] = iovCount;
    d[i + 2] = gso;
    d[i + 3] = dest;
  }
}
