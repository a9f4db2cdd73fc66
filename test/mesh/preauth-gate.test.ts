import { describe, expect, it } from 'vitest';
import { PreauthGate, sourceKey } from '../../src/mesh/preauth-gate.js';

describe('pre-auth gate', () => {
  it.each([
    ['198.18.0.1', '198.18.0.1'],
    ['::ffff:198.18.0.1', '198.18.0.1'],
    ['::FFFF:198.18.0.1', '198.18.0.1'],
    ['2001:2:0:7::1', '2001:2:0:7::/64'],
    ['2001:2:0:7:ffff:1:2:3', '2001:2:0:7::/64'],
    ['2001:0002:0000:0007:0000:0000:0000:0009', '2001:2:0:7::/64'],
    ['2001:2::1', '2001:2:0:0::/64'],
    ['2001:2:0:7::', '2001:2:0:7::/64'],
    ['::1', '0:0:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['2001:2:0:8::1', '2001:2:0:8::/64'],
  ])('source key of %s is %s', (address, key) => {
    expect(sourceKey(address)).toBe(key);
  });

  it('refuses past the per-address limit, and admits another address', () => {
    const g = new PreauthGate<string>({ perAddress: 2, total: 10 });
    expect(g.hasRoom('198.18.0.9')).toBe(true);
    expect(g.admit('a1', '198.18.0.9')).toBeUndefined();
    expect(g.admit('a2', '198.18.0.9')).toBeUndefined();
    expect(g.hasRoom('198.18.0.9')).toBe(false);
    expect(g.hasRoom('::ffff:198.18.0.9')).toBe(false);
    expect(g.hasRoom('198.18.0.10')).toBe(true);
    g.release('a1');
    expect(g.hasRoom('198.18.0.9')).toBe(true);
    expect(g.size).toBe(1);
  });

  it('when full, evicts the oldest connection of the busiest address (never a newcomer from a quiet one)', () => {
    const g = new PreauthGate<string>({ perAddress: 4, total: 6 });
    for (const c of ['x1', 'x2', 'x3', 'y1', 'y2']) g.admit(c, c.startsWith('x') ? '198.18.1.1' : '198.18.1.2');
    expect(g.admit('z1', '198.18.0.2')).toBeUndefined(); // room left
    expect(g.admit('y3', '198.18.1.2')).toBe('x1'); // full: x holds the most
    expect(g.admit('z2', '198.18.0.2')).toBe('y1'); // y now holds the most
    expect(g.admit('w1', '198.18.0.3')).toBe('x2'); // x, y and z hold 2 each: the earliest-seen source gives
    expect(g.size).toBe(6);
    expect(g.hasRoom('198.18.0.2')).toBe(true);
    g.release('unknown');
    expect(g.size).toBe(6);
  });
});
