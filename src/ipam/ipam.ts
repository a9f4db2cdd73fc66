/**
 * Cluster-wide IPAM of one peer: per configured range (IPv4 and/or IPv6) one `RangeState`
 * (range-state.ts) with its ring (who owns what, gossiped on the "ipam" channel), custody and
 * allocator (what this peer hands out inside what it owns). The Ipam starts, stops and persists
 * them, answers the local API, bootstraps the rings, gives space to peers that ask, and acts on
 * every change of a ring (`afterChange`). Its parts:
 *
 *   allocations.ts  allocate, release, list: the attachments' addresses
 *   asker.ts        asking other peers for space (largest owner first, one at a time)
 *   receiver.ts     what arrives on the channel: decoded, validated, admitted, merged
 *   announcer.ts    what we say: the full state, and our changes, persisted before they are gossiped
 *                   (a peer that crashes never comes back owning space it already gave away)
 *   guard.ts        what custody asks of us (steward.ts decides): defend, revive or fence, reclaim
 *   bootstrap.ts    the `initPeers` quorum, and why bootstrap has no split brain
 *
 *   allocate ──▶ free here? ──no──▶ ask owners (unicast, largest first, one at a time) ──▶ gave
 *      │             │yes                                                               (ring delta)
 *      ▼             ▼
 *   persist (group commit) ──▶ resolve
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
 * External ownership (Kubernetes mode, `components.ownership`): no ring, no quorum, nothing on the
 * "ipam" channel. Which blocks this router holds comes from the `BlockOwnership` (ownership.ts;
 * src/k8s/blocks.ts keeps them as Leases in the API server); the allocators are synced from it
 * on every change, a range running short claims a block (claimer.ts) instead of asking peers, and
 * `forget` reclaims through it. At start the blocks of the allocations in the state file are
 * claimed first (not ready until done); an allocation in a block another router holds is a
 * conflict, reported and kept until released. Allocation stays local, from held blocks only.
 */
import type { Clock, TimerHandle } from '../core/clock.js';
import { ConfigError, describeError } from '../core/errors.js';
import { isPeerName } from '../core/ids.js';
import { silentLogger, type Logger } from '../core/logger.js';
import type { Gossiper, GossipTransport, PeerName, RouteTable } from '../mesh/contracts.js';
import type { Held } from './allocator.js';
import { Allocations, type AllocatedAddress, type AllocateRequest, type ListedAllocation, type ReleaseCondition, type SkippedRelease } from './allocations.js';
import { Announcer } from './announcer.js';
import { Asker } from './asker.js';
import { Claimer } from './claimer.js';
import { WaitingQuorum } from './bootstrap.js';

/** Why a joining router (no seeds, no initPeers) is not ready before it has the ring. */
const JOIN_WAITING = 'joining: waiting for the ring from a member (a router started without --peer forms it; give --ipam-seed or --ipam-init-peers to form one otherwise)';
import { ipamDefaults, ipamProblems, type IpamInit, type IpamSettings } from './config.js';
import { IpamBadRequestError, IpamNotReadyError } from './errors.js';
import type { CustodyContext, Decision } from './custody.js';
import { GroupCommit } from './group-commit.js';
import { IntervalSet, type Interval } from './intervals.js';
import type { BlockOwnership, ReclaimResult } from './ownership.js';
import { Ring } from './ring.js';
import { MAX_VERSION, RingVerifier, type RingWriter } from './ring-signing.js';
import { IPAM_CHANNEL } from './ring-codec.js';
import { RangeState } from './range-state.js';
import { Receiver } from './receiver.js';
import { parseState, restoreAllocator, snapshotState, type IpamStore, type PersistedState } from './state-file.js';
import { formatRange } from './space.js';
import { spaceStatus, zeroCounters, type IpamCounters, type IpamStatus } from './status.js';
import { Guard } from './guard.js';
import { encodeAsk, encodeGave, waitingOf } from './wire.js';

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
  /**
   * External ownership (Kubernetes mode): who holds which block is decided there, not by a ring
   * (see the file comment). Its `ranges` must be the configured ranges, in order.
   */
  ownership?: BlockOwnership;
}

export class Ipam implements Gossiper {
  readonly self: PeerName;
  private readonly settings: IpamSettings;
  private readonly clock: Clock;
  private readonly transport: GossipTransport;
  private readonly routes: RouteTable;
  private readonly store: IpamStore;
  private readonly log: Logger;
  private readonly writer: RingWriter;
  private readonly verifier: RingVerifier;
  /** One per configured range, in order. */
  private readonly ranges: readonly RangeState[];
  private readonly allocations: Allocations;
  private readonly quorum: WaitingQuorum | undefined;
  private readonly asker: Asker;
  private readonly commits: GroupCommit;
  private readonly announcer: Announcer;
  private readonly receiver: Receiver;
  /** Changes learned from gossip (or holds ending) not written yet. */
  private learned = false;
  private timer: TimerHandle | undefined = undefined;
  private state: 'new' | 'starting' | 'running' | 'stopped' = 'new';
  private readonly guard: Guard;
  /** Writers already logged, per kind of trouble. */
  private readonly logged = new Set<string>();
  readonly counters: IpamCounters = zeroCounters();
  /** Bumped whenever what this peer owns (or holds) changes; the simulation checks on change. */
  ownershipGeneration = 0;
  /** External ownership (undefined: the ring), and what claims its blocks. */
  private readonly blocks: BlockOwnership | undefined;
  private readonly claimer: Claimer | undefined;
  private unsubscribe: (() => void) | undefined = undefined;
  /** External: the blocks of the state file's allocations were claimed (or found taken). */
  private adopted = false;
  private adopting = false;

  constructor(components: IpamComponents, init: IpamInit) {
    this.settings = ipamDefaults(init);
    const { problems, spaces } = ipamProblems(this.settings);
    if (components.writer.name !== init.self) problems.push(`self ${init.self} is not the name of the signing key (${components.writer.name})`);
    const own = components.ownership;
    if (own !== undefined && own.ranges.join() !== spaces.map((x) => x.cidr).join()) problems.push(`the block ownership is for ranges ${own.ranges.join(', ')}, not ${spaces.map((x) => x.cidr).join(', ')}`);
    if (problems.length > 0) throw new ConfigError(problems, 'IPAM settings');
    this.self = init.self;
    this.clock = components.clock;
    this.transport = components.transport;
    this.routes = components.routes;
    this.store = components.store;
    this.log = (components.log ?? silentLogger).child('ipam');
    this.writer = components.writer;
    this.verifier = components.verifier ?? new RingVerifier();
    this.ranges = spaces.map((s, index) => new RangeState(s, index, this.settings.quarantineMs));
    this.blocks = components.ownership;
    this.quorum = this.blocks === undefined && 'initPeers' in init.init ? new WaitingQuorum(waitingOf(this.writer, this.settings.clusterId, init.init.initPeers)) : undefined;
    this.commits = new GroupCommit(() => this.store.save(this.serialize()));
    this.announcer = new Announcer({ transport: this.transport, log: this.log, ranges: this.ranges, quorum: this.quorum, commits: this.commits, running: () => this.state === 'running' });
    this.guard = new Guard({
      self: this.self,
      writer: this.writer,
      log: this.log,
      counters: this.counters,
      clock: this.clock,
      transport: this.transport,
      ranges: this.ranges,
      settings: this.settings,
      announcer: this.announcer,
      context: () => this.context(),
      syncOwned: (range) => this.syncOwned(range),
      changed: () => {
        this.ownershipGeneration++;
        this.commits.mark();
      },
      logOnce: (key, level, msg, fields) => this.logOnce(key, level, msg, fields),
    });
    this.asker = new Asker({
      clock: this.clock,
      transport: this.transport,
      routes: this.routes,
      ranges: this.ranges,
      self: this.self,
      lowWater: this.settings.lowWater,
      askTimeoutMs: this.settings.askTimeoutMs,
      tickMs: this.settings.tickMs,
      counters: this.counters,
      usable: (range) => this.usable(range),
    });
    this.claimer =
      this.blocks === undefined
        ? undefined
        : new Claimer({
            clock: this.clock,
            ranges: this.ranges,
            ownership: this.blocks,
            log: this.log,
            counters: this.counters,
            lowWater: this.settings.lowWater,
            claimTimeoutMs: this.settings.askTimeoutMs,
            usable: (range) => this.usable(range),
            claimed: (range) => this.syncExternal(range),
          });
    this.allocations = new Allocations(
      { clock: this.clock, ranges: this.ranges, commits: this.commits, asker: this.claimer ?? this.asker, readiness: () => this.ready(), running: () => this.state === 'running' },
      { askTimeoutMs: this.settings.askTimeoutMs },
    );
    this.receiver = new Receiver({
      self: this.self,
      clusterId: this.settings.clusterId,
      ranges: this.ranges,
      writer: this.writer,
      verifier: this.verifier,
      quorum: this.quorum,
      counters: this.counters,
      log: this.log,
      transport: this.transport,
      announcer: this.announcer,
      guard: this.guard,
      asker: this.asker,
      running: () => this.state === 'running',
      context: () => this.context(),
      markChanged: (learned) => {
        this.commits.mark();
        if (learned) this.learned = true;
      },
      afterChange: (range, delta, decisions) => this.afterChange(range, delta, decisions),
      decide: () => this.decide(),
      donate: (from, range) => this.donate(from, range),
      logOnce: (key, level, msg, fields) => this.logOnce(key, level, msg, fields),
    });
  }

  // ─── lifecycle ────────────────────────────────────────────────────────────────────────────

  /** Loads the store (a corrupt or foreign file throws `IpamStateError`; nothing is reset). */
  async start(): Promise<void> {
    if (this.state !== 'new') return;
    this.state = 'starting';
    if (this.blocks !== undefined) return this.startExternal(this.blocks);
    const data = await this.store.load();
    if (data !== undefined) this.restore(parseState(data, this.store.location, { clusterId: this.settings.clusterId, self: this.self, ranges: this.ranges.map((r) => r.space.cidr) }));
    const init = this.settings.init;
    if ('seeds' in init) {
      if (!this.hasRing()) this.adoptGenesis(init.seeds);
      else if (this.ranges.some((r) => r.ring !== undefined && r.ring.genesis.seeds.join() !== [...init.seeds].sort().join()))
        this.log.warn('the persisted ring was seeded by other peers than the configured seeds; keeping the persisted ring', { persisted: this.ranges.find((r) => r.ring)?.ring?.genesis.seeds });
    }
    for (const r of this.ranges) this.syncOwned(r);
    this.state = 'running';
    this.timer = this.clock.setInterval(() => this.tick(), this.settings.tickMs);
    this.decide();
    if (this.hasRing()) this.commits.mark();
    try {
      await this.commits.flush();
    } catch (err) {
      this.timer.cancel();
      this.state = 'stopped';
      throw err;
    }
    const full = this.gossip();
    if (full !== undefined) this.announcer.emit(full);
    for (const r of this.ranges) this.afterChange(r);
  }

  /** Stops the timer, fails waiting allocations, and flushes the state. */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    this.timer?.cancel();
    this.timer = undefined;
    this.unsubscribe?.();
    this.asker.rejectAll(new IpamNotReadyError('IPAM is stopping'));
    this.claimer?.rejectAll(new IpamNotReadyError('IPAM is stopping'));
    await this.commits.flush();
  }

  /** Local ring changes as gossip deltas (a `GossipChannel` subscribes; without one they go to the transport). */
  onLocalUpdate(listener: (delta: Uint8Array) => void): () => void {
    return this.announcer.onLocalUpdate(listener);
  }

  // ─── API ──────────────────────────────────────────────────────────────────────────────────

  ready(): { ok: boolean; reason?: string } {
    if (this.state !== 'running') return { ok: false, reason: this.state === 'stopped' ? 'IPAM is stopped' : 'IPAM is starting' };
    if (this.blocks !== undefined) {
      const o = this.blocks.ready();
      if (!o.ok) return { ok: false, reason: o.reason ?? 'the block ownership is not ready' };
      if (!this.adopted) return { ok: false, reason: 'claiming the blocks of the allocations in the state file' };
      return { ok: true };
    }
    if (this.fenced()) {
      return {
        ok: false,
        reason:
          `this peer (${this.self}) was forgotten by the cluster (weft forget): its ranges were reclaimed and it may not allocate again ` +
          `under this identity (${this.allocations.size} allocation(s) here are conflicts); remove ${this.store.location} and the peer identity to rejoin as a new peer`,
      };
    }
    for (const r of this.ranges) {
      const ring = r.ring;
      if (ring === undefined) return { ok: false, reason: this.quorum?.reason() ?? ('join' in this.settings.init ? JOIN_WAITING : 'waiting for the ring') };
      if (ring.isTombstoned(this.self)) return { ok: false, reason: `this peer was forgotten in the ${ring.space.cidr} ring; answering with a revival` };
      const missing = ring.unconfirmedSeeds();
      if (missing.length > 0) return { ok: false, reason: `waiting for seed(s) ${missing.join(', ')} to adopt the ${ring.space.cidr} ring` };
    }
    return { ok: true };
  }

  /** `existing`: the attachment already had these addresses (a repeated request). See allocations.ts for `network`. */
  allocate(req: AllocateRequest): Promise<{ addresses: AllocatedAddress[]; existing?: true }> {
    return this.allocations.allocate(req);
  }

  /** `allocate` resolving before the state file is written; `durable` settles when it is (see Allocations.assign). */
  assign(req: AllocateRequest): Promise<{ addresses: AllocatedAddress[]; existing?: true; durable: Promise<void> }> {
    return this.allocations.assign(req);
  }

  /** Releases the attachment's addresses (every interface of the container without `ifName`); `cond`: see allocations.ts. */
  release(containerId: string, ifName?: string, cond?: ReleaseCondition): Promise<{ released: string[]; skipped?: SkippedRelease[] }> {
    return this.allocations.release(containerId, ifName, cond);
  }

  /** The CNI ADD of the attachment is done: its allocation stops being adding. False: no such allocation. */
  confirm(containerId: string, ifName: string): boolean {
    return this.allocations.confirm(containerId, ifName);
  }

  list(): ListedAllocation[] {
    return this.allocations.list();
  }

  /**
   * Why a new allocation cannot succeed now for want of addresses (undefined: it can, or it may
   * once a peer answers): some range has no free address here and no reachable peer holds space
   * in it, or the last round of asking got none.
   */
  exhausted(): string | undefined {
    if (this.state !== 'running') return undefined;
    const now = this.clock.now();
    if (this.blocks !== undefined) return this.exhaustedExternal(this.blocks, now);
    let reachable: Set<PeerName> | undefined;
    for (const r of this.ranges) {
      if (r.ring === undefined || r.allocator.hasFree(now)) continue;
      const c = r.allocator.counts(now);
      const here = `no free address in ${r.space.cidr} on this router (${c.allocated} allocated, ${c.quarantined} in quarantine)`;
      reachable ??= new Set(this.routes.reachable());
      const others = r.ring.ownersBySize().filter(([p]) => p !== this.self && reachable!.has(p));
      if (others.length === 0) return `${here} and no reachable peer holds space in it`;
      const a = r.asking;
      if (a.target === undefined && now < a.retryAt) return `${here} and the peers asked had none to give`;
    }
    return undefined;
  }

  /**
   * `weft forget peer`: a tombstone signed by us in every ring. We are the peer's heir: we take its
   * space over once it has been unreachable from here for `reclaimAfterMs` (it cancels the
   * tombstone if it is alive and reachable before that).
   */
  forget(peer: PeerName): void {
    if (typeof peer !== 'string' || !isPeerName(peer)) throw new IpamBadRequestError('peer', 'is not a peer name (16 hex digits)');
    if (peer === this.self) throw new IpamBadRequestError('peer', 'is this peer itself');
    if (this.blocks !== undefined) {
      this.reclaim(peer).catch((err: unknown) => this.log.warn('cannot reclaim the blocks of a forgotten peer', { peer, err: describeError(err) }));
      return;
    }
    if (this.state !== 'running' || this.ranges.some((r) => r.ring === undefined)) throw new IpamNotReadyError(this.ready().reason ?? 'no ring yet');
    for (const r of this.ranges) {
      const ring = r.ring!;
      const cur = ring.lifeOf(peer);
      if (cur !== undefined && cur.epoch >= MAX_VERSION) throw new IpamBadRequestError('peer', `cannot be forgotten again in ${ring.space.cidr} (epoch ${cur.epoch} is at the bound)`);
      const delta = ring.forget(peer, this.writer);
      if (delta === undefined) continue;
      this.log.info('peer forgotten: its space comes to us once it stays unreachable', { peer, range: r.space.cidr, afterMs: this.settings.reclaimAfterMs });
      this.announcer.commit([delta]);
      this.afterChange(r, delta);
    }
  }

  /** Whether ownership is external (Kubernetes mode: no ring, `reclaim` instead of a tombstone). */
  get external(): boolean {
    return this.blocks !== undefined;
  }

  /**
   * External ownership: takes over every block `peer` holds (a router that left the cluster,
   * its Node deleted, or `weft forget`); exactly one router gets each block. What is taken is
   * held for the reclaim hold before addresses of it are handed out.
   */
  async reclaim(peer: PeerName): Promise<ReclaimResult> {
    if (typeof peer !== 'string' || !isPeerName(peer)) throw new IpamBadRequestError('peer', 'is not a peer name (16 hex digits)');
    if (peer === this.self) throw new IpamBadRequestError('peer', 'is this peer itself');
    const own = this.blocks;
    if (own === undefined) throw new IpamBadRequestError('peer', 'cannot be reclaimed through the API server: ownership is the ring here (use forget)');
    if (this.state !== 'running') throw new IpamNotReadyError(this.ready().reason ?? 'not running');
    const r = await own.reclaim(peer);
    if (r.taken.length + r.lost.length + r.failed.length > 0) this.log.info('reclaimed the blocks of a peer that left', { peer, taken: r.taken, lost: r.lost, failed: r.failed });
    return r;
  }

  status(): IpamStatus {
    const now = this.clock.now();
    if (this.blocks !== undefined) return this.statusExternal(this.blocks, now);
    const init = this.settings.init;
    return {
      self: this.self,
      ready: this.ready(),
      fenced: this.fenced(),
      bootstrap:
        'seeds' in init
          ? { mode: 'seeds', seeds: [...init.seeds].sort() }
          : 'join' in init
            ? { mode: 'join' }
            : { mode: 'initPeers', initPeers: init.initPeers, waiting: (this.quorum?.list() ?? []).map((w) => ({ peer: w.name, initPeers: w.initPeers })) },
      spaces: this.ranges.map((r) => spaceStatus(r.space, r.ring, r.custody, r.allocator, now, this.asker.status(r))),
      allocations: this.allocations.size,
      ringConflicts: this.receiver.conflicts(),
      counters: { ...this.counters },
    };
  }

  /** What this peer owns per space, and what of it is held (tests, the simulation). */
  ownership(): { range: string; owned: Interval[]; held: readonly Held[] }[] {
    return this.ranges.map((r) => ({ range: r.space.cidr, owned: r.allocator.ownedRuns(), held: r.allocator.heldRuns() }));
  }

  /** The encoded ring of the range at `index` (tests, the simulation: equal bytes = converged). */
  ringBytes(index: number): Uint8Array | undefined {
    return this.ranges[index]?.ring?.encode();
  }

  /** Tokens of the range at `index` whose winning entry this peer has not confirmed (tests, the simulation). */
  unconfirmed(index: number): bigint[] {
    return this.ranges[index]?.custody?.pendingList().map(([t]) => t) ?? [];
  }

  // ─── Gossiper ─────────────────────────────────────────────────────────────────────────────

  gossip(): Uint8Array | undefined {
    if (this.state !== 'running') return undefined;
    return this.announcer.fullState();
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
    for (const r of this.ranges) {
      const ring = Ring.fromGenesis(this.settings.clusterId, r.space.cidr, seeds);
      ring.adopt(this.writer);
      r.adopt(ring, this.self);
      deltas.push(ring);
    }
    this.announcer.stale();
    if (this.state === 'running') this.announcer.commit(deltas);
  }

  private hasRing(): boolean {
    return this.ranges.some((r) => r.ring !== undefined);
  }

  private fenced(): boolean {
    return this.guard.fenced;
  }

  private forgottenHere(): boolean {
    return this.ranges.some((r) => r.ring !== undefined && r.ring.isTombstoned(this.self));
  }

  /** Whether a range may be allocated from, donated and reclaimed. */
  private usable(range: RangeState): boolean {
    if (this.blocks !== undefined) return this.state === 'running' && this.adopted && this.blocks.ready().ok;
    const ring = range.ring;
    return this.state === 'running' && ring !== undefined && ring.confirmed() && !this.fenced() && !this.forgottenHere();
  }

  /** What we own: our winning entries that custody confirms. */
  private syncOwned(range: RangeState): void {
    if (range.syncOwned(this.self, this.fenced())) this.ownershipGeneration++;
  }

  /**
   * After a range's ring changed (by `delta`, or wholly): ownership, our answer to a tombstone of
   * us, our defence, reclaims and give-backs as heir, waiters, asks.
   */
  private afterChange(range: RangeState, delta?: Ring, decisions?: readonly Decision[]): void {
    const ring = range.ring;
    const custody = range.custody;
    if (ring === undefined || custody === undefined) return;
    const alloc = range.allocator;
    const lives = delta?.lifeRecords() ?? [];
    let resync = delta === undefined || lives.length > 0 || delta.adopted().length > 0;
    if (delta !== undefined) {
      if (lives.length > 0) range.orphanCheck = true;
      for (const e of delta.entryList()) {
        if (e.owner === this.self || alloc.owns(e.token)) resync = true;
        if (ring.isTombstoned(e.owner)) range.orphanCheck = true;
      }
    }
    if (decisions !== undefined) for (const d of decisions) if (d.before !== null && d.before !== 'unknown' && d.before.owner === this.self) resync = true;
    if (custody.pendingCount() > 0 && !resync) resync = custody.pendingList().some(([t]) => ring.entryAt(t)?.owner === this.self);
    if (resync) this.syncOwned(range);
    if (this.state === 'running') {
      if (this.guard.answerTombstone(range)) {
        this.announcer.stale();
        range.orphanCheck = true;
      }
      this.guard.defend(range);
      if (alloc.heldRuns().length > 0 && (delta === undefined || lives.length > 0)) this.guard.giveBack(range);
      if (range.orphanCheck && this.usable(range)) range.orphanCheck = this.guard.reclaim(range);
    }
    this.asker.wake();
    this.asker.maybeAsk(range);
  }

  // ─── bootstrap (initPeers) ────────────────────────────────────────────────────────────────

  /** initPeers: adopts genesis once the quorum is exactly met and no ring was seen. */
  private decide(): void {
    const seeds = this.quorum?.decision();
    if (seeds === undefined || this.state !== 'running' || this.hasRing()) return;
    this.log.info('initial peers agreed: adopting the genesis ring', { seeds });
    this.adoptGenesis(seeds);
    for (const r of this.ranges) this.afterChange(r);
  }

  // ─── donations ────────────────────────────────────────────────────────────────────────────

  private donate(from: PeerName, range: RangeState): void {
    const ring = range.ring!;
    const cidr = range.space.cidr;
    const now = this.clock.now();
    // `from` is only vouched for hop by hop: give only to a live peer we can reach (one that did
    // not ask gets space it can use or give on; nothing goes to a name outside the mesh).
    const ok = this.usable(range) && from !== this.self && !ring.isTombstoned(from) && this.context().reachable(from);
    const run = ok ? range.allocator.donatable(now, this.asker.hasWaiters(range)) : undefined;
    if (run === undefined) {
      this.counters.asksRefused++;
      this.transport.unicast(IPAM_CHANNEL, from, encodeAsk('none', cidr));
      return;
    }
    let delta: Ring;
    try {
      delta = ring.assign(run[0], run[1], from, this.writer);
    } catch (err) {
      // The allocator's view lags the ring (a bug if it happens): refuse rather than give what is not ours.
      this.log.error('donation refused: allocator and ring disagree', { err: describeError(err), range: cidr });
      this.syncOwned(range);
      this.transport.unicast(IPAM_CHANNEL, from, encodeAsk('none', cidr));
      return;
    }
    const out = range.wrote(delta, this.self);
    this.syncOwned(range);
    this.counters.donationsGiven++;
    this.log.debug('donating space', { peer: from, range: cidr, size: (run[1] - run[0]).toString() });
    this.announcer.commit([out], () => this.transport.unicast(IPAM_CHANNEL, from, encodeGave(cidr, out)));
    this.afterChange(range, delta);
  }

  private tick(): void {
    const now = this.clock.now();
    if (this.claimer !== undefined) return this.tickExternal(this.claimer, now);
    this.guard.trackReachability(now, this.routes.reachable());
    for (const r of this.ranges) {
      if (r.allocator.expireHolds(now)) {
        this.ownershipGeneration++;
        this.commits.mark();
        this.learned = true;
      }
      const custody = r.custody;
      // Pending reclaims wait for their forgotten owner to be unreachable from here.
      if (custody !== undefined && custody.pendingCount() > 0 && custody.recheck(this.context()) > 0) {
        this.commits.mark();
        this.learned = true;
        this.afterChange(r);
      } else if (r.orphanCheck && this.usable(r)) r.orphanCheck = this.guard.reclaim(r);
      this.guard.askProofs(r, now);
    }
    this.asker.tick();
    if (this.learned) {
      this.learned = false;
      this.commits.flush().catch((err: unknown) => this.log.error('cannot persist IPAM state', { err: describeError(err) }));
    }
  }

  // ─── external ownership (Kubernetes mode) ─────────────────────────────────────────────────

  /** Loads the allocations of the store (a ring in it, from standalone mode, is dropped) and follows the ownership. */
  private async startExternal(own: BlockOwnership): Promise<void> {
    const data = await this.store.load();
    if (data !== undefined) {
      const s = parseState(data, this.store.location, { clusterId: this.settings.clusterId, self: this.self, ranges: this.ranges.map((r) => r.space.cidr) });
      const now = this.clock.now();
      if (s.rings.some((r) => r !== undefined)) this.log.info('the state file holds a ring of standalone mode: Kubernetes mode drops it and keeps the allocations', { file: this.store.location });
      for (const r of this.ranges) restoreAllocator(s, r.index, r.allocator, now);
      this.allocations.restore(s.allocations);
    }
    this.unsubscribe = own.onChange(() => this.ownershipChanged());
    for (const r of this.ranges) this.syncExternal(r);
    this.state = 'running';
    this.timer = this.clock.setInterval(() => this.tick(), this.settings.tickMs);
    this.commits.mark();
    try {
      await this.commits.flush();
    } catch (err) {
      this.timer.cancel();
      this.unsubscribe();
      this.state = 'stopped';
      throw err;
    }
    this.adoptStep();
  }

  /** The ownership changed (a block gained or lost, readiness): allocators, adoption, waiters. */
  private ownershipChanged(): void {
    if (this.state !== 'running') return;
    for (const r of this.ranges) this.syncExternal(r);
    this.adoptStep();
    this.claimer?.wake();
    for (const r of this.ranges) this.claimer?.maybeAsk(r);
  }

  /**
   * The allocator of `range` follows the blocks held: what was lost goes (allocations in it become
   * conflicts), what was gained is allocatable, except blocks just reclaimed, held first.
   */
  private syncExternal(range: RangeState): void {
    const blocks = this.blocks!.owned(range.index);
    const alloc = range.allocator;
    const before = IntervalSet.of(alloc.ownedRuns());
    const reclaimed = blocks.filter((b) => b.reclaimed && !before.covers(b.start, b.end)).map((b): Interval => [b.start, b.end]);
    if (reclaimed.length > 0 && this.settings.reclaimHoldMs > 0) alloc.hold(reclaimed, this.clock.now() + this.settings.reclaimHoldMs);
    if (alloc.sync(blocks.map((b): Interval => [b.start, b.end]))) {
      this.ownershipGeneration++;
      this.commits.mark();
      this.learned = true;
    }
  }

  /** Once the holders are known: claims the blocks of the state file's allocations, once. */
  private adoptStep(): void {
    if (this.adopted || this.adopting || this.state !== 'running' || !this.blocks!.ready().ok) return;
    this.adopting = true;
    this.adoptExisting(this.blocks!)
      .then((done) => {
        this.adopting = false;
        if (!done) return;
        this.adopted = true;
        this.ownershipChanged();
      })
      .catch((err: unknown) => {
        this.adopting = false;
        this.log.warn('cannot claim the blocks of the allocations in the state file yet', { err: describeError(err) });
      });
  }

  /**
   * Claims the block of every allocation not in a block held here. One held by another router is
   * a conflict (logged, listed by status, kept until released). False: the API server could not
   * be reached for some; the next tick tries again.
   */
  private async adoptExisting(own: BlockOwnership): Promise<boolean> {
    for (const r of this.ranges) {
      const taken = new Map<string, number>();
      for (const off of r.allocator.conflicts()) {
        if (r.allocator.owns(off)) continue;
        const holder = own.holderOf(r.index, off);
        if (holder !== undefined && holder !== this.self) {
          taken.set(holder, (taken.get(holder) ?? 0) + 1);
          continue;
        }
        const res = await own.claim(r.index, off);
        if (this.state !== 'running') return false;
        if (res.ok) {
          this.syncExternal(r);
          continue;
        }
        if (res.kind === 'unavailable') {
          this.logOnce(`adopt-unavailable:${res.reason}`, 'warn', 'cannot claim the block of an allocation in the state file yet', { range: r.space.cidr, reason: res.reason });
          return false;
        }
        const h = res.holder ?? 'unknown';
        taken.set(h, (taken.get(h) ?? 0) + 1);
      }
      for (const [holder, n] of taken) {
        this.log.warn('allocations of the state file lie in blocks another router holds: they are conflicts, kept until released, and nothing more is handed out there', { range: r.space.cidr, holder, addresses: n });
      }
    }
    return true;
  }

  private tickExternal(claimer: Claimer, now: number): void {
    for (const r of this.ranges) {
      if (r.allocator.expireHolds(now)) {
        this.ownershipGeneration++;
        this.commits.mark();
        this.learned = true;
      }
    }
    this.adoptStep();
    claimer.tick();
    if (this.learned) {
      this.learned = false;
      this.commits.flush().catch((err: unknown) => this.log.error('cannot persist IPAM state', { err: describeError(err) }));
    }
  }

  private exhaustedExternal(own: BlockOwnership, now: number): string | undefined {
    for (const r of this.ranges) {
      if (r.allocator.hasFree(now)) continue;
      const c = r.allocator.counts(now);
      const here = `no free address in ${r.space.cidr} on this router (${c.allocated} allocated, ${c.quarantined} in quarantine, ${c.held} held after a reclaim)`;
      const none = own.exhausted(r.index);
      if (none !== undefined) return `${here} and ${none}`;
      const failed = this.claimer!.lastFailure(r);
      if (failed !== undefined) return `${here} and no block can be claimed: ${failed}`;
    }
    return undefined;
  }

  private statusExternal(own: BlockOwnership, now: number): IpamStatus {
    return {
      self: this.self,
      ready: this.ready(),
      fenced: false,
      bootstrap: { mode: 'kubernetes' },
      spaces: this.ranges.map((r) => {
        const base = spaceStatus(r.space, undefined, undefined, r.allocator, now, this.claimer!.status(r));
        const blocks = own.spaceStatus(r.index);
        // Allocations here in blocks another router holds (the state file's, or a block taken away).
        const seen = new Set(blocks.conflicts.map((c) => c.block));
        const conflicts = [...blocks.conflicts];
        for (const off of r.allocator.conflicts()) {
          const holder = own.holderOf(r.index, off) ?? 'nobody';
          const size = 1n << BigInt((r.space.family === 4 ? 32 : 128) - blocks.blockPrefix);
          const start = off - (off % size);
          const block = formatRange(r.space, start, start + size);
          if (seen.has(block)) continue;
          seen.add(block);
          conflicts.push({ block, holder });
        }
        return { ...base, blocks: { ...blocks, conflicts } };
      }),
      allocations: this.allocations.size,
      ringConflicts: { count: 0 },
      counters: { ...this.counters },
      blocks: own.status(),
    };
  }

  // ─── persistence ──────────────────────────────────────────────────────────────────────────

  private serialize(): Uint8Array {
    return snapshotState({
      clusterId: this.settings.clusterId,
      self: this.self,
      ranges: this.ranges.map((r) => r.snapshot()),
      fenced: this.guard.fenced,
      allocations: this.allocations.snapshot(),
      clock: this.clock,
    });
  }

  private restore(s: PersistedState): void {
    const now = this.clock.now();
    for (const r of this.ranges) r.restore(s, now);
    this.guard.fenced = s.fenced;
    this.allocations.restore(s.allocations);
  }
}
