/**
 * `weft graph`: the mesh as a running router sees it (GET /v1/mesh), drawn as DOT or SVG, like
 * Kilo's `kgctl graph`. Routers are nodes (nickname and short name; unreachable ones dashed and
 * grey), each pair of connected routers one edge coloured by its data path, with the round trip.
 *
 *   weft graph                       DOT on stdout
 *   weft graph --format svg --out mesh.svg
 *   weft graph --out mesh.svg        the format follows the file's extension (.svg, .dot, .gv)
 */
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { ConfigError, WeftError, describeError } from '../core/errors.js';
import { didYouMean } from '../core/did-you-mean.js';
import { getMesh } from '../api/client.js';
import { defaultOf } from '../daemon/options.js';
import type { MeshView } from '../api/types.js';
import type { RunProgram } from './mesh-svg.js';

export const GRAPH_FORMATS = ['dot', 'svg'] as const;
export type GraphFormat = (typeof GRAPH_FORMATS)[number];

/** The format asked for: --format, else the extension of --out, else DOT. A bad one is a ConfigError with a suggestion. */
export function graphFormat(format: string | undefined, out: string | undefined): GraphFormat {
  if (format !== undefined) {
    const f = format.toLowerCase();
    if ((GRAPH_FORMATS as readonly string[]).includes(f)) return f as GraphFormat;
    const near = didYouMean(format, GRAPH_FORMATS);
    throw new ConfigError([`--format ${JSON.stringify(format)} is not one of ${GRAPH_FORMATS.join(', ')}${near === undefined ? '' : ` (did you mean ${near}?)`}`], 'weft graph');
  }
  if (out !== undefined && /\.svg$/i.test(out)) return 'svg';
  return 'dot';
}

/** The drawing of a mesh view in a format (SVG through Graphviz's `dot`). */
export async function drawMesh(view: MeshView, format: GraphFormat, components: { run?: RunProgram } = {}): Promise<string> {
  // Loaded here, not with the command line: a router never draws.
  const [{ meshGraph }, { meshDot }, { renderSvg }] = await Promise.all([import('./mesh-graph.js'), import('./mesh-dot.js'), import('./mesh-svg.js')]);
  const dot = meshDot(meshGraph(view));
  return format === 'dot' ? dot : renderSvg(dot, components);
}

/** Adds `weft graph` to the program. */
export function registerGraph(program: Command): void {
  program
    .command('graph')
    .description("draw the mesh as this router sees it, as Graphviz DOT or SVG (like `kgctl graph`): every router, one edge per connected pair coloured by its path (fast path, direct sleeve, punched, relay) with its round trip")
    .option('--format <format>', 'dot or svg (svg runs Graphviz `dot`); default: from the --out extension, else dot')
    .option('--out <file>', 'write here instead of stdout')
    .option('--socket <path>', 'API socket of the router', defaultOf('apiSocket'))
    .action(async (opts: { format?: string; out?: string; socket: string }) => {
      const format = graphFormat(opts.format, opts.out);
      const text = await drawMesh(await getMesh(opts.socket), format);
      if (opts.out === undefined) {
        process.stdout.write(text);
        return;
      }
      try {
        writeFileSync(opts.out, text);
      } catch (err) {
        throw new WeftError('ERR_GRAPH_WRITE', `weft graph: cannot write ${opts.out}: ${describeError(err)}`, { cause: err });
      }
    });
}
