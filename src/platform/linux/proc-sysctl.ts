import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { WeftError } from '../../core/errors.js';
import type { Sysctl } from '../sysctl.js';

/** `Sysctl` on the files under /proc/sys (or another root, for tests). */
export class ProcSysctl implements Sysctl {
  private readonly root: string;

  constructor(init: { root?: string } = {}) {
    this.root = init.root ?? '/proc/sys';
  }

  private path(name: string): string {
    if (!/^[a-z0-9_-]+(\.[A-Za-z0-9_-]+)+$/.test(name)) throw new WeftError('ERR_SYSCTL', `"${name}" is not a sysctl name`);
    return join(this.root, ...name.split('.'));
  }

  async read(name: string): Promise<string | undefined> {
    try {
      return (await readFile(this.path(name), 'utf8')).trim();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new WeftError('ERR_SYSCTL', `cannot read ${name}: ${(err as Error).message}`, { cause: err });
    }
  }

  async write(name: string, value: string): Promise<void> {
    try {
      await writeFile(this.path(name), value);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'no such parameter in this kernel' : (err as Error).message;
      throw new WeftError('ERR_SYSCTL', `cannot set ${name} to ${value}: ${why}`, { cause: err });
    }
  }
}
