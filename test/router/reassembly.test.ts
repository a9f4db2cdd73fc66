import { describe, expect, it } from 'vitest';
import { FragmentTokens, TOKEN_LEN, TokenScratch } from '../../src/router/crypto/fragment-tokens.js';
import { ReplayWindow } from '../../src/router/crypto/replay-window.js';
import { Reassembler, REASSEMBLY_INCOMPLETE, type FragmentOwner } from '../../src/router/sleeve/reassembly.js';
import { FRAG_HDR_LEN, FRAG_TOKEN_OFFSET, MAX_FRAGMENTS, TYPE_FRAG, writeDataHeader } from '../../src/router/sleeve/wire.js';

/** A plaintext session: no tokens, nothing authenticated. */
const plain: FragmentOwner = { tokens: undefined, window: new ReplayWindow() };

function keyed(seed: number): FragmentOwner & { tokens: FragmentTokens } {
  return { tokens: new FragmentTokens(Buffer.alloc(32, seed)), window: new ReplayWindow() };
}

/** Writes each fragment's token as a sender holding `owner`'s key does. */
function sign(frags: Buffer[], owner: { tokens: FragmentTokens }): Buffer[] {
  const s = new TokenScratch(MAX_FRAGMENTS);
  const f0 = frags[0]!;
  f0.copy(s.nonce, 0, 16, 28);
  owner.tokens.fill(s, frags.length);
  frags.forEach((f, i) => s.buf.copy(f, FRAG_TOKEN_OFFSET, i * TOKEN_LEN, (i + 1) * TOKEN_LEN));
  return frags;
}

function fragments(total: number, fsize: number, counter: number): Buffer[] {
  const msg = Buffer.alloc(total);
  for (let i = 0; i < total; i++) msg[i] = (i * 7 + counter) & 0xff;
  const out: Buffer[] = [];
  for (let i = 0; i * fsize < total; i++) {
    const chunk = msg.subarray(i * fsize, Math.min(total, (i + 1) * fsize));
    const f = Buffer.alloc(FRAG_HDR_LEN + chunk.length);
    writeDataHeader(f, 0, TYPE_FRAG, 1, 2, 3, 4, counter);
    f.writeUInt32BE(total, 24);
    f.writeUInt16BE(fsize, 28);
    f.writeUInt16BE(i, 30);
    chunk.copy(f, FRAG_HDR_LEN);
    out.push(f);
  }
  return out;
}

function add(r: Reassembler, f: Buffer, peer = 0, counter = 1, now = 0, owner: FragmentOwner = plain): number {
  return r.add(peer, f, 0, f.length, 4, counter, now, owner);
}

describe('Reassembler', () => {
  it('completes a message from fragments in any order', () => {
    const r = new Reassembler();
    const fs = fragments(10_000, 1440, 1);
    const order = [3, 0, 6, 1, 5, 2, 4];
    let done = -1;
    for (const i of order) {
      const res = add(r, fs[i]!);
      if (i !== order.at(-1)) expect(res).toBe(REASSEMBLY_INCOMPLETE);
      else done = res;
    }
    expect(done).toBeGreaterThanOrEqual(0);
    const slot = r.slots[done]!;
    expect(slot.total).toBe(10_000);
    expect(slot.buf!.subarray(0, 10_000).every((b, i) => b === ((i * 7 + 1) & 0xff))).toBe(true);
    r.release(done);
    expect(r.inUse()).toBe(0);
  });

  it('counts duplicates and refuses inconsistent fragments', () => {
    const r = new Reassembler();
    const fs = fragments(5000, 1440, 1);
    add(r, fs[0]!);
    expect(add(r, fs[0]!)).toBe(-2);
    expect(r.drops.fragDuplicate).toBe(1);
    const bad = Buffer.from(fs[1]!);
    bad.writeUInt32BE(6000, 24); // different total for the same message
    expect(add(r, bad)).toBe(-2);
    expect(r.drops.fragMismatch).toBe(1);
    const wrongLen = fs[1]!.subarray(0, 100);
    expect(add(r, wrongLen)).toBe(-2);
    const hugeIndex = Buffer.from(fs[1]!);
    hugeIndex.writeUInt16BE(999, 30);
    expect(add(r, hugeIndex)).toBe(-2);
    const zero = Buffer.from(fs[1]!);
    zero.writeUInt16BE(0, 28);
    expect(add(r, zero)).toBe(-2);
    expect(r.drops.fragBad).toBe(3);
  });

  it('bounds memory per peer by evicting the oldest message', () => {
    const r = new Reassembler({ maxSlots: 16, maxPerPeer: 4 });
    for (let c = 1; c <= 10; c++) add(r, fragments(5000, 1440, c)[0]!, 0, c, c);
    expect(r.inUse()).toBe(4);
    expect(r.drops.fragEvicted).toBe(6);
    // another peer still gets slots
    add(r, fragments(5000, 1440, 1)[0]!, 1, 1, 20);
    expect(r.inUse()).toBe(5);
    expect(r.memoryBytes()).toBeLessThanOrEqual(16 * 66_000);
  });

  it('frees slots after the timeout', () => {
    const r = new Reassembler({ timeoutMs: 1000 });
    add(r, fragments(5000, 1440, 1)[0]!, 0, 1, 0);
    expect(r.sweep(500)).toBe(0);
    expect(r.sweep(1500)).toBe(1);
    expect(r.drops.fragTimeout).toBe(1);
    expect(r.inUse()).toBe(0);
  });

  it('with tokens, a fragment touches nothing until its token checks out', () => {
    const r = new Reassembler();
    const owner = keyed(1);
    const real = sign(fragments(10_000, 1440, 7), owner);
    const forged = sign(fragments(10_000, 1440, 8), keyed(2)); // another key's tokens
    for (const f of forged) expect(add(r, f, 0, 8, 0, owner)).toBe(-2);
    expect(r.drops.fragAuth).toBe(forged.length);
    expect(r.inUse()).toBe(0);
    // a real fragment opens a slot; a copy of another index's fragment under its header fails
    expect(add(r, real[0]!, 0, 7, 0, owner)).toBe(REASSEMBLY_INCOMPLETE);
    const moved = Buffer.from(real[2]!);
    moved.writeUInt16BE(3, 30);
    expect(add(r, moved, 0, 7, 0, owner)).toBe(-2);
    const total = Buffer.from(real[1]!);
    total.writeUInt32BE(9_999, 24);
    expect(add(r, total, 0, 7, 0, owner)).toBe(-2); // a real token, but not for this slot's length
    expect(r.drops.fragAuth).toBe(forged.length + 1);
    expect(r.drops.fragMismatch).toBe(1);
    let done = -1;
    for (const f of real.slice(1)) done = add(r, f, 0, 7, 0, owner);
    expect(done).toBeGreaterThanOrEqual(0);
    expect(r.slots[done]!.buf!.subarray(0, 10_000).every((b, i) => b === ((i * 7 + 7) & 0xff))).toBe(true);
  });

  it('a message given up (timeout or eviction) marks its counter, so its late fragments are replays', () => {
    const r = new Reassembler({ maxSlots: 4, maxPerPeer: 2, timeoutMs: 1000 });
    const owner = keyed(3);
    add(r, sign(fragments(5000, 1440, 10), owner)[0]!, 0, 10, 0, owner);
    expect(owner.window.check(10)).toBe(true);
    r.sweep(1500);
    expect(owner.window.check(10)).toBe(false);
    add(r, sign(fragments(5000, 1440, 11), owner)[0]!, 0, 11, 2000, owner);
    add(r, sign(fragments(5000, 1440, 12), owner)[0]!, 0, 12, 2001, owner);
    add(r, sign(fragments(5000, 1440, 13), owner)[0]!, 0, 13, 2002, owner); // evicts 11
    expect(r.drops.fragEvicted).toBe(1);
    expect(owner.window.check(11)).toBe(false);
    expect(owner.window.check(12)).toBe(true);
  });

  it('a full pool takes from the peer holding the most slots, not from a peer with few', () => {
    const r = new Reassembler({ maxSlots: 8, maxPerPeer: 6 });
    const hog = keyed(4);
    const quiet = keyed(5);
    add(r, sign(fragments(5000, 1440, 1), quiet)[0]!, 1, 1, 0, quiet);
    add(r, sign(fragments(5000, 1440, 2), quiet)[0]!, 1, 2, 1, quiet);
    for (let c = 1; c <= 12; c++) add(r, sign(fragments(5000, 1440, c), hog)[0]!, 0, c, 10 + c, hog);
    expect(r.slots.filter((s) => s.busy && s.peer === 1).length).toBe(2);
    expect(r.slots.filter((s) => s.busy && s.peer === 0).length).toBe(6);
    // the quiet peer's next message still gets a slot (from the hog)
    add(r, sign(fragments(5000, 1440, 3), quiet)[0]!, 1, 3, 100, quiet);
    expect(r.slots.filter((s) => s.busy && s.peer === 1).length).toBe(3);
  });
});
