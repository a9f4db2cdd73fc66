/**
 * Punch coordinators on several routers over an in-memory mesh: unicasts wait in a queue until
 * `deliver()` (a relay may read, change or replay them on the way through `onTransit`), each
 * router has a fake overlay that records `punch` calls and whose direct paths a test sets, and
 * all share one FakeClock. Identities are real (signatures are checked).
 */
import { silentLogger } from '../../src/core/logger.js';
import type { PathCandidate, PeerName } from '../../src/mesh/contracts.js';
import { PunchCoordinator, type PunchInit } from '../../src/mesh/punch.js';
import { FakeClock } from '../fakes/fake-clock.js';
import { testAuthor, type TestAuthor } from './test-authors.js';

export class FakePunchOverlay {
  readonly punches: { name: PeerName; candidates: PathCandidate[]; at: number }[] = [];
  readonly up = new Set<PeerName>();
  private readonly clock: FakeClock;

  constructor(clock: FakeClock) {
    this.clock = clock;
  }

  punch(name: PeerName, candidates: readonly PathCandidate[]): void {
    this.punches.push({ name, candidates: [...candidates], at: this.clock.now() });
  }

  pathUp(name: PeerName): boolean {
    return this.up.has(name);
  }
}

export interface WorldNode {
  author: TestAuthor;
  name: PeerName;
  incarnation: string;
  overlay: FakePunchOverlay;
  coordinator: PunchCoordinator;
  candidates: PathCandidate[];
  /** Peers this node can route to. */
  reachable: Set<PeerName>;
  /** Peers this node has pair keys with. */
  keys: Set<PeerName>;
  /** Thrown by onMessage (GossipDecodeError for hostile refusals). */
  errors: unknown[];
}

export interface Unicast {
  from: PeerName;
  to: PeerName;
  data: Uint8Array;
  /** When it was sent. */
  at: number;
}

export class PunchWorld {
  readonly clock = new FakeClock();
  readonly nodes = new Map<string, WorldNode>();
  readonly queue: Unicast[] = [];
  /** Every unicast sent, in order. */
  readonly sent: Unicast[] = [];
  /** A relay's hand on a message in flight: return the bytes to deliver (undefined: drop). */
  onTransit: (m: Unicast) => Uint8Array | undefined = (m) => m.data;
  private readonly byName = new Map<PeerName, WorldNode>();

  /** A node per seed, all reachable from each other, with keys, no direct paths. */
  constructor(seeds: readonly string[], init: PunchInit = {}) {
    for (const [i, seed] of seeds.entries()) {
      const author = testAuthor(`punch-${seed}`);
      const overlay = new FakePunchOverlay(this.clock);
      const node: WorldNode = {
        author,
        name: author.name,
        incarnation: (i + 1).toString(16).padStart(16, '0'),
        overlay,
        coordinator: undefined as unknown as PunchCoordinator,
        candidates: [{ endpoint: `198.19.${i + 1}.2:6784`, kind: 'local' }, { endpoint: `198.18.0.${i + 10}:6784`, kind: 'reflexive' }],
        reachable: new Set(),
        keys: new Set(),
        errors: [],
      };
      node.coordinator = new PunchCoordinator(
        {
          clock: this.clock,
          logger: silentLogger,
          self: author.name,
          signer: author.signer,
          publicKeyOf: (n) => this.byName.get(n)?.author.publicKey,
          incarnationOf: (n) => this.byName.get(n)?.incarnation,
          unicast: (to, data) => {
            if (!node.reachable.has(to)) return false;
            const m = { from: node.name, to, data, at: this.clock.now() };
            this.sent.push(m);
            this.queue.push(m);
            return true;
          },
          overlay,
          candidates: () => node.candidates,
          reachable: () => [...node.reachable],
          hasKeys: (n) => node.keys.has(n),
        },
        init,
      );
      this.nodes.set(seed, node);
      this.byName.set(author.name, node);
    }
    for (const a of this.nodes.values()) {
      for (const b of this.nodes.values()) {
        if (a === b) continue;
        a.reachable.add(b.name);
        a.keys.add(b.name);
      }
    }
  }

  node(seed: string): WorldNode {
    return this.nodes.get(seed)!;
  }

  /** Delivers queued unicasts (and those they cause) until none is left. */
  deliver(): void {
    for (let guard = 0; this.queue.length > 0 && guard < 10_000; guard++) {
      const m = this.queue.shift()!;
      const data = this.onTransit(m);
      if (data === undefined) continue;
      this.inject(m.from, m.to, data);
    }
  }

  /** A message arrives at `to` as from `from`. */
  inject(from: PeerName, to: PeerName, data: Uint8Array): void {
    const node = this.byName.get(to)!;
    try {
      node.coordinator.onMessage(from, data);
    } catch (err) {
      node.errors.push(err);
    }
  }

  /** Advances the clock in steps of `stepMs`, ticking every coordinator and delivering each step. */
  run(ms: number, stepMs = 100): void {
    for (let t = 0; t < ms; t += stepMs) {
      this.clock.advance(stepMs);
      for (const n of this.nodes.values()) n.coordinator.tick();
      this.deliver();
    }
  }

  /** Offers (type 1; 2: answers) sent by `from` to `to`, in order, with the time each left. */
  offersFrom(from: string, to: string, type = 1): Unicast[] {
    const a = this.node(from).name;
    const b = this.node(to).name;
    return this.sent.filter((m) => m.from === a && m.to === b && m.data[2] === type);
  }
}
