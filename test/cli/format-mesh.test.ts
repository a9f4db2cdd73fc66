/** `weft status peers` and `weft status ipam` (format-mesh.ts) from a fixture mesh view. */
import { describe, expect, it } from 'vitest';
import { count, formatMeshIpam, formatMeshPeers, ipamNodes, ipamStatusJson, meshIpamJson, meshPeersJson, statusJson } from '../../src/cli/format-mesh.js';
import { statusReport } from '../daemon/status-fixture.js';
import type { IpamStatus, MeshView, RouterView } from '../../src/api/types.js';

const A = 'aaaaaaaaaaaaaaaa';
const B = 'bbbbbbbbbbbbbbbb';
const C = 'cccccccccccccccc';

function router(name: string, nickname: string, over: Partial<RouterView> = {}): RouterView {
  return { name, nickname, self: false, reachable: true, release: '0.1.0', protocol: null, reportAgeMs: 4000, revoked: false, endpoints: [], connections: [], ipam: [], ...over };
}

const view: MeshView = {
  self: A,
  routers: [
    router(A, 'n1', {
      self: true,
      reportAgeMs: 200,
      connections: [
        { peer: B, nickname: 'n2', established: true, endpoint: '198.18.0.2:6784', path: 'fastpath', via: null, rttMs: 0.214 },
        { peer: C, nickname: 'n3', established: true, endpoint: null, path: 'relay', via: B, rttMs: null },
      ],
      ipam: [{ range: '10.32.0.0/12', owned: '524288', free: '524280', used: '6', quarantined: '2' }],
    }),
    router(B, 'n2', { connections: [{ peer: A, nickname: 'n1', established: true, endpoint: null, path: 'punched', via: null, rttMs: 12.34 }], ipam: [{ range: '10.32.0.0/12', owned: '262144', free: '262144', used: '0', quarantined: '0' }] }),
    router(C, 'n3', { reachable: false, release: null, reportAgeMs: null, connections: [{ peer: A, nickname: 'n1', established: false, endpoint: null, path: null, via: null, rttMs: null }] }),
  ],
};

const ipam = {
  self: A,
  spaces: [{
    range: '10.32.0.0/12',
    owners: [
      { peer: A, ranges: ['10.32.0.0/13'], size: '524288' },
      { peer: B, ranges: ['10.40.0.0/14'], size: '262144' },
      { peer: C, ranges: ['10.44.0.0/14'], size: '262144' },
      { peer: 'dddddddddddddddd', ranges: ['10.47.0.0/16', '10.46.0.0/16'], size: '131072' },
    ],
  }],
} as unknown as IpamStatus;

describe('weft status peers', () => {
  it('shows every router with its connections, nickname (name), path and rtt; unreachable ones marked', () => {
    expect(formatMeshPeers(view).split('\n')).toEqual([
      'mesh of 3 routers, 1 unreachable',
      '',
      `n1 (${A}): this router, weft 0.1.0, report just now`,
      '  PEER                   CONNECTION   PATH                             RTT',
      `  n2 (${B})  established  fastpath                         0.21 ms`,
      `  n3 (${C})  established  relay via n2 (${B})  -`,
      '',
      `n2 (${B}): reachable, weft 0.1.0, report 4s old`,
      '  PEER                   CONNECTION   PATH     RTT',
      `  n1 (${A})  established  punched  12 ms`,
      '',
      `n3 (${C}): UNREACHABLE, no report yet`,
      '  PEER                   CONNECTION       PATH          RTT',
      `  n1 (${A})  not established  not reported  -`,
      '',
      `unreachable: n3 (${C}) (shown as their last topology record and report say)`,
    ]);
  });

  it('--json keeps numbers as numbers and nulls as null', () => {
    const j = meshPeersJson(view) as { routers: { connections: { rttMs: unknown; path: unknown }[] }[] };
    expect(j.routers[0]!.connections.map((c) => c.rttMs)).toEqual([0.214, null]);
    expect(j.routers[2]!.connections[0]!.path).toBeNull();
  });
});

describe('weft status ipam', () => {
  it('per node its share from the ring and its report; owners unreachable or gone from topology marked with what to do', () => {
    const text = formatMeshIpam(view, ipam).split('\n');
    expect(text[0]).toMatch(/^NODE\s+STATE\s+RANGE\s+OWNED\s+FREE\s+USED\s+QUARANTINED\s+OWNS$/);
    expect(text[1]).toMatch(new RegExp(`^n1 \\(${A}\\)\\s+this router\\s+10\\.32\\.0\\.0/12\\s+524288\\s+524280\\s+6\\s+2\\s+10\\.32\\.0\\.0/13$`));
    expect(text[3]).toMatch(new RegExp(`^n3 \\(${C}\\)\\s+UNREACHABLE\\s+10\\.32\\.0\\.0/12\\s+262144\\s+-\\s+-\\s+-\\s+10\\.44\\.0\\.0/14$`));
    expect(text[4]).toMatch(/^d{16}\s+UNREACHABLE \(gone from topology\)\s+10\.32\.0\.0\/12\s+131072/);
    expect(text.slice(-2)).toEqual([
      `unreachable owner n3 (${C}) holds 262144 addresses; if it is gone for good: weft forget ${C}`,
      'unreachable owner dddddddddddddddd holds 131072 addresses; if it is gone for good: weft forget dddddddddddddddd',
    ]);
  });

  it('without IPAM here: the shares the routers report', () => {
    const text = formatMeshIpam(view, undefined);
    expect(text).toContain('IPAM is off on this router');
    expect(ipamNodes(view, undefined).map((n) => n.shares.length)).toEqual([1, 1, 0]);
  });

  it('--json: counts are numbers where exact, decimal strings above 2^53', () => {
    const j = meshIpamJson(view, ipam) as { nodes: { shares: { owned: unknown; free: unknown }[] }[] };
    expect(j.nodes[0]!.shares[0]).toMatchObject({ owned: 524288, free: 524280 });
    expect(j.nodes[2]!.shares[0]).toMatchObject({ owned: 262144, free: null });
  });

  it.each<[string, number | string]>([
    ['0', 0],
    ['9007199254740991', 9007199254740991],
    ['9007199254740992', '9007199254740992'],
    ['18446744073709551616', '18446744073709551616'],
  ])('count(%s)', (s, want) => {
    expect(count(s)).toBe(want);
  });
});

describe('weft status --json and weft ipam status --json', () => {
  it('IPAM counts are JSON numbers', () => {
    const j = JSON.parse(JSON.stringify(statusJson(statusReport()))) as { ipam: { ranges: Record<string, unknown>[] } };
    expect(j.ipam.ranges[0]).toEqual({ range: '10.40.0.0/16', owned: 32768, free: 32700, allocated: 2, quarantined: 1, reserved: 1, held: 64 });
    const withOwn = { ...ipam, spaces: [{ ...ipam.spaces[0]!, own: { owned: '524288', free: '1', allocated: '2', quarantined: '0', reserved: '3', held: '0' } }] } as IpamStatus;
    const k = ipamStatusJson(withOwn) as { spaces: { owners: { size: unknown }[]; own: Record<string, unknown> }[] };
    expect(k.spaces[0]!.owners[0]!.size).toBe(524288);
    expect(k.spaces[0]!.own).toEqual({ owned: 524288, free: 1, allocated: 2, quarantined: 0, reserved: 3, held: 0 });
  });
});
