/**
 * `npm run bench` arguments: which suites, how many runs of each, and their options. Pure, so
 * the defaults and refusals are tested without running a benchmark.
 */
import { parseArgs } from 'node:util';

export const SUITES = ['sleeve', 'mesh', 'fastpath', 'gossip', 'ipam', 'ipam-sim', 'cni', 'kubernetes', 'policy', 'nat'] as const;
export type Suite = (typeof SUITES)[number];

export const BENCH_USAGE =
  'usage: npm run bench -- [--suite all|' +
  SUITES.join('|') +
  '] [--runs N] [--seconds S] [--quick] [--br-netfilter] [--fresh-identity] [--load-rounds N] [--no-peers]\n' +
  '  --runs N  runs per suite (default 3; kubernetes and policy 20), --quick fewer (1; kubernetes and policy 3)\n' +
  '  --fresh-identity  kubernetes: a new state dir (identity) for the joining router each run\n' +
  '  --load-rounds N  policy: rounds of traffic without and with 100 policies (default 3, --quick 1)\n' +
  '  --no-peers  sleeve: without wireguard-go (scripts/bench-peers.sh fetches it otherwise) and the userspace floor beside weft';

export interface BenchArgs {
  suites: Suite[];
  seconds: number;
  brNetfilter: boolean;
  freshIdentity: boolean;
  /** sleeve: run wireguard-go and the userspace floor beside weft (false with --no-peers). */
  peers: boolean;
  /** policy: rounds of the throughput and latency comparison (none, 100 policies, none). */
  loadRounds: number;
  /** Runs of one suite: --runs when given, else the suite's default (or --quick's). */
  runsOf: (suite: Suite) => number;
}

/** Defaults per suite: [runs, runs with --quick]. */
const DEFAULT_RUNS: Partial<Record<Suite, [number, number]>> = { kubernetes: [20, 3], policy: [20, 3] };

/** Parses `argv` (without node and the script); throws an Error naming the bad argument. */
export function parseBenchArgs(argv: string[]): BenchArgs {
  const { values } = parseArgs({
    args: argv,
    options: {
      runs: { type: 'string' },
      seconds: { type: 'string', default: '8' },
      suite: { type: 'string', default: 'all' },
      'br-netfilter': { type: 'boolean', default: false },
      'fresh-identity': { type: 'boolean', default: false },
      quick: { type: 'boolean', default: false },
      'load-rounds': { type: 'string' },
      'no-peers': { type: 'boolean', default: false },
    },
  });
  const whole = (flag: string, text: string): number => {
    const n = Number(text);
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < 1) throw new Error(`${flag} ${JSON.stringify(text)} is not a whole number of at least 1`);
    return n;
  };
  const suite = values.suite!;
  if (suite !== 'all' && !(SUITES as readonly string[]).includes(suite)) throw new Error(`unknown suite "${suite}" (known: all, ${SUITES.join(', ')})`);
  const runs = values.runs === undefined ? undefined : whole('--runs', values.runs);
  const seconds = values.quick ? 4 : whole('--seconds', values.seconds!);
  const quick = values.quick === true;
  return {
    suites: suite === 'all' ? [...SUITES] : [suite as Suite],
    seconds,
    brNetfilter: values['br-netfilter'] === true,
    freshIdentity: values['fresh-identity'] === true,
    peers: values['no-peers'] !== true,
    loadRounds: values['load-rounds'] === undefined ? (quick ? 1 : 3) : whole('--load-rounds', values['load-rounds']),
    runsOf: (s) => {
      if (runs !== undefined) return runs;
      const [normal, fewer] = DEFAULT_RUNS[s] ?? [3, 1];
      return quick ? fewer : normal;
    },
  };
}
