/**
 * The dependency table of docs/ARCHITECTURE.md against the whole tree (src, lab, sim, bench,
 * test; TypeScript and C), and the same rules against a small fake tree that breaks each one.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkTree, importsOf, parseRules, type PackageJson, type Tree } from './architecture/check.js';

const ROOT = process.cwd();

function readTree(): Tree {
  const tree = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir)) {
      const p = join(dir, e);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.(ts|c|h|md)$/.test(p)) tree.set(relative(ROOT, p).split(sep).join('/'), readFileSync(p, 'utf8'));
    }
  };
  for (const d of ['src', 'lab', 'sim', 'bench', 'test', 'docs']) walk(join(ROOT, d));
  return tree;
}

const DOC = (rows: string) => `# fake\n\n## What each folder may import\n\n| folder | floor | may import | packages |\n|---|---|---|---|\n${rows}\n## Next\n`;

/** A tree that follows its own table: each case below breaks it in one way. */
function fakeTree(): Map<string, string> {
  return new Map([
    [
      'docs/ARCHITECTURE.md',
      DOC(
        [
          '| `src/core` | 0 | – | – |',
          '| `src/mesh` | 2 | `src/core` | `msgpackr` |',
          '| `src/router` | 3 | `src/core`, `src/mesh/contracts.ts` | – |',
          '| `test` | dev | `src/*` | `vitest` |',
        ].join('\n'),
      ),
    ],
    ['src/core/errors.ts', 'export class E extends Error {}\n'],
    ['src/mesh/contracts.ts', "import { E } from '../core/errors.js';\nexport type C = E;\n"],
    ['src/mesh/topology.ts', "import { pack } from 'msgpackr';\nimport type { C } from './contracts.js';\nexport const t = (c: C) => pack(c);\n"],
    ['src/router/switch.ts', "import type { C } from '../mesh/contracts.js';\nimport { E } from '../core/errors.js';\nexport const s = (c: C) => new E(String(c));\n"],
    ['test/switch.test.ts', "import { it } from 'vitest';\nimport { s } from '../src/router/switch.js';\nit('runs', () => s(1));\n"],
    ['src/platform/linux/native/tap.c', '#include "util.h"\nint tap_open(void) { return util_fd(); }\n'],
    ['src/platform/linux/native/util.c', '#include "util.h"\nint util_fd(void) { return 3; }\n'],
    ['src/platform/linux/native/util.h', 'int util_fd(void);\n'],
  ]);
}
const FAKE_PKG: PackageJson = { dependencies: { msgpackr: '1' }, devDependencies: { vitest: '1' } };

describe('architecture', () => {
  it('the repo follows docs/ARCHITECTURE.md: the table, exactly; packages; no cycles in TypeScript or C', () => {
    const tree = readTree();
    expect([...tree.keys()].filter((p) => p.endsWith('.ts')).length).toBeGreaterThan(200);
    expect(parseRules(tree.get('docs/ARCHITECTURE.md')!).length).toBeGreaterThan(10);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as PackageJson;
    expect(checkTree(tree, pkg)).toEqual([]);
  });

  it('reads imports of every form, and none from comments', () => {
    const text = [
      "import { a } from './a.js';",
      "import type { B } from '../b.js';",
      "export * from './c.js';",
      'export {',
      '  d,',
      "} from './d.js';",
      "import './side.js';",
      // Split so this file's own scan does not read it as an import.
      'const m = await imp' + "ort('@scope/pkg/sub');",
      "// import { x } from './commented.js';",
      "/** import { y } from './doc.js'; */",
      "const s = 'import { z } from \"./string.js\"';",
      "export const f = (x: string[]) => Array.from(x);",
    ].join('\n');
    expect(importsOf(text)).toEqual(['./a.js', '../b.js', './c.js', './d.js', './side.js', '@scope/pkg/sub']);
  });

  it('self-check: the fake tree passes as it is', () => {
    expect(checkTree(fakeTree(), FAKE_PKG)).toEqual([]);
  });

  // Each case breaks one rule of the fake tree and names the problem the check must report.
  const cases: [string, (t: Map<string, string>, pkg: PackageJson) => void, RegExp][] = [
    ['a lower floor importing a higher one', (t) => t.set('src/core/ids.ts', "import { t } from '../mesh/topology.js';\nexport const i = t;\n"), /src\/core\/ids\.ts \(src\/core\) imports src\/mesh\/topology\.ts/],
    ['a folder importing a file its row does not name', (t) => t.set('src/router/peer.ts', "import { t } from '../mesh/topology.js';\nexport const p = t;\n"), /src\/router\/peer\.ts \(src\/router\) imports src\/mesh\/topology\.ts/],
    ['a package the row does not name', (t) => t.set('src/router/x.ts', "import { pack } from 'msgpackr';\nexport const x = pack;\n"), /src\/router\/x\.ts \(src\/router\) imports package msgpackr/],
    ['shipped code importing test code', (t) => t.set('src/mesh/y.ts', "import { s } from '../../test/helper.js';\nexport const y = s;\n"), /src\/mesh\/y\.ts \(src\/mesh\) imports test\/helper\.ts/],
    ['shipped code importing a devDependency', (t) => t.set('docs/ARCHITECTURE.md', t.get('docs/ARCHITECTURE.md')!.replace('| `src/core` | `msgpackr` |', '| `src/core` | `msgpackr`, `vitest` |')).set('src/mesh/z.ts', "import { it } from 'vitest';\nexport const z = it;\n"), /src\/mesh\/z\.ts imports vitest, which is not in package.json "dependencies"/],
    ['a dependency nothing shipped imports', (_t, pkg) => (pkg.dependencies!['@grpc/grpc-js'] = '1'), /"dependencies" lists @grpc\/grpc-js, but nothing under src\/ imports it/],
    ['a table entry nothing uses', (t) => t.set('docs/ARCHITECTURE.md', t.get('docs/ARCHITECTURE.md')!.replace('| `src/core`, `src/mesh/contracts.ts` |', '| `src/core`, `src/mesh/contracts.ts`, `src/mesh/topology.ts` |')), /the row of src\/router names src\/mesh\/topology\.ts, but nothing there imports it/],
    ['a folder without a row', (t) => t.set('src/k8s/watch.ts', 'export const w = 1;\n'), /src\/k8s\/watch\.ts: its folder has no row/],
    ['an import cycle', (t) => t.set('src/mesh/a.ts', "import { b } from './b.js';\nexport const a = () => b;\n").set('src/mesh/b.ts', "import { a } from './a.js';\nexport const b = () => a;\n"), /import cycle: src\/mesh\/a\.ts → src\/mesh\/b\.ts/],
    ['a type-only import cycle', (t) => t.set('src/mesh/contracts.ts', "import { E } from '../core/errors.js';\nimport type { t } from './topology.js';\nexport type C = E | typeof t;\n"), /import cycle: src\/mesh\/contracts\.ts → src\/mesh\/topology\.ts/],
    ['a C include cycle', (t) => t.set('src/platform/linux/native/util.h', '#include "tap.h"\nint util_fd(void);\n').set('src/platform/linux/native/tap.h', '#include "util.h"\nint tap_open(void);\n'), /C include cycle: src\/platform\/linux\/native\/tap\.h → src\/platform\/linux\/native\/util\.h/],
    ['C translation units calling each other', (t) => t.set('src/platform/linux/native/util.c', '#include "util.h"\nint tap_open(void);\nint util_fd(void) { return tap_open(); }\n'), /C call cycle between translation units: src\/platform\/linux\/native\/tap\.c ↔ src\/platform\/linux\/native\/util\.c/],
  ];
  it.each(cases)('self-check: %s is reported', (_name, breakIt, want) => {
    const tree = fakeTree();
    const pkg = structuredClone(FAKE_PKG);
    breakIt(tree, pkg);
    const problems = checkTree(tree, pkg);
    expect(problems.some((p) => want.test(p)), `got: ${problems.join('\n')}`).toBe(true);
  });
});
