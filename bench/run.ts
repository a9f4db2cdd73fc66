/**
 * npm run bench: weft against kernel VXLAN (and later references) in one run, on the lab, under
 * flock /tmp/weft-bench.lock. Writes bench/results/<suite>-<date>.json and .md and prints both.
 *
 *   npm run bench -- [--runs N] [--seconds S] [--suite sleeve] [--br-netfilter] [--quick]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { packageRoot } from '../src/core/paths.js';
import { ensureBenchLock } from './lock.js';
import { runSleeveSuite } from './suites/sleeve.js';

ensureBenchLock();

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '8' },
    suite: { type: 'string', default: 'sleeve' },
    'br-netfilter': { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
  },
});

const runs = values.quick ? 1 : Number(values.runs);
const seconds = values.quick ? 4 : Number(values.seconds);
const date = new Date().toISOString();
const log = (line: string) => process.stderr.write(`${line}\n`);
const outDir = join(packageRoot(import.meta.url), 'bench', 'results');
mkdirSync(outDir, { recursive: true });
const machine = { kernel: release(), cpus: cpus().length, cpu: cpus()[0]?.model ?? '?', node: process.version };

if (values.suite === 'sleeve') {
  log(`sleeve suite: ${runs} run(s), ${seconds} s per throughput test, br_netfilter ${values['br-netfilter'] ? 'on' : 'off'}`);
  const r = await runSleeveSuite({ runs, seconds, brNetfilter: values['br-netfilter'], log });
  const stamp = date.slice(0, 10);
  const base = join(outDir, `sleeve-${stamp}${values['br-netfilter'] ? '-brnf' : ''}`);
  writeFileSync(`${base}.json`, JSON.stringify({ date, machine, runs, seconds, brNetfilter: values['br-netfilter'], ...r }, null, 2));
  const md = [
    `Measured ${date} on ${machine.cpus} vCPU (${machine.cpu}), kernel ${machine.kernel}, Node ${machine.node}; ` +
      `${runs} run(s), medians; ${seconds} s TCP tests; br_netfilter ${values['br-netfilter'] ? 'on' : 'off'}.`,
    '',
    r.markdown,
    '',
    ...r.goals.map((g) => `- ${g}`),
    '',
  ].join('\n');
  writeFileSync(`${base}.md`, md);
  process.stdout.write(`${md}\nwritten: ${base}.json, ${base}.md\n`);
} else {
  log(`unknown suite "${values.suite}" (known: sleeve)`);
  process.exit(2);
}
