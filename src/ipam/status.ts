/** What `weft ipam status` shows: who owns what, and this peer's counts per space. */
import type { PeerName } from '../mesh/contracts.js';
import type { SpaceAllocator } from './allocator.js';
import type { Custody } from './custody.js';
import { writerOf, type Ring } from './ring.js';
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
  /**
   * Winning entries this router has not verified the right of (custody.ts): not trusted for
   * anything here. At most 20 are listed; `count` has them all.
   */
  unconfirmed: { count: number; entries: { range: string; owner: PeerName; writer: PeerName }[]; unknown: number };
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
  /** Records refused, each by itself (the rest of the message merged): a bad signature, a version or epoch past the bound, a record its writer may not write. */
  refusedSignature: number;
  refusedVersion: number;
  refusedRecord: number;
  /** Winning entries received whose writer this router could not verify owned the space. */
  unconfirmed: number;
  /** Donations to us that were not used (their giver not verified as the owner). */
  unusableGrants: number;
  /** Entries written back over space of ours someone else took. */
  defended: number;
  /** Space given to us and then given again by the same giver (not fought over). */
  doubleSpends: number;
  /** Space of ours taken at the version bound (cannot be written back). */
  defenceImpossible: number;
  /** Tombstones of ourselves cancelled with a revival. */
  revived: number;
  /** Reclaimed entries given back to a peer that revived. */
  givenBack: number;
}

export function zeroCounters(): IpamCounters {
  return {
    donationsGiven: 0,
    donationsReceived: 0,
    asksSent: 0,
    asksRefused: 0,
    materialized: 0,
    exhausted: 0,
    decodeErrors: 0,
    refusedSignature: 0,
    refusedVersion: 0,
    refusedRecord: 0,
    unconfirmed: 0,
    unusableGrants: 0,
    defended: 0,
    doubleSpends: 0,
    defenceImpossible: 0,
    revived: 0,
    givenBack: 0,
  };
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
    if (ring.isTombstoned(peer)) s.forgotten = { heir: ring.heirOf(peer) };
    out.push(s);
  }
  return out;
}

export function spaceStatus(
  space: AddressSpace,
  ring: Ring | undefined,
  custody: Custody | undefined,
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
    unconfirmed: unconfirmedOf(space, ring, custody),
    pendingAsk: ask,
  };
}

function unconfirmedOf(space: AddressSpace, ring: Ring | undefined, custody: Custody | undefined): SpaceStatus['unconfirmed'] {
  if (ring === undefined || custody === undefined) return { count: 0, entries: [], unknown: 0 };
  const all = custody.pendingList();
  // 'unknown': a token this router learned nothing of since it adopted the ring (custody.ts).
  const pending = all.filter(([, v]) => v !== 'unknown');
  const entries: SpaceStatus['unconfirmed']['entries'] = [];
  for (const [token] of pending.slice(0, 20)) {
    const i = ring.indexOf(token);
    const e = ring.entryList()[i]!;
    entries.push({ range: formatRange(space, e.token, ring.end(i)), owner: e.owner, writer: writerOf(e) });
  }
  return { count: pending.length, entries, unknown: all.length - pending.length };
}
