import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/core/errors.js';
import { GsoResult, SoftwareOffload, dropReasonName } from '../../src/router/gso.js';

// ---- an independent packet builder and checker (deliberately naive, shares nothing with the code)

/** RFC 1071 the slow way: byte by byte, even positions are high bytes, fold by modulo at the end. */
function naiveSum(bytes: Uint8Array | number[]): number {
  let s = 0;
  for (let i = 0; i < bytes.length; i++) s += i % 2 === 0 ? bytes[i]! * 256 : bytes[i]!;
  while (s > 0xffff) s = (s % 65536) + Math.floor(s / 65536);
  return s;
}
const naiveChecksum = (bytes: Uint8Array | number[]): number => ~naiveSum(bytes) & 0xffff;

interface Spec {
  v6: boolean;
  vlan?: boolean;
  udp?: boolean;
  payload: Buffer;
  ipOptions?: number; // bytes, multiple of 4
  tcpOptions?: number; // bytes, multiple of 4
  flags?: number;
  seq?: number;
  id?: number;
}

interface Built {
  frame: Buffer;
  l3: number;
  l4: number;
  hdrs: number;
}

const SRC4 = [10, 40, 1, 2];
const DST4 = [10, 40, 2, 2];
const SRC6 = [0xfd, 0x00, 0x77, 0x65, 0x66, 0x74, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x02];
const DST6 = [0xfd, 0x00, 0x77, 0x65, 0x66, 0x74, 0, 0, 0, 0, 0, 0, 0, 0, 0xab, 0x03];
const TCP = 6;
const UDP = 17;

function build(p: Spec): Built {
  const l3 = p.vlan === true ? 18 : 14;
  const ipHdr = p.v6 ? 40 : 20 + (p.ipOptions ?? 0);
  const l4 = l3 + ipHdr;
  const l4Hdr = p.udp === true ? 8 : 20 + (p.tcpOptions ?? 0);
  const hdrs = l4 + l4Hdr;
  const f = Buffer.alloc(hdrs + p.payload.length);
  f.set([0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01], 0);
  if (p.vlan === true) f.set([0x81, 0x00, 0x20, 0x05], 12);
  f.writeUInt16BE(p.v6 ? 0x86dd : 0x0800, l3 - 2);
  const proto = p.udp === true ? UDP : TCP;
  if (p.v6) {
    f.set([0x60, 0x01, 0x23, 0x45], l3);
    f.writeUInt16BE(f.length - l4, l3 + 4);
    f[l3 + 6] = proto;
    f[l3 + 7] = 64;
    f.set(SRC6, l3 + 8);
    f.set(DST6, l3 + 24);
  } else {
    f[l3] = 0x40 | (ipHdr / 4);
    f.writeUInt16BE(f.length - l3, l3 + 2);
    f.writeUInt16BE(p.id ?? 0x1234, l3 + 4);
    f[l3 + 6] = 0x40; // DF
    f[l3 + 8] = 64;
    f[l3 + 9] = proto;
    f.set(SRC4, l3 + 12);
    f.set(DST4, l3 + 16);
    for (let i = 20; i < ipHdr; i++) f[l3 + i] = i === ipHdr - 1 ? 0 : 1; // NOPs then EOL
    f.writeUInt16BE(naiveChecksum(f.subarray(l3, l4)), l3 + 10);
  }
  f.writeUInt16BE(40000, l4);
  f.writeUInt16BE(8080, l4 + 2);
  if (p.udp === true) {
    f.writeUInt16BE(f.length - l4, l4 + 4);
  } else {
    f.writeUInt32BE(p.seq ?? 1000, l4 + 4);
    f.writeUInt32BE(0xa1b2c3d4, l4 + 8);
    f[l4 + 12] = (l4Hdr / 4) << 4;
    f[l4 + 13] = p.flags ?? 0x18; // ACK|PSH
    f.writeUInt16BE(0xfaf0, l4 + 14);
    for (let i = 20; i < l4Hdr; i++) f[l4 + i] = i % 4 === 0 ? 8 : 0x40 + i; // arbitrary option bytes
  }
  p.payload.copy(f, hdrs);
  return { frame: f, l3, l4, hdrs };
}

/** Folded, not inverted pseudo-header sum, as the kernel leaves it for CHECKSUM_PARTIAL. */
function pseudoPartial(frame: Buffer, l3: number, l4: number, v6: boolean, proto: number): number {
  const addr = v6 ? frame.subarray(l3 + 8, l3 + 40) : frame.subarray(l3 + 12, l3 + 20);
  const len = frame.length - l4;
  return naiveSum([...addr, 0, proto, len >> 8, len & 0xff]);
}

function l4Valid(seg: Buffer, l3: number, l4: number, v6: boolean, proto: number): boolean {
  const addr = v6 ? seg.subarray(l3 + 8, l3 + 40) : seg.subarray(l3 + 12, l3 + 20);
  const len = seg.length - l4;
  return naiveChecksum([...addr, 0, proto, len >> 8, len & 0xff, ...seg.subarray(l4)]) === 0;
}

function vnet(flags: number, type: number, gsoSize: number, csumStart = 0, csumOffset = 0, hdrLen = 0): Buffer {
  const h = Buffer.alloc(10);
  h[0] = flags;
  h[1] = type;
  h.writeUInt16LE(hdrLen, 2);
  h.writeUInt16LE(gsoSize, 4);
  h.writeUInt16LE(csumStart, 6);
  h.writeUInt16LE(csumOffset, 8);
  return h;
}

/** A GSO super-frame as the kernel hands it over: NEEDS_CSUM with the pseudo sum in the field. */
function superFrame(p: Spec, mss: number, typeBits = 0): { input: Buffer; b: Built } {
  const b = build(p);
  const proto = p.udp === true ? UDP : TCP;
  const field = p.udp === true ? 6 : 16;
  b.frame.writeUInt16BE(pseudoPartial(b.frame, b.l3, b.l4, p.v6, proto), b.l4 + field);
  const type = p.udp === true ? 5 : p.v6 ? 4 : 1;
  return { input: Buffer.concat([vnet(1, type | typeBits, mss, b.l4, field, b.hdrs), b.frame]), b };
}

function run(input: Buffer, off = 0, len = input.length, offload = new SoftwareOffload()): { result: number; out: Buffer[] } {
  const out: Buffer[] = [];
  const result = offload.process(input, off, len, (buf, o, l) => out.push(Buffer.from(buf.subarray(o, o + l))));
  return { result, out };
}

function payload(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7 + (i >> 8)) & 0xff;
  return b;
}

/** Checks every invariant of a segmentation result against the original super-frame. */
function checkSegments(p: Spec, b: Built, mss: number, out: Buffer[]): void {
  const { frame, l3, l4, hdrs } = b;
  const n = p.payload.length;
  const count = Math.max(1, Math.ceil(n / mss));
  expect(out.length).toBe(count);
  const proto = p.udp === true ? UDP : TCP;
  out.forEach((s, i) => {
    const last = i === count - 1;
    const chunk = last ? n - i * mss : mss;
    expect(s.length).toBe(hdrs + chunk);
    expect(s.subarray(0, l3).equals(frame.subarray(0, l3))).toBe(true); // Ethernet + VLAN untouched
    if (p.v6) {
      expect(s.readUInt16BE(l3 + 4)).toBe(s.length - l4);
      expect(s.subarray(l3, l3 + 4).equals(frame.subarray(l3, l3 + 4))).toBe(true);
      expect(s.subarray(l3 + 6, l4).equals(frame.subarray(l3 + 6, l4))).toBe(true);
    } else {
      expect(s.readUInt16BE(l3 + 2)).toBe(s.length - l3);
      expect(s.readUInt16BE(l3 + 4)).toBe(((p.id ?? 0x1234) + i) & 0xffff);
      expect(naiveChecksum(s.subarray(l3, l4))).toBe(0);
      expect(s.subarray(l3 + 6, l3 + 10).equals(frame.subarray(l3 + 6, l3 + 10))).toBe(true);
      expect(s.subarray(l3 + 12, l4).equals(frame.subarray(l3 + 12, l4))).toBe(true); // addresses + options
    }
    if (p.udp === true) {
      expect(s.readUInt16BE(l4 + 4)).toBe(s.length - l4);
    } else {
      expect(s.readUInt32BE(l4 + 4)).toBe(((p.seq ?? 1000) + i * mss) >>> 0);
      expect(s.subarray(l4 + 8, l4 + 13).equals(frame.subarray(l4 + 8, l4 + 13))).toBe(true);
      const orig = frame[l4 + 13]!;
      const fl = s[l4 + 13]!;
      expect(fl & 0x01).toBe(last ? orig & 0x01 : 0); // FIN
      expect(fl & 0x08).toBe(last ? orig & 0x08 : 0); // PSH
      expect(fl & 0x80).toBe(i === 0 ? orig & 0x80 : 0); // CWR
      expect(fl & 0x76).toBe(orig & 0x76); // SYN RST ACK URG ECE kept
      expect(s.subarray(l4 + 14, l4 + 16).equals(frame.subarray(l4 + 14, l4 + 16))).toBe(true);
      expect(s.subarray(l4 + 18, hdrs).equals(frame.subarray(l4 + 18, hdrs))).toBe(true); // urg + options
    }
    expect(l4Valid(s, l3, l4, p.v6, proto)).toBe(true);
  });
  expect(Buffer.concat(out.map((s) => s.subarray(hdrs))).equals(p.payload)).toBe(true);
}

describe('SoftwareOffload: checksum completion (gso NONE)', () => {
  it.each([
    { name: 'TCP over IPv4', v6: false, udp: false },
    { name: 'UDP over IPv6', v6: true, udp: true },
    { name: 'TCP over IPv6 + VLAN', v6: true, udp: false, vlan: true },
    { name: 'UDP over IPv4, odd length', v6: false, udp: true, n: 333 },
  ])('finishes a partial $name checksum in place', ({ v6, udp, vlan, n }) => {
    const p: Spec = { v6, udp, vlan, payload: payload(n ?? 1001) };
    const b = build(p);
    const proto = udp ? UDP : TCP;
    const field = udp ? 6 : 16;
    b.frame.writeUInt16BE(pseudoPartial(b.frame, b.l3, b.l4, v6, proto), b.l4 + field);
    const input = Buffer.concat([vnet(1, 0, 0, b.l4, field), b.frame]);
    const calls: { buf: Buffer; off: number; len: number }[] = [];
    const r = new SoftwareOffload().process(input, 0, input.length, (buf, off, len) => calls.push({ buf, off, len }));
    expect(r).toBe(1);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.buf).toBe(input); // in place, no copy
    expect(calls[0]!.off).toBe(10);
    const out = input.subarray(10);
    expect(calls[0]!.len).toBe(b.frame.length);
    expect(l4Valid(out, b.l3, b.l4, v6, proto)).toBe(true);
    expect(out.subarray(0, b.l4 + field).equals(b.frame.subarray(0, b.l4 + field))).toBe(true);
  });

  it('stores 0xffff rather than 0 when the checksum comes out zero', () => {
    const b = build({ v6: false, udp: true, payload: payload(64) });
    const field = b.l4 + 6;
    const partial = pseudoPartial(b.frame, b.l3, b.l4, false, UDP);
    b.frame.writeUInt16BE(partial, field);
    // Make the whole sum 0xffff by adjusting one payload word: its checksum would then be 0.
    const c = naiveChecksum(b.frame.subarray(b.l4));
    const w = b.frame.readUInt16BE(b.hdrs);
    b.frame.writeUInt16BE(naiveSum([w >> 8, w & 0xff, c >> 8, c & 0xff]), b.hdrs);
    expect(naiveChecksum(b.frame.subarray(b.l4))).toBe(0);
    const { result, out } = run(Buffer.concat([vnet(1, 0, 0, b.l4, 6), b.frame]));
    expect(result).toBe(1);
    expect(out[0]!.readUInt16BE(field)).toBe(0xffff);
    expect(l4Valid(out[0]!, b.l3, b.l4, false, UDP)).toBe(true);
  });

  it('passes a frame without NEEDS_CSUM through unchanged, at any offset', () => {
    const { frame } = build({ v6: false, payload: payload(10) });
    const input = Buffer.concat([Buffer.alloc(7, 0xee), vnet(2, 0x80, 0), frame, Buffer.alloc(5, 0xee)]);
    const { result, out } = run(input, 7, 10 + frame.length);
    expect(result).toBe(1);
    expect(out[0]!.equals(frame)).toBe(true);
  });
});

describe('SoftwareOffload: TCP segmentation', () => {
  const cases: (Omit<Spec, 'payload'> & { name: string; ecn?: boolean })[] = [
    { name: 'IPv4', v6: false },
    { name: 'IPv6', v6: true },
    { name: 'IPv4 + VLAN', v6: false, vlan: true },
    { name: 'IPv6 + VLAN', v6: true, vlan: true, tcpOptions: 12 },
    { name: 'IPv4 + IP and TCP options', v6: false, ipOptions: 8, tcpOptions: 12 },
    { name: 'IPv4 + ECN (CWR, ECE)', v6: false, ecn: true, flags: 0x80 | 0x40 | 0x18 },
    { name: 'IPv6 + ECN + FIN', v6: true, ecn: true, flags: 0x80 | 0x40 | 0x19 },
  ];
  it.each(cases)('cuts 10 000 bytes into 7 segments of 1448 ($name)', (c) => {
    const p: Spec = { flags: 0x80 | 0x19, ...c, payload: payload(10_000), seq: 0xfffff000, id: 0xfffe };
    const { input, b } = superFrame(p, 1448, c.ecn === true ? 0x80 : 0);
    const { result, out } = run(input);
    expect(result).toBe(7);
    checkSegments(p, b, 1448, out);
    expect(out[6]!.length).toBe(b.hdrs + 10_000 - 6 * 1448);
  });

  it.each([
    { name: 'exactly 3 × gso_size', n: 1448 * 3, segs: 3 },
    { name: 'gso_size + 1', n: 1449, segs: 2 },
    { name: 'exactly gso_size', n: 1448, segs: 1 },
    { name: 'smaller than gso_size', n: 100, segs: 1 },
    { name: 'one byte', n: 1, segs: 1 },
  ])('$name → $segs segment(s)', ({ n, segs }) => {
    for (const v6 of [false, true]) {
      const p: Spec = { v6, payload: payload(n), flags: 0x80 | 0x19 };
      const { input, b } = superFrame(p, 1448);
      const { result, out } = run(input);
      expect(result).toBe(segs);
      checkSegments(p, b, 1448, out);
    }
  });

  it('fixes a single segment in place and trims Ethernet padding', () => {
    const p: Spec = { v6: false, payload: payload(6) };
    const { input, b } = superFrame(p, 1448);
    const padded = Buffer.concat([input, Buffer.alloc(4)]);
    const bufs: Buffer[] = [];
    const r = new SoftwareOffload().process(padded, 0, padded.length, (buf, off, len) => {
      bufs.push(buf);
      checkSegments(p, b, 1448, [Buffer.from(buf.subarray(off, off + len))]);
    });
    expect(r).toBe(1);
    expect(bufs[0]).toBe(padded);
  });

  it('ignores hdr_len and csum_start of GSO frames', () => {
    const p: Spec = { v6: false, payload: payload(5000), tcpOptions: 12 };
    const { input, b } = superFrame(p, 1000);
    input.writeUInt16LE(3, 2); // hdr_len
    input.writeUInt16LE(0, 6); // csum_start
    input.writeUInt16LE(999, 8); // csum_offset
    const { result, out } = run(input);
    expect(result).toBe(5);
    checkSegments(p, b, 1000, out);
  });

  it('leaves the bytes around its input alone and handles an offset', () => {
    const p: Spec = { v6: true, payload: payload(4000) };
    const { input, b } = superFrame(p, 1200);
    const big = Buffer.concat([Buffer.alloc(33, 0xcc), input, Buffer.alloc(17, 0xdd)]);
    const { result, out } = run(big, 33, input.length);
    expect(result).toBe(4);
    checkSegments(p, b, 1200, out);
    expect(big.subarray(0, 33).every((x) => x === 0xcc)).toBe(true);
    expect(big.subarray(33 + input.length).every((x) => x === 0xdd)).toBe(true);
  });

  it('rebuilds every segment even if the sink scribbles on the previous one', () => {
    const p: Spec = { v6: false, vlan: true, payload: payload(6000), ipOptions: 4, tcpOptions: 8 };
    const { input, b } = superFrame(p, 1448);
    const out: Buffer[] = [];
    const r = new SoftwareOffload().process(input, 0, input.length, (buf, off, len) => {
      out.push(Buffer.from(buf.subarray(off, off + len)));
      buf.fill(0xaa, off, off + b.hdrs);
    });
    expect(r).toBe(5);
    checkSegments(p, b, 1448, out);
  });

  it('reuses one instance across frames of different shapes', () => {
    const offload = new SoftwareOffload();
    for (const [v6, vlan, mss, n] of [[false, true, 1000, 4500], [true, false, 1440, 9999], [false, false, 536, 537]] as const) {
      const p: Spec = { v6, vlan, payload: payload(n, n), ipOptions: v6 ? 0 : 4 };
      const { input, b } = superFrame(p, mss);
      const { result, out } = run(input, 0, input.length, offload);
      expect(result).toBe(Math.ceil(n / mss));
      checkSegments(p, b, mss, out);
    }
  });
});

describe('SoftwareOffload: UDP segmentation (USO)', () => {
  it.each([
    { name: 'IPv6', v6: true },
    { name: 'IPv4 + VLAN', v6: false, vlan: true },
  ])('cuts 5000 bytes into datagrams of 1400 ($name)', ({ v6, vlan }) => {
    const p: Spec = { v6, vlan, udp: true, payload: payload(5000) };
    const { input, b } = superFrame(p, 1400);
    const { result, out } = run(input);
    expect(result).toBe(4);
    checkSegments(p, b, 1400, out);
  });
});

describe('SoftwareOffload: property', () => {
  it('any payload length, gso_size, options and family give valid segments that rebuild the payload', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 65_000 }),
        fc.integer({ min: 500, max: 9000 }),
        fc.integer({ min: 0, max: 10 }),
        fc.integer({ min: 0, max: 10 }),
        fc.boolean(),
        fc.boolean(),
        fc.boolean(),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 0, max: 0xffff }),
        (n, mss, tcpOpt, ipOpt, v6, vlan, udp, seq, id) => {
          const p: Spec = { v6, vlan, udp, payload: payload(n, seq), tcpOptions: tcpOpt * 4, ipOptions: ipOpt * 4, seq, id, flags: 0xd9 };
          const { input, b } = superFrame(p, mss, 0x80);
          if (input.length - 10 > 65535 + 14) return; // larger than a TAP read
          const { result, out } = run(input);
          expect(result).toBe(Math.ceil(n / mss));
          checkSegments(p, b, mss, out);
        },
      ),
      { numRuns: 80 },
    );
  });
});

describe('SoftwareOffload: bad input', () => {
  const tcp4 = (): { input: Buffer; b: Built } => superFrame({ v6: false, payload: payload(3000) }, 1400);
  const tcp6 = (): { input: Buffer; b: Built } => superFrame({ v6: true, payload: payload(3000) }, 1400);
  const edit = (x: { input: Buffer; b: Built }, fn: (frame: Buffer, b: Built) => void): Buffer => {
    fn(x.input.subarray(10), x.b);
    return x.input;
  };
  const cases: [string, () => Buffer, GsoResult][] = [
    ['empty', () => Buffer.alloc(0), GsoResult.Truncated],
    ['vnet header only', () => vnet(1, 1, 1400), GsoResult.Truncated],
    ['cut inside Ethernet', () => tcp4().input.subarray(0, 20), GsoResult.Truncated],
    ['cut inside the IPv4 header', () => tcp4().input.subarray(0, 10 + 14 + 12), GsoResult.Truncated],
    ['cut inside the IPv6 header', () => tcp6().input.subarray(0, 10 + 14 + 39), GsoResult.Truncated],
    ['cut inside the payload', () => tcp4().input.subarray(0, 1500), GsoResult.Truncated],
    ['unknown gso type', () => tcp4().input.fill(2, 1, 2), GsoResult.UnsupportedType],
    ['UFO', () => superFrame({ v6: false, udp: true, payload: payload(3000) }, 1400).input.fill(3, 1, 2), GsoResult.Ufo],
    ['UFO + ECN', () => superFrame({ v6: true, udp: true, payload: payload(3000) }, 1400).input.fill(0x83, 1, 2), GsoResult.Ufo],
    ['zero gso_size', () => tcp4().input.fill(0, 4, 6), GsoResult.ZeroGsoSize],
    ['ARP EtherType', () => edit(tcp4(), (f) => f.writeUInt16BE(0x0806, 12)), GsoResult.NotIp],
    ['double VLAN tag', () => superFrame({ v6: false, vlan: true, payload: payload(3000) }, 1400).input.fill(0x81, 26, 27).fill(0, 27, 28), GsoResult.NotIp],
    ['IPv4 EtherType with version 6', () => edit(tcp4(), (f, b) => (f[b.l3] = 0x65)), GsoResult.BadIpHeader],
    ['IPv6 EtherType with version 4', () => edit(tcp6(), (f, b) => (f[b.l3] = 0x40)), GsoResult.BadIpHeader],
    ['IHL 4', () => edit(tcp4(), (f, b) => (f[b.l3] = 0x44)), GsoResult.BadIpHeader],
    ['IPv4 fragment (MF)', () => edit(tcp4(), (f, b) => (f[b.l3 + 6] = 0x20)), GsoResult.BadIpHeader],
    ['IPv4 fragment (offset)', () => edit(tcp4(), (f, b) => (f[b.l3 + 7] = 0x10)), GsoResult.BadIpHeader],
    ['TCPV4 on IPv6', () => tcp6().input.fill(1, 1, 2), GsoResult.TypeMismatch],
    ['TCPV6 on IPv4', () => tcp4().input.fill(4, 1, 2), GsoResult.TypeMismatch],
    ['IPv6 hop-by-hop header', () => edit(tcp6(), (f, b) => (f[b.l3 + 6] = 0)), GsoResult.Ipv6ExtHeader],
    ['IPv6 fragment header', () => edit(tcp6(), (f, b) => (f[b.l3 + 6] = 44)), GsoResult.Ipv6ExtHeader],
    ['IPv6 routing header', () => edit(tcp6(), (f, b) => (f[b.l3 + 6] = 43)), GsoResult.Ipv6ExtHeader],
    ['UDP packet with TCPV4', () => superFrame({ v6: false, udp: true, payload: payload(3000) }, 1400).input.fill(1, 1, 2), GsoResult.WrongL4],
    ['TCP packet with UDP_L4', () => tcp6().input.fill(5, 1, 2), GsoResult.WrongL4],
    ['TCP data offset 4', () => edit(tcp4(), (f, b) => (f[b.l4 + 12] = 0x40)), GsoResult.BadL4Header],
    ['TCP options past the packet', () => edit(superFrame({ v6: false, payload: payload(0) }, 1400), (f, b) => (f[b.l4 + 12] = 0xf0)), GsoResult.BadL4Header],
    ['IPv4 length smaller than its header', () => edit(tcp4(), (f, b) => f.writeUInt16BE(19, b.l3 + 2)), GsoResult.BadLength],
    ['IPv4 length ends inside TCP', () => edit(tcp4(), (f, b) => f.writeUInt16BE(30, b.l3 + 2)), GsoResult.BadL4Header],
    ['IPv6 payload length past the frame', () => edit(tcp6(), (f, b) => f.writeUInt16BE(5000, b.l3 + 4)), GsoResult.Truncated],
    ['NEEDS_CSUM field past the end', () => Buffer.concat([vnet(1, 0, 0, 40, 60), build({ v6: false, payload: payload(30) }).frame]), GsoResult.BadCsumOffsets],
    ['NEEDS_CSUM start past the end', () => Buffer.concat([vnet(1, 0, 0, 0xffff, 0xffff), build({ v6: false, payload: payload(30) }).frame]), GsoResult.BadCsumOffsets],
  ];
  it.each(cases)('%s → %i', (_name, make, code) => {
    const input = make();
    const { result, out } = run(input);
    expect(result).toBe(code);
    expect(out).toHaveLength(0);
    expect(dropReasonName(result)).toMatch(/^gso-[a-z0-9-]+$/);
    expect(dropReasonName(result)).not.toBe('gso-unknown');
  });

  it('refuses a segment larger than the scratch buffer', () => {
    const { input } = superFrame({ v6: false, payload: payload(5000) }, 1448);
    expect(run(input, 0, input.length, new SoftwareOffload({ maxFrame: 1000 })).result).toBe(GsoResult.TooBig);
    expect(run(input, 0, input.length, new SoftwareOffload({ maxFrame: 1448 + 54 })).result).toBe(4);
  });

  it('refuses bad offsets and lengths', () => {
    const { input } = tcp4();
    const bad: [number, number][] = [[-1, input.length], [0, input.length + 1], [5, input.length], [0, Number.NaN]];
    for (const [off, len] of bad) {
      expect(run(input, off, len).result).toBe(GsoResult.Truncated);
    }
  });

  it('rejects an unusable maxFrame at construction', () => {
    for (const maxFrame of [0, 10, 1.5, Number.NaN, 1 << 24]) expect(() => new SoftwareOffload({ maxFrame })).toThrow(ConfigError);
  });

  it('names every reason distinctly', () => {
    const names = new Set<string>();
    for (let code = -1; code >= -13; code--) names.add(dropReasonName(code));
    expect(names.size).toBe(13);
    expect(names.has('gso-unknown')).toBe(false);
    expect(dropReasonName(GsoResult.Truncated)).toBe('gso-truncated');
    expect(dropReasonName(-99)).toBe('gso-unknown');
    expect(dropReasonName(3)).toBe('gso-unknown');
  });
});

describe('SoftwareOffload: fuzz', () => {
  const offload = new SoftwareOffload();
  const check = (input: Buffer): void => {
    let calls = 0;
    let r = 0;
    expect(() => {
      r = offload.process(input, 0, input.length, (buf, off, len) => {
        calls++;
        expect(len).toBeGreaterThan(0);
        expect(off + len).toBeLessThanOrEqual(buf.length);
      });
    }).not.toThrow();
    expect(Number.isInteger(r)).toBe(true);
    if (r > 0) expect(calls).toBe(r);
    else {
      expect(r).toBeLessThan(0);
      expect(calls).toBe(0);
      expect(dropReasonName(r)).not.toBe('gso-unknown');
    }
  };

  it('random bytes never throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.integer({ min: 0, max: 5 }), fc.integer({ min: 0, max: 0xffff }), (bytes, type, mss) => {
        const input = Buffer.from(bytes);
        check(input);
        if (input.length >= 10) {
          input[1] = type; // bias towards the interesting types
          input.writeUInt16LE(mss, 4);
          check(input);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('mutated valid frames never throw', () => {
    const seeds = [
      superFrame({ v6: false, payload: payload(4000), ipOptions: 8, tcpOptions: 8 }, 1000).input,
      superFrame({ v6: true, vlan: true, payload: payload(4000) }, 1000).input,
      superFrame({ v6: false, udp: true, payload: payload(3000) }, 900).input,
      Buffer.concat([vnet(1, 0, 0, 34, 16), build({ v6: false, payload: payload(500) }).frame]),
    ];
    fc.assert(
      fc.property(
        fc.nat(seeds.length - 1),
        fc.array(fc.tuple(fc.nat(120), fc.nat(255)), { maxLength: 12 }),
        fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 4 }),
        fc.nat(400),
        (which, headerMuts, anyMuts, cut) => {
          const m = Buffer.from(seeds[which]!);
          for (const [i, v] of headerMuts) m[i % m.length] = v; // mostly headers
          for (const [i, v] of anyMuts) m[i % m.length] = v;
          check(m.subarray(0, Math.max(0, m.length - cut)));
        },
      ),
      { numRuns: 1000 },
    );
  });
});
