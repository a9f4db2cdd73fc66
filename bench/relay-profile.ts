/**
 * Where a relay's time goes: the three-node lab of relay-ratio.ts, a relayed TCP stream n1 → n3,
 * and `perf record` of the relay's (n2's) router process meanwhile; prints perf's split by DSO
 * (kernel, node, JIT code) and the top symbols.
 *
 *   npm run build:ts && flock /tmp/weft-bench.lock node dist/bench/relay-profile.js [seconds]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { iperf3Tcp } from '../lab/traffic.js';
import { startRelayedTrio } from './relayed-trio.js';

const seconds = Number(process.argv[2] ?? 8);
const c = await startRelayedTrio();
try {
  const pid = c.routers[1]!.process!.pid;
  const data = join(mkdtempSync(join(tmpdir(), 'weft-perf-')), 'perf.data');
  const [from, to] = [c.podsOn(1)[0]!, c.podsOn(3)[0]!];
  const stream = iperf3Tcp(c.lab, to.ns, to.ipv4!, from.ns, { seconds });
  await new Promise((r) => setTimeout(r, 2000));
  execFileSync('perf', ['record', '-q', '-F', '499', '-g', '-o', data, '-p', String(pid), '--', 'sleep', String(Math.max(1, seconds - 4))], { stdio: 'ignore' });
  const t = await stream;
  process.stdout.write(`relay n1 → n3: ${t.gbps.toFixed(2)} Gbit/s\n`);
  for (const sort of ['dso', 'sym']) {
    const out = execFileSync('perf', ['report', '-i', data, '--no-children', '--sort', sort, '--stdio', '-g', 'none', '--percent-limit', '1.5'], { encoding: 'utf8', maxBuffer: 64 << 20 });
    process.stdout.write(`${out.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#')).slice(0, 25).join('\n')}\n\n`);
  }
} finally {
  await c.destroy();
}
