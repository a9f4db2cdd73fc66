import { createCipheriv } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SodiumChaCha } from '../../router/crypto/sodium-aead.js';
import { OpenSslChaCha } from '../../src/platform/linux/native-aead.js';

const engines = [new OpenSslChaCha(), new SodiumChaCha()];

function nonceOf(counter: number): Buffer {
  const n = Buffer.alloc(12);
  n.writeUInt32BE(Math.floor(counter / 2 ** 32), 4);
  n.writeUInt32BE(counter >>> 0, 8);
  return n;
}

describe('ChaCha20-Poly1305 engines', () => {
  it('match node:crypto for a fixed case (ciphertext and tag)', () => {
    const key = Buffer.from('808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f', 'hex');
    const ad = Buffer.from('5157000000010000000200000003', 'hex');
    const text = Buffer.from("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.");
    const c = createCipheriv('chacha20-poly1305', key, nonceOf(0x0102030405), { authTagLength: 16 });
    c.setAAD(ad, { plaintextLength: text.length });
    const expected = Buffer.concat([c.update(text), c.final(), c.getAuthTag()]);
    for (const e of engines) {
      const buf = Buffer.concat([text, Buffer.alloc(16)]);
      expect(e.createKey(key).seal(buf, 0, text.length, ad, 0, 0x0102030405)).toBe(text.length + 16);
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
        fc.integer({ min: 0, max: 2 ** 52 }),
        fc.nat(),
        fc.integer({ min: 0, max: 40 }),
        (k, text, ad, counter, flip, pre) => {
          const key = Buffer.from(k);
          const a = Buffer.alloc(pre + text.length + 16);
          const b = Buffer.alloc(pre + text.length + 16);
          Buffer.from(text).copy(a, pre);
          Buffer.from(text).copy(b, pre);
          const adb = Buffer.concat([Buffer.alloc(3), Buffer.from(ad)]);
          ossl!.createKey(key).seal(a, pre, text.length, adb, 3, counter);
          sodium!.createKey(key).seal(b, pre, text.length, adb, 3, counter);
          expect(a.equals(b)).toBe(true);
          const x = Buffer.from(a);
          expect(sodium!.createKey(key).open(x, pre, text.length + 16, adb, 3, counter)).toBe(text.length);
          expect(x.subarray(pre, pre + text.length).equals(Buffer.from(text))).toBe(true);
          const y = Buffer.from(b);
          expect(ossl!.createKey(key).open(y, pre, text.length + 16, adb, 3, counter)).toBe(text.length);
          expect(y.subarray(pre, pre + text.length).equals(Buffer.from(text))).toBe(true);
          for (const e of engines) {
            const t = Buffer.from(a);
            const i = pre + (flip % (text.length + 16));
            t[i] = t[i]! ^ 0x01;
            expect(e.createKey(key).open(t, pre, text.length + 16, adb, 3, counter), `${e.name} tampered`).toBe(-1);
            expect(e.createKey(key).open(Buffer.from(a), pre, text.length + 16, adb, 3, counter + 1), `${e.name} wrong nonce`).toBe(-1);
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
      key.seal(m, 0, 24, ad, 0, 5);
      key.rekey(k2);
      expect(key.open(Buffer.from(m), 0, 40, ad, 0, 5)).toBe(-1);
      key.rekey(k1);
      expect(key.open(Buffer.from(m), 0, 40, ad, 0, 5)).toBe(24);
      expect(key.open(Buffer.alloc(10), 0, 10, ad, 0, 5)).toBe(-1);
      key.destroy();
    }
    expect(() => engines[0]!.createKey(Buffer.alloc(16))).toThrow(/32 bytes, not 16/);
  });
});
