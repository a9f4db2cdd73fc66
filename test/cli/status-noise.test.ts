/** `weft status` on a healthy cluster says nothing alarming (issue 19): the noise fixes and status-notes.ts. */
import { describe, expect, it } from 'vitest';
import { formatStatus } from '../../src/cli/format-status.js';
import { EXPECTED_DROPS, ago, connectedTarget, duration, splitDrops } from '../../src/cli/status-notes.js';
import type { TargetStatus } from '../../src/api/types.js';
import { peerStatus, statusReport } from '../daemon/status-fixture.js';

const N2 = 'fedcba9876543210';
const target = (over: Partial<TargetStatus>): TargetStatus => ({
  address: '198.18.0.2:6784', configured: true, state: 'waiting', attempts: 1, retryInMs: 900, lastError: undefined, peer: undefined, ...over,
});
const established = [{ peer: N2, nickname: 'n2', address: '198.18.0.2:40123', outbound: false, state: 'established', sinceMs: 5000, pathUp: true }];

describe('status noise', () => {
  it.each<[string, Partial<TargetStatus>, boolean]>([
    ['its last peer is connected (it dialled us)', { peer: N2, address: '10.9.9.9:6784' }, true],
    ['its address is a connected peer\'s host', {}, true],
    ['a host name that resolved to a connected peer\'s address', { address: 'node-b:6784', resolved: '198.18.0.2' }, true],
    ['another host', { address: '198.18.0.9:6784' }, false],
  ])('a waiting target whose %s: connected=%s', (_what, over, want) => {
    expect(connectedTarget(target(over), established)).toBe(want);
  });

  it('a connection still handshaking does not count as connected', () => {
    expect(connectedTarget(target({ peer: N2 }), [{ ...established[0]!, state: 'handshake' }])).toBe(false);
  });

  it('weft status leaves out waiting targets that are connected, keeps the others', () => {
    const base = statusReport();
    const text = formatStatus({ ...base, mesh: { ...base.mesh, connections: established, targets: [target({}), target({ address: '198.18.0.9:6784' })] } });
    const lines = text.split('\n').filter((l) => l.startsWith('  target '));
    expect(lines).toEqual(['  target 198.18.0.9:6784: waiting, retry in 900ms']);
  });

  it.each<[number, string]>([
    [0, '0ms'],
    [40.4, '40ms'],
    [999, '999ms'],
    [1000, '1.0s'],
    [59_949, '59.9s'],
    [60_000, '1m 00s'],
    [3_599_000, '59m 59s'],
    [7_260_000, '2h 01m'],
    [-5, '0ms'],
  ])('duration(%d) = %s', (ms, want) => {
    expect(duration(ms)).toBe(want);
  });

  it('ago: just now under a second', () => {
    expect([ago(0), ago(999), ago(1500)]).toEqual(['just now', 'just now', '1.5s ago']);
  });

  it('no "0.0s" and no "for 0ms" anywhere in a fresh router\'s status', () => {
    const base = statusReport({ peers: [peerStatus(N2, 'n2', { lastSeenMsAgo: 0, pathSinceMs: 0 })] });
    const text = formatStatus({
      ...base,
      fastpath: { ...base.fastpath, peers: [{ name: N2, underlay: '198.18.0.2', state: 'ineligible', reason: 'not in a trusted subnet', sinceMs: 0, switches: 0 }] },
    });
    expect(text).not.toMatch(/\b0\.0 ?s\b/);
    expect(text).toContain(`    ${N2} (198.18.0.2): ineligible, not in a trusted subnet\n`);
    expect(text).toContain('just now');
  });

  it('expected drops are listed apart, each with why; the rest stay under drops', () => {
    const base = statusReport();
    const text = formatStatus({ ...base, drops: { 'switch.noPeers': 18, 'rx.unknownKey': 2, 'rx.auth': 3, 'tx.noKey': 0 } });
    const lines = text.split('\n');
    const at = lines.indexOf('  drops: rx.auth=3');
    expect(at).toBeGreaterThan(0);
    expect(lines.slice(at + 1, at + 4)).toEqual([
      '  expected drops (a healthy cluster has these):',
      `    switch.noPeers=18: ${EXPECTED_DROPS['switch.noPeers']}`,
      `    rx.unknownKey=2: ${EXPECTED_DROPS['rx.unknownKey']}`,
    ]);
    expect(formatStatus({ ...base, drops: { 'switch.noPeers': 1 } })).toContain('  drops: none\n  expected drops');
  });

  it('splitDrops leaves zeros out', () => {
    expect(splitDrops({ 'tx.noKey': 0, 'rx.auth': 0 })).toEqual({ unexpected: [], expected: [] });
  });
});
