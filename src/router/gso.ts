/**
 * Software offload: what the kernel does for a TAP without IFF_VNET_HDR, done in userspace.
 * Input is one TAP read from a vnet-mode peer; output is plain, complete Ethernet frames.
 *
 *   [virtio_net_hdr 10 B, LE | Ethernet (+ one 802.1Q tag) | IPv4 (IHL ≥ 5) or IPv6 (40 B) | TCP/UDP | payload]
 *   virtio_net_hdr: u8 flags | u8 gso_type | u16 hdr_len | u16 gso_size | u16 csum_start | u16 csum_offset
 *
 *   gso NONE           NEEDS_CSUM: one's-complement sum over [csum_start, end) (the field already
 *                      holds the pseudo-header sum) stored at csum_start+csum_offset, in place in
 *                      `buf`; the frame is emitted from `buf` either way
 *   gso TCPV4/TCPV6    payload cut into gso_size chunks; per segment: IPv4 total length, id + i,
 *   (± ECN bit)        header checksum / IPv6 payload length; seq + i*gso_size, FIN/PSH on the last
 *                      segment only, CWR on the first only; full TCP checksum with pseudo-header
 *   gso UDP_L4 (USO)   the same cut into UDP datagrams, each with its own length and checksum
 *   gso UDP (UFO)      dropped: it would need IP fragmentation
 *
 * Header lengths come from the packet (hdr_len, csum_start are ignored for GSO); the IP length
 * bounds the packet, so Ethernet padding is dropped. A payload no longer than gso_size is one
 * segment, fixed in place. Otherwise each segment is built in the one scratch buffer at offset 2
 * (NET_IP_ALIGN), so L3, L4 and payload are 4-byte aligned there and the checksum reads 32-bit
 * words. Bad input returns a negative GsoResult; nothing here throws per packet.
 */
import { ConfigError } from '../core/errors.js';

/** Why a frame was dropped: `process` returns one of these (all negative). */
export const enum GsoResult {
  /** Shorter than vnet header + Ethernet header, than an IP header, or than the IP length says. */
  Truncated = -1,
  /** gso_type is not NONE, TCPV4, TCPV6, UDP or UDP_L4. */
  UnsupportedType = -2,
  /** gso_type UDP (UFO): would need IP fragmentation, which is never produced here. */
  Ufo = -3,
  /** GSO frame with gso_size 0. */
  ZeroGsoSize = -4,
  /** GSO frame whose EtherType (after at most one 802.1Q tag) is neither IPv4 nor IPv6. */
  NotIp = -5,
  /** Wrong IP version for the EtherType, IHL < 5, or an IPv4 fragment. */
  BadIpHeader = -6,
  /** TCPV4 on an IPv6 packet or TCPV6 on an IPv4 packet. */
  TypeMismatch = -7,
  /** IPv6 next header is an extension header (not handled). */
  Ipv6ExtHeader = -8,
  /** IP protocol is not TCP (TCPV4/TCPV6) or not UDP (UDP_L4). */
  WrongL4 = -9,
  /** TCP data offset < 5, or the TCP/UDP header runs past the IP packet. */
  BadL4Header = -10,
  /** IP total/payload length smaller than the IP header. */
  BadLength = -11,
  /** A segment would not fit in the scratch buffer (maxFrame). */
  TooBig = -12,
  /** NEEDS_CSUM with csum_start + csum_offset + 2 beyond the frame. */
  BadCsumOffsets = -13,
}

/** Receives one plain Ethernet frame; `buf` may be the scratch buffer, valid only during the call. */
export type FrameSink = (buf: Buffer, off: number, len: number) => void;

/** Counter name for a GsoResult, e.g. 'gso-truncated'; 'gso-unknown' for anything else. */
export function dropReasonName(code: number): string {
  switch (code) {
    case GsoResult.Truncated: return 'gso-truncated';
    case GsoResult.UnsupportedType: return 'gso-unsupported-type';
    case GsoResult.Ufo: return 'gso-ufo';
    case GsoResult.ZeroGsoSize: return 'gso-zero-size';
    case GsoResult.NotIp: return 'gso-not-ip';
    case GsoResult.BadIpHeader: return 'gso-bad-ip-header';
    case GsoResult.TypeMismatch: return 'gso-type-mismatch';
    case GsoResult.Ipv6ExtHeader: return 'gso-ipv6-ext-header';
    case GsoResult.WrongL4: return 'gso-wrong-l4';
    case GsoResult.BadL4Header: return 'gso-bad-l4-header';
    case GsoResult.BadLength: return 'gso-bad-length';
    case GsoResult.TooBig: return 'gso-too-big';
    case GsoResult.BadCsumOffsets: return 'gso-bad-csum-offsets';
    default: return 'gso-unknown';
  }
}

const VNET_LEN = 10;
const ETH_LEN = 14;
const F_NEEDS_CSUM = 1;
const GSO_NONE = 0;
const GSO_TCPV4 = 1;
const GSO_UDP = 3;
const GSO_TCPV6 = 4;
const GSO_UDP_L4 = 5;
const GSO_ECN = 0x80;
const ETH_P_8021Q = 0x8100;
const ETH_P_IP = 0x0800;
const ETH_P_IPV6 = 0x86dd;
const PROTO_TCP = 6;
const PROTO_UDP = 17;
const TCP_FIN_PSH = 0x09;
const TCP_CWR = 0x80;
/** Where segments start in the scratch buffer, so that L3 and everything after are 4-aligned. */
const BASE = 2;
const DEFAULT_MAX_FRAME = 65535 + ETH_LEN;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function rd16(b: Buffer, i: number): number {
  return (b[i]! << 8) | b[i + 1]!;
}

function wr16(b: Buffer, i: number, v: number): void {
  b[i] = v >>> 8;
  b[i + 1] = v & 0xff;
}

/** Unfolded sum of the big-endian 16-bit words of b[off, off+len); an odd last byte is padded. */
function sumBytes(b: Buffer, off: number, len: number): number {
  let a = 0;
  let c = 0;
  let i = off;
  const end8 = off + (len & ~7);
  for (; i < end8; i += 8) {
    a += ((b[i]! << 8) | b[i + 1]!) + ((b[i + 2]! << 8) | b[i + 3]!);
    c += ((b[i + 4]! << 8) | b[i + 5]!) + ((b[i + 6]! << 8) | b[i + 7]!);
  }
  const last = off + len - 1;
  for (; i < last; i += 2) a += (b[i]! << 8) | b[i + 1]!;
  if (i === last) a += b[i]! << 8;
  return a + c;
}

/** Folds an unfolded sum (< 2^53) to 16 bits with end-around carry. */
function fold(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 65536);
  return s;
}

function isIpv6Ext(nh: number): boolean {
  return nh === 0 || nh === 43 || nh === 44 || nh === 50 || nh === 51 || nh === 60 || nh === 135 || nh === 139 || nh === 140 || nh === 253 || nh === 254;
}

export class SoftwareOffload {
  private readonly scratch: Buffer;
  /** The scratch buffer as native-order 32-bit words, for the checksum. */
  private readonly words: Uint32Array;
  // Per-call parse results and segment constants, kept in fields so a call allocates nothing.
  private v4 = false;
  private tcp = false;
  private l3 = 0;
  private l4 = 0;
  private hdrs = 0;
  private ipId = 0;
  private seq = 0;
  private tcpFlags = 0;
  private pseudo = 0;
  private mss = 0;

  constructor(init?: { maxFrame?: number }) {
    const max = init?.maxFrame ?? DEFAULT_MAX_FRAME;
    if (!Number.isInteger(max) || max < 64 || max > 1 << 20) {
      throw new ConfigError([`maxFrame must be an integer between 64 and ${1 << 20}, got ${String(max)}`], 'software offload settings');
    }
    const ab = new ArrayBuffer(BASE + max);
    this.scratch = Buffer.from(ab);
    this.words = new Uint32Array(ab, 0, ab.byteLength >>> 2);
  }

  /**
   * Input buf[off, off+len) = [virtio_net_hdr | Ethernet frame]. Calls `sink` synchronously once
   * per resulting plain Ethernet frame, which lives in `buf` (no work needed, or fixed in place)
   * or in the scratch buffer (valid only during the call). Returns the number of frames emitted
   * (> 0) or a negative GsoResult; never throws on bad packet contents.
   */
  process(buf: Buffer, off: number, len: number, sink: FrameSink): number {
    if (!(off >= 0 && len >= VNET_LEN + ETH_LEN && off + len <= buf.length)) return GsoResult.Truncated;
    const f = off + VNET_LEN;
    const flen = len - VNET_LEN;
    const type = buf[off + 1]! & ~GSO_ECN;
    if (type === GSO_NONE) {
      if ((buf[off]! & F_NEEDS_CSUM) !== 0) {
        const start = buf[off + 6]! | (buf[off + 7]! << 8);
        const field = start + (buf[off + 8]! | (buf[off + 9]! << 8));
        if (field + 2 > flen) return GsoResult.BadCsumOffsets;
        const c = ~fold(sumBytes(buf, f + start, flen - start)) & 0xffff;
        wr16(buf, f + field, c === 0 ? 0xffff : c); // like skb_checksum_help: CSUM_MANGLED_0
      }
      sink(buf, f, flen);
      return 1;
    }
    if (type === GSO_UDP) return GsoResult.Ufo;
    if (type !== GSO_TCPV4 && type !== GSO_TCPV6 && type !== GSO_UDP_L4) return GsoResult.UnsupportedType;
    const mss = buf[off + 4]! | (buf[off + 5]! << 8);
    if (mss === 0) return GsoResult.ZeroGsoSize;
    this.mss = mss;
    const pktLen = this.parse(buf, f, flen, type);
    if (pktLen < 0) return pktLen;
    const hdrs = this.hdrs;
    const payload = pktLen - hdrs;
    if (payload <= mss) {
      this.fix(buf, f, 0, payload, true);
      sink(buf, f, pktLen);
      return 1;
    }
    if (BASE + hdrs + mss > this.scratch.length) return GsoResult.TooBig;
    const s = this.scratch;
    const count = Math.ceil(payload / mss);
    let src = f + hdrs;
    for (let i = 0; i < count; i++) {
      const n = i === count - 1 ? payload - i * mss : mss;
      buf.copy(s, BASE, f, f + hdrs); // again each time: the sink may have touched the last one
      buf.copy(s, BASE + hdrs, src, src + n);
      src += n;
      this.fix(s, BASE, i, n, i === count - 1);
      sink(s, BASE, hdrs + n);
    }
    return count;
  }

  /**
   * Parses the frame at buf[f, f+flen) for a GSO type; sets the header fields and segment
   * constants and returns the IP packet's end relative to f (l3 + IP length), or a GsoResult.
   */
  private parse(buf: Buffer, f: number, flen: number, type: number): number {
    let l3 = ETH_LEN;
    let ethType = rd16(buf, f + 12);
    if (ethType === ETH_P_8021Q) {
      if (flen < ETH_LEN + 4) return GsoResult.Truncated;
      ethType = rd16(buf, f + 16);
      l3 += 4;
    }
    const tcp = type !== GSO_UDP_L4;
    const proto = tcp ? PROTO_TCP : PROTO_UDP;
    const ip = f + l3;
    let ipHdr: number;
    let ipLen: number;
    if (ethType === ETH_P_IP) {
      if (type === GSO_TCPV6) return GsoResult.TypeMismatch;
      if (flen < l3 + 20) return GsoResult.Truncated;
      const vihl = buf[ip]!;
      ipHdr = (vihl & 0x0f) * 4;
      if (vihl >>> 4 !== 4 || ipHdr < 20) return GsoResult.BadIpHeader;
      if (flen < l3 + ipHdr) return GsoResult.Truncated;
      if ((rd16(buf, ip + 6) & 0x3fff) !== 0) return GsoResult.BadIpHeader; // MF or offset: a fragment
      if (buf[ip + 9] !== proto) return GsoResult.WrongL4;
      ipLen = rd16(buf, ip + 2);
      if (ipLen < ipHdr) return GsoResult.BadLength;
      this.v4 = true;
      this.ipId = rd16(buf, ip + 4);
      this.pseudo = sumBytes(buf, ip + 12, 8) + proto;
    } else if (ethType === ETH_P_IPV6) {
      if (type === GSO_TCPV4) return GsoResult.TypeMismatch;
      if (flen < l3 + 40) return GsoResult.Truncated;
      if (buf[ip]! >>> 4 !== 6) return GsoResult.BadIpHeader;
      const nh = buf[ip + 6]!;
      if (nh !== proto) return isIpv6Ext(nh) ? GsoResult.Ipv6ExtHeader : GsoResult.WrongL4;
      ipHdr = 40;
      ipLen = 40 + rd16(buf, ip + 4);
      this.v4 = false;
      this.ipId = 0;
      this.pseudo = sumBytes(buf, ip + 8, 32) + proto;
    } else {
      return GsoResult.NotIp;
    }
    const end = l3 + ipLen;
    if (end > flen) return GsoResult.Truncated;
    const l4 = l3 + ipHdr;
    let l4Hdr = 8;
    if (tcp) {
      if (l4 + 20 > end) return GsoResult.BadL4Header;
      l4Hdr = (buf[f + l4 + 12]! >>> 4) * 4;
      if (l4Hdr < 20) return GsoResult.BadL4Header;
      this.seq = buf.readUInt32BE(f + l4 + 4);
      this.tcpFlags = buf[f + l4 + 13]!;
    }
    if (l4 + l4Hdr > end) return GsoResult.BadL4Header;
    this.tcp = tcp;
    this.l3 = l3;
    this.l4 = l4;
    this.hdrs = l4 + l4Hdr;
    return end;
  }

  /** Sets lengths, id, sequence, flags and checksums of segment `i` (n payload bytes) at b[base..]. */
  private fix(b: Buffer, base: number, i: number, n: number, last: boolean): void {
    const ip = base + this.l3;
    const l4 = base + this.l4;
    const l4Len = this.hdrs - this.l4 + n;
    if (this.v4) {
      wr16(b, ip + 2, l4 - ip + l4Len);
      wr16(b, ip + 4, (this.ipId + i) & 0xffff);
      wr16(b, ip + 10, 0);
      wr16(b, ip + 10, ~fold(sumBytes(b, ip, l4 - ip)) & 0xffff);
    } else {
      wr16(b, ip + 4, l4Len);
    }
    let field = l4 + 6;
    if (this.tcp) {
      b.writeUInt32BE((this.seq + i * this.mss) >>> 0, l4 + 4);
      let fl = this.tcpFlags;
      if (!last) fl &= ~TCP_FIN_PSH;
      if (i !== 0) fl &= ~TCP_CWR;
      b[l4 + 13] = fl;
      field = l4 + 16;
    } else {
      wr16(b, l4 + 4, l4Len);
    }
    wr16(b, field, 0);
    const sum = b === this.scratch ? this.sumScratch(l4, l4Len) : sumBytes(b, l4, l4Len);
    const c = ~fold(sum + this.pseudo + l4Len) & 0xffff;
    wr16(b, field, c === 0 && !this.tcp ? 0xffff : c); // UDP: 0 means "no checksum"
  }

  /** sumBytes over the scratch buffer, reading aligned 32-bit words (RFC 1071: byte order free). */
  private sumScratch(off: number, len: number): number {
    if ((off & 3) !== 0) return sumBytes(this.scratch, off, len);
    const w = this.words;
    let lo = 0;
    let hi = 0;
    const end = (off + len) >>> 2;
    for (let j = off >>> 2; j < end; j++) {
      const x = w[j]!;
      lo += x & 0xffff;
      hi += x >>> 16;
    }
    let s = fold(lo + hi);
    if (LITTLE_ENDIAN) s = ((s & 0xff) << 8) | (s >>> 8);
    return s + sumBytes(this.scratch, off + (len & ~3), len & 3);
  }
}
