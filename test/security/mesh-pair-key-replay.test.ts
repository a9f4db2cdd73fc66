/**
 * Attacks on the pair-key handshake (Noise IK carried as mesh unicast, so every relay, a member,
 * sees the INITs it carries):
 * - a captured INIT replayed to the responder must never replace keys in use, also after the
 *   responder dropped its handshake state for that peer (the stamp of the newest INIT used to live
 *   in that state, so a replay then looked new and its keys, which nobody else holds, were installed);
 * - replays cost the responder at most one answer per second;
 * - a router whose wall clock was set back (and restarted) must still get keys at once; its INIT
 *   stamps are older than those the responder has seen.
 */
import { describe, expect, it } from 'vitest';
import { PairWorld } from '../mesh/pair-keys-world.js';

/** a and b with keys from a handshake a started, traffic flowing both ways. */
function established(): PairWorld {
  const w = new PairWorld();
  w.nodes.get('a')!.setWanted([w.name('b')]);
  w.flush();
  w.nodes.get('b')!.setWanted([w.name('a')]);
  w.flush();
  expect(w.talks('a', 'b')).toBe(true);
  return w;
}

describe('attack: a replayed pair-key INIT', () => {
  it('while keys work: no key in use changes, traffic goes on', () => {
    const w = established();
    const init = w.sent('a', 'b', 1).at(-1)!;
    const before = w.keysOf('b', 'a');
    w.run(5000);
    w.nodes.get('b')!.onMessage(w.name('a'), Uint8Array.from(init.data));
    w.flush();
    expect(w.keysOf('b', 'a')).toEqual(before);
    expect(w.talks('a', 'b')).toBe(true);
    expect(w.talks('a', 'b')).toBe(true);
  });

  it('after the responder dropped its state for the peer: no key in use changes, and replays are answered at most once a second', () => {
    const w = established();
    const init = w.sent('a', 'b', 1).at(-1)!;
    const before = { a: w.keysOf('a', 'b'), b: w.keysOf('b', 'a') };
    w.run(5000);
    const b = w.nodes.get('b')!;
    b.setWanted([]); // a is unreachable for a moment: b forgets its handshake state
    const answersBefore = w.sent('b', 'a', 2).length;
    for (let i = 0; i < 50; i++) b.onMessage(w.name('a'), Uint8Array.from(init.data));
    w.flush();
    expect(w.sent('b', 'a', 2).length - answersBefore).toBeLessThanOrEqual(1);
    expect(b.stats).toMatchObject({ authFailed: 0, staleAnswered: 1, stale: 49 }); // real replays, one answered
    expect(w.keysOf('b', 'a')).toEqual(before.b);
    expect(w.keysOf('a', 'b')).toEqual(before.a);
    expect(w.talks('a', 'b')).toBe(true);
    w.clock.advance(1000);
    for (let i = 0; i < 50; i++) b.onMessage(w.name('a'), Uint8Array.from(init.data));
    w.flush();
    expect(w.sent('b', 'a', 2).length - answersBefore).toBeLessThanOrEqual(2);
    expect(w.keysOf('b', 'a')).toEqual(before.b);
    expect(w.talks('a', 'b')).toBe(true);
    // a becomes reachable again: keys are renewed as usual, and traffic flows under them
    b.setWanted([w.name('a')]);
    w.run(15_000, 250, () => w.talks('a', 'b'));
    expect(w.keysOf('b', 'a')).not.toEqual(before.b);
    expect(w.talks('a', 'b')).toBe(true);
  });
});

describe('attack: a router whose clock was set back', () => {
  it('restarted an hour in the past, it gets new keys at once and traffic flows both ways', () => {
    const w = established();
    w.run(5000, 250, () => w.talks('a', 'b'));
    w.skew.set('a', -3_600_000);
    const a = w.boot('a'); // restarted: its newest stamp is gone, its wall clock is an hour back
    a.setWanted([w.name('b')]);
    w.flush();
    expect(a.status()[0]).toMatchObject({ peer: w.name('b'), state: 'established' });
    expect(w.send('a', 'b')).toBe(true); // b promotes the new keys on a's first datagram
    expect(w.send('b', 'a')).toBe(true);
    // and it keeps getting keys at every rekey while its clock is behind
    const rekeys = a.status()[0]!.rekeys;
    w.run(60_000, 250, () => w.talks('a', 'b'));
    expect(a.status()[0]!.rekeys).toBeGreaterThan(rekeys + 2);
    expect(w.talks('a', 'b')).toBe(true);
  });
});
