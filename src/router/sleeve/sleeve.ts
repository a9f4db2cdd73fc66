/**
 * The sleeve overlay: authenticated, encrypted Ethernet over UDP between routers, direct or
 * through relays.
 *
 * Receive flow, per datagram (GRO trains are split by segment size first):
 *   header checks (length, version, counter below 2^52, hops at most 8, sealed flag as configured)
 *   ─ dst is another peer: relay it unchanged (hops − 1) towards that peer if it was sent for
 *     relaying (RELAYED) from a mesh member's known endpoint, or drop (source, flag, no route,
 *     hop limit); a relay never holds keys for traffic it forwards
 *   ─ FRAG: bounded reassembly ─ whole message
 *   ─ receive session by (src, key id): current or previous key only; unknown ids are dropped
 *     before any crypto ─ replay window ─ AEAD open in place
 *   ─ records: FRAME → sink (the router writes it to the TAP), HEARTBEAT → liveness
 * Nothing is kept for a datagram that does not authenticate; every drop is counted by reason.
 *
 * Peers and keys come from the mesh (`installKeys`, `setDirect`, `setVia`, `removePeer`).
 * Heartbeats go every `heartbeatMs` to each peer's direct endpoint; a direct heartbeat proves the
 * direct path (`pathUp`), and `deadAfterMs` of silence takes it down. Data goes direct when the
 * path is up, else through the relay the mesh names, else direct (optimistically).
 * "Direct" is decided after authentication: RELAYED clear (the flag is in the AD), the full hop
 * count, and the peer's direct endpoint as the source. The endpoint moves (roaming) only on an
 * authenticated direct datagram under the current receive key that is newer than every one seen
 * under that key (WireGuard's rule).
 */
import type { Clock, TimerHandle } from '../../core/clock.js';
import { formatPeerId } from '../../core/ids.js';
import type { Logger } from '../../core/logger.js';
import { formatEndpoint, type Endpoint } from '../../core/net.js';
import type { Startable } from '../../core/startable.js';
import type { UdpEndpoint } from '../../platform/udp.js';
import { RX_META_STRIDE } from '../../platform/udp.js';
import type { PeerKeys } from '../../mesh/contracts.js';
import type { AeadKey } from '../../platform/aead.js';
import type { FrameCipher } from '../crypto/frame-cipher.js';
import { FragmentTokens } from '../crypto/fragment-tokens.js';
import { Reassembler, type ReassemblyDrops } from './reassembly.js';
import { SleevePeer, RxSession, TxSession, addressWords, wordsToAddress } from './peer.js';
import { SleeveTx, type TxDrops } from './sleeve-tx.js';
import {
  AD_OFFSET,
  DATA_HDR_LEN,
  DEFAULT_HOPS,
  FLAG_RELAYED,
  FLAG_SEALED,
  FRAG_HDR_LEN,
  REC_FRAME,
  REC_HDR_LEN,
  REC_HEARTBEAT,
  REC_KIND_MASK,
  REC_VNET,
  TAG_LEN,
  TYPE_DATA,
  TYPE_FRAG,
  VNET_LEN,
  WIRE_VERSION,
  COUNTER_OFFSET,
  counterAtLimit,
  maxDatagram,
  readCounter,
  readU32,
} from './wire.js';

export type SleeveFrameSink = (peer: SleevePeer, buf: Buffer, vnetOff: number, frameOff: number, frameLen: number) => void;

export interface SleeveInit {
  /** This router's peer name (announced in heartbeats) and 32-bit wire id. */
  name: string;
  id: number;
  underlayMtu: number;
  /** Our TAP takes virtio_net_hdr frames (announced in heartbeats). */
  vnetCapable: boolean;
  /** No default here: the one default is `--heartbeat-ms`'s (src/daemon/options.ts). */
  heartbeatMs: number;
  deadAfterMs?: number;
  maxPeers?: number;
  /** Ask for new keys after this many messages under one send key. */
  rekeyAfterMessages?: number;
  /** The previous receive key is accepted this long after a rekey, then wiped. */
  rekeyOverlapMs?: number;
  /**
   * Hard lifetime of a key pair, from its installation: after it the send key seals nothing and
   * the receive key opens nothing until new keys are installed (default 240 s; the daemon passes
   * 2 × --rekey-seconds).
   */
  keyLifetimeMs?: number;
  /** A pending key pair (see `installKeys`) not promoted within this time is dropped. */
  pendingKeyMs?: number;
}

export interface SleeveComponents {
  udp: UdpEndpoint;
  cipher: FrameCipher;
  clock: Clock;
  logger: Logger;
}

export interface RxDrops {
  short: number;
  version: number;
  /** Counter at or above COUNTER_LIMIT (2^52): refused before anything else. */
  counterLimit: number;
  badType: number;
  sealedMismatch: number;
  selfOrZero: number;
  unknownPeer: number;
  unknownKey: number;
  replay: number;
  auth: number;
  badRecord: number;
  runt: number;
  truncated: number;
  idMismatch: number;
  noRoute: number;
  hopLimit: number;
  /** Hop count above the cap (DEFAULT_HOPS): nobody sends that. */
  badHops: number;
  /** Under a receive key past its hard lifetime. */
  keyExpired: number;
  /** A datagram for another peer from an address that is no mesh member's known endpoint. */
  relaySource: number;
  /** A datagram for another peer that its origin sent direct (RELAYED clear): not relayed. */
  relayUnflagged: number;
  /** A batch whose handling threw (a bug, never expected): counted, logged once, not rethrown. */
  exception: number;
}

export interface SleeveEvents {
  /** The direct path to a peer came up or went down. */
  pathChange(peer: SleevePeer, up: boolean): void;
  /** A send key is close to its message limit: ask the mesh for new keys. */
  rekeyWanted(peer: SleevePeer): void;
}

const HB_FIXED = 8;
const CAP_VNET = 1;
const CAP_SEALED = 2;

export class Sleeve implements Startable {
  readonly tx: SleeveTx;
  readonly peers: SleevePeer[] = [];
  readonly drops: RxDrops = {
    short: 0, version: 0, counterLimit: 0, badType: 0, sealedMismatch: 0, selfOrZero: 0, unknownPeer: 0, unknownKey: 0,
    replay: 0, auth: 0, badRecord: 0, runt: 0, truncated: 0, idMismatch: 0, noRoute: 0, hopLimit: 0, badHops: 0, keyExpired: 0,
    relaySource: 0, relayUnflagged: 0, exception: 0,
  };
  readonly relayed = { datagrams: 0, bytes: 0 };
  readonly selfId: number;
  readonly maxDatagram: number;
  readonly bundleCapacity: number;
  rxErrors = 0;
  private readonly udp: UdpEndpoint;
  private readonly cipher: FrameCipher;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly init: Required<SleeveInit>;
  private readonly byId = new Map<number, SleevePeer>();
  private readonly reasm: Reassembler;
  private readonly sealedFlag: number;
  private readonly hbBody: Buffer;
  private readonly hbLen: number;
  private readonly byIndex: (SleevePeer | undefined)[];
  private sink: SleeveFrameSink = () => undefined;
  private events: SleeveEvents = { pathChange: () => undefined, rekeyWanted: () => undefined };
  private timer: TimerHandle | undefined = undefined;
  private nowMs = 0;
  private readonly loggedErrnos = new Set<number>();
  private loggedException = false;

  constructor(components: SleeveComponents, init: SleeveInit) {
    this.udp = components.udp;
    this.cipher = components.cipher;
    this.clock = components.clock;
    this.log = components.logger;
    // Dead after three heartbeats missed, plus half of one for timer slack.
    this.init = {
      deadAfterMs: init.heartbeatMs * 3.5, maxPeers: 512, rekeyAfterMessages: 2 ** 48, rekeyOverlapMs: 10_000,
      keyLifetimeMs: 240_000, pendingKeyMs: 30_000, ...init,
    };
    this.selfId = init.id;
    this.sealedFlag = this.cipher.sealed ? FLAG_SEALED : 0;
    this.maxDatagram = maxDatagram(init.underlayMtu, this.udp.family);
    this.bundleCapacity = this.maxDatagram - DATA_HDR_LEN - (this.cipher.sealed ? TAG_LEN : 0);
    this.reasm = new Reassembler({ maxSlots: 32, maxPerPeer: 8, timeoutMs: 1000, maxPeers: this.init.maxPeers });
    this.tx = new SleeveTx({ udp: this.udp, cipher: this.cipher }, { selfId: this.selfId, probeBase: this.init.maxPeers });
    this.byIndex = new Array<SleevePeer | undefined>(this.init.maxPeers).fill(undefined);
    const name = Buffer.from(init.name, 'utf8');
    this.hbBody = Buffer.alloc(HB_FIXED + name.length);
    this.hbBody[0] = (init.vnetCapable ? CAP_VNET : 0) | (this.cipher.sealed ? CAP_SEALED : 0);
    this.hbBody[1] = name.length;
    this.hbBody.writeUInt16BE(this.udp.localPort, 2);
    this.hbBody.writeUInt16BE(this.maxDatagram, 4);
    name.copy(this.hbBody, HB_FIXED);
    this.hbLen = this.hbBody.length;
  }

  /** Where received frames go (the router's TAP writer). */
  setSink(sink: SleeveFrameSink): void {
    this.sink = sink;
  }

  setEvents(events: SleeveEvents): void {
    this.events = events;
  }

  start(): void {
    this.nowMs = this.clock.now();
    this.udp.start((count) => this.onBatch(count));
    this.timer = this.clock.setInterval(() => this.tick(), Math.max(50, Math.floor(this.init.heartbeatMs / 4)));
    this.tick();
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.udp.stop();
    for (const p of [...this.peers]) this.removePeer(p.id);
  }

  /** Marks the start of a batch: one clock read shared by everything it queues. */
  batchStart(): number {
    this.nowMs = this.clock.now();
    this.tx.now = this.nowMs;
    return this.nowMs;
  }

  get cipherName(): string {
    return this.cipher.name;
  }

  /** Clock reading of the current batch. */
  now(): number {
    return this.nowMs;
  }

  /** The peer at a MAC-table port index, if it is still known. */
  peerAt(index: number): SleevePeer | undefined {
    return this.byIndex[index];
  }

  alive(peer: SleevePeer): boolean {
    return this.nowMs - peer.lastRx <= this.init.deadAfterMs;
  }

  peerById(id: number): SleevePeer | undefined {
    return this.byId.get(id);
  }

  reassemblyDrops(): ReassemblyDrops {
    return this.reasm.drops;
  }

  txDrops(): TxDrops {
    return this.tx.drops;
  }

  reassemblyStatus(): { inUse: number; completed: number; stored: number; memoryBytes: number } {
    return { inUse: this.reasm.inUse(), completed: this.reasm.completed, stored: this.reasm.stored, memoryBytes: this.reasm.memoryBytes() };
  }

  // ---------------------------------------------------------------- control (from the mesh)

  /**
   * New keys for a peer (created on first keys); the contract is `Overlay.installKeys`
   * (gossip/contracts.ts):
   * - `confirm` false (the handshake's initiator), or no receive key of this peer has ever
   *   authenticated a datagram (or the ones that did are past their lifetime): the pair becomes
   *   current at once; the previous receive key stays valid for `rekeyOverlapMs`.
   * - otherwise (the responder, with working keys): the pair is pending. Current keys are left
   *   exactly as they are; the first datagram that authenticates under the pending receive key
   *   promotes the pair (current rx becomes the overlap key, tx switches). A newer pending pair
   *   replaces an unpromoted one; an unpromoted pair is dropped after `pendingKeyMs`.
   * Every pair opens and seals nothing after `keyLifetimeMs` from its installation.
   */
  installKeys(keys: PeerKeys, confirm: boolean): SleevePeer | undefined {
    this.batchStart();
    let peer = this.byId.get(keys.id);
    if (peer !== undefined && peer.name !== keys.name) {
      this.drops.idMismatch++;
      this.log.warn('two peers share a wire id; keeping the first', { id: formatPeerId(keys.id), kept: peer.name, refused: keys.name });
      return undefined;
    }
    if (peer === undefined) {
      peer = this.addPeer(keys.id, keys.name);
      if (peer === undefined) return undefined;
    }
    const expiresAt = this.nowMs + this.init.keyLifetimeMs;
    const rx = this.rxSession(keys.rx.keyId, keys.rx.key, expiresAt);
    const tx = this.txSession(peer, keys.tx.keyId, keys.tx.key, expiresAt);
    this.dropPendingKeys(peer);
    const working = this.working(peer.rx) || this.working(peer.rxPrev);
    if (confirm && working) {
      peer.rxPending = rx;
      peer.txPending = tx;
      peer.pendingSince = this.nowMs;
    } else {
      this.makeCurrent(peer, rx, tx);
    }
    return peer;
  }

  /** A receive key that has authenticated a datagram and is within its lifetime. */
  private working(rx: RxSession | undefined): boolean {
    return rx !== undefined && rx.used && this.nowMs < rx.expiresAt;
  }

  /** `rx` and `tx` become the current keys; the current receive key becomes the overlap key. */
  private makeCurrent(peer: SleevePeer, rx: RxSession, tx: TxSession): void {
    this.flushPending();
    peer.rxPrev?.destroy();
    peer.rxPrev = peer.rx;
    peer.rx = rx;
    peer.rxSince = this.nowMs;
    peer.tx?.destroy();
    peer.tx = tx;
  }

  private dropPendingKeys(peer: SleevePeer): void {
    peer.rxPending?.destroy();
    peer.txPending?.destroy();
    peer.rxPending = peer.txPending = undefined;
  }

  /** A key object from key bytes; the temporary copy is wiped (the engine keeps its own). */
  private keyOf(material: Uint8Array): AeadKey {
    const copy = Buffer.from(material);
    const key = this.cipher.key(copy);
    copy.fill(0);
    return key;
  }

  private rxSession(keyId: number, material: Uint8Array, expiresAt: number): RxSession {
    return new RxSession(keyId, this.keyOf(material), this.cipher.sealed ? new FragmentTokens(material) : undefined, expiresAt);
  }

  private txSession(peer: SleevePeer, keyId: number, material: Uint8Array, expiresAt: number): TxSession {
    const tokens = this.cipher.sealed ? new FragmentTokens(material) : undefined;
    return new TxSession(keyId, this.keyOf(material), tokens, expiresAt, peer.id, this.selfId, this.cipher.sealed);
  }

  /** The peer's direct underlay endpoint (undefined: none known; only relays reach it). */
  setDirect(id: number, endpoint: Endpoint | undefined): void {
    const peer = this.byId.get(id);
    if (peer === undefined) return;
    if (endpoint === undefined) {
      peer.hasDirect = false;
      this.setPath(peer, false);
    } else if (!peer.hasDirect || peer.directAddress !== endpoint.address || peer.directPort !== endpoint.port) {
      peer.hasDirect = true;
      peer.directAddress = endpoint.address;
      peer.directPort = endpoint.port;
      peer.directFamily = endpoint.family;
      peer.directWords.set(addressWords(endpoint.address, endpoint.family));
      this.udp.setDest(this.init.maxPeers + peer.index, endpoint.address, endpoint.port);
    }
    this.retarget(peer);
    // Peers relayed through this one send to its direct endpoint.
    for (const p of this.peers) if (p.via === peer) this.retarget(p);
  }

  /** The kernel fast path carries (or stops carrying) this peer's frames. */
  setFast(id: number, fast: boolean): void {
    const peer = this.byId.get(id);
    if (peer !== undefined) peer.fast = fast;
  }

  /** The relay for a peer while its direct path is down (undefined: none). */
  setVia(id: number, viaId: number | undefined): void {
    const peer = this.byId.get(id);
    if (peer === undefined) return;
    const via = viaId === undefined ? undefined : this.byId.get(viaId);
    peer.via = via !== undefined && via !== peer ? via : undefined;
    this.retarget(peer);
  }

  removePeer(id: number): void {
    const peer = this.byId.get(id);
    if (peer === undefined) return;
    this.flushPending();
    this.byId.delete(id);
    this.byIndex[peer.index] = undefined;
    this.peers.splice(this.peers.indexOf(peer), 1);
    for (const p of this.peers) if (p.via === peer) this.setVia(p.id, undefined);
    peer.tx?.destroy();
    peer.rx?.destroy();
    peer.rxPrev?.destroy();
    peer.tx = peer.rx = peer.rxPrev = undefined;
    this.dropPendingKeys(peer);
    peer.hasEndpoint = false;
  }

  private flushPending(): void {
    if (this.tx.pending() > 0) this.tx.flush();
  }

  /** Points the peer's data slot at the direct endpoint or the relay's. */
  private retarget(peer: SleevePeer): void {
    const via = peer.via;
    let address: string;
    let port: number;
    let family: 4 | 6;
    let viaRelay: boolean;
    if ((peer.pathUp || via === undefined || !via.hasDirect) && peer.hasDirect) {
      [address, port, family, viaRelay] = [peer.directAddress, peer.directPort, peer.directFamily, false];
    } else if (via !== undefined && via.hasDirect) {
      [address, port, family, viaRelay] = [via.directAddress, via.directPort, via.directFamily, true];
    } else {
      peer.hasEndpoint = false;
      return;
    }
    if (peer.hasEndpoint && peer.address === address && peer.port === port && peer.viaRelay === viaRelay) return;
    this.flushPending();
    peer.setEndpoint(address, port, family, addressWords(address, family), viaRelay);
    this.udp.setDest(peer.index, address, port);
  }

  private setPath(peer: SleevePeer, up: boolean): void {
    if (peer.pathUp === up) return;
    peer.pathUp = up;
    peer.pathChangedAt = this.nowMs;
    peer.pathChanges++;
    this.retarget(peer);
    this.log.info(up ? 'direct path up' : 'direct path down', { peer: peer.name });
    this.events.pathChange(peer, up);
  }

  // ---------------------------------------------------------------- receive

  private onBatch(count: number): void {
    if (count < 0) {
      this.rxErrors++;
      if (!this.loggedErrnos.has(-count)) {
        this.loggedErrnos.add(-count);
        this.log.warn('udp socket error (re-armed; logged once per errno)', { errno: -count });
      }
      return;
    }
    this.batchStart();
    // One guard per batch (not per packet): nothing a datagram does may throw out of the addon's
    // callback. The rest of a batch that threw is lost; it is counted and logged once.
    try {
      this.receive(count);
    } catch (err) {
      this.drops.exception++;
      if (!this.loggedException) {
        this.loggedException = true;
        this.log.error('unexpected exception in the sleeve receive path (counted as rx.exception; logged once)', {
          error: err instanceof Error ? err.stack ?? err.message : String(err),
        });
      }
    }
    if (this.tx.pending() > 0) this.tx.flush();
  }

  private receive(count: number): void {
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
        for (let p = off; p < end; p += seg) this.datagram(buf, p, Math.min(seg, end - p), m);
      }
    }
  }

  private datagram(buf: Buffer, off: number, len: number, m: number): void {
    if (len < DATA_HDR_LEN) {
      this.drops.short++;
      return;
    }
    if (buf[off + 2] !== WIRE_VERSION) {
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
      this.message(peer, sess, counter, fullHops, buf, off, buf, off + DATA_HDR_LEN, len - DATA_HDR_LEN, m);
    } else if (type === TYPE_FRAG) {
      if (len < FRAG_HDR_LEN) {
        this.drops.short++;
        return;
      }
      const r = this.reasm.add(peer.index, buf, off, len, keyId, counter, this.nowMs, sess);
      if (r >= 0) {
        const slot = this.reasm.slots[r]!;
        this.message(peer, sess, counter, fullHops, slot.header, 0, slot.buf!, 0, slot.total, m);
        this.reasm.release(r);
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
    this.tx.forward(to, buf, off, len, hops - 1);
  }

  /** One whole sealed message from a known peer under a known key: open, then its records. */
  private message(
    peer: SleevePeer, sess: RxSession, counter: number, fullHops: boolean,
    hdr: Buffer, hdrOff: number, buf: Buffer, off: number, len: number, m: number,
  ): void {
    const n = sess.key.open(buf, off, len, hdr, hdrOff + AD_OFFSET, hdr, hdrOff + COUNTER_OFFSET);
    if (n < 0) {
      this.drops.auth++;
      return;
    }
    const relayed = (hdr[hdrOff + 3]! & FLAG_RELAYED) !== 0;
    const newest = counter > sess.window.highest;
    if (this.sealedFlag !== 0) sess.window.mark(counter);
    sess.used = true;
    if (sess === peer.rxPending) {
      // The peer holds the pending keys (it sealed with them): they become current.
      this.makeCurrent(peer, sess, peer.txPending!);
      peer.rxPending = peer.txPending = undefined;
    }
    peer.lastRx = this.nowMs;
    peer.counters.rxMessages++;
    let direct = false;
    if (relayed) {
      peer.relayedRx++;
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
        this.heartbeatRx(peer, buf, body, rlen, direct);
      } else {
        this.drops.badRecord++;
      }
      p = body + vlen + rlen;
    }
  }

  private heartbeatRx(peer: SleevePeer, buf: Buffer, off: number, len: number, direct: boolean): void {
    const nameLen = len >= HB_FIXED ? buf[off + 1]! : -1;
    if (nameLen < 0 || HB_FIXED + nameLen > len) {
      this.drops.badRecord++;
      return;
    }
    if (buf.toString('utf8', off + HB_FIXED, off + HB_FIXED + nameLen) !== peer.name) {
      this.drops.idMismatch++;
      return;
    }
    const first = peer.lastHeartbeatRx === -Infinity;
    peer.lastHeartbeatRx = this.nowMs;
    peer.vnetCapable = (buf[off]! & CAP_VNET) !== 0;
    if (direct) {
      const wasUp = peer.pathUp;
      this.setPath(peer, true);
      // Answer at once when the path just came up, so both sides see it in one round trip.
      if (!wasUp || first) this.sendHeartbeat(peer);
    }
  }

  // ---------------------------------------------------------------- peers

  private addPeer(id: number, name: string): SleevePeer | undefined {
    const index = this.byIndex.indexOf(undefined);
    if (index < 0) {
      this.log.warn('peer table full; peer ignored', { peer: name, max: this.init.maxPeers });
      return undefined;
    }
    const peer = new SleevePeer(index, id, name, this.maxDatagram, this.bundleCapacity, this.nowMs);
    this.byIndex[index] = peer;
    this.byId.set(id, peer);
    this.peers.push(peer);
    return peer;
  }

  private learnDirect(peer: SleevePeer, m: number): void {
    const meta = this.udp.rxMeta;
    const family = meta[m + 4] === 6 ? 6 : 4;
    const address = wordsToAddress(family, meta[m + 5]!, meta[m + 6]!, meta[m + 7]!, meta[m + 8]!);
    this.log.info('peer endpoint changed', { peer: peer.name, endpoint: formatEndpoint({ address, port: meta[m + 3]! }) });
    this.setDirect(peer.id, { address, port: meta[m + 3]!, family });
  }

  /** Heartbeats to the direct endpoint (probing the path) and, while it is down, through the relay. */
  private sendHeartbeat(peer: SleevePeer): void {
    this.tx.now = this.nowMs;
    peer.lastHeartbeatTx = this.nowMs;
    if (peer.hasDirect) this.tx.heartbeat(peer, this.hbBody, this.hbLen, true);
    if (!peer.pathUp && peer.via !== undefined && peer.hasEndpoint) this.tx.heartbeat(peer, this.hbBody, this.hbLen, false);
  }

  private tick(): void {
    const now = this.batchStart();
    const hb = this.init.heartbeatMs;
    for (const p of this.peers) {
      if (p.pathUp && now - p.lastDirectRx > this.init.deadAfterMs) this.setPath(p, false);
      if (now - p.lastHeartbeatTx >= hb) this.sendHeartbeat(p);
      if (p.rxPrev !== undefined && now - p.rxSince > this.init.rekeyOverlapMs) {
        p.rxPrev.destroy();
        p.rxPrev = undefined;
      }
      if (p.rxPending !== undefined && now - p.pendingSince > this.init.pendingKeyMs) {
        this.log.debug('pending keys never confirmed by the peer; dropped', { peer: p.name, keyId: p.rxPending.keyId });
        this.dropPendingKeys(p);
      }
      const tx = p.tx;
      if (tx !== undefined && (tx.counter >= this.init.rekeyAfterMessages || now >= tx.expiresAt)) this.events.rekeyWanted(p);
    }
    this.reasm.sweep(now);
    this.tx.flush();
  }
}
