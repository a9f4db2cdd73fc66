import {
  AEAD_KEY_LEN, InlineAeadBatch, type AeadBatch, type AeadBatchStats, type AeadEngine, type AeadKey,
} from '../aead.js';
import { WeftError } from '../../core/errors.js';
import { loadNative, type NativeAead, type NativeCryptoBatch, type NativeCryptoPool } from './native.js';

/** At most this many crypto threads (the calling one included): the addon's limit. */
export const MAX_CRYPTO_THREADS = 16;
/**
 * Batches of fewer bytes run on the calling thread alone: handing jobs to a pool thread costs a
 * futex wake and, on a busy machine, the wait for that thread to be scheduled
 * (bench/micro/crypto-pool.ts measures where the pool starts to pay).
 */
export const DEFAULT_INLINE_BELOW = 16 * 1024;

class NativeKey implements AeadKey {
  private inner: NativeAead;
  private readonly ctor: new (key: Buffer) => NativeAead;

  constructor(ctor: new (key: Buffer) => NativeAead, material: Buffer) {
    this.ctor = ctor;
    this.inner = new ctor(material);
  }

  /** The addon's key object (what a native batch queues jobs with). */
  get native(): NativeAead {
    return this.inner;
  }

  seal(buf: Buffer, off: number, len: number, ad: Buffer, adOff: number, ctr: Buffer, ctrOff: number): number {
    return this.inner.seal(buf, off, len, ad, adOff, ctr, ctrOff);
  }

  open(buf: Buffer, off: number, len: number, ad: Buffer, adOff: number, ctr: Buffer, ctrOff: number): number {
    return this.inner.open(buf, off, len, ad, adOff, ctr, ctrOff);
  }

  rekey(material: Buffer): void {
    // (a job still queued with the old key keeps it until it has run: the addon pins it)
    this.inner.destroy();
    this.inner = new this.ctor(material);
  }

  destroy(): void {
    this.inner.destroy();
  }
}

function nativeKey(key: AeadKey): NativeAead {
  if (!(key instanceof NativeKey)) throw new WeftError('ERR_AEAD_KEY', 'a crypto batch of the OpenSSL engine takes only that engine\'s keys');
  return key.native;
}

/** A job list of the addon, run by the engine's pool (or on the calling thread: `pool` null). */
class NativeAeadBatch implements AeadBatch {
  readonly deferred = true;
  readonly capacity: number;
  readonly results: Int32Array;
  pending = 0;
  private readonly inner: NativeCryptoBatch;

  constructor(ctor: new (pool: NativeCryptoPool | null, results: Int32Array, inlineBelow: number) => NativeCryptoBatch, pool: NativeCryptoPool | null, capacity: number, inlineBelow: number) {
    this.capacity = capacity;
    this.results = new Int32Array(capacity);
    this.inner = new ctor(pool, this.results, inlineBelow);
  }

  seal(key: AeadKey, buf: Buffer, off: number, len: number, ad: Buffer, adOff: number, ctr: Buffer, ctrOff: number): number {
    const i = this.inner.seal(nativeKey(key), buf, off, len, ad, adOff, ctr, ctrOff);
    this.pending++;
    return i;
  }

  open(key: AeadKey, buf: Buffer, off: number, len: number, ad: Buffer, adOff: number, ctr: Buffer, ctrOff: number): number {
    const i = this.inner.open(nativeKey(key), buf, off, len, ad, adOff, ctr, ctrOff);
    this.pending++;
    return i;
  }

  run(): number {
    if (this.pending === 0) return 0;
    this.pending = 0;
    return this.inner.run();
  }

  clear(): void {
    this.pending = 0;
    this.inner.clear();
  }

  stats(): AeadBatchStats {
    const s = this.inner.stats();
    return { runs: s[0]!, pooledRuns: s[1]!, jobs: s[2]!, pooledJobs: s[3]!, bytes: s[4]!, pooledBytes: s[5]!, helped: s[6]! };
  }
}

export interface OpenSslChaChaInit {
  /**
   * Threads a batch runs on, the calling one included (0..16): 0 runs each job as it is queued
   * (no batching), 1 batches on the calling thread alone, N > 1 adds N - 1 pool threads.
   */
  threads?: number;
  /** Batches of fewer bytes run on the calling thread alone (default DEFAULT_INLINE_BELOW). */
  inlineBelow?: number;
}

/** ChaCha20-Poly1305 from the OpenSSL build that Node links and exports (through the addon). */
export class OpenSslChaCha implements AeadEngine {
  readonly name: string;
  readonly threads: number;
  private readonly ctor: new (key: Buffer) => NativeAead;
  private readonly batchCtor: new (pool: NativeCryptoPool | null, results: Int32Array, inlineBelow: number) => NativeCryptoBatch;
  private readonly inlineBelow: number;
  private pool: NativeCryptoPool | null = null;

  constructor(init: OpenSslChaChaInit = {}) {
    const n = loadNative();
    this.ctor = n.Aead;
    this.batchCtor = n.CryptoBatch;
    this.name = `chacha20-poly1305 (${n.opensslVersion})`;
    const threads = init.threads ?? 0;
    if (!Number.isInteger(threads) || threads < 0 || threads > MAX_CRYPTO_THREADS) {
      throw new WeftError('ERR_AEAD_THREADS', `crypto threads must be an integer 0..${MAX_CRYPTO_THREADS}, not ${threads}`);
    }
    this.threads = threads;
    this.inlineBelow = init.inlineBelow ?? DEFAULT_INLINE_BELOW;
    if (threads > 1) this.pool = new n.CryptoPool(threads);
  }

  createKey(material: Buffer): AeadKey {
    if (material.length !== AEAD_KEY_LEN) throw new WeftError('ERR_AEAD_KEY', `an AEAD key is ${AEAD_KEY_LEN} bytes, not ${material.length}`);
    return new NativeKey(this.ctor, material);
  }

  createBatch(capacity: number): AeadBatch {
    if (this.threads === 0) return new InlineAeadBatch();
    return new NativeAeadBatch(this.batchCtor, this.pool, capacity, this.inlineBelow);
  }

  /** Pool threads running (0 when the engine has none or was closed). */
  poolThreads(): number {
    return this.pool?.running() ?? 0;
  }

  close(): void {
    this.pool?.close();
  }
}

/**
 * The default of --crypto-threads for a machine with `cores` cores: the cores less one (a core is
 * left to the kernel's share of the traffic: softirqs, the TAP and the sockets), at most 4 (the
 * batches of one router rarely hold more messages than that in flight), and 0 (no batching) on
 * fewer than 3 cores, where a pool thread only takes CPU from the rest of the path (Performance).
 */
export function defaultCryptoThreads(cores: number): number {
  if (cores < 3) return 0;
  return Math.min(cores - 1, 4);
}
