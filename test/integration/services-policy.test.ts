/**
 * NetworkPolicy on traffic that reached a pod through a Service's ClusterIP (issue 17 with issue
 * 16's Services): three routers in Kubernetes mode (policy on by default, bridge netfilter on),
 * kube-proxy's nftables rules on every node (lab/kube-proxy.ts), pods with Pod objects in the fake
 * API server and a probe agent each (lab/netpol-lab.ts). kube-proxy DNATs in prerouting, before
 * the forward hook of table `inet weft-policy`: policy sees the backend pod as the destination.
 *
 *   namespace s     n1: s/p (app=self), s/q (app=web), s/ok (role=friend), s/bad
 *                   n2: s/r (app=web)
 *                   n3: s/ok3 (role=friend), s/bad3
 *   policies        deny-self: app=self, Ingress and Egress, no rule (default deny both ways)
 *                   web-from-friends: app=web, ingress from role=friend on TCP and UDP 80
 *   Services        10.96.0.20:80 → p (p's own: hairpin)   10.96.0.21:80 → q (on n1)
 *                   10.96.0.22:80 → r (on n2)              (each TCP and UDP)
 *
 * The pods route the Service range through their node's gateway, an address the test puts on the
 * node's bridge (10.40.i.1/16, in the lab node's namespace). A pod reaching its own ClusterIP is
 * DNATed back to itself: the forward hook sees saddr = daddr = p (kube-proxy's masquerade comes
 * after, in postrouting), which only the self set lets through p's default deny. The test shows
 * that set is what lets it through: with p's element taken out of the kernel's set, the same
 * hairpin is dropped (and counted by deny-self); the engine's check then puts the element back.
 * A denied probe must be *dropped* (timed out), never refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WeftCluster } from '../../lab/weft-cluster.js';
import { applyKubeProxy, type KubeServicePort } from '../../lab/kube-proxy.js';
import { PolicyLab, kubeObjectWriter, type KubeManifest, type ProbeKind, type ProbeResult } from '../../lab/netpol-lab.js';
import type { PolicyStatus } from '../../src/api/types.js';
import { POLICY_TABLE } from '../../src/policy/model.js';
import { until } from './helpers.js';

const isRoot = process.getuid?.() === 0;

const T80: ProbeKind = { proto: 'tcp', port: 80 };
const U80: ProbeKind = { proto: 'udp', port: 80 };
const KINDS = [T80, U80];
const SERVICE = { self: '10.96.0.20', local: '10.96.0.21', remote: '10.96.0.22' } as const;
const PLACEMENT: Record<string, [number, Record<string, string>]> = {
  p: [0, { app: 'self' }],
  q: [0, { app: 'web' }],
  ok: [0, { role: 'friend' }],
  bad: [0, {}],
  r: [1, { app: 'web' }],
  ok3: [2, { role: 'friend' }],
  bad3: [2, {}],
};

function np(name: string, spec: Record<string, unknown>): KubeManifest {
  return { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { namespace: 's', name }, spec };
}
const DENY_SELF = np('deny-self', { podSelector: { matchLabels: { app: 'self' } }, policyTypes: ['Ingress', 'Egress'] });
const WEB_FROM_FRIENDS = np('web-from-friends', {
  podSelector: { matchLabels: { app: 'web' } },
  policyTypes: ['Ingress'],
  ingress: [{ from: [{ podSelector: { matchLabels: { role: 'friend' } } }], ports: [{ protocol: 'TCP', port: 80 }, { protocol: 'UDP', port: 80 }] }],
});

type Want = 'allowed' | 'dropped';

// Between nodes, frames cross the kernel fast path (VXLAN; the underlay is trusted) or the sleeve
// (encrypted, through the router's TAP): both are ports of the bridge, both cross the forward hook.
describe.skipIf(!isRoot).each([
  ['the kernel fast path', 'auto', 'fastpath'],
  ['the sleeve', 'off', 'direct'],
] as const)('NetworkPolicy on Service traffic (ClusterIP to policed backends, hairpin through the self set), nodes joined by %s', (_, fastpath, path) => {
  let c: WeftCluster;
  let lab: PolicyLab;

  const policyOf = async (i: number): Promise<PolicyStatus> => ((await c.apiStatus(i)) as unknown as { policy: PolicyStatus }).policy;
  const name = (pod: string) => `s/${pod}`;
  /** The verdict of `from` → ClusterIP, and (allowed) that the expected backend answered. */
  const viaService = async (from: string, clusterIP: string, kind: ProbeKind, backend: string): Promise<ProbeResult> => {
    const r = await lab.probeAddress(name(from), clusterIP, kind);
    if (r.verdict === 'allowed' && r.peer !== name(backend)) return { verdict: 'error', error: `answered by ${String(r.peer)}, not ${name(backend)}` };
    return r;
  };
  /** Polls until every case has its verdict (policy reaches the nodes a little after the API), then probes all once more. */
  const expectCases = async (cases: [from: string, service: keyof typeof SERVICE, backend: string, want: Want][]) => {
    const run = () =>
      Promise.all(
        cases.flatMap(([from, svc, backend, want]) =>
          KINDS.map(async (k) => ({ row: `${from} -> ${svc} (${SERVICE[svc]}, backend ${backend}) ${k.proto}`, want, got: await viaService(from, SERVICE[svc], k, backend) })),
        ),
      );
    await until('every Service case has its verdict', async () => ((await run()).every((x) => x.got.verdict === x.want) ? true : undefined), 30_000).catch(() => undefined);
    const rows = await run();
    expect(rows.map((x) => `${x.row}: ${x.got.verdict}${x.got.error === undefined ? '' : ` (${x.got.error})`}`)).toEqual(rows.map((x) => `${x.row}: ${x.want}`));
  };

  beforeAll(async () => {
    c = await WeftCluster.start({
      nodes: 3,
      podsPerNode: 0,
      kubernetes: {},
      brNetfilter: true,
      extraArgs: ['--fastpath', fastpath, ...(fastpath === 'auto' ? ['--trusted-subnets', '198.18.0.0/24'] : []), '--log-level', 'info'],
    });
    await c.waitEstablished(60_000);
    await c.waitPaths(() => path);
    lab = await PolicyLab.start(c, kubeObjectWriter(c.kube!.control), {
      namespaces: [{ name: 's', labels: {} }],
      pods: Object.entries(PLACEMENT).map(([pod, [node, labels]]) => ({ namespace: 's', name: pod, node, labels, namedPorts: [] })),
      tcp: [80],
      udp: [80],
      echo: 7000,
    });
    // Each node's gateway on its bridge; the pods route the Service range through it.
    for (const [i, node] of c.lab.nodes.entries()) await c.lab.exec(node.ns, ['ip', 'addr', 'add', `10.40.${i + 1}.1/16`, 'dev', 'weft']);
    for (const p of lab.pods) await c.lab.exec(p.ns, ['ip', 'route', 'add', '10.96.0.0/16', 'via', `10.40.${p.node + 1}.1`]);
    const at = (pod: string) => [{ ip: lab.pod(name(pod)).ipv4, port: 80 }];
    const services: KubeServicePort[] = (['tcp', 'udp'] as const).flatMap((protocol) => [
      { namespace: 's', name: 'self', portName: protocol, protocol, clusterIP: SERVICE.self, port: 80, endpoints: at('p') },
      { namespace: 's', name: 'local', portName: protocol, protocol, clusterIP: SERVICE.local, port: 80, endpoints: at('q') },
      { namespace: 's', name: 'remote', portName: protocol, protocol, clusterIP: SERVICE.remote, port: 80, endpoints: at('r') },
    ]);
    for (const node of c.lab.nodes) await applyKubeProxy(c.lab, node, { family: 4, clusterCidr: '10.40.0.0/16' }, services);
  }, 180_000);

  afterAll(async () => {
    await c?.destroy();
  });

  it('without policy, every pod reaches every Service, its own included (the Services work in this lab)', async () => {
    await expectCases([
      ['p', 'self', 'p', 'allowed'],
      ['p', 'local', 'q', 'allowed'],
      ['p', 'remote', 'r', 'allowed'],
      ['bad', 'local', 'q', 'allowed'],
      ['bad3', 'remote', 'r', 'allowed'],
    ]);
  });

  it('with the policies in force: the backend’s policy decides on the DNATed traffic, on one node and across nodes; a pod under default deny still reaches itself through its Service', async () => {
    await lab.objects.put(DENY_SELF);
    await lab.objects.put(WEB_FROM_FRIENDS);
    await expectCases([
      // hairpin: p → its ClusterIP → p, through the self set
      ['p', 'self', 'p', 'allowed'],
      // p's default-deny egress applies to the same path when the backend is another pod
      ['p', 'local', 'q', 'dropped'],
      ['p', 'remote', 'r', 'dropped'],
      // ingress of q (n1) and r (n2): friends only, the client on the backend's node or not
      ['ok', 'local', 'q', 'allowed'],
      ['bad', 'local', 'q', 'dropped'],
      ['ok', 'remote', 'r', 'allowed'],
      ['bad', 'remote', 'r', 'dropped'],
      ['ok3', 'local', 'q', 'allowed'],
      ['bad3', 'local', 'q', 'dropped'],
      ['ok3', 'remote', 'r', 'allowed'],
      ['bad3', 'remote', 'r', 'dropped'],
      // no one reaches p (default deny ingress), through its Service either
      ['ok', 'self', 'p', 'dropped'],
      ['ok3', 'self', 'p', 'dropped'],
    ]);
    // Where they were dropped: web-from-friends on n1 (q) and n2 (r) counted drops.
    for (const i of [0, 1]) {
      const w = (await policyOf(i)).policies.find((x) => x.name === 'web-from-friends');
      expect(w?.dropped, `n${i + 1} web-from-friends dropped`).toBeGreaterThan(0);
      expect(w?.allowed, `n${i + 1} web-from-friends allowed`).toBeGreaterThan(0);
    }
  });

  it('the hairpin passes because of the self set: p’s element taken out of it, the hairpin is dropped and counted by deny-self; the engine puts it back', async () => {
    const n1 = c.lab.nodes[0]!;
    const p = lab.pod(name('p')).ipv4;
    const element = `{ ${p} . ${p} }`;
    const setNow = async () => (await c.lab.exec(n1.ns, ['nft', 'list', 'set', 'inet', POLICY_TABLE, 'self4'])).stdout;
    expect(await setNow()).toContain(`${p} . ${p}`);
    const denySelf = async () => (await policyOf(0)).policies.find((x) => x.name === 'deny-self')!;
    // The engine's 10 s check rewrites the table when its sets are not what it applied: a try it
    // overlapped (a full apply counted meanwhile) proves nothing either way and is made again.
    let seen: { verdict: string; droppedBefore: number; droppedAfter: number } | undefined;
    for (let attempt = 0; attempt < 5 && seen === undefined; attempt++) {
      const before = await policyOf(0);
      const droppedBefore = (await denySelf()).dropped;
      await c.lab.exec(n1.ns, ['nft', 'delete', 'element', 'inet', POLICY_TABLE, 'self4', element]);
      const r = await viaService('p', SERVICE.self, T80, 'p');
      const after = await policyOf(0);
      if (after.applies.full !== before.applies.full) continue;
      // Counters are read by status at most once per call: poll until deny-self's shows the drop.
      const droppedAfter = r.verdict === 'dropped' ? await until('deny-self counted the hairpin', async () => {
        const d = (await denySelf()).dropped;
        return d > droppedBefore ? d : undefined;
      }, 15_000).catch(() => droppedBefore) : droppedBefore;
      seen = { verdict: r.verdict, droppedBefore, droppedAfter };
    }
    expect(seen, 'every try overlapped a rewrite by the engine').toBeDefined();
    expect(seen!.verdict).toBe('dropped');
    expect(seen!.droppedAfter).toBeGreaterThan(seen!.droppedBefore);
    // The engine's check finds the set changed and rewrites it: the hairpin passes again.
    await until('the engine restored the self set', async () => ((await setNow()).includes(`${p} . ${p}`) ? true : undefined), 30_000);
    await expectCases([['p', 'self', 'p', 'allowed']]);
  });

  it('the paths between nodes stayed what this run is about, and no router reported a policy problem', async () => {
    for (let i = 0; i < 3; i++) {
      const pol = await policyOf(i);
      expect(pol.problem, `n${i + 1}`).toBeNull();
      expect(pol.source?.problems, `n${i + 1}`).toEqual([]);
      await c.expectPaths(i, Object.fromEntries([0, 1, 2].filter((k) => k !== i).map((k) => [`n${k + 1}`, path])), 'after the Service policy tests');
    }
  });
});
