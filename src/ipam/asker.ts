/**
 * Asking other peers for space, one space at a time: unicast `ask` to owners, largest first, one
 * at a time, moving on after `none`, a `gave`, or a third of `askTimeoutMs` without an answer.
 * Allocations that wait for space are "waiters": they are woken when space arrives and fail with
 * `IpamExhaustedError` at their deadline. Without waiters, a peer below its low-water mark asks in
 * the background, at most `BACKGROUND_TRIES` owners per round and a round every 10 × askTimeoutMs.
 * Where the asking stands in each range is that range's `asking` (range-state.ts).
 */
import type { Clock } from '../core/clock.js';
import type { GossipTransport, PeerName, RouteTable } from '../mesh/contracts.js';
import { IpamExhaustedError } from './errors.js';
import type { SpaceSource } from './allocations.js';
import { SpaceWaiters } from './space-waiters.js';
import type { RangeState } from './range-state.js';
import { IPAM_CHANNEL } from './ring-codec.js';
import type { IpamCounters } from './status.js';
import { encodeAsk } from './wire.js';

const BACKGROUND_TRIES = 3;

export interface AskerDeps {
  clock: Clock;
  transport: GossipTransport;
  routes: RouteTable;
  ranges: readonly RangeState[];
  self: PeerName;
  lowWater: number;
  askTimeoutMs: number;
  tickMs: number;
  counters: IpamCounters;
  /** Whether a range may be allocated from (ring confirmed, not fenced, running). */
  usable(range: RangeState): boolean;
}

export class Asker implements SpaceSource {
  private readonly deps: AskerDeps;
  private readonly waiters = new SpaceWaiters();

  constructor(deps: AskerDeps) {
    this.deps = deps;
  }

  hasWaiters(range: RangeState): boolean {
    return this.waiters.has(range);
  }

  status(range: RangeState): { asking: PeerName | undefined; tried: PeerName[]; waitingAllocations: number } {
    const a = range.asking;
    return { asking: a.target, tried: [...a.tried], waitingAllocations: this.waiters.count(range) };
  }

  /** Resolves when `range` has a free address (or is no longer usable); rejects at `deadline`. */
  waitFor(range: RangeState, deadline: number): Promise<void> {
    const waiting = this.waiters.add(range, deadline);
    const a = range.asking;
    if (a.target === undefined) a.retryAt = 0;
    this.maybeAsk(range);
    return waiting;
  }

  /** `from` answered (`gave` or `none`) about `range`. */
  answered(range: RangeState, from: PeerName): void {
    const a = range.asking;
    if (a.target === from) a.target = undefined;
    this.maybeAsk(range);
  }

  /** Asks the next owner when an allocation waits or free space is below the low-water mark. */
  maybeAsk(range: RangeState): void {
    const d = this.deps;
    const a = range.asking;
    if (!d.usable(range) || a.target !== undefined) return;
    const now = d.clock.now();
    const waiting = this.hasWaiters(range);
    if (!waiting && range.allocator.hasFree(now, Math.max(d.lowWater, 1))) {
      a.tried.clear();
      return;
    }
    if (now < a.retryAt) return;
    const reachable = new Set(d.routes.reachable());
    const candidates = (range.ring?.ownersBySize() ?? []).filter(([p]) => p !== d.self && reachable.has(p) && !a.tried.has(p));
    for (const [peer] of candidates) {
      if (!waiting && a.tried.size >= BACKGROUND_TRIES) break;
      a.tried.add(peer);
      d.counters.asksSent++;
      if (d.transport.unicast(IPAM_CHANNEL, peer, encodeAsk('ask', range.space.cidr))) {
        a.target = peer;
        a.sentAt = now;
        return;
      }
    }
    // Round over: nobody (else) to ask. Start again later.
    a.tried.clear();
    a.retryAt = now + (waiting ? d.askTimeoutMs : 10 * d.askTimeoutMs);
  }

  /** Wakes waiters that have space now, fails those past their deadline. */
  wake(): void {
    if (this.waiters.size === 0) return;
    const d = this.deps;
    this.waiters.wake(d.clock.now(), d.usable, d.counters, (w) => new IpamExhaustedError(w.range.space.cidr, `this peer has no free address and no peer donated one within ${d.askTimeoutMs} ms`));
  }

  /** Periodic: unanswered asks time out; asking goes on; deadlines pass. */
  tick(): void {
    const d = this.deps;
    const now = d.clock.now();
    for (const range of d.ranges) {
      const a = range.asking;
      if (a.target !== undefined && now - a.sentAt >= Math.max(d.askTimeoutMs / 3, d.tickMs)) a.target = undefined;
      this.maybeAsk(range);
    }
    this.wake();
  }

  rejectAll(err: Error): void {
    this.waiters.rejectAll(err);
  }
}
