/** GET /v1/mesh's view (buildMeshView) and our report's content (router-reports.ts). */
import { describe, expect, it } from 'vitest';
import { buildMeshView, type MeshViewFacts } from '../../src/daemon/mesh-view.js';
import { RouterReports, reportContent, type PathFacts } from '../../src/daemon/router-reports.js';
import type { RouterReport } from '../../src/mesh/reports.js';
import type { PeerRecord } from '../../src/mesh/topology-record.js';
import type { IpamSummary } from '../../src/api/types.js';
import { FakeClock } from '../fakes/fake-clock.js';
import { silentLogger } from '../../src/core/logger.js';
import { testAuthor } from '../mesh/test-authors.js';

const A = 'aaaaaaaaaaaaaaaa';
const B = 'bbbbbbbbbbbbbbbb';
const C = 'cccccccccccccccc';

function record(name: string, nickname: string, connections: PeerRecord['connections']): PeerRecord {
  return { name, nickname, publicKey: new Uint8Array(32), version: 1, endpoints: [`198.18.0.${name.charCodeAt(0) - 96}:6784`], connections, incarnation: '00000000000000aa', started: 0 };
}

const reportOf = (owner: string, links: RouterReport['links'], ipam: RouterReport['ipam'] = []): RouterReport => ({ owner, publicKey: new Uint8Array(32), version: 1, release: '0.1.0', links, ipam });

function facts(over: Partial<MeshViewFacts> = {}): MeshViewFacts {
  const reports = new Map<string, RouterReport>([
    [A, reportOf(A, [{ peer: B, established: true, path: 'fastpath', via: undefined, rttMs: 0.2 }, { peer: C, established: true, path: 'relay', via: B, rttMs: undefined }], [{ range: '10.32.0.0/12', owned: '1', free: '1', used: '0', quarantined: '0' }])],
    [B, reportOf(B, [{ peer: A, established: true, path: 'fastpath', via: undefined, rttMs: 0.3 }])],
  ]);
  return {
    self: B,
    records: [
      record(A, 'zeta', [{ peer: B, established: true, endpoint: '198.18.0.2:6784' }, { peer: C, established: true }]),
      record(B, 'beta', [{ peer: A, established: true }, { peer: C, established: false }]),
      record(C, 'alpha', [{ peer: A, established: true }]),
    ],
    reachable: [A],
    report: (n) => reports.get(n),
    reportAgeMs: (n) => (n === A ? 1234.4 : 0),
    ...over,
  };
}

describe('buildMeshView', () => {
  it('lists every router, this one first then by nickname, with reachability and reports', () => {
    const v = buildMeshView(facts());
    expect(v.self).toBe(B);
    expect(v.routers.map((r) => [r.nickname, r.self, r.reachable, r.release, r.reportAgeMs])).toEqual([
      ['beta', true, true, '0.1.0', 0],
      ['alpha', false, false, null, null],
      ['zeta', false, true, '0.1.0', 1234],
    ]);
  });

  it("joins each router's topology connections with the path, via and rtt of its own report", () => {
    const a = buildMeshView(facts()).routers.find((r) => r.name === A)!;
    expect(a.connections).toEqual([
      { peer: C, nickname: 'alpha', established: true, endpoint: null, path: 'relay', via: B, rttMs: null },
      { peer: B, nickname: 'beta', established: true, endpoint: '198.18.0.2:6784', path: 'fastpath', via: null, rttMs: 0.2 },
    ]);
    expect(a.ipam).toEqual([{ range: '10.32.0.0/12', owned: '1', free: '1', used: '0', quarantined: '0' }]);
    const c = buildMeshView(facts()).routers.find((r) => r.name === C)!;
    expect(c.connections.map((l) => l.path)).toEqual([null]);
  });

  it('protocol and revocation come from the optional hooks (null and false without them)', () => {
    const plain = buildMeshView(facts()).routers.find((r) => r.name === A)!;
    expect([plain.protocol, plain.revoked]).toEqual([null, false]);
    const hooked = buildMeshView(facts({ protocolOf: () => 3, revoked: (n) => n === A })).routers;
    expect(hooked.find((r) => r.name === A)).toMatchObject({ protocol: 3, revoked: true });
    expect(hooked.find((r) => r.self)).toMatchObject({ protocol: null, revoked: false });
  });
});

const path = (name: string, p: PathFacts['path'], more: Partial<PathFacts> = {}): PathFacts => ({ name, path: p, via: undefined, punched: false, rttMs: 1.5, ...more });
const summary: IpamSummary = { ready: { ok: true }, allocations: 2, ranges: [{ range: '10.32.0.0/12', owned: '100', free: '90', allocated: '5', quarantined: '2', reserved: '2', held: '1' }] };

describe('reportContent', () => {
  it.each<[string, PathFacts | undefined, { path: string; via: string | undefined; rttMs: number | undefined }]>([
    ['fast path', path(B, 'fastpath'), { path: 'fastpath', via: undefined, rttMs: 1.5 }],
    ['direct', path(B, 'direct'), { path: 'direct', via: undefined, rttMs: 1.5 }],
    ['punched', path(B, 'direct', { punched: true }), { path: 'punched', via: undefined, rttMs: 1.5 }],
    ['relay (no rtt of the direct path)', path(B, 'relay', { via: C }), { path: 'relay', via: C, rttMs: undefined }],
    ['no path', path(B, 'none'), { path: 'none', via: undefined, rttMs: undefined }],
    ['unknown to the overlay', undefined, { path: 'none', via: undefined, rttMs: undefined }],
  ])('a connection on %s', (_what, p, want) => {
    const c = reportContent('0.1.0', [{ peer: B, established: true }], p === undefined ? [] : [p], undefined);
    expect(c.links).toEqual([{ peer: B, established: true, ...want }]);
  });

  it('IPAM share: used is allocated + reserved + held after reclaim; none when IPAM is off', () => {
    expect(reportContent('0.1.0', [], [], summary).ipam).toEqual([{ range: '10.32.0.0/12', owned: '100', free: '90', used: '8', quarantined: '2' }]);
    expect(reportContent('0.1.0', [], [], undefined).ipam).toEqual([]);
  });
});

describe('RouterReports', () => {
  function harness() {
    const clock = new FakeClock();
    const author = testAuthor('router-reports');
    let connections: PeerRecord['connections'] = [{ peer: B, established: true }];
    let paths: PathFacts[] = [path(B, 'direct')];
    const listeners: (() => void)[] = [];
    const channel = { started: 0, stopped: 0 };
    const rr = new RouterReports(
      {
        mesh: { newChannel: (_n: string, _g: unknown, o: unknown) => ({ start: () => void channel.started++, stop: () => void channel.stopped++, options: o }) } as never,
        topology: { get self() { return record(author.name, 'me', connections); }, peers: () => [record(author.name, 'me', connections)], onChange: (l: () => void) => (listeners.push(l), () => undefined) } as never,
        clock, logger: silentLogger, signer: author.signer, paths: () => paths,
      },
      { self: author.name, publicKey: author.publicKey, release: '0.1.0' },
    );
    return { clock, rr, channel, setConnections: (c: PeerRecord['connections']) => (connections = c), setPaths: (p: PathFacts[]) => (paths = p), fire: () => listeners.forEach((l) => l()) };
  }

  it('publishes at start, on a change (not on rtt alone), and every 30 s', () => {
    const h = harness();
    h.rr.start();
    expect(h.channel.started).toBe(1);
    expect(h.rr.reports.stats.published).toBe(1);
    h.setPaths([path(B, 'direct', { rttMs: 9 })]);
    h.clock.advance(5000);
    expect(h.rr.reports.stats.published).toBe(1);
    h.setPaths([path(B, 'fastpath')]);
    h.clock.advance(5000);
    expect(h.rr.reports.stats.published).toBe(2);
    h.setConnections([{ peer: B, established: true }, { peer: C, established: false }]);
    h.fire();
    h.clock.advance(1000);
    expect(h.rr.reports.stats.published).toBe(3);
    expect(h.rr.reports.get(h.rr.reports.self)?.links.map((l) => l.peer)).toEqual([B, C]);
    h.clock.advance(29_000);
    expect(h.rr.reports.stats.published).toBe(3);
    h.clock.advance(5000); // the 30 s are checked every 5 s
    expect(h.rr.reports.stats.published).toBe(4);
    h.rr.stop();
    expect(h.channel.stopped).toBe(1);
    h.clock.advance(60_000);
    expect(h.rr.reports.stats.published).toBe(4);
  });
});
