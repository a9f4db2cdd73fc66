/**
 * Random sequences of allocate / release / restart / forget / time passing on a small cluster,
 * compared with a naive model: allocations are idempotent, survive restarts, no address is held
 * twice, a released address is not handed out again within its quarantine, and every peer's
 * list matches the model. (Donations happen on their own: the space is tight.)
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IpamSim, type SimNode } from '../../sim/ipam-sim.js';
import { FakeClock } from '../fakes/fake-clock.js';

const Q = 2000;

type Op = { k: 'alloc'; node: number; c: number; ifn: number } | { k: 'release'; node: number; c: number } | { k: 'restart'; node: number } | { k: 'forget'; node: number } | { k: 'wait'; ms: number };

const node = fc.integer({ min: 0, max: 3 });
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ k: fc.constant('alloc' as const), node, c: fc.integer({ min: 0, max: 14 }), ifn: fc.integer({ min: 0, max: 1 }) }) },
  { weight: 5, arbitrary: fc.record({ k: fc.constant('release' as const), node, c: fc.integer({ min: 0, max: 14 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('restart' as const), node }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('forget' as const), node: fc.integer({ min: 2, max: 3 }) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('wait' as const), ms: fc.integer({ min: 100, max: 2500 }) }) },
);

describe('Ipam against a naive model', () => {
  it('random allocate / release / restart / forget sequences keep the model', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 40, maxLength: 90 }), fc.integer({ min: 1, max: 1000 }), async (ops, seed) => {
        const s = new IpamSim({ seed, clock: new FakeClock(), ranges: ['10.9.0.0/28', 'fd00:9::/120'], seeds: 2, quarantineMs: Q, askTimeoutMs: 1000 }) // reclaimHoldMs = quarantineMs: a forgotten peer's quarantine is respected too;
        for (let i = 0; i < 4; i++) await s.join(s.nodes.length > 0 ? [s.nodes[i - 1]!] : []);
        await s.settle();
        const model = new Map<SimNode, Map<string, string[]>>(s.nodes.map((n) => [n, new Map()]));
        const inUse = new Map<string, string>();
        const releasedAt = new Map<string, number>();
        const gone = new Set<SimNode>();
        for (const o of ops) {
          if (o.k === 'wait') {
            const end = s.clock.now() + o.ms;
            while (s.clock.now() < end) await s.step();
            continue;
          }
          const n = s.nodes[o.node]!;
          if (gone.has(n)) continue;
          const m = model.get(n)!;
          if (o.k === 'alloc') {
            const key = `c${o.c}/eth${o.ifn}`;
            // The clock does not move between the allocation and its (persisted) answer.
            let t = -1;
            const r = await s.until(
              n.ipam.allocate({ containerId: `c${o.c}`, ifName: `eth${o.ifn}` }).then((x) => ((t = s.clock.now()), x)),
              3000,
            ).catch((e: unknown) => e);
            if (r instanceof Error) {
              expect((r as { code?: string }).code).toBe('ERR_IPAM_EXHAUSTED');
              expect(m.has(key)).toBe(false);
              continue;
            }
            const addrs = (r as { addresses: { address: string }[] }).addresses.map((a) => a.address);
            const had = m.get(key);
            if (had !== undefined) expect(addrs).toEqual(had);
            else {
              expect(addrs).toHaveLength(2);
              for (const a of addrs) {
                expect(inUse.get(a)).toBeUndefined();
                const at = releasedAt.get(a);
                if (at !== undefined) expect(t - at).toBeGreaterThanOrEqual(Q);
                inUse.set(a, `${n.name}/${key}`);
              }
              m.set(key, addrs);
            }
          } else if (o.k === 'release') {
            const want = [...m].filter(([k]) => k.startsWith(`c${o.c}/`));
            const t = s.clock.now(); // released (synchronously) now, persisted a little later
            const r = await s.until(n.ipam.release(`c${o.c}`), 3000);
            // Keep the simulation's own bookkeeping (it adopts allocations it finds after a restart) in step.
            s.forgetContainer(n, `c${o.c}`);
            expect(r.released.sort()).toEqual(want.flatMap(([, a]) => a).sort());
            for (const [k, addrs] of want) {
              m.delete(k);
              for (const a of addrs) {
                inUse.delete(a);
                releasedAt.set(a, t);
              }
            }
          } else if (o.k === 'restart') {
            await s.crash(n);
            await s.restart(n);
            s.link(s.nodes.filter((q) => q !== n && q.alive).map((q) => [n, q] as const));
            await s.settle();
          } else {
            // The peer dies for good and is forgotten: its containers are gone.
            await s.kill(n);
            gone.add(n);
            for (const addrs of m.values()) for (const a of addrs) inUse.delete(a);
            m.clear();
            const live = s.nodes.filter((q) => q.alive);
            s.link(live.slice(1).map((q, i) => [live[i]!, q] as const));
            live[0]!.ipam.forget(n.name);
            await s.settle();
          }
          for (const q of s.nodes) {
            if (!q.alive) continue;
            const listed = new Map(q.ipam.list().map((a) => [`${a.containerId}/${a.ifName}`, a.addresses]));
            expect(listed).toEqual(model.get(q));
          }
        }
        expect(s.problems).toEqual([]);
        await s.stopAll();
      }),
      { numRuns: 60 },
    );
  });
});
