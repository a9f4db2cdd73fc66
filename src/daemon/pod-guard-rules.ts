/**
 * The nftables text of the pods' anti-spoofing table (`bridge weft-pods`, see pod-guard.ts), as
 * pure functions: the chains, the script that adds or removes one pod (set elements only, no
 * rule is rewritten), the script that makes the sets equal to a list of pods, and the reader of
 * `nft -j list table`.
 *
 * Frames entering the bridge from a pod's host veth (`vw` + 12 hex, cni/veth.ts) pass when:
 *
 *   source MAC = the pod's · destination not a fast-path probe MAC (02:77:…) · ethertype ARP, IPv4 or IPv6
 *   ARP:  Ethernet/IPv4 · sender MAC = the pod's · sender IP = one of the pod's (or 0.0.0.0, a probe)
 *   IPv4: source = one of the pod's · not UDP to the VXLAN port
 *   IPv6: source = one of the pod's, or its link-local · no router advertisement or redirect ·
 *         a neighbour advertisement only for its own address · not UDP to the VXLAN port ·
 *         `::` only for duplicate address detection of its own address and MLD reports
 *
 * Everything else is dropped and counted twice: per reason (counter `dropped_<reason>`) and per pod (the
 * counter named like its port, through map `pod_drops`). A `vw*` port with no pod known is
 * dropped whole (`unknown`): a pod is never unfiltered while its rules are on their way. Other
 * ports (the TAP, the VXLAN device, the probe TAP, veths plugged by hand) are not filtered.
 *
 * Sets are keyed by interface name (`iifname`): adding a pod is an element update.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { WeftError } from '../core/errors.js';

export const POD_TABLE = 'weft-pods';
/** The host ends the CNI plugin makes (cni/veth.ts HOST_END). */
export const POD_PORT = /^vw[0-9a-f]{12}$/;

export const DROP_REASONS = ['unknown', 'mac', 'probe', 'ethertype', 'arp', 'ipv4', 'ipv6', 'nd', 'router', 'vxlan'] as const;
export type DropReason = (typeof DROP_REASONS)[number];

/** One pod's port and what it may send as. */
export interface GuardedPod {
  port: string;
  /** Lower case, colon separated. */
  mac: string;
  ipv4: string[];
  /** Its addresses and its link-local address. */
  ipv6: string[];
}

export interface GuardRulesInit {
  /** UDP port of the kernel fast path's VXLAN device. */
  vxlanPort: number;
}

const T = `bridge ${POD_TABLE}`;
const SETS = ['pods', 'pod_mac', 'pod_v4', 'pod_v6', 'pod_nd'] as const;
const CHAINS = ['prerouting', 'from_arp', 'from_ip4', 'from_ip6', 'from_ip6_any', ...DROP_REASONS.map((r) => `drop_${r}`)];

/** The 16 bytes of an IPv6 address, as 32 hex digits. */
export function ipv6Hex(address: string): string {
  if (!isIPv6(address)) throw new WeftError('ERR_POD_ADDRESS', `${address} is not an IPv6 address`);
  let text = address.toLowerCase();
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4 !== null) {
    const b = v4[1]!.split('.').map(Number);
    text = `${text.slice(0, v4.index)}${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.map((g) => g.padStart(4, '0')).join('');
}

/** The EUI-64 link-local address of a MAC (what Linux gives an interface by default). */
export function linkLocalOf(mac: string): string {
  const b = mac.split(':').map((x) => parseInt(x, 16));
  const g = [((b[0]! ^ 0x02) << 8) | b[1]!, (b[2]! << 8) | 0xff, 0xfe00 | b[3]!, (b[4]! << 8) | b[5]!];
  // the URL parser writes IPv6 in its canonical form (RFC 5952: the longest run of zeros as ::)
  return new URL(`http://[fe80:0:0:0:${g.map((x) => x.toString(16)).join(':')}]`).hostname.slice(1, -1);
}

/** Why `pod` cannot be guarded (undefined when it can): everything here ends up in nft's input. */
export function podProblem(pod: GuardedPod): string | undefined {
  if (!POD_PORT.test(pod.port)) return `port "${pod.port}" is not a pod's host veth (vw + 12 hex digits)`;
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(pod.mac) || (parseInt(pod.mac.slice(0, 2), 16) & 1) === 1) return `"${pod.mac}" is not a unicast MAC`;
  const bad4 = pod.ipv4.find((a) => !isIPv4(a) || a === '0.0.0.0');
  if (bad4 !== undefined) return `"${bad4}" is not a usable IPv4 address`;
  const bad6 = pod.ipv6.find((a) => !isIPv6(a) || ipv6Hex(a) === '0'.repeat(32));
  if (bad6 !== undefined) return `"${bad6}" is not a usable IPv6 address`;
  return undefined;
}

/** The counter of a reason (names like `arp` are nft keywords). */
export function reasonCounter(reason: DropReason): string {
  return `dropped_${reason}`;
}

function dropTo(reason: DropReason): string {
  return `goto drop_${reason}`;
}

/** Declarations and rules, idempotent: a table that exists keeps its set elements and counters. */
export function tableScript(init: GuardRulesInit): string {
  const vx = init.vxlanPort;
  const decl = [
    `table ${T} {`,
    ...DROP_REASONS.map((r) => `  counter ${reasonCounter(r)} { }`),
    '  set pods { type ifname; }',
    '  set pod_mac { type ifname . ether_addr; }',
    '  set pod_v4 { type ifname . ipv4_addr; }',
    '  set pod_v6 { type ifname . ipv6_addr; }',
    // the target of a neighbour solicitation or advertisement: 16 bytes after the ICMPv6 header's first 8
    '  set pod_nd { typeof iifname . @th,64,128; }',
    '  map pod_drops { type ifname : counter; }',
    '  chain prerouting { type filter hook prerouting priority -200; policy accept; }',
    ...CHAINS.filter((c) => c !== 'prerouting').map((c) => `  chain ${c} { }`),
    '}',
  ];
  const flush = CHAINS.map((c) => `flush chain ${T} ${c}`);
  const rules = [
    `table ${T} {`,
    ...DROP_REASONS.map((r) =>
      r === 'unknown'
        ? `  chain drop_${r} { counter name "${reasonCounter(r)}"; drop; }`
        : // the per-pod counter in a rule of its own: a lookup that missed would skip the drop with it
          `  chain drop_${r} { counter name "${reasonCounter(r)}"; counter name iifname map @pod_drops; drop; }`,
    ),
    '  chain prerouting {',
    '    iifname != "vw*" accept',
    `    iifname != @pods ${dropTo('unknown')}`,
    `    iifname . ether saddr != @pod_mac ${dropTo('mac')}`,
    `    ether daddr & ff:ff:00:00:00:00 == 02:77:00:00:00:00 ${dropTo('probe')}`,
    '    ether type vmap { arp : goto from_arp, ip : goto from_ip4, ip6 : goto from_ip6 }',
    `    ${dropTo('ethertype')}`,
    '  }',
    '  chain from_arp {',
    `    arp htype . arp ptype . arp hlen . arp plen != { 1 . ip . 6 . 4 } ${dropTo('arp')}`,
    `    iifname . arp saddr ether != @pod_mac ${dropTo('arp')}`,
    '    arp saddr ip 0.0.0.0 accept',
    `    iifname . arp saddr ip != @pod_v4 ${dropTo('arp')}`,
    '    accept',
    '  }',
    '  chain from_ip4 {',
    `    iifname . ip saddr != @pod_v4 ${dropTo('ipv4')}`,
    `    udp dport ${vx} ${dropTo('vxlan')}`,
    '    accept',
    '  }',
    '  chain from_ip6 {',
    '    ip6 saddr :: goto from_ip6_any',
    `    iifname . ip6 saddr != @pod_v6 ${dropTo('ipv6')}`,
    `    icmpv6 type { nd-router-advert, nd-redirect } ${dropTo('router')}`,
    `    icmpv6 type nd-neighbor-advert iifname . @th,64,128 != @pod_nd ${dropTo('nd')}`,
    `    udp dport ${vx} ${dropTo('vxlan')}`,
    '    accept',
    '  }',
    '  chain from_ip6_any {',
    '    icmpv6 type nd-neighbor-solicit iifname . @th,64,128 @pod_nd accept',
    `    icmpv6 type nd-neighbor-solicit ${dropTo('nd')}`,
    '    icmpv6 type { mld-listener-report, mld2-listener-report } accept',
    `    ${dropTo('ipv6')}`,
    '  }',
    '}',
  ];
  return [...decl, ...flush, ...rules, ''].join('\n');
}

function elements(set: string, items: string[]): string[] {
  return items.length === 0 ? [] : [`add element ${T} ${set} { ${items.join(', ')} }`];
}

function podElements(p: GuardedPod): { set: string; items: string[] }[] {
  const q = `"${p.port}"`;
  return [
    { set: 'pods', items: [q] },
    { set: 'pod_mac', items: [`${q} . ${p.mac}`] },
    { set: 'pod_v4', items: p.ipv4.map((a) => `${q} . ${a}`) },
    { set: 'pod_v6', items: p.ipv6.map((a) => `${q} . ${a}`) },
    { set: 'pod_nd', items: p.ipv6.map((a) => `${q} . 0x${ipv6Hex(a)}`) },
  ];
}

/** Adds one pod (its counter first: the map entry names it). */
export function podAddScript(p: GuardedPod): string {
  const lines = [`add counter ${T} ${p.port}`];
  for (const e of podElements(p)) lines.push(...elements(e.set, e.items));
  lines.push(`add element ${T} pod_drops { "${p.port}" : "${p.port}" }`);
  return `${lines.join('\n')}\n`;
}

/**
 * Removes the elements of `p` (as they were added); `keepCounter` for a pod that is replaced, not
 * gone. Each element is added before it is deleted, so a missing one is no error.
 */
export function podRemoveScript(p: GuardedPod, keepCounter = false): string {
  const lines: string[] = [`add counter ${T} ${p.port}`];
  for (const e of podElements(p)) {
    if (e.items.length === 0) continue;
    lines.push(`add element ${T} ${e.set} { ${e.items.join(', ')} }`, `delete element ${T} ${e.set} { ${e.items.join(', ')} }`);
  }
  lines.push(`add element ${T} pod_drops { "${p.port}" : "${p.port}" }`, `delete element ${T} pod_drops { "${p.port}" : "${p.port}" }`);
  if (!keepCounter) lines.push(`delete counter ${T} ${p.port}`);
  return `${lines.join('\n')}\n`;
}

/**
 * Rules, then the sets made equal to `pods` (flushed and filled in the same transaction: no
 * moment without them), then the counters of `gone` ports deleted. Counters of pods that stay keep
 * their values.
 */
export function syncScript(init: GuardRulesInit, pods: readonly GuardedPod[], gone: readonly string[]): string {
  const lines = [tableScript(init).trimEnd()];
  for (const s of SETS) lines.push(`flush set ${T} ${s}`);
  lines.push(`flush map ${T} pod_drops`);
  for (const p of pods) lines.push(podAddScript(p).trimEnd());
  for (const port of gone) if (POD_PORT.test(port)) lines.push(`add counter ${T} ${port}`, `delete counter ${T} ${port}`);
  return `${lines.join('\n')}\n`;
}

/** What `nft -j list table bridge weft-pods` holds, in our terms. */
export interface GuardTable {
  pods: Map<string, GuardedPod>;
  /** Counter name → packets (the reasons' and the pods'). */
  counters: Map<string, number>;
}

function concatOf(e: unknown): [string, string] | undefined {
  const c = (e as { concat?: unknown } | null)?.concat;
  return Array.isArray(c) && c.length === 2 && typeof c[0] === 'string' && typeof c[1] === 'string' ? [c[0], c[1]] : undefined;
}

/** Reads the sets and counters out of the table's JSON; entries it does not understand are skipped. */
export function readGuardTable(items: readonly unknown[]): GuardTable {
  const pods = new Map<string, GuardedPod>();
  const counters = new Map<string, number>();
  const sets = new Map<string, unknown[]>();
  for (const item of items) {
    const o = item as { set?: { name?: unknown; elem?: unknown }; counter?: { name?: unknown; packets?: unknown } };
    if (o.set !== undefined && typeof o.set.name === 'string') sets.set(o.set.name, Array.isArray(o.set.elem) ? o.set.elem : []);
    if (o.counter !== undefined && typeof o.counter.name === 'string' && typeof o.counter.packets === 'number') counters.set(o.counter.name, o.counter.packets);
  }
  for (const e of sets.get('pod_mac') ?? []) {
    const c = concatOf(e);
    if (c !== undefined && POD_PORT.test(c[0])) pods.set(c[0], { port: c[0], mac: c[1].toLowerCase(), ipv4: [], ipv6: [] });
  }
  for (const [set, key] of [['pod_v4', 'ipv4'], ['pod_v6', 'ipv6']] as const) {
    for (const e of sets.get(set) ?? []) {
      const c = concatOf(e);
      if (c !== undefined) pods.get(c[0])?.[key].push(c[1]);
    }
  }
  return { pods, counters };
}

/** Same port, MAC and addresses (in any order). */
export function samePod(a: GuardedPod, b: GuardedPod): boolean {
  const eq = (x: string[], y: string[]) => x.length === y.length && [...x].sort().join() === [...y].sort().join();
  return a.port === b.port && a.mac === b.mac && eq(a.ipv4, b.ipv4) && eq(a.ipv6.map(ipv6Hex), b.ipv6.map(ipv6Hex));
}
