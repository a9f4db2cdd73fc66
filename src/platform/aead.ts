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
import type { CryptoBatchStatus } from '../api/types.js';
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
  /** Threads a batch runs on (the calling one included); 0: jobs run one by one as queued. */
  readonly threads: number;
  createKey(material: Buffer): AeadKey;
  /** A batch of up to `capacity` jobs for this engine's keys (see AeadBatch). */
  createBatch(capacity: number): AeadBatch;
  /** Stops the engine's threads (batches then run on the calling thread); idempotent. */
  close(): void;
}

/**
 * A batch of seals and opens that run together: on several threads (fork-join) when the engine
 * has a pool, so a batch's messages are sealed or opened in parallel but read in batch order.
 * `seal` and `open` queue a job (the arguments of AeadKey.seal/open, the key first) and return
 * its index; the 14 AD bytes and the 8 counter bytes are copied when queued, the message is read
 * and written in place when the job runs. `run()` runs every queued job, fills `results[index]`
 * (what AeadKey.seal/open return: len + 16, the plaintext length, or -1), empties the batch and
 * returns how many jobs failed. With `deferred` false a job runs as it is queued (its result is
 * readable at once; run() has nothing left to do). A full batch (`pending === capacity`) refuses
 * more jobs with ERR_CRYPTO_BATCH_FULL: run it first. Keys must come from the batch's engine.
 */
export interface AeadBatch {
  readonly deferred: boolean;
  readonly capacity: number;
  /** Jobs queued and not yet run. */
  readonly pending: number;
  readonly results: Int32Array;
  seal(key: AeadKey, buf: Buffer, off: number, len: number, ad: Buffer, adOff: number, ctr: Buffer, ctrOff: number): number;
  open(key: AeadKey, buf: Buffer, off: number, len: number, ad: Buffer, adOff: number, ctr: Buffer, ctrOff: number): number;
  run(): number;
  /** Drops the queued jobs without running them. */
  clear(): void;
  stats(): AeadBatchStats;
}

/** What a batch has run: all of it, and the part handed to the pool's threads (as status shows it). */
export type AeadBatchStats = CryptoBatchStatus;

/** Error code of a job refused by a full batch. */
export const ERR_CRYPTO_BATCH_FULL = 'ERR_CRYPTO_BATCH_FULL';

/** A batch whose jobs run as they are queued, on the calling thread (any engine's keys). */
export class InlineAeadBatch implements AeadBatch {
  readonly deferred = false;
  readonly capacity = 1;
  readonly pending = 0;
  readonly results = new Int32Array(1);
  private runs = 0;
  private bytes = 0;

  seal(key: AeadKey, buf: Buffer, off: number, len: number, ad: Buffer, adOff: number, ctr: Buffer, ctrOff: number): number {
    this.results[0] = key.seal(buf, off, len, ad, adOff, ctr, ctrOff);
    this.runs++;
    this.bytes += len;
    return 0;
  }

  open(key: AeadKey, buf: Buffer, off: number, len: number, ad: Buffer, adOff: number, ctr: Buffer, ctrOff: number): number {
    this.results[0] = key.open(buf, off, len, ad, adOff, ctr, ctrOff);
    this.runs++;
    this.bytes += len;
    return 0;
  }

  run(): number {
    return 0;
  }

  clear(): void {}

  stats(): AeadBatchStats {
    return { runs: this.runs, pooledRuns: 0, jobs: this.runs, pooledJobs: 0, bytes: this.bytes, pooledBytes: 0, helped: 0 };
  }
}
