/**
 * The Ipam with external block ownership (Kubernetes mode), over LeaseBlocks and in-memory Leases:
 * allocation inside held blocks only, a claim when short, exhaustion, a block taken away, the
 * state file's allocations re-claiming their blocks (or reported as conflicts), the API server
 * away, reclaim.
 */
import { describe, expect, it } from 'vitest';
import { simPeerName, simWriter } from '../../sim/ipam-sim.js';
import type { GossipTransport, RouteTable } from '../../src/mesh/contracts.js';
import { Ipam, IpamExhaustedError, IpamNotReadyError, MemoryIpamStore, addressToOffset, space } from '../../src/ipam/index.js';
import { LeaseBlocks } from '../../src/k8s/blocks.js';
import { leaseName } from '../../src/k8s/names.js';
import { FakeClock } from '../fakes/fake-clock.js';
import { MemoryLeases } from '../fakes/memory-leases.js';
import { blockLease, NS } from '../k8s/lease-blocks-suite.js';

const transport: GossipTransport = { gossipToNeighbours: () => undefined, unicast: () => false, broadcast: () => undefined };
const routes: RouteTable = { nextHop: () => undefined, broadcastNext: () => [], reachable: () => [], distance: () => undefined, onChange: () => () => undefined };

interface Node {
  ipam: Ipam;
  blocks: LeaseBlocks;
  clock: FakeClock;
  store: MemoryIpamStore;
  name: string;
}

/** Lets the promise chains (claims, lists) run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

async function node(leases: MemoryLeases, index: number, o: { ranges?: string[]; store?: MemoryIpamStore; quarantineMs?: number } = {}): Promise<Node> {
  const clock = new FakeClock();
  const ranges = o.ranges ?? ['10.9.0.0/24'];
  const name = simPeerName(index);
  const blocks = new LeaseBlocks({ leases, clock }, { self: name, nodeName: `node-${index}`, namespace: NS, ranges });
  const store = o.store ?? new MemoryIpamStore();
  const ipam = new Ipam(
    { clock, transport, routes, store, writer: simWriter(index), ownership: blocks },
    { self: name, ranges, init: { initPeers: 1 }, clusterId: 't', quarantineMs: o.quarantineMs ?? 10_000 },
  );
  await blocks.start();
  await ipam.start();
  await settle();
  return { ipam, blocks, clock, store, name };
}

function inBlocks(address: string, range: string, blocks: readonly string[]): boolean {
  const sp = space(range);
  const off = addressToOffset(sp, address)!;
  return blocks.some((b) => {
    const [base, len] = b.split('/');
    const start = addressToOffset(sp, base!)!;
    return off >= start && off < start + (1n << BigInt(32 - Number(len)));
  });
}

describe('Ipam with external ownership (Kubernetes mode)', () => {
  it('is ready once the Leases are listed; allocates inside held blocks only; claims another block when short', async () => {
    const leases = new MemoryLeases();
    const n = await node(leases, 0);
    expect(n.ipam.ready()).toEqual({ ok: true });
    expect(n.ipam.status().bootstrap).toEqual({ mode: 'kubernetes' });
    const got: string[] = [];
    for (let i = 0; i < 100; i++) {
      const p = n.ipam.allocate({ containerId: `c${i}`, ifName: 'eth0' });
      await settle();
      got.push((await p).addresses[0]!.address);
    }
    expect(new Set(got).size).toBe(100);
    const mine = n.ipam.status().spaces[0]!.blocks!.mine;
    expect(mine.length).toBeGreaterThanOrEqual(2);
    for (const a of got) expect(inBlocks(a, '10.9.0.0/24', mine)).toBe(true);
    for (const b of mine) expect(leases.holder(NS, leaseName(b))).toBe(n.name);
    expect(n.ipam.status().spaces[0]!.conflicts).toEqual([]);
  });

  it('exhausted: every block held, the last address taken → ERR_IPAM_EXHAUSTED and exhausted() says why', async () => {
    const leases = new MemoryLeases();
    leases.put(NS, blockLease('10.9.0.0/26', simPeerName(5)));
    const n = await node(leases, 0, { ranges: ['10.9.0.0/25'] });
    // Block 10.9.0.64/26 is the only free one: 63 addresses (the range's broadcast is reserved).
    for (let i = 0; i < 63; i++) {
      const p = n.ipam.allocate({ containerId: `c${i}`, ifName: 'eth0' });
      await settle();
      await p;
    }
    const p = n.ipam.allocate({ containerId: 'last', ifName: 'eth0' });
    p.catch(() => undefined);
    await settle();
    await expect(p).rejects.toThrow(IpamExhaustedError);
    await expect(p).rejects.toThrow(/every one of the 2 \/26 blocks of 10.9.0.0\/25 is held/);
    expect(n.ipam.exhausted()).toMatch(/no free address in 10.9.0.0\/25 on this router .* and every one of the 2 \/26 blocks/);
  });

  it('a block taken away stops allocations there; its allocations are reported as conflicts', async () => {
    const leases = new MemoryLeases();
    const n = await node(leases, 0);
    const first = await n.ipam.allocate({ containerId: 'a', ifName: 'eth0' });
    const block = n.ipam.status().spaces[0]!.blocks!.mine[0]!;
    const stolen = leases.objects.get(`${NS}/${leaseName(block)}`)!;
    leases.put(NS, { ...stolen, spec: { ...stolen.spec, holderIdentity: simPeerName(7) } });
    await n.blocks.refresh();
    await settle();
    const st = n.ipam.status().spaces[0]!;
    expect(st.blocks!.mine).not.toContain(block);
    expect(st.blocks!.conflicts).toContainEqual({ block, holder: simPeerName(7) });
    expect(st.conflicts).toEqual([first.addresses[0]!.address]);
    const next = n.ipam.allocate({ containerId: 'b', ifName: 'eth0' });
    await settle();
    const addr = (await next).addresses[0]!.address;
    expect(inBlocks(addr, '10.9.0.0/24', [block])).toBe(false);
    expect(inBlocks(addr, '10.9.0.0/24', n.ipam.status().spaces[0]!.blocks!.mine)).toBe(true);
  });

  it("at start the state file's allocations claim their blocks first; one held by another router is a conflict, never allocated from", async () => {
    const store = new MemoryIpamStore();
    const before = new MemoryLeases();
    const a = await node(before, 0, { store, ranges: ['10.9.0.0/24'] });
    const kept = (await a.ipam.allocate({ containerId: 'kept', ifName: 'eth0' })).addresses[0]!.address;
    const block = a.ipam.status().spaces[0]!.blocks!.mine[0]!;
    await a.ipam.stop();
    await a.blocks.stop();

    // A new API server (the Leases gone): the block of the allocation is claimed again.
    const fresh = new MemoryLeases();
    const b = await node(fresh, 0, { store });
    expect(b.ipam.ready()).toEqual({ ok: true });
    expect(fresh.holder(NS, leaseName(block))).toBe(b.name);
    expect(b.ipam.list().map((x) => x.addresses[0])).toEqual([kept]);
    expect(b.ipam.status().spaces[0]!.conflicts).toEqual([]);
    await b.ipam.stop();
    await b.blocks.stop();

    // Another router holds it meanwhile: a conflict, reported; new addresses come from elsewhere.
    const taken = new MemoryLeases();
    taken.put(NS, blockLease(block, simPeerName(6)));
    const c = await node(taken, 0, { store });
    expect(c.ipam.ready()).toEqual({ ok: true });
    const sp = c.ipam.status().spaces[0]!;
    expect(sp.conflicts).toEqual([kept]);
    expect(sp.blocks!.conflicts).toEqual([{ block, holder: simPeerName(6) }]);
    expect(taken.holder(NS, leaseName(block))).toBe(simPeerName(6));
    const p = c.ipam.allocate({ containerId: 'new', ifName: 'eth0' });
    await settle();
    expect(inBlocks((await p).addresses[0]!.address, '10.9.0.0/24', [block])).toBe(false);
  });

  it('not ready until one list succeeds; with the API server away later, held blocks still allocate and a claim fails with the reason', async () => {
    const leases = new MemoryLeases();
    leases.down = true;
    const n = await node(leases, 0, { ranges: ['10.9.0.0/25'] });
    expect(n.ipam.ready()).toMatchObject({ ok: false, reason: expect.stringContaining('cannot list the IPAM block Leases') });
    await expect(n.ipam.allocate({ containerId: 'x', ifName: 'eth0' })).rejects.toThrow(IpamNotReadyError);
    leases.down = false;
    n.clock.advance(10_000); // the relist
    await settle();
    expect(n.ipam.ready()).toEqual({ ok: true });
    const p0 = n.ipam.allocate({ containerId: 'c0', ifName: 'eth0' });
    await settle();
    await p0;
    leases.down = true;
    // The block held (63 usable addresses: one of the range's reserved is in it) still allocates.
    expect(n.ipam.status().spaces[0]!.blocks!.mine).toHaveLength(1);
    for (let i = 1; i < 63; i++) await n.ipam.allocate({ containerId: `c${i}`, ifName: 'eth0' });
    expect(n.ipam.status().spaces[0]!.own.free).toBe('0');
    const p = n.ipam.allocate({ containerId: 'more', ifName: 'eth0' });
    p.catch(() => undefined);
    await settle();
    await expect(p).rejects.toThrow(/IPAM is not ready: cannot claim a block of 10.9.0.0\/25: .*ECONNREFUSED/);
    expect(n.ipam.exhausted()).toMatch(/no block can be claimed: .*ECONNREFUSED/);
    expect(n.ipam.ready()).toEqual({ ok: true });
  });

  it('an API server that does not answer: the allocation fails at its deadline saying so, and the call at its time limit', async () => {
    const leases = new MemoryLeases();
    const n = await node(leases, 0, { ranges: ['10.9.0.0/24'] });
    let hang = true;
    leases.beforeWrite = () => (hang ? new Promise<void>(() => undefined) : undefined);
    // Use up what the first claim brought, then wait on a claim that never answers.
    while (n.ipam.status().spaces[0]!.own.free !== '0') await n.ipam.allocate({ containerId: `c${n.ipam.list().length}`, ifName: 'eth0' });
    const p = n.ipam.allocate({ containerId: 'waits', ifName: 'eth0' });
    p.catch(() => undefined);
    await settle();
    n.clock.advance(3000);
    await settle();
    await expect(p).rejects.toThrow(/no block of 10.9.0.0\/24 could be claimed within 3000 ms \(the API server has not answered yet\)/);
    n.clock.advance(10_000);
    await settle();
    expect(n.ipam.exhausted()).toMatch(/no block can be claimed: creating Lease weft-ipam-10-9-0-\d+-26: no answer from the API server within 10000 ms/);
    expect(n.blocks.status().counters.failures).toBeGreaterThan(0);
    hang = false;
    const q = n.ipam.allocate({ containerId: 'later', ifName: 'eth0' });
    await settle();
    expect((await q).addresses).toHaveLength(1);
  });

  it("reclaim: a departed router's blocks come here and rest for the hold before use", async () => {
    const leases = new MemoryLeases();
    const dead = simPeerName(4);
    leases.put(NS, blockLease('10.9.0.0/26', dead));
    leases.put(NS, blockLease('10.9.0.64/26', dead));
    const n = await node(leases, 0, { quarantineMs: 60_000 });
    const r = await n.ipam.reclaim(dead);
    await settle();
    expect(r.taken.sort()).toEqual(['10.9.0.0/26', '10.9.0.64/26']);
    expect(leases.holder(NS, leaseName('10.9.0.0/26'))).toBe(n.name);
    const sp = n.ipam.status().spaces[0]!;
    expect(sp.own.held).toBe('128');
    // Allocations meanwhile come from a fresh block, not the reclaimed ones.
    const p = n.ipam.allocate({ containerId: 'c', ifName: 'eth0' });
    await settle();
    expect(inBlocks((await p).addresses[0]!.address, '10.9.0.0/24', ['10.9.0.0/26', '10.9.0.64/26'])).toBe(false);
    n.clock.advance(60_000);
    await settle();
    expect(n.ipam.status().spaces[0]!.own.held).toBe('0');
    await expect(n.ipam.reclaim(n.name)).rejects.toThrow(/is this peer itself/);
  });
});
