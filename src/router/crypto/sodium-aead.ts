import sodium from 'sodium-native';
import { AEAD_AD_LEN, AEAD_KEY_LEN, AEAD_TAG_LEN, InlineAeadBatch, type AeadBatch, type AeadEngine, type AeadKey } from '../../platform/aead.js';

/**
 * ChaCha20-Poly1305 (IETF) from libsodium: the reference engine, used where the native addon's
 * OpenSSL engine is not available and to cross-check it in tests. Needs a typed-array view per
 * call (libsodium takes whole arrays), so it allocates a few small objects per message.
 */
class SodiumKey implements AeadKey {
  private readonly key = sodium.sodium_malloc(AEAD_KEY_LEN);
  private readonly nonce = Buffer.alloc(12);
  private readonly ad = Buffer.alloc(AEAD_AD_LEN);

  constructor(material: Buffer) {
    material.copy(this.key);
  }

  seal(buf: Buffer, off: number, len: number, ad: Buffer, adOff: number, ctr: Buffer, ctrOff: number): number {
    this.prepare(ad, adOff, ctr, ctrOff);
    const m = buf.subarray(off, off + len);
    sodium.crypto_aead_chacha20poly1305_ietf_encrypt_detached(m, buf.subarray(off + len, off + len + AEAD_TAG_LEN), m, this.ad, null, this.nonce, this.key);
    return len + AEAD_TAG_LEN;
  }

  open(buf: Buffer, off: number, len: number, ad: Buffer, adOff: number, ctr: Buffer, ctrOff: number): number {
    if (len < AEAD_TAG_LEN) return -1;
    this.prepare(ad, adOff, ctr, ctrOff);
    const n = len - AEAD_TAG_LEN;
    const c = buf.subarray(off, off + n);
    try {
      sodium.crypto_aead_chacha20poly1305_ietf_decrypt_detached(c, null, c, buf.subarray(off + n, off + len), this.ad, this.nonce, this.key);
    } catch {
      return -1;
    }
    return n;
  }

  rekey(material: Buffer): void {
    material.copy(this.key);
  }

  destroy(): void {
    sodium.sodium_memzero(this.key);
  }

  /** AD and nonce into the key's own buffers; the counter's 8 bytes are copied as they are. */
  private prepare(ad: Buffer, adOff: number, ctr: Buffer, ctrOff: number): void {
    ad.copy(this.ad, 0, adOff, adOff + AEAD_AD_LEN);
    ctr.copy(this.nonce, 4, ctrOff, ctrOff + 8);
  }
}

export class SodiumChaCha implements AeadEngine {
  readonly name = 'chacha20-poly1305 (libsodium)';
  /** libsodium's calls run on the JS thread only: batches run each job as it is queued. */
  readonly threads = 0;

  createKey(material: Buffer): AeadKey {
    return new SodiumKey(material);
  }

  createBatch(): AeadBatch {
    return new InlineAeadBatch();
  }

  close(): void {}
}
