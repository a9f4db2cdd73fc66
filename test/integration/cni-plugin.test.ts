/**
 * The CNI plugin executed as a runtime executes it (root): the built entry runs inside a lab node
 * namespace (where the bridge and the node's gateway addresses are) with only the CNI_*
 * variables (no PATH), talking to a fake daemon on a Unix socket in this process; pod namespaces
 * are made here with the lab's prefix and removed afterwards. Pod addresses 10.99.0.0/24 and
 * fd00:99::/64 exist only inside the lab's namespaces.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, type LabNode } from '../../lab/lab.js';
import { execIn } from '../../lab/lab-process.js';
import { deleteNamespace } from '../../lab/registry.js';
import { ReleaseJournal } from '../../src/api/release-journal.js';
import { run } from '../../src/platform/linux/run.js';
import { hostVethName } from '../../src/cni/veth.js';
import { FakeDaemon } from '../cni/fake-daemon.js';

const isRoot = process.getuid?.() === 0;
/** The built plugin; WEFT_CNI_MAIN points elsewhere (e.g. a private build) when set. */
const MAIN = process.env.WEFT_CNI_MAIN ?? join(process.cwd(), 'dist', 'src', 'cni', 'main.js');

interface CniRun {
  code: number | null;
  stdout: string;
  stderr: string;
  json: Record<string, unknown> | undefined;
}

describe.skipIf(!isRoot)('CNI plugin in lab namespaces', () => {
  let lab: Lab;
  let node: LabNode;
  let daemon: FakeDaemon;
  let journalDir: string;
  const pods = new Set<string>();
  let podSeq = 1000;

  async function newPodNs(): Promise<{ ns: string; path: string }> {
    const ns = `${lab.prefix}-n1p${++podSeq}`;
    await run('ip', ['netns', 'add', ns]);
    pods.add(ns);
    return { ns, path: `/var/run/netns/${ns}` };
  }

  async function dropPodNs(ns: string): Promise<void> {
    await deleteNamespace(ns);
    pods.delete(ns);
  }

  function conf(extra: Record<string, unknown> = {}): Record<string, unknown> {
    return { cniVersion: '1.1.0', name: 'weft', type: 'weft', socket: daemon.socket, journalDir, ...extra };
  }

  async function cni(command: string, a: { id?: string; netns?: string; ifName?: string; conf?: Record<string, unknown> } = {}): Promise<CniRun> {
    const env: Record<string, string> = { CNI_COMMAND: command, CNI_PATH: '/opt/cni/bin' };
    if (a.id !== undefined) env.CNI_CONTAINERID = a.id;
    if (a.netns !== undefined) env.CNI_NETNS = a.netns;
    if (a.id !== undefined) env.CNI_IFNAME = a.ifName ?? 'eth0';
    const r = await lab.exec(node.ns, [process.execPath, MAIN], { env, input: JSON.stringify(a.conf ?? conf()), check: false, timeoutMs: 60_000 });
    return { ...r, json: r.stdout.trim() === '' ? undefined : (JSON.parse(r.stdout) as Record<string, unknown>) };
  }

  async function inPod(ns: string, argv: string[]): Promise<string> {
    return (await execIn(ns, argv, { timeoutMs: 20_000 })).stdout;
  }

  async function podLink(ns: string, ifName = 'eth0'): Promise<{ mtu: number; flags: string[]; addr_info: { local: string; prefixlen: number; scope: string }[] } | undefined> {
    const r = await execIn(ns, ['ip', '-j', 'addr', 'show', 'dev', ifName], { check: false });
    return r.code === 0 ? JSON.parse(r.stdout)[0] : undefined;
  }

  async function hostVeths(): Promise<string[]> {
    const links = JSON.parse((await lab.exec(node.ns, ['ip', '-j', 'link', 'show', 'type', 'veth'])).stdout) as { ifname: string }[];
    return links.map((l) => l.ifname).filter((n) => n.startsWith('vw'));
  }

  async function pings(ns: string, to: string): Promise<boolean> {
    const r = await execIn(ns, ['ping', '-n', '-c', '2', '-i', '0.2', '-W', '2', to], { check: false, timeoutMs: 20_000 });
    return r.code === 0;
  }

  function v4Of(result: Record<string, unknown> | undefined): string {
    const ips = (result?.ips ?? []) as { address: string }[];
    return ips.find((i) => !i.address.includes(':'))!.address.split('/')[0]!;
  }

  function v6Of(result: Record<string, unknown> | undefined): string {
    const ips = (result?.ips ?? []) as { address: string }[];
    return ips.find((i) => i.address.includes(':'))!.address.split('/')[0]!;
  }

  beforeAll(async () => {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: build first (npm run build:ts)`);
    lab = await Lab.create({ nodes: 1 });
    node = lab.nodes[0]!;
    // What the router does on a real node: the bridge, with the node's gateway address per family.
    await lab.exec(node.ns, ['ip', 'link', 'add', 'weft', 'type', 'bridge']);
    await lab.exec(node.ns, ['ip', 'addr', 'add', '10.99.0.1/24', 'dev', 'weft']);
    await lab.exec(node.ns, ['ip', '-6', 'addr', 'add', 'fd00:99::1/64', 'dev', 'weft', 'nodad']);
    await lab.exec(node.ns, ['ip', 'link', 'set', 'weft', 'up']);
    daemon = await new FakeDaemon({ v4Prefix: '10.99.0', v6Prefix: 'fd00:99::', mtu: 1376, bridge: 'weft' }).start();
    journalDir = join(daemon.dir, 'pending-releases');
  });

  afterAll(async () => {
    for (const ns of [...pods]) await deleteNamespace(ns).catch(() => undefined);
    await lab?.destroy();
    await daemon?.destroy();
  });

  it('ADD: veth on the bridge with hairpin, addresses, MTU, default routes; pods reach each other and the gateway', async () => {
    const a = await newPodNs();
    const b = await newPodNs();
    const ra = await cni('ADD', { id: 'pod-a', netns: a.path });
    expect(ra.stderr).toBe('');
    expect(ra.code).toBe(0);
    const host = hostVethName('pod-a', 'eth0');
    expect(ra.json).toMatchObject({
      cniVersion: '1.1.0',
      interfaces: [{ name: 'weft', mac: expect.stringMatching(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/) }, { name: host, mtu: 1376 }, { name: 'eth0', mtu: 1376, sandbox: a.path }],
      ips: [
        { address: expect.stringMatching(/^10\.99\.0\.\d+\/24$/), gateway: '10.99.0.1', interface: 2 },
        { address: expect.stringMatching(/^fd00:99::[0-9a-f]+\/64$/), gateway: 'fd00:99::1', interface: 2 },
      ],
      routes: [
        { dst: '0.0.0.0/0', gw: '10.99.0.1' },
        { dst: '::/0', gw: 'fd00:99::1' },
      ],
    });
    const link = await podLink(a.ns);
    expect(link?.mtu).toBe(1376);
    expect(link?.flags).toContain('UP');
    expect(link?.addr_info.filter((x) => x.scope === 'global').map((x) => `${x.local}/${x.prefixlen}`).sort()).toEqual([`${v4Of(ra.json)}/24`, `${v6Of(ra.json)}/64`].sort());
    const mac = (ra.json?.interfaces as { mac: string }[])[2]!.mac;
    const bridgeMac = JSON.parse((await lab.exec(node.ns, ['ip', '-j', 'link', 'show', 'dev', 'weft'])).stdout)[0].address;
    expect((ra.json?.interfaces as { mac: string }[])[0]!.mac).toBe(bridgeMac);
    expect(JSON.parse(await inPod(a.ns, ['ip', '-j', 'link', 'show', 'dev', 'eth0']))[0].address).toBe(mac);
    expect(await inPod(a.ns, ['ip', '-4', 'route', 'show', 'default'])).toMatch(/default via 10\.99\.0\.1 dev eth0/);
    expect(await inPod(a.ns, ['ip', '-6', 'route', 'show', 'default'])).toMatch(/default via fd00:99::1 dev eth0/);
    const hostInfo = JSON.parse((await lab.exec(node.ns, ['ip', '-j', '-d', 'link', 'show', 'dev', host])).stdout)[0];
    expect(hostInfo).toMatchObject({ master: 'weft', mtu: 1376, linkinfo: { info_slave_kind: 'bridge', info_slave_data: { hairpin: true } } });
    expect(hostInfo.flags).toContain('UP');

    const rb = await cni('ADD', { id: 'pod-b', netns: b.path });
    expect(rb.code).toBe(0);
    expect(v4Of(rb.json)).not.toBe(v4Of(ra.json));
    expect(await pings(a.ns, v4Of(rb.json))).toBe(true);
    expect(await pings(b.ns, v6Of(ra.json))).toBe(true);
    expect(await pings(a.ns, '10.99.0.1')).toBe(true);
    expect(await pings(a.ns, 'fd00:99::1')).toBe(true);

    // CHECK with the ADD result as prevResult
    expect(await cni('CHECK', { id: 'pod-a', netns: a.path, conf: conf({ prevResult: ra.json }) })).toMatchObject({ code: 0, stdout: '' });
    await inPod(a.ns, ['ip', 'addr', 'del', `${v6Of(ra.json)}/64`, 'dev', 'eth0']);
    const bad = await cni('CHECK', { id: 'pod-a', netns: a.path, conf: conf({ prevResult: ra.json }) });
    expect(bad.json).toMatchObject({ code: 103, msg: expect.stringContaining(`lacks address ${v6Of(ra.json)}/64`) });

    // DEL twice, then without prevResult, then after the netns is gone
    for (let i = 0; i < 2; i++) expect(await cni('DEL', { id: 'pod-a', netns: a.path, conf: conf({ prevResult: ra.json }) })).toMatchObject({ code: 0, stdout: '' });
    expect(await podLink(a.ns)).toBeUndefined();
    expect(await hostVeths()).toEqual([hostVethName('pod-b', 'eth0')]);
    await dropPodNs(b.ns);
    expect(await cni('DEL', { id: 'pod-b', netns: b.path })).toMatchObject({ code: 0 });
    expect(await cni('DEL', { id: 'pod-b' })).toMatchObject({ code: 0 });
    expect(await hostVeths()).toEqual([]);
    expect(daemon.podAllocations()).toEqual([]);
    await dropPodNs(a.ns);
  });

  it('a failed ADD leaves no veth and no allocation', async () => {
    const p = await newPodNs();
    // IPv6 off in the pod: the address cannot be added, after veth and allocation exist.
    await inPod(p.ns, ['sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    const r = await cni('ADD', { id: 'fail-1', netns: p.path });
    expect(r.json).toMatchObject({ code: 102, msg: expect.stringMatching(/configuring eth0/) });
    expect(await podLink(p.ns)).toBeUndefined();
    expect(await hostVeths()).toEqual([]);
    expect(daemon.podAllocations()).toEqual([]);
    expect(daemon.requests.filter((q) => q.path === '/v1/ipam/release').at(-1)?.body).toEqual({ containerId: 'fail-1', ifName: 'eth0' });

    // the bridge is missing
    daemon.bridge = 'nobr';
    const q = await newPodNs();
    const r2 = await cni('ADD', { id: 'fail-2', netns: q.path });
    daemon.bridge = 'weft';
    expect(r2.json).toMatchObject({ code: 102, msg: expect.stringMatching(/nobr/) });
    expect(await podLink(q.ns)).toBeUndefined();
    expect(await hostVeths()).toEqual([]);

    // the interface name is taken: refused, the existing one untouched, nothing allocated
    await inPod(q.ns, ['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0peer']);
    const r3 = await cni('ADD', { id: 'fail-3', netns: q.path });
    expect(r3.json).toMatchObject({ code: 4, msg: expect.stringMatching(/eth0 already exists/) });
    expect(await podLink(q.ns)).toBeDefined();
    expect(await hostVeths()).toEqual([]);

    // the pool is exhausted
    daemon.failures.set('/v1/ipam/allocate', [507, 'ERR_IPAM_EXHAUSTED']);
    const r4 = await cni('ADD', { id: 'fail-4', netns: q.path, ifName: 'net1' });
    daemon.failures.clear();
    expect(r4.json).toMatchObject({ code: 100 });
    expect(await podLink(q.ns, 'net1')).toBeUndefined();
    expect(await hostVeths()).toEqual([]);

    // not a namespace
    const r5 = await cni('ADD', { id: 'fail-5', netns: '/var/run/netns/absent-weft-test' });
    expect(r5.json).toMatchObject({ code: 4, msg: expect.stringMatching(/not a network namespace/) });
    expect(daemon.podAllocations()).toEqual([]);
    // a file that exists but is no network namespace
    const r6 = await cni('ADD', { id: 'fail-6', netns: '/proc/self/ns/uts' });
    expect(r6.json).toMatchObject({ code: 4, msg: expect.stringMatching(/\/proc\/self\/ns\/uts is not a network namespace/) });
    expect(daemon.podAllocations()).toEqual([]);
    expect(await hostVeths()).toEqual([]);
    await dropPodNs(p.ns);
    await dropPodNs(q.ns);
  });

  it("an interrupted ADD's leftover host end is replaced by the next ADD of the same attachment", async () => {
    const p = await newPodNs();
    const host = hostVethName('leftover-1', 'eth0');
    // what an ADD killed between creating the pair and its pod's side leaves: the host end, its peer elsewhere
    await lab.exec(node.ns, ['ip', 'link', 'add', host, 'type', 'veth', 'peer', 'name', 'stale0']);
    const r = await cni('ADD', { id: 'leftover-1', netns: p.path });
    expect(r.code).toBe(0);
    expect(await hostVeths()).toEqual([host]);
    const hostInfo = JSON.parse((await lab.exec(node.ns, ['ip', '-j', 'link', 'show', 'dev', host])).stdout)[0];
    expect(hostInfo.master).toBe('weft');
    expect(await pings(p.ns, '10.99.0.1')).toBe(true);
    expect(await cni('DEL', { id: 'leftover-1', netns: p.path })).toMatchObject({ code: 0 });
    expect(await hostVeths()).toEqual([]);
    await dropPodNs(p.ns);
  });

  it('40 parallel ADDs: 40 distinct addresses, 40 working interfaces; parallel DELs clean up', async () => {
    const nss = await Promise.all(Array.from({ length: 40 }, () => newPodNs()));
    const t0 = Date.now();
    const results = await Promise.all(nss.map((p, i) => cni('ADD', { id: `par-${i}`, netns: p.path })));
    const addMs = Date.now() - t0;
    for (const r of results) expect(r.code, r.stdout).toBe(0);
    const v4 = results.map((r) => v4Of(r.json));
    expect(new Set(v4).size).toBe(40);
    expect(new Set(results.map((r) => v6Of(r.json))).size).toBe(40);
    expect((await hostVeths()).length).toBe(40);
    for (const [i, p] of nss.entries()) {
      const l = await podLink(p.ns);
      expect(l?.flags).toContain('UP');
      expect(l?.addr_info.some((x) => x.local === v4[i])).toBe(true);
    }
    for (const [from, to] of [[0, 39], [7, 21], [33, 2]] as const) expect(await pings(nss[from]!.ns, v4[to]!)).toBe(true);
    const t1 = Date.now();
    const dels = await Promise.all(nss.map((p, i) => cni('DEL', { id: `par-${i}`, netns: p.path })));
    const delMs = Date.now() - t1;
    for (const r of dels) expect(r.code, r.stdout).toBe(0);
    expect(await hostVeths()).toEqual([]);
    expect(daemon.podAllocations()).toEqual([]);
    console.log(`40 parallel ADDs: ${addMs} ms; 40 parallel DELs: ${delMs} ms`);
    for (const p of nss) await dropPodNs(p.ns);
  });

  it('router unreachable during DEL: DEL succeeds, the release is journaled; STATUS says so', async () => {
    const p = await newPodNs();
    expect((await cni('ADD', { id: 'gone-router', netns: p.path })).code).toBe(0);
    expect(await cni('STATUS')).toMatchObject({ code: 0, stdout: '' });
    await daemon.stop();
    try {
      const del = await cni('DEL', { id: 'gone-router', netns: p.path });
      expect(del.code).toBe(0);
      expect(del.stderr).toMatch(/journaled/);
      expect(await hostVeths()).toEqual([]);
      expect(new ReleaseJournal(journalDir).pending()).toMatchObject([{ containerId: 'gone-router', ifName: 'eth0' }]);
      expect((await cni('STATUS')).json).toMatchObject({ code: 50, msg: expect.stringContaining(`router not reachable on ${daemon.socket}`) });
    } finally {
      await daemon.start();
    }
    await dropPodNs(p.ns);
  });

  it('GC releases what the runtime no longer has', async () => {
    const [p, q] = [await newPodNs(), await newPodNs()];
    expect((await cni('ADD', { id: 'gc-keep', netns: p.path })).code).toBe(0);
    expect((await cni('ADD', { id: 'gc-gone', netns: q.path })).code).toBe(0);
    daemon.age(60_000); // made a minute ago: past GC's grace for fresh ADDs
    const r = await cni('GC', { conf: conf({ 'cni.dev/valid-attachments': [{ containerID: 'gc-keep', ifname: 'eth0' }] }) });
    expect(r).toMatchObject({ code: 0, stdout: '' });
    expect(daemon.podAllocations().map((a) => a.containerId)).toEqual(['gc-keep']);
    expect(await hostVeths()).toEqual([hostVethName('gc-keep', 'eth0')]);
    expect(await cni('DEL', { id: 'gc-keep', netns: p.path })).toMatchObject({ code: 0 });
    await dropPodNs(p.ns);
    await dropPodNs(q.ns);
  });
});
