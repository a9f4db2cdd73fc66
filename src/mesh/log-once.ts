/**
 * "Log once per key" for bad input from the network or other members: the first occurrence of a
 * key (a reason and a source) is logged, later ones are only counted by the caller. The set of keys
 * is bounded: past `maxKeys` distinct keys one line says that further ones are counted only (an
 * attacker rotating source addresses cannot flood the log or the heap); `reset` (called rarely, e.g.
 * hourly) starts over so a problem that comes back is logged again.
 */
import type { Logger } from '../core/logger.js';

export class LogOnce {
  private readonly log: Logger;
  private readonly maxKeys: number;
  private readonly seen = new Set<string>();
  private saturated = false;

  constructor(log: Logger, maxKeys = 1024) {
    this.log = log;
    this.maxKeys = maxKeys;
  }

  /** Logs `msg` at warn level unless `key` was logged since the last reset; true when it logged. */
  warn(key: string, msg: string, fields: Record<string, unknown>): boolean {
    if (this.seen.has(key)) return false;
    if (this.seen.size >= this.maxKeys) {
      if (!this.saturated) {
        this.saturated = true;
        this.log.warn('too many distinct problems to log each; further ones are only counted (see weft status)', { distinct: this.seen.size });
      }
      return false;
    }
    this.seen.add(key);
    this.log.warn(msg, fields);
    return true;
  }

  reset(): void {
    this.seen.clear();
    this.saturated = false;
  }
}
