/**
 * Relay against direct in one run, on a three-node lab: n1 reaches n2 directly and n3 through n2
 * (UDP between n1 and n3 is blocked, so the mesh stays up over TCP and the data path relays).
 * TCP (iperf3, 1 stream) n1 → n2 and n1 → n3, alternated `runs` times, medians and the ratio.
 *
 *   npm run build:ts && flock /tmp/weft-bench.lock node dist/bench/relay-ratio.js [runs] [seconds]
 *
 * A quick figure for relay work (issue 18); the mesh suite (bench/suites/mesh.ts) is the full one.
 */
import { iperf3Tcp } from '../lab/traffic.js';
import { startRelayedTrio } from './relayed-trio.js';
import { median } from './stats.js';

const runs = Number(process.argv[2] ?? 3);
const seconds = Number(process.argv[3] ?? 8);
const c = await startRelayedTrio();
try {
  const from = c.podsOn(1)[0]!;
  const direct: number[] = [];
  const relay: number[] = [];
  for (let run = 1; run <= runs; run++) {
    for (const [to, out] of [[2, direct], [3, relay]] as const) {
      const dst = c.podsOn(to)[0]!;
      const t = await iperf3Tcp(c.lab, dst.ns, dst.ipv4!, from.ns, { seconds });
      out.push(t.gbps);
      process.stderr.write(`run ${run} n1 → n${to} (${to === 2 ? 'direct' : 'relay'}): ${t.gbps.toFixed(2)} Gbit/s\n`);
    }
  }
  await c.expectPaths(0, { n2: 'direct', n3: 'relay' }, 'paths from n1 after');
  const s = await c.status(1);
  const d = median(direct);
  const r = median(relay);
  process.stdout.write(`direct ${d.toFixed(2)} Gbit/s, relay ${r.toFixed(2)} Gbit/s, ratio ${(r / d).toFixed(2)} (medians of ${runs} × ${seconds} s)\n`);
  process.stdout.write(`n2 relayed ${JSON.stringify(s.relayed)}, udp ${JSON.stringify(s.traffic.udp)}, flushes ${s.traffic.udpFlushes}\n`);
} finally {
  await c.destroy();
}
