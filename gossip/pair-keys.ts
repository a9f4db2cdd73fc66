/**
 * Data-plane keys between two peers, end to end: a Noise IK handshake (the initiator knows the
 * responder's static key from topology) carried as mesh unicast on the "keys" channel, so it
 * works through relays too. The result is one key per direction; relays never see them.
 *
 *   INIT  [1, noise msg1]   payload: rxKeyId u32 | wall clock ms u64 (monotonic per initiator)
 *   RESP  [2, noise msg2]   payload: rxKeyId u32
 *
 * Each side picks the key id it wants to *receive* with; the sender writes the receiver's id in
 * the sleeve header. The initiator uses the new keys as soon as RESP arrives. The responder
 * accepts the new receive key at once but keeps sending with the old one until the first frame
 * under the new key arrives (the overlay confirms), so no packet is lost at rekey; the old receive
 * key stays valid until the next rekey (overlap). Keys are rotated every `rekeyAfterMs` (by the
 * peer with the smaller name; by either after 1.5×), and on demand when a counter runs high.
 * Handshake state is wiped when done; installed keys are wiped by the overlay when replaced.
 */
import { Packr } from 'msgpackr';
import Noise from 'noise-handshake';
import sodium from 'sodium-native';
import type { Clock, TimerHandle } from '../src/core/clock.js';
import { peerIdFromPeerName, peerNameFromPublicKey } from '../src/core/ids.js';
import type { Logger } from '../src/core/logger.js';
import type { PeerKeys, PeerName } from './contracts.js';
import type { Identity } from './identity.js';

export const KEYS_CHANNEL = 'keys';
const INIT = 1;
const RESP = 2;
const MAX_HANDSHAKE = 256;

export interface PairKeysComponents {
  identity: Identity;
  clock: Clock;
  logger: Logger;
  /** Route a message to `to` over the mesh; false when there is no route right now. */
  unicast(to: PeerName, data: Uint8Array): boolean;
  /** Public key of a peer known from topology. */
  publicKeyOf(name: PeerName): Uint8Array | undefined;
  /** Hand keys to the data plane. `confirmTx`: keep the old send key until the peer uses the new one. */
  install(keys: PeerKeys, confirmTx: boolean): void;
}

export interface PairKeysInit {
  /** Binds the cluster secret and protocol version into every handshake. */
  prologue: Uint8Array;
  rekeyAfterMs?: number;
  retryMs?: number;
  maxRetryMs?: number;
}

interface Pending {
  noise: Noise;
  rxKeyId: number;
  startedAt: number;
}

interface PairState {
  name: PeerName;
  id: number;
  pending: Pending | undefined;
  establishedAt: number;
  rekeys: number;
  failures: number;
  nextAttemptAt: number;
  backoffMs: number;
  lastInitStamp: bigint;
  lastError: string | undefined;
  wanted: boolean;
}

export interface PairKeyStatus {
  peer: PeerName;
  state: 'none' | 'handshaking' | 'established';
  keyAgeMs: number | undefined;
  rekeys: number;
  failures: number;
  lastError: string | undefined;
}

const packr = new Packr({ useRecords: false });

export class PairKeys {
  readonly stats = { initiated: 0, completed: 0, garbled: 0, authFailed: 0, stale: 0, collisions: 0 };
  private readonly c: PairKeysComponents;
  private readonly init: Required<PairKeysInit>;
  private readonly pairs = new Map<PeerName, PairState>();
  private timer: TimerHandle | undefined;
  private lastStamp = 0n;

  constructor(components: PairKeysComponents, init: PairKeysInit) {
    this.c = components;
    this.init = { rekeyAfterMs: 120_000, retryMs: 1_000, maxRetryMs: 30_000, ...init };
  }

  start(): void {
    this.timer = this.c.clock.setInterval(() => this.tick(), 500);
  }

  stop(): void {
    this.timer?.cancel();
    for (const p of this.pairs.values()) this.dropPending(p);
    this.pairs.clear();
  }

  /** The peers we want keys with (reachable members); others are forgotten. */
  setWanted(names: Iterable<PeerName>): void {
    const want = new Set(names);
    for (const [name, p] of this.pairs) {
      if (!want.has(name)) {
        this.dropPending(p);
        this.pairs.delete(name);
      }
    }
    for (const name of want) {
      if (name === this.c.identity.name) continue;
      const p = this.state(name);
      p.wanted = true;
    }
    this.tick();
  }

  /** Ask for fresh keys now (e.g. a send counter is running high). */
  rekeyNow(name: PeerName): void {
    const p = this.pairs.get(name);
    if (p !== undefined && p.pending === undefined) this.initiate(p);
  }

  status(): PairKeyStatus[] {
    const now = this.c.clock.now();
    return [...this.pairs.values()].map((p) => ({
      peer: p.name,
      state: p.establishedAt >= 0 ? 'established' : p.pending !== undefined ? 'handshaking' : 'none',
      keyAgeMs: p.establishedAt >= 0 ? Math.round(now - p.establishedAt) : undefined,
      rekeys: p.rekeys,
      failures: p.failures,
      lastError: p.lastError,
    }));
  }

  /** A unicast on the keys channel. Never throws: bad input is counted and dropped. */
  onMessage(from: PeerName, data: Uint8Array): void {
    let msg: unknown;
    try {
      msg = data.length <= MAX_HANDSHAKE + 16 ? packr.unpack(data) : undefined;
    } catch {
      msg = undefined;
    }
    if (!Array.isArray(msg) || msg.length !== 2 || !(msg[1] instanceof Uint8Array) || (msg[0] !== INIT && msg[0] !== RESP)) {
      this.stats.garbled++;
      return;
    }
    if (msg[0] === INIT) this.onInit(from, msg[1]);
    else this.onResp(from, msg[1]);
  }

  private state(name: PeerName): PairState {
    let p = this.pairs.get(name);
    if (p === undefined) {
      p = {
        name, id: peerIdFromPeerName(name), pending: undefined, establishedAt: -1, rekeys: 0, failures: 0,
        nextAttemptAt: 0, backoffMs: this.init.retryMs, lastInitStamp: -1n, lastError: undefined, wanted: false,
      };
      this.pairs.set(name, p);
    }
    return p;
  }

  private tick(): void {
    const now = this.c.clock.now();
    const self = this.c.identity.name;
    for (const p of this.pairs.values()) {
      if (!p.wanted) continue;
      if (p.pending !== undefined) {
        if (now - p.pending.startedAt > Math.max(2_000, p.backoffMs)) {
          this.fail(p, 'no response to the key handshake');
        }
        continue;
      }
      if (now < p.nextAttemptAt) continue;
      const age = p.establishedAt >= 0 ? now - p.establishedAt : Infinity;
      // First keys: both sides may start (a collision is settled in onInit). Rekeys: the smaller
      // name starts them; the other side steps in when they are overdue.
      const mine = self < p.name;
      if (age === Infinity || age >= (mine ? 1 : 1.5) * this.init.rekeyAfterMs) {
        this.initiate(p);
      }
    }
  }

  private fail(p: PairState, why: string): void {
    this.dropPending(p);
    p.failures++;
    p.lastError = why;
    p.backoffMs = Math.min(this.init.maxRetryMs, p.backoffMs * 2);
    p.nextAttemptAt = this.c.clock.now() + p.backoffMs * (0.75 + Math.random() * 0.5);
  }

  private dropPending(p: PairState): void {
    p.pending = undefined;
  }

  private stamp(): bigint {
    const now = BigInt(Math.floor(this.c.clock.wallNow()));
    this.lastStamp = now > this.lastStamp ? now : this.lastStamp + 1n;
    return this.lastStamp;
  }

  private initiate(p: PairState): void {
    const rs = this.c.publicKeyOf(p.name);
    if (rs === undefined) {
      p.lastError = 'public key not known yet';
      return;
    }
    const noise = new Noise('IK', true, this.keyPair());
    noise.initialise(this.init.prologue, rs);
    const rxKeyId = randomKeyId();
    const payload = Buffer.alloc(12);
    payload.writeUInt32BE(rxKeyId, 0);
    payload.writeBigUInt64BE(this.stamp(), 4);
    const msg = packr.pack([INIT, noise.send(payload)]);
    p.pending = { noise, rxKeyId, startedAt: this.c.clock.now() };
    this.stats.initiated++;
    if (!this.c.unicast(p.name, msg)) this.fail(p, 'no route to the peer');
  }

  private onInit(from: PeerName, m: Uint8Array): void {
    const noise = new Noise('IK', false, this.keyPair());
    noise.initialise(this.init.prologue);
    let payload: Buffer;
    try {
      payload = noise.recv(m);
    } catch {
      this.stats.authFailed++;
      return;
    }
    // The handshake authenticates the initiator's static key: it must be the claimed sender.
    if (noise.rs === null || peerNameFromPublicKey(noise.rs) !== from || payload.length !== 12) {
      this.stats.authFailed++;
      return;
    }
    const p = this.state(from);
    const stamp = payload.readBigUInt64BE(4);
    if (stamp <= p.lastInitStamp) {
      this.stats.stale++;
      return;
    }
    if (p.pending !== undefined) {
      // Both sides started at once: the smaller name's handshake wins.
      this.stats.collisions++;
      if (this.c.identity.name < from) return;
      this.dropPending(p);
    }
    p.lastInitStamp = stamp;
    const peerRxKeyId = payload.readUInt32BE(0);
    const rxKeyId = randomKeyId();
    const reply = Buffer.alloc(4);
    reply.writeUInt32BE(rxKeyId, 0);
    const resp = packr.pack([RESP, noise.send(reply)]);
    const hadKeys = p.establishedAt >= 0;
    this.done(p, noise, peerRxKeyId, rxKeyId, hadKeys);
    this.c.unicast(from, resp);
  }

  private onResp(from: PeerName, m: Uint8Array): void {
    const p = this.pairs.get(from);
    if (p === undefined || p.pending === undefined) {
      this.stats.stale++;
      return;
    }
    let payload: Buffer;
    try {
      payload = p.pending.noise.recv(m);
    } catch {
      this.stats.authFailed++;
      return;
    }
    if (payload.length !== 4) {
      this.stats.garbled++;
      return;
    }
    const pending = p.pending;
    this.done(p, pending.noise, payload.readUInt32BE(0), pending.rxKeyId, false);
  }

  private done(p: PairState, noise: Noise, txKeyId: number, rxKeyId: number, confirmTx: boolean): void {
    const tx = noise.tx!;
    const rx = noise.rx!;
    if (p.establishedAt >= 0) p.rekeys++;
    p.pending = undefined;
    p.establishedAt = this.c.clock.now();
    p.backoffMs = this.init.retryMs;
    p.nextAttemptAt = 0;
    p.lastError = undefined;
    this.stats.completed++;
    const probe = probeKeyOf(tx, rx);
    this.c.install({ name: p.name, id: p.id, tx: { keyId: txKeyId, key: tx }, rx: { keyId: rxKeyId, key: rx }, probe }, confirmTx);
    sodium.sodium_memzero(probe);
    sodium.sodium_memzero(tx);
    sodium.sodium_memzero(rx);
    this.c.logger.debug('pair keys installed', { peer: p.name, rekeys: p.rekeys });
  }

  private keyPair(): { publicKey: Uint8Array; secretKey: Uint8Array } {
    return { publicKey: this.c.identity.publicKey, secretKey: this.c.identity.secretKey };
  }
}

const PROBE_LABEL = Buffer.from('weft fast-path probe key v1');

/**
 * The pair's probe key: BLAKE2b-256 of a label, keyed with both traffic keys in byte order, so
 * both ends derive the same key (one's tx is the other's rx). Not usable to open sleeve traffic.
 */
export function probeKeyOf(tx: Uint8Array, rx: Uint8Array): Buffer {
  const first = Buffer.compare(Buffer.from(tx), Buffer.from(rx)) <= 0;
  const key = sodium.sodium_malloc(64);
  key.set(first ? tx : rx, 0);
  key.set(first ? rx : tx, 32);
  const out = Buffer.alloc(32);
  sodium.crypto_generichash(out, PROBE_LABEL, key);
  sodium.sodium_memzero(key);
  return out;
}

function randomKeyId(): number {
  const b = Buffer.alloc(4);
  sodium.randombytes_buf(b);
  return b.readUInt32BE(0) || 1;
}
