/**
 * SVG from DOT text, by Graphviz's `dot -Tsvg` (weft draws nothing itself). When `dot` is not
 * installed the error says so and what to do (install graphviz, or take `--format dot`); when it
 * fails or prints something that is not SVG, the error carries the end of its stderr.
 */
import { spawn } from 'node:child_process';
import { WeftError } from '../core/errors.js';

/** Runs a program with stdin, collects stdout and stderr; rejects with the spawn error (ENOENT when absent). */
export type RunProgram = (file: string, args: string[], stdin: string) => Promise<{ code: number | null; stdout: string; stderr: string }>;

export const runProgram: RunProgram = (file, args, stdin) =>
  new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    // dot exits early on a syntax error: a write to its closed stdin is not our failure.
    child.stdin.on('error', () => undefined);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
    child.stdin.end(stdin);
  });

export class GraphvizError extends WeftError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'GraphvizError';
  }
}

/** The SVG of a DOT text; `dot` is the Graphviz program (default `dot`, found on PATH). */
export async function renderSvg(dotText: string, components: { run?: RunProgram; dot?: string } = {}): Promise<string> {
  const run = components.run ?? runProgram;
  const program = components.dot ?? 'dot';
  let r: Awaited<ReturnType<RunProgram>>;
  try {
    r = await run(program, ['-Tsvg'], dotText);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new GraphvizError(
        'ERR_GRAPHVIZ_MISSING',
        `weft graph --format svg: Graphviz's \`${program}\` is not installed (not on PATH); install it (Debian/Ubuntu: apt-get install graphviz; scripts/prereqs.sh does) or write DOT with --format dot`,
        { cause: err },
      );
    }
    throw new GraphvizError('ERR_GRAPHVIZ_FAILED', `weft graph --format svg: could not run \`${program}\`: ${(err as Error).message}`, { cause: err });
  }
  const tail = r.stderr.trim().split('\n').slice(-3).join('; ');
  if (r.code !== 0) throw new GraphvizError('ERR_GRAPHVIZ_FAILED', `weft graph --format svg: \`${program} -Tsvg\` exited with ${String(r.code)}${tail === '' ? '' : `: ${tail}`}`);
  if (!/<svg[\s>]/.test(r.stdout)) throw new GraphvizError('ERR_GRAPHVIZ_FAILED', `weft graph --format svg: \`${program} -Tsvg\` printed no SVG${tail === '' ? '' : ` (${tail})`}`);
  return r.stdout;
}
