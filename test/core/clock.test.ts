import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isoTime } from '../../src/core/clock.js';

describe('isoTime', () => {
  it.each([
    0, 1, -1, 999, 1000, 86399999, 86400000, -86400000, 951782400000 /* 2000-02-29 */, 4107542399999 /* 2100-02-28 end */,
    1796428800123, -62167219200000, 253402300799999, 1.9, -1.9, -62167219200001, 253402300800000, 8.64e15, -8.64e15,
  ])('%s as Date.prototype.toISOString', (ms) => {
    expect(isoTime(ms)).toBe(new Date(ms).toISOString());
  });

  it('any time in years 0-9999 (and around them) as Date.prototype.toISOString', () => {
    fc.assert(
      fc.property(fc.double({ min: -62167219200000 - 1e10, max: 253402300799999 + 1e10, noNaN: true }), (ms) => isoTime(ms) === new Date(ms).toISOString()),
      { numRuns: 20000 },
    );
  });

  it('an invalid time is a RangeError, as with Date', () => {
    for (const ms of [NaN, Infinity, 8.64e15 + 1]) expect(() => isoTime(ms)).toThrow(RangeError);
  });
});
