/**
 * Fast-path suite (issue 5): weft's kernel fast path against raw kernel VXLAN in the same run, and
 * the per-peer switch to the sleeve and back.
 *
 * Per run: raw VXLAN (2 nodes, a bridge and a VXLAN device, MTU 1450), then a 3-node weft cluster
 * whose underlay is a trusted subnet (every pair on the fast path), then raw VXLAN again; the
 * ratio uses the mean of the two references. On the weft cluster: TCP 1 stream and ping n1 → n2,
 * the router TAP bytes during the TCP test (frames that entered Node), then `timePathSwitch`:
 * cut the VXLAN port n1 ↔ n2, fallback time, heal, return time, pings lost on each switch.
 */
import { WeftCluster, iperf3Tcp, ping, timePathSwitch, type PathSwitchTiming } from '../../lab/index.js';
import { fmt, median } from '../stats.js';
import { vxlanBed } from './sleeve.js';

export interface FastPathOptions {
  runs: number;
  seconds: number;
  log: (line: string) => void;
}

const VXLAN_PORT = 6785; // the routers' default listen port 6784, + 1

interface ThroughputSample {
  tcp1Gbps: number;
  pingAvgMs: number;
  pingP99Ms: number;
}

export interface FastPathRun {
  run: number;
  vxlan: ThroughputSample[];
  fastpath: ThroughputSample & { tapBytes: number; overlayMtu: number };
  switch: PathSwitchTiming;
}

async function throughput(lab: WeftCluster['lab'], client: { ns: string }, server: { ns: string; ipv4?: string }, seconds: number): Promise<ThroughputSample> {
  await ping(lab, client.ns, server.ipv4!, { count: 20, intervalS: 0.01 });
  const p = await ping(lab, client.ns, server.ipv4!, { count: 300, intervalS: 0.005 });
  const t = await iperf3Tcp(lab, server.ns, server.ipv4!, client.ns, { seconds });
  return { tcp1Gbps: t.gbps, pingAvgMs: p.avgMs, pingP99Ms: p.p99Ms };
}

async function rawVxlan(o: FastPathOptions, run: number): Promise<ThroughputSample> {
  const bed = await vxlanBed({ runs: 1, seconds: o.seconds, brNetfilter: false, log: o.log });
  try {
    const s = await throughput(bed.lab, bed.client, bed.server, o.seconds);
    o.log(`run ${run} raw vxlan: tcp ${fmt(s.tcp1Gbps)} Gbit/s, ping ${fmt(s.pingAvgMs, 3)} (p99 ${fmt(s.pingP99Ms, 3)}) ms`);
    return s;
  } finally {
    await bed.destroy();
  }
}

async function weftFastPath(o: FastPathOptions, run: number): Promise<Omit<FastPathRun, 'run' | 'vxlan'>> {
  const c = await WeftCluster.start({ nodes: 3, extraArgs: ['--log-level', 'warn', '--trusted-subnets', '198.18.0.0/24'] });
  try {
    await c.waitEstablished(45_000);
    await c.waitFastPath();
    const [a, b] = [c.podsOn(1)[0]!, c.podsOn(2)[0]!];
    const tap = async () => (await Promise.all([c.apiStatus(0), c.apiStatus(1)])).reduce((n, s) => n + s.traffic.tap.rxBytes + s.traffic.tap.txBytes, 0);
    // n1 and n2 must carry each other on the kernel path before and after the measurement.
    const onFastPath = async () => {
      await c.expectPaths(0, { n2: 'fastpath' }, `run ${run} weft fast path`);
      await c.expectPaths(1, { n1: 'fastpath' }, `run ${run} weft fast path`);
    };
    await onFastPath();
    const before = await tap();
    const s = await throughput(c.lab, a, b, o.seconds);
    const tapBytes = (await tap()) - before;
    await onFastPath();
    o.log(`run ${run} weft fast path: tcp ${fmt(s.tcp1Gbps)} Gbit/s, ping ${fmt(s.pingAvgMs, 3)} (p99 ${fmt(s.pingP99Ms, 3)}) ms, TAP bytes during the tests ${tapBytes}`);
    const sw = await timePathSwitch(c, 0, 1, { port: VXLAN_PORT, log: (l) => o.log(`run ${run} ${l}`) });
    o.log(
      `run ${run} switch: fallback ${fmt(sw.fallbackMs / 1000)} s (lost ${sw.cutPings.lost}/${sw.cutPings.sent} pings at ${sw.intervalMs} ms), ` +
        `return ${fmt(sw.returnMs / 1000)} s (lost ${sw.healPings.lost}/${sw.healPings.sent})`,
    );
    return { fastpath: { ...s, tapBytes, overlayMtu: c.overlayMtu }, switch: sw };
  } finally {
    await c.destroy();
  }
}

export async function runFastPathSuite(o: FastPathOptions): Promise<{ json: object; markdown: string; goals: string[] }> {
  const runs: FastPathRun[] = [];
  for (let run = 1; run <= o.runs; run++) {
    const first = await rawVxlan(o, run);
    const weft = await weftFastPath(o, run);
    const last = await rawVxlan(o, run);
    runs.push({ run, vxlan: [first, last], ...weft });
  }
  const ref = (r: FastPathRun) => (r.vxlan[0]!.tcp1Gbps + r.vxlan[1]!.tcp1Gbps) / 2;
  const ratio = median(runs.map((r) => r.fastpath.tcp1Gbps / ref(r)));
  const m = {
    vxlanGbps: median(runs.map(ref)),
    fastGbps: median(runs.map((r) => r.fastpath.tcp1Gbps)),
    ratio,
    vxlanPingMs: median(runs.flatMap((r) => r.vxlan.map((v) => v.pingAvgMs))),
    fastPingMs: median(runs.map((r) => r.fastpath.pingAvgMs)),
    fallbackMs: median(runs.map((r) => r.switch.fallbackMs)),
    returnMs: median(runs.map((r) => r.switch.returnMs)),
    maxFallbackMs: Math.max(...runs.map((r) => r.switch.fallbackMs)),
    maxReturnMs: Math.max(...runs.map((r) => r.switch.returnMs)),
  };
  const rows = runs.map(
    (r) =>
      `| ${r.run} | ${fmt(ref(r))} | ${fmt(r.fastpath.tcp1Gbps)} · ${fmt(r.fastpath.tcp1Gbps / ref(r))} | ${r.fastpath.tapBytes} | ` +
      `${fmt(r.switch.fallbackMs / 1000)} s · ${r.switch.cutPings.lost}/${r.switch.cutPings.sent} | ${fmt(r.switch.returnMs / 1000)} s · ${r.switch.healPings.lost}/${r.switch.healPings.sent} |`,
  );
  const markdown = [
    `| run | raw VXLAN TCP, Gbit/s (mean of before/after) | weft fast path TCP · ratio | TAP bytes during the tests | fallback after a cut · pings lost (every ${runs[0]?.switch.intervalMs ?? 20} ms) | return after heal · pings lost |`,
    '|---|---|---|---|---|---|',
    ...rows,
    '',
    `Medians: raw VXLAN ${fmt(m.vxlanGbps)} Gbit/s, fast path ${fmt(m.fastGbps)} Gbit/s (ratio ${fmt(ratio)}); ping ${fmt(m.vxlanPingMs, 3)} ms raw, ` +
      `${fmt(m.fastPingMs, 3)} ms fast path (pod MTU ${runs[0]?.fastpath.overlayMtu ?? '?'} against 1450 raw); fallback ${fmt(m.fallbackMs / 1000)} s, return ${fmt(m.returnMs / 1000)} s.`,
  ].join('\n');
  const check = (ok: boolean, text: string) => `${ok ? 'met' : 'MISSED'}: ${text}`;
  const goals = [
    check(ratio >= 0.95, `fast path TCP ≥ 0.95 × raw kernel VXLAN: ${fmt(ratio)}`),
    check(m.maxFallbackMs <= 1500, `fallback to the sleeve within 1.5 s: worst ${fmt(m.maxFallbackMs / 1000)} s`),
    check(m.maxReturnMs <= 10_000, `return to the fast path within 10 s: worst ${fmt(m.maxReturnMs / 1000)} s`),
  ];
  return { json: { runs, summary: m }, markdown, goals };
}
