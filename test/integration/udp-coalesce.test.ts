import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WeftCluster, ping, udpSequence, type LabPod } from '../../lab/index.js';

/**
 * 2000 datagrams of 1000 bytes from `a` (on n1) to `b`, 16 per send() with UDP_SEGMENT, IPv4 and
 * IPv6: all arrive intact and in order, and n1's TAP read them as super-frames (far fewer reads
 * than datagrams; a TAP without TUN_F_USO4/6 would have been given every datagram by itself).
 */
async function gsoAcross(c: WeftCluster, a: LabPod, b: LabPod): Promise<void> {
  for (const to of [b.ipv4!, b.ipv6!]) {
    expect((await ping(c.lab, a.ns, to, { count: 2, intervalS: 0.2 })).received).toBe(2);
    const before = (await c.status(0)).traffic.tap.rxPackets;
    const r = await udpSequence(c.lab, a.ns, b.ns, to, { count: 2000, size: 1000, burst: 16, gsoSegments: 16 });
    const reads = (await c.status(0)).traffic.tap.rxPackets - before;
    expect(r).toEqual({ sent: 2000, sendErrors: 0, received: 2000, corrupt: 0, outOfOrder: 0 });
    expect(reads).toBeLessThan(1000);
  }
}

// Small UDP datagrams in back-to-back bursts from a pod on n1 to a pod on n2, over the encrypted
// sleeve: n1 bundles them into few sleeve messages, so n2 gets many frames of one flow per
// receive batch and writes them to its TAP as USO super-frames, which the kernel cuts back into
// the datagrams. Every datagram must arrive, intact and in order: the bursts (5 ms apart) stay
// below what the sockets and the TAP queue hold, so no loss is allowed (the neighbours are
// resolved first).
describe.each([
  { coalesce: true, args: [] as string[] },
  { coalesce: false, args: ['--no-udp-coalesce'] },
])('UDP coalescing on the TAP write, coalesce $coalesce', ({ coalesce, args }) => {
  let c: WeftCluster;
  beforeAll(async () => {
    c = await WeftCluster.start({ nodes: 2, extraArgs: ['--fastpath', 'off', ...args] });
    await c.waitEstablished();
    await c.waitPaths(() => 'direct');
  });
  afterAll(async () => {
    await c?.destroy();
  });

  // (1000-byte datagrams in bursts of 8: 32 of them at once can overflow the receiving socket's
  // default buffer, with or without coalescing; UdpRcvbufErrors in the pod says so.)
  it.each([
    ['IPv4', 4, 64, 32],
    ['IPv6', 6, 64, 32],
    ['IPv4, 1000-byte datagrams', 4, 1000, 8],
  ] as const)('%s: every datagram arrives intact and in order', async (_name, family, size, burst) => {
    const [a, b] = c.pods;
    const to = family === 4 ? b!.ipv4! : b!.ipv6!;
    // Neighbour resolution first: the sending pod's kernel holds only a few packets while it
    // resolves, and would drop the rest of the first burst.
    expect((await ping(c.lab, a!.ns, to, { count: 2, intervalS: 0.2 })).received).toBe(2);
    const before = (await c.status(1)).traffic.router;
    const r = await udpSequence(c.lab, a!.ns, b!.ns, to, { count: 2000, size, burst });
    const after = (await c.status(1)).traffic.router;
    expect(r).toEqual({ sent: 2000, sendErrors: 0, received: 2000, corrupt: 0, outOfOrder: 0 });
    const superFrames = after.toTapSuperFrames - before.toTapSuperFrames;
    const coalesced = after.toTapCoalesced - before.toTapCoalesced;
    if (coalesce) {
      expect(superFrames).toBeGreaterThan(0);
      expect(coalesced).toBeGreaterThanOrEqual(2 * superFrames);
      expect(coalesced).toBeLessThanOrEqual(2000);
    } else {
      expect(superFrames).toBe(0);
      expect(coalesced).toBe(0);
    }
  });

  it('with checksums done in software at the pod\'s veth, every UDP checksum the kernel finishes from a super-frame is right', async () => {
    const [a, b] = c.pods;
    // Without tx checksumming the bridge side of the veth must cut a super-frame and finish each
    // segment's checksum before it sends (from the pseudo-header sum in the field), and the pod
    // then checks every one in software: a wrong field shows as UdpInCsumErrors and loss.
    await c.lab.exec(b!.node.ns, ['ethtool', '-K', b!.hostVeth, 'tx', 'off']);
    try {
      const csumErrors = async (): Promise<number> => {
        const snmp = (await c.lab.exec(b!.ns, ['cat', '/proc/net/snmp'])).stdout.split('\n').filter((l) => l.startsWith('Udp:'));
        const v4 = Number(snmp[1]!.split(/\s+/)[snmp[0]!.split(/\s+/).indexOf('InCsumErrors')]);
        const v6 = Number(/Udp6InCsumErrors\s+(\d+)/.exec((await c.lab.exec(b!.ns, ['cat', '/proc/net/snmp6'])).stdout)?.[1]);
        return v4 + v6;
      };
      const errorsBefore = await csumErrors();
      const before = (await c.status(1)).traffic.router;
      for (const to of [b!.ipv4!, b!.ipv6!]) {
        expect((await ping(c.lab, a!.ns, to, { count: 2, intervalS: 0.2 })).received).toBe(2);
        const r = await udpSequence(c.lab, a!.ns, b!.ns, to, { count: 1000, size: 100 });
        expect(r).toEqual({ sent: 1000, sendErrors: 0, received: 1000, corrupt: 0, outOfOrder: 0 });
      }
      expect(await csumErrors()).toBe(errorsBefore);
      const superFrames = (await c.status(1)).traffic.router.toTapSuperFrames - before.toTapSuperFrames;
      if (coalesce) expect(superFrames).toBeGreaterThan(0);
      else expect(superFrames).toBe(0);
    } finally {
      await c.lab.exec(b!.node.ns, ['ethtool', '-K', b!.hostVeth, 'tx', 'on']);
    }
  });

  it('a pod\'s UDP GSO sends (UDP_SEGMENT) cross whole: the TAP gives them as USO super-frames, the far TAP takes them', async () => {
    const [a, b] = c.pods;
    await gsoAcross(c, a!, b!);
  });

  it('status says whether coalescing is on', async () => {
    const s = await c.status(1);
    expect(s.mode.udpCoalesce).toBe(coalesce);
    const cli = await c.lab.exec(c.routers[1]!.node.ns, [process.execPath, 'dist/src/cli/main.js', 'status', '--socket', c.routers[1]!.socket]);
    expect(cli.stdout).toContain(`udp coalescing ${coalesce ? 'on' : 'off'}`);
    if (coalesce) expect(cli.stdout).toMatch(/\(\d+ USO super-frames of \d+ UDP frames\)/);
  });
});

// The far router in per-frame mode: it cuts the USO super-frames itself (SoftwareOffload, UDP_L4).
describe('UDP GSO sends to a router without vnet header', () => {
  let c: WeftCluster;
  beforeAll(async () => {
    c = await WeftCluster.start({ nodes: 2, vnetHdr: [true, false], extraArgs: ['--fastpath', 'off'] });
    await c.waitEstablished();
    await c.waitPaths(() => 'direct');
  });
  afterAll(async () => {
    await c?.destroy();
  });

  it('every datagram arrives intact and in order, and the far TAP got them one by one', async () => {
    const [a, b] = c.pods;
    const before = (await c.status(1)).traffic.tap.txPackets;
    await gsoAcross(c, a!, b!);
    expect((await c.status(1)).traffic.tap.txPackets - before).toBeGreaterThanOrEqual(4000);
  });
});
