/** Parsers for ping, iperf3 and tcpdump output, on outputs recorded in lab namespaces (fixtures/). */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { LabParseError } from '../../lab/errors.js';
import { parseIperfTcp, parseIperfUdp, parsePing, parseTcpdumpCaptured, percentile } from '../../lab/traffic.js';

const fixture = (name: string): string => readFileSync(join(dirname(fileURLToPath(import.meta.url)), 'fixtures', name), 'utf8');

describe('percentile (nearest rank)', () => {
  it.each([
    [[], 50, NaN],
    [[5], 99, 5],
    [[1, 2, 3, 4], 50, 2],
    [[1, 2, 3, 4], 99, 4],
    [[1, 2, 3, 4], 0, 1],
    [Array.from({ length: 100 }, (_, i) => i + 1), 99, 99],
    [Array.from({ length: 100 }, (_, i) => i + 1), 100, 100],
  ])('%j p%d = %d', (sorted, p, want) => {
    expect(percentile(sorted, p)).toBe(want);
  });
});

describe('parsePing', () => {
  it('reads every reply time of an IPv4 ping', () => {
    const r = parsePing(fixture('ping-v4.txt'));
    expect(r).toMatchObject({ sent: 5, received: 5, duplicates: 0, errors: 0, lossPct: 0 });
    expect(r.rtts).toEqual([0.27, 0.066, 0.06, 0.072, 0.079]);
    expect(r.avgMs).toBeCloseTo(0.1094, 6);
    expect([r.p50Ms, r.p99Ms, r.maxMs]).toEqual([0.072, 0.27, 0.27]);
  });

  it('reads an IPv6 ping', () => {
    const r = parsePing(fixture('ping-v6.txt'));
    expect(r).toMatchObject({ sent: 3, received: 3, lossPct: 0, maxMs: 0.08 });
    expect(r.rtts).toEqual([0.073, 0.08, 0.068]);
  });

  it('computes loss from the summary when some replies are missing', () => {
    const r = parsePing(fixture('ping-partial-loss.txt'));
    expect(r).toMatchObject({ sent: 10, received: 4, lossPct: 60, p50Ms: 0.061, maxMs: 0.078 });
    expect(r.rtts).toHaveLength(4);
  });

  it('gives NaN statistics when nothing came back', () => {
    const r = parsePing(fixture('ping-all-lost.txt'));
    expect(r).toMatchObject({ sent: 3, received: 0, lossPct: 100, rtts: [] });
    expect(r.avgMs).toBeNaN();
    expect(r.p99Ms).toBeNaN();
  });

  it('counts local errors (message too long with DF)', () => {
    expect(parsePing(fixture('ping-too-big.txt'))).toMatchObject({ sent: 3, received: 0, errors: 3, lossPct: 100 });
  });

  it('accepts replies without a time (payload under 16 bytes)', () => {
    const r = parsePing(fixture('ping-no-time.txt'));
    expect(r).toMatchObject({ sent: 2, received: 2, lossPct: 0, rtts: [] });
  });

  it('leaves duplicates out of the replies', () => {
    const out = [
      'PING 10.40.255.255 (10.40.255.255) 56(84) bytes of data.',
      '64 bytes from 10.40.1.3: icmp_seq=1 ttl=64 time=0.101 ms',
      '64 bytes from 10.40.1.4: icmp_seq=1 ttl=64 time=0.250 ms (DUP!)',
      '64 bytes from 10.40.1.3: icmp_seq=2 ttl=64 time=0.090 ms',
      '',
      '--- 10.40.255.255 ping statistics ---',
      '2 packets transmitted, 2 received, +1 duplicates, 0% packet loss, time 1001ms',
    ].join('\n');
    expect(parsePing(out)).toMatchObject({ sent: 2, received: 2, duplicates: 1, rtts: [0.101, 0.09] });
  });

  it.each([
    ['empty output', ''],
    ['an error instead of a summary', 'ping: connect: Network is unreachable\n'],
    ['a truncated run', 'PING 10.40.1.3 (10.40.1.3) 56(84) bytes of data.\n64 bytes from 10.40.1.3: icmp_seq=1 ttl=64 time=0.2 ms\n'],
  ])('throws a LabParseError quoting the output on %s', (_what, out) => {
    expect(() => parsePing(out)).toThrow(LabParseError);
    expect(() => parsePing(out)).toThrow(/cannot parse ping output: no "N packets transmitted, M received" line/);
  });
});

describe('parseIperfTcp', () => {
  it('reads the receiver rate, retransmits and per-interval rates', () => {
    const r = parseIperfTcp(fixture('iperf3-tcp-p2.json'));
    expect(r.gbps).toBeCloseTo(11.946752905, 6);
    expect(r.retransmits).toBe(1719);
    expect(r.intervalsGbps).toHaveLength(1);
    expect(r.intervalsGbps[0]).toBeCloseTo(11.981236732, 6);
  });

  it('reports the error iperf3 put in its JSON', () => {
    expect(() => parseIperfTcp(fixture('iperf3-refused.json'))).toThrow(/unable to connect to server: Connection refused/);
  });

  it.each([
    ['not JSON', 'iperf3: error - unable to connect', /not JSON/],
    ['JSON without the sums', '{"start":{},"intervals":[],"end":{}}', /end\.sum_received\.bits_per_second is missing/],
    ['a JSON array', '[]', /end\.sum_received/],
    ['null', 'null', /not a JSON object/],
  ])('throws a LabParseError on %s', (_what, json, message) => {
    expect(() => parseIperfTcp(json)).toThrow(LabParseError);
    expect(() => parseIperfTcp(json)).toThrow(message);
  });
});

describe('parseIperfUdp', () => {
  it('reads packets sent, received and lost', () => {
    const r = parseIperfUdp(fixture('iperf3-udp-64.json'));
    expect(r.sentPps).toBeCloseTo(197370 / 1.000017, 3);
    expect(r.receivedPps).toBeCloseTo((197370 - 1527) / 1.000095, 3);
    expect(r.lossPct).toBeCloseTo(0.773673810609515, 9);
  });

  it('falls back to end.sum (iperf3 before sum_sent/sum_received)', () => {
    const json = JSON.stringify({ end: { sum: { seconds: 2, packets: 1000, lost_packets: 100, lost_percent: 10 } } });
    expect(parseIperfUdp(json)).toEqual({ sentPps: 500, receivedPps: 450, lossPct: 10 });
  });

  it('throws on missing packet counts', () => {
    expect(() => parseIperfUdp('{"end":{"sum_sent":{"seconds":1}}}')).toThrow(/end\.sum_sent\.packets is missing/);
    expect(() => parseIperfUdp(fixture('iperf3-refused.json'))).toThrow(/Connection refused/);
  });
});

describe('parseTcpdumpCaptured', () => {
  it('reads the count tcpdump prints when it stops', () => {
    const stderr = [
      'tcpdump: verbose output suppressed, use -v[v]... for full protocol decode',
      'listening on eth0, link-type EN10MB (Ethernet), snapshot length 262144 bytes',
      '3 packets captured',
      '3 packets received by filter',
      '0 packets dropped by kernel',
    ].join('\n');
    expect(parseTcpdumpCaptured(stderr)).toBe(3);
    expect(parseTcpdumpCaptured('1 packet captured\n1 packet received by filter\n')).toBe(1);
    expect(parseTcpdumpCaptured('listening on eth0\n')).toBeUndefined();
  });
});
