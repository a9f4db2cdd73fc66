/**
 * Attacks from a pod on its neighbours, with pods made by the real CNI path: the installed plugin
 * (native binary → the router's socket) run in the node namespaces of a two-node weft cluster
 * (IPAM dual-stack, fast path on between the nodes). Pods on n1: the victim V, the bystander B,
 * a raw attacker A (writes any frame it likes through a TAP bridged with its eth0) and a kernel
 * attacker K (uses its own stack with stolen addresses); on n2 the remote pod R.
 *
 * Each attack uses its own frames and asserts first that the victim keeps working (its neighbours
 * keep its MAC, its traffic reaches it, nothing is delivered in its name), then that the drop was
 * counted, by reason and for the attacker's pod. Then: the pods' own traffic (ARP, IPv4, IPv6 with
 * DAD, TCP) is never dropped, DEL removes a pod's rules, and a router restart keeps them.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installCni } from '../../../src/cni/install.js';
import { hostVethName } from '../../../src/cni/veth.js';
import { DROP_REASONS, linkLocalOf } from '../../../src/daemon/pod-guard-rules.js';
import type { PodGuardStatus } from '../../../src/daemon/pod-guard.js';
import { execIn, spawnIn } from '../../../lab/lab-process.js';
import { deleteNamespace } from '../../../lab/registry.js';
import { startCapture } from '../../../lab/traffic.js';
import type { StatusReport } from '../../../src/api/types.js';
import { WeftCluster } from '../../../lab/weft-cluster.js';
import { run } from '../../../src/platform/linux/run.js';
import { probeMacText } from '../../../src/router/fastpath/probe-frame.js';
import { until } from '../../integration/helpers.js';
import { arp, ether, icmpEcho4, neighborAdvert, RawPod, routerAdvert, vlanFrame } from './pods-frames.js';

const isRoot = process.getuid?.() === 0;
const BROADCAST = 'ff:ff:ff:ff:ff:ff';

interface Pod {
  name: string;
  node: number;
  ns: string;
  id: string;
  port: string;
  mac: string;
  v4: string;
  v6: string;
}

type Status = StatusReport & { pods: PodGuardStatus | undefined; id: string };

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!isRoot)('pods cannot spoof (bridge weft-pods), pods made by the installed CNI plugin', () => {
  let c: WeftCluster;
  const plugins: string[] = [];
  const namespaces: string[] = [];
  let V: Pod;
  let B: Pod;
  let A: Pod;
  let K: Pod;
  let R: Pod;
  let raw: RawPod;
  let gatewayMac: string;
  let gw4: string;
  let gwLl: string;

  const status = async (i: number) => (await c.apiStatus(i)) as Status;
  const inPod = (p: Pod, argv: string[], check = true) => execIn(p.ns, argv, { timeoutMs: 30_000, check });
  const onNode = (i: number, argv: string[]) => c.lab.exec(c.lab.nodes[i]!.ns, argv, { timeoutMs: 30_000 });

  function cni(i: number, command: string, id: string, netnsPath: string | undefined): Promise<{ code: number; out: string }> {
    const config = JSON.stringify({ cniVersion: '1.0.0', name: 'weft', type: 'weft', socket: c.routers[i]!.socket, journalDir: join(c.stateDir(i), 'pending-releases') });
    const env: Record<string, string> = { CNI_COMMAND: command, CNI_CONTAINERID: id, CNI_IFNAME: 'eth0', CNI_PATH: join(c.dir, `cni-n${i + 1}`, 'bin') };
    if (netnsPath !== undefined) env.CNI_NETNS = netnsPath;
    return new Promise((resolve) => {
      const child = execFile('nsenter', [`--net=${c.lab.nodes[i]!.nsPath}`, '--', plugins[i]!], { env, timeout: 60_000 }, (err, stdout) =>
        resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, out: stdout }),
      );
      child.stdin?.end(config);
    });
  }

  async function addPod(i: number, name: string): Promise<Pod> {
    const ns = `${c.lab.prefix}-${name}`;
    await run('ip', ['netns', 'add', ns]);
    namespaces.push(ns);
    const id = `pod-${name}`;
    const r = await cni(i, 'ADD', id, `/var/run/netns/${ns}`);
    expect(r.code, r.out).toBe(0);
    const res = JSON.parse(r.out) as { interfaces: { name: string; mac: string }[]; ips: { address: string }[] };
    const ips = res.ips.map((x) => x.address.split('/')[0]!);
    return { name, node: i, ns, id, port: res.interfaces[1]!.name, mac: res.interfaces[2]!.mac, v4: ips.find((a) => !a.includes(':'))!, v6: ips.find((a) => a.includes(':'))! };
  }

  async function pings(from: Pod, to: string, count = 2): Promise<boolean> {
    const r = await inPod(from, ['ping', '-n', '-c', String(count), '-i', '0.2', '-W', '2', to], false);
    return r.code === 0;
  }

  /** The bridge ports of n1 on which the bridge has learned `mac`. */
  async function fdbPorts(mac: string): Promise<string[]> {
    const entries = JSON.parse((await onNode(0, ['bridge', '-j', 'fdb', 'show', 'br', 'weft'])).stdout) as { mac: string; ifname: string }[];
    return entries.filter((e) => e.mac === mac).map((e) => e.ifname).sort();
  }

  async function neighbour(p: Pod, address: string): Promise<string | undefined> {
    const entries = JSON.parse((await inPod(p, ['ip', '-j', 'neigh', 'show', address, 'dev', 'eth0'])).stdout) as { lladdr?: string }[];
    return entries[0]?.lladdr;
  }

  /** Captures what the bridge sends to pod `p` (on its host end, in its node's namespace). */
  function toPod(p: Pod, filter: string) {
    return startCapture(c.lab, c.lab.nodes[p.node]!.ns, p.port, filter, { direction: 'out' });
  }

  /** The elements of a set (or map) of n1's table, each as its parts joined by spaces. */
  async function setElements(set: string): Promise<string[]> {
    const kind = set === 'pod_drops' ? 'map' : 'set';
    const r = await execIn(c.lab.nodes[0]!.ns, ['nft', '-j', 'list', kind, 'bridge', 'weft-pods', set], { check: false });
    if (r.code !== 0) return []; // no table: a router without the guard
    const j = JSON.parse(r.stdout) as { nftables: Record<string, { elem?: unknown[] }>[] };
    const elems = j.nftables.find((x) => x[kind] !== undefined)?.[kind]?.elem ?? [];
    return elems.map((e) => (typeof e === 'string' ? e : Array.isArray(e) ? e.join(' ') : ((e as { concat: string[] }).concat ?? []).join(' '))).sort();
  }

  /** The table's drops by reason on router i (zeros when the router has none: the test then fails on the victim first). */
  async function drops(i: number): Promise<PodGuardStatus['drops']> {
    const d: Partial<PodGuardStatus['drops']> = (await status(i)).pods?.drops ?? {};
    return Object.fromEntries(DROP_REASONS.map((r) => [r, d[r] ?? 0])) as PodGuardStatus['drops'];
  }

  async function podDrops(i: number, p: Pod): Promise<number> {
    return (await status(i)).pods?.pods.find((x) => x.port === p.port)?.dropped ?? -1;
  }

  beforeAll(async () => {
    c = await WeftCluster.start({
      nodes: 2,
      podsPerNode: 0,
      extraArgs: ['--ipam-range', '10.46.0.0/16', '--ipam-range6', 'fd00:46::/64', '--ipam-init-peers', '2', '--trusted-subnets', '198.18.0.0/24'],
    });
    await c.waitEstablished();
    for (const i of [0, 1]) {
      await until(`n${i + 1} ready for pods`, async () => ((await c.api<{ ready: boolean }>(i, 'GET', '/v1/cni/network')).ready ? true : undefined));
      const bin = join(c.dir, `cni-n${i + 1}`, 'bin');
      const r = installCni({ binDir: bin, confDir: join(c.dir, `cni-n${i + 1}`, 'conf'), socket: c.routers[i]!.socket, journalDir: join(c.stateDir(i), 'pending-releases'), portmap: false });
      expect(r.native).toBe(true);
      plugins.push(r.plugin);
    }
    V = await addPod(0, 'victim');
    B = await addPod(0, 'bystander');
    A = await addPod(0, 'rawattacker');
    K = await addPod(0, 'attacker');
    R = await addPod(1, 'remote');
    gatewayMac = (JSON.parse((await onNode(0, ['ip', '-j', 'link', 'show', 'weft'])).stdout) as { address: string }[])[0]!.address;
    gw4 = (await c.api<{ gateways: { address: string; family: number }[] }>(0, 'GET', '/v1/cni/network')).gateways.find((g) => g.family === 4)!.address;
    const lls = JSON.parse((await onNode(0, ['ip', '-j', '-6', 'addr', 'show', 'dev', 'weft', 'scope', 'link'])).stdout) as { addr_info: { local?: string }[] }[];
    gwLl = lls.flatMap((l) => l.addr_info).find((a) => a.local?.startsWith('fe80:'))!.local!;
    raw = await RawPod.open(A.ns);
    // the victim is known to its neighbours and the node before the attacks
    expect(await pings(B, V.v4)).toBe(true);
    expect(await pings(V, R.v4)).toBe(true);
    expect(await pings(B, V.v6)).toBe(true);
  }, 180_000);

  afterAll(async () => {
    raw?.close();
    for (const ns of namespaces) await deleteNamespace(ns).catch(() => undefined);
    await c?.destroy();
  });

  it('every pod made by ADD is guarded: its port, MAC and addresses are in the table', async () => {
    const st = await status(0);
    for (const p of [V, B, A, K]) {
      expect(st.pods?.pods.find((x) => x.port === p.port), p.name).toMatchObject({ containerId: p.id, ifName: 'eth0', mac: p.mac, addresses: [p.v4, p.v6] });
    }
    expect(st.pods?.unknownPorts).toEqual([]);
    expect((await status(1)).pods?.pods.map((x) => x.port)).toEqual([R.port]);
  });

  it("the pods' own traffic passes untouched: IPv4, IPv6, link-local, DAD, TCP, across nodes", async () => {
    const drops = async () => [await podDrops(0, V), await podDrops(0, B), await podDrops(1, R)];
    const before = await drops();
    expect(await pings(V, B.v4), 'V → B IPv4').toBe(true);
    expect(await pings(V, B.v6), 'V → B IPv6').toBe(true);
    expect(await pings(V, R.v4), 'V → R IPv4').toBe(true);
    expect(await pings(R, V.v6), 'R → V IPv6').toBe(true);
    // IPv6 link-local to the gateway, and duplicate address detection of the pod's own link-local
    expect(await pings(B, `${gwLl}%eth0`), `B → ${gwLl}`).toBe(true);
    const ll = linkLocalOf(B.mac);
    await inPod(B, ['ip', '-6', 'addr', 'del', `${ll}/64`, 'dev', 'eth0']);
    await inPod(B, ['ip', '-6', 'addr', 'add', `${ll}/64`, 'dev', 'eth0']);
    await until('the link-local address passes DAD', async () => {
      const out = (await inPod(B, ['ip', '-6', 'addr', 'show', 'dev', 'eth0', 'scope', 'link'])).stdout;
      return out.includes(ll) && !/tentative|dadfailed/.test(out) ? true : undefined;
    });
    expect(await pings(B, `${gwLl}%eth0`)).toBe(true);
    // TCP across nodes: 2 MB, hashed at both ends
    const receiver = spawnIn(R.ns, [process.execPath, '-e', TCP_RECEIVER, R.v4, '7780'], {}, () => undefined);
    try {
      await until('the TCP receiver listens', async () => (receiver.stderrText().includes('listening') ? true : undefined));
      const sent = (await inPod(V, [process.execPath, '-e', TCP_SENDER, R.v4, '7780', '2000000'])).stdout.trim();
      await receiver.exited;
      expect(receiver.stdoutText().trim()).toBe(sent);
    } finally {
      await receiver.stop(2000);
    }
    expect(await drops()).toEqual(before);
  });

  it("MAC spoofing: frames with the victim's source MAC do not move it in the bridge", async () => {
    const before = await drops(0);
    expect(await fdbPorts(V.mac)).toEqual([V.port]);
    const frames = [ether(BROADCAST, V.mac, 0x0806, arp(1, V.mac, V.v4, '00:00:00:00:00:00', B.v4)), ether(B.mac, V.mac, 0x0800, icmpEcho4(V.v4, B.v4, 1, Buffer.from('spoof')))];
    const sent = raw.send(frames, 50);
    expect(sent).toBe(100);
    expect(await fdbPorts(V.mac)).toEqual([V.port]);
    expect(await pings(B, V.v4)).toBe(true);
    expect((await drops(0)).mac - before.mac).toBeGreaterThanOrEqual(100);
    expect(await podDrops(0, A)).toBeGreaterThanOrEqual(100);
  });

  it("ARP spoofing: replies claiming the victim's IPv4 address leave its neighbours' entries alone", async () => {
    expect(await pings(B, V.v4)).toBe(true);
    expect(await pings(V, gw4)).toBe(true);
    await delay(1200); // past the neighbour lock time, when an ARP reply may replace an entry
    const before = (await drops(0)).arp;
    for (let round = 0; round < 5; round++) {
      raw.send([
        ether(B.mac, A.mac, 0x0806, arp(2, A.mac, V.v4, B.mac, B.v4)),
        ether(gatewayMac, A.mac, 0x0806, arp(2, A.mac, V.v4, gatewayMac, B.v4)),
        ether(BROADCAST, A.mac, 0x0806, arp(2, A.mac, V.v4, BROADCAST, V.v4)),
        ether(BROADCAST, A.mac, 0x0806, arp(1, A.mac, V.v4, '00:00:00:00:00:00', B.v4)),
      ]);
      await delay(300);
    }
    expect(await neighbour(B, V.v4)).toBe(V.mac);
    const atGateway = JSON.parse((await onNode(0, ['ip', '-j', 'neigh', 'show', V.v4, 'dev', 'weft'])).stdout) as { lladdr?: string }[];
    for (const e of atGateway) expect(e.lladdr).toBe(V.mac);
    expect(await pings(B, V.v4)).toBe(true);
    expect((await drops(0)).arp - before).toBeGreaterThanOrEqual(20);
  });

  it("IPv4 source spoofing: a pod that takes the victim's address cannot send with it", async () => {
    await inPod(K, ['ip', 'addr', 'add', `${V.v4}/32`, 'dev', 'eth0']);
    // a permanent neighbour: what leaves is IPv4 with the stolen source (its ARP would be dropped first)
    await inPod(K, ['ip', 'neigh', 'replace', B.v4, 'lladdr', B.mac, 'dev', 'eth0', 'nud', 'permanent']);
    const before = (await drops(0)).ipv4;
    const cap = await toPod(B, `icmp and src host ${V.v4} and ether src ${K.mac}`);
    await inPod(K, ['ping', '-n', '-c', '3', '-i', '0.2', '-W', '1', '-I', V.v4, B.v4], false);
    expect(await cap.stop()).toBe(0);
    expect(await pings(B, V.v4)).toBe(true);
    expect(await neighbour(B, V.v4)).toBe(V.mac);
    expect((await drops(0)).ipv4 - before).toBeGreaterThanOrEqual(3);
    await inPod(K, ['ip', 'addr', 'del', `${V.v4}/32`, 'dev', 'eth0']);
  });

  it("IPv6 source spoofing: a pod that takes the victim's IPv6 address cannot send with it", async () => {
    await inPod(K, ['ip', '-6', 'addr', 'add', `${V.v6}/128`, 'dev', 'eth0', 'nodad']);
    await inPod(K, ['ip', '-6', 'neigh', 'replace', B.v6, 'lladdr', B.mac, 'dev', 'eth0', 'nud', 'permanent']);
    const before = (await drops(0)).ipv6;
    const cap = await toPod(B, `icmp6 and src host ${V.v6} and ether src ${K.mac}`);
    await inPod(K, ['ping', '-6', '-n', '-c', '3', '-i', '0.2', '-W', '1', '-I', V.v6, B.v6], false);
    expect(await cap.stop()).toBe(0);
    expect(await pings(B, V.v6)).toBe(true);
    expect((await drops(0)).ipv6 - before).toBeGreaterThanOrEqual(3);
    await inPod(K, ['ip', '-6', 'addr', 'del', `${V.v6}/128`, 'dev', 'eth0']);
  });

  it("neighbour advertisements for the victim's IPv6 address leave its neighbours' entries alone", async () => {
    expect(await pings(B, V.v6)).toBe(true);
    expect(await neighbour(B, V.v6)).toBe(V.mac);
    const before = (await drops(0)).nd;
    const aLl = linkLocalOf(A.mac); // the attacker's own source address: only the claim is false
    for (let round = 0; round < 5; round++) {
      raw.send([
        ether(B.mac, A.mac, 0x86dd, neighborAdvert(aLl, B.v6, V.v6, A.mac, true)),
        ether('33:33:00:00:00:01', A.mac, 0x86dd, neighborAdvert(aLl, 'ff02::1', V.v6, A.mac, false)),
      ]);
      await delay(300);
    }
    expect(await neighbour(B, V.v6)).toBe(V.mac);
    expect(await pings(B, V.v6)).toBe(true);
    expect((await drops(0)).nd - before).toBeGreaterThanOrEqual(10);
  });

  it('router advertisements from a pod do not give its neighbours a router or a prefix', async () => {
    const before = (await drops(0)).router;
    const aLl = linkLocalOf(A.mac);
    for (let round = 0; round < 3; round++) {
      raw.send([ether('33:33:00:00:00:01', A.mac, 0x86dd, routerAdvert(aLl, A.mac, 'fd00:bad::', 1800))]);
      await delay(300);
    }
    const routes = (await inPod(B, ['ip', '-6', 'route', 'show'])).stdout;
    expect(routes).not.toMatch(/proto ra/);
    expect(routes).not.toContain(aLl);
    expect((await inPod(B, ['ip', '-6', 'addr', 'show', 'dev', 'eth0'])).stdout).not.toContain('fd00:bad');
    expect((await drops(0)).router - before).toBeGreaterThanOrEqual(3);
  });

  it("VXLAN: a pod's datagrams to a node's VXLAN port (this node's or another's) deliver nothing", async () => {
    const vni = 0x7765;
    const marker = Buffer.from('weft-vxlan-injection');
    const inner = (dstMac: string, dst: string) => {
      const h = Buffer.alloc(8);
      h[0] = 0x08;
      h.writeUInt32BE(vni << 8, 4);
      return Buffer.concat([h, ether(dstMac, '02:de:ad:00:00:01', 0x0800, icmpEcho4(V.v4, dst, 7, marker))]);
    };
    const capR = await toPod(R, `icmp and src host ${V.v4} and ether src 02:de:ad:00:00:01`);
    const capB = await toPod(B, `icmp and src host ${V.v4} and ether src 02:de:ad:00:00:01`);
    const before = (await drops(0)).vxlan;
    const send = (host: string, payload: Buffer) =>
      inPod(K, [process.execPath, '-e', SEND_UDP, host, '6785', payload.toString('hex'), '5']);
    await send(c.lab.nodes[1]!.address, inner(R.mac, R.v4)); // another node's underlay address
    await send(c.lab.nodes[0]!.address, inner(B.mac, B.v4)); // this node's underlay address
    await send(gw4, inner(B.mac, B.v4)); // this node's gateway address
    expect(await capR.stop()).toBe(0);
    expect(await capB.stop()).toBe(0);
    expect((await drops(0)).vxlan - before).toBeGreaterThanOrEqual(15);
    // ordinary UDP between pods still flows
    expect((await inPod(K, [process.execPath, '-e', SEND_UDP, B.v4, '6790', '00', '1'])).code).toBe(0);
  });

  it('frames to the fast-path probe MACs and with other ethertypes (VLAN tags, the probe type) are dropped', async () => {
    const n1 = (await status(0)).id;
    const n2 = (await status(1)).id;
    const probe = Buffer.alloc(46, 0);
    probe.writeUInt32BE(0x77667031, 0);
    const capProbe = await startCapture(c.lab, c.lab.nodes[0]!.ns, 'weft-probe', `ether src ${A.mac}`, { direction: 'inout' });
    const capVlan = await toPod(B, `ether src ${A.mac}`);
    const before = await drops(0);
    raw.send(
      [
        ether(probeMacText(parseInt(n1, 16)), A.mac, 0x88b5, probe),
        ether(probeMacText(parseInt(n2, 16)), A.mac, 0x88b5, probe),
        ether(probeMacText(parseInt(n1, 16)), A.mac, 0x0800, icmpEcho4(A.v4, B.v4, 9, Buffer.alloc(8))),
        vlanFrame(BROADCAST, A.mac, 5, 0x0800, icmpEcho4(A.v4, B.v4, 9, Buffer.alloc(8))),
        ether(BROADCAST, A.mac, 0x88b5, probe),
        ether(BROADCAST, A.mac, 0x88cc, Buffer.alloc(46)),
      ],
      5,
    );
    expect(await capProbe.stop()).toBe(0);
    expect(await capVlan.stop()).toBe(0);
    const after = await drops(0);
    expect(after.probe - before.probe).toBeGreaterThanOrEqual(15);
    expect(after.ethertype - before.ethertype).toBeGreaterThanOrEqual(15);
  });

  it('a pod port no attachment was made for (a veth plugged by hand under the CNI naming) passes nothing', async () => {
    const ns = `${c.lab.prefix}-stray`;
    await run('ip', ['netns', 'add', ns]);
    namespaces.push(ns);
    const port = hostVethName('stray', 'eth0');
    await onNode(0, ['ip', 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await onNode(0, ['ip', 'link', 'set', port, 'master', 'weft', 'up']);
    await execIn(ns, ['ip', 'addr', 'add', '10.46.250.250/16', 'dev', 'eth0']);
    await execIn(ns, ['ip', 'link', 'set', 'eth0', 'up']);
    const r = await execIn(ns, ['ping', '-n', '-c', '3', '-i', '0.2', '-W', '1', B.v4], { check: false, timeoutMs: 20_000 });
    expect(r.code).not.toBe(0);
    await until('the stray port reported', async () => ((await status(0)).pods?.unknownPorts.includes(port) ? true : undefined), 30_000);
    expect((await drops(0)).unknown).toBeGreaterThan(0);
    await onNode(0, ['ip', 'link', 'del', port]);
  });

  it('DEL removes the pod\'s rules and counter; the pod\'s address is no longer allowed on any port', async () => {
    const D = await addPod(0, 'deleted');
    expect(await setElements('pod_mac')).toContain(`${D.port} ${D.mac}`);
    expect(await setElements('pod_v4')).toContain(`${D.port} ${D.v4}`);
    expect((await cni(0, 'DEL', D.id, `/var/run/netns/${D.ns}`)).code).toBe(0);
    for (const set of ['pods', 'pod_mac', 'pod_v4', 'pod_v6', 'pod_drops']) {
      expect((await setElements(set)).filter((e) => e.includes(D.port) || e.endsWith(` ${D.v4}`) || e.endsWith(` ${D.v6}`)), set).toEqual([]);
    }
    expect((await onNode(0, ['nft', 'list', 'counters', 'table', 'bridge', 'weft-pods'])).stdout).not.toContain(D.port);
    expect((await status(0)).pods?.pods.some((p) => p.port === D.port)).toBe(false);
  });

  it('a router restart keeps the rules in the kernel: no gap while it is down, the same pods after', async () => {
    const before = await status(0);
    const setsBefore = await Promise.all(['pods', 'pod_mac', 'pod_v4', 'pod_v6'].map((s) => setElements(s)));
    await c.stopRouter(0, 'SIGKILL');
    // while it is down: the victim's MAC still cannot be taken
    expect(raw.send([ether(BROADCAST, V.mac, 0x0806, arp(1, V.mac, V.v4, '00:00:00:00:00:00', B.v4))], 20)).toBe(20);
    expect(await fdbPorts(V.mac)).toEqual([V.port]);
    const counted = JSON.parse((await onNode(0, ['nft', '-j', 'list', 'counter', 'bridge', 'weft-pods', A.port])).stdout) as { nftables: { counter?: { packets: number } }[] };
    const aDropsDown = counted.nftables.find((x) => x.counter !== undefined)!.counter!.packets;
    expect(aDropsDown - before.pods!.pods.find((p) => p.port === A.port)!.dropped).toBeGreaterThanOrEqual(20);
    await c.startRouter(0);
    const after = await status(0);
    expect(after.pods!.pods.map((p) => [p.port, p.containerId, p.mac])).toEqual(before.pods!.pods.map((p) => [p.port, p.containerId, p.mac]));
    expect(await Promise.all(['pods', 'pod_mac', 'pod_v4', 'pod_v6'].map((s) => setElements(s)))).toEqual(setsBefore);
    expect(after.pods!.pods.find((p) => p.port === A.port)!.dropped).toBeGreaterThanOrEqual(aDropsDown);
    // and after it: still guarded
    raw.send([ether(BROADCAST, V.mac, 0x0806, arp(1, V.mac, V.v4, '00:00:00:00:00:00', B.v4))], 10);
    expect(await fdbPorts(V.mac)).toEqual([V.port]);
    expect(await pings(B, V.v4)).toBe(true);
    expect(await pings(V, R.v6)).toBe(true);
  });
});

// UDP sender for a pod: HOST PORT HEX COUNT (the hex payload, COUNT times).
const SEND_UDP = `
const [host, port, hex, count] = [process.argv[1], Number(process.argv[2]), process.argv[3], Number(process.argv[4])];
const s = require('node:dgram').createSocket(host.includes(':') ? 'udp6' : 'udp4');
const buf = Buffer.from(hex, 'hex'); let i = 0;
const next = () => { if (i++ >= count) { s.close(); return; } s.send(buf, port, host, () => setTimeout(next, 20)); };
next();`;

// TCP receiver: ADDR PORT; prints the sha256 of one connection's bytes, then exits.
const TCP_RECEIVER = `
const h = require('node:crypto').createHash('sha256');
const srv = require('node:net').createServer((s) => { s.on('data', (d) => h.update(d)); s.on('end', () => { process.stdout.write(h.digest('hex') + '\\n'); srv.close(); }); });
srv.listen(Number(process.argv[2]), process.argv[1], () => process.stderr.write('listening\\n'));`;

// TCP sender: ADDR PORT BYTES of pseudo-random data; prints their sha256.
const TCP_SENDER = `
const [host, port, bytes] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
const data = require('node:crypto').randomBytes(bytes);
const s = require('node:net').connect(port, host, () => s.end(data));
s.on('close', () => process.stdout.write(require('node:crypto').createHash('sha256').update(data).digest('hex') + '\\n'));`;
