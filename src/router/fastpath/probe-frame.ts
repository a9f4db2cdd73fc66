/**
 * Fast-path probe frames: Ethernet frames that travel the kernel VXLAN path between two routers'
 * probe TAPs (see test/integration/fastpath-probe.test.ts for the kernel side).
 *
 *   0     6     12    14      18     22     26    30    34      38    39    41        57
 *   | dst | src |type| "wfp2"|src id|dst id| seq |echo |echoBig|flags| size| tag (16) | pad to size
 *
 * type 0x88b5 (IEEE local experimental). seq counts every probe we send to that peer; echo is
 * the highest seq heard from it; echoBig the highest seq of a full-size probe heard from it.
 * flags bit 0: this probe is full size (overlay MTU + 14), to find MTU black holes. size: the
 * frame's length as sent (a frame cut short on the way is refused). tag: BLAKE2b-128 of bytes
 * 0..40, keyed with the pair's probe key (probe-auth.ts); the padding is zeros.
 */
import { macToString, parseMac, readMac } from '../../core/mac.js';

export const PROBE_ETHERTYPE = 0x88b5;
export const PROBE_MAGIC = 0x77667032; // "wfp2" ("wfp1": the unauthenticated probes before it)
export const FLAG_BIG = 1;
/** Bytes covered by the tag, and where the tag starts. */
export const PROBE_AUTH_LEN = 41;
export const PROBE_TAG_LEN = 16;
export const PROBE_MIN = PROBE_AUTH_LEN + PROBE_TAG_LEN;
/** First two bytes of every probe MAC. */
const PROBE_MAC_HI = 0x0277;

export interface Probe {
  src: number;
  dst: number;
  seq: number;
  echo: number;
  echoBig: number;
  big: boolean;
}

/** The probe MAC of a router (locally administered, from its 32-bit id); never a netdev's own. */
export function probeMac(id: number): Buffer {
  const b = Buffer.alloc(6);
  b.writeUInt16BE(PROBE_MAC_HI, 0);
  b.writeUInt32BE(id >>> 0, 2);
  return b;
}

/** The probe MAC of a router as text (for bridge and VXLAN entries). */
export function probeMacText(id: number): string {
  return macToString(readMac(probeMac(id), 0));
}

/** The router id of a probe MAC in text form; undefined for any other MAC. */
export function probeIdOf(text: string): number | undefined {
  const mac = parseMac(text);
  if (mac === undefined || Math.floor(mac / 4294967296) !== PROBE_MAC_HI) return undefined;
  return mac % 4294967296;
}

/** Writes a probe of `size` bytes (≥ PROBE_MIN) into buf at off, with a zero tag (see ProbeAuth.sign); returns size. */
export function writeProbe(buf: Buffer, off: number, size: number, p: Probe): number {
  buf.writeUInt16BE(PROBE_MAC_HI, off);
  buf.writeUInt32BE(p.dst >>> 0, off + 2);
  buf.writeUInt16BE(PROBE_MAC_HI, off + 6);
  buf.writeUInt32BE(p.src >>> 0, off + 8);
  buf.writeUInt16BE(PROBE_ETHERTYPE, off + 12);
  buf.writeUInt32BE(PROBE_MAGIC, off + 14);
  buf.writeUInt32BE(p.src >>> 0, off + 18);
  buf.writeUInt32BE(p.dst >>> 0, off + 22);
  buf.writeUInt32BE(p.seq >>> 0, off + 26);
  buf.writeUInt32BE(p.echo >>> 0, off + 30);
  buf.writeUInt32BE(p.echoBig >>> 0, off + 34);
  buf[off + 38] = p.big ? FLAG_BIG : 0;
  buf.writeUInt16BE(size, off + 39);
  buf.fill(0, off + PROBE_AUTH_LEN, off + size);
  return size;
}

/**
 * True when the frame is shaped like a probe: the type, magic and length, MACs that agree with
 * the ids, and no shorter than its size field. Says nothing of who sent it (that is the tag's
 * job). Allocates nothing.
 */
export function isProbe(buf: Buffer, off: number, len: number): boolean {
  if (len < PROBE_MIN || buf.readUInt16BE(off + 12) !== PROBE_ETHERTYPE || buf.readUInt32BE(off + 14) !== PROBE_MAGIC) return false;
  if (buf.readUInt16BE(off) !== PROBE_MAC_HI || buf.readUInt16BE(off + 6) !== PROBE_MAC_HI) return false;
  if (buf.readUInt32BE(off + 2) !== buf.readUInt32BE(off + 22) || buf.readUInt32BE(off + 8) !== buf.readUInt32BE(off + 18)) return false;
  const size = buf.readUInt16BE(off + 39);
  return size >= PROBE_MIN && size <= len;
}

export function probeSrc(buf: Buffer, off: number): number {
  return buf.readUInt32BE(off + 18);
}

export function probeDst(buf: Buffer, off: number): number {
  return buf.readUInt32BE(off + 22);
}

export function probeSeq(buf: Buffer, off: number): number {
  return buf.readUInt32BE(off + 26);
}

/** Parses a probe; undefined for anything else (see isProbe). The tag is not checked here. */
export function readProbe(buf: Buffer, off: number, len: number): Probe | undefined {
  if (!isProbe(buf, off, len)) return undefined;
  return {
    src: probeSrc(buf, off),
    dst: probeDst(buf, off),
    seq: probeSeq(buf, off),
    echo: buf.readUInt32BE(off + 30),
    echoBig: buf.readUInt32BE(off + 34),
    big: (buf[off + 38]! & FLAG_BIG) !== 0,
  };
}
