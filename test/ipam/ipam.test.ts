/**
 * Ipam on small simulated clusters (sim/ipam-sim.ts engine, FakeClock): bootstrap,
 * donation, idempotency, exhaustion, restart, reclaim and fencing, ring conflicts, bad input.
 */
import { describe, expect, it } from 'vitest';
import { IpamSim, simPeerName, simWriter, type IpamSimOptions, type SimNode } from '../../sim/ipam-sim.js';
import type { GossipTransport, RouteTable } from '../../src/mesh/contracts.js';
import { GossipDecodeError } from '../../src/mesh/errors.js';
import { Ipam, IpamBadRequestError, IpamExhaustedError, IpamNotReadyError, MemoryIpamStore, encodeGossip, type IpamInit } from '../../src/ipam/index.js';
import { waitingOf } from '../../src/ipam/wire.js';
import { FakeClock } from '../fakes/fake-clock.js';

function sim(o: Partial<IpamSimOptions> = {}): IpamSim {
  return new IpamSim({ seed: 1, clock: new FakeClock(), ranges: ['10.9.0.0/24', 'fd00:9::/64'], seeds: 2, quarantineMs: 10_000, askTimeoutMs: 3000, ...o });
}

async function cluster(n: number, o: Partial<IpamSimOptions> = {}): Promise<IpamSim> {
  const s = sim(o);
  for (let i = 0; i < n; i++) await s.join(s.nodes.length > 0 ? [s.nodes[s.nodes.length - 1]!] : []);
  await s.settle();
  return s;
}

describe('Ipam bootstrap', () => {
  it('seeds: a seed waits until every seed adopted the genesis ring; a non-seed gets space donated', async () => {
    const s = sim({ seeds: 2 });
    const a = await s.join([]);
    await s.settle();
    expect(a.ipam.ready()).toEqual({ ok: false, reason: `waiting for seed(s) ${simPeerName(1)} to adopt the 10.9.0.0/24 ring` });
    await expect(a.ipam.allocate({ containerId: 'c1', ifName: 'eth0' })).rejects.toThrow(IpamNotReadyError);
    const b = await s.join([a]);
    const c = await s.join([b]);
    await s.settle();
    for (const n of [a, b, c]) expect(n.ipam.ready()).toEqual({ ok: true });
    const st = c.ipam.status();
    const seeds = [a.name, b.name].sort();
    expect(st.spaces[0]!.genesis).toEqual({ seeds, adopted: seeds, waitingFor: [] });
    const r = await s.until(c.ipam.allocate({ containerId: 'c1', ifName: 'eth0' }));
    expect(r.addresses.map((x) => [x.family, x.prefixLength])).toEqual([[4, 24], [6, 64]]);
    expect(c.ipam.status().spaces[0]!.owners.find((o) => o.peer === c.name)).toBeDefined();
    expect(s.problems).toEqual([]);
  });

  it('initPeers: exactly N waiting peers agree on one genesis', async () => {
    const s = sim({ init: { initPeers: 3 } });
    const a = await s.join([]);
    const b = await s.join([a]);
    for (let i = 0; i < 50; i++) await s.step();
    expect(a.ipam.ready().reason).toContain('waiting for 3 initial peers');
    const c = await s.join([b]);
    await s.settle();
    const seeds = [a.name, b.name, c.name].sort();
    for (const n of [a, b, c]) {
      expect(n.ipam.ready()).toEqual({ ok: true });
      expect(n.ipam.status().spaces[0]!.genesis?.seeds).toEqual(seeds);
    }
    // A later peer adopts the ring instead of deciding.
    const d = await s.join([c]);
    await s.settle();
    expect(d.ipam.ready()).toEqual({ ok: true });
    expect(s.problems).toEqual([]);
  });

  it.each([
    ['the first node first', 3, 0],
    ['the first node in the middle', 3, 1],
    ['the first node last', 3, 2],
    ['the first node last of 5', 5, 4],
  ])('join (the default): %s, every node ends in one ring seeded by the first node', async (_what, n, founder) => {
    // A router without --peer forms the ring alone (initPeers 1); the others only join: they
    // never form one of their own, whenever they start, and wait with a reason until a ring comes.
    const s = sim({ init: (i) => (i === founder ? { initPeers: 1 } : { join: true }) });
    const nodes: SimNode[] = [];
    for (let i = 0; i < n; i++) {
      nodes.push(await s.join(nodes.length > 0 ? [nodes[nodes.length - 1]!] : []));
      for (let k = 0; k < 30; k++) await s.step();
      if (i < founder) expect(nodes[i]!.ipam.ready().reason).toContain('joining: waiting for the ring from a member');
    }
    await s.settle();
    for (const x of nodes) {
      expect(x.ipam.ready()).toEqual({ ok: true });
      expect(x.ipam.status().spaces[0]!.genesis?.seeds).toEqual([nodes[founder]!.name]);
    }
    expect(nodes[0]!.ipam.status().bootstrap).toEqual(founder === 0 ? { mode: 'initPeers', initPeers: 1, waiting: expect.any(Array) } : { mode: 'join' });
    const r = await s.until(nodes[n - 1]!.ipam.allocate({ containerId: 'c1', ifName: 'eth0' }));
    expect(r.addresses.length).toBe(2);
    expect(s.problems).toEqual([]);
  });

  it('join: a router that only joins never forms a ring, however long it waits', async () => {
    const x = lone({ join: true });
    await x.start();
    x.onGossip(encodeGossip([], waiting(1, 2)));
    expect(x.ready()).toEqual({ ok: false, reason: expect.stringContaining('joining: waiting for the ring') });
    expect(x.status().spaces[0]!.genesis).toBeUndefined();
    expect(x.status().bootstrap).toEqual({ mode: 'join' });
  });

  function lone(init: IpamInit['init']): Ipam {
    const transport: GossipTransport = { gossipToNeighbours: () => undefined, unicast: () => false, broadcast: () => undefined };
    const routes: RouteTable = { nextHop: () => undefined, broadcastNext: () => [], reachable: () => [], distance: () => undefined, onChange: () => () => undefined };
    return new Ipam({ clock: new FakeClock(), transport, routes, store: new MemoryIpamStore(), writer: simWriter(0) }, { self: simPeerName(0), ranges: ['10.9.0.0/24'], init, clusterId: 't' });
  }
  const waiting = (n: number, count: number, from = 1) => Array.from({ length: count }, (_, i) => waitingOf(simWriter(from + i), 't', n)).sort((x, y) => (x.name < y.name ? -1 : 1));

  it('initPeers: more than N waiting peers, or another N, means no decision and a reason', async () => {
    const x = lone({ initPeers: 3 });
    await x.start();
    x.onGossip(encodeGossip([], waiting(3, 3)));
    expect(x.ready().reason).toContain('4 peers wait for a quorum of 3: more than expected');
    expect(x.status().spaces[0]!.genesis).toBeUndefined();
    const y = lone({ initPeers: 3 });
    await y.start();
    y.onGossip(encodeGossip([], [...waiting(3, 1), ...waiting(5, 1, 2)].sort((x, z) => (x.name < z.name ? -1 : 1))));
    expect(y.ready().reason).toContain('different initPeers values (5, here 3)');
    expect(y.status().spaces[0]!.genesis).toBeUndefined();
  });

  it('two separately bootstrapped groups are detected as a ring conflict and never merged', async () => {
    const s = sim({ init: (i) => ({ seeds: [simPeerName(i < 2 ? 0 : 2)] }) });
    const a = await s.join([]);
    await s.join([a]);
    const c = await s.join([]);
    await s.settle();
    const before = Buffer.from(a.ipam.ringBytes(0)!);
    s.link([[a, c]]);
    await s.settle(200);
    expect(Buffer.from(a.ipam.ringBytes(0)!)).toEqual(before);
    const st = a.ipam.status();
    expect(st.ringConflicts.count).toBeGreaterThan(0);
    expect(st.ringConflicts.last).toContain(`ours was seeded by [${a.name}], the other by [${c.name}]`);
    expect(c.ipam.status().ringConflicts.count).toBeGreaterThan(0);
  });
});

describe('Ipam allocation', () => {
  it('assign gives the addresses before they are persisted; allocate and durable wait for the write', async () => {
    const s = await cluster(2);
    const node = s.nodes[0]!;
    node.store.failWrites = true;
    const early = await s.until(node.ipam.assign({ containerId: 'c1', ifName: 'eth0' }));
    expect(early.addresses.length).toBeGreaterThan(0);
    expect(node.ipam.list().map((a) => a.containerId)).toContain('c1');
    await expect(early.durable).rejects.toThrow(/writes disabled/);
    await expect(node.ipam.allocate({ containerId: 'c2', ifName: 'eth0' })).rejects.toThrow(/writes disabled/);
    node.store.failWrites = false;
    const again = await s.until(node.ipam.assign({ containerId: 'c1', ifName: 'eth0' }));
    expect(again).toMatchObject({ addresses: early.addresses, existing: true });
    await again.durable; // the earlier changes are written with it
    await expect(node.ipam.allocate({ containerId: 'c2', ifName: 'eth0' })).resolves.toMatchObject({ existing: true });
  });

  it('is idempotent per (container, interface); releases by container; validates requests', async () => {
    const s = await cluster(2);
    const ip = s.nodes[0]!.ipam;
    const r1 = await s.until(ip.allocate({ containerId: 'c1', ifName: 'eth0' }));
    expect(await s.until(ip.allocate({ containerId: 'c1', ifName: 'eth0' }))).toEqual({ ...r1, existing: true });
    const r2 = await s.until(ip.allocate({ containerId: 'c1', ifName: 'net1' }));
    expect(r2.addresses[0]!.address).not.toBe(r1.addresses[0]!.address);
    expect(ip.list().map((a) => [a.containerId, a.ifName])).toEqual([['c1', 'eth0'], ['c1', 'net1']]);
    const rel = await ip.release('c1', 'net1');
    expect(rel.released).toEqual(r2.addresses.map((a) => a.address));
    expect((await ip.release('c1')).released).toEqual(r1.addresses.map((a) => a.address));
    expect((await ip.release('c1')).released).toEqual([]);
    expect(ip.status().spaces[0]!.own.quarantined).toBe('2');
    for (const [req, field] of [
      [{ containerId: '', ifName: 'eth0' }, 'containerId'],
      [{ containerId: 'a/b', ifName: 'eth0' }, 'containerId'],
      [{ containerId: 'x'.repeat(256), ifName: 'eth0' }, 'containerId'],
      [{ containerId: 'c', ifName: 'eth 0' }, 'ifName'],
      [{ containerId: 'c', ifName: 'a/b' }, 'ifName'],
      [{ containerId: 'c', ifName: 'x'.repeat(16) }, 'ifName'],
    ] as const) {
      const err = await ip.allocate(req).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(IpamBadRequestError);
      expect((err as IpamBadRequestError).field).toBe(field);
      expect((err as IpamBadRequestError).code).toBe('ERR_IPAM_BAD_REQUEST');
    }
    expect(() => ip.forget(s.nodes[0]!.name)).toThrow(IpamBadRequestError);
  });

  it('fails with IpamExhaustedError after askTimeoutMs when nobody has space', async () => {
    const s = await cluster(2, { ranges: ['10.9.0.0/29'] }); // 6 usable addresses
    const [a, b] = s.nodes as [ReturnType<typeof s.live>[0], ReturnType<typeof s.live>[0]];
    const got: string[] = [];
    for (let i = 0; i < 6; i++) got.push((await s.until((i % 2 ? a : b).ipam.allocate({ containerId: `c${i}`, ifName: 'eth0' }))).addresses[0]!.address);
    expect(new Set(got).size).toBe(6);
    const t0 = s.clock.now();
    const err = await s.until(a.ipam.allocate({ containerId: 'c6', ifName: 'eth0' })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IpamExhaustedError);
    expect((err as IpamExhaustedError).code).toBe('ERR_IPAM_EXHAUSTED');
    expect(s.clock.now() - t0).toBeGreaterThanOrEqual(3000);
    expect(s.problems).toEqual([]);
  });

  it('keeps every allocation over a restart and never hands an address in use out again', async () => {
    const s = await cluster(2);
    const a = s.nodes[1]!;
    const first = await s.until(a.ipam.allocate({ containerId: 'c1', ifName: 'eth0' }));
    await s.crash(a);
    await s.restart(a);
    await s.settle();
    expect(a.ipam.list().map((x) => x.addresses)).toEqual([first.addresses.map((x) => x.address)]);
    const again = await s.until(a.ipam.allocate({ containerId: 'c1', ifName: 'eth0' }));
    expect(again).toEqual({ ...first, existing: true });
    const other = await s.until(a.ipam.allocate({ containerId: 'c2', ifName: 'eth0' }));
    expect(other.addresses[0]!.address).not.toBe(first.addresses[0]!.address);
    expect(s.problems).toEqual([]);
  });

  it('refuses malformed gossip without changing state', async () => {
    const s = await cluster(2);
    const ip = s.nodes[0]!.ipam;
    const before = Buffer.from(ip.ringBytes(0)!);
    for (const bad of [Uint8Array.of(1, 2, 3), encodeGossip([Uint8Array.of(0x90)], []), Uint8Array.of(0x93, 0x01, 0xa3, 0x61, 0x73, 0x6b, 0x01)]) {
      expect(() => ip.onGossip(bad)).toThrow(GossipDecodeError);
      expect(() => ip.onUnicast(s.nodes[1]!.name, bad)).toThrow(GossipDecodeError);
    }
    expect(Buffer.from(ip.ringBytes(0)!)).toEqual(before);
  });
});

describe('Ipam reclaim', () => {
  it('passes a forgotten peer\u2019s space to the peer that forgot it once it stays unreachable, holds it, and fences the peer if it returns', async () => {
    const s = await cluster(3, { reclaimHoldMs: 5000, reclaimAfterMs: 1000 });
    const [a, b, c] = s.nodes as [ReturnType<typeof s.live>[0], ReturnType<typeof s.live>[0], ReturnType<typeof s.live>[0]];
    const cAddr = (await s.until(c.ipam.allocate({ containerId: 'z', ifName: 'eth0' }))).addresses[0]!.address;
    await s.settle();
    const cOwned = c.ipam.ownership()[0]!.owned;
    expect(cOwned.length).toBeGreaterThan(0);
    await s.crash(c);
    s.link([[a, b]]);
    a.ipam.forget(c.name);
    await s.settle();
    // Nothing is taken before the peer has been unreachable for reclaimAfterMs.
    expect([a, b].filter((n) => n.ipam.ownership()[0]!.held.length > 0)).toEqual([]);
    for (let i = 0; i < 150; i++) await s.step();
    await s.settle();
    const heirs = [a, b].filter((n) => n.ipam.ownership()[0]!.held.length > 0);
    expect(heirs).toEqual([a]);
    expect(a.ipam.status().spaces[0]!.owners.some((o) => o.peer === c.name)).toBe(false);
    s.clock.advance(5500); // holds end on the next 500 ms tick
    await s.step();
    expect(heirs[0]!.ipam.ownership()[0]!.held).toEqual([]);
    // The forgotten peer comes back from its state: fenced.
    await s.restart(c);
    await s.settle();
    const r = c.ipam.ready();
    expect(r.ok).toBe(false);
    expect(r.reason).toContain('was forgotten by the cluster');
    await expect(c.ipam.allocate({ containerId: 'y', ifName: 'eth0' })).rejects.toThrow(IpamNotReadyError);
    const st = c.ipam.status();
    expect(st.fenced).toBe(true);
    expect(st.spaces[0]!.conflicts).toEqual([cAddr]);
    expect(c.ipam.ownership()[0]!.owned).toEqual([]);
  });
});

describe('the simulation invariants', () => {
  it('fail when an address is allocated twice or owned by two peers (the checks can fail)', async () => {
    const s = await cluster(2);
    const [a, b] = s.nodes as [ReturnType<typeof s.live>[0], ReturnType<typeof s.live>[0]];
    const addrs = (await s.until(s.allocate(a)))!;
    expect(s.problems).toEqual([]);
    // Inject: another peer claims the same address.
    s.acknowledge(b, 'dup/eth0', [addrs[0]!]);
    expect(s.problems.some((p) => p.includes('allocated twice'))).toBe(true);
    // Inject: b believes it owns what a owns.
    s.problems.length = 0;
    const stolen = a.ipam.ownership()[0]!.owned;
    b.ipam.ownership = () => [{ range: '10.9.0.0/24', owned: stolen, held: [] }, { range: 'fd00:9::/64', owned: [], held: [] }];
    s.checkOwnership(true);
    expect(s.problems.some((p) => p.includes('owned by both'))).toBe(true);
    // The check after every round re-reads a peer whose ownership changed, and finds it too.
    s.problems.length = 0;
    b.ipam.ownershipGeneration++;
    s.checkOwnership();
    expect(s.problems.some((p) => p.includes('owned by both'))).toBe(true);
  });
});
