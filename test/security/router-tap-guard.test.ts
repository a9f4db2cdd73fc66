/**
 * Defence in depth on the TAP side (what pods send): an exception while a TAP batch is switched
 * (a bug reached by some frame) must not escape the addon's callback and end the router. It is
 * counted (`switch.exception`), logged once, and the next batch is switched as usual.
 */
import { describe, expect, it } from 'vitest';
import { LearningSwitch } from '../../src/router/learning-switch.js';
import { silentLogger } from '../../src/core/logger.js';
import { FakeTap } from '../fakes/fake-tap.js';
import { startedPair, run } from '../router/sleeve-harness.js';

function broadcast(tag: number): Buffer {
  const f = Buffer.alloc(60);
  f.fill(0xff, 0, 6);
  f.writeUIntBE(0x024000000102, 6, 6);
  f.writeUInt16BE(0x0806, 12);
  f[59] = tag;
  return f;
}

describe('a TAP batch that throws', () => {
  it('is counted and dropped; the router keeps switching the next batches', async () => {
    const { net, clock, a, b } = await startedPair();
    const tap = new FakeTap({ vnetHdr: false, maxBatch: 64 });
    const router = new LearningSwitch({ tap, sleeve: a.sleeve, clock, logger: silentLogger });
    router.start();
    const frame = a.sleeve.tx.frame.bind(a.sleeve.tx);
    a.sleeve.tx.frame = (peer, buf, vnetOff, frameOff, frameLen, inPlace) => {
      if (buf[frameOff + 59] === 0xee) throw new TypeError('a bug reached by one frame');
      frame(peer, buf, vnetOff, frameOff, frameLen, inPlace);
    };
    expect(() => tap.inject(broadcast(0xee))).not.toThrow();
    await run(net, clock, 500);
    for (let k = 0; k < 5; k++) tap.inject(broadcast(k));
    await run(net, clock, 1000);
    expect(router.drops.exception).toBe(1);
    expect(b.received.filter((r) => r.frame[59]! < 5)).toHaveLength(5);
    router.stop();
    a.sleeve.stop();
    b.sleeve.stop();
  });
});
