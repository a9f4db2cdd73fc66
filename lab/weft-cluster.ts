/**
 * A weft cluster on a lab: one router per node namespace (started through the `weft` CLI, as a
 * user would), pods on every node with IPv4 and IPv6 addresses, and helpers to read status,
 * restart routers and wait for the mesh. Used by the integration tests, the demo and the bench.
 *
 * Addressing: node i (1-based) is 198.18.0.i on the underlay; pod j on node i is 10.40.i.j/16,
 * fd00:40::i:j/64, MAC 02:40:00:00:ii:jj.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { callApi } from '../src/api/client.js';
import type { StatusReport } from '../src/api/types.js';
import { WeftError } from '../src/core/errors.js';
import { packageRoot } from '../src/core/paths.js';
import { LEASE_ANNOTATIONS } from '../src/k8s/names.js';
import { KubeApiControl } from './kube-api-control.js';
import { Lab, type LabNode, type LabPod, type LabProcess, type UnderlayFamily, type UnderlayHost } from './lab.js';

const cliPath = join(packageRoot(import.meta.url), 'dist', 'src', 'cli', 'main.js');
const kubeApiMain = join(packageRoot(import.meta.url), 'dist', 'lab', 'kube-api-main.js');

export interface WeftClusterInit {
  nodes: number;
  /**
   * The underlay and how routers use it: 'v4' (default) `--listen 198.18.0.i:6784`, IPv4 peers;
   * 'v6' an IPv6-only underlay, `--listen [2001:2::i]:6784`, `--peer [2001:2::k]:6784`; 'dual'
   * both families on eth0, `--listen [::]:6784` (dual-stack socket) and IPv4 peers (IPv6 ones
   * with `dualPeers: 6`).
   */
  underlay?: UnderlayFamily;
  /** On a 'dual' underlay, the family of the `--peer` addresses (default 4). */
  dualPeers?: 4 | 6;
  podsPerNode?: number;
  plaintext?: boolean;
  /** Per node, or one value for all; default true. */
  vnetHdr?: boolean | boolean[];
  /** Secret per node (default: one shared secret). */
  secrets?: string[];
  /** Runs after the lab is built and before any router starts (e.g. to install faults). */
  beforeRouters?: (lab: Lab) => Promise<void>;
  /**
   * Runs before any router starts, with each router's --state-dir (0-based), e.g. to make their
   * identity keys with `weft identity` first.
   */
  prepareState?: (stateDir: (i: number) => string) => void;
  /** The nodes (0-based) each node is configured to contact (default: all others). */
  peersOf?: (i: number) => number[];
  extraArgs?: string[];
  /** Extra arguments for one router (0-based), after `extraArgs`. */
  perNodeArgs?: (i: number) => string[];
  /** The CLI (`dist/src/cli/main.js`) router i runs and is asked for status with (another build's, for mixed-version tests); default: this package's. */
  cliOf?: (i: number) => string | undefined;
  /** Routers (0-based) not started by `start`: the caller starts them later with `startRouter`. */
  deferStart?: number[];
  /**
   * Routers (0-based) whose identities are created before any router starts, and whose peer
   * names every router gets as `--ipam-seed`.
   */
  ipamSeeds?: number[];
  prefix?: string;
  brNetfilter?: boolean;
  /**
   * A lab built beforehand (e.g. `NatLab.create(...).lab`): the cluster runs one router per node
   * of it (`nodes` must match) instead of building its own; `destroy` destroys it.
   */
  lab?: Lab;
  /** Router i's --listen (default `<node address>:6784`), e.g. `[2001:2:1::2]:6784` or `[::]:6784`. */
  listenOf?: (i: number) => string;
  /** What other routers pass as --peer to reach router k (default `<node address>:6784`). */
  peerTargetOf?: (k: number) => string;
  log?: (line: string) => void;
  /**
   * Kubernetes mode: the fake API server (lab/kube-api-main.ts) runs on an underlay host, the
   * nodes' Node objects are made first (as kubelets make them; `deferNodes` are not), and every
   * router gets `--kubernetes --kubeconfig ... --node-name nX --kube-namespace NS` and no `--peer`.
   */
  kubernetes?: { namespace?: string; deferNodes?: number[] };
  /**
   * Rewrites router i's (0-based) `weft launch` arguments before any router starts, given the
   * cluster's scratch directory (e.g. to move them into a config file for `--config`).
   */
  launchArgsOf?: (i: number, args: string[], dir: string) => string[];
}

/** The fake API server of a cluster in Kubernetes mode. */
export interface ClusterKube {
  control: KubeApiControl;
  kubeconfig: string;
  namespace: string;
  host: UnderlayHost;
  process: LabProcess;
}

export interface RouterHandle {
  node: LabNode;
  name: string;
  socket: string;
  args: string[];
  logFile: string;
  process: LabProcess | undefined;
  /** The CLI this router runs (this package's unless `cliOf` gave another). */
  cli?: string;
}

const SECRET = 'weft-lab-shared-secret-0123456789';

export function podAddress(node: number, pod: number): { ipv4: string; ipv6: string; mac: string } {
  const hex = (n: number) => n.toString(16).padStart(2, '0');
  return {
    ipv4: `10.40.${node}.${pod}`,
    ipv6: `fd00:40::${node.toString(16)}:${pod.toString(16)}`,
    mac: `02:40:00:00:${hex(node)}:${hex(pod)}`,
  };
}

export class WeftCluster {
  readonly lab: Lab;
  readonly routers: RouterHandle[];
  readonly pods: LabPod[] = [];
  readonly dir: string;
  private readonly cli: string;
  private readonly log: (line: string) => void;
  private mtu = 0;

  private constructor(lab: Lab, routers: RouterHandle[], dir: string, log: (line: string) => void) {
    this.lab = lab;
    this.routers = routers;
    this.dir = dir;
    this.cli = cliPath;
    this.log = log;
  }

  /** Builds the lab, starts every router, waits for a full mesh, then adds the pods. */
  static async start(init: WeftClusterInit): Promise<WeftCluster> {
    const log = init.log ?? (() => undefined);
    const underlay = init.underlay ?? 'v4';
    if (init.lab !== undefined && init.lab.nodes.length !== init.nodes) {
      throw new WeftError('ERR_LAB', `the lab given has ${init.lab.nodes.length} nodes, not ${init.nodes}`);
    }
    const lab = init.lab ?? (await Lab.create({ nodes: init.nodes, prefix: init.prefix, brNetfilter: init.brNetfilter, underlay, log }));
    const listen = (node: LabNode) => (underlay === 'v4' ? `${node.address}:6784` : underlay === 'v6' ? `[${node.address}]:6784` : '[::]:6784');
    const peerAt = (node: LabNode) => (underlay === 'v6' || (underlay === 'dual' && init.dualPeers === 6) ? `[${node.address6!}]:6784` : `${node.address}:6784`);
    const dir = mkdtempSync(join(tmpdir(), `weft-${lab.prefix}-`));
    init.prepareState?.((i) => join(dir, `state-n${i + 1}`));
    // Seed identities exist before the routers, so every router can be told the seeds' names.
    const seeds = (init.ipamSeeds ?? []).map((i) => {
      const out = execFileSync(process.execPath, [cliPath, 'identity', '--state-dir', join(dir, `state-n${i + 1}`), '--name', `n${i + 1}`], { encoding: 'utf8' });
      return out.trim();
    });
    const seedArgs = seeds.length === 0 ? [] : ['--ipam-seed', seeds.join(',')];
    const kubeNs = init.kubernetes?.namespace ?? 'kube-system';
    const kubeconfig = join(dir, 'kubeconfig');
    const kubeArgs = (i: number) => (init.kubernetes === undefined ? [] : ['--kubernetes', '--kubeconfig', kubeconfig, '--node-name', `n${i + 1}`, '--kube-namespace', kubeNs]);
    const defaultPeers = (i: number) => (init.kubernetes === undefined ? lab.nodes.map((_, k) => k).filter((k) => k !== i) : []);
    const routers: RouterHandle[] = lab.nodes.map((node, i) => {
      const secretFile = join(dir, `secret-${i + 1}`);
      writeFileSync(secretFile, init.secrets?.[i] ?? SECRET, { mode: 0o600 });
      const vnet = Array.isArray(init.vnetHdr) ? (init.vnetHdr[i] ?? true) : (init.vnetHdr ?? true);
      const socket = join(dir, `n${i + 1}.sock`);
      const args = [
        'launch',
        '--name', `n${i + 1}`,
        '--listen', init.listenOf?.(i) ?? listen(node),
        ...(init.peersOf?.(i) ?? defaultPeers(i)).flatMap((k) => ['--peer', init.peerTargetOf?.(k) ?? peerAt(lab.nodes[k]!)]),
        '--state-dir', join(dir, `state-n${i + 1}`),
        ...(init.plaintext === true ? ['--plaintext'] : ['--secret-file', secretFile]),
        ...(vnet ? [] : ['--no-vnet-hdr']),
        '--api-socket', socket,
        // IPAM (on by default in weft) only where a test asks for it with its own --ipam-range.
        '--ipam-range', 'none',
        ...seedArgs,
        ...kubeArgs(i),
        ...(init.extraArgs ?? []),
        ...(init.perNodeArgs?.(i) ?? []),
      ];
      const cli = init.cliOf?.(i);
      return {
        node, name: `n${i + 1}`, socket, args: init.launchArgsOf?.(i, args, dir) ?? args, logFile: join(dir, `n${i + 1}.log`), process: undefined,
        ...(cli === undefined ? {} : { cli }),
      };
    });
    const cluster = new WeftCluster(lab, routers, dir, log);
    try {
      if (init.kubernetes !== undefined) {
        cluster.kube = await startKubeApi(lab, dir, kubeconfig, kubeNs);
        const deferredNodes = new Set(init.kubernetes.deferNodes ?? []);
        for (let i = 0; i < lab.nodes.length; i++) if (!deferredNodes.has(i)) await cluster.createNode(i);
      }
      await init.beforeRouters?.(lab);
      const deferred = new Set(init.deferStart ?? []);
      for (let i = 0; i < routers.length; i++) if (!deferred.has(i)) await cluster.startRouter(i);
      cluster.mtu = (await cluster.status(routers.findIndex((_, i) => !deferred.has(i)))).mtu.overlay;
      const perNode = init.podsPerNode ?? 1;
      for (let i = 0; i < lab.nodes.length; i++) {
        for (let j = 1; j <= perNode; j++) {
          const a = podAddress(i + 1, j + 1);
          const pod = await lab.addPod(lab.nodes[i]!, {
            name: `p${j}`,
            ipv4: `${a.ipv4}/16`,
            ipv6: `${a.ipv6}/64`,
            mac: a.mac,
            mtu: cluster.mtu,
          });
          cluster.pods.push(pod);
        }
      }
    } catch (err) {
      await cluster.destroy();
      throw err;
    }
    return cluster;
  }

  /** The fake API server (Kubernetes mode only). */
  kube: ClusterKube | undefined = undefined;

  private kubeOrThrow(): ClusterKube {
    if (this.kube === undefined) throw new WeftError('ERR_LAB', 'the cluster is not in Kubernetes mode');
    return this.kube;
  }

  /** Makes node i's Node object (name nX, InternalIP its underlay address), as its kubelet would. */
  async createNode(i: number): Promise<void> {
    const node = this.lab.nodes[i]!;
    await this.kubeOrThrow().control.createNode({ name: node.name, internalIP: node.address });
  }

  /** Deletes node i's Node object (as `kubectl delete node nX` does). */
  async deleteNode(i: number): Promise<void> {
    await this.kubeOrThrow().control.deleteNode(this.lab.nodes[i]!.name);
  }

  /** weft's IPAM block Leases as the API server has them: block CIDR → holder (peer name). */
  async blockHolders(): Promise<Map<string, string>> {
    const k = this.kubeOrThrow();
    const leases = (await k.control.listObjects('leases', k.namespace)) as { metadata: { annotations?: Record<string, string> }; spec?: { holderIdentity?: string } }[];
    const out = new Map<string, string>();
    for (const l of leases) {
      const cidr = l.metadata.annotations?.[LEASE_ANNOTATIONS.cidr];
      if (cidr !== undefined) out.set(cidr, l.spec?.holderIdentity ?? '');
    }
    return out;
  }

  get overlayMtu(): number {
    return this.mtu;
  }

  /** Every ordered pair of distinct pods (a → b and b → a both). */
  *podPairs(): Generator<[LabPod, LabPod]> {
    for (const a of this.pods) for (const b of this.pods) if (a !== b) yield [a, b];
  }

  /** The pods on a node, given as a LabNode or its number as in its name (1 for n1; `lab.nodes` is 0-based). */
  podsOn(node: LabNode | number): LabPod[] {
    const index = typeof node === 'number' ? node - 1 : node.index;
    return this.pods.filter((p) => p.node.index === index);
  }

  /** Starts router i and waits until its API answers. */
  async startRouter(i: number): Promise<void> {
    const r = this.routers[i]!;
    if (r.process !== undefined) throw new WeftError('ERR_LAB', `router ${r.name} is already running`);
    r.process = this.lab.spawn(r.node.ns, [process.execPath, r.cli ?? this.cli, ...r.args], { logFile: r.logFile });
    const deadline = Date.now() + 15_000;
    for (;;) {
      try {
        await this.status(i);
        return;
      } catch (err) {
        const exited = await Promise.race([r.process.exited.then(() => true), delay(200).then(() => false)]);
        if (exited) {
          const out = r.process.stderrText().trim().split('\n').slice(-5).join('\n');
          r.process = undefined;
          throw new WeftError('ERR_LAB', `router ${r.name} exited during start: ${out}`);
        }
        if (Date.now() > deadline) throw new WeftError('ERR_LAB', `router ${r.name} did not answer within 15 s: ${String(err)}`);
      }
    }
  }

  /** Stops router i (SIGTERM, or SIGKILL to simulate a crash). */
  async stopRouter(i: number, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const r = this.routers[i]!;
    const p = r.process;
    if (p === undefined) return;
    r.process = undefined;
    if (signal === 'SIGKILL') {
      p.kill('SIGKILL');
      await p.exited;
    } else {
      await p.stop(5000);
    }
  }

  /** `weft status --json` of router i, through the CLI as a user would run it. */
  async status(i: number): Promise<StatusReport> {
    const r = this.routers[i]!;
    const res = await this.lab.exec(r.node.ns, [process.execPath, r.cli ?? this.cli, 'status', '--json', '--socket', r.socket], { timeoutMs: 10_000 });
    return JSON.parse(res.stdout) as StatusReport;
  }

  /** Runs `weft ARGS --socket <router i's socket>` in router i's namespace, as a user would (exit code not checked). */
  async weft(i: number, args: string[], timeoutMs = 15_000): Promise<{ stdout: string; stderr: string; code: number | null }> {
    const r = this.routers[i]!;
    return this.lab.exec(r.node.ns, [process.execPath, this.cli, ...args, '--socket', r.socket], { timeoutMs, check: false });
  }

  /** Calls router i's local API directly (rejects with the API's error code and message). */
  async api<T = unknown>(i: number, method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    return (await callApi(this.routers[i]!.socket, method, path, body, 15_000)) as T;
  }

  /** Router i's --state-dir (kept across restarts, removed with the cluster). */
  stateDir(i: number): string {
    return join(this.dir, `state-n${i + 1}`);
  }

  /** The same report straight from router i's API socket (no CLI process): for tight polling. */
  async apiStatus(i: number): Promise<StatusReport> {
    return (await callApi(this.routers[i]!.socket, 'GET', '/v1/status', undefined, 10_000)) as StatusReport;
  }

  /**
   * Waits until every running router sees every other running router as established (heard from
   * within the dead interval), directly or through a relay.
   */
  async waitEstablished(timeoutMs = 20_000): Promise<void> {
    const running = this.routers.map((r, i) => (r.process !== undefined ? i : -1)).filter((i) => i >= 0);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const missing: string[] = [];
      for (const i of running) {
        const s = await this.status(i);
        const up = new Set(s.peers.filter((p) => p.state === 'established' && p.path !== 'none').map((p) => p.nickname));
        const unseen = running.filter((k) => k !== i && !up.has(this.routers[k]!.name));
        if (unseen.length > 0) {
          const states = unseen.map((k) => {
            const p = s.peers.find((x) => x.nickname === this.routers[k]!.name);
            return `${this.routers[k]!.name} (${p === undefined ? 'unknown' : `${p.state}, ${p.path}`})`;
          });
          missing.push(`${this.routers[i]!.name} lacks ${states.join(', ')}`);
        }
      }
      if (missing.length === 0) return;
      if (Date.now() > deadline) throw new WeftError('ERR_LAB', `routers did not all see each other within ${timeoutMs} ms: ${missing.join('; ')}`);
      await delay(200);
    }
  }

  /**
   * Throws unless router i's status has each named peer (by nickname) on the path given: what a
   * benchmark calls before and after it measures, so a figure never belongs to another path.
   */
  async expectPaths(i: number, want: Record<string, StatusReport['peers'][number]['path']>, what: string): Promise<void> {
    const peers = (await this.apiStatus(i)).peers;
    const off = Object.entries(want)
      .map(([nick, path]) => [nick, path, peers.find((p) => p.nickname === nick)?.path ?? 'unknown'] as const)
      .filter(([, path, got]) => got !== path);
    if (off.length > 0) {
      const list = off.map(([nick, path, got]) => `${nick} on ${got}, not ${path}`).join(', ');
      throw new WeftError('ERR_LAB_PATH', `${what}: router ${this.routers[i]!.name} has ${list}`);
    }
  }

  /**
   * Waits until every running router has every other running router on the kernel fast path
   * (polling the API socket); returns how long that took.
   */
  waitFastPath(timeoutMs = 30_000): Promise<number> {
    return this.waitPaths(() => 'fastpath', timeoutMs);
  }

  /**
   * Waits until, on every running router i, each other running router k is on path
   * `expected(i, k)` (polling the API socket); returns how long that took. Both ends of a pair
   * switch on their own judgement, so a test that needs settled paths waits for every router.
   */
  async waitPaths(expected: (from: number, to: number) => StatusReport['peers'][number]['path'], timeoutMs = 30_000): Promise<number> {
    const started = Date.now();
    const running = this.routers.map((r, i) => (r.process !== undefined ? i : -1)).filter((i) => i >= 0);
    const want = running.map((i) => Object.fromEntries(running.filter((k) => k !== i).map((k) => [this.routers[k]!.name, expected(i, k)])));
    let seen: Record<string, string>[] = [];
    for (;;) {
      const all = await Promise.all(running.map((i) => this.apiStatus(i).catch(() => undefined)));
      seen = all.map((s) => Object.fromEntries((s?.peers ?? []).map((p) => [p.nickname, p.path])));
      const settled = (got: Record<string, string>, w: Record<string, string>) =>
        Object.keys(got).length === Object.keys(w).length && Object.entries(w).every(([peer, path]) => got[peer] === path);
      if (seen.every((got, j) => settled(got, want[j]!))) {
        return Date.now() - started;
      }
      if (Date.now() - started > timeoutMs) {
        throw new WeftError('ERR_LAB', `paths did not settle within ${timeoutMs} ms: want ${JSON.stringify(want)}, have ${JSON.stringify(seen)}`);
      }
      await delay(200);
    }
  }

  routerLog(i: number): string {
    const p = this.routers[i]!.process;
    return p === undefined ? '' : p.stderrText();
  }

  async destroy(): Promise<void> {
    for (let i = 0; i < this.routers.length; i++) {
      try {
        await this.stopRouter(i);
      } catch (err) {
        this.log(`stopping router ${i + 1}: ${String(err)}`);
      }
    }
    if (this.kube !== undefined) await this.kube.process.stop(5000).catch((err: unknown) => this.log(`stopping the fake API server: ${String(err)}`));
    await this.lab.destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Runs the fake API server on a new underlay host and writes a kubeconfig for it. */
async function startKubeApi(lab: Lab, dir: string, kubeconfig: string, namespace: string): Promise<ClusterKube> {
  const host = await lab.addUnderlayHost();
  const socket = join(dir, 'kube-api.sock');
  const proc = lab.spawn(host.ns, [process.execPath, kubeApiMain, '--listen', `${host.address}:6443`, '--control', socket, '--bookmark-ms', '1000'], { logFile: join(dir, 'kube-api.log') });
  const control = new KubeApiControl(socket);
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (existsSync(socket)) {
      try {
        await control.info();
        break;
      } catch {
        // not listening yet
      }
    }
    const exited = await Promise.race([proc.exited.then(() => true), delay(100).then(() => false)]);
    if (exited) throw new WeftError('ERR_LAB', `the fake API server exited during start: ${proc.stderrText().trim().split('\n').slice(-3).join('\n')}`);
    if (Date.now() > deadline) throw new WeftError('ERR_LAB', 'the fake API server did not answer within 15 s');
  }
  await control.writeKubeconfig(kubeconfig);
  return { control, kubeconfig, namespace, host, process: proc };
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
