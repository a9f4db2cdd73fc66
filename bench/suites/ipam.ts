/**
 * IPAM suite (issue 6), on real routers through their Unix sockets:
 *
 *   latency      sequential allocations on n1 (a 2-seed ring, n1 owns half): p50 / p99 per request,
 *                and the same for releases
 *   throughput   allocations per second on n1 with 32 requests in flight (each one persisted:
 *                writes are group-committed)
 *   donation     a third router, started after the ring exists, owns nothing: the time from its API
 *                answering to its first allocation (mesh connect, ring gossip, ask, donation), and
 *                the latency of that first allocation itself
 *
 * The simulation at 1,000 peers is the `ipam-sim` part (sim/ipam-sim.ts).
 */
import { WeftCluster } from '../../lab/weft-cluster.js';
import { fmt, median, pctl } from '../stats.js';

export interface IpamBenchOptions {
  runs: number;
  log: (line: string) => void;
}

interface Sample {
  allocP50Ms: number;
  allocP99Ms: number;
  releaseP50Ms: number;
  releaseP99Ms: number;
  allocsPerSecond: number;
  newPeerFirstAllocMs: number;
  newPeerFirstCallMs: number;
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t = performance.now();
  const r = await fn();
  return [r, performance.now() - t];
}

async function oneRun(run: number, o: IpamBenchOptions): Promise<Sample> {
  const c = await WeftCluster.start({
    nodes: 3,
    ipamSeeds: [0, 1],
    deferStart: [2],
    extraArgs: ['--log-level', 'warn', '--ipam-range', '10.44.0.0/16', '--ipam-range6', 'fd00:44::/64'],
  });
  try {
    await c.waitEstablished();
    const ready = async (i: number) => ((await c.api<{ ready: { ok: boolean } }>(i, 'GET', '/v1/ipam/status')).ready.ok);
    for (const i of [0, 1]) {
      const deadline = Date.now() + 30_000;
      while (!(await ready(i))) {
        if (Date.now() > deadline) throw new Error(`n${i + 1}: IPAM not ready within 30 s`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const alloc = (i: number, id: string) => c.api(i, 'POST', '/v1/ipam/allocate', { containerId: id, ifName: 'eth0' });
    for (let k = 0; k < 20; k++) await alloc(0, `warm-${k}`);
    const allocMs: number[] = [];
    for (let k = 0; k < 500; k++) allocMs.push((await timed(() => alloc(0, `seq-${run}-${k}`)))[1]);
    const releaseMs: number[] = [];
    for (let k = 0; k < 500; k++) releaseMs.push((await timed(() => c.api(0, 'POST', '/v1/ipam/release', { containerId: `seq-${run}-${k}` })))[1]);
    const total = 2000;
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < total) {
          const k = next++;
          await alloc(0, `par-${run}-${k}`);
        }
      }),
    );
    const allocsPerSecond = total / ((performance.now() - t0) / 1000);
    await c.startRouter(2);
    const started = performance.now();
    let firstCallMs = NaN;
    for (;;) {
      try {
        [, firstCallMs] = await timed(() => alloc(2, `newcomer-${run}`));
        break;
      } catch (err) {
        if (performance.now() - started > 60_000) throw err;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    const s: Sample = {
      allocP50Ms: pctl(allocMs, 50),
      allocP99Ms: pctl(allocMs, 99),
      releaseP50Ms: pctl(releaseMs, 50),
      releaseP99Ms: pctl(releaseMs, 99),
      allocsPerSecond,
      newPeerFirstAllocMs: performance.now() - started,
      newPeerFirstCallMs: firstCallMs,
    };
    o.log(
      `run ${run}: allocate p50 ${fmt(s.allocP50Ms)} / p99 ${fmt(s.allocP99Ms)} ms, release p50 ${fmt(s.releaseP50Ms)} / p99 ${fmt(s.releaseP99Ms)} ms, ` +
        `${fmt(allocsPerSecond, 0)} allocations/s (32 in flight), new peer's first allocation ${fmt(s.newPeerFirstAllocMs, 0)} ms after start (that call ${fmt(firstCallMs, 0)} ms)`,
    );
    return s;
  } finally {
    await c.destroy();
  }
}

export async function runIpamSuite(o: IpamBenchOptions): Promise<{ json: object; markdown: string }> {
  const samples: Sample[] = [];
  for (let run = 1; run <= o.runs; run++) samples.push(await oneRun(run, o));
  const m = (f: (s: Sample) => number) => median(samples.map(f));
  const rows = samples.map(
    (s, i) =>
      `| ${i + 1} | ${fmt(s.allocP50Ms)} / ${fmt(s.allocP99Ms)} | ${fmt(s.releaseP50Ms)} / ${fmt(s.releaseP99Ms)} | ${fmt(s.allocsPerSecond, 0)} | ${fmt(s.newPeerFirstAllocMs, 0)} (${fmt(s.newPeerFirstCallMs, 0)}) |`,
  );
  const markdown = [
    '| run | allocate p50 / p99 ms (sequential, dual-stack) | release p50 / p99 ms | allocations/s (32 in flight) | new peer: first allocation ms after start (that call) |',
    '|---|---|---|---|---|',
    ...rows,
    '',
    `Medians: allocate p50 ${fmt(m((s) => s.allocP50Ms))} ms, p99 ${fmt(m((s) => s.allocP99Ms))} ms; ${fmt(m((s) => s.allocsPerSecond), 0)} allocations/s; ` +
      `a new peer allocates ${fmt(m((s) => s.newPeerFirstAllocMs), 0)} ms after start.`,
  ].join('\n');
  return { json: { samples }, markdown };
}
