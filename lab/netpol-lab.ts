/**
 * A NetworkPolicy lab on a WeftCluster (Kubernetes mode, or standalone with `makePod` and a
 * writer of policy files): pods in several namespaces, each with
 * labels, named container ports, an IPv4 and an IPv6 address, a Pod object in the fake API server
 * (spec.nodeName, status.podIPs, containers[].ports) and a probe agent (probe-agent-main.ts)
 * serving TCP and UDP on a few ports; Namespace objects with labels; and probes between pods,
 * one by one or as a whole matrix (every ordered pair of distinct pods, for each probe kind).
 *
 * The agents are driven over Unix sockets in the cluster's directory (a pathname socket is
 * reachable from any network namespace), so a probe costs a socket connect, not a process.
 */
import { connect } from 'node:net';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../src/core/paths.js';
import { LabError } from './errors.js';
import type { LabPod } from './lab.js';
import type { LabProcess } from './lab-process.js';
import type { KubeApiControl } from './kube-api-control.js';
import { podAddress, type WeftCluster } from './weft-cluster.js';

const agentMain = join(packageRoot(import.meta.url), 'dist', 'lab', 'probe-agent-main.js');

/** allowed: the server answered; dropped: nothing came back before the timeout; refused: a RST or ICMP unreachable. */
export type ProbeVerdict = 'allowed' | 'dropped' | 'refused' | 'error';

export interface ProbeKind {
  proto: 'tcp' | 'udp';
  port: number;
  /** Default 4. */
  family?: 4 | 6;
}

export interface ProbeResult {
  verdict: ProbeVerdict;
  /** The name the server answered with (allowed only). */
  peer?: string;
  error?: string;
}

export interface NamedContainerPort {
  name: string;
  port: number;
  protocol: 'TCP' | 'UDP';
}

export interface PolicyLabPodSpec {
  namespace: string;
  name: string;
  /** 0-based node index. */
  node: number;
  labels: Record<string, string>;
  namedPorts: NamedContainerPort[];
}

export interface PolicyLabInit {
  namespaces: { name: string; labels: Record<string, string> }[];
  pods: PolicyLabPodSpec[];
  /** Ports every agent serves. */
  tcp: number[];
  udp: number[];
  /** The agents' echo port for long-lived connections (`hold`). */
  echo: number;
  /**
   * Makes a pod's network namespace and addresses some other way than the lab's static veth (e.g.
   * a real CNI ADD); default: `lab.addPod` with pod j on node i at 10.40.i.(100+j).
   */
  makePod?: (spec: PolicyLabPodSpec) => Promise<PolicyLabPodNetwork>;
}

/** A pod's network: its namespace (where its agent runs) and addresses (without prefix length). */
export interface PolicyLabPodNetwork {
  ns: string;
  ipv4: string;
  ipv6: string;
}

/** One Kubernetes object as the API holds it (apiVersion, kind, metadata, spec, status). */
export type KubeManifest = Record<string, unknown> & { kind: string; metadata: { name: string; namespace?: string } & Record<string, unknown> };

/**
 * How the lab writes Pods, Namespaces and NetworkPolicies into the API server (the fake API
 * server's control socket): create or replace, and delete.
 */
export interface PolicyObjectWriter {
  put(obj: KubeManifest): Promise<void>;
  remove(kind: string, namespace: string | undefined, name: string): Promise<void>;
}

export interface PolicyLabPod extends PolicyLabPodSpec {
  /** `namespace/name`. */
  key: string;
  /** The lab's pod, when the lab made it (not with `makePod`). */
  lab: LabPod | undefined;
  /** Its network namespace. */
  ns: string;
  ipv4: string;
  ipv6: string;
  control: string;
  agent: LabProcess;
}

/** One row of a matrix: a probe from one pod to another, what was expected and what was seen. */
export interface MatrixRow {
  from: string;
  to: string;
  probe: ProbeKind;
  want: 'allowed' | 'dropped';
  got: ProbeVerdict;
  detail?: string;
}

export function probeName(p: ProbeKind): string {
  return `${p.proto}/${p.port}${(p.family ?? 4) === 6 ? '/v6' : ''}`;
}

export class PolicyLab {
  readonly cluster: WeftCluster;
  readonly objects: PolicyObjectWriter;
  readonly pods: PolicyLabPod[];
  readonly echoPort: number;
  private readonly namespaceLabels: Map<string, Record<string, string>>;

  private constructor(cluster: WeftCluster, objects: PolicyObjectWriter, pods: PolicyLabPod[], echoPort: number, namespaces: PolicyLabInit['namespaces']) {
    this.cluster = cluster;
    this.objects = objects;
    this.pods = pods;
    this.echoPort = echoPort;
    this.namespaceLabels = new Map(namespaces.map((n) => [n.name, { ...n.labels }]));
  }

  /** Adds the pods (network namespaces, agents) and writes the Namespace and Pod objects. */
  static async start(cluster: WeftCluster, objects: PolicyObjectWriter, init: PolicyLabInit): Promise<PolicyLab> {
    for (const ns of init.namespaces) await objects.put(namespaceManifest(ns.name, ns.labels));
    const perNode = new Map<number, number>();
    const pods: PolicyLabPod[] = [];
    for (const spec of init.pods) {
      let lab: LabPod | undefined;
      let net: PolicyLabPodNetwork;
      if (init.makePod !== undefined) {
        net = await init.makePod(spec);
      } else {
        const j = (perNode.get(spec.node) ?? 0) + 1;
        perNode.set(spec.node, j);
        const a = podAddress(spec.node + 1, 100 + j);
        lab = await cluster.lab.addPod(cluster.lab.nodes[spec.node]!, { name: `${spec.namespace}-${spec.name}`, ipv4: `${a.ipv4}/16`, ipv6: `${a.ipv6}/64`, mac: a.mac, mtu: cluster.overlayMtu });
        net = { ns: lab.ns, ipv4: a.ipv4, ipv6: a.ipv6 };
      }
      const control = join(cluster.dir, `agent-${spec.namespace}-${spec.name}.sock`);
      const key = `${spec.namespace}/${spec.name}`;
      const agent = cluster.lab.spawn(net.ns, [
        process.execPath, agentMain, '--name', key, '--control', control, '--tcp', init.tcp.join(','), '--udp', init.udp.join(','), '--echo', String(init.echo),
      ]);
      pods.push({ ...spec, key, lab, ns: net.ns, ipv4: net.ipv4, ipv6: net.ipv6, control, agent });
    }
    for (const p of pods) await waitReady(p);
    for (const p of pods) await objects.put(podManifest(p, cluster.lab.nodes[p.node]!.name));
    return new PolicyLab(cluster, objects, pods, init.echo, init.namespaces);
  }

  /** Replaces a pod's labels in its Pod object (as `kubectl label --overwrite` would). */
  async setPodLabels(key: string, labels: Record<string, string>): Promise<void> {
    const p = this.pod(key);
    p.labels = { ...labels };
    await this.objects.put(podManifest(p, this.cluster.lab.nodes[p.node]!.name));
  }

  /** Replaces a namespace's labels (kubernetes.io/metadata.name is always kept, as the API server does). */
  async setNamespaceLabels(name: string, labels: Record<string, string>): Promise<void> {
    if (!this.namespaceLabels.has(name)) throw new LabError(`no namespace ${name} in the policy lab`);
    this.namespaceLabels.set(name, { ...labels });
    await this.objects.put(namespaceManifest(name, labels));
  }

  namespaceLabelsOf(name: string): Record<string, string> {
    return { ...(this.namespaceLabels.get(name) ?? {}) };
  }

  pod(key: string): PolicyLabPod {
    const p = this.pods.find((x) => x.key === key);
    if (p === undefined) throw new LabError(`no pod ${key} in the policy lab (it has ${this.pods.map((x) => x.key).join(', ')})`);
    return p;
  }

  /** One probe from `from` to `to`'s address of the probe's family. */
  async probe(from: string, to: string, kind: ProbeKind, timeoutMs = 1500): Promise<ProbeResult> {
    const src = this.pod(from);
    const dst = this.pod(to);
    const host = (kind.family ?? 4) === 6 ? dst.ipv6 : dst.ipv4;
    const r = (await agentCall(src.control, { op: 'probe', host, port: kind.port, proto: kind.proto, timeoutMs }, timeoutMs + 5000)) as unknown as ProbeResult;
    if (r.verdict === 'allowed' && r.peer !== to) return { verdict: 'error', error: `answered by ${String(r.peer)}, not ${to}` };
    return r;
  }

  /**
   * One probe from `from` to any address (a Service's ClusterIP, say): the result as the agent saw
   * it, `peer` being the name of the pod that answered (not checked against anything).
   */
  async probeAddress(from: string, host: string, kind: Omit<ProbeKind, 'family'>, timeoutMs = 1500): Promise<ProbeResult> {
    return (await agentCall(this.pod(from).control, { op: 'probe', host, port: kind.port, proto: kind.proto, timeoutMs }, timeoutMs + 5000)) as unknown as ProbeResult;
  }

  /**
   * Probes every ordered pair of distinct pods (those `pairs` keeps) with every kind, all at once,
   * and returns the rows with what `expect` says (true: allowed, false: dropped).
   */
  async matrix(
    kinds: ProbeKind[],
    expect: (from: PolicyLabPod, to: PolicyLabPod, kind: ProbeKind) => boolean,
    pairs: (from: PolicyLabPod, to: PolicyLabPod) => boolean = () => true,
  ): Promise<MatrixRow[]> {
    const jobs: Promise<MatrixRow>[] = [];
    for (const kind of kinds) {
      for (const a of this.pods) {
        for (const b of this.pods) {
          if (a === b || !pairs(a, b)) continue;
          const want = expect(a, b, kind) ? 'allowed' : 'dropped';
          jobs.push(
            this.probe(a.key, b.key, kind).then(
              (r) => ({ from: a.key, to: b.key, probe: kind, want, got: r.verdict, ...(r.error === undefined ? {} : { detail: r.error }) }),
              (err: unknown) => ({ from: a.key, to: b.key, probe: kind, want, got: 'error' as const, detail: String(err) }),
            ),
          );
        }
      }
    }
    return Promise.all(jobs);
  }

  /** Opens a TCP connection from `from` to `to`'s echo port and keeps it (id names it). */
  async hold(id: string, from: string, to: string): Promise<void> {
    const r = await agentCall(this.pod(from).control, { op: 'hold', id, host: this.pod(to).ipv4, port: this.echoPort, timeoutMs: 3000 }, 8000);
    if (r['ok'] !== true) throw new LabError(`holding a connection ${from} -> ${to}: ${String(r['error'])}`);
  }

  /** True when a line sent over the held connection came back within the timeout. */
  async echo(id: string, from: string, timeoutMs = 3000): Promise<{ ok: boolean; error?: string }> {
    const r = await agentCall(this.pod(from).control, { op: 'echo', id, timeoutMs }, timeoutMs + 5000);
    return r['ok'] === true ? { ok: true } : { ok: false, error: String(r['error']) };
  }

  async release(id: string, from: string): Promise<void> {
    await agentCall(this.pod(from).control, { op: 'release', id }, 5000);
  }
}

/** The rows whose verdict is not the expected one (dropped wanted: exactly 'dropped', not refused). */
export function mismatches(rows: MatrixRow[]): MatrixRow[] {
  return rows.filter((r) => r.got !== r.want);
}

/** A short text of mismatched rows for an assertion message. */
export function describeRows(rows: MatrixRow[], limit = 20): string {
  const lines = rows.slice(0, limit).map((r) => `${r.from} -> ${r.to} ${probeName(r.probe)}: want ${r.want}, got ${r.got}${r.detail === undefined ? '' : ` (${r.detail})`}`);
  if (rows.length > limit) lines.push(`... and ${rows.length - limit} more`);
  return lines.join('\n');
}

function namespaceManifest(name: string, labels: Record<string, string>): KubeManifest {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { ...labels, 'kubernetes.io/metadata.name': name } } };
}

function podManifest(p: PolicyLabPod, nodeName: string): KubeManifest {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: p.name, namespace: p.namespace, labels: p.labels },
    spec: {
      nodeName,
      containers: [{ name: 'agent', image: 'weft-lab/probe-agent', ports: p.namedPorts.map((n) => ({ name: n.name, containerPort: n.port, protocol: n.protocol })) }],
    },
    status: { phase: 'Running', podIP: p.ipv4, podIPs: [{ ip: p.ipv4 }, { ip: p.ipv6 }] },
  };
}

async function waitReady(p: PolicyLabPod): Promise<void> {
  const deadline = Date.now() + 15_000;
  let exited = false;
  void p.agent.exited.then(() => (exited = true));
  while (!(p.agent.stderrText().includes('ready') && existsSync(p.control))) {
    if (exited) throw new LabError(`probe agent of ${p.key} exited: ${p.agent.stderrText().trim()}`);
    if (Date.now() > deadline) throw new LabError(`probe agent of ${p.key} not ready after 15 s: ${p.agent.stderrText().trim()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** One request to an agent's control socket, one JSON answer. */
function agentCall(socket: string, req: Record<string, unknown>, timeoutMs: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const c = connect(socket);
    let buf = '';
    const timer = setTimeout(() => {
      c.destroy();
      reject(new LabError(`probe agent ${socket}: no answer to ${String(req['op'])} within ${timeoutMs} ms`));
    }, timeoutMs);
    c.setEncoding('utf8');
    c.on('connect', () => c.write(`${JSON.stringify(req)}\n`));
    c.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      c.destroy();
      try {
        resolve(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
      } catch (err) {
        reject(new LabError(`probe agent ${socket}: unreadable answer ${buf.slice(0, nl)}`, { cause: err }));
      }
    });
    c.on('error', (err) => {
      clearTimeout(timer);
      reject(new LabError(`probe agent ${socket}: ${err.message}`, { cause: err }));
    });
  });
}

/** The fake API server's control calls for any kind of object (lab/kube-api-control.ts). */
interface ObjectControl {
  getObject(kind: string, name: string, namespace?: string): Promise<object | undefined>;
  createObject(kind: string, obj: Record<string, unknown>): Promise<object>;
  updateObject(kind: string, obj: Record<string, unknown>): Promise<object>;
  deleteObject(kind: string, name: string, namespace?: string): Promise<void>;
}

const RESOURCE_OF: Record<string, string> = { Pod: 'pods', Namespace: 'namespaces', NetworkPolicy: 'networkpolicies' };

function resourceOf(kind: string): string {
  const r = RESOURCE_OF[kind];
  if (r === undefined) throw new LabError(`the policy lab writes Pods, Namespaces and NetworkPolicies, not ${kind}`);
  return r;
}

/**
 * Writes objects through the fake API server's control socket: `put` creates, or replaces an
 * existing object unconditionally (a PUT without resourceVersion); `remove` deletes.
 */
export function kubeObjectWriter(control: KubeApiControl): PolicyObjectWriter {
  const ctl = control as unknown as ObjectControl;
  return {
    async put(obj) {
      const kind = resourceOf(obj.kind);
      const exists = (await ctl.getObject(kind, obj.metadata.name, obj.metadata.namespace)) !== undefined;
      if (exists) await ctl.updateObject(kind, obj);
      else await ctl.createObject(kind, obj);
    },
    async remove(kind, namespace, name) {
      await ctl.deleteObject(resourceOf(kind), name, namespace);
    },
  };
}
