/**
 * Attacks on the IPAM ring by a member (it holds the cluster secret and a key of its own), one
 * test each, with the attacker's own messages injected into an honest peer's gossip channel. Each
 * asserts that the victim keeps working: it keeps its space (the forged record does not stick), it
 * keeps allocating, and no honest peer hands out its addresses.
 */
import { describe, expect, it } from 'vitest';
import { IpamSim, simWriter, type IpamSimOptions, type SimNode } from '../../sim/ipam-sim.js';
import { Ring } from '../../src/ipam/ring.js';
import { decodeRing, pack } from '../../src/ipam/ring-codec.js';
import { MAX_VERSION, ADOPT_LABEL, adoptBody, signBody } from '../../src/ipam/ring-signing.js';
import { encodeAsk, encodeGossip, waitingOf } from '../../src/ipam/wire.js';
import { FakeClock } from '../fakes/fake-clock.js';
import { Attacker, owns } from './ipam-attack.js';

function sim(o: Partial<IpamSimOptions> = {}): IpamSim {
  return new IpamSim({ seed: 7, clock: new FakeClock(), ranges: ['10.9.0.0/24', 'fd00:9::/64'], seeds: 2, quarantineMs: 10_000, askTimeoutMs: 3000, ...o });
}

/** Four honest peers in a line (a, b seeds; c; v, the victim), v holding an address. */
async function cluster(o: Partial<IpamSimOptions> = {}): Promise<{ s: IpamSim; a: SimNode; b: SimNode; c: SimNode; v: SimNode; held: string }> {
  const s = sim(o);
  for (let i = 0; i < 4; i++) await s.join(s.nodes.length > 0 ? [s.nodes[s.nodes.length - 1]!] : []);
  await s.settle();
  const [a, b, c, v] = s.nodes as [SimNode, SimNode, SimNode, SimNode];
  const held = (await s.until(v.ipam.allocate({ containerId: 'victim-pod', ifName: 'eth0' }))).addresses[0]!.address;
  await s.settle();
  return { s, a, b, c, v, held };
}

/** The winning entry at `token` of ring si in `node`'s view. */
function winner(node: SimNode, token: bigint, si = 0) {
  const p = decodeRing(node.ipam.ringBytes(si)!);
  return p.entries.find((e) => e.token === token)!;
}

/** Allocations on `node` until it has `n` more (each may wait for a donation). */
async function allocateMany(s: IpamSim, node: SimNode, n: number, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push((await s.until(node.ipam.allocate({ containerId: `${prefix}-${i}`, ifName: 'eth0' }))).addresses[0]!.address);
  return out;
}

describe('IPAM: a member forging ring records', () => {
  it('an entry taking the victim\u2019s range does not stick: the victim writes its own back, keeps allocating, nobody else hands out its addresses', async () => {
    const { s, a, b, c, v, held } = await cluster();
    const m = new Attacker();
    const e = m.largest(c, v.name);
    const forged = m.entries(m.view(c), [{ token: e.token, owner: m.name, version: e.version + 1, end: e.end }]);
    expect(m.inject(s, c, forged)).toBeUndefined();
    await s.settle();
    for (const n of [a, b, c, v]) expect(winner(n, e.token).owner).toBe(v.name);
    expect(winner(v, e.token).writer).toBe(v.name);
    expect(v.ipam.counters.defended).toBeGreaterThan(0);
    expect(owns(v, e.token, e.end)).toBe(true);
    for (const n of [a, b, c]) expect(owns(n, e.token, e.end)).toBe(false);
    expect(v.ipam.list().flatMap((x) => x.addresses)).toContain(held);
    const more = await allocateMany(s, v, 3, 'after');
    expect(more).not.toContain(held);
    s.checkSettled();
    expect(s.problems).toEqual([]);
  });

  it('a grant of the victim\u2019s range to an honest third peer is not used by it', async () => {
    const { s, a, c, v } = await cluster();
    const m = new Attacker();
    const e = m.largest(c, v.name);
    const view = m.view(c);
    const grant = Ring.fromParts(view.genesis, [view.sign(m.w, { token: e.token, owner: c.name, version: e.version + 1, end: e.end })], [], [], view.space).encode();
    expect(m.gave(c, view.space.cidr, grant)).toBeUndefined();
    expect(m.inject(s, a, encodeGossip([grant], []))).toBeUndefined();
    await s.settle();
    expect(owns(c, e.token, e.end)).toBe(false);
    expect(c.ipam.counters.unusableGrants).toBeGreaterThan(0);
    // The third peer allocates, and none of what it hands out lies in the victim's range.
    const got = await allocateMany(s, c, 5, 'third');
    const sp = view.space;
    for (const addr of got) {
      const off = BigInt(addr.split('.').reduce((x, o) => x * 256 + Number(o), 0)) - sp.base;
      expect(off >= e.token && off < e.end).toBe(false);
    }
    expect(owns(v, e.token, e.end)).toBe(true);
    s.checkSettled();
    expect(s.problems).toEqual([]);
  });

  it('a tombstone of a live peer is cancelled by its revival: it keeps allocating, nobody reclaims its space; one naming another writer is refused', async () => {
    const { s, a, b, c, v, held } = await cluster();
    const m = new Attacker();
    const e = m.largest(c, v.name);
    expect(m.inject(s, c, m.tombstone(m.view(c), v.name))).toBeUndefined();
    // Signed by the attacker in an honest peer's name: refused, record by record.
    const impostor = { name: a.name, publicKey: simWriter(a.index).publicKey, sign: m.w.sign };
    expect(m.inject(s, b, encodeGossip([m.view(b).forget(c.name, impostor)!.encode()], []))).toBeUndefined();
    expect(b.ipam.counters.refusedSignature).toBeGreaterThan(0);
    for (let i = 0; i < 400; i++) await s.step(); // past reclaimAfterMs
    await s.settle();
    for (const n of [a, b, c, v]) {
      const life = m.view(n).lifeOf(v.name);
      expect(life?.epoch).toBe(2); // revived by itself
      expect(m.view(n).isTombstoned(c.name)).toBe(false);
    }
    expect(v.ipam.counters.revived).toBeGreaterThan(0);
    expect(v.ipam.ready()).toEqual({ ok: true });
    for (const n of [a, b, c]) expect(owns(n, e.token, e.end)).toBe(false);
    expect(owns(v, e.token, e.end)).toBe(true);
    expect(v.ipam.list().flatMap((x) => x.addresses)).toContain(held);
    await allocateMany(s, v, 2, 'after');
    s.checkSettled();
    expect(s.problems).toEqual([]);
  });

  it('a tombstone with the forger\u2019s reclaim of a reachable peer: peers that reach it do not confirm the reclaim and take no grant of that space', async () => {
    const { s, a, b, c, v, held } = await cluster();
    const m = new Attacker();
    const e = m.largest(c, v.name);
    const view = m.view(c);
    // The tombstone and the reclaim arrive together: the victim cannot answer in between.
    const tomb = view.forget(v.name, m.w)!;
    const taken = view.reclaim(m.w)!;
    const both = Ring.fromParts(view.genesis, taken.delta.entryList(), tomb.lifeRecords(), [], view.space);
    const grant = view.assign(e.token, e.end, c.name, m.w);
    expect(m.inject(s, c, encodeGossip([both.encode()], []))).toBeUndefined();
    expect(m.gave(c, view.space.cidr, grant.encode())).toBeUndefined();
    await s.settle();
    for (const n of [a, b, c]) {
      expect(n.ipam.unconfirmed(0)).toContain(e.token);
      expect(owns(n, e.token, e.end)).toBe(false);
    }
    expect(c.ipam.counters.unusableGrants).toBeGreaterThan(0);
    // What the forger can still do: fence the victim (as any heir that takes a peer's space).
    // Its pod keeps its address, and no honest peer hands that address out.
    expect(v.ipam.status().fenced).toBe(true);
    expect(v.ipam.list().flatMap((x) => x.addresses)).toContain(held);
    s.checkOwnership(true);
    expect(s.problems).toEqual([]);
  });

  it('an adoption in a seed\u2019s name is refused: the ring stays unconfirmed until the seed itself adopts it', async () => {
    const s = sim({ seeds: 2 });
    const a = await s.join([]); // the second seed never starts
    await s.settle();
    const m = new Attacker();
    const seed2 = simWriter(1);
    const views = [m.view(a, 0), m.view(a, 1)];
    // The seed's (public) key with a signature the attacker made, in both rings: refused by itself.
    const forged = views.map((view) => pack([2, view.genesis.clusterId, view.genesis.space, view.genesis.seeds, [[seed2.publicKey, signBody(m.w, ADOPT_LABEL, adoptBody(view.id, seed2.name))]], [], []]));
    expect(m.inject(s, a, encodeGossip(forged, []))).toBeUndefined();
    expect(a.ipam.counters.refusedSignature).toBe(2);
    // The attacker's own key is no seed's: the message is malformed, nothing changes.
    const own = views.map((view) => pack([2, view.genesis.clusterId, view.genesis.space, view.genesis.seeds, [[m.w.publicKey, signBody(m.w, ADOPT_LABEL, adoptBody(view.id, m.name))]], [], []]));
    expect(m.inject(s, a, encodeGossip(own, []))).toMatchObject({ code: 'ERR_GOSSIP_DECODE' });
    await s.settle();
    expect(a.ipam.ready()).toEqual({ ok: false, reason: `waiting for seed(s) ${seed2.name} to adopt the 10.9.0.0/24 ring` });
    await s.join([a]);
    await s.settle();
    expect(a.ipam.ready()).toEqual({ ok: true });
  });

  it('a waiting announcement in another peer\u2019s name (to spoil its bootstrap) is refused; the peers still agree', async () => {
    const s = sim({ init: { initPeers: 3 } });
    const a = await s.join([]);
    const b = await s.join([a]);
    await s.settle();
    const m = new Attacker();
    // "c waits for 5": would make a, b and c refuse to decide. Signed by the attacker, not by c.
    const c3 = simWriter(2);
    const forged = { ...waitingOf({ name: c3.name, publicKey: c3.publicKey, sign: m.w.sign }, 'sim', 5) };
    expect(m.inject(s, a, encodeGossip([], [forged]))).toBeUndefined();
    expect(a.ipam.counters.refusedSignature).toBe(1);
    expect(a.ipam.status().bootstrap).toMatchObject({ waiting: expect.not.arrayContaining([{ peer: c3.name, initPeers: 5 }]) });
    await s.join([b]);
    await s.settle();
    for (const n of s.nodes) expect(n.ipam.ready()).toEqual({ ok: true });
  });

  it('a version past the bound is refused by itself (the rest of the message merges, nothing throws); one at the bound cannot be written back, and nobody uses the space', async () => {
    const { s, a, b, c, v, held } = await cluster();
    const m = new Attacker();
    const ev = m.largest(c, v.name);
    const ea = m.largest(c, a.name);
    const view = m.view(c);
    const over = { ...view.sign(m.w, { token: ea.token, owner: m.name, version: MAX_VERSION, end: ea.end }), version: MAX_VERSION + 1 };
    const atBound = view.sign(m.w, { token: ev.token, owner: m.name, version: MAX_VERSION, end: ev.end });
    const msg = encodeGossip([Ring.fromParts(view.genesis, [over, atBound].sort((x, y) => (x.token < y.token ? -1 : 1)), [], [], view.space).encode()], []);
    expect(m.inject(s, c, msg)).toBeUndefined();
    expect(c.ipam.counters.refusedVersion).toBe(1);
    await s.settle();
    for (const n of [a, b, c, v]) {
      expect(winner(n, ea.token).owner).toBe(a.name); // refused everywhere
      expect(winner(n, ev.token).version).toBe(MAX_VERSION); // merged: it is validly signed...
      expect(n.ipam.unconfirmed(0)).toContain(ev.token); // ...but nobody confirms it
      expect(owns(n, ev.token, ev.end)).toBe(false);
    }
    expect(v.ipam.counters.defenceImpossible).toBeGreaterThan(0);
    // The victim's pod keeps its address (listed as a conflict: the ring no longer gives it the
    // space), nobody else can hand it out, and the victim allocates elsewhere.
    expect(v.ipam.status().spaces[0]!.conflicts).toContain(held);
    const more = await allocateMany(s, v, 2, 'after');
    expect(more).not.toContain(held);
    s.checkOwnership(true);
    expect(s.problems).toEqual([]);
  });

  it('an ask in the name of a peer that is not in the mesh gets nothing: no space goes to a phantom', async () => {
    const { s, a, b, c } = await cluster();
    const phantom = simWriter(901).name;
    const refused = a.ipam.counters.asksRefused;
    for (let i = 0; i < 5; i++) {
      a.channel.receiveUnicast(phantom, encodeAsk('ask', '10.9.0.0/24'));
      await s.step();
    }
    await s.settle();
    for (const n of [a, b, c]) expect(decodeRing(n.ipam.ringBytes(0)!).entries.some((e) => e.owner === phantom)).toBe(false);
    expect(a.ipam.counters.asksRefused - refused).toBe(5);
  });

  it('a member that gives the same space to two peers does not set them fighting: the one that loses lets it go (counted)', async () => {
    const { s, a, b, c, v } = await cluster();
    // The donor is a real member here (it owns the space it gives twice).
    const m = { w: simWriter(b.index) };
    const att = new Attacker();
    const e = att.largest(b, b.name);
    const view = att.view(b);
    const g1 = Ring.fromParts(view.genesis, [view.sign(m.w, { token: e.token, owner: c.name, version: e.version + 1, end: e.end })], [], [], view.space).encode();
    const g2 = Ring.fromParts(view.genesis, [view.sign(m.w, { token: e.token, owner: v.name, version: e.version + 1, end: e.end })], [], [], view.space).encode();
    c.channel.receiveUnicast(b.name, pack([1, 'gave', view.space.cidr, g1]));
    v.channel.receiveUnicast(b.name, pack([1, 'gave', view.space.cidr, g2]));
    await s.settle();
    const w = winner(a, e.token);
    expect(w.version).toBe(e.version + 1); // no war of versions
    const [kept, lost] = w.owner === c.name ? [c, v] : [v, c];
    expect(owns(kept, e.token, e.end)).toBe(true);
    expect(owns(lost, e.token, e.end)).toBe(false);
    expect(lost.ipam.counters.doubleSpends).toBe(1);
    s.checkOwnership(true);
    expect(s.problems).toEqual([]);
  });
});
