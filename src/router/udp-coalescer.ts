/**
 * UDP coalescing on the TAP write ("GRO" for the receive side), for a TAP with IFF_VNET_HDR: the
 * small frames of one UDP flow that one sleeve receive batch delivers in a row leave as ONE
 * USO super-frame, one write() instead of one per frame; the kernel cuts it back into the very
 * datagrams (__udp_gso_segment, at the pod's veth or at the receiving socket).
 *
 *   frame i ─ eligible? ─ no ─ flush what is staged, then write frame i as before (order kept)
 *               │ yes
 *               ├ continues the staged run? ─ yes ─ append its UDP payload
 *               └ no ─ flush, then stage frame i (vnet header + frame copied whole)
 *   end of batch (Sleeve.onBatch, after a throw too) ─ flush
 *
 * Staging buffer, written with one tap.write:
 *   [virtio_net_hdr 10 B, LE | Ethernet 14 | IPv4 20 or IPv6 40 | UDP 8 | payload 1 | payload 2 | ...]
 *   virtio_net_hdr: flags NEEDS_CSUM, gso_type UDP_L4 (5), hdr_len = headers, gso_size = payload 1's
 *   length, csum_start = the UDP header, csum_offset 6 (the kernel refuses UDP_L4 without these:
 *   virtio_net_hdr_to_skb). IPv4 total length / IPv6 payload length and the UDP length cover all
 *   segments; the UDP checksum field holds the folded pseudo-header sum over that whole UDP length,
 *   not complemented (what udp4_hwcsum leaves in a USO skb): the segmenter takes the old length out
 *   and the segment's in, then sums the segment. The IPv4 header checksum is recomputed (ip_rcv
 *   checks the super-frame's header before anything cuts it).
 *
 * Eligible: a vnet header with gso_type NONE and NEEDS_CSUM whose csum_start/csum_offset name the
 * UDP checksum (the sending pod left the checksum to offload, so the kernel's finishing it per
 * segment is what would have happened anyway; a frame carrying a complete checksum is written as
 * it is, so a wrong one still fails at the pod), Ethernet II, IPv4 with IHL 5, a correct header
 * checksum and no fragment bits, or IPv6 whose next header is UDP, IP and UDP lengths that match
 * the frame exactly (no padding), at least one byte of payload. A run continues while the
 * Ethernet header and every IP and UDP field but lengths, ID and checksums are the same, the
 * payload is no longer than the first one and the one before was not shorter (only the last may
 * be), at most UDP_MAX_SEGMENTS (64) segments and a 65535-byte IP packet.
 *
 * IPv4 IDs: segmentation gives the segments id, id+1, ...; a run takes datagrams whose IDs already
 * run so (then they come out unchanged), or datagrams with DF set whatever their IDs (an atomic
 * datagram's ID means nothing, RFC 6864 §4; Linux sends DF UDP with ID 0 from unconnected
 * sockets, which would otherwise never coalesce). DF itself must be the same in the whole run.
 *
 * Nothing here allocates per frame or throws; a frame it does not understand is just written as
 * before.
 */
import { VNET_F_NEEDS_CSUM, VNET_HDR_LEN } from '../platform/tap.js';

/** Writes one TAP item (vnet header first unless zeroHdr) carrying `frames` frames. */
export type CoalescerWrite = (buf: Buffer, off: number, len: number, zeroHdr: boolean, frames: number) => void;

/** Segments the kernel takes in one USO skb (UDP_MAX_SEGMENTS). */
export const USO_MAX_SEGMENTS = 64;
/** Largest IP packet (IPv4 total length; for IPv6 the same bound on header + payload). */
export const USO_MAX_IP_PACKET = 65535;
export const VNET_GSO_UDP_L4 = 5;

const ETH_LEN = 14;
const ETH_P_IP = 0x0800;
const ETH_P_IPV6 = 0x86dd;
const PROTO_UDP = 17;
const L4_V4 = ETH_LEN + 20;
const L4_V6 = ETH_LEN + 40;

function rd16(b: Buffer, i: number): number {
  return (b[i]! << 8) | b[i + 1]!;
}

function wr16(b: Buffer, i: number, v: number): void {
  b[i] = v >>> 8;
  b[i + 1] = v & 0xff;
}

function fold(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** Unfolded sum of the big-endian 16-bit words of b[off, off+len), len even. */
function sum16(b: Buffer, off: number, len: number): number {
  let s = 0;
  for (let i = off; i < off + len; i += 2) s += (b[i]! << 8) | b[i + 1]!;
  return s;
}

/** True when a[ao, ao+n) and b[bo, bo+n) hold the same bytes. */
function same(a: Buffer, ao: number, b: Buffer, bo: number, n: number): boolean {
  for (let i = 0; i < n; i++) if (a[ao + i] !== b[bo + i]) return false;
  return true;
}

export class UdpCoalescer {
  private readonly write: CoalescerWrite;
  private readonly stage: Buffer;
  /** Segments staged (0: nothing). */
  private count = 0;
  /** End of the staged bytes in `stage`. */
  private end = 0;
  /** The run's segment size (its first payload) and the last payload's length. */
  private seg = 0;
  private lastLen = 0;
  /** UDP header offset from the Ethernet header: L4_V4 or L4_V6 (also says the family). */
  private l4 = 0;
  /** IPv4: DF set (IDs free), else the ID the next datagram must carry. */
  private df = false;
  private nextId = 0;
  /** The candidate frame's family, set by `payloadOf`. */
  private candL4 = 0;

  constructor(components: { write: CoalescerWrite }) {
    this.write = components.write;
    this.stage = Buffer.alloc(VNET_HDR_LEN + ETH_LEN + USO_MAX_IP_PACKET);
  }

  /**
   * One frame for the TAP, in arrival order: staged, or (not eligible) written at once after what
   * was staged. `vnetOff` is its virtio_net_hdr's offset or -1 (the frame has none).
   */
  frame(buf: Buffer, vnetOff: number, frameOff: number, frameLen: number): void {
    const pay = vnetOff >= 0 ? this.payloadOf(buf, vnetOff, frameOff, frameLen) : -1;
    if (pay < 0) {
      this.flush();
      if (vnetOff >= 0) this.write(buf, vnetOff, VNET_HDR_LEN + frameLen, false, 1);
      else this.write(buf, frameOff, frameLen, true, 1);
      return;
    }
    if (this.count > 0 && this.continues(buf, frameOff, pay)) {
      buf.copy(this.stage, this.end, frameOff + this.l4 + 8, frameOff + frameLen);
      this.end += pay;
      this.count++;
      this.lastLen = pay;
      if (!this.df) this.nextId = (this.nextId + 1) & 0xffff;
      return;
    }
    this.flush();
    this.start(buf, vnetOff, frameOff, frameLen, pay);
  }

  /** Writes what is staged: one super-frame, or a lone frame as it came. */
  flush(): void {
    const n = this.count;
    if (n === 0) return;
    this.count = 0;
    if (n > 1) this.finish();
    this.write(this.stage, 0, this.end, false, n);
  }

  /** Frames staged and not yet written (tests). */
  get pending(): number {
    return this.count;
  }

  /** The UDP payload length of an eligible frame (sets candL4), or -1. */
  private payloadOf(buf: Buffer, v: number, f: number, len: number): number {
    if ((buf[v]! & VNET_F_NEEDS_CSUM) === 0 || buf[v + 1] !== 0) return -1;
    if (len < L4_V4 + 9) return -1;
    const type = rd16(buf, f + 12);
    let l4: number;
    if (type === ETH_P_IP) {
      const ip = f + ETH_LEN;
      if (buf[ip] !== 0x45 || buf[ip + 9] !== PROTO_UDP) return -1;
      if ((rd16(buf, ip + 6) & 0x3fff) !== 0) return -1; // MF or an offset: a fragment
      if (rd16(buf, ip + 2) !== len - ETH_LEN) return -1;
      if (fold(sum16(buf, ip, 20)) !== 0xffff) return -1;
      l4 = L4_V4;
    } else if (type === ETH_P_IPV6) {
      if (len < L4_V6 + 9) return -1;
      const ip = f + ETH_LEN;
      if (buf[ip]! >>> 4 !== 6 || buf[ip + 6] !== PROTO_UDP) return -1;
      if (rd16(buf, ip + 4) !== len - L4_V6) return -1;
      l4 = L4_V6;
    } else {
      return -1;
    }
    // csum_start and csum_offset (little-endian) must name the UDP checksum.
    if ((buf[v + 6]! | (buf[v + 7]! << 8)) !== l4 || (buf[v + 8]! | (buf[v + 9]! << 8)) !== 6) return -1;
    if (rd16(buf, f + l4 + 4) !== len - l4) return -1;
    this.candL4 = l4;
    return len - l4 - 8;
  }

  /** True when the eligible frame at buf[f..] (payload `pay`) continues the staged run. */
  private continues(buf: Buffer, f: number, pay: number): boolean {
    const l4 = this.l4;
    if (this.candL4 !== l4 || this.count >= USO_MAX_SEGMENTS || this.lastLen !== this.seg || pay > this.seg) return false;
    if (this.end - VNET_HDR_LEN - ETH_LEN + pay > USO_MAX_IP_PACKET) return false;
    const s = this.stage;
    const sf = VNET_HDR_LEN;
    // Ethernet header, then the IP header but its variable fields, then the ports.
    if (!same(buf, f, s, sf, ETH_LEN + 2)) return false;
    const ip = f + ETH_LEN;
    const sip = sf + ETH_LEN;
    if (l4 === L4_V4) {
      // flags/fragment, TTL, protocol; the addresses
      if (!same(buf, ip + 6, s, sip + 6, 4) || !same(buf, ip + 12, s, sip + 12, 8)) return false;
      if (!this.df && rd16(buf, ip + 4) !== this.nextId) return false;
    } else {
      // version, traffic class, flow label (bytes 0-1 compared above); next header, hop limit, addresses
      if (!same(buf, ip + 2, s, sip + 2, 2) || !same(buf, ip + 6, s, sip + 6, 34)) return false;
    }
    return same(buf, f + l4, s, sf + l4, 4);
  }

  private start(buf: Buffer, v: number, f: number, len: number, pay: number): void {
    const s = this.stage;
    buf.copy(s, 0, v, v + VNET_HDR_LEN);
    buf.copy(s, VNET_HDR_LEN, f, f + len);
    this.end = VNET_HDR_LEN + len;
    this.count = 1;
    this.seg = pay;
    this.lastLen = pay;
    this.l4 = this.candL4;
    if (this.l4 === L4_V4) {
      const ip = f + ETH_LEN;
      this.df = (buf[ip + 6]! & 0x40) !== 0;
      this.nextId = (rd16(buf, ip + 4) + 1) & 0xffff;
    } else {
      this.df = true;
    }
  }

  /** Turns the staged run into a USO super-frame: vnet header, lengths, checksums. */
  private finish(): void {
    const s = this.stage;
    const f = VNET_HDR_LEN;
    const l4 = this.l4;
    const ip = f + ETH_LEN;
    const u = f + l4;
    const udpLen = this.end - u;
    s[0] = VNET_F_NEEDS_CSUM;
    s[1] = VNET_GSO_UDP_L4;
    s.writeUInt16LE(l4 + 8, 2);
    s.writeUInt16LE(this.seg, 4);
    s.writeUInt16LE(l4, 6);
    s.writeUInt16LE(6, 8);
    let pseudo: number;
    if (l4 === L4_V4) {
      wr16(s, ip + 2, 20 + udpLen);
      wr16(s, ip + 10, 0);
      wr16(s, ip + 10, ~fold(sum16(s, ip, 20)) & 0xffff);
      pseudo = sum16(s, ip + 12, 8);
    } else {
      wr16(s, ip + 4, udpLen);
      pseudo = sum16(s, ip + 8, 32);
    }
    wr16(s, u + 4, udpLen);
    wr16(s, u + 6, fold(pseudo + PROTO_UDP + udpLen));
  }
}
