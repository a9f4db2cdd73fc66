/**
 * The weft CNI plugin under podman (Debian's 4.3, CNI network backend), the third runtime after
 * containerd and direct libcni-style calls: two lab nodes, each with a weft router (IPAM on,
 * dual-stack) and its own rootful podman, isolated from the host's storage, which execs the
 * plugin `installCni` installed (podman's network `weft` is the conflist it wrote). A container
 * gets weft addresses and reaches a container on the other node across weft; `podman stop` and
 * `podman start` run DEL then ADD with a new netns; `podman rm -f` runs DEL: no host veth, no
 * allocation left.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installCni } from '../../src/cni/install.js';
import { installReferencePlugins, PodmanNode, type PodmanContainer } from '../../lab/index.js';
import { WeftCluster } from '../../lab/weft-cluster.js';
import { until } from './helpers.js';

const isRoot = process.getuid?.() === 0;

interface Listed {
  allocations: { containerId: string; ifName: string; addresses: string[] }[];
}

describe.skipIf(!isRoot)('CNI plugin under podman (CNI backend), two nodes, dual-stack', () => {
  let c: WeftCluster;
  const pms: PodmanNode[] = [];
  const allocations = async (i: number) => (await c.api<Listed>(i, 'GET', '/v1/ipam/allocations')).allocations;
  const hostEnds = async (i: number) => (await c.lab.exec(c.lab.nodes[i]!.ns, ['ip', '-o', 'link', 'show'])).stdout.match(/vw[0-9a-f]{12}/g) ?? [];

  beforeAll(async () => {
    c = await WeftCluster.start({
      nodes: 2,
      podsPerNode: 0,
      extraArgs: ['--ipam-range', '10.47.0.0/16', '--ipam-range6', 'fd00:47::/64', '--ipam-init-peers', '2', '--log-level', 'info'],
    });
    await c.waitEstablished();
    for (const i of [0, 1]) {
      await until(`n${i + 1} ready for pods`, async () => ((await c.api<{ ready: boolean }>(i, 'GET', '/v1/cni/network')).ready ? true : undefined));
      const pm = await PodmanNode.start(c.lab, c.lab.nodes[i]!);
      pms.push(pm);
      await installReferencePlugins(pm.cniBinDir, ['loopback', 'portmap']);
      const r = installCni({ binDir: pm.cniBinDir, confDir: pm.cniConfDir, socket: c.routers[i]!.socket, journalDir: join(c.stateDir(i), 'pending-releases') });
      expect(r.native).toBe(true);
    }
  }, 120_000);

  afterAll(async () => {
    for (const pm of pms) await pm.destroy();
    await c?.destroy();
  });

  let a: PodmanContainer;
  let b: PodmanContainer;

  it('podman lists the conflist installCni wrote as its network "weft"', async () => {
    const nets = JSON.parse(await pms[0]!.podmanOk(['network', 'ls', '--format', 'json'])) as { name: string; driver: string }[];
    expect(nets.map((n) => n.name)).toContain('weft');
  });

  it('containers on two nodes get weft addresses (IPv4 and IPv6) and reach each other across the overlay', async () => {
    a = await pms[0]!.run({ name: 'a' });
    b = await pms[1]!.run({ name: 'b' });
    expect(a.ip).toMatch(/^10\.47\.\d+\.\d+$/);
    expect(b.ipv6).toMatch(/^fd00:47::/);
    expect(a.netnsPath).toMatch(/^\/run\/netns\//);
    // The router of the container's node holds the allocation, under podman's container id.
    expect((await allocations(0)).find((x) => x.containerId === a.id)?.addresses).toContain(a.ip);
    const v4 = await pms[0]!.exec(a, ['ping', '-c', '2', '-W', '2', b.ip]);
    expect(v4.code, v4.stdout + v4.stderr).toBe(0);
    const v6 = await pms[0]!.exec(a, ['ping', '-6', '-c', '2', '-W', '2', b.ipv6]);
    expect(v6.code, v6.stdout + v6.stderr).toBe(0);
    const link = await pms[0]!.exec(a, ['ip', 'link', 'show', 'eth0']);
    expect(link.stdout).toContain(`mtu ${c.overlayMtu}`);
  });

  it('podman stop runs DEL (allocation released) and podman start runs ADD in a new netns (a new working address)', async () => {
    await pms[1]!.podmanOk(['stop', '-t', '0', b.id]);
    expect((await allocations(1)).some((x) => x.containerId === b.id)).toBe(false);
    expect(await hostEnds(1)).toEqual([]);
    await pms[1]!.podmanOk(['start', b.id]);
    const again = await pms[1]!.inspect(b.id);
    expect(again.netnsPath).not.toBe(b.netnsPath);
    expect((await allocations(1)).find((x) => x.containerId === b.id)?.addresses).toContain(again.ip);
    b = again;
    const r = await pms[0]!.exec(a, ['ping', '-c', '2', '-W', '2', b.ip]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });

  it('portmap behind weft under podman: a published port on n2 answers a container on n1', async () => {
    const web = await pms[1]!.run({ name: 'web', publish: ['8082:80'], command: ['sh', '-c', 'echo hello-from-podman > /tmp/index.html && exec httpd -f -p 80 -h /tmp'] });
    const get = `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 ${c.lab.nodes[1]!.address} 8082`;
    let got = '';
    for (let i = 0; i < 30 && !got.includes('hello-from-podman'); i++) {
      got = (await pms[0]!.exec(a, ['sh', '-c', get])).stdout;
      if (!got.includes('hello-from-podman')) await new Promise((res) => setTimeout(res, 100));
    }
    expect(got).toContain('hello-from-podman');
    await pms[1]!.rm(web);
    expect((await allocations(1)).some((x) => x.containerId === web.id)).toBe(false);
  });

  it('podman rm -f runs DEL: no host veth, no allocation, no netns left', async () => {
    for (const [i, x] of [[0, a], [1, b]] as const) {
      expect(await hostEnds(i)).toHaveLength(1);
      await pms[i]!.rm(x);
      expect((await allocations(i)).some((y) => y.containerId === x.id)).toBe(false);
      expect(await hostEnds(i)).toEqual([]);
      expect((await c.lab.exec(c.lab.nodes[i]!.ns, ['ls', '/run/netns'])).stdout.split('\n')).not.toContain(x.netnsPath.split('/').pop());
      expect((await pms[i]!.podmanOk(['ps', '-a', '-q'])).trim()).toBe('');
    }
  });
});
