import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SoftwareOffload } from '../../src/router/gso.js';
import { USO_MAX_SEGMENTS, UdpCoalescer } from '../../src/router/udp-coalescer.js';
import { build, naiveChecksum, naiveSum, type Frame, type Spec } from './udp-frames.js';

// ---- the frame builder (udp-frames.ts) and a naive segmenter: they share nothing with the code

interface Write {
  data: Buffer;
  zeroHdr: boolean;
  frames: number;
}

function harness(): { c: UdpCoalescer; writes: Write[]; offer: (fr: Frame) => void } {
  const writes: Write[] = [];
  const c = new UdpCoalescer({ write: (buf, off, len, zeroHdr, frames) => writes.push({ data: Buffer.from(buf.subarray(off, off + len)), zeroHdr, frames }) });
  // The frames arrive inside a bigger buffer, at an offset, as from the receive arena.
  const offer = (fr: Frame): void => {
    const arena = Buffer.alloc(fr.buf.length + 100, 0xee);
    fr.buf.copy(arena, 37);
    c.frame(arena, 37, 47, fr.frameLen);
    arena.fill(0xdd); // the arena is rewritten after the call: nothing may point into it
  };
  return { c, writes, offer };
}

/**
 * What the kernel makes of a written item: a plain frame as it is; a USO super-frame cut as
 * __udp_gso_segment does (length and checksum adjusted from the field's pseudo-header sum,
 * IPv4 id + i, header checksum), with the UDP checksum finished (gso_make_checksum).
 */
function segment(w: Write): Buffer[] {
  const d = w.data;
  const f = 10;
  if (d[1] === 0) return [Buffer.from(d.subarray(f))];
  expect(d[0]).toBe(1); // NEEDS_CSUM
  expect(d[1]).toBe(5); // UDP_L4
  const v6 = d.readUInt16BE(f + 12) === 0x86dd;
  const l4 = 14 + (v6 ? 40 : 20);
  expect(d.readUInt16LE(2)).toBe(l4 + 8); // hdr_len
  const mss = d.readUInt16LE(4);
  expect(d.readUInt16LE(6)).toBe(l4); // csum_start
  expect(d.readUInt16LE(8)).toBe(6); // csum_offset
  const ip = f + 14;
  const u = f + l4;
  const udpLen = d.readUInt16BE(u + 4);
  expect(udpLen).toBe(d.length - u);
  if (v6) expect(d.readUInt16BE(ip + 4)).toBe(udpLen);
  else {
    expect(d.readUInt16BE(ip + 2)).toBe(20 + udpLen);
    expect(naiveSum(d.subarray(ip, ip + 20))).toBe(0xffff); // a correct header checksum
  }
  const payload = d.subarray(u + 8);
  expect(payload.length).toBeGreaterThan(mss); // else it would not be GSO
  expect(payload.length).toBeLessThanOrEqual(mss * USO_MAX_SEGMENTS);
  const field = d.readUInt16BE(u + 6);
  const out: Buffer[] = [];
  const csumAdd = (a: number, b: number): number => {
    const s = a + b;
    return (s & 0xffff) + (s >>> 16);
  };
  for (let i = 0, p = 0; p < payload.length; i++, p += mss) {
    const n = Math.min(mss, payload.length - p);
    const seg = Buffer.concat([d.subarray(f, u + 8), payload.subarray(p, p + n)]);
    const su = l4;
    seg.writeUInt16BE(8 + n, su + 4);
    if (v6) seg.writeUInt16BE(8 + n, 14 + 4);
    else {
      seg.writeUInt16BE(20 + 8 + n, 14 + 2);
      seg.writeUInt16BE((d.readUInt16BE(ip + 4) + i) & 0xffff, 14 + 4);
      seg.writeUInt16BE(0, 14 + 10);
      seg.writeUInt16BE(naiveChecksum(seg.subarray(14, 34)), 14 + 10);
    }
    // check = csum16_add(csum16_sub(uh->check, uh->len), newlen), then the segment is summed.
    const check = csumAdd(csumAdd(field, ~udpLen & 0xffff), 8 + n);
    seg.writeUInt16BE(0, su + 6);
    const full = naiveChecksum([...[check >> 8, check & 0xff], ...seg.subarray(su)]);
    seg.writeUInt16BE(full === 0 ? 0xffff : full, su + 6);
    out.push(seg);
  }
  return out;
}

/** The datagram as it should arrive: the input frame with its UDP checksum finished (and, under DF, the ID given). */
function expected(fr: Frame, id?: number): Buffer {
  const seg = Buffer.from(fr.buf.subarray(10, 10 + fr.frameLen));
  const v6 = seg.readUInt16BE(12) === 0x86dd;
  const l4 = 14 + (v6 ? 40 : 20);
  if (!v6 && id !== undefined) {
    seg.writeUInt16BE(id, 14 + 4);
    seg.writeUInt16BE(0, 14 + 10);
    seg.writeUInt16BE(naiveChecksum(seg.subarray(14, 34)), 14 + 10);
  }
  const pseudo = v6
    ? [...seg.subarray(14 + 8, 14 + 40), 0, 0, 0, 0, 0, 0, 0, 17]
    : [...seg.subarray(14 + 12, 14 + 20), 0, 17];
  const udpLen = seg.length - l4;
  pseudo.push(udpLen >> 8, udpLen & 0xff);
  seg.writeUInt16BE(0, l4 + 6);
  const c = naiveChecksum([...pseudo, ...seg.subarray(l4)]);
  seg.writeUInt16BE(c === 0 ? 0xffff : c, l4 + 6);
  return seg;
}

/**
 * Checks writes against the frames offered, in order: a lone frame goes out exactly as it came;
 * a super-frame's segments are the datagrams with their checksum finished (under DF, IPv4 IDs
 * the first one's + i).
 */
function checkWrites(writes: Write[], frames: Frame[]): void {
  let k = 0;
  for (const w of writes) {
    if (w.frames === 1) {
      expect(w.data).toEqual(frames[k++]!.buf);
      continue;
    }
    const segs = segment(w);
    expect(segs).toHaveLength(w.frames);
    const first = frames[k]!.buf;
    const df = first.readUInt16BE(10 + 12) === 0x0800 && (first[10 + 14 + 6]! & 0x40) !== 0;
    const id0 = first.readUInt16BE(10 + 14 + 4);
    segs.forEach((seg, i) => expect(seg).toEqual(expected(frames[k + i]!, df ? (id0 + i) & 0xffff : undefined)));
    k += w.frames;
  }
  expect(k).toBe(frames.length);
}

function run(frames: Frame[]): Write[] {
  const h = harness();
  for (const fr of frames) h.offer(fr);
  h.c.flush();
  expect(h.c.pending).toBe(0);
  return h.writes;
}

const udp = (n: number, o: Partial<Spec> = {}): Frame[] => Array.from({ length: n }, (_, i) => build({ payload: 64, seed: i + 1, ...o, id: (o.id ?? 0) + (o.frag === 0 ? i : 0) }));

describe('UdpCoalescer: super-frames', () => {
  it('IPv4 with DF: one write, USO header, byte-exact payloads, segments equal the datagrams (IDs id, id+1, ...)', () => {
    const frames = udp(5);
    const writes = run(frames);
    expect(writes).toHaveLength(1);
    expect(writes[0]!.frames).toBe(5);
    expect(writes[0]!.zeroHdr).toBe(false);
    const d = writes[0]!.data;
    expect(d.readUInt16LE(4)).toBe(64); // gso_size
    expect(d.length).toBe(10 + 14 + 20 + 8 + 5 * 64);
    expect(d.subarray(10 + 42)).toEqual(Buffer.concat(frames.map((f) => f.payload)));
    // the checksum field: the pseudo-header sum over the whole UDP length, not complemented
    const udpLen = 8 + 5 * 64;
    expect(d.readUInt16BE(10 + 34 + 6)).toBe(naiveSum([10, 40, 1, 2, 10, 40, 2, 2, 0, 17, udpLen >> 8, udpLen & 0xff]));
    expect(segment(writes[0]!)).toEqual(frames.map((fr, i) => expected(fr, i)));
  });

  it('IPv4 without DF: only IDs that already run consecutively (they come out unchanged)', () => {
    const frames = udp(4, { frag: 0, id: 0xfffe }); // 0xfffe, 0xffff, 0, 1: wraps
    const writes = run(frames);
    expect(writes.map((w) => w.frames)).toEqual([4]);
    expect(segment(writes[0]!)).toEqual(frames.map((fr) => expected(fr)));
    const gap = [build({ payload: 64, frag: 0, id: 7 }), build({ payload: 64, frag: 0, id: 9 }), build({ payload: 64, frag: 0, id: 10 })];
    const w2 = run(gap);
    expect(w2.map((w) => w.frames)).toEqual([1, 2]);
    expect(w2[0]!.data).toEqual(gap[0]!.buf); // a lone frame goes out as it came, vnet header and all
  });

  it('IPv6: payload length and checksum over the IPv6 pseudo-header', () => {
    const frames = udp(3, { v6: true, payload: 100 });
    const writes = run(frames);
    expect(writes.map((w) => w.frames)).toEqual([3]);
    expect(writes[0]!.data.subarray(10 + 62)).toEqual(Buffer.concat(frames.map((f) => f.payload)));
    expect(segment(writes[0]!)).toEqual(frames.map((fr) => expected(fr)));
  });

  it('the last segment may be shorter; a shorter one ends the run, a longer one starts a new one', () => {
    const a = [build({ payload: 64 }), build({ payload: 64 }), build({ payload: 30 }), build({ payload: 64 }), build({ payload: 100 }), build({ payload: 100 })];
    const writes = run(a);
    expect(writes.map((w) => w.frames)).toEqual([3, 1, 2]);
    expect(writes[0]!.data.readUInt16LE(4)).toBe(64);
    expect(writes[2]!.data.readUInt16LE(4)).toBe(100);
    checkWrites(writes, a);
  });

  it('at most 64 segments per super-frame', () => {
    const frames = udp(USO_MAX_SEGMENTS * 2 + 3, { payload: 16 });
    const writes = run(frames);
    expect(writes.map((w) => w.frames)).toEqual([64, 64, 3]);
    checkWrites(writes, frames);
  });

  it('at most a 65535-byte IP packet per super-frame', () => {
    // 20 + 8 + 46 * 1400 = 64428 fits, a 47th would not
    const frames = udp(50, { payload: 1400 });
    const writes = run(frames);
    expect(writes.map((w) => w.frames)).toEqual([46, 4]);
    expect(writes[0]!.data.readUInt16BE(10 + 14 + 2)).toBe(20 + 8 + 46 * 1400);
    checkWrites(writes, frames);
    // IPv6: 40 + 8 + 46 * 1400 = 64448 fits as well
    const frames6 = udp(50, { v6: true, payload: 1400 });
    const v6 = run(frames6);
    expect(v6.map((w) => w.frames)).toEqual([46, 4]);
    checkWrites(v6, frames6);
  });
});

describe('UdpCoalescer: order and eligibility', () => {
  it('keeps the order around ineligible frames and across flows', () => {
    const seq = [
      build({ payload: 64, seed: 1 }), build({ payload: 64, seed: 2 }),
      build({ payload: 64, proto: 6, seed: 3 }), // TCP: by itself
      build({ payload: 64, seed: 4 }), build({ payload: 64, seed: 5 }),
      build({ payload: 64, dport: 53, seed: 6 }), build({ payload: 64, dport: 53, seed: 7 }),
    ];
    const h = harness();
    for (const fr of seq) h.offer(fr);
    // a frame without a vnet header (from a per-frame peer) flushes too, and is written with a zeroed one
    const plain = build({ payload: 64, seed: 8 });
    const arena = Buffer.from(plain.buf);
    h.c.frame(arena, -1, 10, plain.frameLen);
    h.c.flush();
    expect(h.writes.map((w) => w.frames)).toEqual([2, 1, 2, 2, 1]);
    expect(h.writes[1]!.data).toEqual(seq[2]!.buf);
    expect(h.writes[4]).toEqual({ data: plain.buf.subarray(10), zeroHdr: true, frames: 1 });
    const out = h.writes.slice(0, 4).flatMap(segment);
    expect(out.map((s) => s.subarray(42))).toEqual([0, 1, 2, 3, 4, 5, 6].map((i) => seq[i]!.payload));
  });

  it('flush with nothing staged writes nothing', () => {
    const h = harness();
    h.c.flush();
    h.c.flush();
    expect(h.writes).toEqual([]);
  });

  const notEligible: [string, Partial<Spec>][] = [
    ['TCP', { proto: 6 }],
    ['IPv4 options', { ipHdr: 24, csumStart: 38 }],
    ['a fragment (MF)', { frag: 0x2000 }],
    ['a fragment (offset)', { frag: 0x0010 }],
    ['a GSO vnet header', { gsoType: 1 }],
    ['a complete checksum (no NEEDS_CSUM)', { vnetFlags: 0 }],
    ['csum_start elsewhere', { csumStart: 14 }],
    ['csum_offset elsewhere', { csumOffset: 16 }],
    ['a bad IPv4 header checksum', { badIpChecksum: true }],
    ['a VLAN tag', { ethType: 0x8100 }],
    ['Ethernet padding', { padding: 4 }],
    ['a UDP length that disagrees', { udpLenDelta: -2 }],
    ['no payload', { payload: 0 }],
    ['IPv6 hop-by-hop header', { v6: true, proto: 0 }],
    ['IPv6 TCP', { v6: true, proto: 6 }],
    ['ARP', { ethType: 0x0806 }],
  ];
  it.each(notEligible)('written as it came, one by one: %s', (_name, spec) => {
    const frames = [build({ payload: 64, ...spec }), build({ payload: 64, ...spec })];
    const writes = run(frames);
    expect(writes).toEqual(frames.map((fr) => ({ data: fr.buf, zeroHdr: false, frames: 1 })));
  });

  it('a truncated frame is written as it came', () => {
    const fr = build({ payload: 64 });
    const h = harness();
    h.c.frame(fr.buf, 0, 10, 40);
    h.c.frame(fr.buf, 0, 10, 14);
    expect(h.writes.map((w) => w.data.length)).toEqual([50, 24]);
  });

  const breakers: [string, Partial<Spec>][] = [
    ['destination MAC', { dstMacLast: 9 }],
    ['source address', { src4Last: 9 }],
    ['source port', { sport: 1 }],
    ['destination port', { dport: 1 }],
    ['TTL', { ttl: 3 }],
    ['TOS', { tos: 0x10 }],
    ['DF', { frag: 0, id: 1 }],
    ['IPv6 flow label', { v6: true, flowLabel: 7 }],
    ['IPv6 hop limit', { v6: true, ttl: 3 }],
    ['IPv6 traffic class', { v6: true, tos: 0x20 }],
    ['IPv6 source', { v6: true, src4Last: 9 }],
  ];
  it.each(breakers)('a different %s starts a new run', (_name, spec) => {
    const v6 = spec.v6 === true;
    const frames = [build({ payload: 64, v6 }), build({ payload: 64, v6, id: 1 }), build({ payload: 64, ...spec }), build({ payload: 64, ...spec, id: (spec.id ?? 0) + 1 })];
    const writes = run(frames);
    expect(writes.map((w) => w.frames)).toEqual([2, 2]);
  });

  it('IPv4 and IPv6 frames of the same ports do not mix', () => {
    expect(run([build({ payload: 64 }), build({ payload: 64, v6: true }), build({ payload: 64 })]).map((w) => w.frames)).toEqual([1, 1, 1]);
  });

  it('SoftwareOffload (the path to a per-frame TAP) cuts a super-frame back into the same datagrams', () => {
    const frames = udp(7, { payload: 33, frag: 0, id: 500 });
    const [w] = run(frames);
    const got: Buffer[] = [];
    const r = new SoftwareOffload().process(w!.data, 0, w!.data.length, (b, off, len) => got.push(Buffer.from(b.subarray(off, off + len))));
    expect(r).toBe(7);
    expect(got).toEqual(frames.map((fr) => expected(fr)));
  });
});

describe('UdpCoalescer: against a naive model', () => {
  it('any sequence of frames comes out as the same datagrams in the same order, in as few writes as the rules allow', () => {
    const flow = fc.record({
      v6: fc.boolean(),
      dport: fc.constantFrom(53, 443),
      payload: fc.constantFrom(1, 16, 64, 64, 64, 200),
      proto: fc.constantFrom(17, 17, 17, 6),
      df: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(flow, { minLength: 0, maxLength: 150 }), (specs) => {
        let id = 0;
        const frames = specs.map((s, i) => build({ v6: s.v6, dport: s.dport, payload: s.payload, proto: s.proto, frag: s.df ? 0x4000 : 0, id: id++, seed: i }));
        const writes = run(frames);
        checkWrites(writes, frames);
        // naive count of writes: a new one wherever a frame cannot follow the one before
        let expectWrites = 0;
        let runLen = 0;
        for (let i = 0; i < specs.length; i++) {
          const s = specs[i]!;
          const p = specs[i - 1];
          const eligible = s.proto === 17;
          const follows = p !== undefined && runLen > 0 && eligible && p.v6 === s.v6 && p.dport === s.dport && (s.v6 || p.df === s.df) &&
            s.payload <= specs[i - runLen]!.payload && p.payload === specs[i - runLen]!.payload && runLen < USO_MAX_SEGMENTS;
          if (follows) runLen++;
          else {
            expectWrites++;
            runLen = eligible ? 1 : 0;
          }
        }
        expect(writes).toHaveLength(expectWrites);
      }),
      { numRuns: 200 },
    );
  });
});
