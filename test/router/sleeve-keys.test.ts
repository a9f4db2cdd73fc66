/**
 * Key installation semantics (Overlay.installKeys in gossip/contracts.ts) and the hard key
 * lifetime, on two sleeves with a fake clock.
 */
import { describe, expect, it } from 'vitest';
import { AeadCipher } from '../../src/router/crypto/frame-cipher.js';
import type { SleeveInit } from '../../src/router/sleeve/sleeve.js';
import { DATA_HDR_LEN, FLAG_SEALED, REC_FRAME, TYPE_DATA, writeDataHeader, writeRecordHeader } from '../../src/router/sleeve/wire.js';
import { OpenSslChaCha } from '../../src/platform/linux/native-aead.js';
import { FakeClock, FakeNetwork, makeNode, randomFrame, run, sendFrames, testKey, SECRET, type Node } from './sleeve-harness.js';

/** Keys as a handshake in epoch `e` gives them; `a` and `b` get matching halves. */
function keysFor(self: Node, other: Node, e: number) {
  const [lo, hi] = self.name < other.name ? [self, other] : [other, self];
  const idOf = (n: Node) => (n === lo ? 1000 : 2000) + e;
  return {
    name: other.peer,
    id: other.id,
    tx: { keyId: idOf(other), key: testKey(SECRET, self.peer, other.peer, e) },
    rx: { keyId: idOf(self), key: testKey(SECRET, other.peer, self.peer, e) },
    probe: testKey(SECRET, lo.peer, hi.peer, e),
  };
}

async function pair(sleeve: Partial<SleeveInit> = {}) {
  const net = new FakeNetwork();
  const clock = new FakeClock();
  const a = makeNode(net, clock, { name: 'alpha', address: '198.18.0.1', sleeve });
  const b = makeNode(net, clock, { name: 'beta', address: '198.18.0.2', sleeve });
  a.sleeve.installKeys(keysFor(a, b, 1), false);
  b.sleeve.installKeys(keysFor(b, a, 1), true);
  a.sleeve.setDirect(b.id, { address: b.address, port: 6784, family: 4 });
  b.sleeve.setDirect(a.id, { address: a.address, port: 6784, family: 4 });
  a.sleeve.start();
  b.sleeve.start();
  await run(net, clock, 1500);
  return { net, clock, a, b, pa: b.sleeve.peers[0]!, pb: a.sleeve.peers[0]! };
}

async function exchange(net: FakeNetwork, clock: FakeClock, a: Node, b: Node, seed: number): Promise<[number, number]> {
  const [ra, rb] = [a.received.length, b.received.length];
  sendFrames(a, 'beta', [{ frame: randomFrame(150, seed) }]);
  sendFrames(b, 'alpha', [{ frame: randomFrame(150, seed + 1) }]);
  await run(net, clock, 50, 10);
  return [a.received.length - ra, b.received.length - rb];
}

describe('installKeys', () => {
  it('confirm = true installs at once when no receive key of the peer has authenticated anything', () => {
    const net = new FakeNetwork();
    const clock = new FakeClock();
    const a = makeNode(net, clock, { name: 'alpha', address: '198.18.0.1' });
    const b = makeNode(net, clock, { name: 'beta', address: '198.18.0.2' });
    b.sleeve.installKeys(keysFor(b, a, 1), true);
    expect(b.sleeve.peers[0]!.rx!.keyId).toBe(2001);
    b.sleeve.installKeys(keysFor(b, a, 2), true); // the first keys never carried anything either
    expect(b.sleeve.peers[0]!.rx!.keyId).toBe(2002);
    expect(b.sleeve.peers[0]!.tx!.keyId).toBe(1002);
    expect(b.sleeve.peers[0]!.rxPending).toBeUndefined();
  });

  it('confirm = true with working keys: pending, current keys untouched, promoted by the first datagram under the new receive key', async () => {
    const { net, clock, a, b, pa } = await pair();
    const [rx, rxPrev, rxSince] = [pa.rx, pa.rxPrev, pa.rxSince];
    const tx = pa.tx;
    b.sleeve.installKeys(keysFor(b, a, 2), true);
    expect(pa.rx).toBe(rx);
    expect(pa.tx).toBe(tx);
    expect(pa.rxPrev).toBe(rxPrev);
    expect(pa.rxSince).toBe(rxSince);
    expect(pa.rxPending!.keyId).toBe(2002);
    // b still seals with the working key, which a opens
    expect(await exchange(net, clock, a, b, 1)).toEqual([1, 1]);
    expect(pa.rxPending).toBeDefined();
    // a (the initiator) switches; its first datagram under the new key promotes b's pending pair
    a.sleeve.installKeys(keysFor(a, b, 2), false);
    expect(await exchange(net, clock, a, b, 3)).toEqual([1, 1]);
    expect(pa.rx!.keyId).toBe(2002);
    expect(pa.tx!.keyId).toBe(1002);
    expect(pa.rxPrev).toBe(rx);
    expect(pa.rxPending).toBeUndefined();
    expect(pa.txPending).toBeUndefined();
    expect(a.sleeve.drops.unknownKey + b.sleeve.drops.unknownKey + a.sleeve.drops.auth + b.sleeve.drops.auth).toBe(0);
  });

  it('a newer pending pair replaces an unpromoted one, and an unpromoted pair is dropped after pendingKeyMs', async () => {
    const { net, clock, a, b, pa } = await pair({ pendingKeyMs: 5000 });
    b.sleeve.installKeys(keysFor(b, a, 2), true);
    b.sleeve.installKeys(keysFor(b, a, 3), true);
    expect(pa.rxPending!.keyId).toBe(2003);
    // a datagram under the replaced pending key is unknown
    a.sleeve.installKeys(keysFor(a, b, 2), false);
    const unknown = b.sleeve.drops.unknownKey;
    sendFrames(a, 'beta', [{ frame: randomFrame(100, 5) }]);
    await run(net, clock, 20, 10);
    expect(b.sleeve.drops.unknownKey).toBeGreaterThan(unknown);
    a.sleeve.installKeys(keysFor(a, b, 1), false); // back to the working keys
    await run(net, clock, 6000);
    expect(pa.rxPending).toBeUndefined();
    expect(pa.rx!.keyId).toBe(2001);
    expect(await exchange(net, clock, a, b, 7)).toEqual([1, 1]);
  });

  it('confirm = false switches at once and keeps the previous receive key for the overlap only', async () => {
    const { net, clock, a, b, pa } = await pair({ rekeyOverlapMs: 3000 });
    const old = pa.rx;
    b.sleeve.installKeys(keysFor(b, a, 2), false);
    expect(pa.rx!.keyId).toBe(2002);
    expect(pa.tx!.keyId).toBe(1002);
    expect(pa.rxPrev).toBe(old);
    await run(net, clock, 3500);
    expect(pa.rxPrev).toBeUndefined();
  });
});

describe('hard key lifetime', () => {
  it('after keyLifetimeMs the send key seals nothing and the receive key opens nothing, until new keys', async () => {
    const { net, clock, a, b } = await pair({ keyLifetimeMs: 60_000 });
    const wanted: string[] = [];
    a.sleeve.setEvents({ pathChange: () => undefined, rekeyWanted: (p) => wanted.push(p.name) });
    expect(await exchange(net, clock, a, b, 1)).toEqual([1, 1]);
    await run(net, clock, 58_000, 500);
    expect(await exchange(net, clock, a, b, 3)).toEqual([1, 1]);
    expect(wanted).toEqual([]);
    await run(net, clock, 2000, 500);
    expect(await exchange(net, clock, a, b, 5)).toEqual([0, 0]);
    expect(a.sleeve.txDrops().keyExpired).toBeGreaterThan(0);
    expect(wanted).toContain(b.peer);
    // a datagram sealed under the expired key is refused by its receive key too
    const counter = a.sleeve.peers[0]!.tx!.counter;
    const key = keysFor(a, b, 1).tx.key;
    const frame = randomFrame(100, 9);
    const d = Buffer.alloc(DATA_HDR_LEN + 4 + frame.length + 16);
    writeDataHeader(d, 0, TYPE_DATA, FLAG_SEALED, b.id, a.id, 2001, counter + 10);
    writeRecordHeader(d, DATA_HDR_LEN, REC_FRAME, frame.length);
    frame.copy(d, DATA_HDR_LEN + 4);
    new AeadCipher(new OpenSslChaCha()).key(key).seal(d, DATA_HDR_LEN, 4 + frame.length, d, 2, d, 16);
    const before = b.sleeve.drops.keyExpired;
    net.inject({ address: '198.18.0.1', port: 6784 }, { address: '198.18.0.2', port: 6784 }, d);
    await run(net, clock, 20, 10);
    expect(b.sleeve.drops.keyExpired).toBe(before + 1);
    // a new handshake brings traffic back
    a.sleeve.installKeys(keysFor(a, b, 2), false);
    b.sleeve.installKeys(keysFor(b, a, 2), true);
    expect(await exchange(net, clock, a, b, 11)).toEqual([1, 1]);
  });
});
