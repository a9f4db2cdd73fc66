/**
 * The DOT text of a mesh graph (src/cli/mesh-graph.ts), for Graphviz. Every id and label is a
 * quoted string with `\` and `"` escaped, line breaks written as DOT's `\n` and other control
 * characters dropped: nicknames come from other routers, and none of them can end a string,
 * start an attribute or use Graphviz's `\N`/`\G` substitutions. The legend is a cluster of its
 * own whose node ids cannot be peer names (those are 16 hex digits).
 */
import { PATH_STYLE, type EdgePath, type GraphModel } from './mesh-graph.js';

/** A DOT quoted string: the text with `\`, `"` and line breaks escaped, other control characters removed. */
export function dotString(text: string): string {
  let out = '';
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    if (ch === '\\') out += '\\\\';
    else if (ch === '"') out += '\\"';
    else if (ch === '\n') out += '\\n';
    else if (code < 0x20 || code === 0x7f || (code >= 0x80 && code < 0xa0) || code === 0x2028 || code === 0x2029) continue;
    else out += ch;
  }
  return `"${out}"`;
}

function attrs(a: Record<string, string | undefined>): string {
  const parts = Object.entries(a)
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(([k, v]) => `${k}=${dotString(v)}`);
  return parts.length === 0 ? '' : ` [${parts.join(', ')}]`;
}

const LEGEND_ORDER: EdgePath[] = ['fastpath', 'direct', 'punched', 'relay', 'none'];

/** The graph as DOT (an undirected `graph`); `legend: false` leaves the legend out. */
export function meshDot(model: GraphModel, opts: { title?: string; legend?: boolean } = {}): string {
  const lines: string[] = ['graph weft {'];
  const title = opts.title ?? `weft mesh seen from ${model.nodes.find((n) => n.self)?.label.split('\n')[0] ?? model.self}`;
  lines.push(`  graph${attrs({ label: title, labelloc: 't', fontname: 'Helvetica', overlap: 'false', splines: 'true' })};`);
  lines.push(`  node${attrs({ shape: 'box', style: 'rounded', fontname: 'Helvetica', fontsize: '11' })};`);
  lines.push(`  edge${attrs({ fontname: 'Helvetica', fontsize: '9' })};`);
  for (const n of model.nodes) {
    lines.push(
      `  ${dotString(n.id)}${attrs({ label: n.label, style: `rounded,${n.style}`, color: n.color, fontcolor: n.fontcolor, peripheries: n.self ? '2' : undefined, tooltip: n.id })};`,
    );
  }
  for (const e of model.edges) {
    lines.push(`  ${dotString(e.a)} -- ${dotString(e.b)}${attrs({ label: e.label, color: e.color, fontcolor: e.color, style: e.style, penwidth: e.path === 'fastpath' ? '2' : undefined })};`);
  }
  if (opts.legend !== false) {
    lines.push('  subgraph cluster_legend {');
    lines.push(`    graph${attrs({ label: 'paths', fontsize: '10', style: 'dashed', color: '#bdbdbd' })};`);
    lines.push(`    node${attrs({ shape: 'point', width: '0.05' })};`);
    for (const [i, p] of LEGEND_ORDER.entries()) {
      const look = PATH_STYLE[p];
      lines.push(`    "legend-${i}a" -- "legend-${i}b"${attrs({ label: look.legend, color: look.color, fontcolor: look.color, style: look.style })};`);
    }
    lines.push('  }');
  }
  lines.push('}');
  return `${lines.join('\n')}\n`;
}
