/**
 * FrameCipher: seals and opens sleeve messages in place.
 *
 * `seal` encrypts buf[off, off+len) in place and writes the tag right after it (the caller leaves
 * `overhead` bytes of room); it returns the sealed length. `open` authenticates and decrypts
 * buf[off, off+len) (tag included) in place and returns the plaintext length, or -1 when the
 * message is forged, damaged or under the wrong key. Neither throws on the hot path.
 * `ad` is the 14 authenticated header bytes; `nonce` the 12-byte nonce.
 */
export interface FrameCipher {
  readonly overhead: number;
  readonly sealed: boolean;
  seal(key: Buffer, nonce: Buffer, ad: Buffer, buf: Buffer, off: number, len: number): number;
  open(key: Buffer, nonce: Buffer, ad: Buffer, buf: Buffer, off: number, len: number): number;
}
