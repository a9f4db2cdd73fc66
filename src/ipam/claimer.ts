/**
 * Getting space through a `BlockOwnership` (Kubernetes mode), the counterpart of the asker: a
 * range that has no free address (an allocation waits), or fewer than the low-water mark, claims
 * one more block, one claim per range at a time. Waiters are woken when space arrives; a claim
 * that fails rejects the range's waiters at once with its reason (`exhausted`: no block is
 * free → `IpamExhaustedError`; the API server away or refusing → `IpamNotReadyError`, a CNI
 * "try again later"); a waiter still waiting at its deadline fails too.
 */
import type { Clock } from '../core/clock.js';
import { describeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { SpaceSource } from './allocations.js';
import { IpamExhaustedError, IpamNotReadyError } from './errors.js';
import type { BlockOwnership, ClaimResult } from './ownership.js';
import { SpaceWaiters } from './space-waiters.js';
import type { RangeState } from './range-state.js';
import type { IpamCounters } from './status.js';

export interface ClaimerDeps {
  clock: Clock;
  ranges: readonly RangeState[];
  ownership: BlockOwnership;
  log: Logger;
  counters: IpamCounters;
  lowWater: number;
  /** How long an allocation waits for a block. */
  claimTimeoutMs: number;
  /** Whether a range may be allocated from (running, ownership ready). */
  usable(range: RangeState): boolean;
  /** A claim got a block: the allocators are synced from `owned` (before waiters wake). */
  claimed(range: RangeState): void;
}

/** After a failed background claim, the next one waits this long (waiters always try at once). */
const RETRY_MS = 5000;

export class Claimer implements SpaceSource {
  private readonly deps: ClaimerDeps;
  private readonly waiters = new SpaceWaiters();
  /** Per range index: a claim is under way. */
  private readonly inFlight = new Set<number>();
  /** Per range index: the last failed claim and when a background one may try again. */
  private readonly failed = new Map<number, { result: Extract<ClaimResult, { ok: false }>; retryAt: number }>();

  constructor(deps: ClaimerDeps) {
    this.deps = deps;
  }

  hasWaiters(range: RangeState): boolean {
    return this.waiters.has(range);
  }

  /** Why the last claim in the range failed (undefined: it did not, or none was made). */
  lastFailure(range: RangeState): string | undefined {
    return this.failed.get(range.index)?.result.reason;
  }

  status(range: RangeState): { asking: string | undefined; tried: string[]; waitingAllocations: number } {
    return { asking: this.inFlight.has(range.index) ? 'the API server (claiming a block)' : undefined, tried: [], waitingAllocations: this.waiters.count(range) };
  }

  waitFor(range: RangeState, deadline: number): Promise<void> {
    const waiting = this.waiters.add(range, deadline);
    this.claim(range, true);
    return waiting;
  }

  /** Claims in the background when free space is below the low-water mark. */
  maybeAsk(range: RangeState): void {
    const d = this.deps;
    if (!d.usable(range)) return;
    const waiting = this.hasWaiters(range);
    if (!waiting && range.allocator.hasFree(d.clock.now(), Math.max(d.lowWater, 1))) return;
    this.claim(range, waiting);
  }

  private claim(range: RangeState, urgent: boolean): void {
    const d = this.deps;
    if (this.inFlight.has(range.index) || !d.usable(range)) return;
    const f = this.failed.get(range.index);
    if (!urgent && f !== undefined && d.clock.now() < f.retryAt) return;
    this.inFlight.add(range.index);
    d.ownership
      .claim(range.index)
      .catch((err: unknown): ClaimResult => ({ ok: false, kind: 'unavailable', reason: describeError(err) }))
      .then((r) => {
        this.inFlight.delete(range.index);
        if (r.ok) {
          this.failed.delete(range.index);
          d.claimed(range);
        } else {
          const before = this.failed.get(range.index);
          this.failed.set(range.index, { result: r, retryAt: d.clock.now() + RETRY_MS });
          if (before?.result.reason !== r.reason) d.log.warn('cannot claim a block', { range: range.space.cidr, kind: r.kind, reason: r.reason });
          this.rejectRange(range, r);
        }
        this.wake();
      });
  }

  private rejectRange(range: RangeState, r: Extract<ClaimResult, { ok: false }>): void {
    this.waiters.settleRange(range, this.deps.clock.now(), this.deps.counters, () =>
      r.kind === 'exhausted' ? new IpamExhaustedError(range.space.cidr, r.reason) : new IpamNotReadyError(`cannot claim a block of ${range.space.cidr}: ${r.reason}`),
    );
  }

  /** Wakes waiters that have space now, fails those past their deadline, claims for the rest. */
  wake(): void {
    if (this.waiters.size === 0) return;
    const d = this.deps;
    const keep = this.waiters.wake(d.clock.now(), d.usable, d.counters, (w) =>
      new IpamNotReadyError(`no block of ${w.range.space.cidr} could be claimed within ${d.claimTimeoutMs} ms${this.inFlight.has(w.range.index) ? ' (the API server has not answered yet)' : ''}`),
    );
    for (const w of keep) this.claim(w.range, true);
  }

  /** Periodic: deadlines pass; background claims go on. */
  tick(): void {
    this.wake();
    for (const r of this.deps.ranges) this.maybeAsk(r);
  }

  rejectAll(err: Error): void {
    this.waiters.rejectAll(err);
  }
}
