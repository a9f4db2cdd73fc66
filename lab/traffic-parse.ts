/**
 * Parsers for the output of the traffic tools the lab runs (iputils ping, iperf3 -J, tcpdump).
 * Pure functions: they throw a LabParseError that quotes the output when it is not what they expect.
 */
import { LabParseError } from './errors.js';

export interface PingResult {
  sent: number;
  received: number;
  /** Duplicate replies (not counted in `received` nor in `rtts`). */
  duplicates: number;
  /** Local send errors ("+N errors"), e.g. message too long with DF set. */
  errors: number;
  lossPct: number;
  /** Over the replies; NaN when there are none. */
  avgMs: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** One per reply with a time, in arrival order (replies carry no time when the payload is under 16 bytes). */
  rtts: number[];
}

export interface TcpResult {
  /** Goodput seen by the receiver. */
  gbps: number;
  retransmits: number;
  /** Sender rate per reporting interval (1 s by default), from intervals[].sum. */
  intervalsGbps: number[];
}

export interface UdpResult {
  sentPps: number;
  receivedPps: number;
  lossPct: number;
}

/** Nearest-rank percentile of an ascending array; NaN when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

const PING_SUMMARY = /^(\d+) packets transmitted, (\d+) received(?:, \+(\d+) duplicates)?(?:, \+(\d+) errors)?/m;
const PING_REPLY = /^\d+ bytes from .*\btime[=<]([\d.]+) ?ms/;

/** Reads iputils ping output: per-reply times (for percentiles) and the summary line. */
export function parsePing(out: string): PingResult {
  const summary = PING_SUMMARY.exec(out);
  if (summary === null) throw new LabParseError('ping', 'no "N packets transmitted, M received" line', out);
  const sent = Number(summary[1]);
  const received = Number(summary[2]);
  const rtts: number[] = [];
  for (const line of out.split('\n')) {
    if (line.includes('(DUP!)')) continue;
    const m = PING_REPLY.exec(line);
    if (m !== null) rtts.push(Number(m[1]));
  }
  const sorted = [...rtts].sort((a, b) => a - b);
  return {
    sent,
    received,
    duplicates: Number(summary[3] ?? 0),
    errors: Number(summary[4] ?? 0),
    lossPct: sent === 0 ? 100 : ((sent - received) / sent) * 100,
    avgMs: rtts.length === 0 ? NaN : rtts.reduce((a, b) => a + b, 0) / rtts.length,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    maxMs: sorted.at(-1) ?? NaN,
    rtts,
  };
}

interface IperfSum {
  seconds?: number;
  bits_per_second?: number;
  retransmits?: number;
  packets?: number;
  lost_packets?: number;
  lost_percent?: number;
}

interface IperfJson {
  error?: string;
  intervals?: { sum?: IperfSum }[];
  end?: { sum?: IperfSum; sum_sent?: IperfSum; sum_received?: IperfSum };
}

function readIperf(json: string): IperfJson {
  let j: unknown;
  try {
    j = JSON.parse(json);
  } catch (err) {
    throw new LabParseError('iperf3 -J', `not JSON (${(err as Error).message})`, json);
  }
  if (typeof j !== 'object' || j === null) throw new LabParseError('iperf3 -J', 'not a JSON object', json);
  const r = j as IperfJson;
  if (typeof r.error === 'string') throw new LabParseError('iperf3 -J', `iperf3 reported an error: ${r.error}`, '');
  return r;
}

function num(v: unknown, path: string, json: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new LabParseError('iperf3 -J', `${path} is missing or not a number`, json);
  return v;
}

/** Reads `iperf3 -J` TCP client output: end.sum_received.bits_per_second and end.sum_sent.retransmits. */
export function parseIperfTcp(json: string): TcpResult {
  const j = readIperf(json);
  const bps = num(j.end?.sum_received?.bits_per_second, 'end.sum_received.bits_per_second', json);
  const intervalsGbps = (j.intervals ?? []).map((iv, i) => num(iv.sum?.bits_per_second, `intervals[${i}].sum.bits_per_second`, json) / 1e9);
  return { gbps: bps / 1e9, retransmits: num(j.end?.sum_sent?.retransmits ?? 0, 'end.sum_sent.retransmits', json), intervalsGbps };
}

/** Reads `iperf3 -J -u` client output: packets sent, and received = expected minus lost at the server. */
export function parseIperfUdp(json: string): UdpResult {
  const end = readIperf(json).end;
  const sent = end?.sum_sent ?? end?.sum;
  const recv = end?.sum_received ?? end?.sum;
  const sentPackets = num(sent?.packets, 'end.sum_sent.packets', json);
  const sentSeconds = num(sent?.seconds, 'end.sum_sent.seconds', json);
  const expected = num(recv?.packets, 'end.sum_received.packets', json);
  const lost = num(recv?.lost_packets, 'end.sum_received.lost_packets', json);
  const recvSeconds = num(recv?.seconds, 'end.sum_received.seconds', json);
  if (sentSeconds <= 0 || recvSeconds <= 0) throw new LabParseError('iperf3 -J', 'a test of 0 seconds', json);
  return {
    sentPps: sentPackets / sentSeconds,
    receivedPps: (expected - lost) / recvSeconds,
    lossPct: recv?.lost_percent ?? (expected === 0 ? 0 : (lost / expected) * 100),
  };
}

/** The "N packets captured" count tcpdump prints on stderr when it stops; undefined when absent. */
export function parseTcpdumpCaptured(stderr: string): number | undefined {
  const m = /^(\d+) packets? captured/m.exec(stderr);
  return m === null ? undefined : Number(m[1]);
}
