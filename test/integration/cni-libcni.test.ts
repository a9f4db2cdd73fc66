/**
 * The installed plugin called as libcni calls it (lab/cni-node.ts: `env -i` plus CNI_*, the
 * per-plugin config from the conflist on stdin) against a real weft router with IPAM: several
 * attachments in one pod (as Multus makes them), the config's routes, VERSION, GC's input, the
 * result's interfaces, and the errors of issue 15 (code 1, 4, 5, 7), each checked for what the
 * plugin said and for what state it left.
 */
import { GC_GRACE_MS } from '../../src/cni/commands/gc.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callPlugin, CniNode, type CniCallInit, type CniCallResult } from '../../lab/cni-node.js';
import { execIn } from '../../lab/lab-process.js';
import { hostVethName } from '../../src/cni/veth.js';

const isRoot = process.getuid?.() === 0;

interface Grant {
  containerId: string;
  ifName: string;
  addresses: string[];
}

interface Route {
  dst: string;
  gateway?: string;
  dev?: string;
}

describe.skipIf(!isRoot)('the installed CNI plugin as libcni calls it', () => {
  let node: CniNode;
  let bridge: string;
  let gw4: string;
  let gw6: string;
  let seq = 0;

  const nextId = (): string => `libcni-${++seq}`;

  async function allocations(): Promise<Grant[]> {
    const r = await node.cluster.api<{ allocations: Grant[] }>(0, 'GET', '/v1/ipam/allocations');
    return r.allocations.filter((a) => !a.containerId.startsWith('weft:'));
  }

  async function hostEnds(): Promise<string[]> {
    const links = JSON.parse((await execIn(node.nodeNs, ['ip', '-j', 'link', 'show', 'type', 'veth'])).stdout) as { ifname: string }[];
    return links.map((l) => l.ifname).filter((n) => n.startsWith('vw')).sort();
  }

  async function routes(ns: string, family: 4 | 6): Promise<Route[]> {
    return JSON.parse((await execIn(ns, ['ip', '-j', `-${family}`, 'route', 'show'])).stdout) as Route[];
  }

  async function link(ns: string, dev: string): Promise<{ address: string; addr_info: { local: string; prefixlen: number; scope: string }[] } | undefined> {
    const r = await execIn(ns, ['ip', '-j', 'addr', 'show', 'dev', dev], { check: false });
    return r.code === 0 ? (JSON.parse(r.stdout) as { address: string; addr_info: { local: string; prefixlen: number; scope: string }[] }[])[0] : undefined;
  }

  async function pings(ns: string, to: string, dev?: string): Promise<boolean> {
    const r = await execIn(ns, ['ping', '-n', '-c', '2', '-i', '0.2', '-W', '2', ...(dev === undefined ? [] : ['-I', dev]), to], { check: false, timeoutMs: 20_000 });
    return r.code === 0;
  }

  function ok(r: CniCallResult): Record<string, unknown> {
    expect(r.code, r.stdout + r.stderr).toBe(0);
    return r.json ?? {};
  }

  const addressesOf = (result: Record<string, unknown>): string[] => (result.ips as { address: string }[]).map((x) => x.address);

  beforeAll(async () => {
    node = await CniNode.start();
    const net = await node.cluster.api<{ bridge: string; gateways: { address: string; family: 4 | 6 }[] }>(0, 'GET', '/v1/cni/network');
    bridge = net.bridge;
    gw4 = net.gateways.find((g) => g.family === 4)!.address;
    gw6 = net.gateways.find((g) => g.family === 6)!.address;
  }, 180_000);

  afterAll(async () => {
    await node?.destroy();
  });

  it('a second attachment in the same pod (ifName net1): own addresses and routes, no second default route; CHECK of each passes; DEL of one leaves the other working', async () => {
    const pod = await node.newPodNs();
    const containerId = nextId();
    const first = ok(await node.call('ADD', { containerId, netns: pod.path }));
    expect(first.routes).toEqual([
      { dst: '0.0.0.0/0', gw: gw4 },
      { dst: '::/0', gw: gw6 },
    ]);
    const extra = { routes: [{ dst: '192.168.77.0/24' }, { dst: 'fd01:77::/64', gw: gw6 }] };
    const second = ok(await node.call('ADD', { containerId, netns: pod.path, ifName: 'net1', extra }));
    expect(second).toMatchObject({
      interfaces: [{ name: bridge }, { name: hostVethName(containerId, 'net1') }, { name: 'net1', sandbox: pod.path }],
      ips: [{ interface: 2 }, { interface: 2 }],
      routes: [
        { dst: '192.168.77.0/24', gw: gw4 },
        { dst: 'fd01:77::/64', gw: gw6 },
      ],
    });
    const a1 = addressesOf(first);
    const a2 = addressesOf(second);
    expect(a2).toHaveLength(2);
    expect(a2.filter((a) => a1.includes(a))).toEqual([]);
    // The netns: one default route per family (eth0's), net1's addresses and config routes.
    for (const fam of [4, 6] as const) {
      const defaults = (await routes(pod.ns, fam)).filter((r) => r.dst === 'default');
      expect(defaults).toEqual([expect.objectContaining({ gateway: fam === 4 ? gw4 : gw6, dev: 'eth0' })]);
    }
    expect(await routes(pod.ns, 4)).toContainEqual(expect.objectContaining({ dst: '192.168.77.0/24', gateway: gw4, dev: 'net1' }));
    expect(await routes(pod.ns, 6)).toContainEqual(expect.objectContaining({ dst: 'fd01:77::/64', gateway: gw6, dev: 'net1' }));
    const net1 = await link(pod.ns, 'net1');
    expect(net1?.addr_info.filter((x) => x.scope === 'global').map((x) => `${x.local}/${x.prefixlen}`).sort()).toEqual([...a2].sort());
    // CHECK of each attachment passes.
    expect((await node.call('CHECK', { containerId, netns: pod.path, extra: { prevResult: first } })).code).toBe(0);
    expect((await node.call('CHECK', { containerId, netns: pod.path, ifName: 'net1', extra: { ...extra, prevResult: second } })).code).toBe(0);
    // DEL of eth0 leaves net1: its addresses, its allocation, its traffic.
    expect((await node.call('DEL', { containerId, netns: pod.path, extra: { prevResult: first } })).code).toBe(0);
    expect(await link(pod.ns, 'eth0')).toBeUndefined();
    expect((await allocations()).filter((a) => a.containerId === containerId).map((a) => a.ifName)).toEqual(['net1']);
    expect(await hostEnds()).toContain(hostVethName(containerId, 'net1'));
    expect(await pings(pod.ns, gw4, 'net1')).toBe(true);
    expect(await pings(pod.ns, gw6, 'net1')).toBe(true);
    expect((await node.call('CHECK', { containerId, netns: pod.path, ifName: 'net1', extra: { ...extra, prevResult: second } })).code).toBe(0);
    expect((await node.call('DEL', { containerId, netns: pod.path, ifName: 'net1' })).code).toBe(0);
    expect((await allocations()).filter((a) => a.containerId === containerId)).toEqual([]);
    expect(await hostEnds()).not.toContain(hostVethName(containerId, 'net1'));
  });

  it('DEL of the second attachment leaves the first (and its default routes) working', async () => {
    const pod = await node.newPodNs();
    const containerId = nextId();
    const first = ok(await node.call('ADD', { containerId, netns: pod.path }));
    ok(await node.call('ADD', { containerId, netns: pod.path, ifName: 'net1' }));
    expect((await node.call('DEL', { containerId, netns: pod.path, ifName: 'net1' })).code).toBe(0);
    expect((await routes(pod.ns, 4)).filter((r) => r.dst === 'default')).toEqual([expect.objectContaining({ gateway: gw4, dev: 'eth0' })]);
    expect(await pings(pod.ns, gw4)).toBe(true);
    expect(await pings(pod.ns, gw6)).toBe(true);
    expect((await node.call('CHECK', { containerId, netns: pod.path, extra: { prevResult: first } })).code).toBe(0);
    expect((await node.call('DEL', { containerId, netns: pod.path })).code).toBe(0);
  });

  it('a repeated ADD of a live pod fails (its interface is there) and the pod keeps its address and its traffic (the guard still knows its MAC)', async () => {
    const pod = await node.newPodNs();
    const containerId = nextId();
    const first = ok(await node.call('ADD', { containerId, netns: pod.path }));
    const again = await node.call('ADD', { containerId, netns: pod.path });
    expect(again.json).toMatchObject({ code: 4, msg: expect.stringMatching(/eth0 already exists/) });
    expect((await allocations()).filter((a) => a.containerId === containerId)).toHaveLength(1);
    expect(await pings(pod.ns, gw4)).toBe(true);
    expect(await pings(pod.ns, gw6)).toBe(true);
    expect((await node.call('CHECK', { containerId, netns: pod.path, extra: { prevResult: first } })).code).toBe(0);
    expect((await node.call('DEL', { containerId, netns: pod.path })).code).toBe(0);
  });

  it.each([
    ['defaultRoute false: no default route even for the first attachment', { defaultRoute: false }, [], []],
    ['defaultRoute true on a netns without one: added', { defaultRoute: true }, [`0.0.0.0/0`], ['default']],
  ])('%s', async (_what, extra, reported, inNetns) => {
    const pod = await node.newPodNs();
    const containerId = nextId();
    const r = ok(await node.call('ADD', { containerId, netns: pod.path, extra }));
    expect((r.routes as { dst: string }[]).map((x) => x.dst).filter((d) => d.includes('.'))).toEqual(reported);
    expect((await routes(pod.ns, 4)).filter((x) => x.dst === 'default').map((x) => x.dst)).toEqual(inNetns);
    expect((await node.call('DEL', { containerId, netns: pod.path })).code).toBe(0);
  });

  it('defaultRoute true where the pod has a default route already: fails (102) and leaves nothing of the attempt', async () => {
    const pod = await node.newPodNs();
    const containerId = nextId();
    ok(await node.call('ADD', { containerId, netns: pod.path }));
    const before = { ends: await hostEnds(), allocs: await allocations() };
    const r = await node.call('ADD', { containerId, netns: pod.path, ifName: 'net1', extra: { defaultRoute: true } });
    expect(r.json).toMatchObject({ code: 102, msg: expect.stringMatching(/default route.*EEXIST/) });
    expect(await hostEnds()).toEqual(before.ends);
    expect(await allocations()).toEqual(before.allocs);
    expect(await link(pod.ns, 'net1')).toBeUndefined();
    expect((await node.call('DEL', { containerId, netns: pod.path })).code).toBe(0);
  });

  it('the result lists the bridge, the host veth and the container interface with their MACs; ips index the container interface; CHECK reads the older 2-interface shape too', async () => {
    const pod = await node.newPodNs();
    const containerId = nextId();
    const r = ok(await node.call('ADD', { containerId, netns: pod.path }));
    const itfs = r.interfaces as { name: string; mac: string; sandbox?: string }[];
    const host = hostVethName(containerId, 'eth0');
    expect(itfs.map((i) => i.name)).toEqual([bridge, host, 'eth0']);
    expect(itfs[0]!.mac).toBe((await link(node.nodeNs, bridge))?.address);
    expect(itfs[1]!.mac).toBe((await link(node.nodeNs, host))?.address);
    expect(itfs[2]).toMatchObject({ mac: (await link(pod.ns, 'eth0'))?.address, sandbox: pod.path });
    expect(itfs[0]!.sandbox).toBeUndefined();
    expect(itfs[1]!.sandbox).toBeUndefined();
    expect((r.ips as { interface: number }[]).map((i) => i.interface)).toEqual([2, 2]);
    const old = { ...r, interfaces: itfs.slice(1), ips: (r.ips as object[]).map((ip) => ({ ...ip, interface: 1 })) };
    expect((await node.call('CHECK', { containerId, netns: pod.path, extra: { prevResult: old } })).code).toBe(0);
    expect((await node.call('CHECK', { containerId, netns: pod.path, extra: { prevResult: r } })).code).toBe(0);
    expect((await node.call('DEL', { containerId, netns: pod.path })).code).toBe(0);
  });

  it.each([
    ['input that is not JSON', { config: '{nope' }],
    ['an unsupported cniVersion', { config: { cniVersion: '0.4.0' } }],
    ['a far newer cniVersion', { config: { cniVersion: '9.0.0' } }],
    ['closed stdin', { stdin: 'closed' as const }],
  ])('VERSION ignores %s: the latest supported version and the full list', async (_what, c: CniCallInit) => {
    const r = await node.call('VERSION', c);
    expect(r.code).toBe(0);
    expect(r.json).toEqual({ cniVersion: '1.1.0', supportedVersions: ['1.0.0', '1.1.0'] });
  });

  it.each([
    ['cni.dev/valid-attachments: null', { 'cni.dev/valid-attachments': null }],
    ['the key missing', {}],
  ])('GC with %s: an empty list (the pod attachment goes)', async (_what, extra) => {
    const pod = await node.newPodNs();
    const containerId = nextId();
    ok(await node.call('ADD', { containerId, netns: pod.path }));
    await new Promise((r) => setTimeout(r, GC_GRACE_MS + 500)); // GC leaves attachments younger than its grace
    const r = await node.call('GC', { config: node.pluginConfig({ cniVersion: '1.1.0', ...extra }) });
    expect(r.code, r.stdout).toBe(0);
    expect((await allocations()).filter((a) => a.containerId === containerId)).toEqual([]);
    expect(await hostEnds()).not.toContain(hostVethName(containerId, 'eth0'));
  });

  describe('errors', () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'weft-libcni-'));
    });
    afterAll(() => {
      rmSync(dir, { recursive: true, force: true });
    });

    /** ADD that must fail with `code` (message matching `msg`) and leave no veth and no allocation. */
    async function refusedAdd(c: Omit<CniCallInit, 'containerId'>, code: number, msg: RegExp, plugin?: string): Promise<void> {
      const before = { ends: await hostEnds(), allocs: await allocations() };
      const pod = c.netns === undefined ? await node.newPodNs() : undefined;
      const call = { containerId: nextId(), ...c, netns: c.netns ?? pod!.path };
      const r = plugin === undefined ? await node.call('ADD', call) : await callPlugin(node.nodeNs, plugin, 'ADD', { ...call, config: call.config ?? node.pluginConfig(call.extra) }, node.binDir);
      expect(r.code).toBe(1);
      expect(r.json).toMatchObject({ code, msg: expect.stringMatching(msg) });
      expect(await hostEnds()).toEqual(before.ends);
      expect(await allocations()).toEqual(before.allocs);
    }

    it('a config without cniVersion → code 1', async () => {
      const config = node.pluginConfig();
      delete config.cniVersion;
      await refusedAdd({ config }, 1, /cniVersion is missing/);
    });

    it.each([
      ['the binary, fd 0 closed', 'closed' as const, false],
      ['the binary, stdin a directory', 'dir' as const, false],
      ['the Node entry, fd 0 closed', 'closed' as const, true],
      ['the Node entry, stdin a directory', 'dir' as const, true],
    ])('stdin that cannot be read → code 5 (%s)', async (_what, stdin, viaNode) => {
      await refusedAdd({ stdin: stdin === 'dir' ? { path: dir } : stdin }, 5, /cannot read the network config(uration)? from stdin/, viaNode ? node.installed.wrapper : undefined);
    });

    it.each([
      ['ipMasq false', { ipMasq: false }, /ipMasq false cannot be honoured: the router always masquerades/],
      ['isGateway false', { isGateway: false }, /isGateway false cannot be honoured/],
      ['isDefaultGateway false', { isDefaultGateway: false }, /isDefaultGateway false cannot be honoured/],
      ['hairpinMode', { hairpinMode: true }, /hairpinMode \(a bridge-plugin key\) cannot be honoured/],
      ['bridge', { bridge: 'cni0' }, /bridge \(a bridge-plugin key\)/],
      ['vlan', { vlan: 3 }, /vlan \(a bridge-plugin key\)/],
      ['an unknown key', { frobnicate: 1 }, /unknown key "frobnicate" \(weft accepts .*routes, defaultRoute/],
      ['a route with host bits', { routes: [{ dst: '10.0.0.0/8' }, { dst: '192.168.1.1/24' }] }, /routes\[1\].dst "192.168.1.1\/24" has host bits set/],
      ['a gateway of the other family', { routes: [{ dst: '10.0.0.0/8', gw: 'fd00::1' }] }, /routes\[0\].gw "fd00::1" must be an IPv4 address/],
    ])('%s → code 7 naming it, nothing changed', async (_what, extra, msg) => {
      await refusedAdd({ extra }, 7, msg);
    });

    it.each([
      ['IP= in CNI_ARGS (podman run --ip)', { args: 'IgnoreUnknown=1;K8S_POD_NAME=x;IP=10.46.9.9' }, 4, /CNI_ARGS IP=10\.46\.9\.9: weft assigns pod addresses from its cluster IPAM/],
      ['MAC= in CNI_ARGS', { args: 'IgnoreUnknown=1;MAC=02:00:00:00:00:09' }, 4, /CNI_ARGS MAC=02:00:00:00:00:09/],
      ['args.cni.ips', { extra: { args: { cni: { ips: ['10.46.9.9/16'] } } } }, 7, /args\.cni\.ips cannot be honoured/],
    ])('a requested address or MAC (%s) is refused, never another one given silently', async (_what, c, code, msg) => {
      await refusedAdd(c, code, msg);
    });

    it('ipMasq, isGateway and isDefaultGateway true are honoured (accepted): the pod egresses masqueraded through the bridge gateway', async () => {
      const pod = await node.newPodNs();
      const containerId = nextId();
      const r = ok(await node.call('ADD', { containerId, netns: pod.path, extra: { ipMasq: true, isGateway: true, isDefaultGateway: true } }));
      expect((r.ips as { gateway: string }[]).map((x) => x.gateway).sort()).toEqual([gw4, gw6].sort());
      expect((await node.call('DEL', { containerId, netns: pod.path })).code).toBe(0);
    });

    it.each([
      ['the binary (through the router)', false],
      ['the Node entry', true],
    ])("the node's own netns as CNI_NETNS → code 4 naming the path, nothing changed (%s)", async (_what, viaNode) => {
      const path = `/var/run/netns/${node.nodeNs}`;
      const names = async (): Promise<string[]> => (JSON.parse((await execIn(node.nodeNs, ['ip', '-j', 'link', 'show'])).stdout) as { ifname: string }[]).map((l) => l.ifname).sort();
      const before = await names();
      await refusedAdd({ netns: path }, 4, new RegExp(`CNI_NETNS ${path} is the node's own network namespace`), viaNode ? node.installed.wrapper : undefined);
      expect(await names()).toEqual(before);
    });
  });
});
