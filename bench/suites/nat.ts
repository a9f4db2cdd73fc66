/**
 * NAT suite (issue 18), on the NAT lab (lab/nat-lab.ts): 9 routers, n1 and n2 public (n1 the
 * relay), n3 and n4 behind their own eim NATs, n5 and n6 behind one eim NAT, n7 and n8 behind
 * their own symmetric NATs, n9 behind a cone NAT. Routers know only the public nodes.
 *
 * Per run:
 * - Matrix: every pair of the 36; after a window, the share of pairs on a direct path (both ends),
 *   and of the pairs the NAT kinds allow to be direct (lab/nat-cluster.ts expectedPath). Time to
 *   direct per pair: from the moment both ends first saw each other established (any path, polled
 *   every 100 ms) to the later end's switch to direct (its pathSinceMs), and from the later
 *   router's start.
 * - Failover: n3 ↔ n4 (punched; the relay is n1 or n2, the mesh's choice) under a 50 Mbit/s TCP stream and pings every 10 ms; the direct
 *   path is cut (nftables, both ways): time until both ends are on the relay (their pathSinceMs),
 *   and the outage the pings saw (lost × interval).
 * - Relay throughput: TCP n3 → n4 unlimited over the direct path, then over the relay (direct cut)
 *   in the same run: the ratio.
 */
import type { PeerStatus } from '../../src/api/types.js';
import { expectedPath, MATRIX_NATS, pairTraffic, startNatCluster, waitPairPath, type NatCluster } from '../../lab/nat-cluster.js';
import { iperf3Tcp } from '../../lab/traffic.js';
import { fmt, median, summarize } from '../stats.js';

export interface NatOptions {
  runs: number;
  seconds: number;
  /** How long the matrix gets to settle (default 30 s). */
  windowMs?: number;
  log: (line: string) => void;
}

interface PairSample {
  pair: string;
  expected: 'direct' | 'relay';
  why: string;
  /** Both ends' paths at the end of the window ("direct/direct"). */
  paths: string;
  direct: boolean;
  punched: boolean;
  /** From both ends established to both direct; NaN when never direct. */
  toDirectMs: number;
  /** From the later router's start to both direct; NaN when never direct. */
  fromStartMs: number;
}

interface RunSample {
  run: number;
  pairs: PairSample[];
  failoverMs: number;
  outageMs: number;
  failoverPings: { sent: number; lost: number };
  directGbps: number;
  relayGbps: number;
}

const NATS = MATRIX_NATS;

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts the NATed routers one by one while polling every router; returns the samples per pair. */
async function matrix(nc: NatCluster, windowMs: number, log: (line: string) => void): Promise<PairSample[]> {
  const { c, nl } = nc;
  const n = c.routers.length;
  const startedAt = new Array<number>(n).fill(Date.now());
  const pairs: [number, number][] = [];
  for (let i = 0; i < n; i++) for (let k = i + 1; k < n; k++) pairs.push([i, k]);
  const established = new Map<string, number>();
  const key = (i: number, k: number) => `${i}-${k}`;
  let statuses: (Map<string, PeerStatus> | undefined)[] = [];
  let stop = false;
  const poll = (async () => {
    while (!stop) {
      const all = await Promise.all(c.routers.map((r, i) => (r.process === undefined ? undefined : c.apiStatus(i).catch(() => undefined))));
      statuses = all.map((s) => (s === undefined ? undefined : new Map(s.peers.map((p) => [p.nickname, p]))));
      const now = Date.now();
      for (const [i, k] of pairs) {
        const a = statuses[i]?.get(c.routers[k]!.name);
        const b = statuses[k]?.get(c.routers[i]!.name);
        if (!established.has(key(i, k)) && a?.state === 'established' && b?.state === 'established' && a.path !== 'none' && b.path !== 'none') established.set(key(i, k), now);
      }
      await delay(100);
    }
  })();
  for (let i = 0; i < n; i++) {
    if (c.routers[i]!.process !== undefined) continue;
    startedAt[i] = Date.now();
    await c.startRouter(i);
  }
  log(`all ${n} routers run; the matrix gets ${windowMs / 1000} s`);
  await delay(windowMs);
  stop = true;
  await poll;
  const now = Date.now();
  return pairs.map(([i, k]) => {
    const want = expectedPath(nl, i, k);
    const a = statuses[i]?.get(c.routers[k]!.name);
    const b = statuses[k]?.get(c.routers[i]!.name);
    const direct = a?.path === 'direct' && b?.path === 'direct';
    const at = direct ? now - Math.min(a.pathSinceMs ?? 0, b.pathSinceMs ?? 0) : NaN;
    return {
      pair: `${c.routers[i]!.name}(${nl.natOf(i)?.kind ?? 'public'}) ↔ ${c.routers[k]!.name}(${nl.natOf(k)?.kind ?? 'public'})`,
      expected: want.path,
      why: want.why,
      paths: `${a?.path ?? '?'}/${b?.path ?? '?'}`,
      direct,
      punched: a?.punch?.state === 'punched' || b?.punch?.state === 'punched',
      toDirectMs: Math.max(0, at - (established.get(key(i, k)) ?? NaN)),
      fromStartMs: at - Math.max(startedAt[i]!, startedAt[k]!),
    };
  });
}

async function oneRun(run: number, o: NatOptions): Promise<RunSample> {
  const nc = await startNatCluster({
    nat: { publicNodes: 2, nats: NATS.map((x) => ({ ...x })) },
    extraArgs: ['--log-level', 'warn'],
    cluster: { deferStart: [2, 3, 4, 5, 6, 7, 8] },
  });
  try {
    const pairs = await matrix(nc, o.windowMs ?? 30_000, o.log);
    const { c, nl } = nc;
    const [a, b] = [2, 3];
    await waitPairPath(c, a, b, 'direct', 30_000);
    const [from, to] = [c.podsOn(a + 1)[0]!, c.podsOn(b + 1)[0]!];
    const direct = await iperf3Tcp(c.lab, to.ns, to.ipv4!, from.ns, { seconds: o.seconds, port: 5302 });
    await c.expectPaths(a, { n4: 'direct' }, `run ${run}: after the direct TCP test`);
    // Failover under traffic.
    const intervalS = 0.01;
    const fo = await pairTraffic(c, a, b, { seconds: 8, intervalS, bitrate: '50M', port: 5303 }, async () => {
      const cutAt = Date.now();
      await nl.blockBetween(c.lab.nodes[a]!, c.lab.nodes[b]!);
      const r = await waitPairPath(c, a, b, 'relay', 20_000);
      return r.at - cutAt;
    });
    await c.expectPaths(a, { n4: 'relay' }, `run ${run}: before the relay TCP test`);
    const relay = await iperf3Tcp(c.lab, to.ns, to.ipv4!, from.ns, { seconds: o.seconds, port: 5304 });
    await c.expectPaths(a, { n4: 'relay' }, `run ${run}: after the relay TCP test`);
    await nl.clearBlocks();
    const lost = fo.pings.sent - fo.pings.received;
    const sample: RunSample = {
      run,
      pairs,
      failoverMs: fo.result,
      outageMs: lost * intervalS * 1000,
      failoverPings: { sent: fo.pings.sent, lost },
      directGbps: direct.gbps,
      relayGbps: relay.gbps,
    };
    const d = pairs.filter((p) => p.direct).length;
    o.log(`run ${run}: ${d}/${pairs.length} pairs direct; failover ${sample.failoverMs} ms (outage ${sample.outageMs} ms); TCP direct ${fmt(direct.gbps)} relay ${fmt(relay.gbps)} Gbit/s`);
    return sample;
  } finally {
    await nc.destroy();
  }
}

export async function runNatSuite(o: NatOptions): Promise<{ json: object; markdown: string; goals: string[] }> {
  const runs: RunSample[] = [];
  for (let run = 1; run <= o.runs; run++) runs.push(await oneRun(run, o));
  const all = runs.flatMap((r) => r.pairs);
  const allowed = all.filter((p) => p.expected === 'direct');
  const share = all.filter((p) => p.direct).length / all.length;
  const allowedShare = allowed.filter((p) => p.direct).length / allowed.length;
  const toDirect = summarize(all.filter((p) => p.direct).map((p) => p.toDirectMs));
  const fromStart = summarize(all.filter((p) => p.direct).map((p) => p.fromStartMs));
  const failover = summarize(runs.map((r) => r.failoverMs));
  const outage = summarize(runs.map((r) => r.outageMs));
  const ratios = runs.map((r) => r.relayGbps / r.directGbps);
  const ratio = median(ratios);
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const last = runs.at(-1)!;
  const markdown = [
    '## Matrix',
    '',
    `Pairs direct: ${pct(share)} of ${all.length} (${runs.length} run(s) of ${last.pairs.length} pairs); of the pairs the NAT kinds allow: ${pct(allowedShare)} of ${allowed.length}.`,
    `Time to direct (pair established → direct at both ends): p50 ${fmt(toDirect.p50, 0)} ms, p99 ${fmt(toDirect.p99, 0)} ms (n ${toDirect.n}); from the later router's start: p50 ${fmt(fromStart.p50, 0)} ms, p99 ${fmt(fromStart.p99, 0)} ms.`,
    '',
    `Last run:`,
    '',
    '| pair | expected | why | paths (both ends) | punched | to direct (ms) |',
    '|---|---|---|---|---|---|',
    ...last.pairs.map((p) => `| ${p.pair} | ${p.expected} | ${p.why} | ${p.paths} | ${p.punched ? 'yes' : 'no'} | ${fmt(p.toDirectMs, 0)} |`),
    '',
    '## Failover and relay (n3 eim ↔ n4 eim, through a public relay)',
    '',
    '| run | failover to relay (ms, status) | outage (ms, pings lost × 10 ms) | TCP direct (Gbit/s) | TCP relay (Gbit/s) | relay / direct |',
    '|---|---|---|---|---|---|',
    ...runs.map((r) => `| ${r.run} | ${r.failoverMs} | ${r.outageMs} | ${fmt(r.directGbps)} | ${fmt(r.relayGbps)} | ${fmt(r.relayGbps / r.directGbps)} |`),
  ].join('\n');
  const goals = [
    `every pair the NAT kinds allow ends direct: ${allowedShare === 1 ? 'met' : 'not met'} (${pct(allowedShare)}); ≥ 95% of all pairs direct: ${share >= 0.95 ? 'met' : 'not met'} (${pct(share)}; this matrix allows at most ${pct(allowed.length / all.length)}: its symmetric NATs leave ${all.length - allowed.length} pair(s) to relays)`,
    `time to direct p50/p99 ≤ 2 s: ${toDirect.p99 <= 2000 ? 'met' : 'not met'} (${fmt(toDirect.p50, 0)} / ${fmt(toDirect.p99, 0)} ms)`,
    `failover to relay ≤ 1 s: ${failover.max <= 1000 ? 'met' : 'not met'} (max ${fmt(failover.max, 0)} ms by status, max outage ${fmt(outage.max, 0)} ms by pings)`,
    `relay TCP ≥ 0.7 of direct: ${ratio >= 0.7 ? 'met' : 'not met'} (median ${fmt(ratio)})`,
  ];
  return { json: { runs, share, allowedShare, toDirect, fromStart, failover, outage, relayRatio: ratio }, markdown, goals };
}
