/**
 * The lab itself, in real namespaces (root): underlay reachability, pods on a bridge (v4 and v6),
 * nft faults, a hashed transfer, frame counting, process tracking and complete cleanup.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CommandError } from '../../src/platform/errors.js';
import { countFrames, iperf3Tcp, iperf3Udp, Lab, LabError, ping, startCapture, tcpTransferSha256, udpProbe, type LabPod } from '../../lab/index.js';
import { labNamespaces } from './helpers.js';

const isRoot = process.getuid?.() === 0;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe.skipIf(!isRoot)('Lab', () => {
  let lab: Lab | undefined;
  let p1: LabPod;
  let p2: LabPod;
  const log: string[] = [];

  beforeAll(async () => {
    lab = await Lab.create({ nodes: 3, log: (l) => log.push(l) });
  });

  afterAll(async () => {
    const prefix = lab?.prefix;
    await lab?.destroy();
    if (prefix !== undefined) expect(labNamespaces(prefix)).toEqual([]);
  });

  const L = (): Lab => {
    if (lab === undefined) throw new Error('lab was not created');
    return lab;
  };

  it('builds the underlay, nodes and their settings', async () => {
    const l = L();
    expect(l.prefix).toMatch(/^wt[0-9a-f]{4}$/);
    expect(l.nodes.map((n) => [n.index, n.name, n.ns, n.address])).toEqual([
      [0, 'n1', `${l.prefix}-n1`, '198.18.0.1'],
      [1, 'n2', `${l.prefix}-n2`, '198.18.0.2'],
      [2, 'n3', `${l.prefix}-n3`, '198.18.0.3'],
    ]);
    expect(labNamespaces(l.prefix).sort()).toEqual([`${l.prefix}-n1`, `${l.prefix}-n2`, `${l.prefix}-n3`, `${l.prefix}-u`]);
    for (const n of l.nodes) expect(existsSync(n.nsPath)).toBe(true);
    const sys = await l.exec(l.nodes[0]!.ns, ['sysctl', '-n', 'net.ipv4.ip_forward', 'net.bridge.bridge-nf-call-iptables', 'net.bridge.bridge-nf-call-ip6tables']);
    expect(sys.stdout.split('\n').filter(Boolean)).toEqual(['1', '0', '0']);
    const eth0 = JSON.parse((await l.exec(l.nodes[1]!.ns, ['ip', '-j', 'link', 'show', 'eth0'])).stdout) as { mtu: number }[];
    expect(eth0[0]?.mtu).toBe(1500);
  });

  it('nodes reach each other over the underlay', async () => {
    const l = L();
    for (const [a, b] of [[0, 1], [0, 2], [1, 2], [2, 0]] as const) {
      const r = await ping(l, l.nodes[a]!.ns, l.nodes[b]!.address, { count: 5, intervalS: 0.01 });
      expect(r.received, `n${a + 1} -> n${b + 1}`).toBe(5);
      expect(r.rtts).toHaveLength(5);
      expect(r.p99Ms).toBeGreaterThan(0);
    }
  });

  it('pods on one node reach each other over the bridge, IPv4 and IPv6', async () => {
    const l = L();
    p1 = await l.addPod(0, { ipv4: '10.40.1.2/16', ipv6: 'fd00:40::1:2/64' });
    p2 = await l.addPod(l.nodes[0]!, { ipv4: '10.40.1.3/16', ipv6: 'fd00:40::1:3/64', mac: '02:40:00:00:01:03', name: 'b' });
    expect([p1.name, p1.ns, p1.hostVeth, p1.ipv4, p1.prefix4, p1.ipv6, p1.prefix6]).toEqual([
      'n1p1', `${l.prefix}-n1p1`, 'vp1', '10.40.1.2', 16, 'fd00:40::1:2', 64,
    ]);
    expect(p1.mac).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    expect([p2.name, p2.mac, p2.hostVeth]).toEqual(['b', '02:40:00:00:01:03', 'vp2']);
    expect(l.pods).toEqual([p1, p2]);
    const v4 = await ping(l, p1.ns, p2.ipv4!, { count: 3, intervalS: 0.01 });
    expect(v4.received).toBe(3);
    const v6 = await ping(l, p2.ns, p1.ipv6!, { count: 3, intervalS: 0.01 });
    expect(v6.received).toBe(3);
  });

  it('sets the MTU of both veth ends', async () => {
    const l = L();
    await l.setPodMtu(p1, 1400);
    const mtuOf = async (ns: string, dev: string): Promise<number | undefined> =>
      (JSON.parse((await l.exec(ns, ['ip', '-j', 'link', 'show', dev])).stdout) as { mtu: number }[])[0]?.mtu;
    expect(await mtuOf(p1.ns, 'eth0')).toBe(1400);
    expect(await mtuOf(p1.node.ns, p1.hostVeth)).toBe(1400);
    const big = await ping(l, p1.ns, p2.ipv4!, { count: 1, size: 1400 });
    expect(big.received).toBe(0);
    expect(big.errors).toBe(1);
    expect((await ping(l, p1.ns, p2.ipv4!, { count: 1, size: 1372 })).received).toBe(1);
    await l.setPodMtu(p1, 1500);
  });

  it('rolls back a pod the kernel refuses', async () => {
    const l = L();
    await expect(l.addPod(0, { ipv6: 'ff02::5/64' })).rejects.toBeInstanceOf(CommandError);
    expect(l.pods).toHaveLength(2);
    expect(labNamespaces(l.prefix)).not.toContain(`${l.prefix}-n1p3`);
    const links = (await l.exec(l.nodes[0]!.ns, ['ip', '-br', 'link'])).stdout;
    expect(links).not.toMatch(/^vp3\b/m);
    await expect(l.addPod(0, { ipv4: '10.40.1.4' })).rejects.toBeInstanceOf(LabError);
    await expect(l.addPod(7, {})).rejects.toThrow(/no node index 7/);
  });

  it('UDP faults cut one pair in both directions, leave the others, and clear', async () => {
    const l = L();
    const [a, b, c] = [l.nodes[0]!, l.nodes[1]!, l.nodes[2]!];
    const probe = (from: typeof a, to: typeof a, opts = {}) => udpProbe(l, from.ns, to.ns, to.address, { count: 10, ...opts });
    expect((await probe(a, b)).received).toBe(10);

    await l.blockUdpBetween(a, b);
    expect((await probe(a, b)).received).toBe(0);
    expect((await probe(b, a)).received).toBe(0);
    expect((await probe(a, c)).received).toBe(10);
    expect((await probe(c, b)).received).toBe(10);
    expect((await ping(l, a.ns, b.address, { count: 2, intervalS: 0.01 })).received).toBe(2); // ICMP unaffected
    await l.clearFaults();
    expect((await probe(a, b)).received).toBe(10);

    await l.blockUdpBetween(a, b, 9000);
    expect((await probe(a, b, { port: 9000 })).received).toBe(0);
    expect((await probe(b, a, { port: 9000 })).received).toBe(0);
    expect((await probe(a, b, { port: 9001 })).received).toBe(10);
    await l.clearFaults(b);
    expect((await probe(a, b, { port: 9000 })).received).toBe(10);
    expect((await probe(b, a, { port: 9000 })).received).toBe(0);
    await l.clearFaults(a);
    expect((await probe(b, a, { port: 9000 })).received).toBe(10);
  });

  it('drops large UDP between a pair like an MTU black hole', async () => {
    const l = L();
    const [a, b] = [l.nodes[0]!, l.nodes[1]!];
    await l.dropLargeUdp(a, b, 1000);
    expect((await udpProbe(l, a.ns, b.ns, b.address, { count: 5, size: 972 })).received).toBe(5); // IP length 1000
    expect((await udpProbe(l, a.ns, b.ns, b.address, { count: 5, size: 973 })).received).toBe(0);
    expect((await udpProbe(l, b.ns, a.ns, a.address, { count: 5, size: 4000 })).received).toBe(0); // fragments too
    const table = (await l.exec(a.ns, ['nft', 'list', 'table', 'inet', l.faultTable])).stdout;
    expect(table).toContain('ip length > 1000');
    await l.clearFaults();
    expect((await udpProbe(l, a.ns, b.ns, b.address, { count: 5, size: 4000 })).received).toBe(5);
    expect((await l.exec(a.ns, ['nft', 'list', 'tables'])).stdout).not.toContain(l.faultTable);
  });

  it('transfers 20 MB between two pods with matching hashes', async () => {
    const l = L();
    const bytes = 20 * 1024 * 1024;
    const r = await tcpTransferSha256(l, p1.ns, p2.ns, p2.ipv4!, bytes);
    expect(r.bytes).toBe(bytes);
    expect(r.receivedBytes).toBe(bytes);
    expect(r.sentSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(r.receivedSha256).toBe(r.sentSha256);
    expect(r.sentSha256).not.toBe(createHash('sha256').update(Buffer.alloc(bytes)).digest('hex')); // not all zeros
    const v6 = await tcpTransferSha256(l, p2.ns, p1.ns, p1.ipv6!, 1 << 20, 7778);
    expect(v6.receivedSha256).toBe(v6.sentSha256);
  });

  it('measures TCP and UDP with iperf3 and stops the servers', async () => {
    const l = L();
    const tcp = await iperf3Tcp(l, p2.ns, p2.ipv4!, p1.ns, { seconds: 1, streams: 2 });
    expect(tcp.gbps).toBeGreaterThan(0.1);
    expect(tcp.intervalsGbps.length).toBeGreaterThanOrEqual(1);
    const udp = await iperf3Udp(l, p2.ns, p2.ipv6!, p1.ns, { seconds: 1, size: 64, bitrate: '20M' });
    expect(udp.sentPps).toBeGreaterThan(1000);
    expect(udp.receivedPps).toBeGreaterThan(0);
    expect(udp.lossPct).toBeGreaterThanOrEqual(0);
    const left = (await l.exec(p2.ns, ['ss', '-H', '-l', '-n', '-t'])).stdout;
    expect(left.trim()).toBe('');
    await expect(iperf3Tcp(l, p2.ns, '10.40.1.99', p1.ns, { seconds: 1 })).rejects.toThrow(/iperf3 .* in .*n1p1 failed/);
  });

  it('counts the copies of a broadcast each pod receives', async () => {
    const l = L();
    const p3 = await l.addPod(0, { ipv4: '10.40.1.4/16' });
    const filter = 'ether broadcast and udp dst port 9100';
    const send = (): Promise<unknown> =>
      udpProbe(l, p1.ns, p3.ns, '10.40.255.255', { port: 9100, count: 3, broadcast: true, listenAddr: '0.0.0.0' });
    const c1 = await startCapture(l, p1.ns, 'eth0', filter, { direction: 'out' });
    const c3 = await startCapture(l, p3.ns, 'eth0', filter);
    expect(await countFrames(l, p2.ns, 'eth0', filter, 0, send)).toBe(3);
    expect(await c3.stop()).toBe(3);
    expect(await c1.stop()).toBe(3);
    expect(c3.lines()[0]).toContain('ff:ff:ff:ff:ff:ff');
    await l.removePod(p3);
    expect(l.pods).toEqual([p1, p2]);
    expect(labNamespaces(l.prefix)).not.toContain(p3.ns);
  });

  it('runs commands only in its own namespaces and reports failures with the namespace', async () => {
    const l = L();
    await expect(l.exec(l.nodes[0]!.ns, ['ip', 'link', 'show', 'nope0'])).rejects.toThrow(new RegExp(`ip netns exec ${l.nodes[0]!.ns} ip link show nope0`));
    const soft = await l.exec(l.nodes[0]!.ns, ['ip', 'link', 'show', 'nope0'], { check: false });
    expect(soft.code).not.toBe(0);
    expect(() => l.spawn('wt0000-n1', ['true'])).toThrow(LabError);
    await expect(l.exec(l.nodes[0]!.ns, ['sleep', '5'], { timeoutMs: 200 })).rejects.toThrow(/timed out after 200 ms/);
    expect((await l.exec(p1.ns, ['cat'], { input: Buffer.from('hello') })).stdout).toBe('hello');
  });

  it('tracks spawned processes and stops them on destroy', async () => {
    const l = L();
    const sleeper = l.spawn(l.nodes[2]!.ns, ['sleep', '600']);
    const stubborn = l.spawn(l.nodes[1]!.ns, [process.execPath, '-e', "process.on('SIGTERM', () => {}); console.log('up'); setInterval(() => {}, 1000)"]);
    const short = l.spawn(p2.ns, ['sh', '-c', 'echo out; echo err >&2']);
    expect(await short.exited).toEqual({ code: 0, signal: null });
    expect([short.stdoutText(), short.stderrText()]).toEqual(['out\n', 'err\n']);
    expect(alive(sleeper.pid)).toBe(true);
    for (let i = 0; i < 100 && !stubborn.stdoutText().includes('up'); i++) await new Promise((r) => setTimeout(r, 20));
    const prefix = l.prefix;
    const started = Date.now();
    await l.destroy();
    expect(Date.now() - started).toBeGreaterThanOrEqual(2900); // the stubborn one needed SIGKILL after 3 s
    expect(await sleeper.exited).toEqual({ code: null, signal: 'SIGTERM' });
    expect(await stubborn.exited).toEqual({ code: null, signal: 'SIGKILL' });
    expect(labNamespaces(prefix)).toEqual([]);
    expect(existsSync(`/run/weft-lab/${prefix}`)).toBe(false);
    await l.destroy(); // idempotent
    expect(log.some((line) => line.includes('destroyed'))).toBe(true);
  });
});

const failedLab = { prefix: '', pid: 0 };

describe.skipIf(!isRoot)('Lab cleanup when a test throws', () => {
  let lab: Lab | undefined;

  beforeAll(async () => {
    lab = await Lab.create({ nodes: 1, brNetfilter: true });
    failedLab.prefix = lab.prefix;
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  it('sets br_netfilter on when asked', async () => {
    const l = lab!;
    const nf = await l.exec(l.nodes[0]!.ns, ['sysctl', '-n', 'net.bridge.bridge-nf-call-iptables', 'net.bridge.bridge-nf-call-ip6tables']);
    expect(nf.stdout.split('\n').filter(Boolean)).toEqual(['1', '1']);
    await l.addPod(0, { ipv4: '10.41.0.2/24' });
  });

  it.fails('a failing test (expected to fail)', () => {
    const l = lab!;
    failedLab.pid = l.spawn(l.nodes[0]!.ns, ['sleep', '600']).pid;
    throw new Error('boom');
  });
});

describe.skipIf(!isRoot)('Lab leftovers', () => {
  it('the lab of the failed test is gone, with the process it spawned', () => {
    expect(failedLab.prefix).not.toBe('');
    expect(labNamespaces(failedLab.prefix)).toEqual([]);
    expect(failedLab.pid).toBeGreaterThan(0);
    expect(alive(failedLab.pid)).toBe(false);
  });

  it('cleanupStale deletes the namespaces of a lab whose owner died, and only those', async () => {
    const dead = await Lab.create({ nodes: 2 });
    const live = await Lab.create({ nodes: 1 });
    try {
      await dead.addPod(1, {});
      const gone = execFileSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' }).trim();
      writeFileSync(`/run/weft-lab/${dead.prefix}`, `${gone}\n`); // as if its owner had died
      const both = new RegExp(`^(${dead.prefix}|${live.prefix})-`);
      const deleted = await Lab.cleanupStale(both);
      expect(deleted.sort()).toEqual([`${dead.prefix}-n1`, `${dead.prefix}-n2`, `${dead.prefix}-n2p1`, `${dead.prefix}-u`]);
      expect(labNamespaces(dead.prefix)).toEqual([]);
      expect(labNamespaces(live.prefix)).toHaveLength(2);
      await expect(Lab.create({ nodes: 1, prefix: live.prefix })).rejects.toThrow(/is in use/);
    } finally {
      await dead.destroy(); // its namespaces are already gone: must not throw
      await live.destroy();
    }
    expect(labNamespaces(live.prefix)).toEqual([]);
  });
});
