/**
 * The kernel fast path in the lab: 3 nodes whose underlay is a trusted subnet. Per-peer switching
 * to the sleeve when the VXLAN path is cut or black-holes big frames, and back when it heals;
 * a peer with --fastpath=off still interoperates; a router killed under traffic does not cut it.
 * Waits poll status with generous limits; timing goals live in the benchmark.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { iperf3Tcp, ping } from '../../lab/traffic.js';
import type { StatusReport } from '../../src/api/types.js';
import { WeftCluster } from '../../lab/weft-cluster.js';
import { until } from './helpers.js';

const isRoot = process.getuid?.() === 0;
const VXLAN_PORT = 6785;

const pathTo = (s: StatusReport, nick: string) => s.peers.find((p) => p.nickname === nick)?.path;

describe.skipIf(!isRoot)('fast path: kernel VXLAN per peer, fallback and return', () => {
  let c: WeftCluster;

  beforeAll(async () => {
    c = await WeftCluster.start({ nodes: 3, extraArgs: ['--trusted-subnets', '198.18.0.0/24', '--log-level', 'info'] });
    await c.waitEstablished();
    await c.waitFastPath();
  });

  afterAll(async () => {
    await c?.destroy();
  });

  it('carries pod traffic in the kernel: the TAPs stay flat under a TCP stream', async () => {
    const [a, b] = [c.podsOn(1)[0]!, c.podsOn(2)[0]!];
    await ping(c.lab, a.ns, b.ipv4!, { count: 3, intervalS: 0.2 });
    const before = await Promise.all([c.status(0), c.status(1)]);
    const r = await iperf3Tcp(c.lab, b.ns, b.ipv4!, a.ns, { seconds: 3 });
    const after = await Promise.all([c.status(0), c.status(1)]);
    expect(r.gbps).toBeGreaterThan(0);
    const moved = r.gbps * 1e9 * 3 / 8;
    for (const k of [0, 1]) {
      const tapBytes = after[k]!.traffic.tap.rxBytes + after[k]!.traffic.tap.txBytes - before[k]!.traffic.tap.rxBytes - before[k]!.traffic.tap.txBytes;
      expect(tapBytes).toBeLessThan(moved / 1000); // control chatter only, not the stream
    }
  });

  it('a cut VXLAN path moves only that pair to the sleeve, pings keep working, and it comes back', async () => {
    const [n1, n2] = [c.lab.nodes[0]!, c.lab.nodes[1]!];
    const [a, b] = [c.podsOn(1)[0]!, c.podsOn(2)[0]!];
    await c.lab.blockUdpBetween(n1, n2, VXLAN_PORT);
    await until('n1 → n2 on the sleeve', async () => ((await c.status(0)).peers.find((p) => p.nickname === 'n2')?.path === 'direct' ? true : undefined));
    const s1 = await c.status(0);
    expect(pathTo(s1, 'n3')).toBe('fastpath');
    expect(s1.fastpath.peers.find((p) => p.underlay === n2.address)).toMatchObject({ state: 'down' });
    expect((await ping(c.lab, a.ns, b.ipv4!, { count: 5, intervalS: 0.2, timeoutS: 2 })).received).toBe(5);
    await c.lab.clearFaults();
    await until('n1 → n2 back on the fast path', async () => (pathTo(await c.status(0), 'n2') === 'fastpath' ? true : undefined));
    expect((await c.status(0)).fastpath.peers.find((p) => p.underlay === n2.address)!.switches).toBeGreaterThanOrEqual(3);
  });

  it('an MTU black hole on the VXLAN path is detected, and full-size packets cross on the sleeve', async () => {
    const [n1, n3] = [c.lab.nodes[0]!, c.lab.nodes[2]!];
    const [a, d] = [c.podsOn(1)[0]!, c.podsOn(3)[0]!];
    await c.lab.dropLargeUdp(n1, n3, 1000, VXLAN_PORT);
    await until('n1 → n3 on the sleeve', async () => (pathTo(await c.status(0), 'n3') === 'direct' ? true : undefined));
    const f = (await c.status(0)).fastpath.peers.find((p) => p.underlay === n3.address)!;
    expect(f.reason).toMatch(/full-size probes lost/);
    const full = c.overlayMtu - 28;
    expect((await ping(c.lab, a.ns, d.ipv4!, { count: 3, intervalS: 0.2, size: full, timeoutS: 2 })).received).toBe(3);
    await c.lab.clearFaults();
    await c.waitFastPath();
  });

  it('a router killed under fast-path traffic does not cut it; restarted, it takes over the kernel state', async () => {
    const [a, b] = [c.podsOn(1)[0]!, c.podsOn(2)[0]!];
    const pinger = c.lab.spawn(a.ns, ['ping', '-n', '-i', '0.1', '-W', '1', b.ipv4!]);
    await new Promise((r) => setTimeout(r, 500));
    await c.stopRouter(0, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 2000));
    const during = pinger.stdoutText().split('\n').filter((l) => l.includes('bytes from')).length;
    await c.startRouter(0);
    await c.waitFastPath();
    pinger.kill('SIGINT');
    await pinger.exited;
    const m = /(\d+) packets transmitted, (\d+) received/.exec(pinger.stdoutText());
    expect(during).toBeGreaterThan(20); // ~25 sent while the router was gone
    expect(m).not.toBeNull();
    expect(Number(m![1]) - Number(m![2])).toBeLessThanOrEqual(2);
  });
});

describe.skipIf(!isRoot)('fast path: a peer with --fastpath=off', () => {
  it('interoperates over the sleeve with a router that uses the fast path', async () => {
    const c = await WeftCluster.start({ nodes: 2, extraArgs: ['--trusted-subnets', '198.18.0.0/24'], perNodeArgs: (i) => (i === 1 ? ['--fastpath', 'off'] : []) });
    try {
      await c.waitEstablished();
      const [a, b] = c.pods;
      expect((await ping(c.lab, a!.ns, b!.ipv4!, { count: 3, intervalS: 0.2, timeoutS: 2 })).received).toBe(3);
      await new Promise((r) => setTimeout(r, 2000));
      const s1 = await c.status(0);
      const s2 = await c.status(1);
      expect(s1.peers[0]!.path).toBe('direct');
      expect(s1.fastpath.peers[0]!.state).not.toBe('up');
      expect(s2.fastpath.note).toMatch(/off/);
      expect((await ping(c.lab, a!.ns, b!.ipv4!, { count: 3, intervalS: 0.2, timeoutS: 2 })).received).toBe(3);
    } finally {
      await c.destroy();
    }
  });
});

describe.skipIf(!isRoot)('fast path: plaintext without a secret file', () => {
  it('still authenticates probes: the mesh makes pair keys (its PSK then comes from an empty secret that anyone has)', async () => {
    const c = await WeftCluster.start({ nodes: 2, plaintext: true });
    try {
      await c.waitEstablished();
      await c.waitFastPath();
      const s = await c.apiStatus(0);
      expect(s.mode.encryption).toBe('none');
      expect(s.mesh.keys.map((k) => k.state)).toEqual(['established']);
      expect(s.fastpath.probes!.accepted).toBeGreaterThan(0);
      expect(Object.values(s.fastpath.probes!.drops).reduce((x, y) => x + y, 0)).toBe(0);
      expect(s.fastpath.vxlanPort!.peers).toEqual([c.lab.nodes[1]!.address]);
    } finally {
      await c.destroy();
    }
  });
});
