/**
 * Fast-path probe frames: Ethernet frames that travel the kernel VXLAN path between two routers'
 * probe TAPs (see test/integration/fastpath-probe.test.ts for the kernel side).
 *
 *   0      6      12   14       18      22      26     30     34      38     39
 *   | dst  | src  |type| "wfp1" | src id| dst id| seq  | echo | echoBig| flags| pad to size
 *
 * type 0x88b5 (IEEE local experimental). seq counts every probe we send to that peer; echo is
 * the highest seq heard from it; echoBig the highest seq of a full-size probe heard from it.
 * flags bit 0: this probe is full size (overlay MTU + 14), to find MTU black holes.
 */
import { macToString, parseMac, readMac } from '../../src/core/mac.js';

export const PROBE_ETHERTYPE = 0x88b5;
export const PROBE_MAGIC = 0x77667031; // "wfp1"
export const PROBE_MIN = 39;
export const FLAG_BIG = 1;

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
  b[0] = 0x02;
  b[1] = 0x77;
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
  if (mac === undefined || Math.floor(mac / 4294967296) !== 0x0277) return undefined;
  return mac % 4294967296;
}

/** Writes a probe of `size` bytes (≥ PROBE_MIN) into buf at off; returns size. */
export function writeProbe(buf: Buffer, off: number, size: number, p: Probe): number {
  probeMac(p.dst).copy(buf, off);
  probeMac(p.src).copy(buf, off + 6);
  buf.writeUInt16BE(PROBE_ETHERTYPE, off + 12);
  buf.writeUInt32BE(PROBE_MAGIC, off + 14);
  buf.writeUInt32BE(p.src >>> 0, off + 18);
  buf.writeUInt32BE(p.dst >>> 0, off + 22);
  buf.writeUInt32BE(p.seq >>> 0, off + 26);
  buf.writeUInt32BE(p.echo >>> 0, off + 30);
  buf.writeUInt32BE(p.echoBig >>> 0, off + 34);
  buf[off + 38] = p.big ? FLAG_BIG : 0;
  buf.fill(0, off + PROBE_MIN, off + size);
  return size;
}

/** Parses a probe; undefined for anything else (wrong type, magic or length, or MACs that disagree with the ids). */
export function readProbe(buf: Buffer, off: number, len: number): Probe | undefined {
  if (len < PROBE_MIN || buf.readUInt16BE(off + 12) !== PROBE_ETHERTYPE || buf.readUInt32BE(off + 14) !== PROBE_MAGIC) return undefined;
  const src = buf.readUInt32BE(off + 18);
  const dst = buf.readUInt32BE(off + 22);
  if (!probeMac(src).equals(buf.subarray(off + 6, off + 12)) || !probeMac(dst).equals(buf.subarray(off, off + 6))) return undefined;
  return {
    src,
    dst,
    seq: buf.readUInt32BE(off + 26),
    echo: buf.readUInt32BE(off + 30),
    echoBig: buf.readUInt32BE(off + 34),
    big: (buf[off + 38]! & FLAG_BIG) !== 0,
  };
}
