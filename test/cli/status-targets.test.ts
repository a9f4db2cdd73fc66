/** `weft status`: the lines of the mesh's connection targets that are not established. */
import { describe, expect, it } from 'vitest';
import { formatStatus } from '../../src/cli/format-status.js';
import type { TargetStatus } from '../../src/api/types.js';
import { statusReport } from '../daemon/status-fixture.js';

function targetLines(targets: TargetStatus[]): string[] {
  const base = statusReport();
  return formatStatus({ ...base, mesh: { ...base.mesh, targets } }).split('\n').filter((l) => l.startsWith('  target '));
}

const target = (over: Partial<TargetStatus>): TargetStatus => ({
  address: '198.19.1.2:6784', configured: false, state: 'failed', attempts: 1, retryInMs: 1000, lastError: 'connect ENETUNREACH', peer: undefined, ...over,
});

describe('status: targets', () => {
  it.each<[string, Partial<TargetStatus>, string]>([
    ['failed', {}, '  target 198.19.1.2:6784: failed (connect ENETUNREACH), retry in 1.0s'],
    ['left', { state: 'left', attempts: 4, retryInMs: 600_000 }, '  target 198.19.1.2:6784: left to the punched path after 4 failures (connect ENETUNREACH), retry in 10m 00s'],
    [
      'a host name with the address it resolved to',
      { address: 'node-b.example:6784', configured: true, resolved: '198.18.0.5', lastError: '198.18.0.5:6784: connect ECONNREFUSED' },
      '  target node-b.example:6784 (198.18.0.5): failed (198.18.0.5:6784: connect ECONNREFUSED), retry in 1.0s',
    ],
    [
      'a host name that does not resolve',
      { address: 'nowhere.example:6784', configured: true, lastError: 'resolve nowhere.example: getaddrinfo ENOTFOUND nowhere.example' },
      '  target nowhere.example:6784: failed (resolve nowhere.example: getaddrinfo ENOTFOUND nowhere.example), retry in 1.0s',
    ],
  ])('%s', (_what, over, line) => {
    expect(targetLines([target(over)])).toEqual([line]);
  });

  it('leaves established targets out', () => {
    expect(targetLines([target({ state: 'established', retryInMs: undefined, lastError: undefined })])).toEqual([]);
  });
});
