/**
 * Cluster-wide IPAM of one peer: the rings (who owns what, gossiped on the "ipam" channel), an
 * allocator per space (what this peer hands out inside what it owns), donations, bootstrap,
 * reclaim and persistence.
 *
 *   allocate ──▶ free here? ──no──▶ ask owners (unicast, largest first, one at a time) ──▶ gave
 *      │             │yes                                                               (ring delta)
 *      ▼             ▼
 *   persist (group commit) ──▶ resolve
 *
 * Local ring changes (adoption, donation, reclaim, forget) are persisted before they are gossiped
 * or announced: a peer that crashes never comes back owning space it already gave away.
 *
 * Bootstrap without split brain. With `{ seeds }` every peer computes the same genesis ring. With
 * `{ initPeers: N }` a peer without a ring gossips "waiting (name, N)"; once it has seen exactly N
 * distinct waiting peers with the same N (itself included), no other N and no ring, it adopts the
 * genesis whose seeds are those N. In both modes a seed adds itself to the ring's `adopted` set,
 * and nobody allocates, donates or reclaims until every seed adopted it (or was forgotten): the
 * ring is then confirmed. A peer adopts at most one genesis ever (the file keeps it), and a peer
 * without a ring adopts any ring it receives instead of deciding. Two confirmed rings therefore
 * need two disjoint groups of N seeds, each member of which adopted its own group's genesis:
 * at least 2N peers started with the same N, split so that each group saw exactly N waiting
 * peers and no ring. A group that sees more than N waiting peers does not decide (status says to
 * use seeds). When two such rings meet, the merge is refused (`IpamRingConflictError`), counted
 * and shown in status; nothing merges.
 *
 * Trust. Every record received is admitted only when validly signed by its writer and within the
 * bounds (admission.ts, per record: a refused record is counted and the rest merges). Custody
 * (custody.ts) tells which winning entries this peer has verified the right of; only those count
 * for what this peer owns, accepts as a donation or reclaims, and space of ours taken by anyone
 * else is written back at a higher version (steward.ts decides, guard.ts acts).
 *
 * Reclaim: `forget(peer)` signs a tombstone; the heir (the peer that forgot it) takes over its
 * confirmed entries once the peer has been unreachable from it for `reclaimAfterMs`, and holds
 * them for `reclaimHoldMs` before allocating from them, the window in which a racing view
 * converges. A peer that finds itself forgotten while nothing of its space was taken cancels the
 * tombstone with a signed revival; once something was taken it is fenced: not ready, never
 * allocates again. An heir still holding what it took gives it back to a peer that revived.
 *
 * What arrives on the channel (gossip, asks, donations, proofs) is decoded, validated and merged by
 * receiver.ts; this file acts on what changed.
 */
import type { Clock, TimerHandle } from '../core/clock.js';
import { ConfigError, describeError } from '../core/errors.js';
import { isPeerName } from '../core/ids.js';
import { silentLogger, type Logger } from '../core/logger.js';
import type { Gossiper, GossipTransport, PeerName, RouteTable } from '../mesh/contracts.js';
import { SpaceAllocator, type Held } from './allocator.js';
import { Asker } from './asker.js';
import { WaitingQuorum } from './bootstrap.js';
import { allocationKey, checkContainerId, checkIfName, ipamDefaults, ipamProblems, type IpamInit, type IpamSettings } from './config.js';
import { IpamBadRequestError, IpamNotReadyError } from './errors.js';
import { Custody, type CustodyContext, type Decision } from './custody.js';
import { GroupCommit } from './group-commit.js';
import type { Interval } from './intervals.js';
import { Ring } from './ring.js';
import { MAX_VERSION, RingVerifier, type RingWriter } from './ring-signing.js';
import { IPAM_CHANNEL, withProofs } from './ring-codec.js';
import { Receiver } from './receiver.js';
import { offsetToAddress, type AddressSpace } from './space.js';
import { encodeCustody, parseState, restoreAllocators, snapshotState, type IpamStore, type PersistedState } from './state-file.js';
import { spaceStatus, zeroCounters, type IpamCounters, type IpamStatus } from './status.js';
import { Guard } from './guard.js';
import { encodeAsk, encodeGave, encodeGossip, waitingOf } from './wire.js';

export interface IpamComponents {
  clock: Clock;
  transport: GossipTransport;
  routes: RouteTable;
  store: IpamStore;
  log?: Logger;
  /** Signs our ring records: our identity (its name must be `self`). */
  writer: RingWriter;
  /** Checks the records' signatures; peers in one process may share one. Default: a new one. */
  verifier?: RingVerifier;
}

export interface AllocatedAddress {
  address: string;
  prefixLength: number;
  family: 4 | 6;
}

interface Allocation {
  containerId: string;
  ifName: string;
  offsets: (bigint | undefined)[];
  allocatedAt: number;
}

export class Ipam implements Gossiper {
  readonly self: PeerName;
  readonly spaces: readonly AddressSpace[];
  private readonly o: IpamSettings;
  private readonly clock: Clock;
  private readonly transport: GossipTransport;
  private readonly routes: RouteTable;
  private readonly store: IpamStore;
  private readonly log: Logger;
  private readonly writer: RingWriter;
  private readonly verifier: RingVerifier;
  private readonly rings: (Ring | undefined)[];
  private readonly custody: (Custody | undefined)[];
  private readonly allocs: SpaceAllocator[];
  private readonly records = new Map<string, Allocation>();
  private readonly quorum: WaitingQuorum | undefined;
  private readonly asker: Asker;
  private readonly orphanCheck: boolean[];
  private readonly commits: GroupCommit;
  private readonly localListeners = new Set<(delta: Uint8Array) => void>();
  private readonly receiver: Receiver;
  private full: Uint8Array | undefined = undefined;
  /** Changes learned from gossip (or holds ending) not written yet. */
  private learned = false;
  private timer: TimerHandle | undefined = undefined;
  private state: 'new' | 'starting' | 'running' | 'stopped' = 'new';
  private readonly guard: Guard;
  /** The persisted form of each space's custody, with the custody revision it was made at. */
  private readonly custodyBytes: ({ revision: number; bytes: Uint8Array } | undefined)[] = [];
  /** Writers already logged, per kind of trouble. */
  private readonly logged = new Set<string>();
  readonly counters: IpamCounters = zeroCounters();
  /** Bumped whenever what this peer owns (or holds) changes; the simulation checks on change. */
  ownershipGeneration = 0;

  constructor(components: IpamComponents, init: IpamInit) {
    this.o = ipamDefaults(init);
    const { problems, spaces } = ipamProblems(this.o);
    if (components.writer.name !== init.self) problems.push(`self ${init.self} is not the name of the signing key (${components.writer.name})`);
    if (problems.length > 0) throw new ConfigError(problems, 'IPAM settings');
    this.self = init.self;
    this.spaces = spaces;
    this.clock = components.clock;
    this.transport = components.transport;
    this.routes = components.routes;
    this.store = components.store;
    this.log = (components.log ?? silentLogger).child('ipam');
    this.writer = components.writer;
    this.verifier = components.verifier ?? new RingVerifier();
    this.rings = spaces.map(() => undefined);
    this.custody = spaces.map(() => undefined);
    this.allocs = spaces.map((s) => new SpaceAllocator(s, this.o.quarantineMs));
    this.orphanCheck = spaces.map(() => true);
    this.guard = new Guard({
      self: this.self,
      writer: this.writer,
      log: this.log,
      counters: this.counters,
      clock: this.clock,
      transport: this.transport,
      spaces,
      settings: this.o,
      ring: (si) => this.rings[si],
      custody: (si) => this.custody[si],
      alloc: (si) => this.allocs[si]!,
      context: () => this.context(),
      wrote: (si, delta) => this.wrote(si, delta),
      commit: (deltas) => this.commit(deltas),
      syncOwned: (si) => this.syncOwned(si),
      changed: () => {
        this.ownershipGeneration++;
        this.commits.mark();
      },
      logOnce: (key, level, msg, fields) => this.logOnce(key, level, msg, fields),
    });
    this.quorum = 'initPeers' in init.init ? new WaitingQuorum(waitingOf(this.writer, this.o.clusterId, init.init.initPeers)) : undefined;
    this.commits = new GroupCommit(() => this.store.save(this.serialize()));
    this.asker = new Asker({
      clock: this.clock,
      transport: this.transport,
      routes: this.routes,
      spaces,
      self: this.self,
      lowWater: this.o.lowWater,
      askTimeoutMs: this.o.askTimeoutMs,
      tickMs: this.o.tickMs,
      counters: this.counters,
      usable: (si) => this.usable(si),
      hasFree: (si, n) => this.allocs[si]!.hasFree(this.clock.now(), n),
      owners: (si) => this.rings[si]?.ownersBySize() ?? [],
    });
    this.receiver = new Receiver({
      self: this.self,
      clusterId: this.o.clusterId,
      spaces,
      writer: this.writer,
      verifier: this.verifier,
      quorum: this.quorum,
      counters: this.counters,
      log: this.log,
      transport: this.transport,
      running: () => this.state === 'running',
      isFullState: (data) => this.full !== undefined && Buffer.from(data.buffer, data.byteOffset, data.byteLength).equals(this.full),
      ring: (si) => this.rings[si],
      custody: (si) => this.custody[si],
      hasRing: () => this.rings.some((r) => r !== undefined),
      custodyWaits: () => !this.custody.every((c) => c === undefined || c.pendingCount() === 0),
      adopt: (si, ring) => {
        this.rings[si] = ring;
        this.custody[si] = ring.genesis.seeds.includes(this.self) ? Custody.known(ring) : Custody.unknown(ring);
      },
      context: () => this.context(),
      dropFullState: () => {
        this.full = undefined;
      },
      markChanged: (learned) => {
        this.commits.mark();
        if (learned) this.learned = true;
      },
      commit: (deltas) => this.commit(deltas),
      afterChange: (si, delta, decisions) => this.afterChange(si, delta, decisions),
      decide: () => this.decide(),
      donate: (from, si) => this.donate(from, si),
      prove: (from, si, tokens) => this.guard.prove(from, si, tokens),
      answered: (si, from) => this.asker.answered(si, from),
      emit: (data) => this.emit(data),
      logOnce: (key, level, msg, fields) => this.logOnce(key, level, msg, fields),
    });
  }

  // ─── lifecycle ────────────────────────────────────────────────────────────────────────────

  /** Loads the store (a corrupt or foreign file throws `IpamStateError`; nothing is reset). */
  async start(): Promise<void> {
    if (this.state !== 'new') return;
    this.state = 'starting';
    const data = await this.store.load();
    if (data !== undefined) this.restore(parseState(data, this.store.location, { clusterId: this.o.clusterId, self: this.self, ranges: this.spaces.map((s) => s.cidr) }));
    const init = this.o.init;
    if ('seeds' in init) {
      const fresh = this.rings.every((r) => r === undefined);
      if (fresh) this.adoptGenesis(init.seeds);
      else if (this.rings.some((r) => r !== undefined && r.genesis.seeds.join() !== [...init.seeds].sort().join()))
        this.log.warn('the persisted ring was seeded by other peers than the configured seeds; keeping the persisted ring', { persisted: this.rings.find((r) => r)?.genesis.seeds });
    }
    for (let si = 0; si < this.spaces.length; si++) this.syncOwned(si);
    this.state = 'running';
    this.timer = this.clock.setInterval(() => this.tick(), this.o.tickMs);
    this.decide();
    if (this.rings.some((r) => r !== undefined)) this.commits.mark();
    try {
      await this.commits.flush();
    } catch (err) {
      this.timer.cancel();
      this.state = 'stopped';
      throw err;
    }
    const full = this.gossip();
    if (full !== undefined) this.emit(full);
    for (let si = 0; si < this.spaces.length; si++) this.afterChange(si);
  }

  /** Stops the timer, fails waiting allocations, and flushes the state. */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    this.timer?.cancel();
    this.timer = undefined;
    this.asker.rejectAll(new IpamNotReadyError('IPAM is stopping'));
    await this.commits.flush();
  }

  /** Local ring changes as gossip deltas (a `GossipChannel` subscribes; without one they go to the transport). */
  onLocalUpdate(listener: (delta: Uint8Array) => void): () => void {
    this.localListeners.add(listener);
    return () => this.localListeners.delete(listener);
  }

  // ─── API ──────────────────────────────────────────────────────────────────────────────────

  ready(): { ok: boolean; reason?: string } {
    if (this.state !== 'running') return { ok: false, reason: this.state === 'stopped' ? 'IPAM is stopped' : 'IPAM is starting' };
    if (this.fenced()) {
      return {
        ok: false,
        reason:
          `this peer (${this.self}) was forgotten by the cluster (weft forget): its ranges were reclaimed and it may not allocate again ` +
          `under this identity (${this.records.size} allocation(s) here are conflicts); remove ${this.store.location} and the peer identity to rejoin as a new peer`,
      };
    }
    for (let si = 0; si < this.spaces.length; si++) {
      const ring = this.rings[si];
      if (ring === undefined) return { ok: false, reason: this.quorum?.reason() ?? 'waiting for the ring' };
      if (ring.isTombstoned(this.self)) return { ok: false, reason: `this peer was forgotten in the ${ring.space.cidr} ring; answering with a revival` };
      const missing = ring.unconfirmedSeeds();
      if (missing.length > 0) return { ok: false, reason: `waiting for seed(s) ${missing.join(', ')} to adopt the ${ring.space.cidr} ring` };
    }
    return { ok: true };
  }

  /** `existing`: the attachment already had these addresses (a repeated request). */
  async allocate(req: { containerId: string; ifName: string }): Promise<{ addresses: AllocatedAddress[]; existing?: true }> {
    const containerId = checkContainerId(req?.containerId);
    const ifName = checkIfName(req?.ifName);
    const key = allocationKey(containerId, ifName);
    const deadline = this.clock.now() + this.o.askTimeoutMs;
    for (;;) {
      const existing = this.records.get(key);
      if (existing !== undefined) {
        await this.commits.flush();
        return { addresses: this.addressesOf(existing), existing: true };
      }
      const r = this.ready();
      if (!r.ok) throw new IpamNotReadyError(r.reason ?? 'unknown');
      const now = this.clock.now();
      const missing = this.allocs.findIndex((a) => !a.hasFree(now));
      if (missing < 0) break;
      await this.asker.waitFor(missing, deadline);
    }
    const now = this.clock.now();
    const rec: Allocation = { containerId, ifName, offsets: this.allocs.map((a) => a.allocate(key, now)), allocatedAt: this.clock.wallNow() };
    this.records.set(key, rec);
    this.commits.mark();
    for (let si = 0; si < this.spaces.length; si++) this.asker.maybeAsk(si);
    await this.commits.flush();
    return { addresses: this.addressesOf(rec) };
  }

  async release(containerId: string, ifName?: string): Promise<{ released: string[] }> {
    checkContainerId(containerId);
    if (ifName !== undefined) checkIfName(ifName);
    if (this.state !== 'running') throw new IpamNotReadyError(this.ready().reason ?? 'not running');
    const released: string[] = [];
    const now = this.clock.now();
    for (const [key, rec] of this.records) {
      if (rec.containerId !== containerId || (ifName !== undefined && rec.ifName !== ifName)) continue;
      this.records.delete(key);
      rec.offsets.forEach((off, si) => {
        if (off === undefined) return;
        this.allocs[si]!.release(off, now);
        released.push(offsetToAddress(this.spaces[si]!, off));
      });
    }
    if (released.length > 0) this.commits.mark();
    await this.commits.flush();
    return { released };
  }

  list(): { containerId: string; ifName: string; addresses: string[]; allocatedAt: number }[] {
    return [...this.records.values()].map((r) => ({ containerId: r.containerId, ifName: r.ifName, addresses: this.addressesOf(r).map((a) => a.address), allocatedAt: r.allocatedAt }));
  }

  /**
   * `weft forget peer`: a tombstone signed by us in every ring. We are the peer's heir: we take its
   * space over once it has been unreachable from here for `reclaimAfterMs` (it cancels the
   * tombstone if it is alive and reachable before that).
   */
  forget(peer: PeerName): void {
    if (typeof peer !== 'string' || !isPeerName(peer)) throw new IpamBadRequestError('peer', 'is not a peer name (16 hex digits)');
    if (peer === this.self) throw new IpamBadRequestError('peer', 'is this peer itself');
    if (this.state !== 'running' || this.rings.some((r) => r === undefined)) throw new IpamNotReadyError(this.ready().reason ?? 'no ring yet');
    for (let si = 0; si < this.spaces.length; si++) {
      const ring = this.rings[si]!;
      const cur = ring.lifeOf(peer);
      if (cur !== undefined && cur.epoch >= MAX_VERSION) throw new IpamBadRequestError('peer', `cannot be forgotten again in ${ring.space.cidr} (epoch ${cur.epoch} is at the bound)`);
      const delta = ring.forget(peer, this.writer);
      if (delta === undefined) continue;
      this.log.info('peer forgotten: its space comes to us once it stays unreachable', { peer, range: this.spaces[si]!.cidr, afterMs: this.o.reclaimAfterMs });
      this.commit([delta]);
      this.afterChange(si, delta);
    }
  }

  status(): IpamStatus {
    const now = this.clock.now();
    const init = this.o.init;
    return {
      self: this.self,
      ready: this.ready(),
      fenced: this.fenced(),
      bootstrap:
        'seeds' in init
          ? { mode: 'seeds', seeds: [...init.seeds].sort() }
          : { mode: 'initPeers', initPeers: init.initPeers, waiting: (this.quorum?.list() ?? []).map((w) => ({ peer: w.name, initPeers: w.initPeers })) },
      spaces: this.spaces.map((s, si) => spaceStatus(s, this.rings[si], this.custody[si], this.allocs[si]!, now, this.asker.status(si))),
      allocations: this.records.size,
      ringConflicts: this.receiver.conflicts(),
      counters: { ...this.counters },
    };
  }

  /** What this peer owns per space, and what of it is held (tests, the simulation). */
  ownership(): { range: string; owned: Interval[]; held: readonly Held[] }[] {
    return this.spaces.map((s, si) => ({ range: s.cidr, owned: this.allocs[si]!.ownedRuns(), held: this.allocs[si]!.heldRuns() }));
  }

  /** The encoded ring of a space (tests, the simulation: equal bytes = converged). */
  ringBytes(si: number): Uint8Array | undefined {
    return this.rings[si]?.encode();
  }

  /** Tokens of space si whose winning entry this peer has not confirmed (tests, the simulation). */
  unconfirmed(si: number): bigint[] {
    return this.custody[si]?.pendingList().map(([t]) => t) ?? [];
  }

  // ─── Gossiper ─────────────────────────────────────────────────────────────────────────────

  gossip(): Uint8Array | undefined {
    if (this.state !== 'running') return undefined;
    if (this.full !== undefined) return this.full;
    const rings: Uint8Array[] = [];
    this.rings.forEach((r, si) => {
      if (r !== undefined) rings.push(withProofs(r.encode(), this.custody[si]?.allProofs() ?? [], this.spaces[si]!.bytes));
    });
    const waiting = rings.length > 0 ? [] : (this.quorum?.list() ?? []);
    if (rings.length === 0 && waiting.length === 0) return undefined;
    this.full = encodeGossip(rings, waiting);
    return this.full;
  }

  onGossip(data: Uint8Array): Uint8Array | undefined {
    return this.receiver.onGossip(data);
  }

  /** A message addressed to us (receiver.ts). */
  onUnicast(from: PeerName, data: Uint8Array): void {
    this.receiver.onUnicast(from, data);
  }

  onBroadcast(_source: PeerName, data: Uint8Array): Uint8Array | undefined {
    this.onGossip(data);
    return data;
  }

  // ─── rings ───────────────────────────────────────────────────────────────────────────────

  /** What custody asks of the moment: reachability, looked up only when a reclaim needs it. */
  private context(): CustodyContext {
    let set: Set<PeerName> | undefined;
    return {
      self: this.self,
      reachable: (p) => p === this.self || (set ??= new Set(this.routes.reachable())).has(p),
    };
  }

  private logOnce(key: string, level: 'warn' | 'error' | 'info', msg: string, fields: Record<string, unknown>): void {
    if (this.logged.has(key)) return;
    if (this.logged.size > 10_000) this.logged.clear();
    this.logged.add(key);
    this.log[level](msg, fields);
  }

  /** Genesis rings from the seeds (a seed adopts them); persisted before they are gossiped. */
  private adoptGenesis(seeds: readonly PeerName[]): void {
    const deltas: Ring[] = [];
    for (let si = 0; si < this.spaces.length; si++) {
      const ring = Ring.fromGenesis(this.o.clusterId, this.spaces[si]!.cidr, seeds);
      ring.adopt(this.writer);
      this.rings[si] = ring;
      this.custody[si] = ring.genesis.seeds.includes(this.self) ? Custody.known(ring) : Custody.unknown(ring);
      deltas.push(ring);
    }
    this.full = undefined;
    if (this.state === 'running') this.commit(deltas);
  }

  private fenced(): boolean {
    return this.guard.fenced;
  }

  private forgottenHere(): boolean {
    return this.rings.some((r) => r !== undefined && r.isTombstoned(this.self));
  }

  /** Whether space si may be allocated from, donated and reclaimed. */
  private usable(si: number): boolean {
    const r = this.rings[si];
    return this.state === 'running' && r !== undefined && r.confirmed() && !this.fenced() && !this.forgottenHere();
  }

  /** What we own: our winning entries that custody confirms. */
  private syncOwned(si: number): void {
    const ring = this.rings[si];
    const custody = this.custody[si];
    const owned = ring !== undefined && custody !== undefined && ring.confirmed() && !this.fenced() ? ring.ownedBy(this.self, (t) => !custody.isConfirmed(t)) : [];
    if (this.allocs[si]!.sync(owned)) this.ownershipGeneration++;
  }

  /**
   * After ring si changed (by `delta`, or wholly): ownership, our answer to a tombstone of us, our
   * defence, reclaims and give-backs as heir, waiters, asks.
   */
  private afterChange(si: number, delta?: Ring, decisions?: readonly Decision[]): void {
    const ring = this.rings[si];
    const custody = this.custody[si];
    if (ring === undefined || custody === undefined) return;
    const alloc = this.allocs[si]!;
    const lives = delta?.lifeRecords() ?? [];
    let resync = delta === undefined || lives.length > 0 || delta.adopted().length > 0;
    if (delta !== undefined) {
      if (lives.length > 0) this.orphanCheck[si] = true;
      for (const e of delta.entryList()) {
        if (e.owner === this.self || alloc.owns(e.token)) resync = true;
        if (ring.isTombstoned(e.owner)) this.orphanCheck[si] = true;
      }
    }
    if (decisions !== undefined) for (const d of decisions) if (d.before !== null && d.before !== 'unknown' && d.before.owner === this.self) resync = true;
    if (custody.pendingCount() > 0 && !resync) resync = custody.pendingList().some(([t]) => ring.entryAt(t)?.owner === this.self);
    if (resync) this.syncOwned(si);
    if (this.state === 'running') {
      if (this.guard.answerTombstone(si)) {
        this.full = undefined;
        this.orphanCheck[si] = true;
      }
      this.guard.defend(si);
      if (alloc.heldRuns().length > 0 && (delta === undefined || lives.length > 0)) this.guard.giveBack(si);
      if (this.orphanCheck[si] && this.usable(si)) this.orphanCheck[si] = this.guard.reclaim(si);
    }
    this.asker.wake();
    this.asker.maybeAsk(si);
  }

  /**
   * Our own entries `delta` were just written in ring si: custody records them (they are right by
   * construction); returns the delta's bytes with the proofs of our custody of that space.
   */
  private wrote(si: number, delta: Ring): Uint8Array {
    const custody = this.custody[si]!;
    for (const e of delta.superseded) if (custody.isConfirmed(e.token)) custody.remember(e);
    const proofs = custody.proofsFor(delta);
    custody.wrote(delta, this.self);
    return withProofs(delta.encode(), proofs, this.spaces[si]!.bytes);
  }

  /** Persists, then gossips our own ring deltas (encoded rings). */
  private commit(deltas: readonly (Ring | Uint8Array)[], after?: () => void): void {
    this.full = undefined;
    this.commits.mark();
    this.commits.flush().then(
      () => {
        if (this.state !== 'running') return;
        after?.();
        this.emit(encodeGossip(deltas.map((d) => (d instanceof Uint8Array ? d : d.encode())), []));
      },
      (err: unknown) => this.log.error('cannot persist IPAM state; the change is not announced', { err: describeError(err) }),
    );
  }

  private emit(data: Uint8Array): void {
    if (this.localListeners.size > 0) for (const l of this.localListeners) l(data);
    else this.transport.gossipToNeighbours(IPAM_CHANNEL, data);
  }

  // ─── bootstrap (initPeers) ────────────────────────────────────────────────────────────────

  /** initPeers: adopts genesis once the quorum is exactly met and no ring was seen. */
  private decide(): void {
    const seeds = this.quorum?.decision();
    if (seeds === undefined || this.state !== 'running' || this.rings.some((r) => r !== undefined)) return;
    this.log.info('initial peers agreed: adopting the genesis ring', { seeds });
    this.adoptGenesis(seeds);
    for (let si = 0; si < this.spaces.length; si++) this.afterChange(si);
  }

  // ─── donations ────────────────────────────────────────────────────────────────────────────

  private donate(from: PeerName, si: number): void {
    const ring = this.rings[si]!;
    const alloc = this.allocs[si]!;
    const range = this.spaces[si]!.cidr;
    const now = this.clock.now();
    // `from` is only vouched for hop by hop: give only to a live peer we can reach (one that did
    // not ask gets space it can use or give on; nothing goes to a name outside the mesh).
    const ok = this.usable(si) && from !== this.self && !ring.isTombstoned(from) && this.context().reachable(from);
    const run = ok ? alloc.donatable(now, this.asker.hasWaiters(si)) : undefined;
    if (run === undefined) {
      this.counters.asksRefused++;
      this.transport.unicast(IPAM_CHANNEL, from, encodeAsk('none', range));
      return;
    }
    let delta: Ring;
    try {
      delta = ring.assign(run[0], run[1], from, this.writer);
    } catch (err) {
      // The allocator's view lags the ring (a bug if it happens): refuse rather than give what is not ours.
      this.log.error('donation refused: allocator and ring disagree', { err: describeError(err), range });
      this.syncOwned(si);
      this.transport.unicast(IPAM_CHANNEL, from, encodeAsk('none', range));
      return;
    }
    const out = this.wrote(si, delta);
    this.syncOwned(si);
    this.counters.donationsGiven++;
    this.log.debug('donating space', { peer: from, range, size: (run[1] - run[0]).toString() });
    this.commit([out], () => this.transport.unicast(IPAM_CHANNEL, from, encodeGave(range, out)));
    this.afterChange(si, delta);
  }

  private tick(): void {
    const now = this.clock.now();
    this.guard.trackReachability(now, this.routes.reachable());
    for (let si = 0; si < this.spaces.length; si++) {
      if (this.allocs[si]!.expireHolds(now)) {
        this.ownershipGeneration++;
        this.commits.mark();
        this.learned = true;
      }
      const custody = this.custody[si];
      // Pending reclaims wait for their forgotten owner to be unreachable from here.
      if (custody !== undefined && custody.pendingCount() > 0 && custody.recheck(this.context()) > 0) {
        this.commits.mark();
        this.learned = true;
        this.afterChange(si);
      } else if (this.orphanCheck[si] && this.usable(si)) this.orphanCheck[si] = this.guard.reclaim(si);
      this.guard.askProofs(si, now);
    }
    this.asker.tick();
    if (this.learned) {
      this.learned = false;
      this.commits.flush().catch((err: unknown) => this.log.error('cannot persist IPAM state', { err: describeError(err) }));
    }
  }

  // ─── persistence ──────────────────────────────────────────────────────────────────────────

  private serialize(): Uint8Array {
    const rings = this.rings.map((r) => r?.encode());
    const custody = this.custody.map((c, si) => {
      if (c === undefined) return undefined;
      const cached = this.custodyBytes[si];
      if (cached !== undefined && cached.revision === c.revision) return cached.bytes;
      const bytes = encodeCustody(c.state(), this.spaces[si]!.bytes);
      this.custodyBytes[si] = { revision: c.revision, bytes };
      return bytes;
    });
    return snapshotState({
      clusterId: this.o.clusterId,
      self: this.self,
      spaces: this.spaces,
      rings,
      custody,
      fenced: this.guard.fenced,
      allocations: [...this.records.values()],
      allocs: this.allocs,
      clock: this.clock,
    });
  }

  private restore(s: PersistedState): void {
    s.rings.forEach((p, si) => {
      if (p === undefined) return;
      const ring = Ring.fromParts(p.genesis, p.entries, p.life, p.adopted);
      this.rings[si] = ring;
      const c = s.custody[si];
      this.custody[si] = c === undefined ? Custody.unknown(ring) : Custody.restored(ring, c);
    });
    this.guard.fenced = s.fenced;
    for (const a of s.allocations) this.records.set(allocationKey(a.containerId, a.ifName), { ...a });
    restoreAllocators(s, this.allocs, this.clock);
  }

  private addressesOf(rec: Allocation): AllocatedAddress[] {
    const out: AllocatedAddress[] = [];
    rec.offsets.forEach((o, si) => {
      const s = this.spaces[si]!;
      if (o !== undefined) out.push({ address: offsetToAddress(s, o), prefixLength: s.prefixLength, family: s.family });
    });
    return out;
  }
}
