/**
 * The Kubernetes objects of the policy suite (pure: no lab, no I/O), so their shape and counts are
 * unit-tested: the bench namespace with the lab's real pods, the deny policy whose enforcement is
 * timed, and the load (100 NetworkPolicies selecting 1,000 Pods, most of them Pod objects only,
 * with addresses in the lab's pod range 10.40.0.0/16 and fd00:40::/64 that no real pod uses).
 */

export type KubeObjectLike = Record<string, unknown> & { kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> } };

/** The namespace of the real pods: targets (p1 on each node) and clients (p2). */
export const BENCH_NAMESPACE = 'weft-bench';
export const DENY_POLICY = 'bench-deny-targets';
/** The one load policy that lets the clients reach the targets (every port and protocol). */
export const ALLOW_CLIENTS_POLICY = 'load-allow-clients';

export function namespaceObject(name: string, labels: Record<string, string>): KubeObjectLike {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { 'kubernetes.io/metadata.name': name, ...labels } } };
}

export interface PodObjectInit {
  namespace: string;
  name: string;
  node: string;
  labels: Record<string, string>;
  ipv4: string;
  ipv6: string | undefined;
}

/** A running Pod as the API server has it after the kubelet reported its addresses. */
export function podObject(p: PodObjectInit): KubeObjectLike {
  const ips = [p.ipv4, ...(p.ipv6 === undefined ? [] : [p.ipv6])];
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: p.name, namespace: p.namespace, labels: p.labels },
    spec: {
      nodeName: p.node,
      containers: [{ name: 'main', image: 'weft.lab/busybox:1', ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }, { name: 'dns', containerPort: 53, protocol: 'UDP' }] }],
    },
    status: { phase: 'Running', podIP: p.ipv4, podIPs: ips.map((ip) => ({ ip })) },
  };
}

/** The policy timed in the enforcement runs: ingress isolation of the targets, nothing allowed. */
export function denyTargetsPolicy(): KubeObjectLike {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: DENY_POLICY, namespace: BENCH_NAMESPACE },
    spec: { podSelector: { matchLabels: { role: 'target' } }, policyTypes: ['Ingress'] },
  };
}

export interface LoadSpec {
  /** Namespaces of Pod objects only (default 10). */
  namespaces: number;
  /** Pod objects per namespace (default 100). */
  podsPerNamespace: number;
  /** Policies per load namespace (default 9); with the 10 on the targets, 100 in all by default. */
  policiesPerNamespace: number;
  /** Policies selecting the real targets in the bench namespace (default 10; the first allows the clients). */
  targetPolicies: number;
  /** Node names the Pod objects are spread over, round robin. */
  nodes: string[];
}

export const DEFAULT_LOAD: Omit<LoadSpec, 'nodes'> = { namespaces: 10, podsPerNamespace: 100, policiesPerNamespace: 9, targetPolicies: 10 };

export interface Load {
  namespaces: KubeObjectLike[];
  pods: KubeObjectLike[];
  policies: KubeObjectLike[];
  /** Pod objects selected by at least one load policy (`namespace/name`). */
  selected: Set<string>;
}

export const APPS = 10;

/** Pod objects' addresses: 10.40.100.1 up, 250 per /24 (the lab's real pods are 10.40.N.2-9 with N ≤ 9). */
export function loadPodAddress(k: number): { ipv4: string; ipv6: string } {
  const third = 100 + Math.floor(k / 250);
  const fourth = (k % 250) + 1;
  if (third > 255) throw new RangeError(`load pod ${k}: beyond 10.40.255.250`);
  return { ipv4: `10.40.${third}.${fourth}`, ipv6: `fd00:40::${third.toString(16)}:${fourth.toString(16)}` };
}

/**
 * The load: `namespaces` namespaces `weft-load-M` (label team tM%3) of `podsPerNamespace` Pod
 * objects (label app aK%10) spread over `nodes`; in each, `policiesPerNamespace` policies, policy
 * q selecting app aq (the last one, with matchExpressions, every app from aq up), with ingress
 * from pods of the next app (podSelector and namespaceSelector), on a numeric port, a named port
 * and a range, and every third one with egress to an ipBlock with except. In the bench namespace,
 * `targetPolicies` policies select the targets: the first allows the clients (every port), the
 * others allow other peers only, on ports.
 */
export function loadObjects(spec: LoadSpec): Load {
  const namespaces: KubeObjectLike[] = [];
  const pods: KubeObjectLike[] = [];
  const policies: KubeObjectLike[] = [];
  const selected = new Set<string>();
  let k = 0;
  for (let m = 0; m < spec.namespaces; m++) {
    const ns = `weft-load-${m}`;
    namespaces.push(namespaceObject(ns, { team: `t${m % 3}` }));
    const appsSelected = new Set<number>();
    for (let q = 0; q < spec.policiesPerNamespace; q++) {
      const last = q === spec.policiesPerNamespace - 1;
      const apps = last ? Array.from({ length: APPS - q }, (_, i) => q + i) : [q];
      for (const a of apps) appsSelected.add(a);
      const podSelector = last
        ? { matchExpressions: [{ key: 'app', operator: 'In', values: apps.map((a) => `a${a}`) }] }
        : { matchLabels: { app: `a${q}` } };
      const egress = q % 3 === 0;
      policies.push({
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: { name: `load-${q}`, namespace: ns },
        spec: {
          podSelector,
          policyTypes: egress ? ['Ingress', 'Egress'] : ['Ingress'],
          ingress: [
            {
              from: [
                { podSelector: { matchLabels: { app: `a${(q + 1) % APPS}` } } },
                { namespaceSelector: { matchLabels: { team: `t${(m + 1) % 3}` } }, podSelector: { matchExpressions: [{ key: 'app', operator: 'Exists' }] } },
              ],
              ports: [
                { protocol: 'TCP', port: 80 + q },
                { protocol: 'TCP', port: 'http' },
                { protocol: 'UDP', port: 'dns' },
                { protocol: 'TCP', port: 30000 + q * 10, endPort: 30009 + q * 10 },
              ],
            },
          ],
          ...(egress
            ? { egress: [{ to: [{ ipBlock: { cidr: '10.0.0.0/8', except: [`10.40.${200 + m}.0/24`] } }], ports: [{ protocol: 'TCP', port: 443 }] }] }
            : {}),
        },
      });
    }
    for (let j = 0; j < spec.podsPerNamespace; j++, k++) {
      const app = j % APPS;
      const name = `fake-${j}`;
      const a = loadPodAddress(k);
      pods.push(podObject({ namespace: ns, name, node: spec.nodes[k % spec.nodes.length]!, labels: { app: `a${app}` }, ipv4: a.ipv4, ipv6: a.ipv6 }));
      if (appsSelected.has(app)) selected.add(`${ns}/${name}`);
    }
  }
  for (let q = 0; q < spec.targetPolicies; q++) {
    policies.push({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: q === 0 ? ALLOW_CLIENTS_POLICY : `load-targets-${q}`, namespace: BENCH_NAMESPACE },
      spec: {
        podSelector: { matchLabels: { role: 'target' } },
        policyTypes: ['Ingress'],
        ingress:
          q === 0
            ? [{ from: [{ podSelector: { matchLabels: { role: 'client' } } }] }]
            : [{ from: [{ podSelector: { matchLabels: { peer: `p${q}` } } }, { ipBlock: { cidr: `192.0.2.${q * 8}/29` } }], ports: [{ protocol: 'TCP', port: 9000 + q }] }],
      },
    });
  }
  return { namespaces, pods, policies, selected };
}
