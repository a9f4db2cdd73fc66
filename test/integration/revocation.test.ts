/**
 * Revoking one node and rotating the cluster secret (issue 19), in a 4-node lab.
 *
 * Revocation: n4 is revoked through n1's API with `weft revoke` (signed by the CLI); every other
 * router closes its connections to n4, n4 hears of it and exits 1 (ERR_REVOKED), refuses to start
 * again, and, with its blocklist file removed, is still refused by the others (and stops again);
 * n1..n3 keep pinging each other. Rotation: n1..n3 go old secret → old + new accepted → new +
 * old accepted → new only, one router at a time, and after every restart every router sees every
 * other and every pod pings every other.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ping } from '../../lab/traffic.js';
import { WeftCluster } from '../../lab/weft-cluster.js';
import { createRevocationKey } from '../../src/mesh/revocation.js';
import { until } from './helpers.js';

const isRoot = process.getuid?.() === 0;
const N = 4;
const NEW = 'weft-lab-rotated-secret-abcdefghij';

describe.skipIf(!isRoot)('revoking one node, rotating the secret (4 nodes)', () => {
  let c: WeftCluster;
  let keyFile: string;
  let n4Name: string;

  beforeAll(async () => {
    const dir = join('/tmp', `weft-revoke-key-${process.pid}`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    keyFile = join(dir, 'revocation.key');
    const { publicKeyHex } = createRevocationKey(keyFile);
    // On a loaded machine a router may answer its first status late: one more try then.
    const start = () => WeftCluster.start({ nodes: N, podsPerNode: 1, extraArgs: ['--revocation-pubkey', publicKeyHex, '--log-level', 'info'] });
    c = await start().catch(async (err: Error) => (/did not answer/.test(err.message) ? start() : Promise.reject(err)));
    await c.waitEstablished(45_000);
    n4Name = (await c.status(3)).name;
  }, 120_000);

  afterAll(async () => {
    await c?.destroy();
    if (keyFile !== undefined) rmSync(join(keyFile, '..'), { recursive: true, force: true });
  });

  /** startRouter, waiting longer than its 15 s for the first status when the machine is loaded. */
  async function restart(i: number): Promise<void> {
    await c.stopRouter(i);
    try {
      await c.startRouter(i);
    } catch (err) {
      if (!/did not answer/.test((err as Error).message) || c.routers[i]!.process === undefined) throw err;
      await until(`n${i + 1} answers`, async () => c.apiStatus(i).catch(() => undefined), 60_000);
    }
  }

  async function pingsAmong(nodes: number[]): Promise<string[]> {
    const failures: string[] = [];
    for (const a of nodes) {
      for (const b of nodes) {
        if (a === b) continue;
        const [pa, pb] = [c.podsOn(a + 1)[0]!, c.podsOn(b + 1)[0]!];
        const r = await ping(c.lab, pa.ns, pb.ipv4!, { count: 3, intervalS: 0.2, timeoutS: 2 });
        if (r.received === 0) failures.push(`n${a + 1} → n${b + 1}`);
      }
    }
    return failures;
  }

  it('a revoked node loses its connections everywhere and stops itself (exit 1, ERR_REVOKED)', async () => {
    const r1 = c.routers[0]!;
    const out = await c.lab.exec(r1.node.ns, [process.execPath, join(process.cwd(), 'dist', 'src', 'cli', 'main.js'), 'revoke', 'n4', '--key', keyFile, '--reason', 'stolen in the lab', '--socket', r1.socket], { timeoutMs: 15_000 });
    expect(out.stdout).toContain(`revoked: ${n4Name} (n4)`);
    const n4 = c.routers[3]!.process!;
    const exit = await until('n4 exits', async () => Promise.race([n4.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 200))]), 30_000);
    expect(exit.code).toBe(1);
    expect(n4.stderrText()).toContain('is revoked');
    c.routers[3]!.process = undefined;
    for (const i of [0, 1, 2]) {
      await until(`n${i + 1} has no connection to n4`, async () => {
        const s = await c.apiStatus(i);
        return s.mesh.connections.some((x) => x.peer === n4Name) ? undefined : s;
      });
      const s = await c.apiStatus(i);
      expect(s.revocation?.entries.map((e) => [e.peer, e.reason])).toEqual([[n4Name, 'stolen in the lab']]);
      expect(s.revocation?.refused).toBe(0);
    }
    // Its own state directory lists it: on disk, atomically written.
    expect(existsSync(join(c.stateDir(3), 'blocklist.json'))).toBe(true);
  });

  it('the others still reach each other', async () => {
    expect(await pingsAmong([0, 1, 2])).toEqual([]);
  });

  it('it refuses to start while revoked; without its blocklist it is refused by every router and stops again', async () => {
    await expect(c.startRouter(3)).rejects.toThrow(/revoked/);
    rmSync(join(c.stateDir(3), 'blocklist.json'));
    const before = await Promise.all([0, 1, 2].map(async (i) => (await c.apiStatus(i)).mesh.closes.revoked ?? 0));
    // It may get as far as answering its API, or stop before: either way it must exit 1.
    const started = c.startRouter(3).then(() => 'started', (err: Error) => err.message);
    const why = await started;
    const p = c.routers[3]!.process;
    if (p !== undefined) {
      const exit = await until('n4 exits again', async () => Promise.race([p.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 200))]), 30_000);
      expect(exit.code).toBe(1);
      c.routers[3]!.process = undefined;
    } else expect(why).toMatch(/revoked/);
    const after = await Promise.all([0, 1, 2].map(async (i) => (await c.apiStatus(i)).mesh.closes.revoked ?? 0));
    expect(after.some((n, i) => n > before[i]!)).toBe(true);
    for (const i of [0, 1, 2]) expect((await c.apiStatus(i)).mesh.connections.some((x) => x.peer === n4Name)).toBe(false);
    expect(existsSync(join(c.stateDir(3), 'blocklist.json'))).toBe(true);
  });

  it('a bad entry is refused by the API and changes nothing', async () => {
    const r = c.routers[0]!;
    const forged = { peer: (await c.status(1)).name, at: Date.now(), reason: 'forged', sig: '00'.repeat(64) };
    await expect(c.api(0, 'POST', '/v1/revoke', forged)).rejects.toThrow(/does not verify/);
    expect((await c.apiStatus(0)).revocation?.entries.length).toBe(1);
    expect(r.process).toBeDefined();
  });

  it('the cluster secret rotates one router at a time (old → both → new), every pod reaching every other after each step', async () => {
    const live = [0, 1, 2];
    const newFile = join(c.dir, 'secret-new');
    writeFileSync(newFile, NEW, { mode: 0o600 });
    const oldFile = (i: number) => join(c.dir, `secret-${i + 1}`);
    const phases: [string, (i: number) => string[]][] = [
      ['old, new accepted', (i) => ['--secret-file', oldFile(i), '--secret-file-accept', newFile]],
      ['new, old accepted', (i) => ['--secret-file', newFile, '--secret-file-accept', oldFile(i)]],
      ['new only', () => ['--secret-file', newFile]],
    ];
    const failures: string[] = [];
    for (const [phase, secretArgs] of phases) {
      for (const i of live) {
        const r = c.routers[i]!;
        const at = r.args.indexOf('--secret-file');
        const kept = r.args.filter((_, k) => k < at || k > at + 1).filter((a, k, all) => a !== '--secret-file-accept' && all[k - 1] !== '--secret-file-accept');
        r.args.splice(0, r.args.length, ...kept, ...secretArgs(i));
        await restart(i);
        await until(`${phase}: n${i + 1} meshed again`, async () => {
          for (const k of live) {
            const s = await c.apiStatus(k);
            const up = new Set(s.peers.filter((p) => p.state === 'established' && p.path !== 'none').map((p) => p.nickname));
            if (!live.every((o) => o === k || up.has(`n${o + 1}`))) return undefined;
          }
          return true;
        }, 45_000);
        for (const f of await pingsAmong(live)) failures.push(`${phase}, after n${i + 1}: ${f}`);
      }
    }
    expect(failures).toEqual([]);
    // The blocklist outlived every restart.
    for (const i of live) expect((await c.apiStatus(i)).revocation?.entries.map((e) => e.peer)).toEqual([n4Name]);
  }, 600_000);
});
