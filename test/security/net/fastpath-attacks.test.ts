/**
 * Attacks on the kernel fast path in real namespaces (issue 13): two routers on a trusted
 * underlay with the fast path up, an outsider on the same underlay (a lab host that runs no
 * router), and a pod port on n1's bridge driven by the test. Each test sends the attack's own
 * datagrams or frames and checks that the pods see none of it, the routers' paths stay as they
 * were (or go down when they should), and the drops are counted.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countFrames, ping } from '../../../lab/traffic.js';
import type { UnderlayHost } from '../../../lab/lab.js';
import type { StatusReport } from '../../../src/api/types.js';
import { WeftCluster } from '../../../lab/weft-cluster.js';
import { LinuxTap } from '../../../src/platform/linux/linux-tap.js';
import { writeProbe } from '../../../src/router/fastpath/probe-frame.js';
import { until } from '../../integration/helpers.js';

const isRoot = process.getuid?.() === 0;
const VXLAN_PORT = 6785;
const VNI = 0x7765;

// Sends hex payloads (JSON in argv[1]) to host:port, `rounds` times over (0: until SIGTERM),
// `intervalMs` apart; then prints {sent}.
const SENDER = `
const d = require('node:dgram').createSocket('udp4');
const o = JSON.parse(process.argv[1]); const bufs = o.payloads.map((h) => Buffer.from(h, 'hex'));
const n = o.rounds === 0 ? Infinity : bufs.length * o.rounds; let i = 0; let stop = false;
process.on('SIGTERM', () => { stop = true; });
const next = () => {
  if (stop || i >= n || bufs.length === 0) { process.stdout.write(JSON.stringify({ sent: i }) + '\\n'); d.close(); return; }
  d.send(bufs[i % bufs.length], o.port, o.host, (e) => { if (e) stop = true; else i++; setTimeout(next, o.intervalMs); });
};
process.stderr.write('sending\\n'); next();`;

function macBytes(mac: string): Buffer {
  return Buffer.from(mac.replace(/:/g, ''), 'hex');
}

/** An Ethernet frame carrying IPv4/UDP (header checksum computed, UDP checksum 0). */
function udpFrame(dstMac: string, srcMac: string, srcIp: string, dstIp: string, dport: number, payload: Buffer): Buffer {
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + 8 + payload.length, 2);
  ip[8] = 64;
  ip[9] = 17;
  Buffer.from(srcIp.split('.').map(Number)).copy(ip, 12);
  Buffer.from(dstIp.split('.').map(Number)).copy(ip, 16);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += ip.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  ip.writeUInt16BE(~sum & 0xffff, 10);
  const udp = Buffer.alloc(8);
  udp.writeUInt16BE(40000, 0);
  udp.writeUInt16BE(dport, 2);
  udp.writeUInt16BE(8 + payload.length, 4);
  const eth = Buffer.concat([macBytes(dstMac), macBytes(srcMac), Buffer.from([0x08, 0x00])]);
  return Buffer.concat([eth, ip, udp, payload]);
}

/** A VXLAN datagram's payload: the 8-byte header (VNI) and the inner frame. */
function vxlan(frame: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h[0] = 0x08;
  h.writeUInt32BE(VNI << 8, 4);
  return Buffer.concat([h, frame]);
}

/** The UDP payloads of the IPv4 packets in a pcap file (Ethernet link type). */
function udpPayloads(pcap: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 24; off + 16 <= pcap.length; ) {
    const incl = pcap.readUInt32LE(off + 8);
    const pkt = pcap.subarray(off + 16, off + 16 + incl);
    off += 16 + incl;
    if (pkt.readUInt16BE(12) !== 0x0800) continue;
    const ihl = (pkt[14]! & 0x0f) * 4;
    out.push(Buffer.from(pkt.subarray(14 + ihl + 8)));
  }
  return out;
}

describe.skipIf(!isRoot)('attacks on the fast path, in namespaces', () => {
  let c: WeftCluster;
  let outsider: UnderlayHost;
  const n1 = () => c.lab.nodes[0]!;
  const n2 = () => c.lab.nodes[1]!;
  const peerOf = (s: StatusReport, underlay: string) => s.fastpath.peers.find((p) => p.underlay === underlay)!;

  /** The outsider's datagrams to n1's VXLAN port leave with source address `as` (nftables SNAT in its own namespace), or its own. */
  async function spoofAs(as: string | undefined): Promise<void> {
    const table = 'table ip wtspoof';
    const rule = `${table} {\n chain post {\n  type nat hook postrouting priority srcnat; policy accept;\n  ip daddr ${n1().address} udp dport ${VXLAN_PORT} snat to ${as}\n }\n}\n`;
    await c.lab.exec(outsider.ns, ['nft', '-f', '-'], { input: `${table}\ndelete ${table}\n${as === undefined ? '' : rule}` });
  }

  function senderArgs(payloads: Buffer[], rounds: number, intervalMs: number): string[] {
    const o = { host: n1().address, port: VXLAN_PORT, rounds, intervalMs, payloads: payloads.map((p) => p.toString('hex')) };
    return [process.execPath, '-e', SENDER, JSON.stringify(o)];
  }

  /** Sends `payloads` `rounds` times from the outsider to n1's VXLAN port; returns how many went out. */
  async function sendFromOutsider(payloads: Buffer[], o: { rounds?: number; intervalMs?: number; as?: string } = {}): Promise<number> {
    await spoofAs(o.as);
    const r = await c.lab.exec(outsider.ns, senderArgs(payloads, o.rounds ?? 1, o.intervalMs ?? 20), { timeoutMs: 60_000 });
    await spoofAs(undefined);
    return (JSON.parse(r.stdout.trim()) as { sent: number }).sent;
  }

  /** Sends `payloads` over and over from the outsider until `stop`, which returns how many went out. */
  async function startFromOutsider(payloads: Buffer[], o: { intervalMs: number; as?: string }): Promise<{ stop(): Promise<number> }> {
    await spoofAs(o.as);
    const p = c.lab.spawn(outsider.ns, senderArgs(payloads, 0, o.intervalMs));
    await until('the outsider sends', () => Promise.resolve(p.stderrText().includes('sending') ? true : undefined), 10_000);
    return {
      async stop() {
        await p.stop(5000);
        await spoofAs(undefined);
        return (JSON.parse(p.stdoutText().trim()) as { sent: number }).sent;
      },
    };
  }

  /** n1's fast-path counters, read fresh (the router reads nftables at most once a second). */
  async function counters(): Promise<{ refused: number; podProbes: number; drops: Record<string, number> }> {
    await new Promise((r) => setTimeout(r, 1100));
    const s = await c.apiStatus(0);
    const drops = s.fastpath.probes?.drops ?? {};
    return { refused: s.fastpath.vxlanPort?.refused.packets ?? 0, podProbes: s.fastpath.vxlanPort?.podProbes.packets ?? 0, drops: { replayed: 0, badTag: 0, ...drops } };
  }

  beforeAll(async () => {
    c = await WeftCluster.start({ nodes: 2, extraArgs: ['--trusted-subnets', '198.18.0.0/24'] });
    await c.waitEstablished();
    await c.waitFastPath();
    outsider = await c.lab.addUnderlayHost();
    const [a, b] = [c.podsOn(1)[0]!, c.podsOn(2)[0]!];
    // both bridges learn the pods' MACs, so the frames below are unicast, not floods
    expect((await ping(c.lab, a.ns, b.ipv4!, { count: 3, intervalS: 0.2, timeoutS: 2 })).received).toBe(3);
  });

  afterAll(async () => {
    await c?.destroy();
  });

  it('a host on the underlay that is not a fast-path peer cannot put frames on the bridge through the VXLAN port', async () => {
    const a = c.podsOn(1)[0]!;
    const frame = udpFrame(a.mac, '02:66:00:00:00:01', '10.40.9.9', a.ipv4!, 7777, Buffer.from('weft-attack'));
    const before = await counters();
    let sent = 0;
    const got = await countFrames(c.lab, a.ns, 'eth0', 'udp port 7777', 300, async () => {
      sent = await sendFromOutsider([vxlan(frame)], { rounds: 20 });
    });
    expect(sent).toBe(20);
    expect(got).toBe(0);
    expect((await c.apiStatus(0)).fastpath.vxlanPort?.peers).toEqual([n2().address]);
    const after = await counters();
    expect(after.refused - before.refused).toBe(sent);
    // Control: the same datagrams from n2's address reach the pod. The filter goes by address:
    // VXLAN itself is not authenticated, which is why an encrypting cluster uses it only in
    // trusted subnets.
    const spoofed = await countFrames(c.lab, a.ns, 'eth0', 'udp port 7777', 300, async () => {
      await sendFromOutsider([vxlan(frame)], { rounds: 3, as: n2().address });
    });
    expect(spoofed).toBe(3);
  });

  it('the VXLAN port stays closed to outsiders while the router is down (killed) and after it restarts', async () => {
    const a = c.podsOn(1)[0]!;
    const frame = udpFrame(a.mac, '02:66:00:00:00:02', '10.40.9.9', a.ipv4!, 7778, Buffer.from('weft-attack'));
    await c.stopRouter(0, 'SIGKILL');
    let whileDown = -1;
    try {
      whileDown = await countFrames(c.lab, a.ns, 'eth0', 'udp port 7778', 300, () => sendFromOutsider([vxlan(frame)], { rounds: 10 }));
    } finally {
      await c.startRouter(0);
    }
    expect(whileDown).toBe(0);
    await c.waitFastPath();
    expect((await c.apiStatus(0)).fastpath.vxlanPort?.peers).toEqual([n2().address]);
    const before = await counters();
    const afterRestart = await countFrames(c.lab, a.ns, 'eth0', 'udp port 7778', 300, () => sendFromOutsider([vxlan(frame)], { rounds: 10 }));
    expect(afterRestart).toBe(0);
    expect((await counters()).refused - before.refused).toBe(10);
  });

  it('a pod sending forged probes (a flood, as from the peer) to its router\'s probe MAC changes nothing', async () => {
    const [s1, s2] = [await c.apiStatus(0), await c.apiStatus(1)];
    const [id1, id2] = [parseInt(s1.id, 16), parseInt(s2.id, 16)];
    const switches = [peerOf(s1, n2().address).switches, peerOf(s2, n1().address).switches];
    expect([peerOf(s1, n2().address).state, peerOf(s2, n1().address).state]).toEqual(['up', 'up']);
    // the pod's port: a TAP on n1's bridge that the test writes frames into
    const tap = new LinuxTap({ name: 'wxpod', vnetHdr: false, maxFrame: 1500, netns: n1().nsPath });
    try {
      await c.lab.exec(n1().ns, ['ip', 'link', 'set', 'wxpod', 'mtu', String(c.overlayMtu), 'master', 'weft', 'up']);
      const before = await counters();
      const buf = Buffer.alloc(64);
      let written = 0;
      const flood = setInterval(() => {
        // made-up seqs: before the probes were authenticated, n1 echoed them, and n2 took the
        // missing echoes of its own probes for a path that no longer hears it
        writeProbe(buf, 0, 64, { src: id2, dst: id1, seq: 0x7fff0000 + written, echo: 0, echoBig: 0, big: false });
        if (tap.write(buf, 0, 64, false) === 64) written++;
      }, 2);
      const [a, b] = [c.podsOn(1)[0]!, c.podsOn(2)[0]!];
      let pings: { received: number };
      try {
        pings = await ping(c.lab, a.ns, b.ipv4!, { count: 20, intervalS: 0.2, timeoutS: 2 });
      } finally {
        clearInterval(flood);
      }
      expect(written).toBeGreaterThan(500);
      const [t1, t2] = [await c.apiStatus(0), await c.apiStatus(1)];
      expect([peerOf(t1, n2().address).state, peerOf(t2, n1().address).state]).toEqual(['up', 'up']);
      expect([peerOf(t1, n2().address).switches, peerOf(t2, n1().address).switches]).toEqual(switches);
      expect(pings.received).toBe(20);
      const after = await counters();
      expect(after.podProbes - before.podProbes).toBe(written);
      // dropped on the bridge: none reached the probe device
      expect(after.drops).toEqual(before.drops);
    } finally {
      tap.close();
    }
  });

  it('probes recorded on the underlay and replayed after the peer\'s full-size frames were cut do not hide the cut', async () => {
    // Record n2's full-size probes as they cross the underlay to n1.
    const file = join(c.dir, 'probes.pcap');
    const filter = `udp and src host ${n2().address} and dst port ${VXLAN_PORT} and greater 1200`;
    const rec = c.lab.spawn(n1().ns, ['tcpdump', '-Z', 'root', '-U', '-n', '-i', 'eth0', '-c', '6', '-w', file, filter]);
    await Promise.race([rec.exited, new Promise((r) => setTimeout(r, 15_000))]);
    await rec.stop(2000);
    const recorded = udpPayloads(readFileSync(file));
    expect(recorded.length).toBe(6);
    const before = await counters();
    // The outsider replays the recordings from n2's address, one every 250 ms, from before the
    // cut until the end of the test (so the kernel path never lacks a full-size probe "from n2").
    const replay = await startFromOutsider(recorded, { intervalMs: 250, as: n2().address });
    const cut = 'table inet wtcut';
    let sent = -1;
    try {
      await new Promise((r) => setTimeout(r, 1000));
      expect(peerOf(await c.apiStatus(0), n2().address).state).toBe('up');
      // The cut: n2's full-size datagrams to n1's VXLAN port are lost (one way; all else crosses).
      await c.lab.exec(n2().ns, ['nft', '-f', '-'], {
        input: `${cut}\ndelete ${cut}\n${cut} {\n chain out {\n  type filter hook output priority filter; policy accept;\n  ip daddr ${n1().address} udp dport ${VXLAN_PORT} ip length > 1000 drop\n }\n}\n`,
      });
      const down = await until('n1 takes n2 off the fast path while the replays go on', async () => {
        const p = peerOf(await c.apiStatus(0), n2().address);
        return p.state === 'down' ? p : undefined;
      });
      expect(down.reason).toMatch(/full-size probes lost/);
    } finally {
      sent = await replay.stop();
      await c.lab.exec(n2().ns, ['nft', '-f', '-'], { input: `${cut}\ndelete ${cut}\n` });
    }
    const after = await counters();
    // every replay reached n1's probe device (from a peer's address) and was refused there
    expect(sent).toBeGreaterThan(4);
    expect(after.drops.replayed! + after.drops.badTag! - before.drops.replayed! - before.drops.badTag!).toBe(sent);
    await c.waitFastPath();
  });

  it('a router restarted without the fast path leaves no VXLAN device and no fast path table behind', async () => {
    const tables = async () => (await c.lab.exec(n1().ns, ['nft', 'list', 'tables'])).stdout.trim().split('\n').sort();
    const hasVxlan = async () => (await c.lab.exec(n1().ns, ['ip', 'link', 'show', 'weft-vx'], { check: false })).code === 0;
    const before = await tables();
    expect(await hasVxlan()).toBe(true);
    await c.stopRouter(0);
    c.routers[0]!.args.push('--fastpath', 'off');
    await c.startRouter(0);
    expect(await hasVxlan()).toBe(false);
    expect(before).toEqual(expect.arrayContaining(['table bridge weft-probe', 'table inet weft-vxlan']));
    const after = await tables();
    expect(after).not.toContain('table inet weft-vxlan');
    expect(after).not.toContain('table bridge weft-probe');
  });
});
