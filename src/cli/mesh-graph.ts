/**
 * `weft graph`'s model: the mesh view (GET /v1/mesh) as a graph of routers and connections, with
 * everything a drawing needs decided here (labels, colours, styles) so the DOT writer only spells
 * it out. Nodes are routers, labelled nickname and short name; unreachable ones are dashed and
 * grey. There is one edge per pair of routers, however many of the two reported it, coloured by
 * the data path: fast path, direct sleeve, punched, relay (dashed, "via" the relay), with the
 * round trip as its label.
 *
 * The view carries what other routers reported about themselves: nothing in it is trusted to be
 * well formed. Routers and links that are not objects with a string name are skipped and counted
 * in `skipped`; a peer that only appears as someone's connection becomes a node of its own.
 */
import type { LinkView, MeshView, RouterView } from '../api/types.js';

export type EdgePath = 'fastpath' | 'direct' | 'punched' | 'relay' | 'none' | 'unknown';

export interface GraphNode {
  /** Peer name: the node's id. */
  id: string;
  label: string;
  self: boolean;
  reachable: boolean;
  /** A peer with no topology record of its own, only seen as another router's connection. */
  known: boolean;
  revoked: boolean;
  style: string;
  color: string;
  fontcolor: string;
}

export interface GraphEdge {
  /** The two ends' peer names, the smaller first. */
  a: string;
  b: string;
  path: EdgePath;
  /** The relay's peer name (relay only). */
  via: string | null;
  rttMs: number | null;
  established: boolean;
  /** The two ends reported different paths (the slower one is drawn; the label says both). */
  asymmetric: boolean;
  label: string;
  color: string;
  style: string;
}

export interface GraphModel {
  self: string;
  nodes: GraphNode[];
  edges: GraphEdge[];
  /** Routers and links of the view that were not well formed and left out. */
  skipped: number;
}

/** The colour and line style of each path, and its name in the legend. */
export const PATH_STYLE: Record<EdgePath, { color: string; style: string; short: string; legend: string }> = {
  fastpath: { color: '#2e7d32', style: 'bold', short: 'fast path', legend: 'fast path (kernel VXLAN)' },
  direct: { color: '#1565c0', style: 'solid', short: 'direct', legend: 'direct sleeve' },
  punched: { color: '#6a1b9a', style: 'solid', short: 'punched', legend: 'direct sleeve, hole punched' },
  relay: { color: '#ef6c00', style: 'dashed', short: 'relay', legend: 'sleeve through a relay' },
  none: { color: '#9e9e9e', style: 'dotted', short: 'no path', legend: 'no data path' },
  unknown: { color: '#9e9e9e', style: 'dotted', short: 'path not reported', legend: 'path not reported' },
};

/** Slowest first: when the two ends disagree, the pair is drawn with the slower path. */
const SLOWNESS: EdgePath[] = ['none', 'relay', 'punched', 'direct', 'fastpath', 'unknown'];
const PATHS = new Set<string>(['fastpath', 'direct', 'punched', 'relay', 'none']);

/** The first 8 characters of a peer name, as people tell routers apart. */
export function shortName(name: string): string {
  return name.slice(0, 8);
}

/** A round trip as the edge label shows it. */
export function formatRtt(ms: number): string {
  return ms < 1 ? `${ms.toFixed(2)} ms` : ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const finite = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : null);

function pathOf(l: LinkView): EdgePath {
  return typeof l.path === 'string' && PATHS.has(l.path) ? l.path : 'unknown';
}

function nodeLabel(nickname: string, name: string, notes: string[]): string {
  const head = nickname === '' ? shortName(name) : `${nickname}\n${shortName(name)}`;
  return notes.length === 0 ? head : `${head}\n(${notes.join(', ')})`;
}

function routerNode(r: RouterView, self: string): GraphNode {
  const reachable = r.self === true || r.name === self || r.reachable === true;
  const revoked = r.revoked === true;
  const notes = [...(reachable ? [] : ['unreachable']), ...(revoked ? ['revoked'] : [])];
  return {
    id: r.name,
    label: nodeLabel(str(r.nickname), r.name, notes),
    self: r.name === self,
    reachable,
    known: true,
    revoked,
    style: reachable ? (r.name === self ? 'bold' : 'solid') : 'dashed',
    color: revoked ? '#c62828' : reachable ? '#212121' : '#9e9e9e',
    fontcolor: reachable ? '#212121' : '#9e9e9e',
  };
}

interface Reported {
  from: string;
  link: LinkView;
}

function edgeOf(a: string, b: string, reports: Reported[], nick: (name: string) => string): GraphEdge {
  const paths = reports.map((r) => pathOf(r.link));
  const slowest = [...paths].sort((x, y) => SLOWNESS.indexOf(x) - SLOWNESS.indexOf(y))[0] ?? 'unknown';
  const chosen = reports[paths.indexOf(slowest)]!;
  const known = new Set(paths.filter((p) => p !== 'unknown'));
  const asymmetric = known.size > 1;
  const via = slowest === 'relay' && str(chosen.link.via) !== '' ? str(chosen.link.via) : null;
  // Only ends on the drawn path measure its round trip (a relay has none).
  const rtts = reports.filter((r) => pathOf(r.link) === slowest).map((r) => finite(r.link.rttMs)).filter((x): x is number => x !== null);
  const rttMs = rtts[0] ?? null;
  const established = reports.some((r) => r.link.established === true);
  const parts: string[] = [slowest === 'relay' ? `relay via ${via === null ? '?' : nick(via)}` : PATH_STYLE[slowest].short];
  if (rttMs !== null) parts.push(formatRtt(rttMs));
  if (asymmetric) parts.push(reports.map((r) => `${nick(r.from)}: ${pathOf(r.link)}`).join(', '));
  // A relayed pair's mesh connection is not established (no direct UDP): that is the relay's point.
  if (!established && slowest !== 'relay') parts.push('not established');
  const look = PATH_STYLE[slowest];
  return { a, b, path: slowest, via, rttMs, established, asymmetric, label: parts.join('\n'), color: look.color, style: look.style };
}

/** The graph of a mesh view (see the file comment). */
export function meshGraph(view: MeshView): GraphModel {
  let skipped = 0;
  const self = str(view.self);
  const routers = (Array.isArray(view.routers) ? view.routers : []).filter((r) => {
    const ok = isObject(r) && str(r.name) !== '';
    if (!ok) skipped++;
    return ok;
  });
  const nodes = new Map<string, GraphNode>();
  for (const r of routers) if (!nodes.has(r.name)) nodes.set(r.name, routerNode(r, self));
  const nick = (name: string): string => {
    const n = nodes.get(name);
    return n === undefined ? shortName(name) : n.label.split('\n')[0]!;
  };
  const pairs = new Map<string, { a: string; b: string; reports: Reported[] }>();
  for (const r of routers) {
    for (const l of Array.isArray(r.connections) ? r.connections : []) {
      if (!isObject(l) || str(l.peer) === '' || l.peer === r.name) {
        skipped++;
        continue;
      }
      if (!nodes.has(l.peer)) {
        const notes = ['no record'];
        nodes.set(l.peer, { id: l.peer, label: nodeLabel(str(l.nickname), l.peer, notes), self: false, reachable: false, known: false, revoked: false, style: 'dashed', color: '#9e9e9e', fontcolor: '#9e9e9e' });
      }
      const [a, b] = r.name < l.peer ? [r.name, l.peer] : [l.peer, r.name];
      const key = `${a}\0${b}`;
      const pair = pairs.get(key) ?? { a, b, reports: [] };
      if (!pair.reports.some((x) => x.from === r.name)) pair.reports.push({ from: r.name, link: l });
      pairs.set(key, pair);
    }
  }
  const edges = [...pairs.values()].map((p) => edgeOf(p.a, p.b, p.reports, nick));
  edges.sort((x, y) => (x.a === y.a ? (x.b < y.b ? -1 : 1) : x.a < y.a ? -1 : 1));
  return { self, nodes: [...nodes.values()], edges, skipped };
}
