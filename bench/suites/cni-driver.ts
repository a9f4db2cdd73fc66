/**
 * Runs inside a lab node's namespace (`ip netns exec NODE node dist/bench/suites/cni-driver.js
 * ARGS_JSON`) and times CNI plugins the way a runtime runs them: one process per call, config on
 * stdin, CNI_* in the environment. For each round and each variant, in alternating order: a
 * fresh pod netns (not timed), ADD (timed), DEL (timed), the netns removed. Prints JSON:
 * { variant: { add: ms[], del: ms[] } }.
 */
import { spawnSync } from 'node:child_process';

interface Variant {
  name: string;
  /** The executable (a plugin binary or weft's wrapper). */
  plugin: string;
  cniPath: string;
  config: object;
}

interface Args {
  prefix: string;
  rounds: number;
  variants: Variant[];
}

const args = JSON.parse(process.argv[2] ?? '{}') as Args;

function sh(cmd: string, argv: string[]): void {
  const r = spawnSync(cmd, argv, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')}: ${r.stderr}`);
}

function call(v: Variant, command: 'ADD' | 'DEL', containerId: string, netns: string, prevResult?: object): { ms: number; out: string } {
  const stdin = JSON.stringify(prevResult === undefined ? v.config : { ...v.config, prevResult });
  const env = { CNI_COMMAND: command, CNI_CONTAINERID: containerId, CNI_NETNS: netns, CNI_IFNAME: 'eth0', CNI_PATH: v.cniPath };
  const t = process.hrtime.bigint();
  const r = spawnSync(v.plugin, [], { input: stdin, env, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  if (r.status !== 0) throw new Error(`${v.name} ${command} failed (${r.status}): ${r.stdout} ${r.stderr}`);
  return { ms, out: r.stdout };
}

const results: Record<string, { add: number[]; del: number[] }> = {};
for (const v of args.variants) results[v.name] = { add: [], del: [] };
for (let round = 0; round < args.rounds; round++) {
  const order = round % 2 === 0 ? args.variants : [...args.variants].reverse();
  for (const v of order) {
    const ns = `${args.prefix}-cb${round}`;
    sh('ip', ['netns', 'add', ns]);
    try {
      const id = `bench-${v.name.replace(/[^A-Za-z0-9]/g, "-")}-${round}`;
      const add = call(v, 'ADD', id, `/var/run/netns/${ns}`);
      results[v.name]!.add.push(add.ms);
      const del = call(v, 'DEL', id, `/var/run/netns/${ns}`, JSON.parse(add.out) as object);
      results[v.name]!.del.push(del.ms);
    } finally {
      sh('ip', ['netns', 'del', ns]);
    }
  }
}
process.stdout.write(JSON.stringify(results));
