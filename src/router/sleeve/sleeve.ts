/**
 * The sleeve overlay: authenticated, encrypted Ethernet over UDP between routers, direct or
 * through relays.
 *
 * The Sleeve is the one object users construct; its parts share one SleeveState
 * (sleeve-state.ts: settings, the peer table, where each peer's data goes):
 *   receive     sleeve-rx.ts          datagram batches: checks, keys, open, replay, relaying,
 *                                     reassembly, records to the sink and to heartbeats
 *   transmit    sleeve-tx.ts          frames → sealed messages → UDP, flushed once per batch
 *   heartbeats  sleeve-heartbeats.ts  path liveness, the proof of the direct path
 *   sessions    sleeve-sessions.ts    key pairs, pending keys, lifetimes, asks for new keys
 *   probes      sleeve-punch.ts       hole punching, observations of our endpoint, round trips
 *   stun        sleeve-stun.ts        STUN Binding requests and their answers (--stun)
 * This file holds the peer table's changes (from the mesh), the lifecycle, the batch guard and
 * the coarse timer that drives heartbeats, key expiry and reassembly timeouts.
 *
 * Peers and keys come from the mesh (`installKeys`, `setDirect`, `setVia`, `removePeer`).
 * Heartbeats go every `heartbeatMs` to each peer's direct endpoint; a direct heartbeat proves the
 * direct path (`pathUp`), and `deadAfterMs` of silence takes it down (under traffic, well under a
 * second without an answer does: sleeve-heartbeats.ts). Data goes direct when the path is up,
 * else through the relay the mesh names, else direct (optimistically). Hole punching (`punch`)
 * finds a direct endpoint from candidates the mesh exchanged (sleeve-punch.ts).
 */
import type { TimerHandle } from '../../core/clock.js';
import { formatPeerId } from '../../core/ids.js';
import type { Endpoint } from '../../core/net.js';
import type { Startable } from '../../core/startable.js';
import type { PeerKeys } from '../../mesh/contracts.js';
import type { AeadBatchStats } from '../../platform/aead.js';
import { Reassembler, type ReassemblyDrops } from './reassembly.js';
import { SleevePeer } from './peer.js';
import { SleeveHeartbeats } from './sleeve-heartbeats.js';
import { SleeveProbes, type ProbeCounters, type PunchAttempt, type SleeveCandidate } from './sleeve-punch.js';
import { SleeveRx, type SleeveFrameSink } from './sleeve-rx.js';
import { SleeveSessions } from './sleeve-sessions.js';
import { SleeveStun } from './sleeve-stun.js';
import { SleeveState, type RxDrops, type SleeveComponents, type SleeveEvents, type SleeveInit } from './sleeve-state.js';
import type { SleeveTx, TxDrops } from './sleeve-tx.js';

export type { ProbeCounters, PunchAttempt, RxDrops, SleeveCandidate, SleeveComponents, SleeveEvents, SleeveFrameSink, SleeveInit };

const noop = (): void => undefined;

export class Sleeve implements Startable {
  readonly tx: SleeveTx;
  readonly peers: SleevePeer[];
  readonly drops: RxDrops;
  readonly relayed: { datagrams: number; bytes: number; trains: number };
  readonly selfId: number;
  readonly maxDatagram: number;
  readonly bundleCapacity: number;
  rxErrors = 0;
  private readonly state: SleeveState;
  private readonly init: Required<SleeveInit>;
  private readonly byId: Map<number, SleevePeer>;
  private readonly reasm: Reassembler;
  private readonly rx: SleeveRx;
  private readonly heartbeats: SleeveHeartbeats;
  private readonly sessions: SleeveSessions;
  private readonly probes: SleeveProbes;
  private readonly stun: SleeveStun;
  private timer: TimerHandle | undefined = undefined;
  private readonly loggedErrnos = new Set<number>();
  private loggedException = false;
  private sinkEndBatch: () => void = noop;

  constructor(components: SleeveComponents, init: SleeveInit) {
    // Dead after three heartbeats missed, plus half of one for timer slack.
    this.init = {
      deadAfterMs: init.heartbeatMs * 3.5, maxPeers: 512, rekeyAfterMessages: 2 ** 48, rekeyOverlapMs: 10_000,
      keyLifetimeMs: 240_000, pendingKeyMs: 30_000, ...init,
    };
    const state = new SleeveState(components, this.init);
    this.state = state;
    this.tx = state.tx;
    this.peers = state.peers;
    this.drops = state.drops;
    this.byId = state.byId;
    this.selfId = state.selfId;
    this.maxDatagram = state.maxDatagram;
    this.bundleCapacity = state.bundleCapacity;
    this.reasm = new Reassembler({ maxSlots: 32, maxPerPeer: 8, timeoutMs: 1000, maxPeers: this.init.maxPeers });
    this.heartbeats = new SleeveHeartbeats(state, { name: init.name, vnetCapable: init.vnetCapable });
    this.sessions = new SleeveSessions(state);
    this.probes = new SleeveProbes(state);
    this.stun = new SleeveStun(state);
    this.rx = new SleeveRx({ state, reassembler: this.reasm, heartbeats: this.heartbeats, sessions: this.sessions, probes: this.probes, stun: this.stun });
    this.relayed = this.rx.relayed;
  }

  /**
   * Where received frames go (the router's TAP writer). `endBatch` runs once after each receive
   * batch, also after one that threw: a sink that holds frames back within a batch (the TAP
   * coalescer) writes them there.
   */
  setSink(sink: SleeveFrameSink, endBatch?: () => void): void {
    this.rx.sink = sink;
    this.sinkEndBatch = endBatch ?? noop;
  }

  /** The current sink (test/security/sleeve-counters.test.ts reads it to put it back). */
  private get sink(): SleeveFrameSink {
    return this.rx.sink;
  }

  setEvents(events: SleeveEvents): void {
    this.state.events = events;
  }

  start(): void {
    this.state.nowMs = this.state.clock.now();
    this.state.udp.start((count) => this.onBatch(count));
    // (50 ms at most: fast failover sends a heartbeat every 100 ms and punching probes from 100 ms on)
    this.timer = this.state.clock.setInterval(() => this.tick(), Math.max(10, Math.min(50, Math.floor(this.init.heartbeatMs / 4))));
    this.tick();
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.state.udp.stop();
    for (const p of [...this.peers]) this.removePeer(p.id);
  }

  /** Marks the start of a batch: one clock read shared by everything it queues. */
  batchStart(): number {
    return this.state.batchStart();
  }

  get cipherName(): string {
    return this.state.cipher.name;
  }

  /** Threads the seal and open batches run on, and what they ran (status). */
  cryptoStatus(): { threads: number; seals: AeadBatchStats; opens: AeadBatchStats; sealFailures: number } {
    return { threads: this.state.cipher.threads, seals: this.tx.seals.stats(), opens: this.rx.opens.stats(), sealFailures: this.tx.sealFailures };
  }

  /** Clock reading of the current batch. */
  now(): number {
    return this.state.nowMs;
  }

  /** The peer at a MAC-table port index, if it is still known. */
  peerAt(index: number): SleevePeer | undefined {
    return this.state.byIndex[index];
  }

  alive(peer: SleevePeer): boolean {
    return this.state.nowMs - peer.lastRx <= this.init.deadAfterMs;
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

  /** Probes sent and answered, punches that worked and failed. */
  probeCounters(): ProbeCounters {
    return this.probes.counters;
  }

  reassemblyStatus(): { inUse: number; completed: number; stored: number; memoryBytes: number } {
    return { inUse: this.reasm.inUse(), completed: this.reasm.completed, stored: this.reasm.stored, memoryBytes: this.reasm.memoryBytes() };
  }

  // ---------------------------------------------------------------- control (from the mesh)

  /**
   * New keys for a peer (created on first keys); the contract is `Overlay.installKeys`
   * (mesh/contracts.ts):
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
      this.state.log.warn('two peers share a wire id; keeping the first', { id: formatPeerId(keys.id), kept: peer.name, refused: keys.name });
      return undefined;
    }
    if (peer === undefined) {
      peer = this.addPeer(keys.id, keys.name);
      if (peer === undefined) return undefined;
    }
    this.sessions.install(peer, keys, confirm);
    return peer;
  }

  /**
   * The peer's direct underlay endpoint (undefined: none known; only relays reach it). A punched
   * endpoint stays while its path works (undefined only says the mesh connection closed); another
   * endpoint replaces it.
   */
  setDirect(id: number, endpoint: Endpoint | undefined): void {
    const peer = this.byId.get(id);
    if (peer === undefined) return;
    if (peer.punched) {
      if (endpoint === undefined && peer.pathUp) return;
      if (endpoint === undefined || peer.directAddress !== endpoint.address || peer.directPort !== endpoint.port) peer.punched = false;
    }
    this.state.setDirect(peer, endpoint);
  }

  /**
   * Hole punching towards a peer (`Overlay.punch`): a new attempt over these candidates (at most
   * 16), replacing any, its first burst sent at once. The outcome shows in `peer.punch`.
   */
  punch(id: number, candidates: readonly SleeveCandidate[]): void {
    const peer = this.byId.get(id);
    if (peer === undefined) return;
    this.batchStart();
    this.probes.punch(peer, candidates);
    this.state.flushPending();
  }

  /**
   * Sends a STUN Binding request to `address`:`port` from the sleeve socket (a few are remembered;
   * the answer comes as `SleeveEvents.stunMapped`). Returns '' when sent, else why not.
   */
  stunRequest(address: string, port: number): string {
    this.batchStart();
    return this.stun.request(address, port);
  }

  /** STUN requests sent and answers accepted. */
  stunCounters(): { requests: number; answers: number } {
    return this.stun.counters;
  }

  /** The relay for a peer while its direct path is down (undefined: none). */
  setVia(id: number, viaId: number | undefined): void {
    const peer = this.byId.get(id);
    if (peer === undefined) return;
    const via = viaId === undefined ? undefined : this.byId.get(viaId);
    peer.via = via !== undefined && via !== peer ? via : undefined;
    this.state.retarget(peer);
  }

  removePeer(id: number): void {
    const peer = this.byId.get(id);
    if (peer === undefined) return;
    this.state.flushPending();
    this.byId.delete(id);
    this.state.byIndex[peer.index] = undefined;
    this.peers.splice(this.peers.indexOf(peer), 1);
    for (const p of this.peers) if (p.via === peer) this.setVia(p.id, undefined);
    this.sessions.forget(peer);
    this.probes.forget(peer);
    peer.hasEndpoint = false;
  }

  private addPeer(id: number, name: string): SleevePeer | undefined {
    const index = this.state.byIndex.indexOf(undefined);
    if (index < 0) {
      this.state.log.warn('peer table full; peer ignored', { peer: name, max: this.init.maxPeers });
      return undefined;
    }
    const peer = new SleevePeer(index, id, name, this.maxDatagram, this.bundleCapacity);
    this.state.byIndex[index] = peer;
    this.byId.set(id, peer);
    this.peers.push(peer);
    return peer;
  }

  // ---------------------------------------------------------------- receive batches and the timer

  private onBatch(count: number): void {
    if (count < 0) {
      this.rxErrors++;
      if (!this.loggedErrnos.has(-count)) {
        this.loggedErrnos.add(-count);
        this.state.log.warn('udp socket error (re-armed; logged once per errno)', { errno: -count });
      }
      return;
    }
    const now = this.batchStart();
    // Invariant: the batch's sends are flushed before this returns (below, also after an
    // exception). Relayed datagrams and trains are queued as iovs into the UDP receive arena
    // (zero-copy, sleeve-tx.ts forwardRx), which the next batch rewrites.
    // One guard per batch (not per packet): nothing a datagram does may throw out of the addon's
    // callback. The rest of a batch that threw is lost; it is counted and logged once.
    try {
      this.rx.receive(count, now);
    } catch (err) {
      this.caught(err);
    }
    try {
      this.sinkEndBatch();
    } catch (err) {
      this.caught(err);
    }
    if (this.tx.pending() > 0) this.tx.flush();
  }

  private caught(err: unknown): void {
    this.drops.exception++;
    if (!this.loggedException) {
      this.loggedException = true;
      this.state.log.error('unexpected exception in the sleeve receive path (counted as rx.exception; logged once)', {
        error: err instanceof Error ? err.stack ?? err.message : String(err),
      });
    }
  }

  private tick(): void {
    const now = this.batchStart();
    for (const p of this.peers) {
      this.heartbeats.tick(p, now);
      this.probes.tick(p, now);
      this.sessions.tick(p, now);
    }
    this.reasm.sweep(now);
    this.tx.flush();
  }
}
