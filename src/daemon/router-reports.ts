/**
 * The daemon's side of router reports (src/mesh/reports.ts): opens the "reports" channel and
 * publishes our own report, built from what this router knows of itself:
 *
 *   release      the package version (src/core/version.ts, given in `init.release`)
 *   links        our mesh connections (our topology record), each with the data path the
 *                overlay switch uses to that peer (fastpath, direct, punched, relay via X,
 *                none) and the sleeve's round trip to it (ms, where measured)
 *   ipam         our share of each IPAM range: owned, free, used (allocated + reserved + held
 *                after reclaim), quarantined
 *
 * When: at start, when the content changes (checked on every topology change, coalesced, and
 * every `checkMs`), and at least every `intervalMs` (30 s) so a report's age says the router is
 * alive. Never per packet. Round trips alone do not make a change (they move all the time):
 * they are refreshed with the next report.
 */
import type { Clock, TimerHandle } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { Startable } from '../core/startable.js';
import type { PeerName } from '../mesh/contracts.js';
import type { Mesh } from '../mesh/mesh.js';
import { REPORTS_CHANNEL, REPORTS_MIN_PROTOCOL, Reports, type ReportContent, type ReportLink, type ReportPath, type ReportShare } from '../mesh/reports.js';
import type { RecordSigner } from '../mesh/topology-record.js';
import type { Topology } from '../mesh/topology.js';
import type { IpamSummary } from '../api/types.js';

/** What the overlay switch says of one peer's path (`OverlaySwitch.paths()`). */
export interface PathFacts {
  name: PeerName;
  path: 'fastpath' | 'direct' | 'relay' | 'none';
  via: PeerName | undefined;
  punched: boolean;
  rttMs: number | undefined;
}

export interface RouterReportsComponents {
  mesh: Pick<Mesh, 'newChannel'>;
  topology: Pick<Topology, 'self' | 'peers' | 'onChange'>;
  clock: Clock;
  logger: Logger;
  signer: RecordSigner;
  /** Each peer's data path now. */
  paths(): readonly PathFacts[];
  /** Our IPAM share; undefined when IPAM is off. */
  ipam?: () => IpamSummary | undefined;
}

export interface RouterReportsInit {
  self: PeerName;
  publicKey: Uint8Array;
  release: string;
  /** Longest time between two reports of ours. Default 30 s. */
  intervalMs?: number;
  /** How often the content is compared with the last report. Default 5 s. */
  checkMs?: number;
  /** Changes seen within this long make one report. Default 1 s. */
  settleMs?: number;
  /** Full-state gossip period of the channel. Default 30 s. */
  gossipIntervalMs?: number;
}

function pathOf(p: PathFacts | undefined): ReportPath {
  if (p === undefined) return 'none';
  return p.path === 'direct' && p.punched ? 'punched' : p.path;
}

function sum(...xs: string[]): string {
  return xs.reduce((a, x) => a + BigInt(x), 0n).toString();
}

/** Our report's content from the facts (pure: tests call it). */
export function reportContent(release: string, connections: readonly { peer: PeerName; established: boolean }[], paths: readonly PathFacts[], ipam: IpamSummary | undefined): ReportContent {
  const byName = new Map(paths.map((p) => [p.name, p]));
  const seen = new Set<PeerName>();
  const links: ReportLink[] = [];
  for (const c of connections) {
    if (seen.has(c.peer)) continue;
    seen.add(c.peer);
    const p = byName.get(c.peer);
    const path = pathOf(p);
    links.push({ peer: c.peer, established: c.established, path, via: path === 'relay' ? p?.via : undefined, rttMs: path === 'relay' || path === 'none' ? undefined : p?.rttMs });
  }
  const shares: ReportShare[] = (ipam?.ranges ?? []).map((r) => ({ range: r.range, owned: r.owned, free: r.free, used: sum(r.allocated, r.reserved, r.held), quarantined: r.quarantined }));
  return { release, links, ipam: shares };
}

/** The content without round trips: what decides whether a new report is due before the interval. */
function shape(c: ReportContent): string {
  return JSON.stringify([c.release, c.links.map((l) => [l.peer, l.established, l.path, l.via ?? null]), c.ipam]);
}

export class RouterReports implements Startable {
  readonly reports: Reports;
  private readonly c: RouterReportsComponents;
  private readonly init: Required<RouterReportsInit>;
  private readonly channel: ReturnType<Mesh['newChannel']>;
  private timer: TimerHandle | undefined = undefined;
  private settle: TimerHandle | undefined = undefined;
  private unsubscribe: (() => void) | undefined = undefined;
  private lastShape = '';
  private lastAt = -Infinity;

  constructor(components: RouterReportsComponents, init: RouterReportsInit) {
    this.c = components;
    this.init = { intervalMs: 30_000, checkMs: 5000, settleMs: 1000, gossipIntervalMs: 30_000, ...init };
    this.reports = new Reports({ clock: components.clock, logger: components.logger, signer: components.signer }, { self: init.self, publicKey: init.publicKey });
    this.channel = components.mesh.newChannel(REPORTS_CHANNEL, this.reports, { intervalMs: this.init.gossipIntervalMs, minProtocol: REPORTS_MIN_PROTOCOL });
  }

  start(): void {
    this.unsubscribe = this.c.topology.onChange(() => this.topologyChanged());
    this.channel.start();
    this.refresh(true);
    this.timer = this.c.clock.setInterval(() => this.refresh(false), this.init.checkMs);
  }

  stop(): void {
    this.timer?.cancel();
    this.settle?.cancel();
    this.timer = undefined;
    this.settle = undefined;
    this.unsubscribe?.();
    this.channel.stop();
  }

  /** Refused reports by reason, for status drops ("reports.badSignature", "reports.decodeErrors"). */
  drops(): Record<string, number> {
    const s = this.reports.stats;
    const out: Record<string, number> = { 'reports.decodeErrors': s.decodeErrors };
    for (const [k, v] of Object.entries(s.refused)) out[`reports.${k}`] = v;
    return out;
  }

  /** Publishes a report now when the content changed, or the interval passed (`force`: always). */
  refresh(force: boolean): boolean {
    const content = reportContent(this.init.release, this.c.topology.self.connections, this.c.paths(), this.c.ipam?.());
    const s = shape(content);
    const now = this.c.clock.now();
    if (!force && s === this.lastShape && now - this.lastAt < this.init.intervalMs) return false;
    this.reports.publish(content);
    this.lastShape = s;
    this.lastAt = now;
    return true;
  }

  private topologyChanged(): void {
    this.reports.retain(new Set(this.c.topology.peers().map((r) => r.name)));
    if (this.settle !== undefined) return;
    this.settle = this.c.clock.setTimeout(() => {
      this.settle = undefined;
      this.refresh(false);
    }, this.init.settleMs);
  }
}
