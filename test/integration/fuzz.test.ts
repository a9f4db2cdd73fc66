import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WeftCluster, ping, tcpTransferSha256 } from '../../lab/index.js';
import { FRAG_HDR_LEN, TYPE_DATA, TYPE_FRAG } from '../../src/router/sleeve/wire.js';

/** Reads UDP payloads out of a pcap file (Ethernet / IPv4 / UDP). */
function udpPayloads(file: string): Buffer[] {
  const b = readFileSync(file);
  const out: Buffer[] = [];
  for (let p = 24; p + 16 <= b.length; ) {
    const len = b.readUInt32LE(p + 8);
    const pkt = b.subarray(p + 16, p + 16 + len);
    p += 16 + len;
    if (pkt.length < 42 || pkt.readUInt16BE(12) !== 0x0800) continue;
    const ihl = (pkt[14]! & 15) * 4;
    out.push(Buffer.from(pkt.subarray(14 + ihl + 8)));
  }
  return out;
}

const FUZZER = `
const dgram = require('node:dgram'), fs = require('node:fs');
const [target, seedFile, count, selfId] = process.argv.slice(1);
const seeds = JSON.parse(fs.readFileSync(seedFile, 'utf8')).map((h) => Buffer.from(h, 'hex'));
const s = dgram.createSocket('udp4'); let x = 7, sent = 0; const N = Number(count);
const r = (n) => { x = (Math.imul(x, 1103515245) + 12345) >>> 0; return x % n; };
function next() {
  const k = r(6);
  if (k === 0 || seeds.length === 0) { const b = Buffer.alloc(r(1500)); for (let i = 0; i < b.length; i++) b[i] = r(256); return b; }
  const b = Buffer.from(seeds[r(seeds.length)]);
  if (k === 1) return b;                                       // exact replay
  if (k === 2) { for (let i = 0, m = 1 + r(4); i < m; i++) b[r(b.length)] ^= 1 << r(8); return b; } // bit flips
  if (k === 3) return b.subarray(0, r(b.length));              // truncated
  if (k === 4) { b.writeUInt32BE(x, 20); b[0] = 1 + r(2); return b; } // fresh counter, maybe as a fragment
  const h = Buffer.alloc(24 + r(1400)); h[0] = 1 + r(3); h[2] = 1; h[3] = 1; h.writeUInt32BE(Number(selfId), 4); h.writeUInt32BE(x, 8); h.writeUInt32BE(r(1e9), 12); return h; // forged header, random body
}
function burst() { for (let i = 0; i < 200 && sent < N; i++, sent++) s.send(next(), 6784, target); if (sent < N) setImmediate(burst); else setTimeout(() => { s.close(); process.stdout.write(String(sent)); }, 200); }
burst();`;

/**
 * Sleeve datagrams seen on an interface, one per datagram: a GSO train captured before
 * segmentation is cut back into its fragments (each FRAG header gives the fragment size).
 */
function splitTrains(payloads: Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  for (const p of payloads) {
    if (p.length >= FRAG_HDR_LEN && p[0] === TYPE_FRAG) {
      const size = p.readUInt16BE(28) + FRAG_HDR_LEN;
      for (let o = 0; o < p.length; o += size) out.push(p.subarray(o, Math.min(p.length, o + size)));
    } else out.push(p);
  }
  return out;
}

// Datagrams built from seeds captured at the target, sent from another host: every seed with
// each boundary counter; then forged fragments (fresh counters below 2^52, the seeds' ids and
// key id, random tokens and content); then the fragment seeds replayed. Paced, so the kernel
// drops none of them. Prints what it sent, per kind.
const ATTACKER = `
const dgram = require('node:dgram'), fs = require('node:fs');
const [target, seedFile] = process.argv.slice(1);
const seeds = JSON.parse(fs.readFileSync(seedFile, 'utf8')).map((h) => Buffer.from(h, 'hex'));
const frags = seeds.filter((b) => b[0] === ${TYPE_FRAG});
const bounds = [0n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 52n - 1n, 2n ** 52n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1024n, 2n ** 64n - 1n];
let x = 11; const r = (n) => { x = (Math.imul(x, 1103515245) + 12345) >>> 0; return x % n; };
const out = []; const sent = { high: 0, lowData: 0, lowFrag: 0, forged: 0, replays: 0 };
for (const s of seeds) for (const c of bounds) {
  const b = Buffer.from(s); b.writeBigUInt64BE(c, 16); out.push(b);
  if (c >= 2n ** 52n) sent.high++; else if (c > 0n) { if (s[0] === ${TYPE_FRAG}) sent.lowFrag++; else sent.lowData++; }
}
for (let i = 0; i < 20 * frags.length; i++) {
  const b = Buffer.from(frags[i % frags.length]); b.writeBigUInt64BE(2n ** 40n + BigInt(i), 16);
  for (let k = 32; k < b.length; k++) b[k] = r(256);
  out.push(b); sent.forged++;
}
for (const f of frags) { out.push(Buffer.from(f)); sent.replays++; }
const s = dgram.createSocket('udp4'); let i = 0;
const burst = () => { for (let k = 0; k < 20 && i < out.length; k++) s.send(out[i++], 6784, target);
  if (i < out.length) setTimeout(burst, 2); else setTimeout(() => { s.close(); process.stdout.write(JSON.stringify(sent)); }, 300); };
burst();`;

describe('a running router under random, mutated, replayed and forged datagrams', () => {
  let c: WeftCluster;
  beforeAll(async () => {
    // n1 seals with libsodium, n2 with OpenSSL; keys do not rotate during the tests (the drops
    // below are counted under one key).
    c = await WeftCluster.start({ nodes: 3, extraArgs: ['--rekey-seconds', '3600'], perNodeArgs: (i) => (i === 0 ? ['--aead', 'libsodium'] : []) });
    await c.waitEstablished();
  });
  afterAll(async () => {
    await c?.destroy();
  });

  it('counts them as drops, keeps forwarding, and does not grow', async () => {
    const n1 = c.routers[0]!.node;
    const pcap = join(c.dir, 'seed.pcap');
    const seedFile = join(c.dir, 'seeds.json');
    const dump = c.lab.spawn(n1.ns, ['tcpdump', '--immediate-mode', '-U', '-Z', 'root', '-n', '-i', 'eth0', '-c', '60', '-w', pcap, 'udp port 6784 and src 198.18.0.2']);
    while (!dump.stderrText().includes('listening on')) await new Promise((r) => setTimeout(r, 50));
    await ping(c.lab, c.podsOn(2)[0]!.ns, c.podsOn(1)[0]!.ipv4!, { count: 40, intervalS: 0.02, size: 1200 });
    await dump.stop(2000);
    const seeds = udpPayloads(pcap);
    expect(seeds.length).toBeGreaterThan(10);
    writeFileSync(seedFile, JSON.stringify(seeds.map((s) => s.toString('hex'))));

    const before = await c.status(0);
    const selfId = parseInt((before as unknown as { id: string }).id, 16);
    const dropsBefore = Object.values(before.drops).reduce((a, b) => a + b, 0);
    const N = 100_000;
    // the attacker sits on node 3, which is not involved in the forwarding under test
    const r = await c.lab.exec(c.routers[2]!.node.ns, [process.execPath, '-e', FUZZER, '198.18.0.1', seedFile, String(N), String(selfId)], { timeoutMs: 120_000 });
    expect(Number(r.stdout)).toBe(N);
    await new Promise((res) => setTimeout(res, 500));

    const after = await c.status(0);
    expect(after.pid).toBe(before.pid);
    const dropsAfter = Object.values(after.drops).reduce((a, b) => a + b, 0);
    const received = after.traffic.udp.rxPackets - before.traffic.udp.rxPackets;
    // every datagram that reached the socket is counted somewhere: a drop or a held fragment
    expect(dropsAfter - dropsBefore).toBeGreaterThan(received * 0.6);
    expect(after.drops['rx.auth']! + after.drops['rx.replay']! + after.drops['rx.version']!).toBeGreaterThan(before.drops['rx.auth']! + 1000);
    expect(after.memory.rssBytes - before.memory.rssBytes).toBeLessThan(16 * 1024 * 1024);
    // still forwarding real traffic
    expect((await ping(c.lab, c.podsOn(1)[0]!.ns, c.podsOn(2)[0]!.ipv4!, { count: 5, intervalS: 0.1 })).received).toBe(5);
  });

  // Each AEAD as the target, its peer's real TCP stream running through the attack.
  it.each([
    { target: 1, peer: 2, aead: 'libsodium' },
    { target: 2, peer: 1, aead: 'OpenSSL' },
  ])('n$target ($aead): boundary counters and forged fragments mixed with a real TCP stream are counted by reason; the stream arrives intact', async ({ target, peer, aead }) => {
    const t = c.routers[target - 1]!;
    const before = await c.status(target - 1);
    expect((before.mode as { aead?: string }).aead).toContain(aead);
    const [targetPod, peerPod] = [c.podsOn(target)[0]!, c.podsOn(peer)[0]!];
    // Seeds: what the peer sends the target during a short TCP stream (DATA and FRAG trains).
    const pcap = join(c.dir, `seed-n${target}.pcap`);
    const dump = c.lab.spawn(t.node.ns, ['tcpdump', '--immediate-mode', '-U', '-Z', 'root', '-n', '-i', 'eth0', '-c', '300', '-w', pcap, `udp port 6784 and src ${c.routers[peer - 1]!.node.address}`]);
    while (!dump.stderrText().includes('listening on')) await new Promise((res) => setTimeout(res, 50));
    await tcpTransferSha256(c.lab, peerPod.ns, targetPod.ns, targetPod.ipv4!, 4_000_000, 7801);
    await ping(c.lab, peerPod.ns, targetPod.ipv4!, { count: 10, intervalS: 0.02 });
    await dump.stop(2000);
    const seeds = splitTrains(udpPayloads(pcap)).filter((d) => d.length >= 24 && (d[0] === TYPE_DATA || d[0] === TYPE_FRAG));
    const nData = seeds.filter((d) => d[0] === TYPE_DATA).length;
    const nFrag = seeds.filter((d) => d[0] === TYPE_FRAG).length;
    expect(nData).toBeGreaterThan(5);
    expect(nFrag).toBeGreaterThan(20);
    const seedFile = join(c.dir, `seeds-n${target}.json`);
    writeFileSync(seedFile, JSON.stringify(seeds.map((d) => d.toString('hex'))));

    const mid = await c.status(target - 1);
    const stream = tcpTransferSha256(c.lab, peerPod.ns, targetPod.ns, targetPod.ipv4!, 150_000_000, 7802);
    const r = await c.lab.exec(c.routers[2]!.node.ns, [process.execPath, '-e', ATTACKER, t.node.address, seedFile], { timeoutMs: 120_000 });
    const sent = JSON.parse(r.stdout) as { high: number; lowData: number; lowFrag: number; forged: number; replays: number };
    const transfer = await stream;
    await new Promise((res) => setTimeout(res, 300));
    const after = await c.status(target - 1);
    const delta = (k: string) => after.drops[k]! - mid.drops[k]!;

    expect(after.pid).toBe(before.pid);
    expect(transfer.receivedBytes).toBe(transfer.bytes);
    expect(transfer.receivedSha256).toBe(transfer.sentSha256);
    expect(sent.high).toBe(5 * seeds.length);
    // every counter at or above 2^52 refused before anything else
    expect(delta('rx.counterLimit')).toBe(sent.high);
    // a changed counter: the AEAD refuses a whole message, the token check a fragment
    expect(delta('rx.auth')).toBe(sent.lowData);
    expect(delta('reassembly.fragAuth')).toBe(sent.lowFrag + sent.forged);
    // counter 0 and the replayed fragments: the replay window
    expect(delta('rx.replay')).toBeGreaterThanOrEqual(seeds.length + sent.replays);
    expect(delta('rx.exception')).toBe(0);
    expect((await ping(c.lab, peerPod.ns, targetPod.ipv4!, { count: 5, intervalS: 0.1 })).received).toBe(5);
  });
});
