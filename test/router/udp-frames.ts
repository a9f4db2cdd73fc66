/** Small UDP frames as a vnet TAP read gives them (checksum left to offload), built naively for tests. */

/** RFC 1071 byte by byte: even positions are high bytes; folded by modulo at the end. */
export function naiveSum(bytes: Uint8Array | number[]): number {
  let s = 0;
  for (let i = 0; i < bytes.length; i++) s += i % 2 === 0 ? bytes[i]! * 256 : bytes[i]!;
  while (s > 0xffff) s = (s % 65536) + Math.floor(s / 65536);
  return s;
}
export const naiveChecksum = (bytes: Uint8Array | number[]): number => ~naiveSum(bytes) & 0xffff;

export interface Spec {
  v6?: boolean;
  /** Payload bytes, or a length (content from `seed`). */
  payload: Buffer | number;
  seed?: number;
  id?: number;
  /** IPv4 flags + fragment offset word (default 0x4000: DF). */
  frag?: number;
  tos?: number;
  ttl?: number;
  sport?: number;
  dport?: number;
  dstMacLast?: number;
  src4Last?: number;
  flowLabel?: number;
  /** IP protocol / IPv6 next header (default UDP). */
  proto?: number;
  /** IPv4 header length in bytes (options when > 20). */
  ipHdr?: number;
  ethType?: number;
  /** vnet header fields (default NEEDS_CSUM, NONE, csum at the UDP checksum). */
  vnetFlags?: number;
  gsoType?: number;
  csumStart?: number;
  csumOffset?: number;
  /** Trailing bytes after the IP packet (Ethernet padding). */
  padding?: number;
  udpLenDelta?: number;
  badIpChecksum?: boolean;
}

export interface Frame {
  buf: Buffer;
  frameLen: number;
  payload: Buffer;
}

function payloadOf(spec: Spec): Buffer {
  if (typeof spec.payload !== 'number') return spec.payload;
  const b = Buffer.alloc(spec.payload);
  const seed = spec.seed ?? 1;
  for (let i = 0; i < b.length; i++) b[i] = (seed * 31 + i * 7) & 0xff;
  return b;
}

/** [vnet header 10 B | frame], as a TAP read from a pod's checksum-offloaded UDP send gives it. */
export function build(spec: Spec): Frame {
  const v6 = spec.v6 === true;
  const payload = payloadOf(spec);
  const l3 = 14;
  const ipHdr = v6 ? 40 : (spec.ipHdr ?? 20);
  const l4 = l3 + ipHdr;
  const udpLen = 8 + payload.length;
  const frameLen = l4 + udpLen + (spec.padding ?? 0);
  const buf = Buffer.alloc(10 + frameLen);
  const f = 10;
  buf[0] = spec.vnetFlags ?? 1;
  buf[1] = spec.gsoType ?? 0;
  buf.writeUInt16LE(spec.csumStart ?? l4, 6);
  buf.writeUInt16LE(spec.csumOffset ?? 6, 8);
  buf.set([0x02, 0x40, 0, 0, 0x02, spec.dstMacLast ?? 0x02, 0x02, 0x40, 0, 0, 0x01, 0x02], f);
  buf.writeUInt16BE(spec.ethType ?? (v6 ? 0x86dd : 0x0800), f + 12);
  const ip = f + l3;
  const proto = spec.proto ?? 17;
  let pseudo: number[];
  if (v6) {
    buf.writeUInt32BE((0x6 << 28) | ((spec.tos ?? 0) << 20) | (spec.flowLabel ?? 0x12345), ip);
    buf.writeUInt16BE(udpLen, ip + 4);
    buf[ip + 6] = proto;
    buf[ip + 7] = spec.ttl ?? 64;
    buf.set([0xfd, 0, 0, 0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, spec.src4Last ?? 2], ip + 8);
    buf.set([0xfd, 0, 0, 0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 2], ip + 24);
    pseudo = [...buf.subarray(ip + 8, ip + 40), 0, 0, udpLen >> 8, udpLen & 0xff, 0, 0, 0, proto];
  } else {
    buf[ip] = 0x40 | (ipHdr / 4);
    buf[ip + 1] = spec.tos ?? 0;
    buf.writeUInt16BE(ipHdr + udpLen, ip + 2);
    buf.writeUInt16BE((spec.id ?? 0) & 0xffff, ip + 4);
    buf.writeUInt16BE(spec.frag ?? 0x4000, ip + 6);
    buf[ip + 8] = spec.ttl ?? 64;
    buf[ip + 9] = proto;
    buf.set([10, 40, 1, spec.src4Last ?? 2], ip + 12);
    buf.set([10, 40, 2, 2], ip + 16);
    for (let i = 20; i < ipHdr; i++) buf[ip + i] = 1; // NOP options
    buf.writeUInt16BE(naiveChecksum(buf.subarray(ip, ip + ipHdr)) ^ (spec.badIpChecksum === true ? 0x0101 : 0), ip + 10);
    pseudo = [...buf.subarray(ip + 12, ip + 20), 0, proto, udpLen >> 8, udpLen & 0xff];
  }
  const u = f + l4;
  buf.writeUInt16BE(spec.sport ?? 40000, u);
  buf.writeUInt16BE(spec.dport ?? 9999, u + 2);
  buf.writeUInt16BE(udpLen + (spec.udpLenDelta ?? 0), u + 4);
  // NEEDS_CSUM: the field holds the pseudo-header sum (folded, not complemented).
  buf.writeUInt16BE(naiveSum(pseudo), u + 6);
  payload.copy(buf, u + 8);
  return { buf, frameLen, payload };
}

