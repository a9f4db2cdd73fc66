/**
 * The nftables ruleset kube-proxy's nftables mode writes for a set of Services, written into a lab
 * node's namespace: what a Kubernetes node has, so the lab tests weft under the same rules.
 *
 * Followed: the nftables proxier (pkg/proxy/nftables/proxier.go) as of kubernetes commit
 * 01d7de5464ba, its first (alpha) layout. Same table (`ip kube-proxy` / `ip6 kube-proxy`), base
 * chains named `<type>-<hook>` at the same priorities, the dispatch verdict maps `service-ips`
 * (address . protocol . port) and `service-nodeports` (protocol . port, for any local address, or
 * for `nodeport-ips` when NodePort addresses are given), `no-endpoint-services` /
 * `no-endpoint-nodeports` to `reject-chain`, per service port a `service-` chain (masquerade what
 * comes from outside the cluster CIDR, then `numgen random` over the endpoints), an `external-`
 * chain for NodePorts (externalTrafficPolicy Cluster: mark for masquerade, then the service
 * chain), per endpoint an `endpoint-` chain (hairpin: mark when the source is the endpoint itself,
 * then DNAT), and the masquerade mark (bit 14, 0x4000) set in `mark-for-masquerade` and turned
 * into `masquerade fully-random` in `masquerading`. Chain names carry kube-proxy's hash prefix
 * (8 base32 characters of SHA-256 of the name). Left out, as the tests need none of them: session
 * affinity, externalTrafficPolicy Local, external and load-balancer IPs, source ranges.
 *
 * This is our own code from reading that file; nothing is copied from it.
 */
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { LabError } from './errors.js';
import type { Lab, LabNode } from './lab.js';

export const KUBE_PROXY_TABLE = 'kube-proxy';
/** kube-proxy's default --masquerade-bit 14, written as kube-proxy writes it (`%#08x`). */
export const MASQUERADE_MARK = '0x004000';

export interface KubeEndpoint {
  ip: string;
  port: number;
}

/** One port of one Service (kube-proxy's ServicePort), with its ready endpoints on any node. */
export interface KubeServicePort {
  namespace: string;
  name: string;
  /** The port's name in the Service ('' for an unnamed single port). */
  portName: string;
  protocol: 'tcp' | 'udp';
  clusterIP: string;
  port: number;
  /** externalTrafficPolicy Cluster. */
  nodePort?: number;
  endpoints: KubeEndpoint[];
}

export interface KubeProxyInit {
  family: 4 | 6;
  /**
   * --cluster-cidr: kube-proxy's local-traffic detector. Traffic to a ClusterIP from outside it is
   * masqueraded. undefined: no detector (no such rule).
   */
  clusterCidr?: string;
  /** --nodeport-addresses; undefined: every local address (`fib daddr type local`). */
  nodePortAddresses?: string[];
}

/** nftables' named priorities of the ip and ip6 families. */
const DSTNAT = -100;
const SRCNAT = 100;

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** The first 8 characters of the standard base32 encoding of SHA-256(name) (40 bits: 5 bytes). */
function hashPrefix(name: string): string {
  const b = createHash('sha256').update(name).digest();
  let bits = 0n;
  for (let i = 0; i < 5; i++) bits = (bits << 8n) | BigInt(b[i]!);
  let out = '';
  for (let i = 7; i >= 0; i--) out += BASE32[Number((bits >> BigInt(i * 5)) & 31n)];
  return out;
}

/** kube-proxy's chain name base: hash, then the name, cut to 240 characters. */
export function chainNameBase(name: string): string {
  const full = `${hashPrefix(name)}-${name}`;
  return full.length > 240 ? `${full.slice(0, 237)}...` : full;
}

function servicePart(s: KubeServicePort): string {
  return `${s.namespace}/${s.name}/${s.protocol}/${s.portName}`;
}

export function serviceChain(s: KubeServicePort): string {
  return `service-${chainNameBase(servicePart(s))}`;
}

export function externalChain(s: KubeServicePort): string {
  return `external-${chainNameBase(servicePart(s))}`;
}

export function endpointChain(s: KubeServicePort, e: KubeEndpoint): string {
  return `endpoint-${chainNameBase(`${servicePart(s)}__${e.ip.replaceAll(':', '.')}/${e.port}`)}`;
}

function checkPort(what: string, n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new LabError(`${what} must be a port number (1-65535), not ${n}`);
}

/** Every problem of `services` for `family`, or an empty list. */
export function servicesProblems(family: 4 | 6, services: readonly KubeServicePort[]): string[] {
  const problems: string[] = [];
  const name = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
  for (const s of services) {
    const at = `service ${s.namespace}/${s.name}:${s.portName}`;
    if (!name.test(s.namespace) || !name.test(s.name) || (s.portName !== '' && !name.test(s.portName))) problems.push(`${at}: names must be DNS labels`);
    if (isIP(s.clusterIP) !== family) problems.push(`${at}: clusterIP ${s.clusterIP} is not IPv${family}`);
    for (const [what, n] of [['port', s.port], ['nodePort', s.nodePort ?? 1]] as const) {
      try {
        checkPort(`${at}: ${what}`, n);
      } catch (err) {
        problems.push((err as Error).message);
      }
    }
    for (const e of s.endpoints) {
      if (isIP(e.ip) !== family) problems.push(`${at}: endpoint ${e.ip} is not IPv${family}`);
      if (!Number.isInteger(e.port) || e.port < 1 || e.port > 65535) problems.push(`${at}: endpoint port ${e.port} is not a port number`);
    }
  }
  return problems;
}

/**
 * The nft script that makes `table <ip|ip6> kube-proxy` what kube-proxy writes for `services`: the
 * table is replaced whole (one transaction), as a resync that rebuilds every chain and map would.
 */
export function kubeProxyScript(init: KubeProxyInit, services: readonly KubeServicePort[]): string {
  const problems = servicesProblems(init.family, services);
  if (problems.length > 0) throw new LabError(`kube-proxy rules: ${problems.join('; ')}`);
  const ipX = init.family === 4 ? 'ip' : 'ip6';
  const addr = init.family === 4 ? 'ipv4_addr' : 'ipv6_addr';
  const noLocalhost = init.family === 4 ? 'ip daddr != 127.0.0.0/8' : 'ip6 daddr != ::1';
  const ep = (e: KubeEndpoint) => (init.family === 4 ? `${e.ip}:${e.port}` : `[${e.ip}]:${e.port}`);
  const T = `${ipX} ${KUBE_PROXY_TABLE}`;
  const nodePortMatch = init.nodePortAddresses === undefined ? `fib daddr type local ${noLocalhost}` : `${ipX} daddr @nodeport-ips`;

  const chains = new Map<string, string[]>();
  const chain = (name: string, ...rules: string[]) => {
    const c = chains.get(name) ?? [];
    c.push(...rules);
    chains.set(name, c);
  };
  // Base chains: filtering before DNAT (dstnat - 10), DNAT, SNAT. As numbers, as kube-proxy's
  // library writes them for an nft (1.0.6 here) that takes "dstnat" only on prerouting.
  const base: [string, string][] = [
    ['filter-prerouting', `type filter hook prerouting priority ${DSTNAT - 10}`],
    ['filter-input', `type filter hook input priority ${DSTNAT - 10}`],
    ['filter-forward', `type filter hook forward priority ${DSTNAT - 10}`],
    ['filter-output', `type filter hook output priority ${DSTNAT - 10}`],
    ['nat-prerouting', `type nat hook prerouting priority ${DSTNAT}`],
    ['nat-output', `type nat hook output priority ${DSTNAT}`],
    ['nat-postrouting', `type nat hook postrouting priority ${SRCNAT}`],
  ];
  for (const [name] of base) chain(name);
  // The jumps from the base chains, in kube-proxy's order.
  chain('filter-input', 'ct state new jump endpoints-check');
  chain('filter-forward', 'ct state new jump endpoints-check');
  chain('filter-output', 'ct state new jump endpoints-check');
  chain('filter-prerouting', 'ct state new jump firewall-check');
  chain('filter-output', 'ct state new jump firewall-check');
  chain('nat-output', 'jump services');
  chain('nat-prerouting', 'jump services');
  chain('nat-postrouting', 'jump masquerading');
  chain('mark-for-masquerade', `mark set mark or ${MASQUERADE_MARK}`);
  chain('masquerading', `mark and ${MASQUERADE_MARK} == 0 return`, `mark set mark xor ${MASQUERADE_MARK}`, 'masquerade fully-random');
  chain('reject-chain', 'reject');
  chain(
    'endpoints-check',
    `${ipX} daddr . meta l4proto . th dport vmap @no-endpoint-services`,
    `${nodePortMatch} meta l4proto . th dport vmap @no-endpoint-nodeports`,
  );
  chain('firewall-check', `${ipX} daddr . meta l4proto . th dport vmap @firewall-ips`);
  chain('services', `${ipX} daddr . meta l4proto . th dport vmap @service-ips`, `${nodePortMatch} meta l4proto . th dport vmap @service-nodeports`);

  const serviceIps: string[] = [];
  const nodePorts: string[] = [];
  const noEndpoints: string[] = [];
  const noEndpointNodePorts: string[] = [];
  for (const s of services) {
    const svc = serviceChain(s);
    if (s.endpoints.length === 0) {
      // No endpoint anywhere: rejected in the filter chains, no NAT chain at all.
      noEndpoints.push(`${s.clusterIP} . ${s.protocol} . ${s.port} : goto reject-chain`);
      if (s.nodePort !== undefined) noEndpointNodePorts.push(`${s.protocol} . ${s.nodePort} : goto reject-chain`);
      continue;
    }
    serviceIps.push(`${s.clusterIP} . ${s.protocol} . ${s.port} : goto ${svc}`);
    if (init.clusterCidr !== undefined) {
      chain(svc, `${ipX} daddr ${s.clusterIP} ${s.protocol} dport ${s.port} ${ipX} saddr != ${init.clusterCidr} jump mark-for-masquerade`);
    }
    if (s.nodePort !== undefined) {
      const ext = externalChain(s);
      nodePorts.push(`${s.protocol} . ${s.nodePort} : goto ${ext}`);
      // externalTrafficPolicy Cluster: the endpoint may be on another node, so masquerade.
      chain(ext, 'jump mark-for-masquerade', `goto ${svc}`);
    }
    const spread = s.endpoints.map((e, i) => `${i} : goto ${endpointChain(s, e)}`).join(' , ');
    chain(svc, `numgen random mod ${s.endpoints.length} vmap { ${spread} }`);
    for (const e of s.endpoints) {
      // A pod that reaches itself through its Service: masquerade, or its reply would not come back here.
      chain(endpointChain(s, e), `${ipX} saddr ${e.ip} jump mark-for-masquerade`, `meta l4proto ${s.protocol} dnat to ${ep(e)}`);
    }
  }

  const baseOf = new Map(base);
  const lines = [
    // add + delete: the table goes whether or not it was there; then it is built in the same transaction
    `add table ${T}`,
    `delete table ${T}`,
    `add table ${T} { comment "rules for kube-proxy" ; }`,
  ];
  if (init.nodePortAddresses !== undefined) {
    lines.push(`add set ${T} nodeport-ips { type ${addr} ; comment "IPs that accept NodePort traffic" ; }`);
    if (init.nodePortAddresses.length > 0) lines.push(`add element ${T} nodeport-ips { ${init.nodePortAddresses.join(', ')} }`);
  }
  const maps: [string, string, string, string[]][] = [
    ['no-endpoint-services', `${addr} . inet_proto . inet_service : verdict`, 'vmap to drop or reject packets to services with no endpoints', noEndpoints],
    ['no-endpoint-nodeports', 'inet_proto . inet_service : verdict', 'vmap to drop or reject packets to service nodeports with no endpoints', noEndpointNodePorts],
    ['firewall-ips', `${addr} . inet_proto . inet_service : verdict`, 'destinations that are subject to LoadBalancerSourceRanges', []],
    ['service-ips', `${addr} . inet_proto . inet_service : verdict`, 'ClusterIP, ExternalIP and LoadBalancer IP traffic', serviceIps],
    ['service-nodeports', 'inet_proto . inet_service : verdict', 'NodePort traffic', nodePorts],
  ];
  // Chains first (the maps' verdicts name them), empty; then the maps; then rules and elements.
  for (const name of chains.keys()) {
    const b = baseOf.get(name);
    lines.push(b === undefined ? `add chain ${T} ${name}` : `add chain ${T} ${name} { ${b} ; policy accept ; }`);
  }
  for (const [name, type, comment] of maps) lines.push(`add map ${T} ${name} { type ${type} ; comment "${comment}" ; }`);
  for (const [name, rules] of chains) for (const r of rules) lines.push(`add rule ${T} ${name} ${r}`);
  for (const [name, , , elements] of maps) if (elements.length > 0) lines.push(`add element ${T} ${name} { ${elements.join(' , ')} }`);
  return `${lines.join('\n')}\n`;
}

/** Writes the ruleset into `node`'s namespace (replacing an earlier one). */
export async function applyKubeProxy(lab: Lab, node: LabNode, init: KubeProxyInit, services: readonly KubeServicePort[]): Promise<void> {
  await lab.exec(node.ns, ['nft', '-f', '-'], { input: kubeProxyScript(init, services), timeoutMs: 10_000 });
}
