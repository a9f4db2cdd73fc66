import { describe, expect, it } from 'vitest';
import { MemoryTrim } from '../../src/daemon/memory-trim.js';
import { FakeClock } from '../fakes/fake-clock.js';
import { recordingLogger } from '../fakes/recording-logger.js';

describe('MemoryTrim', () => {
  it('trims as it starts, then once per interval, and not after stop', () => {
    const clock = new FakeClock();
    const results = [true, false, true];
    let calls = 0;
    const t = new MemoryTrim({ clock, logger: recordingLogger().logger, trim: () => results[calls++ % results.length]! }, { everyMs: 60_000 });
    t.start();
    expect(calls).toBe(1);
    clock.advance(59_999);
    expect(calls).toBe(1);
    clock.advance(1);
    expect(calls).toBe(2);
    clock.advance(60_000);
    expect(t.counts).toEqual({ runs: 3, released: 2, failed: 0 });
    t.stop();
    clock.advance(600_000);
    expect(calls).toBe(3);
  });

  it('a trim that throws is counted and logged once; start does not throw and the timer goes on', () => {
    const clock = new FakeClock();
    const { logger, lines } = recordingLogger();
    const t = new MemoryTrim({ clock, logger, trim: () => { throw new Error('no malloc_trim here'); } }, { everyMs: 10 });
    expect(() => t.start()).not.toThrow();
    clock.advance(10 * 5);
    expect(t.counts).toEqual({ runs: 6, released: 0, failed: 6 });
    const warnings = lines.filter((l) => l['level'] === 'warn');
    expect(warnings).toHaveLength(1);
    expect(String(warnings[0]!['msg'])).toMatch(/malloc_trim failed/);
    expect(JSON.stringify(warnings[0])).toMatch(/no malloc_trim here/);
    t.stop();
  });
});
