import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WeftCluster, ping } from '../../src/lab/index.js';

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

describe('a running router under random, mutated, replayed and forged datagrams', () => {
  let c: WeftCluster;
  beforeAll(async () => {
    c = await WeftCluster.start({ nodes: 3 });
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
    const { writeFileSync } = await import('node:fs');
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
});
