/**
 * Userspace segmentation and checksum completion, for delivering frames that carry a
 * virtio_net_hdr (GSO super-frames, partial checksums) to a TAP without IFF_VNET_HDR.
 *
 *   [vnet hdr | Ethernet | (802.1Q) | IPv4/IPv6 | TCP or UDP | payload]
 *     gso NONE + NEEDS_CSUM → checksum over [csum_start, end) stored at csum_start+csum_offset
 *                            (in place; the field already holds the pseudo-header sum)
 *     gso TCPV4/TCPV6 (+ECN) → segments of gso_size payload bytes, each with its own IP length,
 *                            IPv4 id and header checksum, TCP sequence number and checksum;
 *                            FIN/PSH only on the last segment, CWR only on the first
 *     gso UDP_L4             → datagrams of gso_size payload bytes with their own length/checksum
 *     gso UDP (UFO)          → dropped (IP fragmentation is never produced here)
 *
 * Header lengths come from the packet, not from hdr_len. Segments are built in one scratch buffer
 * and handed to the sink one at a time. Bad input returns a negative reason; nothing throws.
 */
export type FrameSink = (buf: Buffer, off: number, len: number) => void;

export const GSO_TRUNCATED = -1;
export const GSO_UNSUPPORTED_TYPE = -2;
export const GSO_BAD_ETHERNET = -3;
export const GSO_BAD_IP = -4;
export const GSO_BAD_L4 = -5;
export const GSO_BAD_SIZE = -6;
export const GSO_BAD_CSUM = -7;

const REASONS: Record<number, string> = {
  [GSO_TRUNCATED]: 'gso-truncated',
  [GSO_UNSUPPORTED_TYPE]: 'gso-unsupported-type',
  [GSO_BAD_ETHERNET]: 'gso-bad-ethernet',
  [GSO_BAD_IP]: 'gso-bad-ip',
  [GSO_BAD_L4]: 'gso-bad-l4',
  [GSO_BAD_SIZE]: 'gso-bad-size',
  [GSO_BAD_CSUM]: 'gso-bad-csum-offsets',
};

export function dropReasonName(code: number): string {
  return REASONS[code] ?? 'gso-unknown';
}

const VNET = 10;
const F_NEEDS_CSUM = 1;
const T_NONE = 0;
const T_TCPV4 = 1;
const T_TCPV6 = 4;
const T_UDP_L4 = 5;
const PROTO_TCP = 6;
const PROTO_UDP = 17;

/** One's-complement sum of buf[off, off+len) added to `sum` (not folded). */
export function sum16(buf: Buffer, off: number, len: number, sum: number): number {
  let s = sum;
  let i = off;
  const end = off + len - 1;
  for (; i < end; i += 2) s += (buf[i]! << 8) | buf[i + 1]!;
  if (i === end) s += buf[i]! << 8;
  return s;
}

export function fold(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 65536);
  return s;
}

export class SoftwareOffload {
  private readonly scratch: Buffer;

  constructor(init: { maxFrame?: number } = {}) {
    this.scratch = Buffer.alloc(init.maxFrame ?? 65535 + 18);
  }

  process(buf: Buffer, off: number, len: number, sink: FrameSink): number {
    if (len < VNET + 14) return GSO_TRUNCATED;
    const flags = buf[off]!;
    const type = buf[off + 1]! & 0x7f;
    const gsoSize = buf.readUInt16LE(off + 4);
    const csumStart = buf.readUInt16LE(off + 6);
    const csumOffset = buf.readUInt16LE(off + 8);
    const f = off + VNET;
    const flen = len - VNET;
    if (type === T_NONE) {
      if ((flags & F_NEEDS_CSUM) !== 0) {
        const field = csumStart + csumOffset;
        if (csumStart >= flen || field + 2 > flen) return GSO_BAD_CSUM;
        const c = ~fold(sum16(buf, f + csumStart, flen - csumStart, 0)) & 0xffff;
        buf.writeUInt16BE(c, f + field);
      }
      sink(buf, f, flen);
      return 1;
    }
    // UFO (T_UDP) would need IP fragmentation: refused like any other unknown type.
    if (type !== T_TCPV4 && type !== T_TCPV6 && type !== T_UDP_L4) return GSO_UNSUPPORTED_TYPE;
    if (gsoSize === 0) return GSO_BAD_SIZE;
    return this.segment(buf, f, flen, type, gsoSize, sink);
  }

  private segment(buf: Buffer, f: number, flen: number, type: number, mss: number, sink: FrameSink): number {
    let l3 = 14;
    let ethType = buf.readUInt16BE(f + 12);
    if (ethType === 0x8100) {
      if (flen < 18) return GSO_TRUNCATED;
      ethType = buf.readUInt16BE(f + 16);
      l3 = 18;
    }
    let v4: boolean;
    let ipHdr: number;
    let proto: number;
    if (ethType === 0x0800) {
      if (flen < l3 + 20) return GSO_TRUNCATED;
      const vihl = buf[f + l3]!;
      ipHdr = (vihl & 0x0f) * 4;
      if (vihl >>> 4 !== 4 || ipHdr < 20 || flen < l3 + ipHdr) return GSO_BAD_IP;
      proto = buf[f + l3 + 9]!;
      v4 = true;
    } else if (ethType === 0x86dd) {
      if (flen < l3 + 40) return GSO_TRUNCATED;
      if (buf[f + l3]! >>> 4 !== 6) return GSO_BAD_IP;
      ipHdr = 40;
      proto = buf[f + l3 + 6]!;
      v4 = false;
    } else {
      return GSO_BAD_ETHERNET;
    }
    if (type === T_TCPV4 && !v4) return GSO_BAD_IP;
    if (type === T_TCPV6 && v4) return GSO_BAD_IP;
    const tcp = type !== T_UDP_L4;
    if (proto !== (tcp ? PROTO_TCP : PROTO_UDP)) return GSO_BAD_L4;
    const l4 = l3 + ipHdr;
    let l4Hdr: number;
    if (tcp) {
      if (flen < l4 + 20) return GSO_TRUNCATED;
      l4Hdr = (buf[f + l4 + 12]! >>> 4) * 4;
      if (l4Hdr < 20) return GSO_BAD_L4;
    } else {
      l4Hdr = 8;
    }
    const hdrs = l4 + l4Hdr;
    if (flen < hdrs) return GSO_TRUNCATED;
    const payload = flen - hdrs;
    if (hdrs + Math.min(mss, payload) > this.scratch.length) return GSO_BAD_SIZE;
    const count = payload === 0 ? 1 : Math.ceil(payload / mss);
    const s = this.scratch;
    const ipId = v4 ? buf.readUInt16BE(f + l3 + 4) : 0;
    const seq = tcp ? buf.readUInt32BE(f + l4 + 4) : 0;
    const tcpFlags = tcp ? buf[f + l4 + 13]! : 0;
    // Pseudo-header part common to all segments: addresses and protocol.
    const addrOff = f + l3 + (v4 ? 12 : 8);
    const addrLen = v4 ? 8 : 32;
    const pseudo = sum16(buf, addrOff, addrLen, tcp ? PROTO_TCP : PROTO_UDP);
    buf.copy(s, 0, f, f + hdrs);
    for (let i = 0; i < count; i++) {
      const start = i * mss;
      const n = Math.min(mss, payload - start);
      buf.copy(s, hdrs, f + hdrs + start, f + hdrs + start + n);
      const l4Len = l4Hdr + n;
      if (v4) {
        s.writeUInt16BE(ipHdr + l4Len, l3 + 2);
        s.writeUInt16BE((ipId + i) & 0xffff, l3 + 4);
        s.writeUInt16BE(0, l3 + 10);
        s.writeUInt16BE(~fold(sum16(s, l3, ipHdr, 0)) & 0xffff, l3 + 10);
      } else {
        s.writeUInt16BE(l4Len, l3 + 4);
      }
      if (tcp) {
        s.writeUInt32BE((seq + start) >>> 0, l4 + 4);
        let fl = tcpFlags;
        if (i !== count - 1) fl &= ~0x09; // FIN, PSH only on the last
        if (i !== 0) fl &= ~0x80; // CWR only on the first
        s[l4 + 13] = fl;
        s.writeUInt16BE(0, l4 + 16);
        const c = ~fold(sum16(s, l4, l4Len, pseudo + l4Len)) & 0xffff;
        s.writeUInt16BE(c, l4 + 16);
      } else {
        s.writeUInt16BE(l4Len, l4 + 4);
        s.writeUInt16BE(0, l4 + 6);
        let c = ~fold(sum16(s, l4, l4Len, pseudo + l4Len)) & 0xffff;
        if (c === 0) c = 0xffff;
        s.writeUInt16BE(c, l4 + 6);
      }
      sink(s, 0, hdrs + n);
    }
    return count;
  }
}
