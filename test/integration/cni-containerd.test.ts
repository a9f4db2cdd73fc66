/**
 * The weft CNI plugin driven by a real runtime: two lab nodes, each with a weft router (IPAM on,
 * dual-stack) and its own containerd, which execs the installed plugin (the PATH-free wrapper and
 * conflist written by `installCni`, portmap and bandwidth chained) as kubelet would. Over CRI: pods
 * on both nodes, ping between them across weft (IPv4 and IPv6), egress to an address outside the
 * cluster source-NATed by the node, a hostPort through portmap reached from the other node, a
 * pod's bandwidth annotations applied by the bandwidth plugin (tbf, ifb) and removed by DEL,
 * StopPodSandbox + RemovePodSandbox (DEL twice), DEL while the router is down (journaled and
 * replayed), and GC after a runtime restart (executed as the spec describes: containerd 1.6 never
 * sends GC).
 */
import { execFile, execFileSync } from 'node:child_process';
import { parseIperfTcp } from '../../lab/traffic-parse.js';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GC_GRACE_MS } from '../../src/cni/commands/gc.js';
import { installCni } from '../../src/cni/install.js';
import { ContainerdNode, installReferencePlugins, type CriPod } from '../../lab/index.js';
import { startCapture } from '../../lab/traffic.js';
import { WeftCluster } from '../../lab/weft-cluster.js';
import { until } from './helpers.js';

const isRoot = process.getuid?.() === 0;

interface Listed {
  allocations: { containerId: string; ifName: string; addresses: string[] }[];
}

describe.skipIf(!isRoot)('CNI plugin under containerd (CRI), two nodes, dual-stack', () => {
  let c: WeftCluster;
  const cds: ContainerdNode[] = [];
  const wrappers: string[] = [];
  const allocations = async (i: number) => (await c.api<Listed>(i, 'GET', '/v1/ipam/allocations')).allocations;

  beforeAll(async () => {
    c = await WeftCluster.start({
      nodes: 2,
      podsPerNode: 0,
      extraArgs: ['--ipam-range', '10.45.0.0/16', '--ipam-range6', 'fd00:45::/64', '--ipam-init-peers', '2', '--log-level', 'info'],
    });
    await c.waitEstablished();
    for (const i of [0, 1]) {
      await until(`n${i + 1} ready for pods`, async () => ((await c.api<{ ready: boolean }>(i, 'GET', '/v1/cni/network')).ready ? true : undefined));
      const cd = await ContainerdNode.start(c.lab, c.lab.nodes[i]!);
      cds.push(cd);
      await installReferencePlugins(cd.cniBinDir, ['loopback', 'portmap', 'bandwidth']);
      const r = installCni({ binDir: cd.cniBinDir, confDir: cd.cniConfDir, socket: c.routers[i]!.socket, journalDir: join(c.stateDir(i), 'pending-releases'), bandwidth: true });
      expect(r.shadowedBy).toEqual([]);
      expect(r.chainedMissing).toEqual([]);
      expect(r.native).toBe(true);
      wrappers.push(r.plugin);
    }
  }, 120_000);

  afterAll(async () => {
    for (const cd of cds) await cd.destroy();
    await c?.destroy();
  });

  let a: CriPod;
  let b: CriPod;

  it('pods on two nodes get weft addresses (IPv4 and IPv6) and reach each other across the overlay', async () => {
    a = await cds[0]!.runPod({ name: 'a', namespace: 'weft', uid: 'uid-a' });
    b = await cds[1]!.runPod({ name: 'b', namespace: 'weft', uid: 'uid-b' });
    expect(a.ip).toMatch(/^10\.45\.\d+\.\d+$/);
    expect(b.additionalIps[0]).toMatch(/^fd00:45::/);
    // The allocation is held by the router of the pod's node, under the sandbox id.
    expect((await allocations(0)).find((x) => x.containerId === a.sandboxId)?.addresses).toContain(a.ip);
    const v4 = await cds[0]!.exec(a, ['ping', '-c', '2', '-W', '2', b.ip], 15);
    expect(v4.exitCode, v4.stdout + v4.stderr).toBe(0);
    const v6 = await cds[0]!.exec(a, ['ping', '-6', '-c', '2', '-W', '2', b.additionalIps[0]!], 15);
    expect(v6.exitCode, v6.stdout + v6.stderr).toBe(0);
    // The MTU is the overlay's.
    const link = await cds[0]!.exec(a, ['ip', 'link', 'show', 'eth0'], 10);
    expect(link.stdout).toContain(`mtu ${c.overlayMtu}`);
  });

  it('egress outside the cluster ranges leaves through the node with source NAT; pod-to-pod is not NATed', async () => {
    const n2 = c.lab.nodes[1]!;
    const cap = await startCapture(c.lab, n2.ns, 'eth0', `icmp and src host ${c.lab.nodes[0]!.address}`);
    const r = await cds[0]!.exec(a, ['ping', '-c', '2', '-W', '2', n2.address], 15);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(await cap.stop()).toBeGreaterThanOrEqual(2);
    // Pod to pod: b sees a's own address.
    const seen = await startCapture(c.lab, n2.ns, 'weft', `icmp and src host ${a.ip}`);
    expect((await cds[0]!.exec(a, ['ping', '-c', '1', '-W', '2', b.ip], 10)).exitCode).toBe(0);
    expect(await seen.stop()).toBeGreaterThanOrEqual(1);
  });

  it('portmap behind weft: a hostPort on n2 answers a pod on n1', async () => {
    const web = await cds[1]!.runPod({
      name: 'web',
      namespace: 'weft',
      uid: 'uid-web',
      command: ['sh', '-c', 'echo hello-from-weft > /tmp/index.html && exec httpd -f -p 80 -h /tmp'],
      portMappings: [{ containerPort: 80, hostPort: 8081 }],
    });
    const get = `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 ${c.lab.nodes[1]!.address} 8081`;
    let got = '';
    for (let i = 0; i < 30 && !got.includes('hello-from-weft'); i++) {
      got = (await cds[0]!.exec(a, ['sh', '-c', get], 10)).stdout;
      if (!got.includes('hello-from-weft')) await new Promise((res) => setTimeout(res, 100));
    }
    expect(got).toContain('hello-from-weft');
    await cds[1]!.removePod(web);
    expect((await allocations(1)).some((x) => x.containerId === web.sandboxId)).toBe(false);
  });

  it('bandwidth behind weft: the pod annotations become tbf limits (egress through an ifb); the limited pod is slowed, DEL removes the ifb', async () => {
    const n1 = c.lab.nodes[0]!;
    const ifbs = async () => (await c.lab.exec(n1.ns, ['ip', '-o', 'link', 'show', 'type', 'ifb'])).stdout.match(/^\d+: ([^:@]+)/gm)?.map((l) => l.split(': ')[1]!) ?? [];
    const before = await ifbs();
    const slow = await cds[0]!.runPod({
      name: 'slow',
      namespace: 'weft',
      uid: 'uid-slow',
      annotations: { 'kubernetes.io/egress-bandwidth': '10M', 'kubernetes.io/ingress-bandwidth': '10M' },
    });
    expect(slow.netnsPath).not.toBe('');
    const added = (await ifbs()).filter((x) => !before.includes(x));
    expect(added).toHaveLength(1);
    expect((await c.lab.exec(n1.ns, ['tc', 'qdisc', 'show', 'dev', added[0]!])).stdout).toContain('tbf');
    // Ingress (to the pod) is shaped by a tbf on the pod's host veth.
    const qdiscs = (await c.lab.exec(n1.ns, ['tc', 'qdisc', 'show'])).stdout;
    expect(qdiscs.match(/qdisc tbf \S+ dev vw[0-9a-f]{12} root/g) ?? []).toHaveLength(1);
    // Measured from each pod's netns to its node: the unlimited pod a, then the limited one. The
    // first 2 s are omitted (-O 2): containerd 1.6 asks for a burst of 2^32-1 bits, which the
    // bandwidth plugin turns into a token bucket of some 190 MB at this rate, drained first at
    // the unlimited rate; what is asserted is the rate after it.
    // One iperf3 run that hangs (CI saw a client stuck past 30 s once, on a loaded machine) is
    // retried on a fresh port; every attempt's error is reported if none completes.
    const mbpsOnce = async (netns: string, port: number, reverse: boolean): Promise<number> => {
      const server = c.lab.spawn(n1.ns, ['iperf3', '-s', '-1', '-p', String(port)]);
      try {
        await until('iperf3 server listening', async () => ((await c.lab.exec(n1.ns, ['ss', '-H', '-n', '-l', '-t', 'sport', '=', `:${port}`])).stdout.trim() !== '' ? true : undefined), 10_000);
        const out = execFileSync('nsenter', [`--net=${netns}`, '--', 'iperf3', '-J', '--connect-timeout', '3000', ...(reverse ? ['--rcv-timeout', '5000'] : ['--snd-timeout', '5000']), '-c', n1.address, '-p', String(port), '-O', '2', '-t', '3', ...(reverse ? ['-R'] : [])], { encoding: 'utf8', timeout: 20_000 });
        return parseIperfTcp(out).gbps * 1000;
      } finally {
        await server.stop(2000);
      }
    };
    const mbps = async (netns: string, port: number, reverse: boolean): Promise<number> => {
      const errors: string[] = [];
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          return await mbpsOnce(netns, port + 100 * attempt, reverse);
        } catch (err) {
          errors.push(`port ${port + 100 * attempt}: ${(err as Error).message}`);
        }
      }
      throw new Error(`iperf3 from ${netns} failed 3 times: ${errors.join('; ')}`);
    };
    const free = await mbps(a.netnsPath, 5301, false);
    const limitedOut = await mbps(slow.netnsPath, 5302, false);
    const limitedIn = await mbps(slow.netnsPath, 5303, true);
    const shaping = (await c.lab.exec(n1.ns, ['tc', '-s', 'qdisc', 'show'])).stdout.split('\n').filter((l) => l.includes('tbf')).join('; ');
    expect(limitedOut, `egress limited to 10 Mbit/s: ${limitedOut} Mbit/s (unlimited ${free}); ${shaping}`).toBeLessThan(30);
    expect(limitedIn, `ingress limited to 10 Mbit/s: ${limitedIn} Mbit/s (unlimited ${free}); ${shaping}`).toBeLessThan(30);
    expect(free).toBeGreaterThan(3 * limitedOut);
    await cds[0]!.removePod(slow);
    expect(await ifbs()).toEqual(before);
    expect((await allocations(0)).some((x) => x.containerId === slow.sandboxId)).toBe(false);
  }, 180_000);

  it('DEL while the router is down still succeeds; the release is journaled and replayed when it is back', async () => {
    const held = (await allocations(1)).find((x) => x.containerId === b.sandboxId)!;
    expect(held.addresses).toContain(b.ip);
    await c.stopRouter(1);
    await cds[1]!.removePod(b); // StopPodSandbox (DEL with prevResult) and RemovePodSandbox (DEL without)
    await c.startRouter(1);
    await until('the journaled release replayed', async () => ((await allocations(1)).some((x) => x.containerId === b.sandboxId) ? undefined : true));
    const links = (await c.lab.exec(c.lab.nodes[1]!.ns, ['ip', '-o', 'link', 'show'])).stdout;
    expect(links).not.toMatch(/vw[0-9a-f]{12}/);
  });

  it('40 parallel ADDs through the installed plugin on one node: 40 distinct addresses, 40 working interfaces; 40 DELs clean up', async () => {
    const node = c.lab.nodes[0]!;
    const names = Array.from({ length: 40 }, (_, k) => `${c.lab.prefix}-par${k}`);
    const config = JSON.stringify({ cniVersion: '1.0.0', name: 'weft', type: 'weft', socket: c.routers[0]!.socket, journalDir: join(c.stateDir(0), 'pending-releases') });
    const call = (command: string, k: number) =>
      new Promise<{ code: number; out: string }>((resolve) => {
        const child = execFile('nsenter', [`--net=${node.nsPath}`, '--', wrappers[0]!], {
          env: { CNI_COMMAND: command, CNI_CONTAINERID: `par-${k}`, CNI_NETNS: `/var/run/netns/${names[k]}`, CNI_IFNAME: 'eth0', CNI_PATH: cds[0]!.cniBinDir },
        }, (err, stdout) => resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, out: stdout }));
        child.stdin?.end(config);
      });
    const hostEnds = async () => ((await c.lab.exec(node.ns, ['ip', '-o', 'link', 'show'])).stdout.match(/vw[0-9a-f]{12}/g) ?? []).length;
    const before = await hostEnds();
    for (const n of names) execFileSync('ip', ['netns', 'add', n]);
    try {
      const adds = await Promise.all(names.map((_, k) => call('ADD', k)));
      for (const r of adds) expect(r.code, r.out).toBe(0);
      // The result names the netns as the runtime gave it (the router worked through /proc/PID/fd/N).
      expect((JSON.parse(adds[5]!.out) as { interfaces: { sandbox?: string }[] }).interfaces[2]!.sandbox).toBe(`/var/run/netns/${names[5]}`);
      const ips = adds.map((r) => (JSON.parse(r.out) as { ips: { address: string }[] }).ips.map((x) => x.address.split('/')[0]!));
      const v4 = ips.map((x) => x.find((a) => !a.includes(':'))!);
      expect(new Set(v4).size).toBe(40);
      expect(new Set(ips.flat()).size).toBe(80);
      for (const [from, to] of [[0, 39], [17, 3], [25, 8]] as const) {
        const p = execFileSync('ip', ['netns', 'exec', names[from]!, 'ping', '-c', '1', '-W', '2', v4[to]!], { encoding: 'utf8' });
        expect(p).toContain('1 received');
      }
      const dels = await Promise.all(names.map((_, k) => call('DEL', k)));
      for (const r of dels) expect(r.code, r.out).toBe(0);
      expect((await allocations(0)).filter((x) => x.containerId.startsWith('par-'))).toEqual([]);
      expect(await hostEnds()).toBe(before);
    } finally {
      for (const n of names) execFileSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
    }
  }, 120_000);

  it('GC after a runtime restart releases allocations of attachments the runtime no longer has', async () => {
    // An attachment the runtime lost track of (e.g. its DEL never ran before a crash): allocated
    // and guarded for network "weft", as its ADD did (GC releases only its own network's).
    await c.api(0, 'POST', '/v1/ipam/allocate', { containerId: 'lost-sandbox-1', ifName: 'eth0', network: 'weft' });
    await c.api(0, 'POST', '/v1/cni/attach', { containerId: 'lost-sandbox-1', ifName: 'eth0', mac: '02:00:00:00:4c:01' });
    const madeAt = Date.now();
    await cds[0]!.restart({ signal: 'SIGKILL' });
    // GC leaves what was confirmed in its last few seconds to the next GC.
    await new Promise((r) => setTimeout(r, Math.max(0, madeAt + GC_GRACE_MS + 200 - Date.now())));
    const sandboxes = await cds[0]!.cri.listPodSandbox({});
    const valid = sandboxes.map((s) => ({ containerID: s.id, ifname: 'eth0' }));
    expect(valid.map((v) => v.containerID)).toContain(a.sandboxId);
    const input = JSON.stringify({
      cniVersion: '1.1.0',
      name: 'weft',
      type: 'weft',
      socket: c.routers[0]!.socket,
      journalDir: join(c.stateDir(0), 'pending-releases'),
      'cni.dev/valid-attachments': valid,
    });
    const r = await c.lab.exec(c.lab.nodes[0]!.ns, [wrappers[0]!], { input, env: { CNI_COMMAND: 'GC', CNI_PATH: cds[0]!.cniBinDir }, check: false });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const left = (await allocations(0)).map((x) => x.containerId);
    expect(left).not.toContain('lost-sandbox-1');
    expect(left).toContain(a.sandboxId);
    expect(left).toContain('weft:gateway');
    await cds[0]!.removePod(a);
    expect((await allocations(0)).some((x) => x.containerId === a.sandboxId)).toBe(false);
  });
});
