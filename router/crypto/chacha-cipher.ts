import sodium from 'sodium-native';
import type { FrameCipher } from './frame-cipher.js';

const TAG = sodium.crypto_aead_chacha20poly1305_ietf_ABYTES;

/** ChaCha20-Poly1305 (IETF, RFC 8439) from libsodium, detached tag, in place. */
export class ChaChaCipher implements FrameCipher {
  readonly overhead = TAG;
  readonly sealed = true;

  seal(key: Buffer, nonce: Buffer, ad: Buffer, buf: Buffer, off: number, len: number): number {
    const m = buf.subarray(off, off + len);
    const mac = buf.subarray(off + len, off + len + TAG);
    sodium.crypto_aead_chacha20poly1305_ietf_encrypt_detached(m, mac, m, ad, null, nonce, key);
    return len + TAG;
  }

  open(key: Buffer, nonce: Buffer, ad: Buffer, buf: Buffer, off: number, len: number): number {
    if (len < TAG) return -1;
    const n = len - TAG;
    const c = buf.subarray(off, off + n);
    const mac = buf.subarray(off + n, off + len);
    try {
      sodium.crypto_aead_chacha20poly1305_ietf_decrypt_detached(c, null, c, mac, ad, nonce, key);
    } catch {
      return -1;
    }
    return n;
  }
}

/** No encryption and no authentication: only when the operator asks for plaintext. */
export class PlainCipher implements FrameCipher {
  readonly overhead = 0;
  readonly sealed = false;

  seal(_key: Buffer, _nonce: Buffer, _ad: Buffer, _buf: Buffer, _off: number, len: number): number {
    return len;
  }

  open(_key: Buffer, _nonce: Buffer, _ad: Buffer, _buf: Buffer, _off: number, len: number): number {
    return len;
  }
}
