import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  GSO_BAD_IP,
  GSO_BAD_SIZE,
  GSO_TRUNCATED,
  GSO_UNSUPPORTED_TYPE,
  SoftwareOffload,
  dropReasonName,
} from '../../router/gso.js';

// ---- an independent packet builder and checker (deliberately simple, not shared with the code)

function naiveChecksum(bytes: number[]): number {
  let s = 0;
  for (let i = 0; i < bytes.length; i += 2) s += (bytes[i]! << 8) + (bytes[i + 1] ?? 0);
  while (s > 0xffff) s = (s % 65536) + Math.floor(s / 65536);
  return ~s & 0xffff;
}

interface Pkt {
  v6: boolean;
  vlan: boolean;
  proto: 'tcp' | 'udp';
  payload: Buffer;
  tcpOptions?: number;
  ipOptions?: number;
  flags?: number;
  seq?: number;
  id?: number;
}

const SRC4 = [10, 40, 1, 2];
const DST4 = [10, 40, 2, 2];
const SRC6 = Array.from({ length: 16 }, (_, i) => (i === 0 ? 0xfd : i === 15 ? 2 : i));
const DST6 = Array.from({ length: 16 }, (_, i) => (i === 0 ? 0xfd : i === 15 ? 3 : i));

function build(p: Pkt): { frame: Buffer; l3: number; l4: number; hdrs: number } {
  const eth = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
  if (p.vlan) eth.push(0x81, 0x00, 0x00, 0x05);
  eth.push(...(p.v6 ? [0x86, 0xdd] : [0x08, 0x00]));
  const l4h = p.proto === 'tcp' ? 20 + (p.tcpOptions ?? 0) : 8;
  const l4Len = l4h + p.payload.length;
  let ip: number[];
  if (p.v6) {
    ip = [0x60, 0, 0, 0, l4Len >> 8, l4Len & 255, p.proto === 'tcp' ? 6 : 17, 64, ...SRC6, ...DST6];
  } else {
    const ihl = 20 + (p.ipOptions ?? 0);
    const tot = ihl + l4Len;
    ip = [0x40 | (ihl / 4), 0, tot >> 8, tot & 255, (p.id ?? 0x1234) >> 8, (p.id ?? 0x1234) & 255, 0x40, 0, 64, p.proto === 'tcp' ? 6 : 17, 0, 0, ...SRC4, ...DST4];
    for (let i = 0; i < (p.ipOptions ?? 0); i++) ip.push(1); // NOP options
    const c = naiveChecksum(ip);
    ip[10] = c >> 8;
    ip[11] = c & 255;
  }
  let l4: number[];
  if (p.proto === 'tcp') {
    const seq = p.seq ?? 1000;
    l4 = [0x30, 0x39, 0x1f, 0x90, seq >>> 24, (seq >>> 16) & 255, (seq >>> 8) & 255, seq & 255, 0, 0, 0, 1, (l4h / 4) << 4, p.flags ?? 0x18, 0xff, 0xff, 0, 0, 0, 0];
    for (let i = 0; i < (p.tcpOptions ?? 0); i++) l4.push(1);
  } else {
    l4 = [0x30, 0x39, 0x1f, 0x90, l4Len >> 8, l4Len & 255, 0, 0];
  }
  const frame = Buffer.from([...eth, ...ip, ...l4, ...p.payload]);
  return { frame, l3: eth.length, l4: eth.length + ip.length, hdrs: eth.length + ip.length + l4.length };
}

function vnet(flags: number, type: number, gsoSize: number, csumStart = 0, csumOffset = 0): Buffer {
  const h = Buffer.alloc(10);
  h[0] = flags;
  h[1] = type;
  h.writeUInt16LE(gsoSize, 4);
  h.writeUInt16LE(csumStart, 6);
  h.writeUInt16LE(csumOffset, 8);
  return h;
}

function pseudoPartial(frame: Buffer, l3: number, l4: number, v6: boolean, proto: number): number {
  const addr = v6 ? [...frame.subarray(l3 + 8, l3 + 40)] : [...frame.subarray(l3 + 12, l3 + 20)];
  const len = frame.length - l4;
  let s = proto + len;
  for (let i = 0; i < addr.length; i += 2) s += (addr[i]! << 8) + addr[i + 1]!;
  while (s > 0xffff) s = (s % 65536) + Math.floor(s / 65536);
  return s; // not inverted, like CHECKSUM_PARTIAL
}

/** Verifies a plain segment: IPv4 header checksum and full L4 checksum (with pseudo-header). */
function verify(seg: Buffer, l3: number, l4: number, v6: boolean, proto: number): void {
  if (!v6) expect(naiveChecksum([...seg.subarray(l3, l4)])).toBe(0);
  const addr = v6 ? [...seg.subarray(l3 + 8, l3 + 40)] : [...seg.subarray(l3 + 12, l3 + 20)];
  const l4Bytes = [...seg.subarray(l4)];
  const pseudo = [...addr, 0, proto, (l4Bytes.length >> 8) & 255, l4Bytes.length & 255];
  expect(naiveChecksum([...pseudo, ...l4Bytes])).toBe(0);
}

function run(input: Buffer): { result: number; out: Buffer[] } {
  const out: Buffer[] = [];
  const result = new SoftwareOffload().process(input, 0, input.length, (b, o, l) => out.push(Buffer.from(b.subarray(o, o + l))));
  return { result, out };
}

function payload(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

describe('SoftwareOffload: checksum completion', () => {
  it.each([
    ['TCP over IPv4', false, 'tcp' as const],
    ['UDP over IPv6', true, 'udp' as const],
  ])('finishes a partial %s checksum in place', (_name, v6, proto) => {
    const { frame, l3, l4 } = build({ v6, vlan: false, proto, payload: payload(333) });
    const p = proto === 'tcp' ? 6 : 17;
    const field = proto === 'tcp' ? 16 : 6;
    frame.writeUInt16BE(pseudoPartial(frame, l3, l4, v6, p), l4 + field);
    const { result, out } = run(Buffer.concat([vnet(1, 0, 0, l4, field), frame]));
    expect(result).toBe(1);
    expect(out[0]!.length).toBe(frame.length);
    verify(out[0]!, l3, l4, v6, p);
  });

  it('passes a frame without offload flags unchanged', () => {
    const { frame } = build({ v6: false, vlan: false, proto: 'tcp', payload: payload(10) });
    const { result, out } = run(Buffer.concat([vnet(0, 0, 0), frame]));
    expect(result).toBe(1);
    expect(out[0]!.equals(frame)).toBe(true);
  });
});

describe('SoftwareOffload: TCP segmentation', () => {
  const cases = [
    { name: 'IPv4', v6: false, vlan: false },
    { name: 'IPv6', v6: true, vlan: false },
    { name: 'IPv4 + VLAN + options', v6: false, vlan: true, ipOptions: 8, tcpOptions: 12 },
  ];
  for (const c of cases) {
    it(`cuts 10000 bytes into 1448-byte segments (${c.name})`, () => {
      const data = payload(10_000);
      const { frame, l3, l4, hdrs } = build({ ...c, proto: 'tcp', payload: data, flags: 0x80 | 0x18 | 0x01, seq: 0xfffff000 });
      const { result, out } = run(Buffer.concat([vnet(1, (c.v6 ? 4 : 1) | 0x80, 1448, l4, 16), frame]));
      expect(result).toBe(7);
      expect(out.length).toBe(7);
      const joined = Buffer.concat(out.map((s) => s.subarray(hdrs)));
      expect(joined.equals(data)).toBe(true);
      out.forEach((s, i) => {
        verify(s, l3, l4, c.v6, 6);
        expect(s.readUInt32BE(l4 + 4)).toBe((0xfffff000 + i * 1448) >>> 0);
        const fl = s[l4 + 13]!;
        expect((fl & 0x01) !== 0).toBe(i === 6); // FIN
        expect((fl & 0x08) !== 0).toBe(i === 6); // PSH
        expect((fl & 0x80) !== 0).toBe(i === 0); // CWR
        if (!c.v6) {
          expect(s.readUInt16BE(l3 + 2)).toBe(s.length - l3);
          expect(s.readUInt16BE(l3 + 4)).toBe(0x1234 + i);
        } else {
          expect(s.readUInt16BE(l3 + 4)).toBe(s.length - l4);
        }
      });
    });
  }

  it('handles a payload that is an exact multiple, and one smaller than gso_size', () => {
    for (const [n, segs] of [[1448 * 3, 3], [100, 1]] as const) {
      const { frame, l3, l4 } = build({ v6: false, vlan: false, proto: 'tcp', payload: payload(n) });
      const { result, out } = run(Buffer.concat([vnet(1, 1, 1448, l4, 16), frame]));
      expect(result).toBe(segs);
      out.forEach((s) => verify(s, l3, l4, false, 6));
    }
  });

  it('segments UDP (USO) into datagrams with their own lengths and checksums', () => {
    const data = payload(5000);
    const { frame, l3, l4, hdrs } = build({ v6: true, vlan: false, proto: 'udp', payload: data });
    const { result, out } = run(Buffer.concat([vnet(1, 5, 1400, l4, 6), frame]));
    expect(result).toBe(4);
    out.forEach((s) => {
      verify(s, l3, l4, true, 17);
      expect(s.readUInt16BE(l4 + 4)).toBe(s.length - l4);
    });
    expect(Buffer.concat(out.map((s) => s.subarray(hdrs))).equals(data)).toBe(true);
  });

  it('property: any payload length, segment size and options give valid segments that rebuild the payload', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 65_000 }),
        fc.integer({ min: 500, max: 9000 }),
        fc.integer({ min: 0, max: 10 }).map((x) => x * 4),
        fc.boolean(),
        (n, mss, opts, v6) => {
          const data = payload(n, n);
          const { frame, l3, l4, hdrs } = build({ v6, vlan: false, proto: 'tcp', payload: data, tcpOptions: opts });
          const { result, out } = run(Buffer.concat([vnet(1, v6 ? 4 : 1, mss, l4, 16), frame]));
          expect(result).toBe(Math.ceil(n / mss));
          for (const s of out) verify(s, l3, l4, v6, 6);
          expect(Buffer.concat(out.map((s) => s.subarray(hdrs))).equals(data)).toBe(true);
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('SoftwareOffload: bad input', () => {
  it.each([
    ['truncated header', Buffer.alloc(12), GSO_TRUNCATED],
    ['UFO', Buffer.concat([vnet(1, 3, 1400), build({ v6: false, vlan: false, proto: 'udp', payload: payload(3000) }).frame]), GSO_UNSUPPORTED_TYPE],
    ['zero gso size', Buffer.concat([vnet(1, 1, 0), build({ v6: false, vlan: false, proto: 'tcp', payload: payload(3000) }).frame]), GSO_BAD_SIZE],
    ['TCPV4 on an IPv6 packet', Buffer.concat([vnet(1, 1, 1400), build({ v6: true, vlan: false, proto: 'tcp', payload: payload(3000) }).frame]), GSO_BAD_IP],
  ])('%s → %s', (_n, input, code) => {
    expect(run(input).result).toBe(code);
    expect(dropReasonName(code)).toMatch(/^gso-/);
  });

  it('IPv6 with an extension header is refused', () => {
    const { frame, l3 } = build({ v6: true, vlan: false, proto: 'tcp', payload: payload(3000) });
    frame[l3 + 6] = 0; // hop-by-hop
    expect(run(Buffer.concat([vnet(1, 4, 1400), frame])).result).toBeLessThan(0);
  });

  it('fuzz: random bytes and mutated frames never throw', () => {
    const { frame, l4 } = build({ v6: false, vlan: false, proto: 'tcp', payload: payload(4000) });
    const valid = Buffer.concat([vnet(1, 1, 1000, l4, 16), frame]);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 20 }), fc.nat(), (rand, muts, cut) => {
        const r = run(Buffer.from(rand)).result;
        expect(Number.isInteger(r)).toBe(true);
        const m = Buffer.from(valid);
        for (const [i, v] of muts) m[i % m.length] = v;
        const r2 = run(m.subarray(0, Math.max(0, m.length - (cut % 200)))).result;
        expect(Number.isInteger(r2)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});
