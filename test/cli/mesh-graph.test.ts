/**
 * `weft graph` without a router: the graph model of a mesh view, its DOT (read back with the
 * small parser in dot-parse.ts), its SVG through Graphviz (checked with xml-check.ts), the error
 * when Graphviz is missing, and nicknames that try to break out of DOT strings.
 */
import { describe, expect, it } from 'vitest';
import { meshGraph, type EdgePath } from '../../src/cli/mesh-graph.js';
import { dotString, meshDot } from '../../src/cli/mesh-dot.js';
import { GraphvizError, renderSvg } from '../../src/cli/mesh-svg.js';
import { drawMesh, graphFormat } from '../../src/cli/graph-command.js';
import { ConfigError } from '../../src/core/errors.js';
import type { MeshView } from '../../src/api/types.js';
import { parseDot, type DotGraph } from './dot-parse.js';
import { checkXml } from './xml-check.js';
import { NAMES, fiveWithRelay, hasDot, router } from './mesh-fixtures.js';

/** A parsed DOT label as Graphviz shows it: `\n` a line break, `\\` a backslash. */
const shown = (label: string | undefined): string => (label ?? '').replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
const routersOf = (g: DotGraph) => [...g.nodes.values()].filter((n) => n.subgraph === null);
const edgeBetween = (g: DotGraph, a: number, b: number) => g.edges.find((e) => (e.a === NAMES[a] && e.b === NAMES[b]) || (e.a === NAMES[b] && e.b === NAMES[a]));

describe('mesh graph model', () => {
  it('five routers, one edge per pair, the n1–n5 pair through the relay n3', () => {
    const m = meshGraph(fiveWithRelay());
    expect(m.nodes.map((n) => n.id)).toEqual(NAMES);
    expect(m.edges).toHaveLength(10);
    expect(m.skipped).toBe(0);
    const relay = m.edges.find((e) => e.a === NAMES[0] && e.b === NAMES[4])!;
    expect(relay).toMatchObject({ path: 'relay', via: NAMES[2], style: 'dashed', color: '#ef6c00', asymmetric: false });
    expect(relay.label).toBe('relay via n3');
    expect(m.nodes[0]).toMatchObject({ self: true, label: 'n1\n1a1a1a1a', style: 'bold' });
  });

  it.each<[number, number, EdgePath, string, string]>([
    [0, 1, 'fastpath', '#2e7d32', 'fast path\n0.21 ms'],
    [1, 4, 'direct', '#1565c0', 'direct\n1.8 ms'],
    [2, 3, 'punched', '#6a1b9a', 'punched\n13 ms'],
    [0, 4, 'relay', '#ef6c00', 'relay via n3'],
  ])('pair %i–%i: %s, colour %s, label %j', (a, b, path, color, label) => {
    const e = meshGraph(fiveWithRelay()).edges.find((x) => x.a === NAMES[a] && x.b === NAMES[b])!;
    expect(e).toMatchObject({ path, color, label });
  });

  it('an unreachable router is dashed and grey, and says so', () => {
    const v = fiveWithRelay();
    v.routers[3] = router(3, { reachable: false });
    const n = meshGraph(v).nodes[3]!;
    expect(n).toMatchObject({ reachable: false, style: 'dashed', color: '#9e9e9e', fontcolor: '#9e9e9e' });
    expect(n.label).toBe('n4\n4d4d4d4d\n(unreachable)');
  });

  it('ends that disagree: the slower path is drawn and the label names both', () => {
    const v = fiveWithRelay();
    v.routers[1]!.connections.find((l) => l.peer === NAMES[3])!.path = 'direct';
    const e = meshGraph(v).edges.find((x) => x.a === NAMES[1] && x.b === NAMES[3])!;
    expect(e.path).toBe('direct');
    expect(e.asymmetric).toBe(true);
    expect(e.label).toContain('n2: direct, n4: fastpath');
    const v2 = fiveWithRelay();
    Object.assign(v2.routers[0]!.connections.find((l) => l.peer === NAMES[4])!, { path: 'fastpath', via: null, rttMs: 0.5 });
    const relay = meshGraph(v2).edges.find((x) => x.a === NAMES[0] && x.b === NAMES[4])!;
    expect(relay).toMatchObject({ path: 'relay', rttMs: null, label: 'relay via n3\nn1: fastpath, n5: relay' }); // no round trip of the other path
  });

  it('a connection not established is grey and dotted; a path not reported is "path not reported"', () => {
    const v = fiveWithRelay();
    for (const [i, j] of [[1, 2], [2, 1]] as const) Object.assign(v.routers[i]!.connections.find((l) => l.peer === NAMES[j])!, { established: false, path: null, rttMs: null });
    const e = meshGraph(v).edges.find((x) => x.a === NAMES[1] && x.b === NAMES[2])!;
    expect(e).toMatchObject({ path: 'unknown', established: false, style: 'dotted', color: '#9e9e9e', label: 'path not reported\nnot established' });
  });

  it('a relayed pair whose mesh connection is not established (no direct UDP) is still the relay edge', () => {
    const v = fiveWithRelay();
    for (const [i, j] of [[0, 4], [4, 0]] as const) v.routers[i]!.connections.find((l) => l.peer === NAMES[j])!.established = false;
    const e = meshGraph(v).edges.find((x) => x.a === NAMES[0] && x.b === NAMES[4])!;
    expect(e).toMatchObject({ path: 'relay', established: false, style: 'dashed', color: '#ef6c00', label: 'relay via n3' });
  });

  it('a peer seen only as a connection becomes a dashed node of its own', () => {
    const v: MeshView = { self: NAMES[0]!, routers: [router(0)] };
    const m = meshGraph(v);
    expect(m.nodes).toHaveLength(5);
    expect(m.nodes.slice(1).every((n) => !n.known && n.style === 'dashed' && n.label.endsWith('(no record)'))).toBe(true);
    expect(m.edges).toHaveLength(4);
  });

  it('malformed routers and links are skipped and counted, never thrown on', () => {
    const v = fiveWithRelay() as unknown as { self: string; routers: unknown[] };
    v.routers.push(null, 7, { nickname: 'no name' });
    (v.routers[1] as { connections: unknown[] }).connections.push(null, { peer: 3 }, { peer: NAMES[1] });
    (v.routers[2] as { connections: unknown }).connections = 'none';
    const m = meshGraph(v as unknown as MeshView);
    expect(m.skipped).toBe(6);
    expect(m.nodes).toHaveLength(5);
    expect(m.edges).toHaveLength(10); // n3's pairs are still known from the other ends
    expect(meshGraph({ self: 'x', routers: 'no' } as unknown as MeshView)).toEqual({ self: 'x', nodes: [], edges: [], skipped: 0 });
  });
});

describe('DOT', () => {
  it('parses back: five routers with labels and attributes, ten edges, the relay edge dashed with its via', () => {
    const g = parseDot(meshDot(meshGraph(fiveWithRelay())));
    expect(g.kind).toBe('graph');
    expect(routersOf(g).map((n) => n.id)).toEqual(NAMES);
    expect(shown(g.nodes.get(NAMES[0]!)!.attrs.label)).toBe('n1\n1a1a1a1a');
    expect(g.nodes.get(NAMES[0]!)!.attrs.peripheries).toBe('2');
    expect(g.edges.filter((e) => e.subgraph === null)).toHaveLength(10);
    expect(edgeBetween(g, 0, 4)!.attrs).toMatchObject({ style: 'dashed', color: '#ef6c00', label: 'relay via n3' });
    expect(edgeBetween(g, 0, 1)!.attrs).toMatchObject({ style: 'bold', color: '#2e7d32', penwidth: '2' });
    expect(shown(edgeBetween(g, 2, 3)!.attrs.label)).toBe('punched\n13 ms');
    expect(g.edges.filter((e) => e.subgraph === 'cluster_legend').map((e) => shown(e.attrs.label))).toEqual([
      'fast path (kernel VXLAN)',
      'direct sleeve',
      'direct sleeve, hole punched',
      'sleeve through a relay',
      'no data path',
    ]);
  });

  it.each([
    ['a quote', 'ev"il', 'ev"il'],
    ['a backslash', 'a\\b', 'a\\b'],
    ['a quote after a backslash', 'x\\"];}', 'x\\"];}'],
    ['a Graphviz substitution', '\\N\\G', '\\N\\G'],
    ['a line break', 'two\nlines', 'two\nlines'],
    ['control characters', 'bell\u0007\r\ttab\u0085', 'belltab'],
    ['an HTML-like label', '<b>x</b>', '<b>x</b>'],
    ['brackets and edges', '] -- "x" [', '] -- "x" ['],
  ])('a nickname with %s stays inside its string', (_what, nickname, expected) => {
    const v = fiveWithRelay();
    v.routers[2] = router(2, { nickname });
    for (const r of v.routers) for (const l of r.connections) if (l.peer === NAMES[2]) l.nickname = nickname;
    const g = parseDot(meshDot(meshGraph(v)));
    expect(routersOf(g)).toHaveLength(5);
    expect(g.edges.filter((e) => e.subgraph === null)).toHaveLength(10);
    expect(shown(g.nodes.get(NAMES[2]!)!.attrs.label)).toBe(`${expected}\n3c3c3c3c`);
    expect(shown(edgeBetween(g, 0, 4)!.attrs.label)).toBe(`relay via ${expected.split('\n')[0]!}`);
  });

  it.each([
    ['plain', 'abc', '"abc"'],
    ['quote', 'a"b', '"a\\"b"'],
    ['backslash', 'a\\', '"a\\\\"'],
    ['newline', 'a\nb', '"a\\nb"'],
    ['NUL and DEL', 'a\u0000\u007fb', '"ab"'],
    ['unicode', 'ñ→', '"ñ→"'],
  ])('dotString %s', (_what, text, expected) => {
    expect(dotString(text)).toBe(expected);
  });

  it.each([
    ['an unterminated string', 'graph { "a -- b }'],
    ['a quote breaking out of a label', 'graph { a [label="x"y"] }'],
    ['an unbalanced brace', 'graph { a -- b'],
    ['a directed edge in a graph', 'graph { a -> b }'],
    ['text after the graph', 'graph { } x'],
  ])('the test parser rejects %s', (_what, text) => {
    expect(() => parseDot(text)).toThrow(/DOT:/);
  });
});

describe.skipIf(!hasDot)('SVG through Graphviz', () => {
  it('is well-formed XML with one node per router (titled by its name) and the relay edge', async () => {
    const svg = await drawMesh(fiveWithRelay(), 'svg');
    const { root, all } = checkXml(svg);
    expect(root.name).toBe('svg');
    const nodes = all.filter((e) => e.name === 'g' && e.attrs.class === 'node');
    const titles = (els: typeof all) => els.map((e) => e.children.find((c) => c.name === 'title')?.text ?? '');
    expect(titles(nodes).filter((t) => NAMES.includes(t)).sort()).toEqual(NAMES);
    const edges = all.filter((e) => e.name === 'g' && e.attrs.class === 'edge');
    const relay = edges.find((e) => titles([e])[0] === `${NAMES[0]}--${NAMES[4]}`)!;
    expect(relay).toBeDefined();
    const texts = (e: (typeof all)[number]): string[] => [e.text, ...e.children.flatMap(texts)];
    expect(texts(relay).join(' ')).toContain('relay via n3');
    expect(relay.children.find((c) => c.name === 'path')?.attrs['stroke-dasharray']).toBeDefined();
  });

  it('hostile nicknames still make well-formed SVG', async () => {
    const v = fiveWithRelay();
    v.routers[1] = router(1, { nickname: '<script>&"\'\\N</svg>' });
    const { all } = checkXml(await drawMesh(v, 'svg'));
    const texts = all.filter((e) => e.name === 'text').map((e) => e.text);
    expect(texts).toContain('<script>&"\'\\N</svg>');
  });
});

describe('SVG errors', () => {
  it('Graphviz missing: a clear error that names graphviz and --format dot', async () => {
    const enoent = Object.assign(new Error('spawn dot ENOENT'), { code: 'ENOENT' });
    const err = await renderSvg('graph {}', { run: () => Promise.reject(enoent) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GraphvizError);
    expect((err as GraphvizError).code).toBe('ERR_GRAPHVIZ_MISSING');
    expect((err as Error).message).toMatch(/Graphviz's `dot` is not installed.*apt-get install graphviz.*--format dot/);
    const real = await renderSvg('graph {}', { dot: '/nonexistent/weft-test-dot' }).catch((e: unknown) => e);
    expect((real as GraphvizError).code).toBe('ERR_GRAPHVIZ_MISSING');
  });

  it.each([
    ['a failing dot', { code: 1, stdout: '', stderr: 'Error: syntax error in line 1\n' }, /exited with 1: Error: syntax error in line 1/],
    ['no SVG printed', { code: 0, stdout: 'hello', stderr: '' }, /printed no SVG/],
  ])('%s is an ERR_GRAPHVIZ_FAILED', async (_what, result, message) => {
    const err = await renderSvg('graph {}', { run: () => Promise.resolve(result) }).catch((e: unknown) => e);
    expect((err as GraphvizError).code).toBe('ERR_GRAPHVIZ_FAILED');
    expect((err as Error).message).toMatch(message);
  });
});

describe('graph format', () => {
  it.each<[string | undefined, string | undefined, string]>([
    [undefined, undefined, 'dot'],
    [undefined, 'mesh.svg', 'svg'],
    [undefined, 'MESH.SVG', 'svg'],
    [undefined, 'mesh.gv', 'dot'],
    ['dot', 'mesh.svg', 'dot'],
    ['SVG', undefined, 'svg'],
  ])('--format %s --out %s → %s', (format, out, expected) => {
    expect(graphFormat(format, out)).toBe(expected);
  });

  it('an unknown format is a usage error with a suggestion', () => {
    expect(() => graphFormat('svgg', undefined)).toThrow(ConfigError);
    expect(() => graphFormat('svgg', undefined)).toThrow(/--format "svgg" is not one of dot, svg \(did you mean svg\?\)/);
    expect(() => graphFormat('png', undefined)).toThrow(/is not one of dot, svg$/m);
  });
});

describe('the XML check', () => {
  it.each([
    ['an unclosed element', '<svg><g></svg>'],
    ['a bare ampersand', '<svg>a & b</svg>'],
    ['two roots', '<a/><b/>'],
    ['a duplicate attribute', '<svg x="1" x="2"/>'],
    ['an unquoted attribute', '<svg x=1/>'],
  ])('rejects %s', (_what, text) => {
    expect(() => checkXml(text)).toThrow(/XML:/);
  });
});
