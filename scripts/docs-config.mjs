// Rewrites docs/weft-config.schema.json and README.md's config file example from
// src/daemon/options.ts (through the build in dist/). Run as `npm run docs:config`.
import { readFileSync, writeFileSync } from 'node:fs';
import { stdout } from 'node:process';
import { URL } from 'node:url';
import { configSchemaJson, withConfigExample } from '../dist/src/daemon/config-schema.js';

function rewrite(url, make, what) {
  let before = '';
  try {
    before = readFileSync(url, 'utf8');
  } catch {
    // a missing file is written
  }
  const after = make(before);
  if (after !== before) writeFileSync(url, after);
  stdout.write(after === before ? `${what} is up to date\n` : `${what} rewritten\n`);
}

rewrite(new URL('../docs/weft-config.schema.json', import.meta.url), () => configSchemaJson(), 'docs/weft-config.schema.json');
rewrite(new URL('../README.md', import.meta.url), withConfigExample, "README.md's config file example");
