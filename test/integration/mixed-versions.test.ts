/**
 * Rolling upgrades: a lab cluster of three routers, n3 held back to mesh protocol 2
 * (`--mesh-protocol-max 2`, what a router of the previous release speaks), n1 and n2 speaking
 * 2..3. Traffic flows between every pair of pods; each router's status shows per connection the
 * negotiated protocol (3 only between n1 and n2) and, over protocol 3, the neighbour's release.
 *
 * With WEFT_OLD_CLI set to another build's `dist/src/cli/main.js` (the previous release, e.g. a
 * worktree of main at 72cacff), n3 runs that build instead: the real old router in the mix.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WeftCluster, ping } from '../../lab/index.js';
import type { StatusReport } from '../../src/api/types.js';
import { weftVersion } from '../../src/core/version.js';

const isRoot = process.getuid?.() === 0;
const OLD_CLI = process.env.WEFT_OLD_CLI;
/** 0-based routers held back to protocol 2 (n3 is the old build when WEFT_OLD_CLI is set). */
const HELD = new Set([2]);
const OLD = OLD_CLI === undefined ? -1 : 2;
const N = 3;

describe.skipIf(!isRoot)('mixed mesh protocol versions', () => {
  let c: WeftCluster;
  beforeAll(async () => {
    c = await WeftCluster.start({
      nodes: N,
      podsPerNode: 1,
      perNodeArgs: (i) => (HELD.has(i) && i !== OLD ? ['--mesh-protocol-max', '2'] : []),
      cliOf: (i) => (i === OLD ? OLD_CLI : undefined),
    });
    await c.waitEstablished(40_000);
  }, 120_000);
  afterAll(async () => {
    await c?.destroy();
  });

  it('every pod reaches every other pod, across protocol 2 and 3 connections', async () => {
    for (const [a, b] of c.podPairs()) {
      expect((await ping(c.lab, a.ns, b.ipv4!, { count: 1, timeoutS: 2 })).received, `${a.ns} -> ${b.ipv4}`).toBe(1);
    }
  });

  it('status shows per connection the negotiated protocol, and the release over protocol 3', async () => {
    const want = (i: number, k: number): number => (HELD.has(i) || HELD.has(k) ? 2 : 3);
    const seen: string[] = [];
    for (let i = 0; i < N; i++) {
      if (i === OLD) continue; // the old build's status has no protocol per connection
      const s: StatusReport = await c.status(i);
      expect(s.build).toMatchObject({ meshProtocolMin: 2, meshProtocolMax: 3 });
      const conns = s.mesh.connections;
      expect(conns.map((x) => x.nickname).sort()).toEqual(['n1', 'n2', 'n3'].filter((n) => n !== `n${i + 1}`));
      for (const conn of conns) {
        const k = Number(conn.nickname.slice(1)) - 1;
        expect(conn.protocol, `n${i + 1} -> ${conn.nickname}`).toBe(want(i, k));
        expect(conn.release, `n${i + 1} -> ${conn.nickname}`).toBe(want(i, k) === 3 ? weftVersion() : null);
        seen.push(`n${i + 1}-${conn.nickname}:${conn.protocol}`);
      }
    }
    expect(seen).toContain('n1-n2:3');
    expect(seen).toContain('n1-n3:2');
  });

  it.skipIf(OLD < 0)('the previous build (WEFT_OLD_CLI) is connected to both others and refused nothing', async () => {
    const s = await c.status(OLD);
    expect(s.build.meshProtocol).toBe(2);
    expect(s.mesh.connections.map((x) => x.nickname).sort()).toEqual(['n1', 'n2']);
    expect(s.mesh.closes).not.toHaveProperty('version');
    expect(s.mesh.closes).not.toHaveProperty('handshake');
    // What the lead reads in the report: the old router's own view.
    console.log(`old router n${OLD + 1}: ${s.build.version} mesh protocol ${s.build.meshProtocol}; connections ${JSON.stringify(s.mesh.connections.map((x) => x.nickname))}; closes ${JSON.stringify(s.mesh.closes)}`);
  });

  it('the text status has a PROTOCOL column', async () => {
    const r = c.routers[0]!;
    const cli = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));
    const out = (await c.lab.exec(r.node.ns, [process.execPath, cli, 'status', '--socket', r.socket], { timeoutMs: 10_000 })).stdout;
    const all = out.split('\n');
    const at = all.findIndex((l) => l.includes('CONNECTION') && l.includes('PROTOCOL'));
    expect(at, out).toBeGreaterThanOrEqual(0);
    const header = all[at]!;
    const col = header.indexOf('PROTOCOL');
    const lines = all.slice(at + 1, at + 4);
    const row = (nick: string): string | undefined => lines.find((l) => l.includes(` ${nick} `));
    expect(row('n2')?.slice(col).trim().split(/\s+/)[0]).toBe('3');
    expect(row('n3')?.slice(col).trim().split(/\s+/)[0]).toBe('2');
  });
});
