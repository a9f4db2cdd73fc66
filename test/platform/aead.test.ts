import { createCipheriv } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SodiumChaCha } from '../../src/router/crypto/sodium-aead.js';
import { OpenSslChaCha } from '../../src/platform/linux/native-aead.js';

const engines = [new OpenSslChaCha(), new SodiumChaCha()];

/** The 8 counter bytes an engine takes, and the whole 12-byte nonce node:crypto takes. */
function ctrOf(counter: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(counter);
  return b;
}
function nonceOf(counter: bigint): Buffer {
  return Buffer.concat([Buffer.alloc(4), ctrOf(counter)]);
}

/** node:crypto's ChaCha20-Poly1305 as the reference: ciphertext and tag. */
function reference(key: Buffer, counter: bigint, ad: Buffer, text: Buffer): Buffer {
  const c = createCipheriv('chacha20-poly1305', key, nonceOf(counter), { authTagLength: 16 });
  c.setAAD(ad, { plaintextLength: text.length });
  return Buffer.concat([c.update(text), c.final(), c.getAuthTag()]);
}

describe('ChaCha20-Poly1305 engines', () => {
  it('match node:crypto for a fixed case (ciphertext and tag)', () => {
    const key = Buffer.from('808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f', 'hex');
    const ad = Buffer.from('5157000000010000000200000003', 'hex');
    const text = Buffer.from("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.");
    const expected = reference(key, 0x0102030405n, ad, text);
    for (const e of engines) {
      const buf = Buffer.concat([text, Buffer.alloc(16)]);
      expect(e.createKey(key).seal(buf, 0, text.length, ad, 0, ctrOf(0x0102030405n), 0)).toBe(text.length + 16);
      expect(buf.toString('hex'), e.name).toBe(expected.toString('hex'));
    }
  });

  it('agree with each other on random inputs, open each other\'s output and refuse tampering', () => {
    const [ossl, sodium] = engines;
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 0, maxLength: 3000 }),
        fc.uint8Array({ minLength: 14, maxLength: 14 }),
        fc.bigInt({ min: 0n, max: 2n ** 64n - 2n }),
        fc.nat(),
        fc.integer({ min: 0, max: 40 }),
        (k, text, ad, counter, flip, pre) => {
          const key = Buffer.from(k);
          const a = Buffer.alloc(pre + text.length + 16);
          const b = Buffer.alloc(pre + text.length + 16);
          Buffer.from(text).copy(a, pre);
          Buffer.from(text).copy(b, pre);
          const adb = Buffer.concat([Buffer.alloc(3), Buffer.from(ad)]);
          const ctr = Buffer.concat([Buffer.alloc(pre), ctrOf(counter)]);
          ossl!.createKey(key).seal(a, pre, text.length, adb, 3, ctr, pre);
          sodium!.createKey(key).seal(b, pre, text.length, adb, 3, ctr, pre);
          expect(a.equals(b)).toBe(true);
          const x = Buffer.from(a);
          expect(sodium!.createKey(key).open(x, pre, text.length + 16, adb, 3, ctr, pre)).toBe(text.length);
          expect(x.subarray(pre, pre + text.length).equals(Buffer.from(text))).toBe(true);
          const y = Buffer.from(b);
          expect(ossl!.createKey(key).open(y, pre, text.length + 16, adb, 3, ctr, pre)).toBe(text.length);
          expect(y.subarray(pre, pre + text.length).equals(Buffer.from(text))).toBe(true);
          for (const e of engines) {
            const t = Buffer.from(a);
            const i = pre + (flip % (text.length + 16));
            t[i] = t[i]! ^ 0x01;
            expect(e.createKey(key).open(t, pre, text.length + 16, adb, 3, ctr, pre), `${e.name} tampered`).toBe(-1);
            expect(e.createKey(key).open(Buffer.from(a), pre, text.length + 16, adb, 3, ctrOf(counter + 1n), 0), `${e.name} wrong nonce`).toBe(-1);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('rekey switches the key; short input and misuse are handled', () => {
    for (const e of engines) {
      const k1 = Buffer.alloc(32, 1);
      const k2 = Buffer.alloc(32, 2);
      const ad = Buffer.alloc(14);
      const key = e.createKey(k1);
      const m = Buffer.alloc(40);
      key.seal(m, 0, 24, ad, 0, ctrOf(5n), 0);
      key.rekey(k2);
      expect(key.open(Buffer.from(m), 0, 40, ad, 0, ctrOf(5n), 0)).toBe(-1);
      key.rekey(k1);
      expect(key.open(Buffer.from(m), 0, 40, ad, 0, ctrOf(5n), 0)).toBe(24);
      expect(key.open(Buffer.alloc(10), 0, 10, ad, 0, ctrOf(5n), 0)).toBe(-1);
      key.destroy();
    }
    expect(() => engines[0]!.createKey(Buffer.alloc(16))).toThrow(/32 bytes, not 16/);
  });

  // The nonce is the counter's 8 bytes as they are: every boundary counter seals exactly as the
  // reference does, distinct counters never share a nonce (2^64-1 is not 0, as it was when the
  // counter went through a JS number), and nothing throws.
  const boundaries = [0n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 52n - 1n, 2n ** 52n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1024n, 2n ** 64n - 1n];
  it.each(boundaries)('counter %s: both engines match node:crypto and open only under that counter', (counter) => {
    const key = Buffer.alloc(32, 9);
    const ad = Buffer.from('0201000000010000000200000003', 'hex');
    const text = Buffer.from('a frame under a boundary counter');
    const expected = reference(key, counter, ad, text);
    for (const e of engines) {
      const k = e.createKey(key);
      const buf = Buffer.concat([text, Buffer.alloc(16)]);
      expect(k.seal(buf, 0, text.length, ad, 0, ctrOf(counter), 0), e.name).toBe(text.length + 16);
      expect(buf.equals(expected), e.name).toBe(true);
      for (const other of boundaries.filter((c) => c !== counter)) {
        expect(k.open(Buffer.from(buf), 0, buf.length, ad, 0, ctrOf(other), 0), `${e.name}: sealed under ${counter}, opened under ${other}`).toBe(-1);
      }
      expect(k.open(buf, 0, buf.length, ad, 0, ctrOf(counter), 0), e.name).toBe(text.length);
      expect(buf.subarray(0, text.length).equals(text)).toBe(true);
    }
  });

  it('refuses a counter outside its buffer (misuse) with an error, not a wrong nonce', () => {
    const k = engines[0]!.createKey(Buffer.alloc(32, 1));
    expect(() => k.seal(Buffer.alloc(40), 0, 8, Buffer.alloc(14), 0, Buffer.alloc(8), 4)).toThrow(/counter outside its buffer/);
  });
});
