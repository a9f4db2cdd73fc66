/**
 * The architecture check: docs/ARCHITECTURE.md's dependency table, read as rules, against every
 * import of the tree (TypeScript: src, lab, sim, bench, test) and every C translation unit, plus
 * cycles. Pure functions over a `Tree` (path → text) so the self-check can run them on a small
 * fake tree that breaks each rule.
 */
import { posix } from 'node:path';

/** Repo-relative path (POSIX separators) → file text. */
export type Tree = ReadonlyMap<string, string>;

export interface Row {
  /** A folder, e.g. `src/router`; a file's area is the longest row folder that holds it. */
  folder: string;
  /** Folders (`src/core`), single files (`src/mesh/contracts.ts`) or `src/*` (any folder under src/). */
  imports: string[];
  packages: string[];
}

export interface PackageJson {
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

const TABLE_TITLE = '## What each folder may import';

/**
 * Reads the table under `## What each folder may import`: columns folder | floor | may import |
 * packages, entries in backticks, `–` for none.
 */
export function parseRules(markdown: string): Row[] {
  const start = markdown.indexOf(TABLE_TITLE);
  if (start < 0) throw new Error(`docs/ARCHITECTURE.md has no "${TABLE_TITLE}" section`);
  const rows: Row[] = [];
  for (const line of markdown.slice(start).split('\n').slice(1)) {
    if (line.startsWith('## ')) break;
    if (!line.startsWith('|') || line.startsWith('|---') || line.includes('| folder |')) continue;
    const cells = line.split('|').slice(1, -1).map((c) => c.trim());
    if (cells.length !== 4) throw new Error(`dependency table row has ${cells.length} cells, want 4: ${line}`);
    const ticks = (cell: string) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
    const [folder] = ticks(cells[0]!);
    if (folder === undefined) throw new Error(`dependency table row without a folder: ${line}`);
    rows.push({ folder, imports: ticks(cells[2]!), packages: ticks(cells[3]!) });
  }
  if (rows.length === 0) throw new Error('the dependency table in docs/ARCHITECTURE.md is empty');
  return rows;
}

/** The text with comments blanked (strings and template literals kept), so examples in comments never count. */
export function stripComments(text: string): string {
  let out = '';
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i]!;
    const d = text[i + 1];
    if (c === '/' && d === '/') {
      while (i < n && text[i] !== '\n') i++;
    } else if (c === '/' && d === '*') {
      const end = text.indexOf('*/', i + 2);
      const stop = end < 0 ? n : end + 2;
      out += text.slice(i, stop).replace(/[^\n]/g, ' ');
      i = stop;
    } else if (c === "'" || c === '"' || c === '`') {
      let j = i + 1;
      while (j < n && text[j] !== c) j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** Module specifiers of a TypeScript file: static imports and re-exports (type-only too), side-effect and dynamic imports with a literal. */
export function importsOf(text: string): string[] {
  const code = stripComments(text);
  const out: string[] = [];
  const re = /(?:^|[;\n}])\s*(?:import|export)\s[^'"`;]*?from\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)|^\s*import\s*['"]([^'"]+)['"]/gm;
  for (let m = re.exec(code); m !== null; m = re.exec(code)) out.push((m[1] ?? m[2] ?? m[3])!);
  return out;
}

const packageOf = (spec: string): string => (spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);

function areaOf(rows: Row[], path: string): Row | undefined {
  let best: Row | undefined;
  for (const r of rows) if (path.startsWith(`${r.folder}/`) && (best === undefined || r.folder.length > best.folder.length)) best = r;
  return best;
}

/** Resolves a relative specifier to a tree path (`.js` → `.ts`, a folder → its index.ts). */
function resolveSpec(tree: Tree, from: string, spec: string): string {
  const raw = posix.normalize(posix.join(posix.dirname(from), spec));
  for (const c of [raw.replace(/\.js$/, '.ts'), raw, `${raw}.ts`, `${raw}/index.ts`]) if (tree.has(c)) return c;
  return raw.replace(/\.js$/, '.ts');
}

const isTs = (p: string) => p.endsWith('.ts') && !p.endsWith('.d.ts');

export interface Findings {
  violations: string[];
  /** File-level import graph (TypeScript), for the cycle check. */
  graph: Map<string, Set<string>>;
}

/** Every import against the rows; every row entry used; packages against package.json. */
export function checkImports(tree: Tree, rows: Row[], pkg: PackageJson, scanned: string[]): Findings {
  const violations: string[] = [];
  const graph = new Map<string, Set<string>>();
  const used = new Set<string>();
  const usedBySrc = new Set<string>();
  const deps = new Set(Object.keys(pkg.dependencies ?? {}));
  const devDeps = new Set(Object.keys(pkg.devDependencies ?? {}));
  for (const [path, text] of tree) {
    if (!isTs(path) || !scanned.some((d) => path.startsWith(`${d}/`))) continue;
    const row = areaOf(rows, path);
    if (row === undefined) {
      violations.push(`${path}: its folder has no row in the dependency table`);
      continue;
    }
    const edges = new Set<string>();
    graph.set(path, edges);
    for (const spec of importsOf(text)) {
      if (spec.startsWith('node:')) continue;
      if (!spec.startsWith('.')) {
        const name = packageOf(spec);
        used.add(`${row.folder} package ${name}`);
        if (path.startsWith('src/')) usedBySrc.add(name);
        if (!row.packages.includes(name)) violations.push(`${path} (${row.folder}) imports package ${name}, which its row does not name`);
        else if (path.startsWith('src/') && !deps.has(name)) violations.push(`${path} imports ${name}, which is not in package.json "dependencies" (shipped code needs it at run time)`);
        else if (!deps.has(name) && !devDeps.has(name)) violations.push(`${path} imports ${name}, which package.json does not list`);
        continue;
      }
      const target = resolveSpec(tree, path, spec);
      edges.add(target);
      const targetRow = areaOf(rows, target);
      if (targetRow === row) continue;
      const allowedBy = row.imports.find(
        (e) => e === target || (targetRow !== undefined && e === targetRow.folder) || (e === 'src/*' && target.startsWith('src/')),
      );
      if (allowedBy === undefined) violations.push(`${path} (${row.folder}) imports ${target}, which its row does not name`);
      else used.add(`${row.folder} ${allowedBy}`);
    }
  }
  for (const r of rows) {
    for (const e of r.imports) if (e !== 'src/*' && !used.has(`${r.folder} ${e}`)) violations.push(`the row of ${r.folder} names ${e}, but nothing there imports it: remove it from the table`);
    for (const p of r.packages) if (!used.has(`${r.folder} package ${p}`)) violations.push(`the row of ${r.folder} names package ${p}, but nothing there imports it: remove it from the table`);
  }
  for (const d of deps) if (!usedBySrc.has(d)) violations.push(`package.json "dependencies" lists ${d}, but nothing under src/ imports it: a devDependency, or unused`);
  return { violations, graph };
}

/** Strongly connected components with more than one node, or a node with an edge to itself. */
export function cycles(graph: ReadonlyMap<string, ReadonlySet<string>>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  let next = 0;
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const comp: string[] = [];
      for (;;) {
        const w = stack.pop()!;
        onStack.delete(w);
        comp.push(w);
        if (w === v) break;
      }
      if (comp.length > 1 || graph.get(v)?.has(v)) out.push(comp.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return out;
}

const C_KEYWORDS = new Set(['if', 'for', 'while', 'switch', 'return', 'sizeof', 'defined', 'do', 'else', 'case']);

/**
 * C: the `#include "..."` graph of the project's own .c and .h files, and the call graph between
 * translation units (a .c calling a non-static function another .c defines), each without cycles.
 */
export function cGraphs(tree: Tree): { includes: Map<string, Set<string>>; calls: Map<string, Set<string>> } {
  const files = [...tree.keys()].filter((p) => p.startsWith('src/') && /\.[ch]$/.test(p));
  const includes = new Map<string, Set<string>>();
  const definedIn = new Map<string, string>();
  const code = new Map<string, string>();
  for (const f of files) {
    const text = stripComments(tree.get(f)!);
    code.set(f, text);
    const inc = new Set<string>();
    for (const m of text.matchAll(/^\s*#\s*include\s+"([^"]+)"/gm)) {
      const target = posix.normalize(posix.join(posix.dirname(f), m[1]!));
      if (tree.has(target)) inc.add(target);
    }
    includes.set(f, inc);
    if (f.endsWith('.c'))
      for (const m of text.matchAll(/^(?!static\b)[A-Za-z_][\w \t*]*?\b([A-Za-z_]\w*)\s*\([^;{]*\)\s*\{/gm)) definedIn.set(m[1]!, f);
  }
  const calls = new Map<string, Set<string>>();
  for (const f of files.filter((p) => p.endsWith('.c'))) {
    const out = new Set<string>();
    for (const m of code.get(f)!.matchAll(/\b([A-Za-z_]\w*)\s*\(/g)) {
      const owner = definedIn.get(m[1]!);
      if (owner !== undefined && owner !== f && !C_KEYWORDS.has(m[1]!)) out.add(owner);
    }
    calls.set(f, out);
  }
  return { includes, calls };
}

/** Everything the architecture test asserts, as one list of problems (empty when the tree is right). */
export function checkTree(tree: Tree, pkg: PackageJson, scanned = ['src', 'lab', 'sim', 'bench', 'test']): string[] {
  const doc = tree.get('docs/ARCHITECTURE.md');
  if (doc === undefined) return ['docs/ARCHITECTURE.md is missing'];
  const rows = parseRules(doc);
  const { violations, graph } = checkImports(tree, rows, pkg, scanned);
  for (const c of cycles(graph)) violations.push(`import cycle: ${c.join(' → ')}`);
  const { includes, calls } = cGraphs(tree);
  for (const c of cycles(includes)) violations.push(`C include cycle: ${c.join(' → ')}`);
  for (const c of cycles(calls)) violations.push(`C call cycle between translation units: ${c.join(' ↔ ')}`);
  return violations;
}
