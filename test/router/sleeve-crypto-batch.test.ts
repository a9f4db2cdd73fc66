/**
 * The sleeve with batched seals and opens on a crypto pool (--crypto-threads > 1): messages of a
 * receive batch are opened together and handled in arrival order, with every per-message rule of
 * the one-at-a-time path (replays within the batch, forged messages, reassembly slots pinned
 * until their message is handled). The whole sleeve suite also runs this way with
 * WEFT_TEST_CRYPTO_THREADS=2 (sleeve-harness.ts).
 */
import { describe, expect, it } from 'vitest';
import { TYPE_DATA } from '../../src/router/sleeve/wire.js';
import { FakeClock, FakeNetwork, connect, makeNode, randomFrame, run, sendFrames, type Node } from './sleeve-harness.js';

async function pooledPair(threads: number, opts: { gro?: boolean } = {}): Promise<{ net: FakeNetwork; clock: FakeClock; a: Node; b: Node }> {
  const net = new FakeNetwork();
  const clock = new FakeClock();
  const a = makeNode(net, clock, { name: 'alpha', address: '198.18.0.1', cryptoThreads: threads, maxBatch: 1024, gro: opts.gro });
  const b = makeNode(net, clock, { name: 'beta', address: '198.18.0.2', cryptoThreads: threads, maxBatch: 1024, gro: opts.gro });
  connect(a, b);
  a.sleeve.start();
  b.sleeve.start();
  await run(net, clock, 1500);
  return { net, clock, a, b };
}

const framesOf = (b: Node): string[] => b.received.filter((r) => r.from === 'alpha').map((r) => r.frame.toString('hex'));

describe.each([1, 3])('sleeve with --crypto-threads %i', (threads) => {
  it('delivers many fragmented and small messages of one receive batch whole and in order (slots pinned, run early)', async () => {
    const { net, clock, a, b } = await pooledPair(threads);
    const frames = Array.from({ length: 60 }, (_, i) => ({ frame: randomFrame(i % 3 === 0 ? 20_000 + i * 50 : 60 + i, 100 + i) }));
    const before = b.sleeve.reassemblyStatus().completed;
    sendFrames(a, 'beta', frames);
    await run(net, clock, 100);
    expect(framesOf(b)).toEqual(frames.map((f) => f.frame.toString('hex')));
    expect(b.sleeve.reassemblyStatus().completed - before).toBe(20);
    expect(b.sleeve.reassemblyStatus().inUse).toBe(0);
    expect(b.sleeve.reassemblyDrops()).toMatchObject({ fragEvicted: 0, fragAuth: 0, fragDuplicate: 0 });
    expect(b.sleeve.drops.auth).toBe(0);
    const c = b.sleeve.cryptoStatus();
    expect(c.threads).toBe(threads);
    // 20 reassembled messages, at most 7 pinned at once: the batch ran early at least twice.
    expect(c.opens.runs).toBeGreaterThan(2);
    if (threads > 1) expect(c.opens.pooledRuns).toBeGreaterThan(0);
    expect(a.sleeve.cryptoStatus().seals.jobs).toBeGreaterThanOrEqual(frames.length > 0 ? 21 : 0);
  });

  it('a datagram repeated within one batch is a replay, a forged one fails alone, the rest arrive in order', async () => {
    const { net, clock, a, b } = await pooledPair(threads);
    let n = 0;
    net.filter = (d) => {
      if (d.fromAddress !== '198.18.0.1' || d.data[0] !== TYPE_DATA) return true;
      n++;
      if (n === 3) {
        const forged = Buffer.from(d.data);
        forged[forged.length - 20] = forged[forged.length - 20]! ^ 0x01;
        return [{ ...d, data: forged }];
      }
      return n % 4 === 0 ? [d, { ...d, data: Buffer.from(d.data) }] : true;
    };
    const frames = Array.from({ length: 12 }, (_, i) => ({ frame: randomFrame(1300, 500 + i) }));
    const before = { ...b.sleeve.drops };
    sendFrames(a, 'beta', frames);
    await run(net, clock, 50);
    net.filter = undefined;
    // (each 1300-byte frame fills a datagram of its own: 12 messages, the third forged, 4th, 8th, 12th doubled)
    expect(framesOf(b)).toEqual(frames.filter((_, i) => i !== 2).map((f) => f.frame.toString('hex')));
    expect(b.sleeve.drops.auth - before.auth).toBe(1);
    expect(b.sleeve.drops.replay - before.replay).toBe(3);
  });

  it('GRO trains of super-frame fragments: the same frames as one message at a time', async () => {
    const { net, clock, a, b } = await pooledPair(threads, { gro: true });
    const vnet = Buffer.from([1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    const frames = Array.from({ length: 12 }, (_, i) => ({ frame: randomFrame(64_000 - i * 1000, 900 + i), vnet }));
    sendFrames(a, 'beta', frames);
    await run(net, clock, 100);
    expect(framesOf(b)).toEqual(frames.map((f) => f.frame.toString('hex')));
    expect(b.sleeve.drops.auth).toBe(0);
    expect(b.sleeve.reassemblyStatus().inUse).toBe(0);
  });
});
