import { describe, expect, it } from 'vitest';
import { WeftCluster, ping, tcpTransferSha256 } from '../../lab/index.js';

async function transferBothWays(c: WeftCluster, mb: number): Promise<void> {
  const [a, b] = c.pods;
  for (const [from, to] of [[a!, b!], [b!, a!]] as const) {
    const r = await tcpTransferSha256(c.lab, from.ns, to.ns, to.ipv4!, mb * 1024 * 1024);
    expect(r.receivedBytes).toBe(mb * 1024 * 1024);
    expect(r.receivedSha256).toBe(r.sentSha256);
  }
}

describe('data-path modes', () => {
  it('a per-frame router (no vnet_hdr) interoperates with a vnet_hdr router', async () => {
    const c = await WeftCluster.start({ nodes: 2, vnetHdr: [true, false] });
    try {
      await c.waitEstablished();
      expect((await c.status(0)).mode.vnetHdr).toBe(true);
      expect((await c.status(1)).mode.vnetHdr).toBe(false);
      await transferBothWays(c, 50);
      expect((await ping(c.lab, c.pods[0]!.ns, c.pods[1]!.ipv6!, { count: 3, intervalS: 0.1 })).received).toBe(3);
      // the per-frame side had to finish super-frames in userspace, without drops
      const s = await c.status(1);
      expect(Object.entries(s.drops).filter(([k, v]) => k.startsWith('offload') && v > 0)).toEqual([]);
    } finally {
      await c.destroy();
    }
  });

  it('two per-frame routers reading the TAP with read() (--no-tap-uring) carry TCP intact', async () => {
    const c = await WeftCluster.start({ nodes: 2, vnetHdr: false, extraArgs: ['--no-tap-uring'] });
    try {
      await c.waitEstablished();
      await transferBothWays(c, 30);
      const s = await c.status(0);
      expect(s.mode.tapReads).toBe('read');
      // read() takes one call per frame and one more that finds the queue empty
      expect(s.traffic.tap.rxCalls).toBeGreaterThan(s.traffic.tap.rxPackets);
    } finally {
      await c.destroy();
    }
  });

  it('plaintext mode (explicitly configured) carries TCP intact and says so in status', async () => {
    const c = await WeftCluster.start({ nodes: 2, plaintext: true });
    try {
      await c.waitEstablished();
      expect((await c.status(0)).mode.encryption).toBe('none');
      expect((await c.status(0)).mtu.overlay).toBe(1420);
      await transferBothWays(c, 30);
    } finally {
      await c.destroy();
    }
  });
});
