/**
 * Control protocol between routers, over TCP.
 *
 *   preamble (both sides, at once):  "wEFt" | min version u16 BE | max version u16 BE (0: = min)
 *   then frames:                     length u32 BE | body (length bytes)
 *
 * The first three frames are a Noise XXpsk0 handshake (25519, ChaChaPoly, BLAKE2b; the PSK is
 * derived from the cluster secret; the prologue binds the negotiated version and, from version 3,
 * both preambles: see protocol-negotiation.ts). Every later frame body is
 * sealed with ChaCha20-Poly1305 under the handshake's key for that direction, nonce = 4 zero
 * bytes and a 64-bit little-endian counter, AD = the 4-byte length; the plaintext is a msgpack
 * array `[type, ...fields]`:
 *
 *   [1 HELLO, nickname, udpPort, features]        first message each way (version 2; features
 *                                                 carries the sender's version range)
 *   [1 HELLO, nickname, udpPort, features, release]  the same from version 3, with the release
 *   [2 GOSSIP, channel, data]                     gossip to a neighbour
 *   [3 UNICAST, channel, src, dst, ttl, data]     routed hop by hop to dst
 *   [4 BROADCAST, channel, src, data]             forwarded along src's broadcast tree
 *   [5 PING]                                      keep-alive
 *
 * Limits: handshake frames ≤ 512 bytes, other frames ≤ MAX_FRAME. Anything else closes the
 * connection with a reason; nothing is kept for it.
 */
import { Packr } from 'msgpackr/pack';
import sodium from 'sodium-native';
import { WeftError } from '../core/errors.js';
import { isPeerName } from '../core/ids.js';

/** The mesh protocol versions this build speaks; two routers speak the highest both do. */
export const MESH_PROTOCOL_MIN: number = 2;
export const MESH_PROTOCOL_MAX: number = 3;
/** Alias of MESH_PROTOCOL_MAX. */
export const MESH_VERSION = MESH_PROTOCOL_MAX;
export const MAX_RELEASE_LEN = 64;
export const PREAMBLE_LEN = 8;
export const MAGIC = Buffer.from('wEFt', 'latin1');
export const MAX_FRAME = 8 * 1024 * 1024;
export const MAX_HANDSHAKE_FRAME = 512;
export const MAX_CHANNEL_NAME = 32;
export const MAX_TTL = 32;
const TAG = sodium.crypto_aead_chacha20poly1305_ietf_ABYTES;

export const MSG_HELLO = 1;
export const MSG_GOSSIP = 2;
export const MSG_UNICAST = 3;
export const MSG_BROADCAST = 4;
export const MSG_PING = 5;

export type MeshMessage =
  | { type: typeof MSG_HELLO; nickname: string; udpPort: number; features: number; release?: string }
  | { type: typeof MSG_GOSSIP; channel: string; data: Uint8Array }
  | { type: typeof MSG_UNICAST; channel: string; src: string; dst: string; ttl: number; data: Uint8Array }
  | { type: typeof MSG_BROADCAST; channel: string; src: string; data: Uint8Array }
  | { type: typeof MSG_PING };

/** Why a connection was refused or closed; `reason` is a stable short word for counters. */
export class MeshProtocolError extends WeftError {
  readonly reason: string;
  constructor(reason: string, message: string, options?: { cause?: unknown }) {
    super('ERR_MESH_PROTOCOL', message, options);
    this.name = 'MeshProtocolError';
    this.reason = reason;
  }
}

/** A preamble announcing this build's range, or only `version` (what a router before ranges sends). */
export function preamble(version?: number): Buffer {
  const b = Buffer.alloc(PREAMBLE_LEN);
  MAGIC.copy(b, 0);
  b.writeUInt16BE(version ?? MESH_PROTOCOL_MIN, 4);
  if (version === undefined && MESH_PROTOCOL_MAX !== MESH_PROTOCOL_MIN) b.writeUInt16BE(MESH_PROTOCOL_MAX, 6);
  return b;
}

/** Throws unless the preamble is weft's and announces a range overlapping this build's (protocol-negotiation.ts negotiates). */
export function checkPreamble(b: Buffer): void {
  if (!b.subarray(0, 4).equals(MAGIC)) throw new MeshProtocolError('notWeft', 'the remote end does not speak the weft mesh protocol');
  const min = b.readUInt16BE(4);
  const max = b.readUInt16BE(6) === 0 ? min : b.readUInt16BE(6);
  if (max < MESH_PROTOCOL_MIN || min > MESH_PROTOCOL_MAX || max < min) {
    throw new MeshProtocolError('version', `the remote end speaks mesh protocol ${min}..${max}; this router speaks ${MESH_PROTOCOL_MIN}..${MESH_PROTOCOL_MAX}`);
  }
}

/** Accumulates stream bytes; hands out the preamble, then whole frames; enforces size limits. */
export class FrameReader {
  private chunks: Buffer[] = [];
  private size = 0;
  preambleSeen = false;
  maxFrame = MAX_HANDSHAKE_FRAME;

  push(data: Buffer): void {
    this.chunks.push(data);
    this.size += data.length;
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.size);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.size = rest.length;
    return out;
  }

  private peekLength(): number {
    if (this.chunks[0]!.length < 4) this.chunks = [Buffer.concat(this.chunks, this.size)];
    return this.chunks[0]!.readUInt32BE(0);
  }

  /** The 8-byte preamble, once, or undefined when more bytes are needed. */
  nextPreamble(): Buffer | undefined {
    if (this.size < PREAMBLE_LEN) return undefined;
    this.preambleSeen = true;
    return Buffer.from(this.take(PREAMBLE_LEN));
  }

  /** The next whole frame (length header included), or undefined when more bytes are needed. */
  next(): Buffer | undefined {
    if (this.size < 4) return undefined;
    const len = this.peekLength(); // cheap: concatenates only when the header is split
    if (len > this.maxFrame) throw new MeshProtocolError('oversized', `frame of ${len} bytes exceeds the limit of ${this.maxFrame}`);
    if (this.size < 4 + len) return undefined;
    return Buffer.from(this.take(4 + len));
  }

  get buffered(): number {
    return this.size;
  }
}

export function frame(body: Uint8Array): Buffer {
  const b = Buffer.alloc(4 + body.length);
  b.writeUInt32BE(body.length, 0);
  b.set(body, 4);
  return b;
}

/** One direction of the transport: ChaCha20-Poly1305 with a counter nonce; the key is wiped on close. */
export class TransportCipher {
  private readonly key: Buffer;
  private readonly nonce = Buffer.alloc(sodium.crypto_aead_chacha20poly1305_ietf_NPUBBYTES);
  private counter = 0n;

  constructor(key: Uint8Array) {
    this.key = sodium.sodium_malloc(sodium.crypto_aead_chacha20poly1305_ietf_KEYBYTES) as Buffer;
    this.key.set(key);
  }

  private step(): void {
    this.nonce.writeBigUInt64LE(this.counter, 4);
    this.counter++;
  }

  seal(plain: Uint8Array): Buffer {
    const out = Buffer.alloc(4 + plain.length + TAG);
    out.writeUInt32BE(plain.length + TAG, 0);
    this.step();
    sodium.crypto_aead_chacha20poly1305_ietf_encrypt(out.subarray(4), plain, out.subarray(0, 4), null, this.nonce, this.key);
    return out;
  }

  /** Opens a whole frame (length header included); throws MeshProtocolError on forgery. */
  open(framed: Buffer): Buffer {
    const body = framed.subarray(4);
    if (body.length < TAG) throw new MeshProtocolError('garbled', 'sealed frame shorter than its tag');
    const out = Buffer.alloc(body.length - TAG);
    this.step();
    try {
      sodium.crypto_aead_chacha20poly1305_ietf_decrypt(out, null, body, framed.subarray(0, 4), this.nonce, this.key);
    } catch (err) {
      throw new MeshProtocolError('auth', 'a sealed frame failed authentication', { cause: err });
    }
    return out;
  }

  wipe(): void {
    sodium.sodium_memzero(this.key);
  }
}

const packr = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });

export function encodeMessage(m: MeshMessage): Buffer {
  switch (m.type) {
    case MSG_HELLO:
      return m.release === undefined
        ? packr.pack([m.type, m.nickname, m.udpPort, m.features])
        : packr.pack([m.type, m.nickname, m.udpPort, m.features, m.release]);
    case MSG_GOSSIP:
      return packr.pack([m.type, m.channel, m.data]);
    case MSG_UNICAST:
      return packr.pack([m.type, m.channel, m.src, m.dst, m.ttl, m.data]);
    case MSG_BROADCAST:
      return packr.pack([m.type, m.channel, m.src, m.data]);
    case MSG_PING:
      return packr.pack([m.type]);
  }
}

function bad(what: string): never {
  throw new MeshProtocolError('garbled', `garbled mesh message: ${what}`);
}

function str(v: unknown, what: string, max: number): string {
  if (typeof v !== 'string' || v.length > max) bad(`${what} must be a string of at most ${max} characters`);
  return v;
}

function bin(v: unknown, what: string): Uint8Array {
  if (!(v instanceof Uint8Array)) bad(`${what} must be binary`);
  return v;
}

function peer(v: unknown, what: string): string {
  if (typeof v !== 'string' || !isPeerName(v)) bad(`${what} must be a peer name`);
  return v;
}

function channel(v: unknown): string {
  const c = str(v, 'channel', MAX_CHANNEL_NAME);
  if (!/^[a-z][a-z0-9-]*$/.test(c)) bad('channel name');
  return c;
}

/** Decodes and validates a message; throws MeshProtocolError('garbled') on anything unexpected. */
export function decodeMessage(body: Buffer): MeshMessage {
  let v: unknown;
  try {
    v = packr.unpack(body);
  } catch (err) {
    throw new MeshProtocolError('garbled', 'garbled mesh message: not msgpack', { cause: err });
  }
  if (!Array.isArray(v) || v.length === 0) bad('not an array');
  const a = v as unknown[];
  switch (a[0]) {
    case MSG_HELLO: {
      if (a.length !== 4 && a.length !== 5) bad('HELLO has the wrong number of fields');
      const port = a[2];
      const features = a[3];
      if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) bad('HELLO udpPort');
      if (typeof features !== 'number' || !Number.isInteger(features) || features < 0) bad('HELLO features');
      const hello: MeshMessage = { type: MSG_HELLO, nickname: str(a[1], 'nickname', 64), udpPort: port, features };
      if (a.length === 5) hello.release = str(a[4], 'release', MAX_RELEASE_LEN);
      return hello;
    }
    case MSG_GOSSIP:
      if (a.length !== 3) bad('GOSSIP has the wrong number of fields');
      return { type: MSG_GOSSIP, channel: channel(a[1]), data: bin(a[2], 'GOSSIP data') };
    case MSG_UNICAST: {
      if (a.length !== 6) bad('UNICAST has the wrong number of fields');
      const ttl = a[4];
      if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < 0 || ttl > MAX_TTL) bad('UNICAST ttl');
      return { type: MSG_UNICAST, channel: channel(a[1]), src: peer(a[2], 'UNICAST src'), dst: peer(a[3], 'UNICAST dst'), ttl, data: bin(a[5], 'UNICAST data') };
    }
    case MSG_BROADCAST:
      if (a.length !== 4) bad('BROADCAST has the wrong number of fields');
      return { type: MSG_BROADCAST, channel: channel(a[1]), src: peer(a[2], 'BROADCAST src'), data: bin(a[3], 'BROADCAST data') };
    case MSG_PING:
      if (a.length !== 1) bad('PING has fields');
      return { type: MSG_PING };
    default:
      return bad(`unknown message type ${JSON.stringify(a[0])}`);
  }
}
