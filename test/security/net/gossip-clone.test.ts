/**
 * Attack (or accident): a second router started with a copy of another's state directory, so
 * both hold one identity key. Before the hardening the two re-asserted their records over each
 * other forever and peers flapped between them. Now the one that started later stops with exit
 * status 1 and a message saying another router runs with this identity key; the first logs the
 * newcomer and keeps running, and its pods keep talking.
 *
 * Lab: n1 – n2 – n4 – n3 on a line (nftables drops everything between other pairs); n3 gets a copy
 * of n1's state directory. (n3 meets the mesh at n4, which holds no connection to n1: a peer that
 * does keeps the connection its tie-break prefers and closes the other at once, before any gossip.)
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../../src/core/paths.js';
import type { LabProcess } from '../../../lab/lab.js';
import type { ProcessExit } from '../../../lab/lab-process.js';
import { ping } from '../../../lab/traffic.js';
import { WeftCluster } from '../../../lab/weft-cluster.js';
import { until } from '../../integration/helpers.js';

const isRoot = process.getuid?.() === 0;
const cli = join(packageRoot(import.meta.url), 'dist', 'src', 'cli', 'main.js');

/** Starts router n3 (index 2, deferred) with a copy of n1's identity key and last topology version. */
function startClone(c: WeftCluster): LabProcess {
  const from = c.stateDir(0);
  const to = c.stateDir(2);
  mkdirSync(to, { recursive: true, mode: 0o700 });
  for (const f of ['identity.key', 'topology.version']) {
    if (!existsSync(join(from, f))) continue;
    copyFileSync(join(from, f), join(to, f));
    chmodSync(join(to, f), 0o600);
  }
  const r3 = c.routers[2]!;
  return c.lab.spawn(r3.node.ns, [process.execPath, cli, ...r3.args], { logFile: r3.logFile });
}

function exitWithin(p: LabProcess, ms: number): Promise<ProcessExit | undefined> {
  return Promise.race([p.exited, new Promise<ProcessExit | undefined>((r) => setTimeout(() => r(undefined), ms))]);
}

describe.skipIf(!isRoot)('attack: two routers with one identity key', () => {
  let c: WeftCluster;
  let clone: LabProcess | undefined;

  beforeAll(async () => {
    // index: 0 = n1, 1 = n2, 2 = n3 (the clone, started by the test), 3 = n4
    const line = [0, 1, 3, 2];
    const peersOf = (i: number): number[] => {
      const k = line.indexOf(i);
      return k === 0 ? [line[1]!] : [line[k - 1]!];
    };
    c = await WeftCluster.start({
      nodes: 4,
      podsPerNode: 1,
      deferStart: [2],
      peersOf,
      // Short key lifetimes: a peer that made pair keys with the clone (n4) holds them until the next rekey.
      extraArgs: ['--log-level', 'info', '--rekey-seconds', '10'],
      beforeRouters: async (lab) => {
        for (let a = 0; a < line.length; a++) for (let b = a + 2; b < line.length; b++) await lab.blockAllBetween(lab.nodes[line[a]!]!, lab.nodes[line[b]!]!);
      },
    });
    await c.waitEstablished(45_000);
  });

  afterAll(async () => {
    await clone?.stop(3000);
    await c?.destroy();
  });

  it('the later-started router stops with exit status 1; the first logs it and keeps serving its pods', async () => {
    // n3 starts with n1's identity key (and its last topology version).
    clone = startClone(c);
    const exit = await exitWithin(clone, 60_000);
    expect(exit?.code).toBe(1);
    expect(clone.stderrText()).toContain('another router runs with this identity key');
    expect(clone.stderrText()).toContain('198.18.0.1:6784'); // the first router's address
    expect(clone.stderrText()).toContain('198.18.0.3:6784'); // its own

    // n1 is still running, named the newcomer with both addresses, and its pods still reach n2's.
    const s1 = await c.status(0);
    expect(s1.nickname).toBe('n1');
    const log1 = c.routerLog(0)
      .split('\n')
      .filter((l) => l.includes('another router runs with our identity key'));
    expect(log1.length).toBeGreaterThan(0);
    expect(log1[0]).toContain('198.18.0.3:6784');
    expect(log1[0]).toContain('198.18.0.1:6784');
    const [p1, p2] = [c.podsOn(1)[0]!, c.podsOn(2)[0]!];
    await until('n1 pod reaches n2 pod again', async () => ((await ping(c.lab, p1.ns, p2.ipv4!, { count: 3, intervalS: 0.2, timeoutS: 2 })).received === 3 ? true : undefined), 45_000);
    const s2 = await c.status(1);
    expect(s2.mesh.peers.find((p) => p.name === s1.name)?.nickname).toBe('n1');
    expect(s2.peers.find((p) => p.name === s1.name)?.endpoint).toBe('198.18.0.1:6784');
    // n4 met the clone first; it holds n1's record again and reaches n1's pod through n2.
    await until('n4 holds n1 again', async () => ((await c.status(3)).mesh.peers.find((p) => p.name === s1.name)?.nickname === 'n1' ? true : undefined), 30_000);
    const p4 = c.podsOn(4)[0]!;
    await until('n4 pod reaches n1 pod', async () => ((await ping(c.lab, p4.ns, p1.ipv4!, { count: 3, intervalS: 0.2, timeoutS: 2 })).received === 3 ? true : undefined), 45_000);
  });
});

describe.skipIf(!isRoot)('attack: a router with a copied identity key meets the mesh where the original is connected', () => {
  let c: WeftCluster;
  let clone: LabProcess | undefined;

  beforeAll(async () => {
    // 0 = n1 (the original), 1 = n2, 2 = n3 (the clone, started by the test, connected to n2 only).
    c = await WeftCluster.start({
      nodes: 3,
      podsPerNode: 1,
      deferStart: [2],
      peersOf: (i) => (i === 0 ? [] : i === 1 ? [0] : [1]),
      extraArgs: ['--log-level', 'info'],
      // n2's name sorts before n1's, so n2 keeps the connection it dialled to n1 and the clone's
      // (dialled by the clone) is the duplicate it closes: the clone only learns of n1 from the
      // topology n2 sends on the losing connection.
      prepareState: (stateDir) => {
        for (;;) {
          const names = [0, 1].map((i) => {
            rmSync(stateDir(i), { recursive: true, force: true });
            return execFileSync(process.execPath, [cli, 'identity', '--state-dir', stateDir(i), '--name', `n${i + 1}`], { encoding: 'utf8' }).trim();
          });
          if (names[1]! < names[0]!) return;
        }
      },
      beforeRouters: (lab) => lab.blockAllBetween(lab.nodes[0]!, lab.nodes[2]!),
    });
    await c.waitEstablished(45_000);
  });

  afterAll(async () => {
    await clone?.stop(3000);
    await c?.destroy();
  });

  it('n2 closes the duplicate connection but still trades topology on it: the original re-asserts, the clone stops', async () => {
    clone = startClone(c);
    const exit = await exitWithin(clone, 60_000);
    expect(exit?.code).toBe(1);
    expect(clone.stderrText()).toContain('another router runs with this identity key');
    // n2 saw the duplicate (it counts the close); the clone's record reached it, n1 re-asserted
    // over it, and n2 holds n1 again and reaches its pod.
    expect((await c.status(1)).mesh.closes['duplicate'] ?? 0).toBeGreaterThan(0);
    const s1 = await c.status(0);
    await until('n2 holds n1 again', async () => ((await c.status(1)).mesh.peers.find((p) => p.name === s1.name)?.nickname === 'n1' ? true : undefined), 30_000);
    const [p1, p2] = [c.podsOn(1)[0]!, c.podsOn(2)[0]!];
    await until('n2 pod reaches n1 pod', async () => ((await ping(c.lab, p2.ns, p1.ipv4!, { count: 3, intervalS: 0.2, timeoutS: 2 })).received === 3 ? true : undefined), 45_000);
  });
});
