/**
 * `weft status peers` and `weft status ipam` on a 3-router lab (issue 19, "status people read"):
 * one router's CLI lists every router of the mesh with every connection of each (from the
 * routers' signed reports), and every IPAM owner with its share; once a router is stopped, its
 * ranges are marked as held by an unreachable owner (what an operator checks before forget).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { packageRoot } from '../../src/core/paths.js';
import { WeftCluster } from '../../lab/weft-cluster.js';
import type { IpamStatus } from '../../src/api/types.js';
import { until } from './helpers.js';

const isRoot = process.getuid?.() === 0;
const cli = join(packageRoot(import.meta.url), 'dist', 'src', 'cli', 'main.js');

interface PeersJson {
  self: string;
  routers: { name: string; nickname: string; self: boolean; reachable: boolean; release: string | null; connections: { peer: string; established: boolean; path: string | null; rttMs: number | null }[] }[];
}
interface IpamJson {
  self: string;
  nodes: { name: string; nickname: string; reachable: boolean; shares: { range: string; owned: number | string; free: number | string | null; used: number | string | null; quarantined: number | string | null }[] }[];
}

describe.skipIf(!isRoot)('weft status peers / ipam on 3 routers', () => {
  let c: WeftCluster;
  let names: string[] = [];
  const weft = async (i: number, args: string[]): Promise<string> =>
    (await c.lab.exec(c.lab.nodes[i]!.ns, [process.execPath, cli, ...args, '--socket', c.routers[i]!.socket], { timeoutMs: 10_000 })).stdout;

  beforeAll(async () => {
    c = await WeftCluster.start({ nodes: 3, extraArgs: ['--ipam-range', '10.46.0.0/16', '--ipam-init-peers', '3'] });
    await c.waitEstablished();
    names = await Promise.all([0, 1, 2].map(async (i) => (await c.apiStatus(i)).name));
    await until('IPAM ready on every router', async () => ((await Promise.all([0, 1, 2].map((i) => c.api<IpamStatus>(i, 'GET', '/v1/ipam/status')))).every((s) => s.ready.ok) ? true : undefined), 60_000);
  }, 120_000);

  afterAll(async () => {
    await c?.destroy();
  });

  it('status peers --json on one router lists every router with its connections to the two others, each with a path', async () => {
    const view = await until('every router reported its connections and paths', async () => {
      const v = JSON.parse(await weft(0, ['status', 'peers', '--json'])) as PeersJson;
      const complete = v.routers.length === 3 && v.routers.every((r) => r.release !== null && r.connections.length === 2 && r.connections.every((l) => l.established && l.path !== null && l.path !== 'none'));
      return complete ? v : undefined;
    }, 60_000);
    expect(view.self).toBe(names[0]);
    expect(view.routers.map((r) => r.name).sort()).toEqual([...names].sort());
    expect(view.routers[0]!.self).toBe(true);
    for (const r of view.routers) {
      expect(r.reachable).toBe(true);
      expect(r.connections.map((l) => l.peer).sort()).toEqual(names.filter((n) => n !== r.name).sort());
      for (const l of r.connections) {
        expect(['fastpath', 'direct', 'punched', 'relay']).toContain(l.path);
        if (l.rttMs !== null) expect(typeof l.rttMs).toBe('number');
      }
    }
    const text = await weft(0, ['status', 'peers']);
    expect(text).toContain('mesh of 3 routers');
    for (let i = 0; i < 3; i++) expect(text).toContain(`n${i + 1} (${names[i]})`);
  });

  it('status ipam --json shows every owner with its share, counts as JSON numbers', async () => {
    const v = await until('every router reported its IPAM share', async () => {
      const j = JSON.parse(await weft(0, ['status', 'ipam', '--json'])) as IpamJson;
      return j.nodes.length === 3 && j.nodes.every((n) => n.shares.length === 1 && n.shares[0]!.free !== null) ? j : undefined;
    }, 60_000);
    let total = 0;
    for (const n of v.nodes) {
      const s = n.shares[0]!;
      expect(s.range).toBe('10.46.0.0/16');
      expect(typeof s.owned).toBe('number');
      expect(typeof s.free).toBe('number');
      expect(typeof s.used).toBe('number');
      expect(typeof s.quarantined).toBe('number');
      expect(s.owned).toBeGreaterThan(0);
      total += s.owned as number;
      expect(n.reachable).toBe(true);
    }
    expect(total).toBe(65536);
    const list = JSON.parse(await weft(0, ['ipam', 'list', '--json'])) as { allocations: unknown[] };
    expect(Array.isArray(list.allocations)).toBe(true);
  });

  it("a stopped router's ranges are marked as held by an unreachable owner", async () => {
    await c.stopRouter(2);
    const v = await until('n3 unreachable in status ipam', async () => {
      const j = JSON.parse(await weft(0, ['status', 'ipam', '--json'])) as IpamJson;
      return j.nodes.find((n) => n.name === names[2])?.reachable === false ? j : undefined;
    }, 60_000);
    const gone = v.nodes.find((n) => n.name === names[2])!;
    expect(gone.shares.map((s) => s.range)).toEqual(['10.46.0.0/16']);
    const text = await weft(0, ['status', 'ipam']);
    expect(text).toMatch(new RegExp(`n3 \\(${names[2]}\\)\\s+UNREACHABLE`));
    expect(text).toContain(`unreachable owner n3 (${names[2]}) holds`);
    expect(text).toContain(`weft forget ${names[2]}`);
    const peers = JSON.parse(await weft(1, ['status', 'peers', '--json'])) as PeersJson;
    expect(peers.routers.find((r) => r.name === names[2])?.reachable).toBe(false);
    expect(await weft(1, ['status', 'peers'])).toContain(`unreachable: n3 (${names[2]})`);
  });
});
