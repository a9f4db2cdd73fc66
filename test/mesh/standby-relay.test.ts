import { describe, expect, it } from 'vitest';
import { chooseRelay, type RelayCandidate } from '../../src/mesh/standby-relay.js';

const c = (name: string, rttMs?: number): RelayCandidate => ({ name, rttMs });

describe('chooseRelay', () => {
  const cases: { name: string; candidates: RelayCandidate[]; current?: string; nextHop?: string; want: string | undefined }[] = [
    { name: 'no neighbour qualifies, no route hop', candidates: [], want: undefined },
    { name: 'no neighbour qualifies: the route\'s next hop', candidates: [], nextHop: 'r', want: 'r' },
    { name: 'no neighbour qualifies: the current one is dropped for the route\'s hop', candidates: [], current: 'x', nextHop: 'r', want: 'r' },
    { name: 'the lowest round trip', candidates: [c('x', 30), c('y', 5), c('z', 12)], nextHop: 'x', want: 'y' },
    { name: 'measured beats unmeasured', candidates: [c('x'), c('y', 50)], want: 'y' },
    { name: 'ties by name', candidates: [c('y', 5), c('x', 5)], want: 'x' },
    { name: 'nothing measured: the route\'s hop when it qualifies', candidates: [c('x'), c('y')], nextHop: 'y', want: 'y' },
    { name: 'nothing measured: the first by name otherwise', candidates: [c('y'), c('x')], nextHop: 'q', want: 'x' },
    { name: 'nothing measured: the current one stays', candidates: [c('x'), c('y')], current: 'y', nextHop: 'x', want: 'y' },
    { name: 'hysteresis: 10% faster does not move it', candidates: [c('x', 10), c('y', 9)], current: 'x', want: 'x' },
    { name: 'hysteresis: 20% faster and 2 ms moves it', candidates: [c('x', 10), c('y', 8)], current: 'x', want: 'y' },
    { name: 'hysteresis: half but under 1 ms does not move it', candidates: [c('x', 1), c('y', 0.5)], current: 'x', want: 'x' },
    { name: 'hysteresis: much faster moves it', candidates: [c('x', 40), c('y', 3)], current: 'x', want: 'y' },
    { name: 'the current one unmeasured gives way to a measured one', candidates: [c('x'), c('y', 30)], current: 'x', want: 'y' },
    { name: 'the current one no longer qualifies', candidates: [c('y', 30), c('z', 40)], current: 'x', want: 'y' },
    { name: 'the current one is the best', candidates: [c('x', 3), c('y', 30)], current: 'x', want: 'x' },
  ];
  for (const t of cases) {
    it(`${t.name}: ${t.want ?? 'none'}`, () => {
      expect(chooseRelay({ candidates: t.candidates, current: t.current, nextHop: t.nextHop })).toBe(t.want);
    });
  }

  it('does not flap on round trips that wander within the hysteresis', () => {
    let current: string | undefined;
    const seen = new Set<string>();
    // x and y alternate being a little faster (within 20%): the first choice stays.
    for (let i = 0; i < 50; i++) {
      const wobble = i % 2 === 0 ? 1 : -1;
      current = chooseRelay({ candidates: [c('x', 10 + wobble), c('y', 10 - wobble)], current, nextHop: undefined });
      seen.add(current!);
    }
    expect(seen.size).toBe(1);
  });
});
