/**
 * Wire format of the "topology" channel (version 2), msgpack:
 *
 *   message = [2, [record, ...]]     records strictly ascending by name
 *
 * Records (live and tombstone) and their canonical, signed bytes are in `topology-record.ts`.
 * Full state and deltas have the same shape. A message is the array header followed by the
 * canonical bytes of each record (`encodeTopologyMessage`), so full state is a concatenation of
 * cached bytes.
 *
 * Decoding checks the message first: not bytes, over the size or record limit, not msgpack, not
 * [2, [...]], or records out of order refuse the whole message (`GossipDecodeError`, nothing
 * changes). Each record then stands alone: one that is malformed, unsigned, over the version
 * bound, or whose name is not its key's is refused by itself (`RefusedRecord`, with a reason to
 * count) and the others go on. Signatures are checked later, only for records that would be
 * stored (`verifyKnown`): a copy older than what the receiver holds costs nothing. Records
 * byte-identical to the receiver's copy, or found in a shared `RecordCache` of verified records,
 * are recognised without being decoded or checked again.
 */
import { Unpackr } from 'msgpackr/unpack';
import { peerIdFromPeerName, peerNameFromPublicKey } from '../core/ids.js';
import { containerAt, skip } from './canonical-msgpack.js';
import { encodeOwnerRecords } from './owner-records-wire.js';
import type { PeerName } from './contracts.js';
import { GossipDecodeError } from './errors.js';
import { SIGNATURE_LEN } from './signing.js';
import {
  DEFAULT_TOPOLOGY_LIMITS,
  INCARNATION_BYTES,
  MAX_LIVE_VERSION,
  PUBLIC_KEY_BYTES,
  encodeLive,
  encodeTombstone,
  isName,
  recordProblems,
  sameBytes,
  sameRecord,
  type KnownRecord,
  type PeerConnection,
  type PeerRecord,
  type TopologyLimits,
} from './topology-record.js';

export * from './topology-record.js';

export const TOPOLOGY_CHANNEL = 'topology';
export const TOPOLOGY_FORMAT = 2;

/** Why one record of a message was refused (the rest of the message still counts). */
export type RecordRefusal = 'malformed' | 'unsigned' | 'nameMismatch' | 'versionBound' | 'badSignature';

export interface RefusedRecord {
  /** The record's name when it could be read. */
  readonly name: PeerName | undefined;
  readonly reason: RecordRefusal;
  readonly detail: string;
}

/** A decoded record in canonical form; `verified` when it was held or cached (its signatures were checked before). */
export interface DecodedRecord {
  readonly entry: KnownRecord;
  readonly verified: boolean;
}

export interface DecodedMessage {
  readonly records: DecodedRecord[];
  readonly refused: RefusedRecord[];
}

const unpackr = new Unpackr({ useRecords: false, copyBuffers: true, int64AsType: 'number', mapsAsObjects: true });

/** A message from records' canonical bytes, already sorted by name. */
export function encodeTopologyMessage(sortedRecordBytes: readonly Uint8Array[]): Uint8Array {
  return encodeOwnerRecords(TOPOLOGY_FORMAT, sortedRecordBytes);
}

function fail(reason: string, cause?: unknown): never {
  throw new GossipDecodeError(TOPOLOGY_CHANNEL, reason, cause === undefined ? undefined : { cause });
}

/** A record refused by itself (never leaves this module). */
class Refuse {
  readonly reason: RecordRefusal;
  readonly detail: string;
  constructor(reason: RecordRefusal, detail: string) {
    this.reason = reason;
    this.detail = detail;
  }
}

function refuse(reason: RecordRefusal, detail: string): never {
  throw new Refuse(reason, detail);
}

function str(v: unknown, what: string): string {
  if (typeof v !== 'string') refuse('malformed', `${what} is ${typeName(v)}, expected a string`);
  return v;
}

function arr(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) refuse('malformed', `${what} is ${typeName(v)}, expected an array`);
  return v;
}

function bin(v: unknown, length: number, what: string, reason: RecordRefusal = 'malformed'): Uint8Array {
  if (!(v instanceof Uint8Array)) refuse(reason, `${what} is ${typeName(v)}, expected binary`);
  if (v.length !== length) refuse(reason, `${what} is ${v.length} bytes, expected ${length}`);
  return v;
}

function typeName(v: unknown): string {
  if (v === null) return 'nil';
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Uint8Array) return 'binary';
  return typeof v;
}

/** The name of a raw record (live or tombstone) when it can be read. */
function rawName(raw: unknown): PeerName | undefined {
  if (!Array.isArray(raw)) return undefined;
  const live = raw.length === 4 && Array.isArray(raw[0]) ? (raw[0] as unknown[]) : raw;
  const name = live[0];
  return typeof name === 'string' && isName(name) ? name : undefined;
}

type Known = (name: PeerName) => KnownRecord | undefined;

function decodeRecord(raw: unknown, i: number, limits: Readonly<TopologyLimits>, known?: Known): DecodedRecord {
  const fields = arr(raw, `record ${i}`);
  if (fields.length === 4) {
    const liveFields = arr(fields[0], `record ${i} (a tombstone) buried record`);
    const { record: buried, signature } = decodeLive(liveFields, i, limits, known);
    const at = `tombstone ${buried.name}`;
    const left = fields[1];
    if (left !== 'forgotten' && left !== 'gone') refuse('malformed', `${at} left is ${JSON.stringify(left)}, expected "forgotten" or "gone"`);
    const writerKey = bin(fields[2], PUBLIC_KEY_BYTES, `${at} writer key`);
    const writerSignature = bin(fields[3], SIGNATURE_LEN, `${at} writer signature`, 'unsigned');
    const record: PeerRecord = { ...buried, version: buried.version + 1, endpoints: [], connections: [], left, writer: peerNameFromPublicKey(writerKey) };
    const live = encodeLive(buried, signature);
    const bytes = encodeTombstone(live, left, writerKey, writerSignature);
    return shareHeld({ record, bytes, id: peerIdFromPeerName(record.name), live }, known);
  }
  const { record, signature } = decodeLive(fields, i, limits, known);
  const bytes = encodeLive(record, signature);
  return shareHeld({ record, bytes, id: peerIdFromPeerName(record.name), live: bytes }, known);
}

/** The held entry when the decoded record is the same (nothing to check or store). */
function shareHeld(e: KnownRecord, known?: Known): DecodedRecord {
  const held = known?.(e.record.name);
  if (held !== undefined && held.bytes.length === e.bytes.length && Buffer.compare(held.bytes, e.bytes) === 0) return { entry: held, verified: true };
  return { entry: e, verified: false };
}

function decodeLive(fields: unknown[], i: number, limits: Readonly<TopologyLimits>, known?: Known): { record: PeerRecord; signature: Uint8Array } {
  if (fields.length === 7 || fields.length === 8) refuse('unsigned', `record ${i} has ${fields.length} fields and no signature`);
  if (fields.length !== 9) refuse('malformed', `record ${i} has ${fields.length} fields, expected 9 (live) or 4 (tombstone)`);
  const name = str(fields[0], `record ${i} name`);
  const at = isName(name) ? `record ${name}` : `record ${i}`;
  // Parts equal to the held copy are shared with it (a peer holds one record per peer, and a new
  // version usually differs from the last in one connection); other strings are copied flat, so
  // kept records never pin the decoder's string buffers.
  const held = known?.(name)?.record;
  const rawNickname = str(fields[1], `${at} nickname`);
  const nickname = held?.nickname === rawNickname ? held.nickname : flat(rawNickname);
  const rawKey = fields[2];
  if (!(rawKey instanceof Uint8Array)) refuse('malformed', `${at} publicKey is ${typeName(rawKey)}, expected binary`);
  const keyKnown = held !== undefined && sameBytes(held.publicKey, rawKey);
  const publicKey = keyKnown ? held.publicKey : rawKey;
  const version = fields[3];
  if (typeof version !== 'number') refuse('malformed', `${at} version is ${typeName(version)}, expected a number`);
  const rawEndpoints = arr(fields[4], `${at} endpoints`);
  if (rawEndpoints.length > limits.maxEndpoints) refuse('malformed', `${at} has ${rawEndpoints.length} endpoints (at most ${limits.maxEndpoints})`);
  const newEndpoints = rawEndpoints.map((e, j) => str(e, `${at} endpoint ${j}`));
  const endpoints = held !== undefined && sameStrings(held.endpoints, newEndpoints) ? held.endpoints : newEndpoints.map(flat);
  const rawConns = arr(fields[5], `${at} connections`);
  if (rawConns.length > limits.maxConnections) refuse('malformed', `${at} has ${rawConns.length} connections (at most ${limits.maxConnections})`);
  const heldConns = held?.connections ?? [];
  let h = 0;
  const connections = rawConns.map((c, j): PeerConnection => {
    const cf = arr(c, `${at} connection ${j}`);
    if (cf.length !== 3) refuse('malformed', `${at} connection ${j} has ${cf.length} fields, expected 3`);
    const peer = str(cf[0], `${at} connection ${j} peer`);
    const established = cf[1];
    if (typeof established !== 'boolean') refuse('malformed', `${at} connection ${j} established is ${typeName(established)}, expected a boolean`);
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
  const incarnation = Buffer.from(bin(fields[6], INCARNATION_BYTES, `${at} incarnation`)).toString('hex');
  const started = fields[7];
  if (typeof started !== 'number') refuse('malformed', `${at} started is ${typeName(started)}, expected a number`);
  const signature = fields[8];
  if (signature === null || signature === undefined) refuse('unsigned', `${at} has no signature`);
  bin(signature, SIGNATURE_LEN, `${at} signature`, 'unsigned');
  const record: PeerRecord = { name, nickname, publicKey, version, endpoints, connections, incarnation: held?.incarnation === incarnation ? held.incarnation : incarnation, started };
  const problems = recordProblems(record, limits);
  if (problems.length > 0) refuse('malformed', `${at}: ${problems.join('; ')}`);
  if (version > MAX_LIVE_VERSION) refuse('versionBound', `${at}: version ${version} is above the bound ${MAX_LIVE_VERSION}`);
  if (!keyKnown && peerNameFromPublicKey(publicKey) !== name) refuse('nameMismatch', `${at}: name does not match its public key`);
  const out = held !== undefined && sameRecord(record, held) ? held : { ...record, name: held?.name ?? flat(name) };
  return { record: out, signature: signature as Uint8Array };
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

/**
 * Canonical bytes → verified record, shared by the topologies of one process so each distinct
 * record is decoded and checked once (the simulation runs 1,000 peers in one process). Holds only
 * records whose signatures were checked. Share one only among topologies with the same limits.
 * Cleared when full.
 */
export class RecordCache {
  readonly maxEntries: number;
  private readonly map = new Map<string, KnownRecord>();

  constructor(maxEntries = 200_000) {
    this.maxEntries = maxEntries;
  }

  get size(): number {
    return this.map.size;
  }

  /** The record whose canonical bytes are buf[start, end), if cached. */
  lookup(buf: Buffer, start: number, end: number): KnownRecord | undefined {
    return this.map.get(buf.toString('latin1', start, end));
  }

  /** Adds a record whose signatures were checked (or that we signed). */
  add(known: KnownRecord): void {
    if (this.map.size >= this.maxEntries) this.map.clear();
    const b = known.bytes;
    this.map.set(Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1'), known);
  }
}

/** Offset of the name string in canonical record bytes at `start` (live or tombstone), or -1. */
function canonicalNameAt(buf: Buffer, start: number, end: number): number {
  if (end - start >= 18 && buf[start] === 0x99 && buf[start + 1] === 0xb0) return start + 2;
  if (end - start >= 19 && buf[start] === 0x94 && buf[start + 1] === 0x99 && buf[start + 2] === 0xb0) return start + 3;
  return -1;
}

/**
 * Decodes and checks a whole message (throws `GossipDecodeError` naming the first message-level
 * problem); records refused by themselves are listed in `refused`. `known(name)` returns what the
 * receiver holds for `name`: a record whose bytes equal it is not decoded at all (most of a full
 * state, most of a flood's copies), an identical record is not checked again, and a known public
 * key is not hashed again. `cache` does the same across topologies for any record some topology
 * stored.
 */
export function decodeTopologyMessage(
  data: Uint8Array,
  limits: Readonly<TopologyLimits> = DEFAULT_TOPOLOGY_LIMITS,
  known?: Known,
  cache?: RecordCache,
): DecodedMessage {
  if (!(data instanceof Uint8Array)) fail(`payload is ${typeName(data)}, expected bytes`);
  if (data.length > limits.maxMessageBytes) fail(`message of ${data.length} bytes exceeds ${limits.maxMessageBytes}`);
  const bounds = splitRecords(data);
  // Anything not shaped like a message goes through the full decoder, which says what is wrong.
  if (bounds === undefined) return decodeWhole(data, limits, known);
  const count = bounds.length - 1;
  if (count > limits.maxRecords) fail(`${count} records (at most ${limits.maxRecords})`);
  const buf = Buffer.from(data.buffer, data.byteOffset, data.length);
  const out = new Collected();
  for (let i = 0; i < count; i++) {
    const start = bounds[i]!;
    const end = bounds[i + 1]!;
    const nameAt = canonicalNameAt(buf, start, end);
    const held = nameAt >= 0 && known !== undefined ? known(buf.toString('latin1', nameAt, nameAt + 16)) : undefined;
    let hit: KnownRecord | undefined;
    if (held !== undefined && held.bytes.length === end - start && buf.compare(held.bytes, 0, held.bytes.length, start, end) === 0) hit = held;
    else if (nameAt >= 0 && cache !== undefined) hit = cache.lookup(buf, start, end);
    if (hit !== undefined) {
      out.add(hit.record.name, { entry: hit, verified: true });
      continue;
    }
    let raw: unknown;
    try {
      raw = unpackr.unpack(data.subarray(start, end));
    } catch (err) {
      fail(`record ${i} is not msgpack (${err instanceof Error ? err.message.slice(0, 80) : 'unknown error'})`, err);
    }
    out.decode(raw, i, limits, known);
  }
  return out.result();
}

/** Records of one message in order: checks the order and collects refusals. */
class Collected {
  private readonly records: DecodedRecord[] = [];
  private readonly refused: RefusedRecord[] = [];
  private prev = '';

  add(name: PeerName | undefined, d: DecodedRecord | undefined): void {
    if (name !== undefined) {
      if (name <= this.prev) fail(`records not strictly ascending by name at ${name}`);
      this.prev = name;
    }
    if (d !== undefined) this.records.push(d);
  }

  decode(raw: unknown, i: number, limits: Readonly<TopologyLimits>, known?: Known): void {
    const name = rawName(raw);
    let d: DecodedRecord;
    try {
      d = decodeRecord(raw, i, limits, known);
    } catch (err) {
      if (!(err instanceof Refuse)) throw err;
      this.add(name, undefined);
      this.refused.push({ name, reason: err.reason, detail: err.detail });
      return;
    }
    this.add(name, d);
  }

  result(): DecodedMessage {
    return { records: this.records, refused: this.refused };
  }
}

function decodeWhole(data: Uint8Array, limits: Readonly<TopologyLimits>, known?: Known): DecodedMessage {
  let raw: unknown;
  try {
    raw = unpackr.unpack(data);
  } catch (err) {
    fail(`not a complete msgpack value (${err instanceof Error ? err.message.slice(0, 80) : 'unknown error'})`, err);
  }
  if (!Array.isArray(raw)) fail(`message is ${typeName(raw)}, expected an array`);
  if (raw.length !== 2) fail(`message has ${raw.length} fields, expected 2`);
  if (raw[0] !== TOPOLOGY_FORMAT) fail(`format ${JSON.stringify(raw[0])} is not ${TOPOLOGY_FORMAT}`);
  const rawRecords: unknown = raw[1];
  if (!Array.isArray(rawRecords)) fail(`records is ${typeName(rawRecords)}, expected an array`);
  if (rawRecords.length > limits.maxRecords) fail(`${rawRecords.length} records (at most ${limits.maxRecords})`);
  const out = new Collected();
  for (let i = 0; i < rawRecords.length; i++) out.decode(rawRecords[i], i, limits, known);
  return out.result();
}

/**
 * Where the records of a message start (and the last one ends), found by walking the msgpack
 * structure without building values; undefined when the message is not [2, [record...]] with
 * nothing after it.
 */
function splitRecords(b: Uint8Array): Int32Array | undefined {
  if (b.length < 3 || b[0] !== 0x92 || b[1] !== TOPOLOGY_FORMAT) return undefined;
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
