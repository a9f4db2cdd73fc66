import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WeftError } from './errors.js';

/** The weft package root (the directory holding binding.gyp), found from a module's URL, in src or dist. */
export function packageRoot(fromUrl: string): string {
  let dir = dirname(fileURLToPath(fromUrl));
  for (let i = 0; i < 8; i++) {
    if (existsSync(join(dir, 'binding.gyp'))) return dir;
    dir = dirname(dir);
  }
  throw new WeftError('ERR_PACKAGE_ROOT', `cannot find the weft package root (binding.gyp) above ${fileURLToPath(fromUrl)}`);
}
