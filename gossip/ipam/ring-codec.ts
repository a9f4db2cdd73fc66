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
import { bytesToOffset, offsetToBytes, parseSpace } from './space.js';

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

/** Unpacks one msgpack value; `fail` receives the reason when the bytes are not one. */
export function unpack(data: Uint8Array, fail: (reason: string, cause?: unknown) => never): unknown {
  try {
    return unpackr.unpack(data);
  } catch (err) {
    return fail(`not a complete msgpack value (${err instanceof Error ? err.message.slice(0, 80) : 'unknown error'})`, err);
  }
}

export function encodeRing(r: RingParts, width: number): Uint8Array {
  const g = r.genesis;
  const entries = r.entries.map((e) => {
    const f: unknown[] = [offsetToBytes(e.token, width), e.owner, e.version, offsetToBytes(e.end - 1n, width)];
    if (e.reclaimed === true) f.push(true);
    return f;
  });
  return pack([FORMAT, g.clusterId, g.space, g.seeds, r.adopted, r.tombstones, entries]);
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

/** Decodes a ring already unpacked (`raw`), or bytes. */
export function decodeRing(data: Uint8Array | unknown[], what = 'ring'): RingParts {
  const top = arr(data instanceof Uint8Array ? unpack(data, fail) : data, what, 16);
  if (top.length !== 7) fail(`${what} has ${top.length} fields, expected 7`);
  if (top[0] !== FORMAT) fail(`${what} format ${JSON.stringify(top[0])} is not ${FORMAT}`);
  const clusterId = top[1];
  if (typeof clusterId !== 'string' || clusterId.length > RING_LIMITS.maxClusterId) fail(`${what} clusterId is not a string of at most ${RING_LIMITS.maxClusterId} characters`);
  const spaceText = top[2];
  if (typeof spaceText !== 'string') fail(`${what} space is ${typeName(spaceText)}, expected a string`);
  const sp = parseSpace(spaceText);
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
