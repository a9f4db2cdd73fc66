/**
 * Data-plane keys between two peers, end to end: a Noise IK handshake (the initiator knows the
 * responder's static key from topology) carried as mesh unicast on the "keys" channel, so it
 * works through relays too. The result is one key per direction; relays never see them.
 *
 *   INIT  [1, noise msg1]   payload: rxKeyId u32 | wall clock ms u64 (monotonic per initiator)
 *   RESP  [2, noise msg2]   payload: rxKeyId u32
 *
 * Each side picks the key id it wants to *receive* with; the sender writes the receiver's id in
 * the sleeve header. The initiator uses the new keys as soon as RESP arrives (`install(keys,
 * false)`). The responder always installs with `confirm = true`: the overlay keeps the keys in use
 * and holds the new pair pending until a datagram authenticates under its receive key, so keys
 * nobody else holds (a replayed INIT's) never replace working ones (Overlay.installKeys).
 *
 * Replays. Every relay (a member) sees the INITs it carries. The responder keeps the newest INIT
 * stamp it answered per peer name, outside the per-pair state (which goes when the peer is not
 * wanted for a moment), in a bounded table. An INIT that is not newer is a replay or comes from a
 * router whose wall clock went back (after a restart): it is answered only when nothing was
 * answered for that peer within `staleAnswerGapMs` (default 1 s), so a replay costs one DH a
 * second and disturbs nothing, and a router with a stepped-back clock still gets keys at once.
 * Such an answer does not count as keys established here (our own schedule is unchanged). Only
 * the monotonic clock times anything; the wall clock only makes stamps. INITs from peers we do not
 * know (no public key from topology or a connection) are dropped.
 *
 * Schedule. Keys are rotated every `rekeyAfterMs` (by the peer with the smaller name; by either
 * after 1.25×), and on demand when a counter runs high. The overlay refuses keys older than
 * `keyLifetimeMs` (default 2 × rekeyAfterMs): while a pair has keys, a failed rekey is retried
 * after at most rekeyAfterMs / 8 (and the answer awaited as long at most, 500 ms at least), so
 * several attempts fit before the keys expire. A rekey of the larger name that meets one of the
 * smaller name's in flight loses the collision (the smaller name's wins), so while the smaller
 * name keeps retrying, its own retries are what renew the keys.
 *
 * Handshake state is wiped when done; installed keys are wiped by the overlay when replaced.
 */
import { Packr } from 'msgpackr/pack';
import Noise from 'noise-handshake';
import sodium from 'sodium-native';
import type { Clock, TimerHandle } from '../core/clock.js';
import { peerIdFromPeerName, peerNameFromPublicKey } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import type { Gossiper, PeerKeys, PeerName } from './contracts.js';
import { GossipDecodeError } from './errors.js';
import type { Identity } from './identity.js';
import type { PairKeyStatus } from '../api/types.js';

export type { PairKeyStatus };

export const KEYS_CHANNEL = 'keys';

/**
 * The gossiper of the "keys" channel: handshake messages are unicasts (`onMessage`, which never
 * throws); gossip or a broadcast on the channel is refused (counted on it, the connection stays).
 */
export function keysGossiper(onMessage: (from: PeerName, data: Uint8Array) => void): Gossiper {
  const refuse = (): never => {
    throw new GossipDecodeError(KEYS_CHANNEL, 'pair keys travel as unicasts only');
  };
  return { onUnicast: onMessage, onBroadcast: refuse, gossip: () => undefined, onGossip: refuse };
}
const INIT = 1;
const RESP = 2;
const MAX_HANDSHAKE = 256;
/** Peers whose newest INIT stamp is remembered (wanted peers are never the ones forgotten). */
const MAX_STAMPS = 4096;

export interface PairKeysComponents {
  identity: Identity;
  clock: Clock;
  logger: Logger;
  /** Route a message to `to` over the mesh; false when there is no route right now. */
  unicast(to: PeerName, data: Uint8Array): boolean;
  /** Public key of a peer known from topology. */
  publicKeyOf(name: PeerName): Uint8Array | undefined;
  /** Hand keys to the data plane. `confirm`: keep the keys in use until the peer uses the new ones. */
  install(keys: PeerKeys, confirm: boolean): void;
  /** Uniform in [0, 1) for retry jitter (default Math.random). */
  random?: () => number;
}

export interface PairKeysInit {
  /** Binds the cluster secret and protocol version into every handshake. */
  prologue: Uint8Array;
  /** Further prologues an INIT may use while the cluster secret is rotated (tried after `prologue`; ours go out with `prologue`). */
  acceptPrologues?: readonly Uint8Array[];
  rekeyAfterMs?: number;
  /** The overlay stops using keys this old (default 2 × rekeyAfterMs); rekeys must land before. */
  keyLifetimeMs?: number;
  retryMs?: number;
  maxRetryMs?: number;
  /** An INIT that is not newer than one answered is answered at most this often per peer. */
  staleAnswerGapMs?: number;
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
  lastError: string | undefined;
  wanted: boolean;
}

/** The newest INIT stamp answered for a peer, and when (monotonic) the last INIT was answered. */
interface InitStamp {
  newest: bigint;
  answeredAt: number;
}

const packr = new Packr({ useRecords: false });

export class PairKeys {
  /**
   * stale: INITs not newer than one answered, dropped (within the gap) or `staleAnswered`;
   * unknownPeer: INITs from a peer with no known public key; stale RESPs count as `stale` too.
   */
  readonly stats = { initiated: 0, completed: 0, garbled: 0, authFailed: 0, stale: 0, staleAnswered: 0, unknownPeer: 0, collisions: 0, restarted: 0 };
  private readonly components: PairKeysComponents;
  private readonly init: Required<PairKeysInit>;
  private readonly random: () => number;
  private readonly pairs = new Map<PeerName, PairState>();
  /** Newest answered INIT per peer; survives the pair state (see the header). */
  private readonly stamps = new Map<PeerName, InitStamp>();
  private timer: TimerHandle | undefined;
  private lastStamp = 0n;

  constructor(components: PairKeysComponents, init: PairKeysInit) {
    this.components = components;
    const rekeyAfterMs = init.rekeyAfterMs ?? 120_000;
    this.init = { rekeyAfterMs, keyLifetimeMs: 2 * rekeyAfterMs, retryMs: 1_000, maxRetryMs: 30_000, staleAnswerGapMs: 1_000, acceptPrologues: [], ...init };
    this.random = components.random ?? Math.random;
  }

  start(): void {
    this.timer = this.components.clock.setInterval(() => this.tick(), 500);
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
      if (name === this.components.identity.name) continue;
      const p = this.state(name);
      p.wanted = true;
    }
    this.tick();
  }

  /**
   * Ask for fresh keys now (a send counter is running high, or the keys expired). Respects the
   * retry backoff after a failure, however often the overlay asks.
   */
  rekeyNow(name: PeerName): void {
    const p = this.pairs.get(name);
    if (p !== undefined && p.pending === undefined && this.components.clock.now() >= p.nextAttemptAt) this.initiate(p);
  }

  /**
   * Our connection to `name` was replaced (two routers dialled each other at once and one of the
   * connections lost the tie-break): a handshake message of ours, or the peer's answer, may have
   * gone over the connection that closed and be lost. A handshake in flight starts again at once
   * over the connection that stays, rather than after the answer's timeout and a backoff (about
   * 4 s). A reply to the first attempt, should it still come, fails to open and is dropped.
   */
  connectionReplaced(name: PeerName): void {
    const p = this.pairs.get(name);
    if (p === undefined || p.pending === undefined || !p.wanted) return;
    this.dropPending(p);
    this.stats.restarted++;
    this.initiate(p);
  }

  /** Whether keys with `name` were installed and are within their lifetime. */
  hasKeys(name: PeerName): boolean {
    const p = this.pairs.get(name);
    return p !== undefined && p.establishedAt >= 0 && this.components.clock.now() - p.establishedAt < this.init.keyLifetimeMs;
  }

  status(): PairKeyStatus[] {
    const now = this.components.clock.now();
    const life = this.init.keyLifetimeMs;
    return [...this.pairs.values()].map((p) => {
      const age = p.establishedAt >= 0 ? now - p.establishedAt : undefined;
      const state = age === undefined ? (p.pending !== undefined ? 'handshaking' : 'none') : age >= life ? 'expired' : 'established';
      return {
        peer: p.name,
        state,
        keyAgeMs: age === undefined ? undefined : Math.round(age),
        expiresInMs: age === undefined ? undefined : Math.max(0, Math.round(life - age)),
        rekeys: p.rekeys,
        failures: p.failures,
        lastError: p.lastError,
      };
    });
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
        nextAttemptAt: 0, backoffMs: this.init.retryMs, lastError: undefined, wanted: false,
      };
      this.pairs.set(name, p);
    }
    return p;
  }

  private tick(): void {
    const now = this.components.clock.now();
    const self = this.components.identity.name;
    for (const p of this.pairs.values()) {
      if (!p.wanted) continue;
      if (p.pending !== undefined) {
        if (now - p.pending.startedAt >= this.responseTimeoutMs(p)) {
          this.fail(p, 'no response to the key handshake');
        }
        continue;
      }
      if (now < p.nextAttemptAt) continue;
      const age = p.establishedAt >= 0 ? now - p.establishedAt : Infinity;
      // First keys: both sides may start (a collision is settled in onInit). Rekeys: the smaller
      // name starts them; the other side steps in when they are overdue.
      const mine = self < p.name;
      if (age === Infinity || age >= (mine ? 1 : 1.25) * this.init.rekeyAfterMs) {
        this.initiate(p);
      }
    }
  }

  /**
   * How long an answer is awaited: 2 s, longer as retries back off (slow paths), but while the pair
   * has keys at most an eighth of the rekey interval (and at least 500 ms), so retries fit before
   * the keys expire.
   */
  private responseTimeoutMs(p: PairState): number {
    const t = Math.max(2_000, p.backoffMs);
    return p.establishedAt >= 0 ? Math.min(t, Math.max(500, this.init.rekeyAfterMs / 8)) : t;
  }

  /** Retries back off exponentially; while the pair has keys, to at most an eighth of the rekey interval. */
  private fail(p: PairState, why: string): void {
    this.dropPending(p);
    p.failures++;
    p.lastError = why;
    const cap = p.establishedAt >= 0 ? Math.min(this.init.maxRetryMs, Math.max(100, this.init.rekeyAfterMs / 8)) : this.init.maxRetryMs;
    p.backoffMs = Math.min(cap, p.backoffMs * 2);
    p.nextAttemptAt = this.components.clock.now() + p.backoffMs * (0.75 + this.random() * 0.5);
  }

  private dropPending(p: PairState): void {
    p.pending = undefined;
  }

  private stamp(): bigint {
    const now = BigInt(Math.floor(this.components.clock.wallNow()));
    this.lastStamp = now > this.lastStamp ? now : this.lastStamp + 1n;
    return this.lastStamp;
  }

  private initiate(p: PairState): void {
    const rs = this.components.publicKeyOf(p.name);
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
    p.pending = { noise, rxKeyId, startedAt: this.components.clock.now() };
    this.stats.initiated++;
    if (!this.components.unicast(p.name, msg)) this.fail(p, 'no route to the peer');
  }

  private onInit(from: PeerName, m: Uint8Array): void {
    // Only peers we know: their key comes from topology or their connection (it bounds our state).
    const known = this.components.publicKeyOf(from);
    if (known === undefined) {
      this.stats.unknownPeer++;
      return;
    }
    let noise: Noise | undefined;
    let payload: Buffer | undefined;
    for (const prologue of [this.init.prologue, ...this.init.acceptPrologues]) {
      noise = new Noise('IK', false, this.keyPair());
      noise.initialise(prologue);
      try {
        payload = noise.recv(m);
        break;
      } catch {
        payload = undefined;
      }
    }
    if (noise === undefined || payload === undefined) {
      this.stats.authFailed++;
      return;
    }
    // The handshake authenticates the initiator's static key: it must be the claimed sender's.
    if (noise.rs === null || !Buffer.from(noise.rs).equals(Buffer.from(known)) || peerNameFromPublicKey(noise.rs) !== from || payload.length !== 12) {
      this.stats.authFailed++;
      return;
    }
    const now = this.components.clock.now();
    const stamp = payload.readBigUInt64BE(4);
    const seen = this.stamps.get(from);
    const fresh = seen === undefined || stamp > seen.newest;
    const p = this.state(from);
    if (!fresh) {
      // A replay, or a router whose clock went back: at most one answer per gap, and never at the
      // cost of a handshake of ours in flight (ours reaches it with a fresh stamp).
      if (now - seen.answeredAt < this.init.staleAnswerGapMs || p.pending !== undefined) {
        this.stats.stale++;
        return;
      }
      this.stats.staleAnswered++;
    } else if (p.pending !== undefined) {
      // Both sides started at once: the smaller name's handshake wins.
      this.stats.collisions++;
      if (this.components.identity.name < from) return;
      this.dropPending(p);
    }
    this.remember(from, fresh ? stamp : seen!.newest, now);
    const peerRxKeyId = payload.readUInt32BE(0);
    const rxKeyId = randomKeyId();
    const reply = Buffer.alloc(4);
    reply.writeUInt32BE(rxKeyId, 0);
    const resp = packr.pack([RESP, noise.send(reply)]);
    this.done(p, noise, peerRxKeyId, rxKeyId, true, fresh);
    this.components.unicast(from, resp);
  }

  /** Records an answered INIT; past MAX_STAMPS the peer answered longest ago that we do not want goes. */
  private remember(name: PeerName, newest: bigint, now: number): void {
    if (!this.stamps.has(name) && this.stamps.size >= MAX_STAMPS) {
      let victim: PeerName | undefined;
      let oldest = Infinity;
      for (const [n, st] of this.stamps) {
        if (st.answeredAt < oldest && this.pairs.get(n)?.wanted !== true) [victim, oldest] = [n, st.answeredAt];
      }
      this.stamps.delete(victim ?? this.stamps.keys().next().value!);
    }
    this.stamps.set(name, { newest, answeredAt: now });
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
    this.done(p, pending.noise, payload.readUInt32BE(0), pending.rxKeyId, false, true);
  }

  /**
   * A handshake finished: keys to the overlay. `counts`: they are this pair's new keys as far as
   * our schedule and status go (not for an answer to a stale INIT, which may be a replay whose keys
   * the overlay never uses).
   */
  private done(p: PairState, noise: Noise, txKeyId: number, rxKeyId: number, confirm: boolean, counts: boolean): void {
    const tx = noise.tx!;
    const rx = noise.rx!;
    p.pending = undefined;
    if (counts) {
      if (p.establishedAt >= 0) p.rekeys++;
      p.establishedAt = this.components.clock.now();
      p.backoffMs = this.init.retryMs;
      p.nextAttemptAt = 0;
      p.lastError = undefined;
      this.stats.completed++;
    }
    const probe = probeKeyOf(tx, rx);
    this.components.install({ name: p.name, id: p.id, tx: { keyId: txKeyId, key: tx }, rx: { keyId: rxKeyId, key: rx }, probe }, confirm);
    sodium.sodium_memzero(probe);
    sodium.sodium_memzero(tx);
    sodium.sodium_memzero(rx);
    this.components.logger.debug('pair keys installed', { peer: p.name, rekeys: p.rekeys });
  }

  private keyPair(): { publicKey: Uint8Array; secretKey: Uint8Array } {
    return { publicKey: this.components.identity.publicKey, secretKey: this.components.identity.secretKey };
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
