/**
 * The sleeve's wire version range: versions in WIRE_VERSION_MIN..MAX are accepted; a datagram with
 * another version byte is counted (`drops.version`) and dropped before anything else is read.
 */
import { describe, expect, it } from 'vitest';
import { TYPE_DATA, WIRE_VERSION, WIRE_VERSION_MAX, WIRE_VERSION_MIN, wireVersionAccepted } from '../../src/router/sleeve/wire.js';
import { randomFrame, run, sendFrames, startedPair } from './sleeve-harness.js';

describe('sleeve wire version', () => {
  it('sends the highest version it accepts; today that is version 2 only', () => {
    expect([WIRE_VERSION_MIN, WIRE_VERSION_MAX, WIRE_VERSION]).toEqual([2, 2, 2]);
  });

  it.each([
    [undefined, false],
    [0, false],
    [1, false],
    [2, true],
    [3, false],
    [255, false],
  ])('version byte %s accepted: %s', (v, ok) => {
    expect(wireVersionAccepted(v)).toBe(ok);
  });

  it.each([1, 3, 0xff])('a datagram of version %s is counted and dropped (the original, version 2, is not a version drop)', async (v) => {
    const { net, clock, a, b } = await startedPair();
    net.capture = true;
    sendFrames(a, 'beta', [{ frame: randomFrame(100, 1) }]);
    await run(net, clock, 50);
    const sent = net.captured.filter((d) => d.fromAddress === '198.18.0.1' && d.data[0] === TYPE_DATA).at(-1)!;
    expect(sent.data[2]).toBe(WIRE_VERSION);
    const delivered = b.received.length;
    const before = { ...b.sleeve.drops };
    const other = Buffer.from(sent.data);
    other[2] = v;
    net.inject({ address: '198.18.0.1', port: 6784 }, { address: '198.18.0.2', port: 6784 }, other);
    await run(net, clock, 50);
    expect(b.sleeve.drops.version).toBe(before.version + 1);
    expect(b.received.length).toBe(delivered);
    // Replayed as sent (version 2) it is not a version drop (a replay drop instead: the counter was used).
    net.inject({ address: '198.18.0.1', port: 6784 }, { address: '198.18.0.2', port: 6784 }, Buffer.from(sent.data));
    await run(net, clock, 50);
    expect(b.sleeve.drops.version).toBe(before.version + 1);
  });
});
