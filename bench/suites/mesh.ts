/**
 * Mesh suite: paths through relays and rekeying, on a 4-node line (n1 – n2 – n3 – n4; nftables
 * drops everything between other pairs), encrypted, handshake keys.
 *
 *   direct      n1 → n2
 *   one relay   n1 → n3 (via n2)
 *   two relays  n1 → n4 (via n2, n3)
 *
 * TCP (iperf3, 1 stream) and ping avg/p99 for each (pings interleaved over the paths), as ratios
 * to the direct path in the same run.
 * Rekey: a TCP stream n1 → n4 while keys rotate every 2 s; reports the rekeys seen, the slowest
 * one-second interval and whether the connection lived.
 */
import { iperf3Tcp, ping } from '../../lab/traffic.js';
import { WeftCluster } from '../../lab/weft-cluster.js';
import { median } from '../stats.js';

export interface MeshOptions {
  runs: number;
  seconds: number;
  log: (line: string) => void;
}

interface PathSample {
  path: 'direct' | 'one relay' | 'two relays';
  tcpGbps: number;
  pingAvgMs: number;
  pingP99Ms: number;
}

interface RekeySample {
  rekeys: number;
  seconds: number;
  gbps: number;
  minIntervalGbps: number;
  survived: boolean;
}

async function line(rekeySeconds: number): Promise<WeftCluster> {
  const c = await WeftCluster.start({
    nodes: 4,
    extraArgs: ['--log-level', 'warn', '--rekey-seconds', String(rekeySeconds)],
    beforeRouters: async (lab) => {
      for (let a = 0; a < 4; a++) for (let b = a + 2; b < 4; b++) await lab.blockAllBetween(lab.nodes[a]!, lab.nodes[b]!);
    },
  });
  try {
    await c.waitEstablished(45_000);
    return c;
  } catch (err) {
    await c.destroy();
    throw err;
  }
}

const fmt = (n: number, d = 2) => n.toFixed(d);

export async function runMeshSuite(o: MeshOptions): Promise<{ json: object; markdown: string; goals: string[] }> {
  const paths: PathSample[] = [];
  const rekeys: RekeySample[] = [];
  for (let run = 1; run <= o.runs; run++) {
    const c = await line(3600);
    try {
      const from = c.podsOn(1)[0]!;
      const targets = [['direct', 2], ['one relay', 3], ['two relays', 4]] as const;
      // Pings interleaved over the three paths (3 passes of 100), so start-up activity or a
      // noisy moment does not land on one path only.
      // n1 reaches n2 directly and n3, n4 through relays (nftables cut the other pairs): checked
      // from n1's status before and after the measurements, so no figure belongs to another path.
      const onPaths = () => c.expectPaths(0, { n2: 'direct', n3: 'relay', n4: 'relay' }, `run ${run} paths from n1`);
      await onPaths();
      const pings = new Map<string, { avg: number[]; p99: number[] }>(targets.map(([p]) => [p, { avg: [], p99: [] }]));
      for (const [, to] of targets) await ping(c.lab, from.ns, c.podsOn(to)[0]!.ipv4!, { count: 20, intervalS: 0.01 });
      for (let pass = 0; pass < 3; pass++) {
        for (const [path, to] of targets) {
          const p = await ping(c.lab, from.ns, c.podsOn(to)[0]!.ipv4!, { count: 100, intervalS: 0.005 });
          pings.get(path)!.avg.push(p.avgMs);
          pings.get(path)!.p99.push(p.p99Ms);
        }
      }
      for (const [path, to] of targets) {
        const dst = c.podsOn(to)[0]!;
        const t = await iperf3Tcp(c.lab, dst.ns, dst.ipv4!, from.ns, { seconds: o.seconds });
        const pg = pings.get(path)!;
        const s = { path, tcpGbps: t.gbps, pingAvgMs: median(pg.avg), pingP99Ms: median(pg.p99) };
        paths.push(s);
        o.log(`run ${run} ${path}: tcp ${fmt(t.gbps)} Gbit/s, ping ${fmt(s.pingAvgMs, 3)} (p99 ${fmt(s.pingP99Ms, 3)}) ms`);
      }
      await onPaths();
    } finally {
      await c.destroy();
    }
    const k = await line(2);
    try {
      const [from, to] = [k.podsOn(1)[0]!, k.podsOn(4)[0]!];
      const n4 = (await k.status(3)).name;
      const count = async () => (await k.status(0)).mesh.keys.find((x) => x.peer === n4)?.rekeys ?? 0;
      await k.expectPaths(0, { n4: 'relay' }, `rekey run ${run}, n1 to n4`);
      const before = await count();
      let survived = true;
      let t = { gbps: 0, intervalsGbps: [0] };
      try {
        t = await iperf3Tcp(k.lab, to.ns, to.ipv4!, from.ns, { seconds: o.seconds });
      } catch (err) {
        survived = false;
        o.log(`rekey run ${run}: the TCP stream failed: ${String(err)}`);
      }
      const r: RekeySample = { rekeys: (await count()) - before, seconds: o.seconds, gbps: t.gbps, minIntervalGbps: Math.min(...t.intervalsGbps), survived };
      rekeys.push(r);
      await k.expectPaths(0, { n4: 'relay' }, `rekey run ${run}, n1 to n4`);
      o.log(`run ${run} rekey every 2 s: ${r.rekeys} rekeys in ${o.seconds} s, tcp ${fmt(r.gbps)} Gbit/s, slowest second ${fmt(r.minIntervalGbps)} Gbit/s, ${survived ? 'connection kept' : 'CONNECTION LOST'}`);
    } finally {
      await k.destroy();
    }
  }
  const summary = (['direct', 'one relay', 'two relays'] as const).map((path) => {
    const s = paths.filter((p) => p.path === path);
    return { path, tcpGbps: median(s.map((x) => x.tcpGbps)), pingAvgMs: median(s.map((x) => x.pingAvgMs)), pingP99Ms: median(s.map((x) => x.pingP99Ms)) };
  });
  const direct = summary[0]!;
  const rows = summary.map(
    (s) =>
      `| ${s.path} | ${fmt(s.tcpGbps)} · ${Math.round((100 * s.tcpGbps) / direct.tcpGbps)}% | ${fmt(s.pingAvgMs, 3)} / ${fmt(s.pingP99Ms, 3)} · ×${fmt(s.pingAvgMs / direct.pingAvgMs, 1)} |`,
  );
  const rk = rekeys.map((r) => `| ${r.rekeys} in ${r.seconds} s | ${fmt(r.gbps)} | ${fmt(r.minIntervalGbps)} | ${r.survived ? 'yes' : 'NO'} |`);
  const markdown = [
    '| path (encrypted, 4-node line) | TCP 1 stream, Gbit/s · % of direct | ping avg / p99 ms · × direct |',
    '|---|---|---|',
    ...rows,
    '',
    '| rekeys (every 2 s) under TCP n1 → n4 | Gbit/s | slowest second, Gbit/s | connection kept |',
    '|---|---|---|---|',
    ...rk,
  ].join('\n');
  const goals = [
    rekeys.every((r) => r.survived && r.rekeys >= 1 && r.minIntervalGbps > 0)
      ? 'met: rekey under a running TCP stream loses no connection'
      : 'MISSED: rekey under a running TCP stream loses no connection',
  ];
  return { json: { paths, rekeys, summary }, markdown, goals };
}
