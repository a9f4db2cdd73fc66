/**
 * The kernel behaviour the fast path's health probes will rely on (issue 5): a probe TAP per
 * node on the bridge sends frames that cross the kernel VXLAN path only (static bridge and VXLAN
 * entries keep them off the pods), so a blocked VXLAN port or an MTU black hole shows up in the
 * probes themselves. The probe MAC is the router's, never the TAP netdev's own address (frames
 * for a port's own address go to the host, not out of the port).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, type LabPod } from '../../lab/lab.js';
import { LinuxTap } from '../../src/platform/linux/linux-tap.js';
import { IpNetlink } from '../../src/platform/linux/ip-netlink.js';
import { startCapture } from '../../lab/traffic.js';

const isRoot = process.getuid?.() === 0;
const VX = 'wvx';
const PROBE = 'wprobe';
const MTU = 1404;
const probeMac = (i: number) => `02:77:00:00:00:0${i + 1}`;

function frame(dst: string, src: string, size: number, seq: number): Buffer {
  const b = Buffer.alloc(size);
  Buffer.from(dst.replace(/:/g, ''), 'hex').copy(b, 0);
  Buffer.from(src.replace(/:/g, ''), 'hex').copy(b, 6);
  b.writeUInt16BE(0x88b5, 12);
  b.writeUInt32BE(seq, 14);
  return b;
}

describe.skipIf(!isRoot)('fast path probes over kernel VXLAN', () => {
  let lab: Lab;
  let pods: LabPod[];
  const taps: LinuxTap[] = [];
  const got: { size: number; seq: number }[][] = [[], []];

  beforeAll(async () => {
    lab = await Lab.create({ nodes: 2 });
    pods = [await lab.addPod(0, { ipv4: '10.41.0.1/24', mtu: MTU }), await lab.addPod(1, { ipv4: '10.41.0.2/24', mtu: MTU })];
    for (const [i, n] of lab.nodes.entries()) {
      const nl = new IpNetlink({ netns: n.ns });
      await nl.ensureVxlan({ name: VX, vni: 77, port: 6785, local: n.address, mtu: 1450 });
      await nl.setMaster(VX, 'weft');
      await nl.setUp(VX);
      const tap = new LinuxTap({ name: PROBE, vnetHdr: false, maxFrame: MTU + 18, netns: n.nsPath });
      taps.push(tap);
      // The probe MAC belongs to the router behind the TAP, not to the TAP's kernel side (frames for
      // a port's own address go to the host, not out of the port).
      await lab.exec(n.ns, ['ip', 'link', 'set', PROBE, 'mtu', String(MTU), 'master', 'weft', 'up']);
      const other = lab.nodes[1 - i]!;
      // the peer's probe MAC: only towards the VXLAN port, and from there only to the peer
      await lab.exec(n.ns, ['bridge', 'fdb', 'add', probeMac(1 - i), 'dev', VX, 'master', 'static']);
      await nl.fdbSet(VX, { mac: probeMac(1 - i), dst: other.address });
      await lab.exec(n.ns, ['bridge', 'fdb', 'add', probeMac(i), 'dev', PROBE, 'master', 'static']);
      tap.start((count) => {
        for (let k = 0; k < count; k++) {
          const off = k * tap.stride + tap.headroom;
          if (tap.arena.readUInt16BE(off + 12) === 0x88b5) got[i]!.push({ size: tap.lens[k]!, seq: tap.arena.readUInt32BE(off + 14) });
        }
      });
    }
  });

  afterAll(async () => {
    for (const t of taps) t.close();
    await lab?.destroy();
  });

  async function exchange(seq: number): Promise<{ small: boolean; big: boolean }> {
    got[1]!.length = 0;
    taps[0]!.write(frame(probeMac(1), probeMac(0), 64, seq), 0, 64, false);
    taps[0]!.write(frame(probeMac(1), probeMac(0), MTU + 14, seq + 1), 0, MTU + 14, false);
    await new Promise((r) => setTimeout(r, 300));
    return { small: got[1]!.some((g) => g.seq === seq && g.size === 64), big: got[1]!.some((g) => g.seq === seq + 1 && g.size === MTU + 14) };
  }

  it('small and full-MTU probes cross VXLAN to the peer\'s probe TAP and nowhere else', async () => {
    const caps = await Promise.all(pods.map((p) => startCapture(lab, p.ns, 'eth0', 'ether proto 0x88b5')));
    expect(await exchange(100)).toEqual({ small: true, big: true });
    expect(await Promise.all(caps.map((c) => c.stop()))).toEqual([0, 0]);
  });

  it('a blocked VXLAN port stops every probe; an MTU black hole stops only the big one', async () => {
    await lab.blockUdpBetween(lab.nodes[0]!, lab.nodes[1]!, 6785);
    expect(await exchange(200)).toEqual({ small: false, big: false });
    await lab.clearFaults();
    await lab.dropLargeUdp(lab.nodes[0]!, lab.nodes[1]!, 1000);
    expect(await exchange(300)).toEqual({ small: true, big: false });
    await lab.clearFaults();
    expect(await exchange(400)).toEqual({ small: true, big: true });
  });
});
