/**
 * This router's own endpoints (issue 18): the candidates it offers peers to punch to, and what
 * peers observe of it.
 *
 *   local        each interface address (not loopback, not link-local) with the sleeve's UDP port,
 *                of the families the socket takes: 0.0.0.0 → IPv4, :: → both, a specific address
 *                → that address only (the socket receives nowhere else)
 *   advertised   --advertise
 *   reflexive    where peers saw our probes come from (`observe`, fed by `Overlay.onObserved`):
 *                kept per observer with when, bounded, aged out
 *   stun         set from outside (`setStun`), optional
 *
 * Offers carry at most `MAX_CANDIDATES`, in this order of preference: advertised, reflexive
 * (newest first), stun, local. An endpoint listed twice keeps its first kind (a reflexive one
 * that is a local endpoint is local).
 *
 * The NAT guess from fresh observations: unknown (none yet); none (every peer sees one of our
 * own local endpoints); endpoint-dependent (two peers see one outside address with different
 * ports: the NAT maps per destination); mapped (otherwise: one outside endpoint whoever looks, as
 * far as the observations tell; one observer cannot tell mapped from endpoint-dependent).
 *
 * The --advertise hint: a fresh observation that is not one of our local endpoints and whose
 * address no --advertise names means other routers cannot dial us; the hint says so (status) and
 * is logged once per suggested endpoint.
 */
import { isIP } from 'node:net';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { addressToBigint, bigintToAddress, formatEndpoint, parseEndpoint } from '../core/net.js';
import type { CandidateKind, PathCandidate, PeerName } from './contracts.js';
import type { EndpointsStatus } from '../api/types.js';

/** Candidates an offer carries at most (punch.ts refuses more). */
export const MAX_CANDIDATES = 16;

export type NatGuess = EndpointsStatus['nat'];

/** One address of an interface, as `os.networkInterfaces()` gives it. */
export interface InterfaceAddress {
  address: string;
  family: string | number;
  internal: boolean;
}

/** `os.networkInterfaces` or a fake of it. */
export type InterfacesSource = () => Record<string, readonly InterfaceAddress[] | undefined>;

/** Canonical text of an address (IPv4-mapped IPv6 as IPv4, IPv6 RFC 5952), or undefined. */
export function canonicalAddress(address: string): { address: string; family: 4 | 6 } | undefined {
  const bare = address.includes('%') ? address.slice(0, address.indexOf('%')) : address;
  const fam = isIP(bare);
  if (fam === 0) return undefined;
  if (fam === 4) return { address: bigintToAddress(addressToBigint(bare, 4), 4), family: 4 };
  const v = addressToBigint(bare, 6);
  if (v >> 32n === 0xffffn) return { address: bigintToAddress(v & 0xffffffffn, 4), family: 4 };
  return { address: bigintToAddress(v, 6), family: 6 };
}

/**
 * Why an address cannot be a candidate ('' when it can): unspecified, loopback, multicast,
 * broadcast, link-local.
 */
export function addressProblem(address: string, family: 4 | 6): string {
  const v = addressToBigint(address, family);
  if (family === 4) {
    if (v === 0n) return 'unspecified';
    if (v >> 24n === 127n) return 'loopback';
    if (v >> 28n === 0xen) return 'multicast';
    if (v === 0xffffffffn) return 'broadcast';
    if (v >> 16n === 0xa9fen) return 'link-local';
    if (v >> 24n === 0n) return 'unspecified';
    return '';
  }
  if (v === 0n) return 'unspecified';
  if (v === 1n) return 'loopback';
  if (v >> 120n === 0xffn) return 'multicast';
  if (v >> 118n === 0x3fan) return 'link-local';
  return '';
}

/**
 * An endpoint as candidates carry it ("a.b.c.d:port", "[v6]:port", canonical), or a reason it
 * cannot be one.
 */
export function candidateEndpoint(text: string): { endpoint: string; address: string; port: number; family: 4 | 6 } | string {
  if (typeof text !== 'string' || text.length > 64) return 'not an endpoint';
  const e = parseEndpoint(text);
  if (typeof e === 'string') return e;
  const a = canonicalAddress(e.address);
  if (a === undefined) return `"${text}" is not an IP address`;
  const problem = addressProblem(a.address, a.family);
  if (problem !== '') return `"${text}" is ${problem}`;
  return { endpoint: formatEndpoint({ address: a.address, port: e.port }), address: a.address, port: e.port, family: a.family };
}

export interface EndpointsComponents {
  clock: Clock;
  logger: Logger;
  /** The host's interfaces (default: none; the daemon passes `os.networkInterfaces`). */
  interfaces?: InterfacesSource;
}

export interface EndpointsInit {
  /** The sleeve's UDP port. */
  udpPort: number;
  /** The sleeve socket's address: 0.0.0.0, ::, or a specific one. */
  listenAddress: string;
  /** --advertise endpoints ("addr:port"). */
  advertise?: readonly string[];
  /** Observers remembered at most (the oldest observation goes first). Default 64. */
  maxObservers?: number;
  /** An observation not renewed for this long is dropped. Default 10 min (peers renew every ~25 s). */
  observationTtlMs?: number;
}

interface Observation {
  endpoint: string;
  address: string;
  port: number;
  at: number;
}

export class Endpoints {
  readonly stats = { observations: 0, invalidObservations: 0, changes: 0 };
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly interfaces: InterfacesSource;
  private readonly udpPort: number;
  private readonly families: ReadonlySet<4 | 6>;
  /** The one local address when the socket is bound to one. */
  private readonly boundAddress: string | undefined;
  private readonly advertised: string[];
  private readonly maxObservers: number;
  private readonly ttlMs: number;
  /** By observer; insertion order = oldest renewal first. */
  private readonly observed = new Map<PeerName, Observation>();
  private stun: string[] = [];
  private local: string[] = [];
  private current: PathCandidate[] = [];
  private currentKey = '';
  private readonly listeners: (() => void)[] = [];
  private readonly hinted = new Set<string>();

  constructor(components: EndpointsComponents, init: EndpointsInit) {
    this.clock = components.clock;
    this.log = components.logger;
    this.interfaces = components.interfaces ?? (() => ({}));
    this.udpPort = init.udpPort;
    const listen = canonicalAddress(init.listenAddress);
    if (listen === undefined || listen.address === '0.0.0.0') this.families = new Set([4]);
    else if (listen.address === '::') this.families = new Set([4, 6]);
    else {
      this.families = new Set([listen.family]);
      this.boundAddress = listen.address;
    }
    this.advertised = [];
    for (const a of init.advertise ?? []) {
      const c = candidateEndpoint(a);
      if (typeof c !== 'string' && !this.advertised.includes(c.endpoint)) this.advertised.push(c.endpoint);
    }
    this.maxObservers = init.maxObservers ?? 64;
    this.ttlMs = init.observationTtlMs ?? 600_000;
    this.local = this.localEndpoints();
    this.recompute();
  }

  /** Called after our candidates changed (not for a renewal of the same ones). */
  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  /** The candidates offered to peers now (at most MAX_CANDIDATES). */
  candidates(): readonly PathCandidate[] {
    return this.current;
  }

  /**
   * Peer `by` saw our probe come from `endpoint` (authenticated by the overlay). Invalid endpoints
   * are counted and dropped.
   */
  observe(by: PeerName, endpoint: string): void {
    const c = candidateEndpoint(endpoint);
    if (typeof c === 'string') {
      this.stats.invalidObservations++;
      return;
    }
    this.stats.observations++;
    this.observed.delete(by);
    this.observed.set(by, { endpoint: c.endpoint, address: c.address, port: c.port, at: this.clock.now() });
    while (this.observed.size > this.maxObservers) this.observed.delete(this.observed.keys().next().value!);
    this.recompute();
    this.logHint();
  }

  /** Endpoints a STUN client found (the whole list each time). */
  setStun(endpoints: readonly string[]): void {
    const out: string[] = [];
    for (const e of endpoints) {
      const c = candidateEndpoint(e);
      if (typeof c !== 'string' && !out.includes(c.endpoint)) out.push(c.endpoint);
    }
    this.stun = out;
    this.recompute();
  }

  /** Reads the interfaces again and ages observations out (every few seconds); true when the candidates changed. */
  refresh(): boolean {
    const now = this.clock.now();
    for (const [by, o] of this.observed) if (now - o.at >= this.ttlMs) this.observed.delete(by);
    this.local = this.localEndpoints();
    return this.recompute();
  }

  nat(): NatGuess {
    const fresh = [...this.observed.values()];
    if (fresh.length === 0) return 'unknown';
    const outside = fresh.filter((o) => !this.local.includes(o.endpoint));
    if (outside.length === 0) return 'none';
    const ports = new Map<string, Set<number>>();
    for (const o of outside) {
      const s = ports.get(o.address) ?? new Set<number>();
      s.add(o.port);
      ports.set(o.address, s);
    }
    for (const s of ports.values()) if (s.size > 1) return 'endpoint-dependent';
    return 'mapped';
  }

  /** The --advertise hint ('' when none). */
  hint(): string {
    const h = this.hintFor();
    return h === undefined ? '' : h.text;
  }

  /** The STUN client's report for `status()` (the daemon sets it when --stun is given). */
  stunReport: () => EndpointsStatus['stun'] = () => [];

  status(): Omit<EndpointsStatus, 'punches'> {
    const now = this.clock.now();
    const observed = [...this.observed.entries()]
      .map(([by, o]) => ({ endpoint: o.endpoint, by, agoMs: Math.max(0, Math.round(now - o.at)) }))
      .sort((a, b) => a.agoMs - b.agoMs);
    return { candidates: this.current.map((c) => ({ endpoint: c.endpoint, kind: c.kind })), observed, nat: this.nat(), hint: this.hint(), stun: this.stunReport() };
  }

  private hintFor(): { text: string; suggest: string } | undefined {
    let newest: Observation | undefined;
    for (const o of this.observed.values()) if (!this.local.includes(o.endpoint) && (newest === undefined || o.at >= newest.at)) newest = o;
    if (newest === undefined) return undefined;
    const seen = newest;
    if (this.advertised.some((a) => (candidateEndpoint(a) as { address: string }).address === seen.address)) return undefined;
    // Behind a NAT that maps per destination the port peers see is of no use to others: a port
    // forward would be of our own port.
    const suggest = this.nat() === 'endpoint-dependent' ? formatEndpoint({ address: seen.address, port: this.udpPort }) : seen.endpoint;
    return {
      suggest,
      text: `this router seems to be behind NAT (peers see it at ${seen.endpoint}); other routers cannot dial it: if the NAT forwards the port, give --advertise ${suggest}`,
    };
  }

  private logHint(): void {
    const h = this.hintFor();
    if (h === undefined || this.hinted.has(h.suggest)) return;
    if (this.hinted.size >= 64) this.hinted.clear();
    this.hinted.add(h.suggest);
    this.log.warn(h.text, { observed: [...this.observed.values()].map((o) => o.endpoint), nat: this.nat() });
  }

  private localEndpoints(): string[] {
    const out: string[] = [];
    if (this.boundAddress !== undefined) {
      if (addressProblem(this.boundAddress, this.families.has(6) ? 6 : 4) === '') out.push(formatEndpoint({ address: this.boundAddress, port: this.udpPort }));
      return out;
    }
    let all: ReturnType<InterfacesSource>;
    try {
      all = this.interfaces();
    } catch (err) {
      this.log.debug('cannot list the interfaces', { err: String(err) });
      return this.local;
    }
    for (const list of Object.values(all)) {
      for (const i of list ?? []) {
        if (i.internal) continue;
        const a = canonicalAddress(i.address);
        if (a === undefined || !this.families.has(a.family) || addressProblem(a.address, a.family) !== '') continue;
        const e = formatEndpoint({ address: a.address, port: this.udpPort });
        if (!out.includes(e)) out.push(e);
      }
    }
    return out;
  }

  /** Builds the candidate list; tells the listeners when it changed. */
  private recompute(): boolean {
    const list: PathCandidate[] = [];
    const seen = new Set<string>();
    const add = (endpoint: string, kind: CandidateKind): void => {
      if (seen.has(endpoint) || list.length >= MAX_CANDIDATES) return;
      seen.add(endpoint);
      list.push({ endpoint, kind });
    };
    for (const a of this.advertised) add(a, 'advertised');
    const reflexive = [...this.observed.values()].filter((o) => !this.local.includes(o.endpoint)).sort((a, b) => b.at - a.at);
    for (const o of reflexive) add(o.endpoint, 'reflexive');
    for (const s of this.stun) add(s, 'stun');
    for (const l of this.local) add(l, 'local');
    // The set decides whether peers hear of a change, not the order: a router behind a symmetric
    // NAT is seen at another port by every peer, and each renewed observation reorders the
    // reflexive ones; telling peers each time restarted their punching every second.
    const key = list.map((c) => `${c.kind} ${c.endpoint}`).sort().join(',');
    this.current = list;
    if (key === this.currentKey) return false;
    this.currentKey = key;
    this.stats.changes++;
    for (const l of this.listeners) l();
    return true;
  }
}
