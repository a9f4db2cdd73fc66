/** What `weft ipam status` shows: who owns what, and this peer's counts per space. */
import type { PeerName } from '../contracts.js';
import type { SpaceAllocator } from './allocator.js';
import type { Ring } from './ring.js';
import { formatRange, offsetToAddress, type AddressSpace } from './space.js';

export interface OwnerStatus {
  peer: PeerName;
  /** CIDR when a run is one aligned block, else `first-last`. */
  ranges: string[];
  /** Addresses owned (decimal string: an IPv6 count can exceed 2^53). */
  size: string;
  /** A forgotten peer whose entries its heir has not taken over yet. */
  forgotten?: { heir: PeerName | undefined };
}

export interface SpaceStatus {
  range: string;
  family: 4 | 6;
  genesis: { seeds: PeerName[]; adopted: PeerName[]; waitingFor: PeerName[] } | undefined;
  owners: OwnerStatus[];
  tombstones: PeerName[];
  /** This peer's counts (decimal strings). */
  own: { owned: string; free: string; allocated: string; quarantined: string; reserved: string; held: string };
  /** Addresses allocated here that this peer does not own (fenced, or lost a race). */
  conflicts: string[];
  pendingAsk: { asking: PeerName | undefined; tried: PeerName[]; waitingAllocations: number };
}

export interface IpamStatus {
  self: PeerName;
  ready: { ok: boolean; reason?: string };
  fenced: boolean;
  bootstrap: { mode: 'seeds'; seeds: PeerName[] } | { mode: 'initPeers'; initPeers: number; waiting: { peer: PeerName; initPeers: number }[] };
  spaces: SpaceStatus[];
  allocations: number;
  ringConflicts: { count: number; last?: string };
  counters: IpamCounters;
}

export interface IpamCounters {
  donationsGiven: number;
  donationsReceived: number;
  asksSent: number;
  asksRefused: number;
  materialized: number;
  exhausted: number;
  decodeErrors: number;
}

export function ownersOf(ring: Ring): OwnerStatus[] {
  const by = new Map<PeerName, { runs: [bigint, bigint][]; size: bigint }>();
  const entries = ring.entryList();
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    const a = e.token;
    const b = ring.end(i);
    let o = by.get(e.owner);
    if (o === undefined) by.set(e.owner, (o = { runs: [], size: 0n }));
    const last = o.runs.at(-1);
    if (last !== undefined && last[1] === a) last[1] = b;
    else o.runs.push([a, b]);
    o.size += b - a;
  }
  const out: OwnerStatus[] = [];
  for (const [peer, o] of [...by].sort((x, y) => (x[1].size > y[1].size ? -1 : x[1].size < y[1].size ? 1 : x[0] < y[0] ? -1 : 1))) {
    const s: OwnerStatus = { peer, ranges: o.runs.map(([a, b]) => formatRange(ring.space, a, b)), size: o.size.toString() };
    if (ring.isTombstoned(peer)) s.forgotten = { heir: ring.heir(entries.findIndex((e) => e.owner === peer)) };
    out.push(s);
  }
  return out;
}

export function spaceStatus(
  space: AddressSpace,
  ring: Ring | undefined,
  alloc: SpaceAllocator,
  now: number,
  ask: SpaceStatus['pendingAsk'],
): SpaceStatus {
  const c = alloc.counts(now);
  return {
    range: space.cidr,
    family: space.family,
    genesis: ring === undefined ? undefined : { seeds: [...ring.genesis.seeds], adopted: ring.adopted(), waitingFor: ring.unconfirmedSeeds() },
    owners: ring === undefined ? [] : ownersOf(ring),
    tombstones: ring?.tombstones() ?? [],
    own: {
      owned: c.owned.toString(),
      free: c.free.toString(),
      allocated: c.allocated.toString(),
      quarantined: c.quarantined.toString(),
      reserved: c.reserved.toString(),
      held: c.held.toString(),
    },
    conflicts: alloc.conflicts().map((o) => offsetToAddress(space, o)),
    pendingAsk: ask,
  };
}
