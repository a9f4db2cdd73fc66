/**
 * Which addresses to dial and when: the configured peers and the endpoints learned from
 * topology, each with its state (connecting, handshaking, established, failed with the reason,
 * waiting, left) and exponential backoff with ±25% jitter up to a cap. A target is not dialled
 * while its peer is connected (by any connection) or is ourselves. No sockets here: `dial` and
 * `resolve` are given.
 *
 * Left targets: an endpoint learned from topology (a private address of another site, say) that
 * has failed `leaveAfter` times while its peer is reachable through the mesh is left to the
 * punched path: dialled again only every `leftRetryMs`, or at once when the peer announces other
 * endpoints; back to the normal backoff when the peer is no longer reachable. Configured (--peer)
 * and discovered (Kubernetes) targets are never left; their log says the same once.
 *
 * Host names (configured targets only): resolved at each attempt, the addresses tried in the
 * resolver's order until one connects; a name that does not resolve is a failure like any other.
 */
import type { Clock } from '../core/clock.js';
import { parseHostPort } from '../core/host-port.js';
import type { Logger } from '../core/logger.js';
import { formatEndpoint } from '../core/net.js';
import type { PeerName } from './contracts.js';
import type { TargetState, TargetStatus } from '../api/types.js';

export type { TargetState, TargetStatus };

/** What the maker holds of a connection it started (a MeshConnection fits). */
export type Attempt = object;

interface Target {
  /** An IP address, or (configured targets only) a host name. */
  host: string;
  port: number;
  /** `host` is a name, resolved at each attempt. */
  named: boolean;
  configured: boolean;
  /** From an outside source of truth (Kubernetes Nodes): kept until that source drops it. */
  discovered: boolean;
  state: TargetState;
  attempts: number;
  nextAt: number;
  lastError: string | undefined;
  peer: PeerName | undefined;
  attempt: Attempt | undefined;
  /** A name's addresses of the current attempt, and which of them is (being) dialled. */
  addresses: readonly string[] | undefined;
  next: number;
  /** The address last dialled for a name. */
  dialled: string | undefined;
  /** The resolution under way (compared on its answer: a stale one is ignored). */
  resolving: object | undefined;
  /** The "tried N times; its peer is reachable" line was logged (once per episode). */
  told: boolean;
}

export interface ConnectionMakerComponents {
  clock: Clock;
  /** Starts a connection to address:port; throws when it cannot even start. */
  dial(host: string, port: number): Attempt;
  /** Whether `peer` already has an established connection. */
  connected(peer: PeerName): boolean;
  self: PeerName;
  random?: () => number;
  /** Whether `peer` is reachable through the mesh (has a route); default: never, so nothing is left. */
  reachable?(peer: PeerName): boolean;
  /** A host name's addresses in the order to try them; rejects when it does not resolve. Default: names fail. */
  resolve?(host: string): Promise<readonly string[]>;
  logger?: Logger;
}

export interface ConnectionMakerInit {
  backoffBaseMs?: number;
  backoffCapMs?: number;
  /** Failures after which a learned target of a reachable peer is left (default 4). */
  leaveAfter?: number;
  /** How often a left target is tried again (default 10 min). */
  leftRetryMs?: number;
}

/**
 * "addr:port" or "[v6]:port" (and with `names`, "host:port") → normalised key and parts;
 * undefined when malformed.
 */
export function parseTarget(spec: string, names = false): { key: string; host: string; port: number; named: boolean } | undefined {
  const e = parseHostPort(spec);
  if (typeof e === 'string' || (e.family === 0 && !names)) return undefined;
  return { key: formatEndpoint({ address: e.host, port: e.port }), host: e.host, port: e.port, named: e.family === 0 };
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

export class ConnectionMaker {
  private readonly components: ConnectionMakerComponents;
  private readonly baseMs: number;
  private readonly capMs: number;
  private readonly leaveAfter: number;
  private readonly leftRetryMs: number;
  private readonly random: () => number;
  private readonly targets = new Map<string, Target>();
  /** Each peer's announced endpoints at the last `learn` (sorted, joined): a change re-dials its left targets. */
  private readonly announced = new Map<PeerName, string>();
  private stopped = false;

  constructor(components: ConnectionMakerComponents, init: ConnectionMakerInit = {}) {
    this.components = components;
    this.baseMs = init.backoffBaseMs ?? 1000;
    this.capMs = init.backoffCapMs ?? 30_000;
    this.leaveAfter = init.leaveAfter ?? 4;
    this.leftRetryMs = init.leftRetryMs ?? 600_000;
    this.random = components.random ?? Math.random;
  }

  /** A target; host names only when `configured` (learned and discovered endpoints are addresses). */
  add(spec: string, configured: boolean, peer?: PeerName): void {
    const t = parseTarget(spec, configured);
    if (t === undefined) return;
    const existing = this.targets.get(t.key);
    if (existing !== undefined) {
      if (configured) existing.configured = true;
      if (existing.peer === undefined) existing.peer = peer;
      return;
    }
    this.targets.set(t.key, {
      host: t.host, port: t.port, named: t.named, configured, discovered: false, state: 'waiting', attempts: 0, nextAt: 0, lastError: undefined, peer,
      attempt: undefined, addresses: undefined, next: 0, dialled: undefined, resolving: undefined, told: false,
    });
  }

  /**
   * Endpoints learned from topology, per peer; learned targets that are gone are dropped. A peer
   * whose announced endpoints changed gets its left targets dialled again.
   */
  learn(endpoints: ReadonlyMap<PeerName, readonly string[]>): void {
    const live = new Set<string>();
    for (const [peer, eps] of endpoints) {
      if (peer === this.components.self) continue;
      const announced = [...eps].sort().join(' ');
      const before = this.announced.get(peer);
      this.announced.set(peer, announced);
      if (before !== undefined && before !== announced) {
        for (const tg of this.targets.values()) if (tg.peer === peer && tg.state === 'left') this.unleave(tg);
      }
      for (const ep of eps) {
        const t = parseTarget(ep);
        if (t === undefined) continue;
        live.add(t.key);
        this.add(ep, false, peer);
      }
    }
    for (const peer of this.announced.keys()) if (!endpoints.has(peer)) this.announced.delete(peer);
    for (const [key, tg] of this.targets) if (!tg.configured && !tg.discovered && !live.has(key) && tg.attempt === undefined) this.targets.delete(key);
  }

  /**
   * The whole set of discovered targets (Kubernetes Nodes), replacing the previous one: new ones
   * are dialled, those no longer listed stop being redialled (unless configured). Malformed
   * endpoints (and host names) are skipped.
   */
  setDiscovered(targets: readonly { endpoint: string; peer?: PeerName }[]): void {
    const live = new Set<string>();
    for (const d of targets) {
      const t = parseTarget(d.endpoint);
      if (t === undefined || d.peer === this.components.self) continue;
      live.add(t.key);
      this.add(d.endpoint, false, d.peer);
      const tg = this.targets.get(t.key)!;
      tg.discovered = true;
      if (d.peer !== undefined) tg.peer = d.peer;
    }
    for (const [key, tg] of this.targets) {
      if (!tg.discovered || live.has(key)) continue;
      tg.discovered = false;
      if (!tg.configured && tg.attempt === undefined) this.targets.delete(key);
    }
  }

  /** Stops dialling a forgotten peer's learned (and discovered) endpoints. */
  forget(peer: PeerName): void {
    for (const [key, tg] of this.targets) if (tg.peer === peer && !tg.configured) this.targets.delete(key);
    this.announced.delete(peer);
  }

  /** No more dials (a resolution that answers later is ignored). */
  stop(): void {
    this.stopped = true;
    for (const tg of this.targets.values()) tg.resolving = undefined;
  }

  /** Dials every target that is due; moves targets into and out of `left`. */
  tick(): void {
    if (this.stopped) return;
    const now = this.components.clock.now();
    for (const tg of this.targets.values()) {
      if (tg.attempt !== undefined || tg.resolving !== undefined) continue;
      if (tg.state === 'left' && !this.leavable(tg)) this.unleave(tg);
      else if (tg.state === 'failed' && tg.attempts >= this.leaveAfter && this.leavable(tg)) this.leave(tg, now);
      if (now < tg.nextAt) continue;
      if (tg.peer !== undefined && (tg.peer === this.components.self || this.components.connected(tg.peer))) continue;
      tg.state = 'connecting';
      if (tg.named && tg.addresses === undefined) this.resolveAndDial(tg);
      else this.dialNow(tg);
    }
  }

  /** The attempt's socket connected; the handshake runs. */
  handshaking(attempt: Attempt): void {
    const tg = this.of(attempt);
    if (tg !== undefined) tg.state = 'handshaking';
  }

  established(attempt: Attempt, peer: PeerName): void {
    const tg = this.of(attempt);
    if (tg === undefined) return;
    tg.state = 'established';
    tg.attempts = 0;
    tg.lastError = undefined;
    tg.peer = peer;
    tg.addresses = undefined;
    tg.told = false;
  }

  /** The attempt ended. `superseded`: it lost a tie-break to another connection to the same peer. */
  closed(attempt: Attempt, why: string, superseded: boolean): void {
    const tg = this.of(attempt);
    if (tg === undefined) return;
    tg.attempt = undefined;
    if (superseded) {
      tg.state = 'established';
      tg.addresses = undefined;
    } else this.failed(tg, why);
  }

  status(): TargetStatus[] {
    const now = this.components.clock.now();
    return [...this.targets.entries()].map(([address, tg]) => ({
      address,
      configured: tg.configured,
      discovered: tg.discovered,
      state: tg.state,
      attempts: tg.attempts,
      retryInMs: tg.state === 'failed' || tg.state === 'left' ? Math.max(0, Math.round(tg.nextAt - now)) : undefined,
      lastError: tg.lastError,
      peer: tg.peer,
      ...(tg.named && tg.dialled !== undefined ? { resolved: tg.dialled } : {}),
    }));
  }

  private of(attempt: Attempt): Target | undefined {
    for (const tg of this.targets.values()) if (tg.attempt === attempt) return tg;
    return undefined;
  }

  private resolveAndDial(tg: Target): void {
    const token = {};
    tg.resolving = token;
    const resolve = this.components.resolve ?? (() => Promise.reject(new Error('host names cannot be resolved here')));
    let pending: Promise<readonly string[]>;
    try {
      pending = resolve(tg.host);
    } catch (err) {
      pending = Promise.reject(err);
    }
    pending.then(
      (addresses) => {
        if (tg.resolving !== token || this.stopped) return;
        tg.resolving = undefined;
        if (addresses.length === 0) {
          this.backoff(tg, `resolve ${tg.host}: no addresses`);
          return;
        }
        tg.addresses = addresses;
        tg.next = 0;
        this.dialNow(tg);
      },
      (err: unknown) => {
        if (tg.resolving !== token || this.stopped) return;
        tg.resolving = undefined;
        this.backoff(tg, `resolve ${tg.host}: ${describe(err)}`);
      },
    );
  }

  private dialNow(tg: Target): void {
    const address = tg.addresses?.[tg.next] ?? tg.host;
    if (tg.named) tg.dialled = address;
    try {
      tg.attempt = this.components.dial(address, tg.port);
    } catch (err) {
      this.failed(tg, describe(err));
    }
  }

  /** An attempt failed: a name's next address is dialled at the next tick; else back off. */
  private failed(tg: Target, why: string): void {
    const addresses = tg.addresses;
    if (addresses !== undefined) {
      const which = `${formatEndpoint({ address: addresses[tg.next] ?? '?', port: tg.port })}: ${why}`;
      if (tg.next + 1 < addresses.length) {
        tg.next++;
        tg.lastError = which;
        tg.nextAt = this.components.clock.now();
        return;
      }
      tg.addresses = undefined;
      why = which;
    }
    this.backoff(tg, why);
  }

  private backoff(tg: Target, why: string): void {
    tg.attempts++;
    tg.lastError = why;
    const now = this.components.clock.now();
    if (tg.attempts >= this.leaveAfter && this.leavable(tg)) {
      this.leave(tg, now);
      return;
    }
    tg.state = 'failed';
    const base = Math.min(this.capMs, this.baseMs * 2 ** Math.min(tg.attempts - 1, 16));
    tg.nextAt = now + base * (0.75 + this.random() * 0.5);
    if (tg.attempts >= this.leaveAfter && !tg.told && (tg.configured || tg.discovered) && this.peerReachable(tg)) {
      tg.told = true;
      const kind = tg.configured ? 'it is configured (--peer)' : 'it comes from its Node';
      this.components.logger?.info(`${this.tried(tg)}; its peer is reachable through the mesh, but ${kind}: it keeps being retried with backoff`, this.fields(tg));
    }
  }

  /** A learned target (not configured, not discovered) whose peer is reachable through the mesh. */
  private leavable(tg: Target): boolean {
    return !tg.configured && !tg.discovered && this.peerReachable(tg);
  }

  private peerReachable(tg: Target): boolean {
    return tg.peer !== undefined && this.components.reachable?.(tg.peer) === true;
  }

  private leave(tg: Target, now: number): void {
    tg.state = 'left';
    tg.nextAt = now + this.leftRetryMs;
    if (tg.told) return;
    tg.told = true;
    this.components.logger?.info(`${this.tried(tg)}; its peer is reachable through the mesh: leaving it to the punched path`, {
      ...this.fields(tg), retryInMs: this.leftRetryMs,
    });
  }

  /** Back to the normal backoff, dialled at the next tick. */
  private unleave(tg: Target): void {
    tg.state = 'waiting';
    tg.attempts = 0;
    tg.nextAt = 0;
    tg.told = false;
  }

  private tried(tg: Target): string {
    const what = formatEndpoint({ address: tg.host, port: tg.port });
    return `${what} tried ${tg.attempts} times (${tg.lastError ?? 'no error'})`;
  }

  private fields(tg: Target): Record<string, unknown> {
    return { target: formatEndpoint({ address: tg.host, port: tg.port }), peer: tg.peer, attempts: tg.attempts, lastError: tg.lastError };
  }
}
