/**
 * No loops and no duplicates whatever the mix of paths. 4 nodes on a trusted underlay, two pods
 * each; nftables makes n1's peers use three different paths at once:
 *
 *   n1 → n2  kernel fast path
 *   n1 → n3  sleeve, direct (only the VXLAN port is blocked)
 *   n1 → n4  sleeve through a relay (everything between n1 and n4 is blocked)
 *
 * Every pod broadcasts in turn; every other pod must receive each broadcast exactly once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ping, sendBroadcasts, startCapture } from '../../lab/traffic.js';
import { WeftCluster } from '../../lab/weft-cluster.js';

const isRoot = process.getuid?.() === 0;
const VXLAN_PORT = 6785;

describe.skipIf(!isRoot)('fast path mixed with sleeve and relay: broadcasts arrive exactly once', () => {
  let c: WeftCluster;

  beforeAll(async () => {
    c = await WeftCluster.start({
      nodes: 4,
      podsPerNode: 2,
      extraArgs: ['--trusted-subnets', '198.18.0.0/24', '--log-level', 'warn'],
      beforeRouters: async (lab) => {
        await lab.blockUdpBetween(lab.nodes[0]!, lab.nodes[2]!, VXLAN_PORT);
        await lab.blockAllBetween(lab.nodes[0]!, lab.nodes[3]!);
      },
    });
    await c.waitEstablished(45_000);
    // Every pair, not only n1's: the other pairs (n2-n3, n2-n4, n3-n4) reach the fast path on
    // their own schedule, and a test that starts while one is switching measures the switch.
    const path = (i: number, k: number) => {
      const pair = [i, k].sort().join('');
      return pair === '02' ? 'direct' : pair === '03' ? 'relay' : 'fastpath';
    };
    await c.waitPaths(path, 30_000);
  }, 120_000);

  afterAll(async () => {
    await c?.destroy();
  });

  it('every pod reaches every other pod', async () => {
    for (const [a, b] of c.podPairs()) {
      expect((await ping(c.lab, a.ns, b.ipv4!, { count: 1, timeoutS: 3 })).received, `${a.ns} → ${b.ipv4}`).toBe(1);
    }
  });

  it('a broadcast from any pod reaches every other pod exactly once', async () => {
    const s = await c.status(0);
    expect(Object.fromEntries(s.peers.map((p) => [p.nickname, p.path]))).toEqual({ n2: 'fastpath', n3: 'direct', n4: 'relay' });
    for (const from of c.pods) {
      const tag = `weft-bcast-${from.ns}`;
      const others = c.pods.filter((p) => p !== from);
      const filter = 'udp dst port 9998';
      const caps = await Promise.all(others.map((p) => startCapture(c.lab, p.ns, 'eth0', filter, { settleMs: 400 })));
      await sendBroadcasts(c.lab, from.ns, { tag, port: 9998, address: '10.40.255.255', count: 3 });
      const counts = await Promise.all(caps.map((k) => k.stop()));
      expect(Object.fromEntries(others.map((p, i) => [p.ns, counts[i]])), `broadcast from ${from.ns}`).toEqual(Object.fromEntries(others.map((p) => [p.ns, 3])));
    }
  });
});
