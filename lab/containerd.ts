/**
 * A real containerd (with its CRI plugin) per lab node, driven over CRI like kubelet drives it, so
 * CNI plugins run under a real runtime. containerd runs in the node's network namespace, entered
 * with `nsenter --net` (not `ip netns exec`, whose private /sys hides the cgroup tree from runc),
 * with its own directory:
 *
 *   <baseDir>/weft-cri-<prefix>-<node>-XXXXXX/
 *     config.toml  containerd.log  containerd.sock
 *     root/ state/ opt/     containerd's own (pod netns mounts live under state/, see the config)
 *     cni-bin/ cni-conf/    defaults of the CNI bin_dir (= CNI_PATH) and conf_dir
 *
 * Pods get the relative cgroup parent `weft-lab-<prefix>-<node>`, so runc puts them below the
 * cgroups of the process that started the lab. `destroy` removes pods over CRI, stops containerd,
 * then sweeps: shims of this socket, processes in those cgroups, the cgroups, mounts under the
 * directory, the directory. A process exit hook does the same sweep when `destroy` was not called.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LabError } from './errors.js';
import { TrackedProcess } from './lab-process.js';
import type { Lab, LabNode } from './lab.js';
import { cgroupDirs, nodeFiles, staleNodeDirs, sweepNodeDir, type NodeOwner } from './cri-cleanup.js';
import { CriClient, type CriExecResult, type CriPodSandboxConfig, type CriPortMapping } from './cri-client.js';
import { buildLabImages, BUSYBOX_IMAGE, importLabImages, PAUSE_IMAGE, type LabImages } from './cri-images.js';
import { containerdConfig } from './cri-config.js';

export interface ContainerdNodeInit {
  /** CNI bin_dir, also the plugins' CNI_PATH (must hold `loopback`); default `<dir>/cni-bin`, created empty. */
  cniBinDir?: string;
  /** CNI conf_dir; default `<dir>/cni-conf`, created empty. Only the first conflist by name is used. */
  cniConfDir?: string;
  /** Where the node's directory is made; default os.tmpdir(). Keep it short: the socket path must fit 107 bytes. */
  baseDir?: string;
  /** Cache of the image tarballs; default `<tmpdir>/weft-lab-images`. */
  imageCacheDir?: string;
  /**
   * containerd's environment, which it passes on to every CNI plugin. Default: only a PATH, as a
   * service manager would give it (/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin).
   */
  env?: NodeJS.ProcessEnv;
  /** containerd's log level; default 'info' ('debug' shows every CNI call). */
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /** Until containerd serves CRI with the images loaded; default 30 s. */
  startTimeoutMs?: number;
  /** Deadline of each CRI call; default 120 s. */
  callTimeoutMs?: number;
  log?: (line: string) => void;
}

export interface RunPodInit {
  name: string;
  /** Default 'default'. */
  namespace?: string;
  /** Default: a random UUID. */
  uid?: string;
  portMappings?: CriPortMapping[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** The busybox container's command; default ['sleep', '86400']. */
  command?: string[];
}

export interface CriPod {
  readonly sandboxId: string;
  readonly containerId: string;
  readonly name: string;
  readonly namespace: string;
  readonly uid: string;
  /** From PodSandboxStatus, i.e. from the CNI result ('' if the plugin returned none). */
  readonly ip: string;
  readonly additionalIps: readonly string[];
  /** The pod's network namespace as containerd mounted it (under the state dir); '' if unknown. */
  readonly netnsPath: string;
  /** The config the sandbox was run with (CreateContainer needs it again). */
  readonly config: CriPodSandboxConfig;
}

/** `<prefix>-<node>-<mkdtemp suffix>` after 'weft-cri-'. */
const NODE_DIR = /^weft-cri-[a-z0-9]{1,6}-n\d{1,2}-[A-Za-z0-9]{6}$/;
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** Label put on every sandbox the harness starts. */
export const LAB_POD_LABEL = 'weft.lab/prefix';

export class ContainerdNode {
  readonly lab: Lab;
  readonly node: LabNode;
  readonly dir: string;
  readonly configPath: string;
  readonly logPath: string;
  readonly socket: string;
  readonly root: string;
  readonly state: string;
  readonly cniBinDir: string;
  readonly cniConfDir: string;
  /** Relative cgroup parent of every pod. */
  readonly cgroupParent: string;
  readonly images: LabImages;
  private readonly init: ContainerdNodeInit;
  private readonly log: (line: string) => void;
  private readonly cgroupRoots: string[];
  private proc: TrackedProcess | undefined;
  private client: CriClient | undefined;
  private destroying: Promise<void> | undefined;
  private readonly exitHook = (): void => this.sweep();

  private constructor(lab: Lab, node: LabNode, dir: string, images: LabImages, init: ContainerdNodeInit) {
    this.lab = lab;
    this.node = node;
    this.dir = dir;
    this.images = images;
    this.init = init;
    this.log = init.log ?? (() => undefined);
    const files = nodeFiles(dir);
    this.configPath = files.configPath;
    this.logPath = join(dir, 'containerd.log');
    this.socket = files.socket;
    this.root = join(dir, 'root');
    this.state = join(dir, 'state');
    this.cniBinDir = init.cniBinDir ?? join(dir, 'cni-bin');
    this.cniConfDir = init.cniConfDir ?? join(dir, 'cni-conf');
    this.cgroupParent = `weft-lab-${lab.prefix}-${node.name}`;
    this.cgroupRoots = cgroupDirs(this.cgroupParent);
  }

  /** Makes the node's directory and config, builds (or reuses) the images, starts containerd and loads them. */
  static async start(lab: Lab, node: LabNode, init: ContainerdNodeInit = {}): Promise<ContainerdNode> {
    if (!lab.nodes.includes(node)) throw new LabError(`node ${node.name} (${node.ns}) is not in lab ${lab.prefix}`);
    if (!existsSync(node.nsPath)) throw new LabError(`namespace ${node.ns} of lab ${lab.prefix} is gone (${node.nsPath})`);
    const baseDir = init.baseDir ?? tmpdir();
    for (const line of ContainerdNode.cleanupStale({ baseDir })) (init.log ?? (() => undefined))(line);
    const images = await buildLabImages(init.imageCacheDir);
    const dir = await mkdtemp(join(baseDir, `weft-cri-${lab.prefix}-${node.name}-`));
    const cd = new ContainerdNode(lab, node, dir, images, init);
    if (Buffer.byteLength(cd.socket) > 107) {
      await rm(dir, { recursive: true, force: true });
      throw new LabError(`containerd socket path ${cd.socket} is longer than 107 bytes; give a shorter baseDir`);
    }
    process.on('exit', cd.exitHook);
    lab.onDestroy(() => cd.destroy());
    try {
      const owner: NodeOwner = { pid: process.pid, cgroupDirs: cd.cgroupRoots };
      await writeFile(nodeFiles(dir).ownerPath, `${JSON.stringify(owner)}\n`);
      for (const d of [cd.root, cd.state, cd.cniBinDir, cd.cniConfDir]) await mkdir(d, { recursive: true });
      const config = containerdConfig({
        root: cd.root,
        state: cd.state,
        socket: cd.socket,
        optDir: join(dir, 'opt'),
        cniBinDir: cd.cniBinDir,
        cniConfDir: cd.cniConfDir,
        sandboxImage: PAUSE_IMAGE,
        logLevel: init.logLevel ?? 'info',
      });
      await writeFile(cd.configPath, config);
      await cd.startDaemon();
      await importLabImages(cd.socket, images);
      await cd.waitImages();
    } catch (err) {
      await cd.destroy();
      throw err;
    }
    return cd;
  }

  /**
   * Sweeps the node directories under `baseDir` (default os.tmpdir()) whose owning process died
   * without `destroy` (a killed test worker does not run exit hooks): their containerd, shims,
   * pod processes, cgroups, mounts and the directory. `start` calls it first. Returns what it did.
   */
  static cleanupStale(opts: { baseDir?: string } = {}): string[] {
    return staleNodeDirs(opts.baseDir ?? tmpdir(), NODE_DIR).map(({ dir, owner }) => {
      const problems = sweepNodeDir(dir, owner.cgroupDirs);
      return `swept stale ${dir} (owner pid ${owner.pid} is gone)${problems.length > 0 ? `: ${problems.join('; ')}` : ''}`;
    });
  }

  /** The CRI client of the running containerd. */
  get cri(): CriClient {
    if (this.client === undefined) throw new LabError(`containerd of ${this.node.name} in lab ${this.lab.prefix} is not running`);
    return this.client;
  }

  /** PID of containerd itself (nsenter execs it in place), undefined when stopped. */
  get pid(): number | undefined {
    return this.proc?.running === true ? this.proc.pid : undefined;
  }

  /** Everything containerd logged so far, across restarts. */
  logText(): string {
    try {
      return readFileSync(this.logPath, 'utf8');
    } catch {
      return '';
    }
  }

  /** Starts containerd (again) with the same config and state, and waits until it serves CRI. */
  async startDaemon(): Promise<void> {
    if (this.destroying !== undefined) throw new LabError(`containerd of ${this.node.name} in lab ${this.lab.prefix} is destroyed`);
    if (this.proc?.running === true) return;
    rmSync(this.socket, { force: true });
    const argv = ['containerd', '--config', this.configPath];
    const env = this.init.env ?? { PATH: DEFAULT_PATH };
    const child = spawn('nsenter', [`--net=${this.node.nsPath}`, '--', ...argv], { stdio: ['ignore', 'pipe', 'pipe'], env });
    const proc = new TrackedProcess(child, this.node.ns, argv, this.logPath);
    this.proc = proc;
    this.log(`containerd pid ${proc.pid} in ${this.node.ns}: ${this.configPath}`);
    const deadline = Date.now() + (this.init.startTimeoutMs ?? 30_000);
    while (!existsSync(this.socket)) {
      if (!proc.running) throw this.startError('exited before serving');
      if (Date.now() > deadline) throw this.startError('did not create its socket in time');
      await sleep(25);
    }
    this.client = await CriClient.connect(this.socket, this.init.callTimeoutMs === undefined ? {} : { callTimeoutMs: this.init.callTimeoutMs });
    for (;;) {
      try {
        await this.client.version(1000);
        return;
      } catch (err) {
        if (!proc.running) throw this.startError('exited before serving', err);
        if (Date.now() > deadline) throw this.startError('does not answer CRI Version', err);
        await sleep(50);
      }
    }
  }

  /**
   * Stops containerd alone: pods, shims and their netns stay, as when a node's runtime restarts.
   * SIGKILL simulates a crash; SIGTERM (default) is killed after `timeoutMs` (default 10 s).
   */
  async stopDaemon(opts: { signal?: 'SIGTERM' | 'SIGKILL'; timeoutMs?: number } = {}): Promise<void> {
    this.client?.close();
    this.client = undefined;
    const p = this.proc;
    if (p === undefined || !p.running) return;
    if (opts.signal === 'SIGKILL') {
      p.kill('SIGKILL');
      await p.exited;
    } else {
      await p.stop(opts.timeoutMs ?? 10_000);
    }
    this.log(`containerd pid ${p.pid} stopped: ${JSON.stringify(await p.exited)}`);
  }

  async restart(opts: { signal?: 'SIGTERM' | 'SIGKILL' } = {}): Promise<void> {
    await this.stopDaemon(opts);
    await this.startDaemon();
  }

  /** Until the runtime reports NetworkReady (a CNI config is loaded), as kubelet waits for it. */
  async waitNetworkReady(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      const net = (await this.cri.status()).find((c) => c.type === 'NetworkReady');
      if (net?.status === true) return;
      last = `${net?.reason ?? ''} ${net?.message ?? 'no NetworkReady condition'}`.trim();
      if (Date.now() > deadline) throw new LabError(`containerd of ${this.node.name} in lab ${this.lab.prefix}: network not ready after ${timeoutMs} ms: ${last}`);
      await sleep(100);
    }
  }

  /**
   * Runs a pod as kubelet would: RunPodSandbox (CNI ADD), then a busybox container (default
   * `sleep 86400`) to exec in. A failure after the sandbox started removes the sandbox again.
   */
  async runPod(init: RunPodInit): Promise<CriPod> {
    await this.waitNetworkReady();
    const config: CriPodSandboxConfig = {
      metadata: { name: init.name, namespace: init.namespace ?? 'default', uid: init.uid ?? randomUUID(), attempt: 0 },
      hostname: init.name,
      labels: { ...init.labels, [LAB_POD_LABEL]: this.lab.prefix },
      annotations: init.annotations ?? {},
      linux: { cgroupParent: this.cgroupParent },
      ...(init.portMappings === undefined ? {} : { portMappings: init.portMappings }),
    };
    const sandboxId = await this.cri.runPodSandbox(config);
    try {
      const containerId = await this.cri.createContainer(sandboxId, { metadata: { name: 'busybox' }, image: BUSYBOX_IMAGE, command: init.command ?? ['sleep', '86400'] }, config);
      await this.cri.startContainer(containerId);
      const st = await this.cri.podSandboxStatus(sandboxId, true);
      return {
        sandboxId,
        containerId,
        name: config.metadata.name,
        namespace: config.metadata.namespace,
        uid: config.metadata.uid,
        ip: st.ip,
        additionalIps: st.additionalIps,
        netnsPath: netnsFromInfo(st.info),
        config,
      };
    } catch (err) {
      await this.removeSandbox(sandboxId).catch((e: unknown) => this.log(`rolling back sandbox ${sandboxId}: ${String(e)}`));
      throw err;
    }
  }

  /** Runs `cmd` in the pod's busybox container. */
  exec(pod: CriPod, cmd: string[], timeoutS = 30): Promise<CriExecResult> {
    return this.cri.execSync(pod.containerId, cmd, timeoutS);
  }

  /** StopPodSandbox (CNI DEL with prevResult) then RemovePodSandbox (CNI DEL again, without). */
  async removePod(pod: CriPod | string): Promise<void> {
    await this.removeSandbox(typeof pod === 'string' ? pod : pod.sandboxId);
  }

  /** Removes every pod over CRI (when containerd runs), stops containerd, sweeps leftovers; idempotent, never throws. */
  destroy(): Promise<void> {
    this.destroying ??= this.teardown();
    return this.destroying;
  }

  private async teardown(): Promise<void> {
    if (this.client !== undefined && this.proc?.running === true && existsSync(this.socket)) {
      try {
        const pods = await this.client.listPodSandbox();
        await Promise.all(pods.map((p) => this.removeSandbox(p.id).catch((err: unknown) => this.log(`removing sandbox ${p.id}: ${String(err)}`))));
      } catch (err) {
        this.log(`listing sandboxes of ${this.node.name}: ${String(err)}`);
      }
    }
    await this.stopDaemon().catch((err: unknown) => this.log(`stopping containerd of ${this.node.name}: ${String(err)}`));
    this.sweep();
    process.removeListener('exit', this.exitHook);
    this.log(`containerd of ${this.node.name} in lab ${this.lab.prefix} destroyed`);
  }

  private async removeSandbox(id: string): Promise<void> {
    await this.cri.stopPodSandbox(id);
    await this.cri.removePodSandbox(id);
  }

  /** Synchronous last resort: kill what is left, remove cgroups, unmount, delete the directory. */
  private sweep(): void {
    if (this.proc?.running === true) this.proc.kill('SIGKILL');
    for (const p of sweepNodeDir(this.dir, this.cgroupRoots)) this.log(`containerd of ${this.node.name} in lab ${this.lab.prefix}: ${p}`);
  }

  private async waitImages(): Promise<void> {
    const deadline = Date.now() + (this.init.startTimeoutMs ?? 30_000);
    for (const ref of [PAUSE_IMAGE, BUSYBOX_IMAGE]) {
      while ((await this.cri.imageStatus(ref)) === undefined) {
        if (Date.now() > deadline) throw new LabError(`containerd of ${this.node.name} in lab ${this.lab.prefix} does not list ${ref} after import`);
        await sleep(50);
      }
    }
  }

  private startError(what: string, cause?: unknown): LabError {
    const tail = this.logText().split('\n').filter((l) => /level=(error|fatal)|panic|failed/i.test(l)).slice(-5).join('\n');
    return new LabError(`containerd in ${this.node.ns} (lab ${this.lab.prefix}) ${what}; see ${this.logPath}${tail === '' ? '' : `:\n${tail}`}`, { cause });
  }
}

/** The network namespace path from containerd's verbose sandbox info (runtimeSpec.linux.namespaces). */
function netnsFromInfo(info: Record<string, string>): string {
  try {
    const doc = JSON.parse(info.info ?? '{}') as { runtimeSpec?: { linux?: { namespaces?: { type?: string; path?: string }[] } } };
    return doc.runtimeSpec?.linux?.namespaces?.find((n) => n.type === 'network')?.path ?? '';
  } catch {
    return '';
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
