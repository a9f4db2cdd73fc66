import { describe, expect, it } from 'vitest';
import { inSubnets } from '../../../src/router/fastpath/fast-path.js';

describe('trusted subnets', () => {
  it.each([
    ['198.18.0.7', '198.18.0.0', 24, true],
    ['198.19.255.1', '198.18.0.0', 15, true],
    ['198.20.0.1', '198.18.0.0', 15, false],
    ['10.1.2.3', '0.0.0.0', 0, true],
    ['198.18.0.7', '198.18.0.7', 32, true],
    ['198.18.0.8', '198.18.0.7', 32, false],
    ['fd00::1', '198.18.0.0', 15, false],
  ])('%s in %s/%i: %s', (addr, net, prefix, want) => {
    expect(inSubnets(addr, [{ address: net, prefix }])).toBe(want);
  });
});
