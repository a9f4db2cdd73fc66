import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import type { PathCandidate } from '../../src/mesh/contracts.js';
import { GossipDecodeError } from '../../src/mesh/errors.js';
import { ANSWER, OFFER, PunchRefused, decodePunch, encodePunch, punchGossiper, type PunchMessage, type PunchRefusal } from '../../src/mesh/punch.js';
import { PunchWorld } from './punch-world.js';
import { testAuthor } from './test-authors.js';

const packr = new Packr({ useRecords: false });
const A = testAuthor('punch-a');
const B = testAuthor('punch-b');
const CANDS: PathCandidate[] = [{ endpoint: '198.19.1.2:6784', kind: 'local' }];

function msg(over: Partial<PunchMessage> = {}): PunchMessage {
  return { type: OFFER, from: A.name, to: B.name, incarnation: '0000000000000001', seq: 1, candidates: CANDS, ...over };
}

/** A wire message with any fields (valid signature length, content unchecked). */
function raw(fields: unknown[]): Uint8Array {
  return packr.pack(fields);
}

const sig = new Uint8Array(64);
const cands = (list: unknown[]) => raw([1, 1, A.name, B.name, '0000000000000001', 1, list, sig]);

describe('decodePunch', () => {
  const cases: { name: string; data: Uint8Array; reason: PunchRefusal; detail: RegExp }[] = [
    { name: 'not msgpack (truncated)', data: Uint8Array.of(0x98, 0x01), reason: 'malformed', detail: /not msgpack/ },
    { name: 'not an array of 8', data: raw([1, 1, A.name]), reason: 'malformed', detail: /not \[format/ },
    { name: 'unknown format', data: raw([2, 1, A.name, B.name, '0000000000000001', 1, [], sig]), reason: 'malformed', detail: /format 2/ },
    { name: 'unknown type', data: raw([1, 3, A.name, B.name, '0000000000000001', 1, [], sig]), reason: 'malformed', detail: /type 3/ },
    { name: 'from not a name', data: raw([1, 1, 'nobody', B.name, '0000000000000001', 1, [], sig]), reason: 'malformed', detail: /from/ },
    { name: 'to not a name', data: raw([1, 1, A.name, 7, '0000000000000001', 1, [], sig]), reason: 'malformed', detail: /to is/ },
    { name: 'bad incarnation', data: raw([1, 1, A.name, B.name, 'xyz', 1, [], sig]), reason: 'malformed', detail: /incarnation/ },
    { name: 'seq zero', data: raw([1, 1, A.name, B.name, '0000000000000001', 0, [], sig]), reason: 'malformed', detail: /seq/ },
    { name: 'short signature', data: raw([1, 1, A.name, B.name, '0000000000000001', 1, [], new Uint8Array(10)]), reason: 'malformed', detail: /signature/ },
    { name: 'candidate not a pair', data: cands([['198.19.1.2:6784']]), reason: 'malformed', detail: /candidate 0 is not/ },
    { name: 'unknown kind', data: cands([['198.19.1.2:6784', 'magic']]), reason: 'malformed', detail: /kind "magic"/ },
    { name: '17 candidates', data: cands(Array.from({ length: 17 }, (_, i) => [`198.19.1.${i + 1}:6784`, 'local'])), reason: 'tooManyCandidates', detail: /17 candidates/ },
    { name: 'unspecified v4', data: cands([['0.0.0.0:6784', 'local']]), reason: 'badEndpoint', detail: /unspecified/ },
    { name: 'loopback v4', data: cands([['127.0.0.1:6784', 'local']]), reason: 'badEndpoint', detail: /loopback/ },
    { name: 'multicast v4', data: cands([['224.0.0.5:6784', 'local']]), reason: 'badEndpoint', detail: /multicast/ },
    { name: 'broadcast', data: cands([['255.255.255.255:6784', 'local']]), reason: 'badEndpoint', detail: /broadcast/ },
    { name: 'link-local v4', data: cands([['169.254.1.1:6784', 'local']]), reason: 'badEndpoint', detail: /link-local/ },
    { name: 'unspecified v6', data: cands([['[::]:6784', 'local']]), reason: 'badEndpoint', detail: /unspecified/ },
    { name: 'loopback v6', data: cands([['[::1]:6784', 'local']]), reason: 'badEndpoint', detail: /loopback/ },
    { name: 'multicast v6', data: cands([['[ff02::1]:6784', 'local']]), reason: 'badEndpoint', detail: /multicast/ },
    { name: 'link-local v6', data: cands([['[fe80::1]:6784', 'local']]), reason: 'badEndpoint', detail: /link-local/ },
    { name: 'a host name', data: cands([['router.example:6784', 'local']]), reason: 'badEndpoint', detail: /not an IP address/ },
    { name: 'port 0', data: cands([['198.19.1.2:0', 'local']]), reason: 'badEndpoint', detail: /port 0/ },
    { name: 'no port', data: cands([['198.19.1.2', 'local']]), reason: 'badEndpoint', detail: /no port/ },
    { name: 'not canonical', data: cands([['[2001:2:0:0::1]:6784', 'local']]), reason: 'badEndpoint', detail: /canonical/ },
    { name: 'listed twice', data: cands([['198.19.1.2:6784', 'local'], ['198.19.1.2:6784', 'reflexive']]), reason: 'badEndpoint', detail: /twice/ },
    { name: 'too long', data: new Uint8Array(5000), reason: 'malformed', detail: /exceeds/ },
  ];
  for (const c of cases) {
    it(`refuses ${c.name}`, () => {
      const r = decodePunch(c.data);
      expect(r).toBeInstanceOf(PunchRefused);
      expect(r).toMatchObject({ reason: c.reason });
      expect((r as PunchRefused).detail).toMatch(c.detail);
    });
  }

  it('reads back what encodePunch wrote, IPv6 and 16 candidates included', () => {
    const list: PathCandidate[] = Array.from({ length: 15 }, (_, i) => ({ endpoint: `198.19.1.${i + 1}:6784`, kind: 'local' as const }));
    list.push({ endpoint: '[2001:2:1::5]:6784', kind: 'advertised' });
    const m = msg({ type: ANSWER, seq: 2 ** 40, candidates: list });
    const r = decodePunch(encodePunch(m, A.signer));
    expect(r).not.toBeInstanceOf(PunchRefused);
    expect((r as { message: PunchMessage }).message).toEqual(m);
  });
});

describe('the punch channel', () => {
  it('refuses gossip and broadcasts', () => {
    const g = punchGossiper(() => undefined);
    expect(() => g.onGossip(new Uint8Array(1))).toThrow(GossipDecodeError);
    expect(() => g.onBroadcast(A.name, new Uint8Array(1))).toThrow(GossipDecodeError);
    expect(g.gossip()).toBeUndefined();
  });
});

describe('PunchCoordinator: refusals', () => {
  /** A world of a and b (b receives), and an offer a would send. */
  function setup() {
    const w = new PunchWorld(['a', 'b']);
    const a = w.node('a');
    const b = w.node('b');
    const offer = (over: Partial<PunchMessage> = {}, by = a.author) =>
      encodePunch({ type: OFFER, from: a.name, to: b.name, incarnation: a.incarnation, seq: 100, candidates: a.candidates, ...over }, by.signer);
    return { w, a, b, offer };
  }

  const cases: { name: string; reason: PunchRefusal; hostile: boolean; run: (s: ReturnType<typeof setup>) => void }[] = [
    { name: 'addressed to someone else', reason: 'notForUs', hostile: true, run: ({ w, a, b, offer }) => w.inject(a.name, b.name, offer({ to: a.name })) },
    { name: 'signed as another sender', reason: 'wrongSender', hostile: true, run: ({ w, b, offer }) => w.inject(testAuthor('punch-c').name, b.name, offer()) },
    {
      name: 'signed by a key that is not the sender\'s',
      reason: 'badSignature',
      hostile: true,
      run: ({ w, a, b, offer }) => w.inject(a.name, b.name, offer({}, testAuthor('punch-mallory'))),
    },
    {
      name: 'from a peer with no record',
      reason: 'unknownPeer',
      hostile: false,
      run: ({ w, b }) => {
        const m = testAuthor('punch-stranger');
        w.inject(m.name, b.name, encodePunch({ type: OFFER, from: m.name, to: b.name, incarnation: '00000000000000ff', seq: 1, candidates: CANDS }, m.signer));
      },
    },
    {
      name: 'from a peer not reachable',
      reason: 'unknownPeer',
      hostile: false,
      run: ({ w, a, b, offer }) => {
        b.reachable.delete(a.name);
        w.inject(a.name, b.name, offer());
      },
    },
    { name: 'of an earlier run of the sender', reason: 'staleIncarnation', hostile: false, run: ({ w, a, b, offer }) => w.inject(a.name, b.name, offer({ incarnation: '00000000000000ee' })) },
    {
      name: 'replayed',
      reason: 'replayed',
      hostile: false,
      run: ({ w, a, b, offer }) => {
        const o = offer();
        w.inject(a.name, b.name, o);
        w.inject(a.name, b.name, o);
      },
    },
    {
      name: 'older than one taken',
      reason: 'replayed',
      hostile: false,
      run: ({ w, a, b, offer }) => {
        w.inject(a.name, b.name, offer({ seq: 5 }));
        w.inject(a.name, b.name, offer({ seq: 4 }));
      },
    },
    {
      name: 'over the offer budget',
      reason: 'rateLimited',
      hostile: false,
      run: ({ w, a, b, offer }) => {
        for (let i = 1; i <= 6; i++) w.inject(a.name, b.name, offer({ seq: i }));
      },
    },
    { name: 'an answer to no offer', reason: 'unsolicited', hostile: false, run: ({ w, a, b, offer }) => w.inject(a.name, b.name, offer({ type: ANSWER })) },
  ];
  for (const c of cases) {
    it(`refuses an offer ${c.name}, counted as ${c.reason}${c.hostile ? ', and on the channel' : ''}`, () => {
      const s = setup();
      const before = s.b.overlay.punches.length;
      const accepted = c.reason === 'replayed' || c.reason === 'rateLimited' ? 1 : 0;
      c.run(s);
      expect(s.b.coordinator.stats.refused).toEqual({ [c.reason]: 1 });
      expect(s.b.errors).toHaveLength(c.hostile ? 1 : 0);
      if (c.hostile) expect(s.b.errors[0]).toBeInstanceOf(GossipDecodeError);
      // Nothing refused punched or answered (the first offer of a replay or a burst was taken).
      expect(s.b.overlay.punches.length - before).toBe(accepted);
      expect(s.w.sent.filter((m) => m.from === s.b.name).length).toBe(c.reason === 'rateLimited' ? 5 : accepted);
    });
  }

  it('refuses an offer whose candidate a relaying member changed (the signature no longer checks)', () => {
    const { w, a, b } = setup();
    w.onTransit = (m) => {
      const d = decodePunch(m.data) as { message: PunchMessage; signature: Uint8Array };
      // Re-encode with one endpoint moved to the relay's own address, keeping the original signature.
      const forged = { ...d.message, candidates: [{ endpoint: '198.18.0.66:6784', kind: 'local' as const }, ...d.message.candidates.slice(1)] };
      const bytes = encodePunch(forged, { sign: () => d.signature });
      return bytes;
    };
    a.coordinator.update();
    w.deliver();
    expect(b.coordinator.stats.refused).toEqual({ badSignature: 1 });
    expect(b.overlay.punches).toEqual([]);
    expect(b.errors[0]).toBeInstanceOf(GossipDecodeError);
  });

  it('takes more offers as the budget refills', () => {
    const { w, a, b, offer } = setup();
    for (let i = 1; i <= 5; i++) w.inject(a.name, b.name, offer({ seq: i }));
    w.inject(a.name, b.name, offer({ seq: 6 }));
    expect(b.coordinator.stats.refused).toEqual({ rateLimited: 1 });
    w.clock.advance(1000);
    w.inject(a.name, b.name, offer({ seq: 7 }));
    expect(b.coordinator.stats.offersReceived).toBe(6);
  });
});

describe('PunchCoordinator: exchange', () => {
  it('an offer makes the other side probe its candidates and answer with its own; the answer makes the offerer probe those', () => {
    const w = new PunchWorld(['a', 'b']);
    const a = w.node('a');
    const b = w.node('b');
    b.keys.delete(a.name); // only a starts
    a.coordinator.update();
    expect(w.offersFrom('a', 'b')).toHaveLength(1);
    w.deliver();
    expect(b.overlay.punches).toEqual([{ name: a.name, candidates: a.candidates, at: 0 }]);
    expect(w.offersFrom('b', 'a', ANSWER)).toHaveLength(1);
    expect(a.overlay.punches).toEqual([{ name: b.name, candidates: b.candidates, at: 0 }]);
    expect(a.coordinator.stats).toMatchObject({ offersSent: 1, answersReceived: 1, refused: {} });
    expect(b.coordinator.stats).toMatchObject({ offersReceived: 1, answersSent: 1, refused: {} });
    expect(a.coordinator.theirs(b.name)).toEqual(b.candidates);
  });

  it('both sides offering at once: each answers, nobody refuses anything', () => {
    const w = new PunchWorld(['a', 'b']);
    const a = w.node('a');
    const b = w.node('b');
    a.coordinator.update();
    b.coordinator.update();
    w.deliver();
    for (const n of [a, b]) {
      expect(n.coordinator.stats.refused).toEqual({});
      expect(n.errors).toEqual([]);
      expect(n.overlay.punches.length).toBeGreaterThan(0);
    }
    expect(a.overlay.punches.every((p) => p.name === b.name)).toBe(true);
    expect(b.overlay.punches.at(-1)!.candidates).toEqual(a.candidates);
  });

  it('offers on a backoff from 1 s doubling to 60 s while there is no direct path', () => {
    const w = new PunchWorld(['a', 'b']);
    w.node('b').keys.clear(); // b never offers; its answers do not move a's schedule
    w.node('a').coordinator.update();
    w.run(200_000);
    expect(w.offersFrom('a', 'b').map((m) => m.at)).toEqual([0, 1000, 3000, 7000, 15_000, 31_000, 63_000, 123_000, 183_000]);
  });

  it('does not punch a peer with a proven direct path, nor one without keys', () => {
    const w = new PunchWorld(['a', 'b', 'c']);
    const a = w.node('a');
    a.overlay.up.add(w.node('b').name);
    a.keys.delete(w.node('c').name);
    a.coordinator.update();
    w.run(10_000);
    expect(w.offersFrom('a', 'b')).toEqual([]);
    expect(w.offersFrom('a', 'c')).toEqual([]);
    expect(a.overlay.punches).toEqual([]);
    expect(a.coordinator.status().map((p) => p.peer)).toEqual([]);
  });

  it('stops when the path comes up and offers again at once when it goes down, backoff reset', () => {
    const w = new PunchWorld(['a', 'b']);
    const a = w.node('a');
    const b = w.node('b');
    b.keys.clear();
    a.coordinator.update();
    w.run(20_000); // offers at 0, 1, 3, 7, 15 s
    a.overlay.up.add(b.name);
    a.coordinator.update();
    w.run(100_000);
    expect(w.offersFrom('a', 'b')).toHaveLength(5);
    expect(a.coordinator.status()).toMatchObject([{ peer: b.name, state: 'direct', offersSent: 5 }]);
    a.overlay.up.delete(b.name);
    a.coordinator.pathDown(b.name);
    const down = w.clock.now();
    w.run(4_000);
    expect(w.offersFrom('a', 'b').slice(5).map((m) => m.at - down)).toEqual([0, 1000, 3000]);
  });

  it('offers again at once when our candidates change, at most one offer a second', () => {
    const w = new PunchWorld(['a', 'b']);
    const a = w.node('a');
    w.node('b').keys.clear();
    a.coordinator.update();
    w.run(10_000); // 0, 1, 3, 7 s; next at 15 s
    a.candidates = [...a.candidates, { endpoint: '198.18.0.99:6784', kind: 'reflexive' }];
    a.coordinator.candidatesChanged();
    a.coordinator.candidatesChanged();
    const offers = w.offersFrom('a', 'b');
    expect(offers.map((m) => m.at)).toEqual([0, 1000, 3000, 7000, 10_000]);
    expect((decodePunch(offers.at(-1)!.data) as { message: PunchMessage }).message.candidates).toEqual(a.candidates);
  });

  it('forgets peers that are no longer reachable', () => {
    const w = new PunchWorld(['a', 'b']);
    const a = w.node('a');
    a.coordinator.update();
    expect(a.coordinator.status()).toHaveLength(1);
    a.reachable.clear();
    a.coordinator.update();
    expect(a.coordinator.status()).toEqual([]);
  });

  it('three routers: a and b exchange through c, which relays (and cannot make a punch elsewhere)', () => {
    const w = new PunchWorld(['a', 'b', 'c']);
    const a = w.node('a');
    const b = w.node('b');
    const c = w.node('c');
    // a and c, b and c have direct paths; a and b only reach each other through c.
    a.overlay.up.add(c.name);
    c.overlay.up.add(a.name);
    b.overlay.up.add(c.name);
    c.overlay.up.add(b.name);
    const relayed: string[] = [];
    w.onTransit = (m) => {
      relayed.push(`${m.from === a.name ? 'a' : 'b'}→c→${m.to === a.name ? 'a' : 'b'}`);
      return m.data;
    };
    for (const n of [a, b, c]) n.coordinator.update();
    w.deliver();
    expect(relayed.length).toBeGreaterThanOrEqual(2);
    expect(c.overlay.punches).toEqual([]);
    expect(a.overlay.punches.at(-1)).toMatchObject({ name: b.name, candidates: b.candidates });
    expect(b.overlay.punches.at(-1)).toMatchObject({ name: a.name, candidates: a.candidates });
    // c replays what it carried: refused, nothing new punched.
    const punches = a.overlay.punches.length + b.overlay.punches.length;
    for (const m of w.sent) w.inject(m.from, m.to, m.data);
    expect(a.overlay.punches.length + b.overlay.punches.length).toBe(punches);
    expect((a.coordinator.stats.refused.replayed ?? 0) + (b.coordinator.stats.refused.replayed ?? 0)).toBe(w.sent.length);
  });
});
