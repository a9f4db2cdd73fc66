import sodium from 'sodium-native';
import { describe, expect, it } from 'vitest';
import { generateIdentity } from '../../src/mesh/identity.js';
import { SIGNATURE_LEN, Signer, Verifier, edwardsFromMontgomery, signedBytes } from '../../src/mesh/signing.js';

function edKeyPair(): { pk: Buffer; sk: Buffer } {
  const pk = Buffer.alloc(sodium.crypto_sign_PUBLICKEYBYTES);
  const sk = Buffer.alloc(sodium.crypto_sign_SECRETKEYBYTES);
  sodium.crypto_sign_keypair(pk, sk);
  return { pk, sk };
}

describe('XEdDSA signatures with X25519 identity keys', () => {
  it('maps a Montgomery key to the Edwards key it came from (sign bit cleared)', () => {
    for (let i = 0; i < 50; i++) {
      const { pk } = edKeyPair();
      const u = Buffer.alloc(32);
      sodium.crypto_sign_ed25519_pk_to_curve25519(u, pk);
      const expected = Buffer.from(pk);
      expected[31]! &= 0x7f;
      expect(edwardsFromMontgomery(u)).toEqual(expected);
    }
  });

  it('signs so that plain Ed25519 verification accepts, and the Edwards keys agree', () => {
    const v = new Verifier();
    for (let i = 0; i < 50; i++) {
      const id = generateIdentity('x');
      const s = new Signer(id.secretKey);
      expect(edwardsFromMontgomery(id.publicKey)).toEqual(s.edPublicKey);
      const msg = Buffer.from(`message ${i}`);
      const sig = s.sign(msg);
      expect(sig.length).toBe(SIGNATURE_LEN);
      expect(sodium.crypto_sign_verify_detached(sig, msg, s.edPublicKey)).toBe(true);
      expect(v.verify(id.publicKey, msg, sig)).toBe(true);
      s.destroy();
    }
    expect(v.failed).toBe(0);
  });

  it('works for secrets taken from Ed25519 keys too (a known X25519 secret)', () => {
    const { pk, sk } = edKeyPair();
    const xs = Buffer.alloc(32);
    const xp = Buffer.alloc(32);
    sodium.crypto_sign_ed25519_sk_to_curve25519(xs, sk);
    sodium.crypto_sign_ed25519_pk_to_curve25519(xp, pk);
    const s = new Signer(xs);
    const msg = Buffer.from('hello');
    expect(new Verifier().verify(xp, msg, s.sign(msg))).toBe(true);
  });

  it('refuses a changed message, another key, a damaged signature and bad lengths, without throwing', () => {
    const a = generateIdentity('a');
    const b = generateIdentity('b');
    const s = new Signer(a.secretKey);
    const msg = signedBytes('test', Buffer.from('body'));
    const sig = s.sign(msg);
    const v = new Verifier();
    expect(v.verify(a.publicKey, msg, sig)).toBe(true);
    expect(v.verify(b.publicKey, msg, sig)).toBe(false);
    expect(v.verify(a.publicKey, signedBytes('other', Buffer.from('body')), sig)).toBe(false);
    const bad = Buffer.from(sig);
    bad[5]! ^= 1;
    expect(v.verify(a.publicKey, msg, bad)).toBe(false);
    const bigS = Buffer.from(sig);
    bigS.fill(0xff, 32);
    expect(v.verify(a.publicKey, msg, bigS)).toBe(false);
    expect(v.verify(a.publicKey, msg, sig.subarray(0, 63))).toBe(false);
    expect(v.verify(a.publicKey.subarray(0, 31), msg, sig)).toBe(false);
    expect(v.verify(Buffer.alloc(32, 0xff), msg, sig)).toBe(false);
    expect(v.verify(Buffer.alloc(32), msg, sig)).toBe(false);
    expect(v.failed).toBe(8);
  });
});
