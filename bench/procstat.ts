import { readFileSync } from 'node:fs';

const TICKS = 100; // USER_HZ on Linux

/** CPU seconds (user + system) a process has used so far. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS;
}

export function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? 0 : Number(m[1]) * 1024;
}

/** Samples CPU share and peak RSS of `pids` while `work` runs. */
export async function sampleWhile<T>(pids: number[], work: Promise<T>): Promise<{ result: T; cpuPct: number[]; rssMaxMB: number[] }> {
  const t0 = performance.now();
  const c0 = pids.map(cpuSeconds);
  const peak = pids.map(rssBytes);
  const timer = setInterval(() => pids.forEach((p, i) => (peak[i] = Math.max(peak[i]!, rssBytes(p)))), 250);
  try {
    const result = await work;
    const secs = (performance.now() - t0) / 1000;
    return {
      result,
      cpuPct: pids.map((p, i) => ((cpuSeconds(p) - c0[i]!) / secs) * 100),
      rssMaxMB: peak.map((b) => b / (1024 * 1024)),
    };
  } finally {
    clearInterval(timer);
  }
}
