/**
 * Gossip simulation suite: N peers (1,000 by default), each with a real `Topology` and
 * `GossipChannel` (from its own `ChannelRegistry`, as on the mesh), connected by an in-memory transport over a simulated connection graph. No
 * sockets; one deterministic clock; a seeded PRNG, so a seed always gives the same run.
 *
 * Delivery is in rounds: a round delivers every message sent during the previous one (one hop),
 * then moves the clock by `latencyMs`. "Rounds" below count rounds that delivered something, i.e.
 * message hops until quiescence. Messages are counted per link (a fan-out to 6 neighbours is 6),
 * split into delta (local updates and relays), connect (full state to a new neighbour) and
 * periodic (anti-entropy full state).
 *
 * Phases: peers join gradually (each connects to `connectTo` random live peers); the graph is cut
 * in two halves (peers by join order; each half's connection makers link its own fragments) and
 * stays cut past `goneAfterMs`, so each half writes "gone" tombstones for the other; heal (the cut
 * links come back; peers re-assert over their tombstones); some peers leave and are forgotten
 * (`weft forget` on one peer); some die and become "gone" (fragments left behind are relinked).
 * After each phase the run checks convergence: in each connected component every peer holds the
 * same state (byte for byte), every live peer's record is the owner's current one, routes reach
 * exactly the component at the true BFS distance, and a broadcast from sample sources reaches each
 * peer of the component exactly once over the peers' own tables.
 *
 * The engine lives here rather than in test/ because production code (bench/) may not import
 * test/ and test/ is not built; test/gossip/sim/ runs a smaller version of it under vitest.
 *
 *   node dist/sim/gossip-sim.js [--peers 1000] [--seed 1] [--coalesce-ms 0 (-1: off)]
 */
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { peerIdFromPeerName, peerNameFromPublicKey } from '../src/core/ids.js';
import type { GossipTransport, PeerName } from '../src/mesh/contracts.js';
import { ChannelRegistry } from '../src/mesh/channel-registry.js';
import type { GossipChannel } from '../src/mesh/gossip-channel.js';
import { keyPairFromSecret } from '../src/mesh/identity.js';
import { Signer, Verifier } from '../src/mesh/signing.js';
import { RouteSnapshot, buildGraph } from '../src/mesh/routes.js';
import { RecordCache, TOPOLOGY_CHANNEL, Topology, type PeerRecord } from '../src/mesh/topology.js';
import { HeapClock, Prng, repairLinks, type SteppableClock } from './kit.js';

type Kind = 'delta' | 'connect' | 'periodic';

export interface SimPeer {
  readonly index: number;
  readonly name: PeerName;
  readonly endpoint: string;
  alive: boolean;
  readonly links: Set<SimPeer>;
  readonly topology: Topology;
  readonly channel: GossipChannel;
  forgottenSeen: number;
  lastFull: Uint8Array | undefined;
}

interface Msg {
  from: SimPeer;
  to: SimPeer;
  data: Uint8Array;
  kind: Kind;
}

export interface SimOptions {
  seed: number;
  /** New peers connect to this many random live peers. Default 3. */
  connectTo?: number;
  latencyMs?: number;
  intervalMs?: number;
  goneAfterMs?: number;
  sweepIntervalMs?: number;
  /** The channels' coalescing delay (negative: off). Default 0. */
  coalesceMs?: number;
  clock?: SteppableClock;
}

export type Counts = Record<Kind, { messages: number; bytes: number }>;

/** The simulated mesh. */
export class GossipSim {
  readonly clock: SteppableClock;
  readonly rng: Prng;
  readonly peers: SimPeer[] = [];
  readonly problems: string[] = [];
  readonly counts: Counts = { delta: { messages: 0, bytes: 0 }, connect: { messages: 0, bytes: 0 }, periodic: { messages: 0, bytes: 0 } };
  rounds = 0;
  private queue: Msg[] = [];
  private readonly options: Required<Omit<SimOptions, 'clock'>>;
  private readonly ids = new Set<number>();
  /** One decode cache for every peer: each distinct record is decoded and its signatures checked once in this process. */
  readonly cache = new RecordCache(500_000);
  /** One verifier for every peer (it keeps each public key's Edwards form). */
  readonly verifier = new Verifier(10_000);

  constructor(o: SimOptions) {
    this.options = { connectTo: 3, latencyMs: 10, intervalMs: 30_000, goneAfterMs: 600_000, sweepIntervalMs: 30_000, coalesceMs: 0, ...o };
    this.clock = o.clock ?? new HeapClock();
    this.rng = new Prng(o.seed);
  }

  live(): SimPeer[] {
    return this.peers.filter((p) => p.alive);
  }

  /** A new peer that connects to `connectTo` random live peers. */
  join(): SimPeer {
    const others = this.live();
    const p = this.spawn();
    const targets = this.rng.sample(others, this.options.connectTo);
    for (const q of targets) this.addLink(p, q);
    this.refresh([p, ...targets]);
    for (const q of targets) this.exchange(p, q);
    return p;
  }

  link(pairs: readonly (readonly [SimPeer, SimPeer])[]): void {
    const ok = pairs.filter(([a, b]) => a.alive && b.alive && a !== b && !a.links.has(b));
    for (const [a, b] of ok) this.addLink(a, b);
    this.refresh(ok.flat());
    for (const [a, b] of ok) this.exchange(a, b);
  }

  unlink(pairs: readonly (readonly [SimPeer, SimPeer])[]): void {
    for (const [a, b] of pairs) {
      a.links.delete(b);
      b.links.delete(a);
    }
    this.refresh(pairs.flat());
  }

  /** Stops peers (no goodbye); their neighbours drop the connections. */
  kill(victims: readonly SimPeer[]): void {
    const touched: SimPeer[] = [];
    for (const v of victims) {
      v.alive = false;
      v.topology.stop();
      v.channel.stop();
      for (const q of v.links) {
        q.links.delete(v);
        touched.push(q);
      }
      v.links.clear();
    }
    this.refresh(touched);
  }

  /**
   * The connection maker: links every smaller component to the largest one, or, with `sideOf`,
   * to the largest one of its side (a partition stays a partition).
   */
  repair(sideOf: (p: SimPeer) => number = () => 0): number {
    const pairs = repairLinks(this.components(), sideOf, this.rng);
    this.link(pairs);
    return pairs.length;
  }

  /** One round: delivers what the previous round sent, then moves the clock. Returns messages delivered. */
  step(): number {
    const batch = this.queue;
    this.queue = [];
    for (const m of batch) {
      if (!m.from.alive || !m.to.alive || !m.from.links.has(m.to)) continue;
      this.counts[m.kind].messages++;
      this.counts[m.kind].bytes += m.data.length;
      try {
        m.to.channel.receiveGossip(m.from.name, m.data);
      } catch (err) {
        this.problem(`${m.to.name} rejected gossip from ${m.from.name}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    if (batch.length > 0) this.rounds++;
    this.clock.advance(this.options.latencyMs);
    return batch.length;
  }

  /** Rounds until nothing is in flight; returns how many delivered something. */
  settle(maxRounds = 100_000): number {
    let n = 0;
    this.clock.advance(0); // sends what waits on a zero-delay timer (coalesced deltas)
    while (this.queue.length > 0) {
      if (n++ >= maxRounds) throw new Error(`no quiescence after ${maxRounds} rounds`);
      this.step();
    }
    return n;
  }

  /** Sends pending coalesced deltas into the network, then loses everything in flight (tests). */
  dropInFlight(): number {
    this.clock.advance(0);
    const n = this.queue.length;
    this.queue = [];
    return n;
  }

  /**
   * Lets `ms` of simulated time pass (timers fire, messages flow); returns the longest settle in
   * rounds. Messages sent by the timers of one `chunkMs` are delivered before the next chunk's
   * timers fire: with 1 s chunks every peer whose sweep fell in the same second wrote its own
   * "gone" tombstone (signed, so all different) before hearing anyone else's, where real routers
   * hear the first writer's within milliseconds.
   */
  wait(ms: number, chunkMs = 50): number {
    const end = this.clock.now() + ms;
    let longest = 0;
    while (this.clock.now() < end) {
      this.clock.advance(Math.min(chunkMs, end - this.clock.now()));
      longest = Math.max(longest, this.settle());
    }
    return longest;
  }

  /** Connected components of live peers over the simulated links. */
  components(): SimPeer[][] {
    const seen = new Set<SimPeer>();
    const out: SimPeer[][] = [];
    for (const p of this.live()) {
      if (seen.has(p)) continue;
      const comp = [p];
      seen.add(p);
      for (let i = 0; i < comp.length; i++)
        for (const q of comp[i]!.links)
          if (!seen.has(q)) {
            seen.add(q);
            comp.push(q);
          }
      out.push(comp);
    }
    return out;
  }

  /**
   * Convergence (see the file header). `expectLeft(name)` gives the tombstone every live peer
   * must hold for a dead peer (undefined: no expectation). Returns the problems found.
   */
  check(expectLeft: (p: SimPeer) => PeerRecord['left'] | 'any' | undefined = () => undefined, broadcastSources = 3): string[] {
    const out: string[] = [];
    const add = (s: string) => {
      if (out.length < 20) out.push(s);
    };
    const tables = new Map<SimPeer, RouteSnapshot>();
    for (const comp of this.components()) {
      const ref = comp[0]!;
      const refBytes = Buffer.from(ref.topology.gossip());
      const refGraph = buildGraph(ref.topology.records());
      const same = new Set<SimPeer>();
      for (const p of comp) {
        if (refBytes.equals(p.topology.gossip())) same.add(p);
        else add(`${p.name} differs from ${ref.name} in the same component`);
      }
      for (const q of comp) {
        const r = ref.topology.get(q.name);
        if (r === undefined || r.left !== undefined || r.version !== q.topology.self.version) add(`${ref.name} holds ${q.name} at ${r?.version}/${r?.left}, owner is at ${q.topology.self.version}`);
      }
      for (const d of this.peers) {
        const want = d.alive ? undefined : expectLeft(d);
        if (want === undefined) continue;
        const r = ref.topology.get(d.name);
        if (r === undefined || r.left === undefined || (want !== 'any' && r.left !== want)) add(`${ref.name} holds dead ${d.name} as ${r?.left ?? (r ? 'live' : 'absent')}, expected ${want}`);
      }
      const members = new Set(comp);
      for (const p of comp) {
        // Peers holding the same bytes hold the same graph.
        const t = new RouteSnapshot(same.has(p) ? refGraph : buildGraph(p.topology.records()), p.name);
        tables.set(p, t);
        const dist = this.bfs(p);
        if (t.reachable().length !== comp.length - 1) add(`${p.name} reaches ${t.reachable().length} peers, component has ${comp.length - 1} others`);
        for (const q of comp) if (q !== p && t.distance(q.name) !== dist.get(q)) add(`${p.name} → ${q.name}: distance ${t.distance(q.name)}, true ${dist.get(q)}`);
      }
      for (const src of this.rng.sample(comp, broadcastSources)) {
        const got = new Map<SimPeer, number>();
        const frontier = [src];
        const byName = new Map(comp.map((p) => [p.name, p]));
        while (frontier.length > 0) {
          const x = frontier.pop()!;
          for (const n of tables.get(x)!.broadcastNext(src.name)) {
            const y = byName.get(n);
            if (y === undefined || !x.links.has(y)) {
              add(`broadcast from ${src.name}: ${x.name} relays to ${n}, not a live neighbour`);
              continue;
            }
            got.set(y, (got.get(y) ?? 0) + 1);
            frontier.push(y);
          }
        }
        for (const q of comp) if (q !== src && got.get(q) !== 1) add(`broadcast from ${src.name}: ${q.name} received ${got.get(q) ?? 0} times`);
        if (got.has(src)) add(`broadcast from ${src.name} came back to it`);
        for (const y of got.keys()) if (!members.has(y)) add(`broadcast left the component`);
      }
    }
    return out;
  }

  private bfs(p: SimPeer): Map<SimPeer, number> {
    const dist = new Map<SimPeer, number>([[p, 0]]);
    const q = [p];
    for (let i = 0; i < q.length; i++) {
      const x = q[i]!;
      for (const y of x.links)
        if (!dist.has(y)) {
          dist.set(y, dist.get(x)! + 1);
          q.push(y);
        }
    }
    return dist;
  }

  private spawn(): SimPeer {
    let keys: { publicKey: Buffer; secretKey: Buffer };
    let name: PeerName;
    do {
      keys = keyPairFromSecret(this.rng.bytes(32));
      name = peerNameFromPublicKey(keys.publicKey);
    } while (this.ids.has(peerIdFromPeerName(name))); // wire-id collisions have their own tests
    const publicKey = keys.publicKey;
    const signer = new Signer(keys.secretKey);
    this.ids.add(peerIdFromPeerName(name));
    const index = this.peers.length;
    const endpoint = `198.18.${(index >> 8) & 0xff}.${index & 0xff}:6784`;
    const topology = new Topology(
      { clock: this.clock, onForgotten: () => peer.forgottenSeen++, recordCache: this.cache, signer, verifier: this.verifier },
      {
        publicKey,
        nickname: `node-${index}`,
        endpoints: [endpoint],
        goneAfterMs: this.options.goneAfterMs,
        sweepIntervalMs: this.options.sweepIntervalMs,
        incarnation: Buffer.from(this.rng.bytes(8)).toString('hex'),
      },
    );
    const transport: GossipTransport = {
      gossipToNeighbours: (_channel, data, except) => {
        const kind: Kind = data === peer.lastFull ? 'periodic' : 'delta';
        for (const q of peer.links) if (q.name !== except) this.queue.push({ from: peer, to: q, data, kind });
      },
      unicast: () => false,
      broadcast: () => undefined,
    };
    const gossiper = {
      gossip: () => (peer.lastFull = topology.gossip()),
      onGossip: (d: Uint8Array) => topology.onGossip(d),
      onUnicast: (f: PeerName, d: Uint8Array) => topology.onUnicast(f, d),
      onBroadcast: (s: PeerName, d: Uint8Array) => topology.onBroadcast(s, d),
      onLocalUpdate: (l: (delta: Uint8Array) => void) => topology.onLocalUpdate(l),
      mergeDeltas: (ds: readonly Uint8Array[]) => topology.mergeDeltas(ds),
    };
    const channels = new ChannelRegistry({ link: transport, clock: this.clock, random: () => this.rng.next() });
    const channel = channels.newChannel(TOPOLOGY_CHANNEL, gossiper, { intervalMs: this.options.intervalMs, coalesceMs: this.options.coalesceMs });
    const peer: SimPeer = { index, name, endpoint, alive: true, links: new Set(), topology, channel, forgottenSeen: 0, lastFull: undefined };
    this.peers.push(peer);
    topology.start();
    channel.start();
    return peer;
  }

  private addLink(a: SimPeer, b: SimPeer): void {
    a.links.add(b);
    b.links.add(a);
  }

  /** Peers publish their current connection lists (one update each). */
  private refresh(peers: readonly SimPeer[]): void {
    for (const p of new Set(peers)) {
      if (!p.alive) continue;
      p.topology.updateSelf({ connections: [...p.links].map((q) => ({ peer: q.name, established: true, endpoint: q.endpoint })) });
    }
  }

  /** A new connection: both sides send their full state. */
  private exchange(a: SimPeer, b: SimPeer): void {
    for (const [x, y] of [[a, b], [b, a]] as const) {
      const data = x.channel.neighbourConnected(y.name);
      if (data !== undefined) this.queue.push({ from: x, to: y, data, kind: 'connect' });
    }
  }

  private problem(s: string): void {
    if (this.problems.length < 50) this.problems.push(s);
  }
}

export interface ScenarioOptions {
  peers: number;
  seed?: number;
  /** New peers per round while joining. Default 1 per round for ≤ 200 peers, else peers/100. */
  joinsPerRound?: number;
  /** Fraction of peers that leave (forgotten) and that die (gone). Default 0.03 each. */
  leaveFraction?: number;
  dieFraction?: number;
  coalesceMs?: number;
  clock?: SteppableClock;
  log?: (line: string) => void;
}

export interface PhaseReport {
  phase: string;
  livePeers: number;
  components: number;
  /** Rounds that delivered something (message hops), the whole phase, periodic gossip included. */
  rounds: number;
  /** Rounds from an event (or, while time passes, from a burst of timers) to quiescence: the longest. */
  settleRounds: number;
  perPeer: { deltaMessages: number; deltaBytes: number; connectMessages: number; connectBytes: number; periodicMessages: number; periodicBytes: number };
  simulatedSeconds: number;
  stateBytes: number;
  wallMs: number;
  problems: string[];
}

export interface ScenarioResult {
  peers: number;
  seed: number;
  phases: PhaseReport[];
  problems: string[];
  wallMs: number;
}

/** Runs every phase, checking convergence after each (problems are collected, not thrown). */
export function runGossipScenario(o: ScenarioOptions): ScenarioResult {
  const seed = o.seed ?? 1;
  const sim = new GossipSim({ seed, ...(o.clock ? { clock: o.clock } : {}), ...(o.coalesceMs !== undefined ? { coalesceMs: o.coalesceMs } : {}) });
  const goneAfterMs = 600_000;
  const phases: PhaseReport[] = [];
  const started = performance.now();
  const log = o.log ?? (() => undefined);
  const left = new Map<SimPeer, 'forgotten' | 'gone'>();

  const phase = (name: string, run: () => number, expect: (p: SimPeer) => PeerRecord['left'] | 'any' | undefined = (p) => left.get(p)) => {
    const t0 = performance.now();
    const sim0 = sim.clock.now();
    const r0 = sim.rounds;
    const c0 = structuredClone(sim.counts);
    const settleRounds = run();
    const live = sim.live();
    const n = Math.max(live.length, 1);
    const d = (k: Kind, f: 'messages' | 'bytes') => (sim.counts[k][f] - c0[k][f]) / n;
    const problems = [...sim.problems.splice(0), ...sim.check(expect)];
    const report: PhaseReport = {
      phase: name,
      livePeers: live.length,
      components: sim.components().length,
      rounds: sim.rounds - r0,
      settleRounds,
      perPeer: {
        deltaMessages: d('delta', 'messages'),
        deltaBytes: d('delta', 'bytes'),
        connectMessages: d('connect', 'messages'),
        connectBytes: d('connect', 'bytes'),
        periodicMessages: d('periodic', 'messages'),
        periodicBytes: d('periodic', 'bytes'),
      },
      simulatedSeconds: (sim.clock.now() - sim0) / 1000,
      stateBytes: live[0]?.topology.gossip().length ?? 0,
      wallMs: performance.now() - t0,
      problems,
    };
    phases.push(report);
    log(`${name}: ${report.rounds} rounds (${settleRounds} to settle), ${fmt(report.perPeer.deltaMessages)} delta msgs/peer, ${report.components} component(s), ${Math.round(report.wallMs)} ms${problems.length > 0 ? `, ${problems.length} PROBLEMS` : ''}`);
  };

  const joinsPerRound = o.joinsPerRound ?? (o.peers <= 200 ? 1 : Math.round(o.peers / 100));
  phase('join', () => {
    for (let i = 0; i < o.peers; ) {
      for (let k = 0; k < joinsPerRound && i < o.peers; k++, i++) sim.join();
      sim.step();
    }
    return sim.settle();
  });

  let cut: (readonly [SimPeer, SimPeer])[] = [];
  const half = Math.floor(o.peers / 2);
  phase(
    'partition',
    () => {
      cut = sim.live().flatMap((a) => [...a.links].filter((b) => a.index < half && b.index >= half).map((b) => [a, b] as const));
      sim.unlink(cut);
      sim.repair((p) => (p.index < half ? 0 : 1));
      const r = sim.settle();
      return Math.max(r, sim.wait(goneAfterMs + 2 * 30_000));
    },
    () => undefined,
  );
  // Each side holds the other as "gone" now.
  phases.at(-1)!.problems.push(...goneAcross(sim));

  phase('heal', () => {
    sim.link(cut);
    return sim.settle();
  });

  phase('leave+forget', () => {
    const victims = sim.rng.sample(sim.live(), Math.max(1, Math.round(o.peers * (o.leaveFraction ?? 0.03))));
    sim.kill(victims);
    sim.repair();
    sim.settle();
    const operator = sim.rng.pick(sim.live());
    for (const v of victims) {
      operator.topology.forget(v.name);
      left.set(v, 'forgotten');
    }
    const r = sim.settle();
    const live = sim.live();
    const misses = live.filter((p) => p.forgottenSeen < victims.length).length;
    if (misses > 0) sim.problems.push(`${misses} live peers saw fewer than ${victims.length} onForgotten calls`);
    return r;
  });

  phase('die+gone', () => {
    const victims = sim.rng.sample(sim.live(), Math.max(1, Math.round(o.peers * (o.dieFraction ?? 0.03))));
    sim.kill(victims);
    for (const v of victims) left.set(v, 'gone');
    sim.repair();
    const r = sim.settle();
    return Math.max(r, sim.wait(goneAfterMs + 2 * 30_000));
  });

  const problems = phases.flatMap((p) => p.problems.map((s) => `${p.phase}: ${s}`));
  for (const p of sim.peers) {
    p.topology.stop();
    p.channel.stop();
  }
  return { peers: o.peers, seed, phases, problems, wallMs: performance.now() - started };
}

/** After a long partition: every peer holds every peer outside its component as a tombstone. */
function goneAcross(sim: GossipSim): string[] {
  const out: string[] = [];
  for (const comp of sim.components()) {
    const ref = comp[0]!;
    const inside = new Set(comp.map((p) => p.name));
    for (const q of sim.live())
      if (!inside.has(q.name) && ref.topology.get(q.name)?.left !== 'gone') out.push(`${ref.name} holds ${q.name} (other side) as ${ref.topology.get(q.name)?.left ?? 'live'}`);
  }
  return out.slice(0, 20);
}

function fmt(x: number, digits = 1): string {
  return Number.isFinite(x) ? x.toFixed(digits) : '–';
}

function kib(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${fmt(bytes / 1024 / 1024, 2)} MiB` : `${fmt(bytes / 1024, 1)} KiB`;
}

export interface GossipSimOptions {
  peers?: number;
  seed?: number;
  coalesceMs?: number;
  log?: (line: string) => void;
}

/** Bench entry: the 1,000-peer scenario, as JSON and a Markdown table. */
export async function runGossipSim(opts: GossipSimOptions = {}): Promise<{ json: object; markdown: string }> {
  const r = runGossipScenario({
    peers: opts.peers ?? 1000,
    seed: opts.seed ?? 1,
    ...(opts.coalesceMs !== undefined ? { coalesceMs: opts.coalesceMs } : {}),
    ...(opts.log ? { log: opts.log } : {}),
  });
  const rows = r.phases.map(
    (p) =>
      `| ${p.phase} | ${p.livePeers} | ${p.components} | ${p.rounds} | ${p.settleRounds} | ${fmt(p.perPeer.deltaMessages)} / ${kib(p.perPeer.deltaBytes)} | ` +
      `${fmt(p.perPeer.connectMessages, 2)} / ${kib(p.perPeer.connectBytes)} | ${fmt(p.perPeer.periodicMessages)} / ${kib(p.perPeer.periodicBytes)} | ` +
      `${fmt(p.simulatedSeconds, 0)} | ${kib(p.stateBytes)} | ${fmt(p.wallMs / 1000, 1)} | ${p.problems.length === 0 ? 'yes' : `NO (${p.problems.length})`} |`,
  );
  const markdown = [
    `Gossip simulation: ${r.peers} peers, seed ${r.seed}, each joining with 3 connections; per-peer figures are per live peer; wall time ${fmt(r.wallMs / 1000, 1)} s.`,
    '',
    'Phases: join (gradually, several per round); partition in two halves for 11 min (> goneAfterMs: each half tombstones the other); ' +
      'heal (peers re-assert); 3% leave and are forgotten; 3% die and become gone. Rounds = message hops (10 ms each); ' +
      '"rounds to settle" = the longest run from an event or timer burst to quiescence; deltas are coalesced per tick; ' +
      'periodic = anti-entropy full state every 30 s ± 10%.',
    '',
    '| phase | live peers | components | rounds | rounds to settle | delta msgs / bytes per peer | connect msgs / bytes per peer | periodic msgs / bytes per peer | simulated s | full state | wall s | converged |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows,
    ...(r.problems.length > 0 ? ['', 'Problems:', ...r.problems.slice(0, 20).map((s) => `- ${s}`)] : []),
  ].join('\n');
  return { json: r, markdown };
}

const invokedAs = process.argv[1];
if (invokedAs !== undefined && import.meta.url === pathToFileURL(invokedAs).href) {
  const { values } = parseArgs({
    options: { peers: { type: 'string', default: '1000' }, seed: { type: 'string', default: '1' }, 'coalesce-ms': { type: 'string', default: '0' } },
  });
  const r = await runGossipSim({
    peers: Number(values.peers),
    seed: Number(values.seed),
    coalesceMs: Number(values['coalesce-ms']),
    log: (l) => process.stderr.write(`${l}\n`),
  });
  process.stdout.write(`${r.markdown}\n`);
}
