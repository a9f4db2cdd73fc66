/**
 * Traffic tools run inside lab namespaces, with parsers for their output: ping (RTT statistics
 * from every reply), iperf3 (TCP and UDP, JSON), a hashed TCP transfer, and packet counting with
 * tcpdump. Parsers are pure functions so they can be tested without root.
 */
import { WeftError } from '../core/errors.js';
import type { Lab } from './lab.js';

export interface PingResult {
  sent: number;
  received: number;
  lossPct: number;
  avgMs: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  rtts: number[];
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function parsePing(out: string): PingResult {
  const rtts = [...out.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));
  const summary = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(out);
  if (summary === null) throw new WeftError('ERR_PARSE', `cannot parse ping output: ${out.slice(-300)}`);
  const sent = Number(summary[1]);
  const received = Number(summary[2]);
  const sorted = [...rtts].sort((a, b) => a - b);
  return {
    sent,
    received,
    lossPct: sent === 0 ? 100 : ((sent - received) / sent) * 100,
    avgMs: rtts.length === 0 ? NaN : rtts.reduce((a, b) => a + b, 0) / rtts.length,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    maxMs: sorted.at(-1) ?? NaN,
    rtts,
  };
}

export async function ping(
  lab: Lab,
  fromNs: string,
  to: string,
  opts: { count: number; intervalS?: number; size?: number; timeoutS?: number; deadlineS?: number } = { count: 3 },
): Promise<PingResult> {
  const args = ['ping', '-n', '-c', String(opts.count), '-i', String(opts.intervalS ?? 0.2), '-W', String(opts.timeoutS ?? 1)];
  if (opts.size !== undefined) args.push('-s', String(opts.size), '-M', 'do');
  if (opts.deadlineS !== undefined) args.push('-w', String(opts.deadlineS));
  args.push(to);
  const r = await lab.exec(fromNs, args, { check: false, timeoutMs: ((opts.deadlineS ?? opts.count * (opts.intervalS ?? 0.2) + 5) + 10) * 1000 });
  return parsePing(r.stdout);
}

export interface TcpResult {
  gbps: number;
  retransmits: number;
}

export interface UdpResult {
  receivedPps: number;
  sentPps: number;
  lossPct: number;
}

interface IperfJson {
  error?: string;
  end?: {
    sum_received?: { bits_per_second?: number };
    sum_sent?: { retransmits?: number };
    sum?: { packets?: number; lost_packets?: number; seconds?: number; lost_percent?: number };
  };
}

export function parseIperfTcp(json: string): TcpResult {
  const j = JSON.parse(json) as IperfJson;
  if (j.error !== undefined) throw new WeftError('ERR_IPERF', `iperf3: ${j.error}`);
  const bps = j.end?.sum_received?.bits_per_second;
  if (bps === undefined) throw new WeftError('ERR_PARSE', 'iperf3 JSON has no end.sum_received.bits_per_second');
  return { gbps: bps / 1e9, retransmits: j.end?.sum_sent?.retransmits ?? 0 };
}

export function parseIperfUdp(json: string): UdpResult {
  const j = JSON.parse(json) as IperfJson;
  if (j.error !== undefined) throw new WeftError('ERR_IPERF', `iperf3: ${j.error}`);
  const s = j.end?.sum;
  if (s?.packets === undefined || s.seconds === undefined) throw new WeftError('ERR_PARSE', 'iperf3 JSON has no end.sum packets/seconds');
  const lost = s.lost_packets ?? 0;
  return { sentPps: s.packets / s.seconds, receivedPps: (s.packets - lost) / s.seconds, lossPct: s.lost_percent ?? 0 };
}

async function withIperfServer<T>(lab: Lab, serverNs: string, port: number, fn: () => Promise<T>): Promise<T> {
  const server = lab.spawn(serverNs, ['iperf3', '-s', '-1', '--forceflush', '-p', String(port)]);
  try {
    const deadline = Date.now() + 5000;
    while (!/Server listening/.test(server.stdoutText())) {
      if (Date.now() > deadline) throw new WeftError('ERR_IPERF', `iperf3 server in ${serverNs} did not start: ${server.stderrText()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return await fn();
  } finally {
    await server.stop(2000);
  }
}

export async function iperf3Tcp(
  lab: Lab, serverNs: string, serverAddr: string, clientNs: string,
  opts: { seconds: number; streams?: number; port?: number },
): Promise<TcpResult> {
  const port = opts.port ?? 5201;
  return withIperfServer(lab, serverNs, port, async () => {
    const r = await lab.exec(clientNs, ['iperf3', '-J', '-c', serverAddr, '-p', String(port), '-t', String(opts.seconds), '-P', String(opts.streams ?? 1)], {
      check: false,
      timeoutMs: (opts.seconds + 20) * 1000,
    });
    return parseIperfTcp(r.stdout);
  });
}

export async function iperf3Udp(
  lab: Lab, serverNs: string, serverAddr: string, clientNs: string,
  opts: { seconds: number; size?: number; bitrate?: string; port?: number },
): Promise<UdpResult> {
  const port = opts.port ?? 5201;
  return withIperfServer(lab, serverNs, port, async () => {
    const r = await lab.exec(
      clientNs,
      ['iperf3', '-J', '-u', '-c', serverAddr, '-p', String(port), '-t', String(opts.seconds), '-l', String(opts.size ?? 64), '-b', opts.bitrate ?? '0'],
      { check: false, timeoutMs: (opts.seconds + 20) * 1000 },
    );
    return parseIperfUdp(r.stdout);
  });
}

const RECEIVER = `
const net = require('node:net'), crypto = require('node:crypto');
const h = crypto.createHash('sha256'); let n = 0;
const srv = net.createServer((s) => { s.on('data', (d) => { h.update(d); n += d.length; }); s.on('end', () => { process.stdout.write(JSON.stringify({ sha: h.digest('hex'), bytes: n }) + '\\n'); srv.close(); }); });
srv.listen(Number(process.argv[1]), '::', () => process.stderr.write('listening\\n'));`;

const SENDER = `
const net = require('node:net'), crypto = require('node:crypto');
const [host, port, total] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
const h = crypto.createHash('sha256'); const chunk = Buffer.alloc(1 << 16); let x = 12345, sent = 0; const t0 = Date.now();
const s = net.connect(port, host, () => {
  const pump = () => { while (sent < total) { const n = Math.min(chunk.length, total - sent);
      for (let i = 0; i < n; i += 4) { x = (Math.imul(x, 1103515245) + 12345) >>> 0; chunk.writeUInt32LE(x, i); }
      const c = Buffer.from(chunk.subarray(0, n)); h.update(c); sent += n; if (!s.write(c)) { s.once('drain', pump); return; } }
    s.end(() => process.stdout.write(JSON.stringify({ sha: h.digest('hex'), bytes: sent, seconds: (Date.now() - t0) / 1000 }) + '\\n')); };
  pump(); });`;

export interface TransferResult {
  sentSha256: string;
  receivedSha256: string;
  bytes: number;
  receivedBytes: number;
  seconds: number;
}

/** Streams `bytes` of pseudo-random data over TCP from one namespace to another and hashes both ends. */
export async function tcpTransferSha256(lab: Lab, fromNs: string, toNs: string, toAddr: string, bytes: number, port = 7777): Promise<TransferResult> {
  const receiver = lab.spawn(toNs, [process.execPath, '-e', RECEIVER, String(port)]);
  try {
    const deadline = Date.now() + 5000;
    while (!receiver.stderrText().includes('listening')) {
      if (Date.now() > deadline) throw new WeftError('ERR_LAB', `transfer receiver did not start: ${receiver.stderrText()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const s = await lab.exec(fromNs, [process.execPath, '-e', SENDER, toAddr, String(port), String(bytes)], { timeoutMs: 600_000 });
    await Promise.race([receiver.exited, new Promise((r) => setTimeout(r, 30_000))]);
    const sent = JSON.parse(s.stdout) as { sha: string; bytes: number; seconds: number };
    const got = JSON.parse(receiver.stdoutText().trim() || '{}') as { sha?: string; bytes?: number };
    return { sentSha256: sent.sha, receivedSha256: got.sha ?? '', bytes: sent.bytes, receivedBytes: got.bytes ?? 0, seconds: sent.seconds };
  } finally {
    await receiver.stop(2000);
  }
}

export interface Capture {
  /** Stops the capture and returns the number of matching packets seen. */
  stop(): Promise<number>;
}

/** Counts packets matching a tcpdump filter on an interface until stopped. */
export async function capture(lab: Lab, ns: string, ifName: string, filter: string): Promise<Capture> {
  const p = lab.spawn(ns, ['tcpdump', '-l', '-n', '-i', ifName, '-Q', 'in', filter]);
  const deadline = Date.now() + 5000;
  while (!/listening on/.test(p.stderrText())) {
    if (Date.now() > deadline) throw new WeftError('ERR_LAB', `tcpdump did not start in ${ns}: ${p.stderrText()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    async stop() {
      await new Promise((r) => setTimeout(r, 300));
      await p.stop(2000);
      return p.stdoutText().split('\n').filter((l) => l.trim() !== '').length;
    },
  };
}
