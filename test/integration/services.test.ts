/**
 * kube-proxy Services across the overlay (issue 16), on 3 routers with IPAM (pods take their
 * addresses from it and route through their node's gateway) and, on every node, the nftables
 * ruleset kube-proxy's nftables mode writes (lab/kube-proxy.ts). The routers run with
 * `--service-bridge on` (what Kubernetes mode turns on by itself: bridge netfilter, forwarding,
 * hairpin on the pods' ports); the lab's nodes start with bridge netfilter off, so whatever is on
 * was turned on by the router.
 *
 *   n1: pods a (client, and its own backend) and b        n2: pod c        n3: pod d
 *   10.96.0.10:80 → c   (pod a → a backend on another node)
 *   10.96.0.11:80 → b   (pod a → a backend on its own node)
 *   10.96.0.12:80 → a   (pod a → itself: hairpin)
 *   NodePort 30080 → c, 30081 → d (externalTrafficPolicy Cluster), asked on every node's
 *   underlay address from an underlay host, each on the port whose backend is on another node
 *   [fd00:96::10]:80 → c, [fd00:96::12]:80 → a   (the same over IPv6, table ip6 kube-proxy)
 *
 * Every pod runs a TCP server that answers its own name and the address it saw the client come
 * from. The pods are guarded by their router as CNI ADD's pods are (attached, host end named
 * `vw…`): the anti-spoofing table sees all of this traffic and must drop none of it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WeftCluster } from '../../lab/weft-cluster.js';
import { applyKubeProxy, type KubeServicePort } from '../../lab/kube-proxy.js';
import type { LabPod, UnderlayHost } from '../../lab/lab.js';
import type { CniNetwork } from '../../src/api/types.js';
import { formatStatus } from '../../src/cli/format-status.js';
import { hostVethName } from '../../src/cni/veth.js';
import { until } from './helpers.js';

const isRoot = process.getuid?.() === 0;
const RANGE = '10.47.0.0/16';
const RANGE6 = 'fd00:47::/64';
const PORT = 8080;

// Answers "<NAME> <client address>\n" on every connection.
const SERVER = `
const net = require('node:net');
const [name, port] = [process.argv[1], Number(process.argv[2])];
net.createServer((s) => { s.end(name + ' ' + s.remoteAddress.replace(/^::ffff:/, '') + '\\n'); }).listen({ port, host: '::', ipv6Only: false }, () => process.stderr.write('listening\\n'));`;

// Prints what HOST:PORT answers (from source address FROM when given); exits 1 with the error when it does not within 3 s.
const CLIENT = `
const net = require('node:net');
const [host, port, from] = [process.argv[1], Number(process.argv[2]), process.argv[3]];
let got = '';
const s = net.connect({ host, port, timeout: 3000, ...(from ? { localAddress: from } : {}) });
s.on('data', (d) => { got += d; });
s.on('end', () => { process.stdout.write(got); process.exit(0); });
s.on('timeout', () => { process.stderr.write('timeout\\n'); process.exit(1); });
s.on('error', (e) => { process.stderr.write(e.code + '\\n'); process.exit(1); });`;

// Between nodes, frames cross the kernel fast path (VXLAN; the underlay is trusted) or the
// sleeve (encrypted, through the router's TAP): both are ports of the bridge.
describe.skipIf(!isRoot).each([
  ['the kernel fast path', 'auto'],
  ['the sleeve', 'off'],
] as const)('Services: kube-proxy nftables rules across the overlay, nodes joined by %s', (_, fastpath) => {
  let c: WeftCluster;
  let host: UnderlayHost;
  const pods = new Map<string, LabPod & { address: string; address6: string }>();
  /** Each node's gateway address on the bridge (its own address on the pod network). */
  const gateways: string[] = [];
  const gateways6: string[] = [];

  const podsOn = (i: number) => [...pods.values()].filter((p) => p.node.index === i).length;
  const ask = async (ns: string, address: string, port: number, from?: string): Promise<{ name: string; from: string }> => {
    const r = await c.lab.exec(ns, [process.execPath, '-e', CLIENT, address, String(port), ...(from === undefined ? [] : [from])], { timeoutMs: 10_000 });
    const [name, seen] = r.stdout.trim().split(' ');
    return { name: name ?? '', from: seen ?? '' };
  };

  beforeAll(async () => {
    c = await WeftCluster.start({
      nodes: 3,
      podsPerNode: 0,
      extraArgs: ['--ipam-range', RANGE, '--ipam-range6', RANGE6, '--ipam-init-peers', '3', '--service-bridge', 'on', '--fastpath', fastpath, ...(fastpath === 'auto' ? ['--trusted-subnets', '198.18.0.0/24'] : []), '--log-level', 'info'],
    });
    await c.waitEstablished();
    await c.waitPaths(() => (fastpath === 'auto' ? 'fastpath' : 'direct'));
    for (let i = 0; i < 3; i++) {
      const net = await until(`pod network ready on n${i + 1}`, async () => {
        const n = await c.api<CniNetwork>(i, 'GET', '/v1/cni/network');
        return n.ready ? n : undefined;
      }, 60_000);
      gateways.push(net.gateways.find((g) => g.family === 4)!.address);
      gateways6.push(net.gateways.find((g) => g.family === 6)!.address);
    }
    for (const [node, name] of [[0, 'a'], [0, 'b'], [1, 'c'], [2, 'd']] as const) {
      const got = await c.api<{ addresses: { address: string; prefixLength: number; family: number }[] }>(node, 'POST', '/v1/ipam/allocate', { containerId: `svc-${name}`, ifName: 'eth0' });
      const a = got.addresses.find((x) => x.family === 4)!;
      const a6 = got.addresses.find((x) => x.family === 6)!;
      const pod = await c.lab.addPod(node, { name, ipv4: `${a.address}/${a.prefixLength}`, ipv6: `${a6.address}/${a6.prefixLength}`, mtu: c.overlayMtu });
      await c.lab.exec(pod.ns, ['ip', 'route', 'add', 'default', 'via', gateways[node]!]);
      await c.lab.exec(pod.ns, ['ip', '-6', 'route', 'add', 'default', 'via', gateways6[node]!]);
      // Made a pod the router guards, as CNI ADD does: attached, and its host end named as ADD names it.
      const ns = c.lab.nodes[node]!.ns;
      await c.api(node, 'POST', '/v1/cni/attach', { containerId: `svc-${name}`, ifName: 'eth0', mac: pod.mac });
      const port = hostVethName(`svc-${name}`, 'eth0');
      await c.lab.exec(ns, ['ip', 'link', 'set', 'dev', pod.hostVeth, 'down']);
      await c.lab.exec(ns, ['ip', 'link', 'set', 'dev', pod.hostVeth, 'name', port]);
      await c.lab.exec(ns, ['ip', 'link', 'set', 'dev', port, 'up']);
      c.lab.spawn(pod.ns, [process.execPath, '-e', SERVER, name, String(PORT)]);
      pods.set(name, { ...pod, address: a.address, address6: a6.address });
    }
    const at = (name: string) => ({ ip: pods.get(name)!.address, port: PORT });
    const services: KubeServicePort[] = [
      { namespace: 'default', name: 'remote', portName: 'http', protocol: 'tcp', clusterIP: '10.96.0.10', port: 80, nodePort: 30080, endpoints: [at('c')] },
      { namespace: 'default', name: 'local', portName: 'http', protocol: 'tcp', clusterIP: '10.96.0.11', port: 80, endpoints: [at('b')] },
      { namespace: 'default', name: 'self', portName: 'http', protocol: 'tcp', clusterIP: '10.96.0.12', port: 80, endpoints: [at('a')] },
      { namespace: 'default', name: 'far', portName: 'http', protocol: 'tcp', clusterIP: '10.96.0.13', port: 80, nodePort: 30081, endpoints: [at('d')] },
    ];
    const at6 = (name: string) => ({ ip: pods.get(name)!.address6, port: PORT });
    const services6: KubeServicePort[] = [
      { namespace: 'default', name: 'remote', portName: 'http', protocol: 'tcp', clusterIP: 'fd00:96::10', port: 80, endpoints: [at6('c')] },
      { namespace: 'default', name: 'self', portName: 'http', protocol: 'tcp', clusterIP: 'fd00:96::12', port: 80, endpoints: [at6('a')] },
    ];
    for (const node of c.lab.nodes) {
      await applyKubeProxy(c.lab, node, { family: 4, clusterCidr: RANGE }, services);
      await applyKubeProxy(c.lab, node, { family: 6, clusterCidr: RANGE6 }, services6);
    }
    host = await c.lab.addUnderlayHost();
    // The routers put hairpin on pod ports at their periodic check (the CNI plugin does it at ADD).
    await until('hairpin on every pod port', async () => {
      const all = await Promise.all([0, 1, 2].map((i) => c.apiStatus(i)));
      return all.every((s, i) => s.services.hairpin.off.length === 0 && s.services.hairpin.on.length === podsOn(i)) ? true : undefined;
    }, 30_000);
    for (const name of pods.keys()) await until(`server in pod ${name}`, async () => ((await ask(pods.get(name)!.ns, '127.0.0.1', PORT)).name === name ? true : undefined));
  }, 120_000);

  afterAll(async () => {
    await c?.destroy();
  });

  it('status reports the bridge set up for Services: bridge netfilter, forwarding, hairpin on every pod port', async () => {
    for (let i = 0; i < 3; i++) {
      const s = (await c.apiStatus(i)).services;
      expect(s.enabled).toBe(true);
      expect(s.problems).toEqual([]);
      expect(Object.fromEntries(s.settings.map((x) => [x.name, x.value]))).toMatchObject({
        'net.bridge.bridge-nf-call-iptables': '1',
        'net.bridge.bridge-nf-call-ip6tables': '1',
        'net.ipv4.ip_forward': '1',
        'net.ipv6.conf.all.forwarding': '1',
      });
      expect(s.hairpin.on).toHaveLength(podsOn(i));
      expect(formatStatus(await c.apiStatus(i))).toContain(`Services bridge weft: set up by the router; bridge netfilter and forwarding on; hairpin on ${podsOn(i)}/${podsOn(i)} veth ports`);
    }
  });

  it('a pod reaches a ClusterIP whose backend is on another node, without source NAT', async () => {
    expect(await ask(pods.get('a')!.ns, '10.96.0.10', 80)).toEqual({ name: 'c', from: pods.get('a')!.address });
  });

  it('a pod reaches a ClusterIP whose backend is on its own node', async () => {
    expect(await ask(pods.get('a')!.ns, '10.96.0.11', 80)).toEqual({ name: 'b', from: pods.get('a')!.address });
  });

  it('a pod reaches itself through its Service (hairpin; kube-proxy masquerades it to the node)', async () => {
    expect(await ask(pods.get('a')!.ns, '10.96.0.12', 80)).toEqual({ name: 'a', from: gateways[0] });
  });

  it('IPv6: a pod reaches a ClusterIP whose backend is on another node, and itself through its Service', async () => {
    expect(await ask(pods.get('a')!.ns, 'fd00:96::10', 80)).toEqual({ name: 'c', from: pods.get('a')!.address6 });
    expect(await ask(pods.get('a')!.ns, 'fd00:96::12', 80)).toEqual({ name: 'a', from: gateways6[0] });
  });

  it('a NodePort answers on every node from an underlay host, from a backend on another node', async () => {
    // n1 → c on n2, n2 → d on n3, n3 → c on n2; masqueraded to the node that was asked.
    for (const [node, port, backend] of [[0, 30080, 'c'], [1, 30081, 'd'], [2, 30080, 'c']] as const) {
      expect(await ask(host.ns, c.lab.nodes[node]!.address, port), `n${node + 1}:${port}`).toEqual({ name: backend, from: gateways[node] });
    }
  });

  it("a node reaches a pod on another node, and the pod sees the node's own address", async () => {
    for (const [node, pod] of [[0, 'c'], [1, 'd'], [2, 'a']] as const) {
      const answer = await ask(c.lab.nodes[node]!.ns, pods.get(pod)!.address, PORT);
      expect(answer, `n${node + 1} → ${pod}`).toEqual({ name: pod, from: gateways[node] });
      // The address the pod saw is one of the node's own, on its bridge: nothing translated it.
      const own = (await c.lab.exec(c.lab.nodes[node]!.ns, ['ip', '-j', 'addr', 'show', 'dev', 'weft'])).stdout;
      expect(own).toContain(`"local":"${answer.from}"`);
    }
  });

  it('a node process bound to its underlay address reaches a pod on another node, which sees that address', async () => {
    // The pod's reply leaves its node by the underlay (its default route). The pod ranges are
    // masqueraded when a connection leaves them (table inet weft-nat); this one is known as a reply
    // only because bridge netfilter let that node's conntrack see the bridged SYN. Without it the
    // reply is taken for a new connection, masqueraded to that node's address, and lost.
    const n1 = c.lab.nodes[0]!;
    expect(await ask(n1.ns, pods.get('c')!.address, PORT, n1.address)).toEqual({ name: 'c', from: n1.address });
  });

  it('the pod guard passed all of it: no frame of these pods dropped', async () => {
    for (let i = 0; i < 3; i++) {
      const g = (await c.apiStatus(i)).pods!;
      expect(g.pods.map((p) => p.containerId).sort()).toEqual([...pods.keys()].filter((n) => pods.get(n)!.node.index === i).map((n) => `svc-${n}`));
      expect(g.pods.map((p) => p.dropped)).toEqual(g.pods.map(() => 0));
      expect(g.unknownPorts).toEqual([]);
    }
  });

  it('the paths between nodes stayed what this run is about', async () => {
    await c.expectPaths(0, { n2: fastpath === 'auto' ? 'fastpath' : 'direct', n3: fastpath === 'auto' ? 'fastpath' : 'direct' }, 'after the Service tests');
  });
});
