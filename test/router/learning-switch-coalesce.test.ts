import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/core/logger.js';
import { LearningSwitch } from '../../src/router/learning-switch.js';
import { FakeTap } from '../fakes/fake-tap.js';
import { FakeClock, FakeNetwork, connect, makeNode, run, sendFrames } from './sleeve-harness.js';
import { build, type Frame } from './udp-frames.js';

// The wiring: frames of one sleeve receive batch go through the switch's coalescer, and the
// sleeve's end of batch writes what it holds (also after a batch that threw).
async function setUp(init: { vnetHdr: boolean; udpCoalesce?: boolean }) {
  const net = new FakeNetwork();
  const clock = new FakeClock();
  const a = makeNode(net, clock, { name: 'alpha', address: '198.18.0.1' });
  const b = makeNode(net, clock, { name: 'beta', address: '198.18.0.2' });
  connect(a, b);
  const tap = new FakeTap({ vnetHdr: init.vnetHdr });
  const ls = new LearningSwitch({ tap, sleeve: b.sleeve, clock, logger: silentLogger }, { udpCoalesce: init.udpCoalesce });
  a.sleeve.start();
  b.sleeve.start();
  await run(net, clock, 1500);
  return { net, clock, a, b, tap, ls };
}

const udp = (n: number, dport = 9999): Frame[] => Array.from({ length: n }, (_, i) => build({ payload: 64, seed: i, dport }));
const toSleeve = (frames: Frame[]) => frames.map((f) => ({ vnet: f.buf.subarray(0, 10), frame: f.buf.subarray(10) }));

describe('LearningSwitch: UDP coalescing on the TAP write', () => {
  it('one sleeve batch of small frames of one flow reaches a vnet TAP as one super-frame, at the end of the batch', async () => {
    const { net, clock, a, tap, ls } = await setUp({ vnetHdr: true });
    const frames = udp(10);
    sendFrames(a, 'beta', toSleeve(frames));
    await run(net, clock, 50);
    expect(tap.written).toHaveLength(1);
    expect(tap.written[0]![1]).toBe(5); // UDP_L4
    expect(tap.written[0]!.subarray(10 + 42)).toEqual(Buffer.concat(frames.map((f) => f.payload)));
    expect(ls.counters).toMatchObject({ toTap: 1, toTapSuperFrames: 1, toTapCoalesced: 10 });
    expect(ls.udpCoalesce).toBe(true);
  });

  it('keeps the order of frames of several flows within a batch', async () => {
    const { net, clock, a, tap } = await setUp({ vnetHdr: true });
    const x = udp(3, 1000);
    const y = udp(2, 2000);
    sendFrames(a, 'beta', toSleeve([...x, ...y, x[0]!]));
    await run(net, clock, 50);
    expect(tap.written.map((w) => w.readUInt16BE(10 + 36))).toEqual([1000, 2000, 1000]);
    expect(tap.written[2]).toEqual(x[0]!.buf); // a lone frame as it came
  });

  it('--no-udp-coalesce and a TAP without vnet header write frame by frame', async () => {
    for (const init of [{ vnetHdr: true, udpCoalesce: false }, { vnetHdr: false }]) {
      const { net, clock, a, tap, ls } = await setUp(init);
      sendFrames(a, 'beta', toSleeve(udp(4)));
      await run(net, clock, 50);
      expect(tap.written).toHaveLength(4);
      expect(ls.counters).toMatchObject({ toTap: 4, toTapSuperFrames: 0, toTapCoalesced: 0 });
      expect(ls.udpCoalesce).toBe(false);
    }
  });

  it('a write that fails counts every frame of the super-frame as a tapWrite drop', async () => {
    const { net, clock, a, tap, ls } = await setUp({ vnetHdr: true });
    tap.write = () => -5;
    sendFrames(a, 'beta', toSleeve(udp(6)));
    await run(net, clock, 50);
    expect(ls.drops.tapWrite).toBe(6);
    expect(ls.counters.toTap).toBe(0);
  });

  it('what a batch that threw had staged is still written when the batch ends', async () => {
    const { net, clock, a, b, tap } = await setUp({ vnetHdr: true });
    const rx = (b.sleeve as unknown as { rx: { sink: (...args: unknown[]) => void } }).rx;
    const sink = rx.sink;
    let n = 0;
    rx.sink = (...args: unknown[]) => {
      if (++n === 4) throw new Error('sink failed');
      sink(...args);
    };
    sendFrames(a, 'beta', toSleeve(udp(6)));
    await run(net, clock, 50);
    expect(b.sleeve.drops.exception).toBe(1);
    expect(tap.written).toHaveLength(1);
    expect(tap.written[0]!.subarray(10 + 42).length).toBe(3 * 64);
  });
});
