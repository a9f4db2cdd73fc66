/**
 * Router reports, gossiped on the "reports" channel (issue 19, `weft status peers` and
 * `weft status ipam`): every router signs a short report of itself (its release, its mesh
 * connections with the data path and round trip it sees, its IPAM share per range) and the mesh
 * spreads it, so any router can show the whole mesh, not only its own view.
 *
 * State: one report per owner, newest version wins; at equal versions the larger canonical
 * encoding wins (a total order: merge is commutative, associative and idempotent). The report
 * carries its owner's public key (the owner name is its hash) and is signed by it, so a member
 * cannot forge or replace another router's report; a report received for ourselves never
 * replaces ours. A report is kept while its owner has a live topology record (`removeOwner` when
 * it leaves). Wire and bounds: reports-wire.ts.
 *
 * The channel is opened with `minProtocol: REPORTS_MIN_PROTOCOL`: neighbours of older mesh
 * protocols are not sent it (they would count it as an unknown channel).
 *
 * Refused, counted by reason (`stats.refused`) and logged once per sending peer and reason: a
 * report that is malformed, oversized, unsigned, past the version bound, not its key's, or badly
 * signed (the rest of its message merges). A message that is not one at all is a
 * GossipDecodeError (counted as `decodeErrors`); nothing changes.
 */
import type { Clock } from '../core/clock.js';
import { silentLogger, type Logger } from '../core/logger.js';
import type { GossipData, Gossiper, PeerName } from './contracts.js';
import {
  REPORT_REFUSALS, decodeReportsMessage, encodeReports, signReport, verifyReport,
  type ReportEntry, type ReportLink, type ReportRefusal, type ReportShare, type RouterReport,
} from './reports-wire.js';
import { Verifier } from './signing.js';
import type { RecordSigner } from './topology-record.js';

export { REPORTS_CHANNEL, REPORT_LIMITS, REPORT_PATHS, REPORT_REFUSALS, decodeReportsMessage, encodeReports, signReport, verifyReport } from './reports-wire.js';
export type { ReportEntry, ReportLink, ReportPath, ReportRefusal, ReportShare, RouterReport } from './reports-wire.js';

/** The lowest mesh protocol version that carries the "reports" channel. */
export const REPORTS_MIN_PROTOCOL = 3;

/** Total order of two entries of one owner: version, then canonical bytes. */
function wins(a: ReportEntry, b: ReportEntry): boolean {
  if (a.report.version !== b.report.version) return a.report.version > b.report.version;
  return Buffer.compare(a.bytes, b.bytes) > 0;
}

function byOwner(a: ReportEntry, b: ReportEntry): number {
  return a.report.owner < b.report.owner ? -1 : 1;
}

export class ReportsState implements GossipData {
  private readonly entries = new Map<PeerName, ReportEntry>();

  /** A state from signed entries (trusted: `signReport` or a verified decode). */
  static of(entries: Iterable<ReportEntry>): ReportsState {
    const s = new ReportsState();
    for (const e of entries) s.offer(e);
    return s;
  }

  /** Decodes a message and keeps the reports whose signatures check out (throws GossipDecodeError for a malformed message). */
  static decode(data: Uint8Array, verifier = new Verifier()): ReportsState {
    return ReportsState.of(decodeReportsMessage(data).entries.filter((e) => verifyReport(e, verifier)));
  }

  get(owner: PeerName): RouterReport | undefined {
    return this.entries.get(owner)?.report;
  }

  all(): RouterReport[] {
    return this.sorted().map((e) => e.report);
  }

  encode(): Uint8Array {
    return encodeReports(this.sorted());
  }

  merge(other: this): this | undefined {
    const changed: ReportEntry[] = [];
    for (const e of other.entries.values()) if (this.offer(e)) changed.push(e);
    return changed.length === 0 ? undefined : (ReportsState.of(changed) as this);
  }

  /** Stores `e` when it wins over what we hold; returns whether it did. */
  offer(e: ReportEntry): boolean {
    if (!this.wouldWin(e)) return false;
    this.entries.set(e.report.owner, e);
    return true;
  }

  wouldWin(e: ReportEntry): boolean {
    const cur = this.entries.get(e.report.owner);
    return cur === undefined || wins(e, cur);
  }

  /** Sets an entry unconditionally (the owner's own). */
  put(e: ReportEntry): void {
    this.entries.set(e.report.owner, e);
  }

  delete(owner: PeerName): boolean {
    return this.entries.delete(owner);
  }

  owners(): PeerName[] {
    return [...this.entries.keys()];
  }

  private sorted(): ReportEntry[] {
    return [...this.entries.values()].sort(byOwner);
  }
}

export interface ReportsComponents {
  clock: Clock;
  logger?: Logger;
  /** Signs our report with the identity key whose public key is `init.publicKey`. */
  signer: RecordSigner;
  verifier?: Verifier;
}

export interface ReportsInit {
  self: PeerName;
  publicKey: Uint8Array;
}

export interface ReportsStats {
  decodeErrors: number;
  /** Reports refused by themselves, by reason (the rest of their message merged). */
  refused: Record<ReportRefusal, number>;
  /** Reports of ours published. */
  published: number;
}

/** What our report says (the owner, key and version are the gossiper's). */
export interface ReportContent {
  release: string;
  links: readonly ReportLink[];
  ipam: readonly ReportShare[];
}

/** The "reports" gossiper of one router. */
export class Reports implements Gossiper {
  readonly self: PeerName;
  private readonly state = new ReportsState();
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly signer: RecordSigner;
  private readonly publicKey: Uint8Array;
  private readonly verifier: Verifier;
  /** Clock time (monotonic) each owner's current report arrived or was made. */
  private readonly receivedAt = new Map<PeerName, number>();
  private readonly localListeners = new Set<(delta: Uint8Array) => void>();
  private readonly logged = new Set<string>();
  private readonly refusals = Object.fromEntries(REPORT_REFUSALS.map((r) => [r, 0])) as Record<ReportRefusal, number>;
  private published = 0;
  decodeErrors = 0;

  constructor(components: ReportsComponents, init: ReportsInit) {
    this.clock = components.clock;
    this.log = components.logger ?? silentLogger;
    this.signer = components.signer;
    this.verifier = components.verifier ?? new Verifier();
    this.self = init.self;
    this.publicKey = Uint8Array.from(init.publicKey);
  }

  get stats(): ReportsStats {
    return { decodeErrors: this.decodeErrors, refused: { ...this.refusals }, published: this.published };
  }

  /**
   * Signs and announces our report. Its version is the wall clock in ms (above the last one), so
   * a restarted router's report wins over the one its previous run left in the mesh.
   */
  publish(content: ReportContent): RouterReport {
    const cur = this.state.get(this.self);
    const version = Math.max((cur?.version ?? 0) + 1, Math.floor(this.clock.wallNow()));
    const links = [...content.links].sort((a, b) => (a.peer < b.peer ? -1 : a.peer > b.peer ? 1 : 0));
    const e = signReport({ owner: this.self, publicKey: this.publicKey, version, release: content.release, links, ipam: content.ipam }, this.signer);
    this.state.put(e);
    this.receivedAt.set(this.self, this.clock.now());
    this.published++;
    const delta = encodeReports([e]);
    for (const l of this.localListeners) l(delta);
    return e.report;
  }

  get(owner: PeerName): RouterReport | undefined {
    return this.state.get(owner);
  }

  /** Age of an owner's current report (ms since it arrived here); undefined: none. */
  ageMs(owner: PeerName): number | undefined {
    const at = this.receivedAt.get(owner);
    return at === undefined ? undefined : Math.max(0, this.clock.now() - at);
  }

  all(): RouterReport[] {
    return this.state.all();
  }

  /** Drops the report of a router that left the topology. */
  removeOwner(owner: PeerName): boolean {
    if (owner === this.self) return false;
    this.receivedAt.delete(owner);
    return this.state.delete(owner);
  }

  /** Keeps only the reports of `live` owners (and ours). */
  retain(live: ReadonlySet<PeerName>): void {
    for (const o of this.state.owners()) if (!live.has(o)) this.removeOwner(o);
  }

  onLocalUpdate(listener: (delta: Uint8Array) => void): () => void {
    this.localListeners.add(listener);
    return () => this.localListeners.delete(listener);
  }

  gossip(): Uint8Array | undefined {
    return this.state.owners().length === 0 ? undefined : this.state.encode();
  }

  /** Gossip from neighbour `from` (named in logs). Throws GossipDecodeError only for a malformed message. */
  onGossip(data: Uint8Array, from?: PeerName): Uint8Array | undefined {
    let msg: ReturnType<typeof decodeReportsMessage>;
    try {
      msg = decodeReportsMessage(data);
    } catch (err) {
      this.decodeErrors++;
      throw err;
    }
    for (const r of msg.refused) this.refuse(from, r.owner, r.reason, r.detail);
    const changed: ReportEntry[] = [];
    for (const e of msg.entries) {
      if (e.report.owner === this.self) continue; // nobody else writes our report
      if (!this.state.wouldWin(e)) continue;
      if (!verifyReport(e, this.verifier)) {
        this.refuse(from, e.report.owner, 'badSignature', `report of ${e.report.owner} version ${e.report.version}: the signature does not check out`);
        continue;
      }
      this.state.put(e);
      this.receivedAt.set(e.report.owner, this.clock.now());
      changed.push(e);
    }
    if (changed.length === 0) return undefined;
    return encodeReports(changed.sort(byOwner));
  }

  onUnicast(from: PeerName, data: Uint8Array): void {
    this.onGossip(data, from);
  }

  onBroadcast(source: PeerName, data: Uint8Array): Uint8Array | undefined {
    return this.onGossip(data, source);
  }

  private refuse(from: PeerName | undefined, owner: PeerName | undefined, reason: ReportRefusal, detail: string): void {
    this.refusals[reason]++;
    const key = `${from ?? '-'} ${reason}`;
    if (this.logged.has(key)) return;
    this.logged.add(key);
    this.log.warn('router report refused (logged once per peer and reason, then counted)', { peer: from, owner, reason, detail });
  }
}
