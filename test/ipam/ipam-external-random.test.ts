/**
 * Randomized: three Ipams in Kubernetes mode over one Lease store allocate, release, relist, lose
 * blocks to a fourth writer and reclaim a departed router's blocks, in a seeded random order.
 * After every step (and a relist by each): an address handed out by two routers is at most one's
 * own (the other lists it as a conflict), and every allocation a router does not report as a
 * conflict lies in a block whose Lease names it.
 */
import { describe, expect, it } from 'vitest';
import { simPeerName, simWriter } from '../../sim/ipam-sim.js';
import type { GossipTransport, RouteTable } from '../../src/mesh/contracts.js';
import { Ipam, MemoryIpamStore, addressToOffset, offsetToAddress, space } from '../../src/ipam/index.js';
import { LeaseBlocks } from '../../src/k8s/blocks.js';
import { LEASE_ANNOTATIONS } from '../../src/k8s/names.js';
import { FakeClock } from '../fakes/fake-clock.js';
import { MemoryLeases } from '../fakes/memory-leases.js';
import { blockLease, NS } from '../k8s/lease-blocks-suite.js';

const transport: GossipTransport = { gossipToNeighbours: () => undefined, unicast: () => false, broadcast: () => undefined };
const routes: RouteTable = { nextHop: () => undefined, broadcastNext: () => [], reachable: () => [], distance: () => undefined, onChange: () => () => undefined };
const RANGE = '10.9.0.0/22';
const sp = space(RANGE);

async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
}

/** xorshift32, seeded. */
function rng(seed: number): () => number {
  let x = seed || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

describe('Ipam in Kubernetes mode, randomized', () => {
  it.each([1, 2, 3])('seed %i: no address is any two routers\' own; every non-conflict allocation lies in a block held by its router', async (seed) => {
    const rand = rng(seed * 7919);
    const leases = new MemoryLeases();
    const DEAD = simPeerName(9);
    const THIEF = simPeerName(8);
    leases.put(NS, blockLease('10.9.0.192/26', DEAD));
    const nodes = await Promise.all(
      [0, 1, 2].map(async (i) => {
        const clock = new FakeClock();
        const blocks = new LeaseBlocks({ leases, clock }, { self: simPeerName(i), nodeName: `n${i}`, namespace: NS, ranges: [RANGE] });
        const ipam = new Ipam({ clock, transport, routes, store: new MemoryIpamStore(), writer: simWriter(i), ownership: blocks }, { self: simPeerName(i), ranges: [RANGE], init: { initPeers: 1 }, clusterId: 't', quarantineMs: 0 });
        await blocks.start();
        await ipam.start();
        return { i, ipam, blocks, clock };
      }),
    );
    await settle();
    let next = 0;
    let allocated = 0;
    // Checked once every router has relisted (a router learns of a block taken from it at its next list).
    const check = async (): Promise<void> => {
      for (const x of nodes) await x.blocks.refresh();
      await settle();
      const holderOf = new Map<string, string>();
      for (const l of leases.objects.values()) holderOf.set(l.metadata!.annotations![LEASE_ANNOTATIONS.cidr]!, l.spec!.holderIdentity!);
      const own = new Map<string, number>();
      for (const n of nodes) {
        const conflicts = new Set(n.ipam.status().spaces[0]!.conflicts);
        for (const a of n.ipam.list()) {
          const addr = a.addresses[0]!;
          if (conflicts.has(addr)) continue;
          const off = addressToOffset(sp, addr)!;
          const start = off - (off % 64n);
          const block = `${offsetToAddress(sp, start)}/26`;
          expect(holderOf.get(block), `${addr} of router ${n.i}`).toBe(simPeerName(n.i));
          expect(own.get(addr), `${addr} is router ${own.get(addr)}'s and ${n.i}'s`).toBeUndefined();
          own.set(addr, n.i);
        }
      }
    };
    for (let step = 0; step < 250; step++) {
      const n = nodes[Math.floor(rand() * 3)]!;
      const r = rand();
      if (r < 0.6) {
        const p = n.ipam.allocate({ containerId: `c${next++}`, ifName: 'eth0' });
        p.catch(() => undefined);
        await settle();
        n.clock.advance(3000);
        await settle();
        if (await p.then(() => true, () => false)) allocated++;
      } else if (r < 0.85) {
        const list = n.ipam.list();
        const victim = list[Math.floor(rand() * list.length)];
        if (victim !== undefined) await n.ipam.release(victim.containerId);
      } else if (r < 0.93) {
        await n.blocks.refresh();
      } else if (r < 0.97) {
        // A fourth writer takes one of this router's blocks.
        const mine = n.blocks.spaceStatus(0).mine;
        const b = mine[Math.floor(rand() * mine.length)];
        if (b !== undefined) {
          const cur = [...leases.objects.values()].find((l) => l.metadata!.annotations![LEASE_ANNOTATIONS.cidr] === b)!;
          leases.put(NS, { ...cur, spec: { ...cur.spec, holderIdentity: THIEF } });
        }
      } else {
        await n.ipam.reclaim(DEAD).catch(() => undefined);
      }
      await settle();
      await check();
    }
    expect(allocated).toBeGreaterThan(50);
  }, 60_000);
});
