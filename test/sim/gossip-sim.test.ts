/**
 * The gossip simulation (sim/gossip-sim.ts) at unit-test size: 120 peers through every
 * phase, with convergence checked after each; the bench runs the same scenario with 1,000.
 */
import { describe, expect, it } from 'vitest';
import { GossipSim, runGossipScenario, type ScenarioResult } from '../../sim/gossip-sim.js';
import { HeapClock } from '../../sim/kit.js';
import { FakeClock } from '../fakes/fake-clock.js';

const figures = (r: ScenarioResult) => r.phases.map(({ wallMs: _w, ...p }) => p);

describe('gossip simulation', () => {
  it('converges after every phase: join, partition past goneAfterMs, heal, leave + forget, die + gone', () => {
    const r = runGossipScenario({ peers: 120, seed: 7, clock: new FakeClock() });
    for (const p of r.phases) {
      const pp = p.perPeer;
      console.log(
        `${p.phase}: ${p.livePeers} live, ${p.components} component(s), ${p.settleRounds} rounds to settle (${p.rounds} in all), ` +
          `per peer: ${pp.deltaMessages.toFixed(1)} deltas / ${(pp.deltaBytes / 1024).toFixed(1)} KiB, ` +
          `${pp.connectMessages.toFixed(2)} connects / ${(pp.connectBytes / 1024).toFixed(1)} KiB, ${pp.periodicMessages.toFixed(1)} periodic / ${(pp.periodicBytes / 1024).toFixed(1)} KiB`,
      );
    }
    expect(r.problems).toEqual([]);
    expect(r.phases.map((p) => p.phase)).toEqual(['join', 'partition', 'heal', 'leave+forget', 'die+gone']);
    expect(r.phases.find((p) => p.phase === 'partition')?.components).toBe(2);
    for (const p of r.phases) expect(p.settleRounds).toBeLessThan(50);
  });

  it('is deterministic, and the bench clock fires like FakeClock', () => {
    const a = runGossipScenario({ peers: 40, seed: 3, clock: new FakeClock() });
    const b = runGossipScenario({ peers: 40, seed: 3, clock: new HeapClock() });
    expect(a.problems).toEqual([]);
    expect(figures(b)).toEqual(figures(a));
  });

  it('detects a peer that did not converge (the checks can fail)', () => {
    const sim = new GossipSim({ seed: 5, clock: new FakeClock() });
    for (let i = 0; i < 6; i++) sim.join();
    sim.settle();
    expect(sim.check()).toEqual([]);
    // A peer changes its record but the update is lost in transit.
    const p = sim.peers[2]!;
    p.topology.updateSelf({ nickname: 'changed' });
    sim.dropInFlight();
    const problems = sim.check();
    expect(problems.some((s) => s.includes('differs'))).toBe(true);
    expect(problems.some((s) => s.includes(p.name))).toBe(true);
  });
});
