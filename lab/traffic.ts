/**
 * Traffic tools run inside lab namespaces: ping (RTT percentiles from every reply), iperf3 (TCP
 * and UDP, JSON), a TCP transfer hashed at both ends, and packet counting with tcpdump. Servers
 * the helpers start are always stopped before they return, whatever happened.
 */
import { isIP } from 'node:net';
import { LabError, LabParseError } from './errors.js';
import type { Lab } from './lab.js';
import type { LabProcess } from './lab-process.js';
import { parseIperfTcp, parseIperfUdp, parsePing, parseTcpdumpCaptured, type PingResult, type TcpResult, type UdpResult } from './traffic-parse.js';

export * from './traffic-parse.js';

export interface PingOptions {
  count: number;
  /** Seconds between requests (default 0.2; below 0.2 needs root, which the lab has). */
  intervalS?: number;
  /** ICMP payload bytes; sets DF too unless `dontFragment` is false. */
  size?: number;
  dontFragment?: boolean;
  /** Seconds to wait for each reply (default 1). */
  timeoutS?: number;
  /** Stop after this many seconds whatever the count. */
  deadlineS?: number;
  /** Default: from the address. */
  v6?: boolean;
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `ready` every 50 ms until it is true; fails early when `proc` exits. */
async function waitFor(what: string, proc: LabProcess, ready: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  let exited = false;
  void proc.exited.then(() => (exited = true));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await ready()) return;
    if (exited) throw new LabError(`${what} in ${proc.ns} exited before it was ready: ${proc.stderrText().trim() || proc.stdoutText().trim()}`);
    if (Date.now() > deadline) throw new LabError(`${what} in ${proc.ns} was not ready after ${timeoutMs} ms: ${proc.stderrText().trim()}`);
    await delay(50);
  }
}

export async function ping(lab: Lab, fromNs: string, toAddr: string, opts: PingOptions): Promise<PingResult> {
  const interval = opts.intervalS ?? 0.2;
  const timeout = opts.timeoutS ?? 1;
  const args = ['ping', '-n', (opts.v6 ?? isIP(toAddr) === 6) ? '-6' : '-4', '-c', String(opts.count), '-i', String(interval), '-W', String(timeout)];
  if (opts.size !== undefined) args.push('-s', String(opts.size));
  if (opts.size !== undefined && opts.dontFragment !== false) args.push('-M', 'do');
  if (opts.deadlineS !== undefined) args.push('-w', String(opts.deadlineS));
  args.push(toAddr);
  const limitS = opts.deadlineS ?? opts.count * interval + timeout;
  const r = await lab.exec(fromNs, args, { check: false, timeoutMs: (limitS + 10) * 1000 });
  try {
    return parsePing(r.stdout);
  } catch (err) {
    throw new LabError(`ping ${toAddr} from ${fromNs} (exit ${r.code}): ${r.stderr.trim() || 'no stderr'}`, { cause: err });
  }
}

async function listening(lab: Lab, ns: string, port: number, proto: 'tcp' | 'udp' = 'tcp'): Promise<boolean> {
  const r = await lab.exec(ns, ['ss', '-H', '-n', '-l', proto === 'tcp' ? '-t' : '-u', 'sport', '=', `:${port}`], { check: false, timeoutMs: 5000 });
  return r.stdout.trim() !== '';
}

async function withIperfServer<T>(lab: Lab, serverNs: string, port: number, fn: () => Promise<T>): Promise<T> {
  const server = lab.spawn(serverNs, ['iperf3', '-s', '-1', '-p', String(port)]);
  try {
    await waitFor(`iperf3 server on port ${port}`, server, () => listening(lab, serverNs, port));
    return await fn();
  } finally {
    await server.stop(2000);
  }
}

async function iperfClient<T>(lab: Lab, clientNs: string, args: string[], seconds: number, parse: (json: string) => T): Promise<T> {
  const r = await lab.exec(clientNs, ['iperf3', '-J', ...args], { check: false, timeoutMs: (seconds + 30) * 1000 });
  try {
    return parse(r.stdout);
  } catch (err) {
    throw new LabError(`iperf3 ${args.join(' ')} in ${clientNs} failed (exit ${r.code}): ${(err as Error).message} ${r.stderr.trim()}`, { cause: err });
  }
}

export async function iperf3Tcp(
  lab: Lab,
  serverNs: string,
  serverAddr: string,
  clientNs: string,
  opts: { seconds: number; streams?: number; port?: number },
): Promise<TcpResult> {
  const port = opts.port ?? 5201;
  const args = ['-c', serverAddr, '-p', String(port), '-t', String(opts.seconds), '-P', String(opts.streams ?? 1)];
  return withIperfServer(lab, serverNs, port, () => iperfClient(lab, clientNs, args, opts.seconds, parseIperfTcp));
}

export async function iperf3Udp(
  lab: Lab,
  serverNs: string,
  serverAddr: string,
  clientNs: string,
  opts: { seconds: number; size?: number; bitrate?: string; port?: number },
): Promise<UdpResult> {
  const port = opts.port ?? 5201;
  const args = ['-u', '-c', serverAddr, '-p', String(port), '-t', String(opts.seconds), '-l', String(opts.size ?? 64), '-b', opts.bitrate ?? '0'];
  return withIperfServer(lab, serverNs, port, () => iperfClient(lab, clientNs, args, opts.seconds, parseIperfUdp));
}

// Receiver: one connection on ADDR:PORT, hashes everything, prints {sha, bytes, seconds} at the end.
const RECEIVER = `
const net = require('node:net'), crypto = require('node:crypto');
const [host, port] = [process.argv[1], Number(process.argv[2])];
const srv = net.createServer((s) => {
  srv.close();
  const h = crypto.createHash('sha256'); let n = 0; const t0 = process.hrtime.bigint();
  s.on('data', (d) => { h.update(d); n += d.length; });
  s.on('end', () => { process.stdout.write(JSON.stringify({ sha: h.digest('hex'), bytes: n, seconds: Number(process.hrtime.bigint() - t0) / 1e9 }) + '\\n'); s.end(); });
  s.on('error', (e) => { process.stderr.write('receive error: ' + e.message + '\\n'); process.exit(1); });
});
srv.listen({ host, port }, () => process.stderr.write('listening\\n'));`;

// Sender: AES-128-CTR keystream with a fixed key (deterministic, not compressible, fast), hashed as sent.
const SENDER = `
const net = require('node:net'), crypto = require('node:crypto');
const [host, port, total] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
const ks = crypto.createCipheriv('aes-128-ctr', Buffer.alloc(16, 7), Buffer.alloc(16, 1));
const zeros = Buffer.alloc(256 * 1024); const h = crypto.createHash('sha256'); let sent = 0;
const s = net.connect({ host, port }, () => {
  const pump = () => {
    while (sent < total) {
      const c = ks.update(zeros.subarray(0, Math.min(zeros.length, total - sent)));
      h.update(c); sent += c.length;
      if (!s.write(c)) { s.once('drain', pump); return; }
    }
    s.end(() => process.stdout.write(JSON.stringify({ sha: h.digest('hex'), bytes: sent }) + '\\n'));
  };
  pump();
});
s.on('error', (e) => { process.stderr.write('send error: ' + e.message + '\\n'); process.exit(1); });`;

export interface TransferResult {
  sentSha256: string;
  receivedSha256: string;
  /** Bytes sent. */
  bytes: number;
  receivedBytes: number;
  /** Receiver side, from accepting the connection to the end of the stream. */
  seconds: number;
}

function parseJsonLine<T>(tool: string, stdout: string, stderr = ''): T {
  const line = stdout.trim().split('\n').at(-1) ?? '';
  try {
    return JSON.parse(line) as T;
  } catch {
    throw new LabParseError(tool, 'no JSON result line', `${stdout}\nstderr: ${stderr}`);
  }
}

/**
 * Streams `bytes` of deterministic pseudo-random data over TCP from `fromNs` to `toAddr` (in
 * `toNs`) with two small Node scripts, and hashes what was sent and what arrived.
 */
export async function tcpTransferSha256(
  lab: Lab,
  fromNs: string,
  toNs: string,
  toAddr: string,
  bytes: number,
  port = 7777,
  opts: { timeoutMs?: number } = {},
): Promise<TransferResult> {
  if (!Number.isSafeInteger(bytes) || bytes < 0) throw new LabError(`transfer size must be a non-negative integer, not ${bytes}`);
  const timeoutMs = opts.timeoutMs ?? 60_000 + bytes / 2_000; // at least 2 MB/s
  const receiver = lab.spawn(toNs, [process.execPath, '-e', RECEIVER, toAddr, String(port)]);
  try {
    await waitFor('transfer receiver', receiver, () => receiver.stderrText().includes('listening'));
    const s = await lab.exec(fromNs, [process.execPath, '-e', SENDER, toAddr, String(port), String(bytes)], { timeoutMs });
    const sent = parseJsonLine<{ sha: string; bytes: number }>('transfer sender', s.stdout, s.stderr);
    const finished = await Promise.race([receiver.exited.then(() => true), delay(30_000).then(() => false)]);
    if (!finished) throw new LabError(`transfer receiver in ${toNs} did not see the end of the stream 30 s after the sender finished`);
    const got = parseJsonLine<{ sha: string; bytes: number; seconds: number }>('transfer receiver', receiver.stdoutText(), receiver.stderrText());
    return { sentSha256: sent.sha, receivedSha256: got.sha, bytes: sent.bytes, receivedBytes: got.bytes, seconds: got.seconds };
  } finally {
    await receiver.stop(2000);
  }
}

// UDP receiver: counts datagrams on ADDR:PORT until SIGTERM, then prints {received, bytes}.
const UDP_RECEIVER = `
const dgram = require('node:dgram');
const [host, port] = [process.argv[1], Number(process.argv[2])];
const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4'); let n = 0, bytes = 0;
s.on('message', (m) => { n++; bytes += m.length; });
process.on('SIGTERM', () => { process.stdout.write(JSON.stringify({ received: n, bytes }) + '\\n'); process.exit(0); });
s.bind(port, host, () => process.stderr.write('listening\\n'));`;

// UDP sender: COUNT datagrams of SIZE bytes, 1 ms apart; prints {sent, errors}.
const UDP_SENDER = `
const dgram = require('node:dgram');
const [host, port, count, size, bc] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3]), Number(process.argv[4]), process.argv[5] === '1'];
const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4'); const buf = Buffer.alloc(size, 0x5a); let i = 0, errors = 0;
const next = () => {
  if (i >= count) { process.stdout.write(JSON.stringify({ sent: i, errors }) + '\\n'); s.close(); return; }
  i++; s.send(buf, port, host, (e) => { if (e) errors++; setTimeout(next, 1); });
};
s.bind(0, () => { if (bc) s.setBroadcast(true); next(); });`;

// Broadcast sender: COUNT datagrams "TAG-0", "TAG-1", ... to ADDR:PORT, 100 ms apart.
const BROADCAST_SENDER = `
const d = require('node:dgram').createSocket('udp4');
const [tag, port, addr, count] = [process.argv[1], Number(process.argv[2]), process.argv[3], Number(process.argv[4])];
d.bind(() => { d.setBroadcast(true); let n = 0;
  const t = setInterval(() => { d.send(tag + '-' + n, port, addr); if (++n === count) { clearInterval(t); setTimeout(() => d.close(), 100); } }, 100); });`;

/** Sends `count` UDP broadcasts ("tag-0", "tag-1", ...) from `ns` to `address:port`, 100 ms apart. */
export async function sendBroadcasts(lab: Lab, ns: string, o: { tag: string; port: number; address: string; count: number }): Promise<void> {
  await lab.exec(ns, [process.execPath, '-e', BROADCAST_SENDER, o.tag, String(o.port), o.address, String(o.count)]);
}

export interface UdpProbeOptions {
  /** Datagrams to send (default 20, 1 ms apart). */
  count?: number;
  /** UDP payload bytes (default 64); the IP packet is 28 more. */
  size?: number;
  port?: number;
  /** The receiver binds here (default `toAddr`); use '0.0.0.0' to receive broadcasts. */
  listenAddr?: string;
  /** Allow a broadcast destination. */
  broadcast?: boolean;
}

/** Sends UDP datagrams from `fromNs` to `toAddr` and counts how many a receiver in `toNs` got. */
export async function udpProbe(
  lab: Lab,
  fromNs: string,
  toNs: string,
  toAddr: string,
  opts: UdpProbeOptions = {},
): Promise<{ sent: number; received: number; sendErrors: number }> {
  const port = String(opts.port ?? 9999);
  const receiver = lab.spawn(toNs, [process.execPath, '-e', UDP_RECEIVER, opts.listenAddr ?? toAddr, port]);
  try {
    await waitFor('UDP receiver', receiver, () => receiver.stderrText().includes('listening'));
    const argv = [process.execPath, '-e', UDP_SENDER, toAddr, port, String(opts.count ?? 20), String(opts.size ?? 64), opts.broadcast === true ? '1' : '0'];
    const s = await lab.exec(fromNs, argv, { timeoutMs: 30_000 });
    const sent = parseJsonLine<{ sent: number; errors: number }>('UDP sender', s.stdout, s.stderr);
    await delay(200);
    await receiver.stop(2000);
    const got = parseJsonLine<{ received: number }>('UDP receiver', receiver.stdoutText(), receiver.stderrText());
    return { sent: sent.sent, received: got.received, sendErrors: sent.errors };
  } finally {
    await receiver.stop(2000);
  }
}

// UDP sequence receiver: checks each datagram (SIZE bytes: a 4-byte sequence number, then bytes
// derived from it) until SIGTERM, then prints what it saw.
const UDP_SEQ_RECEIVER = `
const dgram = require('node:dgram');
const [host, port, size] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
let received = 0, corrupt = 0, outOfOrder = 0, last = -1;
s.on('message', (m) => {
  received++;
  if (m.length !== size) { corrupt++; return; }
  const seq = m.readUInt32BE(0);
  for (let j = 4; j < size; j++) if (m[j] !== ((seq * 131 + j * 7) & 0xff)) { corrupt++; return; }
  if (seq <= last) outOfOrder++; else last = seq;
});
process.on('SIGTERM', () => { process.stdout.write(JSON.stringify({ received, corrupt, outOfOrder }) + '\\n'); process.exit(0); });
s.bind(port, host, () => process.stderr.write('listening\\n'));`;

// UDP sequence sender: COUNT datagrams of SIZE bytes in bursts of BURST sent back to back (so a
// router reads several in one batch), PAUSE ms between bursts; prints {sent, errors}.
const UDP_SEQ_SENDER = `
const dgram = require('node:dgram');
const [host, port, count, size, burst, pause] = process.argv.slice(1).map((v, i) => (i === 0 ? v : Number(v)));
const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
let seq = 0, errors = 0;
const next = () => {
  if (seq >= count) { process.stdout.write(JSON.stringify({ sent: seq, errors }) + '\\n'); s.close(); return; }
  let pending = 0;
  for (let k = 0; k < burst && seq < count; k++, seq++) {
    const b = Buffer.alloc(size);
    b.writeUInt32BE(seq, 0);
    for (let j = 4; j < size; j++) b[j] = (seq * 131 + j * 7) & 0xff;
    pending++;
    s.send(b, port, host, (e) => { if (e) errors++; if (--pending === 0) setTimeout(next, pause); });
  }
};
s.bind(0, next);`;

// The same datagrams from Python, SEGS at a time in one send with UDP_SEGMENT (UDP GSO, as QUIC
// stacks send), BURST datagrams back to back, PAUSE ms between bursts; prints {sent, errors}.
const UDP_SEQ_GSO_SENDER = `
import json, socket, sys, time
host, port, count, size, burst, pause, segs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]), int(sys.argv[7])
s = socket.socket(socket.AF_INET6 if ':' in host else socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_UDP, 103, size)  # UDP_SEGMENT
s.connect((host, port))
def dgram(seq):
    return seq.to_bytes(4, 'big') + bytes(((seq * 131 + j * 7) & 0xff) for j in range(4, size))
seq = 0
errors = 0
while seq < count:
    end = min(count, seq + burst)
    while seq < end:
        n = min(segs, end - seq)
        try:
            s.send(b''.join(dgram(seq + k) for k in range(n)))
        except OSError:
            errors += 1
        seq += n
    time.sleep(pause / 1000)
print(json.dumps({'sent': seq, 'errors': errors}))
`;

export interface UdpSequenceOptions {
  /** Datagrams (default 2000). */
  count?: number;
  /** UDP payload bytes, at least 4 (default 64). */
  size?: number;
  /** Datagrams sent back to back (default 32). */
  burst?: number;
  /** Milliseconds between bursts (default 5). */
  pauseMs?: number;
  port?: number;
  /** Send this many datagrams per send() with UDP_SEGMENT (a Python sender); default: one per send. */
  gsoSegments?: number;
}

export interface UdpSequenceResult {
  sent: number;
  sendErrors: number;
  received: number;
  /** Datagrams of the wrong length or content. */
  corrupt: number;
  /** Datagrams whose sequence number was not above every one before (reordered or duplicated). */
  outOfOrder: number;
}

/**
 * Sends numbered UDP datagrams with content derived from the number, in back-to-back bursts, from
 * `fromNs` to `toAddr` (in `toNs`), and says how many arrived, intact and in order.
 */
export async function udpSequence(lab: Lab, fromNs: string, toNs: string, toAddr: string, opts: UdpSequenceOptions = {}): Promise<UdpSequenceResult> {
  const size = opts.size ?? 64;
  if (!Number.isInteger(size) || size < 4) throw new LabError(`udpSequence: size must be an integer of at least 4, not ${size}`);
  const port = String(opts.port ?? 9998);
  const receiver = lab.spawn(toNs, [process.execPath, '-e', UDP_SEQ_RECEIVER, toAddr, port, String(size)]);
  try {
    await waitFor('UDP sequence receiver', receiver, () => receiver.stderrText().includes('listening'));
    const args = [toAddr, port, String(opts.count ?? 2000), String(size), String(opts.burst ?? 32), String(opts.pauseMs ?? 5)];
    const argv = opts.gsoSegments === undefined ? [process.execPath, '-e', UDP_SEQ_SENDER, ...args] : ['python3', '-c', UDP_SEQ_GSO_SENDER, ...args, String(opts.gsoSegments)];
    const s = await lab.exec(fromNs, argv, { timeoutMs: 60_000 });
    const sent = parseJsonLine<{ sent: number; errors: number }>('UDP sequence sender', s.stdout, s.stderr);
    await delay(300);
    await receiver.stop(2000);
    const got = parseJsonLine<{ received: number; corrupt: number; outOfOrder: number }>('UDP sequence receiver', receiver.stdoutText(), receiver.stderrText());
    return { sent: sent.sent, sendErrors: sent.errors, ...got };
  } finally {
    await receiver.stop(2000);
  }
}

export interface CaptureOptions {
  /** Which frames to see (tcpdump -Q); default 'in', the copies the interface received. */
  direction?: 'in' | 'out' | 'inout';
  /** Wait this long before stopping, for frames still in flight; default 200 ms. */
  settleMs?: number;
}

export interface Capture {
  /** Stops tcpdump and returns how many frames matched. */
  stop(): Promise<number>;
  /** One line per matching frame so far (tcpdump -n -e), for messages and debugging. */
  lines(): string[];
}

/** Starts tcpdump on `ifName` in `ns` with a pcap `filter`; resolves once it is capturing. */
export async function startCapture(lab: Lab, ns: string, ifName: string, filter: string, opts: CaptureOptions = {}): Promise<Capture> {
  const argv = ['tcpdump', '-l', '-n', '-e', '-i', ifName, '-Q', opts.direction ?? 'in'];
  if (filter.trim() !== '') argv.push(filter);
  const p = lab.spawn(ns, argv);
  try {
    await waitFor(`tcpdump on ${ifName}`, p, () => p.stderrText().includes('listening on'));
  } catch (err) {
    await p.stop(1000);
    throw err;
  }
  const lines = (): string[] => p.stdoutText().split('\n').filter((l) => l.trim() !== '');
  let result: Promise<number> | undefined;
  return {
    lines,
    stop() {
      result ??= (async () => {
        await delay(opts.settleMs ?? 200);
        await p.stop(2000);
        return parseTcpdumpCaptured(p.stderrText()) ?? lines().length;
      })();
      return result;
    },
  };
}

/** @deprecated the earlier name of startCapture. */
export const capture = startCapture;

/**
 * Counts the frames matching `filter` that `ifName` in `ns` receives: for `durationMs`, or while
 * `during` runs when given (capture starts before it).
 */
export async function countFrames(
  lab: Lab,
  ns: string,
  ifName: string,
  filter: string,
  durationMs: number,
  during?: () => Promise<unknown>,
): Promise<number> {
  const c = await startCapture(lab, ns, ifName, filter);
  try {
    if (during !== undefined) await during();
    await delay(durationMs);
  } finally {
    await c.stop();
  }
  return c.stop();
}
