/**
 * One suite for LeaseBlocks over any Lease store with the API server's rules: the in-memory one
 * (test/fakes/memory-leases.ts) and the fake API server through the real client-node
 * (lab/kube-api.ts). Each case names what it proves.
 */
import { describe, expect, it } from 'vitest';
import type { V1Lease } from '@kubernetes/client-node';
import { LeaseBlocks, type LeaseApi } from '../../src/k8s/blocks.js';
import { LEASE_ANNOTATIONS, LEASE_COMPONENT, LEASE_LABELS, leaseName } from '../../src/k8s/names.js';
import { FakeClock } from '../fakes/fake-clock.js';

export interface LeaseHarness {
  leases: LeaseApi;
  /** Writes a Lease as someone else would (create or overwrite). */
  put(namespace: string, lease: V1Lease): Promise<void>;
  /** The stored Lease (undefined: none). */
  get(namespace: string, name: string): Promise<V1Lease | undefined>;
  remove(namespace: string, name: string): Promise<void>;
  /** Makes the API server unreachable (true) or reachable again. */
  setDown(down: boolean): Promise<void>;
  close(): Promise<void>;
}

export const NS = 'kube-system';
/** Peer names (16 hex digits); A and B start their claims at the same block of a 2-block range (even values). */
export const A = 'a000000000000000';
export const B = 'b000000000000000';
export const C = 'c000000000000001';
export const DEAD = 'dead000000000000';

export function blockLease(cidr: string, holder: string, extra: { name?: string; annotations?: Record<string, string> } = {}): V1Lease {
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: {
      name: extra.name ?? leaseName(cidr),
      namespace: NS,
      labels: { [LEASE_LABELS.component]: LEASE_COMPONENT },
      annotations: extra.annotations ?? { [LEASE_ANNOTATIONS.cidr]: cidr },
    },
    spec: { holderIdentity: holder },
  };
}

export function leaseBlocksSuite(title: string, open: () => Promise<LeaseHarness>): void {
  describe(title, () => {
    const make = (h: LeaseHarness, self: string, ranges = ['10.9.0.0/24'], clock = new FakeClock()) =>
      new LeaseBlocks({ leases: h.leases, clock }, { self, nodeName: `node-${self.slice(0, 4)}`, namespace: NS, ranges, server: 'test' });

    it('claim: creates the Lease of a free block, named from its CIDR, labelled, held by this peer', async () => {
      const h = await open();
      try {
        const a = make(h, A);
        expect(a.ready().ok).toBe(false);
        expect(await a.refresh()).toBe(true);
        expect(a.ready()).toEqual({ ok: true });
        const r = await a.claim(0);
        expect(r.ok).toBe(true);
        const mine = a.spaceStatus(0).mine;
        expect(mine).toHaveLength(1);
        const stored = await h.get(NS, leaseName(mine[0]!));
        expect(stored?.spec?.holderIdentity).toBe(A);
        expect(stored?.metadata?.labels?.[LEASE_LABELS.component]).toBe(LEASE_COMPONENT);
        expect(stored?.metadata?.labels?.[LEASE_LABELS.range]).toBe('10.9.0.0-24');
        expect(stored?.metadata?.annotations?.[LEASE_ANNOTATIONS.cidr]).toBe(mine[0]);
        expect(stored?.metadata?.annotations?.[LEASE_ANNOTATIONS.node]).toBe('node-a000');
        expect(stored?.spec?.leaseDurationSeconds).toBeUndefined();
        expect(a.owned(0)).toEqual([{ start: r.ok ? r.block[0] : -1n, end: r.ok ? r.block[1] : -1n, reclaimed: false }]);
        // Another router learns it from the list.
        const b = make(h, B);
        await b.refresh();
        expect(b.spaceStatus(0).others).toEqual([{ holder: A, blocks: 1 }]);
        expect(b.spaceStatus(0).free).toBe('3');
        expect(b.holderOf(0, r.ok ? r.block[0] : 0n)).toBe(A);
      } finally {
        await h.close();
      }
    });

    it('two routers racing for the same free block: exactly one holds it, the loser (409 AlreadyExists) takes another', async () => {
      const h = await open();
      try {
        const a = make(h, A, ['10.9.0.0/25']);
        const b = make(h, B, ['10.9.0.0/25']);
        await Promise.all([a.refresh(), b.refresh()]);
        const [ra, rb] = await Promise.all([a.claim(0), b.claim(0)]);
        expect(ra.ok && rb.ok).toBe(true);
        expect(a.spaceStatus(0).mine).toHaveLength(1);
        expect(b.spaceStatus(0).mine).toHaveLength(1);
        expect(a.spaceStatus(0).mine[0]).not.toBe(b.spaceStatus(0).mine[0]);
        expect(a.status().counters.claimRaces + b.status().counters.claimRaces).toBe(1);
        for (const [x, self] of [[a, A], [b, B]] as const) expect((await h.get(NS, leaseName(x.spaceStatus(0).mine[0]!)))?.spec?.holderIdentity).toBe(self);
        // Nothing is left: a third claim is refused as exhausted, naming the range.
        const c = make(h, C, ['10.9.0.0/25']);
        await c.refresh();
        const rc = await c.claim(0);
        expect(rc).toMatchObject({ ok: false, kind: 'exhausted' });
        expect(c.exhausted(0)).toContain('every one of the 2 /26 blocks of 10.9.0.0/25 is held');
      } finally {
        await h.close();
      }
    });

    it('claiming one given block: one held by another router is a conflict naming the holder; racing for it, exactly one wins', async () => {
      const h = await open();
      try {
        const a = make(h, A);
        const b = make(h, B);
        await Promise.all([a.refresh(), b.refresh()]);
        const [ra, rb] = await Promise.all([a.claim(0, 70n), b.claim(0, 70n)]);
        const wins = [ra, rb].filter((r) => r.ok);
        expect(wins).toHaveLength(1);
        const loser = ra.ok ? rb : ra;
        const winner = ra.ok ? A : B;
        expect(loser).toMatchObject({ ok: false, kind: 'conflict', holder: winner });
        expect((await h.get(NS, leaseName('10.9.0.64/26')))?.spec?.holderIdentity).toBe(winner);
        // Asked again, the winner has it at once.
        expect(await (ra.ok ? a : b).claim(0, 100n)).toEqual({ ok: true, block: [64n, 128n] });
      } finally {
        await h.close();
      }
    });

    it("two routers reclaiming a dead router's blocks: each block goes to exactly one (409 Conflict for the other)", async () => {
      const h = await open();
      try {
        const cidrs = ['10.9.0.0/26', '10.9.0.128/26', '10.9.0.64/26']; // sorted as text
        for (const c of cidrs) await h.put(NS, blockLease(c, DEAD));
        const a = make(h, A);
        const b = make(h, B);
        await Promise.all([a.refresh(), b.refresh()]);
        const [ra, rb] = await Promise.all([a.reclaim(DEAD), b.reclaim(DEAD)]);
        expect([...ra.taken, ...rb.taken].sort()).toEqual(cidrs);
        expect([...ra.lost, ...rb.lost].sort()).toEqual(cidrs);
        expect(ra.taken.filter((c) => rb.taken.includes(c))).toEqual([]);
        expect(ra.failed.concat(rb.failed)).toEqual([]);
        for (const c of cidrs) {
          const holder = (await h.get(NS, leaseName(c)))?.spec?.holderIdentity;
          expect(holder).toBe(ra.taken.includes(c) ? A : B);
        }
        expect(a.owned(0).every((x) => x.reclaimed)).toBe(true);
        expect(a.status().counters.reclaimRaces + b.status().counters.reclaimRaces).toBe(3);
        // Both see the same holders after a list.
        await Promise.all([a.refresh(), b.refresh()]);
        expect([...a.spaceStatus(0).mine].sort()).toEqual([...ra.taken].sort());
        expect([...b.spaceStatus(0).mine].sort()).toEqual([...rb.taken].sort());
      } finally {
        await h.close();
      }
    });

    it('a block held here that the API shows held by another router: no longer owned, reported as a conflict', async () => {
      const h = await open();
      try {
        const a = make(h, A);
        let changes = 0;
        a.onChange(() => changes++);
        await a.refresh();
        const r = await a.claim(0);
        if (!r.ok) throw new Error(r.reason);
        const cidr = a.spaceStatus(0).mine[0]!;
        const cur = (await h.get(NS, leaseName(cidr)))!;
        await h.put(NS, { ...cur, spec: { ...cur.spec, holderIdentity: C } });
        const before = changes;
        await a.refresh();
        expect(changes).toBeGreaterThan(before);
        expect(a.owned(0)).toEqual([]);
        expect(a.spaceStatus(0).conflicts).toEqual([{ block: cidr, holder: C }]);
        expect(a.status().counters.lost).toBe(1);
      } finally {
        await h.close();
      }
    });

    it('a Lease of a block held here deleted by hand is written again', async () => {
      const h = await open();
      try {
        const a = make(h, A);
        await a.refresh();
        await a.claim(0);
        const cidr = a.spaceStatus(0).mine[0]!;
        await h.remove(NS, leaseName(cidr));
        await a.refresh();
        expect((await h.get(NS, leaseName(cidr)))?.spec?.holderIdentity).toBe(A);
        expect(a.spaceStatus(0).mine).toEqual([cidr]);
      } finally {
        await h.close();
      }
    });

    it('API server away: held blocks stay held, a claim fails with the reason; not ready before one list succeeded', async () => {
      const h = await open();
      try {
        const a = make(h, A);
        await a.refresh();
        await a.claim(0);
        const held = a.owned(0);
        await h.setDown(true);
        expect(await a.refresh()).toBe(false);
        expect(a.owned(0)).toEqual(held);
        expect(a.ready()).toEqual({ ok: true });
        const r = await a.claim(0);
        expect(r).toMatchObject({ ok: false, kind: 'unavailable' });
        expect(r.ok ? '' : r.reason).toMatch(/creating Lease weft-ipam-10-9-0-\d+-26: /);
        expect(a.status().lastError).toBeDefined();
        const fresh = make(h, B);
        expect(await fresh.refresh()).toBe(false);
        expect(fresh.ready()).toMatchObject({ ok: false, reason: expect.stringContaining('cannot list the IPAM block Leases: listing the Leases in namespace kube-system') });
        await expect(fresh.reclaim(DEAD)).rejects.toThrow(/cannot reclaim the blocks of dead000000000000/);
        await h.setDown(false);
        expect(await fresh.refresh()).toBe(true);
        expect(fresh.ready()).toEqual({ ok: true });
        expect(fresh.status().lastError).toBeUndefined();
      } finally {
        await h.close();
      }
    });

    it('malformed Leases (bad CIDR, name, holder, no annotation) are ignored, counted once each, and hold nothing', async () => {
      const h = await open();
      try {
        await h.put(NS, blockLease('10.9.0.0/26', A, { annotations: { [LEASE_ANNOTATIONS.cidr]: '10.9.0.999/26' }, name: 'weft-ipam-bad-cidr' }));
        await h.put(NS, blockLease('10.9.0.64/26', A, { name: 'weft-ipam-wrong-name' }));
        await h.put(NS, blockLease('10.9.0.128/26', 'not-a-peer'));
        await h.put(NS, blockLease('10.9.0.192/26', A, { annotations: {} }));
        await h.put(NS, blockLease('10.9.0.1/26', A, { name: 'weft-ipam-host-bits' }));
        const b = make(h, B);
        await b.refresh();
        await b.refresh();
        expect(b.status().counters.ignored).toBe(5);
        expect(b.spaceStatus(0).others).toEqual([]);
        expect(b.spaceStatus(0).free).toBe('4');
      } finally {
        await h.close();
      }
    });

    it('IPv6: blocks of /122, and a range smaller than a block is one block', async () => {
      const h = await open();
      try {
        const a = make(h, A, ['10.9.0.0/28', 'fd00:9::/120']);
        await a.refresh();
        const r4 = await a.claim(0);
        const r6 = await a.claim(1);
        expect(r4).toEqual({ ok: true, block: [0n, 16n] });
        expect(r6.ok && r6.block[1] - r6.block[0]).toBe(64n);
        expect(a.spaceStatus(1).blockPrefix).toBe(122);
        expect(a.spaceStatus(0).blockPrefix).toBe(28);
        const cidr6 = a.spaceStatus(1).mine[0]!;
        expect((await h.get(NS, leaseName(cidr6)))?.spec?.holderIdentity).toBe(A);
        expect(await a.claim(0)).toMatchObject({ ok: false, kind: 'exhausted' });
      } finally {
        await h.close();
      }
    });
  });
}
