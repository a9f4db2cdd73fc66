/**
 * Sleeve receive path: one batch of UDP datagrams → frames to the sink, heartbeats, relaying.
 *
 * Per datagram (GRO trains are split by segment size first):
 *   a STUN Binding success answer (type and cookie) goes to sleeve-stun.ts, never further
 *   header checks (length, version, counter below 2^52, hops at most 8, sealed flag as configured)
 *   ─ dst is another peer: relay it unchanged (hops − 1) towards that peer if it was sent for
 *     relaying (RELAYED) from a mesh member's known endpoint, or drop (source, flag, no route,
 *     hop limit); a relay never holds keys for traffic it forwards. Relayed datagrams are sent
 *     from the receive arena itself (hop byte rewritten in place, no copy), and the segments of a
 *     GRO train that go on to one peer leave as one GSO send (`queueRelay`); the arena stays
 *     valid because `Sleeve.onBatch` flushes the batch's sends before it returns
 *   ─ FRAG: bounded reassembly ─ whole message
 *   ─ receive session by (src, key id): current, previous or pending key only; unknown ids are
 *     dropped before any crypto ─ replay window ─ AEAD open in place
 *   ─ records: FRAME → sink (the router writes it to the TAP), HEARTBEAT → heartbeats
 *   ─ a PROBE message (FLAG_PROBE, authenticated): only PROBE records → probes (sleeve-punch.ts);
 *     it may promote pending keys like any datagram, but never proves the path, never moves the
 *     endpoint and never counts as direct
 * Nothing is kept for a datagram that does not authenticate; every drop is counted by reason.
 *
 * Opens are batched (AeadBatch, on several threads with --crypto-threads > 1): a message that
 * passed the header, key and replay checks is queued, with its reassembly slot pinned; the queue
 * runs when the receive batch ends, when it is full, or before reassembly runs short of slots.
 * Then, in arrival order, each message is checked again where an earlier message of the batch
 * may have changed things (its peer and key still known, the replay window: a duplicate within
 * the batch is a replay, as when handled one by one), its open's result is counted (forged:
 * `auth`), its counter marked and its records handled. With --crypto-threads 0 each message is
 * opened and handled at once, as before.
 *
 * "Direct" is decided after authentication: RELAYED clear (the flag is in the AD), the full hop
 * count, and the peer's direct endpoint as the source. The endpoint moves (roaming) only on an
 * authenticated direct datagram under the current receive key that is newer than every one seen
 * under that key (WireGuard's rule). Nothing here allocates per datagram.
 */
import { formatEndpoint } from '../../core/net.js';
import type { AeadBatch } from '../../platform/aead.js';
import type { UdpEndpoint } from '../../platform/udp.js';
import { RX_META_STRIDE } from '../../platform/udp.js';
import type { Reassembler } from './reassembly.js';
import { type RxSession, type SleevePeer, wordsToAddress } from './peer.js';
import type { SleeveHeartbeats } from './sleeve-heartbeats.js';
import type { SleeveProbes } from './sleeve-punch.js';
import type { SleeveSessions } from './sleeve-sessions.js';
import type { RxDrops, SleeveState } from './sleeve-state.js';
import type { SleeveStun } from './sleeve-stun.js';
import type { SleeveTx } from './sleeve-tx.js';
import { isStunBindingSuccess } from './stun.js';
import {
  AD_OFFSET,
  COUNTER_OFFSET,
  DATA_HDR_LEN,
  DEFAULT_HOPS,
  FLAG_PROBE,
  FLAG_RELAYED,
  FLAG_SEALED,
  FRAG_HDR_LEN,
  REC_FRAME,
  REC_HDR_LEN,
  REC_HEARTBEAT,
  REC_KIND_MASK,
  REC_PROBE,
  REC_VNET,
  PROBE_LEN,
  TYPE_DATA,
  TYPE_FRAG,
  VNET_LEN,
  wireVersionAccepted,
  counterAtLimit,
  readCounter,
  readU32,
} from './wire.js';

/** Datagrams per GSO send the kernel takes (UDP_MAX_SEGMENTS). */
const MAX_GSO_SEGMENTS = 64;
/** Opens queued at most before they are run (the batch of one UDP read holds at most 1024 datagrams). */
const OPEN_QUEUE = 1024;
/** Queue flag bit: the datagram arrived with the full hop count. */
const Q_FULL_HOPS = 0x100;

export type SleeveFrameSink = (peer: SleevePeer, buf: Buffer, vnetOff: number, frameOff: number, frameLen: number) => void;

export interface SleeveRxComponents {
  state: SleeveState;
  reassembler: Reassembler;
  heartbeats: SleeveHeartbeats;
  sessions: SleeveSessions;
  probes: SleeveProbes;
  stun: SleeveStun;
}

export class SleeveRx {
  /** Datagrams and bytes relayed for other peers; `trains`: runs of several sent as one GSO send. */
  readonly relayed = { datagrams: 0, bytes: 0, trains: 0 };
  /** Where received frames go (the router's TAP writer). */
  sink: SleeveFrameSink = () => undefined;
  private readonly state: SleeveState;
  private readonly udp: UdpEndpoint;
  private readonly tx: SleeveTx;
  private readonly drops: RxDrops;
  private readonly byId: Map<number, SleevePeer>;
  private readonly peers: SleevePeer[];
  private readonly reasm: Reassembler;
  private readonly heartbeats: SleeveHeartbeats;
  private readonly sessions: SleeveSessions;
  private readonly probes: SleeveProbes;
  private readonly stun: SleeveStun;
  private readonly selfId: number;
  private readonly sealedFlag: number;
  /** Clock reading of the batch being handled. */
  private nowMs = 0;
  private readonly maxUdpPayload: number;
  private readonly maxDatagram: number;
  /** Segment size of the GRO train being handled (0: a lone datagram). */
  private trainSeg = 0;
  /** The run of relayed segments of the current train not yet queued: rxArena[runStart, runEnd) for runTo. */
  private runTo: SleevePeer | undefined = undefined;
  private runStart = 0;
  private runEnd = 0;
  private runLastLen = 0;
  private runCount = 0;
  private runSeg = 0;
  /** The opens of this batch (see the file's comment) and, per queued message, what handling it needs. */
  readonly opens: AeadBatch;
  private nq = 0;
  /** The next queued message to handle (the ones before it are done). */
  private qNext = 0;
  private readonly qPeer: (SleevePeer | undefined)[] = new Array<SleevePeer | undefined>(OPEN_QUEUE).fill(undefined);
  private readonly qSess: (RxSession | undefined)[] = new Array<RxSession | undefined>(OPEN_QUEUE).fill(undefined);
  private readonly qBuf: (Buffer | undefined)[] = new Array<Buffer | undefined>(OPEN_QUEUE).fill(undefined);
  private readonly qCounter = new Float64Array(OPEN_QUEUE);
  private readonly qOff = new Int32Array(OPEN_QUEUE);
  private readonly qMeta = new Int32Array(OPEN_QUEUE);
  private readonly qSlot = new Int32Array(OPEN_QUEUE);
  private readonly qJob = new Int32Array(OPEN_QUEUE);
  /** Header flags byte, | Q_FULL_HOPS. */
  private readonly qFlags = new Int32Array(OPEN_QUEUE);

  constructor(components: SleeveRxComponents) {
    const state = components.state;
    this.state = state;
    this.udp = state.udp;
    this.tx = state.tx;
    this.drops = state.drops;
    this.byId = state.byId;
    this.peers = state.peers;
    this.reasm = components.reassembler;
    this.heartbeats = components.heartbeats;
    this.sessions = components.sessions;
    this.probes = components.probes;
    this.stun = components.stun;
    this.selfId = state.selfId;
    this.sealedFlag = state.sealedFlag;
    this.maxUdpPayload = this.udp.family === 6 ? 65527 : 65507;
    this.maxDatagram = state.maxDatagram;
    this.opens = state.cipher.batch(OPEN_QUEUE);
  }

  /** Handles the first `count` datagrams of the UDP endpoint's receive arena, read at `now`. */
  receive(count: number, now: number): void {
    // (left over only when the batch before threw: its rest is lost, as it always was)
    if (this.nq > 0) this.abandon();
    this.nowMs = now;
    const meta = this.udp.rxMeta;
    const buf = this.udp.rxArena;
    for (let i = 0; i < count; i++) {
      const m = i * RX_META_STRIDE;
      const off = meta[m]!;
      const len = meta[m + 1]!;
      const seg = meta[m + 2]!;
      if (seg < 0) {
        this.drops.truncated++;
      } else if (seg === 0 || seg >= len) {
        this.datagram(buf, off, len, m);
      } else {
        const end = off + len;
        this.trainSeg = seg;
        for (let p = off; p < end; p += seg) this.datagram(buf, p, Math.min(seg, end - p), m);
        this.trainSeg = 0;
        this.endRelayRun();
      }
    }
    this.drain();
  }

  private datagram(buf: Buffer, off: number, len: number, m: number): void {
    // STUN answers share the socket: the codec's header check (byte compares) before anything else.
    if (buf[off] === 0x01 && buf[off + 1] === 0x01 && isStunBindingSuccess(buf, off, len)) {
      this.stun.received(buf, off, len, m);
      return;
    }
    if (len < DATA_HDR_LEN) {
      this.drops.short++;
      return;
    }
    if (!wireVersionAccepted(buf[off + 2])) {
      this.drops.version++;
      return;
    }
    if (counterAtLimit(buf, off)) {
      this.drops.counterLimit++;
      return;
    }
    if (buf[off + 1]! > DEFAULT_HOPS) {
      this.drops.badHops++;
      return;
    }
    if ((buf[off + 3]! & FLAG_SEALED) !== this.sealedFlag) {
      this.drops.sealedMismatch++;
      return;
    }
    const dst = readU32(buf, off + 4);
    const src = readU32(buf, off + 8);
    if (src === this.selfId || src === 0 || dst === 0) {
      this.drops.selfOrZero++;
      return;
    }
    if (dst !== this.selfId) {
      this.relay(buf, off, len, src, dst, m);
      return;
    }
    const peer = this.byId.get(src);
    if (peer === undefined) {
      this.drops.unknownPeer++;
      return;
    }
    const type = buf[off];
    const keyId = readU32(buf, off + 12);
    const sess =
      peer.rx !== undefined && peer.rx.keyId === keyId ? peer.rx
        : peer.rxPrev !== undefined && peer.rxPrev.keyId === keyId ? peer.rxPrev
          : peer.rxPending !== undefined && peer.rxPending.keyId === keyId ? peer.rxPending
            : undefined;
    if (sess === undefined) {
      this.drops.unknownKey++;
      return;
    }
    if (this.nowMs >= sess.expiresAt) {
      this.drops.keyExpired++;
      return;
    }
    const counter = readCounter(buf, off);
    if (this.sealedFlag !== 0 && !sess.window.check(counter)) {
      this.drops.replay++;
      return;
    }
    // Not relayed on the way (`message` checks the authenticated RELAYED flag after opening).
    const fullHops = buf[off + 1] === DEFAULT_HOPS;
    if (type === TYPE_DATA) {
      this.message(peer, sess, counter, fullHops, buf, off, buf, off + DATA_HDR_LEN, len - DATA_HDR_LEN, m, -1);
    } else if (type === TYPE_FRAG) {
      if (len < FRAG_HDR_LEN) {
        this.drops.short++;
        return;
      }
      const r = this.reasm.add(peer.index, buf, off, len, keyId, counter, this.nowMs, sess);
      if (r >= 0) {
        const slot = this.reasm.slots[r]!;
        // (the slot is released once the message was handled: at once, or after the batch ran)
        this.message(peer, sess, counter, fullHops, slot.header, 0, slot.buf!, 0, slot.total, m, r);
      }
    } else {
      this.drops.badType++;
    }
  }

  /**
   * Forwards a datagram for another peer, unchanged but for the hop count: only one its origin
   * sent for relaying, from the known endpoint of a mesh member (the origin, or the relay before
   * us), with hops left. The relay cannot check the flag (it holds no key); the receiver does.
   */
  private relay(buf: Buffer, off: number, len: number, src: number, dst: number, m: number): void {
    if ((buf[off + 3]! & FLAG_RELAYED) === 0) {
      this.drops.relayUnflagged++;
      return;
    }
    if (!this.fromMember(src, m)) {
      this.drops.relaySource++;
      return;
    }
    const hops = buf[off + 1]!;
    if (hops <= 1) {
      this.drops.hopLimit++;
      return;
    }
    const to = this.byId.get(dst);
    if (to === undefined || !to.hasEndpoint) {
      this.drops.noRoute++;
      return;
    }
    this.relayed.datagrams++;
    this.relayed.bytes += len;
    buf[off + 1] = hops - 1;
    this.queueRelay(to, off, len);
  }

  /**
   * Queues a checked datagram for `to` (zero-copy from the receive arena). Inside a GRO train,
   * consecutive segments for one peer are gathered into a run that goes out as one GSO send of
   * the train's segment size; a segment that does not continue the run (another peer, a gap left
   * by a dropped or local segment, a full run) sends the run so far and starts a new one.
   */
  private queueRelay(to: SleevePeer, off: number, len: number): void {
    const seg = this.trainSeg;
    // Segments larger than our own datagrams could exceed our path MTU, which fails a GSO send
    // as a whole (EINVAL): those go one by one.
    if (seg === 0 || seg > this.maxDatagram) {
      this.tx.forwardRx(to, off, len, 0);
      return;
    }
    if (
      this.runTo === to && off === this.runEnd && this.runLastLen === seg && len <= seg &&
      this.runCount < MAX_GSO_SEGMENTS && this.runEnd + len - this.runStart <= this.maxUdpPayload
    ) {
      this.runEnd = off + len;
      this.runLastLen = len;
      this.runCount++;
      return;
    }
    this.endRelayRun();
    this.runTo = to;
    this.runStart = off;
    this.runEnd = off + len;
    this.runLastLen = len;
    this.runCount = 1;
    this.runSeg = seg;
  }

  /** Sends the gathered run of relayed segments, if any. */
  private endRelayRun(): void {
    const to = this.runTo;
    if (to === undefined) return;
    this.runTo = undefined;
    // The peer may have gone while the rest of the train was handled.
    if (!to.hasEndpoint) {
      this.drops.noRoute += this.runCount;
      return;
    }
    if (this.runCount > 1) this.relayed.trains++;
    this.tx.forwardRx(to, this.runStart, this.runEnd - this.runStart, this.runCount > 1 ? this.runSeg : 0);
  }

  /**
   * One whole sealed message from a known peer under a known key (in reassembly slot `slot`, or
   * -1): its open is queued, and it is handled once opened (`opened`), at once when the batch
   * is not deferred.
   */
  private message(
    peer: SleevePeer, sess: RxSession, counter: number, fullHops: boolean,
    hdr: Buffer, hdrOff: number, buf: Buffer, off: number, len: number, m: number, slot: number,
  ): void {
    const opens = this.opens;
    if (opens.pending >= opens.capacity || this.nq >= OPEN_QUEUE) this.drain();
    const job = opens.open(sess.key, buf, off, len, hdr, hdrOff + AD_OFFSET, hdr, hdrOff + COUNTER_OFFSET);
    const flags = hdr[hdrOff + 3]!;
    if (!opens.deferred) {
      this.opened(peer, sess, counter, fullHops, flags, buf, off, opens.results[job]!, m);
      if (slot >= 0) this.reasm.release(slot);
      return;
    }
    const k = this.nq++;
    this.qPeer[k] = peer;
    this.qSess[k] = sess;
    this.qBuf[k] = buf;
    this.qCounter[k] = counter;
    this.qOff[k] = off;
    this.qMeta[k] = m;
    this.qSlot[k] = slot;
    this.qJob[k] = job;
    this.qFlags[k] = flags | (fullHops ? Q_FULL_HOPS : 0);
    if (slot >= 0) {
      this.reasm.pin(slot);
      if (this.reasm.pinned >= this.reasm.maxPinned) this.drain();
    }
  }

  /** Runs the queued opens, then handles their messages in arrival order. */
  private drain(): void {
    if (this.nq === 0) return;
    this.opens.run();
    const results = this.opens.results;
    const drops = this.drops;
    while (this.qNext < this.nq) {
      const k = this.qNext++;
      const peer = this.qPeer[k]!;
      const sess = this.qSess[k]!;
      const buf = this.qBuf[k]!;
      this.qPeer[k] = undefined;
      this.qSess[k] = undefined;
      this.qBuf[k] = undefined;
      const counter = this.qCounter[k]!;
      const slot = this.qSlot[k]!;
      // What an earlier message of the batch may have changed: the peer removed, the key dropped
      // (a promotion wipes the overlap key), the counter seen (a duplicate within the batch).
      if (this.byId.get(peer.id) !== peer) drops.unknownPeer++;
      else if (sess !== peer.rx && sess !== peer.rxPrev && sess !== peer.rxPending) drops.unknownKey++;
      else if (this.sealedFlag !== 0 && !sess.window.check(counter)) drops.replay++;
      else {
        const f = this.qFlags[k]!;
        this.opened(peer, sess, counter, (f & Q_FULL_HOPS) !== 0, f & 0xff, buf, this.qOff[k]!, results[this.qJob[k]!]!, this.qMeta[k]!);
      }
      if (slot >= 0) this.reasm.release(slot);
    }
    this.nq = 0;
    this.qNext = 0;
  }

  /** Drops what is still queued (a batch that threw half-way): slots released, jobs cleared. */
  private abandon(): void {
    for (let k = this.qNext; k < this.nq; k++) {
      this.qPeer[k] = undefined;
      this.qSess[k] = undefined;
      this.qBuf[k] = undefined;
      if (this.qSlot[k]! >= 0) this.reasm.release(this.qSlot[k]!);
    }
    this.opens.clear();
    this.nq = 0;
    this.qNext = 0;
  }

  /** A message whose open returned `n` (the plaintext length, or -1: forged): counters, window, records. */
  private opened(
    peer: SleevePeer, sess: RxSession, counter: number, fullHops: boolean, flags: number,
    buf: Buffer, off: number, n: number, m: number,
  ): void {
    if (n < 0) {
      this.drops.auth++;
      return;
    }
    const relayed = (flags & FLAG_RELAYED) !== 0;
    const newest = counter > sess.window.highest;
    if (this.sealedFlag !== 0) sess.window.mark(counter);
    sess.used = true;
    // The peer holds the pending keys (it sealed with them): they become current.
    if (sess === peer.rxPending) this.sessions.promote(peer);
    peer.lastRx = this.nowMs;
    peer.counters.rxMessages++;
    if ((flags & FLAG_PROBE) !== 0) {
      // Never direct, never roaming: only its probe records count (relays never carry one).
      if (relayed) this.drops.probeMalformed++;
      else this.probeRecords(peer, buf, off, n, m);
      return;
    }
    let direct = false;
    if (relayed) {
      peer.relayedRx++;
      peer.lastRelayedRx = this.nowMs;
    } else if (fullHops && peer.hasDirect) {
      // Roaming: only the newest datagram under the current key may move the endpoint.
      if (!this.directIs(peer, m) && newest && sess === peer.rx) this.learnDirect(peer, m);
      direct = this.directIs(peer, m);
      if (direct) peer.lastDirectRx = this.nowMs;
    }
    this.records(peer, buf, off, n, direct);
  }

  private directIs(peer: SleevePeer, m: number): boolean {
    const meta = this.udp.rxMeta;
    return peer.directIs(meta[m + 3]!, meta[m + 4]!, meta[m + 5]!, meta[m + 6]!, meta[m + 7]!, meta[m + 8]!);
  }

  /** True when the datagram's source is the known direct endpoint of a mesh member (`src` first). */
  private fromMember(src: number, m: number): boolean {
    const meta = this.udp.rxMeta;
    const port = meta[m + 3]!;
    const family = meta[m + 4]!;
    const a0 = meta[m + 5]!;
    const a1 = meta[m + 6]!;
    const a2 = meta[m + 7]!;
    const a3 = meta[m + 8]!;
    const origin = this.byId.get(src);
    if (origin !== undefined && origin.directIs(port, family, a0, a1, a2, a3)) return true;
    const peers = this.peers;
    for (let i = 0; i < peers.length; i++) if (peers[i]!.directIs(port, family, a0, a1, a2, a3)) return true;
    return false;
  }

  private records(peer: SleevePeer, buf: Buffer, off: number, len: number, direct: boolean): void {
    const end = off + len;
    let p = off;
    while (p < end) {
      if (p + REC_HDR_LEN > end) {
        this.drops.badRecord++;
        return;
      }
      const kind = buf[p]!;
      const rlen = (buf[p + 1]! << 16) | (buf[p + 2]! << 8) | buf[p + 3]!;
      const vlen = (kind & REC_VNET) !== 0 ? VNET_LEN : 0;
      const body = p + REC_HDR_LEN;
      if (body + vlen + rlen > end) {
        this.drops.badRecord++;
        return;
      }
      const type = kind & REC_KIND_MASK;
      if (type === REC_FRAME) {
        if (rlen < 14) this.drops.runt++;
        else {
          peer.counters.rxFrames++;
          peer.counters.rxBytes += rlen;
          this.sink(peer, buf, vlen > 0 ? body : -1, body + vlen, rlen);
        }
      } else if (type === REC_HEARTBEAT) {
        this.heartbeats.received(peer, buf, body, rlen, direct);
      } else if (type === REC_PROBE) {
        // (only in a PROBE message)
        this.drops.probeMalformed++;
      } else {
        this.drops.badRecord++;
      }
      p = body + vlen + rlen;
    }
  }

  /** The records of a PROBE message: PROBE records of the exact length only. */
  private probeRecords(peer: SleevePeer, buf: Buffer, off: number, len: number, m: number): void {
    const end = off + len;
    let p = off;
    while (p < end) {
      const rlen = p + REC_HDR_LEN <= end ? (buf[p + 1]! << 16) | (buf[p + 2]! << 8) | buf[p + 3]! : -1;
      if (rlen !== PROBE_LEN || buf[p] !== REC_PROBE || p + REC_HDR_LEN + rlen > end) {
        this.drops.probeMalformed++;
        return;
      }
      this.probes.received(peer, buf, p + REC_HDR_LEN, m);
      p += REC_HDR_LEN + rlen;
    }
  }

  /** Roaming: the peer's direct endpoint moves to the datagram's source. */
  private learnDirect(peer: SleevePeer, m: number): void {
    const meta = this.udp.rxMeta;
    const family = meta[m + 4] === 6 ? 6 : 4;
    const address = wordsToAddress(family, meta[m + 5]!, meta[m + 6]!, meta[m + 7]!, meta[m + 8]!);
    this.state.log.info('peer endpoint changed', { peer: peer.name, endpoint: formatEndpoint({ address, port: meta[m + 3]! }) });
    this.state.setDirect(peer, { address, port: meta[m + 3]!, family });
    this.state.events.endpointMoved?.(peer);
  }
}
