/**
 * Virtual clusters in network namespaces: an underlay namespace with a bridge, N node namespaces
 * attached to it (198.18.0.<index+1>/24 on eth0), and pod namespaces whose veths plug into a
 * bridge in their node. Nothing is configured in the host namespace. Every name starts with the
 * lab's prefix; `destroy` stops the processes the lab started (by PID) and deletes every namespace
 * it made, whatever happened before.
 *
 *   <p>-u: bridge ul ─ u1 ═ eth0 <p>-n1 (198.18.0.1): bridge weft ─ vp1 ═ eth0 <p>-n1p1
 *                    ─ u2 ═ eth0 <p>-n2 (198.18.0.2): bridge weft ─ vp1 ═ eth0 <p>-n2p1
 *                    ─ h1 ═ eth0 <p>-h1 (198.18.0.101): a host on the underlay that is not a node
 */
import { spawnSync } from 'node:child_process';
import { parseCidr } from '../src/core/net.js';
import { run } from '../src/platform/linux/run.js';
import { LabError } from './errors.js';
import { claimPrefix, MAX_NODES, podInitProblems, validateInit, validMtu, type LabInit, type PodInit, type UnderlayFamily } from './lab-config.js';
import { blockAllRules, blockUdpRules, dropLargeUdpRules, faultScript, fromPeer, udpLossRules } from './faults.js';
import { execIn, spawnIn, type ExecOptions, type ExecResult, type LabProcess, type SpawnOptions, type TrackedProcess } from './lab-process.js';
import { cleanupStale, deleteNamespace, LAB_NS_NAME, namespacePids, RANDOM_PREFIX_NS, releasePrefix } from './registry.js';

export interface LabNode {
  /** 0-based position in `lab.nodes`. */
  index: number;
  /** 'n1' for index 0. */
  name: string;
  ns: string;
  nsPath: string;
  underlayIf: string;
  /**
   * The node's underlay address: 198.18.0.<index+1> (/24 on `underlayIf`), or on an IPv6-only
   * underlay (`underlay: 'v6'`) its IPv6 address.
   */
  address: string;
  /** 2001:2::<index+1> (/64 on `underlayIf`) when the underlay has IPv6 ('v6', 'dual'). */
  address6?: string;
}

/** A namespace on the underlay that is not a node (`addUnderlayHost`): an outsider, a scanner, an attacker. */
export interface UnderlayHost {
  /** 'h1' for the first. */
  name: string;
  ns: string;
  nsPath: string;
  underlayIf: 'eth0';
  /** 198.18.0.<100+k> (/24 on eth0). */
  address: string;
}

export interface LabPod {
  name: string;
  ns: string;
  nsPath: string;
  node: LabNode;
  ifName: 'eth0';
  /** The veth end on the node's bridge, inside the node namespace. */
  hostVeth: string;
  mac: string;
  /** Addresses without prefix length; see prefix4/prefix6 (0 when absent). */
  ipv4?: string;
  ipv6?: string;
  prefix4: number;
  prefix6: number;
  mtu: number;
}

export type { LabInit, PodInit, UnderlayFamily } from './lab-config.js';
export type { ExecOptions, ExecResult, LabProcess, SpawnOptions } from './lab-process.js';

const UNDERLAY_BRIDGE = 'ul';

export class Lab {
  private readonly destroyHooks: (() => Promise<void>)[] = [];
  readonly prefix: string;
  readonly underlayNs: string;
  readonly underlayMtu: number;
  readonly underlay: UnderlayFamily;
  readonly bridgeName: string;
  readonly brNetfilter: boolean;
  /** nft table (family inet) holding the fault rules in each node namespace. */
  readonly faultTable: string;
  private readonly nodeList: LabNode[] = [];
  private readonly podList: LabPod[] = [];
  private readonly log: (line: string) => void;
  /** Every namespace made, in creation order. */
  private readonly namespaces = new Set<string>();
  private readonly processes = new Set<TrackedProcess>();
  private readonly podsMade = new Map<LabNode, number>();
  private hostsMade = 0;
  private readonly bridges = new Set<LabNode>();
  private readonly faultRules = new Map<LabNode, string[]>();
  private readonly exitHook = (): void => this.destroySync();
  private destroying: Promise<void> | undefined;

  private constructor(init: LabInit, prefix: string) {
    this.prefix = prefix;
    this.underlayNs = `${prefix}-u`;
    this.underlayMtu = init.underlayMtu ?? 1500;
    this.underlay = init.underlay ?? 'v4';
    this.bridgeName = init.bridgeName ?? 'weft';
    this.brNetfilter = init.brNetfilter ?? false;
    this.faultTable = `${prefix}_fault`;
    this.log = init.log ?? (() => undefined);
  }

  get nodes(): readonly LabNode[] {
    return this.nodeList;
  }

  get pods(): readonly LabPod[] {
    return this.podList;
  }

  static async create(init: LabInit): Promise<Lab> {
    const problems = validateInit(init);
    if (problems.length > 0) throw new LabError(`invalid lab settings: ${problems.join('; ')}`);
    const lab = new Lab(init, await claimPrefix(init.prefix));
    process.on('exit', lab.exitHook);
    try {
      await lab.build(init.nodes);
    } catch (err) {
      await lab.destroy();
      throw err;
    }
    return lab;
  }

  /** Deletes namespaces of dead labs whose names match `pattern` (default: random prefixes); returns their names. */
  static cleanupStale(pattern: RegExp = RANDOM_PREFIX_NS, opts: { log?: (line: string) => void } = {}): Promise<string[]> {
    return cleanupStale(pattern, opts.log ?? (() => undefined));
  }

  private async build(count: number): Promise<void> {
    await this.addNs(this.underlayNs);
    await this.sysctl(this.underlayNs, { 'net.bridge.bridge-nf-call-iptables': '0', 'net.bridge.bridge-nf-call-ip6tables': '0' }, true);
    await this.ip(this.underlayNs, ['link', 'add', UNDERLAY_BRIDGE, 'mtu', String(this.underlayMtu), 'type', 'bridge']);
    await this.ip(this.underlayNs, ['link', 'set', UNDERLAY_BRIDGE, 'up']);
    const mtu = String(this.underlayMtu);
    const nf = this.brNetfilter ? '1' : '0';
    for (let index = 0; index < count; index++) {
      const ns = `${this.prefix}-n${index + 1}`;
      const v4 = this.underlay !== 'v6';
      const address6 = this.underlay === 'v4' ? undefined : `2001:2::${index + 1}`;
      const node: LabNode = { index, name: `n${index + 1}`, ns, nsPath: `/var/run/netns/${ns}`, underlayIf: 'eth0', address: v4 ? `198.18.0.${index + 1}` : address6! };
      if (address6 !== undefined) node.address6 = address6;
      const port = `u${index + 1}`;
      await this.addNs(ns);
      await this.ip(ns, ['link', 'add', 'eth0', 'mtu', mtu, 'type', 'veth', 'peer', 'name', port, 'mtu', mtu, 'netns', this.underlayNs]);
      await this.ip(this.underlayNs, ['link', 'set', port, 'addrgenmode', 'none']);
      await this.ip(this.underlayNs, ['link', 'set', port, 'master', UNDERLAY_BRIDGE, 'up']);
      if (v4) await this.ip(ns, ['addr', 'add', `${node.address}/24`, 'dev', 'eth0']);
      if (address6 !== undefined) {
        await this.sysctl(ns, { 'net.ipv6.conf.all.accept_dad': '0', 'net.ipv6.conf.default.accept_dad': '0' });
        await this.ip(ns, ['-6', 'addr', 'add', `${address6}/64`, 'dev', 'eth0', 'nodad']);
      }
      await this.ip(ns, ['link', 'set', 'eth0', 'up']);
      await this.sysctl(ns, { 'net.ipv4.ip_forward': '1' });
      await this.sysctl(ns, { 'net.bridge.bridge-nf-call-iptables': nf, 'net.bridge.bridge-nf-call-ip6tables': nf }, !this.brNetfilter);
      this.nodeList.push(node);
    }
    this.log(`lab ${this.prefix}: ${count} nodes on ${this.underlayNs} (underlay ${this.underlay})`);
  }

  /**
   * Adds node `<prefix>-n<i>` (the next index, at most 20 nodes in all) whose eth0 the caller
   * wires: it is not on the underlay bridge (lab/nat-lab.ts puts it behind a NAT). `address` is
   * what `LabNode.address` reports (the node's own IPv4 address, e.g. on a LAN behind a NAT).
   * Faults, pods and processes work on it as on any node.
   */
  async addUnwiredNode(address: string): Promise<LabNode> {
    const index = this.nodeList.length;
    if (index >= MAX_NODES) throw new LabError(`lab ${this.prefix} already has ${MAX_NODES} nodes`);
    const ns = `${this.prefix}-n${index + 1}`;
    const node: LabNode = { index, name: `n${index + 1}`, ns, nsPath: `/var/run/netns/${ns}`, underlayIf: 'eth0', address };
    await this.addNs(ns);
    await this.sysctl(ns, { 'net.ipv4.ip_forward': '1' });
    const nf = this.brNetfilter ? '1' : '0';
    await this.sysctl(ns, { 'net.bridge.bridge-nf-call-iptables': nf, 'net.bridge.bridge-nf-call-ip6tables': nf }, !this.brNetfilter);
    this.nodeList.push(node);
    return node;
  }

  /** Runs `argv` inside one of this lab's namespaces; see ExecOptions. */
  exec(ns: string, argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    this.assertOwn(ns);
    return execIn(ns, argv, opts);
  }

  /** Starts a long-running process inside one of this lab's namespaces; `destroy` stops it if still running. */
  spawn(ns: string, argv: string[], opts: SpawnOptions = {}): LabProcess {
    this.assertOwn(ns);
    if (this.destroying !== undefined) throw new LabError(`lab ${this.prefix} is destroyed; cannot start ${argv[0] ?? ''} in ${ns}`);
    const p = spawnIn(ns, argv, opts, (done) => this.processes.delete(done));
    this.processes.add(p);
    this.log(`spawned pid ${p.pid} in ${ns}: ${argv.join(' ')}`);
    return p;
  }

  /**
   * An empty network namespace `<prefix>-<suffix>` of this lab (loopback up), for a pod that
   * something else wires (e.g. a real CNI ADD); removed by `destroy` like the others. The name
   * must be a lab name (LAB_NS_NAME, e.g. suffix `n1p7`), or destroy could not delete it.
   */
  async addBareNamespace(suffix: string): Promise<{ ns: string; nsPath: string }> {
    const ns = `${this.prefix}-${suffix}`;
    if (!LAB_NS_NAME.test(ns)) throw new LabError(`namespace name "${ns}" is not a lab name (${String(LAB_NS_NAME)}): destroy could not delete it`);
    await this.addNs(ns);
    return { ns, nsPath: `/var/run/netns/${ns}` };
  }

  /**
   * Adds a pod namespace on `node` (a LabNode or its index): the bridge is created on first use, a
   * veth pair joins it (host end `vp<j>` on the bridge, pod end `eth0`), addresses are added
   * without DAD so IPv6 works at once.
   */
  async addPod(nodeRef: LabNode | number, init: PodInit = {}): Promise<LabPod> {
    const node = this.resolveNode(nodeRef);
    const pod = this.newPod(node, init);
    const mtu = String(pod.mtu);
    try {
      await this.ensureBridge(node);
      await this.addNs(pod.ns);
      await this.sysctl(pod.ns, { 'net.ipv6.conf.all.accept_dad': '0', 'net.ipv6.conf.default.accept_dad': '0' });
      const peer = ['peer', 'name', 'eth0', 'mtu', mtu, ...(init.mac === undefined ? [] : ['address', init.mac]), 'netns', pod.ns];
      await this.ip(node.ns, ['link', 'add', pod.hostVeth, 'mtu', mtu, 'type', 'veth', ...peer]);
      await this.ip(node.ns, ['link', 'set', pod.hostVeth, 'addrgenmode', 'none']);
      await this.ip(node.ns, ['link', 'set', pod.hostVeth, 'master', this.bridgeName, 'up']);
      await this.sysctl(pod.ns, { 'net.ipv6.conf.eth0.accept_dad': '0' });
      if (init.ipv4 !== undefined) await this.ip(pod.ns, ['addr', 'add', init.ipv4, 'dev', 'eth0']);
      if (init.ipv6 !== undefined) await this.ip(pod.ns, ['-6', 'addr', 'add', init.ipv6, 'dev', 'eth0', 'nodad']);
      await this.ip(pod.ns, ['link', 'set', 'eth0', 'up']);
      const link = JSON.parse(await run('ip', ['-n', pod.ns, '-j', 'link', 'show', 'eth0'])) as { address?: string }[];
      pod.mac = link[0]?.address ?? '';
    } catch (err) {
      await run('ip', ['-n', node.ns, 'link', 'del', pod.hostVeth]).catch(() => undefined);
      await this.delNs(pod.ns).catch(() => undefined);
      throw err;
    }
    this.podList.push(pod);
    this.log(`pod ${pod.name} (${pod.ns}) on ${node.name}: ${[init.ipv4, init.ipv6].filter(Boolean).join(' ')} mtu ${pod.mtu}`);
    return pod;
  }

  /**
   * Adds a host on the underlay bridge that is not a node: namespace `<prefix>-h<k>`, eth0 with
   * 198.18.0.<100+k>/24 (k from 1, at most 50). It runs no router; tests use it as an outsider.
   */
  async addUnderlayHost(): Promise<UnderlayHost> {
    if (this.hostsMade >= 50) throw new LabError(`lab ${this.prefix} already has 50 underlay hosts`);
    const k = ++this.hostsMade;
    const host: UnderlayHost = { name: `h${k}`, ns: `${this.prefix}-h${k}`, nsPath: `/var/run/netns/${this.prefix}-h${k}`, underlayIf: 'eth0', address: `198.18.0.${100 + k}` };
    const mtu = String(this.underlayMtu);
    const port = `h${k}`;
    await this.addNs(host.ns);
    await this.ip(host.ns, ['link', 'add', 'eth0', 'mtu', mtu, 'type', 'veth', 'peer', 'name', port, 'mtu', mtu, 'netns', this.underlayNs]);
    await this.ip(this.underlayNs, ['link', 'set', port, 'addrgenmode', 'none']);
    await this.ip(this.underlayNs, ['link', 'set', port, 'master', UNDERLAY_BRIDGE, 'up']);
    await this.ip(host.ns, ['addr', 'add', `${host.address}/24`, 'dev', 'eth0']);
    await this.ip(host.ns, ['link', 'set', 'eth0', 'up']);
    this.log(`underlay host ${host.name} (${host.ns}) at ${host.address}`);
    return host;
  }

  async removePod(pod: LabPod): Promise<void> {
    const i = this.podList.indexOf(pod);
    if (i < 0) throw new LabError(`pod ${pod.name} (${pod.ns}) is not in lab ${this.prefix}`);
    await Promise.all([...this.processes].filter((p) => p.ns === pod.ns).map((p) => p.stop(3000)));
    await run('ip', ['-n', pod.node.ns, 'link', 'del', pod.hostVeth]).catch(() => undefined);
    await this.delNs(pod.ns);
    this.podList.splice(i, 1);
  }

  /** Sets the MTU of both veth ends of `pod`. */
  async setPodMtu(pod: LabPod, mtu: number): Promise<void> {
    if (!validMtu(mtu)) throw new LabError(`pod MTU must be an integer in 68-65535, not ${mtu}`);
    await this.ip(pod.node.ns, ['link', 'set', pod.hostVeth, 'mtu', String(mtu)]);
    await this.ip(pod.ns, ['link', 'set', 'eth0', 'mtu', String(mtu)]);
    pod.mtu = mtu;
  }

  /** Drops UDP between the two nodes' underlay addresses (optionally only to or from `port`), in both directions. */
  async blockUdpBetween(a: LabNode, b: LabNode, port?: number): Promise<void> {
    await this.addFaultPair(a, b, (peer) => blockUdpRules(peer, port));
  }

  /** Drops all traffic (TCP, UDP, ICMP) between the two nodes' underlay addresses, both directions. */
  async blockAllBetween(a: LabNode, b: LabNode): Promise<void> {
    await this.addFaultPair(a, b, (peer) => blockAllRules(peer));
  }

  /** Removes the faults between one pair, keeping the others. */
  async clearFaultsBetween(a: LabNode, b: LabNode): Promise<void> {
    const na = this.resolveNode(a);
    const nb = this.resolveNode(b);
    for (const [n, other] of [[na, nb], [nb, na]] as const) {
      const matches = underlayAddresses(other).map((peer) => `${fromPeer(peer)} `);
      this.faultRules.set(n, (this.faultRules.get(n) ?? []).filter((r) => !matches.some((m) => r.includes(m))));
      await this.applyFaults(n);
    }
  }

  /** Drops UDP packets (each fragment counts) longer than `overBytes` of IP between the pair: an MTU black hole (IPv4 underlays only). */
  async dropLargeUdp(a: LabNode, b: LabNode, overBytes: number, port?: number): Promise<void> {
    await this.addFaultPair(a, b, (peer) => dropLargeUdpRules(peer, overBytes, port));
  }

  /** Drops a random `percent` of the UDP packets between the pair, both directions. */
  async udpLoss(a: LabNode, b: LabNode, percent: number): Promise<void> {
    await this.addFaultPair(a, b, (peer) => udpLossRules(peer, percent));
  }

  /** Removes every fault rule from `node`, or from every node. */
  async clearFaults(node?: LabNode): Promise<void> {
    for (const n of node === undefined ? this.nodeList : [this.resolveNode(node)]) {
      this.faultRules.delete(n);
      await this.applyFaults(n);
    }
  }

  /** Stops tracked processes, deletes every namespace this lab made; idempotent, never throws. */
  destroy(): Promise<void> {
    this.destroying ??= this.teardown();
    return this.destroying;
  }

  /** Runs `hook` at the start of teardown (last registered first), before processes stop and namespaces go; errors are logged. */
  onDestroy(hook: () => Promise<void>): void {
    this.destroyHooks.push(hook);
  }

  private async teardown(): Promise<void> {
    for (const hook of [...this.destroyHooks].reverse()) await hook().catch((err: unknown) => this.log(`destroy hook: ${String(err)}`));
    this.destroyHooks.length = 0;
    await Promise.all(
      [...this.processes].map((p) => p.stop(3000).catch((err: unknown) => this.log(`stopping pid ${p.pid}: ${String(err)}`))),
    );
    for (const ns of [...this.namespaces].reverse()) {
      try {
        const pids = await namespacePids(ns);
        if (pids.length > 0) this.log(`processes not started by the lab still run in ${ns} (pids ${pids.join(' ')}); deleting the name anyway`);
        await this.delNs(ns);
      } catch (err) {
        this.log(`deleting namespace ${ns}: ${String(err)}`);
      }
    }
    try {
      releasePrefix(this.prefix);
    } catch (err) {
      this.log(`releasing prefix ${this.prefix}: ${String(err)}`);
    }
    process.removeListener('exit', this.exitHook);
    this.log(`lab ${this.prefix} destroyed`);
  }

  /** Last resort when the process exits without `destroy`: synchronous, best effort. */
  private destroySync(): void {
    for (const p of this.processes) p.kill('SIGKILL');
    for (const ns of [...this.namespaces].reverse()) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    releasePrefix(this.prefix);
  }

  private async addFaultPair(a: LabNode, b: LabNode, rules: (peer: string) => string[]): Promise<void> {
    const na = this.resolveNode(a);
    const nb = this.resolveNode(b);
    if (na === nb) throw new LabError(`a fault needs two different nodes, got ${na.name} twice`);
    const ra = underlayAddresses(nb).flatMap(rules);
    const rb = underlayAddresses(na).flatMap(rules);
    this.faultRules.set(na, [...(this.faultRules.get(na) ?? []), ...ra]);
    this.faultRules.set(nb, [...(this.faultRules.get(nb) ?? []), ...rb]);
    await this.applyFaults(na);
    await this.applyFaults(nb);
  }

  private async applyFaults(node: LabNode): Promise<void> {
    const script = faultScript(this.faultTable, this.faultRules.get(node) ?? []);
    await this.exec(node.ns, ['nft', '-f', '-'], { input: script, timeoutMs: 10_000 });
  }

  private newPod(node: LabNode, init: PodInit): LabPod {
    const problems = podInitProblems(init);
    if (problems.length > 0) throw new LabError(`invalid pod on ${node.name} in lab ${this.prefix}: ${problems.join('; ')}`);
    const j = (this.podsMade.get(node) ?? 0) + 1;
    this.podsMade.set(node, j);
    const ns = `${node.ns}p${j}`;
    const pod: LabPod = {
      name: init.name ?? `${node.name}p${j}`,
      ns,
      nsPath: `/var/run/netns/${ns}`,
      node,
      ifName: 'eth0',
      hostVeth: `vp${j}`,
      mac: init.mac?.toLowerCase() ?? '',
      prefix4: 0,
      prefix6: 0,
      mtu: init.mtu ?? 1500,
    };
    const v4 = init.ipv4 === undefined ? undefined : parseCidr(init.ipv4);
    const v6 = init.ipv6 === undefined ? undefined : parseCidr(init.ipv6);
    if (v4 !== undefined && typeof v4 !== 'string') [pod.ipv4, pod.prefix4] = [v4.address, v4.prefix];
    if (v6 !== undefined && typeof v6 !== 'string') [pod.ipv6, pod.prefix6] = [v6.address, v6.prefix];
    return pod;
  }

  private resolveNode(ref: LabNode | number): LabNode {
    const node = typeof ref === 'number' ? this.nodeList[ref] : this.nodeList.find((n) => n === ref || n.ns === ref.ns);
    if (node === undefined) {
      const what = typeof ref === 'number' ? `index ${ref}` : `${ref.name} (${ref.ns})`;
      throw new LabError(`lab ${this.prefix} has no node ${what}; it has ${this.nodeList.length} (indexes from 0)`);
    }
    return node;
  }

  private async ensureBridge(node: LabNode): Promise<void> {
    if (this.bridges.has(node)) return;
    const exists = await run('ip', ['-n', node.ns, 'link', 'show', this.bridgeName]).then(
      () => true,
      () => false,
    );
    if (!exists) await this.ip(node.ns, ['link', 'add', this.bridgeName, 'type', 'bridge']);
    await this.ip(node.ns, ['link', 'set', this.bridgeName, 'up']);
    this.bridges.add(node);
  }

  private assertOwn(ns: string): void {
    if (!this.namespaces.has(ns)) throw new LabError(`namespace "${ns}" does not belong to lab ${this.prefix}`);
  }

  private async addNs(ns: string): Promise<void> {
    await run('ip', ['netns', 'add', ns]);
    this.namespaces.add(ns);
    await this.ip(ns, ['link', 'set', 'lo', 'up']);
  }

  private async delNs(ns: string): Promise<void> {
    await deleteNamespace(ns);
    this.namespaces.delete(ns);
  }

  private async ip(ns: string, args: string[]): Promise<void> {
    await run('ip', ['-n', ns, ...args]);
  }

  /** Sets sysctls inside `ns`; with `optional`, a missing key is logged rather than thrown. */
  private async sysctl(ns: string, values: Record<string, string>, optional = false): Promise<void> {
    const args = Object.entries(values).map(([k, v]) => `${k}=${v}`);
    const r = await execIn(ns, ['sysctl', '-q', '-w', ...args], { check: !optional, timeoutMs: 10_000 });
    if (r.code !== 0) this.log(`sysctl ${args.join(' ')} in ${ns} failed (optional): ${r.stderr.trim()}`);
  }
}

/** Every underlay address of a node (IPv4 and IPv6 on a dual-stack underlay). */
function underlayAddresses(node: LabNode): string[] {
  return node.address6 === undefined || node.address6 === node.address ? [node.address] : [node.address, node.address6];
}
