/**
 * A rootful podman (Debian's 4.3, CNI network backend) per lab node, so CNI plugins run under a
 * second real runtime. Every podman call runs in the node's network namespace (`nsenter --net`;
 * podman execs the CNI plugins itself, so the host ends of pod veths land in the node) with its
 * own configuration, isolated from the host's storage:
 *
 *   <baseDir>/weft-pm-<prefix>-<node>-XXXXXX/
 *     containers.conf storage.conf events.log owner.json
 *     root/ runroot/ tmp/     podman's graph root, run root and temp dirs
 *     cni-bin/ cni-conf/      defaults of cni_plugin_dirs and network_config_dir (podman's CNI network list)
 *
 * Containers get the cgroup parent `/weft-lab-pm-<prefix>-<node>` (absolute: the root of every hierarchy). Quirks of this VM handled in the
 * config: no systemd (cgroupfs, file events), no CAP_SYS_RESOURCE (podman's default RLIMIT_NOFILE of
 * 1048576 cannot be set, so small explicit ulimits). `destroy` removes the containers with
 * `podman rm -f` (CNI DEL), then sweeps conmon and container processes, cgroups, mounts, the
 * network namespaces podman made, and the directory; a process exit hook does the same sweep.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LabError } from './errors.js';
import type { Lab, LabNode } from './lab.js';
import { cgroupDirs, staleNodeDirs, sweepOwnedDir, type NodeOwner } from './cri-cleanup.js';
import { buildLabImages, BUSYBOX_IMAGE, type LabImages } from './cri-images.js';

export interface PodmanNodeInit {
  /** cni_plugin_dirs (podman's CNI_PATH); default `<dir>/cni-bin`, created empty. */
  cniBinDir?: string;
  /** network_config_dir: every conflist there is a podman network named by its `name`; default `<dir>/cni-conf`. */
  cniConfDir?: string;
  /** The network `run` attaches to when none is given; default 'weft'. */
  defaultNetwork?: string;
  /** Where the node's directory is made; default os.tmpdir(). */
  baseDir?: string;
  imageCacheDir?: string;
  /** podman's environment, which libcni passes on to every CNI plugin; default only a PATH. */
  env?: NodeJS.ProcessEnv;
  /** Deadline of each podman command; default 60 s. */
  callTimeoutMs?: number;
  log?: (line: string) => void;
}

export interface PodmanRunInit {
  name: string;
  /** Default: the node's default network. */
  network?: string;
  /** `-p` host:container[/proto]. */
  publish?: string[];
  /** The busybox container's command; default ['sleep', '86400']. */
  command?: string[];
}

export interface PodmanContainer {
  readonly id: string;
  readonly name: string;
  readonly network: string;
  /** From `podman inspect`, i.e. from the CNI result ('' when none). */
  readonly ip: string;
  readonly ipv6: string;
  /** The container's network namespace (podman's /run/netns/netns-<uuid>). */
  readonly netnsPath: string;
}

export interface PodmanResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `<prefix>-<node>-<mkdtemp suffix>` after 'weft-pm-'. */
const NODE_DIR = /^weft-pm-[a-z0-9]{1,6}-n\d{1,2}-[A-Za-z0-9]{6}$/;
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';


/** Is the podman binary installed (scripts/prereqs.sh installs it)? */
export function podmanInstalled(): boolean {
  return ['/usr/bin/podman', '/usr/local/bin/podman'].some((p) => existsSync(p));
}

export class PodmanNode {
  readonly lab: Lab;
  readonly node: LabNode;
  readonly dir: string;
  readonly cniBinDir: string;
  readonly cniConfDir: string;
  readonly cgroupParent: string;
  readonly images: LabImages;
  private readonly init: PodmanNodeInit;
  private readonly log: (line: string) => void;
  private readonly cgroupRoots: string[];
  /** Network namespaces of the containers this node ran (swept if podman leaves them). */
  private readonly netnsPaths = new Set<string>();
  private destroying: Promise<void> | undefined;
  private readonly exitHook = (): void => this.sweep();

  private constructor(lab: Lab, node: LabNode, dir: string, images: LabImages, init: PodmanNodeInit) {
    this.lab = lab;
    this.node = node;
    this.dir = dir;
    this.images = images;
    this.init = init;
    this.log = init.log ?? (() => undefined);
    this.cniBinDir = init.cniBinDir ?? join(dir, 'cni-bin');
    this.cniConfDir = init.cniConfDir ?? join(dir, 'cni-conf');
    this.cgroupParent = `/weft-lab-pm-${lab.prefix}-${node.name}`;
    // An absolute --cgroup-parent: with a relative one podman puts conmon below PID 1's cgroups and
    // runc nests the container below conmon's, differently per hierarchy.
    this.cgroupRoots = cgroupDirs(this.cgroupParent.slice(1), 1);
  }

  /** Makes the node's directory and config, builds (or reuses) the busybox image and loads it. */
  static async start(lab: Lab, node: LabNode, init: PodmanNodeInit = {}): Promise<PodmanNode> {
    if (!lab.nodes.includes(node)) throw new LabError(`node ${node.name} (${node.ns}) is not in lab ${lab.prefix}`);
    if (!podmanInstalled()) throw new LabError('podman is not installed (scripts/prereqs.sh installs it)');
    const baseDir = init.baseDir ?? tmpdir();
    for (const line of PodmanNode.cleanupStale({ baseDir })) (init.log ?? (() => undefined))(line);
    const images = await buildLabImages(init.imageCacheDir);
    const dir = await mkdtemp(join(baseDir, `weft-pm-${lab.prefix}-${node.name}-`));
    const pm = new PodmanNode(lab, node, dir, images, init);
    process.on('exit', pm.exitHook);
    lab.onDestroy(() => pm.destroy());
    try {
      const owner: NodeOwner = { pid: process.pid, cgroupDirs: pm.cgroupRoots };
      await writeFile(join(dir, 'owner.json'), `${JSON.stringify(owner)}\n`);
      for (const d of ['root', 'runroot', 'tmp']) await mkdir(join(dir, d));
      for (const d of [pm.cniBinDir, pm.cniConfDir]) await mkdir(d, { recursive: true });
      await writeFile(join(dir, 'containers.conf'), podmanConfig(dir, pm.cniBinDir, pm.cniConfDir, init.defaultNetwork ?? 'weft'));
      await writeFile(join(dir, 'storage.conf'), `[storage]\ndriver = "overlay"\ngraphroot = ${JSON.stringify(join(dir, 'root'))}\nrunroot = ${JSON.stringify(join(dir, 'runroot'))}\n`);
      await pm.loadImage(images.busybox.tar, BUSYBOX_IMAGE);
    } catch (err) {
      await pm.destroy();
      throw err;
    }
    return pm;
  }

  /** Sweeps node directories under `baseDir` whose owning process died without `destroy`. */
  static cleanupStale(opts: { baseDir?: string } = {}): string[] {
    return staleNodeDirs(opts.baseDir ?? tmpdir(), NODE_DIR).map(({ dir, owner }) => {
      const problems = sweepPodmanDir(dir, owner.cgroupDirs, []);
      return `swept stale ${dir} (owner pid ${owner.pid} is gone)${problems.length > 0 ? `: ${problems.join('; ')}` : ''}`;
    });
  }

  /** Runs `podman <args>` in the node's network namespace with this node's config; never throws on a non-zero exit. */
  podman(args: string[], timeoutMs = this.init.callTimeoutMs ?? 60_000): Promise<PodmanResult> {
    const env = {
      ...(this.init.env ?? { PATH: DEFAULT_PATH }),
      CONTAINERS_CONF: join(this.dir, 'containers.conf'),
      CONTAINERS_STORAGE_CONF: join(this.dir, 'storage.conf'),
    };
    return new Promise((resolve, reject) => {
      const child = spawn('nsenter', [`--net=${this.node.nsPath}`, '--', 'podman', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.on('error', (err) => {
        clearTimeout(timer);
        reject(new LabError(`podman ${args.join(' ')} in ${this.node.ns}: ${err.message}`, { cause: err }));
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  }

  /** `podman <args>`, throwing a LabError with podman's stderr when it fails. */
  async podmanOk(args: string[], timeoutMs?: number): Promise<string> {
    const r = await this.podman(args, timeoutMs);
    if (r.code !== 0) throw new LabError(`podman ${args.join(' ')} in ${this.node.ns} (lab ${this.lab.prefix}) exited ${r.code}: ${r.stderr.trim()}`);
    return r.stdout;
  }

  /** `podman run -d` of the busybox image on a network (CNI ADD), then `podman inspect`. */
  async run(init: PodmanRunInit): Promise<PodmanContainer> {
    const network = init.network ?? this.init.defaultNetwork ?? 'weft';
    const args = ['run', '--pull=never', '-d', '--name', init.name, '--network', network, '--cgroup-parent', this.cgroupParent];
    for (const p of init.publish ?? []) args.push('-p', p);
    const id = (await this.podmanOk([...args, BUSYBOX_IMAGE, ...(init.command ?? ['sleep', '86400'])])).trim();
    return this.inspect(id, network);
  }

  /** The container's addresses and netns on `network`, from `podman inspect`. */
  async inspect(nameOrId: string, network = this.init.defaultNetwork ?? 'weft'): Promise<PodmanContainer> {
    const [doc] = JSON.parse(await this.podmanOk(['inspect', '--type', 'container', nameOrId])) as {
      Id: string;
      Name: string;
      NetworkSettings?: { SandboxKey?: string; Networks?: Record<string, { IPAddress?: string; GlobalIPv6Address?: string }> };
    }[];
    if (doc === undefined) throw new LabError(`podman inspect ${nameOrId}: no such container`);
    const net = doc.NetworkSettings?.Networks?.[network];
    const netnsPath = doc.NetworkSettings?.SandboxKey ?? '';
    if (netnsPath !== '') this.netnsPaths.add(netnsPath);
    return { id: doc.Id, name: doc.Name, network, ip: net?.IPAddress ?? '', ipv6: net?.GlobalIPv6Address ?? '', netnsPath };
  }

  /** Runs `cmd` in the container (`podman exec`). */
  exec(c: PodmanContainer | string, cmd: string[], timeoutMs = 30_000): Promise<PodmanResult> {
    return this.podman(['exec', typeof c === 'string' ? c : c.id, ...cmd], timeoutMs);
  }

  /** `podman rm -f -t 0` (CNI DEL). */
  async rm(c: PodmanContainer | string): Promise<void> {
    await this.podmanOk(['rm', '-f', '-t', '0', typeof c === 'string' ? c : c.id]);
  }

  /** Removes every container with podman, then sweeps leftovers; idempotent, never throws. */
  destroy(): Promise<void> {
    this.destroying ??= this.teardown();
    return this.destroying;
  }

  private async teardown(): Promise<void> {
    if (existsSync(join(this.dir, 'containers.conf'))) {
      const r = await this.podman(['rm', '-a', '-f', '-t', '0']).catch((err: unknown) => ({ code: -1, stdout: '', stderr: String(err) }));
      if (r.code !== 0) this.log(`podman rm -a of ${this.node.name}: ${r.stderr.trim()}`);
    }
    this.sweep();
    process.removeListener('exit', this.exitHook);
    this.log(`podman of ${this.node.name} in lab ${this.lab.prefix} destroyed`);
  }

  private sweep(): void {
    for (const p of sweepPodmanDir(this.dir, this.cgroupRoots, [...this.netnsPaths])) this.log(`podman of ${this.node.name} in lab ${this.lab.prefix}: ${p}`);
  }

  /** `podman load` of an OCI layout tarball, then names it `ref` (load names it after the layout's tag alone). */
  private async loadImage(tar: string, ref: string): Promise<void> {
    const out = await this.podmanOk(['load', '-i', tar], 120_000);
    const loaded = /Loaded image(?:\(s\))?: *(\S+)/.exec(out)?.[1];
    if (loaded === undefined) throw new LabError(`podman load -i ${tar} named no image: ${out.trim()}`);
    if (loaded === ref) return;
    await this.podmanOk(['tag', loaded, ref]);
    await this.podmanOk(['untag', ref, loaded]);
  }
}

/** containers.conf of a lab node: everything under `dir`, CNI backend with the lab's dirs. */
export function podmanConfig(dir: string, cniBinDir: string, cniConfDir: string, defaultNetwork: string): string {
  const s = (v: string): string => JSON.stringify(v);
  return `# Written by weft's lab (lab/podman.ts) for one lab node.
[containers]
log_driver = "k8s-file"
cgroupns = "host"
# podman's default RLIMIT_NOFILE (1048576) needs CAP_SYS_RESOURCE, which the lab lacks.
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = ${s(join(dir, 'events.log'))}
runtime = "runc"
tmp_dir = ${s(join(dir, 'tmp'))}
image_copy_tmp_dir = ${s(join(dir, 'tmp'))}

[network]
network_backend = "cni"
cni_plugin_dirs = [${s(cniBinDir)}]
network_config_dir = ${s(cniConfDir)}
default_network = ${s(defaultNetwork)}
`;
}

/** Kills conmon and container processes of `dir`, removes cgroups, network namespaces, mounts and `dir`; returns the problems left. */
function sweepPodmanDir(dir: string, cgroups: readonly string[], netns: readonly string[]): string[] {
  return sweepOwnedDir(dir, () => conmonPids(dir), cgroups, (problems) => {
    for (const ns of netns) {
      if (!existsSync(ns)) continue;
      // A netns file is a bind mount of the namespace: unmount (lazily if busy), then remove.
      if (spawnSync('umount', [ns], { stdio: 'ignore' }).status !== 0) spawnSync('umount', ['-l', ns], { stdio: 'ignore' });
      try {
        rmSync(ns, { force: true });
      } catch (err) {
        problems.push(`removing ${ns}: ${String(err)}`);
      }
    }
  });
}

/** PIDs of conmon processes whose command line names a path under `dir`. */
function conmonPids(dir: string): number[] {
  const pids: number[] = [];
  for (const e of safeReaddir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if ((argv[0] ?? '').split('/').pop() === 'conmon' && argv.some((a) => a.startsWith(`${dir}/`))) pids.push(Number(e));
  }
  return pids;
}

function safeReaddir(p: string): string[] {
  try {
    return readdirSync(p);
  } catch {
    return [];
  }
}
