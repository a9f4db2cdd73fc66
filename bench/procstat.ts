import { readFileSync } from 'node:fs';

const TICKS = 100; // USER_HZ on Linux

/** CPU seconds (user + system) a process has used so far. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS;
}

/** A "kB" field of /proc/PID/status (VmRSS, RssAnon, RssFile, VmHWM, ...) in kB; NaN when absent. */
export function statusKb(pid: number, field: string, status = readFileSync(`/proc/${pid}/status`, 'utf8')): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status);
  return m === null ? NaN : Number(m[1]);
}

export function rssBytes(pid: number): number {
  const kb = statusKb(pid, 'VmRSS');
  return Number.isNaN(kb) ? 0 : kb * 1024;
}

/** The whole box's CPU time from /proc/stat's aggregate "cpu" line, in ticks. */
export interface BoxCpuTimes {
  /** user + nice + system + irq + softirq (guest time is inside user and nice already). */
  busy: number;
  /** busy + idle + iowait + steal. */
  total: number;
  /** Number of "cpuN" lines: what 100% per vCPU scales by. */
  cpus: number;
}

/**
 * Parses /proc/stat's text: the aggregate `cpu` line and the count of `cpuN` lines. Throws an
 * Error saying what is wrong when the aggregate line is missing or has fewer than 8 numbers.
 */
export function parseProcStat(text: string): BoxCpuTimes {
  let agg: number[] | undefined;
  let cpus = 0;
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f[0] === 'cpu') agg = f.slice(1).map(Number);
    else if (f[0] !== undefined && /^cpu\d+$/.test(f[0])) cpus++;
  }
  if (agg === undefined) throw new Error('/proc/stat: no aggregate "cpu" line');
  if (agg.length < 8 || agg.slice(0, 8).some((x) => !Number.isFinite(x) || x < 0)) {
    throw new Error(`/proc/stat: the "cpu" line needs 8 non-negative numbers (user nice system idle iowait irq softirq steal), got "${agg.join(' ')}"`);
  }
  const [user, nice, system, idle, iowait, irq, softirq, steal] = agg as [number, number, number, number, number, number, number, number];
  const busy = user + nice + system + irq + softirq;
  return { busy, total: busy + idle + iowait + steal, cpus: Math.max(1, cpus) };
}

export function boxCpuTimes(): BoxCpuTimes {
  return parseProcStat(readFileSync('/proc/stat', 'utf8'));
}

/** The box's busy CPU between two readings, 100% = one vCPU (so at most cpus × 100); NaN when no time passed. */
export function boxBusyPct(a: BoxCpuTimes, b: BoxCpuTimes): number {
  const total = b.total - a.total;
  if (!(total > 0)) return NaN;
  return ((b.busy - a.busy) / total) * b.cpus * 100;
}

/**
 * Samples CPU share and peak RSS of `pids` while `work` runs, and the whole box's busy CPU
 * (from /proc/stat; 100% = one vCPU) over the same time.
 */
export async function sampleWhile<T>(
  pids: number[],
  work: Promise<T>,
): Promise<{ result: T; cpuPct: number[]; rssMaxMB: number[]; boxCpuPct: number }> {
  const t0 = performance.now();
  const c0 = pids.map(cpuSeconds);
  const box0 = boxCpuTimes();
  const peak = pids.map(rssBytes);
  const timer = setInterval(() => pids.forEach((p, i) => (peak[i] = Math.max(peak[i]!, rssBytes(p)))), 250);
  try {
    const result = await work;
    const box = boxBusyPct(box0, boxCpuTimes());
    const secs = (performance.now() - t0) / 1000;
    return {
      result,
      cpuPct: pids.map((p, i) => ((cpuSeconds(p) - c0[i]!) / secs) * 100),
      rssMaxMB: peak.map((b) => b / (1024 * 1024)),
      boxCpuPct: box,
    };
  } finally {
    clearInterval(timer);
  }
}
