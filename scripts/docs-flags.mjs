// Rewrites README.md's table of `weft launch` flags from src/daemon/options.ts (through the build
// in dist/). Run as `npm run docs:flags`.
import { readFileSync, writeFileSync } from 'node:fs';
import { stdout } from 'node:process';
import { URL } from 'node:url';
import { withFlagTable } from '../dist/src/daemon/flag-table.js';

const readme = new URL('../README.md', import.meta.url);
const before = readFileSync(readme, 'utf8');
const after = withFlagTable(before);
if (after !== before) writeFileSync(readme, after);
stdout.write(after === before ? 'README.md: the flag table is up to date\n' : 'README.md: flag table rewritten\n');
