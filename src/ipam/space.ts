/**
 * Address spaces: a CIDR prefix as `base` + `size` (bigints), so IPv4 and IPv6 are handled the
 * same way with offsets 0..size-1. Nothing here enumerates a space.
 */
import { isIP } from 'node:net';
import { addressToBigint, bigintToAddress, parseCidr } from '../core/net.js';
import { IpamArgumentError } from './errors.js';

export interface AddressSpace {
  /** Normalized text (`10.32.0.0/12`, `fd00:a::/64`). */
  readonly cidr: string;
  readonly family: 4 | 6;
  readonly prefixLength: number;
  readonly base: bigint;
  readonly size: bigint;
  /** Bytes of an address (4 or 16): the width of offsets on the wire. */
  readonly bytes: number;
}

/** Smallest spaces: a /30 (2 usable IPv4 addresses) and a /126. */
export const MAX_PREFIX = { 4: 30, 6: 126 } as const;

/** Parses `10.32.0.0/12` or `fd00::/64`; returns a reason string when it is not usable. */
export function parseSpace(text: string): AddressSpace | string {
  const c = parseCidr(text);
  if (typeof c === 'string') return c;
  const { address: addr, prefix: prefixLength, family: fam } = c;
  const bits = fam === 4 ? 32 : 128;
  if (prefixLength > MAX_PREFIX[fam]) return `"${text}" is too small to allocate from (at most /${MAX_PREFIX[fam]})`;
  const value = addressToBigint(addr, fam);
  const size = 1n << BigInt(bits - prefixLength);
  const base = value & ~(size - 1n);
  if (base !== value) return `"${text}" has host bits set (did you mean ${bigintToAddress(base, fam)}/${prefixLength}?)`;
  return { cidr: `${bigintToAddress(base, fam)}/${prefixLength}`, family: fam, prefixLength, base, size, bytes: bits / 8 };
}

/** Like `parseSpace`, throwing `IpamArgumentError` on a bad prefix (for text already validated). */
export function space(text: string): AddressSpace {
  const s = parseSpace(text);
  if (typeof s === 'string') throw new IpamArgumentError(s);
  return s;
}

export { addressToBigint, bigintToAddress } from '../core/net.js';

export function offsetToAddress(s: AddressSpace, offset: bigint): string {
  return bigintToAddress(s.base + offset, s.family);
}

/** Offset of an address inside the space; undefined when it is not an address of this space. */
export function addressToOffset(s: AddressSpace, text: string): bigint | undefined {
  if (isIP(text) !== s.family) return undefined;
  const off = addressToBigint(text, s.family) - s.base;
  return off >= 0n && off < s.size ? off : undefined;
}

/** Offsets never handed out: the IPv4 network and broadcast addresses of the whole space. */
export function reservedOffsets(s: AddressSpace): bigint[] {
  return s.family === 4 ? [0n, s.size - 1n] : [];
}

/** [start, end) as a CIDR when it is one aligned block, else `first-last`. */
export function formatRange(s: AddressSpace, start: bigint, end: bigint): string {
  const n = end - start;
  if (n > 0n && (n & (n - 1n)) === 0n && start % n === 0n) {
    const bits = s.family === 4 ? 32 : 128;
    const len = bits - (n.toString(2).length - 1);
    return `${offsetToAddress(s, start)}/${len}`;
  }
  return `${offsetToAddress(s, start)}-${offsetToAddress(s, end - 1n)}`;
}

/** Scratch for IPv6 offsets (a DataView per call costs more than the conversion). */
const scratch = new DataView(new ArrayBuffer(16));
const scratchBytes = new Uint8Array(scratch.buffer);

/** Fixed-width big-endian bytes of an offset (the wire and file form). */
export function offsetToBytes(off: bigint, width: number): Uint8Array {
  const out = new Uint8Array(width);
  if (width === 4) {
    const v = Number(BigInt.asUintN(32, off));
    out[0] = v >>> 24;
    out[1] = (v >>> 16) & 0xff;
    out[2] = (v >>> 8) & 0xff;
    out[3] = v & 0xff;
    return out;
  }
  if (width === 16) {
    scratch.setBigUint64(0, BigInt.asUintN(64, off >> 64n));
    scratch.setBigUint64(8, BigInt.asUintN(64, off));
    out.set(scratchBytes);
    return out;
  }
  let v = off;
  for (let i = width - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** Writes an offset as `offsetToBytes` does, at byte `at` of `view`. */
export function writeOffset(view: DataView, at: number, off: bigint, width: number): void {
  if (width === 4) view.setUint32(at, Number(BigInt.asUintN(32, off)));
  else if (width === 16) {
    view.setBigUint64(at, BigInt.asUintN(64, off >> 64n));
    view.setBigUint64(at + 8, BigInt.asUintN(64, off));
  } else {
    let v = off;
    for (let i = width - 1; i >= 0; i--) {
      view.setUint8(at + i, Number(v & 0xffn));
      v >>= 8n;
    }
  }
}

export function bytesToOffset(b: Uint8Array): bigint {
  if (b.length === 4) return BigInt(b[0]! * 0x100_0000 + ((b[1]! << 16) | (b[2]! << 8) | b[3]!));
  if (b.length === 16) {
    scratchBytes.set(b);
    return (scratch.getBigUint64(0) << 64n) | scratch.getBigUint64(8);
  }
  let v = 0n;
  for (const x of b) v = (v << 8n) | BigInt(x);
  return v;
}
