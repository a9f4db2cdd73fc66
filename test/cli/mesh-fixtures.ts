/**
 * Mesh views (GET /v1/mesh) for the tests of `weft graph`: five routers, n1 (this one) to n5,
 * every pair connected; n1 and n5 cannot reach each other over the underlay, so their pair goes
 * through n3 (relay); the others take the fast path, the direct sleeve or a punched sleeve.
 */
import { execFileSync } from 'node:child_process';
import type { LinkView, MeshView, RouterView } from '../../src/api/types.js';

/** Whether Graphviz's `dot` runs here (scripts/prereqs.sh installs it). */
export const hasDot = (() => {
  try {
    execFileSync('dot', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

export const NAMES = ['1a1a1a1a1a1a1a1a', '2b2b2b2b2b2b2b2b', '3c3c3c3c3c3c3c3c', '4d4d4d4d4d4d4d4d', '5e5e5e5e5e5e5e5e'];
const nick = (i: number) => `n${i + 1}`;

/** The path between routers i and j (0-based), the same from both ends. */
function pathBetween(i: number, j: number): Pick<LinkView, 'path' | 'via' | 'rttMs'> {
  const [a, b] = i < j ? [i, j] : [j, i];
  if (a === 0 && b === 4) return { path: 'relay', via: NAMES[2]!, rttMs: null };
  if (a === 2 && b === 3) return { path: 'punched', via: null, rttMs: 12.5 };
  if (b === 4) return { path: 'direct', via: null, rttMs: 0.8 + a };
  return { path: 'fastpath', via: null, rttMs: 0.21 };
}

function link(i: number, j: number): LinkView {
  return { peer: NAMES[j]!, nickname: nick(j), established: true, endpoint: `198.18.0.${j + 1}:6784`, ...pathBetween(i, j) };
}

export function router(i: number, over: Partial<RouterView> = {}): RouterView {
  return {
    name: NAMES[i]!,
    nickname: nick(i),
    self: i === 0,
    reachable: true,
    release: '0.1.0',
    protocol: i === 0 ? null : 2,
    reportAgeMs: i === 0 ? 0 : 1500,
    revoked: false,
    endpoints: [`198.18.0.${i + 1}:6784`],
    connections: NAMES.map((_, j) => j).filter((j) => j !== i).map((j) => link(i, j)),
    ipam: [],
    ...over,
  };
}

/** The healthy five-router mesh with the n1–n5 relay, seen from n1. */
export function fiveWithRelay(): MeshView {
  return { self: NAMES[0]!, routers: [0, 1, 2, 3, 4].map((i) => router(i)) };
}
