/**
 * weft as a Kubernetes cluster runs it, in one lab (issue 16): three nodes whose routers run in
 * Kubernetes mode against the fake API server (lab/kube-api-main.ts, on an underlay host) with
 * no --peer, each with its own containerd running pods through the plugin installed from
 * deploy/'s conflist by the init container's command (`weft cni-install --conflist`), the
 * metrics endpoint on, and kube-proxy's nftables rules (lab/kube-proxy.ts) on every node.
 *
 *   - /readyz is 503 while IPAM cannot allocate (n3 starts while the API server is away), 200 after
 *   - the mesh forms from the Node objects alone; pods on all three nodes reach each other
 *   - the routers racing for blocks at start each got their own: every Lease has one holder, every
 *     router's blocks are what the Leases say, and no two pods share an address
 *   - a Service's ClusterIP reaches a backend on another node, and a pod reaches itself (hairpin)
 *   - /metrics is scraped and parsed: the peers, their traffic, the IPAM blocks' addresses
 *   - a Node deleted: its peer is forgotten and its blocks reclaimed on every live router, each
 *     block by exactly one of them, without a manual step
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContainerdNode, deployConflist, installReferencePlugins, type CriPod } from '../../lab/index.js';
import { applyKubeProxy, type KubeServicePort } from '../../lab/kube-proxy.js';
import { WeftCluster } from '../../lab/weft-cluster.js';
import type { IpamStatus } from '../../src/api/types.js';
import { packageRoot } from '../../src/core/paths.js';
import { parseExposition, valueOf } from '../daemon/prom-text.js';
import { until } from './helpers.js';

const isRoot = process.getuid?.() === 0;
const RANGE = '10.48.0.0/22';
const cli = join(packageRoot(import.meta.url), 'dist', 'src', 'cli', 'main.js');

describe.skipIf(!isRoot)('weft on Kubernetes: 3 nodes, discovery and IPAM blocks through the API, containerd pods from deploy/, Services, metrics', () => {
  let c: WeftCluster;
  const cds: ContainerdNode[] = [];
  const pods: CriPod[] = [];
  const names: string[] = [];

  const metricsUrl = (i: number, path: string) => `http://${c.lab.nodes[i]!.address}:6782${path}`;
  /** GET `path` on router i's metrics endpoint from inside its node: [HTTP status, body]. */
  const scrape = async (i: number, path: string): Promise<[number, string]> => {
    const r = await c.lab.exec(c.lab.nodes[i]!.ns, ['curl', '-sS', '-m', '5', '-w', '\n%{http_code}', metricsUrl(i, path)]);
    if (r.code !== 0) throw new Error(`curl ${path} on n${i + 1}: ${r.stderr}`);
    const at = r.stdout.lastIndexOf('\n');
    return [Number(r.stdout.slice(at + 1)), r.stdout.slice(0, at)];
  };
  const ipamStatus = (i: number) => c.api<IpamStatus>(i, 'GET', '/v1/ipam/status');

  beforeAll(async () => {
    c = await WeftCluster.start({
      nodes: 3,
      podsPerNode: 0,
      kubernetes: {},
      deferStart: [2],
      extraArgs: ['--ipam-range', RANGE, '--log-level', 'info'],
      perNodeArgs: (i) => ['--metrics-addr', `198.18.0.${i + 1}:6782`],
    });
    for (let i = 0; i < 2; i++) names.push((await c.apiStatus(i)).name);
  }, 120_000);

  afterAll(async () => {
    for (const cd of cds) await cd.destroy().catch(() => undefined);
    await c?.destroy();
  });

  it('a router whose IPAM cannot allocate is not ready (/readyz 503, the reason named) until the API server answers', async () => {
    // No --peer anywhere: what a router dials comes from the Node objects.
    expect(c.routers.every((r) => !r.args.includes('--peer'))).toBe(true);
    await c.kube!.control.stop();
    await c.startRouter(2);
    const [code, body] = await scrape(2, '/readyz');
    expect(code).toBe(503);
    expect(body).toMatch(/IPAM/);
    expect((await scrape(2, '/healthz'))[0]).toBe(200);
    await c.kube!.control.restart();
    await until('n3 ready', async () => ((await scrape(2, '/readyz'))[0] === 200 ? true : undefined), 60_000);
    names.push((await c.apiStatus(2)).name);
  });

  it('the mesh forms from the Node objects alone', async () => {
    await c.waitEstablished(60_000);
    for (let i = 0; i < 3; i++) {
      const k = (await c.apiStatus(i)).kubernetes!;
      expect(k.ownNode).toBe('published');
      expect(k.peersFromNodes.map((p) => p.peer).sort()).toEqual(names.filter((_, j) => j !== i).sort());
    }
  });

  it("pods made by containerd through deploy/'s conflist (installed as the init container installs it) reach each other across the nodes", async () => {
    for (let i = 0; i < 3; i++) {
      const cd = await ContainerdNode.start(c.lab, c.lab.nodes[i]!);
      cds.push(cd);
      await installReferencePlugins(cd.cniBinDir, ['loopback', 'portmap']);
      // deploy/'s conflist, its host paths pointed at this lab node's router (the DaemonSet mounts them at the same paths).
      const list = deployConflist() as { plugins: Record<string, unknown>[] };
      list.plugins[0]!['socket'] = c.routers[i]!.socket;
      list.plugins[0]!['journalDir'] = join(c.stateDir(i), 'pending-releases');
      const file = join(c.dir, `conflist-n${i + 1}.json`);
      writeFileSync(file, JSON.stringify(list));
      execFileSync(process.execPath, [cli, 'cni-install', '--bin-dir', cd.cniBinDir, '--conf-dir', cd.cniConfDir, '--conflist', file], { stdio: 'pipe' });
      await cd.waitNetworkReady(30_000);
    }
    for (let i = 0; i < 3; i++) {
      pods.push(
        await cds[i]!.runPod({ name: `web${i + 1}`, namespace: 'weft', uid: `uid-web${i + 1}`, command: ['sh', '-c', `echo hello-from-web${i + 1} > /tmp/index.html && exec httpd -f -p 80 -h /tmp`] }),
      );
    }
    for (const p of pods) expect(p.ip).toMatch(/^10\.48\.[0-3]\.\d+$/);
    expect(new Set(pods.map((p) => p.ip)).size).toBe(3);
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 3; j++) {
        if (i === j) continue;
        const r = await cds[i]!.exec(pods[i]!, ['ping', '-c', '1', '-W', '2', pods[j]!.ip], 15);
        expect(r.exitCode, `web${i + 1} -> web${j + 1}: ${r.stdout}${r.stderr}`).toBe(0);
      }
    }
  });

  it('the routers that raced for blocks at start each hold their own: one holder per Lease, and each router holds exactly what the Leases say', async () => {
    const holders = await c.blockHolders();
    expect(holders.size).toBeGreaterThanOrEqual(3);
    const statuses = await Promise.all([0, 1, 2].map(ipamStatus));
    const mine = statuses.map((s) => s.spaces[0]!.blocks!.mine);
    for (let i = 0; i < 3; i++) {
      expect(mine[i]!.length).toBeGreaterThan(0);
      expect(mine[i]!.sort()).toEqual([...holders].filter(([, h]) => h === names[i]).map(([b]) => b).sort());
      expect(statuses[i]!.spaces[0]!.blocks!.conflicts).toEqual([]);
    }
    expect(new Set(mine.flat()).size).toBe(mine.flat().length);
    // Each pod's address lies in a block its node's router holds.
    for (let i = 0; i < 3; i++) {
      const last = Number(pods[i]!.ip.split('.')[3]) + 256 * Number(pods[i]!.ip.split('.')[2]);
      expect(mine[i]!.some((b) => {
        const [base] = b.split('/');
        const start = Number(base!.split('.')[3]) + 256 * Number(base!.split('.')[2]);
        return last >= start && last < start + 64;
      }), `${pods[i]!.ip} in ${mine[i]!.join(' ')}`).toBe(true);
    }
  });

  it("a Service's ClusterIP reaches a backend on another node, and a pod reaches itself through its Service (hairpin)", async () => {
    const services: KubeServicePort[] = [
      { namespace: 'weft', name: 'remote', portName: 'http', protocol: 'tcp', clusterIP: '10.96.0.10', port: 80, endpoints: [{ ip: pods[1]!.ip, port: 80 }] },
      { namespace: 'weft', name: 'self', portName: 'http', protocol: 'tcp', clusterIP: '10.96.0.11', port: 80, endpoints: [{ ip: pods[0]!.ip, port: 80 }] },
    ];
    for (const node of c.lab.nodes) await applyKubeProxy(c.lab, node, { family: 4, clusterCidr: RANGE }, services);
    const get = (ip: string) => `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 ${ip} 80`;
    const fetch = async (ip: string, want: string): Promise<string> => {
      let got = '';
      for (let k = 0; k < 30 && !got.includes(want); k++) {
        got = (await cds[0]!.exec(pods[0]!, ['sh', '-c', get(ip)], 10)).stdout;
        if (!got.includes(want)) await new Promise((res) => setTimeout(res, 100));
      }
      return got;
    };
    expect(await fetch('10.96.0.10', 'hello-from-web2')).toContain('hello-from-web2');
    expect(await fetch('10.96.0.11', 'hello-from-web1')).toContain('hello-from-web1');
    // Kubernetes mode set the bridge up for it.
    const s = (await c.apiStatus(0)).services;
    expect(s.enabled).toBe(true);
    expect(s.settings.every((x) => x.ok)).toBe(true);
    expect(s.hairpin.on.length).toBe(s.hairpin.ports);
  });

  it('/metrics is scraped and parsed: both peers with their traffic, the IPAM addresses', async () => {
    const [code, text] = await scrape(0, '/metrics');
    expect(code).toBe(200);
    const e = parseExposition(text);
    expect(valueOf(e, 'weft_build_info', { version: (await c.apiStatus(0)).build.version })).toBe(1);
    for (const peer of names.slice(1)) {
      expect(valueOf(e, 'weft_peer_up', { peer })).toBe(1);
      expect(valueOf(e, 'weft_peer_sent_frames_total', { peer }) ?? 0).toBeGreaterThan(0);
    }
    expect(valueOf(e, 'weft_ipam_addresses', { range: RANGE, state: 'allocated' })).toBeGreaterThanOrEqual(1);
  });

  it('a Node deleted: every live router forgets its peer and its blocks are reclaimed, each by exactly one live router', async () => {
    const gone = names[2]!;
    const before = [...(await c.blockHolders())].filter(([, h]) => h === gone).map(([b]) => b);
    expect(before.length).toBeGreaterThan(0);
    await cds[2]!.destroy();
    cds.pop();
    await c.stopRouter(2);
    await c.deleteNode(2);
    await until('n3 forgotten and its blocks reclaimed', async () => {
      const holders = await c.blockHolders();
      const statuses = await Promise.all([0, 1].map((i) => c.apiStatus(i)));
      const forgotten = statuses.every((s) => s.kubernetes!.nodesDeleted === 1 && !s.mesh.peers.some((p) => p.name === gone));
      return forgotten && before.every((b) => holders.get(b) !== gone) ? true : undefined;
    }, 60_000);
    const holders = await c.blockHolders();
    const mine = await Promise.all([0, 1].map(async (i) => (await ipamStatus(i)).spaces[0]!.blocks!.mine));
    for (const b of before) {
      const holder = holders.get(b)!;
      expect([names[0], names[1]]).toContain(holder);
      // Exactly one live router has it, the one the Lease names.
      expect(mine.filter((m) => m.includes(b)).length, b).toBe(1);
      expect(mine[names.indexOf(holder)]).toContain(b);
    }
    // The pods left keep talking.
    const r = await cds[0]!.exec(pods[0]!, ['ping', '-c', '1', '-W', '2', pods[1]!.ip], 15);
    expect(r.exitCode).toBe(0);
  });
});
