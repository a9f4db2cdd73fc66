/**
 * Sleeve wire format, version 2. Every UDP datagram starts with this header (big-endian):
 *
 *   0      1      2      3      4              8              12             16                     24
 *   +------+------+------+------+--------------+--------------+--------------+----------------------+
 *   | type | hops | ver  | flags| dst peer id  | src peer id  | key id       | counter (u64)        |
 *   +------+------+------+------+--------------+--------------+--------------+----------------------+
 *   FRAG only:                                                                24       28     30     32          40
 *                                                                             | total  | fsize| index| token (8) |
 *
 *   type   1 = DATA (one whole sealed message follows), 2 = FRAG (a slice of one)
 *   hops   hops left for relays; not authenticated (relays decrement it). Starts at 8 (the cap:
 *          anything above is refused); a relay drops a datagram that reaches 1
 *   ver    2
 *   flags  bit 0: SEALED (ChaCha20-Poly1305, 16-byte tag at the end of the message)
 *          bit 1: RELAYED, set by the origin when it sends through a relay. It is authenticated,
 *          so a relayed datagram can never pass for a direct one: only an authenticated
 *          datagram with RELAYED clear and the full hop count proves the direct path or moves
 *          the peer's endpoint (roaming). Relays forward only datagrams with it set.
 *          bit 2: PROBE, the message carries only probe records (hole punching, observations,
 *          round trips). It is authenticated: a probe never proves a path, never moves an
 *          endpoint and never counts as direct, and a probe record outside a PROBE message (or
 *          another record inside one) is dropped.
 *   dst    receiving peer id (0 = "whoever listens here": discovery hello)
 *   src    sending peer id
 *   key id the sender's key (session) the message is sealed with
 *   counter message number under that key; the AEAD nonce is 4 zero bytes + these 8 bytes, copied
 *          as they are. Counters at or above COUNTER_LIMIT (2^52) are refused before anything
 *          else, so every counter that passes is exact as a JS number.
 *   total  sealed message length; fsize: bytes per fragment (all but the last);
 *   index  fragment number: the slice starts at index * fsize
 *   token  bytes [8 * index, 8 * index + 8) of ChaCha20 under a key derived from the session key,
 *          nonce = counter || total (router/crypto/fragment-tokens.ts): checked before the
 *          fragment touches the reassembly buffer (zero and unchecked in plaintext mode)
 *
 * Authenticated data (AD) = bytes 2..15 (ver, flags, dst, src, key id); the counter is bound
 * through the nonce. A sealed message is cut into fragments after sealing; each fragment's token
 * shows it comes from a holder of the key, so a forged fragment takes no reassembly slot and
 * evicts nothing, and the AEAD over the whole message authenticates its content.
 *
 * Message plaintext = a sequence of records:
 *
 *   +------+-----------------+----------------------+------------------+
 *   | kind | length (u24)    | virtio_net_hdr (10)? | body (length)    |
 *   +------+-----------------+----------------------+------------------+
 *   kind bits 0-3: 0 FRAME (an Ethernet frame), 1 HEARTBEAT, 2 PROBE; bit 7: a virtio_net_hdr
 *   precedes the frame (GSO super-frame or checksum still to be finished), passed end to end
 *   unchanged.
 *
 * PROBE body (PROBE_LEN = 28 bytes):
 *
 *   0      1        2         4          8           12                      28
 *   +------+--------+---------+----------+-----------+-----------------------+
 *   | op   | family | port    | id (u32) | echo (u32)| address (16)          |
 *   +------+--------+---------+----------+-----------+-----------------------+
 *   op      1 request, 2 answer
 *   family  4 | 6; IPv4 uses the address's first 4 bytes, the rest zero
 *   request: the endpoint it was sent to; id picks the requester's pending entry; echo is the
 *            requester's send time (ms, low 32 bits)
 *   answer:  sent at once to the source the request came from; carries that source (the
 *            requester as the answerer sees it: an observation) and the request's id and echo
 */
/** The version this build sends (= WIRE_VERSION_MAX). */
export const WIRE_VERSION = 2;
/**
 * The versions this build accepts: a datagram with another is counted (`drops.version`) and
 * dropped. A later build widens the range first and sends a new version only once every router
 * accepts it (rolling upgrades, README).
 */
export const WIRE_VERSION_MIN = 2;
export const WIRE_VERSION_MAX = WIRE_VERSION;

/** Whether a datagram header's version byte is one this build accepts. */
export function wireVersionAccepted(v: number | undefined): boolean {
  return v !== undefined && v >= WIRE_VERSION_MIN && v <= WIRE_VERSION_MAX;
}

export const TYPE_DATA = 1;
export const TYPE_FRAG = 2;

export const FLAG_SEALED = 1;
export const FLAG_RELAYED = 2;
export const FLAG_PROBE = 4;

export const DATA_HDR_LEN = 24;
export const FRAG_HDR_LEN = 40;
export const FRAG_TOKEN_OFFSET = 32;
export const AD_OFFSET = 2;
export const AD_LEN = 14;
/** Where the 8 counter bytes (the AEAD nonce's last 8 bytes) sit in a header. */
export const COUNTER_OFFSET = 16;

export const REC_HDR_LEN = 4;
export const REC_FRAME = 0;
export const REC_HEARTBEAT = 1;
export const REC_PROBE = 2;
export const PROBE_LEN = 28;
export const PROBE_REQUEST = 1;
export const PROBE_ANSWER = 2;
export const REC_KIND_MASK = 0x0f;
export const REC_VNET = 0x80;

/** The hop count a datagram starts with, and the most any datagram may carry. */
export const DEFAULT_HOPS = 8;

/**
 * Hard limit on message counters (2^52): a receiver refuses a counter at or above it before
 * anything else, and a sender never seals at or above it (it needs new keys long before: the
 * rekey by count asks at 2^48). Below it, hi * 2^32 + lo is exact as a JS number.
 */
export const COUNTER_LIMIT = 2 ** 52;
const COUNTER_LIMIT_HI = COUNTER_LIMIT / 4294967296;
export const TAG_LEN = 16;

/** Largest sealed message (a 64 KiB super-frame with its headers): bounds reassembly. */
export const MAX_MESSAGE = 65536 + 256;
/** Most fragments one message may have (index is checked against it). */
export const MAX_FRAGMENTS = 256;

/** IPv4 + UDP header bytes, IPv6 + UDP header bytes. */
export const UDP4_OVERHEAD = 28;
export const UDP6_OVERHEAD = 48;

/** Ethernet header as carried inside the sleeve. */
export const ETH_HDR_LEN = 14;
export const VNET_LEN = 10;

// Big-endian field access byte by byte: indexed access is inlined by the JIT, while Buffer's
// read/write methods cost ~15-20 ns per call, several times per datagram on the hot path.

export function readU32(buf: Buffer, off: number): number {
  return ((buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!) >>> 0;
}

export function readU16(buf: Buffer, off: number): number {
  return (buf[off]! << 8) | buf[off + 1]!;
}

export function writeU32(buf: Buffer, off: number, v: number): void {
  buf[off] = v >>> 24;
  buf[off + 1] = (v >>> 16) & 0xff;
  buf[off + 2] = (v >>> 8) & 0xff;
  buf[off + 3] = v & 0xff;
}

export function writeU16(buf: Buffer, off: number, v: number): void {
  buf[off] = (v >>> 8) & 0xff;
  buf[off + 1] = v & 0xff;
}

/** Writes a record header: kind, then the body length as u24. */
export function writeRecordHeader(buf: Buffer, off: number, kind: number, len: number): void {
  buf[off] = kind;
  buf[off + 1] = (len >>> 16) & 0xff;
  buf[off + 2] = (len >>> 8) & 0xff;
  buf[off + 3] = len & 0xff;
}

export function writeDataHeader(
  buf: Buffer,
  off: number,
  type: number,
  flags: number,
  dst: number,
  src: number,
  keyId: number,
  counter: number,
): void {
  buf[off] = type;
  buf[off + 1] = DEFAULT_HOPS;
  buf[off + 2] = WIRE_VERSION;
  buf[off + 3] = flags;
  writeU32(buf, off + 4, dst);
  writeU32(buf, off + 8, src);
  writeU32(buf, off + 12, keyId);
  writeCounter(buf, off + 16, counter);
}

/** True when the header's counter is at or above COUNTER_LIMIT (read without floats). */
export function counterAtLimit(buf: Buffer, off: number): boolean {
  return readU32(buf, off + 16) >= COUNTER_LIMIT_HI;
}

/** The header's counter as a number: exact only below COUNTER_LIMIT (check `counterAtLimit` first). */
export function readCounter(buf: Buffer, off: number): number {
  return readU32(buf, off + 16) * 4294967296 + readU32(buf, off + 20);
}

/** Writes a counter below COUNTER_LIMIT as 8 big-endian bytes at buf[off..]. */
export function writeCounter(buf: Buffer, off: number, counter: number): void {
  writeU32(buf, off, Math.floor(counter / 4294967296));
  writeU32(buf, off + 4, counter >>> 0);
}

/**
 * Overlay MTU (the pods' IP MTU) that lets the largest frame travel in one datagram:
 * underlay MTU − IP/UDP − header − record header − virtio_net_hdr − Ethernet − tag.
 */
export function overlayMtu(underlayMtu: number, family: 4 | 6, sealed: boolean): number {
  return (
    underlayMtu -
    (family === 6 ? UDP6_OVERHEAD : UDP4_OVERHEAD) -
    DATA_HDR_LEN -
    REC_HDR_LEN -
    VNET_LEN -
    ETH_HDR_LEN -
    (sealed ? TAG_LEN : 0)
  );
}

/** Largest UDP payload for a path: the datagram size fragments are cut to. */
export function maxDatagram(underlayMtu: number, family: 4 | 6): number {
  return underlayMtu - (family === 6 ? UDP6_OVERHEAD : UDP4_OVERHEAD);
}
