/**
 * The lab's real runtime harness (root): one containerd per lab node, in the node's namespace,
 * driven over CRI with the Debian reference CNI plugins (bridge + host-local + portmap, loopback).
 * Pods get their IPs from the CNI result, ping each other on one node and across the underlay,
 * a hostPort reaches a pod through portmap, pods survive a containerd crash and restart, and
 * StopPodSandbox/RemovePodSandbox run DEL (veths and IPAM reservations go). The node of a dead
 * owner is swept by cleanupStale; then everything the harness made (processes, cgroups, mounts,
 * directories, namespaces) is checked gone after destroy.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bridgeConflist, ContainerdNode, installReferencePlugins, Lab, writeConflist, type CriPod } from '../../lab/index.js';
import { cgroupDirs, mountsUnder, shimPids } from '../../lab/cri-cleanup.js';
import { labNamespaces } from './helpers.js';

const isRoot = process.getuid?.() === 0;
const haveContainerd = existsSync('/usr/bin/containerd') && existsSync('/usr/bin/umoci');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z '); // reaped later by init
}

function links(lab: Lab, ns: string): Promise<string[]> {
  return lab.exec(ns, ['ip', '-j', 'link', 'show']).then((r) => (JSON.parse(r.stdout) as { ifname: string }[]).map((l) => l.ifname).sort());
}

describe.skipIf(!isRoot || !haveContainerd)('containerd over CRI with the reference CNI plugins', () => {
  let lab: Lab;
  const cds: ContainerdNode[] = [];
  const pods: CriPod[] = [];
  const log: string[] = [];
  const subnet = (i: number): string => `10.88.${i}.0/24`;

  beforeAll(async () => {
    lab = await Lab.create({ nodes: 2, log: (l) => log.push(l) });
    const started = Date.now();
    for (const node of lab.nodes) {
      const cd = await ContainerdNode.start(lab, node, { log: (l) => log.push(l) });
      cds.push(cd);
      await installReferencePlugins(cd.cniBinDir);
      await writeConflist(cd.cniConfDir, bridgeConflist({ subnet: subnet(node.index), dataDir: join(cd.dir, 'ipam') }));
    }
    log.push(`two containerd nodes ready in ${Date.now() - started} ms`);
    // Pod routes between the nodes over the underlay (what an overlay would otherwise provide).
    await lab.exec(lab.nodes[0]!.ns, ['ip', 'route', 'add', subnet(1), 'via', lab.nodes[1]!.address]);
    await lab.exec(lab.nodes[1]!.ns, ['ip', 'route', 'add', subnet(0), 'via', lab.nodes[0]!.address]);
  });

  afterAll(async () => {
    for (const cd of cds) await cd.destroy();
    await lab?.destroy();
    if (process.env.WEFT_LAB_LOG === '1') console.log(log.join('\n'));
  });

  it('runs containerd in the node namespace with its own socket and config', async () => {
    const [cd] = cds;
    const v = await cd!.cri.version();
    expect(v.runtimeName).toBe('containerd');
    expect(v.runtimeApiVersion).toBe('v1');
    expect(readlinkSync(`/proc/${cd!.pid!}/ns/net`)).toBe(`net:[${statSync(lab.nodes[0]!.nsPath).ino}]`);
    expect(cd!.socket.startsWith(cd!.dir)).toBe(true);
    const config = readFileSync(cd!.configPath, 'utf8');
    for (const line of ['restrict_oom_score_adj = true', 'netns_mounts_under_state_dir = true', 'SystemdCgroup = false', `bin_dir = "${cd!.cniBinDir}"`]) {
      expect(config).toContain(line);
    }
    await cd!.waitNetworkReady();
    expect(await cd!.cri.imageStatus('weft.lab/pause:3.6')).toMatch(/^sha256:/);
  });

  it('runs two pods whose IPs come from the CNI result', async () => {
    const cd = cds[0]!;
    const started = Date.now();
    pods.push(await cd.runPod({ name: 'a', namespace: 'lab', uid: 'uid-a' }));
    pods.push(await cd.runPod({ name: 'b', namespace: 'lab', uid: 'uid-b' }));
    log.push(`two pods in ${Date.now() - started} ms`);
    const [a, b] = [pods[0]!, pods[1]!];
    expect(a.ip).toMatch(/^10\.88\.0\.\d+$/);
    expect(b.ip).toMatch(/^10\.88\.0\.\d+$/);
    expect(a.ip).not.toBe(b.ip);
    expect(a.netnsPath.startsWith(join(cd.state, 'io.containerd.grpc.v1.cri', 'netns'))).toBe(true);
    const listed = await cd.cri.listPodSandbox({ labels: { 'weft.lab/prefix': lab.prefix } });
    expect(listed.map((p) => [p.name, p.namespace, p.uid, p.state]).sort()).toEqual([
      ['a', 'lab', 'uid-a', 'SANDBOX_READY'],
      ['b', 'lab', 'uid-b', 'SANDBOX_READY'],
    ]);
    const nodeLinks = await links(lab, lab.nodes[0]!.ns);
    expect(nodeLinks.filter((l) => l.startsWith('veth'))).toHaveLength(2);
    const addr = (await lab.exec(lab.nodes[0]!.ns, ['ip', '-br', 'addr', 'show', 'cni0'])).stdout;
    expect(addr).toContain('10.88.0.1/24');
    const eth0 = await cd.exec(a, ['ip', '-4', '-o', 'addr', 'show', 'eth0']);
    expect(eth0.stdout).toContain(`${a.ip}/24`);
  });

  it('pings from one pod to the other through the bridge', async () => {
    const [a, b] = [pods[0]!, pods[1]!];
    const r = await cds[0]!.exec(a, ['ping', '-c', '2', '-W', '2', b.ip], 15);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('2 packets received');
    const miss = await cds[0]!.exec(a, ['ping', '-c', '1', '-W', '1', '10.88.0.250'], 10);
    expect(miss.exitCode).not.toBe(0);
  });

  it('reaches a pod on the other node over the underlay, and a hostPort through portmap', async () => {
    const cd2 = cds[1]!;
    const web = await cd2.runPod({
      name: 'web',
      command: ['sh', '-c', 'echo hello-from-web > /tmp/index.html && exec httpd -f -p 80 -h /tmp'],
      portMappings: [{ containerPort: 80, hostPort: 8080 }],
    });
    expect(web.ip).toMatch(/^10\.88\.1\.\d+$/);
    const r = await cds[0]!.exec(pods[0]!, ['ping', '-c', '2', '-W', '2', web.ip], 15);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    const nat = (await lab.exec(lab.nodes[1]!.ns, ['iptables', '-t', 'nat', '-S'])).stdout;
    expect(nat).toMatch(/--dport 8080 .*-j DNAT --to-destination 10\.88\.1\.\d+:80/);
    // busybox-static's wget segfaults (Debian 12), so speak HTTP through nc.
    const get = `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 ${lab.nodes[1]!.address} 8080`;
    let got = '';
    for (let i = 0; i < 20 && !got.includes('hello-from-web'); i++) {
      got = (await cds[0]!.exec(pods[0]!, ['sh', '-c', get], 10)).stdout;
      if (!got.includes('hello-from-web')) await new Promise((res) => setTimeout(res, 100));
    }
    expect(got).toContain('hello-from-web');
    await cd2.removePod(web);
    expect((await lab.exec(lab.nodes[1]!.ns, ['iptables', '-t', 'nat', '-S'])).stdout).not.toContain('--dport 8080');
  });

  it('keeps pods across a containerd crash and restart', async () => {
    const cd = cds[0]!;
    const before = cd.pid;
    const started = Date.now();
    await cd.restart({ signal: 'SIGKILL' });
    log.push(`containerd restart in ${Date.now() - started} ms`);
    expect(cd.pid).not.toBe(before);
    const st = await cd.cri.podSandboxStatus(pods[1]!.sandboxId);
    expect([st.state, st.ip]).toEqual(['SANDBOX_READY', pods[1]!.ip]);
    const r = await cd.exec(pods[1]!, ['ping', '-c', '1', '-W', '2', pods[0]!.ip], 10);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
  });

  it('stops and removes the pods: DEL removes the veths and releases the addresses', async () => {
    const cd = cds[0]!;
    const ipamDir = join(cd.dir, 'ipam', 'lab');
    expect(readdirSync(ipamDir)).toEqual(expect.arrayContaining([pods[0]!.ip, pods[1]!.ip]));
    await cd.cri.stopPodSandbox(pods[0]!.sandboxId);
    expect((await cd.cri.podSandboxStatus(pods[0]!.sandboxId)).state).toBe('SANDBOX_NOTREADY');
    expect(readdirSync(ipamDir)).not.toContain(pods[0]!.ip); // DEL at stop
    await cd.cri.removePodSandbox(pods[0]!.sandboxId);
    await cd.removePod(pods[1]!);
    expect(await cd.cri.listPodSandbox()).toEqual([]);
    expect(await links(lab, lab.nodes[0]!.ns)).toEqual(['cni0', 'eth0', 'lo']);
    expect(readdirSync(ipamDir).filter((f) => f.startsWith('10.'))).toEqual([]);
    expect(mountsUnder(join(cd.state, 'io.containerd.grpc.v1.cri', 'netns'))).toEqual([]);
    expect(shimPids(cd.socket)).toEqual([]);
  });

  it('sweeps the node of a process that died without destroy (containerd, shim, pod, cgroups, mounts)', async () => {
    const cd = cds[1]!;
    await cd.runPod({ name: 'orphan' });
    const [shim] = shimPids(cd.socket);
    const daemon = cd.pid!;
    const dead = Number(execFileSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' }).trim());
    const ownerPath = join(cd.dir, 'owner.json');
    const owner = JSON.parse(readFileSync(ownerPath, 'utf8')) as { pid: number; cgroupDirs: string[] };
    expect(owner.pid).toBe(process.pid);
    writeFileSync(ownerPath, JSON.stringify({ ...owner, pid: dead })); // as if a killed test worker had started it
    const swept = ContainerdNode.cleanupStale();
    expect(swept).toEqual([`swept stale ${cd.dir} (owner pid ${dead} is gone)`]);
    expect(existsSync(cd.dir)).toBe(false);
    expect([alive(daemon), alive(shim!)]).toEqual([false, false]);
    expect(owner.cgroupDirs.filter((d) => existsSync(d))).toEqual([]);
    await cd.destroy(); // nothing left to do: must not throw
  });

  it('leaves nothing behind after destroy, even with a pod still running', async () => {
    const cd = cds[0]!;
    await cd.runPod({ name: 'left' });
    expect(shimPids(cd.socket)).toHaveLength(1);
    const { dir, socket, cgroupParent } = cd;
    const prefix = lab.prefix;
    const started = Date.now();
    for (const c of cds) await c.destroy();
    log.push(`destroy in ${Date.now() - started} ms`);
    expect(existsSync(dir)).toBe(false);
    expect(shimPids(socket)).toEqual([]);
    expect(cgroupDirs(cgroupParent).filter((d) => existsSync(d))).toEqual([]);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(dir);
    await lab.destroy();
    expect(labNamespaces(prefix)).toEqual([]);
  });
});
