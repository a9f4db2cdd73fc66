/**
 * Virtual clusters in network namespaces: an underlay namespace with a bridge, N node namespaces
 * attached to it (198.18.0.i/24 on eth0), and pod namespaces whose veths plug into a bridge in
 * their node. Every name starts with the lab's prefix; `destroy` kills the processes the lab
 * started (by PID) and deletes every namespace it made, whatever happened before.
 *
 *   <prefix>-u      bridge "ul"  ── veth ──  <prefix>-n1: eth0 198.18.0.1, bridge "weft" ── vp1 ── <prefix>-n1p1: eth0
 *                                └─ veth ──  <prefix>-n2: eth0 198.18.0.2, ...
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { WeftError } from '../core/errors.js';
import { run } from '../platform/linux/run.js';
import { CommandError } from '../platform/errors.js';

export interface LabInit {
  prefix?: string;
  nodes: number;
  underlayMtu?: number;
  bridgeName?: string;
  brNetfilter?: boolean;
  log?: (line: string) => void;
}

export interface LabNode {
  index: number;
  name: string;
  ns: string;
  nsPath: string;
  underlayIf: 'eth0';
  address: string;
}

export interface LabPod {
  name: string;
  ns: string;
  nsPath: string;
  node: LabNode;
  ifName: 'eth0';
  hostVeth: string;
  mac: string;
  ipv4: string | undefined;
  ipv6: string | undefined;
  prefix4: number;
  prefix6: number;
  mtu: number;
}

export interface PodInit {
  ipv4?: string;
  ipv6?: string;
  mtu?: number;
  mac?: string;
  name?: string;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  code: number | null;
}

export interface LabProcess {
  pid: number;
  ns: string;
  argv: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stdoutText(): string;
  stderrText(): string;
  kill(signal?: NodeJS.Signals): void;
  stop(timeoutMs?: number): Promise<void>;
}

const PREFIX = /^[a-z0-9]{1,6}$/;
const MAX_CAPTURE = 1 << 20;

export class Lab {
  readonly prefix: string;
  readonly nodes: LabNode[] = [];
  readonly pods: LabPod[] = [];
  readonly underlayNs: string;
  readonly bridgeName: string;
  private readonly log: (line: string) => void;
  private readonly namespaces: string[] = [];
  private readonly processes = new Set<TrackedProcess>();
  private readonly podCount = new Map<number, number>();
  private readonly faultRules = new Map<string, string[]>();
  private destroyed = false;

  private constructor(init: LabInit, prefix: string) {
    this.prefix = prefix;
    this.underlayNs = `${prefix}-u`;
    this.bridgeName = init.bridgeName ?? 'weft';
    this.log = init.log ?? (() => undefined);
  }

  static async create(init: LabInit): Promise<Lab> {
    const prefix = init.prefix ?? `wt${randomBytes(2).toString('hex')}`;
    if (!PREFIX.test(prefix)) throw new WeftError('ERR_LAB', `lab prefix "${prefix}" must be 1-6 characters of a-z and 0-9`);
    if (!Number.isInteger(init.nodes) || init.nodes < 1 || init.nodes > 20) throw new WeftError('ERR_LAB', `a lab has 1 to 20 nodes, not ${init.nodes}`);
    const lab = new Lab(init, prefix);
    try {
      await lab.build(init);
    } catch (err) {
      await lab.destroy();
      throw err;
    }
    return lab;
  }

  private async build(init: LabInit): Promise<void> {
    const mtu = init.underlayMtu ?? 1500;
    const nf = init.brNetfilter === true ? '1' : '0';
    await this.addNs(this.underlayNs);
    await this.ip(this.underlayNs, ['link', 'add', 'ul', 'type', 'bridge']);
    await this.ip(this.underlayNs, ['link', 'set', 'ul', 'mtu', String(mtu), 'up']);
    for (let i = 1; i <= init.nodes; i++) {
      const ns = `${this.prefix}-n${i}`;
      await this.addNs(ns);
      const node: LabNode = { index: i, name: `n${i}`, ns, nsPath: `/var/run/netns/${ns}`, underlayIf: 'eth0', address: `198.18.0.${i}` };
      await this.ip(ns, ['link', 'add', 'eth0', 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', `u${i}`, 'netns', this.underlayNs]);
      await this.ip(this.underlayNs, ['link', 'set', `u${i}`, 'mtu', String(mtu), 'master', 'ul', 'up']);
      await this.ip(ns, ['addr', 'add', `${node.address}/24`, 'dev', 'eth0']);
      await this.ip(ns, ['link', 'set', 'eth0', 'up']);
      await this.sysctl(ns, { 'net.ipv4.ip_forward': '1' });
      await this.sysctl(ns, { 'net.bridge.bridge-nf-call-iptables': nf, 'net.bridge.bridge-nf-call-ip6tables': nf }, true);
      this.nodes.push(node);
    }
  }

  /** Runs argv inside `ns`; throws a CommandError on a non-zero exit unless `check` is false. */
  async exec(ns: string, argv: string[], opts: { timeoutMs?: number; input?: string; check?: boolean } = {}): Promise<ExecResult> {
    const check = opts.check ?? true;
    return new Promise((resolve, reject) => {
      const child = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
      child.on('error', (err) => {
        clearTimeout(timer);
        reject(new CommandError(`ip netns exec ${ns} ${argv.join(' ')}`, err.message, null));
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        if (check && code !== 0) reject(new CommandError(`ip netns exec ${ns} ${argv.join(' ')}`, stderr || stdout, code));
        else resolve({ stdout, stderr, code });
      });
      child.stdin.end(opts.input ?? '');
    });
  }

  /** Starts a long-running process inside `ns`; it is stopped by `destroy` if still running. */
  spawn(ns: string, argv: string[], opts: { env?: NodeJS.ProcessEnv; logFile?: string } = {}): LabProcess {
    const child = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env });
    const p = new TrackedProcess(child, ns, argv, opts.logFile);
    this.processes.add(p);
    void p.exited.then(() => this.processes.delete(p));
    this.log(`spawned ${p.pid} in ${ns}: ${argv.join(' ')}`);
    return p;
  }

  async addPod(nodeRef: LabNode | number, init: PodInit): Promise<LabPod> {
    const node = typeof nodeRef === 'number' ? this.nodes.find((n) => n.index === nodeRef) : nodeRef;
    if (node === undefined) throw new WeftError('ERR_LAB', `no node ${String(nodeRef)} in lab ${this.prefix}`);
    const j = (this.podCount.get(node.index) ?? 0) + 1;
    this.podCount.set(node.index, j);
    const ns = `${node.ns}p${j}`;
    const hostVeth = `vp${j}`;
    const mtu = init.mtu ?? 1500;
    await this.ensureBridge(node);
    await this.addNs(ns);
    await this.ip(node.ns, ['link', 'add', hostVeth, 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await this.ip(node.ns, ['link', 'set', hostVeth, 'master', this.bridgeName, 'up']);
    await this.sysctl(ns, { 'net.ipv6.conf.all.accept_dad': '0', 'net.ipv6.conf.default.accept_dad': '0', 'net.ipv6.conf.eth0.accept_dad': '0' });
    if (init.mac !== undefined) await this.ip(ns, ['link', 'set', 'eth0', 'address', init.mac]);
    await this.ip(ns, ['link', 'set', 'lo', 'up']);
    await this.ip(ns, ['link', 'set', 'eth0', 'mtu', String(mtu), 'up']);
    const pod: LabPod = {
      name: init.name ?? `p${j}`,
      ns,
      nsPath: `/var/run/netns/${ns}`,
      node,
      ifName: 'eth0',
      hostVeth,
      mac: '',
      ipv4: undefined,
      ipv6: undefined,
      prefix4: 0,
      prefix6: 0,
      mtu,
    };
    if (init.ipv4 !== undefined) {
      await this.ip(ns, ['addr', 'add', init.ipv4, 'dev', 'eth0']);
      [pod.ipv4, pod.prefix4] = splitCidr(init.ipv4);
    }
    if (init.ipv6 !== undefined) {
      await this.ip(ns, ['-6', 'addr', 'add', init.ipv6, 'dev', 'eth0', 'nodad']);
      [pod.ipv6, pod.prefix6] = splitCidr(init.ipv6);
    }
    const link = JSON.parse((await this.exec(ns, ['ip', '-j', 'link', 'show', 'eth0'])).stdout) as { address: string }[];
    pod.mac = link[0]?.address ?? '';
    this.pods.push(pod);
    return pod;
  }

  async removePod(pod: LabPod): Promise<void> {
    await this.ip(pod.node.ns, ['link', 'del', pod.hostVeth]).catch(() => undefined);
    await this.delNs(pod.ns);
    const i = this.pods.indexOf(pod);
    if (i >= 0) this.pods.splice(i, 1);
  }

  async setPodMtu(pod: LabPod, mtu: number): Promise<void> {
    await this.ip(pod.node.ns, ['link', 'set', pod.hostVeth, 'mtu', String(mtu)]);
    await this.ip(pod.ns, ['link', 'set', 'eth0', 'mtu', String(mtu)]);
    pod.mtu = mtu;
  }

  /** Drops UDP between two nodes (both directions, optionally only to/from `port`). */
  async blockUdpBetween(a: LabNode, b: LabNode, port?: number): Promise<void> {
    const p = port === undefined ? '' : ` udp dport ${port}`;
    const p2 = port === undefined ? '' : ` udp sport ${port}`;
    for (const [self, other] of [[a, b], [b, a]] as const) {
      await this.addFault(self, [
        `ip saddr ${other.address} meta l4proto udp${p} drop`,
        `ip saddr ${other.address} meta l4proto udp${p2} drop`,
      ], 'input');
    }
  }

  /** Drops UDP packets longer than `overBytes` (IP length) between two nodes: an MTU black hole. */
  async dropLargeUdp(a: LabNode, b: LabNode, overBytes: number): Promise<void> {
    for (const [self, other] of [[a, b], [b, a]] as const) {
      await this.addFault(self, [`ip saddr ${other.address} meta l4proto udp ip length > ${overBytes} drop`], 'input');
    }
  }

  async clearFaults(node?: LabNode): Promise<void> {
    for (const n of node === undefined ? this.nodes : [node]) {
      if (!this.faultRules.has(n.ns)) continue;
      this.faultRules.delete(n.ns);
      await this.exec(n.ns, ['nft', 'delete', 'table', 'inet', `${this.prefix}_fault`], { check: false });
    }
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    await Promise.all([...this.processes].map((p) => p.stop(3000).catch((err: unknown) => this.log(`stop ${p.pid}: ${String(err)}`))));
    for (const ns of [...this.namespaces].reverse()) {
      try {
        await this.delNs(ns);
      } catch (err) {
        this.log(`delete ${ns}: ${String(err)}`);
      }
    }
  }

  /** Deletes namespaces left by earlier labs (names made by this class only). */
  static async cleanupStale(pattern = /^wt[0-9a-f]{4}-/): Promise<string[]> {
    const out = await run('ip', ['netns', 'list']);
    const names = out.split('\n').map((l) => l.split(' ')[0]!).filter((n) => n !== '' && pattern.test(n));
    for (const n of names) await run('ip', ['netns', 'del', n]).catch(() => undefined);
    return names;
  }

  private async addFault(node: LabNode, rules: string[], hook: 'input'): Promise<void> {
    const list = [...(this.faultRules.get(node.ns) ?? []), ...rules];
    this.faultRules.set(node.ns, list);
    const table = `${this.prefix}_fault`;
    const script = [
      `table inet ${table}`,
      `delete table inet ${table}`,
      `table inet ${table} {`,
      `  chain ${hook} { type filter hook ${hook} priority -10; policy accept;`,
      ...list.map((r) => `    ${r}`),
      '  }',
      '}',
    ].join('\n');
    await this.exec(node.ns, ['nft', '-f', '-'], { input: `${script}\n` });
  }

  private async ensureBridge(node: LabNode): Promise<void> {
    const r = await this.exec(node.ns, ['ip', 'link', 'show', this.bridgeName], { check: false });
    if (r.code !== 0) {
      await this.ip(node.ns, ['link', 'add', this.bridgeName, 'type', 'bridge']);
      await this.ip(node.ns, ['link', 'set', this.bridgeName, 'up']);
    }
  }

  private async addNs(ns: string): Promise<void> {
    await run('ip', ['netns', 'add', ns]);
    this.namespaces.push(ns);
    await this.ip(ns, ['link', 'set', 'lo', 'up']);
  }

  private async delNs(ns: string): Promise<void> {
    await run('ip', ['netns', 'del', ns]).catch((err: unknown) => {
      if (!String(err).includes('No such file')) throw err;
    });
    const i = this.namespaces.indexOf(ns);
    if (i >= 0) this.namespaces.splice(i, 1);
  }

  private async ip(ns: string, args: string[]): Promise<void> {
    await run('ip', ['-n', ns, ...args]);
  }

  private async sysctl(ns: string, values: Record<string, string>, optional = false): Promise<void> {
    for (const [k, v] of Object.entries(values)) {
      const r = await this.exec(ns, ['sysctl', '-q', '-w', `${k}=${v}`], { check: !optional });
      if (optional && r.code !== 0) this.log(`sysctl ${k} not available in ${ns}`);
    }
  }
}

function splitCidr(cidr: string): [string, number] {
  const [a, p] = cidr.split('/');
  return [a!, Number(p ?? '0')];
}

class TrackedProcess implements LabProcess {
  readonly pid: number;
  readonly ns: string;
  readonly argv: string[];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private out = '';
  private err = '';
  private done = false;
  private readonly child: ChildProcess;
  private readonly file: WriteStream | undefined;

  constructor(child: ChildProcess, ns: string, argv: string[], logFile: string | undefined) {
    this.child = child;
    this.pid = child.pid ?? -1;
    this.ns = ns;
    this.argv = argv;
    this.file = logFile === undefined ? undefined : createWriteStream(logFile, { flags: 'a' });
    child.stdout?.on('data', (d: Buffer) => {
      this.out = (this.out + d.toString()).slice(-MAX_CAPTURE);
      this.file?.write(d);
    });
    child.stderr?.on('data', (d: Buffer) => {
      this.err = (this.err + d.toString()).slice(-MAX_CAPTURE);
      this.file?.write(d);
    });
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.done = true;
        this.file?.end();
        resolve({ code, signal });
      });
      child.on('error', () => {
        this.done = true;
        resolve({ code: null, signal: null });
      });
    });
  }

  stdoutText(): string {
    return this.out;
  }
  stderrText(): string {
    return this.err;
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (!this.done && this.pid > 0) {
      try {
        process.kill(this.pid, signal);
      } catch {
        // already gone
      }
    }
  }

  async stop(timeoutMs = 3000): Promise<void> {
    if (this.done) return;
    this.kill('SIGTERM');
    const t = setTimeout(() => this.kill('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(t);
  }
}
