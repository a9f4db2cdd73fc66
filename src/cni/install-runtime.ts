/**
 * The Node plugin's own copy of what it runs on, for a plugin installed from a container onto its
 * host (deploy/'s init container): the runtime executes `weft-node` on the host, where the
 * image's Node and files do not exist. Copied into `<dir>/<id>/`: `bin/node` (this Node), the
 * package's `package.json` (ESM) and `binding.gyp` (the package root's mark), the addon
 * `build/Release/weft_native.node` and the built code `dist/src` (.js only). The plugin imports no
 * package, so nothing of node_modules is needed.
 *
 * `<id>` is a hash of every byte copied: an install of the same build reuses the directory, a new
 * build gets a new one. The copy is made in a temp directory beside it, every file fsynced, then
 * renamed into place, so a wrapper never names a partial copy; older copies are removed by
 * `pruneRuntimes` once the wrapper names the new one.
 */
import { createHash } from 'node:crypto';
import { closeSync, copyFileSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { FileWriteError } from '../core/errors.js';

export interface InstalledRuntime {
  /** `<dir>/<id>`. */
  dir: string;
  nodePath: string;
  pluginMain: string;
  /** Whether this call copied it (false: the same build was there already). */
  copied: boolean;
}

/** Marks a finished copy (written last, before the rename). */
const COMPLETE = '.complete';
const ID = /^[0-9a-f]{16}$/;

/** Every .js file under `dir`, as paths relative to `root`, sorted. */
function jsFiles(root: string, dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...jsFiles(root, p));
    else if (e.isFile() && e.name.endsWith('.js')) out.push(relative(root, p));
  }
  return out.sort();
}

function fsyncPath(path: string, flags: 'r' | 'r+'): void {
  const fd = openSync(path, flags);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Copies the plugin's runtime from the package at `root` (and the Node at `nodePath`) into a
 * directory under `dir`, unless the same build is there already. Throws a FileWriteError naming
 * the file that could not be copied; nothing partial is left under its final name.
 */
export function installRuntime(dir: string, root: string, nodePath: string): InstalledRuntime {
  const files = ['package.json', 'binding.gyp', join('build', 'Release', 'weft_native.node'), ...jsFiles(root, join(root, 'dist', 'src'))];
  const hash = createHash('sha256').update(readFileSync(nodePath));
  for (const f of files) hash.update(`\0${f}\0`).update(readFileSync(join(root, f)));
  const id = hash.digest('hex').slice(0, 16);
  const target = join(dir, id);
  const result = { dir: target, nodePath: join(target, 'bin', 'node'), pluginMain: join(target, 'dist', 'src', 'cni', 'main.js') };
  if (existsSync(join(target, COMPLETE))) return { ...result, copied: false };
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const staging = join(dir, `.${id}.tmp-${process.pid}`);
  rmSync(staging, { recursive: true, force: true });
  const copy = (from: string, to: string): void => {
    try {
      mkdirSync(dirname(to), { recursive: true, mode: 0o755 });
      copyFileSync(from, to);
      fsyncPath(to, 'r+');
    } catch (err) {
      throw new FileWriteError(to, 'copy', err);
    }
  };
  try {
    copy(nodePath, join(staging, 'bin', 'node'));
    for (const f of files) copy(join(root, f), join(staging, f));
    copy(join(root, 'package.json'), join(staging, COMPLETE));
    // A copy already in place (a concurrent install of the same build) is as good as ours.
    rmSync(target, { recursive: true, force: true });
    renameSync(staging, target);
    fsyncPath(dir, 'r');
  } catch (err) {
    rmSync(staging, { recursive: true, force: true });
    throw err instanceof FileWriteError ? err : new FileWriteError(target, 'rename', err);
  }
  return { ...result, copied: true };
}

/** Removes every copy under `dir` but `keep` (older builds, and temp dirs of installs that died); returns what it removed. */
export function pruneRuntimes(dir: string, keep: string): string[] {
  const removed: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (p === keep || !(ID.test(name) || /^\.[0-9a-f]{16}\.tmp-\d+$/.test(name)) || !statSync(p).isDirectory()) continue;
    rmSync(p, { recursive: true, force: true });
    removed.push(p);
  }
  return removed;
}
