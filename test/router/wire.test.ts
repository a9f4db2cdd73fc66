import { describe, expect, it } from 'vitest';
import { maxDatagram, overlayMtu, readCounter, writeDataHeader, TYPE_DATA, DATA_HDR_LEN } from '../../src/router/sleeve/wire.js';

describe('wire', () => {
  it('derives the overlay MTU so the largest frame fits one datagram', () => {
    expect(overlayMtu(1500, 4, true)).toBe(1404);
    expect(overlayMtu(1500, 4, false)).toBe(1420);
    expect(overlayMtu(1500, 6, true)).toBe(1384);
    expect(maxDatagram(1500, 4)).toBe(1472);
    // frame (MTU + Ethernet) + vnet + record + header + tag = datagram
    expect(overlayMtu(1500, 4, true) + 14 + 10 + 4 + 24 + 16).toBe(maxDatagram(1500, 4));
  });
  it('writes and reads 64-bit counters', () => {
    const b = Buffer.alloc(DATA_HDR_LEN);
    for (const c of [0, 1, 2 ** 32 - 1, 2 ** 32, 2 ** 52 + 3]) {
      writeDataHeader(b, 0, TYPE_DATA, 1, 2, 3, 4, c);
      expect(readCounter(b, 0)).toBe(c);
    }
    expect(b.readUInt32BE(4)).toBe(2);
    expect(b.readUInt32BE(8)).toBe(3);
  });
});
