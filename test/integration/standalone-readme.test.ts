/**
 * README's "Standalone use" as written, on 3 lab nodes started in several orders. The commands
 * are taken from the README's text (not copied here): the secret line, host A's `weft launch`
 * and host B's, which the README says every later host runs with its own name and address (so
 * host C's is B's with node-b → node-c and .2 → .3). The lab's underlay has the README's
 * addresses (198.18.0.1-3, each in its own namespace). Changed only where one machine runs all
 * three hosts: `sudo weft` is the built CLI, /etc/weft is a temp dir, and each router gets its
 * own --state-dir and --api-socket. Then every node allocates an address (`weft ipam allocate`,
 * as the README shows), a pod gets it on each node's bridge, and every pod pings every other.
 * Also checked here: GET /v1/version and the version in the start log line.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, type LabPod, type LabProcess } from '../../lab/lab.js';
import { callApi } from '../../src/api/client.js';
import type { IpamStatus, StatusReport, VersionInfo } from '../../src/api/types.js';
import { until } from './helpers.js';

const ROOT = join(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** The README's standalone section: its first sh block. */
function readmeBlock(): string[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n## Standalone use\n'));
  const block = /```sh\n([\s\S]*?)```/.exec(section);
  if (block === null) throw new Error('README: no sh block under "## Standalone use"');
  return block[1]!.split('\n').map((l) => l.trim());
}

/** Host A's, B's and the secret's commands of the README, and host k's (0-based) derived from B's as the README says. */
function readmeCommands(): { secret: string; launch: (k: number) => string[]; allocate: string[] } {
  const lines = readmeBlock();
  const launches = lines.filter((l) => l.startsWith('sudo weft launch '));
  const secret = lines.find((l) => l.includes('/etc/weft/secret') && l.includes('head -c'));
  const allocate = lines.find((l) => l.startsWith('sudo weft ipam allocate '));
  if (launches.length !== 2 || secret === undefined || allocate === undefined) throw new Error(`README standalone block changed: ${lines.join(' | ')}`);
  const words = (l: string) => l.replace(/#.*$/, '').trim().split(/\s+/).slice(2); // without "sudo weft"
  const [a, b] = launches.map(words) as [string[], string[]];
  return {
    secret: secret.replace(/#.*$/, '').trim(),
    launch: (k) => (k === 0 ? a : b.map((w) => w.replace(/^node-b$/, `node-${'abcdefgh'[k]}`).replace(/^198\.18\.0\.2:/, `198.18.0.${k + 1}:`))),
    allocate: words(allocate),
  };
}

let lab: Lab;
let dir = '';
const procs: (LabProcess | undefined)[] = [];
const pods: LabPod[] = [];

function socket(k: number): string {
  return join(dir, `n${k + 1}.sock`);
}

async function startNode(k: number, run: string): Promise<void> {
  const cmd = readmeCommands().launch(k).map((w) => w.replaceAll('/etc/weft', join(dir, 'etc-weft')));
  const argv = [process.execPath, CLI, ...cmd, '--state-dir', join(dir, run, `state-n${k + 1}`), '--api-socket', socket(k)];
  procs[k] = lab.spawn(lab.nodes[k]!.ns, argv, { logFile: join(dir, run, `n${k + 1}.log`) });
  await until(`router ${k + 1} answers`, async () => ((await callApi(socket(k), 'GET', '/v1/status', undefined, 5000)) as StatusReport).name);
}

async function stopAll(): Promise<void> {
  for (let k = 0; k < procs.length; k++) {
    await procs[k]?.stop(5000);
    procs[k] = undefined;
  }
  for (const p of pods.splice(0)) await lab.removePod(p);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'weft-readme-'));
  lab = await Lab.create({ nodes: 3 });
  const { secret } = readmeCommands();
  execFileSync('sh', ['-c', secret.replaceAll('/etc/weft', join(dir, 'etc-weft'))]);
}, 120_000);

afterAll(async () => {
  await stopAll().catch(() => undefined);
  await lab?.destroy();
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

describe("README's standalone example", () => {
  it('derives host C from host B as the README says, and host A has no --peer', () => {
    const { launch } = readmeCommands();
    expect(launch(0)).not.toContain('--peer');
    expect(launch(2)).toEqual(launch(1).map((w) => (w === 'node-b' ? 'node-c' : w === '198.18.0.2:6784' ? '198.18.0.3:6784' : w)));
    expect(lab.nodes.map((n) => n.address)).toEqual(['198.18.0.1', '198.18.0.2', '198.18.0.3']);
  });

  it.each([
    ['A, B, C', [0, 1, 2]],
    ['C, B, A (the first member last)', [2, 1, 0]],
    ['B, A, C', [1, 0, 2]],
  ])('started in the order %s: one IPAM ring, an address per node, pods ping each other', async (what, order) => {
    const run = `run-${order.join('')}`;
    try {
      for (const k of order) await startNode(k, run);
      const rings = await until(
        'every router joined one ring',
        async () => {
          const st = await Promise.all([0, 1, 2].map(async (k) => (await callApi(socket(k), 'GET', '/v1/ipam/status')) as IpamStatus));
          return st.every((s) => s.ready.ok) ? st : undefined;
        },
        60_000,
      );
      const seeds = rings.map((s) => JSON.stringify(s.spaces[0]!.genesis?.seeds));
      expect(new Set(seeds).size).toBe(1);
      expect(rings[0]!.spaces[0]!.genesis?.seeds).toEqual([rings[0]!.self]); // host A formed it
      expect(rings.map((s) => s.bootstrap.mode)).toEqual(['initPeers', 'join', 'join']);
      for (const s of rings) expect(s.ringConflicts.count).toBe(0);
      const { allocate } = readmeCommands();
      for (let k = 0; k < 3; k++) {
        const ns = lab.nodes[k]!.ns;
        const out = await lab.exec(ns, [process.execPath, CLI, ...allocate, '--socket', socket(k)], { timeoutMs: 20_000 });
        const addr = out.stdout.trim().split(' ')[0]!;
        expect(addr, `${what}: node ${k + 1}`).toMatch(/^10\.(3[2-9]|4[0-7])\.\d+\.\d+\/12$/);
        pods.push(await lab.addPod(lab.nodes[k]!, { name: `r${order.join('')}${k}`, ipv4: addr, mtu: (await callApi(socket(k), 'GET', '/v1/status') as StatusReport).mtu.overlay }));
      }
      for (const from of pods)
        for (const to of pods) {
          if (from === to) continue;
          await until(`${from.name} pings ${to.ipv4}`, async () => ((await lab.exec(from.ns, ['ping', '-c', '1', '-W', '1', to.ipv4!], { timeoutMs: 5000 })).code === 0 ? true : undefined), 30_000);
        }
      // The version: GET /v1/version, in status, and in the start log line.
      const v = (await callApi(socket(0), 'GET', '/v1/version')) as VersionInfo;
      expect(v).toMatchObject({ version: VERSION, node: process.versions.node });
      expect(((await callApi(socket(1), 'GET', '/v1/status')) as StatusReport).build).toEqual(v);
      const started = procs[2]!.stderrText().split('\n').find((l) => l.includes('weft router started'));
      expect(JSON.parse(started!)).toMatchObject({ version: VERSION, ...(v.commit === undefined ? {} : { commit: v.commit }) });
    } finally {
      await stopAll();
    }
  });
});
