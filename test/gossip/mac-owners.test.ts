import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { GossipDecodeError } from '../../gossip/errors.js';
import { MacOwners, MacOwnersState, type MacRecord } from '../../gossip/mac-owners.js';
import { FakeClock } from '../fakes/fake-clock.js';
import { checkGossipDataLaws } from './gossip-data-laws.js';

const OWNERS = ['1111111111111111', '2222222222222222', '3333333333333333', '4444444444444444'];
const MACS = ['02:40:00:00:01:02', '02:40:00:00:01:03', '02:40:00:00:02:02', '02:40:00:00:03:02', '0a:00:00:00:00:01'];
const packr = new Packr({ useRecords: false });

const record: fc.Arbitrary<MacRecord> = fc.record({
  owner: fc.constantFrom(...OWNERS),
  version: fc.integer({ min: 1, max: 4 }), // few versions: equal-version ties happen often
  macs: fc.subarray(MACS).map((m) => [...m].sort()),
});
const state = fc.array(record, { maxLength: 6 }).map((rs) => () => MacOwnersState.of(rs));

checkGossipDataLaws('MacOwnersState', state);

describe('mac owners', () => {
  it('two routers converge by exchanging gossip, and each MAC has one owner', () => {
    const clock = new FakeClock();
    const a = new MacOwners({ clock }, { self: OWNERS[0]! });
    const b = new MacOwners({ clock }, { self: OWNERS[1]! });
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
    const s = MacOwnersState.of([
      { owner: OWNERS[0]!, version: 5, macs: [MACS[0]!] },
      { owner: OWNERS[1]!, version: 9, macs: [MACS[0]!] },
    ]);
    const m = new MacOwners({ clock: new FakeClock() }, { self: OWNERS[3]! });
    m.onGossip(s.encode());
    expect(m.owner(MACS[0]!)).toBe(OWNERS[1]);
    const tie = new MacOwners({ clock: new FakeClock() }, { self: OWNERS[3]! });
    tie.onGossip(MacOwnersState.of([{ owner: OWNERS[2]!, version: 7, macs: [MACS[1]!] }, { owner: OWNERS[1]!, version: 7, macs: [MACS[1]!] }]).encode());
    expect(tie.owner(MACS[1]!)).toBe(OWNERS[1]);
  });

  it('never lets gossip replace our own record, and announces only real changes', () => {
    const clock = new FakeClock();
    const me = new MacOwners({ clock }, { self: OWNERS[0]! });
    const deltas: Uint8Array[] = [];
    me.onLocalUpdate((d) => deltas.push(d));
    expect(me.setLocal(['02:40:00:00:01:02'])).toBe(true);
    expect(me.setLocal(['02:40:00:00:01:02'.toUpperCase()])).toBe(false);
    expect(deltas).toHaveLength(1);
    me.onGossip(MacOwnersState.of([{ owner: OWNERS[0]!, version: Number.MAX_SAFE_INTEGER, macs: [] }]).encode());
    expect(me.macsOf(OWNERS[0]!)).toEqual(['02:40:00:00:01:02']);
  });

  it.each([
    ['not msgpack', Buffer.from([0xc1])],
    ['wrong format', packr.pack([2, []])],
    ['a bad owner', packr.pack([1, [['nobody', 1, []]]])],
    ['owners out of order', packr.pack([1, [[OWNERS[1], 1, []], [OWNERS[0], 1, []]]])],
    ['a zero version', packr.pack([1, [[OWNERS[0], 0, []]]])],
    ['an upper-case MAC', packr.pack([1, [[OWNERS[0], 1, ['02:AA:00:00:00:01']]]])],
    ['MACs out of order', packr.pack([1, [[OWNERS[0], 1, [MACS[1], MACS[0]]]]])],
    ['too many MACs', packr.pack([1, [[OWNERS[0], 1, Array.from({ length: 4097 }, (_, i) => `02:00:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`)]]])],
  ])('refuses %s whole, with state unchanged', (_what, data) => {
    const m = new MacOwners({ clock: new FakeClock() }, { self: OWNERS[3]! });
    m.onGossip(MacOwnersState.of([{ owner: OWNERS[0]!, version: 1, macs: [MACS[0]!] }]).encode());
    const before = Buffer.from(m.gossip());
    expect(() => m.onGossip(data)).toThrow(GossipDecodeError);
    expect(Buffer.from(m.gossip())).toEqual(before);
    expect(m.decodeErrors).toBe(1);
  });
});
