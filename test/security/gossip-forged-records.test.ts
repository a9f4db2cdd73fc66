/**
 * Attacks by a member (it holds the cluster secret, so its gossip reaches every router) on other
 * members' records. Before the hardening any member could rewrite another's topology record or
 * MAC record: a "forgotten" record at version 2^53 − 1 locked its victim out for good (the victim's
 * re-assert at 2^53 was not a safe integer and every peer refused it), and a forged record moved
 * the victim's endpoints. Now records are signed by their owner (tombstones carry the buried,
 * owner-signed record and their writer's signature), versions are bounded, and a bad record is
 * refused by itself while the rest of its message merges.
 *
 * Each test sends the attack's own messages: the unsigned format-1 records a member could send
 * before, and format-2 records forged with the attacker's own key. It uses only APIs that existed
 * before the fix, so it shows the attack working against that code.
 */
import { pack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { Writer, arrayHeader } from '../../src/mesh/canonical-msgpack.js';
import { GossipChannel } from '../../src/mesh/gossip-channel.js';
import { generateIdentity, type Identity } from '../../src/mesh/identity.js';
import { MacOwners } from '../../src/mesh/mac-owners.js';
import { signedBytes } from '../../src/mesh/signing.js';
import { Topology } from '../../src/mesh/topology.js';
import type { GossipTransport } from '../../src/mesh/contracts.js';
import { FakeClock } from '../fakes/fake-clock.js';

const BOUND = 2 ** 52 - 1;
const ATTACKER_ENDPOINT = '198.19.6.66:6784';

interface LiveFields {
  name: string;
  nickname: string;
  publicKey: Uint8Array;
  version: number;
  endpoints: string[];
  incarnation: Uint8Array;
  started: number;
}

/** A format-2 live record, signed by `signer` (the owner's, or a forger's). */
function liveRecord(f: LiveFields, signer: Identity['signer']): Uint8Array {
  const body = (fields: number): Writer => {
    const w = new Writer();
    w.array(fields);
    w.str(f.name);
    w.str(f.nickname);
    w.bin(f.publicKey);
    w.uint(f.version);
    w.array(f.endpoints.length);
    for (const e of f.endpoints) w.str(e);
    w.array(0);
    w.bin(f.incarnation);
    w.uint(f.started);
    return w;
  };
  const sig = signer.sign(signedBytes('topology-record v2', body(8).take()));
  const w = body(9);
  w.bin(sig);
  return w.take();
}

/** A format-2 tombstone of `live`, written and signed by `writer`. */
function tombstoneRecord(live: Uint8Array, left: string, writer: Identity): Uint8Array {
  const body = (fields: number): Writer => {
    const w = new Writer();
    w.array(fields);
    w.room(live.length);
    w.buf.set(live, w.at);
    w.at += live.length;
    w.str(left);
    w.bin(writer.publicKey);
    return w;
  };
  const sig = writer.signer.sign(signedBytes('topology-tombstone v2', body(3).take()));
  const w = body(4);
  w.bin(sig);
  return w.take();
}

/** A format-2 topology message of records sorted by name. */
function message(records: Uint8Array[]): Uint8Array {
  return Buffer.concat([Buffer.of(0x92, 2), arrayHeader(records.length), ...records]);
}

function router(id: Identity, clock: FakeClock, endpoint: string): Topology {
  return new Topology({ clock, signer: id.signer }, { publicKey: id.publicKey, nickname: id.nickname, endpoints: [endpoint] });
}

/** Delivers gossip as the mesh does: a refused message is dropped, the connection stays. */
function deliver(to: Topology, data: Uint8Array): void {
  try {
    to.onGossip(data);
  } catch (err) {
    if ((err as Error).name !== 'GossipDecodeError') throw err;
  }
}

/** Full-state gossip both ways until quiet; false if it never settles (a version war). */
function settle(ts: Topology[], rounds = 20): boolean {
  for (let i = 0; i < rounds; i++) {
    const before = ts.map((t) => Buffer.from(t.gossip()));
    for (const a of ts) for (const b of ts) if (a !== b) b.onGossip(a.gossip());
    if (ts.every((t, k) => before[k]!.equals(t.gossip()))) return true;
  }
  return false;
}

function setup() {
  const clock = new FakeClock();
  const [victimId, receiverId, attacker] = [generateIdentity('victim'), generateIdentity('receiver'), generateIdentity('attacker')];
  const victim = router(victimId, clock, '198.18.0.2:6784');
  const receiver = router(receiverId, clock, '198.18.0.3:6784');
  const victimRecord = victim.gossip().subarray(3); // [2, [record]]: the victim's own record
  expect(settle([victim, receiver])).toBe(true);
  return { clock, victim, victimRecord, receiver, attacker };
}

/** The victim's record as the receiver holds it is the victim's own, live, within the bound. */
function expectVictimIntact(victim: Topology, receiver: Topology): void {
  expect(settle([victim, receiver])).toBe(true);
  const held = receiver.get(victim.name);
  expect(held?.left).toBeUndefined();
  expect(held?.endpoints).toEqual(['198.18.0.2:6784']);
  expect(held?.version).toBe(victim.self.version);
  expect(victim.self.version).toBeLessThanOrEqual(BOUND);
  expect(receiver.peers().map((r) => r.name)).toContain(victim.name);
}

function fields(v: Topology, over: Partial<LiveFields>): LiveFields {
  return { name: v.name, nickname: v.self.nickname, publicKey: v.self.publicKey, version: v.self.version, endpoints: [...v.self.endpoints], incarnation: Buffer.alloc(8, 7), started: 0, ...over };
}

describe('attack: a member forges another member\'s topology record', () => {
  it('a "forgotten" tombstone at version 2^53 − 1 does not lock the victim out', () => {
    const { victim, receiver, attacker } = setup();
    const v = victim.self;
    // Before: an unsigned record, accepted from any member.
    deliver(receiver, pack([1, [[v.name, v.nickname, v.publicKey, Number.MAX_SAFE_INTEGER, [], [], 'forgotten']]]));
    // Now: a tombstone must carry the victim's record; the attacker can only forge one.
    const forgedLive = liveRecord(fields(victim, { version: BOUND }), attacker.signer);
    deliver(receiver, message([tombstoneRecord(forgedLive, 'forgotten', attacker)]));
    deliver(receiver, message([tombstoneRecord(liveRecord(fields(victim, { version: Number.MAX_SAFE_INTEGER }), attacker.signer), 'forgotten', attacker)]));
    expectVictimIntact(victim, receiver);
  });

  it('a genuine forget by a member does not stick while the victim is reachable (its next record wins)', () => {
    const { victim, victimRecord, receiver, attacker } = setup();
    deliver(receiver, message([tombstoneRecord(victimRecord, 'forgotten', attacker)]));
    expect(receiver.get(victim.name)?.left).toBe('forgotten');
    expectVictimIntact(victim, receiver);
  });

  it('a forged live record does not move the victim\'s endpoints, and starts no version war', () => {
    const { victim, receiver, attacker } = setup();
    const v = victim.self;
    const before = v.version;
    deliver(receiver, pack([1, [[v.name, 'victim', v.publicKey, v.version + 1000, [ATTACKER_ENDPOINT], [], null]]]));
    deliver(receiver, message([liveRecord(fields(victim, { version: v.version + 1000, endpoints: [ATTACKER_ENDPOINT] }), attacker.signer)]));
    expect(receiver.get(victim.name)?.endpoints).toEqual(['198.18.0.2:6784']);
    expectVictimIntact(victim, receiver);
    expect(victim.self.version).toBe(before);
  });

  it('a forged copy of the receiver\'s own record does not push its version past the bound', () => {
    const { victim, attacker } = setup();
    const v = victim.self;
    const before = v.version;
    deliver(victim, pack([1, [[v.name, v.nickname, v.publicKey, Number.MAX_SAFE_INTEGER, [], [], null]]]));
    deliver(victim, message([liveRecord(fields(victim, { version: BOUND }), attacker.signer)]));
    expect(victim.self.version).toBe(before);
  });

  it('a record over the version bound is refused by itself: the rest of the message merges and the channel keeps going', () => {
    const { clock, receiver, attacker } = setup();
    const honest = generateIdentity('honest');
    const records = [
      liveRecord({ name: attacker.name, nickname: 'a', publicKey: attacker.publicKey, version: BOUND + 2, endpoints: [], incarnation: Buffer.alloc(8, 1), started: 0 }, attacker.signer),
      liveRecord({ name: honest.name, nickname: 'h', publicKey: honest.publicKey, version: 5, endpoints: ['198.18.0.9:6784'], incarnation: Buffer.alloc(8, 2), started: 0 }, honest.signer),
    ].sort((x, y) => Buffer.compare(Buffer.from(x.subarray(2, 18)), Buffer.from(y.subarray(2, 18))));
    const sent: Uint8Array[] = [];
    const transport: GossipTransport = { gossipToNeighbours: (_c, d) => void sent.push(d), unicast: () => false, broadcast: () => undefined };
    const channel = new GossipChannel({ gossiper: receiver, transport, clock }, { channel: 'topology', coalesceMs: -1 });
    expect(() => channel.receiveGossip(attacker.name, message(records))).not.toThrow();
    expect(receiver.get(honest.name)?.version).toBe(5);
    expect(receiver.get(attacker.name)).toBeUndefined();
    expect(sent).toHaveLength(1); // the honest record is relayed on
  });
});

describe('attack: a member forges another member\'s MAC record', () => {
  it('the victim keeps its MACs', () => {
    const clock = new FakeClock();
    const [victimId, receiverId, attacker] = [generateIdentity('victim'), generateIdentity('receiver'), generateIdentity('attacker')];
    const victim = new MacOwners({ clock, signer: victimId.signer }, { self: victimId.name, publicKey: victimId.publicKey });
    const receiver = new MacOwners({ clock, signer: receiverId.signer }, { self: receiverId.name, publicKey: receiverId.publicKey });
    victim.setLocal(['02:40:00:00:02:02']);
    receiver.onGossip(victim.gossip());
    const forgeries = [
      pack([1, [[victimId.name, 2 ** 50, []]]]),
      (() => {
        const w = new Writer();
        const body = (n: number) => {
          w.at = 0;
          w.array(n);
          w.str(victimId.name);
          w.bin(victimId.publicKey);
          w.uint(2 ** 50);
          w.array(0);
        };
        body(4);
        const sig = attacker.signer.sign(signedBytes('macs-record v2', w.take()));
        body(5);
        w.bin(sig);
        return Buffer.concat([Buffer.of(0x92, 2, 0x91), w.take()]);
      })(),
    ];
    for (const f of forgeries) {
      try {
        receiver.onGossip(f);
      } catch (err) {
        if ((err as Error).name !== 'GossipDecodeError') throw err;
      }
    }
    expect(receiver.owner('02:40:00:00:02:02')).toBe(victimId.name);
    expect(receiver.macsOf(victimId.name)).toEqual(['02:40:00:00:02:02']);
  });
});
