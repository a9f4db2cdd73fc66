import { afterAll, describe, expect, it } from 'vitest';
import { delta, parseNstat, tcpQuality } from '../../bench/nstat.js';
import { boxBusyPct, parseProcStat } from '../../bench/procstat.js';
import { qualityTable, sleeveTable, summarizeSleeve, type Sample } from '../../bench/suites/sleeve.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findWireguardGo, parseEthtoolFeatures, WG_OFFLOADS } from '../../bench/suites/wireguard-go.js';

const PROC_STAT = `cpu  1704923 0 595629 7212420 2732 0 26481 0 0 0
cpu0 848524 0 294648 3614336 360 0 13146 0 0 0
cpu1 856399 0 300981 3598084 2371 0 13334 0 0 0
intr 123 4 5
ctxt 99
`;

describe('/proc/stat: the box\'s busy CPU', () => {
  it('reads the aggregate line (busy: user nice system irq softirq; total adds idle iowait steal) and counts the vCPUs', () => {
    expect(parseProcStat(PROC_STAT)).toEqual({ busy: 1704923 + 595629 + 26481, total: 1704923 + 595629 + 26481 + 7212420 + 2732, cpus: 2 });
  });

  it.each([
    { name: 'both vCPUs busy', a: { busy: 0, total: 0, cpus: 2 }, b: { busy: 200, total: 200, cpus: 2 }, pct: 200 },
    { name: 'one of two busy', a: { busy: 100, total: 1000, cpus: 2 }, b: { busy: 200, total: 1200, cpus: 2 }, pct: 100 },
    { name: 'idle', a: { busy: 5, total: 10, cpus: 4 }, b: { busy: 5, total: 410, cpus: 4 }, pct: 0 },
    { name: 'no time passed', a: { busy: 5, total: 10, cpus: 2 }, b: { busy: 5, total: 10, cpus: 2 }, pct: NaN },
  ])('$name → $pct%', ({ a, b, pct }) => {
    expect(boxBusyPct(a, b)).toBe(pct);
  });

  it.each([
    { name: 'no aggregate line', text: 'cpu0 1 2 3 4 5 6 7 8\n' },
    { name: 'too few fields', text: 'cpu  1 2 3 4\n' },
    { name: 'not numbers', text: 'cpu  1 2 x 4 5 6 7 8\n' },
    { name: 'empty', text: '' },
  ])('refuses $name, saying what', ({ text }) => {
    expect(() => parseProcStat(text)).toThrow(/\/proc\/stat/);
  });
});

const NSTAT_BEFORE = `#kernel
IpInReceives                    10                 0.0
TcpOutSegs                      100                0.0
TcpRetransSegs                  1                  0.0
TcpExtTCPSACKReorder            0                  0.0
TcpExtTCPTSReorder              2                  0.0
TcpExtTCPOFOQueue               5                  0.0
TcpExtTCPDSACKOldSent           0                  0.0
TcpExtTCPDSACKOfoSent           0                  0.0
`;

const NSTAT_AFTER = `#kernel
IpInReceives                    20                 0.0
TcpOutSegs                      10100              0.0
TcpRetransSegs                  31                 0.0
TcpExtTCPSACKReorder            4                  0.0
TcpExtTCPTSReorder              3                  0.0
TcpExtTCPRenoReorder            1                  0.0
TcpExtTCPOFOQueue               17                 0.0
TcpExtTCPDSACKOldSent           2                  0.0
TcpExtTCPDSACKOfoSent           3                  0.0
garbage line without a number
`;

describe('nstat counters', () => {
  it('parses name and absolute value, skipping the header and anything else', () => {
    const c = parseNstat(NSTAT_AFTER);
    expect(c.get('TcpOutSegs')).toBe(10100);
    expect(c.get('TcpExtTCPRenoReorder')).toBe(1);
    expect(c.has('garbage')).toBe(false);
    expect(c.size).toBe(9);
  });

  it('refuses output without a counter (nstat failed)', () => {
    expect(() => parseNstat('#kernel\n')).toThrow(/nstat: no counters/);
    expect(() => parseNstat('')).toThrow(/nstat/);
  });

  it('sums deltas, a counter missing before counting from 0, never below 0', () => {
    const b = parseNstat(NSTAT_BEFORE);
    const a = parseNstat(NSTAT_AFTER);
    expect(delta(b, a, ['TcpExtTCPSACKReorder', 'TcpExtTCPTSReorder', 'TcpExtTCPRenoReorder'])).toBe(4 + 1 + 1);
    expect(delta(a, b, ['TcpOutSegs'])).toBe(0);
    expect(delta(b, a, ['NoSuchCounter'])).toBe(0);
  });

  it('reads loss and reordering on the sender, out of order and duplicates on the receiver', () => {
    const b = parseNstat(NSTAT_BEFORE);
    const a = parseNstat(NSTAT_AFTER);
    const none = parseNstat(NSTAT_BEFORE);
    expect(tcpQuality({ before: b, after: a }, { before: none, after: none })).toEqual({ sent: 10000, retransmitted: 30, reordering: 6, outOfOrder: 0, duplicates: 0 });
    expect(tcpQuality({ before: none, after: none }, { before: b, after: a })).toEqual({ sent: 0, retransmitted: 0, reordering: 0, outOfOrder: 12, duplicates: 5 });
  });
});

describe('ethtool -k of the wireguard-go device', () => {
  it('keeps the named features, on or off, without [fixed]', () => {
    const text = `Features for wt1a2b-wg1:
rx-checksumming: off [fixed]
tx-checksumming: on
\ttx-checksum-ipv4: off [fixed]
tcp-segmentation-offload: on
\ttx-tcp-segmentation: on
generic-segmentation-offload: on
generic-receive-offload: off
`;
    expect(parseEthtoolFeatures(text, WG_OFFLOADS)).toEqual({
      'tx-checksumming': 'on',
      'tcp-segmentation-offload': 'on',
      'generic-segmentation-offload': 'on',
      'generic-receive-offload': 'off',
    });
  });
});

function sample(variant: string, run: number, tcp1Gbps: number, o: Partial<Sample> = {}): Sample {
  return {
    variant, run, tcp1Gbps, tcp4Gbps: tcp1Gbps * 2, tcp1Retransmits: 0, udp64Kpps: 100, udp64OfferedKpps: 100, pingAvgMs: 0.1, pingP99Ms: 0.2, pingColdAvgMs: 0.3,
    routerCpuPct: [], routerRssMaxMB: [], boxCpuPct: 150, tcp4Quality: { sent: 1000, retransmitted: 0, reordering: 0, outOfOrder: 0, duplicates: 0 }, ...o,
  };
}

describe('sleeve summary: CPU per Gbit/s and the 4-stream counts', () => {
  const samples = [
    sample('vxlan', 1, 10, { boxCpuPct: 150 }),
    sample('weft-encrypted', 1, 4, {
      boxCpuPct: 190, routerCpuPct: [60, 50], routerRssMaxMB: [70, 80],
      tcp4Quality: { sent: 2000, retransmitted: 20, reordering: 3, outOfOrder: 40, duplicates: 1 },
      routerRxDrops: { 'rx.replay': 7, 'reassembly.fragDuplicate': 0, 'reassembly.fragTimeout': 1, 'reassembly.fragEvicted': 2 },
    }),
    sample('wireguard-go', 1, 2, { boxCpuPct: 180, routerCpuPct: [80, 70], routerRssMaxMB: [20, 21] }),
    sample('vxlan', 1, 12, { boxCpuPct: 160 }),
  ];
  const summary = summarizeSleeve(samples);
  const by = (v: string) => summary.find((s) => s.variant === v)!;

  it('keeps the suite\'s order and divides CPU by the same run\'s Gbit/s', () => {
    expect(summary.map((s) => s.variant)).toEqual(['vxlan', 'weft-encrypted', 'wireguard-go']);
    expect(by('weft-encrypted').boxCpuPerGbps).toBeCloseTo(47.5);
    expect(by('weft-encrypted').routerCpuPerGbps).toBeCloseTo(27.5);
    expect(by('weft-encrypted').tcp1Ratio).toBeCloseTo(4 / 11);
    expect(by('wireguard-go').routerCpuPerGbps).toBeCloseTo(75);
    expect(by('vxlan').routerCpuPerGbps).toBeNaN();
    expect(by('vxlan').boxCpuPerGbps).toBeCloseTo((150 / 10 + 160 / 12) / 2);
  });

  it('carries the routers\' drops for weft only', () => {
    expect(by('weft-encrypted').routerRxDrops).toEqual({ 'rx.replay': 7, 'reassembly.fragDuplicate': 0, 'reassembly.fragTimeout': 1, 'reassembly.fragEvicted': 2 });
    expect(by('wireguard-go').routerRxDrops).toBeUndefined();
  });

  it('prints a row per variant in both tables', () => {
    const main = sleeveTable(summary);
    expect(main).toContain('| weft-encrypted | 4.00 · 36% |');
    expect(main).toContain('190% · 47.5 | 110% · 27.5 | 80.0 |');
    expect(main).toContain('| vxlan | 11.00 · 100% |');
    const q = qualityTable(summary);
    expect(q).toContain('| weft-encrypted | 2000 | 20 (10.00‰) | 3 | 40 (20.00‰) | 1 | 7 / 0 / 3 |');
    expect(q).toContain('| wireguard-go | 1000 | 0 (0.00‰) | 0 | 0 (0.00‰) | 0 | – |');
  });
});

describe('findWireguardGo: an optional peer says why it is missing', () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-peers-test-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const script = (name: string, body: string): string => {
    const p = join(dir, name);
    writeFileSync(p, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    return p;
  };

  it.each([
    { name: 'the script fails', body: 'echo "weft bench: need root to fetch wg" >&2; exit 1', why: /exited 1: weft bench: need root to fetch wg/ },
    { name: 'it names no binary', body: 'echo /nonexistent/wireguard-go', why: /"\/nonexistent\/wireguard-go", which does not exist/ },
  ])('$name', ({ name, body, why }) => {
    const r = findWireguardGo(script(name.replace(/\W/g, '-'), body));
    expect('why' in r && r.why).toMatch(why);
  });

  it('a script that is not there', () => {
    const r = findWireguardGo(join(dir, 'missing.sh'));
    expect('why' in r && r.why).toMatch(/missing\.sh: .*ENOENT/);
  });
});
