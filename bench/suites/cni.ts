/**
 * CNI suite (issue 7): ADD and DEL latency of weft's plugin against the reference `bridge` +
 * `host-local` plugins (Debian containernetworking-plugins) in the same run, on one lab node with
 * a weft router (IPAM on). The driver (cni-driver.ts) runs inside the node namespace and times
 * each plugin process from spawn to exit, as a runtime sees it; variants alternate round by
 * round. weft's plugin is run as installed (the native binary that hands the call to the router,
 * as containerd runs it), and, for comparison, as a Node process (its fallback when the router
 * is unreachable).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installCni } from '../../src/cni/install.js';
import { packageRoot } from '../../src/core/paths.js';
import { installReferencePlugins, referencePluginDir } from '../../lab/cri-cni.js';
import { WeftCluster } from '../../lab/weft-cluster.js';
import { fmt, median, pctl } from '../stats.js';

export interface CniBenchOptions {
  runs: number;
  rounds?: number;
  log: (line: string) => void;
}

type Timings = Record<string, { add: number[]; del: number[] }>;

async function oneRun(run: number, rounds: number, o: CniBenchOptions): Promise<Timings> {
  const c = await WeftCluster.start({ nodes: 1, podsPerNode: 0, extraArgs: ['--log-level', 'warn', '--ipam-range', '10.45.0.0/16', '--ipam-init-peers', '1'] });
  const dir = mkdtempSync(join(tmpdir(), `weft-cni-bench-${c.lab.prefix}-`));
  try {
    const deadline = Date.now() + 30_000;
    while (!(await c.api<{ ready: boolean }>(0, 'GET', '/v1/cni/network')).ready) {
      if (Date.now() > deadline) throw new Error('the router was not ready for pods within 30 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    const binDir = join(dir, 'bin');
    await installReferencePlugins(binDir, ['loopback', 'portmap']);
    const installed = installCni({ binDir, confDir: join(dir, 'conf'), socket: c.routers[0]!.socket, journalDir: join(c.stateDir(0), 'pending-releases'), portmap: false });
    const weftConfig = { cniVersion: '1.0.0', name: 'weft', type: 'weft', socket: c.routers[0]!.socket, journalDir: join(c.stateDir(0), 'pending-releases') };
    const refConfig = {
      cniVersion: '1.0.0',
      name: 'ref',
      type: 'bridge',
      bridge: 'cniref0',
      isGateway: true,
      ipMasq: false,
      ipam: { type: 'host-local', ranges: [[{ subnet: '10.46.0.0/16' }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: join(dir, 'host-local') },
    };
    const args = {
      prefix: c.lab.prefix,
      rounds,
      variants: [
        { name: 'weft', plugin: installed.plugin, cniPath: binDir, config: weftConfig },
        { name: 'weft (Node process)', plugin: installed.wrapper, cniPath: binDir, config: weftConfig },
        { name: 'bridge+host-local', plugin: join(referencePluginDir(), 'bridge'), cniPath: referencePluginDir(), config: refConfig },
      ],
    };
    const driver = join(packageRoot(import.meta.url), 'dist', 'bench', 'suites', 'cni-driver.js');
    // nsenter, not `ip netns exec`: the pod namespaces the driver mounts must be visible to the
    // router, which only shares the host's mount namespace (as containerd's are).
    const out = execFileSync('nsenter', [`--net=${c.lab.nodes[0]!.nsPath}`, '--', process.execPath, driver, JSON.stringify(args)], { encoding: 'utf8', timeout: 600_000 });
    const t = JSON.parse(out) as Timings;
    for (const [name, x] of Object.entries(t)) {
      o.log(`run ${run} ${name}: ADD p50 ${fmt(pctl(x.add, 50), 1)} / p99 ${fmt(pctl(x.add, 99), 1)} ms, DEL p50 ${fmt(pctl(x.del, 50), 1)} / p99 ${fmt(pctl(x.del, 99), 1)} ms`);
    }
    return t;
  } finally {
    await c.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runCniSuite(o: CniBenchOptions): Promise<{ json: object; markdown: string; goals: string[] }> {
  const rounds = o.rounds ?? 100;
  const runs: Timings[] = [];
  for (let run = 1; run <= o.runs; run++) runs.push(await oneRun(run, rounds, o));
  const names = Object.keys(runs[0] ?? {});
  const summary = names.map((name) => ({
    name,
    addP50: median(runs.map((t) => pctl(t[name]!.add, 50))),
    addP99: median(runs.map((t) => pctl(t[name]!.add, 99))),
    delP50: median(runs.map((t) => pctl(t[name]!.del, 50))),
    delP99: median(runs.map((t) => pctl(t[name]!.del, 99))),
  }));
  const ref = summary.find((s) => s.name === 'bridge+host-local');
  const weft = summary.find((s) => s.name === 'weft');
  const ratio = weft !== undefined && ref !== undefined ? weft.addP50 / ref.addP50 : NaN;
  const markdown = [
    `| plugin (${rounds} pods per run, ${o.runs} run(s), medians of per-run percentiles) | ADD p50 / p99 ms | DEL p50 / p99 ms |`,
    '|---|---|---|',
    ...summary.map((s) => `| ${s.name} | ${fmt(s.addP50, 1)} / ${fmt(s.addP99, 1)} | ${fmt(s.delP50, 1)} / ${fmt(s.delP99, 1)} |`),
    '',
    `ADD p50 ratio weft / reference: ${fmt(ratio)}.`,
  ].join('\n');
  const goals = [`${ratio <= 0.6 ? 'met' : 'MISSED'}: ADD p50 ≤ 0.6 × bridge + host-local (issue 15): ${fmt(ratio)}`];
  return { json: { rounds, runs, summary }, markdown, goals };
}
