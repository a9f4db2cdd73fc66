import { describe, expect, it } from 'vitest';
import { didYouMean, editDistance } from '../../src/core/did-you-mean.js';

describe('editDistance', () => {
  it.each([
    ['', '', 0],
    ['abc', '', 3],
    ['', 'ab', 2],
    ['kitten', 'sitting', 3],
    ['heartbeat', 'hearbeat', 1],
    ['flaw', 'lawn', 2],
    ['same', 'same', 0],
    ['nmae', 'name', 1],
    ['ab', 'ba', 1],
    ['abc', 'ca', 3],
    ['peeer', 'peer', 1],
  ])('%s → %s is %d', (a, b, d) => {
    expect(editDistance(a, b)).toBe(d);
    expect(editDistance(b, a)).toBe(d);
  });
});

describe('didYouMean', () => {
  const flags = ['heartbeat-ms', 'ipam-range', 'name', 'nickname', 'peer', 'listen', 'password-file'];
  it.each([
    ['hearbeat-ms', 'heartbeat-ms'],
    ['ipamRange', 'ipam-range'],
    ['ipam_range', 'ipam-range'],
    ['--name', 'name'],
    ['--nme', 'name'],
    ['--nmae', 'name'],
    ['--peers', 'peer'],
    ['--lisen', 'listen'],
    ['passwordfile', 'password-file'],
  ])('%s suggests %s', (word, want) => {
    expect(didYouMean(word, flags)).toBe(want);
  });

  it.each(['--colour', 'zzzz', '', '--', 'x'])('%s suggests nothing', (word) => {
    expect(didYouMean(word, flags)).toBeUndefined();
  });

  it('takes the earlier of two candidates at the same distance', () => {
    expect(didYouMean('cat', ['bat', 'hat'])).toBe('bat');
  });
});
