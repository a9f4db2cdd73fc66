/**
 * The mesh: control connections to other routers, the connection maker, gossip channels,
 * unicast and broadcast routing over the connections, and the data-plane keys per peer pair.
 *
 *   targets (configured + learned from topology) ─ dial with backoff ─ MeshConnection (Noise)
 *   established ─ neighbour: full gossip, direct endpoint to the overlay, pair keys
 *   topology change ─ routes (coalesced) ─ overlay relays (setVia), pair keys for reachable peers
 *
 * Simultaneous connections between two peers: the one dialled by the smaller peer name stays.
 * A connection is advertised in topology as established once the overlay proves the direct UDP
 * path too (as Weave does), so routes only use pairs that can carry frames.
 *
 * Inbound connections that have not finished the handshake (anyone on the underlay can open one)
 * are limited per source address and in all (preauth-gate.ts) and closed after
 * `handshakeTimeoutMs`; established connections (members only) are not limited.
 *
 * What established connections carry is routed and checked in mesh-messages.ts (src checks,
 * TTL, refused messages that never close a connection). Gossip channels are made here
 * (`newChannel`, one per name; the pair keys' "keys" channel is one): the mesh is the transport
 * its gossipers send through, and each channel counts what it sends and receives (`status`).
 *
 * NAT traversal (issue 18): our own endpoints (endpoints.ts: interfaces, --advertise, what peers
 * observe through `overlay.onObserved`) are offered on the "punch" channel to every reachable peer
 * with keys and no proven direct path (punch.ts), which probe them through `overlay.punch`. Every
 * peer also gets a standby relay, even a neighbour with a working direct path (standby-relay.ts,
 * by round trip with hysteresis), so a failover needs no gossip.
 */
import { connect, type Socket } from 'node:net';
import type { Clock, TimerHandle } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { formatEndpoint, parseEndpoint } from '../core/net.js';
import { MeshConnection } from './connection.js';
import { ConnectionMaker } from './connection-maker.js';
import { dialFamily, resolveHost } from './host-resolver.js';
import { TcpMeshListener, type MeshListener, type RemoteAddress } from './mesh-listener.js';
import { ChannelRegistry } from './channel-registry.js';
import type { GossipTransport, Overlay, PeerName, RouteTable } from './contracts.js';
import type { ChannelGossiper, ChannelOptions, GossipChannel } from './gossip-channel.js';
import type { Identity } from './identity.js';
import { MeshMessages } from './mesh-messages.js';
import { MESH_PROTOCOL_MAX, MESH_PROTOCOL_MIN, MSG_GOSSIP } from './mesh-protocol.js';
import { TOPOLOGY_CHANNEL } from './topology-codec.js';
import { KEYS_CHANNEL, PairKeys, keysGossiper } from './pair-keys.js';
import { BLOCKLIST_CHANNEL } from './blocklist.js';
import { LogOnce } from './log-once.js';
import { PreauthGate, sourceKey } from './preauth-gate.js';
import { Endpoints, type InterfacesSource } from './endpoints.js';
import { PUNCH_CHANNEL, PunchCoordinator, punchGossiper } from './punch.js';
import { chooseRelay } from './standby-relay.js';
import type { MeshStatus } from '../api/types.js';

export type { MeshStatus };

/** Problems logged once are logged again after this long (a problem that persists shows up hourly). */
const LOG_AGAIN_AFTER_MS = 3_600_000;
/** Standby relays are chosen again this often (round trips change), interfaces read again this often. */
const RELAYS_EVERY_MS = 5_000;
const INTERFACES_EVERY_MS = 10_000;
/** Who needs punching is read again this often (pair keys come and go without an event). */
const PUNCH_UPDATE_EVERY_MS = 1_000;

/** The address part of "addr:port" / "[v6]:port". */
function hostOf(endpoint: string): string {
  const e = parseEndpoint(endpoint);
  return typeof e === 'string' ? endpoint : e.address;
}

/** What the mesh needs from topology (gossip/topology.ts). */
export interface MeshTopology {
  get(name: PeerName):
    | {
        publicKey: Uint8Array;
        endpoints: readonly string[];
        nickname: string;
        left?: string | undefined;
        /** The owner's connections (standby relays: who has an established one to whom). */
        connections?: readonly { peer: PeerName; established: boolean }[];
        /** The owner's current router run (punch offers name it). */
        incarnation?: string;
      }
    | undefined;
  names(): PeerName[];
  setConnections(connections: { peer: PeerName; established: boolean; endpoint?: string }[]): void;
  onChange(listener: () => void): void;
}

export interface MeshComponents {
  identity: Identity;
  psk: Uint8Array;
  clock: Clock;
  logger: Logger;
  overlay: Overlay;
  /** Inbound connections (default: TCP on the listen address). */
  listener?: MeshListener;
  /** The host's interfaces, for our local candidates (default: none; the daemon passes `os.networkInterfaces`). */
  interfaces?: InterfacesSource;
  /** A --peer host name's addresses (default: the system resolver, the listen address's family). */
  resolve?: (host: string) => Promise<readonly string[]>;
  /**
   * Peers shut out by the blocklist (issue 19): their connections are refused after the
   * handshake, their messages, pair keys and relays ignored (default: none). See `revoked`.
   */
  isRevoked?: (name: PeerName) => boolean;
  /** Further PSKs accepted from inbound connections while the cluster secret is rotated (`psk` is tried first, and dialled with). */
  acceptPsks?: readonly Uint8Array[];
}

export interface MeshInit {
  /** TCP listen address (same port number as the UDP sleeve). */
  listenAddress: string;
  listenPort: number;
  udpPort: number;
  /** Configured peers, "addr:port" or "host:port". */
  peers: readonly string[];
  /** --advertise endpoints, offered to peers as candidates for hole punching. */
  advertise?: readonly string[];
  /** Prologue of pair-key handshakes (binds the cluster secret and version). */
  pairPrologue: Uint8Array;
  /** Further prologues answered while the cluster secret is rotated (ours is tried first, and sent with). */
  acceptPairPrologues?: readonly Uint8Array[];
  rekeyAfterMs?: number;
  /** The overlay stops using pair keys this old (default 2 × rekeyAfterMs): rekeys are scheduled to land before. */
  keyLifetimeMs?: number;
  backoffBaseMs?: number;
  backoffCapMs?: number;
  /** Inbound connections that have not finished the handshake, per source address (IPv6: per /64). */
  maxPreauthPerAddress?: number;
  /** ... and in all; past it the oldest of the busiest source is closed. */
  maxPreauth?: number;
  /** A connection (either way) that has not finished its handshake after this long is closed. */
  handshakeTimeoutMs?: number;
  /** The highest mesh protocol version to offer (`--mesh-protocol-max`; default: this build's highest). */
  protocolMax?: number;
  /** This router's release, sent to neighbours in HELLO (protocol 3 and later). */
  release?: string;
}

export class Mesh implements GossipTransport {
  readonly pairKeys: PairKeys;
  /** Our own endpoints: candidates, observations, the NAT guess (issue 18). */
  readonly endpoints: Endpoints;
  /** Candidate exchange and hole punching with peers that have no direct path (issue 18). */
  readonly punch: PunchCoordinator;
  readonly closes: Record<string, number> = {};
  private readonly components: MeshComponents;
  private readonly init: Required<MeshInit>;
  private readonly log: Logger;
  private readonly maker: ConnectionMaker;
  private readonly conns = new Map<PeerName, MeshConnection>();
  private readonly pending = new Set<MeshConnection>();
  private readonly messages: MeshMessages;
  private readonly channels: ChannelRegistry;
  private readonly preauth: PreauthGate<MeshConnection>;
  private readonly logOnce: LogOnce;
  private logResetAt = 0;
  /** Live peers in topology at the last change (to notice those that left). */
  private known = new Set<PeerName>();
  private readonly listener: MeshListener;
  private timer: TimerHandle | undefined;
  private topology: MeshTopology | undefined;
  private routes: RouteTable | undefined;
  private stopped = false;
  /** The relay named to the overlay per peer (standby relays). */
  private readonly vias = new Map<PeerName, PeerName | undefined>();
  private relaysAt = 0;
  private interfacesAt = 0;
  private punchAt = 0;

  constructor(components: MeshComponents, init: MeshInit) {
    this.components = components;
    this.log = components.logger;
    this.init = {
      rekeyAfterMs: 120_000, keyLifetimeMs: 2 * (init.rekeyAfterMs ?? 120_000), backoffBaseMs: 1000, backoffCapMs: 30_000,
      maxPreauthPerAddress: 8, maxPreauth: 64, handshakeTimeoutMs: 4000, advertise: [], protocolMax: MESH_PROTOCOL_MAX, release: '', acceptPairPrologues: [], ...init,
    };
    this.preauth = new PreauthGate({ perAddress: this.init.maxPreauthPerAddress, total: this.init.maxPreauth });
    this.logOnce = new LogOnce(this.log);
    this.maker = new ConnectionMaker(
      {
        clock: components.clock,
        self: components.identity.name,
        connected: (peer) => this.conns.has(peer),
        dial: (host, port) => this.dial(host, port),
        reachable: (peer) => this.routes?.distance(peer) !== undefined,
        resolve: components.resolve ?? ((host) => resolveHost(host, dialFamily(this.init.listenAddress))),
        logger: this.log,
      },
      { backoffBaseMs: this.init.backoffBaseMs, backoffCapMs: this.init.backoffCapMs },
    );
    this.listener = components.listener ?? new TcpMeshListener(
      { logger: components.logger },
      { address: this.init.listenAddress, port: this.init.listenPort },
    );
    for (const p of init.peers) this.maker.add(p, true);
    this.channels = new ChannelRegistry({
      link: {
        gossipToNeighbours: (channel, data, except) => this.sendGossip(channel, data, except),
        unicast: (channel, to, data) => this.messages.unicast(channel, to, data),
        broadcast: (channel, data) => this.messages.broadcast(channel, data),
      },
      clock: components.clock,
      logger: components.logger,
    });
    this.messages = new MeshMessages({
      self: components.identity.name,
      connection: (name) => this.conns.get(name),
      neighbours: () => this.neighbours(),
      routes: () => this.routes,
      isLiveMember: (name) => {
        const rec = this.topology?.get(name);
        return rec !== undefined && rec.left === undefined && !this.isRevoked(name);
      },
      channels: this.channels,
      logOnce: this.logOnce,
    });
    const keys = this.channels.newChannel(KEYS_CHANNEL, keysGossiper((from, data) => this.pairKeys.onMessage(from, data)));
    this.pairKeys = new PairKeys(
      {
        identity: components.identity,
        clock: components.clock,
        logger: components.logger.child('keys'),
        unicast: (to, data) => keys.unicast(to, data),
        // A revoked peer's key is not known: its handshakes are refused, none is started with it.
        publicKeyOf: (name) => (this.isRevoked(name) ? undefined : this.conns.get(name)?.remotePublicKey ?? this.topology?.get(name)?.publicKey),
        install: (keys, confirmTx) => components.overlay.installKeys(keys, confirmTx),
      },
      { prologue: init.pairPrologue, acceptPrologues: this.init.acceptPairPrologues, rekeyAfterMs: this.init.rekeyAfterMs, keyLifetimeMs: this.init.keyLifetimeMs },
    );
    components.overlay.onRekeyWanted((name) => this.pairKeys.rekeyNow(name));
    this.endpoints = new Endpoints(
      { clock: components.clock, logger: components.logger.child('endpoints'), ...(components.interfaces === undefined ? {} : { interfaces: components.interfaces }) },
      { udpPort: this.init.udpPort, listenAddress: this.init.listenAddress, advertise: this.init.advertise },
    );
    const punch = this.channels.newChannel(PUNCH_CHANNEL, punchGossiper((from, data) => this.punch.onMessage(from, data)));
    this.punch = new PunchCoordinator({
      clock: components.clock,
      logger: components.logger.child('punch'),
      self: components.identity.name,
      signer: components.identity.signer,
      publicKeyOf: (name) => this.conns.get(name)?.remotePublicKey ?? this.topology?.get(name)?.publicKey,
      incarnationOf: (name) => this.topology?.get(name)?.incarnation,
      unicast: (to, data) => punch.unicast(to, data),
      overlay: components.overlay,
      candidates: () => this.endpoints.candidates(),
      reachable: () => this.routes?.reachable() ?? [],
      hasKeys: (name) => this.pairKeys.hasKeys(name),
    });
    components.overlay.onObserved((by, endpoint) => this.endpoints.observe(by, endpoint));
    this.endpoints.onChange(() => this.punch.candidatesChanged());
    components.overlay.onPathChange((name, up) => {
      this.publishConnections();
      if (up) this.punch.update();
      else this.punch.pathDown(name);
      // A neighbour's path decides whether it can stand by as a relay.
      this.refreshRelays(false);
    });
  }

  /** Wires topology and routes (built by the daemon around this mesh's transport). */
  attach(topology: MeshTopology, routes: RouteTable): void {
    this.topology = topology;
    this.routes = routes;
    topology.onChange(() => this.learnTargets());
    routes.onChange(() => this.applyRoutes());
  }

  /**
   * The targets discovered outside the mesh (Kubernetes Nodes), the whole set each time: added
   * ones are dialled at the next tick, removed ones no longer redialled. --peer targets stay.
   */
  setDiscoveredTargets(targets: readonly { endpoint: string; peer?: PeerName }[]): void {
    this.maker.setDiscovered(targets);
  }

  /** A peer was forgotten (`weft forget`): stop dialling it, drop its connection and keys. */
  forgotten(name: PeerName): void {
    this.maker.forget(name);
    this.conns.get(name)?.close('forgotten', 'the peer was forgotten');
    this.components.overlay.removePeer(name);
  }

  /**
   * A peer was revoked (the blocklist): its connection is closed, it is no longer dialled, its
   * keys and paths go, and from now on its handshakes are refused after authentication.
   */
  revoked(name: PeerName): void {
    this.maker.forget(name);
    this.conns.get(name)?.close('revoked', 'the peer is revoked (blocklist)');
    this.components.overlay.removePeer(name);
    this.vias.delete(name);
    this.pairKeys.setWanted(this.wantedPeers());
  }

  private isRevoked(name: PeerName): boolean {
    return this.components.isRevoked?.(name) === true;
  }

  /**
   * A new gossip channel `name` driving `gossiper` over this mesh; throws `ChannelError`
   * (`ERR_CHANNEL_DUPLICATE`) when the name is taken. The caller starts and stops it.
   */
  newChannel(name: string, gossiper: ChannelGossiper, options?: ChannelOptions): GossipChannel {
    return this.channels.newChannel(name, gossiper, options);
  }

  async start(): Promise<void> {
    await this.listener.listen((socket, remote) => this.accept(socket, remote));
    this.pairKeys.start();
    this.timer = this.components.clock.setInterval(() => this.tick(), 250);
    this.tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    this.maker.stop();
    this.pairKeys.stop();
    for (const conn of [...this.conns.values(), ...this.pending]) conn.close('shutdown');
    await this.listener.close();
  }

  // ------------------------------------------------------------------ transport for gossip
  // What gossipers send goes through their channel (counted there); a name without a channel
  // throws `ChannelError` (`ERR_CHANNEL_UNKNOWN`).

  neighbours(): PeerName[] {
    return [...this.conns.keys()];
  }

  gossipToNeighbours(channel: string, data: Uint8Array, except?: PeerName): void {
    this.channels.gossipToNeighbours(channel, data, except);
  }

  unicast(channel: string, to: PeerName, data: Uint8Array): boolean {
    return this.channels.unicast(channel, to, data);
  }

  broadcast(channel: string, data: Uint8Array): void {
    this.channels.broadcast(channel, data);
  }

  private sendGossip(channel: string, data: Uint8Array, except: PeerName | undefined): void {
    for (const [name, conn] of this.conns) if (name !== except) conn.send({ type: MSG_GOSSIP, channel, data });
  }

  // ------------------------------------------------------------------ connections

  private learnTargets(): void {
    const t = this.topology;
    if (t === undefined) return;
    const endpoints = new Map<PeerName, readonly string[]>();
    for (const name of t.names()) {
      const rec = t.get(name);
      if (rec !== undefined && rec.left === undefined && !this.isRevoked(name)) endpoints.set(name, rec.endpoints);
    }
    this.maker.learn(endpoints);
    const names = new Set(endpoints.keys());
    for (const name of this.known) {
      if (!names.has(name)) {
        this.log.info('peer left the topology; its keys are wiped', { peer: name });
        this.components.overlay.removePeer(name);
      }
    }
    this.known = names;
  }

  private tick(): void {
    this.maker.tick();
    const now = this.components.clock.now();
    if (now - this.interfacesAt >= INTERFACES_EVERY_MS) {
      this.interfacesAt = now;
      this.endpoints.refresh();
    }
    if (now - this.punchAt >= PUNCH_UPDATE_EVERY_MS) {
      this.punchAt = now;
      this.punch.update();
    } else this.punch.tick();
    if (now - this.relaysAt >= RELAYS_EVERY_MS) this.refreshRelays(false);
    if (now - this.logResetAt >= LOG_AGAIN_AFTER_MS) {
      this.logResetAt = now;
      this.logOnce.reset();
    }
  }

  private dial(host: string, port: number): MeshConnection {
    const any = this.init.listenAddress === '0.0.0.0' || this.init.listenAddress === '::';
    const socket = connect({ host, port, ...(any ? {} : { localAddress: this.init.listenAddress }) });
    const conn = this.makeConnection(socket, true, formatEndpoint({ address: host, port }));
    socket.once('connect', () => this.maker.handshaking(conn));
    return conn;
  }

  private accept(socket: Socket, remote: RemoteAddress): void {
    if (this.stopped) {
      socket.destroy();
      return;
    }
    // Over the per-address limit: refused before any handshake state is built.
    if (!this.preauth.hasRoom(remote.address)) {
      socket.destroy();
      this.closes.preauthPerAddress = (this.closes.preauthPerAddress ?? 0) + 1;
      this.logOnce.warn(`preauth ${sourceKey(remote.address)}`, 'too many unauthenticated mesh connections from one address; the excess is refused at once', {
        address: remote.address, limit: this.init.maxPreauthPerAddress,
      });
      return;
    }
    const conn = this.makeConnection(socket, false, formatEndpoint(remote));
    const evict = this.preauth.admit(conn, remote.address);
    evict?.close('preauthEvicted', `more than ${this.init.maxPreauth} unauthenticated connections; the oldest of the busiest address is closed`);
  }

  private makeConnection(socket: Socket, outbound: boolean, remote: string): MeshConnection {
    const conn = new MeshConnection(
      {
        identity: this.components.identity,
        psk: this.components.psk,
        acceptPsks: this.components.acceptPsks ?? [],
        clock: this.components.clock,
        logger: this.log,
        admits: (msg, protocol) => this.channels.admits(msg, protocol),
        events: {
          established: (cn) => this.onEstablished(cn),
          // A connection that lost a tie-break is still read for a moment, for topology only: that
          // is how a router started with a copy of another's key gets to be seen.
          message: (cn, msg) => {
            if (this.isRevoked(cn.remoteName!)) return;
            if (cn.established) this.messages.onMessage(cn.remoteName!, msg);
            else if (msg.type === MSG_GOSSIP && msg.channel === TOPOLOGY_CHANNEL) this.messages.onMessage(cn.remoteName!, msg, true);
          },
          closed: (cn, reason, detail) => this.onClosed(cn, reason, detail),
        },
      },
      {
        socket, outbound, remoteAddress: remote, udpPort: this.init.udpPort, handshakeTimeoutMs: this.init.handshakeTimeoutMs,
        protocols: { min: MESH_PROTOCOL_MIN, max: this.init.protocolMax },
        ...(this.init.release === '' ? {} : { release: this.init.release }),
      },
    );
    this.pending.add(conn);
    return conn;
  }

  private onEstablished(conn: MeshConnection): void {
    this.pending.delete(conn);
    this.preauth.release(conn);
    const name = conn.remoteName!;
    if (this.isRevoked(name)) {
      // It hears why (our blocklist, so a revoked router stops itself), then the connection goes.
      const blocklist = this.channels.get(BLOCKLIST_CHANNEL)?.neighbourConnected(name);
      if (blocklist !== undefined) conn.send({ type: MSG_GOSSIP, channel: BLOCKLIST_CHANNEL, data: blocklist });
      conn.close('revoked', 'the peer is revoked (blocklist)', true);
      return;
    }
    const existing = this.conns.get(name);
    if (existing !== undefined) {
      // Keep the connection dialled by the smaller name; both ends decide the same.
      const self = this.components.identity.name;
      const keepNew = (conn.outbound ? self : name) === (self < name ? self : name);
      const loser = keepNew ? existing : conn;
      if (keepNew) this.conns.delete(name);
      // The loser still gets our topology before it goes, and its own topology is still read for
      // a moment: when the two ends are two routers run with one identity key (a copied state
      // directory), this is how the other run's record reaches the mesh, the first run re-asserts,
      // and the later one stops (topology's clone rule) instead of both reconnecting forever.
      const topology = this.channels.get(TOPOLOGY_CHANNEL)?.neighbourConnected(name);
      if (topology !== undefined) loser.send({ type: MSG_GOSSIP, channel: TOPOLOGY_CHANNEL, data: topology });
      loser.close('duplicate', 'a simultaneous connection to the same peer won the tie-break', true);
      // A key handshake of ours may have gone, or its answer come, over the loser: start it again.
      if (!keepNew) {
        this.pairKeys.connectionReplaced(name);
        return;
      }
    }
    this.conns.set(name, conn);
    // Before the wanted peers are set (which may start a first handshake over this connection).
    if (existing !== undefined) this.pairKeys.connectionReplaced(name);
    this.maker.established(conn, name);
    this.log.info('connection established', { peer: name, nickname: conn.remoteNickname, address: conn.remoteAddress, outbound: conn.outbound });
    const remote = parseEndpoint(conn.remoteAddress);
    const ip = typeof remote === 'string' ? '' : remote.address.startsWith('::ffff:') ? remote.address.slice(7) : remote.address;
    this.components.overlay.setDirect(name, ip === '' ? undefined : formatEndpoint({ address: ip, port: conn.remoteUdpPort }));
    for (const channel of this.channels) {
      const full = channel.neighbourConnected(name);
      if (full !== undefined) conn.send({ type: MSG_GOSSIP, channel: channel.channel, data: full });
    }
    this.publishConnections();
    this.pairKeys.setWanted(this.wantedPeers());
  }

  private onClosed(conn: MeshConnection, reason: string, detail: string): void {
    this.pending.delete(conn);
    this.preauth.release(conn);
    this.closes[reason] = (this.closes[reason] ?? 0) + 1;
    this.maker.closed(conn, `${reason}: ${detail}`, reason === 'duplicate');
    const name = conn.remoteName;
    if (name !== undefined && this.conns.get(name) === conn) {
      this.conns.delete(name);
      this.log.info('connection closed', { peer: name, reason, detail });
      this.components.overlay.setDirect(name, undefined);
      this.publishConnections();
      this.pairKeys.setWanted(this.wantedPeers());
    } else if (reason !== 'duplicate' && reason !== 'shutdown') {
      // Refusals are logged once per reason and address (inbound: per source key, as the pre-auth
      // limits count them, not per port), then only counted.
      const address = conn.outbound ? conn.remoteAddress : sourceKey(hostOf(conn.remoteAddress));
      this.logOnce.warn(`${reason} ${address}`, 'connection refused or failed', { address: conn.remoteAddress, reason, detail });
    }
  }

  /** Our connections, as advertised in topology (established once the UDP path is proven). */
  private publishConnections(): void {
    if (this.topology === undefined) return;
    const list = [...this.conns.entries()].map(([peer, conn]) => ({
      peer,
      established: this.components.overlay.pathUp(peer),
      endpoint: conn.remoteAddress,
    }));
    list.sort((a, b) => (a.peer < b.peer ? -1 : a.peer > b.peer ? 1 : 0));
    this.topology.setConnections(list);
  }

  private wantedPeers(): PeerName[] {
    const out = new Set<PeerName>(this.conns.keys());
    for (const p of this.routes?.reachable() ?? []) out.add(p);
    return [...out].filter((p) => !this.isRevoked(p));
  }

  private applyRoutes(): void {
    this.pairKeys.setWanted(this.wantedPeers());
    this.refreshRelays(true);
    this.punch.update();
  }

  /**
   * Names a relay for every reachable peer, even a neighbour whose direct path works (a standby,
   * so a failover needs no gossip): standby-relay.ts's choice among our neighbours with a proven
   * path whose record lists an established connection to the peer, by round trip with
   * hysteresis; else the route's next hop. `all`: tell the overlay every peer's relay (routes
   * changed), else only those that changed.
   */
  private refreshRelays(all: boolean): void {
    const routes = this.routes;
    if (routes === undefined) return;
    const overlay = this.components.overlay;
    this.relaysAt = this.components.clock.now();
    const self = this.components.identity.name;
    const reachable = new Set(routes.reachable());
    // Our neighbours with a proven path, and the peers each has an established connection to.
    const standing: { name: PeerName; rttMs: number | undefined; to: Set<PeerName> }[] = [];
    for (const n of this.conns.keys()) {
      if (!overlay.pathUp(n)) continue;
      const to = new Set<PeerName>();
      for (const c of this.topology?.get(n)?.connections ?? []) if (c.established) to.add(c.peer);
      standing.push({ name: n, rttMs: overlay.rttMs(n), to });
    }
    for (const name of reachable) {
      if (this.isRevoked(name)) continue;
      const hop = routes.nextHop(name);
      const candidates = [];
      for (const n of standing) if (n.name !== name && n.to.has(name) && !this.isRevoked(n.name)) candidates.push({ name: n.name, rttMs: n.rttMs });
      const via = chooseRelay({ candidates, current: this.vias.get(name), nextHop: hop === undefined || hop === name || hop === self ? undefined : hop });
      if (!all && this.vias.has(name) && this.vias.get(name) === via) continue;
      this.vias.set(name, via);
      overlay.setVia(name, via);
    }
    for (const name of [...this.vias.keys()]) {
      if (reachable.has(name)) continue;
      this.vias.delete(name);
    }
    if (all) for (const name of this.known) if (!reachable.has(name) && name !== self) overlay.setVia(name, undefined);
  }

  /** The mesh protocol negotiated on our established connection to `name`; undefined: none. */
  protocolOf(name: PeerName): number | undefined {
    const conn = this.conns.get(name);
    return conn?.established === true ? conn.protocol : undefined;
  }

  status(): MeshStatus {
    const now = this.components.clock.now();
    const routes = this.routes;
    const channels = this.channels.stats();
    const refused: Record<string, number> = {};
    for (const ch of channels) if (ch.refused > 0) refused[ch.channel] = ch.refused;
    if (this.messages.unknownChannel > 0) refused.unknownChannel = this.messages.unknownChannel;
    // Punch offers and answers refused, by reason (the hostile ones are in `punch` too).
    for (const [reason, n] of Object.entries(this.punch.stats.refused)) refused[`punch.${reason}`] = n;
    return {
      name: this.components.identity.name,
      nickname: this.components.identity.nickname,
      connections: [...this.conns.entries()].map(([peer, conn]) => ({
        peer,
        nickname: conn.remoteNickname,
        address: conn.remoteAddress,
        outbound: conn.outbound,
        state: conn.phase,
        sinceMs: Math.round(now - conn.startedAt),
        pathUp: this.components.overlay.pathUp(peer),
        protocol: conn.protocol,
        release: conn.remoteRelease ?? null,
      })),
      targets: this.maker.status(),
      peers: (this.topology?.names() ?? [])
        .filter((n) => n !== this.components.identity.name)
        .map((n) => ({ name: n, nickname: this.topology?.get(n)?.nickname ?? '', nextHop: routes?.nextHop(n), hops: routes?.distance(n) })),
      keys: this.pairKeys.status(),
      closes: { ...this.closes },
      refused,
      channels,
      preauth: {
        pending: this.preauth.size,
        perAddressLimit: this.init.maxPreauthPerAddress,
        totalLimit: this.init.maxPreauth,
        timeoutMs: this.init.handshakeTimeoutMs,
      },
      routed: { ...this.messages.routed },
      endpoints: { ...this.endpoints.status(), punches: this.punch.status() },
    };
  }
}
