/**
 * The kernel pieces of the coming fast path, on real devices in the lab: a VXLAN device without
 * learning per node, programmed forwarding entries (flood and unicast), and bridge port isolation.
 * Pods on two nodes talk through the kernel only when the entries say so.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, type LabPod } from '../../lab/lab.js';
import { ping } from '../../lab/traffic.js';
import { IpNetlink } from '../../src/platform/linux/ip-netlink.js';
import { FLOOD_MAC } from '../../src/platform/netlink.js';

const isRoot = process.getuid?.() === 0;
const VX = 'wvx';

describe.skipIf(!isRoot)('netlink: VXLAN devices, forwarding entries and port isolation', () => {
  let lab: Lab;
  let pods: LabPod[];
  let nl: IpNetlink[];

  beforeAll(async () => {
    lab = await Lab.create({ nodes: 2 });
    pods = [await lab.addPod(0, { ipv4: '10.41.0.1/24', mtu: 1400 }), await lab.addPod(1, { ipv4: '10.41.0.2/24', mtu: 1400 })];
    nl = lab.nodes.map((n) => new IpNetlink({ netns: n.ns }));
    for (const [i, n] of lab.nodes.entries()) {
      const v = await nl[i]!.ensureVxlan({ name: VX, vni: 4242, port: 4789, local: n.address, mtu: 1450 });
      expect(v).toMatchObject({ vni: 4242, port: 4789, local: n.address, learning: false, mtu: 1450 });
      await nl[i]!.setMaster(VX, 'weft');
      await nl[i]!.setUp(VX);
    }
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  it('carries nothing until an entry says where a frame goes', async () => {
    expect(await nl[0]!.fdbList(VX)).toEqual([]);
    expect((await ping(lab, pods[0]!.ns, pods[1]!.ipv4!, { count: 1, timeoutS: 1 })).received).toBe(0);
  });

  it('a flood entry carries ARP and broadcast; a unicast entry names the VTEP of a MAC', async () => {
    const [a, b] = lab.nodes;
    await nl[0]!.fdbSet(VX, { mac: FLOOD_MAC, dst: b!.address });
    await nl[0]!.fdbSet(VX, { mac: FLOOD_MAC, dst: b!.address }); // again: no error, no duplicate
    await nl[1]!.fdbSet(VX, { mac: FLOOD_MAC, dst: a!.address });
    await nl[0]!.fdbSet(VX, { mac: pods[1]!.mac, dst: b!.address });
    await nl[1]!.fdbSet(VX, { mac: pods[0]!.mac, dst: a!.address });
    const list = await nl[0]!.fdbList(VX);
    expect(list).toContainEqual({ mac: FLOOD_MAC, dst: b!.address });
    expect(list).toContainEqual({ mac: pods[1]!.mac, dst: b!.address });
    expect(list.filter((e) => e.mac === FLOOD_MAC)).toHaveLength(1);
    expect((await ping(lab, pods[0]!.ns, pods[1]!.ipv4!, { count: 3, intervalS: 0.2, timeoutS: 2 })).received).toBeGreaterThan(0);
  });

  it('an entry replaced or deleted takes effect at once', async () => {
    const [, b] = lab.nodes;
    await nl[0]!.fdbSet(VX, { mac: pods[1]!.mac, dst: '198.18.0.99' }); // replace: a VTEP that does not exist
    expect(await nl[0]!.fdbList(VX)).toContainEqual({ mac: pods[1]!.mac, dst: '198.18.0.99' });
    expect((await ping(lab, pods[0]!.ns, pods[1]!.ipv4!, { count: 2, intervalS: 0.2, timeoutS: 1 })).received).toBe(0);
    await nl[0]!.fdbSet(VX, { mac: pods[1]!.mac, dst: b!.address });
    expect((await ping(lab, pods[0]!.ns, pods[1]!.ipv4!, { count: 2, intervalS: 0.2, timeoutS: 2 })).received).toBeGreaterThan(0);
    await nl[0]!.fdbDelete(VX, { mac: pods[1]!.mac, dst: b!.address });
    await nl[0]!.fdbDelete(VX, { mac: FLOOD_MAC, dst: b!.address });
    await nl[0]!.fdbDelete(VX, { mac: FLOOD_MAC, dst: b!.address }); // already gone: not an error
    expect(await nl[0]!.fdbList(VX)).toEqual([]);
    expect((await ping(lab, pods[0]!.ns, pods[1]!.ipv4!, { count: 2, intervalS: 0.2, timeoutS: 1 })).received).toBe(0);
    await nl[0]!.fdbSet(VX, { mac: FLOOD_MAC, dst: b!.address });
  });

  it('ensureVxlan keeps a matching device and names what differs in another', async () => {
    const n = lab.nodes[0]!;
    await expect(nl[0]!.ensureVxlan({ name: VX, vni: 4242, port: 4789, local: n.address, mtu: 1450 })).resolves.toMatchObject({ vni: 4242 });
    await expect(nl[0]!.ensureVxlan({ name: VX, vni: 7, port: 4789, local: n.address, mtu: 1450 })).rejects.toThrow(/VNI 4242 \(wanted 7\)/);
    await expect(nl[0]!.ensureVxlan({ name: 'weft', vni: 7, port: 4789, local: n.address, mtu: 1450 })).rejects.toThrow(/bridge link, not a VXLAN device/);
  });

  it('isolated bridge ports never forward to each other (split horizon)', async () => {
    expect((await ping(lab, pods[0]!.ns, pods[1]!.ipv4!, { count: 1, timeoutS: 2 })).received).toBe(1);
    await nl[0]!.setIsolated(VX, true);
    await nl[0]!.setIsolated(pods[0]!.hostVeth, true);
    expect(await nl[0]!.isIsolated(VX)).toBe(true);
    expect((await ping(lab, pods[0]!.ns, pods[1]!.ipv4!, { count: 2, intervalS: 0.2, timeoutS: 1 })).received).toBe(0);
    await nl[0]!.setIsolated(pods[0]!.hostVeth, false); // one side isolated is enough to allow it
    expect(await nl[0]!.isIsolated(pods[0]!.hostVeth)).toBe(false);
    expect((await ping(lab, pods[0]!.ns, pods[1]!.ipv4!, { count: 2, intervalS: 0.2, timeoutS: 2 })).received).toBeGreaterThan(0);
  });

  it('hairpin mode is set on a bridge port and read back with the ports; a link that is no port has none', async () => {
    const port = pods[0]!.hostVeth;
    const hairpinOf = async () => (await nl[0]!.bridgePorts('weft')).find((l) => l.name === port)?.hairpin;
    expect(await hairpinOf()).toBe(false);
    await nl[0]!.setHairpin(port, true);
    expect(await hairpinOf()).toBe(true);
    await nl[0]!.setHairpin(port, false);
    expect(await hairpinOf()).toBe(false);
    expect((await nl[0]!.getLink('weft'))?.hairpin).toBeUndefined();
  });

  it('lists the links as `ip -j -d link show` does, from one netlink dump', async () => {
    await nl[0]!.setHairpin(pods[0]!.hostVeth, true);
    try {
      const ip = JSON.parse(execFileSync('ip', ['-n', lab.nodes[0]!.ns, '-j', '-d', 'link', 'show'], { encoding: 'utf8' })) as IpRow[];
      const expected = ip.map((l) => ({
        name: l.ifname, index: l.ifindex, mtu: l.mtu, up: (l.flags ?? []).includes('UP'), master: l.master, kind: l.linkinfo?.info_kind, mac: l.address,
        ...(l.linkinfo?.info_slave_data?.hairpin === undefined ? {} : { hairpin: l.linkinfo.info_slave_data.hairpin }),
      }));
      const links = await nl[0]!.listLinks();
      expect(links).toEqual(expected);
      // the lab's node: its underlay veth, the bridge, a pod's port (hairpin on), the VXLAN device
      expect(links.find((l) => l.name === pods[0]!.hostVeth)).toMatchObject({ master: 'weft', kind: 'veth', hairpin: true });
      expect(links.find((l) => l.name === VX)).toMatchObject({ master: 'weft', kind: 'vxlan', mtu: 1450, up: true });
    } finally {
      await nl[0]!.setHairpin(pods[0]!.hostVeth, false);
    }
  });

  it('lists the bridge\'s forwarding entries as `bridge -j fdb show br` does, from netlink dumps', async () => {
    // traffic for the bridge to learn from, and a static entry
    expect((await ping(lab, pods[0]!.ns, pods[1]!.ipv4!, { count: 2, intervalS: 0.1, timeoutS: 2 })).received).toBeGreaterThan(0);
    await nl[0]!.bridgeFdbSetStatic(pods[0]!.hostVeth, '02:00:00:00:41:01');
    const fdb = JSON.parse(execFileSync('bridge', ['-n', lab.nodes[0]!.ns, '-j', 'fdb', 'show', 'br', 'weft'], { encoding: 'utf8' })) as { mac: string; ifname: string; master?: string; state?: string }[];
    const expected = fdb
      .filter((r) => r.master === 'weft')
      .map((r) => ({ mac: r.mac, port: r.ifname, kind: r.state === 'static' ? 'static' : r.state === 'permanent' ? 'permanent' : 'learned' }));
    const mine = await nl[0]!.bridgeFdbList('weft');
    expect(mine).toEqual(expected);
    expect(mine).toContainEqual({ mac: pods[0]!.mac, port: pods[0]!.hostVeth, kind: 'learned' });
    expect(mine).toContainEqual({ mac: '02:00:00:00:41:01', port: pods[0]!.hostVeth, kind: 'static' });
    expect(mine.some((e) => e.kind === 'permanent')).toBe(true);
    await nl[0]!.bridgeFdbDelete(pods[0]!.hostVeth, '02:00:00:00:41:01');
    await expect(nl[0]!.bridgeFdbList('nobridge')).rejects.toThrow(/bridge nobridge does not exist/);
  });

  it('lists a device\'s global addresses as `ip -j addr show dev … scope global` does', async () => {
    await nl[0]!.ensureAddress('weft', '10.41.0.254', 24);
    await nl[0]!.ensureAddress('weft', 'fd00:41::fe', 64);
    await nl[0]!.ensureAddress('weft', 'fd00:41:0:0:1:0:0:1', 80);
    const ip = JSON.parse(execFileSync('ip', ['-n', lab.nodes[0]!.ns, '-j', 'addr', 'show', 'dev', 'weft', 'scope', 'global'], { encoding: 'utf8' })) as { addr_info: { family?: string; local?: string; prefixlen?: number }[] }[];
    // (ip prints an empty {} for each address its scope filter leaves out: not an address)
    const expected = ip[0]!.addr_info.filter((a) => a.local !== undefined).map((a) => ({ address: a.local, prefix: a.prefixlen, family: a.family === 'inet6' ? 6 : 4 }));
    const mine = await nl[0]!.addresses('weft');
    expect(mine).toEqual(expected);
    expect(mine).toEqual(expect.arrayContaining([
      { address: '10.41.0.254', prefix: 24, family: 4 },
      { address: 'fd00:41::fe', prefix: 64, family: 6 },
      { address: 'fd00:41::1:0:0:1', prefix: 80, family: 6 },
    ]));
    expect(mine.some((a) => a.address.startsWith('fe80'))).toBe(false); // link scope: left out
    await expect(nl[0]!.addresses('nodev')).rejects.toThrow(/looking up nodev/);
  });

  it('a namespace that is not there is an error that names it', async () => {
    await expect(new IpNetlink({ netns: `${lab.prefix}-gone` }).listLinks()).rejects.toThrow(`${lab.prefix}-gone`);
  });
});

interface IpRow {
  ifname: string;
  ifindex: number;
  mtu: number;
  flags?: string[];
  master?: string;
  address?: string;
  linkinfo?: { info_kind?: string; info_slave_data?: { hairpin?: boolean } };
}
