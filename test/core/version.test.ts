/**
 * The release version: read from package.json, and out of reach of everything peers check. The
 * second test is the static proof that peers of different releases interoperate: no module of
 * the mesh, the data plane, IPAM or the platform imports src/core/version.ts, directly or through
 * others, so a changed package.json version cannot change a preamble, a HELLO, a record, a ring
 * or a datagram (test/integration/metrics.test.ts also meshes two routers of different releases).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, posix, relative, sep } from 'node:path';
import { describe, expect, it } from 'vitest';
import { weftVersion } from '../../src/core/version.js';
import { importsOf } from '../architecture/check.js';

const ROOT = process.cwd();

function sources(): Map<string, string> {
  const tree = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir)) {
      const p = join(dir, e);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith('.ts')) tree.set(relative(ROOT, p).split(sep).join('/'), readFileSync(p, 'utf8'));
    }
  };
  walk(join(ROOT, 'src'));
  return tree;
}

/** Every src module `from` reaches through relative imports (itself included). */
function reach(tree: Map<string, string>, from: string): Set<string> {
  const seen = new Set<string>();
  const todo = [from];
  while (todo.length > 0) {
    const f = todo.pop()!;
    if (seen.has(f) || !tree.has(f)) continue;
    seen.add(f);
    for (const spec of importsOf(tree.get(f)!)) {
      if (!spec.startsWith('.')) continue;
      const raw = posix.normalize(posix.join(posix.dirname(f), spec));
      todo.push(...[raw.replace(/\.js$/, '.ts'), `${raw}/index.ts`].filter((c) => tree.has(c)));
    }
  }
  return seen;
}

describe('weftVersion', () => {
  it("is package.json's version", () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(weftVersion()).toBe(pkg.version);
    expect(weftVersion()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('no module of what peers check (mesh, router, ipam, platform) can reach it', () => {
    const tree = sources();
    const wire = [...tree.keys()].filter((p) => /^src\/(mesh|router|ipam|platform)\//.test(p));
    expect(wire.length).toBeGreaterThan(50);
    const reaching = wire.filter((f) => reach(tree, f).has('src/core/version.ts'));
    expect(reaching).toEqual([]);
    // The walk does find an import of it where there is one.
    expect(reach(tree, 'src/daemon/version-info.ts').has('src/core/version.ts')).toBe(true);
    expect(reach(tree, 'src/daemon/daemon.ts').has('src/core/version.ts')).toBe(true);
  });
});
