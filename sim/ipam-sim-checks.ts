/**
 * Invariants of the IPAM simulation (ipam-sim.ts) over its peers' own views:
 *
 *   ownership   no offset allocatable by two live peers (each peer's view of what it owns minus
 *               its holds). `OwnershipCheck` re-checks after every round only the peers whose
 *               ownership changed (another instance, or its `ownershipGeneration` moved) against
 *               an index of every live peer's runs; `ownershipProblems` checks everything from
 *               scratch (end of phase).
 *   settled     `settledProblems` (end of phase): every peer ready, its allocations inside what it
 *               owns, nothing owned by a forgotten peer, no address listed by two peers.
 *   rings       `ringsEqual`: byte-equal rings without copying them.
 */
import type { PeerName } from '../src/mesh/contracts.js';
import type { Interval, Ipam } from '../src/ipam/index.js';

/** What the checks read of a simulated peer. */
export interface CheckedPeer {
  readonly name: PeerName;
  readonly alive: boolean;
  readonly ipam: Ipam;
}

/** Whether two encoded rings are byte-equal (a missing ring equals nothing). */
export function ringsEqual(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (a === undefined || b === undefined) return false;
  return a === b || (a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b));
}

/** What a peer may allocate from: what it owns minus what it holds (sorted, disjoint). */
export function allocatable(o: { owned: readonly Interval[]; held: readonly { start: bigint; end: bigint }[] }): Interval[] {
  if (o.held.length === 0) return [...o.owned];
  const held = [...o.held].sort((x, y) => (x.start < y.start ? -1 : 1));
  const out: Interval[] = [];
  for (const [a, b] of o.owned) {
    let cur = a;
    for (const h of held) {
      if (h.end <= cur || h.start >= b) continue;
      if (h.start > cur) out.push([cur, h.start]);
      cur = h.end > cur ? h.end : cur;
    }
    if (cur < b) out.push([cur, b]);
  }
  return out;
}

function overlapMessage(range: string, at: bigint, a: CheckedPeer, b: CheckedPeer): string {
  return `${range}: offsets ${at}.. owned by both ${a.name} and ${b.name}`;
}

/** Every live peer's allocatable runs, sorted by start, each run against the one before it. */
export function ownershipProblems(live: readonly CheckedPeer[], ranges: readonly string[]): string[] {
  const problems: string[] = [];
  for (let si = 0; si < ranges.length; si++) {
    const runs: { a: bigint; b: bigint; n: CheckedPeer }[] = [];
    for (const n of live) for (const [a, b] of allocatable(n.ipam.ownership()[si]!)) runs.push({ a, b, n });
    runs.sort((x, y) => (x.a < y.a ? -1 : x.a > y.a ? 1 : 0));
    for (let i = 1; i < runs.length; i++) if (runs[i]!.a < runs[i - 1]!.b) problems.push(overlapMessage(ranges[si]!, runs[i]!.a, runs[i - 1]!.n, runs[i]!.n));
  }
  return problems;
}

/** The end-of-phase checks of every live peer (see the file header). */
export function settledProblems(live: readonly CheckedPeer[]): string[] {
  const problems: string[] = [];
  const seen = new Map<string, string>();
  for (const n of live) {
    const st = n.ipam.status();
    if (!st.ready.ok) problems.push(`${n.name} not ready: ${st.ready.reason}`);
    for (const s of st.spaces) {
      if (s.conflicts.length > 0) problems.push(`${n.name} holds ${s.conflicts.length} allocations outside what it owns in ${s.range}`);
      for (const o of s.owners) if (o.forgotten !== undefined) problems.push(`${n.name}: forgotten ${o.peer} still owns ${o.size} in ${s.range}`);
    }
    for (const a of n.ipam.list())
      for (const addr of a.addresses) {
        const k = `${n.name}/${a.containerId}`;
        if (seen.has(addr)) problems.push(`${addr} listed by ${seen.get(addr)} and ${k}`);
        seen.set(addr, k);
      }
  }
  return problems;
}

/** Runs of one space, sorted by start (disjoint as long as the invariant holds). */
class RunIndex {
  private readonly starts: bigint[] = [];
  private readonly ends: bigint[] = [];
  private readonly owners: CheckedPeer[] = [];

  /** Index of the first run whose start is ≥ x. */
  private lowerBound(x: bigint): number {
    let lo = 0;
    let hi = this.starts.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.starts[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  remove(a: bigint, n: CheckedPeer): void {
    for (let i = this.lowerBound(a); i < this.starts.length && this.starts[i] === a; i++)
      if (this.owners[i] === n) {
        this.starts.splice(i, 1);
        this.ends.splice(i, 1);
        this.owners.splice(i, 1);
        return;
      }
  }

  /**
   * Inserts [a, b) of `n`; returns the peers of the runs it overlaps: those starting inside it, and
   * the nearest one starting before it when that reaches into it.
   */
  insert(a: bigint, b: bigint, n: CheckedPeer): CheckedPeer[] {
    const clash: CheckedPeer[] = [];
    const at = this.lowerBound(a);
    for (let i = at; i < this.starts.length && this.starts[i]! < b; i++) clash.push(this.owners[i]!);
    if (at > 0 && this.ends[at - 1]! > a) clash.push(this.owners[at - 1]!);
    this.starts.splice(at, 0, a);
    this.ends.splice(at, 0, b);
    this.owners.splice(at, 0, n);
    return clash;
  }
}

interface Seen {
  ipam: Ipam;
  generation: number;
  /** Allocatable runs per space, as indexed. */
  runs: Interval[][];
}

/** The ownership invariant, kept after every round by re-checking only what changed. */
export class OwnershipCheck {
  private readonly ranges: readonly string[];
  private readonly index: RunIndex[];
  private readonly seen = new Map<CheckedPeer, Seen>();

  constructor(ranges: readonly string[]) {
    this.ranges = ranges;
    this.index = ranges.map(() => new RunIndex());
  }

  /**
   * Drops peers no longer alive, re-reads those whose ownership changed, and returns the overlaps
   * their new runs have with any live peer's runs (the same as a full check, as long as the
   * previous calls found none).
   */
  update(live: readonly CheckedPeer[]): string[] {
    for (const [n, s] of this.seen)
      if (!n.alive) {
        this.drop(n, s);
        this.seen.delete(n);
      }
    const changed: CheckedPeer[] = [];
    for (const n of live) {
      const s = this.seen.get(n);
      if (s !== undefined && s.ipam === n.ipam && s.generation === n.ipam.ownershipGeneration) continue;
      if (s !== undefined) this.drop(n, s);
      changed.push(n);
    }
    // Every changed peer's old runs leave before any new run is checked: a handover between two
    // of them in the same round is not an overlap.
    const problems: string[] = [];
    for (const n of changed) {
      const runs = n.ipam.ownership().map((o) => allocatable(o));
      this.seen.set(n, { ipam: n.ipam, generation: n.ipam.ownershipGeneration, runs });
      runs.forEach((rs, si) => {
        for (const [a, b] of rs) for (const other of this.index[si]!.insert(a, b, n)) problems.push(overlapMessage(this.ranges[si]!, a, other, n));
      });
    }
    return problems;
  }

  private drop(n: CheckedPeer, s: Seen): void {
    s.runs.forEach((rs, si) => {
      for (const [a] of rs) this.index[si]!.remove(a, n);
    });
  }
}
