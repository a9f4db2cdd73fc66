/**
 * NetworkPolicy in standalone mode (issue 17): two routers WITHOUT Kubernetes mode, each started
 * with `--policy-file` (a file of its own in a temp dir), bridge netfilter on, IPAM on (a shared
 * range split between the two), and five pods made by the real CNI plugin (ADD with
 * K8S_POD_NAMESPACE and K8S_POD_NAME in CNI_ARGS, as the kubelet passes them), each with a probe
 * agent (lab/netpol-lab.ts):
 *
 *   namespace (labels)   pods (labels; node)
 *   x (team=a)           x/a (pod=a; n1)  x/b (pod=b; n1)  x/c (pod=c; n2)
 *   y (team=b)           y/a (pod=a; n1)  y/b (pod=b; n2)
 *
 * Each router's file holds the Namespaces, the NetworkPolicies and every Pod with its labels; a
 * pod on the router's own node WITHOUT addresses (the router must know them from the CNI ADD), a
 * pod on the other node with `status.podIPs` (a router in standalone mode has no other way to
 * know them). Files are replaced by a rename over them, as the README asks of a writer.
 *
 * The cases run in order, each changing the expected matrix of the one before: a default deny +
 * allow; the file rewritten; a bad document skipped (listed in the status); the file made
 * unparsable (the previous policies stay); n1's router stopped (its rules stay in force) and
 * restarted (its local pods known again from its attachments file). A denied cell must be
 * *dropped* (no answer), never refused.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callPlugin } from '../../lab/cni-node.js';
import { WeftCluster } from '../../lab/weft-cluster.js';
import {
  PolicyLab,
  describeRows,
  mismatches,
  type KubeManifest,
  type MatrixRow,
  type PolicyLabPod,
  type PolicyLabPodSpec,
  type PolicyObjectWriter,
  type ProbeKind,
} from '../../lab/netpol-lab.js';
import { installCni, type Installed } from '../../src/cni/install.js';
import { packageRoot } from '../../src/core/paths.js';
import { until } from './helpers.js';

const isRoot = process.getuid?.() === 0;
const cliPath = join(packageRoot(import.meta.url), 'dist', 'src', 'cli', 'main.js');

const T80: ProbeKind = { proto: 'tcp', port: 80 };
const U80: ProbeKind = { proto: 'udp', port: 80 };
const T80v6: ProbeKind = { proto: 'tcp', port: 80, family: 6 };
const PROBES = [T80, U80, T80v6];

const RANGE = '10.48.0.0/16';
const RANGE6 = 'fd00:48::/64';

const NAMESPACES = [
  { name: 'x', labels: { team: 'a' } },
  { name: 'y', labels: { team: 'b' } },
];
const PLACEMENT: Record<string, number> = { 'x/a': 0, 'x/b': 0, 'y/a': 0, 'x/c': 1, 'y/b': 1 };

function podSpecs(): PolicyLabPodSpec[] {
  return Object.entries(PLACEMENT).map(([key, node]) => {
    const [namespace, name] = key.split('/') as [string, string];
    return { namespace, name, node, labels: { pod: name }, namedPorts: [{ name: 'serve-80-tcp', port: 80, protocol: 'TCP' as const }] };
  });
}

function np(namespace: string, name: string, spec: Record<string, unknown>): KubeManifest {
  return { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { namespace, name }, spec };
}

type P = PolicyLabPod;
type Allowed = (f: P, t: P, k: ProbeKind) => boolean;

const denyX = np('x', 'deny-ingress', { podSelector: {}, policyTypes: ['Ingress'] });
/** x/a takes TCP 80 from the pods b and c of its own namespace (x/b on its node, x/c on n2). */
const allowBC = np('x', 'a-from-b-c', {
  podSelector: { matchLabels: { pod: 'a' } },
  ingress: [{ from: [{ podSelector: { matchExpressions: [{ key: 'pod', operator: 'In', values: ['b', 'c'] }] } }], ports: [{ protocol: 'TCP', port: 80 }] }],
});
const case1: Allowed = (f, t, k) => t.namespace !== 'x' || (t.key === 'x/a' && f.namespace === 'x' && k.proto === 'tcp');
/** Rewritten: x/a takes TCP and UDP 80 from namespace y only (team=b), by port name for TCP. */
const allowY = np('x', 'a-from-y', {
  podSelector: { matchLabels: { pod: 'a' } },
  ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'b' } } }], ports: [{ port: 'serve-80-tcp' }, { protocol: 'UDP', port: 80 }] }],
});
const case2: Allowed = (f, t) => t.namespace !== 'x' || (t.key === 'x/a' && f.namespace === 'y');
/** Added with a bad document: y/b may send nothing. */
const denyEgressYB = np('y', 'b-no-egress', { podSelector: { matchLabels: { pod: 'b' } }, policyTypes: ['Egress'] });
/** A bad document: were it taken, everything in x would be open on a port (70000 is no port). */
const badPort = np('x', 'bad-port', { podSelector: {}, ingress: [{ ports: [{ protocol: 'TCP', port: 70000 }] }] });
const case3: Allowed = (f, t, k) => case2(f, t, k) && f.key !== 'y/b';

/** The status section this test reads (StatusReport.policy). */
interface PolicyPart {
  enabled: boolean;
  source: { kind: string; where: string; synced: boolean; error: string | null; problems: { where: string; problem: string }[] } | null;
  policies: { namespace: string; name: string; selected: string[] }[];
  applies: { full: number; elements: number };
  lastApply: { kind: string; at: number } | null;
}

/**
 * Writes each router's policy file from the objects put: Namespaces and NetworkPolicies as they
 * are, Pods with their labels, with `status` (podIPs) only in the files of the other nodes. Every
 * write is a complete file renamed over the old one.
 */
class PolicyFiles implements PolicyObjectWriter {
  private readonly objects = new Map<string, KubeManifest>();
  /** Extra text appended to every file (a bad document, or garbage). */
  extra = '';

  readonly paths: string[];
  private readonly nodeOfPod: (key: string) => number;

  constructor(paths: string[], nodeOfPod: (key: string) => number) {
    this.paths = paths;
    this.nodeOfPod = nodeOfPod;
  }

  async put(obj: KubeManifest): Promise<void> {
    this.objects.set(keyOf(obj.kind, obj.metadata.namespace, obj.metadata.name), structuredClone(obj));
    this.write();
    await Promise.resolve();
  }

  async remove(kind: string, namespace: string | undefined, name: string): Promise<void> {
    this.objects.delete(keyOf(kind, namespace, name));
    this.write();
    await Promise.resolve();
  }

  text(node: number): string {
    const docs = [...this.objects.values()].map((o) => {
      if (o.kind !== 'Pod' || this.nodeOfPod(`${o.metadata.namespace}/${o.metadata.name}`) !== node) return o;
      const local: Record<string, unknown> = { ...o };
      delete local['status'];
      return local;
    });
    // JSON is YAML (flow style): one document each.
    return docs.map((d) => `---\n${JSON.stringify(d, null, 2)}\n`).join('') + this.extra;
  }

  write(): void {
    this.paths.forEach((path, node) => {
      const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
      writeFileSync(tmp, this.text(node));
      renameSync(tmp, path);
    });
  }
}

function keyOf(kind: string, namespace: string | undefined, name: string): string {
  return `${kind}/${namespace ?? ''}/${name}`;
}

describe.skipIf(!isRoot)('NetworkPolicy in standalone mode: 2 routers with --policy-file, pods made by the CNI plugin', () => {
  let c: WeftCluster;
  let lab: PolicyLab;
  let files: PolicyFiles;
  let dir: string;
  const plugins: Installed[] = [];
  let inForce: KubeManifest[] = [];

  const setPolicies = async (policies: KubeManifest[]) => {
    const want = new Set(policies.map((p) => `${p.metadata.namespace}/${p.metadata.name}`));
    for (const p of inForce) if (!want.has(`${p.metadata.namespace}/${p.metadata.name}`)) await files.remove('NetworkPolicy', p.metadata.namespace, p.metadata.name);
    for (const p of policies) await files.put(p);
    inForce = policies;
  };

  /** Probes until every row is as expected (deadline), then returns the rows of one more full probe. */
  const settle = async (what: string, allowed: Allowed, pairs?: (f: P, t: P) => boolean, timeoutMs = 60_000): Promise<MatrixRow[]> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const off = mismatches(await lab.matrix(PROBES, allowed, pairs));
      if (off.length === 0) break;
      if (Date.now() > deadline) throw new Error(`${what}: ${off.length} rows not as expected after ${timeoutMs} ms:\n${describeRows(off)}`);
    }
    return lab.matrix(PROBES, allowed, pairs);
  };

  const expectEnforced = async (what: string, allowed: Allowed, pairs?: (f: P, t: P) => boolean) => {
    const rows = await settle(what, allowed, pairs);
    expect(describeRows(mismatches(rows)), what).toBe('');
    // Both verdicts occur: a denied cell was seen dropped.
    expect(new Set(rows.map((r) => r.got)), what).toEqual(new Set(['allowed', 'dropped']));
    return rows;
  };

  const policyOf = async (i: number): Promise<PolicyPart> => {
    const p = ((await c.apiStatus(i)) as unknown as { policy?: PolicyPart }).policy;
    if (p === undefined) throw new Error(`n${i + 1} has no policy status`);
    return p;
  };

  /** `weft status policy [--json]` of router i, through the built CLI. */
  const cliPolicy = async (i: number, json: boolean): Promise<string> => {
    const r = c.routers[i]!;
    const res = await c.lab.exec(r.node.ns, [process.execPath, cliPath, 'status', 'policy', ...(json ? ['--json'] : []), '--socket', r.socket], { timeoutMs: 10_000 });
    return res.stdout;
  };

  let seq = 0;
  /** A pod through the real plugin: a netns, then ADD with the pod's identity in CNI_ARGS. */
  const cniPod = async (spec: PolicyLabPodSpec) => {
    // A lab name (n<node>p<j>), so the lab deletes it; the lab's own pods (none here) would be p1, p2...
    const { ns, nsPath } = await c.lab.addBareNamespace(`n${spec.node + 1}p${50 + ++seq}`);
    const installed = plugins[spec.node]!;
    const list = JSON.parse(readFileSync(installed.conflist, 'utf8')) as { cniVersion: string; name: string; plugins: Record<string, unknown>[] };
    const entry = list.plugins.find((p) => p.type === 'weft')!;
    const containerId = `np${seq}${randomBytes(8).toString('hex')}`;
    const res = await callPlugin(
      c.lab.nodes[spec.node]!.ns,
      installed.plugin,
      'ADD',
      {
        containerId,
        netns: nsPath,
        args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${spec.namespace};K8S_POD_NAME=${spec.name};K8S_POD_INFRA_CONTAINER_ID=${containerId}`,
        config: { ...entry, name: list.name, cniVersion: list.cniVersion },
      },
      join(dir, `cni-bin-n${spec.node + 1}`),
    );
    if (res.code !== 0 || res.json === undefined) throw new Error(`CNI ADD of ${spec.namespace}/${spec.name}: code ${String(res.code)}: ${res.stdout}${res.stderr}`);
    const ips = (res.json['ips'] as { address: string }[]).map((x) => x.address.split('/')[0]!);
    const ipv4 = ips.find((a) => !a.includes(':'));
    const ipv6 = ips.find((a) => a.includes(':'));
    if (ipv4 === undefined || ipv6 === undefined) throw new Error(`CNI ADD of ${spec.namespace}/${spec.name} gave ${ips.join(', ')}: want one IPv4 and one IPv6 address`);
    return { ns, ipv4, ipv6 };
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'weft-np-standalone-'));
    const paths = [0, 1].map((i) => join(dir, `policy-n${i + 1}.yaml`));
    files = new PolicyFiles(paths, (key) => PLACEMENT[key] ?? -1);
    // The namespaces only, at start: both routers sync on a file with no policy.
    for (const ns of NAMESPACES) await files.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns.name, labels: { ...ns.labels, 'kubernetes.io/metadata.name': ns.name } } });
    c = await WeftCluster.start({
      nodes: 2,
      podsPerNode: 0,
      brNetfilter: true,
      extraArgs: ['--ipam-range', RANGE, '--ipam-range6', RANGE6, '--ipam-init-peers', '2', '--log-level', 'info'],
      perNodeArgs: (i) => ['--policy-file', paths[i]!],
    });
    await c.waitEstablished(60_000);
    for (const i of [0, 1]) {
      await until(`n${i + 1} ready for pods`, async () => ((await c.api<{ ready: boolean }>(i, 'GET', '/v1/cni/network')).ready ? true : undefined), 60_000);
      const binDir = join(dir, `cni-bin-n${i + 1}`);
      const confDir = join(dir, `cni-conf-n${i + 1}`);
      mkdirSync(binDir, { recursive: true });
      mkdirSync(confDir, { recursive: true });
      plugins.push(installCni({ portmap: false, binDir, confDir, socket: c.routers[i]!.socket, journalDir: join(c.stateDir(i), 'pending-releases') }));
    }
    lab = await PolicyLab.start(c, files, { namespaces: NAMESPACES, pods: podSpecs(), tcp: [80], udp: [80], echo: 7000, makePod: cniPod });
  }, 240_000);

  afterAll(async () => {
    await c?.destroy();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('both routers enforce policy from their file (no flag but --policy-file), synced, bridge netfilter set; pods got addresses from CNI', async () => {
    for (const i of [0, 1]) {
      const p = await until(`n${i + 1} policy synced`, async () => {
        const s = await policyOf(i);
        return s.source?.synced === true ? s : undefined;
      });
      expect(p.enabled).toBe(true);
      expect(p.source?.kind).toBe('file');
      expect(p.source?.where).toContain(`policy-n${i + 1}.yaml`);
      expect(c.routers[i]!.args).not.toContain('--network-policy');
      expect(c.routers[i]!.args).not.toContain('--kubernetes');
    }
    for (const p of lab.pods) {
      expect(p.lab, p.key).toBeUndefined();
      expect(p.ipv4, p.key).toMatch(/^10\.48\./);
    }
    // The local pods' addresses are in no file of their own node: the router has them from CNI.
    expect(files.text(0)).not.toContain(lab.pod('x/a').ipv4);
    expect(files.text(0)).toContain(lab.pod('x/c').ipv4);
    // No policy: everything flows.
    const rows = await settle('no policy', () => true);
    expect(mismatches(rows)).toEqual([]);
  }, 120_000);

  it('(1) default deny ingress in x + an allow for x/a from pods b and c of x (TCP 80): enforced for the CNI-made pods', async () => {
    await setPolicies([denyX, allowBC]);
    await expectEnforced('deny x + allow x/a from b, c', case1);
  }, 180_000);

  it('(6) `weft status policy` lists the policies and the local pods each selects (text and --json)', async () => {
    const text1 = await cliPolicy(0, false);
    expect(text1).toMatch(/source file \(.*policy-n1\.yaml\), synced/);
    expect(text1).toMatch(/x\/deny-ingress {2}\[ingress\]/);
    expect(text1).toMatch(/x\/deny-ingress[^\n]*\n {4}selects: x\/a x\/b\n/);
    expect(text1).toMatch(/x\/a-from-b-c[^\n]*\n {4}selects: x\/a\n/);
    const text2 = await cliPolicy(1, false);
    expect(text2).toMatch(/x\/deny-ingress[^\n]*\n {4}selects: x\/c\n/);
    expect(text2).toMatch(/x\/a-from-b-c[^\n]*\n {4}selects: no pod on this node\n/);
    const json = JSON.parse(await cliPolicy(0, true)) as PolicyPart;
    const sel = Object.fromEntries(json.policies.map((p) => [`${p.namespace}/${p.name}`, [...p.selected].sort()]));
    expect(sel).toEqual({ 'x/deny-ingress': ['x/a', 'x/b'], 'x/a-from-b-c': ['x/a'] });
    expect(json.source?.problems).toEqual([]);
  }, 60_000);

  it('(2) the file rewritten (renamed over): the new policy is enforced, the old one is gone', async () => {
    await setPolicies([denyX, allowY]);
    await expectEnforced('x/a from namespace y only', case2);
    for (const i of [0, 1]) expect((await policyOf(i)).policies.map((p) => p.name).sort()).toEqual(['a-from-y', 'deny-ingress']);
  }, 180_000);

  it('(3) a bad document is skipped and listed in the status problems; the rest of the file is enforced', async () => {
    await setPolicies([denyX, allowY, badPort, denyEgressYB]);
    await expectEnforced('bad-port skipped, y/b egress denied', case3);
    for (const i of [0, 1]) {
      const p = await policyOf(i);
      expect(p.policies.map((x) => x.name).sort()).toEqual(['a-from-y', 'b-no-egress', 'deny-ingress']);
      expect(p.source?.error).toBeNull();
      expect(p.source?.problems.length).toBe(1);
      expect(p.source?.problems[0]!.where).toMatch(new RegExp(`policy-n${i + 1}\\.yaml.*NetworkPolicy x/bad-port`));
      expect(p.source?.problems[0]!.problem).toMatch(/70000/);
    }
    const json = JSON.parse(await cliPolicy(0, true)) as PolicyPart;
    expect(json.source?.problems.map((x) => x.where).join()).toContain('x/bad-port');
    expect(await cliPolicy(0, false)).toMatch(/skipped .*x\/bad-port.*70000/);
  }, 180_000);

  it('(4) the file made unparsable: the previous policies stay in force and the status names the error', async () => {
    const applied = await Promise.all([0, 1].map(async (i) => (await policyOf(i)).applies));
    // Garbage that is no YAML, after documents that alone would open everything.
    files.extra = '---\nkind: [unclosed\n  : : {\n';
    await setPolicies([]);
    for (const i of [0, 1]) {
      const p = await until(`n${i + 1} reports the file error`, async () => {
        const s = await policyOf(i);
        return s.source?.error != null ? s : undefined;
      });
      expect(p.source?.error).toMatch(/policy-n\d\.yaml/);
      expect(p.policies.map((x) => x.name).sort()).toEqual(['a-from-y', 'b-no-egress', 'deny-ingress']);
    }
    await expectEnforced('unparsable file: previous policies kept', case3);
    for (const i of [0, 1]) expect((await policyOf(i)).applies.full, `n${i + 1} rewrote its table`).toBe(applied[i]!.full);
    // Repaired: the file as it was in case (3).
    files.extra = '';
    await setPolicies([denyX, allowY, badPort, denyEgressYB]);
    for (const i of [0, 1]) await until(`n${i + 1} reads the repaired file`, async () => ((await policyOf(i)).source?.error === null ? true : undefined));
    await expectEnforced('repaired file', case3);
  }, 240_000);

  it("(5) n1's router stopped: its rules stay in force while it is down; restarted, it knows its CNI pods again (attachments file) and enforces the same", async () => {
    const n1 = 0;
    const attachments = JSON.parse(readFileSync(join(c.stateDir(n1), 'policy-pods.json'), 'utf8')) as { pods: { namespace: string; name: string }[] };
    expect(attachments.pods.map((p) => `${p.namespace}/${p.name}`).sort()).toEqual(['x/a', 'x/b', 'y/a']);
    await c.stopRouter(n1);
    // While it is down, pods on n1 talk over its bridge (no router in the path): its table judges.
    const onN1 = (f: P, t: P) => f.node === n1 && t.node === n1;
    const rowsDown = await expectEnforced('n1 down', case3, onN1);
    expect(rowsDown.length).toBe(3 * 2 * PROBES.length);
    await c.startRouter(n1);
    const p = await until('n1 synced and applied after restart', async () => {
      const s = await policyOf(n1);
      return s.source?.synced === true && s.lastApply !== null ? s : undefined;
    }, 60_000);
    const sel = Object.fromEntries(p.policies.map((x) => [x.name, [...x.selected].sort()]));
    expect(sel).toEqual({ 'deny-ingress': ['x/a', 'x/b'], 'a-from-y': ['x/a'], 'b-no-egress': [] });
    await c.waitEstablished(60_000);
    await expectEnforced('n1 restarted', case3);
  }, 240_000);
});
