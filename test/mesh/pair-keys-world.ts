/**
 * PairKeys on several nodes wired by an in-memory unicast that can drop, hold or replay messages,
 * with a fake overlay per node that keeps keys the way the sleeve does (issue 13), so tests can
 * check which keys carry traffic, not only which were installed. Each node has its own wall clock
 * (a skew over one shared FakeClock) and can be restarted (new PairKeys and overlay, same identity).
 */
import type { Clock } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/logger.js';
import type { PeerKeys, PeerName } from '../../src/mesh/contracts.js';
import { generateIdentity, type Identity } from '../../src/mesh/identity.js';
import { PairKeys, type PairKeysInit } from '../../src/mesh/pair-keys.js';
import { FakeClock } from '../fakes/fake-clock.js';

interface KeyPair {
  /** When it became current (monotonic ms): it carries nothing after the lifetime. */
  since: number;
  txKeyId: number;
  tx: Buffer;
  rxKeyId: number;
  rx: Buffer;
}

interface PeerSlot {
  current: KeyPair | undefined;
  /** The previous pair (its receive key stays valid for the overlap after a switch). */
  prev: KeyPair | undefined;
  pending: KeyPair | undefined;
  /** Some receive key of this peer has authenticated a datagram. */
  authenticated: boolean;
}

/**
 * The overlay's key contract (`Overlay.installKeys`, implemented by the sleeve):
 * - `confirm = false` (the handshake's initiator): the pair is current at once, tx and rx; the
 *   previous receive key stays valid for an overlap.
 * - `confirm = true` (the responder): when no receive key of the peer has ever authenticated a
 *   datagram, the pair is current at once. Otherwise it is *pending*: current tx and rx stay exactly
 *   as they are; it is promoted when a datagram authenticates under the pending receive key
 *   (current rx becomes the previous one, pending becomes current, tx switches). A newer pending
 *   pair replaces one not promoted. Keys nobody else holds (a replayed handshake's) are never promoted.
 * - A pair seals and opens nothing once it has been current for `lifetimeMs` (hard lifetime).
 * Key bytes are copied: PairKeys wipes its copies after `installKeys` returns.
 */
export class FakeKeyOverlay {
  readonly peers = new Map<PeerName, PeerSlot>();
  installs = 0;
  private readonly clock: Clock;
  private readonly lifetimeMs: number;

  constructor(clock: Clock, lifetimeMs: number) {
    this.clock = clock;
    this.lifetimeMs = lifetimeMs;
  }

  private live(k: KeyPair | undefined): KeyPair | undefined {
    return k !== undefined && this.clock.now() - k.since < this.lifetimeMs ? k : undefined;
  }

  install(keys: PeerKeys, confirm: boolean): void {
    this.installs++;
    const pair: KeyPair = { since: this.clock.now(), txKeyId: keys.tx.keyId, tx: Buffer.from(keys.tx.key), rxKeyId: keys.rx.keyId, rx: Buffer.from(keys.rx.key) };
    let p = this.peers.get(keys.name);
    if (p === undefined) {
      p = { current: undefined, prev: undefined, pending: undefined, authenticated: false };
      this.peers.set(keys.name, p);
    }
    if (confirm && p.authenticated && p.current !== undefined) {
      p.pending = pair;
      return;
    }
    p.prev = p.current;
    p.current = pair;
    p.pending = undefined;
  }

  /** The key a datagram to `peer` is sealed with (undefined: none). */
  txKey(peer: PeerName): Buffer | undefined {
    return this.live(this.peers.get(peer)?.current)?.tx;
  }

  /** A datagram from `peer` sealed with `key` arrives: whether it authenticates (it may promote a pending pair). */
  receive(peer: PeerName, key: Buffer | undefined): boolean {
    const p = this.peers.get(peer);
    if (p === undefined || key === undefined) return false;
    if (p.pending !== undefined && p.pending.rx.equals(key)) {
      p.prev = p.current;
      p.current = { ...p.pending, since: this.clock.now() };
      p.pending = undefined;
      p.authenticated = true;
      return true;
    }
    if ((this.live(p.current)?.rx.equals(key) ?? false) || (this.live(p.prev)?.rx.equals(key) ?? false)) {
      p.authenticated = true;
      return true;
    }
    return false;
  }
}

/** A clock sharing `base`'s monotonic time and timers, with its own wall clock. */
function skewed(base: FakeClock, skewMs: () => number): Clock {
  return {
    now: () => base.now(),
    wallNow: () => base.wallNow() + skewMs(),
    setInterval: (fn, ms) => base.setInterval(fn, ms),
    setTimeout: (fn, ms) => base.setTimeout(fn, ms),
  };
}

export interface Message {
  from: string;
  to: string;
  data: Uint8Array;
}

export class PairWorld {
  readonly clock = new FakeClock();
  readonly ids = new Map<string, Identity>();
  readonly nodes = new Map<string, PairKeys>();
  readonly overlays = new Map<string, FakeKeyOverlay>();
  readonly skew = new Map<string, number>();
  /** Every message sent, copied as sent. */
  readonly log: Message[] = [];
  readonly queue: Message[] = [];
  deliver = true;
  /** "viewer peer" pairs where the viewer does not know the peer's public key. */
  readonly unknownKeys = new Set<string>();
  private readonly byName = new Map<PeerName, string>();
  private readonly init: Partial<PairKeysInit>;
  private readonly random: () => number;

  constructor(names: string[] = ['a', 'b'], init: Partial<PairKeysInit> = {}, random: () => number = () => 0.5) {
    this.init = init;
    this.random = random;
    // Names sort as given: the first is the smaller peer name (it drives rekeys).
    const ids = names.map((n) => generateIdentity(n)).sort((x, y) => (x.name < y.name ? -1 : 1));
    names.forEach((n, i) => {
      const id = ids[i]!;
      this.ids.set(n, id);
      this.byName.set(id.name, n);
      this.skew.set(n, 0);
    });
    for (const n of names) this.boot(n);
  }

  name(n: string): PeerName {
    return this.ids.get(n)!.name;
  }

  /** A fresh PairKeys and overlay for `n` (a restarted router keeps only its identity). */
  boot(n: string): PairKeys {
    this.nodes.get(n)?.stop();
    const me = this.ids.get(n)!;
    const overlay = new FakeKeyOverlay(this.clock, this.init.keyLifetimeMs ?? 2 * (this.init.rekeyAfterMs ?? 10_000));
    this.overlays.set(n, overlay);
    const node = new PairKeys(
      {
        identity: me,
        clock: skewed(this.clock, () => this.skew.get(n) ?? 0),
        logger: silentLogger,
        random: this.random,
        unicast: (to, data) => {
          const m = { from: n, to: this.byName.get(to)!, data: Uint8Array.from(data) };
          this.log.push({ ...m, data: Uint8Array.from(data) }); // recv may work in place on what it is given
          if (this.deliver) this.queue.push(m);
          return true;
        },
        publicKeyOf: (name) => (this.unknownKeys.has(`${n} ${this.byName.get(name) ?? ''}`) ? undefined : this.ids.get(this.byName.get(name) ?? '')?.publicKey),
        install: (keys, confirm) => overlay.install(keys, confirm),
      },
      { prologue: Buffer.from('test prologue'), rekeyAfterMs: 10_000, ...this.init },
    );
    this.nodes.set(n, node);
    node.start();
    return node;
  }

  flush(): void {
    while (this.queue.length > 0) {
      const m = this.queue.shift()!;
      this.nodes.get(m.to)!.onMessage(this.name(m.from), m.data);
    }
  }

  /** Every node wants keys with every other. */
  want(): void {
    for (const n of this.nodes.keys()) this.nodes.get(n)!.setWanted([...this.nodes.keys()].filter((x) => x !== n).map((x) => this.name(x)));
  }

  /** One datagram from `from` to `to` under `from`'s current send key: whether `to` opens it. */
  send(from: string, to: string): boolean {
    return this.overlays.get(to)!.receive(this.name(from), this.overlays.get(from)!.txKey(this.name(to)));
  }

  /** Traffic both ways works. */
  talks(a: string, b: string): boolean {
    const ab = this.send(a, b);
    const ba = this.send(b, a);
    return ab && ba;
  }

  /** The keys `n` uses with `peer` now (copies), to compare before and after. */
  keysOf(n: string, peer: string): { tx: string; rx: string } | undefined {
    const c = this.overlays.get(n)!.peers.get(this.name(peer))?.current;
    return c === undefined ? undefined : { tx: c.tx.toString('hex'), rx: c.rx.toString('hex') };
  }

  /** Advances the clock in `stepMs` steps, delivering messages after each. */
  run(ms: number, stepMs = 250, each?: () => void): void {
    for (let t = 0; t < ms; t += stepMs) {
      this.clock.advance(stepMs);
      this.flush();
      each?.();
    }
  }

  /** Messages sent from `from` to `to` of the given kind (1 INIT, 2 RESP). */
  sent(from: string, to: string, kind: 1 | 2): Message[] {
    return this.log.filter((m) => m.from === from && m.to === to && m.data[1] === kind);
  }
}
