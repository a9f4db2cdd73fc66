/**
 * Dial hygiene and --peer host names in the lab (3 nodes; nftables drops everything between n1
 * and n3, so n3 is reachable from n1 only through n2).
 *
 * Host names: the lab starts routers with `ip netns exec`, which bind-mounts the files of
 * /etc/netns/<ns>/ over /etc/; so n1's router resolves through the system resolver (getaddrinfo,
 * /etc/hosts) a name written into /etc/netns/<n1's ns>/hosts. Its resolv.conf there points at
 * 127.0.0.1 (nothing listens) so a name not in the file fails at once, without DNS traffic leaving
 * the namespace. The directory is removed after the test, even when it fails.
 *
 * n1: --peer <name of n2> (its hosts file lists an address where nothing answers, then n2's) and
 * --peer <a name that is nowhere>; n3: --peer n2's address; n2: none.
 */
import { mkdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StatusReport } from '../../src/api/types.js';
import { WeftCluster } from '../../lab/weft-cluster.js';
import { until } from './helpers.js';

const isRoot = process.getuid?.() === 0;
const NETNS_ETC = '/etc/netns';
const CLI = join(process.cwd(), 'dist', 'src', 'cli', 'main.js');

describe.skipIf(!isRoot)('dial hygiene and --peer host names', () => {
  let c: WeftCluster | undefined;
  let etcDir: string | undefined;
  // Names in the hosts file of n1's namespace only (the .test TLD is reserved, RFC 2606).
  const n2Name = 'n2.dial-hygiene.weft-lab.test';
  const nowhere = 'nowhere.dial-hygiene.weft-lab.test';

  beforeAll(async () => {
    c = await WeftCluster.start({
      nodes: 3,
      podsPerNode: 0,
      extraArgs: ['--log-level', 'info'],
      peersOf: (i) => (i === 2 ? [1] : []),
      perNodeArgs: (i) => (i === 0 ? ['--peer', `${n2Name}:6784`, '--peer', `${nowhere}:6784`] : []),
      beforeRouters: async (lab) => {
        etcDir = join(NETNS_ETC, lab.nodes[0]!.ns);
        mkdirSync(etcDir, { recursive: true });
        // An address on the underlay where nothing answers first, then n2's: both are tried in turn.
        writeFileSync(join(etcDir, 'hosts'), `127.0.0.1 localhost\n198.18.0.77 ${n2Name}\n${lab.nodes[1]!.address} ${n2Name}\n`);
        writeFileSync(join(etcDir, 'resolv.conf'), 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n');
        await lab.blockAllBetween(lab.nodes[0]!, lab.nodes[2]!);
      },
    });
    await c.waitEstablished(45_000);
  }, 120_000);

  afterAll(async () => {
    try {
      await c?.destroy();
    } finally {
      if (etcDir !== undefined) rmSync(etcDir, { recursive: true, force: true });
      try {
        rmdirSync(NETNS_ETC); // only when empty: other labs may have theirs there
      } catch {
        // not empty, or gone
      }
    }
  });

  const target = (s: StatusReport, address: string) => s.mesh.targets.find((t) => t.address === address);
  /** `weft status` as a user reads it, on n1. */
  const statusText = async () => {
    const r = c!.routers[0]!;
    return (await c!.lab.exec(r.node.ns, [process.execPath, CLI, 'status', '--socket', r.socket], { timeoutMs: 10_000 })).stdout;
  };

  it('connects to a --peer given by host name, shows the address it resolved to, and says why another name failed', async () => {
    const s = await c!.status(0);
    expect(s.mesh.connections.map((x) => x.nickname)).toEqual(['n2']);
    expect(target(s, `${n2Name}:6784`)).toMatchObject({ configured: true, state: 'established', resolved: '198.18.0.2' });
    // The first address of the name (where nothing answers) was tried before n2's.
    expect(readFileSync(c!.routers[0]!.logFile, 'utf8')).toMatch(/connection refused or failed.*198\.18\.0\.77:6784/);
    const bad = target(s, `${nowhere}:6784`);
    expect(bad).toMatchObject({ configured: true, state: 'failed' });
    expect(bad!.lastError).toMatch(new RegExp(`^resolve ${nowhere.replace(/\./g, '\\.')}: `));
    expect(bad!.resolved).toBeUndefined();
    expect(await statusText()).toContain(`target ${nowhere}:6784: failed (resolve ${nowhere}`);
  });

  it('leaves n3 learned address, which keeps failing, to the path through n2, and says so once in the log', async () => {
    const n3 = `${c!.lab.nodes[2]!.address}:6784`;
    const left = await until('n1 leaves n3 address', async () => {
      const t = target(await c!.status(0), n3);
      return t?.state === 'left' ? t : undefined;
    }, 90_000);
    expect(left.configured).toBe(false);
    expect(left.attempts).toBe(4);
    expect(left.retryInMs).toBeGreaterThan(60_000);
    expect((await c!.status(0)).peers.find((p) => p.nickname === 'n3')!.path).toBe('relay');
    const lines = readFileSync(c!.routers[0]!.logFile, 'utf8').split('\n').filter((l) => l.includes('leaving it to the punched path'));
    expect(lines.length).toBe(1);
    expect(lines[0]).toContain(`${n3} tried 4 times (`);
    expect(await statusText()).toContain(`target ${n3}: left to the punched path after 4 failures`);
  });
});
