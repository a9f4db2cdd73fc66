/**
 * The IPAM simulation (sim/ipam-sim.ts) at unit-test size: 50 peers, 5,000 operations
 * through every phase with loss, duplication, reordering, restarts, a partition and forgets;
 * the invariants are checked after every round. The bench runs 1,000 peers and 100,000 operations.
 */
import { describe, expect, it } from 'vitest';
import { HeapClock } from '../../sim/kit.js';
import { runIpamScenario, type IpamScenarioResult } from '../../sim/ipam-sim.js';
import { FakeClock } from '../fakes/fake-clock.js';

const figures = (r: IpamScenarioResult) => ({ ...r, wallMs: 0, phases: r.phases.map((p) => ({ ...p, wallMs: 0 })) });

describe('IPAM simulation', () => {
  it('keeps every invariant through join, churn, partition and forget, and converges after each', async () => {
    const r = await runIpamScenario({ peers: 50, operations: 5000, seed: 11, clock: new HeapClock() });
    for (const p of r.phases)
      console.log(`${p.phase}: ${p.operations} ops, ${p.rounds} rounds, converged in ${p.convergenceRounds} rounds, ${p.donations} donations, ${p.messagesPerPeer.toFixed(1)} msgs/peer, ${(p.wallMs / 1000).toFixed(1)} s`);
    console.log(JSON.stringify(r.totals), JSON.stringify(r.trust));
    expect(r.problems).toEqual([]);
    expect(r.phases.map((p) => p.phase)).toEqual(['join', 'churn', 'partition', 'forget']);
    expect(r.totals.allocated).toBeGreaterThan(1000);
    expect(r.totals.restarts).toBeGreaterThan(0);
    for (const p of r.phases) expect(p.components).toBe(1);
    expect(r.phases.reduce((n, p) => n + p.donations, 0)).toBeGreaterThan(50);
    expect(r.totals.reclaimed).toBeGreaterThan(0);
  });

  it('is deterministic, and the bench clock fires like FakeClock', async () => {
    const a = await runIpamScenario({ peers: 12, operations: 600, seed: 3, clock: new FakeClock() });
    const b = await runIpamScenario({ peers: 12, operations: 600, seed: 3, clock: new HeapClock() });
    expect(a.problems).toEqual([]);
    expect(figures(b)).toEqual(figures(a));
  });
});
