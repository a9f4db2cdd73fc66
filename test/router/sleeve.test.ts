import { describe, expect, it } from 'vitest';
import { DATA_HDR_LEN, TYPE_DATA, TYPE_FRAG } from '../../router/sleeve/wire.js';
import { FakeClock, FakeNetwork, makeNode, randomFrame, run, sendFrames } from './sleeve-harness.js';

async function pair(opts: { secretB?: string; plaintextA?: boolean; plaintextB?: boolean; gro?: boolean; mtu?: number } = {}) {
  const net = new FakeNetwork();
  const clock = new FakeClock();
  const a = makeNode(net, clock, { name: 'alpha', address: '198.18.0.1', peers: ['198.18.0.2'], plaintext: opts.plaintextA, gro: opts.gro, mtu: opts.mtu });
  const b = makeNode(net, clock, { name: 'beta', address: '198.18.0.2', peers: ['198.18.0.1'], secret: opts.secretB, plaintext: opts.plaintextB, gro: opts.gro, mtu: opts.mtu });
  a.sleeve.start();
  b.sleeve.start();
  await run(net, clock, 1500);
  return { net, clock, a, b };
}

describe('sleeve discovery and liveness', () => {
  it('finds the peer behind a configured endpoint and learns its name', async () => {
    const { a, b } = await pair();
    expect(a.sleeve.peers.map((p) => p.name)).toEqual(['beta']);
    expect(b.sleeve.peers.map((p) => p.name)).toEqual(['alpha']);
    expect(a.sleeve.alive(a.sleeve.peers[0]!)).toBe(true);
    expect(a.sleeve.peers[0]!.address).toBe('198.18.0.2');
  });

  it('marks a silent peer unreachable after the dead interval and recovers when it speaks', async () => {
    const { net, clock, a, b } = await pair();
    b.sleeve.stop();
    await run(net, clock, 6000);
    expect(a.sleeve.alive(a.sleeve.peers[0]!)).toBe(false);
    b.sleeve.start();
    await run(net, clock, 1500);
    expect(a.sleeve.alive(a.sleeve.peers[0]!)).toBe(true);
  });

  it('learns a peer that is not configured but knows the secret', async () => {
    const net = new FakeNetwork();
    const clock = new FakeClock();
    const a = makeNode(net, clock, { name: 'alpha', address: '198.18.0.1', peers: [] });
    const b = makeNode(net, clock, { name: 'beta', address: '198.18.0.2', peers: ['198.18.0.1'] });
    a.sleeve.start();
    b.sleeve.start();
    await run(net, clock, 1500);
    expect(a.sleeve.peers.map((p) => p.name)).toEqual(['beta']);
    expect(b.sleeve.peers.map((p) => p.name)).toEqual(['alpha']);
  });
});

describe('sleeve frames', () => {
  it('delivers small frames intact and in order, bundled into few datagrams', async () => {
    const { net, clock, a, b } = await pair();
    net.capture = true;
    const frames = Array.from({ length: 50 }, (_, i) => ({ frame: randomFrame(60 + i * 7, i) }));
    sendFrames(a, 'beta', frames);
    const datagrams = net.captured.length; // sendFrames flushes synchronously: only these frames
    await run(net, clock, 100);
    expect(b.received.map((r) => r.frame)).toEqual(frames.map((f) => f.frame));
    // Greedy packing: every closed bundle is fuller than its capacity minus the largest record.
    const records = frames.reduce((n, f) => n + f.frame.length + 4, 0);
    const largest = Math.max(...frames.map((f) => f.frame.length + 4));
    expect(datagrams).toBeLessThanOrEqual(Math.ceil(records / (a.sleeve.bundleCapacity - largest)));
    expect(datagrams).toBeGreaterThanOrEqual(Math.ceil(records / a.sleeve.bundleCapacity));
  });

  it('carries super-frames with their virtio header through fragmentation', async () => {
    for (const gro of [false, true]) {
      const { net, clock, a, b } = await pair({ gro });
      net.capture = true;
      const vnet = Buffer.from([1, 1, 66, 0, 0xa8, 5, 34, 0, 16, 0]);
      const big = randomFrame(65000, 7);
      sendFrames(a, 'beta', [{ frame: randomFrame(100, 1) }, { frame: big, vnet }, { frame: randomFrame(90, 2) }]);
      await run(net, clock, 100);
      expect(b.received.length).toBe(3);
      expect(b.received[1]!.frame.equals(big)).toBe(true);
      expect(b.received[1]!.vnet).toEqual(vnet);
      expect(b.received[0]!.frame.length).toBe(100);
      expect(b.received[2]!.frame.length).toBe(90);
      const frags = net.captured.filter((d) => d.data[0] === TYPE_FRAG);
      expect(frags.length).toBeGreaterThan(40);
      expect(Math.max(...net.captured.map((d) => d.data.length))).toBeLessThanOrEqual(1472);
    }
  });

  it('respects a small underlay MTU on every datagram', async () => {
    const { net, clock, a, b } = await pair({ mtu: 1280 });
    net.capture = true;
    sendFrames(a, 'beta', [{ frame: randomFrame(30000, 3) }, { frame: randomFrame(1200, 4) }]);
    await run(net, clock, 100);
    expect(b.received.map((r) => r.frame.length)).toEqual([30000, 1200]);
    expect(Math.max(...net.captured.map((d) => d.data.length))).toBeLessThanOrEqual(1280 - 28);
  });

  it('reassembles fragments that arrive out of order and duplicated', async () => {
    const { net, clock, a, b } = await pair();
    const held: typeof net.captured = [];
    net.filter = (d) => {
      if (d.data[0] === TYPE_FRAG) {
        held.push(d);
        return false;
      }
      return true;
    };
    sendFrames(a, 'beta', [{ frame: randomFrame(20000, 9) }]);
    net.filter = undefined;
    expect(held.length).toBeGreaterThan(10);
    const shuffled = [...held].reverse();
    shuffled.splice(3, 0, held[5]!);
    for (const d of shuffled) net.send(d);
    await run(net, clock, 100);
    expect(b.received.length).toBe(1);
    expect(b.received[0]!.frame.equals(randomFrame(20000, 9))).toBe(true);
    expect(b.sleeve.reassemblyDrops().fragDuplicate).toBe(1);
  });

  it('loses only the message whose fragment was lost, and frees the slot on timeout', async () => {
    const { net, clock, a, b } = await pair();
    let dropped = false;
    net.filter = (d) => {
      if (!dropped && d.data[0] === TYPE_FRAG && d.data.readUInt16BE(30) === 3) {
        dropped = true;
        return false;
      }
      return true;
    };
    sendFrames(a, 'beta', [{ frame: randomFrame(20000, 1) }, { frame: randomFrame(20000, 2) }]);
    await run(net, clock, 3000);
    expect(b.received.length).toBe(1);
    expect(b.received[0]!.frame.equals(randomFrame(20000, 2))).toBe(true);
    expect(b.sleeve.reassemblyDrops().fragTimeout).toBe(1);
    expect(b.sleeve.reassemblyStatus().inUse).toBe(0);
  });
});

describe('sleeve security', () => {
  it('a router with the wrong secret never exchanges traffic; drops are counted', async () => {
    const { net, clock, a, b } = await pair({ secretB: 'a different secret, also long' });
    expect(a.sleeve.peers).toEqual([]);
    expect(b.sleeve.peers).toEqual([]);
    expect(a.sleeve.drops.auth).toBeGreaterThan(0);
    expect(b.sleeve.drops.auth).toBeGreaterThan(0);
    await run(net, clock, 1000);
    expect(a.received).toEqual([]);
  });

  it('drops replayed datagrams', async () => {
    const { net, clock, a, b } = await pair();
    net.capture = true;
    sendFrames(a, 'beta', [{ frame: randomFrame(200, 5) }]);
    await run(net, clock, 50);
    expect(b.received.length).toBe(1);
    const sent = net.captured.filter((d) => d.fromAddress === '198.18.0.1' && d.data[0] === TYPE_DATA);
    for (const d of sent) net.inject({ address: d.fromAddress, port: d.fromPort }, { address: d.toAddress, port: d.toPort }, d.data);
    await run(net, clock, 50);
    expect(b.received.length).toBe(1);
    expect(b.sleeve.drops.replay).toBeGreaterThanOrEqual(1);
  });

  it('drops forged and mutated datagrams without delivering anything', async () => {
    const { net, clock, a, b } = await pair();
    net.capture = true;
    sendFrames(a, 'beta', [{ frame: randomFrame(300, 6) }]);
    await run(net, clock, 50);
    const orig = net.captured.filter((d) => d.fromAddress === '198.18.0.1' && d.data[0] === TYPE_DATA).at(-1)!;
    const before = b.received.length;
    for (let i = DATA_HDR_LEN; i < orig.data.length; i += 17) {
      const forged = Buffer.from(orig.data);
      forged[i] = forged[i]! ^ 0x40;
      forged.writeUInt32BE(forged.readUInt32BE(20) + 1000 + i, 20); // fresh counter so replay does not catch it
      net.inject({ address: '198.18.0.1', port: 6784 }, { address: '198.18.0.2', port: 6784 }, forged);
    }
    await run(net, clock, 50);
    expect(b.received.length).toBe(before);
    expect(b.sleeve.drops.auth).toBeGreaterThan(10);
  });

  it('refuses plaintext traffic when encryption is on, and the reverse', async () => {
    const { a, b } = await pair({ plaintextB: true });
    expect(a.sleeve.peers).toEqual([]);
    expect(a.sleeve.drops.sealedMismatch).toBeGreaterThan(0);
    expect(b.sleeve.drops.sealedMismatch).toBeGreaterThan(0);
  });

  it('plaintext mode works between two plaintext routers', async () => {
    const { net, clock, a, b } = await pair({ plaintextA: true, plaintextB: true });
    sendFrames(a, 'beta', [{ frame: randomFrame(5000, 1) }, { frame: randomFrame(64, 2) }]);
    await run(net, clock, 50);
    expect(b.received.map((r) => r.frame.length)).toEqual([5000, 64]);
  });

  it('follows a restarted peer to its new session and refuses its old one', async () => {
    const { net, clock, a, b } = await pair();
    net.capture = true;
    sendFrames(a, 'beta', [{ frame: randomFrame(100, 1) }]);
    await run(net, clock, 50);
    const old = net.captured.filter((d) => d.fromAddress === '198.18.0.1' && d.data[0] === TYPE_DATA).at(-1)!;
    a.sleeve.stop();
    a.udp.close();
    net.endpoints.delete('198.18.0.1:6784');
    const a2 = makeNode(net, clock, { name: 'alpha', address: '198.18.0.1', peers: ['198.18.0.2'], sessionId: 2000 });
    a2.sleeve.start();
    await run(net, clock, 1500);
    sendFrames(a2, 'beta', [{ frame: randomFrame(100, 2) }]);
    await run(net, clock, 50);
    expect(b.received.at(-1)!.frame.equals(randomFrame(100, 2))).toBe(true);
    expect(b.sleeve.peers[0]!.rx!.keyId).toBe(2000);
    // an old-session packet with a fresh counter is refused while the peer is alive
    const replay = Buffer.from(old.data);
    replay.writeUInt32BE(999_999, 20);
    const count = b.received.length;
    net.inject({ address: '198.18.0.1', port: 6784 }, { address: '198.18.0.2', port: 6784 }, replay);
    await run(net, clock, 50);
    expect(b.received.length).toBe(count);
    expect(b.sleeve.drops.staleSession + b.sleeve.drops.auth + b.sleeve.drops.replay).toBeGreaterThan(0);
  });

  it('survives garbage: random and truncated datagrams are counted, never thrown', async () => {
    const { net, clock, a, b } = await pair();
    let seed = 1;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) / 2 ** 24;
    for (let i = 0; i < 2000; i++) {
      const len = Math.floor(rnd() * 1500);
      const g = Buffer.alloc(len);
      for (let k = 0; k < len; k++) g[k] = Math.floor(rnd() * 256);
      if (len > 12 && rnd() < 0.5) {
        g[2] = 1;
        g[3] = 1;
        g.writeUInt32BE(b.sleeve.selfId, 4);
        g[0] = rnd() < 0.5 ? 1 : 2;
      }
      net.inject({ address: '198.18.0.9', port: 1 }, { address: '198.18.0.2', port: 6784 }, g);
    }
    await run(net, clock, 200);
    // Every datagram is accounted for: dropped with a reason, or stored in a reassembly slot
    // (whose slot is later dropped by timeout or eviction). Nothing else happens to garbage.
    const sum = (o: object) => Object.values(o).reduce((x: number, y: number) => x + y, 0);
    const r = b.sleeve.reassemblyDrops();
    const perDatagram = sum(b.sleeve.drops) + r.fragBad + r.fragDuplicate + r.fragMismatch + b.sleeve.reassemblyStatus().stored;
    expect(perDatagram).toBeGreaterThanOrEqual(2000);
    expect(b.received).toEqual([]);
    expect(b.sleeve.peers.map((p) => p.name)).toEqual(['alpha']);
    sendFrames(a, 'beta', [{ frame: randomFrame(80, 3) }]);
    await run(net, clock, 50);
    expect(b.received.length).toBe(1);
  });
});

describe('sleeve AEAD engines', () => {
  it('a router sealing with OpenSSL and one with libsodium interoperate (same wire format)', async () => {
    const net = new FakeNetwork();
    const clock = new FakeClock();
    const a = makeNode(net, clock, { name: 'alpha', address: '198.18.0.1', peers: ['198.18.0.2'], aead: 'openssl' });
    const b = makeNode(net, clock, { name: 'beta', address: '198.18.0.2', peers: ['198.18.0.1'], aead: 'libsodium' });
    a.sleeve.start();
    b.sleeve.start();
    await run(net, clock, 1500);
    sendFrames(a, 'beta', [{ frame: randomFrame(40_000, 1) }, { frame: randomFrame(70, 2) }]);
    sendFrames(b, 'alpha', [{ frame: randomFrame(30_000, 3) }]);
    await run(net, clock, 100);
    expect(b.received.map((r) => r.frame.length)).toEqual([40_000, 70]);
    expect(b.received[0]!.frame.equals(randomFrame(40_000, 1))).toBe(true);
    expect(a.received[0]!.frame.equals(randomFrame(30_000, 3))).toBe(true);
  });
});
