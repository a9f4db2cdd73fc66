import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { GossipDecodeError } from '../../src/mesh/errors.js';
import { MacOwners, MacOwnersState, signMacRecord, type MacEntry, type MacRefusal } from '../../src/mesh/mac-owners.js';
import { FakeClock } from '../fakes/fake-clock.js';
import { recordingLogger } from '../fakes/recording-logger.js';
import { checkGossipDataLaws } from './gossip-data-laws.js';
import { testAuthor, type TestAuthor } from './test-authors.js';

const AUTHORS = Array.from({ length: 4 }, (_, i) => testAuthor(`mac-owner-${i}`));
const OWNERS = AUTHORS.map((a) => a.name);
const MACS = ['02:40:00:00:01:02', '02:40:00:00:01:03', '02:40:00:00:02:02', '02:40:00:00:03:02', '0a:00:00:00:00:01'];
const packr = new Packr({ useRecords: false });

/** `author`'s record, signed by `by` (default: the author). */
function entry(author: TestAuthor, version: number, macs: readonly string[], by: TestAuthor = author): MacEntry {
  return signMacRecord({ owner: author.name, publicKey: author.publicKey, version, macs }, by);
}

function owners(i: number, clock = new FakeClock(), more: { maxLocalMacs?: number } = {}, logger = recordingLogger().logger): MacOwners {
  const a = AUTHORS[i]!;
  return new MacOwners({ clock, signer: a.signer, logger }, { self: a.name, publicKey: a.publicKey, ...more });
}

const recordArb: fc.Arbitrary<MacEntry> = fc
  .record({
    owner: fc.integer({ min: 0, max: 3 }),
    version: fc.integer({ min: 1, max: 4 }), // few versions: equal-version ties happen often
    macs: fc.subarray(MACS).map((m) => [...m].sort()),
  })
  .map(({ owner, version, macs }) => entry(AUTHORS[owner]!, version, macs));
const state = fc.array(recordArb, { maxLength: 6 }).map((rs) => () => MacOwnersState.of(rs));

checkGossipDataLaws('MacOwnersState', state);

/** The fields of a record as msgpack values, signature included, to break one at a time. */
function fields(e: MacEntry): unknown[] {
  const r = e.record;
  return [r.owner, r.publicKey, r.version, [...r.macs], e.bytes.subarray(e.bytes.length - 64)];
}

function mac(i: number): string {
  return `02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
}

describe('mac owners', () => {
  it('two routers converge by exchanging gossip, and each MAC has one owner', () => {
    const clock = new FakeClock();
    const a = owners(0, clock);
    const b = owners(1, clock);
    a.setLocal(['02:40:00:00:01:02', '02:40:00:00:01:03']);
    b.setLocal(['02:40:00:00:02:02']);
    expect(b.onGossip(a.gossip())).toBeDefined();
    expect(a.onGossip(b.gossip())).toBeDefined();
    expect(a.onGossip(b.gossip())).toBeUndefined();
    expect(Buffer.from(a.gossip())).toEqual(Buffer.from(b.gossip()));
    expect(a.owner('02:40:00:00:02:02')).toBe(OWNERS[1]);
    expect(b.owner('02:40:00:00:01:03')).toBe(OWNERS[0]);
    expect(a.owner('02:40:00:00:09:09')).toBeUndefined();
  });

  it('a MAC that moved belongs to the newer record; equal versions go to the smaller owner name', () => {
    const s = MacOwnersState.of([entry(AUTHORS[0]!, 5, [MACS[0]!]), entry(AUTHORS[1]!, 9, [MACS[0]!])]);
    const m = owners(3);
    m.onGossip(s.encode());
    expect(m.owner(MACS[0]!)).toBe(OWNERS[1]);
    const tie = owners(3);
    tie.onGossip(MacOwnersState.of([entry(AUTHORS[2]!, 7, [MACS[1]!]), entry(AUTHORS[1]!, 7, [MACS[1]!])]).encode());
    expect(tie.owner(MACS[1]!)).toBe([OWNERS[1]!, OWNERS[2]!].sort()[0]);
  });

  it('never lets gossip replace our own record, and announces only real changes', () => {
    const clock = new FakeClock();
    const me = owners(0, clock);
    const deltas: Uint8Array[] = [];
    me.onLocalUpdate((d) => deltas.push(d));
    expect(me.setLocal(['02:40:00:00:01:02'])).toBe(true);
    expect(me.setLocal(['02:40:00:00:01:02'.toUpperCase()])).toBe(false);
    expect(deltas).toHaveLength(1);
    me.onGossip(MacOwnersState.of([entry(AUTHORS[0]!, 2 ** 40, [])]).encode());
    expect(me.macsOf(OWNERS[0]!)).toEqual(['02:40:00:00:01:02']);
  });

  it('claims at most maxLocalMacs: those already claimed stay, the rest are left out, counted and logged once', () => {
    const { logger, lines } = recordingLogger();
    const me = owners(0, new FakeClock(), { maxLocalMacs: 4 }, logger);
    me.setLocal([mac(9), mac(3)]);
    me.setLocal([mac(1), mac(2), mac(3), mac(4), mac(5), mac(9)]);
    expect(me.macsOf(OWNERS[0]!)).toEqual([mac(1), mac(2), mac(3), mac(9)]);
    expect(me.stats.localOverCap).toBe(2);
    me.setLocal([mac(1), mac(2), mac(3), mac(4), mac(5), mac(6), mac(9)]);
    expect(me.macsOf(OWNERS[0]!)).toEqual([mac(1), mac(2), mac(3), mac(9)]);
    expect(me.stats.localOverCap).toBe(3);
    expect(lines.filter((l) => String(l.msg).startsWith('more local MACs'))).toHaveLength(1);
    me.setLocal([mac(1)]);
    expect(me.stats.localOverCap).toBe(0);
  });

  it.each([
    ['not msgpack', Buffer.from([0xc1]), 'not a [format'],
    ['format 1 (unsigned records)', packr.pack([1, []]), 'format 1 is not 2'],
    ['owners out of order', packr.pack([2, [fields(entry(AUTHORS[1]!, 1, [])), fields(entry(AUTHORS[0]!, 1, []))].sort((x, y) => ((x[0] as string) < (y[0] as string) ? 1 : -1))]), 'owners not strictly ascending'],
  ])('refuses a message with %s whole, with state unchanged', (_what, data, reason) => {
    const m = owners(3);
    m.onGossip(MacOwnersState.of([entry(AUTHORS[0]!, 1, [MACS[0]!])]).encode());
    const before = Buffer.from(m.gossip());
    expect(() => m.onGossip(data)).toThrow(GossipDecodeError);
    expect(() => m.onGossip(data)).toThrow(reason);
    expect(Buffer.from(m.gossip())).toEqual(before);
    expect(m.decodeErrors).toBe(2);
  });

  const good = entry(AUTHORS[1]!, 5, [MACS[2]!]);
  const withField = (i: number, v: unknown) => {
    const f = fields(good);
    f[i] = v;
    return f;
  };
  const recordCases: [string, unknown, MacRefusal][] = [
    ['a bad owner', withField(0, 'nobody'), 'malformed'],
    ['a zero version', withField(2, 0), 'malformed'],
    ['a version over the bound', withField(2, Number.MAX_SAFE_INTEGER), 'versionBound'],
    ['an upper-case MAC', withField(3, ['02:AA:00:00:00:01']), 'malformed'],
    ['MACs out of order', withField(3, [MACS[1], MACS[0]]), 'malformed'],
    ['4097 MACs', withField(3, Array.from({ length: 4097 }, (_, i) => mac(i))), 'malformed'],
    ['no signature', fields(good).slice(0, 4), 'unsigned'],
    ['a nil signature', withField(4, null), 'unsigned'],
    ['a key that is not the owner\'s', withField(1, AUTHORS[2]!.publicKey), 'nameMismatch'],
    ['a changed MAC list under the owner\'s signature', withField(3, [MACS[3]]), 'badSignature'],
    ['a signature by another key', fields(entry(AUTHORS[1]!, 5, [MACS[2]!], AUTHORS[2]!)), 'badSignature'],
  ];

  it.each(recordCases)('refuses a record with %s by itself, counts it, and merges the rest', (_what, bad, reason) => {
    const { logger, lines } = recordingLogger();
    const m = owners(3, new FakeClock(), {}, logger);
    m.onGossip(MacOwnersState.of([entry(AUTHORS[1]!, 1, [MACS[0]!])]).encode());
    const other = fields(entry(AUTHORS[0]!, 3, [MACS[4]!]));
    const records = [bad, other].sort((x, y) => (String((x as unknown[])[0]) < String((y as unknown[])[0]) ? -1 : 1));
    const data = packr.pack([2, records]);
    expect(() => m.onGossip(data, 'aaaaaaaaaaaaaaaa')).not.toThrow();
    expect(m.macsOf(OWNERS[1]!)).toEqual([MACS[0]!]);
    expect(m.owner(MACS[4]!)).toBe(OWNERS[0]);
    expect(m.stats.refused[reason]).toBe(1);
    expect(Object.values(m.stats.refused).reduce((x, y) => x + y, 0)).toBe(1);
    m.onGossip(packr.pack([2, [bad]]), 'aaaaaaaaaaaaaaaa');
    expect(m.stats.refused[reason]).toBe(2);
    expect(lines.filter((l) => String(l.msg).startsWith('MAC record refused'))).toHaveLength(1);
    expect(m.decodeErrors).toBe(0);
  });

  it('does not check signatures of records that would not replace ours', () => {
    const m = owners(3);
    m.onGossip(MacOwnersState.of([entry(AUTHORS[1]!, 5, [MACS[0]!])]).encode());
    // An older copy with a broken signature is simply older: nothing to check, nothing counted.
    const stale = fields(entry(AUTHORS[1]!, 4, [MACS[0]!]));
    stale[4] = new Uint8Array(64);
    m.onGossip(packr.pack([2, [stale]]));
    expect(m.stats.refused.badSignature).toBe(0);
    expect(m.macsOf(OWNERS[1]!)).toEqual([MACS[0]!]);
  });
});
