import { describe, expect, it } from 'vitest';
import { LogOnce } from '../../src/mesh/log-once.js';
import { recordingLogger } from './mesh-harness.js';

describe('LogOnce', () => {
  it('logs a key once, stops adding keys past its bound with one line saying so, and starts over on reset', () => {
    const { logger, lines } = recordingLogger();
    const once = new LogOnce(logger, 3);
    const keys = ['a', 'a', 'b', 'c', 'a', 'd', 'e', 'c'];
    const logged = keys.map((k) => once.warn(k, `problem ${k}`, { k }));
    expect(logged).toEqual([true, false, true, true, false, false, false, false]);
    expect(lines.map((l) => l.msg)).toEqual(['problem a', 'problem b', 'problem c', expect.stringMatching(/too many distinct problems/)]);
    once.reset();
    expect(once.warn('a', 'problem a', {})).toBe(true);
    expect(once.warn('d', 'problem d', {})).toBe(true);
  });
});
