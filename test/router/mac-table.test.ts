import { describe, expect, it } from 'vitest';
import { MacTable, PORT_LOCAL } from '../../src/router/mac-table.js';
import { isGroupMac, macToString, parseMac, readMac, writeMac } from '../../src/core/mac.js';

describe('MAC helpers', () => {
  it.each([
    ['00:00:00:00:00:00', 0],
    ['ff:ff:ff:ff:ff:ff', 2 ** 48 - 1],
    ['02:42:ac:11:00:02', 0x0242ac110002],
    ['80:00:00:00:00:01', 0x800000000001],
  ])('%s round-trips as %d', (text, n) => {
    expect(parseMac(text)).toBe(n);
    expect(macToString(n)).toBe(text);
    const b = Buffer.alloc(8);
    writeMac(b, 1, n);
    expect(readMac(b, 1)).toBe(n);
  });
  it('tells group from unicast', () => {
    expect(isGroupMac(Buffer.from([0xff, 0, 0, 0, 0, 0]), 0)).toBe(true);
    expect(isGroupMac(Buffer.from([0x01, 0x00, 0x5e, 0, 0, 1]), 0)).toBe(true);
    expect(isGroupMac(Buffer.from([0x02, 0, 0, 0, 0, 1]), 0)).toBe(false);
  });
  it('rejects malformed text', () => {
    expect(parseMac('02:42:ac:11:00')).toBeUndefined();
    expect(parseMac('zz:42:ac:11:00:02')).toBeUndefined();
  });
});

describe('MacTable', () => {
  it('learns, moves and expires', () => {
    const t = new MacTable();
    expect(t.learn(1, PORT_LOCAL, 0)).toBe(false);
    expect(t.lookup(1)).toBe(PORT_LOCAL);
    expect(t.learn(1, 3, 10)).toBe(true);
    expect(t.moves).toBe(1);
    expect(t.lookup(1)).toBe(3);
    t.learn(2, 4, 100);
    expect(t.expire(200, 150)).toBe(1);
    expect(t.lookup(1)).toBeUndefined();
    expect(t.lookup(2)).toBe(4);
  });
  it('forgets a port and stays bounded', () => {
    const t = new MacTable({ maxEntries: 3 });
    for (let i = 0; i < 5; i++) t.learn(i, i % 2, 0);
    expect(t.size).toBe(3);
    expect(t.overflows).toBe(2);
    expect(t.forgetPort(0)).toBe(2);
    expect(t.size).toBe(1);
  });
  it.each([
    ['new local MACs up to the cap', [[1, PORT_LOCAL], [2, PORT_LOCAL], [3, PORT_LOCAL]], [true, true, false], 2],
    ['a known local MAC past the cap', [[1, PORT_LOCAL], [2, PORT_LOCAL], [1, PORT_LOCAL]], [true, true, true], 2],
    ['a MAC behind a peer moving home while full', [[9, 5], [1, PORT_LOCAL], [2, PORT_LOCAL], [9, PORT_LOCAL]], [true, true, true, false], 2],
    ['room made by a local MAC moving to a peer', [[1, PORT_LOCAL], [2, PORT_LOCAL], [1, 5], [3, PORT_LOCAL]], [true, true, true, true], 2],
  ] as [string, [number, number][], boolean[], number][])('caps local entries: %s', (_what, steps, admitted, localSize) => {
    const t = new MacTable({ maxLocal: 2 });
    const got = steps.map(([mac, port]) => (port === PORT_LOCAL ? t.learnLocal(mac, 0) : (t.learn(mac, port, 0), true)));
    expect(got).toEqual(admitted);
    expect(t.localSize).toBe(localSize);
  });
  it('frees local room when local entries expire or their port is forgotten', () => {
    const t = new MacTable({ maxLocal: 2 });
    t.learnLocal(1, 0);
    t.learnLocal(2, 100);
    expect(t.learnLocal(3, 100)).toBe(false);
    expect(t.expire(200, 150)).toBe(1);
    expect(t.learnLocal(3, 200)).toBe(true);
    expect(t.forgetPort(PORT_LOCAL)).toBe(2);
    expect(t.localSize).toBe(0);
  });
});
