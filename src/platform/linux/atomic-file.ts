/**
 * A file replaced atomically and durably: temporary file beside it, fsync, rename, fsync of the
 * directory, all in one job on the thread pool (native/file.c) rather than one per system call,
 * so a write on a busy event loop waits once, not at every step. The directory is made first
 * when it is missing.
 */
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { FileWriteError } from '../../core/errors.js';
import { loadNative } from './native.js';

interface FileNative {
  atomicWrite(path: string, data: Uint8Array, mode: number, cb: (r: { errno: number; code: string; syscall: string; message: string }) => void): void;
}

function once(path: string, data: Uint8Array, mode: number): Promise<void> {
  return new Promise((resolve, reject) => {
    (loadNative() as unknown as FileNative).atomicWrite(path, data, mode, (r) => {
      if (r.errno === 0) resolve();
      else reject(new FileWriteError(path, r.syscall, Object.assign(new Error(r.message), { code: r.code, errno: r.errno })));
    });
  });
}

/** Replaces `path` with `data` (created with `mode`); rejects with a FileWriteError naming the call that failed. */
export async function atomicWriteFile(path: string, data: Uint8Array, mode = 0o600): Promise<void> {
  try {
    await once(path, data, mode);
  } catch (err) {
    if (!(err instanceof FileWriteError) || err.errnoName !== 'ENOENT' || err.syscall !== 'open') throw err;
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    await once(path, data, mode);
  }
}
