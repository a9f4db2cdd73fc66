/**
 * The sleeve's sessions: each peer's key pairs (current, the previous receive key for a short
 * overlap, a pending pair waiting for the peer to use it), their lifetimes, and the asks for new
 * keys. Keys come from the mesh (`Sleeve.installKeys`); the receive path promotes a pending pair
 * when a datagram authenticates under it; the coarse timer expires what is too old.
 */
import type { PeerKeys } from '../../mesh/contracts.js';
import type { AeadKey } from '../../platform/aead.js';
import { FragmentTokens } from '../crypto/fragment-tokens.js';
import { RxSession, TxSession, type SleevePeer } from './peer.js';
import type { SleeveState } from './sleeve-state.js';

export class SleeveSessions {
  private readonly state: SleeveState;

  constructor(state: SleeveState) {
    this.state = state;
  }

  /**
   * New keys for a known peer; the contract is `Sleeve.installKeys`: current at once unless
   * `confirm` and the peer has working keys, then pending.
   */
  install(peer: SleevePeer, keys: PeerKeys, confirm: boolean): void {
    const now = this.state.nowMs;
    const expiresAt = now + this.state.settings.keyLifetimeMs;
    const rx = this.rxSession(keys.rx.keyId, keys.rx.key, expiresAt);
    const tx = this.txSession(peer, keys.tx.keyId, keys.tx.key, expiresAt);
    this.dropPendingKeys(peer);
    const working = this.working(peer.rx) || this.working(peer.rxPrev);
    if (confirm && working) {
      peer.rxPending = rx;
      peer.txPending = tx;
      peer.pendingSince = now;
    } else {
      this.makeCurrent(peer, rx, tx);
    }
  }

  /** A datagram authenticated under the pending receive key: the peer holds the pending pair, it becomes current. */
  promote(peer: SleevePeer): void {
    this.makeCurrent(peer, peer.rxPending!, peer.txPending!);
    peer.rxPending = peer.txPending = undefined;
  }

  /**
   * The coarse timer's work for one peer: the overlap key is wiped after `rekeyOverlapMs`, an
   * unpromoted pending pair dropped after `pendingKeyMs`, and new keys are asked for when the
   * send key nears its message limit or is past its lifetime.
   */
  tick(peer: SleevePeer, now: number): void {
    const settings = this.state.settings;
    if (peer.rxPrev !== undefined && now - peer.rxSince > settings.rekeyOverlapMs) {
      peer.rxPrev.destroy();
      peer.rxPrev = undefined;
    }
    if (peer.rxPending !== undefined && now - peer.pendingSince > settings.pendingKeyMs) {
      this.state.log.debug('pending keys never confirmed by the peer; dropped', { peer: peer.name, keyId: peer.rxPending.keyId });
      this.dropPendingKeys(peer);
    }
    const tx = peer.tx;
    if (tx !== undefined && (tx.counter >= settings.rekeyAfterMessages || now >= tx.expiresAt)) this.state.events.rekeyWanted(peer);
  }

  /** Wipes every key of a peer that is removed. */
  forget(peer: SleevePeer): void {
    peer.tx?.destroy();
    peer.rx?.destroy();
    peer.rxPrev?.destroy();
    peer.tx = peer.rx = peer.rxPrev = undefined;
    this.dropPendingKeys(peer);
  }

  /** A receive key that has authenticated a datagram and is within its lifetime. */
  private working(rx: RxSession | undefined): boolean {
    return rx !== undefined && rx.used && this.state.nowMs < rx.expiresAt;
  }

  /** `rx` and `tx` become the current keys; the current receive key becomes the overlap key. */
  private makeCurrent(peer: SleevePeer, rx: RxSession, tx: TxSession): void {
    this.state.flushPending();
    peer.rxPrev?.destroy();
    peer.rxPrev = peer.rx;
    peer.rx = rx;
    peer.rxSince = this.state.nowMs;
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
    const key = this.state.cipher.key(copy);
    copy.fill(0);
    return key;
  }

  private rxSession(keyId: number, material: Uint8Array, expiresAt: number): RxSession {
    return new RxSession(keyId, this.keyOf(material), this.state.cipher.sealed ? new FragmentTokens(material) : undefined, expiresAt);
  }

  private txSession(peer: SleevePeer, keyId: number, material: Uint8Array, expiresAt: number): TxSession {
    const tokens = this.state.cipher.sealed ? new FragmentTokens(material) : undefined;
    return new TxSession(keyId, this.keyOf(material), tokens, expiresAt, peer.id, this.state.selfId, this.state.cipher.sealed);
  }
}
