#!/usr/bin/env node
// Writes dist/build-info.json: the git commit the build was made from (with "-dirty" when the
// work tree had changes), for `weft version`, status, the start log line and GET /v1/version.
// Outside a git checkout (a source tarball) the commit is unknown and the file says so with null.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));

function git(args) {
  return execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
}

let commit = null;
try {
  commit = git(['rev-parse', '--short=12', 'HEAD']);
  if (git(['status', '--porcelain', '--untracked-files=no']) !== '') commit += '-dirty';
} catch {
  commit = null;
}
mkdirSync(join(root, 'dist'), { recursive: true });
writeFileSync(join(root, 'dist', 'build-info.json'), `${JSON.stringify({ commit })}\n`);
