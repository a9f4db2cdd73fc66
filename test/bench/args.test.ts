import { describe, expect, it } from 'vitest';
import { parseBenchArgs, SUITES } from '../../bench/args.js';
import { summarize } from '../../bench/stats.js';
import { firstPingReply } from '../../bench/suites/kubernetes.js';

describe('npm run bench arguments', () => {
  it('sleeve: wireguard-go runs beside weft unless --no-peers', () => {
    expect(parseBenchArgs(['--suite', 'sleeve']).peers).toBe(true);
    expect(parseBenchArgs(['--suite', 'sleeve', '--no-peers']).peers).toBe(false);
  });

  it.each([
    { argv: [], suites: [...SUITES], runs: { sleeve: 3, kubernetes: 20 }, seconds: 8 },
    { argv: ['--suite', 'kubernetes'], suites: ['kubernetes'], runs: { sleeve: 3, kubernetes: 20 }, seconds: 8 },
    { argv: ['--suite', 'kubernetes', '--quick'], suites: ['kubernetes'], runs: { sleeve: 1, kubernetes: 3 }, seconds: 4 },
    { argv: ['--suite', 'kubernetes', '--runs', '5'], suites: ['kubernetes'], runs: { sleeve: 5, kubernetes: 5 }, seconds: 8 },
    { argv: ['--quick', '--runs', '2'], suites: [...SUITES], runs: { sleeve: 2, kubernetes: 2 }, seconds: 4 },
    { argv: ['--suite', 'mesh', '--seconds', '12'], suites: ['mesh'], runs: { sleeve: 3, kubernetes: 20 }, seconds: 12 },
    { argv: ['--suite', 'nat', '--quick'], suites: ['nat'], runs: { sleeve: 1, kubernetes: 3 }, seconds: 4 },
  ])('$argv → suites $suites, runs $runs, $seconds s', ({ argv, suites, runs, seconds }) => {
    const a = parseBenchArgs(argv);
    expect(a.suites).toEqual(suites);
    expect(a.runsOf('sleeve')).toBe(runs.sleeve);
    expect(a.runsOf('kubernetes')).toBe(runs.kubernetes);
    expect(a.seconds).toBe(seconds);
  });

  it.each([
    { argv: ['--suite', 'policy'], runs: 20, loadRounds: 3 },
    { argv: ['--suite', 'policy', '--quick'], runs: 3, loadRounds: 1 },
    { argv: ['--suite', 'policy', '--runs', '5'], runs: 5, loadRounds: 3 },
    { argv: ['--suite', 'policy', '--runs', '3', '--load-rounds', '2'], runs: 3, loadRounds: 2 },
    { argv: ['--suite', 'policy', '--quick', '--load-rounds', '4'], runs: 3, loadRounds: 4 },
  ])('policy: $argv → $runs runs, $loadRounds load rounds', ({ argv, runs, loadRounds }) => {
    const a = parseBenchArgs(argv);
    expect(a.suites).toEqual(['policy']);
    expect(a.runsOf('policy')).toBe(runs);
    expect(a.loadRounds).toBe(loadRounds);
  });

  it('flags: --br-netfilter, --fresh-identity', () => {
    expect(parseBenchArgs([])).toMatchObject({ brNetfilter: false, freshIdentity: false });
    expect(parseBenchArgs(['--br-netfilter', '--fresh-identity'])).toMatchObject({ brNetfilter: true, freshIdentity: true });
  });

  it.each([
    { argv: ['--suite', 'kube'], error: /unknown suite "kube" \(known: all, sleeve, .*kubernetes, policy, nat\)/ },
    { argv: ['--runs', '0'], error: /--runs "0" is not a whole number of at least 1/ },
    { argv: ['--runs', 'abc'], error: /--runs "abc"/ },
    { argv: ['--runs', '2.5'], error: /--runs "2.5"/ },
    { argv: ['--seconds=-1'], error: /--seconds "-1"/ },
    { argv: ['--rns', '3'], error: /Unknown option '--rns'/ },
    { argv: ['--load-rounds', '0'], error: /--load-rounds "0" is not a whole number of at least 1/ },
  ])('$argv is refused', ({ argv, error }) => {
    expect(() => parseBenchArgs(argv)).toThrow(error);
  });
});

describe('summarize', () => {
  it.each([
    { xs: [5], want: { n: 1, p50: 5, p99: 5, min: 5, max: 5 } },
    { xs: [30, 10, 20], want: { n: 3, p50: 20, p99: 30, min: 10, max: 30 } },
    // nearest rank: p50 of 4 is the 2nd, p99 the 4th
    { xs: [4, 1, 3, 2], want: { n: 4, p50: 2, p99: 4, min: 1, max: 4 } },
    { xs: [Array.from({ length: 200 }, (_, i) => i + 1)].flat(), want: { n: 200, p50: 100, p99: 198, min: 1, max: 200 } },
    // samples not seen (NaN) are left out, and counted out of n
    { xs: [NaN, 7, 3, NaN], want: { n: 2, p50: 3, p99: 7, min: 3, max: 7 } },
  ])('$xs.length samples', ({ xs, want }) => {
    expect(summarize(xs)).toEqual(want);
  });

  it('no finite sample: NaN everywhere, n 0', () => {
    expect(summarize([NaN, Infinity])).toEqual({ n: 0, p50: NaN, p99: NaN, min: NaN, max: NaN });
    expect(summarize([])).toEqual({ n: 0, p50: NaN, p99: NaN, min: NaN, max: NaN });
  });
});

describe('firstPingReply (ping -n -D output)', () => {
  it.each([
    {
      name: 'unreachable lines first, then replies: the first reply',
      out: [
        'PING 10.40.3.2 (10.40.3.2) 56(84) bytes of data.',
        '[1764770000.100000] From 10.40.1.2 icmp_seq=1 Destination Host Unreachable',
        '[1764770000.250123] 64 bytes from 10.40.3.2: icmp_seq=4 ttl=64 time=0.412 ms',
        '[1764770000.300456] 64 bytes from 10.40.3.2: icmp_seq=5 ttl=64 time=0.300 ms',
      ].join('\n'),
      want: { atMs: 1764770000250.123, seq: 4 },
    },
    { name: 'no reply yet', out: 'PING 10.40.3.2 (10.40.3.2) 56(84) bytes of data.\n', want: undefined },
    { name: 'a reply without -D timestamps is not taken', out: '64 bytes from 10.40.3.2: icmp_seq=1 ttl=64 time=0.4 ms\n', want: undefined },
    { name: 'a reply line cut mid-way (output read while written)', out: '[1764770000.250123] 64 bytes fr', want: undefined },
  ])('$name', ({ out, want }) => {
    const r = firstPingReply(out);
    if (want === undefined) expect(r).toBeUndefined();
    else {
      expect(r!.seq).toBe(want.seq);
      expect(r!.atMs).toBeCloseTo(want.atMs, 3);
    }
  });
});
