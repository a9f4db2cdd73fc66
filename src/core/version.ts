/**
 * The release version: package.json's `version`, read once (at load) from the package root.
 *
 * It is for people and tools (`weft version`, status, logs, metrics, the Node annotation) and
 * never for peers: nothing on the wire carries or checks it. What peers do check is the protocol
 * versions (src/daemon/version-info.ts lists them); test/core/version.test.ts proves that no
 * module of the mesh, the data plane or IPAM can reach this file, so two releases mesh as long as
 * those numbers agree.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WeftError } from './errors.js';
import { packageRoot } from './paths.js';

function load(): { version: string } | { error: WeftError } {
  let file = 'package.json';
  try {
    file = join(packageRoot(import.meta.url), 'package.json');
    const v = (JSON.parse(readFileSync(file, 'utf8')) as { version?: unknown }).version;
    if (typeof v !== 'string' || v === '') return { error: new WeftError('ERR_VERSION', `${file} has no "version" string`) };
    return { version: v };
  } catch (err) {
    return { error: new WeftError('ERR_VERSION', `cannot read the weft version from ${file}: ${err instanceof Error ? err.message : String(err)}`, { cause: err }) };
  }
}

const LOADED = load();

/** The git commit of the build (`dist/build-info.json`, written by scripts/build-info.mjs), if one was recorded. */
function loadCommit(): string | undefined {
  try {
    const c = (JSON.parse(readFileSync(join(packageRoot(import.meta.url), 'dist', 'build-info.json'), 'utf8')) as { commit?: unknown }).commit;
    // Only what the build script writes: hex, maybe "-dirty"; anything else is not shown.
    return typeof c === 'string' && /^[0-9a-f]{7,40}(-dirty)?$/.test(c) ? c : undefined;
  } catch {
    return undefined;
  }
}

const COMMIT = loadCommit();

/** The release version (e.g. "0.1.0"); throws ERR_VERSION when package.json cannot be read. */
export function weftVersion(): string {
  if ('error' in LOADED) throw LOADED.error;
  return LOADED.version;
}

/** The git commit the build was made from (e.g. "99e6ff9452a2", "…-dirty"), or undefined when unknown. */
export function weftCommit(): string | undefined {
  return COMMIT;
}
