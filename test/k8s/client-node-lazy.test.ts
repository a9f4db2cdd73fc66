/**
 * `@kubernetes/client-node` costs a router ~50 MB and 0.5 s: only src/k8s/client-node.ts may load
 * it, and only when asked (Kubernetes mode). Every other file under src/ imports its types only.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? tsFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

describe('the Kubernetes client library is loaded lazily', () => {
  it('no file under src/ but src/k8s/client-node.ts imports a value from @kubernetes/client-node', () => {
    const offenders = tsFiles('src')
      .filter((f) => f !== join('src', 'k8s', 'client-node.ts'))
      .filter((f) => {
        const text = readFileSync(f, 'utf8');
        // A static import that is not `import type`, a dynamic import, or a require of the package.
        return /^import (?!type )[^;]*from '@kubernetes\/client-node'/m.test(text) || /(import|require)\(\s*'@kubernetes\/client-node'/.test(text);
      });
    expect(offenders).toEqual([]);
  });

  it('the daemon awaits the library before Kubernetes mode starts', () => {
    expect(readFileSync(join('src', 'daemon', 'daemon.ts'), 'utf8')).toMatch(/if \(c\.kubernetes !== undefined\) await loadClientNode\(\);/);
  });
});
