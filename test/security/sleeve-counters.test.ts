/**
 * Attacks on the sleeve's message counters by someone on the underlay without the secret: the
 * header's 64-bit counter must reach the AEAD nonce bit for bit, counters at or above 2^52 are
 * refused before anything else, and no counter (with either AEAD) can end the process.
 */
import { describe, expect, it } from 'vitest';
import { TYPE_DATA } from '../../src/router/sleeve/wire.js';
import type { Datagram } from '../fakes/fake-udp.js';
import { FakeClock, FakeNetwork, connect, makeNode, randomFrame, run, sendFrames, type Node } from '../router/sleeve-harness.js';

const AEADS = ['openssl', 'libsodium'] as const;
const ATTACKER = { address: '198.18.0.66', port: 6784 };
const B = { address: '198.18.0.2', port: 6784 };

/** Two routers with keys, capturing every datagram from the very first one under the keys. */
async function pair(aead: 'openssl' | 'libsodium') {
  const net = new FakeNetwork();
  const clock = new FakeClock();
  const a = makeNode(net, clock, { name: 'alpha', address: '198.18.0.1', aead });
  const b = makeNode(net, clock, { name: 'beta', address: '198.18.0.2', aead });
  net.capture = true;
  connect(a, b);
  a.sleeve.start();
  b.sleeve.start();
  await run(net, clock, 1500);
  return { net, clock, a, b };
}

function counterOf(d: Datagram): bigint {
  return d.data.readBigUInt64BE(16);
}

function withCounter(d: Datagram, counter: bigint): Buffer {
  const out = Buffer.from(d.data);
  out.writeBigUInt64BE(counter, 16);
  return out;
}

/** Sends `n` frames a → b one message each and returns how many b delivered. */
async function deliver(net: FakeNetwork, clock: FakeClock, a: Node, b: Node, n: number, seed: number): Promise<number> {
  const before = b.received.length;
  for (let i = 0; i < n; i++) sendFrames(a, 'beta', [{ frame: randomFrame(120, seed + i) }]);
  await run(net, clock, 50);
  return b.received.length - before;
}

describe.each(AEADS)('sleeve counters (%s)', (aead) => {
  it('the first datagram under a key, re-sent with counter 2^64-1 from another address, neither authenticates nor moves the peer nor stalls its traffic', async () => {
    const { net, clock, a, b } = await pair(aead);
    const first = net.captured.find((d) => d.fromAddress === '198.18.0.1' && d.data[0] === TYPE_DATA && counterOf(d) === 0n);
    expect(first).toBeDefined();
    const peerA = b.sleeve.peers[0]!;
    const highest = peerA.rx!.window.highest;
    const rxMessages = peerA.counters.rxMessages;

    net.inject(ATTACKER, B, withCounter(first!, 2n ** 64n - 1n));
    await run(net, clock, 50);

    expect(peerA.address).toBe('198.18.0.1');
    expect(peerA.rx!.window.highest).toBeGreaterThanOrEqual(highest);
    expect(peerA.rx!.window.highest).toBeLessThan(2 ** 32);
    expect(peerA.counters.rxMessages).toBe(rxMessages);
    expect(await deliver(net, clock, a, b, 5, 10)).toBe(5);
    expect(b.sleeve.drops.replay).toBe(0);
    expect(b.sleeve.drops.auth).toBe(0);
    expect(b.sleeve.drops.counterLimit).toBe(1);
  });

  // Each boundary counter on a captured datagram from the peer's own address: refused by the
  // counter limit, the replay window or the AEAD, never delivered, never thrown.
  const cases: { counter: bigint; reason: 'replay' | 'auth' | 'counterLimit' }[] = [
    { counter: 0n, reason: 'replay' },
    { counter: 2n ** 32n - 1n, reason: 'auth' },
    { counter: 2n ** 32n, reason: 'auth' },
    { counter: 2n ** 52n - 1n, reason: 'auth' },
    { counter: 2n ** 52n, reason: 'counterLimit' },
    { counter: 2n ** 53n, reason: 'counterLimit' },
    { counter: 2n ** 63n, reason: 'counterLimit' },
    { counter: 2n ** 64n - 1024n, reason: 'counterLimit' },
    { counter: 2n ** 64n - 1n, reason: 'counterLimit' },
  ];
  it.each(cases)('a captured datagram re-sent with counter $counter is dropped as $reason and traffic goes on', async ({ counter, reason }) => {
    const { net, clock, a, b } = await pair(aead);
    const first = net.captured.find((d) => d.fromAddress === '198.18.0.1' && d.data[0] === TYPE_DATA && counterOf(d) === 0n)!;
    const delivered = b.received.length;
    const before = { ...b.sleeve.drops };
    net.inject({ address: '198.18.0.1', port: 6784 }, B, withCounter(first, counter));
    await run(net, clock, 50);
    expect(b.received.length).toBe(delivered);
    expect(b.sleeve.drops[reason]).toBe(before[reason] + 1);
    expect(b.sleeve.peers[0]!.address).toBe('198.18.0.1');
    expect(await deliver(net, clock, a, b, 3, 20)).toBe(3);
  });

  it('the sender never seals at or above 2^52: the send is dropped, counted, and new keys are asked for', async () => {
    const { net, clock, a, b } = await pair(aead);
    const wanted: string[] = [];
    a.sleeve.setEvents({ pathChange: () => undefined, rekeyWanted: (p) => wanted.push(p.name) });
    a.sleeve.peers[0]!.tx!.counter = 2 ** 52 - 1;
    net.captured.length = 0;
    expect(await deliver(net, clock, a, b, 1, 30)).toBe(1);
    expect(await deliver(net, clock, a, b, 1, 31)).toBe(0);
    expect(a.sleeve.txDrops().counterLimit).toBeGreaterThanOrEqual(1);
    expect(net.captured.filter((d) => d.fromAddress === '198.18.0.1').every((d) => counterOf(d) < 2n ** 52n)).toBe(true);
    await run(net, clock, 500); // the sleeve's coarse timer asks for keys
    expect(wanted).toContain(b.peer);
  });
});

describe('the receive path never throws out of the batch callback', () => {
  it('an exception while handling a batch is counted and the next batch is handled', async () => {
    const { net, clock, a, b } = await pair('openssl');
    const sink = (b.sleeve as unknown as { sink: unknown }).sink;
    b.sleeve.setSink(() => {
      throw new Error('sink failed');
    });
    sendFrames(a, 'beta', [{ frame: randomFrame(100, 1) }]);
    await run(net, clock, 50);
    expect(b.sleeve.drops.exception).toBe(1);
    b.sleeve.setSink(sink as Parameters<typeof b.sleeve.setSink>[0]);
    expect(await deliver(net, clock, a, b, 2, 40)).toBe(2);
  });
});
