import { spawnSync } from 'node:child_process';

export const BENCH_LOCK = '/tmp/weft-bench.lock';

/**
 * Makes sure this process runs under `flock BENCH_LOCK`: when it does not yet, it re-runs itself
 * under flock (waiting for any other benchmark) and exits with that run's status.
 */
export function ensureBenchLock(): void {
  if (process.env.WEFT_BENCH_LOCKED === '1') return;
  process.stderr.write(`bench: waiting for ${BENCH_LOCK}\n`);
  const r = spawnSync('flock', [BENCH_LOCK, process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, WEFT_BENCH_LOCKED: '1' },
  });
  process.exit(r.status ?? 1);
}
