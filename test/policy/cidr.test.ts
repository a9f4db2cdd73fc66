import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { blockRanges, canonicalAddress, formatAddress, mergeRanges, parseAddress, parseCidr, rangeElements, subtractRanges, type AddressRange } from '../../src/policy/cidr.js';

const v4 = (t: string) => parseAddress(t)!.value;
const r = (a: bigint, b: bigint): AddressRange => ({ start: a, end: b });

describe('addresses', () => {
  it.each([
    ['10.0.0.1', 4, '10.0.0.1'],
    ['0.0.0.0', 4, '0.0.0.0'],
    ['255.255.255.255', 4, '255.255.255.255'],
    ['FD00::0001', 6, 'fd00::1'],
    ['fd00:0:0:0:0:0:0:1', 6, 'fd00::1'],
    ['2001:db8:0:0:1:0:0:1', 6, '2001:db8::1:0:0:1'], // the first of two equal runs
    ['2001:db8:0:1:1:1:1:1', 6, '2001:db8:0:1:1:1:1:1'], // one zero group is not compressed
    ['::', 6, '::'],
    ['::1', 6, '::1'],
    ['fe80::', 6, 'fe80::'],
    ['::ffff:10.1.2.3', 6, '::ffff:10.1.2.3'],
    ['::ffff:a01:203', 6, '::ffff:10.1.2.3'],
    ['::a01:203', 6, '::10.1.2.3'],
    ['::1:a01:203', 6, '::1:a01:203'],
    ['::2', 6, '::2'],
    ['0:0:0:0:0:fffe:a01:203', 6, '::fffe:a01:203'],
    ['1:2:3:4:5:6:7:8', 6, '1:2:3:4:5:6:7:8'],
  ])('%s is IPv%d, canonical %s', (text, family, canonical) => {
    expect(canonicalAddress(text)).toMatchObject({ family, text: canonical });
  });

  it.each(['10.0.0.256', '10.0.0', 'fd00::1::2', 'fe80::1%eth0', '10.0.0.1/32', '', 'fd00::1 } ; flush ruleset'])('%j is no address', (text) => {
    expect(parseAddress(text)).toBeUndefined();
  });

  it('formats what it parses, both families (random addresses)', () => {
    fc.assert(
      fc.property(fc.ipV4(), (a) => formatAddress(4, parseAddress(a)!.value) === a),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.ipV6(), (a) => {
        const p = parseAddress(a)!;
        const again = parseAddress(formatAddress(6, p.value))!;
        return p.family === 6 && again.value === p.value;
      }),
      { numRuns: 300 },
    );
  });

  it.each([
    ['10.0.0.0/8', 4, '10.0.0.0', '10.255.255.255'],
    ['10.1.2.3/8', 4, '10.0.0.0', '10.255.255.255'],
    ['0.0.0.0/0', 4, '0.0.0.0', '255.255.255.255'],
    ['10.0.0.7/32', 4, '10.0.0.7', '10.0.0.7'],
    ['fd00::/8', 6, 'fd00::', 'fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
    ['::/0', 6, '::', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
    ['fd00::5/128', 6, 'fd00::5', 'fd00::5'],
  ] as const)('the CIDR %s is IPv%d %s-%s', (cidr, family, start, end) => {
    const c = parseCidr(cidr)!;
    expect(c.family).toBe(family);
    expect(formatAddress(family, c.range.start)).toBe(start);
    expect(formatAddress(family, c.range.end)).toBe(end);
  });

  it.each(['10.0.0.0/33', 'fd00::/129', '10.0.0.0', '10.0.0.0/', 'x/8'])('%j is no CIDR', (text) => {
    expect(parseCidr(text)).toBeUndefined();
  });
});

describe('ranges', () => {
  it('merge sorts, joins overlapping and adjacent ranges, and leaves the input alone', () => {
    const input = [r(10n, 20n), r(0n, 4n), r(21n, 22n), r(5n, 5n), r(30n, 40n), r(35n, 36n)];
    expect(mergeRanges(input)).toEqual([r(0n, 5n), r(10n, 22n), r(30n, 40n)]);
    expect(input[0]).toEqual(r(10n, 20n));
  });

  it.each<[string, AddressRange[], AddressRange[], AddressRange[]]>([
    ['a hole in the middle', [r(0n, 99n)], [r(10n, 19n)], [r(0n, 9n), r(20n, 99n)]],
    ['the start cut', [r(0n, 99n)], [r(0n, 9n)], [r(10n, 99n)]],
    ['the end cut', [r(0n, 99n)], [r(90n, 99n)], [r(0n, 89n)]],
    ['all of it', [r(0n, 99n)], [r(0n, 99n)], []],
    ['more than all of it', [r(10n, 20n)], [r(0n, 99n)], []],
    ['nothing in common', [r(10n, 20n)], [r(30n, 40n)], [r(10n, 20n)]],
    ['several holes, overlapping each other', [r(0n, 99n)], [r(10n, 19n), r(15n, 29n), r(50n, 50n)], [r(0n, 9n), r(30n, 49n), r(51n, 99n)]],
  ])('subtract: %s', (_, ranges, cut, expected) => {
    expect(subtractRanges(ranges, cut)).toEqual(expected);
  });

  it('subtract agrees with address-by-address arithmetic (random ranges in a /24)', () => {
    const range = fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 })).map(([a, b]) => r(BigInt(Math.min(a, b)), BigInt(Math.max(a, b))));
    fc.assert(
      fc.property(fc.array(range, { maxLength: 4 }), fc.array(range, { maxLength: 4 }), (ranges, cut) => {
        const got = subtractRanges(ranges, cut);
        const inAny = (rs: AddressRange[], x: bigint) => rs.some((q) => q.start <= x && x <= q.end);
        for (let i = 0n; i < 256n; i++) if (inAny(got, i) !== (inAny(ranges, i) && !inAny(cut, i))) return false;
        // disjoint, sorted, not adjacent
        for (let i = 1; i < got.length; i++) if (got[i]!.start <= got[i - 1]!.end + 1n) return false;
        return true;
      }),
      { numRuns: 500 },
    );
  });

  it.each<[string, 4 | 6, AddressRange[], string[]]>([
    ['one address', 4, [r(v4('10.0.0.1'), v4('10.0.0.1'))], ['10.0.0.1']],
    ['a prefix', 4, [r(v4('10.0.0.0'), v4('10.255.255.255'))], ['10.0.0.0/8']],
    ['everything', 4, [r(0n, v4('255.255.255.255'))], ['0.0.0.0/0']],
    ['a range that is no prefix', 4, [r(v4('10.0.0.1'), v4('10.0.0.4'))], ['10.0.0.1-10.0.0.4']],
    ['an aligned block of the wrong size', 4, [r(v4('10.0.0.0'), v4('10.0.0.2'))], ['10.0.0.0-10.0.0.2']],
    ['adjacent prefixes joined', 4, [r(v4('10.0.0.128'), v4('10.0.0.255')), r(v4('10.0.0.0'), v4('10.0.0.127'))], ['10.0.0.0/24']],
    ['IPv6 prefix and address', 6, [r(parseAddress('fd00::')!.value, parseAddress('fd00::ffff')!.value), r(parseAddress('fd01::1')!.value, parseAddress('fd01::1')!.value)], ['fd00::/112', 'fd01::1']],
  ])('elements: %s', (_, family, ranges, expected) => {
    expect(rangeElements(family, ranges)).toEqual(expected);
  });
});

describe('ipBlock: cidr minus except', () => {
  it.each<[string, string, string[], 4 | 6, string[]]>([
    ['no except', '172.16.0.0/12', [], 4, ['172.16.0.0/12']],
    ['one except', '10.0.0.0/8', ['10.1.0.0/16'], 4, ['10.0.0.0/16', '10.2.0.0-10.255.255.255']],
    ['except at both ends', '10.0.0.0/24', ['10.0.0.0/25', '10.0.0.255/32'], 4, ['10.0.0.128-10.0.0.254']],
    ['excepts overlapping each other', '10.0.0.0/24', ['10.0.0.0/26', '10.0.0.32/27', '10.0.0.64/26'], 4, ['10.0.0.128/25']],
    ['except everything', '10.0.0.0/24', ['10.0.0.0/24'], 4, []],
    ['host bits in cidr are ignored', '10.0.0.5/24', [], 4, ['10.0.0.0/24']],
    ['the whole IPv4 space but one /8', '0.0.0.0/0', ['127.0.0.0/8'], 4, ['0.0.0.0-126.255.255.255', '128.0.0.0/1']],
    ['IPv6', 'fd00::/16', ['fd00:1::/32'], 6, ['fd00::/32', 'fd00:2::-fd00:ffff:ffff:ffff:ffff:ffff:ffff:ffff']],
    ['IPv6, one address cut', 'fd00::/126', ['fd00::2/128'], 6, ['fd00::/127', 'fd00::3']],
    ['an except of the other family is ignored', '10.0.0.0/8', ['fd00::/8'], 4, ['10.0.0.0/8']],
  ])('%s', (_, cidr, except, family, expected) => {
    const b = blockRanges({ cidr, except })!;
    expect(b.family).toBe(family);
    expect(rangeElements(b.family, b.ranges)).toEqual(expected);
  });

  it('a cidr that is none gives nothing', () => {
    expect(blockRanges({ cidr: 'nope', except: [] })).toBeUndefined();
  });
});
