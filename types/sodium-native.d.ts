// The subset of sodium-native that weft calls (the package ships no type declarations).
declare module 'sodium-native' {
  type Bytes = Uint8Array;
  const sodium: {
    crypto_aead_chacha20poly1305_ietf_ABYTES: number;
    crypto_aead_chacha20poly1305_ietf_KEYBYTES: number;
    crypto_aead_chacha20poly1305_ietf_NPUBBYTES: number;
    crypto_aead_chacha20poly1305_ietf_encrypt_detached(c: Bytes, mac: Bytes, m: Bytes, ad: Bytes | null, nsec: null, npub: Bytes, k: Bytes): number;
    crypto_aead_chacha20poly1305_ietf_decrypt_detached(m: Bytes, nsec: null, c: Bytes, mac: Bytes, ad: Bytes | null, npub: Bytes, k: Bytes): void;
    crypto_generichash(out: Bytes, input: Bytes, key?: Bytes): void;
    crypto_generichash_BYTES: number;
    crypto_generichash_KEYBYTES: number;
    crypto_generichash_KEYBYTES_MAX: number;
    /** ChaCha20 (IETF) keystream: fills all of `c` (block counter 0). */
    crypto_stream_chacha20_ietf(c: Bytes, n: Bytes, k: Bytes): void;
    crypto_stream_chacha20_ietf_KEYBYTES: number;
    randombytes_buf(buf: Bytes): void;
    sodium_memzero(buf: Bytes): void;
    /** Constant-time equality of two buffers of the same length. */
    sodium_memcmp(a: Bytes, b: Bytes): boolean;
    sodium_malloc(size: number): Buffer;
    crypto_box_keypair(pk: Bytes, sk: Bytes): void;
    crypto_box_PUBLICKEYBYTES: number;
    crypto_box_SECRETKEYBYTES: number;
    crypto_aead_chacha20poly1305_ietf_encrypt(c: Bytes, m: Bytes, ad: Bytes | null, nsec: null, npub: Bytes, k: Bytes): number;
    crypto_aead_chacha20poly1305_ietf_decrypt(m: Bytes, nsec: null, c: Bytes, ad: Bytes | null, npub: Bytes, k: Bytes): number;
    crypto_scalarmult_BYTES: number;
    crypto_scalarmult_SCALARBYTES: number;
    crypto_scalarmult_base(q: Bytes, n: Bytes): void;
    crypto_scalarmult_ed25519_base_noclamp(q: Bytes, n: Bytes): void;
    crypto_core_ed25519_scalar_reduce(r: Bytes, s: Bytes): void;
    crypto_core_ed25519_scalar_negate(r: Bytes, s: Bytes): void;
    /** Schnorr signature over Ed25519 with a raw scalar (sodium-native's "tweak" extension). */
    extension_tweak_ed25519_sign_detached(sig: Bytes, m: Bytes, scalar: Bytes, pk?: Bytes): void;
    crypto_sign_verify_detached(sig: Bytes, m: Bytes, pk: Bytes): boolean;
    crypto_sign_keypair(pk: Bytes, sk: Bytes): void;
    crypto_sign_PUBLICKEYBYTES: number;
    crypto_sign_SECRETKEYBYTES: number;
    crypto_sign_ed25519_pk_to_curve25519(x: Bytes, ed: Bytes): void;
    crypto_sign_ed25519_sk_to_curve25519(x: Bytes, ed: Bytes): void;
  };
  export default sodium;
}
