/**
 * Wire format of a ring (or a delta of one), version 2, msgpack:
 *
 *   ring    = [2, clusterId, space, seeds, adopted, life, entries]
 *   clusterId  str, at most 64 characters
 *   space      str, a normalized CIDR (as `parseSpace` prints it)
 *   seeds      [name, ...] 1..4096, strictly ascending, 16 lowercase hex digits each
 *   adopted    [[seedKey: bin 32, sig: bin 64], ...] strictly ascending by the seed's name (the
 *              hash of its key), each one of the seeds
 *   life       [[peer: name, epoch: positive integer, writerKey: bin 32, sig: bin 64
 *                (, prevKey: bin 32, prevSig: bin 64: the record of epoch - 1, from epoch 2 on)], ...]
 *              strictly ascending by peer
 *   entries    [[token: bin, owner: name, version: positive integer, last: bin, writerKey: bin 32,
 *                sig: bin 64 (, from: name, epoch: positive integer: reclaimed by an heir)], ...]
 *              strictly ascending by token; token and last are big-endian offsets (4 bytes IPv4,
 *              16 IPv6), token <= last < size: the entry owns [token, last + 1). A genesis entry
 *              has nil for writerKey and sig.
 *   proofs     optional (deltas and full states may carry it; it is not part of the ring's state):
 *              [entry, ...] at most 256, entries in the same form, each an older entry that gave
 *              the sender (or a peer before it) the space an entry of this ring was written in,
 *              oldest first (custody.ts: titles)
 *
 * Full state and deltas have the same shape (a delta carries only what changed, and always the
 * genesis, so a peer without a ring can adopt it). Encoding is deterministic (sorted arrays,
 * shortest integers), so equal rings have equal bytes. Decoding validates the shape of everything
 * before a ring is built and throws `GossipDecodeError('ipam', reason)`; whether the records are
 * validly signed and within bounds is for `admitRing` (admission.ts), record by record.
 */
import { Packr } from 'msgpackr/pack';
import { Unpackr } from 'msgpackr/unpack';
import { isPeerName, peerNameFromPublicKey } from '../core/ids.js';
import type { PeerName } from '../mesh/contracts.js';
import { GossipDecodeError } from '../mesh/errors.js';
import { IpamArgumentError } from './errors.js';
import type { Adoption, Genesis, LifeRecord, RingEntry, Signed } from './ring-records.js';
import { bytesToOffset, offsetToBytes, parseSpace, writeOffset, type AddressSpace } from './space.js';

export const IPAM_CHANNEL = 'ipam';
const FORMAT = 2;

export const RING_LIMITS = Object.freeze({ maxSeeds: 4096, maxTombstones: 100_000, maxEntries: 2_000_000, maxClusterId: 64, maxProofs: 256 });

export interface RingParts {
  genesis: Genesis;
  entries: readonly RingEntry[];
  life: readonly LifeRecord[];
  adopted: readonly Adoption[];
  /** Older entries proving custody (not merged; absent: none). */
  proofs?: readonly RingEntry[];
}

const KEY_LEN = 32;
const SIG_LEN = 64;

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
  const adopted = r.adopted.map((a) => [a.key, a.sig]);
  const life = r.life.map((l) => (l.prev === undefined ? [l.peer, l.epoch, l.writerKey, l.sig] : [l.peer, l.epoch, l.writerKey, l.sig, l.prev.writerKey, l.prev.sig]));
  return new PackBuilder().array(7).items(FORMAT, g.clusterId, g.space, g.seeds, adopted, life).array(count).raw(entries).finish();
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
  const f: unknown[] = [offsetToBytes(e.token, width), e.owner, e.version, offsetToBytes(e.end - 1n, width), e.writerKey ?? null, e.sig ?? null];
  if (e.reclaimed !== undefined) f.push(e.reclaimed.from, e.reclaimed.epoch);
  return pack(f);
}

function uintSize(v: number): number {
  return v < 0x80 ? 1 : v < 0x100 ? 2 : v < 0x10000 ? 3 : 5;
}

function shortAscii(s: string): boolean {
  if (s.length >= 0x20) return false;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return false;
  return true;
}

/**
 * Bytes of an entry as `pack` writes it: [bin8 token, fixstr owner, uint version, bin8 last,
 * bin8 key | nil, bin8 sig | nil (, fixstr from, uint epoch)]; 0 when the entry does not fit that
 * (a number past 32 bits, a name not short ASCII, a key or signature of another length).
 */
export function entrySize(e: RingEntry, width: number): number {
  const v = e.version;
  const r = e.reclaimed;
  if (v >>> 0 !== v || !shortAscii(e.owner) || width >= 0x100) return 0;
  const signed = e.sig !== undefined;
  if (signed ? e.sig.length !== SIG_LEN || e.writerKey?.length !== KEY_LEN : e.writerKey !== undefined) return 0;
  if (r !== undefined && (r.epoch >>> 0 !== r.epoch || !shortAscii(r.from))) return 0;
  return 1 + 2 * (2 + width) + 1 + e.owner.length + uintSize(v) + (signed ? 2 + KEY_LEN + 2 + SIG_LEN : 2) + (r === undefined ? 0 : 1 + r.from.length + uintSize(r.epoch));
}

function writeUint(out: Uint8Array, view: DataView, at: number, v: number): number {
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
  return at;
}

function writeStr(out: Uint8Array, at: number, s: string): number {
  out[at++] = 0xa0 | s.length;
  for (let i = 0; i < s.length; i++) out[at++] = s.charCodeAt(i);
  return at;
}

function writeBin(out: Uint8Array, at: number, b: Uint8Array): number {
  out[at++] = 0xc4;
  out[at++] = b.length;
  out.set(b, at);
  return at + b.length;
}

/** Writes an entry `entrySize` accepted at `at`; returns where it ends. */
export function writeEntry(out: Uint8Array, view: DataView, at: number, e: RingEntry, width: number): number {
  const r = e.reclaimed;
  out[at++] = r !== undefined ? 0x98 : 0x96;
  out[at++] = 0xc4;
  out[at++] = width;
  writeOffset(view, at, e.token, width);
  at += width;
  at = writeStr(out, at, e.owner);
  at = writeUint(out, view, at, e.version);
  out[at++] = 0xc4;
  out[at++] = width;
  writeOffset(view, at, e.end - 1n, width);
  at += width;
  if (e.sig === undefined) {
    out[at++] = 0xc0;
    out[at++] = 0xc0;
  } else {
    at = writeBin(out, at, e.writerKey!);
    at = writeBin(out, at, e.sig);
  }
  if (r !== undefined) {
    at = writeStr(out, at, r.from);
    at = writeUint(out, view, at, r.epoch);
  }
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
    if (values.length >= 0x10) throw new IpamArgumentError(`${values.length} items in one call (at most 15)`);
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
function names_(v: unknown, what: string, max: number): PeerName[] {
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

function bin(v: unknown, len: number): v is Uint8Array {
  return v instanceof Uint8Array && v.length === len;
}

function positive(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 1;
}

/** Names of public keys: the hash (`peerNameFromPublicKey`), or a cache of it. */
export type KeyNames = (publicKey: Uint8Array) => PeerName;

/**
 * Decodes a ring already unpacked (`raw`), or bytes. `known`: spaces already parsed (not parsed
 * again); `names`: how to name a key (a cache in `RingVerifier`).
 */
export function decodeRing(data: Uint8Array | unknown[], what = 'ring', known: readonly AddressSpace[] = [], names: KeyNames = peerNameFromPublicKey): RingParts {
  const top = arr(data instanceof Uint8Array ? unpack(data, fail) : data, what, 16);
  if (top.length !== 7 && top.length !== 8) fail(`${what} has ${top.length} fields, expected 7 or 8`);
  if (top[0] !== FORMAT) fail(`${what} format ${JSON.stringify(top[0])} is not ${FORMAT}`);
  const clusterId = top[1];
  if (typeof clusterId !== 'string' || clusterId.length > RING_LIMITS.maxClusterId) fail(`${what} clusterId is not a string of at most ${RING_LIMITS.maxClusterId} characters`);
  const spaceText = top[2];
  if (typeof spaceText !== 'string') fail(`${what} space is ${typeName(spaceText)}, expected a string`);
  const sp = known.find((k) => k.cidr === spaceText) ?? parseSpace(spaceText);
  if (typeof sp === 'string') fail(`${what} space: ${sp}`);
  if (sp.cidr !== spaceText) fail(`${what} space "${spaceText}" is not in normal form (${sp.cidr})`);
  const seeds = names_(top[3], `${what} seeds`, RING_LIMITS.maxSeeds);
  if (seeds.length === 0) fail(`${what} has no seeds`);
  if (BigInt(seeds.length) > sp.size) fail(`${what} has more seeds than addresses`);
  const seedSet = new Set(seeds);
  const adopted: Adoption[] = [];
  const rawAdopted = arr(top[4], `${what} adopted`, RING_LIMITS.maxSeeds);
  for (let i = 0; i < rawAdopted.length; i++) {
    const f = rawAdopted[i];
    if (!Array.isArray(f) || f.length !== 2 || !bin(f[0], KEY_LEN) || !bin(f[1], SIG_LEN)) fail(`${what} adopted ${i} is not [key, signature]`);
    const seed = names(f[0] as Uint8Array);
    if (!seedSet.has(seed)) fail(`${what} adopted ${seed} is not a seed`);
    if (i > 0 && seed <= adopted[i - 1]!.seed) fail(`${what} adopted not strictly ascending at ${seed}`);
    adopted.push({ seed, key: f[0] as Uint8Array, sig: f[1] as Uint8Array });
  }
  const life: LifeRecord[] = [];
  const rawLife = arr(top[5], `${what} life`, RING_LIMITS.maxTombstones);
  for (let i = 0; i < rawLife.length; i++) {
    const f = rawLife[i];
    if (!Array.isArray(f) || (f.length !== 4 && f.length !== 6)) fail(`${what} life ${i} is not [peer, epoch, key, signature(, key, signature)]`);
    const [peer, epoch, key, sig, pk, ps] = f as unknown[];
    if (typeof peer !== 'string' || !isPeerName(peer)) fail(`${what} life ${i} peer is not a peer name`);
    if (i > 0 && peer <= life[i - 1]!.peer) fail(`${what} life not strictly ascending at ${peer}`);
    if (!positive(epoch)) fail(`${what} life ${i} epoch is not a positive integer`);
    if (!bin(key, KEY_LEN) || !bin(sig, SIG_LEN)) fail(`${what} life ${i} has no key and signature`);
    if ((epoch === 1) !== (f.length === 4)) fail(`${what} life ${i}: epoch ${epoch} ${epoch === 1 ? 'has' : 'lacks'} the previous record`);
    const rec = { peer, epoch, writer: names(key), writerKey: key, sig };
    if (f.length === 4) life.push(rec);
    else {
      if (!bin(pk, KEY_LEN) || !bin(ps, SIG_LEN)) fail(`${what} life ${i} previous record has no key and signature`);
      const prev: Signed = { writer: names(pk), writerKey: pk, sig: ps };
      life.push({ ...rec, prev });
    }
  }
  const rawEntries = arr(top[6], `${what} entries`, RING_LIMITS.maxEntries);
  const entries: RingEntry[] = [];
  let prev = -1n;
  for (let i = 0; i < rawEntries.length; i++) {
    const e = decodeEntry(rawEntries[i], `${what} entry ${i}`, sp, names);
    if (e.token <= prev) fail(`${what} entries not strictly ascending at entry ${i}`);
    prev = e.token;
    entries.push(e);
  }
  const genesis = { clusterId, space: sp.cidr, seeds };
  if (top.length === 7) return { genesis, entries, life, adopted };
  const proofs = arr(top[7], `${what} proofs`, RING_LIMITS.maxProofs).map((f, i) => decodeEntry(f, `${what} proof ${i}`, sp, names));
  return { genesis, entries, life, adopted, proofs };
}

/** A ring's encoding (`ring`, 7 fields) with proofs appended (the same bytes when there are none). */
export function withProofs(ring: Uint8Array, proofs: readonly RingEntry[], width: number): Uint8Array {
  if (proofs.length === 0) return ring;
  if (ring[0] !== 0x97) throw new IpamArgumentError('not a ring encoding without proofs');
  return new PackBuilder().array(8).raw(ring.subarray(1)).array(proofs.length).raw(writeEntries(proofs, width)).finish();
}

/** One entry in `encodeEntry` form, unpacked (`f`); `what` names it in errors. */
export function decodeEntry(f: unknown, what: string, sp: AddressSpace, names: KeyNames = peerNameFromPublicKey): RingEntry {
  if (!Array.isArray(f) || (f.length !== 6 && f.length !== 8)) fail(`${what} is not [token, owner, version, last, key, signature(, from, epoch)]`);
  const [tb, owner, version, lb, key, sig, from, epoch] = f as unknown[];
  if (!(tb instanceof Uint8Array) || tb.length !== sp.bytes) fail(`${what} token is not ${sp.bytes} bytes`);
  const token = bytesToOffset(tb);
  if (token >= sp.size) fail(`${what} token is outside ${sp.cidr}`);
  if (typeof owner !== 'string' || !isPeerName(owner)) fail(`${what} owner is not a peer name`);
  if (!positive(version)) fail(`${what} version is not a positive integer`);
  if (!(lb instanceof Uint8Array) || lb.length !== sp.bytes) fail(`${what} last is not ${sp.bytes} bytes`);
  const last = bytesToOffset(lb);
  if (last < token || last >= sp.size) fail(`${what} last is not in [token, end of ${sp.cidr})`);
  const end = last + 1n;
  const genesis = key === null && sig === null;
  if (!genesis && !(bin(key, KEY_LEN) && bin(sig, SIG_LEN))) fail(`${what} has no key and signature (nor nil for both: a genesis entry)`);
  const signer = genesis ? {} : { writer: names(key as Uint8Array), writerKey: key as Uint8Array, sig: sig as Uint8Array };
  if (f.length === 6) return { token, owner, version, end, ...signer };
  if (typeof from !== 'string' || !isPeerName(from) || !positive(epoch)) fail(`${what} reclaim is not [from: peer name, epoch]`);
  return { token, owner, version, end, reclaimed: { from, epoch }, ...signer };
}
