/**
 * STUN Binding (RFC 8489, formerly RFC 5389), the client side only: a Binding request to send
 * from the sleeve socket, and the reading of a Binding success response's XOR-MAPPED-ADDRESS
 * (our address and port as the server saw them). No attributes are sent (no FINGERPRINT, no
 * authentication: the answer is only a candidate, which punching then proves or not).
 *
 * Message header (20 bytes, big-endian), then attributes (type u16, length u16, value padded to
 * a multiple of 4):
 *
 *   0       2       4               8                          20
 *   | type  | length| magic cookie  | transaction id (96 bits) |
 *
 *   type     0x0001 Binding request, 0x0101 Binding success response (top two bits zero)
 *   length   bytes of attributes after the header (a multiple of 4)
 *   cookie   0x2112A442
 *   XOR-MAPPED-ADDRESS (0x0020): 0 u8 | family u8 (1 IPv4, 2 IPv6) | port ^ (cookie >> 16) u16 |
 *            address ^ cookie (IPv4) or ^ cookie || transaction id (IPv6)
 *   MAPPED-ADDRESS (0x0001): the same, not XORed (servers of the older RFC 3489 send only this)
 *
 * Told apart from the sleeve's own datagrams by the cookie at offset 4 with type 0x0101 at 0 (a
 * sleeve datagram with that start would carry hops 1, which no direct sleeve datagram does).
 * The check allocates nothing; only an accepted answer is decoded into an object.
 */

export const STUN_COOKIE = 0x2112a442;
export const STUN_HEADER = 20;
export const STUN_BINDING_REQUEST = 0x0001;
export const STUN_BINDING_SUCCESS = 0x0101;
const ATTR_MAPPED_ADDRESS = 0x0001;
const ATTR_XOR_MAPPED_ADDRESS = 0x0020;

/** Whether `buf[off, off + len)` looks like a Binding success response (header only; cheap, no allocation). */
export function isStunBindingSuccess(buf: Uint8Array, off: number, len: number): boolean {
  if (len < STUN_HEADER) return false;
  if (buf[off] !== 0x01 || buf[off + 1] !== 0x01) return false;
  return ((buf[off + 4]! << 24) | (buf[off + 5]! << 16) | (buf[off + 6]! << 8) | buf[off + 7]!) >>> 0 === STUN_COOKIE;
}

/** Writes a Binding request with transaction id `txid` (12 bytes) at `buf[off]`; returns its length (20). */
export function writeBindingRequest(buf: Uint8Array, off: number, txid: Uint8Array): number {
  if (txid.length !== 12) throw new RangeError(`a STUN transaction id is 12 bytes, not ${txid.length}`);
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  v.setUint16(off, STUN_BINDING_REQUEST);
  v.setUint16(off + 2, 0);
  v.setUint32(off + 4, STUN_COOKIE);
  buf.set(txid, off + 8);
  return STUN_HEADER;
}

/** Whether the message at `buf[off]` carries transaction id `txid`. */
export function sameTransaction(buf: Uint8Array, off: number, txid: Uint8Array): boolean {
  for (let i = 0; i < 12; i++) if (buf[off + 8 + i] !== txid[i]) return false;
  return true;
}

export interface StunMapped {
  address: string;
  port: number;
  family: 4 | 6;
  /** Which attribute said it. */
  from: 'xor-mapped-address' | 'mapped-address';
}

/**
 * The mapped address of a Binding success response at `buf[off, off + len)`: XOR-MAPPED-ADDRESS,
 * else MAPPED-ADDRESS; or why there is none (the text names what is wrong and where). Every length
 * is checked against the datagram: hostile input gets a reason, never an exception.
 */
export function readBindingSuccess(buf: Uint8Array, off: number, len: number): StunMapped | string {
  if (!isStunBindingSuccess(buf, off, len)) return 'not a STUN Binding success response';
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const attrLen = v.getUint16(off + 2);
  if (attrLen % 4 !== 0) return `STUN message length ${attrLen} is not a multiple of 4`;
  if (STUN_HEADER + attrLen > len) return `STUN message length ${attrLen} runs past the datagram (${len - STUN_HEADER} bytes after the header)`;
  const end = off + STUN_HEADER + attrLen;
  let plain: StunMapped | string | undefined;
  for (let p = off + STUN_HEADER; p + 4 <= end; ) {
    const type = v.getUint16(p);
    const alen = v.getUint16(p + 2);
    const value = p + 4;
    if (value + alen > end) return `STUN attribute 0x${type.toString(16).padStart(4, '0')} at byte ${p - off}: length ${alen} runs past the message`;
    if (type === ATTR_XOR_MAPPED_ADDRESS) return readAddress(buf, v, off, value, alen, true);
    if (type === ATTR_MAPPED_ADDRESS && plain === undefined) plain = readAddress(buf, v, off, value, alen, false);
    p = value + alen + ((4 - (alen % 4)) % 4);
  }
  return plain ?? 'STUN Binding success response without a mapped address';
}

function readAddress(buf: Uint8Array, v: DataView, msg: number, at: number, alen: number, xored: boolean): StunMapped | string {
  const name = xored ? 'XOR-MAPPED-ADDRESS' : 'MAPPED-ADDRESS';
  if (alen < 4) return `STUN ${name} of ${alen} bytes is too short`;
  const family = buf[at + 1];
  const want = family === 1 ? 8 : family === 2 ? 20 : -1;
  if (want < 0) return `STUN ${name} has an unknown address family ${family}`;
  if (alen !== want) return `STUN ${name} of family ${family} is ${alen} bytes, not ${want}`;
  const port = v.getUint16(at + 2) ^ (xored ? STUN_COOKIE >>> 16 : 0);
  // The XOR pad is the cookie then the transaction id: bytes 4.. of the message itself.
  const pad = (i: number) => (xored ? buf[msg + 4 + i]! : 0);
  if (family === 1) {
    const b = [0, 1, 2, 3].map((i) => buf[at + 4 + i]! ^ pad(i));
    return { address: b.join('.'), port, family: 4, from: xored ? 'xor-mapped-address' : 'mapped-address' };
  }
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((buf[at + 4 + i]! ^ pad(i)) << 8) | (buf[at + 5 + i]! ^ pad(i + 1))).toString(16));
  return { address: compressV6(groups), port, family: 6, from: xored ? 'xor-mapped-address' : 'mapped-address' };
}

/** RFC 5952 text of eight hex groups: the longest run (2 or more) of zero groups becomes "::". */
function compressV6(groups: string[]): string {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}
