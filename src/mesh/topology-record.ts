/**
 * Topology records and their canonical, signed bytes (wire format version 2, msgpack):
 *
 *   live      = [name, nickname, publicKey, version, endpoints, connections, incarnation, started, signature]
 *   tombstone = [live, left, writerKey, writerSignature]
 *
 *     name         str, 16 lowercase hex digits = peerNameFromPublicKey(publicKey)
 *     nickname     str, at most 64 characters
 *     publicKey    bin, 32 bytes (the owner's X25519 identity key)
 *     version      positive integer ≤ MAX_LIVE_VERSION (unsigned, shortest form)
 *     endpoints    [str, ...] at most 64, each "a.b.c.d:port" or "[v6]:port"
 *     connections  [[peer: str, established: bool, endpoint: str | nil], ...] at most 4096,
 *                  strictly ascending by peer, never the record's own name
 *     incarnation  bin, 8 random bytes drawn when the owner's router started
 *     started      uint, when it started (wall clock ms)
 *     signature    bin, 64 bytes: the owner's XEdDSA signature (signing.ts) of
 *                  signedBytes(LIVE_LABEL, the same array without its last element)
 *     left         "forgotten" | "gone"
 *     writerKey    bin, 32 bytes: the public key of the peer that wrote the tombstone
 *     writerSignature  bin, 64 bytes, by writerKey, of signedBytes(TOMBSTONE_LABEL, [live, left, writerKey])
 *
 * A tombstone carries the live record it buries, signed by its owner, and has that record's
 * version + 1: no tombstone can name a version its victim never reached, and the victim's next
 * record (+1 over the tombstone) always wins. Two live records of one name at the same version
 * cannot be told apart by age; canonical bytes order them, and a live record (fixarray 9) sorts
 * above a tombstone (fixarray 4) of the same version. Two tombstones of the same record sort
 * "forgotten" above "gone" (the first byte where they differ).
 *
 * Canonical bytes are the encoding written here (shortest headers, unsigned integers, no
 * floats); every receiver re-encodes what it keeps, so equal records have equal bytes on every
 * peer. The signed body of a canonical record is its bytes with the array header one smaller and
 * the trailing signature (66 bytes: bin8 header, length, 64 bytes) cut off.
 */
import { isIPv6 } from 'node:net';
import { peerIdFromPeerName, peerNameFromPublicKey } from '../core/ids.js';
import { Writer } from './canonical-msgpack.js';
import type { PeerName } from './contracts.js';
import { SIGNATURE_LEN, signedBytes, type Verifier } from './signing.js';

export type PeerLeft = 'forgotten' | 'gone';

export interface PeerConnection {
  readonly peer: PeerName;
  readonly established: boolean;
  /** The endpoint this connection uses (the remote's address as seen from the record's owner). */
  readonly endpoint?: string;
}

/**
 * One peer's record. Treat as immutable: the topology shares these objects with its readers. A
 * tombstone shows the record it buries (nickname, key, incarnation) with version + 1, no
 * endpoints and no connections.
 */
export interface PeerRecord {
  readonly name: PeerName;
  readonly nickname: string;
  readonly publicKey: Uint8Array;
  readonly version: number;
  readonly endpoints: readonly string[];
  readonly connections: readonly PeerConnection[];
  /** The owner's router run that wrote the record: 16 hex digits drawn at its start. */
  readonly incarnation: string;
  /** When that run started (wall clock ms). */
  readonly started: number;
  /** Set on tombstones: removed by `weft forget` ("forgotten") or unreachable for too long ("gone"). */
  readonly left?: PeerLeft;
  /** Tombstones: the peer that wrote it. */
  readonly writer?: PeerName;
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

/**
 * The highest version a live record may carry (2^52 − 1): a tombstone (+1) and the owner's
 * re-assert over it (+2) stay exact integers. A wall-clock version (about 1.8e12 today) is far
 * below it; a record above it is refused.
 */
export const MAX_LIVE_VERSION = 2 ** 52 - 1;
export const LIVE_LABEL = 'topology-record v2';
export const TOMBSTONE_LABEL = 'topology-tombstone v2';
export const PUBLIC_KEY_BYTES = 32;
export const INCARNATION_BYTES = 8;
const MAX_ENDPOINT_LENGTH = 64;
/** bin8 header + length + signature. */
const SIG_TAIL = 2 + SIGNATURE_LEN;

/** What a record is signed with (`Signer` in signing.ts fits). */
export interface RecordSigner {
  sign(message: Uint8Array): Uint8Array;
}

/** A peer's signing identity: its public key and signer. */
export interface RecordAuthor {
  readonly publicKey: Uint8Array;
  readonly signer: RecordSigner;
}

/** A record with its canonical bytes (signatures included) and wire id: what a topology stores. */
export interface KnownRecord {
  readonly record: PeerRecord;
  readonly bytes: Uint8Array;
  readonly id: number;
  /** The owner-signed live record: `bytes` itself, or for a tombstone the record it buries. */
  readonly live: Uint8Array;
}

const writer = new Writer();

function writeLiveFields(w: Writer, r: PeerRecord, fields: number): void {
  w.array(fields);
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
  w.bin(Buffer.from(r.incarnation, 'hex'));
  w.uint(r.started);
}

/** The canonical bytes of a live record with the given owner signature. */
export function encodeLive(r: PeerRecord, signature: Uint8Array): Uint8Array {
  const w = writer;
  w.at = 0;
  writeLiveFields(w, r, 9);
  w.bin(signature);
  return w.take();
}

/** The bytes an owner signs for a live record. */
export function liveSignedBytes(r: PeerRecord): Buffer {
  const w = writer;
  w.at = 0;
  writeLiveFields(w, r, 8);
  return signedBytes(LIVE_LABEL, w.take());
}

/** The bytes a signature covers, from a record's canonical bytes (see the header). */
function signedBody(label: string, canonical: Uint8Array): Buffer {
  const body = Buffer.allocUnsafe(canonical.length - SIG_TAIL);
  body[0] = canonical[0]! - 1;
  body.set(canonical.subarray(1, canonical.length - SIG_TAIL), 1);
  return signedBytes(label, body);
}

function signatureOf(canonical: Uint8Array): Uint8Array {
  return canonical.subarray(canonical.length - SIGNATURE_LEN);
}

function tombstoneBody(live: Uint8Array, left: PeerLeft, writerKey: Uint8Array, fields: number): Writer {
  const w = writer;
  w.at = 0;
  w.array(fields);
  w.room(live.length);
  w.buf.set(live, w.at);
  w.at += live.length;
  w.str(left);
  w.bin(writerKey);
  return w;
}

/** The canonical bytes of a tombstone. */
export function encodeTombstone(live: Uint8Array, left: PeerLeft, writerKey: Uint8Array, writerSignature: Uint8Array): Uint8Array {
  const w = tombstoneBody(live, left, writerKey, 4);
  w.bin(writerSignature);
  return w.take();
}

/** Our own live record, signed. */
export function signLive(record: PeerRecord, author: RecordAuthor): KnownRecord {
  const bytes = encodeLive(record, author.signer.sign(liveSignedBytes(record)));
  return { record, bytes, id: peerIdFromPeerName(record.name), live: bytes };
}

/** A tombstone of the live record `buried` (a stored entry, live or tombstone), written and signed by `author`. */
export function writeTombstone(buried: KnownRecord, left: PeerLeft, author: RecordAuthor): KnownRecord {
  const live = buried.live;
  const r = liveOf(buried);
  const body = tombstoneBody(live, left, author.publicKey, 3).take();
  const sig = author.signer.sign(signedBytes(TOMBSTONE_LABEL, body));
  const bytes = encodeTombstone(live, left, author.publicKey, sig);
  const record: PeerRecord = {
    name: r.name,
    nickname: r.nickname,
    publicKey: r.publicKey,
    version: r.version + 1,
    endpoints: [],
    connections: [],
    incarnation: r.incarnation,
    started: r.started,
    left,
    writer: peerNameFromPublicKey(author.publicKey),
  };
  return { record, bytes, id: buried.id, live };
}

/** The buried live record's fields as a record (for a live entry: its own record). */
function liveOf(e: KnownRecord): PeerRecord {
  const r = e.record;
  if (r.left === undefined) return r;
  return { ...r, version: r.version - 1 };
}

/**
 * Checks the owner's signature (and for a tombstone the writer's) of a record given as canonical
 * bytes. `writerKey` is the tombstone's writer key.
 */
export function verifyKnown(e: KnownRecord, writerKey: Uint8Array | undefined, verifier: Verifier): boolean {
  const live = e.live;
  if (!verifier.verify(e.record.publicKey, signedBody(LIVE_LABEL, live), signatureOf(live))) return false;
  if (e.record.left === undefined) return true;
  if (writerKey === undefined) return false;
  return verifier.verify(writerKey, signedBody(TOMBSTONE_LABEL, e.bytes), signatureOf(e.bytes));
}

/** The writer key of a tombstone given as canonical bytes (just before its signature). */
export function tombstoneWriterKey(bytes: Uint8Array): Uint8Array {
  return bytes.subarray(bytes.length - SIG_TAIL - PUBLIC_KEY_BYTES, bytes.length - SIG_TAIL);
}

/** Total order of records of one peer at one version: canonical bytes. */
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
export function isName(s: string): boolean {
  return isHex(s, 16);
}

function isHex(s: string, length: number): boolean {
  if (s.length !== length) return false;
  for (let i = 0; i < length; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false;
  }
  return true;
}

/**
 * Structural equality of the fields (cheaper than encoding both when nothing changed). Two
 * tombstones with equal fields may bury different records: compare their bytes.
 */
export function sameRecord(a: PeerRecord, b: PeerRecord): boolean {
  if (a === b) return true;
  if (a.name !== b.name || a.version !== b.version || a.nickname !== b.nickname || a.left !== b.left) return false;
  if (a.incarnation !== b.incarnation || a.started !== b.started || a.writer !== b.writer) return false;
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
 * Checks one record's fields (everything except the name/public-key hash and the signatures,
 * which the decoder checks with caches). Returns the problems found, each naming the field.
 */
export function recordProblems(r: PeerRecord, limits: Readonly<TopologyLimits> = DEFAULT_TOPOLOGY_LIMITS): string[] {
  const out: string[] = [];
  if (!isName(r.name)) out.push(`name ${JSON.stringify(r.name)} is not a peer name`);
  if (r.nickname.length > limits.maxNicknameLength) out.push(`nickname longer than ${limits.maxNicknameLength} characters`);
  if (r.publicKey.length !== PUBLIC_KEY_BYTES) out.push(`publicKey is ${r.publicKey.length} bytes, expected ${PUBLIC_KEY_BYTES}`);
  if (!Number.isSafeInteger(r.version) || r.version < 1) out.push(`version ${r.version} is not a positive integer`);
  if (!isHex(r.incarnation, 2 * INCARNATION_BYTES)) out.push(`incarnation ${JSON.stringify(r.incarnation)} is not ${2 * INCARNATION_BYTES} hex digits`);
  if (!Number.isSafeInteger(r.started) || r.started < 0) out.push(`started ${r.started} is not a time`);
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
