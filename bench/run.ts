/**
 * npm run bench: weft against kernel VXLAN (and later references) in one run, on the lab, under
 * flock /tmp/weft-bench.lock. Writes bench/results/<suite>-<date>.json and .md (-2, -3… when that
 * day already has them) and prints both.
 *
 *   WEFT_SIM_PEERS / WEFT_SIM_OPERATIONS size the ipam-sim suite (default 1,000 / 100,000).
 *   npm run bench -- [--runs N] [--seconds S] [--suite all|sleeve|mesh|fastpath|gossip|ipam|ipam-sim|cni|kubernetes|policy|nat] [--br-netfilter] [--quick] [--fresh-identity] [--load-rounds N] [--no-peers]
 *   (bench/args.ts: runs default to 3, 20 for kubernetes and policy; --quick 1, 3 for kubernetes and policy)
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../src/core/paths.js';
import { BENCH_USAGE, parseBenchArgs, type BenchArgs } from './args.js';
import { ensureBenchLock } from './lock.js';
import { runSleeveSuite } from './suites/sleeve.js';
import { runMeshSuite } from './suites/mesh.js';
import { runGossipSim } from '../sim/gossip-sim.js';
import { runFastPathSuite } from './suites/fastpath.js';
import { runIpamSuite } from './suites/ipam.js';
import { runIpamSim } from '../sim/ipam-sim.js';
import { runCniSuite } from './suites/cni.js';
import { runKubernetesSuite } from './suites/kubernetes.js';
import { runPolicySuite } from './suites/policy.js';
import { runNatSuite } from './suites/nat.js';

let args: BenchArgs;
try {
  args = parseBenchArgs(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`bench: ${(err as Error).message}\n${BENCH_USAGE}\n`);
  process.exit(2);
}

ensureBenchLock();
// On Ctrl-C or SIGTERM, exit through process.exit so every lab's exit hook removes its namespaces
// and stops the processes it started.
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    process.stderr.write(`bench: ${sig}, tearing the lab down\n`);
    process.exit(130);
  });
}

const { seconds } = args;
const date = new Date().toISOString();
const log = (line: string) => process.stderr.write(`${line}\n`);
const outDir = join(packageRoot(import.meta.url), 'bench', 'results');
mkdirSync(outDir, { recursive: true });
const machine = { kernel: release(), cpus: cpus().length, cpu: cpus()[0]?.model ?? '?', node: process.version };

const stamp = date.slice(0, 10);
const header = `Measured ${date} on ${machine.cpus} vCPU (${machine.cpu}), kernel ${machine.kernel}, Node ${machine.node}`;

/** bench/results/<name>-<date>, or -2, -3… after it when a run of that day is already there (never written over). */
function freeBase(name: string): string {
  let base = join(outDir, `${name}-${stamp}`);
  for (let i = 2; existsSync(`${base}.json`) || existsSync(`${base}.md`); i++) base = join(outDir, `${name}-${stamp}-${i}`);
  return base;
}

function write(name: string, runs: number, json: object, md: string): void {
  const base = freeBase(name);
  writeFileSync(`${base}.json`, JSON.stringify({ date, machine, runs, seconds, ...json }, null, 2));
  writeFileSync(`${base}.md`, md);
  process.stdout.write(`${md}\nwritten: ${base}.json, ${base}.md\n\n`);
}

for (const suite of args.suites) {
  const runs = args.runsOf(suite);
  const brNetfilter = args.brNetfilter;
  if (suite === 'sleeve') {
    log(`sleeve suite: ${runs} run(s), ${seconds} s per throughput test, br_netfilter ${brNetfilter ? 'on' : 'off'}`);
    const r = await runSleeveSuite({ runs, seconds, brNetfilter, peers: args.peers, log });
    const md = [
      `${header}; ${runs} run(s), medians; ${seconds} s TCP tests; br_netfilter ${brNetfilter ? 'on' : 'off'}.`,
      '',
      r.markdown,
      '',
      ...r.notes.map((n) => `- ${n}`),
      '',
      'Reordering, loss and duplicates under 4 TCP streams (medians of the runs; bench/nstat.ts says which counters):',
      '',
      r.qualityMarkdown,
      '',
      ...r.goals.map((g) => `- ${g}`),
      '',
    ].join('\n');
    write(`sleeve${brNetfilter ? '-brnf' : ''}`, runs, { brNetfilter, ...r }, md);
  } else if (suite === 'mesh') {
    log(`mesh suite: ${runs} run(s), ${seconds} s per TCP test`);
    const r = await runMeshSuite({ runs, seconds, log });
    const md = [`${header}; ${runs} run(s), medians; ${seconds} s TCP tests.`, '', r.markdown, '', ...r.goals.map((g) => `- ${g}`), ''].join('\n');
    write('mesh', runs, r.json, md);
  } else if (suite === 'fastpath') {
    log(`fastpath suite: ${runs} run(s), ${seconds} s per TCP test`);
    const r = await runFastPathSuite({ runs, seconds, log });
    const md = [`${header}; ${runs} run(s), medians; ${seconds} s TCP tests.`, '', r.markdown, '', ...r.goals.map((g) => `- ${g}`), ''].join('\n');
    write('fastpath', runs, r.json, md);
  } else if (suite === 'ipam') {
    log(`ipam suite: ${runs} run(s) on the lab`);
    const r = await runIpamSuite({ runs, log });
    write('ipam', runs, r.json, [`${header}; ${runs} run(s).`, '', r.markdown, ''].join('\n'));
  } else if (suite === 'cni') {
    log(`cni suite: ${runs} run(s) of 100 pods, weft against bridge + host-local`);
    const r = await runCniSuite({ runs, log });
    write('cni', runs, r.json, [`${header}; ${runs} run(s).`, '', r.markdown, '', ...r.goals.map((g) => `- ${g}`), ''].join('\n'));
  } else if (suite === 'ipam-sim') {
    log(`ipam-sim suite: in-process simulation of ${process.env.WEFT_SIM_PEERS ?? 1000} peers and ${process.env.WEFT_SIM_OPERATIONS ?? 100_000} operations (no sockets, simulated clock)`);
    const simPeers = process.env.WEFT_SIM_PEERS === undefined ? undefined : Number(process.env.WEFT_SIM_PEERS);
    const simOps = process.env.WEFT_SIM_OPERATIONS === undefined ? undefined : Number(process.env.WEFT_SIM_OPERATIONS);
    const r = await runIpamSim({ log, ...(simPeers === undefined ? {} : { peers: simPeers }), ...(simOps === undefined ? {} : { operations: simOps }) });
    write('ipam-sim', runs, r.json, `${header}.\n\n${r.markdown}\n`);
  } else if (suite === 'kubernetes') {
    log(`kubernetes suite: ${runs} run(s) of a Node joining and a Node deleted, 3 routers in Kubernetes mode against the fake API server`);
    const r = await runKubernetesSuite({ runs, freshIdentity: args.freshIdentity, log });
    write(`kubernetes${args.freshIdentity ? '-fresh-identity' : ''}`, runs, r.json, [`${header}; ${runs} run(s).`, '', r.markdown, ''].join('\n'));
  } else if (suite === 'policy') {
    log(`policy suite: ${runs} run(s) of a NetworkPolicy created and deleted, ${args.loadRounds} round(s) of traffic without and with 100 policies (${seconds} s TCP tests), 3 routers in Kubernetes mode`);
    const r = await runPolicySuite({ runs, loadRounds: args.loadRounds, seconds, log });
    write('policy', runs, r.json, [`${header}; ${runs} run(s), ${args.loadRounds} load round(s).`, '', r.markdown, '', ...r.goals.map((g) => `- ${g}`), ''].join('\n'));
  } else if (suite === 'nat') {
    log(`nat suite: ${runs} run(s) of the NAT matrix (9 routers, 36 pairs), failover under traffic and relay TCP (${seconds} s tests)`);
    const r = await runNatSuite({ runs, seconds, log });
    write('nat', runs, r.json, [`${header}; ${runs} run(s).`, '', r.markdown, '', ...r.goals.map((g) => `- ${g}`), ''].join('\n'));
  } else {
    log('gossip suite: in-process simulation of 1,000 peers (no sockets, simulated clock)');
    const r = await runGossipSim({});
    write('gossip', runs, r.json, `${header}.\n\n${r.markdown}\n`);
  }
}
