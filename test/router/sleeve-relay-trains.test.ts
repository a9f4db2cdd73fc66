/**
 * Relay trains: a relay forwards a received GRO train whose segments go on to one peer as one
 * GSO send from its receive arena (hop byte decremented in each segment), and falls back to
 * smaller sends where a segment is dropped, is for the relay itself, or goes to another peer.
 *
 * Line: alpha (.1) and gamma (.3), delta (.4) reach each other only through relay (.2), whose
 * socket coalesces like UDP_GRO.
 */
import { describe, expect, it } from 'vitest';
import { TX_DESC_STRIDE, TX_IOV_STRIDE } from '../../src/platform/udp.js';
import { BUF_RX } from '../../src/router/sleeve/sleeve-tx.js';
import { DEFAULT_HOPS, TYPE_FRAG } from '../../src/router/sleeve/wire.js';
import type { Datagram } from '../fakes/fake-udp.js';
import { FakeClock, FakeNetwork, connect, makeNode, randomFrame, run, sendFrames, type Node } from './sleeve-harness.js';

const A = { address: '198.18.0.1', port: 6784 };
const R = { address: '198.18.0.2', port: 6784 };

interface Send {
  buf: number;
  len: number;
  gso: number;
}

async function line(opts: { relayMtu?: number } = {}) {
  const net = new FakeNetwork();
  const clock = new FakeClock();
  const a = makeNode(net, clock, { name: 'alpha', address: A.address });
  const r = makeNode(net, clock, { name: 'relay', address: R.address, gro: true, mtu: opts.relayMtu });
  const c = makeNode(net, clock, { name: 'gamma', address: '198.18.0.3' });
  const d = makeNode(net, clock, { name: 'delta', address: '198.18.0.4' });
  for (const n of [a, c, d]) connect(n, r);
  for (const [x, y] of [[a, c], [a, d], [c, d]] as const) connect(x, y, { direct: false });
  for (const [x, y] of [[a, c], [a, d], [c, a], [d, a], [c, d], [d, c]] as const) x.sleeve.setVia(y.id, r.id);
  // What the relay hands to its socket: one entry per message (a GSO send is one entry).
  const sends: Send[] = [];
  const send = r.udp.send.bind(r.udp);
  r.udp.send = (count: number) => {
    for (let i = 0; i < count; i++) {
      const desc = i * TX_DESC_STRIDE;
      const iov = r.udp.txDesc[desc]! * TX_IOV_STRIDE;
      sends.push({ buf: r.udp.txIov[iov]!, len: r.udp.txIov[iov + 2]!, gso: r.udp.txDesc[desc + 2]! });
    }
    return send(count);
  };
  for (const n of [a, r, c, d]) n.sleeve.start();
  await run(net, clock, 1500);
  return { net, clock, a, r, c, d, sends };
}

/** The full-size fragments alpha sends towards `to` for one 9000-byte frame (captured, not delivered). */
async function fragmentsFor(net: FakeNetwork, clock: FakeClock, a: Node, to: Node, seed: number): Promise<Buffer[]> {
  net.capture = true;
  net.captured.length = 0;
  const cut = (x: Datagram) => !(x.fromAddress === A.address && x.data.readUInt32BE(4) === to.id);
  net.filter = cut;
  sendFrames(a, to.name, [{ frame: randomFrame(9000, seed) }]);
  await run(net, clock, 10, 10);
  net.filter = undefined;
  net.capture = false;
  const frags = net.captured.filter((x) => x.fromAddress === A.address && x.data[0] === TYPE_FRAG && x.data.readUInt32BE(4) === to.id).map((x) => x.data);
  const size = frags[0]!.length;
  return frags.filter((f) => f.length === size);
}

/**
 * Injects `train` at the relay as alpha sent it, runs 10 ms, and returns the fragments the relay
 * forwarded for alpha (its socket's sends are recorded afresh in `sends`).
 */
async function relayTrain(t: Awaited<ReturnType<typeof line>>, train: readonly Buffer[]): Promise<Datagram[]> {
  t.sends.length = 0;
  t.net.capture = true;
  t.net.captured.length = 0;
  for (const d of train) t.net.inject(A, R, d);
  await run(t.net, t.clock, 10, 10);
  return t.net.captured.filter((x) => x.fromAddress === R.address && x.data.readUInt32BE(8) === t.a.id && x.data[0] === TYPE_FRAG);
}

describe('relay trains', () => {
  it('forwards a train for one peer as one GSO send from the receive arena, each hop byte decremented', async () => {
    const { net, clock, a, r, c, sends } = await line();
    net.capture = true;
    sends.length = 0;
    sendFrames(a, 'gamma', [{ frame: randomFrame(9000, 7) }]);
    await run(net, clock, 50, 10);
    expect(c.received.map((x) => x.frame)).toEqual([randomFrame(9000, 7)]);
    const inn = net.captured.filter((x) => x.fromAddress === A.address && x.toAddress === R.address && x.data.readUInt32BE(4) === c.id);
    const out = net.captured.filter((x) => x.fromAddress === R.address && x.data.readUInt32BE(4) === c.id && x.data.readUInt32BE(8) === a.id);
    expect(inn.length).toBeGreaterThan(2);
    expect(out.length).toBe(inn.length);
    expect(out.every((x) => x.data[1] === DEFAULT_HOPS - 1)).toBe(true);
    expect(out.map((x) => x.data.subarray(2))).toEqual(inn.map((x) => x.data.subarray(2)));
    const trains = sends.filter((s) => s.gso > 0);
    expect(trains).toHaveLength(1);
    expect(trains[0]!.buf).toBe(BUF_RX);
    expect(trains[0]!.gso).toBe(inn[0]!.data.length);
    expect(trains[0]!.len).toBe(inn.reduce((n, x) => n + x.data.length, 0));
    expect(r.sleeve.relayed.trains).toBe(1);
    expect(r.sleeve.relayed.datagrams).toBeGreaterThanOrEqual(inn.length);
  });

  it('forwards segments larger than its own datagrams one by one (a GSO send beyond the path MTU would fail whole)', async () => {
    const t = await line({ relayMtu: 1280 });
    const { net, clock, a, r, c, sends } = t;
    const train = await fragmentsFor(net, clock, a, c, 5);
    expect(train[0]!.length).toBeGreaterThan(r.sleeve.maxDatagram);
    const before = { ...r.sleeve.relayed };
    const out = await relayTrain(t, train);
    expect(out).toHaveLength(train.length);
    expect(sends.filter((s) => s.gso > 0)).toEqual([]);
    expect(r.sleeve.relayed.trains).toBe(before.trains);
  });

  // A train of six equal segments injected from alpha's endpoint; `edit` spoils some of them.
  const cases: {
    name: string;
    edit: (train: Buffer[], ids: { relay: number; delta: number }) => void;
    forwarded: number;
    gsoSends: number[];
    drop?: 'hopLimit' | 'noRoute' | 'relayUnflagged';
  }[] = [
    { name: 'all for gamma', edit: () => undefined, forwarded: 6, gsoSends: [6] },
    { name: 'the third out of hops', edit: (t) => { t[2]![1] = 1; }, forwarded: 5, gsoSends: [2, 3], drop: 'hopLimit' },
    { name: 'the fourth for an unknown peer', edit: (t) => { t[3]!.writeUInt32BE(0x0badf00d, 4); }, forwarded: 5, gsoSends: [3, 2], drop: 'noRoute' },
    { name: 'the first not sent for relaying', edit: (t) => { t[0]![3] = t[0]![3]! & ~2; }, forwarded: 5, gsoSends: [5], drop: 'relayUnflagged' },
    { name: 'the fifth for the relay itself', edit: (t, ids) => { t[4]!.writeUInt32BE(ids.relay, 4); }, forwarded: 5, gsoSends: [4] },
    { name: 'the last three for delta', edit: (t, ids) => { for (const k of [3, 4, 5]) t[k]!.writeUInt32BE(ids.delta, 4); }, forwarded: 6, gsoSends: [3, 3] },
    { name: 'alternating gamma and delta', edit: (t, ids) => { for (const k of [1, 3, 5]) t[k]!.writeUInt32BE(ids.delta, 4); }, forwarded: 6, gsoSends: [] },
  ];

  it.each(cases)('a train with $name: forwards $forwarded, GSO sends of $gsoSends', async ({ edit, forwarded, gsoSends, drop }) => {
    const t = await line();
    const { net, clock, a, r, c, d, sends } = t;
    const frags = await fragmentsFor(net, clock, a, c, 3);
    expect(frags.length).toBeGreaterThanOrEqual(6);
    const train = frags.slice(0, 6).map((f) => Buffer.from(f));
    edit(train, { relay: r.id, delta: d.id });
    const drops = { ...r.sleeve.drops };
    const before = { ...r.sleeve.relayed };
    const out = await relayTrain(t, train);
    expect(out).toHaveLength(forwarded);
    expect(out.every((x) => x.data[1] === DEFAULT_HOPS - 1)).toBe(true);
    // Each went to the peer its header names, bytes unchanged but for the hop count.
    for (const x of out) {
      const to = x.data.readUInt32BE(4) === c.id ? c : d;
      expect(x.toAddress).toBe(to.address);
      const sent = train.find((f) => f.subarray(2).equals(x.data.subarray(2)));
      expect(sent).toBeDefined();
    }
    expect(sends.filter((s) => s.gso > 0).map((s) => s.len / s.gso)).toEqual(gsoSends);
    expect(sends.every((s) => s.buf === BUF_RX || s.len < 200)).toBe(true);
    expect(r.sleeve.relayed.datagrams - before.datagrams).toBe(forwarded);
    expect(r.sleeve.relayed.trains - before.trains).toBe(gsoSends.length);
    if (drop !== undefined) expect(r.sleeve.drops[drop]).toBe(drops[drop] + 1);
  });
});
