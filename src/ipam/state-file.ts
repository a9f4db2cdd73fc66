/**
 * The persisted IPAM state of one peer (`ipam.state` in the state directory), msgpack:
 *
 *   ["weft-ipam-state", 2, clusterId, self, ranges, rings, allocations, released, held, custody, fenced]
 *   ranges       [cidr, ...] as configured (normalized)
 *   rings        [ring: bin (ring-codec form) | nil, ...] one per range; nil: not adopted yet
 *   allocations  [[containerId, ifName, allocatedAt (wall ms), [offset: bin | nil, ...], network?], ...]
 *                network: the CNI network (config `name`) it was allocated for; absent when made
 *                by hand. Added within version 2: older files (without it) read as made by hand,
 *                and older readers ignore it.
 *   released     per range: [[offset: bin, age (ms)], ...] oldest first
 *   held         per range: [[start: bin, end: bin, remaining (ms)], ...]
 *   custody      per range: nil (no ring yet) or [pending, holders, titles] (custody.ts):
 *                pending  [[token: bin, 0 (never confirmed) | 1 (unknown) | 2, entry | nil], ...]:
 *                         the tokens whose winner is not confirmed here (entry in ring-codec form)
 *                holders  [[start: bin, end: bin, peer name | "" (unknown)], ...]: the runs of
 *                         holders that differ from what the ring says (end: 0 for the top)
 *                titles   [[token: bin, [entry, ...]], ...]: how this peer got the space of its tokens
 *   fenced       true once this peer's space was taken while it was forgotten
 *
 * Quarantines and holds are kept as durations measured on the monotonic clock when the file is
 * written (a release's age, a hold's remaining time) and resume from there on load: time the peer
 * was down does not count, and no step of the wall clock can shorten them (it could with absolute
 * wall-clock times, which version 1 kept). `allocatedAt` is wall-clock, for display only.
 * A file that does not parse is corrupt; one written for another peer name, cluster or set of
 * ranges is foreign. Both are refused with `IpamStateError`, never reset. So is a version 1 file:
 * its ring is unsigned, and no peer would accept it.
 *
 * `FileIpamStore` writes atomically: temp file, fsync, rename, fsync of the directory.
 */
import { open, mkdir, readFile, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Clock } from '../core/clock.js';
import type { SpaceAllocator } from './allocator.js';
import { allocationKey } from './config.js';
import type { CustodyState, CustodyValue } from './custody.js';
import { IpamStateError } from './errors.js';
import { PackBuilder, decodeEntry, decodeRing, encodeEntry, typeName, unpack, type RingParts } from './ring-codec.js';
import type { RingEntry } from './ring.js';
import { bytesToOffset, offsetToBytes, parseSpace, type AddressSpace } from './space.js';
import { isPeerName } from '../core/ids.js';

export const STATE_MAGIC = 'weft-ipam-state';
export const STATE_VERSION = 2;

/** Where the state lives. `load` returns undefined when there is none yet. */
export interface IpamStore {
  /** For messages (a path, or "memory"). */
  readonly location: string;
  load(): Promise<Uint8Array | undefined>;
  save(data: Uint8Array): Promise<void>;
}

export interface PersistedAllocation {
  containerId: string;
  ifName: string;
  allocatedAt: number;
  /** One per range (undefined: none in that range). */
  offsets: (bigint | undefined)[];
  /** The CNI network it was allocated for (undefined: by hand, or by the router). */
  network?: string;
}

export interface PersistedState {
  clusterId: string;
  self: string;
  ranges: string[];
  rings: (RingParts | undefined)[];
  allocations: PersistedAllocation[];
  /** Per range, the release's age (ms) when written (or, restored, its monotonic time). */
  released: [offset: bigint, at: number][][];
  /** Per range, the hold's remaining time (ms) when written (or, restored, its monotonic end). */
  held: { start: bigint; end: bigint; until: number }[][];
  custody: (CustodyState | undefined)[];
  fenced: boolean;
}

/** A space's custody as the state file holds it (see the header), packed. */
export function encodeCustody(c: CustodyState, width: number): Uint8Array {
  return new PackBuilder()
    .items([
      c.pending.map(([t, v]) => [offsetToBytes(t, width), v === null ? 0 : v === 'unknown' ? 1 : 2, v === null || v === 'unknown' ? null : encodeEntry(v, width)]),
      c.holders.map((r) => [offsetToBytes(r.start, width), offsetToBytes(r.end, width), r.owner === 'unknown' ? '' : r.owner]),
      c.titles.map(([t, chain]) => [offsetToBytes(t, width), chain.map((e) => encodeEntry(e, width))]),
    ])
    .finish();
}

/** `custodyBytes`: per range, `encodeCustody`'s bytes (undefined: no ring yet). */
export function encodeState(s: Omit<PersistedState, 'custody'>, spaces: readonly AddressSpace[], ringBytes: readonly (Uint8Array | undefined)[], custodyBytes: readonly (Uint8Array | undefined)[]): Uint8Array {
  const w = (i: number) => spaces[i]!.bytes;
  const b = new PackBuilder().array(11).items(STATE_MAGIC, STATE_VERSION, s.clusterId, s.self, s.ranges).array(ringBytes.length);
  for (const r of ringBytes) b.bin(r);
  b.items(
    s.allocations.map((a) => {
      const row: unknown[] = [a.containerId, a.ifName, a.allocatedAt, a.offsets.map((o, i) => (o === undefined ? null : offsetToBytes(o, w(i))))];
      if (a.network !== undefined) row.push(a.network);
      return row;
    }),
    s.released.map((rs, i) => rs.map(([o, at]) => [offsetToBytes(o, w(i)), at])),
    s.held.map((hs, i) => hs.map((h) => [offsetToBytes(h.start, w(i)), offsetToBytes(h.end, w(i)), h.until])),
  );
  b.array(custodyBytes.length);
  for (const c of custodyBytes) b.raw(c ?? Uint8Array.of(0xc0));
  return b.items(s.fenced).finish();
}

/** What the state file keeps of one range (range-state.ts `snapshot`). */
export interface RangeSnapshot {
  space: AddressSpace;
  /** The ring's bytes (undefined: none yet). */
  ring: Uint8Array | undefined;
  /** `encodeCustody`'s bytes (undefined: no ring yet). */
  custody: Uint8Array | undefined;
  allocator: SpaceAllocator;
}

/** The bytes to persist for a peer's current state (monotonic times as durations from now). */
export function snapshotState(o: {
  clusterId: string;
  self: string;
  /** One per configured range, in order. */
  ranges: readonly RangeSnapshot[];
  fenced: boolean;
  allocations: PersistedAllocation[];
  clock: Clock;
}): Uint8Array {
  const now = o.clock.now();
  const s: Omit<PersistedState, 'custody'> = {
    clusterId: o.clusterId,
    self: o.self,
    ranges: o.ranges.map((r) => r.space.cidr),
    rings: [],
    allocations: o.allocations,
    released: o.ranges.map((r) => r.allocator.releasedEntries().map(([off, t]): [bigint, number] => [off, Math.max(0, now - t)])),
    held: o.ranges.map((r) => r.allocator.heldRuns().map((h) => ({ ...h, until: Math.max(0, h.until - now) }))),
    fenced: o.fenced,
  };
  return encodeState(
    s,
    o.ranges.map((r) => r.space),
    o.ranges.map((r) => r.ring),
    o.ranges.map((r) => r.custody),
  );
}

/**
 * Puts the persisted allocations, releases and holds of range `index` back into its allocator
 * (before its first sync): ages and remaining times resume from the monotonic clock's `now`.
 */
export function restoreAllocator(s: PersistedState, index: number, alloc: SpaceAllocator, now: number): void {
  for (const a of s.allocations) {
    const off = a.offsets[index];
    if (off !== undefined) alloc.restoreAllocated(off, allocationKey(a.containerId, a.ifName));
  }
  for (const [off, age] of s.released[index] ?? []) alloc.restoreReleased(off, now - age);
  for (const h of s.held[index] ?? []) alloc.restoreHeld({ ...h, until: now + h.until });
}

/** The cluster id a state file was written with, or undefined when it is not a readable state file. */
export function stateClusterId(data: Uint8Array): string | undefined {
  try {
    const top = unpack(data, (r) => {
      throw new Error(r);
    });
    return Array.isArray(top) && top[0] === STATE_MAGIC && typeof top[2] === 'string' ? top[2] : undefined;
  } catch {
    return undefined;
  }
}

export interface Expected {
  clusterId: string;
  self: string;
  ranges: readonly string[];
}

/** Parses and checks a state file; throws `IpamStateError` saying what is wrong and what to do. */
export function parseState(data: Uint8Array, location: string, expect: Expected): PersistedState {
  const corrupt = (what: string, cause?: unknown): never => {
    throw new IpamStateError(
      location,
      `the file is corrupt (${what}); it is not used and not overwritten: restore it from a backup, or move it away to start ` +
        'this peer without its allocations (containers using them must be restarted)',
      cause === undefined ? undefined : { cause },
    );
  };
  const top = unpack(data, (r, c) => corrupt(r, c));
  if (!Array.isArray(top) || top[0] !== STATE_MAGIC) {
    throw new IpamStateError(location, `not a weft IPAM state file (no "${STATE_MAGIC}" header); move it away or fix the state directory`);
  }
  if (top[1] === 1)
    throw new IpamStateError(
      location,
      'state format version 1 was written by a weft before signed rings: its ring cannot be used (no peer accepts unsigned entries). ' +
        'Upgrade every router of the cluster together: stop them all, move the ipam.state files away, start them with the same IPAM flags, and restart the pods',
    );
  if (top[1] !== STATE_VERSION) throw new IpamStateError(location, `state format version ${JSON.stringify(top[1])} is not supported (this weft reads ${STATE_VERSION})`);
  if (top.length !== 11) corrupt(`${top.length} fields, expected 11`);
  const [, , clusterId, self, rawRanges] = top as unknown[];
  const foreign = (field: string, found: unknown, want: unknown, todo: string): never => {
    throw new IpamStateError(location, `the file belongs to another ${field} (${JSON.stringify(found)}, this peer has ${JSON.stringify(want)}); it is not used and not overwritten: ${todo}`);
  };
  if (typeof clusterId !== 'string') corrupt(`clusterId is ${typeName(clusterId)}`);
  if (typeof self !== 'string') corrupt(`self is ${typeName(self)}`);
  if (!Array.isArray(rawRanges) || !rawRanges.every((r) => typeof r === 'string')) return corrupt('ranges is not a list of strings');
  const ranges = rawRanges as string[];
  if (self !== expect.self) foreign('peer', self, expect.self, 'this state directory was copied from another peer; remove the file (this peer starts without allocations)');
  if (clusterId !== expect.clusterId) foreign('cluster', clusterId, expect.clusterId, 'use the clusterId the file was written with, or remove the file to join this cluster afresh');
  if (ranges.join(',') !== expect.ranges.join(','))
    foreign('set of ranges', ranges, expect.ranges, 'configure the ranges the file was written with, or remove the file (this peer starts without allocations; its containers must be restarted)');
  const spaces = ranges.map((r) => {
    const s = parseSpace(r);
    return typeof s === 'string' ? corrupt(`range ${r}: ${s}`) : s;
  });
  const fields = top as unknown[];
  const list = (v: unknown, what: string): unknown[] => (Array.isArray(v) ? v : corrupt(`${what} is ${typeName(v)}, expected an array`));
  const time = (v: unknown, what: string): number => (typeof v === 'number' && Number.isFinite(v) ? v : corrupt(`${what} is not a time`));
  const duration = (v: unknown, what: string): number => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : corrupt(`${what} is not a duration`));
  const offset = (v: unknown, i: number, what: string, end = false): bigint => {
    const sp = spaces[i]!;
    if (!(v instanceof Uint8Array) || v.length !== sp.bytes) return corrupt(`${what} is not a ${sp.bytes}-byte offset`);
    const o = bytesToOffset(v);
    if (end && (o === 0n || o === sp.size)) return sp.size; // an end at the top of the space (0 when it wraps the width)
    return o < sp.size ? o : corrupt(`${what} is outside ${sp.cidr}`);
  };
  const perRange = (v: unknown, what: string): unknown[] => {
    const a = list(v, what);
    return a.length === spaces.length ? a : corrupt(`${what} has ${a.length} entries for ${spaces.length} ranges`);
  };
  const rings = perRange(fields[5], 'rings').map((r, i) => {
    if (r === null) return undefined;
    if (!(r instanceof Uint8Array)) return corrupt(`ring ${i} is ${typeName(r)}`);
    let parts: RingParts;
    try {
      parts = decodeRing(r, `ring ${i}`);
    } catch (err) {
      return corrupt(err instanceof Error ? err.message : String(err), err);
    }
    if (parts.genesis.space !== spaces[i]!.cidr) corrupt(`ring ${i} is for ${parts.genesis.space}, not ${spaces[i]!.cidr}`);
    return parts;
  });
  const allocations = list(fields[6], 'allocations').map((a, j): PersistedAllocation => {
    const f = list(a, `allocation ${j}`);
    const [containerId, ifName, at, offs, network] = f;
    if (typeof containerId !== 'string' || typeof ifName !== 'string') return corrupt(`allocation ${j} has no container id or interface`);
    if (network !== undefined && network !== null && typeof network !== 'string') return corrupt(`allocation ${j} has a network that is not a string`);
    const offsets = perRange(offs, `allocation ${j} offsets`).map((o, i) => (o === null ? undefined : offset(o, i, `allocation ${j} offset ${i}`)));
    return { containerId, ifName, allocatedAt: time(at, `allocation ${j} time`), offsets, ...(typeof network === 'string' ? { network } : {}) };
  });
  const released = perRange(fields[7], 'released').map((rs, i) =>
    list(rs, `released ${i}`).map((r, j): [bigint, number] => {
      const f = list(r, `released ${i}/${j}`);
      return [offset(f[0], i, `released ${i}/${j}`), duration(f[1], `released ${i}/${j} age`)];
    }),
  );
  const held = perRange(fields[8], 'held').map((hs, i) =>
    list(hs, `held ${i}`).map((h, j) => {
      const f = list(h, `held ${i}/${j}`);
      return { start: offset(f[0], i, `held ${i}/${j} start`), end: offset(f[1], i, `held ${i}/${j} end`, true), until: duration(f[2], `held ${i}/${j} remaining`) };
    }),
  );
  const entry = (b: unknown, i: number, what: string): RingEntry => {
    if (!(b instanceof Uint8Array)) return corrupt(`${what} is not an entry`);
    try {
      return decodeEntry(unpack(b, (r) => corrupt(r)), what, spaces[i]!);
    } catch (err) {
      return corrupt(err instanceof Error ? err.message : String(err), err);
    }
  };
  const custody = perRange(fields[9], 'custody').map((c, i): CustodyState | undefined => {
    if (c === null) return undefined;
    const [pending, holders, titles] = list(c, `custody ${i}`);
    return {
      pending: list(pending, `custody ${i} pending`).map((x, j): [bigint, CustodyValue] => {
        const f = list(x, `custody ${i} pending ${j}`);
        const t = offset(f[0], i, `custody ${i} pending ${j} token`);
        if (f[1] === 0) return [t, null];
        if (f[1] === 1) return [t, 'unknown'];
        if (f[1] !== 2) return corrupt(`custody ${i} pending ${j} is not [token, 0 | 1 | 2, entry]`);
        return [t, entry(f[2], i, `custody ${i} pending ${j} entry`)];
      }),
      holders: list(holders, `custody ${i} holders`).map((x, j) => {
        const f = list(x, `custody ${i} holders ${j}`);
        if (typeof f[2] !== 'string' || (f[2] !== '' && !isPeerName(f[2]))) return corrupt(`custody ${i} holders ${j} is not [start, end, peer name | ""]`);
        return { start: offset(f[0], i, `custody ${i} holders ${j} start`), end: offset(f[1], i, `custody ${i} holders ${j} end`, true), owner: f[2] === '' ? ('unknown' as const) : f[2] };
      }),
      titles: list(titles, `custody ${i} titles`).map((x, j): [bigint, RingEntry[]] => {
        const f = list(x, `custody ${i} titles ${j}`);
        return [offset(f[0], i, `custody ${i} titles ${j} token`), list(f[1], `custody ${i} titles ${j} chain`).map((b, k) => entry(b, i, `custody ${i} titles ${j}/${k}`))];
      }),
    };
  });
  if (typeof fields[10] !== 'boolean') corrupt('fenced is not a boolean');
  return { clusterId: clusterId as string, self: self as string, ranges, rings, allocations, released, held, custody, fenced: fields[10] as boolean };
}

/** The state in a file, replaced atomically on every save. */
export class FileIpamStore implements IpamStore {
  readonly location: string;
  private readonly write: ((path: string, data: Uint8Array) => Promise<void>) | undefined;

  /**
   * `write`, when given, replaces the file the same way (temp file, fsync, rename, fsync of the
   * directory, the directory made when missing) in fewer steps, e.g. one thread-pool job.
   */
  constructor(path: string, components: { write?: (path: string, data: Uint8Array) => Promise<void> } = {}) {
    this.location = path;
    this.write = components.write;
  }

  async load(): Promise<Uint8Array | undefined> {
    try {
      return await readFile(this.location);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new IpamStateError(this.location, `cannot read: ${(err as Error).message}`, { cause: err });
    }
  }

  async save(data: Uint8Array): Promise<void> {
    if (this.write !== undefined) {
      try {
        await this.write(this.location, data);
      } catch (err) {
        throw new IpamStateError(this.location, `cannot write: ${(err as Error).message}`, { cause: err });
      }
      return;
    }
    const dir = dirname(this.location);
    const tmp = `${this.location}.tmp-${process.pid}`;
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const fh = await open(tmp, 'w', 0o600);
      try {
        await fh.writeFile(data);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, this.location);
      const dh = await open(dir, 'r');
      try {
        await dh.sync();
      } finally {
        await dh.close();
      }
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw new IpamStateError(this.location, `cannot write: ${(err as Error).message}`, { cause: err });
    }
  }
}

/** The state in memory (tests, the simulation); `failWrites` simulates a crash or a full disk. */
export class MemoryIpamStore implements IpamStore {
  readonly location = 'memory';
  data: Uint8Array | undefined;
  failWrites = false;

  constructor(data?: Uint8Array) {
    this.data = data;
  }

  load(): Promise<Uint8Array | undefined> {
    return Promise.resolve(this.data);
  }

  save(data: Uint8Array): Promise<void> {
    if (this.failWrites) return Promise.reject(new IpamStateError(this.location, 'cannot write: writes disabled'));
    this.data = data;
    return Promise.resolve();
  }
}
