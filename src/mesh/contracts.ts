/**
 * Contracts of the mesh (ARCHITECTURE.md "Main contracts"). `src/mesh` declares them; the mesh
 * (TCP + Noise connections) carries them; `src/router` implements `Overlay`.
 *
 * Peer names are 16 lowercase hex digits derived from the peer's public key
 * (`src/core/ids.ts: peerNameFromPublicKey`); the 32-bit wire id used in sleeve headers is derived
 * from the same hash (`peerIdFromPeerName`).
 */

export type PeerName = string;

/**
 * State that spreads by gossip. `merge` must be commutative, associative and idempotent, and
 * returns only what changed in the receiver (`undefined` when nothing did). A shared property
 * suite (`test/mesh/gossip-data-laws.ts`) checks these laws for every implementation.
 */
export interface GossipData {
  encode(): Uint8Array;
  merge(other: this): this | undefined;
}

/**
 * One named channel of the mesh ("topology", "ipam"). Byte payloads; each gossiper owns its
 * encoding and must reject (throw `GossipDecodeError`) anything malformed without changing state.
 */
export interface Gossiper {
  /** A message addressed to this peer by `from`. */
  onUnicast(from: PeerName, data: Uint8Array): void;
  /** A broadcast from `source`; the return value is relayed further down the tree (undefined: stop). */
  onBroadcast(source: PeerName, data: Uint8Array): Uint8Array | undefined;
  /** Full state, sent periodically to neighbours (undefined: nothing to say). */
  gossip(): Uint8Array | undefined;
  /**
   * Gossip from a neighbour (`from`, when the caller knows it: for logs): merge it, return the
   * delta to pass on (undefined stops propagation).
   */
  onGossip(data: Uint8Array, from?: PeerName): Uint8Array | undefined;
}

/**
 * What a gossiper may ask of the mesh: send on its channel. Implemented by a `ChannelRegistry`
 * (the mesh's, and each simulated peer's), which sends through the named channel and counts it
 * there; a name without a channel throws `ChannelError`.
 */
export interface GossipTransport {
  /** Send gossip (full state or delta) on `channel` to every neighbour except `except`. */
  gossipToNeighbours(channel: string, data: Uint8Array, except?: PeerName): void;
  unicast(channel: string, to: PeerName, data: Uint8Array): boolean;
  broadcast(channel: string, data: Uint8Array): void;
}

/** Next hops derived from topology; recomputed (coalesced) when topology changes. */
export interface RouteTable {
  /** Next hop towards `dst` over established connections; undefined when unreachable. */
  nextHop(dst: PeerName): PeerName | undefined;
  /** Neighbours to forward a broadcast from `source` to (children of this peer in source's tree). */
  broadcastNext(source: PeerName): readonly PeerName[];
  /** Every peer reachable from this one (self excluded). */
  reachable(): readonly PeerName[];
  /** Hop count to `dst` (1 = direct neighbour); undefined when unreachable. */
  distance(dst: PeerName): number | undefined;
  onChange(listener: () => void): () => void;
}

/** Per-peer state of a connection as the mesh reports it in status. */
export type ConnectionState = 'connecting' | 'handshaking' | 'established' | 'failed' | 'waiting';

/**
 * The data plane seen from the mesh: the mesh tells it which peers exist, which keys to use and
 * how to reach them; the data plane tells the mesh when a peer's direct UDP path is up or down.
 */
export interface Overlay {
  /**
   * Install the traffic keys of a completed pair handshake for a peer.
   * - `confirm` false (the handshake's initiator, who has seen the peer's answer): the keys
   *   become current at once, for sending and receiving; the previous receive key stays valid
   *   for a short overlap (the peer may still send under it).
   * - `confirm` true (the responder): if no receive key of this peer has ever authenticated a
   *   datagram (first keys, or keys past their lifetime), as above. Otherwise the new pair is
   *   *pending*: the current keys stay exactly as they are (nothing wiped, no overlap started),
   *   datagrams under the pending receive key are accepted, and the first one that
   *   authenticates promotes the pair (the current receive key becomes the overlap key, sending
   *   switches). A newer pending pair replaces an unpromoted one, and an unpromoted pair is
   *   dropped after a while (30 s in the sleeve). So a replayed handshake, whose keys nobody
   *   else holds, never disturbs working keys, whatever the handshake layer remembers.
   * - Every pair has a hard lifetime from its installation (the sleeve's `keyLifetimeMs`; the
   *   daemon sets 2 × --rekey-seconds): after it the send key seals nothing and the receive key
   *   opens nothing (both counted as `keyExpired`, and the overlay asks for a rekey through
   *   `onRekeyWanted`) until a new handshake installs keys. The handshake layer must rekey
   *   well before.
   * The key bytes are wiped by the caller after the call: the overlay keeps its own copies.
   */
  installKeys(keys: PeerKeys, confirm: boolean): void;
  /** The peer's direct underlay endpoint ("addr:port"), or undefined when there is none. */
  setDirect(name: PeerName, endpoint: string | undefined): void;
  /** The relay towards a peer while its direct path is down (undefined: none). */
  setVia(name: PeerName, via: PeerName | undefined): void;
  /** Forget a peer entirely (keys wiped). */
  removePeer(name: PeerName): void;
  /** Whether the direct path to a peer is proven (heartbeats). */
  pathUp(name: PeerName): boolean;
  onPathChange(listener: (name: PeerName, up: boolean) => void): void;
  onRekeyWanted(listener: (name: PeerName) => void): void;
  /**
   * Hole punching (issue 18): probe these endpoints of the peer at once with authenticated sleeve
   * probes (a burst, then on a short backoff for a bounded window). The first candidate from
   * which a reply to a probe sent to it arrives works both ways: it becomes the peer's direct
   * endpoint and the direct path comes up, shown as punched. A new call replaces the list and
   * starts a new burst. Probes never move an endpoint by themselves; relays keep carrying the
   * peer's traffic until a candidate works. The outcome per candidate shows in status.
   */
  punch(name: PeerName, candidates: readonly PathCandidate[]): void;
  /**
   * A peer answered one of our probes and said where it came from: our address and port as that
   * peer sees them (our reflexive endpoint when we are behind NAT). Authenticated by the pair's
   * keys; called for every answer (the listener keeps what changed).
   */
  onObserved(listener: (by: PeerName, endpoint: string) => void): void;
  /** Round trip to a peer over its direct path, from probe answers (ms); undefined when not measured. */
  rttMs(name: PeerName): number | undefined;
}

/** Where a candidate endpoint for a peer's direct path comes from. */
export type CandidateKind = 'local' | 'advertised' | 'reflexive' | 'stun';

/** One endpoint ("addr:port" or "[v6]:port") at which a peer's sleeve socket might be reached. */
export interface PathCandidate {
  endpoint: string;
  kind: CandidateKind;
}

/** An overlay that carries nothing (tests of the mesh alone). */
export class NullOverlay implements Overlay {
  installKeys(): void {}
  setDirect(): void {}
  setVia(): void {}
  removePeer(): void {}
  pathUp(): boolean {
    return true;
  }
  onPathChange(): void {}
  onRekeyWanted(): void {}
  punch(): void {}
  onObserved(): void {}
  rttMs(): number | undefined {
    return undefined;
  }
}

export interface PeerKeys {
  name: PeerName;
  /** 32-bit wire id of the peer. */
  id: number;
  /** Key used to seal frames we send to the peer, and the id we put in their header. */
  tx: { keyId: number; key: Uint8Array };
  /** Key used to open frames from the peer carrying `keyId`. */
  rx: { keyId: number; key: Uint8Array };
  /**
   * A key both peers derive alike from this pair's traffic keys (`probeKeyOf`), for messages that
   * travel outside the sleeve (the fast path's health probes). Changes at every rekey. Like the
   * traffic keys, the bytes are wiped after `installKeys` returns: keep a copy.
   */
  probe: Uint8Array;
}


