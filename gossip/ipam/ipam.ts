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
 * Reclaim: `forget(peer)` tombstones it; the heir of its entries (ring.ts) takes them over, and
 * holds them for `reclaimHoldMs` before allocating from them, the window in which a racing view
 * converges. A peer that finds itself tombstoned is fenced: not ready, never allocates again.
 */
import type { Clock, TimerHandle } from '../../src/core/clock.js';
import { ConfigError, describeError } from '../../src/core/errors.js';
import { isPeerName } from '../../src/core/ids.js';
import { silentLogger, type Logger } from '../../src/core/logger.js';
import type { Gossiper, GossipTransport, PeerName, RouteTable } from '../contracts.js';
import { GossipDecodeError } from '../errors.js';
import { SpaceAllocator, type Held } from './allocator.js';
import { Asker } from './asker.js';
import { WaitingQuorum } from './bootstrap.js';
import { allocationKey, checkContainerId, checkIfName, ipamDefaults, ipamProblems, type IpamInit, type IpamSettings } from './config.js';
import { IpamBadRequestError, IpamNotReadyError, IpamRingConflictError } from './errors.js';
import { GroupCommit } from './group-commit.js';
import type { Interval } from './intervals.js';
import { Ring } from './ring.js';
import { IPAM_CHANNEL, decodeRing, type RingParts } from './ring-codec.js';
import { SeenGossip } from './seen-gossip.js';
import { offsetToAddress, type AddressSpace } from './space.js';
import { parseState, restoreAllocators, snapshotState, type IpamStore, type PersistedState } from './state-file.js';
import { spaceStatus, type IpamCounters, type IpamStatus } from './status.js';
import { decodeMessage, encodeAsk, encodeGave, encodeGossip } from './wire.js';

export interface IpamComponents {
  clock: Clock;
  transport: GossipTransport;
  routes: RouteTable;
  store: IpamStore;
  log?: Logger;
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
  private readonly rings: (Ring | undefined)[];
  private readonly allocs: SpaceAllocator[];
  private readonly records = new Map<string, Allocation>();
  private readonly quorum: WaitingQuorum | undefined;
  private readonly asker: Asker;
  private readonly orphanCheck: boolean[];
  private readonly commits: GroupCommit;
  private readonly localListeners = new Set<(delta: Uint8Array) => void>();
  private readonly seenGossip = new SeenGossip();
  private full: Uint8Array | undefined = undefined;
  /** Changes learned from gossip (or holds ending) not written yet. */
  private learned = false;
  private timer: TimerHandle | undefined = undefined;
  private state: 'new' | 'starting' | 'running' | 'stopped' = 'new';
  private ringConflicts = { count: 0, last: undefined as string | undefined };
  readonly counters: IpamCounters = { donationsGiven: 0, donationsReceived: 0, asksSent: 0, asksRefused: 0, materialized: 0, exhausted: 0, decodeErrors: 0 };
  /** Bumped whenever what this peer owns (or holds) changes; the simulation checks on change. */
  ownershipGeneration = 0;

  constructor(components: IpamComponents, init: IpamInit) {
    this.o = ipamDefaults(init);
    const { problems, spaces } = ipamProblems(this.o);
    if (problems.length > 0) throw new ConfigError(problems, 'IPAM settings');
    this.self = init.self;
    this.spaces = spaces;
    this.clock = components.clock;
    this.transport = components.transport;
    this.routes = components.routes;
    this.store = components.store;
    this.log = (components.log ?? silentLogger).child('ipam');
    this.rings = spaces.map(() => undefined);
    this.allocs = spaces.map((s) => new SpaceAllocator(s, this.o.quarantineMs));
    this.orphanCheck = spaces.map(() => true);
    this.quorum = 'initPeers' in init.init ? new WaitingQuorum(init.self, init.init.initPeers) : undefined;
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

  /** `weft forget peer`: tombstones it in every ring; its heir reclaims its space. */
  forget(peer: PeerName): void {
    if (typeof peer !== 'string' || !isPeerName(peer)) throw new IpamBadRequestError('peer', 'is not a peer name (16 hex digits)');
    if (peer === this.self) throw new IpamBadRequestError('peer', 'is this peer itself');
    if (this.state !== 'running' || this.rings.some((r) => r === undefined)) throw new IpamNotReadyError(this.ready().reason ?? 'no ring yet');
    for (let si = 0; si < this.spaces.length; si++) {
      const delta = this.rings[si]!.forget(peer);
      if (delta === undefined) continue;
      this.log.info('peer forgotten: its space goes to its heir', { peer, range: this.spaces[si]!.cidr });
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
      spaces: this.spaces.map((s, si) => spaceStatus(s, this.rings[si], this.allocs[si]!, now, this.asker.status(si))),
      allocations: this.records.size,
      ringConflicts: { ...this.ringConflicts },
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

  // ─── Gossiper ─────────────────────────────────────────────────────────────────────────────

  gossip(): Uint8Array | undefined {
    if (this.state !== 'running') return undefined;
    if (this.full !== undefined) return this.full;
    const rings = this.rings.filter((r) => r !== undefined).map((r) => r.encode());
    const waiting = rings.length > 0 ? [] : (this.quorum?.list() ?? []);
    if (rings.length === 0 && waiting.length === 0) return undefined;
    this.full = encodeGossip(rings, waiting);
    return this.full;
  }

  onGossip(data: Uint8Array): Uint8Array | undefined {
    if (this.state !== 'running') return undefined;
    if (this.full !== undefined && Buffer.from(data.buffer, data.byteOffset, data.byteLength).equals(this.full)) return undefined;
    const key = this.seenGossip.keyOf(data);
    if (key !== undefined && this.seenGossip.has(key)) return undefined;
    const conflicts = this.ringConflicts.count;
    const msg = this.decode(data);
    if (msg.kind !== 'gossip') this.fail(`${msg.kind} sent as gossip`);
    // Validate everything before changing anything.
    const parts: (RingParts | undefined)[] = msg.rings.map((b, i) => (this.rings.some((r) => r?.encodesAs(b)) ? undefined : this.decodeRingOrFail(b, `ring ${i}`)));
    const seen = new Set<string>();
    for (const p of parts) if (p !== undefined && seen.has(p.genesis.space)) this.fail('two rings of the same space');
    else if (p !== undefined) seen.add(p.genesis.space);
    const deltas: Uint8Array[] = [];
    for (const p of parts) {
      const d = p === undefined ? undefined : this.applyRing(p);
      if (d !== undefined) deltas.push(d.encode());
    }
    const newWaiting = this.quorum !== undefined && this.rings.every((r) => r === undefined) ? this.quorum.merge(msg.waiting) : [];
    if (newWaiting.length > 0) {
      this.full = undefined;
      this.decide();
    }
    // Every ring of it is merged (none refused) and it says nothing of waiting peers: again, it is a no-op.
    if (key !== undefined && msg.waiting.length === 0 && this.ringConflicts.count === conflicts) this.seenGossip.add(key);
    if (deltas.length === 0 && newWaiting.length === 0) return undefined;
    return encodeGossip(deltas, newWaiting);
  }

  onUnicast(from: PeerName, data: Uint8Array): void {
    if (this.state !== 'running') return;
    const msg = this.decode(data);
    if (msg.kind === 'gossip') {
      const delta = this.onGossip(data);
      if (delta !== undefined) this.emit(delta);
      return;
    }
    const si = this.spaces.findIndex((s) => s.cidr === msg.space);
    if (si < 0) {
      this.log.debug('ipam message for a range not configured here', { peer: from, range: msg.space });
      if (msg.kind === 'ask') this.transport.unicast(IPAM_CHANNEL, from, encodeAsk('none', msg.space));
      return;
    }
    if (msg.kind === 'ask') return this.donate(from, si);
    if (msg.kind === 'gave') {
      const parts = this.decodeRingOrFail(msg.ring, 'gave ring');
      const d = this.applyRing(parts);
      if (d !== undefined) this.emit(encodeGossip([d.encode()], []));
      this.counters.donationsReceived++;
    }
    this.asker.answered(si, from);
  }

  onBroadcast(_source: PeerName, data: Uint8Array): Uint8Array | undefined {
    this.onGossip(data);
    return data;
  }

  // ─── rings ────────────────────────────────────────────────────────────────────────────────

  private decode(data: Uint8Array): ReturnType<typeof decodeMessage> {
    try {
      return decodeMessage(data);
    } catch (err) {
      if (err instanceof GossipDecodeError) this.counters.decodeErrors++;
      throw err;
    }
  }

  private decodeRingOrFail(b: Uint8Array, what: string): RingParts {
    try {
      return decodeRing(b, what, this.spaces);
    } catch (err) {
      if (err instanceof GossipDecodeError) this.counters.decodeErrors++;
      throw err;
    }
  }

  private fail(reason: string): never {
    this.counters.decodeErrors++;
    throw new GossipDecodeError(IPAM_CHANNEL, reason);
  }

  /** Merges (or adopts) a received ring; returns what changed here, to pass on. */
  private applyRing(p: RingParts): Ring | undefined {
    const si = this.spaces.findIndex((s) => s.cidr === p.genesis.space);
    const incoming = Ring.fromParts(p.genesis, p.entries, p.tombstones, p.adopted, this.spaces[si]);
    const cur = si < 0 ? undefined : this.rings[si];
    if (si < 0 || p.genesis.clusterId !== this.o.clusterId) {
      this.conflict(new IpamRingConflictError(p.genesis.space, cur?.genesis.seeds ?? [], p.genesis.seeds, ` (cluster ${JSON.stringify(p.genesis.clusterId)}, ranges here: ${this.spaces.map((s) => s.cidr).join(', ')}, cluster here: ${JSON.stringify(this.o.clusterId)})`));
      return undefined;
    }
    if (cur === undefined) {
      const ring = Ring.fromGenesis(p.genesis.clusterId, p.genesis.space, p.genesis.seeds);
      ring.merge(incoming);
      this.rings[si] = ring;
      this.log.info('adopted the ring of the cluster', { range: ring.space.cidr, seeds: ring.genesis.seeds });
      const mine = ring.adopt(this.self);
      this.full = undefined;
      this.commits.mark();
      if (mine !== undefined) this.commit([mine]);
      this.afterChange(si);
      return incoming;
    }
    let delta: Ring | undefined;
    try {
      delta = cur.merge(incoming);
    } catch (err) {
      if (err instanceof IpamRingConflictError) {
        this.conflict(err);
        return undefined;
      }
      throw err;
    }
    if (delta === undefined) return undefined;
    // Learned, not decided here: written with the next local change or on the next tick.
    this.full = undefined;
    this.commits.mark();
    this.learned = true;
    this.afterChange(si, delta);
    return delta;
  }

  private conflict(err: IpamRingConflictError): void {
    this.ringConflicts.count++;
    if (this.ringConflicts.last !== err.message) this.log.error('IPAM ring conflict', { err: err.message });
    this.ringConflicts.last = err.message;
  }

  /** Genesis rings from the seeds (a seed adopts them); persisted before they are gossiped. */
  private adoptGenesis(seeds: readonly PeerName[]): void {
    const deltas: Ring[] = [];
    for (let si = 0; si < this.spaces.length; si++) {
      const ring = Ring.fromGenesis(this.o.clusterId, this.spaces[si]!.cidr, seeds);
      ring.adopt(this.self);
      this.rings[si] = ring;
      deltas.push(ring);
    }
    this.full = undefined;
    if (this.state === 'running') this.commit(deltas);
  }

  private fenced(): boolean {
    return this.rings.some((r) => r !== undefined && r.isTombstoned(this.self));
  }

  /** Whether space si may be allocated from, donated and reclaimed. */
  private usable(si: number): boolean {
    const r = this.rings[si];
    return this.state === 'running' && r !== undefined && r.confirmed() && !this.fenced();
  }

  private syncOwned(si: number): void {
    const ring = this.rings[si];
    const owned = ring !== undefined && ring.confirmed() ? ring.ownedBy(this.self) : [];
    if (this.allocs[si]!.sync(owned)) this.ownershipGeneration++;
  }

  /** After ring si changed (by `delta`, or wholly): ownership, reclaim, waiters, asks. */
  private afterChange(si: number, delta?: Ring): void {
    const ring = this.rings[si];
    if (ring === undefined) return;
    const alloc = this.allocs[si]!;
    let resync = delta === undefined || delta.tombstones().length > 0 || delta.adopted().length > 0;
    if (delta !== undefined) {
      if (delta.tombstones().length > 0) this.orphanCheck[si] = true;
      for (const e of delta.entryList()) {
        if (e.owner === this.self || alloc.owns(e.token)) resync = true;
        if (ring.isTombstoned(e.owner)) this.orphanCheck[si] = true;
      }
    }
    if (resync) this.syncOwned(si);
    if (this.orphanCheck[si] && this.usable(si)) {
      const m = ring.materialize(this.self);
      if (m !== undefined) {
        this.counters.materialized += m.taken.length;
        this.log.info('reclaimed the space of forgotten peers', { range: ring.space.cidr, runs: m.taken.length, holdMs: this.o.reclaimHoldMs });
        this.allocs[si]!.hold(m.taken, this.clock.now() + this.o.reclaimHoldMs);
        this.syncOwned(si);
        this.ownershipGeneration++;
        this.commit([m.delta]);
      }
      this.orphanCheck[si] = ring.orphans() > 0;
    }
    this.asker.wake();
    this.asker.maybeAsk(si);
  }

  /** Persists, then gossips our own ring deltas. */
  private commit(deltas: readonly Ring[], after?: () => void): void {
    this.full = undefined;
    this.commits.mark();
    this.commits.flush().then(
      () => {
        if (this.state !== 'running') return;
        after?.();
        this.emit(encodeGossip(deltas.map((d) => d.encode()), []));
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
    const run = this.usable(si) && from !== this.self && !ring.isTombstoned(from) ? alloc.donatable(now, this.asker.hasWaiters(si)) : undefined;
    if (run === undefined) {
      this.counters.asksRefused++;
      this.transport.unicast(IPAM_CHANNEL, from, encodeAsk('none', range));
      return;
    }
    let delta: Ring;
    try {
      delta = ring.assign(run[0], run[1], from, this.self);
    } catch (err) {
      // The allocator's view lags the ring (a bug if it happens): refuse rather than give what is not ours.
      this.log.error('donation refused: allocator and ring disagree', { err: describeError(err), range });
      this.syncOwned(si);
      this.transport.unicast(IPAM_CHANNEL, from, encodeAsk('none', range));
      return;
    }
    this.syncOwned(si);
    this.counters.donationsGiven++;
    this.log.debug('donating space', { peer: from, range, size: (run[1] - run[0]).toString() });
    this.commit([delta], () => this.transport.unicast(IPAM_CHANNEL, from, encodeGave(range, delta.encode())));
    this.afterChange(si, delta);
  }

  private tick(): void {
    const now = this.clock.now();
    for (let si = 0; si < this.spaces.length; si++) {
      if (this.allocs[si]!.expireHolds(now)) {
        this.ownershipGeneration++;
        this.commits.mark();
        this.learned = true;
      }
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
    return snapshotState({ clusterId: this.o.clusterId, self: this.self, spaces: this.spaces, rings, allocations: [...this.records.values()], allocs: this.allocs, clock: this.clock });
  }

  private restore(s: PersistedState): void {
    s.rings.forEach((p, si) => {
      if (p !== undefined) this.rings[si] = Ring.fromParts(p.genesis, p.entries, p.tombstones, p.adopted);
    });
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
