/**
 * NetworkPolicy enforced by weft (issue 17), in one lab: three nodes whose routers run in
 * Kubernetes mode against the fake API server (policy is on there by default), bridge netfilter
 * on, and nine pods in three namespaces, three per node, each with a Pod object (labels,
 * spec.nodeName, status.podIPs, named container ports) and a probe agent serving TCP and UDP
 * (lab/netpol-lab.ts). Probes are real TCP connects and UDP request/answers.
 *
 *   namespace (labels)        pods (labels; node)
 *   x (team=a)                x/a (pod=a, role=server; n1)  x/b (pod=b; n1)  x/c (pod=c; n2)
 *   y (team=b)                y/a (pod=a, role=server; n1)  y/b (pod=b; n2)  y/c (pod=c; n3)
 *   z (team=b)                z/a (pod=a, role=server; n2)  z/b (pod=b; n3)  z/c (pod=c; n3)
 *
 * Every pod names its ports serve-80-tcp, serve-81-tcp, serve-80-udp, serve-81-udp, and `web`:
 * 8080/TCP on the b pods, 80/TCP on the others (so a named port resolves per destination pod).
 * Addresses: pod j on node i is 10.40.i.(100+j)/16 and fd00:40::i:(100+j in hex)/64.
 *
 * The table: each case puts its policies in the API (removing the previous case's others), waits
 * until every row holds (all ordered pairs of distinct pods × the case's probes, polled with a
 * deadline), then probes the whole matrix again and asserts it. A denied row must be *dropped*
 * (the probe times out: TCP 1.5 s, UDP answered within 1.5 s with a datagram every 200 ms), never
 * refused (no RST, no ICMP unreachable): weft drops, as the Kubernetes model expects. A pod to
 * itself is not probed (it never leaves the pod: always allowed).
 *
 * Then: a policy added and removed under running TCP connections (they keep flowing; new
 * connections follow the policy), and the router of n2 killed with SIGKILL: its rules stay in
 * force while it is down (the API changes meanwhile and n2 does not follow), and after restart
 * it reconciles them without resetting the counters of the policy that stayed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WeftCluster } from '../../lab/weft-cluster.js';
import { until } from './helpers.js';
import {
  PolicyLab,
  describeRows,
  kubeObjectWriter,
  mismatches,
  probeName,
  type KubeManifest,
  type MatrixRow,
  type PolicyLabPod,
  type ProbeKind,
} from '../../lab/netpol-lab.js';

const isRoot = process.getuid?.() === 0;

const T80: ProbeKind = { proto: 'tcp', port: 80 };
const T81: ProbeKind = { proto: 'tcp', port: 81 };
const T8080: ProbeKind = { proto: 'tcp', port: 8080 };
const U80: ProbeKind = { proto: 'udp', port: 80 };
const U81: ProbeKind = { proto: 'udp', port: 81 };
const T80v6: ProbeKind = { proto: 'tcp', port: 80, family: 6 };
const U80v6: ProbeKind = { proto: 'udp', port: 80, family: 6 };
const tcp = (port: number): ProbeKind => ({ proto: 'tcp', port });

const NAMESPACES = [
  { name: 'x', labels: { team: 'a' } },
  { name: 'y', labels: { team: 'b' } },
  { name: 'z', labels: { team: 'b' } },
];
const PLACEMENT: Record<string, number> = { 'x/a': 0, 'x/b': 0, 'y/a': 0, 'x/c': 1, 'y/b': 1, 'z/a': 1, 'y/c': 2, 'z/b': 2, 'z/c': 2 };
const webPort = (podName: string) => (podName === 'b' ? 8080 : 80);

function podSpecs() {
  return Object.entries(PLACEMENT).map(([key, node]) => {
    const [namespace, name] = key.split('/') as [string, string];
    return {
      namespace,
      name,
      node,
      labels: { pod: name, ...(name === 'a' ? { role: 'server' } : {}) },
      namedPorts: [
        { name: 'serve-80-tcp', port: 80, protocol: 'TCP' as const },
        { name: 'serve-81-tcp', port: 81, protocol: 'TCP' as const },
        { name: 'serve-80-udp', port: 80, protocol: 'UDP' as const },
        { name: 'serve-81-udp', port: 81, protocol: 'UDP' as const },
        { name: 'web', port: webPort(name), protocol: 'TCP' as const },
      ],
    };
  });
}

function np(namespace: string, name: string, spec: Record<string, unknown>): KubeManifest {
  return { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { namespace, name }, spec };
}
const labels = (l: Record<string, string>) => ({ matchLabels: l });
const ALL = {};

type P = PolicyLabPod;
interface Case {
  /** What the case is; its number is its place in the table (README's list of upstream cases refers to it). */
  title: string;
  policies: KubeManifest[];
  probes: ProbeKind[];
  /** True when the probe from `f` to `t` must be answered; false: dropped. */
  allowed: (f: P, t: P, k: ProbeKind) => boolean;
  /** Every row allowed (otherwise the case must have rows of both verdicts). */
  allAllowed?: true;
}

const v6 = (k: ProbeKind) => (k.family ?? 4) === 6;
const denyIngressX = np('x', 'deny-ingress', { podSelector: ALL, policyTypes: ['Ingress'] });
const aToBlock = np('x', 'a-to-block', { podSelector: labels({ pod: 'a' }), policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: '10.40.0.0/16', except: ['10.40.3.0/24'] } }] }] });
// policyTypes Egress: without it, a policy is an Ingress policy too (Kubernetes' defaulting), and
// would isolate x for ingress.
const egress80 = np('x', 'egress-80', { podSelector: ALL, policyTypes: ['Egress'], egress: [{ ports: [{ port: 'serve-80-tcp' }] }] });

/**
 * The table. Its order matters where a case keeps a policy of the one before (it then shows the
 * new policy adding to one already in force): 3 and 4 after 2, 19 after 18, 31 after 30.
 */
const TABLE: Case[] = [
  { title: 'no policy: everything allowed', policies: [], probes: [T80, U80, T80v6], allowed: () => true, allAllowed: true },
  { title: 'default deny ingress in x', policies: [denyIngressX], probes: [T80, U80, T80v6], allowed: (_f, t) => t.namespace !== 'x' },
  {
    title: 'default deny ingress + allow-all ingress in x add up to everything allowed (the deny kept from the case before)',
    policies: [denyIngressX, np('x', 'allow-all', { podSelector: ALL, ingress: [{}] })],
    probes: [T80, U80, T80v6],
    allowed: () => true,
    allAllowed: true,
  },
  {
    title: 'default deny ingress in x + allow from every pod of every namespace to x/a (both selectors empty): x/b, x/c stay isolated',
    policies: [denyIngressX, np('x', 'allow-all-to-a', { podSelector: labels({ pod: 'a' }), ingress: [{ from: [{ podSelector: ALL, namespaceSelector: ALL }] }] })],
    probes: [T80, U80],
    allowed: (_f, t) => t.namespace !== 'x' || t.name === 'a',
  },
  { title: 'default deny egress in x', policies: [np('x', 'deny-egress', { podSelector: ALL, policyTypes: ['Egress'] })], probes: [T80, U80, U80v6], allowed: (f) => f.namespace !== 'x' },
  {
    title: 'default deny ingress and egress in x',
    policies: [np('x', 'deny-all', { podSelector: ALL, policyTypes: ['Ingress', 'Egress'] })],
    probes: [T80, U80],
    allowed: (f, t) => f.namespace !== 'x' && t.namespace !== 'x',
  },
  {
    title: 'deny egress from x/a only (podSelector pod=a, no egress rule)',
    policies: [np('x', 'deny-egress-a', { podSelector: labels({ pod: 'a' }), policyTypes: ['Egress'] })],
    probes: [T80, U80],
    allowed: (f) => f.key !== 'x/a',
  },
  {
    title: 'ingress to x/a from pod=b of its own namespace only (y/b, z/b also pod=b: denied)',
    policies: [np('x', 'a-from-b', { podSelector: labels({ pod: 'a' }), ingress: [{ from: [{ podSelector: labels({ pod: 'b' }) }] }] })],
    probes: [T80, U80],
    allowed: (f, t) => t.key !== 'x/a' || f.key === 'x/b',
  },
  {
    title: 'ingress to x/a from namespaces team=b (namespaceSelector)',
    policies: [np('x', 'a-from-team-b', { podSelector: labels({ pod: 'a' }), ingress: [{ from: [{ namespaceSelector: labels({ team: 'b' }) }] }] })],
    probes: [T80, U80],
    allowed: (f, t) => t.key !== 'x/a' || f.namespace !== 'x',
  },
  {
    title: 'ingress to x/a from pod=b in namespaces team=b (namespaceSelector AND podSelector in one peer)',
    policies: [np('x', 'a-from-b-team-b', { podSelector: labels({ pod: 'a' }), ingress: [{ from: [{ namespaceSelector: labels({ team: 'b' }), podSelector: labels({ pod: 'b' }) }] }] })],
    probes: [T80, T80v6],
    allowed: (f, t) => t.key !== 'x/a' || (f.namespace !== 'x' && f.name === 'b'),
  },
  {
    title: 'ingress to x/a from namespace y OR pod=c of x (two peers)',
    policies: [
      np('x', 'a-from-y-or-c', {
        podSelector: labels({ pod: 'a' }),
        ingress: [{ from: [{ namespaceSelector: labels({ 'kubernetes.io/metadata.name': 'y' }) }, { podSelector: labels({ pod: 'c' }) }] }],
      }),
    ],
    probes: [T80],
    allowed: (f, t) => t.key !== 'x/a' || f.namespace === 'y' || f.key === 'x/c',
  },
  {
    title: 'matchExpressions: x pods with pod In (b,c) take ingress only from pods without a role label outside y (NotIn, DoesNotExist)',
    policies: [
      np('x', 'expressions', {
        podSelector: { matchExpressions: [{ key: 'pod', operator: 'In', values: ['b', 'c'] }] },
        ingress: [
          {
            from: [
              {
                namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['y'] }] },
                podSelector: { matchExpressions: [{ key: 'role', operator: 'DoesNotExist' }] },
              },
            ],
          },
        ],
      }),
    ],
    probes: [T80],
    allowed: (f, t) => t.namespace !== 'x' || t.name === 'a' || (f.namespace !== 'y' && f.name !== 'a'),
  },
  {
    title: 'ingress to x/a on TCP 81 only, from anywhere (UDP 81 denied)',
    policies: [np('x', 'a-tcp-81', { podSelector: labels({ pod: 'a' }), ingress: [{ ports: [{ protocol: 'TCP', port: 81 }] }] })],
    probes: [T80, T81, U81],
    allowed: (_f, t, k) => t.key !== 'x/a' || (k.proto === 'tcp' && k.port === 81),
  },
  {
    title: 'named port `web` for all of x: resolved on each destination pod (80 on x/a and x/c, 8080 on x/b)',
    policies: [np('x', 'web', { podSelector: ALL, ingress: [{ ports: [{ port: 'web' }] }] })],
    probes: [T80, T8080],
    allowed: (_f, t, k) => t.namespace !== 'x' || k.port === webPort(t.name),
  },
  {
    title: 'named UDP port serve-81-udp to x/a (UDP 80 and TCP 81 denied)',
    policies: [np('x', 'a-udp-81', { podSelector: labels({ pod: 'a' }), ingress: [{ ports: [{ protocol: 'UDP', port: 'serve-81-udp' }] }] })],
    probes: [U80, U81, T81],
    allowed: (_f, t, k) => t.key !== 'x/a' || (k.proto === 'udp' && k.port === 81),
  },
  {
    title: 'endPort: TCP 9000-9050 to x/a (8999 and 9051 denied)',
    policies: [np('x', 'a-range', { podSelector: labels({ pod: 'a' }), ingress: [{ ports: [{ protocol: 'TCP', port: 9000, endPort: 9050 }] }] })],
    probes: [tcp(8999), tcp(9000), tcp(9050), tcp(9051)],
    allowed: (_f, t, k) => t.key !== 'x/a' || (k.port >= 9000 && k.port <= 9050),
  },
  {
    title: 'ingress to x/a from ipBlock 10.40.0.0/16 except 10.40.2.0/24 (pods on n2 denied; IPv6 denied)',
    policies: [np('x', 'a-from-block', { podSelector: labels({ pod: 'a' }), ingress: [{ from: [{ ipBlock: { cidr: '10.40.0.0/16', except: ['10.40.2.0/24'] } }] }] })],
    probes: [T80, T80v6],
    allowed: (f, t, k) => t.key !== 'x/a' || (!v6(k) && f.node !== 1),
  },
  {
    title: 'egress from x/a to ipBlock 10.40.0.0/16 except 10.40.3.0/24 (pods on n3 denied; IPv6 denied)',
    policies: [aToBlock],
    probes: [T80, U80, T80v6],
    allowed: (f, t, k) => f.key !== 'x/a' || (!v6(k) && t.node !== 2),
  },
  {
    title: "an address in an ipBlock's except allowed by a second policy: x/a egress also to 10.40.3.101/32 (y/c)",
    policies: [aToBlock, np('x', 'a-to-yc', { podSelector: labels({ pod: 'a' }), policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: '10.40.3.101/32' } }] }] })],
    probes: [T80, U80],
    allowed: (f, t) => f.key !== 'x/a' || t.node !== 2 || t.key === 'y/c',
  },
  {
    title: 'IPv6 ipBlock: ingress to x/a from fd00:40::/64 except fd00:40::2:0/112 (pods on n2 denied; IPv4 denied)',
    policies: [np('x', 'a-from-block6', { podSelector: labels({ pod: 'a' }), ingress: [{ from: [{ ipBlock: { cidr: 'fd00:40::/64', except: ['fd00:40::2:0/112'] } }] }] })],
    probes: [T80, T80v6, U80v6],
    allowed: (f, t, k) => t.key !== 'x/a' || (v6(k) && f.node !== 1),
  },
  {
    title: 'egress from x/a to namespaces team=b on UDP 80 only',
    policies: [np('x', 'a-to-team-b-udp', { podSelector: labels({ pod: 'a' }), policyTypes: ['Egress'], egress: [{ to: [{ namespaceSelector: labels({ team: 'b' }) }], ports: [{ protocol: 'UDP', port: 80 }] }] })],
    probes: [T80, U80, U81],
    allowed: (f, t, k) => f.key !== 'x/a' || (t.namespace !== 'x' && k.proto === 'udp' && k.port === 80),
  },
  {
    title: 'ingress and egress in one policy on x/b: in from x only, out to y only',
    policies: [
      np('x', 'b-both', {
        podSelector: labels({ pod: 'b' }),
        policyTypes: ['Ingress', 'Egress'],
        ingress: [{ from: [{ podSelector: ALL }] }],
        egress: [{ to: [{ namespaceSelector: labels({ 'kubernetes.io/metadata.name': 'y' }) }] }],
      }),
    ],
    probes: [T80, U80],
    allowed: (f, t) => (t.key !== 'x/b' || f.namespace === 'x') && (f.key !== 'x/b' || t.namespace === 'y'),
  },
  {
    title: 'two policies on x/a add up: from x/b, and from namespace z',
    policies: [
      np('x', 'a-from-b', { podSelector: labels({ pod: 'a' }), ingress: [{ from: [{ podSelector: labels({ pod: 'b' }) }] }] }),
      np('x', 'a-from-z', { podSelector: labels({ pod: 'a' }), ingress: [{ from: [{ namespaceSelector: labels({ 'kubernetes.io/metadata.name': 'z' }) }] }] }),
    ],
    probes: [T80, U80],
    allowed: (f, t) => t.key !== 'x/a' || f.key === 'x/b' || f.namespace === 'z',
  },
  {
    title: 'a policy selects pods of its own namespace only: deny ingress to pod=a in y (x/a, z/a untouched)',
    policies: [np('y', 'deny-a', { podSelector: labels({ pod: 'a' }), policyTypes: ['Ingress'] })],
    probes: [T80],
    allowed: (_f, t) => t.key !== 'y/a',
  },
  {
    title: 'default deny egress in y plus egress to team=a on TCP 80',
    policies: [
      np('y', 'deny-egress', { podSelector: ALL, policyTypes: ['Egress'] }),
      np('y', 'to-team-a-80', { podSelector: ALL, policyTypes: ['Egress'], egress: [{ to: [{ namespaceSelector: labels({ team: 'a' }) }], ports: [{ protocol: 'TCP', port: 80 }] }] }),
    ],
    probes: [T80, T81, U80],
    allowed: (f, t, k) => f.namespace !== 'y' || (t.namespace === 'x' && k.proto === 'tcp' && k.port === 80),
  },
  {
    title: 'both ends must allow: y takes ingress from x only, and x denies its own egress',
    policies: [
      np('x', 'deny-egress', { podSelector: ALL, policyTypes: ['Egress'] }),
      np('y', 'from-x', { podSelector: ALL, ingress: [{ from: [{ namespaceSelector: labels({ team: 'a' }) }] }] }),
    ],
    probes: [T80, U80],
    allowed: (f, t) => f.namespace !== 'x' && t.namespace !== 'y',
  },
  {
    title: 'x takes ingress from its own namespace only (from: podSelector {})',
    policies: [np('x', 'from-own-ns', { podSelector: ALL, ingress: [{ from: [{ podSelector: ALL }] }] })],
    probes: [T80, U80],
    allowed: (f, t) => t.namespace !== 'x' || f.namespace === 'x',
  },
  {
    title: 'ingress to x/a from pods of every namespace (namespaceSelector {}) on TCP 80 (UDP denied)',
    policies: [np('x', 'a-from-all-ns', { podSelector: labels({ pod: 'a' }), ingress: [{ from: [{ namespaceSelector: ALL }], ports: [{ protocol: 'TCP', port: 80 }] }] })],
    probes: [T80, U80],
    allowed: (_f, t, k) => t.key !== 'x/a' || (k.proto === 'tcp' && k.port === 80),
  },
  {
    title: 'ingress to x/a on any TCP port (protocol without port): UDP denied',
    policies: [np('x', 'a-any-tcp', { podSelector: labels({ pod: 'a' }), ingress: [{ ports: [{ protocol: 'TCP' }] }] })],
    probes: [T80, T81, U80],
    allowed: (_f, t, k) => t.key !== 'x/a' || k.proto === 'tcp',
  },
  {
    title: 'egress from x on the named port serve-80-tcp only (TCP 81 denied)',
    policies: [egress80],
    probes: [T80, T81],
    allowed: (f, _t, k) => f.namespace !== 'x' || k.port === 80,
  },
  {
    title: 'egress allow-all added to the named-port egress policy before it: everything allowed',
    policies: [egress80, np('x', 'allow-egress', { podSelector: ALL, policyTypes: ['Egress'], egress: [{}] })],
    probes: [T80, T81],
    allowed: () => true,
    allAllowed: true,
  },
  {
    title: 'policyTypes defaulted: a policy on x/a with only an egress allow-all and no policyTypes isolates it for ingress too',
    policies: [np('x', 'a-egress-rules-only', { podSelector: labels({ pod: 'a' }), egress: [{}] })],
    probes: [T80, U80],
    allowed: (_f, t) => t.key !== 'x/a',
  },
  {
    title: 'SCTP is not TCP: default deny ingress in x plus SCTP 81 allowed to x/a; TCP 81 to x/a denied',
    policies: [denyIngressX, np('x', 'a-sctp-81', { podSelector: labels({ pod: 'a' }), ingress: [{ ports: [{ protocol: 'SCTP', port: 81 }] }] })],
    probes: [T81],
    allowed: (_f, t) => t.namespace !== 'x',
  },
  {
    title: 'a policy allowing only SCTP 80 still isolates x/a for TCP',
    policies: [np('x', 'a-sctp-80', { podSelector: labels({ pod: 'a' }), ingress: [{ ports: [{ protocol: 'SCTP', port: 80 }] }] })],
    probes: [T80, T81],
    allowed: (_f, t) => t.key !== 'x/a',
  },
];
const CASES = TABLE.map((c, i) => ({ ...c, name: `${i + 1} ${c.title}` }));

describe.skipIf(!isRoot)('NetworkPolicy: 3 nodes, 9 pods in 3 namespaces, real TCP and UDP', () => {
  let c: WeftCluster;
  let lab: PolicyLab;
  let inForce: KubeManifest[] = [];

  /** Puts `policies` in the API and removes every other NetworkPolicy the test put there. */
  const setPolicies = async (policies: KubeManifest[]) => {
    const want = new Set(policies.map((p) => `${p.metadata.namespace}/${p.metadata.name}`));
    for (const p of inForce) if (!want.has(`${p.metadata.namespace}/${p.metadata.name}`)) await lab.objects.remove('NetworkPolicy', p.metadata.namespace, p.metadata.name);
    for (const p of policies) await lab.objects.put(p);
    inForce = policies;
  };

  /** Probes the matrix until every row is as expected (deadline), and returns the last rows. */
  const settle = async (what: string, probes: ProbeKind[], allowed: Case['allowed'], timeoutMs = 60_000, pairs?: (f: P, t: P) => boolean): Promise<MatrixRow[]> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const rows = await lab.matrix(probes, allowed, pairs);
      const off = mismatches(rows);
      if (off.length === 0) return rows;
      if (Date.now() > deadline) throw new Error(`${what}: ${off.length} of ${rows.length} rows not as expected after ${timeoutMs} ms:\n${describeRows(off)}`);
    }
  };

  beforeAll(async () => {
    c = await WeftCluster.start({ nodes: 3, podsPerNode: 0, kubernetes: {}, brNetfilter: true, extraArgs: ['--log-level', 'info'] });
    await c.waitEstablished(60_000);
    lab = await PolicyLab.start(c, kubeObjectWriter(c.kube!.control), {
      namespaces: NAMESPACES,
      pods: podSpecs(),
      tcp: [80, 81, 8080, 8999, 9000, 9050, 9051],
      udp: [80, 81],
      echo: 7000,
    });
  }, 180_000);

  afterAll(async () => {
    await c?.destroy();
  });

  it('every router enforces policy without a flag (Kubernetes mode), its source synced and bridge netfilter set', async () => {
    for (let i = 0; i < 3; i++) {
      const p = await until(`n${i + 1} policy synced`, async () => {
        const s = ((await c.apiStatus(i)) as unknown as { policy?: PolicyStatusPart & { source: { synced: boolean } | null; bridgeNetfilter: string[] } }).policy;
        return s?.source?.synced === true ? s : undefined;
      }, 30_000);
      expect(p.enabled).toBe(true);
      expect(p.bridgeNetfilter).toEqual([]);
      expect(c.routers[i]!.args).not.toContain('--network-policy');
    }
  });

  it('the table has at least 20 cases, each changing the expected matrix of the one before (so a stale state cannot pass)', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(20);
    const pods = podSpecs().map((s) => ({ ...s, key: `${s.namespace}/${s.name}` })) as unknown as P[];
    const expected = (cs: Case, probes: ProbeKind[]) =>
      pods.flatMap((f) => pods.filter((t) => t !== f).flatMap((t) => probes.map((k) => `${f.key}>${t.key}>${probeName(k)}=${cs.allowed(f, t, k)}`))).join(',');
    for (let i = 1; i < CASES.length; i++) {
      const [prev, cur] = [CASES[i - 1]!, CASES[i]!];
      expect(expected(prev, cur.probes), `${cur.name} vs ${prev.name}`).not.toBe(expected(cur, cur.probes));
      // Every case has rows of both verdicts, except the all-allowed ones.
      const verdicts = new Set(expected(cur, cur.probes).split(',').map((s) => s.split('=')[1]));
      expect(verdicts, cur.name).toEqual(new Set(cur.allAllowed === true ? ['true'] : ['true', 'false']));
    }
  });

  for (const cs of CASES) {
    it(`case ${cs.name}`, async () => {
      await setPolicies(cs.policies);
      await settle(cs.name, cs.probes, cs.allowed);
      // Enforced: the whole matrix again, every row asserted (denied = dropped, not refused).
      const rows = await lab.matrix(cs.probes, cs.allowed);
      expect(rows.length).toBe(9 * 8 * cs.probes.length);
      expect(describeRows(mismatches(rows)), cs.name).toBe('');
      const byVerdict = new Map<string, number>();
      for (const r of rows) byVerdict.set(r.got, (byVerdict.get(r.got) ?? 0) + 1);
      expect(byVerdict.get('refused') ?? 0).toBe(0);
    }, 180_000);
  }

  it("updates in place: a Pod's labels, a Namespace's labels and a policy's spec change what is allowed", async () => {
    // x/a takes ingress from pod=b,pod2=updated (none yet) and from namespaces ns2=updated (none yet).
    const fromUpdatedPod = np('x', 'a-from-updated-pod', { podSelector: labels({ pod: 'a' }), ingress: [{ from: [{ podSelector: labels({ pod: 'b', pod2: 'updated' }) }] }] });
    const fromUpdatedNs = np('x', 'a-from-updated-ns', { podSelector: labels({ pod: 'a' }), ingress: [{ from: [{ namespaceSelector: labels({ ns2: 'updated' }) }] }] });
    const isolateTarget = np('z', 'deny-isolated', { podSelector: labels({ target: 'isolated' }), policyTypes: ['Ingress'] });
    await setPolicies([fromUpdatedPod, fromUpdatedNs, isolateTarget]);
    await settle('x/a isolated, nothing matches yet', [T80], (_f, t) => t.key !== 'x/a');
    const xb = { ...lab.pod('x/b').labels };
    const za = { ...lab.pod('z/a').labels };
    const ny = lab.namespaceLabelsOf('y');
    try {
      await lab.setPodLabels('x/b', { ...xb, pod2: 'updated' });
      await settle('x/b labelled pod2=updated reaches x/a', [T80], (f, t) => t.key !== 'x/a' || f.key === 'x/b');
      await lab.setNamespaceLabels('y', { ...ny, ns2: 'updated' });
      await settle('namespace y labelled ns2=updated reaches x/a', [T80], (f, t) => t.key !== 'x/a' || f.key === 'x/b' || f.namespace === 'y');
      // The pod-label policy updated to allow nobody: x/b loses x/a, y keeps it.
      await lab.objects.put(np('x', 'a-from-updated-pod', { podSelector: labels({ pod: 'a' }), policyTypes: ['Ingress'] }));
      await settle('policy updated in place', [T80], (f, t) => t.key !== 'x/a' || f.namespace === 'y');
      // z/a labelled target=isolated: the policy that selected nothing now isolates it.
      await lab.setPodLabels('z/a', { ...za, target: 'isolated' });
      const rows = await settle('z/a labelled target=isolated is isolated', [T80, U80], (f, t) => (t.key !== 'x/a' || f.namespace === 'y') && t.key !== 'z/a');
      expect(mismatches(rows)).toEqual([]);
    } finally {
      await lab.setPodLabels('x/b', xb);
      await lab.setPodLabels('z/a', za);
      await lab.setNamespaceLabels('y', ny);
    }
    await setPolicies([]);
    await settle('labels restored, no policy', [T80], () => true);
  }, 300_000);

  it('a policy added and then removed under running TCP connections: they keep flowing both times; new connections follow the policy', async () => {
    await setPolicies([]);
    await settle('no policy', [T80], () => true);
    // Across nodes (x/a on n1 to y/b on n2) and on one node (y/a to x/b, both on n1).
    await lab.hold('cross', 'x/a', 'y/b');
    await lab.hold('local', 'y/a', 'x/b');
    for (const [id, from] of [['cross', 'x/a'], ['local', 'y/a']] as const) expect(await lab.echo(id, from)).toEqual({ ok: true });
    const isolate = [
      np('y', 'deny-ingress', { podSelector: ALL, policyTypes: ['Ingress'] }),
      np('x', 'deny-ingress', { podSelector: ALL, policyTypes: ['Ingress'] }),
    ];
    await setPolicies(isolate);
    await settle('x and y isolated for ingress', [T80], (_f, t) => t.namespace === 'z');
    // New connections to the held ones' ports are dropped too...
    await expect(lab.hold('cross-new', 'x/a', 'y/b')).rejects.toThrow(/timed out/);
    // ...while the running ones keep flowing, both ways, several times.
    for (let k = 0; k < 3; k++) {
      for (const [id, from] of [['cross', 'x/a'], ['local', 'y/a']] as const) expect(await lab.echo(id, from), `${id} round ${k}`).toEqual({ ok: true });
    }
    await setPolicies([]);
    await settle('policies removed', [T80], () => true);
    for (const [id, from] of [['cross', 'x/a'], ['local', 'y/a']] as const) expect(await lab.echo(id, from), id).toEqual({ ok: true });
    await lab.hold('cross-new', 'x/a', 'y/b');
    expect(await lab.echo('cross-new', 'x/a')).toEqual({ ok: true });
    for (const [id, from] of [['cross', 'x/a'], ['local', 'y/a'], ['cross-new', 'x/a']] as const) await lab.release(id, from);
  }, 240_000);

  it("n2's router killed (SIGKILL): its rules stay in force while it is down and the API changes; restarted, it reconciles them and keeps the counters", async () => {
    const keep = np('y', 'deny-ingress', { podSelector: ALL, policyTypes: ['Ingress'] });
    const gone = np('z', 'deny-a', { podSelector: labels({ pod: 'a' }), policyTypes: ['Ingress'] });
    const added = np('x', 'deny-c', { podSelector: labels({ pod: 'c' }), policyTypes: ['Ingress'] });
    const addedN3 = np('z', 'deny-c', { podSelector: labels({ pod: 'c' }), policyTypes: ['Ingress'] });
    await setPolicies([keep, gone]);
    const before = (_f: P, t: P) => t.namespace !== 'y' && t.key !== 'z/a';
    await settle('before the kill', [T80], before);
    const n2 = 1;
    const keepCounters = async () => policyCounters(c, n2, 'y', 'deny-ingress');
    const countersBefore = await keepCounters();
    expect(countersBefore.dropped, 'dropped packets counted at n2 for y/deny-ingress').toBeGreaterThan(0);
    expect(countersBefore.selected).toEqual(['y/b']);

    const pid = c.routers[n2]!.process!.pid;
    await c.stopRouter(n2, 'SIGKILL');
    expect(processAlive(pid)).toBe(false);
    // The table stays in n2's kernel.
    const listed = await c.lab.exec(c.lab.nodes[n2]!.ns, ['nft', 'list', 'table', 'inet', 'weft-policy'], { check: false });
    expect(listed.code, listed.stderr).toBe(0);
    // The API changes while n2 is down: z/deny-a (for z/a, on n2) goes, x/deny-c (x/c, on n2) and
    // z/deny-c (z/c, on n3) come. n3 follows; n2 keeps what it had: y/b denied, z/a still denied,
    // x/c still allowed. Only pairs whose path does not cross n2's router are probed while it is
    // down (both pods on n2, on its bridge; or neither on n2), so a dropped cell is the policy's.
    await setPolicies([keep, added, addedN3]);
    const offN2 = (f: P, t: P) => (f.node === n2) === (t.node === n2);
    const whileDown = (_f: P, t: P) => t.namespace !== 'y' && t.key !== 'z/a' && t.key !== 'z/c';
    await settle('n3 follows the API while n2 is down', [T80, U80], whileDown, 60_000, offN2);
    const rowsDown = await lab.matrix([T80, U80], whileDown, offN2);
    expect(rowsDown.filter((r) => lab.pod(r.from).node === n2).length, 'rows on n2 alone').toBe(2 * 3 * 2);
    expect(describeRows(mismatches(rowsDown)), 'while n2 is down').toBe('');

    await c.startRouter(n2);
    // Right after the restart the kept policy still drops (on n2's bridge: the path is there).
    expect((await lab.probe('z/a', 'y/b', T80)).verdict).toBe('dropped');
    const after = (_f: P, t: P) => t.namespace !== 'y' && t.key !== 'x/c' && t.key !== 'z/c';
    await settle('n2 reconciled after restart', [T80], after);
    const rowsAfter = await lab.matrix([T80], after);
    expect(describeRows(mismatches(rowsAfter)), 'after n2 restarted').toBe('');
    // The kept policy's counters were not reset (the table was reconciled, not flushed).
    const countersAfter = await keepCounters();
    expect(countersAfter.dropped).toBeGreaterThan(countersBefore.dropped);
    expect(countersAfter.allowed).toBeGreaterThanOrEqual(countersBefore.allowed);
  }, 240_000);
});

/** The part of a router's status this test reads (StatusReport.policy, src/daemon/policy.ts). */
interface PolicyStatusPart {
  enabled: boolean;
  policies: { namespace: string; name: string; selected: string[]; allowed: number; dropped: number }[];
}

/** Router i's counters of policy `namespace/name` (packets of new connections it allowed, packets dropped at the pods it isolates). */
async function policyCounters(c: WeftCluster, i: number, namespace: string, name: string): Promise<{ allowed: number; dropped: number; selected: string[] }> {
  const s = (await c.apiStatus(i)) as unknown as { policy?: PolicyStatusPart };
  const p = s.policy?.policies.find((x) => x.namespace === namespace && x.name === name);
  if (p === undefined) throw new Error(`router n${i + 1} has no policy ${namespace}/${name} in force: ${JSON.stringify(s.policy?.policies.map((x) => `${x.namespace}/${x.name}`))}`);
  return { allowed: p.allowed, dropped: p.dropped, selected: p.selected };
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
