/**
 * Wire format of a ring (or a delta of one), version 1, msgpack:
 *
 *   ring    = [1, clusterId, space, seeds, adopted, tombstones, entries]
 *   clusterId  str, at most 64 characters
 *   space      str, a normalized CIDR (as `parseSpace` prints it)
 *   seeds      [name, ...] 1..4096, strictly ascending, 16 lowercase hex digits each
 *   adopted    [name, ...] strictly ascending, each one of the seeds
 *   tombstones [name, ...] strictly ascending
 *   entries    [[token: bin, owner: name, version: positive safe integer, last: bin
 *                (, true: reclaimed by an heir)], ...] strictly ascending by token; token and
 *              last are big-endian offsets (4 bytes IPv4, 16 IPv6), token ≤ last < size: the
 *              entry owns [token, last + 1)
 *
 * Full state and deltas have the same shape (a delta carries only what changed, and always the
 * genesis, so a peer without a ring can adopt it). Encoding is deterministic (sorted arrays,
 * shortest integers), so equal rings have equal bytes. Decoding validates everything before a
 * ring is built and throws `GossipDecodeError('ipam', reason)`.
 */
import { Packr, Unpackr } from 'msgpackr';
import { isPeerName } from '../../src/core/ids.js';
import type { PeerName } from '../contracts.js';
import { GossipDecodeError } from '../errors.js';
import type { Genesis, RingEntry } from './ring.js';
import { bytesToOffset, offsetToBytes, parseSpace, writeOffset, type AddressSpace } from './space.js';

export const IPAM_CHANNEL = 'ipam';
const FORMAT = 1;

export const RING_LIMITS = Object.freeze({ maxSeeds: 4096, maxTombstones: 100_000, maxEntries: 2_000_000, maxClusterId: 64 });

export interface RingParts {
  genesis: Genesis;
  entries: readonly RingEntry[];
  tombstones: readonly PeerName[];
  adopted: readonly PeerName[];
}

const packr = new Packr({ useRecords: false, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, int64AsType: 'number', mapsAsObjects: false });

/** Packs plain values (arrays, strings, safe integers, bytes) into a buffer of its own. */
export function pack(value: unknown): Uint8Array {
  return Uint8Array.prototype.slice.call(packr.pack(value));
}

/**
 * Packs into the packer's own buffer: valid until `finish` copies it (the packer moves on to fresh
 * space for every value and never writes over what it returned).
 */
function packView(value: unknown): Uint8Array {
  return packr.pack(value);
}

/** Unpacks one msgpack value; `fail` receives the reason when the bytes are not one. */
export function unpack(data: Uint8Array, fail: (reason: string, cause?: unknown) => never): unknown {
  try {
    return unpackr.unpack(data);
  } catch (err) {
    return fail(`not a complete msgpack value (${err instanceof Error ? err.message.slice(0, 80) : 'unknown error'})`, err);
  }
}

/** The bytes `pack` gives for the whole ring. */
export function encodeRing(r: RingParts, width: number): Uint8Array {
  return assembleRing(r, r.entries.length, writeEntries(r.entries, width));
}

/** A ring from its parts and its `count` entries' encodings, back to back. */
export function assembleRing(r: Omit<RingParts, 'entries'>, count: number, entries: Uint8Array): Uint8Array {
  const g = r.genesis;
  return new PackBuilder().array(7).items(FORMAT, g.clusterId, g.space, g.seeds, r.adopted, r.tombstones).array(count).raw(entries).finish();
}

/**
 * The entries' encodings back to back, written here one by one (those `pack` would write otherwise,
 * none in practice, are packed), in a buffer with `room` bytes to spare after them; `starts`
 * receives where each entry begins.
 */
export function writeEntries(entries: readonly RingEntry[], width: number, starts?: number[], room = 0): Uint8Array {
  const n = entries.length;
  let size = 0;
  let packed: Map<number, Uint8Array> | undefined;
  for (let i = 0; i < n; i++) {
    const e = entries[i]!;
    const k = entrySize(e, width);
    if (k > 0) size += k;
    else {
      const bytes = encodeEntry(e, width);
      (packed ??= new Map()).set(i, bytes);
      size += bytes.length;
    }
  }
  const out = new Uint8Array(size + room);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  let at = 0;
  for (let i = 0; i < n; i++) {
    starts?.push(at);
    const p = packed?.get(i);
    if (p === undefined) at = writeEntry(out, view, at, entries[i]!, width);
    else {
      out.set(p, at);
      at += p.length;
    }
  }
  return out.subarray(0, size);
}

/** One entry as it appears inside a ring's `entries`. */
export function encodeEntry(e: RingEntry, width: number): Uint8Array {
  const f: unknown[] = [offsetToBytes(e.token, width), e.owner, e.version, offsetToBytes(e.end - 1n, width)];
  if (e.reclaimed === true) f.push(true);
  return pack(f);
}

/**
 * Bytes of an entry as `pack` writes it: [bin8 token, fixstr owner, uint version, bin8 last(,
 * true)]; 0 when the entry does not fit that (a version past 32 bits, an owner not short ASCII).
 */
export function entrySize(e: RingEntry, width: number): number {
  const v = e.version;
  const o = e.owner;
  if (v >>> 0 !== v || o.length >= 0x20 || width >= 0x100) return 0;
  for (let i = 0; i < o.length; i++) if (o.charCodeAt(i) >= 0x80) return 0;
  return 1 + 2 * (2 + width) + 1 + o.length + (v < 0x80 ? 1 : v < 0x100 ? 2 : v < 0x10000 ? 3 : 5) + (e.reclaimed === true ? 1 : 0);
}

/** Writes an entry `entrySize` accepted at `at`; returns where it ends. */
export function writeEntry(out: Uint8Array, view: DataView, at: number, e: RingEntry, width: number): number {
  out[at++] = e.reclaimed === true ? 0x95 : 0x94;
  out[at++] = 0xc4;
  out[at++] = width;
  writeOffset(view, at, e.token, width);
  at += width;
  const o = e.owner;
  out[at++] = 0xa0 | o.length;
  for (let i = 0; i < o.length; i++) out[at++] = o.charCodeAt(i);
  const v = e.version;
  if (v < 0x80) out[at++] = v;
  else if (v < 0x100) {
    out[at++] = 0xcc;
    out[at++] = v;
  } else if (v < 0x10000) {
    out[at++] = 0xcd;
    view.setUint16(at, v);
    at += 2;
  } else {
    out[at++] = 0xce;
    view.setUint32(at, v);
    at += 4;
  }
  out[at++] = 0xc4;
  out[at++] = width;
  writeOffset(view, at, e.end - 1n, width);
  at += width;
  if (e.reclaimed === true) out[at++] = 0xc3;
  return at;
}

const NIL = Uint8Array.of(0xc0);

/**
 * One msgpack value put together from pieces: the bytes `pack` gives for the whole value (an array
 * is its header followed by its items), without copying large binaries (rings) through the packer,
 * whose buffer would grow to their size and be reallocated at that size.
 */
export class PackBuilder {
  private readonly parts: Uint8Array[] = [];
  private length = 0;

  /** The header of an array of `n` items (the items follow). */
  array(n: number): this {
    return this.raw(n < 0x10 ? Uint8Array.of(0x90 | n) : n < 0x10000 ? Uint8Array.of(0xdc, n >>> 8, n & 0xff) : Uint8Array.of(0xdd, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff));
  }

  /** Values packed one after the other (at most 15 per call). */
  items(...values: unknown[]): this {
    if (values.length >= 0x10) throw new RangeError(`${values.length} items in one call (at most 15)`);
    return this.raw(packView(values).subarray(1));
  }

  /** A binary; nil when undefined. */
  bin(data: Uint8Array | undefined): this {
    if (data === undefined) return this.raw(NIL);
    const n = data.length;
    this.raw(n < 0x100 ? Uint8Array.of(0xc4, n) : n < 0x10000 ? Uint8Array.of(0xc5, n >>> 8, n & 0xff) : Uint8Array.of(0xc6, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff));
    return this.raw(data);
  }

  /** Bytes already packed (whole values). */
  raw(data: Uint8Array): this {
    this.parts.push(data);
    this.length += data.length;
    return this;
  }

  /** The value, in a buffer of its own (a small one is a slice of Node's shared pool). */
  finish(): Uint8Array {
    const out = Buffer.allocUnsafe(this.length);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

function fail(reason: string, cause?: unknown): never {
  throw new GossipDecodeError(IPAM_CHANNEL, reason, cause === undefined ? undefined : { cause });
}

export function typeName(v: unknown): string {
  if (v === null || v === undefined) return 'nil';
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Uint8Array) return 'binary';
  return typeof v;
}

function arr(v: unknown, what: string, max: number): unknown[] {
  if (!Array.isArray(v)) fail(`${what} is ${typeName(v)}, expected an array`);
  if (v.length > max) fail(`${what} has ${v.length} items (at most ${max})`);
  return v;
}

/** Strictly ascending peer names. */
function names(v: unknown, what: string, max: number): PeerName[] {
  const a = arr(v, what, max);
  let prev = '';
  for (let i = 0; i < a.length; i++) {
    const s = a[i];
    if (typeof s !== 'string' || !isPeerName(s)) fail(`${what}[${i}] is not a peer name`);
    if (s <= prev) fail(`${what} not strictly ascending at ${s}`);
    prev = s;
  }
  return a as PeerName[];
}

/** Decodes a ring already unpacked (`raw`), or bytes. `known`: spaces already parsed (not parsed again). */
export function decodeRing(data: Uint8Array | unknown[], what = 'ring', known: readonly AddressSpace[] = []): RingParts {
  const top = arr(data instanceof Uint8Array ? unpack(data, fail) : data, what, 16);
  if (top.length !== 7) fail(`${what} has ${top.length} fields, expected 7`);
  if (top[0] !== FORMAT) fail(`${what} format ${JSON.stringify(top[0])} is not ${FORMAT}`);
  const clusterId = top[1];
  if (typeof clusterId !== 'string' || clusterId.length > RING_LIMITS.maxClusterId) fail(`${what} clusterId is not a string of at most ${RING_LIMITS.maxClusterId} characters`);
  const spaceText = top[2];
  if (typeof spaceText !== 'string') fail(`${what} space is ${typeName(spaceText)}, expected a string`);
  const sp = known.find((k) => k.cidr === spaceText) ?? parseSpace(spaceText);
  if (typeof sp === 'string') fail(`${what} space: ${sp}`);
  if (sp.cidr !== spaceText) fail(`${what} space "${spaceText}" is not in normal form (${sp.cidr})`);
  const seeds = names(top[3], `${what} seeds`, RING_LIMITS.maxSeeds);
  if (seeds.length === 0) fail(`${what} has no seeds`);
  if (BigInt(seeds.length) > sp.size) fail(`${what} has more seeds than addresses`);
  const seedSet = new Set(seeds);
  const adopted = names(top[4], `${what} adopted`, RING_LIMITS.maxSeeds);
  for (const a of adopted) if (!seedSet.has(a)) fail(`${what} adopted ${a} is not a seed`);
  const tombstones = names(top[5], `${what} tombstones`, RING_LIMITS.maxTombstones);
  const rawEntries = arr(top[6], `${what} entries`, RING_LIMITS.maxEntries);
  const entries: RingEntry[] = [];
  let prev = -1n;
  for (let i = 0; i < rawEntries.length; i++) {
    const f = rawEntries[i];
    if (!Array.isArray(f) || f.length < 4 || f.length > 5 || (f.length === 5 && f[4] !== true)) fail(`${what} entry ${i} is not [token, owner, version, last(, true)]`);
    const [tb, owner, version, lb] = f as [unknown, unknown, unknown, unknown];
    if (!(tb instanceof Uint8Array) || tb.length !== sp.bytes) fail(`${what} entry ${i} token is not ${sp.bytes} bytes`);
    const token = bytesToOffset(tb);
    if (token >= sp.size) fail(`${what} entry ${i} token is outside ${sp.cidr}`);
    if (token <= prev) fail(`${what} entries not strictly ascending at entry ${i}`);
    prev = token;
    if (typeof owner !== 'string' || !isPeerName(owner)) fail(`${what} entry ${i} owner is not a peer name`);
    if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1) fail(`${what} entry ${i} version is not a positive integer`);
    if (!(lb instanceof Uint8Array) || lb.length !== sp.bytes) fail(`${what} entry ${i} last is not ${sp.bytes} bytes`);
    const last = bytesToOffset(lb);
    if (last < token || last >= sp.size) fail(`${what} entry ${i} last is not in [token, end of ${sp.cidr})`);
    const end = last + 1n;
    entries.push(f.length === 5 ? { token, owner, version, end, reclaimed: true } : { token, owner, version, end });
  }
  return { genesis: { clusterId, space: sp.cidr, seeds }, entries, tombstones, adopted };
}
