/**
 * The wire of the "reports" channel (reports.ts): each router's own report of itself (release,
 * mesh connections with their data path and round trip, IPAM share per range), in canonical
 * msgpack (canonical-msgpack.ts), signed by the router's identity key (signing.ts).
 *
 *   message    = [1, [report, ...]]                      reports ascending by owner
 *   report     = [owner, publicKey, version, release, [link, ...], [share, ...], signature]
 *   link       = [peer, established, path, via | nil, rttMicros | nil]
 *   share      = [range, owned, free, used, quarantined]  (counts as decimal strings: IPv6 > 2^53)
 *   signature  = the owner's XEdDSA signature of signedBytes(REPORTS_LABEL, canonical report
 *                without its signature)
 *
 * `decodeReportsMessage` checks the shape and every bound (REPORT_LIMITS: with them a report
 * stays under 20 KiB); a report that breaks
 * one is refused by itself (counted by reason) and the rest of its message stands. The signature
 * is checked by the receiver before a report replaces what it holds (reports.ts).
 */
import { Unpackr } from 'msgpackr/unpack';
import { peerNameFromPublicKey } from '../core/ids.js';
import { Writer } from './canonical-msgpack.js';
import type { PeerName } from './contracts.js';
import { RecordRefused, decodeOwnerRecords, encodeOwnerRecords, type RefusedOwnerRecord } from './owner-records-wire.js';
import { SIGNATURE_LEN, signedBytes, type Verifier } from './signing.js';
import { MAX_LIVE_VERSION, PUBLIC_KEY_BYTES, isName, type RecordSigner } from './topology-record.js';

export const REPORTS_CHANNEL = 'reports';
export const REPORTS_LABEL = 'router-report v1';
const FORMAT = 1;

/** Bounds of a message and of one report. */
export const REPORT_LIMITS = {
  maxMessageBytes: 4 * 1024 * 1024,
  maxReports: 10_000,
  maxLinks: 256,
  maxShares: 16,
  maxReleaseChars: 64,
  maxRangeChars: 100,
  /** Round trips above this (µs) are refused: 10 minutes. */
  maxRttMicros: 600_000_000,
} as const;

/** The data path a router uses to a peer: kernel fast path, direct sleeve (maybe punched), relay, none. */
export type ReportPath = 'fastpath' | 'direct' | 'punched' | 'relay' | 'none';
export const REPORT_PATHS: readonly ReportPath[] = ['fastpath', 'direct', 'punched', 'relay', 'none'];

export interface ReportLink {
  readonly peer: PeerName;
  readonly established: boolean;
  readonly path: ReportPath;
  /** The relay when `path` is relay; else undefined. */
  readonly via: PeerName | undefined;
  /** Round trip in ms (µs resolution); undefined when not measured. */
  readonly rttMs: number | undefined;
}

export interface ReportShare {
  readonly range: string;
  readonly owned: string;
  readonly free: string;
  readonly used: string;
  readonly quarantined: string;
}

export interface RouterReport {
  readonly owner: PeerName;
  readonly publicKey: Uint8Array;
  readonly version: number;
  readonly release: string;
  readonly links: readonly ReportLink[];
  readonly ipam: readonly ReportShare[];
}

/** A report with its canonical bytes (signature included). */
export interface ReportEntry {
  readonly report: RouterReport;
  readonly bytes: Uint8Array;
}

export const REPORT_REFUSALS = ['malformed', 'oversized', 'unsigned', 'nameMismatch', 'versionBound', 'badSignature'] as const;
export type ReportRefusal = (typeof REPORT_REFUSALS)[number];

export type RefusedReport = RefusedOwnerRecord<ReportRefusal>;

const REPORTS_FRAME = { channel: REPORTS_CHANNEL, format: FORMAT, maxMessageBytes: REPORT_LIMITS.maxMessageBytes, maxRecords: REPORT_LIMITS.maxReports, noun: 'report' };
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: false, int64AsType: 'number' });
const writer = new Writer();
/** bin8 header + length + signature. */
const SIG_TAIL = 2 + SIGNATURE_LEN;
const DECIMAL = /^(0|[1-9][0-9]{0,38})$/;
const RANGE = /^[0-9a-fA-F.:/-]+$/;
const RELEASE = /^[\x21-\x7e]+$/;
const PATHS: ReadonlySet<string> = new Set(REPORT_PATHS);

function rttMicros(ms: number | undefined): number | undefined {
  if (ms === undefined || !Number.isFinite(ms) || ms < 0) return undefined;
  return Math.min(Math.round(ms * 1000), REPORT_LIMITS.maxRttMicros);
}

function writeBody(w: Writer, r: RouterReport, fields: number): void {
  w.at = 0;
  w.array(fields);
  w.str(r.owner);
  w.bin(r.publicKey);
  w.uint(r.version);
  w.str(r.release);
  w.array(r.links.length);
  for (const l of r.links) {
    w.array(5);
    w.str(l.peer);
    w.byte(l.established ? 0xc3 : 0xc2);
    w.str(l.path);
    if (l.via === undefined) w.byte(0xc0);
    else w.str(l.via);
    const rtt = rttMicros(l.rttMs);
    if (rtt === undefined) w.byte(0xc0);
    else w.uint(rtt);
  }
  w.array(r.ipam.length);
  for (const s of r.ipam) {
    w.array(5);
    w.str(s.range);
    w.str(s.owned);
    w.str(s.free);
    w.str(s.used);
    w.str(s.quarantined);
  }
}

/** The bytes the owner signs. */
export function reportSignedBytes(r: RouterReport): Buffer {
  writeBody(writer, r, 6);
  return signedBytes(REPORTS_LABEL, writer.take());
}

function encodeSigned(r: RouterReport, signature: Uint8Array): Uint8Array {
  writeBody(writer, r, 7);
  writer.bin(signature);
  return writer.take();
}

/** Our report, signed (`signer` must hold the key `r.publicKey`). */
export function signReport(r: RouterReport, signer: RecordSigner): ReportEntry {
  return { report: r, bytes: encodeSigned(r, signer.sign(reportSignedBytes(r))) };
}

/** Checks an entry's owner signature. */
export function verifyReport(e: ReportEntry, verifier: Verifier): boolean {
  const b = e.bytes;
  const body = Buffer.allocUnsafe(b.length - SIG_TAIL);
  body[0] = b[0]! - 1; // fixarray 7 → 6
  body.set(b.subarray(1, b.length - SIG_TAIL), 1);
  return verifier.verify(e.report.publicKey, signedBytes(REPORTS_LABEL, body), b.subarray(b.length - SIGNATURE_LEN));
}

/** A whole message from entries ascending by owner. */
export function encodeReports(entries: readonly ReportEntry[]): Uint8Array {
  return encodeOwnerRecords(FORMAT, entries.map((e) => e.bytes));
}

function decodeLink(raw: unknown, i: number, no: (reason: ReportRefusal, detail: string) => never): ReportLink {
  if (!Array.isArray(raw) || raw.length !== 5) return no('malformed', `link ${i} is not [peer, established, path, via, rtt]`);
  const [peer, established, path, via, rtt] = raw as unknown[];
  if (typeof peer !== 'string' || !isName(peer)) return no('malformed', `link ${i}: peer is not a peer name`);
  if (typeof established !== 'boolean') return no('malformed', `link ${i}: established is not a boolean`);
  if (typeof path !== 'string' || !PATHS.has(path)) return no('malformed', `link ${i}: path ${JSON.stringify(path)} is not one of ${REPORT_PATHS.join(', ')}`);
  if (via !== null && (typeof via !== 'string' || !isName(via))) return no('malformed', `link ${i}: via is neither nil nor a peer name`);
  if (rtt !== null && (typeof rtt !== 'number' || !Number.isSafeInteger(rtt) || rtt < 0 || rtt > REPORT_LIMITS.maxRttMicros)) {
    return no('malformed', `link ${i}: rtt is neither nil nor an integer of µs up to ${REPORT_LIMITS.maxRttMicros}`);
  }
  return { peer, established, path: path as ReportPath, via: via ?? undefined, rttMs: rtt === null ? undefined : rtt / 1000 };
}

function decodeShare(raw: unknown, i: number, no: (reason: ReportRefusal, detail: string) => never): ReportShare {
  if (!Array.isArray(raw) || raw.length !== 5) return no('malformed', `share ${i} is not [range, owned, free, used, quarantined]`);
  const [range, ...counts] = raw as unknown[];
  if (typeof range !== 'string' || range.length > REPORT_LIMITS.maxRangeChars || !RANGE.test(range)) return no('malformed', `share ${i}: range is not an address range`);
  for (const c of counts) if (typeof c !== 'string' || !DECIMAL.test(c)) return no('malformed', `share ${i}: ${JSON.stringify(c)} is not a decimal count`);
  const [owned, free, used, quarantined] = counts as string[];
  return { range, owned: owned!, free: free!, used: used!, quarantined: quarantined! };
}

function decodeReport(raw: unknown, i: number): ReportEntry {
  const no = (reason: ReportRefusal, detail: string): never => {
    throw new RecordRefused(reason, `report ${i}: ${detail}`);
  };
  if (!Array.isArray(raw)) no('malformed', 'not an array');
  const f = raw as unknown[];
  if (f.length === 6) no('unsigned', '6 fields and no signature');
  if (f.length !== 7) no('malformed', `${f.length} fields, expected [owner, publicKey, version, release, links, ipam, signature]`);
  const [owner, publicKey, version, release, links, ipam, signature] = f;
  if (typeof owner !== 'string' || !isName(owner)) no('malformed', 'owner is not a peer name');
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== PUBLIC_KEY_BYTES) no('malformed', `publicKey is not ${PUBLIC_KEY_BYTES} bytes`);
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version <= 0) no('malformed', 'version must be a positive integer');
  if ((version as number) > MAX_LIVE_VERSION) no('versionBound', `version ${String(version)} is above the bound ${MAX_LIVE_VERSION}`);
  if (typeof release !== 'string' || release.length > REPORT_LIMITS.maxReleaseChars || !RELEASE.test(release)) {
    no('malformed', `release is not printable ASCII of 1 to ${REPORT_LIMITS.maxReleaseChars} characters`);
  }
  if (!Array.isArray(links)) no('malformed', 'links is not a list');
  if ((links as unknown[]).length > REPORT_LIMITS.maxLinks) no('oversized', `${(links as unknown[]).length} links, at most ${REPORT_LIMITS.maxLinks}`);
  if (!Array.isArray(ipam)) no('malformed', 'ipam is not a list');
  if ((ipam as unknown[]).length > REPORT_LIMITS.maxShares) no('oversized', `${(ipam as unknown[]).length} ranges, at most ${REPORT_LIMITS.maxShares}`);
  const ls = (links as unknown[]).map((l, k) => decodeLink(l, k, no));
  for (let k = 1; k < ls.length; k++) if (ls[k]!.peer <= ls[k - 1]!.peer) no('malformed', 'links not strictly ascending by peer');
  const ss = (ipam as unknown[]).map((s, k) => decodeShare(s, k, no));
  if (!(signature instanceof Uint8Array) || signature.length !== SIGNATURE_LEN) no('unsigned', `signature is not ${SIGNATURE_LEN} bytes`);
  if (peerNameFromPublicKey(publicKey as Uint8Array) !== owner) no('nameMismatch', 'owner is not the name of its public key');
  const report: RouterReport = {
    owner: owner as string, publicKey: Uint8Array.from(publicKey as Uint8Array), version: version as number, release: release as string, links: ls, ipam: ss,
  };
  return { report, bytes: encodeSigned(report, signature as Uint8Array) };
}

/**
 * Decodes a message: its reports (signatures not checked yet) and those refused by themselves.
 * Throws GossipDecodeError naming the first message-level problem (nothing of it is used).
 */
export function decodeReportsMessage(data: Uint8Array): { entries: ReportEntry[]; refused: RefusedReport[] } {
  return decodeOwnerRecords<ReportEntry, ReportRefusal>(data, unpackr, REPORTS_FRAME, decodeReport);
}
