/**
 * The mesh in the lab: 5 nodes on a line (n1 – n2 – n3 – n4 – n5; nftables drops everything
 * between other pairs). Each router is configured with its predecessor only and learns the rest
 * by gossip. Every pod reaches every other, through relays where needed; a relay never sees
 * plaintext; nodes come and go; a partition heals; keys rotate (every 2 s) under a TCP stream.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { iperf3Tcp, ping, tcpTransferSha256 } from '../../lab/traffic.js';
import type { StatusReport } from '../../src/api/types.js';
import { WeftCluster } from '../../lab/weft-cluster.js';
import { until } from './helpers.js';

const isRoot = process.getuid?.() === 0;
const N = 5;

function peerByNick(s: StatusReport, nick: string) {
  return s.peers.find((p) => p.nickname === nick);
}

describe.skipIf(!isRoot)('mesh of 5 nodes on a line, relays in between', () => {
  let c: WeftCluster;

  beforeAll(async () => {
    c = await WeftCluster.start({
      nodes: N,
      podsPerNode: 1,
      extraArgs: ['--rekey-seconds', '2', '--log-level', 'info'],
      peersOf: (i) => (i === 0 ? [] : [i - 1]),
      beforeRouters: async (lab) => {
        for (let a = 0; a < N; a++) for (let b = a + 2; b < N; b++) await lab.blockAllBetween(lab.nodes[a]!, lab.nodes[b]!);
      },
    });
    await c.waitEstablished(45_000);
  });

  afterAll(async () => {
    await c?.destroy();
  });

  it('every router learns every other by gossip; non-neighbours are reached through the next node', async () => {
    const s1 = await c.status(0);
    expect(s1.peers.map((p) => p.nickname).sort()).toEqual(['n2', 'n3', 'n4', 'n5']);
    expect(peerByNick(s1, 'n2')!.path).toBe('direct');
    const n2 = peerByNick(s1, 'n2')!.name;
    for (const far of ['n3', 'n4', 'n5']) {
      expect(peerByNick(s1, far)!.path).toBe('relay');
      expect(peerByNick(s1, far)!.via).toBe(n2);
    }
    const hops = Object.fromEntries(s1.mesh.peers.map((p) => [p.nickname, p.hops]));
    expect(hops).toEqual({ n2: 1, n3: 2, n4: 3, n5: 4 });
    // only direct neighbours hold mesh connections; the blocked pairs were tried and failed
    expect(s1.mesh.connections.map((x) => x.nickname)).toEqual(['n2']);
  });

  it('every pod reaches every other pod, both ways', async () => {
    const failures: string[] = [];
    for (const [a, b] of c.podPairs()) {
      const r = await ping(c.lab, a.ns, b.ipv4!, { count: 2, intervalS: 0.2, timeoutS: 2 });
      if (r.received === 0) failures.push(`${a.node.name} → ${b.node.name}`);
    }
    expect(failures).toEqual([]);
  });

  it('a relay forwards sealed frames it cannot read: no plaintext in its capture, plaintext at the destination', async () => {
    const relay = c.lab.nodes[2]!; // n3 relays n2 ↔ n4
    const [from, to] = [c.podsOn(2)[0]!, c.podsOn(4)[0]!];
    const dir = c.dir;
    const atRelay = join(dir, 'relay.pcap');
    const atDest = join(dir, 'dest.pcap');
    const cap1 = c.lab.spawn(relay.ns, ['tcpdump', '-U', '-n', '-i', relay.underlayIf, '-w', atRelay, 'udp']);
    const cap2 = c.lab.spawn(to.node.ns, ['tcpdump', '-U', '-n', '-i', 'weft', '-w', atDest, 'icmp']);
    await new Promise((r) => setTimeout(r, 1000));
    const before = (await c.status(2)).relayed.datagrams;
    const marker = Buffer.from('weftsecretmarker');
    await c.lab.exec(from.ns, ['ping', '-c', '5', '-i', '0.2', '-s', '600', '-p', marker.toString('hex'), to.ipv4!]);
    await new Promise((r) => setTimeout(r, 500));
    await cap1.stop(2000);
    await cap2.stop(2000);
    const relayed = (await c.status(2)).relayed.datagrams - before;
    const relayBytes = readFileSync(atRelay);
    const destBytes = readFileSync(atDest);
    rmSync(atRelay);
    rmSync(atDest);
    expect(relayed).toBeGreaterThanOrEqual(10); // 5 requests and 5 replies crossed n3
    expect(relayBytes.length).toBeGreaterThan(10 * 600);
    expect(relayBytes.includes(marker)).toBe(false);
    expect(destBytes.includes(marker)).toBe(true); // the search does find plaintext where there is some
  });

  it('keys rotate under a running TCP stream without breaking it', async () => {
    const [a, b] = [c.podsOn(1)[0]!, c.podsOn(5)[0]!];
    const rekeys = async () => {
      const s = await c.status(0);
      const n5 = peerByNick(s, 'n5')!.name;
      return s.mesh.keys.find((k) => k.peer === n5)!.rekeys;
    };
    const k0 = await rekeys();
    const r = await iperf3Tcp(c.lab, b.ns, b.ipv4!, a.ns, { seconds: 8 });
    const k1 = await rekeys();
    expect(k1 - k0).toBeGreaterThanOrEqual(2); // every 2 s, across 8 s
    expect(r.intervalsGbps.length).toBeGreaterThanOrEqual(7);
    expect(Math.min(...r.intervalsGbps)).toBeGreaterThan(0); // no second without traffic
    const t = await tcpTransferSha256(c.lab, a.ns, b.ns, b.ipv4!, 50 * 1024 * 1024, 7781);
    expect(t.receivedSha256).toBe(t.sentSha256);
  });

  it('a relay killed and restarted: traffic through it stops, then resumes by itself', async () => {
    const [a, b] = [c.podsOn(2)[0]!, c.podsOn(4)[0]!];
    await c.stopRouter(2, 'SIGKILL');
    await until('n2 sees n4 unreachable', async () => ((await ping(c.lab, a.ns, b.ipv4!, { count: 1, timeoutS: 1 })).received === 0 ? true : undefined));
    await c.startRouter(2);
    await until('n2 reaches n4 again', async () => ((await ping(c.lab, a.ns, b.ipv4!, { count: 1, timeoutS: 1 })).received === 1 ? true : undefined), 45_000);
  });

  it('a partition splits the line and heals when the link comes back', async () => {
    const [n2, n3] = [c.lab.nodes[1]!, c.lab.nodes[2]!];
    const [a, b] = [c.podsOn(1)[0]!, c.podsOn(5)[0]!];
    await c.lab.blockAllBetween(n2, n3);
    await until('n1 loses n5', async () => ((await ping(c.lab, a.ns, b.ipv4!, { count: 1, timeoutS: 1 })).received === 0 ? true : undefined), 60_000);
    await c.lab.clearFaultsBetween(n2, n3);
    await until('n1 reaches n5 again', async () => ((await ping(c.lab, a.ns, b.ipv4!, { count: 1, timeoutS: 1 })).received === 1 ? true : undefined), 90_000);
    // The ping proves a path; the status may still be settling (CI once saw 'none' right after the
    // first reply: reconnections after a heal can briefly withdraw and re-add a link), so wait for it.
    await until('n1 reports n5 through a relay', async () => (peerByNick(await c.status(0), 'n5')?.path === 'relay' ? true : undefined), 30_000);
    expect(peerByNick(await c.status(0), 'n5')!.path).toBe('relay');
  });

  it('garbage and wrong-protocol connections to the mesh port are refused and counted; the router keeps running', async () => {
    const n1 = c.lab.nodes[0]!;
    const n2 = c.lab.nodes[1]!;
    const before = (await c.status(1)).mesh.closes;
    const script = `
      const net = require('node:net');
      const sends = [Buffer.from('GET / HTTP/1.0\\r\\n\\r\\n'), Buffer.concat([Buffer.from('wEFt'), Buffer.from([0, 9, 0, 0])]), Buffer.concat([Buffer.from('wEFt'), Buffer.from([0, 2, 0, 0]), Buffer.from([0, 0, 0, 48]), Buffer.alloc(48, 7)]), Buffer.concat([Buffer.from('wEFt'), Buffer.from([0, 2, 0, 0]), Buffer.from([0xff, 0xff, 0xff, 0xff])])];
      let left = sends.length;
      for (const b of sends) {
        const s = net.connect({ host: '${n2.address}', port: 6784, localAddress: '${n1.address}' }, () => s.write(b));
        s.on('error', () => {});
        s.on('close', () => { if (--left === 0) process.exit(0); });
        s.resume();
      }
      setTimeout(() => process.exit(0), 5000);
    `;
    await c.lab.exec(n1.ns, [process.execPath, '-e', script], { timeoutMs: 10_000 });
    const after = await until('refusals counted', async () => {
      const cl = (await c.status(1)).mesh.closes;
      const gained = (k: string) => (cl[k] ?? 0) - (before[k] ?? 0);
      return gained('notWeft') >= 1 && gained('version') >= 1 && gained('handshake') >= 1 && gained('oversized') >= 1 ? cl : undefined;
    }, 15_000);
    expect(after).toBeDefined();
    const [a, b] = [c.podsOn(1)[0]!, c.podsOn(3)[0]!];
    expect((await ping(c.lab, a.ns, b.ipv4!, { count: 2, timeoutS: 2 })).received).toBeGreaterThan(0);
  });

  it('a node that left is forgotten everywhere after `weft forget` on one router', async () => {
    const n5 = (await c.status(4)).name;
    await c.stopRouter(4);
    const r1 = c.routers[0]!;
    const out = await c.lab.exec(r1.node.ns, [process.execPath, 'dist/src/cli/main.js', 'forget', 'n5', '--socket', r1.socket]);
    expect(out.stdout).toContain(`forgotten: ${n5}`);
    for (let i = 0; i < 4; i++) {
      await until(`n${i + 1} drops n5`, async () => ((await c.status(i)).mesh.peers.some((p) => p.name === n5) ? undefined : true), 20_000);
    }
    const again = await c.lab.exec(r1.node.ns, [process.execPath, 'dist/src/cli/main.js', 'forget', 'nobody', '--socket', r1.socket], { check: false });
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/no peer named "nobody"/);
  });
});
