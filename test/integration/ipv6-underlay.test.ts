/**
 * weft on an IPv6 underlay (issue 18): an IPv6-only cluster of three (routers listen on
 * [2001:2::i]:6784; n1 and n3 are told of n2 only and learn each other from topology; UDP between
 * n1 and n3 is cut, so that pair relays through n2), and dual-stack pairs (--listen [::]:6784,
 * both families on the underlay, peers given as IPv4 or as IPv6).
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/core/paths.js';
import { WeftCluster, iperf3Tcp, ping, tcpTransferSha256 } from '../../lab/index.js';

describe('an IPv6-only underlay', () => {
  let c: WeftCluster;
  beforeAll(async () => {
    c = await WeftCluster.start({
      nodes: 3,
      underlay: 'v6',
      // n1 and n3 are told only of n2: each learns the other's endpoint from topology.
      peersOf: (i) => (i === 1 ? [] : [1]),
      beforeRouters: async (lab) => {
        await lab.blockUdpBetween(lab.nodes[0]!, lab.nodes[2]!);
      },
    });
    await c.waitEstablished(45_000);
    await c.waitPaths((from, to) => (from + to === 2 ? 'relay' : 'direct'), 30_000);
  }, 120_000);
  afterAll(async () => {
    await c?.destroy();
  });

  it('has no IPv4 on the underlay; routers listen on and reach each other at IPv6 endpoints', async () => {
    const addrs = await c.lab.exec(c.lab.nodes[0]!.ns, ['ip', '-j', 'addr', 'show', 'dev', 'eth0']);
    const families = (JSON.parse(addrs.stdout) as { addr_info: { family: string; local: string }[] }[])[0]!.addr_info.map((a) => `${a.family} ${a.local}`);
    expect(families.filter((f) => f.startsWith('inet '))).toEqual([]);
    expect(families).toContain('inet6 2001:2::1');
    for (let i = 0; i < 3; i++) {
      const s = await c.status(i);
      expect(s.listen).toBe(`[2001:2::${i + 1}]:6784`);
      // 1500 − 40 (IPv6) − 8 (UDP): fragments and bundles are cut for the IPv6 header.
      expect(s.mtu.maxDatagram).toBe(1452);
      expect(s.mesh.connections.length).toBeGreaterThanOrEqual(2);
      for (const x of s.mesh.connections) expect(x.address).toMatch(/^\[2001:2::[1-3]\]:\d+$/);
      for (const p of s.peers) {
        // Where data for the peer goes: its own endpoint, or n2's for the relayed pair n1–n3.
        const relayed = (i === 0 && p.nickname === 'n3') || (i === 2 && p.nickname === 'n1');
        const k = relayed ? 2 : Number(p.nickname.slice(1));
        expect(p.state, `${s.nickname} → ${p.nickname}`).toBe('established');
        expect(p.endpoint, `${s.nickname} → ${p.nickname}`).toBe(`[2001:2::${k}]:6784`);
      }
    }
  });

  it("learns a peer's IPv6 endpoint from its topology record and dials it", async () => {
    for (const [i, other, k] of [[0, 'n3', 3], [2, 'n1', 1]] as const) {
      const s = await c.status(i);
      const t = s.mesh.targets.find((x) => !x.configured);
      expect(t, `${s.nickname}'s learned target`).toMatchObject({ address: `[2001:2::${k}]:6784`, configured: false });
      expect(s.mesh.connections.some((x) => x.nickname === other), `${s.nickname} connected to ${other}`).toBe(true);
    }
  });

  it('weft status shows IPv6 endpoints in brackets', async () => {
    const r = c.routers[0]!;
    const out = await c.lab.exec(r.node.ns, [process.execPath, join(packageRoot(import.meta.url), 'dist', 'src', 'cli', 'main.js'), 'status', '--socket', r.socket]);
    expect(out.stdout).toContain('listen [2001:2::1]:6784');
    expect(out.stdout).toMatch(/n2\s+direct\s+\[2001:2::2\]:6784/);
  });

  it('n1 reaches n2 directly and n3 through n2; the fast path says it is unavailable', async () => {
    await c.expectPaths(0, { n2: 'direct', n3: 'relay' }, 'from n1');
    await c.expectPaths(2, { n2: 'direct', n1: 'relay' }, 'from n3');
    const s = await c.status(0);
    expect(s.peers.find((p) => p.nickname === 'n3')!.via).toBe(s.peers.find((p) => p.nickname === 'n2')!.name);
    expect(s.fastpath.note).toMatch(/unavailable/);
  });

  it('pods ping each other across (IPv4 and IPv6 pods), direct and relayed', async () => {
    for (const [a, b] of c.podPairs()) {
      expect((await ping(c.lab, a.ns, b.ipv4!, { count: 2, intervalS: 0.1, timeoutS: 3 })).received, `${a.ns} -> ${b.ipv4}`).toBe(2);
      expect((await ping(c.lab, a.ns, b.ipv6!, { count: 2, intervalS: 0.1, timeoutS: 3 })).received, `${a.ns} -> ${b.ipv6}`).toBe(2);
    }
  });

  it('100 MB over TCP arrive intact directly and through the relay, which forwards GRO trains as GSO sends', async () => {
    const from = c.podsOn(1)[0]!;
    const before = (await c.status(1)).relayed;
    for (const to of [c.podsOn(2)[0]!, c.podsOn(3)[0]!]) {
      const r = await tcpTransferSha256(c.lab, from.ns, to.ns, to.ipv4!, 100 * 1024 * 1024);
      expect(r.receivedBytes, to.ns).toBe(100 * 1024 * 1024);
      expect(r.receivedSha256, to.ns).toBe(r.sentSha256);
    }
    const after = (await c.status(1)).relayed;
    expect(after.bytes - before.bytes).toBeGreaterThan(100 * 1024 * 1024);
    expect(after.trains).toBeGreaterThan(before.trains);
    await c.expectPaths(0, { n2: 'direct', n3: 'relay' }, 'from n1 after the transfers');
  });
});

describe.each([
  { peers: 4 as const, endpoint: (k: number) => `198.18.0.${k}:6784` },
  { peers: 6 as const, endpoint: (k: number) => `[2001:2::${k}]:6784` },
])('a dual-stack underlay, peers given as IPv$peers', ({ peers, endpoint }) => {
  let c: WeftCluster;
  beforeAll(async () => {
    c = await WeftCluster.start({ nodes: 2, underlay: 'dual', dualPeers: peers });
    await c.waitEstablished(45_000);
    await c.waitPaths(() => 'direct', 30_000);
  }, 120_000);
  afterAll(async () => {
    await c?.destroy();
  });

  it(`has both families on the underlay; the routers listen on [::] and the direct path runs over IPv${peers}`, async () => {
    const addrs = await c.lab.exec(c.lab.nodes[1]!.ns, ['ip', '-j', 'addr', 'show', 'dev', 'eth0']);
    const locals = (JSON.parse(addrs.stdout) as { addr_info: { local: string }[] }[])[0]!.addr_info.map((a) => a.local);
    expect(locals).toEqual(expect.arrayContaining(['198.18.0.2', '2001:2::2']));
    for (let i = 0; i < 2; i++) {
      const s = await c.status(i);
      expect(s.listen).toBe('[::]:6784');
      expect(s.mtu.maxDatagram).toBe(1452);
      const p = s.peers[0]!;
      expect(p.path).toBe('direct');
      // An IPv4 peer on a dual-stack socket is shown as IPv4 (not ::ffff:198.18.0.k), an IPv6 one in brackets.
      expect(p.endpoint).toBe(endpoint(2 - i));
      expect(s.fastpath.note).toMatch(/unavailable/);
    }
  });

  it('pods reach each other and a TCP stream runs over the direct path', async () => {
    const [a, b] = [c.podsOn(1)[0]!, c.podsOn(2)[0]!];
    expect((await ping(c.lab, a.ns, b.ipv4!, { count: 3, intervalS: 0.1, timeoutS: 3 })).received).toBe(3);
    expect((await ping(c.lab, b.ns, a.ipv6!, { count: 3, intervalS: 0.1, timeoutS: 3 })).received).toBe(3);
    const t = await iperf3Tcp(c.lab, b.ns, b.ipv4!, a.ns, { seconds: 3 });
    expect(t.gbps).toBeGreaterThan(0);
    await c.expectPaths(0, { n2: 'direct' }, 'from n1 after the stream');
    expect((await c.status(0)).peers[0]!.endpoint).toBe(endpoint(2));
  });
});
