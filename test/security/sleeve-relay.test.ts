/**
 * Attacks through sleeve relays by someone on the underlay without the secret: a relay forwards
 * only what comes from a mesh member's known endpoint and was sent for relaying, caps hops, and a
 * relayed datagram can never pass for a direct one (path proof, roaming).
 *
 * Topology: alpha (.1) and gamma (.3) both know each other's direct endpoint, but the underlay
 * between them is cut, so they talk through relay (.2). The attacker is at .66.
 */
import { describe, expect, it } from 'vitest';
import { TYPE_DATA } from '../../src/router/sleeve/wire.js';
import type { Datagram } from '../fakes/fake-udp.js';
import { FakeClock, FakeNetwork, connect, makeNode, randomFrame, run, sendFrames } from '../router/sleeve-harness.js';

const ATTACKER = { address: '198.18.0.66', port: 6784 };
const A = { address: '198.18.0.1', port: 6784 };
const R = { address: '198.18.0.2', port: 6784 };
const C = { address: '198.18.0.3', port: 6784 };

async function line() {
  const net = new FakeNetwork();
  const clock = new FakeClock();
  const a = makeNode(net, clock, { name: 'alpha', address: A.address });
  const r = makeNode(net, clock, { name: 'relay', address: R.address });
  const c = makeNode(net, clock, { name: 'gamma', address: C.address });
  connect(a, r);
  connect(r, c);
  connect(a, c); // end-to-end keys and each other's direct endpoint...
  const cut = (d: Datagram) => (d.fromAddress === A.address && d.toAddress === C.address) || (d.fromAddress === C.address && d.toAddress === A.address);
  net.filter = (d) => !cut(d); // ...but no direct path between them
  a.sleeve.setVia(c.id, r.id);
  c.sleeve.setVia(a.id, r.id);
  for (const n of [a, r, c]) n.sleeve.start();
  net.capture = true;
  await run(net, clock, 2000);
  const pa = c.sleeve.peers.find((p) => p.id === a.id)!;
  const pc = a.sleeve.peers.find((p) => p.id === c.id)!;
  return { net, clock, a, r, c, pa, pc, cut };
}

describe('sleeve relays under attack', () => {
  it('a relay forwards nothing that comes from outside the mesh (forged or captured datagrams from the attacker)', async () => {
    const { net, clock, a, r, c } = await line();
    const captured = net.captured.filter((d) => d.fromAddress === A.address && d.toAddress === R.address && d.data.readUInt32BE(4) === c.id);
    expect(captured.length).toBeGreaterThan(0);
    const relayed = r.sleeve.relayed.datagrams;
    const cDrops = { ...c.sleeve.drops };
    for (let i = 0; i < 100; i++) {
      const d = Buffer.from(captured[i % captured.length]!.data);
      if (i % 2 === 1) d.writeUInt32BE(0x10000 + i, 20); // a fresh counter: a forgery for gamma
      net.inject(ATTACKER, R, d);
    }
    await run(net, clock, 50);
    expect(r.sleeve.relayed.datagrams).toBe(relayed);
    expect(r.sleeve.drops.relaySource).toBe(100);
    expect(c.sleeve.drops.auth).toBe(cDrops.auth);
    expect(c.sleeve.drops.replay).toBe(cDrops.replay);
    sendFrames(a, 'gamma', [{ frame: randomFrame(200, 1) }]);
    await run(net, clock, 50);
    expect(c.received.map((x) => x.frame)).toEqual([randomFrame(200, 1)]);
  });

  it('a relay refuses a hop count above the cap, even from a member\'s address', async () => {
    const { net, clock, a, r, c } = await line();
    const sent = net.captured.filter((d) => d.fromAddress === A.address && d.toAddress === R.address && d.data.readUInt32BE(4) === c.id).at(-1)!;
    const relayed = r.sleeve.relayed.datagrams;
    for (const hops of [9, 64, 255]) {
      const d = Buffer.from(sent.data);
      d[1] = hops;
      net.inject(A, R, d); // source spoofed as alpha's
    }
    await run(net, clock, 50);
    expect(r.sleeve.relayed.datagrams).toBe(relayed);
    expect(r.sleeve.drops.badHops).toBe(3);
    sendFrames(a, 'gamma', [{ frame: randomFrame(200, 2) }]);
    await run(net, clock, 50);
    expect(c.received.length).toBe(1);
  });

  it('a datagram sent direct is not relayed, even when its source is a member\'s', async () => {
    const { net, clock, a, r, c } = await line();
    // alpha's direct heartbeats to gamma never arrived (the cut); the attacker bounces one through the relay.
    const direct = net.captured.filter((d) => d.fromAddress === A.address && d.toAddress === C.address && d.data[0] === TYPE_DATA).at(-1)!;
    expect(direct).toBeDefined();
    const relayed = r.sleeve.relayed.datagrams;
    net.inject(A, R, Buffer.from(direct.data));
    await run(net, clock, 50);
    expect(r.sleeve.relayed.datagrams).toBe(relayed);
    expect(r.sleeve.drops.relayUnflagged).toBe(1);
    expect(c.sleeve.peers.find((p) => p.id === a.id)!.pathUp).toBe(false);
  });

  it('a relayed datagram with its hop count reset and a new source neither proves a direct path nor moves the peer', async () => {
    const { net, clock, a, pa, cut } = await line();
    expect(pa.pathUp).toBe(false);
    expect(pa.relayedRx).toBeGreaterThan(0);
    // The attacker holds back what the relay sends to gamma (so each is the newest gamma will
    // have seen), resets the hop count and sends it from its own address and from alpha's.
    const held: Datagram[] = [];
    net.filter = (d) => {
      if (cut(d)) return false;
      if (d.fromAddress === R.address && d.toAddress === C.address && d.data.readUInt32BE(8) === a.id) {
        held.push(d);
        return false;
      }
      return true;
    };
    for (let i = 0; i < 4; i++) {
      sendFrames(a, 'gamma', [{ frame: randomFrame(100, i) }]);
      await run(net, clock, 400);
    }
    expect(held.length).toBeGreaterThan(4);
    held.forEach((d, i) => {
      const x = Buffer.from(d.data);
      x[1] = 8;
      net.inject(i % 2 === 0 ? ATTACKER : A, C, x);
    });
    await run(net, clock, 50);
    expect(pa.pathUp).toBe(false);
    expect(pa.directAddress).toBe(A.address);
    expect(pa.address).toBe(R.address); // gamma still sends to alpha through the relay
  });
});
