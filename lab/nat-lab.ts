/**
 * A lab with NATs (issue 18): the Lab's underlay namespace is the "internet" (bridge `ul`,
 * 198.18.0.0/24 and 2001:2::/64); public nodes sit on it directly; each NAT is a namespace
 * `<prefix>-nat<k>` with one leg on the internet (198.18.0.(200+k), 2001:2::(200+k)) and a LAN
 * bridge behind it (198.19.k.1/24, 2001:2:k::1/64) where its nodes sit (198.19.k.(j+1),
 * 2001:2:k::(j+1), default routes via the NAT). Nothing routes to 198.19.0.0/16 from the
 * internet: a private address of another site is unreachable, as in life.
 *
 *   <p>-u: bridge ul ─ u1 ═ eth0 <p>-n1 (198.18.0.1, 2001:2::1)                      public
 *                    ─ x1 ═ eth0 <p>-nat1 (198.18.0.201): bridge lan ─ ln2 ═ eth0 <p>-n2 (198.19.1.2)
 *
 * NAT kinds, in nftables inside the NAT namespace (IPv4; IPv6 is routed without NAT behind every
 * kind, through a stateful firewall that drops unsolicited inbound):
 * - `eim`: masquerade. Linux keeps the source port when it is free: endpoint-independent mapping;
 *   conntrack lets in only what answers an existing mapping (address-and-port-dependent filtering).
 * - `symmetric`: masquerade fully-random: a new port for every destination.
 * - `cone`: eim plus a port forward of `conePort` (UDP and TCP) from the public address to the
 *   NAT's first node: endpoint-independent filtering for the router's port.
 * - `firewall6`: an IPv6-only site: IPv4 is not forwarded at all; IPv6 as above.
 *
 * Hairpinning (a node reaching another node of its own NAT through the NAT's public mapping) is
 * not supported, as on many home routers: two nodes behind one NAT are expected to find each
 * other through their local (LAN) candidates.
 *
 * Unsolicited inbound that matches no mapping is dropped silently (no ICMP), and before conntrack
 * confirms it, so it never occupies a port a later mapping would want.
 */
import { isIP } from 'node:net';
import { LabError } from './errors.js';
import { FAULT_PRIORITY } from './faults.js';
import { Lab, type LabNode } from './lab.js';

export type NatKind = 'eim' | 'symmetric' | 'cone' | 'firewall6';
export const NAT_KINDS: readonly NatKind[] = ['eim', 'symmetric', 'cone', 'firewall6'];

export interface NatInit {
  kind: NatKind;
  /** Nodes behind this NAT (1 to 8). */
  nodes: number;
}

export interface NatLabInit {
  prefix?: string;
  /** Nodes on the internet bridge (1 to 8): n1..nP at 198.18.0.i and 2001:2::i. */
  publicNodes: number;
  /** The NATs, nat1.. in order; their nodes follow the public ones (nP+1, ...). */
  nats: NatInit[];
  /** The port `cone` NATs forward to their first node (UDP and TCP); default 6784 (weft's). */
  conePort?: number;
  log?: (line: string) => void;
}

export interface LabNat {
  /** 1-based. */
  k: number;
  name: string;
  ns: string;
  kind: NatKind;
  /** The public leg: 198.18.0.(200+k) and 2001:2::(200+k). */
  public4: string;
  public6: string;
  /** The LAN side: 198.19.k.1 and 2001:2:k::1. */
  lan4: string;
  lan6: string;
  nodes: LabNode[];
}

/** Where a node is: on the internet, or behind a NAT. */
export interface NatLabNode {
  node: LabNode;
  /** undefined: a public node. */
  nat: LabNat | undefined;
  /** The node's own addresses on its eth0. */
  address4: string;
  address6: string;
}

const NAT_TABLE = 'natlab';
const MAX_PER_SIDE = 8;

export function natLabProblems(init: NatLabInit): string[] {
  const problems: string[] = [];
  if (!Number.isInteger(init.publicNodes) || init.publicNodes < 1 || init.publicNodes > MAX_PER_SIDE) {
    problems.push(`publicNodes must be an integer in 1-${MAX_PER_SIDE}, not ${init.publicNodes}`);
  }
  if (init.nats.length > 20) problems.push(`at most 20 NATs, not ${init.nats.length}`);
  init.nats.forEach((n, i) => {
    if (!NAT_KINDS.includes(n.kind)) problems.push(`nat${i + 1}: kind "${String(n.kind)}" is none of ${NAT_KINDS.join(', ')}`);
    if (!Number.isInteger(n.nodes) || n.nodes < 1 || n.nodes > MAX_PER_SIDE) problems.push(`nat${i + 1}: nodes must be an integer in 1-${MAX_PER_SIDE}, not ${n.nodes}`);
  });
  const total = init.publicNodes + init.nats.reduce((s, n) => s + (Number.isInteger(n.nodes) ? n.nodes : 0), 0);
  if (total > 20) problems.push(`at most 20 nodes in all, not ${total}`);
  if (init.conePort !== undefined && (!Number.isInteger(init.conePort) || init.conePort < 1 || init.conePort > 65535)) {
    problems.push(`conePort must be an integer in 1-65535, not ${init.conePort}`);
  }
  return problems;
}

/**
 * The nft script of a NAT namespace. `udpPorts` maps a LAN node's IPv4 address to the one public
 * port its UDP is mapped to (set by `changePort`); other traffic follows the kind.
 */
export function natScript(nat: Pick<LabNat, 'kind' | 'lan4'>, o: { conePort: number; coneTarget4: string | undefined; udpPorts: ReadonlyMap<string, number> }): string {
  const v4 = nat.kind !== 'firewall6';
  const lines = [
    `table inet ${NAT_TABLE}`,
    `delete table inet ${NAT_TABLE}`,
    `table inet ${NAT_TABLE} {`,
    '  chain forward {',
    '    type filter hook forward priority 0; policy drop;',
    '    ct state established,related accept',
    '    iifname "lan" meta nfproto ipv6 accept',
  ];
  if (v4) lines.push('    iifname "lan" meta nfproto ipv4 accept');
  if (nat.kind === 'cone') lines.push('    iifname "eth0" ct status dnat accept');
  lines.push(
    '  }',
    '  chain input {',
    // Unsolicited inbound on the public leg is dropped before conntrack confirms it.
    '    type filter hook input priority 0; policy accept;',
    '    iifname "eth0" ct state established,related accept',
    '    iifname "eth0" meta l4proto { icmp, ipv6-icmp } accept',
    '    iifname "eth0" drop',
    '  }',
  );
  if (v4) {
    lines.push('  chain postrouting {', '    type nat hook postrouting priority 100; policy accept;');
    for (const [addr, port] of o.udpPorts) lines.push(`    oifname "eth0" ip saddr ${addr} meta l4proto udp masquerade to :${port}`);
    lines.push(`    oifname "eth0" meta nfproto ipv4 masquerade${nat.kind === 'symmetric' ? ' fully-random' : ''}`, '  }');
    if (nat.kind === 'cone' && o.coneTarget4 !== undefined) {
      lines.push(
        '  chain prerouting {',
        '    type nat hook prerouting priority -100; policy accept;',
        `    iifname "eth0" meta l4proto { udp, tcp } th dport ${o.conePort} dnat ip to ${o.coneTarget4}`,
        '  }',
      );
    }
  }
  lines.push('}');
  return `${lines.join('\n')}\n`;
}

export class NatLab {
  readonly lab: Lab;
  readonly nats: LabNat[] = [];
  readonly where: NatLabNode[] = [];
  private readonly conePort: number;
  private readonly log: (line: string) => void;
  private readonly udpPorts = new Map<LabNat, Map<string, number>>();
  private nextPort = 40_000;
  private readonly faults = new Map<LabNode, string[]>();

  private constructor(lab: Lab, init: NatLabInit) {
    this.lab = lab;
    this.conePort = init.conePort ?? 6784;
    this.log = init.log ?? (() => undefined);
  }

  get prefix(): string {
    return this.lab.prefix;
  }

  get nodes(): readonly LabNode[] {
    return this.lab.nodes;
  }

  /** Builds the internet, the public nodes, the NATs and the nodes behind them; all or nothing. */
  static async create(init: NatLabInit): Promise<NatLab> {
    const problems = natLabProblems(init);
    if (problems.length > 0) throw new LabError(`invalid NAT lab settings: ${problems.join('; ')}`);
    const lab = await Lab.create({ nodes: init.publicNodes, prefix: init.prefix, log: init.log });
    const nl = new NatLab(lab, init);
    try {
      await nl.build(init);
    } catch (err) {
      await lab.destroy();
      throw err;
    }
    return nl;
  }

  private async build(init: NatLabInit): Promise<void> {
    const u = this.lab.underlayNs;
    for (const node of this.lab.nodes) {
      const a6 = `2001:2::${node.index + 1}`;
      await this.noDad(node.ns, 'eth0');
      await this.ip(node.ns, ['-6', 'addr', 'add', `${a6}/64`, 'dev', 'eth0', 'nodad']);
      this.where.push({ node, nat: undefined, address4: node.address, address6: a6 });
    }
    for (const [i, spec] of init.nats.entries()) {
      const k = i + 1;
      const { ns } = await this.lab.addBareNamespace(`nat${k}`);
      const nat: LabNat = { k, name: `nat${k}`, ns, kind: spec.kind, public4: `198.18.0.${200 + k}`, public6: `2001:2::${200 + k}`, lan4: `198.19.${k}.1`, lan6: `2001:2:${k}::1`, nodes: [] };
      await this.sysctl(ns, ['net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0']);
      await this.ip(ns, ['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', `x${k}`, 'netns', u]);
      await this.ip(u, ['link', 'set', `x${k}`, 'addrgenmode', 'none']);
      await this.ip(u, ['link', 'set', `x${k}`, 'master', 'ul', 'up']);
      await this.ip(ns, ['addr', 'add', `${nat.public4}/24`, 'dev', 'eth0']);
      await this.ip(ns, ['-6', 'addr', 'add', `${nat.public6}/64`, 'dev', 'eth0', 'nodad']);
      await this.ip(ns, ['link', 'set', 'eth0', 'up']);
      await this.ip(ns, ['link', 'add', 'lan', 'type', 'bridge']);
      await this.ip(ns, ['addr', 'add', `${nat.lan4}/24`, 'dev', 'lan']);
      await this.ip(ns, ['-6', 'addr', 'add', `${nat.lan6}/64`, 'dev', 'lan', 'nodad']);
      await this.ip(ns, ['link', 'set', 'lan', 'up']);
      for (let j = 1; j <= spec.nodes; j++) {
        const a4 = `198.19.${k}.${j + 1}`;
        const a6 = `2001:2:${k}::${j + 1}`;
        const node = await this.lab.addUnwiredNode(a4);
        const port = `ln${node.index + 1}`;
        await this.ip(node.ns, ['link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', port, 'netns', ns]);
        await this.ip(ns, ['link', 'set', port, 'addrgenmode', 'none']);
        await this.ip(ns, ['link', 'set', port, 'master', 'lan', 'up']);
        await this.noDad(node.ns, 'eth0');
        await this.ip(node.ns, ['addr', 'add', `${a4}/24`, 'dev', 'eth0']);
        await this.ip(node.ns, ['-6', 'addr', 'add', `${a6}/64`, 'dev', 'eth0', 'nodad']);
        await this.ip(node.ns, ['link', 'set', 'eth0', 'up']);
        await this.ip(node.ns, ['route', 'add', 'default', 'via', nat.lan4]);
        await this.ip(node.ns, ['-6', 'route', 'add', 'default', 'via', nat.lan6]);
        nat.nodes.push(node);
        this.where.push({ node, nat, address4: a4, address6: a6 });
      }
      this.nats.push(nat);
      this.udpPorts.set(nat, new Map());
      await this.applyNat(nat);
    }
    // The internet routes each site's IPv6 /64 to its NAT (IPv4 LANs stay private).
    const onInternet = [...this.lab.nodes.filter((n) => this.natOf(n) === undefined).map((n) => n.ns), ...this.nats.map((n) => n.ns)];
    for (const nat of this.nats) {
      for (const ns of onInternet) if (ns !== nat.ns) await this.ip(ns, ['-6', 'route', 'add', `2001:2:${nat.k}::/64`, 'via', nat.public6]);
    }
    this.log(`NAT lab ${this.prefix}: ${init.publicNodes} public nodes, ${this.nats.map((n) => `${n.name} ${n.kind} (${n.nodes.map((x) => x.name).join(' ')})`).join(', ') || 'no NATs'}`);
  }

  /** The NAT a node sits behind (undefined: public). */
  natOf(node: LabNode | number): LabNat | undefined {
    return this.place(node).nat;
  }

  /** Where node (a LabNode or its 0-based index) is, with its addresses. */
  place(node: LabNode | number): NatLabNode {
    const w = this.where.find((x) => (typeof node === 'number' ? x.node.index === node : x.node.ns === node.ns));
    if (w === undefined) throw new LabError(`NAT lab ${this.prefix} has no node ${typeof node === 'number' ? `index ${node}` : node.name}`);
    return w;
  }

  /** The node's address as the internet sees it (its NAT's public leg, or its own). */
  publicAddress(node: LabNode | number, family: 4 | 6 = 4): string {
    const w = this.place(node);
    if (family === 6) return w.address6;
    return w.nat === undefined ? w.address4 : w.nat.public4;
  }

  /** Forgets every IPv4 mapping of `nat` (the conntrack entries it masqueraded), as a NAT reboot or a WAN reconnect does. */
  async flushMappings(nat: LabNat): Promise<void> {
    this.assertNat(nat);
    // Linux drops the masqueraded conntrack entries of an address when it goes away.
    await this.ip(nat.ns, ['addr', 'del', `${nat.public4}/24`, 'dev', 'eth0']);
    await this.ip(nat.ns, ['addr', 'add', `${nat.public4}/24`, 'dev', 'eth0']);
    this.log(`${nat.name}: mappings flushed`);
  }

  /**
   * Moves the public UDP port of each node behind `nat` to a new one (one fixed port per node,
   * still endpoint-independent) and flushes the mappings, so the next datagram out gets the new
   * port; returns the new port per node name. From then on all UDP of a node leaves from that one
   * port, so two of its sockets cannot both talk to one destination (the second flow is dropped);
   * a weft router uses one socket.
   */
  async changePort(nat: LabNat): Promise<Map<string, number>> {
    this.assertNat(nat);
    if (nat.kind === 'firewall6') throw new LabError(`${nat.name} is firewall6: it maps no IPv4 ports`);
    const ports = this.udpPorts.get(nat)!;
    const out = new Map<string, number>();
    for (const node of nat.nodes) {
      const port = this.nextPort++;
      ports.set(node.address, port);
      out.set(node.name, port);
    }
    await this.applyNat(nat);
    await this.flushMappings(nat);
    this.log(`${nat.name}: UDP ports now ${[...out].map(([n, p]) => `${n}:${p}`).join(' ')}`);
    return out;
  }

  /**
   * Drops UDP (with `all`, everything) between two nodes in both directions, wherever they are:
   * each drops what comes from the other's public and private addresses (IPv4 and IPv6). A rule
   * against a NATed node's public address hits every node behind that NAT: use one node per NAT
   * on the far side of a fault, or relays that are public.
   */
  async blockBetween(a: LabNode, b: LabNode, o: { all?: boolean } = {}): Promise<void> {
    if (a.ns === b.ns) throw new LabError(`a fault needs two different nodes, got ${a.name} twice`);
    for (const [self, peer] of [[a, b], [b, a]] as const) {
      const rules = this.sourcesOf(peer).map((s) => `${isIP(s) === 4 ? 'ip' : 'ip6'} saddr ${s} ${o.all === true ? '' : 'meta l4proto udp '}counter drop`);
      this.faults.set(self, [...(this.faults.get(self) ?? []), ...rules]);
      await this.applyFaults(self);
    }
  }

  /** Removes every fault of blockBetween from every node. */
  async clearBlocks(): Promise<void> {
    for (const node of [...this.faults.keys()]) {
      this.faults.delete(node);
      await this.applyFaults(node);
    }
  }

  destroy(): Promise<void> {
    return this.lab.destroy();
  }

  private sourcesOf(node: LabNode): string[] {
    const w = this.place(node);
    const out = [w.address4, w.address6];
    if (w.nat !== undefined) out.push(w.nat.public4);
    return out;
  }

  private async applyFaults(node: LabNode): Promise<void> {
    const table = `${this.prefix}_natfault`;
    const rules = this.faults.get(node) ?? [];
    const lines = [`table inet ${table}`, `delete table inet ${table}`];
    if (rules.length > 0) {
      lines.push(`table inet ${table} {`, '  chain faults {', `    type filter hook prerouting priority ${FAULT_PRIORITY}; policy accept;`, ...rules.map((r) => `    ${r}`), '  }', '}');
    }
    await this.lab.exec(node.ns, ['nft', '-f', '-'], { input: `${lines.join('\n')}\n`, timeoutMs: 10_000 });
  }

  private async applyNat(nat: LabNat): Promise<void> {
    const script = natScript(nat, { conePort: this.conePort, coneTarget4: nat.nodes[0]?.address, udpPorts: this.udpPorts.get(nat)! });
    await this.lab.exec(nat.ns, ['nft', '-f', '-'], { input: script, timeoutMs: 10_000 });
  }

  private assertNat(nat: LabNat): void {
    if (!this.nats.includes(nat)) throw new LabError(`${nat.name} is not a NAT of lab ${this.prefix}`);
  }

  private async noDad(ns: string, dev: string): Promise<void> {
    await this.sysctl(ns, ['net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0', `net.ipv6.conf.${dev}.accept_dad=0`], true);
  }

  private async sysctl(ns: string, kv: string[], optional = false): Promise<void> {
    const r = await this.lab.exec(ns, ['sysctl', '-q', '-w', ...kv], { check: !optional, timeoutMs: 10_000 });
    if (r.code !== 0) this.log(`sysctl ${kv.join(' ')} in ${ns} failed (optional): ${r.stderr.trim()}`);
  }

  private async ip(ns: string, args: string[]): Promise<void> {
    await this.lab.exec(ns, ['ip', ...args], { timeoutMs: 10_000 });
  }
}
