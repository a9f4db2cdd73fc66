/**
 * The UDP coalescer reads frames a remote pod wrote (they crossed the sleeve authenticated, but a
 * pod is hostile): whatever their bytes, it must not throw, lose or invent a frame, write outside
 * what it was given, or let one frame's bytes leak into another's datagram. Frames of one flow are
 * built valid, then bytes anywhere in them (vnet header, Ethernet, IP, UDP, payload) are changed
 * and some are cut short.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SoftwareOffload } from '../../src/router/gso.js';
import { USO_MAX_IP_PACKET, UdpCoalescer } from '../../src/router/udp-coalescer.js';
import { build } from '../router/udp-frames.js';

interface Offered {
  bytes: Buffer; // vnet header + frame, as offered
}

interface Write {
  data: Buffer;
  zeroHdr: boolean;
  frames: number;
}

/** UDP payload of a plain Ethernet frame (IPv4 with its IHL, or IPv6's fixed header). */
function udpPayload(frame: Buffer): Buffer {
  const v6 = frame.readUInt16BE(12) === 0x86dd;
  const l4 = 14 + (v6 ? 40 : (frame[14]! & 0x0f) * 4);
  return frame.subarray(l4 + 8);
}

describe('UdpCoalescer under hostile frames', () => {
  it('mutated and truncated frames: no throw, every frame written once, in order, whole or cut back to its own payload', () => {
    const mutation = fc.record({ frame: fc.nat(), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) });
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 40 }),
        fc.boolean(),
        fc.array(mutation, { maxLength: 12 }),
        fc.array(fc.record({ frame: fc.nat(), cut: fc.nat() }), { maxLength: 4 }),
        (count, v6, mutations, cuts) => {
          const offered: Offered[] = Array.from({ length: count }, (_, i) => {
            const fr = build({ payload: 64, seed: i + 1, v6 });
            return { bytes: Buffer.from(fr.buf.subarray(0, 10 + fr.frameLen)) };
          });
          for (const m of mutations) {
            const o = offered[m.frame % count]!;
            o.bytes[m.at % o.bytes.length] = m.value;
          }
          for (const c of cuts) {
            const o = offered[c.frame % count]!;
            o.bytes = o.bytes.subarray(0, 10 + (c.cut % (o.bytes.length - 10)));
          }
          const writes: Write[] = [];
          const co = new UdpCoalescer({
            write: (buf, off, len, zeroHdr, frames) => {
              expect(off).toBeGreaterThanOrEqual(0);
              expect(off + len).toBeLessThanOrEqual(buf.length);
              writes.push({ data: Buffer.from(buf.subarray(off, off + len)), zeroHdr, frames });
            },
          });
          for (const o of offered) {
            // inside a bigger arena, rewritten after the call, as the receive arena is
            const arena = Buffer.alloc(o.bytes.length + 64, 0xee);
            o.bytes.copy(arena, 21);
            co.frame(arena, 21, 31, o.bytes.length - 10);
            arena.fill(0xdd);
          }
          co.flush();
          expect(writes.reduce((n, w) => n + w.frames, 0)).toBe(count);
          let next = 0;
          for (const w of writes) {
            if (w.frames === 1) {
              expect(w.zeroHdr).toBe(false);
              expect(w.data.equals(offered[next]!.bytes)).toBe(true);
            } else {
              expect(w.data.length).toBeLessThanOrEqual(10 + 14 + USO_MAX_IP_PACKET);
              const cut: Buffer[] = [];
              const r = new SoftwareOffload().process(w.data, 0, w.data.length, (b, off, len) => cut.push(Buffer.from(b.subarray(off, off + len))));
              expect(r).toBe(w.frames);
              cut.forEach((d, i) => expect(udpPayload(d).equals(udpPayload(offered[next + i]!.bytes.subarray(10)))).toBe(true));
            }
            next += w.frames;
          }
        },
      ),
      { numRuns: 400 },
    );
  });
});
