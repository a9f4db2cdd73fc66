/**
 * Which addresses to dial and when: the configured peers and the endpoints learned from
 * topology, each with its state (connecting, handshaking, established, failed with the reason,
 * waiting) and exponential backoff with ±25% jitter up to a cap. A target is not dialled while
 * its peer is connected (by any connection) or is ourselves. No sockets here: `dial` is given.
 */
import type { Clock } from '../core/clock.js';
import { formatEndpoint, parseEndpoint } from '../core/net.js';
import type { PeerName } from './contracts.js';
import type { TargetState, TargetStatus } from '../api/types.js';

export type { TargetState, TargetStatus };

/** What the maker holds of a connection it started (a MeshConnection fits). */
export type Attempt = object;

interface Target {
  address: string;
  port: number;
  configured: boolean;
  /** From an outside source of truth (Kubernetes Nodes): kept until that source drops it. */
  discovered: boolean;
  state: TargetState;
  attempts: number;
  nextAt: number;
  lastError: string | undefined;
  peer: PeerName | undefined;
  attempt: Attempt | undefined;
}

export interface ConnectionMakerComponents {
  clock: Clock;
  /** Starts a connection to host:port; throws when it cannot even start. */
  dial(host: string, port: number): Attempt;
  /** Whether `peer` already has an established connection. */
  connected(peer: PeerName): boolean;
  self: PeerName;
  random?: () => number;
}

export interface ConnectionMakerInit {
  backoffBaseMs?: number;
  backoffCapMs?: number;
}

/** "addr:port" or "[v6]:port" → normalised key and parts; undefined when malformed. */
export function parseTarget(spec: string): { key: string; host: string; port: number } | undefined {
  const e = parseEndpoint(spec);
  return typeof e === 'string' ? undefined : { key: formatEndpoint(e), host: e.address, port: e.port };
}

export class ConnectionMaker {
  private readonly components: ConnectionMakerComponents;
  private readonly baseMs: number;
  private readonly capMs: number;
  private readonly random: () => number;
  private readonly targets = new Map<string, Target>();

  constructor(components: ConnectionMakerComponents, init: ConnectionMakerInit = {}) {
    this.components = components;
    this.baseMs = init.backoffBaseMs ?? 1000;
    this.capMs = init.backoffCapMs ?? 30_000;
    this.random = components.random ?? Math.random;
  }

  add(spec: string, configured: boolean, peer?: PeerName): void {
    const t = parseTarget(spec);
    if (t === undefined) return;
    const existing = this.targets.get(t.key);
    if (existing !== undefined) {
      if (configured) existing.configured = true;
      if (existing.peer === undefined) existing.peer = peer;
      return;
    }
    this.targets.set(t.key, {
      address: t.host, port: t.port, configured, discovered: false, state: 'waiting', attempts: 0, nextAt: 0, lastError: undefined, peer, attempt: undefined,
    });
  }

  /** Endpoints learned from topology, per peer; learned targets that are gone are dropped. */
  learn(endpoints: ReadonlyMap<PeerName, readonly string[]>): void {
    const live = new Set<string>();
    for (const [peer, eps] of endpoints) {
      if (peer === this.components.self) continue;
      for (const ep of eps) {
        const t = parseTarget(ep);
        if (t === undefined) continue;
        live.add(t.key);
        this.add(ep, false, peer);
      }
    }
    for (const [key, tg] of this.targets) if (!tg.configured && !tg.discovered && !live.has(key) && tg.attempt === undefined) this.targets.delete(key);
  }

  /**
   * The whole set of discovered targets (Kubernetes Nodes), replacing the previous one: new ones
   * are dialled, those no longer listed stop being redialled (unless configured). Malformed
   * endpoints are skipped.
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
  }

  /** Dials every target that is due. */
  tick(): void {
    const now = this.components.clock.now();
    for (const tg of this.targets.values()) {
      if (tg.attempt !== undefined || now < tg.nextAt) continue;
      if (tg.peer !== undefined && (tg.peer === this.components.self || this.components.connected(tg.peer))) continue;
      tg.state = 'connecting';
      try {
        tg.attempt = this.components.dial(tg.address, tg.port);
      } catch (err) {
        this.backoff(tg, err instanceof Error ? err.message : String(err));
      }
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
  }

  /** The attempt ended. `superseded`: it lost a tie-break to another connection to the same peer. */
  closed(attempt: Attempt, why: string, superseded: boolean): void {
    const tg = this.of(attempt);
    if (tg === undefined) return;
    tg.attempt = undefined;
    if (superseded) tg.state = 'established';
    else this.backoff(tg, why);
  }

  status(): TargetStatus[] {
    const now = this.components.clock.now();
    return [...this.targets.entries()].map(([address, tg]) => ({
      address,
      configured: tg.configured,
      discovered: tg.discovered,
      state: tg.state,
      attempts: tg.attempts,
      retryInMs: tg.state === 'failed' ? Math.max(0, Math.round(tg.nextAt - now)) : undefined,
      lastError: tg.lastError,
      peer: tg.peer,
    }));
  }

  private of(attempt: Attempt): Target | undefined {
    for (const tg of this.targets.values()) if (tg.attempt === attempt) return tg;
    return undefined;
  }

  private backoff(tg: Target, why: string): void {
    tg.attempts++;
    tg.state = 'failed';
    tg.lastError = why;
    const base = Math.min(this.capMs, this.baseMs * 2 ** Math.min(tg.attempts - 1, 16));
    tg.nextAt = this.components.clock.now() + base * (0.75 + this.random() * 0.5);
  }
}
