/**
 * IPAM simulation suite: N peers (1,000 by default), each a real `Ipam` behind a real
 * `GossipChannel` from its own `ChannelRegistry` (as on the mesh), over an in-memory network: no sockets, one simulated clock, a seeded PRNG (a
 * seed always gives the same run), state in `MemoryIpamStore`s so restarts reload what was
 * persisted.
 *
 * The network delivers in rounds (each `latencyMs`): a round delivers what the previous one sent,
 * losing, duplicating and reordering messages at the configured rates. Gossip goes over links
 * (a random graph: each peer links to `connectTo` others); unicast (ask/gave/none) reaches any
 * peer of the same connected component. Peers learn who is reachable from the components.
 *
 * Phases: join (seeded genesis, peers join gradually and get space donated); churn (allocations
 * and releases with loss, duplication, reordering and crash-restarts from persisted state);
 * partition (two halves, operations go on, then heal); forget (some peers die and are forgotten:
 * their space passes to heirs). After each phase the network settles (loss off) and the rounds
 * until every component holds byte-equal rings are reported.
 *
 * Invariants, after every round: no address is held by two live allocations in the cluster
 * (acknowledged allocations, tracked as they resolve, and on restart the reloaded list), and no
 * offset is allocatable by two live peers (each peer's own view of what it owns minus its holds;
 * only peers whose ownership changed in the round are re-checked, see ipam-sim-checks.ts).
 * At the end of each phase: the ownership check from scratch, every peer's allocations lie inside
 * what it owns, and nothing is left owned by a forgotten peer.
 *
 *   node dist/sim/ipam-sim.js [--peers 1000] [--operations 100000] [--seed 1]
 */
import { createHash } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { GossipTransport, PeerName, RouteTable } from '../src/mesh/contracts.js';
import { ChannelRegistry } from '../src/mesh/channel-registry.js';
import type { GossipChannel } from '../src/mesh/gossip-channel.js';
import { keyPairFromSecret } from '../src/mesh/identity.js';
import { IPAM_CHANNEL, Ipam, MemoryIpamStore, zeroCounters, type IpamBootstrap, type IpamCounters } from '../src/ipam/index.js';
import { RingVerifier, type RingWriter } from '../src/ipam/ring-signing.js';
import { Signer } from '../src/mesh/signing.js';
import { peerNameFromPublicKey } from '../src/core/ids.js';
import { HeapClock, Prng, repairLinks, type SteppableClock } from './kit.js';
import { OwnershipCheck, ownershipProblems, ringsEqual, settledProblems } from './ipam-sim-checks.js';

export interface IpamSimOptions {
  seed: number;
  clock?: SteppableClock;
  ranges?: string[];
  /** How many of the first peers are seeds. Default 3. */
  seeds?: number;
  /** Bootstrap of every peer instead of `seeds` (e.g. `{ initPeers: 3 }`); per peer when a function. */
  init?: IpamBootstrap | ((index: number) => IpamBootstrap);
  reclaimHoldMs?: number;
  /** How long a forgotten peer stays unreachable before its heir takes its space. Default 1 s. */
  reclaimAfterMs?: number;
  clusterId?: string;
  connectTo?: number;
  latencyMs?: number;
  gossipIntervalMs?: number;
  quarantineMs?: number;
  askTimeoutMs?: number;
  /** Fractions of messages lost / duplicated; `reorder` shuffles each round's deliveries. */
  loss?: number;
  duplicate?: number;
  reorder?: boolean;
}

export interface SimNode {
  readonly index: number;
  readonly name: PeerName;
  alive: boolean;
  /** False once forgotten (it never comes back). */
  member: boolean;
  links: Set<SimNode>;
  store: MemoryIpamStore;
  ipam: Ipam;
  channel: GossipChannel;
  /** Acknowledged allocations: "containerId/ifName" → addresses. */
  readonly acked: Map<string, string[]>;
}

interface Msg {
  from: SimNode;
  to: SimNode;
  data: Uint8Array;
  unicast: boolean;
  /** The receiving instance (a restart makes messages to the old one vanish). */
  ipam: Ipam;
}

export class IpamSim {
  readonly clock: SteppableClock;
  readonly rng: Prng;
  readonly nodes: SimNode[] = [];
  readonly problems: string[] = [];
  readonly options: Required<Omit<IpamSimOptions, 'clock' | 'init' | 'reclaimHoldMs'>> & Pick<IpamSimOptions, 'init' | 'reclaimHoldMs'>;
  /** One signature cache for every peer (each would verify the same records otherwise). */
  readonly verifier = new RingVerifier();
  /** Every acknowledged live allocation: address → "node/container". */
  readonly inUse = new Map<string, string>();
  counts = { messages: 0, bytes: 0, lost: 0, duplicated: 0, rounds: 0, allocated: 0, released: 0, exhausted: 0, notReady: 0, crashedInFlight: 0, restarts: 0 };
  lossOn = true;
  /** Donations made by instances that crashed (their counters went with them). */
  retiredDonations = 0;
  /** The counters of instances that crashed, summed. */
  readonly retired: IpamCounters = zeroCounters();
  private queue: Msg[] = [];
  private readonly byName = new Map<PeerName, SimNode>();
  /** Live nodes in index order (undefined: to recompute, after a node died or came back). */
  private liveNodes: SimNode[] | undefined = undefined;
  private comp = new Map<SimNode, SimNode[]>();
  /** Per node, the names of the others in its component (cleared with `comp`). */
  private reach = new Map<SimNode, PeerName[]>();
  private compDirty = true;
  private readonly ownership: OwnershipCheck;
  private differed: SimNode | undefined = undefined;
  private seq = 0;

  constructor(o: IpamSimOptions) {
    this.options = {
      ranges: ['10.32.0.0/12', 'fd00:77::/64'],
      seeds: 3,
      connectTo: 3,
      latencyMs: 10,
      gossipIntervalMs: 10_000,
      quarantineMs: 30_000,
      reclaimAfterMs: 1000,
      askTimeoutMs: 3000,
      loss: 0,
      duplicate: 0,
      reorder: false,
      clusterId: 'sim',
      ...o,
    };
    this.clock = o.clock ?? new HeapClock();
    this.rng = new Prng(o.seed);
    this.ownership = new OwnershipCheck(this.options.ranges);
  }

  /** Live nodes in index order (do not modify; a new array after a node dies or comes back). */
  live(): readonly SimNode[] {
    this.liveNodes ??= this.nodes.filter((n) => n.alive);
    return this.liveNodes;
  }

  /** A new peer, started and linked to `connectTo` random live peers (or to `linkTo`). */
  async join(linkTo?: readonly SimNode[]): Promise<SimNode> {
    const index = this.nodes.length;
    const name = simPeerName(index);
    const node = { index, name, alive: true, member: true, links: new Set<SimNode>(), store: new MemoryIpamStore(), acked: new Map() } as unknown as SimNode;
    this.nodes.push(node);
    this.byName.set(name, node);
    this.liveNodes = undefined;
    const others = this.live().filter((n) => n !== node);
    await this.boot(node);
    this.link((linkTo ?? this.rng.sample(others, this.options.connectTo)).map((q) => [node, q] as const));
    return node;
  }

  private async boot(node: SimNode): Promise<void> {
    const link: GossipTransport = {
      gossipToNeighbours: (_ch, data, except) => {
        for (const q of node.links) if (q.name !== except) this.send(node, q, data, false);
      },
      unicast: (_ch, to, data) => {
        const q = this.byName.get(to);
        if (q === undefined || !q.alive || this.components(q) !== this.components(node)) return false;
        this.send(node, q, data, true);
        return true;
      },
      broadcast: () => undefined,
    };
    const routes: RouteTable = {
      nextHop: () => undefined,
      broadcastNext: () => [],
      reachable: () => this.reachable(node),
      distance: () => undefined,
      onChange: () => () => undefined,
    };
    const i = this.options.init;
    const init = i === undefined ? { seeds: Array.from({ length: this.options.seeds }, (_, k) => simPeerName(k)) } : typeof i === 'function' ? i(node.index) : i;
    // The IPAM sends through its channel (counted there), as on the mesh.
    const channels = new ChannelRegistry({ link, clock: this.clock, random: () => this.rng.next() });
    node.ipam = new Ipam(
      { clock: this.clock, transport: channels, routes, store: node.store, writer: simWriter(node.index), verifier: this.verifier },
      {
        self: node.name,
        ranges: this.options.ranges,
        init,
        clusterId: this.options.clusterId,
        quarantineMs: this.options.quarantineMs,
        reclaimAfterMs: this.options.reclaimAfterMs,
        askTimeoutMs: this.options.askTimeoutMs,
        ...(this.options.reclaimHoldMs !== undefined ? { reclaimHoldMs: this.options.reclaimHoldMs } : {}),
      },
    );
    node.channel = channels.newChannel(IPAM_CHANNEL, node.ipam, { intervalMs: this.options.gossipIntervalMs });
    node.channel.start();
    await node.ipam.start();
  }

  link(pairs: readonly (readonly [SimNode, SimNode])[]): void {
    for (const [a, b] of pairs) {
      if (a === b || !a.alive || !b.alive || a.links.has(b)) continue;
      a.links.add(b);
      b.links.add(a);
      this.compDirty = true;
      for (const [x, y] of [[a, b], [b, a]] as const) {
        const full = x.channel.neighbourConnected(y.name);
        if (full !== undefined) this.send(x, y, full, false);
      }
    }
  }

  unlink(pairs: readonly (readonly [SimNode, SimNode])[]): void {
    for (const [a, b] of pairs) {
      a.links.delete(b);
      b.links.delete(a);
    }
    this.compDirty = true;
  }

  /** Crash: nothing more is written; in-flight allocations never resolve for the caller. */
  async crash(node: SimNode): Promise<void> {
    node.alive = false;
    this.liveNodes = undefined;
    this.retiredDonations += node.ipam.counters.donationsGiven;
    addCounters(this.retired, node.ipam.counters);
    node.store.failWrites = true;
    node.channel.stop();
    await node.ipam.stop().catch(() => undefined);
    for (const q of node.links) q.links.delete(node);
    this.compDirty = true;
  }

  /** Restart from the persisted state; every acknowledged allocation must still be there. */
  async restart(node: SimNode): Promise<void> {
    const links = [...node.links].filter((q) => q.alive);
    node.links = new Set();
    node.store = new MemoryIpamStore(node.store.data);
    node.alive = true;
    this.liveNodes = undefined;
    this.counts.restarts++;
    await this.boot(node);
    const listed = new Map(node.ipam.list().map((a) => [`${a.containerId}/${a.ifName}`, a.addresses]));
    for (const [key, addrs] of node.acked) if (listed.get(key)?.join() !== addrs.join()) this.problem(`${node.name} lost allocation ${key} (${addrs.join()}) over a restart`);
    // Allocations persisted but never acknowledged: the runtime retries them (idempotent) and keeps them.
    for (const [key, addrs] of listed) if (!node.acked.has(key)) this.acknowledge(node, key, addrs);
    this.link(links.map((q) => [node, q] as const));
  }

  /** The peer dies for good; its containers are gone. */
  async kill(node: SimNode): Promise<void> {
    await this.crash(node);
    for (const addrs of node.acked.values()) for (const a of addrs) this.inUse.delete(a);
    node.acked.clear();
  }

  /** Allocates for a new container; resolves with its addresses (undefined when it failed). */
  allocate(node: SimNode): Promise<string[] | undefined> {
    const cid = `c${++this.seq}`;
    const ipam = node.ipam;
    return ipam.allocate({ containerId: cid, ifName: 'eth0' }).then(
      (r) => {
        const addrs = r.addresses.map((a) => a.address);
        if (node.ipam === ipam && node.alive) this.acknowledge(node, `${cid}/eth0`, addrs);
        return addrs;
      },
      (err: unknown) => {
        const code = (err as { code?: string }).code;
        if (code === 'ERR_IPAM_EXHAUSTED') this.counts.exhausted++;
        else if (code === 'ERR_IPAM_NOT_READY') this.counts.notReady++;
        // The node crashed with the request in flight: never acknowledged, as in a real crash.
        else if (code === 'ERR_IPAM_STATE' && (!node.alive || node.ipam !== ipam)) this.counts.crashedInFlight++;
        else this.problem(`allocate on ${node.name} failed: ${String(err)}`);
        return undefined;
      },
    );
  }

  /** Records an acknowledged allocation; flags an address another live allocation holds. */
  acknowledge(node: SimNode, key: string, addrs: string[]): void {
    this.counts.allocated++;
    node.acked.set(key, addrs);
    for (const a of addrs) {
      const holder = this.inUse.get(a);
      if (holder !== undefined && holder !== `${node.name}/${key}`) this.problem(`${a} allocated twice: ${holder} and ${node.name}/${key}`);
      this.inUse.set(a, `${node.name}/${key}`);
    }
  }

  /** Forgets acknowledged allocations of a container (it was released). */
  forgetContainer(node: SimNode, cid: string): void {
    for (const [key, addrs] of [...node.acked])
      if (key.startsWith(`${cid}/`)) {
        for (const a of addrs) this.inUse.delete(a);
        node.acked.delete(key);
      }
  }

  release(node: SimNode): void {
    const keys = [...node.acked.keys()];
    if (keys.length === 0) return;
    const cid = this.rng.pick(keys).split('/')[0]!;
    this.forgetContainer(node, cid);
    this.counts.released++;
    const ipam = node.ipam;
    ipam.release(cid).catch((err: unknown) => {
      // Crashed with the release in flight: it did not happen (the allocation stays in the file).
      if ((err as { code?: string }).code === 'ERR_IPAM_STATE' && (!node.alive || node.ipam !== ipam)) this.counts.crashedInFlight++;
      else this.problem(`release on ${node.name} failed: ${String(err)}`);
    });
  }

  private send(from: SimNode, to: SimNode, data: Uint8Array, unicast: boolean): void {
    if (this.lossOn && this.options.loss > 0 && this.rng.next() < this.options.loss) {
      this.counts.lost++;
      return;
    }
    this.queue.push({ from, to, data, unicast, ipam: to.ipam });
    if (this.lossOn && this.options.duplicate > 0 && this.rng.next() < this.options.duplicate) {
      this.counts.duplicated++;
      this.queue.push({ from, to, data, unicast, ipam: to.ipam });
    }
  }

  /** Runs rounds until `p` settles (an allocation may wait for a donation), at most `maxRounds`; returns `p`. */
  async until<T>(p: Promise<T>, maxRounds = 2000): Promise<T> {
    let done = false;
    p.then(
      () => (done = true),
      () => (done = true),
    );
    for (let i = 0; i < maxRounds && !done; i++) await this.step();
    return p;
  }

  /** One round: delivers what was sent before, moves the clock, lets promises run, checks. */
  async step(): Promise<number> {
    const batch = this.queue;
    this.queue = [];
    if (this.lossOn && this.options.reorder) for (let i = batch.length - 1; i > 0; i--) {
      const j = this.rng.int(i + 1);
      [batch[i], batch[j]] = [batch[j]!, batch[i]!];
    }
    for (const m of batch) {
      if (!m.to.alive || m.to.ipam !== m.ipam || !m.from.alive) continue;
      if (!m.unicast && !m.from.links.has(m.to)) continue;
      this.counts.messages++;
      this.counts.bytes += m.data.length;
      try {
        if (m.unicast) m.to.channel.receiveUnicast(m.from.name, m.data);
        else m.to.channel.receiveGossip(m.from.name, m.data);
      } catch (err) {
        this.problem(`${m.to.name} rejected a message from ${m.from.name}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    if (batch.length > 0) this.counts.rounds++;
    this.clock.advance(this.options.latencyMs);
    await drain();
    this.checkOwnership();
    return batch.length;
  }

  /** Rounds (loss off) until the queue is empty and every component holds equal rings; returns them. */
  async settle(maxRounds = 20_000): Promise<number> {
    const was = this.lossOn;
    this.lossOn = false;
    let n = 0;
    while (this.queue.length > 0 || !this.converged()) {
      if (n++ >= maxRounds) {
        this.problem(`no convergence after ${maxRounds} rounds`);
        break;
      }
      await this.step();
    }
    this.lossOn = was;
    return n;
  }

  components(node: SimNode): SimNode[] {
    if (this.compDirty) {
      this.comp.clear();
      this.reach.clear();
      for (const p of this.live()) {
        if (this.comp.has(p)) continue;
        const members = [p];
        this.comp.set(p, members);
        for (let i = 0; i < members.length; i++)
          for (const q of members[i]!.links)
            if (q.alive && !this.comp.has(q)) {
              this.comp.set(q, members);
              members.push(q);
            }
      }
      this.compDirty = false;
    }
    return this.comp.get(node) ?? [];
  }

  /** Names of the other live peers of `node`'s component (the routes' `reachable`). */
  private reachable(node: SimNode): readonly PeerName[] {
    const members = this.components(node);
    let names = this.reach.get(node);
    if (names === undefined) {
      names = members.filter((q) => q !== node).map((q) => q.name);
      this.reach.set(node, names);
    }
    return names;
  }

  /** Whether every live peer holds the same rings as the first peer of its component. */
  converged(): boolean {
    // The peer that differed last time most likely still does: asked first.
    const d = this.differed;
    if (d !== undefined && d.alive && !this.agrees(d)) return false;
    for (const n of this.live())
      if (!this.agrees(n)) {
        this.differed = n;
        return false;
      }
    return true;
  }

  private agrees(n: SimNode): boolean {
    const ref = this.components(n)[0]!;
    for (let si = 0; si < this.options.ranges.length; si++) if (!ringsEqual(n.ipam.ringBytes(si), ref.ipam.ringBytes(si))) return false;
    return true;
  }

  /**
   * No offset allocatable by two live peers: after a round, the peers whose ownership changed
   * against everyone (ipam-sim-checks.ts); with `force`, every peer from scratch.
   */
  checkOwnership(force = false): void {
    const problems = force ? ownershipProblems(this.live(), this.options.ranges) : this.ownership.update(this.live());
    for (const p of problems) this.problem(p);
  }

  /** End-of-phase checks: allocations inside owned space, nothing left to forgotten peers, lists agree. */
  checkSettled(): void {
    this.checkOwnership(true);
    for (const p of settledProblems(this.live())) this.problem(p);
  }

  problem(s: string): void {
    if (this.problems.length < 50) this.problems.push(s);
  }

  async stopAll(): Promise<void> {
    for (const n of this.live()) {
      n.channel.stop();
      await n.ipam.stop();
    }
  }
}

const writers = new Map<number, RingWriter>();

/**
 * The identity of simulated peer `index`: a key pair from a fixed secret, so every run gives the
 * same names (the first `seeds` are the seeds, whether they joined yet or not).
 */
export function simWriter(index: number): RingWriter {
  let w = writers.get(index);
  if (w === undefined) {
    const kp = keyPairFromSecret(createHash('sha256').update(`weft-ipam-sim-peer:${index}`).digest());
    const signer = new Signer(kp.secretKey);
    w = { name: peerNameFromPublicKey(kp.publicKey), publicKey: kp.publicKey, sign: (m) => signer.sign(m) };
    writers.set(index, w);
  }
  return w;
}

export function simPeerName(index: number): PeerName {
  return simWriter(index).name;
}

function drain(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export interface IpamScenarioOptions {
  peers: number;
  operations: number;
  seed?: number;
  clock?: SteppableClock;
  /** Operations started per round (10 ms). Default 5. */
  opsPerRound?: number;
  /** Default: a dual-stack pair whose IPv4 range is tight enough for donations to matter. */
  ranges?: string[];
  quarantineMs?: number;
  loss?: number;
  duplicate?: number;
  /** Fraction of operations that crash a peer (restarted 20 rounds later). Default 0.003. */
  restartRate?: number;
  /** Fraction of peers that die and are forgotten. Default 0.03. */
  forgetFraction?: number;
  log?: (line: string) => void;
}

export interface IpamPhaseReport {
  phase: string;
  livePeers: number;
  components: number;
  operations: number;
  /** Rounds that delivered something during the phase (its operations included). */
  rounds: number;
  /** Rounds (loss off) from the end of the phase until every component holds equal rings. */
  convergenceRounds: number;
  donations: number;
  messagesPerPeer: number;
  simulatedSeconds: number;
  wallMs: number;
  problems: string[];
}

export interface IpamScenarioResult {
  peers: number;
  operations: number;
  seed: number;
  phases: IpamPhaseReport[];
  ranges: string[];
  totals: { reclaimed: number; allocated: number; released: number; exhausted: number; notReady: number; crashedInFlight: number; restarts: number; lost: number; duplicated: number; liveAllocations: number; ringEntries: number; maxMessagesPerPeer: number; avgMessagesPerPeer: number };
  /**
   * Signatures and custody in an honest run: records refused, winning entries not confirmed (and
   * how many are still unconfirmed at the end, over every peer), donations not used, defences
   * (each one a false alarm here), double spends seen, revivals; signatures verified (cache misses).
   */
  trust: { refused: number; unconfirmed: number; unconfirmedAtEnd: number; unusableGrants: number; defended: number; doubleSpends: number; revived: number; signaturesChecked: number };
  problems: string[];
  wallMs: number;
}

/** Runs every phase (see the file header); problems are collected, not thrown. */
export async function runIpamScenario(o: IpamScenarioOptions): Promise<IpamScenarioResult> {
  const seed = o.seed ?? 1;
  const ranges = o.ranges ?? [tightRange(o.peers, o.operations), 'fd00:77::/64'];
  const sim = new IpamSim({
    seed,
    ranges,
    quarantineMs: o.quarantineMs ?? 5000,
    loss: o.loss ?? 0.05,
    duplicate: o.duplicate ?? 0.02,
    reorder: true,
    ...(o.clock ? { clock: o.clock } : {}),
  });
  const log = o.log ?? (() => undefined);
  const opsPerRound = o.opsPerRound ?? 5;
  const restartRate = o.restartRate ?? 0.003;
  const started = performance.now();
  const phases: IpamPhaseReport[] = [];
  const received = new Map<SimNode, number>();
  const pendingRestarts: { node: SimNode; at: number }[] = [];
  const donations = () => sim.nodes.reduce((s, n) => s + (n.alive ? n.ipam.counters.donationsGiven : 0), sim.retiredDonations);
  let opsDone = 0;

  const phase = async (name: string, run: () => Promise<number>) => {
    const t0 = performance.now();
    const s0 = sim.clock.now();
    const r0 = sim.counts.rounds;
    const m0 = sim.counts.messages;
    const d0 = donations();
    const p0 = sim.problems.length;
    const ops = await run();
    const convergenceRounds = await sim.settle();
    sim.checkSettled();
    const live = sim.live();
    const comps = new Set(live.map((n) => sim.components(n))).size;
    const report: IpamPhaseReport = {
      phase: name,
      livePeers: live.length,
      components: comps,
      operations: ops,
      rounds: sim.counts.rounds - r0,
      convergenceRounds,
      donations: donations() - d0,
      messagesPerPeer: (sim.counts.messages - m0) / Math.max(live.length, 1),
      simulatedSeconds: (sim.clock.now() - s0) / 1000,
      wallMs: performance.now() - t0,
      problems: sim.problems.slice(p0),
    };
    phases.push(report);
    log(`${name}: ${ops} ops, ${report.rounds} rounds, converged in ${convergenceRounds}, ${report.donations} donations, ${report.messagesPerPeer.toFixed(1)} msgs/peer, ${Math.round(report.wallMs)} ms${report.problems.length ? `, ${report.problems.length} PROBLEMS` : ''}`);
  };

  /** `n` operations, `opsPerRound` per round. */
  const operate = async (n: number) => {
    for (let done = 0; done < n; ) {
      for (let k = 0; k < opsPerRound && done < n; k++, done++) {
        const live = sim.live();
        const node = sim.rng.pick(live);
        const r = sim.rng.next();
        if (r < restartRate && live.length > 2) {
          await sim.crash(node);
          pendingRestarts.push({ node, at: sim.counts.rounds + 20 });
        } else if (r < 0.55) void sim.allocate(node);
        else sim.release(node);
      }
      opsDone += Math.min(opsPerRound, n);
      await sim.step();
      while (pendingRestarts.length > 0 && pendingRestarts[0]!.at <= sim.counts.rounds) {
        const { node } = pendingRestarts.shift()!;
        if (node.member) await sim.restart(node);
        repair(sim);
      }
    }
    for (const { node } of pendingRestarts.splice(0)) if (node.member) await sim.restart(node);
    repair(sim);
    return n;
  };

  await phase('join', async () => {
    const perRound = Math.max(1, Math.round(o.peers / 100));
    for (let i = 0; i < o.peers; ) {
      for (let k = 0; k < perRound && i < o.peers; k++, i++) await sim.join();
      await sim.step();
    }
    // Let background asks give every peer some space.
    for (let i = 0; i < 300; i++) await sim.step();
    return 0;
  });

  await phase('churn', () => operate(Math.round(o.operations * 0.6)));

  await phase('partition', async () => {
    const half = Math.floor(sim.nodes.length / 2);
    const side = (n: SimNode) => (n.index < half ? 0 : 1);
    const cut = sim.live().flatMap((a) => [...a.links].filter((b) => side(a) === 0 && side(b) === 1).map((b) => [a, b] as const));
    sim.unlink(cut);
    repair(sim, side);
    const n = await operate(Math.round(o.operations * 0.25));
    sim.link(cut.filter(([a, b]) => a.alive && b.alive));
    repair(sim);
    return n;
  });

  await phase('forget', async () => {
    const victims = sim.rng.sample(sim.live(), Math.max(1, Math.round(o.peers * (o.forgetFraction ?? 0.03))));
    for (const v of victims) {
      v.member = false;
      await sim.kill(v);
    }
    repair(sim);
    for (let i = 0; i < 50; i++) await sim.step();
    const operator = sim.rng.pick(sim.live());
    for (const v of victims) operator.ipam.forget(v.name);
    const n = await operate(Math.round(o.operations * 0.15));
    // Past the reclaim hold, so heirs allocate from what they took over.
    await sim.settle();
    const end = sim.clock.now() + sim.options.quarantineMs + 1000;
    while (sim.clock.now() < end) await sim.step();
    return n;
  });

  for (const n of sim.live()) received.set(n, n.channel.stats().received.gossip.messages + n.channel.stats().received.unicast.messages);
  const perPeer = [...received.values()];
  const ring0 = sim.live()[0]?.ipam.status().spaces[0]?.owners.reduce((s, x) => s + x.ranges.length, 0) ?? 0;
  const c = zeroCounters();
  addCounters(c, sim.retired);
  for (const n of sim.live()) addCounters(c, n.ipam.counters);
  const unconfirmedAtEnd = sim.live().reduce((s, n) => s + n.ipam.status().spaces.reduce((k, sp) => k + sp.unconfirmed.count, 0), 0);
  await sim.stopAll();
  const problems = phases.flatMap((p) => p.problems.map((s) => `${p.phase}: ${s}`));
  return {
    peers: o.peers,
    operations: opsDone,
    seed,
    ranges,
    phases,
    totals: {
      reclaimed: sim.nodes.reduce((s, n) => s + (n.alive ? n.ipam.counters.materialized : 0), 0),
      allocated: sim.counts.allocated,
      released: sim.counts.released,
      exhausted: sim.counts.exhausted,
      notReady: sim.counts.notReady,
      crashedInFlight: sim.counts.crashedInFlight,
      restarts: sim.counts.restarts,
      lost: sim.counts.lost,
      duplicated: sim.counts.duplicated,
      liveAllocations: sim.inUse.size,
      ringEntries: ring0,
      maxMessagesPerPeer: Math.max(0, ...perPeer),
      avgMessagesPerPeer: perPeer.reduce((s, x) => s + x, 0) / Math.max(perPeer.length, 1),
    },
    trust: {
      refused: c.refusedSignature + c.refusedVersion + c.refusedRecord,
      unconfirmed: c.unconfirmed,
      unconfirmedAtEnd,
      unusableGrants: c.unusableGrants,
      defended: c.defended,
      doubleSpends: c.doubleSpends,
      revived: c.revived,
      signaturesChecked: sim.verifier.checked,
    },
    problems,
    wallMs: performance.now() - started,
  };
}

function addCounters(into: IpamCounters, c: IpamCounters): void {
  for (const k of Object.keys(into) as (keyof IpamCounters)[]) into[k] += c[k];
}

/**
 * An IPv4 range of about twice the expected peak of live allocations (operations allocate 55% and
 * release 40% of the time) and at least 32 addresses per peer: peers run low and ask each other.
 */
export function tightRange(peers: number, operations: number): string {
  const want = Math.max(operations * 0.3, peers * 32);
  const bits = Math.min(24, Math.max(2, Math.ceil(Math.log2(want))));
  return `10.32.0.0/${32 - bits}`;
}

/** Links every smaller component to the largest one (of its side, with `sideOf`). */
export function repair(sim: IpamSim, sideOf: (n: SimNode) => number = () => 0): void {
  sim.link(repairLinks([...new Set(sim.live().map((n) => sim.components(n)))], sideOf, sim.rng));
}

export interface IpamSimRunOptions {
  peers?: number;
  operations?: number;
  /** Operations started per round (default 500: half of 1,000 peers act in a round). */
  opsPerRound?: number;
  seed?: number;
  log?: (line: string) => void;
}

/** Bench entry: 1,000 peers and 100,000 operations, as JSON and a Markdown table. */
export async function runIpamSim(opts: IpamSimRunOptions = {}): Promise<{ json: object; markdown: string }> {
  const opsPerRound = opts.opsPerRound ?? 500;
  const r = await runIpamScenario({ peers: opts.peers ?? 1000, operations: opts.operations ?? 100_000, seed: opts.seed ?? 1, opsPerRound, ...(opts.log ? { log: opts.log } : {}) });
  const f = (x: number, d = 1) => x.toFixed(d);
  const t = r.totals;
  const markdown = [
    `IPAM simulation: ${r.peers} peers, ${r.operations} operations (${opsPerRound} started per round), seed ${r.seed}, dual-stack (${r.ranges.join(' + ')}), 3 seeds; ` +
      `5% loss, 2% duplication, reordering; wall time ${f(r.wallMs / 1000)} s.`,
    '',
    '| phase | live peers | components | operations | rounds | rounds to converge | donations | msgs per peer | simulated s | wall s | invariants |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...r.phases.map(
      (p) =>
        `| ${p.phase} | ${p.livePeers} | ${p.components} | ${p.operations} | ${p.rounds} | ${p.convergenceRounds} | ${p.donations} | ${f(p.messagesPerPeer)} | ${f(p.simulatedSeconds, 0)} | ${f(p.wallMs / 1000)} | ${p.problems.length === 0 ? 'held' : `BROKEN (${p.problems.length})`} |`,
    ),
    '',
    `Reclaimed runs ${t.reclaimed}; allocated ${t.allocated}, released ${t.released}, exhausted ${t.exhausted}, not ready ${t.notReady}, lost in a crash ${t.crashedInFlight}, restarts ${t.restarts}; ` +
      `${t.lost} messages lost, ${t.duplicated} duplicated; ${t.liveAllocations} live allocations at the end; ring runs (IPv4): ${t.ringEntries}; ` +
      `messages received per peer: max ${t.maxMessagesPerPeer}, avg ${f(t.avgMessagesPerPeer)}.`,
    '',
    `Signatures and custody: ${r.trust.signaturesChecked} signatures verified (one cache for all peers), ${r.trust.refused} records refused; ` +
      `${r.trust.unconfirmed} winning entries not confirmed on arrival (${r.trust.unconfirmedAtEnd} still unconfirmed at the end, over all peers), ` +
      `${r.trust.unusableGrants} donations not used, ${r.trust.defended} entries written back, ${r.trust.doubleSpends} double spends, ${r.trust.revived} revivals.`,
    ...(r.problems.length > 0 ? ['', 'Problems:', ...r.problems.slice(0, 20).map((s) => `- ${s}`)] : []),
  ].join('\n');
  return { json: r, markdown };
}

const invokedAs = process.argv[1];
if (invokedAs !== undefined && import.meta.url === pathToFileURL(invokedAs).href) {
  const { values } = parseArgs({ options: { peers: { type: 'string', default: '1000' }, operations: { type: 'string', default: '100000' }, seed: { type: 'string', default: '1' } } });
  const r = await runIpamSim({ peers: Number(values.peers), operations: Number(values.operations), seed: Number(values.seed), log: (l) => process.stderr.write(`${l}\n`) });
  process.stdout.write(`${r.markdown}\n`);
}
