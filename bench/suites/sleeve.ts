/**
 * Sleeve suite (issue 3): weft's userspace data path against kernel VXLAN on the same lab, in
 * one run. Kernel VXLAN is measured first and last; ratios use the mean of the two. Beside weft
 * runs its strongest userspace peer, wireguard-go with TUN offloads and UDP GSO/GRO
 * (./wireguard-go.ts), when it can be had (else the suite says why and goes on without it), and
 * the floor of any userspace tunnel here, a minimal C TAP ⇄ UDP forwarder (./userspace-floor.ts).
 *
 * Per variant: TCP 1 stream and 4 streams (iperf3), 64-byte UDP delivered packets per second
 * (iperf3 -u -l 64 -b 0), ping avg and p99 (ping -i 0.005, 300 pings) in steady state: after a
 * 2-second TCP stream, so a router's data path runs optimised code, as it does after its first
 * few thousand packets (the ping right after start, in code V8 has not optimised yet, is kept as
 * `pingColdAvgMs` and printed in the log line); during the single-stream TCP test,
 * the tunnel's CPU (weft routers or wireguard-go daemons, both nodes), their peak RSS, and the
 * whole box's busy CPU from /proc/stat (100% = one vCPU; the iperf3 ends and the kernel's work
 * included), each also per Gbit/s of that test. During the 4-stream test: reordering, loss and
 * duplicates as the two pods' TCP saw them (nstat counters, ../nstat.ts says which), and the weft
 * routers' receive drops of replayed or out-of-window messages and fragments (`weft status`).
 */
import { Lab, WeftCluster, iperf3Tcp, iperf3Udp, ping, type LabPod } from '../../lab/index.js';
import { sampleWhile } from '../procstat.js';
import { withTcpQuality, type TcpQuality } from '../nstat.js';
import { fmt, median, pct } from '../stats.js';
import type { Bed } from './sleeve-bed.js';
import { buildFloorForwarder, floorBed, type FloorForwarder } from './userspace-floor.js';
import { findWireguardGo, wireguardGoBed, type WireguardGo } from './wireguard-go.js';

export type { Bed } from './sleeve-bed.js';

export interface SleeveOptions {
  runs: number;
  seconds: number;
  brNetfilter: boolean;
  /** Run wireguard-go beside weft when it can be had (default true). */
  peers?: boolean;
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
  /** The ping right after the bed started, before any bulk traffic (V8 still runs the data path unoptimised). */
  pingColdAvgMs: number;
  routerCpuPct: number[];
  routerRssMaxMB: number[];
  /** The whole box's busy CPU during the TCP 1-stream test, 100% = one vCPU. */
  boxCpuPct: number;
  /** TCP's counts during the 4-stream test (sender: the client pod, receiver: the server pod). */
  tcp4Quality: TcpQuality;
  /** weft only: the routers' receive drops during the 4-stream test, summed over both (ROUTER_RX_DROPS). */
  routerRxDrops?: Record<string, number>;
}

/** `weft status` drops that mean a replayed, duplicated or too-late message or fragment. */
export const ROUTER_RX_DROPS = ['rx.replay', 'reassembly.fragDuplicate', 'reassembly.fragTimeout', 'reassembly.fragEvicted'] as const;

const VARIANTS = ['vxlan', 'weft-plaintext', 'weft-encrypted', 'weft-per-frame', 'wireguard-go', 'userspace-floor'] as const;
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
    const rxDrops = async (): Promise<Record<string, number>> => {
      const sum: Record<string, number> = {};
      for (const i of [0, 1]) {
        const drops = (await c.status(i)).drops;
        for (const k of ROUTER_RX_DROPS) sum[k] = (sum[k] ?? 0) + (drops[k] ?? 0);
      }
      return sum;
    };
    return { lab: c.lab, client: c.pods[0]!, server: c.pods[1]!, pids, onSleeve, rxDrops, destroy: () => c.destroy() };
  } catch (err) {
    await c.destroy();
    throw err;
  }
}

/** The wireguard-go binary when it runs, and the offloads its devices had in the last run; the floor forwarder when it was built. */
interface PeerContext {
  wg?: WireguardGo;
  offloads: Record<string, string>[];
  floor?: FloorForwarder;
}

async function makeBed(variant: Variant, o: SleeveOptions, peer: PeerContext): Promise<Bed> {
  if (variant === 'vxlan') return vxlanBed(o);
  if (variant === 'userspace-floor') return floorBed(o, peer.floor!);
  if (variant !== 'wireguard-go') return weftBed(variant, o);
  const bed = await wireguardGoBed(o, peer.wg!);
  peer.offloads = bed.offloads;
  bed.offloads.forEach((f, i) => {
    const off = Object.entries(f).filter(([, v]) => v !== 'on');
    if (off.length > 0 || Object.keys(f).length === 0) o.log(`wireguard-go on n${i + 1}: offloads not all on: ${JSON.stringify(f)}`);
  });
  return bed;
}

function diff(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.keys(b).map((k) => [k, (b[k] ?? 0) - (a[k] ?? 0)]));
}

async function measure(variant: Variant, run: number, o: SleeveOptions, peer: PeerContext): Promise<Sample> {
  const bed = await makeBed(variant, o, peer);
  try {
    const { lab, client, server } = bed;
    await ping(lab, client.ns, server.ipv4!, { count: 20, intervalS: 0.01 }); // ARP
    const cold = await ping(lab, client.ns, server.ipv4!, { count: 300, intervalS: 0.005 });
    await iperf3Tcp(lab, server.ns, server.ipv4!, client.ns, { seconds: 2 }); // steady state (see the file comment)
    const p = await ping(lab, client.ns, server.ipv4!, { count: 300, intervalS: 0.005 });
    const tcp1 = await sampleWhile(bed.pids, iperf3Tcp(lab, server.ns, server.ipv4!, client.ns, { seconds: o.seconds }));
    const rx0 = bed.rxDrops === undefined ? undefined : await bed.rxDrops();
    const q4 = await withTcpQuality(lab, client.ns, server.ns, () => iperf3Tcp(lab, server.ns, server.ipv4!, client.ns, { seconds: o.seconds, streams: 4 }));
    const tcp4 = q4.result;
    const routerRxDrops = rx0 === undefined ? undefined : diff(rx0, await bed.rxDrops!());
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
      pingColdAvgMs: cold.avgMs,
      routerCpuPct: tcp1.cpuPct,
      routerRssMaxMB: tcp1.rssMaxMB,
      boxCpuPct: tcp1.boxCpuPct,
      tcp4Quality: q4.quality,
      ...(routerRxDrops === undefined ? {} : { routerRxDrops }),
    };
    const q = s.tcp4Quality;
    o.log(
      `run ${run} ${variant}: tcp ${fmt(s.tcp1Gbps)} / x4 ${fmt(s.tcp4Gbps)} Gbit/s, udp64 ${fmt(s.udp64Kpps, 1)} kpps, ` +
        `ping ${fmt(s.pingAvgMs, 3)} (p99 ${fmt(s.pingP99Ms, 3)}; cold ${fmt(s.pingColdAvgMs, 3)}) ms, cpu ${s.routerCpuPct.map((x) => Math.round(x)).join('/')}% (box ${Math.round(s.boxCpuPct)}%), ` +
        `rss ${s.routerRssMaxMB.map((x) => x.toFixed(1)).join('/')} MB; x4: sent ${q.sent}, retrans ${q.retransmitted}, reorder ${q.reordering}, ` +
        `ofo ${q.outOfOrder}, dup ${q.duplicates}${routerRxDrops === undefined ? '' : `, router ${JSON.stringify(routerRxDrops)}`}`,
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
  /** Tunnel CPU (weft routers or wireguard-go, both nodes) during TCP 1 stream; NaN for VXLAN. */
  routerCpuPct: number;
  routerRssMaxMB: number;
  boxCpuPct: number;
  /** Box CPU % (100 = one vCPU) per Gbit/s of the TCP 1-stream test: median of the runs' quotients. */
  boxCpuPerGbps: number;
  /** Tunnel CPU % per Gbit/s of the TCP 1-stream test; NaN for VXLAN. */
  routerCpuPerGbps: number;
  tcp1Ratio: number;
  tcp4Ratio: number;
  udp64Ratio: number;
  pingAddedMs: number;
  /** Medians over runs of the 4-stream test's TCP counts. */
  tcp4Quality: TcpQuality;
  /** Medians over runs of the routers' receive drops (weft only). */
  routerRxDrops?: Record<string, number>;
}

/** Per-variant medians and ratios to the same run's VXLAN (mean of its first and last measurement). */
export function summarizeSleeve(samples: readonly Sample[]): SleeveSummary[] {
  const ref = (run: number, f: (s: Sample) => number) => {
    const v = samples.filter((s) => s.run === run && s.variant === 'vxlan').map(f);
    return v.reduce((a, b) => a + b, 0) / v.length;
  };
  const variants = [...new Set(samples.map((s) => s.variant))].sort((a, b) => VARIANTS.indexOf(a as Variant) - VARIANTS.indexOf(b as Variant));
  return variants.map((variant) => {
    const mine = samples.filter((s) => s.variant === variant);
    const perRun = (f: (s: Sample) => number) => median(mine.map(f));
    const ratio = (f: (s: Sample) => number) => median(mine.map((s) => f(s) / ref(s.run, f)));
    const tunnel = (s: Sample) => (variant === 'vxlan' ? NaN : s.routerCpuPct.reduce((a, b) => a + b, 0));
    const q = (k: keyof TcpQuality) => perRun((s) => s.tcp4Quality[k]);
    const withDrops = mine.filter((s) => s.routerRxDrops !== undefined);
    const summary: SleeveSummary = {
      variant,
      tcp1Gbps: perRun((s) => s.tcp1Gbps),
      tcp4Gbps: perRun((s) => s.tcp4Gbps),
      udp64Kpps: perRun((s) => s.udp64Kpps),
      pingAvgMs: perRun((s) => s.pingAvgMs),
      pingP99Ms: perRun((s) => s.pingP99Ms),
      routerCpuPct: perRun(tunnel),
      routerRssMaxMB: perRun((s) => Math.max(0, ...s.routerRssMaxMB)),
      boxCpuPct: perRun((s) => s.boxCpuPct),
      boxCpuPerGbps: perRun((s) => s.boxCpuPct / s.tcp1Gbps),
      routerCpuPerGbps: perRun((s) => tunnel(s) / s.tcp1Gbps),
      tcp1Ratio: ratio((s) => s.tcp1Gbps),
      tcp4Ratio: ratio((s) => s.tcp4Gbps),
      udp64Ratio: ratio((s) => s.udp64Kpps),
      pingAddedMs: median(mine.map((s) => s.pingAvgMs - ref(s.run, (x) => x.pingAvgMs))),
      tcp4Quality: { sent: q('sent'), retransmitted: q('retransmitted'), reordering: q('reordering'), outOfOrder: q('outOfOrder'), duplicates: q('duplicates') },
    };
    if (withDrops.length > 0) summary.routerRxDrops = Object.fromEntries(ROUTER_RX_DROPS.map((k) => [k, median(withDrops.map((s) => s.routerRxDrops![k] ?? 0))]));
    return summary;
  });
}

const int = (x: number): string => (Number.isFinite(x) ? String(Math.round(x)) : '–');

/** The main table: throughput, ping, CPU (and per Gbit/s), RSS, each with its ratio to VXLAN. */
export function sleeveTable(summary: readonly SleeveSummary[]): string {
  const row = (s: SleeveSummary) => {
    const kernel = s.variant === 'vxlan';
    return (
      `| ${s.variant} | ${fmt(s.tcp1Gbps)} · ${pct(s.tcp1Ratio, 1)} | ${fmt(s.tcp4Gbps)} · ${pct(s.tcp4Ratio, 1)} | ${fmt(s.udp64Kpps, 1)} · ${pct(s.udp64Ratio, 1)} | ` +
      `${fmt(s.pingAvgMs, 3)} / ${fmt(s.pingP99Ms, 3)}${kernel ? '' : ` (+${fmt(s.pingAddedMs, 3)})`} | ` +
      `${int(s.boxCpuPct)}% · ${fmt(s.boxCpuPerGbps, 1)} | ${kernel ? 'kernel' : `${int(s.routerCpuPct)}% · ${fmt(s.routerCpuPerGbps, 1)}`} | ${kernel ? '–' : fmt(s.routerRssMaxMB, 1)} |`
    );
  };
  return [
    '| variant | TCP 1 stream, Gbit/s · % of VXLAN | TCP 4 streams | 64 B UDP delivered, kpps · % | ping avg / p99 ms (added) | box CPU (TCP 1) · per Gbit/s | tunnel CPU (both nodes, TCP 1) · per Gbit/s | tunnel RSS max, MB |',
    '|---|---|---|---|---|---|---|---|',
    ...summary.map(row),
  ].join('\n');
}

/** The second table: reordering, loss and duplicates under 4 streams (TCP's counts, and weft's routers'). */
export function qualityTable(summary: readonly SleeveSummary[]): string {
  const perMille = (n: number, of: number) => (of > 0 ? ` (${fmt((n / of) * 1000, 2)}‰)` : '');
  const row = (s: SleeveSummary) => {
    const q = s.tcp4Quality;
    const d = s.routerRxDrops;
    const router = d === undefined ? '–' : `${int(d['rx.replay'] ?? NaN)} / ${int(d['reassembly.fragDuplicate'] ?? NaN)} / ${int((d['reassembly.fragTimeout'] ?? 0) + (d['reassembly.fragEvicted'] ?? 0))}`;
    return (
      `| ${s.variant} | ${int(q.sent)} | ${int(q.retransmitted)}${perMille(q.retransmitted, q.sent)} | ${int(q.reordering)} | ` +
      `${int(q.outOfOrder)}${perMille(q.outOfOrder, q.sent)} | ${int(q.duplicates)} | ${router} |`
    );
  };
  return [
    '| variant (TCP 4 streams) | segments sent | retransmitted (loss) | reordering seen by the sender | out of order at the receiver | duplicates at the receiver | weft routers: replayed or out-of-window / duplicate fragments / fragments given up |',
    '|---|---|---|---|---|---|---|',
    ...summary.map(row),
  ].join('\n');
}

export interface SleeveResult {
  samples: Sample[];
  summary: SleeveSummary[];
  /** The main table. */
  markdown: string;
  /** Reordering, loss and duplicates under 4 streams. */
  qualityMarkdown: string;
  /** wireguard-go: the version and its offloads, or why it did not run. */
  peers: { wireguardGo: { version: string; offloads: Record<string, string>[] } | { skipped: string } };
  notes: string[];
  goals: string[];
}

export async function runSleeveSuite(o: SleeveOptions): Promise<SleeveResult> {
  const peer: PeerContext = { offloads: [] };
  let wgInfo: SleeveResult['peers']['wireguardGo'];
  if (o.peers === false) {
    wgInfo = { skipped: 'not asked for (--no-peers)' };
  } else {
    const found = findWireguardGo();
    if ('why' in found) {
      wgInfo = { skipped: found.why };
      o.log(`wireguard-go: not run: ${found.why}`);
    } else {
      peer.wg = found.found;
      wgInfo = { version: found.found.version, offloads: [] };
      o.log(`wireguard-go ${found.found.version}: ${found.found.binary}`);
    }
  }
  let floorInfo: string;
  if (o.peers === false) {
    floorInfo = 'not asked for (--no-peers)';
  } else {
    const built = buildFloorForwarder();
    if ('why' in built) floorInfo = built.why;
    else {
      peer.floor = built.found;
      floorInfo = '';
    }
  }
  const samples: Sample[] = [];
  const peerFailures: string[] = [];
  try {
    for (let run = 1; run <= o.runs; run++) {
      samples.push(await measure('vxlan', run, o, peer));
      for (const v of VARIANTS.slice(1)) {
        if (v !== 'wireguard-go' && v !== 'userspace-floor') {
          samples.push(await measure(v, run, o, peer));
          continue;
        }
        if (v === 'wireguard-go' ? peer.wg === undefined : peer.floor === undefined) continue;
        try {
          // Peers and the floor are optional: a failure costs its row, not the run.
          samples.push(await measure(v, run, o, peer));
        } catch (err) {
          const why = `${v} in run ${run}: ${(err as Error).message}`;
          peerFailures.push(why);
          o.log(`failed: ${why}`);
        }
      }
      samples.push(await measure('vxlan', run, o, peer));
    }
  } finally {
    peer.floor?.remove();
  }
  if ('version' in wgInfo) wgInfo.offloads = peer.offloads;
  const summary = summarizeSleeve(samples);
  const by = (v: string) => summary.find((s) => s.variant === v)!;
  const enc = by('weft-encrypted');
  const plain = by('weft-plaintext');
  const check = (ok: boolean, text: string) => `${ok ? 'met' : 'MISSED'}: ${text}`;
  // Issue 20's goals (ratios to VXLAN in the same run).
  const largestRss = Math.max(enc.routerRssMaxMB, plain.routerRssMaxMB, by('weft-per-frame').routerRssMaxMB);
  const goals = [
    check(enc.tcp1Ratio >= 0.5, `encrypted TCP 1 stream ≥ 50% of VXLAN: ${pct(enc.tcp1Ratio, 1)}`),
    check(enc.tcp4Ratio >= 0.5, `encrypted TCP 4 streams ≥ 50% of VXLAN: ${pct(enc.tcp4Ratio, 1)}`),
    check(plain.tcp1Ratio >= 0.7, `plaintext sleeve TCP 1 stream ≥ 70% of VXLAN: ${pct(plain.tcp1Ratio, 1)}`),
    check(enc.udp64Ratio >= 0.9, `64 B encrypted ≥ 90% of VXLAN delivered: ${pct(enc.udp64Ratio, 1)}`),
    check(enc.pingAddedMs <= 0.15, `added ping ≤ 0.15 ms over VXLAN: +${fmt(enc.pingAddedMs, 3)} ms (encrypted, steady state)`),
    check(largestRss <= 64, `RSS ≤ 64 MB under load: ${fmt(largestRss, 1)} MB (largest)`),
  ];
  const wgRow = summary.find((s) => s.variant === 'wireguard-go');
  if (wgRow !== undefined) {
    // ../shared/notes/peers.md: weft's goal is twice the offloaded wireguard-go on the same box.
    const x = (a: number, b: number) => `${fmt(a / b, 1)}×`;
    goals.push(
      check(enc.tcp1Gbps >= 2 * wgRow.tcp1Gbps, `encrypted TCP 1 stream ≥ 2× wireguard-go: ${x(enc.tcp1Gbps, wgRow.tcp1Gbps)} (4 streams ${x(enc.tcp4Gbps, wgRow.tcp4Gbps)}, 64 B UDP ${x(enc.udp64Kpps, wgRow.udp64Kpps)})`),
    );
  }
  const notes = [
    'Box CPU: the whole machine\'s busy time from /proc/stat during the TCP 1-stream test (both pods\' iperf3, both tunnels, the kernel), 100% = one vCPU; ' +
      '"per Gbit/s" divides it (and the tunnel\'s CPU) by that test\'s throughput, per run (median shown). Kernel VXLAN\'s tunnel work is softirq time, counted only in the box column.',
    'version' in wgInfo
      ? `wireguard-go ${wgInfo.version}, routed (L3) with MTU 1420, the lab's pods in /24s; offloads of its TUN devices (ethtool -k): ${wgInfo.offloads.map((f, i) => `n${i + 1} ${Object.entries(f).map(([k, v]) => `${k} ${v}`).join(', ')}`).join('; ') || 'not read'}.`
      : `wireguard-go not run: ${wgInfo.skipped}.`,
    floorInfo === ''
      ? 'userspace-floor: bench/floor/tap-udp-forward.c, a TAP ⇄ UDP forwarder doing the least a userspace tunnel can (one frame per system call, no crypto, no batching, no offloads; pods at MTU 1400): ' +
        'its added ping is what waking a process and crossing user space four times per round trip costs on this machine, before any tunnel\'s own work. Not a goal\'s reference.'
      : `userspace-floor not run: ${floorInfo}.`,
    ...peerFailures.map((f) => `${f} (its row leaves that run out).`),
    'Second table: ‰ of the segments sent. A retransmission that arrived anyway is also a duplicate at the receiver (so retransmitted − duplicates ≈ segments really lost). ' +
      'The routers\' "replayed or out-of-window" count is the receive replay window\'s (rx.replay); a plaintext sleeve keeps no window, so it is 0 there by construction.',
  ];
  return { samples, summary, markdown: sleeveTable(summary), qualityMarkdown: qualityTable(summary), peers: { wireguardGo: wgInfo }, notes, goals };
}
