/**
 * `weft graph` on a 5-router lab with a relay (issue 19, "a picture"): UDP is blocked between n1
 * and n5 (the mesh's TCP stays up), so their pair goes through a relay. One router's `weft graph`
 * is read back as DOT (five routers, ten edges, the n1–n5 edge a dashed relay "via" another
 * router, the others direct or punched sleeve) and rendered as SVG through Graphviz (well-formed, a node per router, the relay edge).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WeftCluster } from '../../lab/weft-cluster.js';
import { parseDot, type DotGraph } from '../cli/dot-parse.js';
import { checkXml } from '../cli/xml-check.js';
import { hasDot } from '../cli/mesh-fixtures.js';
import { until } from './helpers.js';

const isRoot = process.getuid?.() === 0;
const N = 5;

describe.skipIf(!isRoot || !hasDot)('weft graph on 5 routers with a relay', () => {
  let c: WeftCluster;
  let names: string[] = [];
  let dir = '';
  const edgeOf = (g: DotGraph, a: number, b: number) => g.edges.find((e) => e.subgraph === null && ((e.a === names[a] && e.b === names[b]) || (e.a === names[b] && e.b === names[a])));

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'weft-graph-test-'));
    c = await WeftCluster.start({ nodes: N, podsPerNode: 0 });
    await c.waitEstablished(60_000);
    names = await Promise.all(c.routers.map(async (_, i) => (await c.apiStatus(i)).name));
    await c.waitPaths(() => 'direct', 60_000);
    await c.lab.blockUdpBetween(c.lab.nodes[0]!, c.lab.nodes[N - 1]!);
  }, 180_000);

  afterAll(async () => {
    await c?.destroy();
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  it('DOT from n2: five routers, ten edges, n1–n5 a dashed relay edge via a third router', async () => {
    let last = 'nothing yet';
    const g = await until(
      'n2 sees every pair, n1–n5 on a relay',
      async () => {
        const r = await c.weft(1, ['graph']);
        last = r.code === 0 ? r.stdout : `exit ${String(r.code)}: ${r.stderr}`;
        if (r.code !== 0) return undefined;
        const dot = parseDot(r.stdout);
        const complete = dot.edges.filter((e) => e.subgraph === null).length === 10 && edgeOf(dot, 0, N - 1)?.attrs.color === '#ef6c00';
        return complete ? dot : undefined;
      },
      90_000,
    ).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}; the last answer:\n${last}`);
    });
    const routers = [...g.nodes.values()].filter((n) => n.subgraph === null);
    expect(routers.map((n) => n.id).sort()).toEqual([...names].sort());
    for (const [i, name] of names.entries()) expect(g.nodes.get(name)!.attrs.label).toBe(`n${i + 1}\\n${name.slice(0, 8)}`);
    expect(g.nodes.get(names[1]!)!.attrs.peripheries).toBe('2'); // the router asked
    const relay = edgeOf(g, 0, N - 1)!;
    expect(relay.attrs.style).toBe('dashed');
    expect(relay.attrs.label).toMatch(/^relay via n[234]/);
    for (let a = 0; a < N; a++) {
      for (let b = a + 1; b < N; b++) {
        if (a === 0 && b === N - 1) continue;
        expect(['#1565c0', '#6a1b9a'], `n${a + 1}–n${b + 1}`).toContain(edgeOf(g, a, b)?.attrs.color); // direct sleeve, maybe punched
      }
    }
  });

  it('SVG from n1 to a file (format from --format and from the extension): well-formed, a node per router, the relay edge', async () => {
    const out = join(dir, 'mesh.svg');
    const r = await until('n1 draws the relay edge', async () => {
      const res = await c.weft(0, ['graph', '--out', out]);
      return res.code === 0 && readFileSync(out, 'utf8').includes('relay via') ? res : undefined;
    }, 60_000);
    expect(r.stdout).toBe('');
    const { root, all } = checkXml(readFileSync(out, 'utf8'));
    expect(root.name).toBe('svg');
    const title = (e: (typeof all)[number]) => e.children.find((x) => x.name === 'title')?.text ?? '';
    const nodes = all.filter((e) => e.name === 'g' && e.attrs.class === 'node').map(title).filter((t) => names.includes(t));
    expect(nodes.sort()).toEqual([...names].sort());
    const edges = all.filter((e) => e.name === 'g' && e.attrs.class === 'edge');
    const relay = edges.find((e) => [`${names[0]}--${names[N - 1]}`, `${names[N - 1]}--${names[0]}`].includes(title(e)));
    expect(relay).toBeDefined();
    expect(relay!.children.find((x) => x.name === 'path')?.attrs.stroke).toBe('#ef6c00');
    const stdout = await c.weft(0, ['graph', '--format', 'svg']);
    expect(stdout.code).toBe(0);
    expect(checkXml(stdout.stdout).root.name).toBe('svg');
  });

  it('a bad --format is a usage error (exit 2) with a suggestion', async () => {
    const r = await c.weft(0, ['graph', '--format', 'svgg']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--format "svgg" is not one of dot, svg (did you mean svg?)');
  });
});
