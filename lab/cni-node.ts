/**
 * The installed CNI plugin called as libcni calls it: a weft router on a lab node (IPAM on,
 * dual-stack), the plugin installed by `installCni` into a bin and conf directory of this lab, and
 * `call`, which executes `<binDir>/weft` inside the node's network namespace with an empty
 * environment plus the CNI_* variables (`env -i`, as libcni's invoke does: no PATH, no HOME), the
 * per-plugin config libcni builds from the conflist on stdin (the plugin's entry with `name` and
 * `cniVersion` injected, `runtimeConfig` for declared capabilities, `prevResult` for CHECK, DEL and
 * chained ADDs), and a time limit. Pod namespaces are made with the lab's prefix and removed by
 * `destroy`.
 */
import { spawn } from 'node:child_process';
import { closeSync, constants, openSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { installCni, type Installed, type InstallOptions } from '../src/cni/install.js';
import { run } from '../src/platform/linux/run.js';
import { LabError } from './errors.js';
import { deleteNamespace } from './registry.js';
import { WeftCluster, type WeftClusterInit } from './weft-cluster.js';

export interface CniCallInit {
  containerId?: string;
  /** Absolute path to the pod's netns (CNI_NETNS). */
  netns?: string;
  /** CNI_IFNAME; default 'eth0' when a container id is given. */
  ifName?: string;
  /** CNI_ARGS ('K=V;K=V'). */
  args?: string;
  /** Replaces the per-plugin config (an object is JSON-encoded; a string is sent as it is). */
  config?: Record<string, unknown> | string;
  /** Merged into the per-plugin config (e.g. prevResult, cni.dev/valid-attachments, routes). */
  extra?: Record<string, unknown>;
  /** 'closed': the plugin starts with file descriptor 0 closed; a path: stdin opened from that path (e.g. a directory). */
  stdin?: 'closed' | { path: string };
  /** Kills the call after this long (default 60 s); `timedOut` says so. */
  timeoutMs?: number;
}

export interface CniCallResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON, when it is. */
  json: Record<string, unknown> | undefined;
  /** Wall time of the call. */
  ms: number;
  timedOut: boolean;
}

export interface CniNodeInit {
  /** Extra router arguments after the IPAM ones. */
  extraArgs?: string[];
  /** IPAM ranges; default 10.46.0.0/16 and fd00:46::/64. */
  range?: string;
  range6?: string;
  /** Passed to installCni (name, portmap, cniVersion, ...). */
  install?: Omit<InstallOptions, 'binDir' | 'confDir' | 'socket' | 'journalDir'>;
  cluster?: Partial<WeftClusterInit>;
}

let podSeq = 0;

export class CniNode {
  readonly cluster: WeftCluster;
  readonly binDir: string;
  readonly confDir: string;
  readonly journalDir: string;
  readonly installed: Installed;
  private readonly pods = new Set<string>();

  private constructor(cluster: WeftCluster, binDir: string, confDir: string, journalDir: string, installed: Installed) {
    this.cluster = cluster;
    this.binDir = binDir;
    this.confDir = confDir;
    this.journalDir = journalDir;
    this.installed = installed;
  }

  /** One router (node 0 of a new lab), ready for pods, with the plugin installed. */
  static async start(init: CniNodeInit = {}): Promise<CniNode> {
    const cluster = await WeftCluster.start({
      nodes: 1,
      podsPerNode: 0,
      ...init.cluster,
      extraArgs: ['--ipam-range', init.range ?? '10.46.0.0/16', '--ipam-range6', init.range6 ?? 'fd00:46::/64', '--ipam-init-peers', '1', ...(init.extraArgs ?? [])],
    });
    try {
      const deadline = Date.now() + 60_000;
      for (;;) {
        const net = await cluster.api<{ ready: boolean; reason?: string }>(0, 'GET', '/v1/cni/network').catch(() => ({ ready: false, reason: 'no answer' }));
        if (net.ready) break;
        if (Date.now() > deadline) throw new LabError(`the router never became ready for pods: ${net.reason ?? ''}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      const binDir = join(cluster.dir, 'cni-bin');
      const confDir = join(cluster.dir, 'cni-conf');
      const journalDir = join(cluster.stateDir(0), 'pending-releases');
      await mkdir(binDir, { recursive: true });
      const installed = installCni({ portmap: false, ...init.install, binDir, confDir, socket: cluster.routers[0]!.socket, journalDir });
      return new CniNode(cluster, binDir, confDir, journalDir, installed);
    } catch (err) {
      await cluster.destroy();
      throw err;
    }
  }

  get nodeNs(): string {
    return this.cluster.lab.nodes[0]!.ns;
  }

  /** The installed conflist, parsed. */
  conflist(): { cniVersion: string; name: string; plugins: Record<string, unknown>[] } {
    return JSON.parse(readFileSync(this.installed.conflist, 'utf8')) as { cniVersion: string; name: string; plugins: Record<string, unknown>[] };
  }

  /** The config libcni hands the weft entry: the entry with the list's name and cniVersion injected. */
  pluginConfig(extra: Record<string, unknown> = {}): Record<string, unknown> {
    const list = this.conflist();
    const entry = list.plugins.find((p) => p.type === 'weft');
    if (entry === undefined) throw new LabError(`${this.installed.conflist} has no weft entry`);
    return { ...entry, name: list.name, cniVersion: list.cniVersion, ...extra };
  }

  /** A new pod network namespace (lab-prefixed); returns its name and path. */
  async newPodNs(): Promise<{ ns: string; path: string }> {
    const ns = `${this.cluster.lab.prefix}-n1p${++podSeq}`;
    await run('ip', ['netns', 'add', ns]);
    this.pods.add(ns);
    return { ns, path: `/var/run/netns/${ns}` };
  }

  async dropPodNs(ns: string): Promise<void> {
    await deleteNamespace(ns);
    this.pods.delete(ns);
  }

  /** Executes the installed plugin as libcni does (see the file comment). */
  call(command: string, c: CniCallInit = {}): Promise<CniCallResult> {
    return callPlugin(this.nodeNs, this.installed.plugin, command, { ...c, config: c.config ?? this.pluginConfig(c.extra) }, this.binDir);
  }

  async destroy(): Promise<void> {
    for (const ns of [...this.pods]) await deleteNamespace(ns).catch(() => undefined);
    this.pods.clear();
    await this.cluster.destroy();
  }
}

/**
 * Runs `plugin` in network namespace `nodeNs` with only the CNI_* variables (`env -i`), the config
 * on stdin, `binDir` as CNI_PATH. Never throws for the plugin's own failures: the result says.
 */
export function callPlugin(nodeNs: string, plugin: string, command: string, c: CniCallInit & { config: Record<string, unknown> | string }, binDir: string): Promise<CniCallResult> {
  const vars = [`CNI_COMMAND=${command}`, `CNI_PATH=${binDir}`];
  if (c.containerId !== undefined) vars.push(`CNI_CONTAINERID=${c.containerId}`, `CNI_IFNAME=${c.ifName ?? 'eth0'}`);
  else if (c.ifName !== undefined) vars.push(`CNI_IFNAME=${c.ifName}`);
  if (c.netns !== undefined) vars.push(`CNI_NETNS=${c.netns}`);
  if (c.args !== undefined) vars.push(`CNI_ARGS=${c.args}`);
  const input = typeof c.config === 'string' ? c.config : JSON.stringify(c.config);
  // nsenter (not `ip netns exec`, which remounts /sys) into the node's netns, then env -i.
  const exec = c.stdin === 'closed' ? ['/bin/sh', '-c', 'exec "$0" 0<&-', plugin] : [plugin];
  const argv = [`--net=/var/run/netns/${nodeNs}`, 'env', '-i', ...vars, ...exec];
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const stdinFd: 'pipe' | 'ignore' | number = typeof c.stdin === 'object' ? openForStdin(c.stdin.path) : c.stdin === 'closed' ? 'ignore' : 'pipe';
    const child = spawn('nsenter', argv, { stdio: [stdinFd, 'pipe', 'pipe'], env: {} });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, c.timeoutMs ?? 60_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (typeof stdinFd === 'number') closeSync(stdinFd);
      let json: Record<string, unknown> | undefined;
      try {
        json = stdout.trim() === '' ? undefined : (JSON.parse(stdout) as Record<string, unknown>);
      } catch {
        json = undefined;
      }
      resolve({ code, stdout, stderr, json, ms: Number(process.hrtime.bigint() - started) / 1e6, timedOut });
    });
    if (child.stdin !== null) {
      child.stdin.on('error', () => undefined); // a plugin that exits without reading
      child.stdin.end(input);
    }
  });
}

/** Opened read-only; a directory opens fine and fails at read (EISDIR), as a runtime's mistake would. */
function openForStdin(path: string): number {
  return openSync(path, constants.O_RDONLY);
}
