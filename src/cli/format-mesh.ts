/**
 * `weft status peers` and `weft status ipam`: the whole mesh as one router knows it (GET /v1/mesh,
 * and GET /v1/ipam/status for who owns which addresses). Routers and peers are shown as
 * "nickname (name)"; unreachable routers are marked. The JSON forms carry counts as numbers
 * where they fit in a double exactly (IPv6 counts above 2^53 stay decimal strings).
 */
import type { IpamStatus, LinkView, MeshView, RouterView, StatusReport } from '../api/types.js';

/** "nickname (name)", or the name alone when there is no nickname. */
export function who(nickname: string, name: string): string {
  return nickname === '' ? name : `${nickname} (${name})`;
}

/** A decimal count as a JSON number when exact, else the string. */
export function count(s: string): number | string {
  if (!/^[0-9]+$/.test(s)) return s;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : s;
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd());
}

function age(ms: number | null): string {
  if (ms === null) return 'no report yet';
  return ms < 1000 ? 'report just now' : `report ${Math.round(ms / 1000)}s old`;
}

function rtt(ms: number | null): string {
  if (ms === null) return '-';
  return ms < 1 ? `${ms.toFixed(2)} ms` : ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
}

function pathText(l: LinkView, view: MeshView): string {
  if (l.path === null) return 'not reported';
  if (l.path === 'relay') {
    const via = l.via === null ? undefined : view.routers.find((r) => r.name === l.via);
    return `relay via ${l.via === null ? '?' : who(via?.nickname ?? '', l.via)}`;
  }
  return l.path;
}

function routerLine(r: RouterView): string {
  const what = [
    r.self ? 'this router' : r.reachable ? 'reachable' : 'UNREACHABLE',
    r.revoked ? 'REVOKED' : '',
    r.release === null ? '' : `weft ${r.release}`,
    r.protocol === null ? '' : `mesh protocol ${r.protocol}`,
    age(r.reportAgeMs),
  ].filter((x) => x !== '');
  return `${who(r.nickname, r.name)}: ${what.join(', ')}`;
}

/** `weft status peers`: every router with its connections, path and round trip. */
export function formatMeshPeers(view: MeshView): string {
  const down = view.routers.filter((r) => !r.reachable);
  const lines = [`mesh of ${view.routers.length} router${view.routers.length === 1 ? '' : 's'}${down.length === 0 ? '' : `, ${down.length} unreachable`}`];
  for (const r of view.routers) {
    lines.push('');
    lines.push(routerLine(r));
    if (r.connections.length === 0) {
      lines.push('  no connections');
      continue;
    }
    const rows = [['PEER', 'CONNECTION', 'PATH', 'RTT']];
    for (const c of r.connections) rows.push([who(c.nickname, c.peer), c.established ? 'established' : 'not established', pathText(c, view), rtt(c.rttMs)]);
    lines.push(...table(rows).map((l) => `  ${l}`));
  }
  if (down.length > 0) {
    lines.push('');
    lines.push(`unreachable: ${down.map((r) => who(r.nickname, r.name)).join(', ')} (shown as their last topology record and report say)`);
  }
  return lines.join('\n');
}

/** `weft status peers --json`. */
export function meshPeersJson(view: MeshView): unknown {
  return {
    self: view.self,
    routers: view.routers.map((r) => ({
      name: r.name, nickname: r.nickname, self: r.self, reachable: r.reachable, revoked: r.revoked, release: r.release, protocol: r.protocol, reportAgeMs: r.reportAgeMs,
      endpoints: r.endpoints,
      connections: r.connections.map((c) => ({ peer: c.peer, nickname: c.nickname, established: c.established, endpoint: c.endpoint, path: c.path, via: c.via, rttMs: c.rttMs })),
    })),
  };
}

export interface IpamShareRow {
  range: string;
  /** Addresses owned: the ring's count when known (authoritative), else the router's report. */
  owned: string;
  free: string | null;
  used: string | null;
  quarantined: string | null;
  /** The address runs it owns (from the ring). */
  ranges: string[];
}

export interface IpamNodeRow {
  name: string;
  nickname: string;
  self: boolean;
  reachable: boolean;
  /** Not in the topology any more (gone, or forgotten and its heir not done yet). */
  known: boolean;
  shares: IpamShareRow[];
}

/** Per node: its share of each range, from the ring (who owns what) and the node's report (free, used, quarantined). */
export function ipamNodes(view: MeshView, ipam: IpamStatus | undefined): IpamNodeRow[] {
  const rows = new Map<string, IpamNodeRow>();
  for (const r of view.routers) {
    rows.set(r.name, {
      name: r.name, nickname: r.nickname, self: r.self, reachable: r.reachable, known: true,
      shares: r.ipam.map((s) => ({ range: s.range, owned: s.owned, free: s.free, used: s.used, quarantined: s.quarantined, ranges: [] })),
    });
  }
  for (const sp of ipam?.spaces ?? []) {
    for (const o of sp.owners) {
      let row = rows.get(o.peer);
      if (row === undefined) {
        row = { name: o.peer, nickname: '', self: false, reachable: false, known: false, shares: [] };
        rows.set(o.peer, row);
      }
      let share = row.shares.find((s) => s.range === sp.range);
      if (share === undefined) {
        share = { range: sp.range, owned: o.size, free: null, used: null, quarantined: null, ranges: [] };
        row.shares.push(share);
      }
      share.owned = o.size;
      share.ranges = [...o.ranges];
    }
  }
  return [...rows.values()];
}

/** `weft status ipam`: per node its share of each range; unreachable owners marked (check them before `weft forget`). */
export function formatMeshIpam(view: MeshView, ipam: IpamStatus | undefined): string {
  const nodes = ipamNodes(view, ipam);
  const lines: string[] = [];
  const rows = [['NODE', 'STATE', 'RANGE', 'OWNED', 'FREE', 'USED', 'QUARANTINED', 'OWNS']];
  for (const n of nodes) {
    const state = n.self ? 'this router' : n.reachable ? 'reachable' : n.known ? 'UNREACHABLE' : 'UNREACHABLE (gone from topology)';
    if (n.shares.length === 0) rows.push([who(n.nickname, n.name), state, '-', '0', '-', '-', '-', '']);
    for (const s of n.shares) {
      const owns = s.ranges.length <= 3 ? s.ranges.join(' ') : `${s.ranges.slice(0, 3).join(' ')} +${s.ranges.length - 3} more`;
      rows.push([who(n.nickname, n.name), state, s.range, s.owned, s.free ?? '-', s.used ?? '-', s.quarantined ?? '-', owns]);
    }
  }
  lines.push(...table(rows));
  if (ipam === undefined) lines.push('', 'IPAM is off on this router: shares as the routers report them.');
  const lost = nodes.filter((n) => !n.reachable && n.shares.some((s) => s.owned !== '0'));
  if (lost.length > 0) {
    lines.push('');
    for (const n of lost) {
      const total = n.shares.reduce((a, s) => a + BigInt(s.owned), 0n);
      lines.push(`unreachable owner ${who(n.nickname, n.name)} holds ${total} addresses; if it is gone for good: weft forget ${n.name}`);
    }
  }
  return lines.join('\n');
}

/** `weft status ipam --json`. */
export function meshIpamJson(view: MeshView, ipam: IpamStatus | undefined): unknown {
  return {
    self: view.self,
    nodes: ipamNodes(view, ipam).map((n) => ({
      ...n,
      shares: n.shares.map((s) => ({
        range: s.range, owned: count(s.owned), free: s.free === null ? null : count(s.free), used: s.used === null ? null : count(s.used),
        quarantined: s.quarantined === null ? null : count(s.quarantined), ranges: s.ranges,
      })),
    })),
  };
}

/** `weft status --json`: the report with its IPAM counts as JSON numbers where exact (the API keeps decimal strings). */
export function statusJson(s: StatusReport): unknown {
  if (s.ipam === undefined) return s;
  const ranges = s.ipam.ranges.map((r) => ({
    range: r.range, owned: count(r.owned), free: count(r.free), allocated: count(r.allocated), quarantined: count(r.quarantined), reserved: count(r.reserved), held: count(r.held),
  }));
  return { ...s, ipam: { ...s.ipam, ranges } };
}

/** `weft ipam status --json`: counts as JSON numbers where exact. */
export function ipamStatusJson(s: IpamStatus): unknown {
  return {
    ...s,
    spaces: s.spaces.map((sp) => ({
      ...sp,
      owners: sp.owners.map((o) => ({ ...o, size: count(o.size) })),
      own: Object.fromEntries(Object.entries(sp.own).map(([k, v]) => [k, count(v)])),
    })),
  };
}
