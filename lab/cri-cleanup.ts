/**
 * Finding and removing what a lab containerd leaves behind when it was not shut down cleanly:
 * its shims (found by the instance's own socket path in their command line), the processes in its
 * pods' cgroups (below a cgroup parent named after the lab), those cgroups, and the mounts under
 * its directory (container rootfs overlays, /dev/shm of sandboxes, pod netns bind mounts). Every
 * function here is synchronous so a process exit hook can use it too; none throws.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** The files a lab containerd's directory holds, as the sweep needs them. */
export function nodeFiles(dir: string): { socket: string; configPath: string; ownerPath: string } {
  return { socket: join(dir, 'containerd.sock'), configPath: join(dir, 'config.toml'), ownerPath: join(dir, 'owner.json') };
}

/** What `owner.json` in a node directory records: who started it and which cgroups its pods use. */
export interface NodeOwner {
  pid: number;
  cgroupDirs: string[];
}

/**
 * Kills everything the containerd of node directory `dir` started (containerd itself, found by its
 * config path; its shims; the processes in its pod cgroups), removes those cgroups, unmounts
 * everything under `dir` and deletes `dir`. Returns the problems left (empty when all is gone).
 */
export function sweepNodeDir(dir: string, cgroups: readonly string[]): string[] {
  const { socket, configPath } = nodeFiles(dir);
  return sweepOwnedDir(dir, () => [...daemonPids(configPath), ...shimPids(socket)], cgroups);
}

/**
 * The sweep of a runtime's node directory: kills `processes()` and the processes in `cgroups`
 * (retrying while any lives), removes the cgroups, runs `more` (other leftovers of that runtime,
 * pushing problems), unmounts everything under `dir` and deletes it. Returns the problems left.
 */
export function sweepOwnedDir(dir: string, processes: () => number[], cgroups: readonly string[], more?: (problems: string[]) => void): string[] {
  const victims = (): number[] => [...processes(), ...cgroupPids(cgroups)].filter(pidAlive);
  for (let i = 0; i < 100 && victims().length > 0; i++) {
    signalPids(victims(), 'SIGKILL');
    sleepSync(20);
  }
  const problems: string[] = [];
  const alive = victims();
  if (alive.length > 0) problems.push(`processes still alive: ${alive.join(' ')}`);
  const cgroupsLeft = removeCgroups(cgroups);
  if (cgroupsLeft.length > 0) problems.push(`cgroups still busy: ${cgroupsLeft.join(' ')}`);
  more?.(problems);
  const mountsLeft = unmountUnder(dir);
  if (mountsLeft.length > 0) {
    problems.push(`mounts left, so ${dir} is kept: ${mountsLeft.join(' ')}`);
    return problems;
  }
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch (err) {
    problems.push(`deleting ${dir}: ${String(err)}`);
  }
  return problems;
}

/**
 * Node directories under `baseDir` (names matching `pattern`) whose `owner.json` names a process
 * that is gone: what a killed test worker left behind (it runs no exit hooks).
 */
export function staleNodeDirs(baseDir: string, pattern: RegExp): { dir: string; owner: NodeOwner }[] {
  const out: { dir: string; owner: NodeOwner }[] = [];
  for (const e of safeReaddir(baseDir).filter((n) => pattern.test(n))) {
    const dir = join(baseDir, e);
    let owner: NodeOwner;
    try {
      owner = JSON.parse(readFileSync(nodeFiles(dir).ownerPath, 'utf8')) as NodeOwner;
    } catch {
      continue; // not started by a lab harness, or still being made
    }
    if (owner.pid !== process.pid && !pidAlive(owner.pid)) out.push({ dir, owner });
  }
  return out;
}

/** PIDs of `containerd --config <configPath>` processes. */
export function daemonPids(configPath: string): number[] {
  return procArgv().filter(([, argv]) => (argv[0] ?? '').split('/').pop() === 'containerd' && argv[argv.indexOf('--config') + 1] === configPath).map(([pid]) => pid);
}

/** PIDs of `containerd-shim*` processes serving the containerd at `socket`. */
export function shimPids(socket: string): number[] {
  return procArgv()
    .filter(([, argv]) => (argv[0] ?? '').split('/').pop()!.startsWith('containerd-shim') && argv[argv.indexOf('-address') + 1] === socket)
    .map(([pid]) => pid);
}

function procArgv(): [number, string[]][] {
  const out: [number, string[]][] = [];
  for (const entry of safeReaddir('/proc')) {
    if (/^\d+$/.test(entry)) out.push([Number(entry), readText(`/proc/${entry}/cmdline`).split('\0')]);
  }
  return out;
}

/**
 * The directories of cgroup `parent` (relative, as the lab gives it to the CRI) in every mounted
 * hierarchy, resolved against the cgroups of process `pid` as runc does for a relative path.
 */
export function cgroupDirs(parent: string, pid: number | 'self' = 'self'): string[] {
  const own = new Map<string, string>(); // sorted controller list ('' for v2) -> own path
  for (const line of readText(`/proc/${pid}/cgroup`).split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (m !== null) own.set(controllerKey(m[1]!.split(',')), m[2]!);
  }
  const dirs: string[] = [];
  for (const line of readText(`/proc/${pid}/mountinfo`).split('\n')) {
    const [pre, post] = line.split(' - ');
    if (pre === undefined || post === undefined) continue;
    const fields = pre.split(' ');
    const [fstype, , superOpts = ''] = post.split(' ');
    const root = unescapeMount(fields[3] ?? '/');
    const mountPoint = unescapeMount(fields[4] ?? '');
    let key: string;
    if (fstype === 'cgroup2') key = '';
    else if (fstype === 'cgroup') key = controllerKey(superOpts.split(',').filter((o) => KNOWN_V1.has(o) || o.startsWith('name=')));
    else continue;
    const path = own.get(key);
    if (path === undefined) continue;
    const rel = path.startsWith(root) ? path.slice(root === '/' ? 0 : root.length) : path;
    dirs.push(join(mountPoint, rel, parent));
  }
  return dirs;
}

/** PIDs in the cgroups under `dirs` (recursively). */
export function cgroupPids(dirs: readonly string[]): number[] {
  const pids = new Set<number>();
  const walk = (dir: string): void => {
    for (const p of readText(join(dir, 'cgroup.procs')).split('\n')) if (/^\d+$/.test(p)) pids.add(Number(p));
    for (const e of safeReaddir(dir)) if (isDir(join(dir, e))) walk(join(dir, e));
  };
  for (const d of dirs) walk(d);
  return [...pids];
}

/** Removes the cgroup directories under and including each of `dirs`, deepest first; returns those that remain. */
export function removeCgroups(dirs: readonly string[]): string[] {
  const left: string[] = [];
  const walk = (dir: string): void => {
    for (const e of safeReaddir(dir)) if (isDir(join(dir, e))) walk(join(dir, e));
    try {
      rmdirSync(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') left.push(dir);
    }
  };
  for (const d of dirs) walk(d);
  return left;
}

/** Mount points strictly under `dir`, deepest first. */
export function mountsUnder(dir: string): string[] {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  const points = readText('/proc/self/mountinfo')
    .split('\n')
    .map((l) => unescapeMount(l.split(' ')[4] ?? ''))
    .filter((p) => p.startsWith(prefix));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/** Unmounts everything under `dir` (lazily when busy); returns the mount points that remain. */
export function unmountUnder(dir: string): string[] {
  for (let round = 0; round < 3; round++) {
    const points = mountsUnder(dir);
    if (points.length === 0) return [];
    for (const p of points) {
      if (spawnSync('umount', [p], { stdio: 'ignore' }).status !== 0) spawnSync('umount', ['-l', p], { stdio: 'ignore' });
    }
  }
  return mountsUnder(dir);
}

/** Sends `signal` to each PID still alive; returns those it reached. */
export function signalPids(pids: readonly number[], signal: NodeJS.Signals): number[] {
  return pids.filter((pid) => {
    try {
      process.kill(pid, signal);
      return true;
    } catch {
      return false;
    }
  });
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie still answers signal 0; it is gone for our purposes.
  return !/^\d+ \(.*\) Z /.test(readText(`/proc/${pid}/stat`));
}

const KNOWN_V1 = new Set(['cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'net_cls', 'net_prio', 'blkio', 'perf_event', 'hugetlb', 'pids', 'rdma', 'misc']);

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function controllerKey(controllers: string[]): string {
  return controllers.filter((c) => c !== '').sort().join(',');
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

function readText(p: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}

function safeReaddir(p: string): string[] {
  try {
    return readdirSync(p);
  } catch {
    return [];
  }
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}
