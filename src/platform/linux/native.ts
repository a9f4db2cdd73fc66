import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { WeftError } from '../../core/errors.js';
import { packageRoot } from '../../core/paths.js';

export interface NativeAddon {
  Tap: new (opts: Record<string, unknown>) => NativeTap;
  Udp: new (opts: Record<string, unknown>) => NativeUdp;
  Aead: new (key: Buffer) => NativeAead;
  CryptoPool: new (threads: number) => NativeCryptoPool;
  CryptoBatch: new (pool: NativeCryptoPool | null, results: Int32Array, inlineBelow: number) => NativeCryptoBatch;
  CRYPTO_BATCH_MAX: number;
  opensslVersion: string;
  setSpin(us: number): void;
  /** Replaces the process image, same PID; returns only by throwing (ERR_EXEC). */
  execve(path: string, argv: string[], env: string[]): never;
  /** glibc's malloc_trim(0): free heap pages back to the kernel; whether any were. */
  mallocTrim(): boolean;
  TUN_OFFLOADS_TSO: number;
  TUN_OFFLOADS_USO: number;
  STATS_SIZE: number;
}

export interface NativeHandle {
  start(cb: (count: number) => void): void;
  stop(): void;
  close(): void;
  fd(): number;
  pollNow(): number;
}

export interface NativeTap extends NativeHandle {
  readonly name: string;
  /** The TUNSETOFFLOAD flags the device took (without the USO ones when the kernel refused them). */
  readonly offloads: number;
  write(buf: Buffer, off: number, len: number, zeroHdr: boolean): number;
  /** How frames are read: "io_uring", "read", or "read (io_uring unavailable: …)" / "(… given up: …)". */
  uring(): string;
}

export interface NativeUdp extends NativeHandle {
  readonly localPort: number;
  readonly family: 4 | 6;
  readonly gro: boolean;
  setDest(index: number, address: string, port: number): void;
  registerBuffer(id: number, buf: Buffer): void;
  send(count: number): number;
  gsoActive(): boolean;
}

export interface NativeAead {
  seal(buf: Buffer, off: number, len: number, ad: Buffer, adOff: number, ctr: Buffer, ctrOff: number): number;
  open(buf: Buffer, off: number, len: number, ad: Buffer, adOff: number, ctr: Buffer, ctrOff: number): number;
  destroy(): void;
}

/** Threads that run batches of AEAD jobs (crypto_pool.c). */
export interface NativeCryptoPool {
  readonly threads: number;
  /** Pool threads alive (threads - 1; 0 once closed). */
  running(): number;
  close(): void;
}

/** A job list of AEAD seals and opens (crypto_pool.c); `results` is the Int32Array given to it. */
export interface NativeCryptoBatch {
  seal(key: NativeAead, buf: Buffer, off: number, len: number, ad: Buffer, adOff: number, ctr: Buffer, ctrOff: number): number;
  open(key: NativeAead, buf: Buffer, off: number, len: number, ad: Buffer, adOff: number, ctr: Buffer, ctrOff: number): number;
  run(): number;
  clear(): void;
  /** [runs, pooledRuns, jobs, pooledJobs, bytes, pooledBytes, helped] */
  stats(): number[];
}

let cached: NativeAddon | undefined;

/** Loads the native addon once; a clear error says how to build it when it is missing. */
export function loadNative(): NativeAddon {
  if (cached !== undefined) return cached;
  const path = join(packageRoot(import.meta.url), 'build', 'Release', 'weft_native.node');
  if (!existsSync(path)) {
    throw new WeftError('ERR_NATIVE_MISSING', `native addon not built: ${path} is missing (run \`npm ci\` or \`npm run build:native\`)`);
  }
  const require = createRequire(import.meta.url);
  cached = require(path) as NativeAddon;
  return cached;
}
