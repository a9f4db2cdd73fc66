import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ProbeAuth, ProbeVerdict } from '../../../src/router/fastpath/probe-auth.js';
import { PROBE_MIN, writeProbe } from '../../../src/router/fastpath/probe-frame.js';

const A = 1;
const B = 2;

/** A probe from B to A with `seq`, tagged by `signer` (which must hold a key for A). */
function probe(signer: ProbeAuth, seq: number, size = 64): Buffer {
  const buf = Buffer.alloc(size);
  writeProbe(buf, 0, size, { src: B, dst: A, seq, echo: 3, echoBig: 2, big: size > 64 });
  if (!signer.sign(A, buf, 0)) throw new Error('signer holds no key');
  return buf;
}

/** B's side holding `key` for A (as tx). */
function sender(key: Buffer): ProbeAuth {
  const s = new ProbeAuth();
  s.install(A, key, false);
  return s;
}

describe('probe authentication', () => {
  it('accepts a tagged probe once, then only newer ones under the same key', () => {
    const k = randomBytes(32);
    const rx = new ProbeAuth();
    rx.install(B, k, false);
    const tx = sender(k);
    const cases: [number, ProbeVerdict][] = [
      [5, ProbeVerdict.ok],
      [5, ProbeVerdict.replayed],
      [4, ProbeVerdict.replayed],
      [6, ProbeVerdict.ok],
      [1000, ProbeVerdict.ok],
      [999, ProbeVerdict.replayed],
    ];
    for (const [seq, want] of cases) expect([seq, rx.verify(B, probe(tx, seq), 0)]).toEqual([seq, want]);
  });

  it('refuses a probe with any authenticated byte changed, or under another key, or from a peer without keys', () => {
    const k = randomBytes(32);
    const rx = new ProbeAuth();
    rx.install(B, k, false);
    const good = probe(sender(k), 7, 1418);
    for (let i = 0; i < PROBE_MIN; i++) {
      const bad = Buffer.from(good);
      bad[i]! ^= 0x01;
      expect([i, rx.verify(B, bad, 0)]).toEqual([i, ProbeVerdict.badTag]);
    }
    expect(rx.verify(B, probe(sender(randomBytes(32)), 8), 0)).toBe(ProbeVerdict.badTag);
    expect(rx.verify(3, good, 0)).toBe(ProbeVerdict.noKey);
    expect(rx.verify(B, good, 0)).toBe(ProbeVerdict.ok); // the original was never spoiled
    rx.remove(B);
    expect(rx.verify(B, probe(sender(k), 9), 0)).toBe(ProbeVerdict.noKey);
    expect(new ProbeAuth().sign(A, Buffer.alloc(64), 0)).toBe(false);
  });

  it('accepts the current and the previous key, each with its own replay state; an older one falls out', () => {
    const [k1, k2, k3] = [randomBytes(32), randomBytes(32), randomBytes(32)];
    const rx = new ProbeAuth();
    rx.install(B, k1, false);
    expect(rx.verify(B, probe(sender(k1), 100), 0)).toBe(ProbeVerdict.ok);
    rx.install(B, k2, false);
    expect(rx.verify(B, probe(sender(k2), 1), 0)).toBe(ProbeVerdict.ok); // a new key, a new count
    expect(rx.verify(B, probe(sender(k1), 101), 0)).toBe(ProbeVerdict.ok);
    expect(rx.verify(B, probe(sender(k1), 100), 0)).toBe(ProbeVerdict.replayed);
    rx.install(B, k3, false);
    expect(rx.verify(B, probe(sender(k1), 102), 0)).toBe(ProbeVerdict.badTag);
    expect(rx.verify(B, probe(sender(k2), 2), 0)).toBe(ProbeVerdict.ok);
    expect(rx.verify(B, probe(sender(k3), 1), 0)).toBe(ProbeVerdict.ok);
  });

  it('confirmTx: sends under the old key until a probe under the new one arrives, then switches', () => {
    const [k1, k2, k3] = [randomBytes(32), randomBytes(32), randomBytes(32)];
    const me = new ProbeAuth(); // B's view of A... here: this side talks to peer A
    me.install(A, k1, false);
    me.install(A, k2, true);
    const signedBy = (key: Buffer, seq: number) => {
      const peer = new ProbeAuth();
      peer.install(B, key, false);
      const buf = Buffer.alloc(64);
      writeProbe(buf, 0, 64, { src: B, dst: A, seq, echo: 0, echoBig: 0, big: false });
      me.sign(A, buf, 0);
      return peer.verify(B, buf, 0);
    };
    expect(signedBy(k1, 1)).toBe(ProbeVerdict.ok); // still the old key
    // a second rekey before the first was confirmed: the key we send under stays, and is still accepted
    me.install(A, k3, true);
    expect(signedBy(k1, 2)).toBe(ProbeVerdict.ok);
    const fromA = (key: Buffer, seq: number) => {
      const buf = Buffer.alloc(64);
      writeProbe(buf, 0, 64, { src: A, dst: B, seq, echo: 0, echoBig: 0, big: false });
      const s = new ProbeAuth();
      s.install(B, key, false);
      s.sign(B, buf, 0);
      return me.verify(A, buf, 0);
    };
    expect(fromA(k1, 10)).toBe(ProbeVerdict.ok);
    expect(fromA(k2, 1)).toBe(ProbeVerdict.ok); // previous: accepted, but not the newest
    expect(signedBy(k1, 3)).toBe(ProbeVerdict.ok);
    expect(fromA(k3, 1)).toBe(ProbeVerdict.ok); // the peer holds the newest key: switch
    expect(signedBy(k3, 4)).toBe(ProbeVerdict.ok);
    expect(fromA(k1, 11)).toBe(ProbeVerdict.badTag); // wiped
  });
});
