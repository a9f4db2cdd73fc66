/**
 * IPAM ownership through the API server on real routers in the lab: the fake API server
 * (lab/kube-api-main.ts) runs on an underlay host, three routers in Kubernetes mode
 * (--kubernetes --kubeconfig) allocate through `weft ipam allocate` and the local API at once.
 * Invariants: no address handed out twice across routers, every address inside a block whose
 * Lease names its router, blocks disjoint; a deleted Node's blocks go to exactly one live router
 * each; `weft forget` of a stopped router hands its blocks to the router that forgot it (the
 * Lease says so).
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KubeApiControl } from '../../lab/kube-api-control.js';
import { WeftCluster } from '../../lab/weft-cluster.js';
import type { IpamStatus } from '../../src/api/types.js';
import { packageRoot } from '../../src/core/paths.js';
import { LEASE_ANNOTATIONS } from '../../src/k8s/names.js';
import { until } from './helpers.js';

const isRoot = process.getuid?.() === 0;
const root = packageRoot(import.meta.url);
const cli = join(root, 'dist', 'src', 'cli', 'main.js');
const NS = 'kube-system';

interface Allocated {
  addresses: { address: string; prefixLength: number; family: 4 | 6 }[];
}
interface LeaseLike {
  metadata: { name: string; annotations?: Record<string, string> };
  spec: { holderIdentity?: string };
}

/** Whether `address` lies in `cidr` (same family). */
function inCidr(address: string, cidr: string): boolean {
  const [base, len] = cidr.split('/') as [string, string];
  const big = (a: string): bigint => {
    if (a.includes('.')) return a.split('.').reduce((v, p) => (v << 8n) | BigInt(Number(p)), 0n);
    const [l, r] = a.includes('::') ? a.split('::') : [a, undefined];
    const ls = l === '' || l === undefined ? [] : l.split(':');
    const rs = r === undefined || r === '' ? [] : r.split(':');
    const groups = r === undefined ? ls : [...ls, ...Array<string>(8 - ls.length - rs.length).fill('0'), ...rs];
    return groups.reduce((v, g) => (v << 16n) | BigInt(Number.parseInt(g, 16)), 0n);
  };
  const v4 = address.includes('.');
  if (v4 !== base.includes('.')) return false;
  const shift = BigInt((v4 ? 32 : 128) - Number(len));
  return big(address) >> shift === big(base) >> shift;
}

describe.skipIf(!isRoot)('IPAM blocks through the API server (Kubernetes mode, 3 routers)', () => {
  let c: WeftCluster;
  const control = (): KubeApiControl => c.kube!.control;
  const ipamStatus = (i: number) => c.api<IpamStatus>(i, 'GET', '/v1/ipam/status');
  const leases = async () => (await control().listObjects('leases', NS)) as LeaseLike[];
  const names: string[] = [];

  beforeAll(async () => {
    c = await WeftCluster.start({
      nodes: 3,
      podsPerNode: 0,
      kubernetes: { namespace: NS },
      extraArgs: ['--ipam-range', '10.44.0.0/22', '--ipam-range6', 'fd00:44::/118', '--log-level', 'info'],
    });
    await until('IPAM ready on every router', async () => ((await Promise.all([0, 1, 2].map(ipamStatus))).every((s) => s.ready.ok) ? true : undefined), 30_000);
    for (let i = 0; i < 3; i++) names.push((await c.apiStatus(i)).name);
  }, 120_000);

  afterAll(async () => {
    // The lab stops the fake API server with the rest.
    await c?.destroy();
  });

  it('ownership is the Leases: no ring, no gossip channel for IPAM', async () => {
    const s = await ipamStatus(0);
    expect(s.bootstrap).toEqual({ mode: 'kubernetes' });
    expect(s.blocks?.synced).toBe(true);
    expect(s.blocks?.source).toContain(`namespace ${NS}`);
    const st = await c.apiStatus(0);
    expect(st.mesh.channels.map((ch) => ch.channel)).not.toContain('ipam');
  });

  it('240 allocations over 3 routers (weft ipam allocate and the API at once): no duplicate, each inside a block whose Lease names its router', async () => {
    const got = new Map<string, string>();
    const add = (router: number, addrs: string[]): void => {
      for (const a of addrs) {
        expect(got.get(a), `address ${a} handed out twice`).toBeUndefined();
        got.set(a, names[router]!);
      }
    };
    const viaCli = async (router: number, k: number): Promise<void> => {
      const r = c.routers[router]!;
      const out = await c.lab.exec(r.node.ns, [process.execPath, cli, 'ipam', 'allocate', `cli-${router}-${k}`, '--if', 'eth0', '--socket', r.socket]);
      add(router, out.stdout.trim().split(' ').map((x) => x.split('/')[0]!));
    };
    const viaApi = async (router: number, k: number): Promise<void> => {
      const r = await c.api<Allocated>(router, 'POST', '/v1/ipam/allocate', { containerId: `api-${router}-${k}`, ifName: 'eth0' });
      add(router, r.addresses.map((a) => a.address));
    };
    const jobs: Promise<void>[] = [];
    for (let router = 0; router < 3; router++) {
      jobs.push((async () => {
        for (let k = 0; k < 5; k++) await viaCli(router, k);
      })());
      for (let k = 0; k < 75; k++) jobs.push(viaApi(router, k));
    }
    await Promise.all(jobs);
    expect(got.size).toBe(3 * 80 * 2);

    const all = await leases();
    const blocks = all.map((l) => ({ cidr: l.metadata.annotations?.[LEASE_ANNOTATIONS.cidr] ?? '', holder: l.spec.holderIdentity ?? '' }));
    // Every router needed more than one block per family (80 addresses and its gateway).
    for (const n of names) for (const v4 of [true, false]) expect(blocks.filter((b) => b.holder === n && b.cidr.includes('.') === v4).length).toBeGreaterThanOrEqual(2);
    expect(new Set(blocks.map((b) => b.cidr)).size).toBe(blocks.length);
    for (const [address, holder] of got) {
      const owners = blocks.filter((b) => inCidr(address, b.cidr));
      expect(owners, `the block of ${address}`).toHaveLength(1);
      expect(owners[0]!.holder, `the holder of ${address}'s block`).toBe(holder);
    }
    // Each router's status lists the same blocks as the API.
    for (let i = 0; i < 3; i++) {
      const s = await ipamStatus(i);
      const mine = s.spaces.flatMap((sp) => sp.blocks?.mine ?? []).sort();
      expect(mine).toEqual(blocks.filter((b) => b.holder === names[i]).map((b) => b.cidr).sort());
      expect(s.spaces.flatMap((sp) => sp.conflicts)).toEqual([]);
    }
    const text = await c.lab.exec(c.routers[0]!.node.ns, [process.execPath, cli, 'ipam', '--socket', c.routers[0]!.socket]);
    expect(text.stdout).toMatch(/ownership: blocks as Leases, Leases in namespace kube-system of http:\/\/198\.18\.0\.101:6443; synced/);
    expect(text.stdout).toMatch(/blocks \/26 held here \(\d+\): 10\.44\./);
  }, 120_000);

  it("a Node deleted: the two live routers race for its router's blocks, and each block goes to exactly one of them", async () => {
    const before = (await leases()).filter((l) => l.spec.holderIdentity === names[2]).map((l) => l.metadata.name).sort();
    expect(before.length).toBeGreaterThan(0);
    await c.stopRouter(2);
    await control().deleteNode('n3');
    const after = await until('the blocks of n3 reclaimed', async () => {
      const all = await leases();
      return all.some((l) => l.spec.holderIdentity === names[2]) ? undefined : all;
    });
    const taken = after.filter((l) => before.includes(l.metadata.name));
    expect(taken).toHaveLength(before.length);
    for (const l of taken) expect([names[0], names[1]]).toContain(l.spec.holderIdentity);
    // Each live router's own view agrees with the Leases: no block held by both.
    const [m0, m1] = await Promise.all([0, 1].map(async (i) => (await ipamStatus(i)).spaces.flatMap((sp) => sp.blocks?.mine ?? [])));
    expect(m0!.filter((b) => m1!.includes(b))).toEqual([]);
    for (const l of taken) {
      const cidr = l.metadata.annotations?.[LEASE_ANNOTATIONS.cidr] ?? '';
      expect((l.spec.holderIdentity === names[0] ? m0 : m1)!).toContain(cidr);
    }
    const k = await c.apiStatus(0);
    expect(JSON.stringify(k)).toContain('"nodesDeleted":1');
  }, 60_000);

  it('weft forget of a stopped router: its blocks pass to the router that forgot it, Lease by Lease', async () => {
    const before = (await leases()).filter((l) => l.spec.holderIdentity === names[1]).map((l) => l.metadata.name).sort();
    expect(before.length).toBeGreaterThan(0);
    await c.stopRouter(1);
    const r = c.routers[0]!;
    const out = await c.lab.exec(r.node.ns, [process.execPath, cli, 'forget', 'n2', '--force', '--socket', r.socket]);
    expect(out.stdout).toContain(`forgotten: ${names[1]} (IPAM: ${before.length} block(s) reclaimed here)`);
    const after = await leases();
    for (const name of before) expect(after.find((l) => l.metadata.name === name)?.spec.holderIdentity).toBe(names[0]);
    const s = await ipamStatus(0);
    // Reclaimed blocks rest (the quarantine) before their addresses are handed out again.
    expect(s.spaces.some((sp) => sp.own.held !== '0')).toBe(true);
  }, 60_000);
});
