/**
 * The plugin's entry must start fast: everything it loads, transitively, is src/cni plus a few small
 * files of src/core, src/api and src/platform (no router, gossip, daemon, Kubernetes, native addon, and no
 * package from node_modules).
 */
import { readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(process.cwd());

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const re = /(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;
  const out: string[] = [];
  for (let m = re.exec(text); m !== null; m = re.exec(text)) out.push((m[1] ?? m[2])!);
  return out;
}

function closure(entry: string): { files: string[]; packages: string[] } {
  const seen = new Set<string>();
  const packages = new Set<string>();
  const todo = [resolve(ROOT, entry)];
  while (todo.length > 0) {
    const f = todo.pop()!;
    if (seen.has(f)) continue;
    seen.add(f);
    for (const spec of importsOf(f)) {
      if (spec.startsWith('node:')) continue;
      if (!spec.startsWith('.')) packages.add(spec);
      else todo.push(resolve(dirname(f), spec).replace(/\.js$/, '.ts'));
    }
  }
  return { files: [...seen].map((f) => relative(ROOT, f)).sort(), packages: [...packages] };
}

describe('src/cni/main.ts import closure', () => {
  it('stays within src/cni and small core/platform files, with no packages', () => {
    const { files, packages } = closure('src/cni/main.ts');
    expect(packages).toEqual([]);
    const outside = files.filter((f) => !f.startsWith('src/cni/'));
    expect(outside.sort()).toEqual([
      'src/api/client.ts',
      'src/api/errors.ts',
      'src/api/paths.ts',
      'src/api/pod-identity.ts',
      'src/api/release-journal.ts',
      'src/api/types.ts',
      'src/core/atomic-file.ts',
      'src/core/dns-names.ts',
      'src/core/errors.ts',
      'src/core/mac.ts', // (MAC bytes to text for veth.ts and rtnl.ts: 50 lines, no imports)
      'src/core/net.ts', // (rtnl.ts prints IPv6 addresses as ip does: 100 lines, node:net only)
      'src/core/paths.ts',
      'src/platform/errors.ts',
      'src/platform/linux/native.ts',
      'src/platform/linux/rtnl.ts',
      'src/platform/linux/run.ts',
    ]);
    expect(files).not.toContain('src/cni/install.ts');
  });
});
