import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { PeerName } from '../../src/mesh/contracts.js';
import { Routes, buildGraph, computeRoutes, reachableFrom, type RouteSource } from '../../src/mesh/routes.js';
import type { PeerRecord } from '../../src/mesh/topology.js';
import { FakeClock } from '../fakes/fake-clock.js';

// Routes never look at keys, so records here carry names only (16 hex digits, ordered by index).
const name = (i: number): PeerName => i.toString(16).padStart(16, '0');
const KEY = new Uint8Array(32);

/** Records from claims: `claims[i]` = peers i lists as established. */
function records(claims: readonly (readonly number[])[], extra: { down?: [number, number][]; left?: number[] } = {}): PeerRecord[] {
  return claims.map((peers, i) => {
    const connections = [...new Set(peers)]
      .filter((j) => j !== i)
      .sort((a, b) => a - b)
      .map((j) => ({ peer: name(j), established: !(extra.down ?? []).some(([x, y]) => x === i && y === j) }));
    const left = extra.left?.includes(i) ? ('gone' as const) : undefined;
    return { name: name(i), nickname: '', publicKey: KEY, version: 1, endpoints: [], connections: left ? [] : connections, incarnation: '0000000000000000', started: 0, ...(left ? { left } : {}) };
  });
}

/** Symmetric claims from an undirected edge list. */
function undirected(n: number, edges: readonly [number, number][]): number[][] {
  const claims: number[][] = Array.from({ length: n }, () => []);
  for (const [a, b] of edges) {
    claims[a]!.push(b);
    claims[b]!.push(a);
  }
  return claims;
}

describe('routes: tables', () => {
  //  0 - 1 - 2 - 3      4 (isolated)
  const line = records(undirected(5, [[0, 1], [1, 2], [2, 3]]));

  it('next hops, distances and reachability on a line', () => {
    const r = computeRoutes(line, name(0));
    expect([1, 2, 3].map((i) => r.nextHop(name(i)))).toEqual([name(1), name(1), name(1)]);
    expect([1, 2, 3].map((i) => r.distance(name(i)))).toEqual([1, 2, 3]);
    expect(r.reachable()).toEqual([name(1), name(2), name(3)]);
    expect(r.nextHop(name(4))).toBeUndefined();
    expect(r.distance(name(4))).toBeUndefined();
    expect(r.nextHop(name(0))).toBeUndefined();
    expect(r.nextHop(name(99))).toBeUndefined();
    const mid = computeRoutes(line, name(2));
    expect(mid.nextHop(name(0))).toBe(name(1));
    expect(mid.nextHop(name(3))).toBe(name(3));
  });

  it('ignores one-sided claims, connections not established, and tombstones', () => {
    // 0 lists 1, 1 does not list 0; 1-2 is established on one side only; 3 is gone.
    const claims = [[1, 3], [2], [1], [0]];
    const r = computeRoutes(records(claims, { down: [[2, 1]], left: [3] }), name(0));
    expect(r.reachable()).toEqual([]);
    expect(buildGraph(records(claims, { down: [[2, 1]], left: [3] })).names).toEqual([name(0), name(1), name(2)]);
    expect(computeRoutes(records([[1], [0]]), name(0)).reachable()).toEqual([name(1)]);
  });

  it('breaks ties by the smallest first hop, whatever the order of records', () => {
    // Two shortest paths 0→4: via 1 and via 2 (and a longer one via 3).
    const rs = records(undirected(6, [[0, 2], [0, 1], [2, 4], [1, 4], [0, 3], [3, 5], [5, 4]]));
    for (const order of [rs, [...rs].reverse(), [rs[3]!, rs[0]!, rs[5]!, rs[1]!, rs[4]!, rs[2]!]]) {
      const r = computeRoutes(order, name(0));
      expect(r.nextHop(name(4))).toBe(name(1));
      expect(r.distance(name(4))).toBe(2);
    }
  });

  it('broadcast trees: each peer forwards to its children in the source tree', () => {
    // A square 0-1-3-2-0: from 0, 3 is reached via the smaller of 1 and 2.
    const rs = records(undirected(4, [[0, 1], [1, 3], [3, 2], [2, 0]]));
    const at = (i: number) => computeRoutes(rs, name(i));
    expect(at(0).broadcastNext(name(0))).toEqual([name(1), name(2)]);
    expect(at(1).broadcastNext(name(0))).toEqual([name(3)]);
    expect(at(2).broadcastNext(name(0))).toEqual([]);
    expect(at(3).broadcastNext(name(0))).toEqual([]);
    expect(at(0).broadcastNext(name(9))).toEqual([]);
  });

  it('reachableFrom matches the route table', () => {
    expect([...reachableFrom(line, name(3))].sort()).toEqual([name(0), name(1), name(2)]);
    expect(reachableFrom(line, name(7)).size).toBe(0);
  });
});

/** A random graph: n peers, symmetric edges plus some one-sided claims and downed connections. */
const graphArb = fc
  .integer({ min: 1, max: 14 })
  .chain((n) =>
    fc.record({
      n: fc.constant(n),
      edges: fc.array(fc.tuple(fc.nat(n - 1), fc.nat(n - 1)), { maxLength: n * 3 }),
      oneSided: fc.array(fc.tuple(fc.nat(n - 1), fc.nat(n - 1)), { maxLength: n }),
      down: fc.array(fc.tuple(fc.nat(n - 1), fc.nat(n - 1)), { maxLength: n }),
      order: fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n }),
    }),
  )
  .map(({ n, edges, oneSided, down, order }) => {
    const claims = undirected(n, edges);
    for (const [a, b] of oneSided) claims[a]!.push(b);
    const recs = records(claims, { down });
    // The true graph: both sides list each other as established.
    const est = (a: number, b: number) => a !== b && recs[a]!.connections.some((c) => c.peer === name(b) && c.established);
    const adj = Array.from({ length: n }, (_, a) => [...Array(n).keys()].filter((b) => est(a, b) && est(b, a)));
    return { n, recs: order.map((i) => recs[i]!), adj };
  });

/** Floyd–Warshall distances (Infinity: unreachable). */
function floyd(n: number, adj: number[][]): number[][] {
  const d = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 0 : adj[i]!.includes(j) ? 1 : Infinity)));
  for (let k = 0; k < n; k++) for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (d[i]![k]! + d[k]![j]! < d[i]![j]!) d[i]![j] = d[i]![k]! + d[k]![j]!;
  return d;
}

describe('routes: against a naive model', () => {
  it('distances, next hops and reachability match Floyd–Warshall with the smallest-first-hop rule', () => {
    fc.assert(
      fc.property(graphArb, ({ n, recs, adj }) => {
        const d = floyd(n, adj);
        for (let s = 0; s < n; s++) {
          const r = computeRoutes(recs, name(s));
          const expected: string[] = [];
          for (let t = 0; t < n; t++) {
            if (t === s) continue;
            const dist = d[s]![t]!;
            if (dist === Infinity) {
              expect(r.distance(name(t))).toBeUndefined();
              expect(r.nextHop(name(t))).toBeUndefined();
              continue;
            }
            expected.push(name(t));
            expect(r.distance(name(t))).toBe(dist);
            const hops = adj[s]!.filter((h) => d[h]![t]! === dist - 1);
            expect(r.nextHop(name(t))).toBe(name(Math.min(...hops)));
          }
          expect(r.reachable()).toEqual(expected);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('a broadcast relayed along broadcastNext reaches every reachable peer exactly once', () => {
    fc.assert(
      fc.property(graphArb, ({ n, recs, adj }) => {
        const tables = Array.from({ length: n }, (_, i) => computeRoutes(recs, name(i)));
        const d = floyd(n, adj);
        for (let src = 0; src < n; src++) {
          const got = new Array<number>(n).fill(0);
          const frontier = [src];
          while (frontier.length > 0) {
            const x = frontier.pop()!;
            for (const next of tables[x]!.broadcastNext(name(src))) {
              const y = parseInt(next, 16);
              expect(adj[x]).toContain(y); // only over real connections
              got[y]!++;
              frontier.push(y);
            }
          }
          for (let t = 0; t < n; t++) expect(got[t]).toBe(t !== src && d[src]![t]! < Infinity ? 1 : 0);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('results do not depend on the order records arrive in', () => {
    fc.assert(
      fc.property(graphArb, fc.nat(), ({ n, recs }, seed) => {
        const shuffled = [...recs].sort((a, b) => ((parseInt(a.name, 16) * 7919 + seed) % 101) - ((parseInt(b.name, 16) * 7919 + seed) % 101));
        for (let s = 0; s < n; s++) {
          const x = computeRoutes(recs, name(s));
          const y = computeRoutes(shuffled, name(s));
          expect(x.sameAs(y)).toBe(true);
          for (let t = 0; t < n; t++) {
            expect(y.nextHop(name(t))).toBe(x.nextHop(name(t)));
            expect(y.broadcastNext(name(t))).toEqual(x.broadcastNext(name(t)));
          }
        }
      }),
      { numRuns: 100 },
    );
  });

  it('handles 1,000 peers with 10 connections each', () => {
    const n = 1000;
    const edges: [number, number][] = [];
    let x = 12345;
    const rnd = () => (x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let i = 1; i < n; i++) for (let k = 0; k < 5; k++) edges.push([i, Math.floor(rnd() * i)]);
    const rs = records(undirected(n, edges));
    const r = computeRoutes(rs, name(0));
    expect(r.reachable()).toHaveLength(n - 1);
    expect(r.broadcastNext(name(500)).length).toBeGreaterThanOrEqual(0);
  });
});

class FakeSource implements RouteSource {
  readonly name = name(0);
  recs: PeerRecord[];
  private readonly listeners = new Set<(changed: readonly PeerName[]) => void>();
  constructor(recs: PeerRecord[]) {
    this.recs = recs;
  }
  records(): readonly PeerRecord[] {
    return this.recs;
  }
  onChange(l: (changed: readonly PeerName[]) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  set(recs: PeerRecord[]): void {
    this.recs = recs;
    for (const l of this.listeners) l([]);
  }
  get subscribers(): number {
    return this.listeners.size;
  }
}

describe('Routes: coalesced recomputation', () => {
  it('recomputes once per tick for many changes, and notifies only when the graph changed', () => {
    const clock = new FakeClock();
    const src = new FakeSource(records(undirected(3, [[0, 1]])));
    const routes = new Routes({ topology: src, clock }, { delayMs: 50 });
    routes.start();
    clock.advance(50);
    const base = routes.computations;
    let fired = 0;
    routes.onChange(() => fired++);
    src.set(records(undirected(3, [[0, 1], [1, 2]])));
    src.set(records(undirected(3, [[0, 1], [1, 2], [0, 2]])));
    src.set(records(undirected(3, [[0, 1], [1, 2]])));
    expect(routes.reachable()).toEqual([name(1)]); // not yet recomputed
    clock.advance(49);
    expect(routes.computations).toBe(base);
    clock.advance(1);
    expect(routes.computations).toBe(base + 1);
    expect(fired).toBe(1);
    expect(routes.nextHop(name(2))).toBe(name(1));
    // A change that leaves the graph as it is (a nickname) recomputes but does not notify.
    src.set(records(undirected(3, [[0, 1], [1, 2]])).map((r) => ({ ...r, nickname: 'x' })));
    clock.advance(50);
    expect(routes.computations).toBe(base + 2);
    expect(fired).toBe(1);
    routes.stop();
    expect(src.subscribers).toBe(0);
  });

  it('flush recomputes now; the current snapshot stays consistent', () => {
    const clock = new FakeClock();
    const src = new FakeSource(records(undirected(2, [])));
    const routes = new Routes({ topology: src, clock });
    routes.start();
    const before = routes.current();
    src.set(records(undirected(2, [[0, 1]])));
    routes.flush();
    expect(routes.distance(name(1))).toBe(1);
    expect(before.distance(name(1))).toBeUndefined();
    expect(routes.broadcastNext(name(0))).toEqual([name(1)]);
    routes.stop();
  });
});
