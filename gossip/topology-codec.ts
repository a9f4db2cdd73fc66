/**
 * Wire format of the "topology" channel (version 1), msgpack:
 *
 *   message    = [1, [record, ...]]                       records strictly ascending by name
 *   record     = [name, nickname, publicKey, version, endpoints, connections, left]
 *     name       str, 16 lowercase hex digits = peerNameFromPublicKey(publicKey)
 *     nickname   str, at most 64 characters
 *     publicKey  bin, 32 bytes
 *     version    positive safe integer (unsigned, shortest form)
 *     endpoints  [str, ...] at most 64, each "a.b.c.d:port" or "[v6]:port"
 *     connections [[peer: str, established: bool, endpoint: str | nil], ...] at most 4096,
 *                strictly ascending by peer, never the record's own name
 *     left       nil | "forgotten" | "gone"   (a tombstone: endpoints and connections are empty)
 *
 * Full state and deltas have the same shape. A record's canonical bytes are its encoding by
 * `encodeRecord` (msgpack written by hand: shortest headers, unsigned integers, no floats); every
 * receiver re-encodes what it keeps, so equal records have equal bytes on every peer, and the byte
 * order breaks ties between different records of the same version. A message is the array header
 * followed by the canonical bytes of each record (`encodeMessage`), so full state is a
 * concatenation of cached bytes. Decoding (msgpackr) validates the whole message before anything
 * uses it; records byte-identical to the receiver's copy are recognised without being decoded.
 */
import { isIPv6 } from 'node:net';
import { Unpackr } from 'msgpackr';
import { peerIdFromPeerName, peerNameFromPublicKey } from '../src/core/ids.js';
import { Writer, arrayHeader, containerAt, skip } from './canonical-msgpack.js';
import type { PeerName } from './contracts.js';
import { GossipDecodeError } from './errors.js';

export type PeerLeft = 'forgotten' | 'gone';

export interface PeerConnection {
  readonly peer: PeerName;
  readonly established: boolean;
  /** The endpoint this connection uses (the remote's address as seen from the record's owner). */
  readonly endpoint?: string;
}

/** One peer's record. Treat as immutable: the topology shares these objects with its readers. */
export interface PeerRecord {
  readonly name: PeerName;
  readonly nickname: string;
  readonly publicKey: Uint8Array;
  readonly version: number;
  readonly endpoints: readonly string[];
  readonly connections: readonly PeerConnection[];
  /** Set on tombstones: removed by `weft forget` ("forgotten") or unreachable for too long ("gone"). */
  readonly left?: PeerLeft;
}

export interface TopologyLimits {
  maxMessageBytes: number;
  maxRecords: number;
  maxEndpoints: number;
  maxConnections: number;
  maxNicknameLength: number;
}

export const DEFAULT_TOPOLOGY_LIMITS: Readonly<TopologyLimits> = Object.freeze({
  maxMessageBytes: 4 * 1024 * 1024,
  maxRecords: 100_000,
  maxEndpoints: 64,
  maxConnections: 4096,
  maxNicknameLength: 64,
});

export const TOPOLOGY_CHANNEL = 'topology';
const FORMAT = 1;
const PUBLIC_KEY_BYTES = 32;
const MAX_ENDPOINT_LENGTH = 64;

const unpackr = new Unpackr({ useRecords: false, copyBuffers: true, int64AsType: 'number', mapsAsObjects: true });

const writer = new Writer();

/** Canonical bytes of one record. */
export function encodeRecord(r: PeerRecord): Uint8Array {
  const w = writer;
  w.at = 0;
  w.array(7);
  w.str(r.name);
  w.str(r.nickname);
  w.bin(r.publicKey);
  w.uint(r.version);
  w.array(r.endpoints.length);
  for (const e of r.endpoints) w.str(e);
  w.array(r.connections.length);
  for (const c of r.connections) {
    w.byte(0x93);
    w.str(c.peer);
    w.byte(c.established ? 0xc3 : 0xc2);
    if (c.endpoint === undefined) w.byte(0xc0);
    else w.str(c.endpoint);
  }
  if (r.left === undefined) w.byte(0xc0);
  else w.str(r.left);
  return w.take();
}


/** A message from records' canonical bytes, already sorted by name. */
export function encodeTopologyMessage(sortedRecordBytes: readonly Uint8Array[]): Uint8Array {
  const header = arrayHeader(sortedRecordBytes.length);
  let size = 2 + header.length;
  for (const b of sortedRecordBytes) size += b.length;
  const out = new Uint8Array(size);
  out[0] = 0x92;
  out[1] = FORMAT;
  out.set(header, 2);
  let at = 2 + header.length;
  for (const b of sortedRecordBytes) {
    out.set(b, at);
    at += b.length;
  }
  return out;
}

/** Total order of records of one peer: version, then canonical bytes. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

/** "a.b.c.d:port" or "[v6]:port", port 1..65535 without leading zeros. */
export function isEndpoint(s: string): boolean {
  if (s.length > MAX_ENDPOINT_LENGTH) return false;
  let portAt: number;
  if (s.charCodeAt(0) === 0x5b /* [ */) {
    const close = s.indexOf(']:');
    if (close < 0 || !isIPv6(s.slice(1, close))) return false;
    portAt = close + 2;
  } else {
    const colon = s.lastIndexOf(':');
    if (colon < 0 || decimalRun(s, 0, colon, 4, '.') === -1) return false;
    portAt = colon + 1;
  }
  const port = decimalRun(s, portAt, s.length, 1, '');
  return port >= 1 && port <= 65535;
}

/**
 * Parses `parts` decimal numbers separated by `sep` in s[from, to): each without leading zeros,
 * at most 255 when there are several parts (IPv4) or 5 digits when one (a port). Returns the
 * last number, or -1.
 */
function decimalRun(s: string, from: number, to: number, parts: number, sep: string): number {
  let i = from;
  let v = -1;
  for (let p = 0; p < parts; p++) {
    if (p > 0) {
      if (s[i] !== sep) return -1;
      i++;
    }
    const start = i;
    v = 0;
    while (i < to && s.charCodeAt(i) >= 0x30 && s.charCodeAt(i) <= 0x39 && i - start < 5) v = v * 10 + s.charCodeAt(i++) - 0x30;
    if (i === start || (i - start > 1 && s.charCodeAt(start) === 0x30)) return -1;
    if (parts > 1 && v > 255) return -1;
  }
  return i === to ? v : -1;
}

/** `isPeerName` without a regular expression (it runs for every connection of every record). */
function isName(s: string): boolean {
  if (s.length !== 16) return false;
  for (let i = 0; i < 16; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false;
  }
  return true;
}

/** Structural equality (cheaper than encoding both when nothing changed). */
export function sameRecord(a: PeerRecord, b: PeerRecord): boolean {
  if (a === b) return true;
  if (a.name !== b.name || a.version !== b.version || a.nickname !== b.nickname || a.left !== b.left) return false;
  if (a.endpoints.length !== b.endpoints.length || a.connections.length !== b.connections.length) return false;
  for (let i = 0; i < a.endpoints.length; i++) if (a.endpoints[i] !== b.endpoints[i]) return false;
  for (let i = 0; i < a.connections.length; i++) {
    const x = a.connections[i]!;
    const y = b.connections[i]!;
    if (x.peer !== y.peer || x.established !== y.established || x.endpoint !== y.endpoint) return false;
  }
  return sameBytes(a.publicKey, b.publicKey);
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Checks one record's fields (everything except the name/public-key hash, which `decodeTopologyMessage`
 * checks with a cache). Returns the problems found, each naming the field.
 */
export function recordProblems(r: PeerRecord, limits: Readonly<TopologyLimits> = DEFAULT_TOPOLOGY_LIMITS): string[] {
  const out: string[] = [];
  if (!isName(r.name)) out.push(`name ${JSON.stringify(r.name)} is not a peer name`);
  if (r.nickname.length > limits.maxNicknameLength) out.push(`nickname longer than ${limits.maxNicknameLength} characters`);
  if (r.publicKey.length !== PUBLIC_KEY_BYTES) out.push(`publicKey is ${r.publicKey.length} bytes, expected ${PUBLIC_KEY_BYTES}`);
  if (!Number.isSafeInteger(r.version) || r.version < 1) out.push(`version ${r.version} is not a positive integer`);
  if (r.endpoints.length > limits.maxEndpoints) out.push(`${r.endpoints.length} endpoints (at most ${limits.maxEndpoints})`);
  for (const e of r.endpoints) if (!isEndpoint(e)) out.push(`endpoint ${JSON.stringify(e)} is not ip:port`);
  if (r.endpoints.length > 1 && new Set(r.endpoints).size !== r.endpoints.length) out.push('duplicate endpoints');
  if (r.connections.length > limits.maxConnections) out.push(`${r.connections.length} connections (at most ${limits.maxConnections})`);
  let prev = '';
  for (const c of r.connections) {
    if (!isName(c.peer)) out.push(`connection peer ${JSON.stringify(c.peer)} is not a peer name`);
    else if (c.peer === r.name) out.push('connection to itself');
    else if (c.peer <= prev) out.push(`connections not strictly ascending by peer at ${c.peer}`);
    prev = c.peer;
    if (c.endpoint !== undefined && !isEndpoint(c.endpoint)) out.push(`connection endpoint ${JSON.stringify(c.endpoint)} is not ip:port`);
  }
  if (r.left !== undefined && (r.endpoints.length > 0 || r.connections.length > 0)) out.push(`tombstone (${r.left}) with endpoints or connections`);
  return out;
}

function fail(reason: string, cause?: unknown): never {
  throw new GossipDecodeError(TOPOLOGY_CHANNEL, reason, cause === undefined ? undefined : { cause });
}

function str(v: unknown, what: string): string {
  if (typeof v !== 'string') fail(`${what} is ${typeName(v)}, expected a string`);
  return v;
}

function arr(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) fail(`${what} is ${typeName(v)}, expected an array`);
  return v;
}

function typeName(v: unknown): string {
  if (v === null) return 'nil';
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Uint8Array) return 'binary';
  return typeof v;
}

function decodeRecord(raw: unknown, i: number, limits: Readonly<TopologyLimits>, known?: (name: PeerName) => KnownRecord | undefined): PeerRecord {
  const fields = arr(raw, `record ${i}`);
  if (fields.length !== 7) fail(`record ${i} has ${fields.length} fields, expected 7`);
  const name = str(fields[0], `record ${i} name`);
  const at = isName(name) ? `record ${name}` : `record ${i}`;
  // Parts equal to the held copy are shared with it (a peer holds one record per peer, and a new
  // version usually differs from the last in one connection); other strings are copied flat, so
  // kept records never pin the decoder's string buffers.
  const held = known?.(name)?.record;
  const rawNickname = str(fields[1], `${at} nickname`);
  const nickname = held?.nickname === rawNickname ? held.nickname : flat(rawNickname);
  const rawKey = fields[2];
  if (!(rawKey instanceof Uint8Array)) fail(`${at} publicKey is ${typeName(rawKey)}, expected binary`);
  const keyKnown = held !== undefined && sameBytes(held.publicKey, rawKey);
  const publicKey = keyKnown ? held.publicKey : rawKey;
  const version = fields[3];
  if (typeof version !== 'number') fail(`${at} version is ${typeName(version)}, expected a number`);
  const rawEndpoints = arr(fields[4], `${at} endpoints`);
  if (rawEndpoints.length > limits.maxEndpoints) fail(`${at} has ${rawEndpoints.length} endpoints (at most ${limits.maxEndpoints})`);
  const newEndpoints = rawEndpoints.map((e, j) => str(e, `${at} endpoint ${j}`));
  const endpoints = held !== undefined && sameStrings(held.endpoints, newEndpoints) ? held.endpoints : newEndpoints.map(flat);
  const rawConns = arr(fields[5], `${at} connections`);
  if (rawConns.length > limits.maxConnections) fail(`${at} has ${rawConns.length} connections (at most ${limits.maxConnections})`);
  const heldConns = held?.connections ?? [];
  let h = 0;
  const connections = rawConns.map((c, j): PeerConnection => {
    const cf = arr(c, `${at} connection ${j}`);
    if (cf.length !== 3) fail(`${at} connection ${j} has ${cf.length} fields, expected 3`);
    const peer = str(cf[0], `${at} connection ${j} peer`);
    const established = cf[1];
    if (typeof established !== 'boolean') fail(`${at} connection ${j} established is ${typeName(established)}, expected a boolean`);
    const rawEndpoint = cf[2];
    const endpoint = rawEndpoint === null ? undefined : str(rawEndpoint, `${at} connection ${j} endpoint`);
    while (h < heldConns.length && heldConns[h]!.peer < peer) h++;
    const same = heldConns[h];
    if (same !== undefined && same.peer === peer && same.established === established && same.endpoint === endpoint) return same;
    const other = known?.(peer)?.record;
    const sharedPeer = other?.name ?? flat(peer);
    if (endpoint === undefined) return { peer: sharedPeer, established };
    const sharedEndpoint = (same?.peer === peer && same.endpoint === endpoint ? same.endpoint : other?.endpoints.find((e) => e === endpoint)) ?? flat(endpoint);
    return { peer: sharedPeer, established, endpoint: sharedEndpoint };
  });
  const left = fields[6];
  if (left !== null && left !== 'forgotten' && left !== 'gone') fail(`${at} left is ${JSON.stringify(left)}, expected nil, "forgotten" or "gone"`);
  const record: PeerRecord =
    left === null ? { name, nickname, publicKey, version, endpoints, connections } : { name, nickname, publicKey, version, endpoints, connections, left };
  if (held !== undefined && sameRecord(record, held)) return held;
  const problems = recordProblems(record, limits);
  if (problems.length > 0) fail(`${at}: ${problems.join('; ')}`);
  if (!keyKnown && peerNameFromPublicKey(publicKey) !== name) fail(`${at}: name does not match its public key`);
  return { ...record, name: held?.name ?? flat(name) };
}

/** A copy of `s` that shares no storage with another string. */
function flat(s: string): string {
  return Buffer.from(s, 'utf8').toString('utf8');
}

function sameStrings(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A record with its canonical bytes and wire id (what a topology stores). */
export interface KnownRecord {
  readonly record: PeerRecord;
  readonly bytes: Uint8Array;
  readonly id: number;
}

/** A decoded record; a `KnownRecord` (shared, nothing to compute) when it was held or cached. */
export type DecodedRecord = KnownRecord | { readonly record: PeerRecord; readonly bytes?: undefined };

/** The stored form of a record. */
export function knownRecord(record: PeerRecord): KnownRecord {
  return { record, bytes: encodeRecord(record), id: peerIdFromPeerName(record.name) };
}

/**
 * Canonical bytes → validated record, shared by the topologies of one process so each distinct
 * record is decoded and checked once (the simulation runs 1,000 peers in one process). Share one
 * only among topologies with the same limits. Cleared when full.
 */
export class RecordCache {
  readonly maxEntries: number;
  private readonly map = new Map<string, KnownRecord>();
  hits = 0;

  constructor(maxEntries = 200_000) {
    this.maxEntries = maxEntries;
  }

  get size(): number {
    return this.map.size;
  }

  /** The record whose canonical bytes are buf[start, end), if cached. */
  lookup(buf: Buffer, start: number, end: number): KnownRecord | undefined {
    const hit = this.map.get(buf.toString('latin1', start, end));
    if (hit !== undefined) this.hits++;
    return hit;
  }

  add(known: KnownRecord): void {
    if (this.map.size >= this.maxEntries) this.map.clear();
    const b = known.bytes;
    this.map.set(Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1'), known);
  }
}

/**
 * Decodes and validates a whole message; throws `GossipDecodeError` naming the first problem.
 * `known(name)` returns what the receiver holds for `name`: a record whose bytes equal it is not
 * decoded at all (most of a full state, most of a flood's copies), an identical record is not
 * checked again, and a known public key is not hashed again. `cache` does the same across
 * topologies for any record some topology stored.
 */
export function decodeTopologyMessage(
  data: Uint8Array,
  limits: Readonly<TopologyLimits> = DEFAULT_TOPOLOGY_LIMITS,
  known?: (name: PeerName) => KnownRecord | undefined,
  cache?: RecordCache,
): DecodedRecord[] {
  if (!(data instanceof Uint8Array)) fail(`payload is ${typeName(data)}, expected bytes`);
  if (data.length > limits.maxMessageBytes) fail(`message of ${data.length} bytes exceeds ${limits.maxMessageBytes}`);
  const bounds = splitRecords(data);
  // Anything not shaped like a message goes through the full decoder, which says what is wrong.
  if (bounds === undefined) return decodeWhole(data, limits, known);
  const count = bounds.length - 1;
  if (count > limits.maxRecords) fail(`${count} records (at most ${limits.maxRecords})`);
  const buf = Buffer.from(data.buffer, data.byteOffset, data.length);
  const out: DecodedRecord[] = [];
  let prev = '';
  for (let i = 0; i < count; i++) {
    const start = bounds[i]!;
    const end = bounds[i + 1]!;
    // A canonical record starts with [fixarray 7, fixstr 16, name...].
    const canonical = end - start >= 18 && buf[start] === 0x97 && buf[start + 1] === 0xb0;
    const held = canonical && known !== undefined ? known(buf.toString('latin1', start + 2, start + 18)) : undefined;
    let d: DecodedRecord | undefined;
    if (held !== undefined && held.bytes.length === end - start && buf.compare(held.bytes, 0, held.bytes.length, start, end) === 0) d = held;
    else if (canonical && cache !== undefined) d = cache.lookup(buf, start, end);
    if (d === undefined) {
      let raw: unknown;
      try {
        raw = unpackr.unpack(data.subarray(start, end));
      } catch (err) {
        fail(`record ${i} is not msgpack (${err instanceof Error ? err.message.slice(0, 80) : 'unknown error'})`, err);
      }
      d = { record: decodeRecord(raw, i, limits, known) };
    }
    const name = d.record.name;
    if (name <= prev) fail(`records not strictly ascending by name at ${name}`);
    prev = name;
    out.push(d);
  }
  return out;
}

function decodeWhole(data: Uint8Array, limits: Readonly<TopologyLimits>, known?: (name: PeerName) => KnownRecord | undefined): DecodedRecord[] {
  let raw: unknown;
  try {
    raw = unpackr.unpack(data);
  } catch (err) {
    fail(`not a complete msgpack value (${err instanceof Error ? err.message.slice(0, 80) : 'unknown error'})`, err);
  }
  const top = arr(raw, 'message');
  if (top.length !== 2) fail(`message has ${top.length} fields, expected 2`);
  if (top[0] !== FORMAT) fail(`format ${JSON.stringify(top[0])} is not ${FORMAT}`);
  const rawRecords = arr(top[1], 'records');
  if (rawRecords.length > limits.maxRecords) fail(`${rawRecords.length} records (at most ${limits.maxRecords})`);
  const out: DecodedRecord[] = [];
  let prev = '';
  for (let i = 0; i < rawRecords.length; i++) {
    const r = decodeRecord(rawRecords[i], i, limits, known);
    if (r.name <= prev) fail(`records not strictly ascending by name at ${r.name}`);
    prev = r.name;
    out.push({ record: r });
  }
  return out;
}

/**
 * Where the records of a message start (and the last one ends), found by walking the msgpack
 * structure without building values; undefined when the message is not [1, [record...]] with
 * nothing after it.
 */
function splitRecords(b: Uint8Array): Int32Array | undefined {
  if (b.length < 3 || b[0] !== 0x92 || b[1] !== FORMAT) return undefined;
  const head = containerAt(b, 2);
  if (head === undefined) return undefined;
  if (head.count > b.length) return undefined;
  const out = new Int32Array(head.count + 1);
  let at = head.next;
  for (let i = 0; i < head.count; i++) {
    out[i] = at;
    at = skip(b, at, 0);
    if (at < 0) return undefined;
  }
  out[head.count] = at;
  return at === b.length ? out : undefined;
}
