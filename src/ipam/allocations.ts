/**
 * The addresses a peer handed out: one allocation per attachment (container id + interface name),
 * an address in each range. A repeated request gets the attachment's addresses again; a new one
 * waits while some range has no free address (the asker asks other peers for space) until
 * `askTimeoutMs` has passed. Every change is persisted (group commit) before it is answered.
 */
import type { Clock } from '../core/clock.js';
import type { Asker } from './asker.js';
import { allocationKey, checkContainerId, checkIfName } from './config.js';
import { IpamNotReadyError } from './errors.js';
import type { GroupCommit } from './group-commit.js';
import type { RangeState } from './range-state.js';
import { offsetToAddress } from './space.js';
import type { PersistedAllocation } from './state-file.js';

export interface AllocatedAddress {
  address: string;
  prefixLength: number;
  family: 4 | 6;
}

interface Allocation {
  containerId: string;
  ifName: string;
  /** One per range, by its `index` (undefined: none in that range). */
  offsets: (bigint | undefined)[];
  allocatedAt: number;
}

export interface AllocationsComponents {
  clock: Clock;
  /** One per configured range, in order. */
  ranges: readonly RangeState[];
  commits: GroupCommit;
  asker: Asker;
  /** Whether the IPAM may allocate now, and why not. */
  readiness(): { ok: boolean; reason?: string };
  /** Whether the IPAM runs (releases need no more). */
  running(): boolean;
}

export interface AllocationsInit {
  /** How long an allocation waits for space. */
  askTimeoutMs: number;
}

export class Allocations {
  private readonly clock: Clock;
  private readonly ranges: readonly RangeState[];
  private readonly commits: GroupCommit;
  private readonly asker: Asker;
  private readonly readiness: () => { ok: boolean; reason?: string };
  private readonly running: () => boolean;
  private readonly askTimeoutMs: number;
  /** By `allocationKey`. */
  private readonly records = new Map<string, Allocation>();

  constructor(components: AllocationsComponents, init: AllocationsInit) {
    this.clock = components.clock;
    this.ranges = components.ranges;
    this.commits = components.commits;
    this.asker = components.asker;
    this.readiness = components.readiness;
    this.running = components.running;
    this.askTimeoutMs = init.askTimeoutMs;
  }

  get size(): number {
    return this.records.size;
  }

  /** `existing`: the attachment already had these addresses (a repeated request). */
  async allocate(req: { containerId: string; ifName: string }): Promise<{ addresses: AllocatedAddress[]; existing?: true }> {
    const containerId = checkContainerId(req?.containerId);
    const ifName = checkIfName(req?.ifName);
    const key = allocationKey(containerId, ifName);
    const deadline = this.clock.now() + this.askTimeoutMs;
    for (;;) {
      const existing = this.records.get(key);
      if (existing !== undefined) {
        await this.commits.flush();
        return { addresses: this.addressesOf(existing), existing: true };
      }
      const ready = this.readiness();
      if (!ready.ok) throw new IpamNotReadyError(ready.reason ?? 'unknown');
      const now = this.clock.now();
      const short = this.ranges.find((r) => !r.allocator.hasFree(now));
      if (short === undefined) break;
      await this.asker.waitFor(short, deadline);
    }
    const now = this.clock.now();
    const rec: Allocation = { containerId, ifName, offsets: this.ranges.map((r) => r.allocator.allocate(key, now)), allocatedAt: this.clock.wallNow() };
    this.records.set(key, rec);
    this.commits.mark();
    for (const r of this.ranges) this.asker.maybeAsk(r);
    await this.commits.flush();
    return { addresses: this.addressesOf(rec) };
  }

  /** Releases the attachment's addresses (every interface of the container without `ifName`). */
  async release(containerId: string, ifName?: string): Promise<{ released: string[] }> {
    checkContainerId(containerId);
    if (ifName !== undefined) checkIfName(ifName);
    if (!this.running()) throw new IpamNotReadyError(this.readiness().reason ?? 'not running');
    const released: string[] = [];
    const now = this.clock.now();
    for (const [key, rec] of this.records) {
      if (rec.containerId !== containerId || (ifName !== undefined && rec.ifName !== ifName)) continue;
      this.records.delete(key);
      for (const r of this.ranges) {
        const off = rec.offsets[r.index];
        if (off === undefined) continue;
        r.allocator.release(off, now);
        released.push(offsetToAddress(r.space, off));
      }
    }
    if (released.length > 0) this.commits.mark();
    await this.commits.flush();
    return { released };
  }

  list(): { containerId: string; ifName: string; addresses: string[]; allocatedAt: number }[] {
    return [...this.records.values()].map((r) => ({ containerId: r.containerId, ifName: r.ifName, addresses: this.addressesOf(r).map((a) => a.address), allocatedAt: r.allocatedAt }));
  }

  /** What the state file keeps. */
  snapshot(): PersistedAllocation[] {
    return [...this.records.values()];
  }

  /** The allocations of a state file (the allocators restore their offsets themselves). */
  restore(list: readonly PersistedAllocation[]): void {
    for (const a of list) this.records.set(allocationKey(a.containerId, a.ifName), { ...a });
  }

  private addressesOf(rec: Allocation): AllocatedAddress[] {
    const out: AllocatedAddress[] = [];
    for (const r of this.ranges) {
      const o = rec.offsets[r.index];
      if (o !== undefined) out.push({ address: offsetToAddress(r.space, o), prefixLength: r.space.prefixLength, family: r.space.family });
    }
    return out;
  }
}
