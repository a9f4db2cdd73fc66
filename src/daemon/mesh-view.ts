/**
 * GET /v1/mesh: every router of the mesh as this router knows it (`MeshView`, src/api/types.ts),
 * for `weft status peers`, `weft status ipam` and `weft graph`. The routers and their mesh
 * connections come from topology (every live record, signed by its owner); the data path, round
 * trip, release and IPAM share from each router's own report (reports channel). A router with no
 * report yet (just joined, or of an older mesh protocol) shows its connections with path null.
 */
import { compareText } from '../core/compare.js';
import type { PeerName } from '../mesh/contracts.js';
import type { RouterReport } from '../mesh/reports.js';
import type { PeerRecord } from '../mesh/topology-record.js';
import type { LinkView, MeshView, RouterView } from '../api/types.js';

export interface MeshViewFacts {
  self: PeerName;
  /** Live topology records (ourselves included). */
  records: readonly PeerRecord[];
  /** Peers reachable over the mesh from here (self excluded). */
  reachable: readonly PeerName[];
  /** A router's current report, and its age here (ms). */
  report(name: PeerName): RouterReport | undefined;
  reportAgeMs(name: PeerName): number | undefined;
  /** The mesh protocol negotiated with a neighbour (filled by the protocol negotiation). */
  protocolOf?: (name: PeerName) => number | undefined;
  /** Whether a router is on the signed blocklist (filled by revocation). */
  revoked?: (name: PeerName) => boolean;
}

function linkViews(r: PeerRecord, report: RouterReport | undefined, nick: (n: PeerName) => string): LinkView[] {
  const reported = new Map((report?.links ?? []).map((l) => [l.peer, l]));
  return [...r.connections]
    .sort((a, b) => compareText(nick(a.peer) + a.peer, nick(b.peer) + b.peer))
    .map((c) => {
      const l = reported.get(c.peer);
      return {
        peer: c.peer,
        nickname: nick(c.peer),
        established: c.established,
        endpoint: c.endpoint ?? null,
        path: l?.path ?? null,
        via: l?.via ?? null,
        rttMs: l?.rttMs ?? null,
      };
    });
}

export function buildMeshView(f: MeshViewFacts): MeshView {
  const nicknames = new Map(f.records.map((r) => [r.name, r.nickname]));
  const nick = (n: PeerName): string => nicknames.get(n) ?? '';
  const reachable = new Set(f.reachable);
  const routers: RouterView[] = f.records.map((r) => {
    const report = f.report(r.name);
    const self = r.name === f.self;
    return {
      name: r.name,
      nickname: r.nickname,
      self,
      reachable: self || reachable.has(r.name),
      release: report?.release ?? null,
      protocol: self ? null : f.protocolOf?.(r.name) ?? null,
      reportAgeMs: report === undefined ? null : Math.round(f.reportAgeMs(r.name) ?? 0),
      revoked: f.revoked?.(r.name) ?? false,
      endpoints: [...r.endpoints],
      connections: linkViews(r, report, nick),
      ipam: (report?.ipam ?? []).map((s) => ({ range: s.range, owned: s.owned, free: s.free, used: s.used, quarantined: s.quarantined })),
    };
  });
  routers.sort((a, b) => (a.self !== b.self ? (a.self ? -1 : 1) : compareText(a.nickname + a.name, b.nickname + b.name)));
  return { self: f.self, routers };
}
