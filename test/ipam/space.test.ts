import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addressToOffset, bytesToOffset, formatRange, offsetToAddress, offsetToBytes, parseSpace, reservedOffsets, space } from '../../src/ipam/space.js';

describe('address spaces', () => {
  it.each([
    ['10.32.0.0/12', { cidr: '10.32.0.0/12', family: 4, prefixLength: 12, size: 1n << 20n, bytes: 4 }],
    ['192.168.1.0/30', { cidr: '192.168.1.0/30', family: 4, size: 4n }],
    ['0.0.0.0/0', { cidr: '0.0.0.0/0', size: 1n << 32n }],
    ['fd00:a::/64', { cidr: 'fd00:a::/64', family: 6, size: 1n << 64n, bytes: 16 }],
    ['FD00:0:0:0:0:0:0:0/48', { cidr: 'fd00::/48' }],
    ['::ffff:10.0.0.0/120', { cidr: '::ffff:a00:0/120', size: 256n }],
    ['2001:db8::/126', { size: 4n }],
  ])('parses %s', (text, want) => {
    expect(parseSpace(text)).toMatchObject(want);
  });

  it.each([
    ['10.32.0.0', 'not a CIDR'],
    ['10.32.0.1/12', 'host bits set (did you mean 10.32.0.0/12?)'],
    ['10.32.0.0/31', 'too small'],
    ['10.32.0.0/33', 'invalid prefix length'],
    ['fd00::/127', 'too small'],
    ['fd00::1/64', 'did you mean fd00::/64?'],
    ['nothing/8', 'does not start with an IP address'],
    ['10.0.0.0/x', 'invalid prefix length'],
  ])('refuses %s', (text, reason) => {
    expect(parseSpace(text)).toContain(reason);
  });

  it('maps offsets to addresses and back, for both families', () => {
    const v4 = space('10.32.0.0/12');
    expect(offsetToAddress(v4, 0n)).toBe('10.32.0.0');
    expect(offsetToAddress(v4, 257n)).toBe('10.32.1.1');
    expect(offsetToAddress(v4, v4.size - 1n)).toBe('10.47.255.255');
    expect(addressToOffset(v4, '10.32.1.1')).toBe(257n);
    expect(addressToOffset(v4, '10.48.0.0')).toBeUndefined();
    expect(addressToOffset(v4, 'fd00::1')).toBeUndefined();
    const v6 = space('fd00:a::/64');
    expect(offsetToAddress(v6, 1n)).toBe('fd00:a::1');
    expect(offsetToAddress(v6, (1n << 64n) - 1n)).toBe('fd00:a::ffff:ffff:ffff:ffff');
    expect(offsetToAddress(v6, 0x10000n)).toBe('fd00:a::1:0');
    expect(addressToOffset(v6, 'fd00:a::1:0')).toBe(0x10000n);
    expect(addressToOffset(v6, 'fd00:b::1')).toBeUndefined();
    expect(offsetToAddress(space('fd00::/32'), 0x0001_0000_0000_0000_0000_0000n)).toBe('fd00:0:1::');
    expect(offsetToAddress(space('fd00::/16'), 0x0001_0000_0000_0000_0000_0000_0000n)).toBe('fd00:1::');
  });

  it('reserves the IPv4 network and broadcast addresses only', () => {
    expect(reservedOffsets(space('10.0.0.0/24'))).toEqual([0n, 255n]);
    expect(reservedOffsets(space('fd00::/64'))).toEqual([]);
  });

  it('formats runs as CIDR when aligned, else first-last', () => {
    const v4 = space('10.0.0.0/16');
    expect(formatRange(v4, 256n, 512n)).toBe('10.0.1.0/24');
    expect(formatRange(v4, 0n, 1n << 16n)).toBe('10.0.0.0/16');
    expect(formatRange(v4, 3n, 7n)).toBe('10.0.0.3-10.0.0.6');
    expect(formatRange(space('fd00::/64'), 0n, 1n << 63n)).toBe('fd00::/65');
  });

  it('writes offsets as fixed-width big-endian bytes', () => {
    expect([...offsetToBytes(0x01020304n, 4)]).toEqual([1, 2, 3, 4]);
    expect(bytesToOffset(offsetToBytes((1n << 127n) + 5n, 16))).toBe((1n << 127n) + 5n);
  });

  it('converts offsets as a byte-by-byte loop does, at every width (the low bytes of larger values)', () => {
    const loop = (off: bigint, width: number) => {
      const out: number[] = [];
      for (let i = 0, v = off; i < width; i++, v >>= 8n) out.unshift(Number(v & 0xffn));
      return out;
    };
    fc.assert(
      fc.property(fc.bigInt({ min: -(1n << 130n), max: 1n << 130n }), fc.constantFrom(1, 2, 4, 8, 16), (off, width) => {
        const b = offsetToBytes(off, width);
        expect([...b]).toEqual(loop(off, width));
        expect(bytesToOffset(b)).toBe(BigInt.asUintN(8 * width, off));
        expect(bytesToOffset(Uint8Array.of(7, ...b).subarray(1))).toBe(BigInt.asUintN(8 * width, off));
      }),
    );
  });
});
