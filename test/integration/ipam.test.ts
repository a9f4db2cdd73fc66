/**
 * Cluster-wide IPAM on real routers in the lab (dual-stack): 3 routers agree on the ring
 * (--ipam-init-peers 3), 300 concurrent allocations spread over them while one router is killed
 * with SIGKILL and restarted, then a router is stopped and forgotten and its space reclaimed by
 * exactly one live peer. Invariants: no address handed out twice, every acknowledged allocation
 * still listed by its router, idempotent repeats, quarantine after release, journaled releases
 * replayed, clear typed errors for bad requests.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReleaseJournal } from '../../src/api/release-journal.js';
import { WeftCluster } from '../../lab/weft-cluster.js';
import type { IpamStatus } from '../../src/ipam/status.js';
import { until } from './helpers.js';

const isRoot = process.getuid?.() === 0;

interface Allocated {
  addresses: { address: string; prefixLength: number; family: 4 | 6 }[];
}
interface Listed {
  allocations: { containerId: string; ifName: string; addresses: string[] }[];
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

describe.skipIf(!isRoot)('IPAM across 3 routers (IPv4 and IPv6)', () => {
  let c: WeftCluster;
  const ipamStatus = (i: number) => c.api<IpamStatus>(i, 'GET', '/v1/ipam/status');
  const allocate = (i: number, containerId: string, ifName = 'eth0') => c.api<Allocated>(i, 'POST', '/v1/ipam/allocate', { containerId, ifName });
  const list = async (i: number) => (await c.api<Listed>(i, 'GET', '/v1/ipam/allocations')).allocations;

  beforeAll(async () => {
    c = await WeftCluster.start({
      nodes: 3,
      extraArgs: ['--ipam-range', '10.44.0.0/16', '--ipam-range6', 'fd00:44::/64', '--ipam-init-peers', '3', '--ipam-quarantine-seconds', '3', '--log-level', 'info'],
    });
    await c.waitEstablished();
    await until('IPAM ready on every router', async () => ((await Promise.all([0, 1, 2].map(ipamStatus))).every((s) => s.ready.ok) ? true : undefined));
  }, 90_000);

  afterAll(async () => {
    await c?.destroy();
  });

  it('the ring is split among the three routers, in both ranges', async () => {
    const s = await ipamStatus(0);
    expect(s.spaces.map((x) => x.range)).toEqual(['10.44.0.0/16', 'fd00:44::/64']);
    const names = await Promise.all([0, 1, 2].map(async (i) => (await c.apiStatus(i)).name));
    for (const sp of s.spaces) expect(sp.owners.map((o) => o.peer).sort()).toEqual([...names].sort());
  });

  it('each node gets a gateway address per family on its bridge, forwarding and source NAT for pods (GET /v1/cni/network)', async () => {
    const net = await until('pod network ready on n1', async () => {
      const n = await c.api<{ ready: boolean; bridge: string; mtu: number; gateways: { address: string; prefixLength: number; family: number }[] }>(0, 'GET', '/v1/cni/network');
      return n.ready ? n : undefined;
    });
    expect(net.gateways.map((g) => [g.family, g.prefixLength])).toEqual([[4, 16], [6, 64]]);
    expect(net.mtu).toBe(c.overlayMtu);
    const ns = c.lab.nodes[0]!.ns;
    const addrs = (await c.lab.exec(ns, ['ip', '-j', 'addr', 'show', 'dev', net.bridge])).stdout;
    for (const g of net.gateways) expect(addrs).toContain(`"local":"${g.address}"`);
    expect((await c.lab.exec(ns, ['sysctl', '-n', 'net.ipv4.ip_forward'])).stdout.trim()).toBe('1');
    const nat = (await c.lab.exec(ns, ['nft', 'list', 'table', 'inet', 'weft-nat'])).stdout;
    expect(nat).toContain('ip saddr 10.44.0.0/16 ip daddr != 10.44.0.0/16 masquerade');
    expect(nat).toContain('ip6 saddr fd00:44::/64 ip6 daddr != fd00:44::/64 masquerade');
    // The gateway is an allocation of its own, listed as the daemon's.
    expect((await list(0)).some((a) => a.containerId === 'weft:gateway')).toBe(true);
  });

  it('300 concurrent allocations over 3 routers, one killed -9 and restarted mid-way: no duplicate, nothing lost', async () => {
    const acked = new Map<string, { router: number; addresses: string[] }>();
    let done = 0;
    let killed: Promise<void> | undefined;
    const one = async (k: number): Promise<void> => {
      const router = k % 3;
      const id = `pod-${k}`;
      for (let attempt = 0; ; attempt++) {
        try {
          const r = await allocate(router, id);
          acked.set(id, { router, addresses: r.addresses.map((a) => a.address) });
          done++;
          if (done === 100 && killed === undefined) {
            killed = (async () => {
              await c.stopRouter(1, 'SIGKILL');
              await delay(500);
              await c.startRouter(1);
            })();
          }
          return;
        } catch (err) {
          // The killed router's requests fail until it is back; the client retries (as kubelet would).
          if (attempt > 200) throw err;
          await delay(100);
        }
      }
    };
    await Promise.all(Array.from({ length: 300 }, (_, k) => one(k)));
    await killed;
    expect(acked.size).toBe(300);
    const all = [...acked.values()].flatMap((a) => a.addresses);
    expect(all.filter((a) => a.includes(':'))).toHaveLength(300);
    expect(new Set(all).size).toBe(all.length);
    // Every acknowledged allocation is still held by its router (the killed one included), with the same addresses.
    const lists = await Promise.all([0, 1, 2].map(list));
    for (const [id, a] of acked) {
      const entry = lists[a.router]!.find((x) => x.containerId === id && x.ifName === 'eth0');
      expect(entry?.addresses, id).toEqual(a.addresses);
    }
    const listed = lists.flatMap((l) => l.flatMap((x) => x.addresses));
    expect(new Set(listed).size).toBe(listed.length);
    // Idempotent: asking again returns the same addresses, on the restarted router too.
    for (const k of [1, 4, 7, 2]) expect((await allocate(k % 3, `pod-${k}`)).addresses.map((a) => a.address)).toEqual(acked.get(`pod-${k}`)!.addresses);
  }, 180_000);

  it('a released address is quarantined: the next allocation gets another one', async () => {
    const first = (await allocate(0, 'q-1')).addresses.map((a) => a.address);
    const rel = await c.api<{ released: string[] }>(0, 'POST', '/v1/ipam/release', { containerId: 'q-1' });
    expect(rel.released.sort()).toEqual([...first].sort());
    expect((await c.api<{ released: string[] }>(0, 'POST', '/v1/ipam/release', { containerId: 'q-1' })).released).toEqual([]);
    const next = (await allocate(0, 'q-2')).addresses.map((a) => a.address);
    for (const a of first) expect(next).not.toContain(a);
    const s = await ipamStatus(0);
    expect(Number(s.spaces[0]!.own.quarantined)).toBeGreaterThanOrEqual(1);
  });

  it('the CLI shows it: weft ipam (status), weft ipam allocate / list / release', async () => {
    const cli = (...args: string[]) => c.lab.exec(c.lab.nodes[0]!.ns, [process.execPath, 'dist/src/cli/main.js', ...args, '--socket', c.routers[0]!.socket], { check: false });
    const st = await cli('ipam');
    expect(st.stdout).toMatch(/IPAM of [0-9a-f]{16}: ready/);
    expect(st.stdout).toContain('10.44.0.0/16:');
    expect(st.stdout).toContain('fd00:44::/64:');
    const got = await cli('ipam', 'allocate', 'cli-1', '--if', 'net1');
    expect(got.stdout.trim()).toMatch(/^10\.44\.\d+\.\d+\/16 fd00:44::[0-9a-f:]+\/64$/);
    expect((await cli('ipam', 'list')).stdout).toContain(`cli-1 net1 ${got.stdout.trim().split(' ').map((a) => a.split('/')[0]).join(' ')}`);
    expect((await cli('ipam', 'release', 'cli-1')).stdout).toMatch(/^released: 10\.44/);
    const bad = await cli('ipam', 'allocate', 'no spaces allowed');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/containerId/);
  });

  it('bad requests get a typed error naming the field, and the router keeps serving', async () => {
    await expect(allocate(0, 'bad id with spaces')).rejects.toMatchObject({ code: 'ERR_IPAM_BAD_REQUEST', message: expect.stringMatching(/containerId/) });
    await expect(allocate(0, 'ok-id', 'a/b')).rejects.toMatchObject({ code: 'ERR_IPAM_BAD_REQUEST', message: expect.stringMatching(/ifName/) });
    await expect(c.api(0, 'POST', '/v1/ipam/allocate', { containerId: 7 })).rejects.toMatchObject({ code: 'ERR_IPAM_BAD_REQUEST' });
    expect((await allocate(0, 'after-bad')).addresses).toHaveLength(2);
  });

  it('releases journaled while the router was down are replayed when it runs', async () => {
    const addrs = (await allocate(2, 'journaled-1')).addresses.map((a) => a.address);
    await c.stopRouter(2);
    new ReleaseJournal(`${c.stateDir(2)}/pending-releases`).record('journaled-1', 'eth0');
    await c.startRouter(2);
    await until('the journaled release replayed', async () => ((await list(2)).some((x) => x.containerId === 'journaled-1') ? undefined : true));
    expect(new ReleaseJournal(`${c.stateDir(2)}/pending-releases`).pending()).toEqual([]);
    const s = await ipamStatus(2);
    expect(Number(s.spaces[0]!.own.quarantined) + Number(s.spaces[1]!.own.quarantined)).toBeGreaterThanOrEqual(addrs.length);
    await until('n3 ready again', async () => ((await ipamStatus(2)).ready.ok ? true : undefined));
  });

  it('forget: a stopped router is forgotten and its ranges pass to exactly one live peer; no duplicates after', async () => {
    const n3 = (await c.apiStatus(2)).name;
    const n3Addresses = (await list(2)).flatMap((x) => x.addresses);
    // A reachable peer is not forgotten without --force.
    await expect(c.api(0, 'POST', '/v1/forget', { peer: 'n3' })).rejects.toMatchObject({ code: 'ERR_PEER_REACHABLE' });
    await c.stopRouter(2);
    await until('n3 unreachable from n1', async () => ((await c.apiStatus(0)).mesh.peers.some((p) => p.name === n3 && p.hops !== undefined) ? undefined : true), 20_000);
    await c.api(0, 'POST', '/v1/forget', { peer: 'n3' });
    const owners = await until(
      'n3 ranges taken over by one live peer, as both live routers see it',
      async () => {
        const ss = await Promise.all([0, 1].map(ipamStatus));
        for (const s of ss) for (const sp of s.spaces) if (sp.owners.some((o) => o.peer === n3)) return undefined;
        const view = (s: IpamStatus) => JSON.stringify(s.spaces.map((sp) => sp.owners.map((o) => [o.peer, o.ranges])));
        return view(ss[0]!) === view(ss[1]!) ? ss[0]!.spaces.map((sp) => sp.owners) : undefined;
      },
      30_000,
    );
    for (const sp of owners) expect(sp).toHaveLength(2);
    // Allocate until the live routers have used well over a third of what they own: no address of n3's
    // former pods comes back before the hold is over, and nothing is handed out twice.
    const fresh: string[] = [];
    await Promise.all(
      Array.from({ length: 60 }, async (_, k) => {
        const r = await allocate(k % 2, `after-forget-${k}`);
        fresh.push(...r.addresses.map((a) => a.address));
      }),
    );
    const lists = await Promise.all([0, 1].map(list));
    const listed = lists.flatMap((l) => l.flatMap((x) => x.addresses));
    expect(new Set(listed).size).toBe(listed.length);
    for (const a of fresh) expect(n3Addresses).not.toContain(a);
  }, 120_000);
});
