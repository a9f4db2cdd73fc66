/**
 * One way to replace a file so that a crash leaves either the old or the new content, never a
 * mix: write a temp file beside it, fsync, rename over the target, fsync the directory.
 *
 * Every byte is written: write(2) may take fewer bytes than asked (a nearly full disk takes what
 * fits), so the write loops until all are in or a call fails. Any failure (ENOSPC, EDQUOT, EIO,
 * ...) throws a FileWriteError naming the target and the errno; the target keeps its old content
 * and the temp file is removed. Temp files are `.<name>.tmp-<pid>-<random>`, created exclusively:
 * one left by a crashed writer never blocks a later write nor mixes into it, and
 * `removeLeftoverTemps` clears those whose writer is gone.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, linkSync, openSync, readdirSync, renameSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { FileWriteError } from './errors.js';

export interface AtomicWriteOptions {
  /** Create only: fail (FileWriteError, errnoName 'EEXIST') when `path` exists instead of replacing it. */
  exclusive?: boolean;
}

function tempPrefix(path: string): string {
  return `.${basename(path)}.tmp-`;
}

function errnoError(code: string, text: string, syscall: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${text}, ${syscall}`), { code, syscall });
}

/** Writes `data` to `path` atomically with `mode` (see the file comment for the guarantees). */
export function writeFileAtomicSync(path: string, data: string | Uint8Array, mode: number, opts: AtomicWriteOptions = {}): void {
  const dir = dirname(path);
  const tmp = join(dir, `${tempPrefix(path)}${process.pid}-${randomBytes(4).toString('hex')}`);
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  let fd: number;
  try {
    fd = openSync(tmp, 'wx', mode);
  } catch (err) {
    throw new FileWriteError(path, 'open', err);
  }
  let step = 'write';
  try {
    for (let off = 0; off < bytes.length; ) {
      const n = writeSync(fd, bytes, off, bytes.length - off);
      if (!(n > 0)) throw errnoError('EIO', `write made no progress at byte ${off} of ${bytes.length}`, 'write');
      off += n;
    }
    step = 'fsync';
    fsyncSync(fd);
    step = 'close';
    const f = fd;
    fd = -1;
    closeSync(f);
    step = opts.exclusive === true ? 'link' : 'rename';
    if (opts.exclusive === true) publishNew(tmp, path);
    else renameSync(tmp, path);
  } catch (err) {
    if (fd >= 0) {
      try {
        closeSync(fd);
      } catch {
        // the write already failed; that is the error to report
      }
    }
    removeQuietly(tmp);
    throw err instanceof FileWriteError ? err : new FileWriteError(path, step, err);
  }
  if (opts.exclusive === true) removeQuietly(tmp); // the target is a second link to it
  let d = -1;
  try {
    d = openSync(dir, 'r');
    fsyncSync(d);
  } catch (err) {
    throw new FileWriteError(path, 'fsync (directory)', err);
  } finally {
    if (d >= 0) closeSync(d);
  }
}

/** link(2) never replaces; a file system without hard links gets a check and a rename. */
function publishNew(tmp: string, path: string): void {
  try {
    linkSync(tmp, path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw err;
    if (existsSync(path)) throw errnoError('EEXIST', 'file already exists', 'link');
    renameSync(tmp, path);
  }
}

function removeQuietly(file: string): void {
  try {
    rmSync(file, { force: true });
  } catch {
    // nothing more to do; a leftover is cleared by removeLeftoverTemps
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the temp files of `path` whose writer is gone (a crash or power loss mid-write), and
 * those of this process (its writes are synchronous, so none is in progress). Returns their names.
 */
export function removeLeftoverTemps(path: string): string[] {
  const dir = dirname(path);
  const prefix = tempPrefix(path);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const n of names) {
    if (!n.startsWith(prefix)) continue;
    const m = /^(\d+)(?:-[0-9a-f]+)?$/.exec(n.slice(prefix.length));
    if (m === null) continue;
    const pid = Number(m[1]);
    if (pid !== process.pid && pid > 0 && alive(pid)) continue;
    try {
      unlinkSync(join(dir, n));
      removed.push(n);
    } catch {
      // gone already, or not ours to remove
    }
  }
  return removed;
}
