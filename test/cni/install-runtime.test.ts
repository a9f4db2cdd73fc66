/**
 * The Node plugin's runtime copy (install-runtime.ts), on a fake package and a fake Node: what is
 * copied (and only that), the same build reused, a new build in a new directory, older copies
 * and dead temp directories pruned, nothing else touched.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { installRuntime, pruneRuntimes } from '../../src/cni/install-runtime.js';
import { installCni } from '../../src/cni/install.js';
import { ConfigError } from '../../src/core/errors.js';

let dir: string;
let root: string;
let node: string;
let runtimes: string;

function put(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'weft-runtime-'));
  root = join(dir, 'pkg');
  node = join(dir, 'node');
  runtimes = join(dir, 'opt', 'weft');
  put(join(root, 'package.json'), '{"type":"module"}');
  put(join(root, 'binding.gyp'), '{}');
  put(join(root, 'build', 'Release', 'weft_native.node'), 'addon');
  put(join(root, 'build', 'weft-cni'), 'shim');
  put(join(root, 'dist', 'src', 'cni', 'main.js'), 'main');
  put(join(root, 'dist', 'src', 'cni', 'main.js.map'), 'map');
  put(join(root, 'dist', 'src', 'cni', 'main.d.ts'), 'types');
  put(join(root, 'dist', 'lab', 'lab.js'), 'lab');
  put(join(root, 'node_modules', 'x', 'index.js'), 'x');
  put(node, 'node binary');
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

function tree(d: string, base = d): string[] {
  return readdirSync(d, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? tree(join(d, e.name), base) : [join(d, e.name).slice(base.length + 1)]))
    .sort();
}

describe('installRuntime', () => {
  it('copies Node, the package marks, the addon and the .js of dist/src, nothing else', () => {
    const r = installRuntime(runtimes, root, node);
    expect(r.copied).toBe(true);
    expect(r.nodePath).toBe(join(r.dir, 'bin', 'node'));
    expect(r.pluginMain).toBe(join(r.dir, 'dist', 'src', 'cni', 'main.js'));
    expect(tree(r.dir)).toEqual(['.complete', 'bin/node', 'binding.gyp', 'build/Release/weft_native.node', 'dist/src/cni/main.js', 'package.json']);
    expect(readFileSync(r.nodePath, 'utf8')).toBe('node binary');
    expect(readdirSync(runtimes)).toEqual([r.dir.slice(runtimes.length + 1)]);
  });

  it('reuses the copy of the same build; a changed file makes a new one', () => {
    const a = installRuntime(runtimes, root, node);
    const again = installRuntime(runtimes, root, node);
    expect(again).toEqual({ ...a, copied: false });
    put(join(root, 'dist', 'src', 'cni', 'main.js'), 'main, rebuilt');
    const b = installRuntime(runtimes, root, node);
    expect(b.copied).toBe(true);
    expect(b.dir).not.toBe(a.dir);
    expect(readFileSync(b.pluginMain, 'utf8')).toBe('main, rebuilt');
  });

  it('a copy without its completion mark (an install that died) is made again', () => {
    const a = installRuntime(runtimes, root, node);
    rmSync(join(a.dir, '.complete'));
    rmSync(a.pluginMain);
    expect(installRuntime(runtimes, root, node).copied).toBe(true);
    expect(existsSync(a.pluginMain)).toBe(true);
  });

  it('pruneRuntimes removes older copies and dead temp dirs, and nothing else', () => {
    const old = installRuntime(runtimes, root, node);
    put(join(root, 'binding.gyp'), '{"changed":1}');
    const now = installRuntime(runtimes, root, node);
    mkdirSync(join(runtimes, '.0123456789abcdef.tmp-42'));
    put(join(runtimes, 'README'), 'keep me');
    mkdirSync(join(runtimes, 'other'));
    expect(pruneRuntimes(runtimes, now.dir).sort()).toEqual([join(runtimes, '.0123456789abcdef.tmp-42'), old.dir].sort());
    expect(readdirSync(runtimes).sort()).toEqual(['README', now.dir.slice(runtimes.length + 1), 'other'].sort());
  });
});

describe('installCni with runtimeDir', () => {
  it('refuses runtimeDir with pluginMain, and a relative runtimeDir', () => {
    expect(() => installCni({ runtimeDir: runtimes, pluginMain: join(root, 'dist', 'src', 'cni', 'main.js'), binDir: join(dir, 'bin'), confDir: join(dir, 'conf') })).toThrow(ConfigError);
    expect(() => installCni({ runtimeDir: 'opt/weft', binDir: join(dir, 'bin'), confDir: join(dir, 'conf') })).toThrow(/runtimeDir must be an absolute path/);
    expect(existsSync(join(dir, 'bin'))).toBe(false);
  });
});
