/**
 * One way to replace a file so that a crash leaves either the old or the new content, never a
 * mix: write a temp file beside it, fsync, rename over the target, fsync the directory.
 */
import { basename, dirname, join } from 'node:path';
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';

/**
 * Writes `data` to `path` atomically with `mode`. `exclusive`: fail if the temp file already
 * exists instead of truncating it. The temp file is removed when the write fails.
 */
export function writeFileAtomicSync(path: string, data: string | Uint8Array, mode: number, opts: { exclusive?: boolean } = {}): void {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.tmp-${process.pid}`);
  const fd = openSync(tmp, opts.exclusive === true ? 'wx' : 'w', mode);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
  closeSync(fd);
  try {
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  const d = openSync(dir, 'r');
  try {
    fsyncSync(d);
  } finally {
    closeSync(d);
  }
}
