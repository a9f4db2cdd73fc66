/**
 * A quick look at one sleeve configuration, for profiling (not a benchmark: one cluster, one
 * sample each, no VXLAN reference; `npm run bench -- --suite sleeve` is the measurement).
 * Starts a two-node cluster with the fast path off and prints each router's memory (RSS split into
 * anonymous and file-backed) idle and during a TCP stream (and its largest RSS sampled during it, as the suite has it), the ping, one and four TCP streams, and
 * the router CPU. Takes the bench lock like `npm run bench`. Run (root): node dist/bench/sleeve-probe.js [--plaintext] [--per-frame]
 * [--seconds S] [-- router flags...]; set NODE_OPTIONS to try V8 flags on the routers.
 */
import { readFileSync } from 'node:fs';
import { WeftCluster, iperf3Tcp, ping } from '../lab/index.js';
import { ensureBenchLock } from './lock.js';
import { sampleWhile, statusKb } from './procstat.js';

function memory(pid: number): string {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const mb = (k: string) => (statusKb(pid, k, s) / 1024).toFixed(1);
  return `rss ${mb('VmRSS')} MB (anon ${mb('RssAnon')}, file ${mb('RssFile')}), peak ${mb('VmHWM')}`;
}

async function main(): Promise<void> {
  ensureBenchLock();
  const argv = process.argv.slice(2);
  const dash = argv.indexOf('--');
  const own = dash < 0 ? argv : argv.slice(0, dash);
  const routerArgs = dash < 0 ? [] : argv.slice(dash + 1);
  const seconds = own.includes('--seconds') ? Number(own[own.indexOf('--seconds') + 1]) : 4;
  const c = await WeftCluster.start({
    nodes: 2,
    plaintext: own.includes('--plaintext'),
    vnetHdr: !own.includes('--per-frame'),
    extraArgs: ['--log-level', 'warn', '--fastpath', 'off', ...routerArgs],
  });
  try {
    await c.waitEstablished();
    await c.waitPaths(() => 'direct');
    const pids = [(await c.status(0)).pid, (await c.status(1)).pid];
    const [client, server] = [c.pods[0]!, c.pods[1]!];
    pids.forEach((p, i) => console.log(`router ${i + 1} idle: ${memory(p)}`));
    await ping(c.lab, client.ns, server.ipv4!, { count: 20, intervalS: 0.01 });
    const p = await ping(c.lab, client.ns, server.ipv4!, { count: 300, intervalS: 0.005 });
    console.log(`ping avg ${p.avgMs.toFixed(3)} ms, p99 ${p.p99Ms.toFixed(3)} ms`);
    const t1 = await sampleWhile(pids, iperf3Tcp(c.lab, server.ns, server.ipv4!, client.ns, { seconds }));
    console.log(`tcp x1 ${t1.result.gbps.toFixed(2)} Gbit/s, retransmits ${t1.result.retransmits}, cpu ${t1.cpuPct.map((x) => x.toFixed(0)).join('/')}%, rss max ${t1.rssMaxMB.map((x) => x.toFixed(1)).join('/')} MB (what the sleeve suite reports)`);
    pids.forEach((p, i) => console.log(`router ${i + 1} after tcp x1: ${memory(p)}`));
    const t4 = await sampleWhile(pids, iperf3Tcp(c.lab, server.ns, server.ipv4!, client.ns, { seconds, streams: 4 }));
    console.log(`tcp x4 ${t4.result.gbps.toFixed(2)} Gbit/s, retransmits ${t4.result.retransmits}, cpu ${t4.cpuPct.map((x) => x.toFixed(0)).join('/')}%`);
    pids.forEach((p, i) => console.log(`router ${i + 1} after tcp x4: ${memory(p)}`));
    for (const i of [0, 1]) console.log(`router ${i + 1} status memory: ${JSON.stringify((await c.status(i)).memory)}`);
    for (let i = 0; i < 2; i++) {
      const k = (await c.status(i)).crypto;
      if (k === undefined || k.threads === 0) continue;
      const b = (x: typeof k.seals): string =>
        `${x.runs > 0 ? (x.jobs / x.runs).toFixed(1) : '-'} jobs/batch, ${x.bytes > 0 ? Math.round((100 * x.pooledBytes) / x.bytes) : 0}% of bytes pooled, ${x.pooledJobs > 0 ? Math.round((100 * x.helped) / x.pooledJobs) : 0}% of pooled jobs on pool threads`;
      console.log(`router ${i + 1} crypto (${k.threads} threads): seals ${b(k.seals)}; opens ${b(k.opens)}`);
    }
  } finally {
    await c.destroy();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
