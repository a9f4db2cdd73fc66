/**
 * Fast failover and the way back (issue 18), in real namespaces: three routers on the sleeve
 * (no fast path), pings flowing from a pod on n1 to one on n2. UDP between n1 and n2 is blocked:
 * n1 takes the pair to a relay through n3 while the mesh (TCP) stays up; UNblocked: back to
 * direct after the hold. Times are logged, never asserted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WeftCluster, ping } from '../../lab/index.js';
import type { PeerStatus } from '../../src/api/types.js';
const isRoot = process.getuid?.() === 0;

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!isRoot)('sleeve failover to a relay and back', () => {
  let c: WeftCluster;
  beforeAll(async () => {
    c = await WeftCluster.start({ nodes: 3, podsPerNode: 1 });
    await c.waitEstablished();
    await c.waitPaths(() => 'direct');
  });
  afterAll(async () => {
    await c?.destroy();
  });

  async function pathTo(i: number, nick: string): Promise<PeerStatus | undefined> {
    return (await c.apiStatus(i)).peers.find((p) => p.nickname === nick);
  }

  async function waitPath(i: number, nick: string, want: string, timeoutMs: number): Promise<PeerStatus> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const p = await pathTo(i, nick);
      if (p?.path === want) return p;
      if (Date.now() > deadline) throw new Error(`n${i + 1} → ${nick}: still ${p?.path ?? '?'} (${p?.pathReason ?? '?'}), not ${want}, after ${timeoutMs} ms`);
      await delay(50);
    }
  }

  it('UDP blocked mid-stream: the pair goes to the relay n3; cleared: back to direct; pings keep arriving', async () => {
    const [n1, n2] = [c.lab.nodes[0]!, c.lab.nodes[1]!];
    const to = c.podsOn(2)[0]!;
    const from = c.podsOn(1)[0]!;
    const before = await pathTo(0, 'n2');
    expect(before?.path).toBe('direct');
    expect(before?.rttMs).not.toBeNull(); // the observation probe measured the round trip
    const stream = ping(c.lab, from.ns, to.ipv4!, { count: 600, intervalS: 0.02, timeoutS: 1 });
    await delay(1500);
    const cutAt = Date.now();
    await c.lab.blockUdpBetween(n1, n2);
    const relayed = await waitPath(0, 'n2', 'relay', 15_000);
    console.log(`n1 → n2 on the relay ${Date.now() - cutAt} ms after the cut: ${relayed.pathReason}`);
    expect(relayed.pathReason).toContain('relay via');
    await delay(1500);
    const healAt = Date.now();
    await c.lab.clearFaultsBetween(n1, n2);
    const back = await waitPath(0, 'n2', 'direct', 20_000);
    console.log(`n1 → n2 direct again ${Date.now() - healAt} ms after the heal: ${back.pathReason}`);
    const r = await stream;
    console.log(`pings: ${r.sent} sent, ${r.sent - r.received} lost`);
    expect(r.received).toBeGreaterThan(r.sent / 2);
    // and the last of them arrived on the direct path
    expect((await ping(c.lab, from.ns, to.ipv4!, { count: 3, intervalS: 0.1 })).received).toBe(3);
  });
});
