/**
 * What the parts of the sleeve share. The Sleeve (sleeve.ts) makes one and hands it to its parts:
 * the receive path (sleeve-rx.ts), heartbeats (sleeve-heartbeats.ts) and sessions
 * (sleeve-sessions.ts). It holds the settings, the peer table, the receive drop counters, the
 * clock reading of the current batch, and where each peer's data goes: the direct endpoint or the
 * relay's, and whether the direct path is up.
 */
import type { Clock } from '../../core/clock.js';
import type { Logger } from '../../core/logger.js';
import type { Endpoint } from '../../core/net.js';
import type { UdpEndpoint } from '../../platform/udp.js';
import type { FrameCipher } from '../crypto/frame-cipher.js';
import { addressWords, type SleevePeer } from './peer.js';
import { SleeveTx } from './sleeve-tx.js';
import { DATA_HDR_LEN, FLAG_SEALED, TAG_LEN, maxDatagram } from './wire.js';

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
  /** A probe record that is malformed, outside a PROBE message, or a PROBE message with another record or relayed. */
  probeMalformed: number;
  /** A probe request beyond the answers a peer may get per second (MAX_ANSWERS_PER_S). */
  probeRateLimited: number;
  /** A probe answer that matches no pending request of ours, or comes from another endpoint than the request went to. */
  probeUnmatched: number;
  /** A STUN Binding success answer from an endpoint we did not ask, or with a transaction id we did not send. */
  stunUnmatched: number;
  /** A STUN answer to a request of ours without a readable mapped address. */
  stunMalformed: number;
  /** A batch whose handling threw (a bug, never expected): counted, logged once, not rethrown. */
  exception: number;
}

export interface SleeveEvents {
  /** The direct path to a peer came up or went down. */
  pathChange(peer: SleevePeer, up: boolean): void;
  /** A send key is close to its message limit: ask the mesh for new keys. */
  rekeyWanted(peer: SleevePeer): void;
  /** The peer's direct endpoint moved to the source of its newest authenticated datagram (roaming). */
  endpointMoved?(peer: SleevePeer): void;
  /** A punching attempt found a working candidate: it is the peer's direct endpoint now (`peer.punched`). */
  punched?(peer: SleevePeer): void;
  /** A peer answered a probe of ours and said where it saw it come from ("addr:port"). */
  observed?(peer: SleevePeer, endpoint: string): void;
  /** A STUN server ("addr:port", as `Sleeve.stunRequest` was given it) answered: it sees us at `mapped`. */
  stunMapped?(server: string, mapped: Endpoint): void;
}

export class SleeveState {
  readonly udp: UdpEndpoint;
  readonly cipher: FrameCipher;
  readonly clock: Clock;
  readonly log: Logger;
  readonly settings: Required<SleeveInit>;
  readonly selfId: number;
  /** FLAG_SEALED when the cipher seals, else 0: the flag every datagram must carry. */
  readonly sealedFlag: number;
  readonly maxDatagram: number;
  readonly bundleCapacity: number;
  readonly tx: SleeveTx;
  readonly peers: SleevePeer[] = [];
  readonly byId = new Map<number, SleevePeer>();
  /** Peers by index (UDP destination slot, MAC-table port); undefined: a free index. */
  readonly byIndex: (SleevePeer | undefined)[];
  readonly drops: RxDrops = {
    short: 0, version: 0, counterLimit: 0, badType: 0, sealedMismatch: 0, selfOrZero: 0, unknownPeer: 0, unknownKey: 0,
    replay: 0, auth: 0, badRecord: 0, runt: 0, truncated: 0, idMismatch: 0, noRoute: 0, hopLimit: 0, badHops: 0, keyExpired: 0,
    relaySource: 0, relayUnflagged: 0, probeMalformed: 0, probeRateLimited: 0, probeUnmatched: 0, stunUnmatched: 0, stunMalformed: 0, exception: 0,
  };
  events: SleeveEvents = { pathChange: () => undefined, rekeyWanted: () => undefined };
  /** Clock reading of the current batch (`batchStart`). */
  nowMs = 0;

  constructor(components: SleeveComponents, settings: Required<SleeveInit>) {
    this.udp = components.udp;
    this.cipher = components.cipher;
    this.clock = components.clock;
    this.log = components.logger;
    this.settings = settings;
    this.selfId = settings.id;
    this.sealedFlag = this.cipher.sealed ? FLAG_SEALED : 0;
    this.maxDatagram = maxDatagram(settings.underlayMtu, this.udp.family);
    this.bundleCapacity = this.maxDatagram - DATA_HDR_LEN - (this.cipher.sealed ? TAG_LEN : 0);
    this.tx = new SleeveTx({ udp: this.udp, cipher: this.cipher }, { selfId: this.selfId, probeBase: settings.maxPeers });
    this.byIndex = new Array<SleevePeer | undefined>(settings.maxPeers).fill(undefined);
  }

  /** Marks the start of a batch: one clock read shared by everything it queues. */
  batchStart(): number {
    this.nowMs = this.clock.now();
    this.tx.now = this.nowMs;
    return this.nowMs;
  }

  flushPending(): void {
    if (this.tx.pending() > 0) this.tx.flush();
  }

  /** The peer's direct underlay endpoint (undefined: none known; only relays reach it). */
  setDirect(peer: SleevePeer, endpoint: Endpoint | undefined): void {
    if (endpoint === undefined) {
      peer.hasDirect = false;
      this.setPath(peer, false);
    } else if (!peer.hasDirect || peer.directAddress !== endpoint.address || peer.directPort !== endpoint.port) {
      try {
        this.udp.setDest(this.settings.maxPeers + peer.index, endpoint.address, endpoint.port);
      } catch (err) {
        // (an IPv6 endpoint on an IPv4 socket): as good as none
        this.log.warn('direct endpoint cannot be used by this socket', { peer: peer.name, endpoint: endpoint.address, error: err instanceof Error ? err.message : String(err) });
        this.setDirect(peer, undefined);
        return;
      }
      peer.hasDirect = true;
      peer.directAddress = endpoint.address;
      peer.directPort = endpoint.port;
      peer.directFamily = endpoint.family;
      peer.directWords.set(addressWords(endpoint.address, endpoint.family));
    }
    this.retarget(peer);
    // Peers relayed through this one send to its direct endpoint.
    for (const p of this.peers) if (p.via === peer) this.retarget(p);
  }

  /** Points the peer's data slot at the direct endpoint or the relay's. */
  retarget(peer: SleevePeer): void {
    const via = peer.via;
    let to: SleevePeer;
    if ((peer.pathUp || via === undefined || !via.hasDirect) && peer.hasDirect) {
      to = peer;
    } else if (via !== undefined && via.hasDirect) {
      to = via;
    } else {
      peer.hasEndpoint = false;
      return;
    }
    const viaRelay = to !== peer;
    if (peer.hasEndpoint && peer.address === to.directAddress && peer.port === to.directPort && peer.viaRelay === viaRelay) return;
    this.flushPending();
    peer.setEndpoint(to.directAddress, to.directPort, viaRelay);
    this.udp.setDest(peer.index, to.directAddress, to.directPort);
  }

  /** The direct path to `peer` came up or went down: data follows, and the owner hears of it. */
  setPath(peer: SleevePeer, up: boolean): void {
    if (peer.pathUp === up) return;
    peer.pathUp = up;
    peer.backSince = -Infinity;
    peer.suspect = false;
    if (up) {
      peer.everUp = true;
      // An observation probe (round trip, our endpoint as the peer sees it) at once.
      peer.nextObserveAt = this.nowMs;
    }
    peer.pathChanges++;
    this.retarget(peer);
    this.log.info(up ? 'direct path up' : 'direct path down', { peer: peer.name });
    this.events.pathChange(peer, up);
  }
}
