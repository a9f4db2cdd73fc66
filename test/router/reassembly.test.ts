import { describe, expect, it } from 'vitest';
import { Reassembler, REASSEMBLY_INCOMPLETE } from '../../router/sleeve/reassembly.js';
import { FRAG_HDR_LEN, TYPE_FRAG, writeDataHeader } from '../../router/sleeve/wire.js';

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

function add(r: Reassembler, f: Buffer, peer = 0, counter = 1, now = 0): number {
  return r.add(peer, f, 0, f.length, 4, counter, now);
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
});
