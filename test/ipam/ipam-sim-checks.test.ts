/**
 * The simulation's incremental ownership check (sim/ipam-sim-checks.ts) against the check
 * from scratch: random rounds of handovers, holds, deaths and restarts between fake peers, then a
 * round that may give one peer a cell another owns.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { OwnershipCheck, ownershipProblems, type CheckedPeer } from '../../sim/ipam-sim-checks.js';
import type { Interval } from '../../src/ipam/index.js';

const CELLS = 24;
const CELL = 4n;
const RANGES = ['10.0.0.0/25'];

interface FakeIpam {
  ownershipGeneration: number;
  owned: Interval[];
  held: { start: bigint; end: bigint; until: number }[];
  ownership(): { range: string; owned: Interval[]; held: { start: bigint; end: bigint; until: number }[] }[];
}

interface FakePeer {
  name: string;
  alive: boolean;
  ipam: FakeIpam;
}

function fakeIpam(): FakeIpam {
  const f: FakeIpam = { ownershipGeneration: 0, owned: [], held: [], ownership: () => [{ range: RANGES[0]!, owned: f.owned, held: f.held }] };
  return f;
}

/** Runs of the cells `who` owns in `cells` (index → owner, -1: nobody). */
function runsOf(cells: readonly number[], who: number): Interval[] {
  const out: [bigint, bigint][] = [];
  cells.forEach((o, i) => {
    if (o !== who) return;
    const a = BigInt(i) * CELL;
    const last = out.at(-1);
    if (last !== undefined && last[1] === a) last[1] = a + CELL;
    else out.push([a, a + CELL]);
  });
  return out;
}

const text = (v: unknown) => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));

type Round = { owners: number[]; held: number[]; die: number; restart: number };

const PEERS = 5;
const round = fc.record({
  owners: fc.array(fc.integer({ min: -1, max: PEERS - 1 }), { minLength: CELLS, maxLength: CELLS }),
  held: fc.array(fc.integer({ min: 0, max: CELLS - 1 }), { maxLength: 3 }),
  die: fc.integer({ min: -1, max: PEERS - 1 }),
  restart: fc.integer({ min: -1, max: PEERS - 1 }),
});

describe('incremental ownership check', () => {
  it('finds an overlap exactly when the check from scratch does', () => {
    fc.assert(
      fc.property(fc.array(round, { minLength: 1, maxLength: 12 }), fc.integer({ min: 0, max: CELLS - 1 }), fc.integer({ min: 0, max: PEERS - 1 }), (rounds: Round[], stolen, thief) => {
        const peers: FakePeer[] = Array.from({ length: PEERS }, (_, i) => ({ name: `p${i}`, alive: true, ipam: fakeIpam() }));
        const check = new OwnershipCheck(RANGES);
        const live = () => peers.filter((p) => p.alive) as unknown as CheckedPeer[];
        let cells: number[] = [];
        for (const r of rounds) {
          cells = r.owners;
          if (r.die >= 0) peers[r.die]!.alive = false;
          if (r.restart >= 0 && !peers[r.restart]!.alive) Object.assign(peers[r.restart]!, { alive: true, ipam: fakeIpam() });
          peers.forEach((p, i) => {
            const owned = runsOf(cells, i);
            const held = r.held.filter((c) => cells[c] === i).map((c) => ({ start: BigInt(c) * CELL + 1n, end: BigInt(c) * CELL + 3n, until: 0 }));
            if (text([owned, held]) === text([p.ipam.owned, p.ipam.held])) return;
            Object.assign(p.ipam, { owned, held, ownershipGeneration: p.ipam.ownershipGeneration + 1 });
          });
          expect(check.update(live())).toEqual([]);
          expect(ownershipProblems(live(), RANGES)).toEqual([]);
        }
        // The thief also believes it owns a cell (another peer's, or nobody's); holds cover only
        // the middle of a cell, so the owner can allocate from it too.
        const p = peers[thief]!;
        const victim = cells[stolen]!;
        Object.assign(p.ipam, { owned: runsOf(cells.map((o, i) => (i === stolen ? thief : o)), thief), ownershipGeneration: p.ipam.ownershipGeneration + 1 });
        const overlaps = victim >= 0 && victim !== thief && p.alive && peers[victim]!.alive;
        expect(check.update(live()).length > 0).toBe(overlaps);
        expect(ownershipProblems(live(), RANGES).length > 0).toBe(overlaps);
      }),
      { numRuns: 300 },
    );
  });

  it('reports a peer that claims what another owns, naming both', () => {
    const a = { name: 'a', alive: true, ipam: fakeIpam() };
    const b = { name: 'b', alive: true, ipam: fakeIpam() };
    const check = new OwnershipCheck(RANGES);
    a.ipam.owned = [[0n, 64n]];
    b.ipam.owned = [[64n, 128n]];
    expect(check.update([a, b] as unknown as CheckedPeer[])).toEqual([]);
    // A handover in one round is not an overlap, whichever peer is read first.
    Object.assign(b.ipam, { owned: [[32n, 128n]], ownershipGeneration: 1 });
    Object.assign(a.ipam, { owned: [[0n, 32n]], ownershipGeneration: 1 });
    expect(check.update([b, a] as unknown as CheckedPeer[])).toEqual([]);
    Object.assign(a.ipam, { owned: [[0n, 40n]], ownershipGeneration: 2 });
    expect(check.update([a, b] as unknown as CheckedPeer[])).toEqual(['10.0.0.0/25: offsets 0.. owned by both b and a']);
  });
});
