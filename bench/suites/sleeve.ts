/**
 * Sleeve suite (issue 3): weft's userspace data path against kernel VXLAN on the same lab, in
 * one run. Kernel VXLAN is measured first and last; ratios use the mean of the two.
 *
 * Per variant: TCP 1 stream and 4 streams (iperf3), 64-byte UDP delivered packets per second
 * (iperf3 -u -l 64 -b 0), ping avg and p99 (ping -i 0.005), router CPU and peak RSS during the
 * single-stream TCP test.
 */
import { Lab, WeftCluster, iperf3Tcp, iperf3Udp, ping, type LabPod } from '../../lab/index.js';
import { sampleWhile } from '../procstat.js';
import { fmt, median, pct } from '../stats.js';

export interface SleeveOptions {
  runs: number;
  seconds: number;
  brNetfilter: boolean;
  log: (line: string) => void;
}

export interface Sample {
  variant: string;
  run: number;
  tcp1Gbps: number;
  tcp4Gbps: number;
  tcp1Retransmits: number;
  udp64Kpps: number;
  udp64OfferedKpps: number;
  pingAvgMs: number;
  pingP99Ms: number;
  routerCpuPct: number[];
  routerRssMaxMB: number[];
}

export interface Bed {
  lab: Lab;
  client: LabPod;
  server: LabPod;
  pids: number[];
  /** Throws when a router carried the variant's traffic anywhere but on the sleeve. */
  onSleeve?: () => Promise<void>;
  destroy(): Promise<void>;
}

const VARIANTS = ['vxlan', 'weft-plaintext', 'weft-encrypted', 'weft-per-frame'] as const;
type Variant = (typeof VARIANTS)[number];

export async function vxlanBed(o: SleeveOptions): Promise<Bed> {
  const lab = await Lab.create({ nodes: 2, brNetfilter: o.brNetfilter });
  try {
    const pods: LabPod[] = [];
    for (const node of lab.nodes) {
      const i = node.index + 1;
      const pod = await lab.addPod(node, { ipv4: `10.40.${i}.2/16`, mtu: 1450 });
      const peer = lab.nodes.find((n) => n !== node)!;
      const ip = (...args: string[]) => lab.exec(node.ns, ['ip', ...args]);
      await ip('link', 'add', 'vx0', 'type', 'vxlan', 'id', '42', 'local', node.address, 'dev', 'eth0', 'dstport', '4789', 'nolearning');
      await ip('link', 'set', 'vx0', 'mtu', '1450', 'master', 'weft', 'up');
      await lab.exec(node.ns, ['bridge', 'fdb', 'append', '00:00:00:00:00:00', 'dev', 'vx0', 'dst', peer.address]);
      pods.push(pod);
    }
    return { lab, client: pods[0]!, server: pods[1]!, pids: [], destroy: () => lab.destroy() };
  } catch (err) {
    await lab.destroy();
    throw err;
  }
}

async function weftBed(variant: Variant, o: SleeveOptions): Promise<Bed> {
  const c = await WeftCluster.start({
    nodes: 2,
    plaintext: variant === 'weft-plaintext',
    vnetHdr: variant !== 'weft-per-frame',
    brNetfilter: o.brNetfilter,
    // The suite measures the sleeve: a plaintext cluster would otherwise qualify for the kernel path.
    extraArgs: ['--log-level', 'warn', '--fastpath', 'off'],
  });
  try {
    await c.waitEstablished();
    await c.waitPaths(() => 'direct');
    const pids = [(await c.status(0)).pid, (await c.status(1)).pid];
    const onSleeve = async (): Promise<void> => {
      await c.expectPaths(0, { n2: 'direct' }, `${variant} on the direct sleeve`);
      await c.expectPaths(1, { n1: 'direct' }, `${variant} on the direct sleeve`);
    };
    return { lab: c.lab, client: c.pods[0]!, server: c.pods[1]!, pids, onSleeve, destroy: () => c.destroy() };
  } catch (err) {
    await c.destroy();
    throw err;
  }
}

async function measure(variant: Variant, run: number, o: SleeveOptions): Promise<Sample> {
  const bed = variant === 'vxlan' ? await vxlanBed(o) : await weftBed(variant, o);
  try {
    const { lab, client, server } = bed;
    await ping(lab, client.ns, server.ipv4!, { count: 20, intervalS: 0.01 }); // ARP, warm-up
    const p = await ping(lab, client.ns, server.ipv4!, { count: 300, intervalS: 0.005 });
    const tcp1 = await sampleWhile(bed.pids, iperf3Tcp(lab, server.ns, server.ipv4!, client.ns, { seconds: o.seconds }));
    const tcp4 = await iperf3Tcp(lab, server.ns, server.ipv4!, client.ns, { seconds: o.seconds, streams: 4 });
    const udp = await iperf3Udp(lab, server.ns, server.ipv4!, client.ns, { seconds: Math.max(3, o.seconds - 2), size: 64, bitrate: '0' });
    if (bed.onSleeve !== undefined) await bed.onSleeve();
    const s: Sample = {
      variant,
      run,
      tcp1Gbps: tcp1.result.gbps,
      tcp4Gbps: tcp4.gbps,
      tcp1Retransmits: tcp1.result.retransmits,
      udp64Kpps: udp.receivedPps / 1000,
      udp64OfferedKpps: udp.sentPps / 1000,
      pingAvgMs: p.avgMs,
      pingP99Ms: p.p99Ms,
      routerCpuPct: tcp1.cpuPct,
      routerRssMaxMB: tcp1.rssMaxMB,
    };
    o.log(
      `run ${run} ${variant}: tcp ${fmt(s.tcp1Gbps)} / x4 ${fmt(s.tcp4Gbps)} Gbit/s, udp64 ${fmt(s.udp64Kpps, 1)} kpps, ` +
        `ping ${fmt(s.pingAvgMs, 3)} (p99 ${fmt(s.pingP99Ms, 3)}) ms, cpu ${s.routerCpuPct.map((x) => Math.round(x)).join('/')}%, ` +
        `rss ${s.routerRssMaxMB.map((x) => x.toFixed(1)).join('/')} MB`,
    );
    return s;
  } finally {
    await bed.destroy();
  }
}

export interface SleeveSummary {
  variant: string;
  tcp1Gbps: number;
  tcp4Gbps: number;
  udp64Kpps: number;
  pingAvgMs: number;
  pingP99Ms: number;
  routerCpuPct: number;
  routerRssMaxMB: number;
  tcp1Ratio: number;
  tcp4Ratio: number;
  udp64Ratio: number;
  pingAddedMs: number;
}

export async function runSleeveSuite(o: SleeveOptions): Promise<{ samples: Sample[]; summary: SleeveSummary[]; markdown: string; goals: string[] }> {
  const samples: Sample[] = [];
  for (let run = 1; run <= o.runs; run++) {
    samples.push(await measure('vxlan', run, o));
    for (const v of VARIANTS.slice(1)) samples.push(await measure(v, run, o));
    samples.push(await measure('vxlan', run, o));
  }
  // Per run, the VXLAN reference is the mean of its first and last measurement; a variant's
  // ratio is taken per run, and the table shows medians over runs.
  const ref = (run: number, f: (s: Sample) => number) => {
    const v = samples.filter((s) => s.run === run && s.variant === 'vxlan').map(f);
    return v.reduce((a, b) => a + b, 0) / v.length;
  };
  const summary: SleeveSummary[] = VARIANTS.map((variant) => {
    const mine = samples.filter((s) => s.variant === variant);
    const perRun = (f: (s: Sample) => number) => median(mine.map(f));
    const ratio = (f: (s: Sample) => number) => median(mine.map((s) => f(s) / ref(s.run, f)));
    return {
      variant,
      tcp1Gbps: perRun((s) => s.tcp1Gbps),
      tcp4Gbps: perRun((s) => s.tcp4Gbps),
      udp64Kpps: perRun((s) => s.udp64Kpps),
      pingAvgMs: perRun((s) => s.pingAvgMs),
      pingP99Ms: perRun((s) => s.pingP99Ms),
      routerCpuPct: perRun((s) => s.routerCpuPct.reduce((a, b) => a + b, 0)),
      routerRssMaxMB: perRun((s) => Math.max(0, ...s.routerRssMaxMB)),
      tcp1Ratio: ratio((s) => s.tcp1Gbps),
      tcp4Ratio: ratio((s) => s.tcp4Gbps),
      udp64Ratio: ratio((s) => s.udp64Kpps),
      pingAddedMs: median(mine.map((s) => s.pingAvgMs - ref(s.run, (x) => x.pingAvgMs))),
    };
  });
  const row = (s: SleeveSummary) =>
    `| ${s.variant} | ${fmt(s.tcp1Gbps)} · ${pct(s.tcp1Ratio, 1)} | ${fmt(s.tcp4Gbps)} · ${pct(s.tcp4Ratio, 1)} | ${fmt(s.udp64Kpps, 1)} · ${pct(s.udp64Ratio, 1)} | ` +
    `${fmt(s.pingAvgMs, 3)} / ${fmt(s.pingP99Ms, 3)}${s.variant === 'vxlan' ? '' : ` (+${fmt(s.pingAddedMs, 3)})`} | ` +
    `${s.variant === 'vxlan' ? 'kernel' : `${Math.round(s.routerCpuPct)}%`} | ${s.variant === 'vxlan' ? '–' : fmt(s.routerRssMaxMB, 1)} |`;
  const markdown = [
    '| variant | TCP 1 stream, Gbit/s · % of VXLAN | TCP 4 streams | 64 B UDP delivered, kpps · % | ping avg / p99 ms (added) | routers CPU (sum, TCP 1) | router RSS max, MB |',
    '|---|---|---|---|---|---|---|',
    ...summary.map(row),
  ].join('\n');
  const by = (v: string) => summary.find((s) => s.variant === v)!;
  const enc = by('weft-encrypted');
  const plain = by('weft-plaintext');
  const check = (ok: boolean, text: string) => `${ok ? 'met' : 'MISSED'}: ${text}`;
  const goals = [
    check(enc.tcp1Ratio >= 0.35, `encrypted TCP ≥ 35% of VXLAN: ${pct(enc.tcp1Ratio, 1)}`),
    check(plain.tcp1Ratio >= 0.45, `plaintext TCP ≥ 45% of VXLAN: ${pct(plain.tcp1Ratio, 1)}`),
    check(enc.udp64Ratio >= 0.55, `64 B encrypted ≥ 55% of VXLAN delivered: ${pct(enc.udp64Ratio, 1)}`),
    check(enc.pingAddedMs <= 0.18, `added ping ≤ 0.18 ms over VXLAN: +${fmt(enc.pingAddedMs, 3)} ms (encrypted)`),
    check(
      Math.max(enc.routerRssMaxMB, plain.routerRssMaxMB, by('weft-per-frame').routerRssMaxMB) <= 64,
      `RSS ≤ 64 MB under load: ${fmt(Math.max(enc.routerRssMaxMB, plain.routerRssMaxMB, by('weft-per-frame').routerRssMaxMB), 1)} MB (largest)`,
    ),
  ];
  return { samples, summary, markdown, goals };
}
