/**
 * The policy compiler: the model in, the table's rules and sets out (model.ts says how they are
 * split). Pure: no I/O, the same model gives the same text.
 *
 * The table (`inet weft-policy`), P being a policy's id and k a rule (`i0`, `e0`, ...):
 *
 *   counters  ingress_dropped, egress_dropped (node totals); P_allowed, P_dropped
 *   sets      self4/6 (a local pod to itself), isolated_in4/6, isolated_eg4/6 (local pods some
 *             policy isolates), P_sel4/6 (local pods P selects), and per rule only what it needs:
 *             P_k_pods4/6 (peer pods, any node), P_k_net4/6 (ipBlocks, interval), P_k_ports
 *             (protocol . port ranges, interval), P_k_named4/6 (address . protocol . port of the
 *             named ports, resolved on the destination pods)
 *   forward   established/related, neighbour discovery and self traffic accepted; isolated
 *             sources jump to egress, isolated destinations to ingress
 *   egress    one rule per (family × peer kind × port kind) of every egress rule, `return` when
 *             allowed (the packet goes on to the ingress check); then every isolating policy's
 *             P_dropped counter and the drop
 *   ingress   the same on the destination, `accept` when allowed
 *
 * Which sets and rules exist depends on the policies only: pods and namespaces change elements.
 */
import { createHash } from 'node:crypto';
import { compareText } from '../core/compare.js';
import { blockRanges, canonicalAddress, mergeRanges, rangeElements, type AddressRange, type IpFamily } from './cidr.js';
import {
  podKey,
  type CompiledPolicy,
  type CompiledPolicyInfo,
  type CompiledSet,
  type NetworkPolicy,
  type PolicyModel,
  type PolicyPod,
  type PolicyPort,
  type PolicyRule,
} from './model.js';
import { NamespaceLabels, isPodPeer, peerSelects, policySelects, selectable } from './selector.js';

export const NODE_COUNTERS = { ingress: 'ingress_dropped', egress: 'egress_dropped' } as const;

const FAMILIES: readonly IpFamily[] = [4, 6];
const PROTOCOLS = { TCP: 'tcp', UDP: 'udp', SCTP: 'sctp' } as const;
const PROTOCOL_ORDER = ['tcp', 'udp', 'sctp'];

/** The short id of a policy in the table's names: `p` + the first 10 hex digits of sha256(`namespace/name`). */
export function policyId(namespace: string, name: string): string {
  return `p${createHash('sha256').update(`${namespace}/${name}`).digest('hex').slice(0, 10)}`;
}

const addrType = (f: IpFamily) => (f === 4 ? 'ipv4_addr' : 'ipv6_addr');
const ipKw = (f: IpFamily) => (f === 4 ? 'ip' : 'ip6');

/** One rule of a policy, and what the compiler needs of it. */
interface RulePlan {
  /** `i0`, `e3`. */
  tag: string;
  rule: PolicyRule;
  podPeers: boolean;
  /** The ipBlocks' families (the family's net set exists). */
  netFamilies: Set<IpFamily>;
  numericPorts: PolicyPort[];
  namedPorts: PolicyPort[];
}

interface Direction {
  key: 'ingress' | 'egress';
  letter: 'i' | 'e';
  /** Which address is the selected pod's, and which the peer's. */
  own: 'saddr' | 'daddr';
  peer: 'saddr' | 'daddr';
  verdict: 'accept' | 'return';
}

const INGRESS: Direction = { key: 'ingress', letter: 'i', own: 'daddr', peer: 'saddr', verdict: 'accept' };
const EGRESS: Direction = { key: 'egress', letter: 'e', own: 'saddr', peer: 'daddr', verdict: 'return' };

function plansOf(policy: NetworkPolicy, dir: Direction): RulePlan[] {
  if (!policy[dir.key]) return [];
  const rules = dir.key === 'ingress' ? policy.ingressRules : policy.egressRules;
  return rules.map((rule, k) => {
    const netFamilies = new Set<IpFamily>();
    for (const p of rule.peers) {
      if (isPodPeer(p) || p.ipBlock === undefined) continue;
      const b = blockRanges(p.ipBlock);
      if (b !== undefined) netFamilies.add(b.family);
    }
    return {
      tag: `${dir.letter}${k}`,
      rule,
      podPeers: rule.peers.some(isPodPeer),
      netFamilies,
      numericPorts: rule.ports.filter((p) => typeof p.port !== 'string'),
      namedPorts: rule.ports.filter((p) => typeof p.port === 'string'),
    };
  });
}

/** The set names of a rule's parts. */
const setName = (id: string, tag: string, what: string) => `${id}_${tag}_${what}`;

/** The chain rules of one rule of a policy, every (family × peer kind × port kind). */
function ruleLines(id: string, dir: Direction, plan: RulePlan): string[] {
  const lines: string[] = [];
  const counter = `counter name "${id}_allowed" ${dir.verdict}`;
  for (const f of FAMILIES) {
    const peers: string[] = [];
    if (plan.rule.peers.length === 0) peers.push('');
    else {
      if (plan.podPeers) peers.push(`${ipKw(f)} ${dir.peer} @${setName(id, plan.tag, `pods${f}`)} `);
      if (plan.netFamilies.has(f)) peers.push(`${ipKw(f)} ${dir.peer} @${setName(id, plan.tag, `net${f}`)} `);
    }
    const ports: string[] = [];
    if (plan.rule.ports.length === 0) ports.push('');
    else {
      if (plan.numericPorts.length > 0) ports.push(`meta l4proto . th dport @${setName(id, plan.tag, 'ports')} `);
      if (plan.namedPorts.length > 0) ports.push(`${ipKw(f)} daddr . meta l4proto . th dport @${setName(id, plan.tag, `named${f}`)} `);
    }
    for (const peer of peers) for (const port of ports) lines.push(`${ipKw(f)} ${dir.own} @${id}_sel${f} ${peer}${port}${counter}`);
  }
  return lines;
}

/** The sets one rule needs (`what` says which part: pods4, net6, ports, named4, ...). */
function ruleSetDeclarations(id: string, plan: RulePlan): { name: string; declaration: string; what: string }[] {
  const out: { name: string; declaration: string; what: string }[] = [];
  const add = (what: string, declaration: string) => out.push({ name: setName(id, plan.tag, what), declaration, what });
  if (plan.podPeers) for (const f of FAMILIES) add(`pods${f}`, `type ${addrType(f)};`);
  for (const f of FAMILIES) if (plan.netFamilies.has(f)) add(`net${f}`, `type ${addrType(f)}; flags interval;`);
  if (plan.numericPorts.length > 0) add('ports', 'type inet_proto . inet_service; flags interval;');
  if (plan.namedPorts.length > 0) for (const f of FAMILIES) add(`named${f}`, `type ${addrType(f)} . inet_proto . inet_service;`);
  return out;
}

/** The counter declaration line in `rules` (fullScript gives it its previous values). */
export function counterLine(name: string): string {
  return `  counter ${name} { }`;
}

interface Address {
  family: IpFamily;
  text: string;
  value: bigint;
}

const byValue = (a: Address, b: Address) => (a.value < b.value ? -1 : a.value > b.value ? 1 : 0);

/**
 * The pods' addresses, canonical (text that is no address left out), parsed once per
 * compilation; each distinct address has a rank in numeric order, so a set's elements are a sort
 * of small integers.
 */
class PodAddresses {
  private readonly ranks = new Map<PolicyPod, Record<IpFamily, number[]>>();
  private readonly texts4: string[];
  private readonly texts6: string[];

  constructor(pods: readonly PolicyPod[]) {
    const parsed = new Map<PolicyPod, Address[]>();
    const distinct: Record<IpFamily, Map<string, Address>> = { 4: new Map(), 6: new Map() };
    for (const pod of pods) {
      const a = pod.ips.map(canonicalAddress).filter((x): x is Address => x !== undefined);
      parsed.set(pod, a);
      for (const x of a) distinct[x.family].set(x.text, x);
    }
    const rankOf = new Map<string, number>();
    const sorted = (f: IpFamily) => [...distinct[f].values()].sort(byValue).map((x, i) => (rankOf.set(x.text, i), x.text));
    this.texts4 = sorted(4);
    this.texts6 = sorted(6);
    for (const [pod, a] of parsed) {
      const r: Record<IpFamily, number[]> = { 4: [], 6: [] };
      for (const x of a) r[x.family].push(rankOf.get(x.text)!);
      this.ranks.set(pod, r);
    }
  }

  /** The addresses of family `f` of `pods` (pods given to the constructor), each once, sorted numerically. */
  texts(pods: Iterable<PolicyPod>, f: IpFamily): string[] {
    const ranks: number[] = [];
    for (const pod of pods) for (const r of this.ranks.get(pod)?.[f] ?? []) ranks.push(r);
    ranks.sort((a, b) => a - b);
    const names = f === 4 ? this.texts4 : this.texts6;
    const out: string[] = [];
    for (let i = 0; i < ranks.length; i++) if (i === 0 || ranks[i] !== ranks[i - 1]) out.push(names[ranks[i]!]!);
    return out;
  }

  /** One pod's addresses of family `f`, sorted, with their ranks. */
  of(pod: PolicyPod, f: IpFamily): { text: string; rank: number }[] {
    const names = f === 4 ? this.texts4 : this.texts6;
    return [...(this.ranks.get(pod)?.[f] ?? [])].sort((a, b) => a - b).map((rank) => ({ text: names[rank]!, rank }));
  }
}

function portElements(ports: readonly PolicyPort[]): string[] {
  const byProto = new Map<string, AddressRange[]>();
  for (const p of ports) {
    const proto = PROTOCOLS[p.protocol];
    if (proto === undefined) continue;
    let range: AddressRange | undefined;
    if (p.port === undefined) range = { start: 0n, end: 65535n };
    else if (typeof p.port === 'number' && Number.isInteger(p.port) && p.port >= 0 && p.port <= 65535) {
      const end = p.endPort !== undefined && Number.isInteger(p.endPort) && p.endPort >= p.port && p.endPort <= 65535 ? p.endPort : p.port;
      range = { start: BigInt(p.port), end: BigInt(end) };
    }
    if (range === undefined) continue;
    byProto.set(proto, [...(byProto.get(proto) ?? []), range]);
  }
  const out: string[] = [];
  for (const proto of PROTOCOL_ORDER) {
    for (const r of mergeRanges(byProto.get(proto) ?? [])) out.push(r.start === r.end ? `${proto} . ${r.start}` : `${proto} . ${r.start}-${r.end}`);
  }
  return out;
}

/** `address . protocol . port` of the named ports `ports` on `pods`. */
function namedElements(addresses: PodAddresses, pods: readonly PolicyPod[], ports: readonly PolicyPort[], f: IpFamily): string[] {
  const rows: { rank: number; proto: number; port: number; text: string }[] = [];
  const seen = new Set<string>();
  for (const pod of pods) {
    const addrs = addresses.of(pod, f);
    for (const want of ports) {
      for (const np of pod.namedPorts) {
        if (np.name !== want.port || np.protocol !== want.protocol) continue;
        if (!Number.isInteger(np.port) || np.port < 1 || np.port > 65535) continue;
        const proto = PROTOCOLS[np.protocol];
        for (const a of addrs) {
          const text = `${a.text} . ${proto} . ${np.port}`;
          if (seen.has(text)) continue;
          seen.add(text);
          rows.push({ rank: a.rank, proto: PROTOCOL_ORDER.indexOf(proto), port: np.port, text });
        }
      }
    }
  }
  rows.sort((a, b) => a.rank - b.rank || a.proto - b.proto || a.port - b.port);
  return rows.map((r) => r.text);
}

/** What one compilation computes once: the pods that can be selected, namespaces' labels, addresses, the pods each rule's peers pick. */
interface Context {
  known: readonly PolicyPod[];
  namespaces: NamespaceLabels;
  addresses: PodAddresses;
  picked: Map<RulePlan, PolicyPod[]>;
}

/** The elements of one of a rule's sets (`what`: pods4, net6, ports, named4, ...). */
function ruleSetElements(
  ctx: Context,
  policy: NetworkPolicy,
  selected: readonly PolicyPod[],
  plan: RulePlan,
  what: string,
): string[] {
  const f: IpFamily = what.endsWith('6') ? 6 : 4;
  const peersPick = () => {
    let picked = ctx.picked.get(plan);
    if (picked === undefined) {
      picked = ctx.known.filter((pod) => plan.rule.peers.some((peer) => isPodPeer(peer) && peerSelects(peer, policy.namespace, pod, ctx.namespaces)));
      ctx.picked.set(plan, picked);
    }
    return picked;
  };
  if (what.startsWith('pods')) return ctx.addresses.texts(peersPick(), f);
  if (what.startsWith('net')) {
    const ranges: AddressRange[] = [];
    for (const peer of plan.rule.peers) {
      if (isPodPeer(peer) || peer.ipBlock === undefined) continue;
      const b = blockRanges(peer.ipBlock);
      if (b !== undefined && b.family === f) ranges.push(...b.ranges);
    }
    return rangeElements(f, ranges);
  }
  if (what === 'ports') return portElements(plan.numericPorts);
  // named ports: on the selected local pods (ingress); on the destinations the peers allow (egress:
  // every known pod when a peer is an ipBlock or there are none, the rule's peer match narrows it)
  if (plan.tag.startsWith('i')) return namedElements(ctx.addresses, selected, plan.namedPorts, f);
  const anyDestination = plan.rule.peers.length === 0 || plan.rule.peers.some((p) => !isPodPeer(p));
  return namedElements(ctx.addresses, anyDestination ? ctx.known : peersPick(), plan.namedPorts, f);
}

export function compilePolicy(model: PolicyModel): CompiledPolicy {
  // policies in namespace/name order, one of each
  const policies: NetworkPolicy[] = [];
  const seenPolicy = new Set<string>();
  for (const p of [...model.policies].sort((a, b) => compareText(a.namespace, b.namespace) || compareText(a.name, b.name))) {
    if (seenPolicy.has(podKey(p))) continue;
    seenPolicy.add(podKey(p));
    policies.push(p);
  }
  const namespaces = new NamespaceLabels(model.namespaces);
  const known = model.pods.filter(selectable);
  const local = known.filter((p) => model.local.has(podKey(p)));
  const ctx: Context = { known, namespaces, addresses: new PodAddresses(known), picked: new Map() };

  const counters: string[] = [NODE_COUNTERS.ingress, NODE_COUNTERS.egress];
  const sets: CompiledSet[] = [];
  const addSet = (name: string, declaration: string, elements: string[]) => sets.push({ name, declaration, elements });
  const infos: CompiledPolicyInfo[] = [];
  const egressLines: string[] = [];
  const ingressLines: string[] = [];
  const isolated = { ingress: new Set<PolicyPod>(), egress: new Set<PolicyPod>() };

  for (const f of FAMILIES) {
    const elems = ctx.addresses.texts(local, f).map((a) => `${a} . ${a}`);
    addSet(`self${f}`, `type ${addrType(f)} . ${addrType(f)};`, elems);
  }
  const policySets: CompiledSet[] = [];
  for (const policy of policies) {
    const id = policyId(policy.namespace, policy.name);
    const selected = local.filter((pod) => policySelects(policy, pod));
    counters.push(`${id}_allowed`, `${id}_dropped`);
    infos.push({
      namespace: policy.namespace,
      name: policy.name,
      id,
      ingress: policy.ingress,
      egress: policy.egress,
      selected: selected.map(podKey).sort(),
      allowedCounter: `${id}_allowed`,
      droppedCounter: `${id}_dropped`,
    });
    for (const f of FAMILIES) policySets.push({ name: `${id}_sel${f}`, declaration: `type ${addrType(f)};`, elements: ctx.addresses.texts(selected, f) });
    for (const dir of [EGRESS, INGRESS]) {
      if (!policy[dir.key]) continue;
      for (const pod of selected) isolated[dir.key].add(pod);
      const lines = dir === EGRESS ? egressLines : ingressLines;
      for (const plan of plansOf(policy, dir)) {
        lines.push(...ruleLines(id, dir, plan));
        for (const s of ruleSetDeclarations(id, plan)) {
          policySets.push({ name: s.name, declaration: s.declaration, elements: ruleSetElements(ctx, policy, selected, plan, s.what) });
        }
      }
    }
  }
  for (const [dir, short] of [
    ['ingress', 'in'],
    ['egress', 'eg'],
  ] as const) {
    for (const f of FAMILIES) addSet(`isolated_${short}${f}`, `type ${addrType(f)};`, ctx.addresses.texts(isolated[dir], f));
  }
  sets.push(...policySets);

  for (const [dir, lines] of [
    [EGRESS, egressLines],
    [INGRESS, ingressLines],
  ] as const) {
    for (const info of infos) {
      if (!info[dir.key]) continue;
      for (const f of FAMILIES) lines.push(`${ipKw(f)} ${dir.own} @${info.id}_sel${f} counter name "${info.droppedCounter}"`);
    }
    lines.push(`counter name "${NODE_COUNTERS[dir.key]}" drop`);
  }

  const text = [
    ...counters.map(counterLine),
    ...sets.map((s) => `  set ${s.name} { ${s.declaration} }`),
    '  chain forward {',
    '    type filter hook forward priority filter; policy accept;',
    '    ct state established,related accept',
    '    icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept',
    '    ip saddr . ip daddr @self4 accept',
    '    ip6 saddr . ip6 daddr @self6 accept',
    '    ip saddr @isolated_eg4 jump egress',
    '    ip6 saddr @isolated_eg6 jump egress',
    '    ip daddr @isolated_in4 jump ingress',
    '    ip6 daddr @isolated_in6 jump ingress',
    '  }',
    '  chain egress {',
    ...egressLines.map((l) => `    ${l}`),
    '  }',
    '  chain ingress {',
    ...ingressLines.map((l) => `    ${l}`),
    '  }',
  ];
  return { rules: `${text.join('\n')}\n`, sets, counters, policies: infos };
}

