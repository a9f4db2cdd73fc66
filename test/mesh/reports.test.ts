import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { GossipDecodeError } from '../../src/mesh/errors.js';
import {
  REPORTS_MIN_PROTOCOL, REPORT_LIMITS, Reports, ReportsState, decodeReportsMessage, encodeReports, signReport,
  type ReportEntry, type ReportLink, type ReportRefusal, type RouterReport,
} from '../../src/mesh/reports.js';
import { FakeClock } from '../fakes/fake-clock.js';
import { recordingLogger } from '../fakes/recording-logger.js';
import { checkGossipDataLaws } from './gossip-data-laws.js';
import { testAuthor, type TestAuthor } from './test-authors.js';

const AUTHORS = Array.from({ length: 4 }, (_, i) => testAuthor(`report-owner-${i}`));
const packr = new Packr({ useRecords: false });
const SHARE = { range: '10.32.0.0/12', owned: '262144', free: '262140', used: '3', quarantined: '1' };

function report(author: TestAuthor, version: number, more: Partial<RouterReport> = {}): RouterReport {
  return { owner: author.name, publicKey: author.publicKey, version, release: '0.1.0', links: [], ipam: [], ...more };
}

function entry(author: TestAuthor, version: number, more: Partial<RouterReport> = {}, by: TestAuthor = author): ReportEntry {
  return signReport(report(author, version, more), by.signer);
}

const linkOf = (i: number, path: ReportLink['path'] = 'direct'): ReportLink => ({ peer: AUTHORS[i]!.name, established: true, path, via: undefined, rttMs: 0.25 });

const entryArb: fc.Arbitrary<ReportEntry> = fc
  .record({ owner: fc.integer({ min: 0, max: 3 }), version: fc.integer({ min: 1, max: 3 }), release: fc.constantFrom('0.1.0', '0.2.0'), linked: fc.boolean() })
  .map(({ owner, version, release, linked }) => entry(AUTHORS[owner]!, version, { release, links: linked ? [linkOf((owner + 1) % 4)] : [] }));
checkGossipDataLaws('ReportsState', fc.array(entryArb, { maxLength: 6 }).map((es) => () => ReportsState.of(es)));

/** The fields of a signed report as msgpack values, to break one at a time. */
function fields(e: ReportEntry): unknown[] {
  const r = e.report;
  return [
    r.owner, r.publicKey, r.version, r.release,
    r.links.map((l) => [l.peer, l.established, l.path, l.via ?? null, l.rttMs === undefined ? null : Math.round(l.rttMs * 1000)]),
    r.ipam.map((s) => [s.range, s.owned, s.free, s.used, s.quarantined]),
    e.bytes.subarray(e.bytes.length - 64),
  ];
}

function message(...reports: unknown[]): Uint8Array {
  return packr.pack([1, reports]);
}

function gossiper(i: number, clock = new FakeClock(), logger = recordingLogger().logger): Reports {
  const a = AUTHORS[i]!;
  return new Reports({ clock, signer: a.signer, logger }, { self: a.name, publicKey: a.publicKey });
}

describe('router reports: wire', () => {
  it('round-trips a report with links and shares', () => {
    const e = entry(AUTHORS[0]!, 5, { links: [linkOf(1, 'fastpath'), { ...linkOf(2, 'relay'), via: AUTHORS[1]!.name, rttMs: undefined }], ipam: [SHARE] });
    const { entries, refused } = decodeReportsMessage(encodeReports([e]));
    expect(refused).toEqual([]);
    expect({ ...entries[0]!.report, publicKey: null }).toEqual({ ...e.report, publicKey: null });
    expect(Buffer.from(entries[0]!.report.publicKey)).toEqual(Buffer.from(e.report.publicKey));
    expect(Buffer.from(entries[0]!.bytes)).toEqual(Buffer.from(e.bytes));
  });

  const good = entry(AUTHORS[0]!, 5, { links: [linkOf(1)], ipam: [SHARE] });
  const f = fields(good);
  const tooManyLinks = Array.from({ length: REPORT_LIMITS.maxLinks + 1 }, () => f[4]![0 as never]);
  const cases: [string, unknown[], ReportRefusal][] = [
    ['no signature', f.slice(0, 6), 'unsigned'],
    ['a short signature', [...f.slice(0, 6), Buffer.alloc(10)], 'unsigned'],
    ['8 fields', [...f, 1], 'malformed'],
    ['owner not a name', ['Zz', ...f.slice(1)], 'malformed'],
    ['public key of 31 bytes', [f[0], Buffer.alloc(31), ...f.slice(2)], 'malformed'],
    ['version 0', [f[0], f[1], 0, ...f.slice(3)], 'malformed'],
    ['version past the bound', [f[0], f[1], 2 ** 53 - 1, ...f.slice(3)], 'versionBound'],
    ['release with a space', [...f.slice(0, 3), '0.1 beta', ...f.slice(4)], 'malformed'],
    ['release too long', [...f.slice(0, 3), 'v'.repeat(65), ...f.slice(4)], 'malformed'],
    ['links not a list', [...f.slice(0, 4), 'x', ...f.slice(5)], 'malformed'],
    ['too many links', [...f.slice(0, 4), tooManyLinks, ...f.slice(5)], 'oversized'],
    ['a link of 4 fields', [...f.slice(0, 4), [[AUTHORS[1]!.name, true, 'direct', null]], ...f.slice(5)], 'malformed'],
    ['an unknown path', [...f.slice(0, 4), [[AUTHORS[1]!.name, true, 'carrier-pigeon', null, null]], ...f.slice(5)], 'malformed'],
    ['established not a boolean', [...f.slice(0, 4), [[AUTHORS[1]!.name, 1, 'direct', null, null]], ...f.slice(5)], 'malformed'],
    ['via not a name', [...f.slice(0, 4), [[AUTHORS[1]!.name, true, 'relay', 'me', null]], ...f.slice(5)], 'malformed'],
    ['a negative rtt', [...f.slice(0, 4), [[AUTHORS[1]!.name, true, 'direct', null, -1]], ...f.slice(5)], 'malformed'],
    ['a fractional rtt', [...f.slice(0, 4), [[AUTHORS[1]!.name, true, 'direct', null, 1.5]], ...f.slice(5)], 'malformed'],
    ['links out of order', [...f.slice(0, 4), [[AUTHORS[2]!.name, true, 'direct', null, null], [AUTHORS[1]!.name, true, 'direct', null, null]], ...f.slice(5)], 'malformed'],
    ['too many ranges', [...f.slice(0, 5), Array.from({ length: REPORT_LIMITS.maxShares + 1 }, () => f[5]![0 as never]), f[6]], 'oversized'],
    ['a count that is a number', [...f.slice(0, 5), [['10.32.0.0/12', 1, '0', '0', '0']], f[6]], 'malformed'],
    ['a count with a sign', [...f.slice(0, 5), [['10.32.0.0/12', '-1', '0', '0', '0']], f[6]], 'malformed'],
    ['a count with 40 digits', [...f.slice(0, 5), [['10.32.0.0/12', '1'.repeat(40), '0', '0', '0']], f[6]], 'malformed'],
    ['a range with a script', [...f.slice(0, 5), [['<b>', '0', '0', '0', '0']], f[6]], 'malformed'],
    ['another router\'s key', [f[0], AUTHORS[1]!.publicKey, ...f.slice(2)], 'nameMismatch'],
  ];
  it.each(cases)('refuses a report with %s by itself, and keeps the rest of the message', (_what, bad, reason) => {
    const other = entry(AUTHORS[3]!, 1);
    const ordered = AUTHORS[0]!.name < AUTHORS[3]!.name ? [bad, fields(other)] : [fields(other), bad];
    const { entries, refused } = decodeReportsMessage(message(...ordered));
    expect(refused.map((r) => r.reason)).toEqual([reason]);
    expect(entries.map((e) => e.report.owner)).toEqual([AUTHORS[3]!.name]);
  });

  const whole: [string, Uint8Array][] = [
    ['not msgpack', Uint8Array.from([0xc1])],
    ['not a list', packr.pack({ a: 1 })],
    ['format 2', packr.pack([2, []])],
    ['reports not a list', packr.pack([1, 'x'])],
    ['too big', new Uint8Array(REPORT_LIMITS.maxMessageBytes + 1)],
    ['owners out of order', message(fields(entry(AUTHORS[1]!, 1)), fields(entry(AUTHORS[1]!, 2)))],
  ];
  it.each(whole)('refuses a whole message that is %s (GossipDecodeError)', (_what, data) => {
    expect(() => decodeReportsMessage(data)).toThrow(GossipDecodeError);
  });

  it('the channel needs mesh protocol 3', () => {
    expect(REPORTS_MIN_PROTOCOL).toBe(3);
  });
});

describe('router reports: gossip', () => {
  it('two routers converge; the newest report of each wins', () => {
    const clock = new FakeClock();
    const a = gossiper(0, clock);
    const b = gossiper(1, clock);
    a.publish({ release: '0.1.0', links: [linkOf(1)], ipam: [SHARE] });
    b.publish({ release: '0.2.0', links: [linkOf(0, 'fastpath')], ipam: [] });
    expect(b.onGossip(a.gossip()!)).toBeDefined();
    expect(a.onGossip(b.gossip()!)).toBeDefined();
    expect(a.onGossip(b.gossip()!)).toBeUndefined();
    expect(a.get(AUTHORS[1]!.name)?.release).toBe('0.2.0');
    expect(b.get(AUTHORS[0]!.name)?.ipam).toEqual([SHARE]);
    clock.advance(5);
    const v = a.publish({ release: '0.1.0', links: [], ipam: [SHARE] }).version;
    expect(b.onGossip(a.gossip()!)).toBeDefined();
    expect(b.get(AUTHORS[0]!.name)).toMatchObject({ version: v, links: [] });
    expect(b.ageMs(AUTHORS[0]!.name)).toBe(0);
    clock.advance(1000);
    expect(b.ageMs(AUTHORS[0]!.name)).toBe(1000);
  });

  it('a report signed by another key never replaces the owner\'s, and is counted', () => {
    const a = gossiper(0);
    const b = gossiper(1);
    b.publish({ release: '0.1.0', links: [], ipam: [] });
    a.onGossip(b.gossip()!);
    const forged = entry(AUTHORS[1]!, 2 ** 51, { release: '6.6.6' }, AUTHORS[2]!);
    expect(a.onGossip(encodeReports([forged]), AUTHORS[2]!.name)).toBeUndefined();
    expect(a.get(AUTHORS[1]!.name)?.release).toBe('0.1.0');
    expect(a.stats.refused.badSignature).toBe(1);
  });

  it('a report about us from elsewhere is ignored', () => {
    const a = gossiper(0);
    a.publish({ release: '0.1.0', links: [], ipam: [] });
    const newer = entry(AUTHORS[0]!, 2 ** 51, { release: '9.9.9' });
    expect(a.onGossip(encodeReports([newer]))).toBeUndefined();
    expect(a.get(AUTHORS[0]!.name)?.release).toBe('0.1.0');
  });

  it('a malformed message is counted and changes nothing', () => {
    const a = gossiper(0);
    expect(() => a.onGossip(Uint8Array.from([1, 2, 3]))).toThrow(GossipDecodeError);
    expect(a.stats.decodeErrors).toBe(1);
    expect(a.gossip()).toBeUndefined();
  });

  it('a router that left is aged out with its topology record; ours stays', () => {
    const a = gossiper(0);
    a.publish({ release: '0.1.0', links: [], ipam: [] });
    a.onGossip(encodeReports([entry(AUTHORS[1]!, 1)]));
    a.onGossip(encodeReports([entry(AUTHORS[2]!, 1)]));
    a.retain(new Set([AUTHORS[2]!.name]));
    expect(a.all().map((r) => r.owner).sort()).toEqual([AUTHORS[0]!.name, AUTHORS[2]!.name].sort());
    expect(a.ageMs(AUTHORS[1]!.name)).toBeUndefined();
  });

  it('publishing tells the channel (a delta) and versions climb even when the wall clock goes back', () => {
    const clock = new FakeClock();
    const a = gossiper(0, clock);
    const deltas: Uint8Array[] = [];
    a.onLocalUpdate((d) => deltas.push(d));
    const v1 = a.publish({ release: '0.1.0', links: [], ipam: [] }).version;
    clock.setWall(0);
    const v2 = a.publish({ release: '0.1.0', links: [], ipam: [] }).version;
    expect(v2).toBeGreaterThan(v1);
    expect(deltas).toHaveLength(2);
    expect(decodeReportsMessage(deltas[1]!).entries[0]!.report.version).toBe(v2);
  });
});
