import { describe, expect, it } from 'vitest';
import { settledAt, type ProbeSample } from '../../bench/stats.js';
import { loadRatio, parseProbes } from '../../bench/suites/policy.js';
import { ALLOW_CLIENTS_POLICY, BENCH_NAMESPACE, DEFAULT_LOAD, loadObjects, loadPodAddress } from '../../bench/suites/policy-objects.js';

/** Probes every 5 ms from `startMs`: `pattern` is one character per probe, 1 answered, 0 not. */
function probes(startMs: number, pattern: string): ProbeSample[] {
  return [...pattern].map((c, i) => ({ sentMs: startMs + i * 5, ok: c === '1' }));
}

describe('settledAt (when a change took effect, from probes)', () => {
  it.each([
    {
      name: 'answered, then not from the 4th probe on (held): the 4th, after the 3rd',
      samples: probes(1000, '111' + '0'.repeat(210)),
      from: 1000, want: false, hold: 1000, settled: { atMs: 15, afterMs: 10 },
    },
    {
      name: 'a stray unanswered probe before the change does not count: the final streak does',
      samples: probes(1000, '1101111' + '0'.repeat(210)),
      from: 1000, want: false, hold: 1000, settled: { atMs: 35, afterMs: 30 },
    },
    {
      name: 'the other way: answered again from the 3rd probe on',
      samples: probes(2000, '00' + '1'.repeat(201)),
      from: 2000, want: true, hold: 1000, settled: { atMs: 10, afterMs: 5 },
    },
    { name: 'the final streak is shorter than the hold: not settled yet', samples: probes(1000, '111' + '0'.repeat(100)), from: 1000, want: false, hold: 1000, settled: undefined },
    { name: 'the last probe is in the old state: not settled', samples: probes(1000, '1110000001'), from: 1000, want: false, hold: 10, settled: undefined },
    { name: 'never in the old state: no change seen', samples: probes(1000, '0'.repeat(300)), from: 1000, want: false, hold: 1000, settled: undefined },
    {
      name: 'the streak began before the change (the state was already the new one)',
      samples: probes(1000, '1' + '0'.repeat(300)),
      from: 1100, want: false, hold: 1000, settled: undefined,
    },
    { name: 'no probes', samples: [], from: 0, want: false, hold: 0, settled: undefined },
  ])('$name', ({ samples, from, want, hold, settled }) => {
    expect(settledAt(samples, from, want, hold)).toEqual(settled);
  });

  it('samples are taken in the order sent, not the order answered', () => {
    // An answered probe finishes first; unanswered ones finish at their timeout, later.
    const s = probes(0, '11' + '0'.repeat(300));
    const answeredLate = [...s.slice(2), ...s.slice(0, 2)];
    expect(settledAt(answeredLate, 0, false, 1000)).toEqual({ atMs: 10, afterMs: 5 });
  });
});

describe('parseProbes (the prober output)', () => {
  it('lines per target; a half-written or foreign line is skipped', () => {
    const out = ['probing', '0 1000 1', '2 1000 0', '1 1000 1', '0 1005 0', 'garbage', '1 10'].join('\n');
    expect(parseProbes(out, 3)).toEqual([
      [{ sentMs: 1000, ok: true }, { sentMs: 1005, ok: false }],
      [{ sentMs: 1000, ok: true }],
      [{ sentMs: 1000, ok: false }],
    ]);
  });

  it('a target index out of range is ignored', () => {
    expect(parseProbes('5 1000 1\n0 1000 1\n', 1)).toEqual([[{ sentMs: 1000, ok: true }]]);
  });
});

describe('loadRatio', () => {
  it.each([
    { before: 10, load: 9.5, after: 9, want: 1 },
    { before: 10, load: 5, after: 10, want: 0.5 },
    { before: 0, load: 5, after: 0, want: NaN },
  ])('$before · $load · $after → $want', ({ before, load, after, want }) => {
    expect(loadRatio(before, load, after)).toBe(want);
  });
});

describe('the load objects (100 policies, 1,000 Pod objects)', () => {
  const nodes = ['n1', 'n2', 'n3'];
  const load = loadObjects({ ...DEFAULT_LOAD, nodes });
  type Pod = { metadata: { namespace: string; name: string; labels: Record<string, string> }; spec: { nodeName: string }; status: { podIP: string; podIPs: { ip: string }[] } };
  const pods = load.pods as unknown as Pod[];

  it('counts: 10 namespaces, 1,000 Pods, 100 policies, every Pod selected', () => {
    expect(load.namespaces).toHaveLength(10);
    expect(load.pods).toHaveLength(1000);
    expect(load.policies).toHaveLength(100);
    expect(load.selected.size).toBe(1000);
    expect(new Set(load.policies.map((p) => `${p.metadata.namespace}/${p.metadata.name}`)).size).toBe(100);
  });

  it('addresses: unique, in 10.40.0.0/16 and fd00:40::/64, clear of the lab pods (10.40.N.2-9, N ≤ 9)', () => {
    const v4 = pods.map((p) => p.status.podIP);
    expect(new Set(v4).size).toBe(1000);
    expect(new Set(pods.map((p) => p.status.podIPs[1]!.ip)).size).toBe(1000);
    for (const ip of v4) {
      const [a, b, c, d] = ip.split('.').map(Number);
      expect([a, b]).toEqual([10, 40]);
      expect(c).toBeGreaterThanOrEqual(100);
      expect(d).toBeGreaterThanOrEqual(1);
      expect(d).toBeLessThanOrEqual(250);
    }
    expect(loadPodAddress(0)).toEqual({ ipv4: '10.40.100.1', ipv6: 'fd00:40::64:1' });
    expect(loadPodAddress(999)).toEqual({ ipv4: '10.40.103.250', ipv6: 'fd00:40::67:fa' });
    expect(() => loadPodAddress(40_000)).toThrow(RangeError);
  });

  it('every node has pods of every (namespace, app): every policy selects pods on every router', () => {
    const groups = new Map<string, Set<string>>();
    for (const p of pods) {
      const key = `${p.metadata.namespace}/${p.metadata.labels['app']}`;
      groups.set(key, (groups.get(key) ?? new Set()).add(p.spec.nodeName));
    }
    expect(groups.size).toBe(100);
    for (const on of groups.values()) expect([...on].sort()).toEqual(nodes);
  });

  it('the bench namespace: 10 policies on the targets, the first allows the clients on every port', () => {
    const bench = load.policies.filter((p) => p.metadata.namespace === BENCH_NAMESPACE);
    expect(bench).toHaveLength(10);
    const allow = bench.find((p) => p.metadata.name === ALLOW_CLIENTS_POLICY) as unknown as { spec: { podSelector: unknown; ingress: { from: unknown[]; ports?: unknown }[] } };
    expect(allow.spec.podSelector).toEqual({ matchLabels: { role: 'target' } });
    expect(allow.spec.ingress).toEqual([{ from: [{ podSelector: { matchLabels: { role: 'client' } } }] }]);
  });
});
