/**
 * The addresses a peer handed out: one allocation per attachment (container id + interface name),
 * an address in each range. A repeated request gets the attachment's addresses again; a new one
 * waits while some range has no free address (the asker asks other peers for space) until
 * `askTimeoutMs` has passed. Every change is persisted (group commit) before it is answered.
 *
 * An allocation made for a CNI network (`network`: the CNI config's `name`) is "adding" until the
 * ADD's last router step (the pod guard's attach) confirms it, or until `addingLeaseMs` has passed
 * (an ADD that crashed does not pin it for ever). A conditional release (GC, the replay of a
 * journaled DEL) leaves alone an allocation that is adding, or of another network (or of none:
 * made by hand), or allocated or confirmed at or after the caller's `before` time.
 */
import type { AddressGrant, IpamReleaseRequest, IpamReleaseResponse } from '../api/types.js';
import type { Clock } from '../core/clock.js';
import { allocationKey, checkContainerId, checkIfName } from './config.js';
import { IpamBadRequestError, IpamNotReadyError } from './errors.js';
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
  /** The CNI network it was allocated for (undefined: by hand, or by the router itself). */
  network?: string;
  /** Wall ms of the last allocate or confirm of this attachment. */
  touchedAt: number;
  /** Monotonic ms until which it is adding (undefined: not adding). */
  addingUntil: number | undefined;
}

/** A release that applies only when every condition holds (see the file comment; `before` in wall ms). */
export type ReleaseCondition = Pick<IpamReleaseRequest, 'network' | 'before'>;

/** An allocation a conditional release left alone, and why. */
export type SkippedRelease = NonNullable<IpamReleaseResponse['skipped']>[number];

/** What GET /v1/ipam/allocations lists of one allocation (the API's type). */
export type ListedAllocation = AddressGrant;

/** A CNI network name (the spec's: letters, digits, '_', '.', '-'; starts with a letter or digit). */
const NETWORK = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$/;

export function checkNetwork(v: unknown): string {
  if (typeof v !== 'string' || !NETWORK.test(v)) throw new IpamBadRequestError('network', "must be 1-255 characters of A-Z a-z 0-9 _ . - starting with a letter or digit");
  return v;
}

/** How long an allocation made for a CNI ADD stays "adding" without the ADD confirming it. */
export const ADDING_LEASE_MS = 60_000;

/**
 * Where a range short of addresses gets more: the asker (other peers, ring mode) or the claimer
 * (a block through the API server, Kubernetes mode).
 */
export interface SpaceSource {
  /** Resolves when `range` has a free address (or is no longer usable); rejects at `deadline` or when no space can come. */
  waitFor(range: RangeState, deadline: number): Promise<void>;
  /** Gets more space in the background when the range runs low. */
  maybeAsk(range: RangeState): void;
}

export interface AllocationsComponents {
  clock: Clock;
  /** One per configured range, in order. */
  ranges: readonly RangeState[];
  commits: GroupCommit;
  asker: SpaceSource;
  /** Whether the IPAM may allocate now, and why not. */
  readiness(): { ok: boolean; reason?: string };
  /** Whether the IPAM runs (releases need no more). */
  running(): boolean;
}

export interface AllocationsInit {
  /** How long an allocation waits for space. */
  askTimeoutMs: number;
  /** How long an allocation for a CNI network stays adding unconfirmed; default ADDING_LEASE_MS. */
  addingLeaseMs?: number;
}

/** An allocation request; `network` and `timeoutMs` are optional (see the file comment). */
export interface AllocateRequest {
  containerId: string;
  ifName: string;
  /** The CNI network the allocation is for; undefined: made by hand (GC never releases it). */
  network?: string;
  /** Waits for space at most this long (and never longer than `askTimeoutMs`). */
  timeoutMs?: number;
}

export class Allocations {
  private readonly clock: Clock;
  private readonly ranges: readonly RangeState[];
  private readonly commits: GroupCommit;
  private readonly asker: SpaceSource;
  private readonly readiness: () => { ok: boolean; reason?: string };
  private readonly running: () => boolean;
  private readonly askTimeoutMs: number;
  private readonly addingLeaseMs: number;
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
    this.addingLeaseMs = init.addingLeaseMs ?? ADDING_LEASE_MS;
  }

  get size(): number {
    return this.records.size;
  }

  /** `existing`: the attachment already had these addresses (a repeated request). Resolves once persisted. */
  async allocate(req: AllocateRequest): Promise<{ addresses: AllocatedAddress[]; existing?: true }> {
    const { durable, ...r } = await this.assign(req);
    await durable;
    return r;
  }

  /**
   * `allocate` without waiting for the state file: resolves once the addresses are the
   * attachment's, with `durable` settling when that is persisted (rejecting when it cannot be).
   * The caller may set the addresses up meanwhile, but must not report them before `durable`.
   */
  async assign(req: AllocateRequest): Promise<{ addresses: AllocatedAddress[]; existing?: true; durable: Promise<void> }> {
    const containerId = checkContainerId(req?.containerId);
    const ifName = checkIfName(req?.ifName);
    const network = req.network === undefined || req.network === null ? undefined : checkNetwork(req.network);
    const timeoutMs = req.timeoutMs;
    if (timeoutMs !== undefined && timeoutMs !== null && (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs < 0)) {
      throw new IpamBadRequestError('timeoutMs', 'must be a number of milliseconds, 0 or more');
    }
    const key = allocationKey(containerId, ifName);
    const deadline = this.clock.now() + Math.min(this.askTimeoutMs, typeof timeoutMs === 'number' ? timeoutMs : Infinity);
    for (;;) {
      const existing = this.records.get(key);
      if (existing !== undefined) {
        // A repeated ADD holds it again as its own until it confirms: GC must not take it meanwhile.
        if (network !== undefined) {
          existing.touchedAt = this.clock.wallNow();
          existing.addingUntil = this.clock.now() + this.addingLeaseMs;
        }
        return { addresses: this.addressesOf(existing), existing: true, durable: this.durable() };
      }
      const ready = this.readiness();
      if (!ready.ok) throw new IpamNotReadyError(ready.reason ?? 'unknown');
      const now = this.clock.now();
      const short = this.ranges.find((r) => !r.allocator.hasFree(now));
      if (short === undefined) break;
      await this.asker.waitFor(short, deadline);
    }
    const now = this.clock.now();
    const wall = this.clock.wallNow();
    const rec: Allocation = {
      containerId,
      ifName,
      offsets: this.ranges.map((r) => r.allocator.allocate(key, now)),
      allocatedAt: wall,
      ...(network === undefined ? {} : { network }),
      touchedAt: wall,
      addingUntil: network === undefined ? undefined : now + this.addingLeaseMs,
    };
    this.records.set(key, rec);
    this.commits.mark();
    for (const r of this.ranges) this.asker.maybeAsk(r);
    return { addresses: this.addressesOf(rec), durable: this.durable() };
  }

  /** The flush of what is marked; a caller that gives up on it never leaves its failure unhandled. */
  private durable(): Promise<void> {
    const flush = this.commits.flush();
    flush.catch(() => undefined);
    return flush;
  }

  /**
   * The ADD of this attachment is done (its port is guarded): the allocation stops being adding.
   * Returns false when there is no such allocation.
   */
  confirm(containerId: string, ifName: string): boolean {
    const rec = this.records.get(allocationKey(containerId, ifName));
    if (rec === undefined) return false;
    rec.addingUntil = undefined;
    rec.touchedAt = this.clock.wallNow();
    return true;
  }

  /**
   * Releases the attachment's addresses (every interface of the container without `ifName`). With
   * `cond`, only the allocations that meet it (see the file comment); the others are `skipped`.
   */
  async release(containerId: string, ifName?: string, cond?: ReleaseCondition): Promise<{ released: string[]; skipped?: SkippedRelease[] }> {
    checkContainerId(containerId);
    if (ifName !== undefined) checkIfName(ifName);
    if (cond?.network !== undefined) checkNetwork(cond.network);
    if (cond?.before !== undefined && (typeof cond.before !== 'number' || !Number.isFinite(cond.before))) throw new IpamBadRequestError('before', 'must be a time in ms since the epoch');
    if (!this.running()) throw new IpamNotReadyError(this.readiness().reason ?? 'not running');
    const released: string[] = [];
    const skipped: SkippedRelease[] = [];
    const now = this.clock.now();
    for (const [key, rec] of this.records) {
      if (rec.containerId !== containerId || (ifName !== undefined && rec.ifName !== ifName)) continue;
      if (cond !== undefined) {
        const reason = this.skipReason(rec, cond, now);
        if (reason !== undefined) {
          skipped.push({ containerId: rec.containerId, ifName: rec.ifName, reason });
          continue;
        }
      }
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
    return skipped.length === 0 ? { released } : { released, skipped };
  }

  private skipReason(rec: Allocation, cond: ReleaseCondition, now: number): SkippedRelease['reason'] | undefined {
    if (cond.network !== undefined && rec.network !== cond.network) return 'other-network';
    if (rec.addingUntil !== undefined && now < rec.addingUntil) return 'adding';
    if (cond.before !== undefined && rec.touchedAt >= cond.before) return 'newer';
    return undefined;
  }

  list(): ListedAllocation[] {
    const now = this.clock.now();
    return [...this.records.values()].map((r) => ({
      containerId: r.containerId,
      ifName: r.ifName,
      addresses: this.addressesOf(r).map((a) => a.address),
      allocatedAt: r.allocatedAt,
      ...(r.network === undefined ? {} : { network: r.network }),
      ...(r.addingUntil !== undefined && now < r.addingUntil ? { adding: true as const } : {}),
    }));
  }

  /** What the state file keeps. */
  snapshot(): PersistedAllocation[] {
    return [...this.records.values()].map((r) => ({ containerId: r.containerId, ifName: r.ifName, allocatedAt: r.allocatedAt, offsets: r.offsets, ...(r.network === undefined ? {} : { network: r.network }) }));
  }

  /** The allocations of a state file (the allocators restore their offsets themselves); none is adding. */
  restore(list: readonly PersistedAllocation[]): void {
    for (const a of list) this.records.set(allocationKey(a.containerId, a.ifName), { ...a, touchedAt: a.allocatedAt, addingUntil: undefined });
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
