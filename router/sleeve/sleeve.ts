/**
 * The sleeve overlay: authenticated, encrypted Ethernet over UDP between routers.
 *
 * Receive flow, per datagram (GRO trains are split by segment size first):
 *   header checks (length, version, dst is us, sealed flag as configured)
 *   ─ FRAG: bounded reassembly ─ whole message
 *   ─ pick the receive session by key id (current, previous, or a newer candidate key derived
 *     from the header; older sessions are refused) ─ replay window ─ AEAD open in place
 *   ─ records: FRAME → sink (the router writes it to the TAP), HEARTBEAT → peer info
 * Nothing is kept for a datagram that does not authenticate; every drop is counted by reason.
 *
 * Peers are found from configured endpoints: a HELLO (a heartbeat sealed to peer id 0) goes to
 * each endpoint until a peer answers from it; any authenticated message from an unknown id
 * creates that peer. Endpoints follow authenticated traffic (a peer may move). Heartbeats every
 * `heartbeatMs` give liveness; a peer is unreachable after `deadAfterMs` of silence.
 */
import type { Clock, TimerHandle } from '../../src/core/clock.js';
import { peerIdFromName, formatPeerId } from '../../src/core/ids.js';
import type { Logger } from '../../src/core/logger.js';
import { formatEndpoint, type Endpoint } from '../../src/core/net.js';
import type { Startable } from '../../src/core/startable.js';
import type { UdpEndpoint } from '../../src/platform/udp.js';
import { RX_META_STRIDE } from '../../src/platform/udp.js';
import type { FrameCipher } from '../crypto/frame-cipher.js';
import type { StaticKeySchedule } from '../crypto/static-keys.js';
import { Reassembler, type ReassemblyDrops } from './reassembly.js';
import { SleevePeer, RxSession, TxSession, addressWords, wordsToAddress } from './peer.js';
import { SleeveTx, type TxDrops } from './sleeve-tx.js';
import type { AeadKey } from '../../src/platform/aead.js';
import {
  AD_OFFSET,
  DATA_HDR_LEN,
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
  maxDatagram,
  readCounter,
} from './wire.js';

export type SleeveFrameSink = (peer: SleevePeer, buf: Buffer, vnetOff: number, frameOff: number, frameLen: number) => void;

export interface SleeveInit {
  name: string;
  /** This router's sending session (key id), see static-keys.ts. */
  sessionId: number;
  underlayMtu: number;
  /** Our TAP takes virtio_net_hdr frames (announced in heartbeats). */
  vnetCapable: boolean;
  peers: readonly Endpoint[];
  heartbeatMs?: number;
  deadAfterMs?: number;
  /** A peer silent this long may come back with an older session id (its clock went back). */
  staleSessionAfterMs?: number;
  /** Authentication attempts per second for messages from unknown peer ids. */
  unknownPerSecond?: number;
  maxPeers?: number;
}

export interface SleeveComponents {
  udp: UdpEndpoint;
  cipher: FrameCipher;
  keys: StaticKeySchedule;
  clock: Clock;
  logger: Logger;
}

export interface RxDrops {
  short: number;
  version: number;
  badType: number;
  notForMe: number;
  sealedMismatch: number;
  selfOrZero: number;
  staleSession: number;
  replay: number;
  auth: number;
  badRecord: number;
  helloFrame: number;
  runt: number;
  truncated: number;
  unknownRateLimited: number;
  idMismatch: number;
  peerTableFull: number;
}

interface Discovery {
  endpoint: Endpoint;
  hello: SleevePeer;
  peer: SleevePeer | undefined;
  lastHello: number;
}

const DISCOVERY_DEST_BASE = 512;
const HB_FIXED = 8;
const CAP_VNET = 1;
const CAP_SEALED = 2;

export class Sleeve implements Startable {
  readonly tx: SleeveTx;
  readonly peers: SleevePeer[] = [];
  readonly drops: RxDrops = {
    short: 0, version: 0, badType: 0, notForMe: 0, sealedMismatch: 0, selfOrZero: 0, staleSession: 0, replay: 0,
    auth: 0, badRecord: 0, helloFrame: 0, runt: 0, truncated: 0, unknownRateLimited: 0, idMismatch: 0, peerTableFull: 0,
  };
  readonly selfId: number;
  readonly maxDatagram: number;
  readonly bundleCapacity: number;
  rxErrors = 0;
  private readonly udp: UdpEndpoint;
  private readonly cipher: FrameCipher;
  private readonly keys: StaticKeySchedule;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly init: Required<SleeveInit>;
  private readonly byId = new Map<number, SleevePeer>();
  private readonly discovery: Discovery[] = [];
  private readonly reasm: Reassembler;
  private readonly sealedFlag: number;
  /** Candidate key material and a key object re-keyed for each trial (no state kept on failure). */
  private readonly candKey: Buffer;
  private readonly candAead: AeadKey;
  private readonly hbBody: Buffer;
  private readonly hbLen: number;
  private readonly byIndex: (SleevePeer | undefined)[];
  private sink: SleeveFrameSink = () => undefined;
  private timer: TimerHandle | undefined = undefined;
  private nowMs = 0;
  private unknownTokens = 0;
  private unknownRefill = -Infinity;
  private readonly loggedErrnos = new Set<number>();

  constructor(components: SleeveComponents, init: SleeveInit) {
    this.udp = components.udp;
    this.cipher = components.cipher;
    this.keys = components.keys;
    this.clock = components.clock;
    this.log = components.logger;
    this.init = {
      heartbeatMs: 1000,
      deadAfterMs: 5000,
      staleSessionAfterMs: 30_000,
      unknownPerSecond: 200,
      maxPeers: DISCOVERY_DEST_BASE,
      ...init,
    };
    this.selfId = peerIdFromName(init.name);
    this.sealedFlag = this.cipher.sealed ? FLAG_SEALED : 0;
    this.maxDatagram = maxDatagram(init.underlayMtu, this.udp.family);
    this.bundleCapacity = this.maxDatagram - DATA_HDR_LEN - (this.cipher.sealed ? TAG_LEN : 0);
    this.reasm = new Reassembler({ maxSlots: 32, maxPerPeer: 8, timeoutMs: 1000 });
    this.tx = new SleeveTx({ udp: this.udp, cipher: this.cipher }, { selfId: this.selfId });
    this.candKey = this.keys.newKey();
    this.candAead = this.cipher.key(this.candKey);
    this.byIndex = new Array<SleevePeer | undefined>(this.init.maxPeers).fill(undefined);
    const name = Buffer.from(init.name, 'utf8');
    this.hbBody = Buffer.alloc(HB_FIXED + name.length);
    this.hbBody[0] = (init.vnetCapable ? CAP_VNET : 0) | (this.cipher.sealed ? CAP_SEALED : 0);
    this.hbBody[1] = name.length;
    this.hbBody.writeUInt16BE(this.udp.localPort, 2);
    this.hbBody.writeUInt16BE(this.maxDatagram, 4);
    name.copy(this.hbBody, HB_FIXED);
    this.hbLen = this.hbBody.length;
    init.peers.forEach((endpoint, i) => {
      const hello = new SleevePeer(DISCOVERY_DEST_BASE + i, 0, '', this.maxDatagram, this.bundleCapacity, 0);
      hello.setEndpoint(endpoint.address, endpoint.port, endpoint.family, addressWords(endpoint.address, endpoint.family));
      hello.tx = this.txSession(0);
      this.udp.setDest(hello.index, endpoint.address, endpoint.port);
      this.discovery.push({ endpoint, hello, peer: undefined, lastHello: -Infinity });
    });
  }

  /** Where received frames go (the router's TAP writer). */
  setSink(sink: SleeveFrameSink): void {
    this.sink = sink;
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

  discoveryStatus(): { endpoint: string; peer: string | undefined }[] {
    return this.discovery.map((d) => ({ endpoint: formatEndpoint(d.endpoint), peer: d.peer?.name }));
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
    if (this.tx.pending() > 0) this.tx.flush();
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
    const dst = buf.readUInt32BE(off + 4);
    if (dst !== this.selfId && dst !== 0) {
      this.drops.notForMe++;
      return;
    }
    if ((buf[off + 3]! & FLAG_SEALED) !== this.sealedFlag) {
      this.drops.sealedMismatch++;
      return;
    }
    const src = buf.readUInt32BE(off + 8);
    if (src === this.selfId || src === 0) {
      this.drops.selfOrZero++;
      return;
    }
    const type = buf[off];
    const keyId = buf.readUInt32BE(off + 12);
    const counter = readCounter(buf, off);
    if (type === TYPE_DATA) {
      this.message(src, dst, keyId, counter, buf, off, buf, off + DATA_HDR_LEN, len - DATA_HDR_LEN, m);
    } else if (type === TYPE_FRAG) {
      if (len < FRAG_HDR_LEN) {
        this.drops.short++;
        return;
      }
      const peer = this.byId.get(src);
      if (peer !== undefined && this.sealedFlag !== 0) {
        const s = peer.rx !== undefined && peer.rx.keyId === keyId ? peer.rx : undefined;
        if (s !== undefined && !s.window.check(counter)) {
          this.drops.replay++;
          return;
        }
      }
      const owner = peer !== undefined ? peer.index : this.init.maxPeers;
      const r = this.reasm.add(owner, buf, off, len, keyId, counter, this.nowMs);
      if (r >= 0) {
        const slot = this.reasm.slots[r]!;
        this.message(src, dst, keyId, counter, slot.header, 0, slot.buf!, 0, slot.total, m);
        this.reasm.release(r);
      }
    } else {
      this.drops.badType++;
    }
  }

  /** One whole sealed message: choose its session, check replay, open, dispatch the records. */
  private message(
    src: number, dst: number, keyId: number, counter: number,
    hdr: Buffer, hdrOff: number, buf: Buffer, off: number, len: number, m: number,
  ): void {
    const sealed = this.sealedFlag !== 0;
    let peer = this.byId.get(src);
    let sess: RxSession | undefined;
    if (dst === 0) {
      // Discovery hello: sealed to "any peer"; may carry heartbeats only.
      if (!this.unknownAllowed()) return;
      this.keys.derive(this.candKey, src, 0, keyId);
      this.candAead.rekey(this.candKey);
    } else if (peer !== undefined && peer.rx !== undefined && keyId === peer.rx.keyId) {
      sess = peer.rx;
    } else if (peer !== undefined && peer.rxPrev !== undefined && keyId === peer.rxPrev.keyId) {
      sess = peer.rxPrev;
    } else {
      if (peer === undefined && !this.unknownAllowed()) return;
      if (
        peer !== undefined && peer.rx !== undefined && keyId < peer.rx.keyId &&
        this.nowMs - peer.lastRx < this.init.staleSessionAfterMs
      ) {
        this.drops.staleSession++;
        return;
      }
      this.keys.derive(this.candKey, src, this.selfId, keyId);
      this.candAead.rekey(this.candKey);
    }
    if (sess !== undefined && sealed && !sess.window.check(counter)) {
      this.drops.replay++;
      return;
    }
    const n = (sess !== undefined ? sess.key : this.candAead).open(buf, off, len, hdr, hdrOff + AD_OFFSET, counter);
    if (n < 0) {
      this.drops.auth++;
      return;
    }
    const meta = this.udp.rxMeta;
    if (peer === undefined) {
      peer = this.addPeer(src);
      if (peer === undefined) return;
      this.learnEndpoint(peer, m);
    }
    if (dst === 0) {
      this.records(peer, buf, off, n, true);
      return;
    }
    if (sess === undefined) {
      sess = new RxSession(keyId, this.cipher.key(this.candKey));
      if (peer.rxPrev !== undefined) peer.rxPrev.key.destroy();
      peer.rxPrev = peer.rx;
      peer.rx = sess;
      this.log.info('receiving session from peer', { peer: peer.name || formatPeerId(src), keyId });
    }
    const newest = counter >= sess.window.highest;
    if (sealed) sess.window.mark(counter);
    peer.lastRx = this.nowMs;
    peer.counters.rxMessages++;
    if (newest && sess === peer.rx && !peer.endpointIs(meta[m + 3]!, meta[m + 4]!, meta[m + 5]!, meta[m + 6]!, meta[m + 7]!, meta[m + 8]!)) {
      this.learnEndpoint(peer, m);
    }
    this.records(peer, buf, off, n, false);
  }

  private records(peer: SleevePeer, buf: Buffer, off: number, len: number, helloOnly: boolean): void {
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
        if (helloOnly) this.drops.helloFrame++;
        else if (rlen < 14) this.drops.runt++;
        else {
          peer.counters.rxFrames++;
          peer.counters.rxBytes += rlen;
          this.sink(peer, buf, vlen > 0 ? body : -1, body + vlen, rlen);
        }
      } else if (type === REC_HEARTBEAT) {
        this.heartbeatRx(peer, buf, body, rlen, helloOnly);
      } else {
        this.drops.badRecord++;
      }
      p = body + vlen + rlen;
    }
  }

  private heartbeatRx(peer: SleevePeer, buf: Buffer, off: number, len: number, hello: boolean): void {
    const nameLen = len >= HB_FIXED ? buf[off + 1]! : -1;
    if (nameLen < 0 || HB_FIXED + nameLen > len) {
      this.drops.badRecord++;
      return;
    }
    const first = peer.lastHeartbeatRx === -Infinity;
    peer.lastHeartbeatRx = this.nowMs;
    peer.vnetCapable = (buf[off]! & CAP_VNET) !== 0;
    if (peer.name === '' || first) {
      const name = buf.toString('utf8', off + HB_FIXED, off + HB_FIXED + nameLen);
      if (peerIdFromName(name) !== peer.id) {
        this.drops.idMismatch++;
        this.log.warn('heartbeat name does not match the peer id; ignoring the name', { id: formatPeerId(peer.id), name });
      } else {
        peer.name = name;
        this.log.info('peer identified', { peer: name, id: formatPeerId(peer.id), endpoint: formatEndpoint(peer) });
      }
    }
    // Answer at once when the peer does not know us yet, so both sides are up in one round trip.
    if (hello || first) this.sendHeartbeat(peer);
  }

  private unknownAllowed(): boolean {
    if (this.nowMs - this.unknownRefill >= 1000) {
      this.unknownRefill = this.nowMs;
      this.unknownTokens = this.init.unknownPerSecond;
    }
    if (this.unknownTokens <= 0) {
      this.drops.unknownRateLimited++;
      return false;
    }
    this.unknownTokens--;
    return true;
  }

  // ---------------------------------------------------------------- peers

  private txSession(dst: number): TxSession {
    const material = this.keys.newKey();
    this.keys.derive(material, this.selfId, dst, this.init.sessionId);
    const key = this.cipher.key(material);
    this.keys.wipe(material);
    return new TxSession(this.init.sessionId, key, dst, this.selfId, this.cipher.sealed);
  }

  private addPeer(id: number): SleevePeer | undefined {
    const index = this.byIndex.indexOf(undefined);
    if (index < 0) {
      this.drops.peerTableFull++;
      return undefined;
    }
    const peer = new SleevePeer(index, id, '', this.maxDatagram, this.bundleCapacity, this.nowMs);
    this.byIndex[index] = peer;
    peer.tx = this.txSession(id);
    this.byId.set(id, peer);
    this.peers.push(peer);
    return peer;
  }

  private learnEndpoint(peer: SleevePeer, m: number): void {
    const meta = this.udp.rxMeta;
    const family = meta[m + 4] === 6 ? 6 : 4;
    const words = [meta[m + 5]!, meta[m + 6]!, meta[m + 7]!, meta[m + 8]!];
    const address = wordsToAddress(family, words[0]!, words[1]!, words[2]!, words[3]!);
    const port = meta[m + 3]!;
    const moved = peer.hasEndpoint;
    peer.setEndpoint(address, port, family, words);
    this.udp.setDest(peer.index, address, port);
    for (const d of this.discovery) {
      if (d.hello.endpointIs(port, family, words[0]!, words[1]!, words[2]!, words[3]!)) d.peer = peer;
    }
    if (moved) this.log.info('peer endpoint changed', { peer: peer.name || formatPeerId(peer.id), endpoint: formatEndpoint(peer) });
  }

  private sendHeartbeat(peer: SleevePeer): void {
    this.tx.now = this.nowMs;
    peer.lastHeartbeatTx = this.nowMs;
    this.tx.heartbeat(peer, this.hbBody, this.hbLen);
  }

  private tick(): void {
    const now = this.batchStart();
    const hb = this.init.heartbeatMs;
    for (const d of this.discovery) {
      const known = d.peer !== undefined && this.byId.get(d.peer.id) === d.peer && this.alive(d.peer);
      if (!known && now - d.lastHello >= hb) {
        d.lastHello = now;
        this.sendHeartbeat(d.hello);
      }
    }
    for (const p of this.peers) {
      if (now - p.lastHeartbeatTx >= hb) this.sendHeartbeat(p);
    }
    this.reasm.sweep(now);
    this.tx.flush();
  }
}
