/**
 * Gives the router's freed malloc memory back to the kernel now and then (glibc's malloc_trim(0)
 * through the addon: src/platform/linux/native/proc.c says why glibc keeps it otherwise).
 *
 * Start-up is what leaves most behind (V8 compiling the code, OpenSSL and libsodium setting up,
 * the config), so the first trim runs as the router finishes starting (this component starts
 * last), then one every 2 s for what the mesh, IPAM and V8's optimising compiler free later.
 * Under traffic V8 keeps optimising the data path: its compiler takes zone memory in 32 KiB
 * blocks, several MB a second on its worker threads (perf on malloc, 2026-12-04), and frees it
 * between blocks that stay, so a receiving router's malloc heaps held 2–3 MB more between trims
 * 30 s apart (bench/sleeve-probe.ts: its RSS under one TCP stream 68–69 MB against 66–67 with a
 * trim every 2 s). The first takes about 3 ms (2.3 MB given back), the later ones 0.2–0.6 ms,
 * 0.03% of a core at most. A trim that
 * throws (an addon without it) is logged once and the timer goes on; nothing here can stop the
 * router.
 */
import type { Clock, TimerHandle } from '../core/clock.js';
import { describeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Startable } from '../core/startable.js';

export interface MemoryTrimInit {
  /** One trim per interval after the one at start (ms). */
  everyMs?: number;
}

export class MemoryTrim implements Startable {
  /** Trims run, and how many of them gave memory back. */
  readonly counts = { runs: 0, released: 0, failed: 0 };
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly trim: () => boolean;
  private readonly everyMs: number;
  private timer: TimerHandle | undefined;

  constructor(components: { clock: Clock; logger: Logger; trim: () => boolean }, init: MemoryTrimInit = {}) {
    this.clock = components.clock;
    this.log = components.logger;
    this.trim = components.trim;
    this.everyMs = init.everyMs ?? 2_000;
  }

  start(): void {
    this.run();
    this.timer = this.clock.setInterval(() => this.run(), this.everyMs);
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = undefined;
  }

  private run(): void {
    this.counts.runs++;
    try {
      if (this.trim()) this.counts.released++;
    } catch (err) {
      if (this.counts.failed++ === 0) this.log.warn('malloc_trim failed; freed memory stays with the process (logged once)', { err: describeError(err) });
    }
  }
}
