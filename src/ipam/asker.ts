/**
 * Asking other peers for space, one space at a time: unicast `ask` to owners, largest first, one
 * at a time, moving on after `none`, a `gave`, or a third of `askTimeoutMs` without an answer.
 * Allocations that wait for space are "waiters": they are woken when space arrives and fail with
 * `IpamExhaustedError` at their deadline. Without waiters, a peer below its low-water mark asks in
 * the background, at most `BACKGROUND_TRIES` owners per round and a round every 10 × askTimeoutMs.
 */
import type { Clock } from '../core/clock.js';
import type { GossipTransport, PeerName, RouteTable } from '../mesh/contracts.js';
import { IpamExhaustedError } from './errors.js';
import { IPAM_CHANNEL } from './ring-codec.js';
import type { AddressSpace } from './space.js';
import type { IpamCounters } from './status.js';
import { encodeAsk } from './wire.js';

const BACKGROUND_TRIES = 3;

export interface AskerDeps {
  clock: Clock;
  transport: GossipTransport;
  routes: RouteTable;
  spaces: readonly AddressSpace[];
  self: PeerName;
  lowWater: number;
  askTimeoutMs: number;
  tickMs: number;
  counters: IpamCounters;
  /** Whether space si may be allocated from (ring confirmed, not fenced, running). */
  usable(si: number): boolean;
  hasFree(si: number, n: number): boolean;
  /** Live owners of space si and how much each owns, largest first, then by name. */
  owners(si: number): readonly (readonly [PeerName, bigint])[];
}

interface AskState {
  target: PeerName | undefined;
  sentAt: number;
  tried: Set<PeerName>;
  retryAt: number;
}

interface Waiter {
  si: number;
  deadline: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

export class Asker {
  private readonly d: AskerDeps;
  private readonly asks: AskState[];
  private waiters: Waiter[] = [];

  constructor(deps: AskerDeps) {
    this.d = deps;
    this.asks = deps.spaces.map(() => ({ target: undefined, sentAt: 0, tried: new Set(), retryAt: 0 }));
  }

  hasWaiters(si: number): boolean {
    return this.waiters.some((w) => w.si === si);
  }

  status(si: number): { asking: PeerName | undefined; tried: PeerName[]; waitingAllocations: number } {
    const a = this.asks[si]!;
    return { asking: a.target, tried: [...a.tried], waitingAllocations: this.waiters.filter((w) => w.si === si).length };
  }

  /** Resolves when space si has a free address (or is no longer usable); rejects at `deadline`. */
  waitFor(si: number, deadline: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiters.push({ si, deadline, resolve, reject });
      const a = this.asks[si]!;
      if (a.target === undefined) a.retryAt = 0;
      this.maybeAsk(si);
    });
  }

  /** `from` answered (`gave` or `none`) about space si. */
  answered(si: number, from: PeerName): void {
    const a = this.asks[si]!;
    if (a.target === from) a.target = undefined;
    this.maybeAsk(si);
  }

  /** Asks the next owner when an allocation waits or free space is below the low-water mark. */
  maybeAsk(si: number): void {
    const d = this.d;
    const a = this.asks[si]!;
    if (!d.usable(si) || a.target !== undefined) return;
    const now = d.clock.now();
    const waiting = this.hasWaiters(si);
    if (!waiting && d.hasFree(si, Math.max(d.lowWater, 1))) {
      a.tried.clear();
      return;
    }
    if (now < a.retryAt) return;
    const reachable = new Set(d.routes.reachable());
    const candidates = d.owners(si).filter(([p]) => p !== d.self && reachable.has(p) && !a.tried.has(p));
    for (const [peer] of candidates) {
      if (!waiting && a.tried.size >= BACKGROUND_TRIES) break;
      a.tried.add(peer);
      d.counters.asksSent++;
      if (d.transport.unicast(IPAM_CHANNEL, peer, encodeAsk('ask', d.spaces[si]!.cidr))) {
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
    if (this.waiters.length === 0) return;
    const d = this.d;
    const now = d.clock.now();
    const keep: Waiter[] = [];
    for (const w of this.waiters) {
      if (d.hasFree(w.si, 1) || !d.usable(w.si)) w.resolve();
      else if (now >= w.deadline) {
        d.counters.exhausted++;
        w.reject(new IpamExhaustedError(d.spaces[w.si]!.cidr, `this peer has no free address and no peer donated one within ${d.askTimeoutMs} ms`));
      } else keep.push(w);
    }
    this.waiters = keep;
  }

  /** Periodic: unanswered asks time out; asking goes on; deadlines pass. */
  tick(): void {
    const now = this.d.clock.now();
    for (let si = 0; si < this.asks.length; si++) {
      const a = this.asks[si]!;
      if (a.target !== undefined && now - a.sentAt >= Math.max(this.d.askTimeoutMs / 3, this.d.tickMs)) a.target = undefined;
      this.maybeAsk(si);
    }
    this.wake();
  }

  rejectAll(err: Error): void {
    for (const w of this.waiters.splice(0)) w.reject(err);
  }
}
