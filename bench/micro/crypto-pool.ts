/**
 * Micro-benchmark of the crypto pool: a batch of `jobs` seals of `size` bytes each, run on the
 * calling thread alone (--crypto-threads 1) and on the pool (2, 3, ... threads), wall and CPU
 * microseconds per batch (medians of rounds). It shows where handing jobs to pool threads starts
 * to pay: the inline threshold (DEFAULT_INLINE_BELOW in src/platform/linux/native-aead.ts).
 *
 *   node dist/bench/micro/crypto-pool.js [--threads 2,3] [--rounds 9] [--ms 200]
 *
 * Takes the bench lock. Not a test and not part of `npm run bench`; on a shared machine the pool
 * threads may wait for a core, which is exactly what the threshold must allow for.
 */
import { cpuUsage, hrtime } from 'node:process';
import { parseArgs } from 'node:util';
import { OpenSslChaCha } from '../../src/platform/linux/native-aead.js';
import { ensureBenchLock } from '../lock.js';

ensureBenchLock();
const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '9' },
    ms: { type: 'string', default: '150' },
  },
});
const poolSizes = values.threads.split(',').map(Number);
const rounds = Number(values.rounds);
const ms = Number(values.ms);
const shapes: [number, number][] = [
  [2, 1400], [8, 1400], [32, 1400], [2, 8192], [4, 8192], [2, 16384], [4, 16384], [2, 65536], [4, 65536], [8, 65536], [16, 65536],
];

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Wall and CPU µs per batch of `jobs` × `size` on an engine with `threads` threads. */
function measure(threads: number, jobs: number, size: number): { wall: number; cpu: number; helped: number } {
  const engine = new OpenSslChaCha({ threads, inlineBelow: 0 });
  const key = engine.createKey(Buffer.alloc(32, 5));
  const batch = engine.createBatch(jobs);
  const stride = size + 64;
  const arena = Buffer.alloc(stride * jobs);
  const ad = Buffer.alloc(14);
  const ctr = Buffer.alloc(8);
  const walls: number[] = [];
  const cpus: number[] = [];
  for (let r = 0; r < rounds; r++) {
    let n = 0;
    const c0 = cpuUsage();
    const t0 = hrtime.bigint();
    const end = t0 + BigInt(ms * 1e6);
    do {
      for (let i = 0; i < jobs; i++) batch.seal(key, arena, i * stride, size, ad, 0, ctr, 0);
      batch.run();
      n++;
    } while ((n & 7) !== 0 || hrtime.bigint() < end);
    const wall = Number(hrtime.bigint() - t0) / 1e3;
    const c = cpuUsage(c0);
    walls.push(wall / n);
    cpus.push((c.user + c.system) / n);
  }
  const st = batch.stats();
  engine.close();
  return { wall: median(walls), cpu: median(cpus), helped: st.pooledJobs > 0 ? st.helped / st.pooledJobs : 0 };
}

const head = ['jobs × bytes', 'batch KiB', '1 thread µs (cpu)', ...poolSizes.map((t) => `${t} threads µs (cpu) · speed-up · jobs on pool threads`)];
const rows = [head];
for (const [jobs, size] of shapes) {
  const one = measure(1, jobs, size);
  const row = [`${jobs} × ${size}`, ((jobs * size) / 1024).toFixed(1), `${one.wall.toFixed(1)} (${one.cpu.toFixed(1)})`];
  for (const t of poolSizes) {
    const p = measure(t, jobs, size);
    row.push(`${p.wall.toFixed(1)} (${p.cpu.toFixed(1)}) · ${(one.wall / p.wall).toFixed(2)}× · ${Math.round(100 * p.helped)}%`);
  }
  rows.push(row);
}
process.stdout.write(`| ${rows[0]!.join(' | ')} |\n|${rows[0]!.map(() => '---').join('|')}|\n`);
for (const r of rows.slice(1)) process.stdout.write(`| ${r.join(' | ')} |\n`);
