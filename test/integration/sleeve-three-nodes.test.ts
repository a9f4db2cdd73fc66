import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WeftCluster, capture, iperf3Tcp, ping, sendBroadcasts, tcpTransferSha256 } from '../../lab/index.js';

describe('three nodes', () => {
  let c: WeftCluster;
  beforeAll(async () => {
    c = await WeftCluster.start({ nodes: 3, podsPerNode: 2 });
    await c.waitEstablished();
  });
  afterAll(async () => {
    await c?.destroy();
  });

  it('every pod reaches every other pod (IPv4 and IPv6)', async () => {
    for (const [a, b] of c.podPairs()) {
      expect((await ping(c.lab, a.ns, b.ipv4!, { count: 1, timeoutS: 2 })).received, `${a.ns} -> ${b.ipv4}`).toBe(1);
    }
    expect((await ping(c.lab, c.pods[0]!.ns, c.pods[5]!.ipv6!, { count: 2, intervalS: 0.1 })).received).toBe(2);
  });

  it('a broadcast reaches every other pod exactly once', async () => {
    const sender = c.pods[0]!;
    const others = c.pods.filter((p) => p !== sender);
    const caps = await Promise.all(others.map((p) => capture(c.lab, p.ns, 'eth0', 'udp port 9999')));
    await sendBroadcasts(c.lab, sender.ns, { tag: 'weft-broadcast', port: 9999, address: '10.40.255.255', count: 5 });
    await new Promise((r) => setTimeout(r, 500));
    const counts = await Promise.all(caps.map((k) => k.stop()));
    expect(counts).toEqual(others.map(() => 5));
  });

  it('200 MB over TCP arrive intact (sha256 at both ends)', async () => {
    const from = c.podsOn(1)[0]!;
    const to = c.podsOn(3)[0]!;
    const r = await tcpTransferSha256(c.lab, from.ns, to.ns, to.ipv4!, 200 * 1024 * 1024);
    expect(r.receivedBytes).toBe(200 * 1024 * 1024);
    expect(r.receivedSha256).toBe(r.sentSha256);
  });

  it('a router killed under traffic and restarted recovers by itself; the TCP stream survives', async () => {
    const from = c.podsOn(1)[0]!;
    const to = c.podsOn(2)[0]!;
    const stream = iperf3Tcp(c.lab, to.ns, to.ipv4!, from.ns, { seconds: 12, port: 5202 });
    await new Promise((r) => setTimeout(r, 3000));
    await c.stopRouter(1, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 1000));
    await c.startRouter(1);
    const r = await stream;
    // the connection outlived the outage and carried data again at the end
    expect(r.intervalsGbps.length).toBeGreaterThanOrEqual(10);
    expect(r.intervalsGbps.slice(-2).every((g) => g > 0.05)).toBe(true);
    await c.waitEstablished();
    expect((await ping(c.lab, to.ns, from.ipv4!, { count: 3, intervalS: 0.1 })).received).toBe(3);
  });
});
