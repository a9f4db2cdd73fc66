import { execFile } from 'node:child_process';
import { CommandError } from '../errors.js';

/** Runs a program without a shell; rejects with a CommandError naming the command and its stderr. */
export function run(file: string, args: readonly string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { timeout: opts.timeoutMs ?? 10_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) {
        const code = typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : null;
        const detail = (err as { code?: unknown }).code === 'ENOENT' ? `${file} is not installed (ENOENT)` : stderr || err.message;
        reject(new CommandError([file, ...args].join(' '), detail, code));
        return;
      }
      resolve(stdout);
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}
