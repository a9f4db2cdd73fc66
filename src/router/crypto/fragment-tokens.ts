/**
 * Fragment tokens: 8 bytes in every fragment header that only holders of the session key can
 * compute, checked before a fragment touches the reassembly buffer. Forged fragments therefore
 * take no slot and evict nothing; replays are caught by the replay window before that.
 *
 *   token key   = BLAKE2b-256(key = traffic key, "weft fragment tokens v1")   (once per session)
 *   nonce       = counter (8 bytes, as in the header) || total (u32 BE)         (12 bytes)
 *   token i     = ChaCha20(token key, nonce) keystream bytes [8i, 8i + 8)
 *
 * A token binds the session, the message counter, the sealed length and the fragment index.
 * One keystream call per message (a few blocks: 46 fragments of a 64 KiB super-frame need 368
 * bytes), never one per fragment; per fragment only 8 bytes are compared. The content is
 * authenticated as before, by the AEAD over the whole message once it is reassembled.
 */
import sodium from 'sodium-native';

export const TOKEN_LEN = 8;
export const TOKEN_NONCE_LEN = 12;
const LABEL = Buffer.from('weft fragment tokens v1');
const BLOCK = 64;
const TOKENS_PER_BLOCK = BLOCK / TOKEN_LEN;

/**
 * Where tokens are computed: room for a whole message's tokens, with one view per whole number
 * of keystream blocks (libsodium writes as many bytes as its output buffer holds), all made once.
 */
export class TokenScratch {
  readonly buf: Buffer;
  readonly nonce = Buffer.alloc(TOKEN_NONCE_LEN);
  private readonly views: Buffer[] = [];

  /** `maxTokens`: the most fragments one message may have. */
  constructor(maxTokens: number) {
    this.buf = Buffer.alloc(Math.ceil(maxTokens / TOKENS_PER_BLOCK) * BLOCK);
    for (let b = 0; b * BLOCK <= this.buf.length; b++) this.views.push(this.buf.subarray(0, b * BLOCK));
  }

  /** A view of the first blocks, enough for `count` tokens. */
  viewFor(count: number): Buffer {
    return this.views[Math.ceil(count / TOKENS_PER_BLOCK)]!;
  }
}

export class FragmentTokens {
  private readonly key = sodium.sodium_malloc(sodium.crypto_stream_chacha20_ietf_KEYBYTES);

  /** Derives the token key from a session's traffic key (the caller wipes its copy). */
  constructor(material: Uint8Array) {
    sodium.crypto_generichash(this.key, LABEL, material);
  }

  /**
   * Writes the tokens of fragments [0, count) of one message to `s.buf[0, 8 * count)`. The nonce
   * (counter bytes and total) must already be in `s.nonce`.
   */
  fill(s: TokenScratch, count: number): void {
    sodium.crypto_stream_chacha20_ietf(s.viewFor(count), s.nonce, this.key);
  }

  destroy(): void {
    sodium.sodium_memzero(this.key);
  }
}

// Byte by byte on purpose: indexed access is inlined by the JIT, while Buffer's read/write
// methods cost ~20 ns each here (46 fragments per super-frame, on both ends).

/** True when the 8 token bytes at a[aOff..] equal those at b[bOff..]. */
export function tokenEquals(a: Buffer, aOff: number, b: Buffer, bOff: number): boolean {
  return (
    a[aOff] === b[bOff] && a[aOff + 1] === b[bOff + 1] && a[aOff + 2] === b[bOff + 2] && a[aOff + 3] === b[bOff + 3] &&
    a[aOff + 4] === b[bOff + 4] && a[aOff + 5] === b[bOff + 5] && a[aOff + 6] === b[bOff + 6] && a[aOff + 7] === b[bOff + 7]
  );
}

/** Copies the 8 token bytes at src[sOff..] to dst[dOff..]. */
export function copyToken(dst: Buffer, dOff: number, src: Buffer, sOff: number): void {
  dst[dOff] = src[sOff]!;
  dst[dOff + 1] = src[sOff + 1]!;
  dst[dOff + 2] = src[sOff + 2]!;
  dst[dOff + 3] = src[sOff + 3]!;
  dst[dOff + 4] = src[sOff + 4]!;
  dst[dOff + 5] = src[sOff + 5]!;
  dst[dOff + 6] = src[sOff + 6]!;
  dst[dOff + 7] = src[sOff + 7]!;
}
