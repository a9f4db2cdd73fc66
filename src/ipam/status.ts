/** What `weft ipam status` shows: who owns what, and this peer's counts per space. */
import type { PeerName } from '../mesh/contracts.js';
import type { SpaceAllocator } from './allocator.js';
import type { Custody } from './custody.js';
import { writerOf, type Ring } from './ring.js';
import { formatRange, offsetToAddress, type AddressSpace } from './space.js';
import type { IpamStatus, SpaceStatus, OwnerStatus, IpamCounters } from '../api/types.js';

export type { IpamStatus, SpaceStatus, OwnerStatus, IpamCounters };

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
