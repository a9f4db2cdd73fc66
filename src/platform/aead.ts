/**
 * AEAD contract (ChaCha20-Poly1305, RFC 8439) used by the sleeve. An engine makes key objects;
 * a key seals and opens in place with a 12-byte nonce of 4 zero bytes followed by the 8 bytes
 * `ctr[ctrOff, ctrOff+8)` (the big-endian 64-bit message counter, taken byte for byte: a counter
 * never passes through a JS number on its way to the nonce), and 14 bytes of authenticated data
 * read from `ad[adOff..]`.
 *
 * seal: encrypts buf[off, off+len) in place, writes the 16-byte tag after it, returns len + 16.
 * open: authenticates and decrypts buf[off, off+len) (tag included) in place and returns the
 *       plaintext length, or -1 when the message is forged, damaged or under another key
 *       (the bytes are then garbage). Neither throws for a bad message.
 */
export const AEAD_TAG_LEN = 16;
export const AEAD_AD_LEN = 14;
export const AEAD_KEY_LEN = 32;

export interface AeadKey {
  seal(buf: Buffer, off: number, len: number, ad: Buffer, adOff: number, ctr: Buffer, ctrOff: number): number;
  open(buf: Buffer, off: number, len: number, ad: Buffer, adOff: number, ctr: Buffer, ctrOff: number): number;
  /** Replaces the key material (used to try candidate keys without new objects). */
  rekey(material: Buffer): void;
  /** Releases the key schedule now. */
  destroy(): void;
}

export interface AeadEngine {
  readonly name: string;
  createKey(material: Buffer): AeadKey;
}
