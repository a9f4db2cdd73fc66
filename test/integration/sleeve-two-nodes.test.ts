import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROUTER_NODE_FLAGS } from '../../src/cli/router-runtime.js';
import { WeftCluster, iperf3Tcp, ping } from '../../lab/index.js';

// Run both ways: seals and opens one message at a time (--crypto-threads 0, the default on this
// machine's 2 cores) and in batches on a crypto pool of 2 threads.
describe.each([0, 2])('two nodes over the encrypted sleeve, --crypto-threads %i', (cryptoThreads) => {
  let c: WeftCluster;
  beforeAll(async () => {
    c = await WeftCluster.start({ nodes: 2, extraArgs: ['--crypto-threads', String(cryptoThreads)] });
    await c.waitEstablished();
  });
  afterAll(async () => {
    await c?.destroy();
  });

  it('pods ping each other both ways over IPv4', async () => {
    const [a, b] = c.pods;
    const ab = await ping(c.lab, a!.ns, b!.ipv4!, { count: 5, intervalS: 0.1 });
    const ba = await ping(c.lab, b!.ns, a!.ipv4!, { count: 5, intervalS: 0.1 });
    expect(ab.received).toBe(5);
    expect(ba.received).toBe(5);
  });

  it('pods ping each other over IPv6', async () => {
    const [a, b] = c.pods;
    expect((await ping(c.lab, a!.ns, b!.ipv6!, { count: 5, intervalS: 0.1 })).received).toBe(5);
    expect((await ping(c.lab, b!.ns, a!.ipv6!, { count: 5, intervalS: 0.1 })).received).toBe(5);
  });

  it('ARP resolves across nodes: each pod learns the other pod\'s real MAC', async () => {
    const [a, b] = c.pods;
    const neigh = JSON.parse((await c.lab.exec(a!.ns, ['ip', '-j', 'neigh', 'show', b!.ipv4!])).stdout) as { lladdr?: string }[];
    expect(neigh[0]?.lladdr).toBe(b!.mac);
  });

  it('a full-MTU DF packet crosses without IP fragmentation of the overlay', async () => {
    const [a, b] = c.pods;
    const size = c.overlayMtu - 28;
    expect((await ping(c.lab, a!.ns, b!.ipv4!, { count: 3, intervalS: 0.1, size })).received).toBe(3);
    const tooBig = await ping(c.lab, a!.ns, b!.ipv4!, { count: 1, size: size + 1, timeoutS: 1 });
    expect(tooBig.received).toBe(0);
  });

  it('each router runs under its memory settings, as the process the lab started (same PID, run again in place)', async () => {
    for (const [i, r] of c.routers.entries()) {
      const pid = (await c.status(i)).pid;
      expect(pid).toBe(r.process!.pid);
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      for (const f of ROUTER_NODE_FLAGS) expect(argv).toContain(f);
      expect(readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')).toContain('WEFT_RUNTIME=set');
    }
  });

  it('status reports peers, traffic, MTU and mode (JSON and human form)', async () => {
    const s = await c.status(0);
    expect(s.peers).toHaveLength(1);
    expect(s.peers[0]!.nickname).toBe('n2');
    expect(s.peers[0]!.name).toMatch(/^[0-9a-f]{16}$/);
    expect(s.peers[0]!.name).toBe((await c.status(1)).name);
    expect(s.peers[0]!.state).toBe('established');
    expect(s.peers[0]!.path).toBe('direct');
    // both dialled each other at start; one connection survived the tie-break, the same on both ends
    const s2 = await c.status(1);
    expect(s.mesh.connections).toHaveLength(1);
    expect(s2.mesh.connections).toHaveLength(1);
    expect(s.mesh.connections[0]!.outbound).not.toBe(s2.mesh.connections[0]!.outbound);
    expect(s.mesh.keys[0]).toMatchObject({ state: 'established' });
    expect(s.peers[0]!.rxFrames).toBeGreaterThan(0);
    expect(s.mode.encryption).toBe('chacha20-poly1305');
    expect(s.mode.vnetHdr).toBe(true);
    expect(s.mode.tapReads).toBe('io_uring');
    // io_uring asks for 2 reads first: a lone frame and the empty queue in one call
    expect(s.traffic.tap.rxCalls).toBeGreaterThan(0);
    expect(s.traffic.tap.rxCalls).toBeLessThanOrEqual(s.traffic.tap.rxPackets);
    expect(s.mtu.overlay).toBe(1404);
    expect(s.crypto?.threads).toBe(cryptoThreads);
    expect(s.traffic.tap.rxPackets).toBeGreaterThan(0);
    const cli = await c.lab.exec(c.routers[0]!.node.ns, [process.execPath, 'dist/src/cli/main.js', 'status', '--socket', c.routers[0]!.socket]);
    expect(cli.stdout).toMatch(/weft router [0-9a-f]{16} "n1"/);
    expect(cli.stdout).toMatch(/[0-9a-f]{16}\s+n2\s+direct\s+198\.18\.0\.2:6784\s+established/);
    expect(cli.stdout).toMatch(cryptoThreads === 0 ? /crypto: one message at a time/ : /crypto: batches on 2 threads/);
    expect(cli.stdout).toMatch(/tap reads io_uring/);
  });

  it('a TCP stream crosses (super-frames sealed and opened in batches with threads), nothing refused', async () => {
    const [a, b] = c.pods;
    const before = [await c.status(0), await c.status(1)];
    const r = await iperf3Tcp(c.lab, b!.ns, b!.ipv4!, a!.ns, { seconds: 2 });
    expect(r.gbps).toBeGreaterThan(0);
    const after = [await c.status(0), await c.status(1)];
    for (let i = 0; i < 2; i++) {
      expect(after[i]!.drops['rx.auth'], `router ${i + 1}`).toBe(before[i]!.drops['rx.auth']);
      expect(after[i]!.crypto!.sealFailures).toBe(0);
      if (cryptoThreads > 0) expect(after[i]!.crypto!.opens.jobs).toBeGreaterThan(before[i]!.crypto!.opens.jobs);
    }
  });

  it('the bridge, TAP and pod veths carry the overlay MTU', async () => {
    const n = c.routers[0]!.node.ns;
    const links = JSON.parse((await c.lab.exec(n, ['ip', '-j', 'link', 'show'])).stdout) as { ifname: string; mtu: number }[];
    const mtu = (name: string) => links.find((l) => l.ifname === name)?.mtu;
    expect(mtu('weft')).toBe(1404);
    expect(mtu('weft-tap')).toBe(1404);
    expect(mtu('vp1')).toBe(1404);
  });
});

describe('wrong secret', () => {
  it('a router with another secret never joins: its mesh handshakes are refused and counted, no traffic flows', async () => {
    const c = await WeftCluster.start({ nodes: 2, secrets: ['first secret, long enough!!', 'second secret, also long!!'] });
    try {
      await new Promise((r) => setTimeout(r, 2500));
      const [a, b] = c.pods;
      const r = await ping(c.lab, a!.ns, b!.ipv4!, { count: 3, intervalS: 0.2, timeoutS: 1 });
      expect(r.received).toBe(0);
      const s1 = await c.status(0);
      const s2 = await c.status(1);
      expect(s1.peers).toEqual([]);
      expect(s2.peers).toEqual([]);
      expect(s1.mesh.connections).toEqual([]);
      // each side refused the other's handshake (inbound), and saw its own refused (outbound)
      expect(s1.mesh.closes.handshake).toBeGreaterThan(0);
      expect(s2.mesh.closes.handshake).toBeGreaterThan(0);
      expect(s1.traffic.udp.rxPackets + s2.traffic.udp.rxPackets).toBe(0);
    } finally {
      await c.destroy();
    }
  });
});
