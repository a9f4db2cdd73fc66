/**
 * The addon's crypto pool (crypto_pool.c through OpenSslChaCha.createBatch): batches sealed and
 * opened on several threads give the same bytes as one message at a time, a forged job fails
 * alone, a full batch refuses more with a clear error, keys stay alive while queued, and the
 * pool's threads are joined at close, at GC and when a worker's env ends.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { ERR_CRYPTO_BATCH_FULL, type AeadBatch, type AeadKey } from '../../src/platform/aead.js';
import { OpenSslChaCha, defaultCryptoThreads } from '../../src/platform/linux/native-aead.js';

const pooled = new OpenSslChaCha({ threads: 3, inlineBelow: 0 });
const single = new OpenSslChaCha({ threads: 0 });
afterAll(() => pooled.close());

/** A deterministic generator (mulberry32), so a failure can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Job {
  key: number;
  off: number;
  len: number;
  ad: Buffer;
  ctr: Buffer;
  text: Buffer;
}

/** `n` jobs of mixed sizes (0 B to 64 KiB) under `keys` keys, laid out in one arena with gaps. */
function jobs(r: () => number, n: number, keys: number): { list: Job[]; arena: Buffer } {
  const list: Job[] = [];
  let pos = 0;
  for (let i = 0; i < n; i++) {
    const pick = r();
    const len = pick < 0.4 ? Math.floor(r() * 200) : pick < 0.8 ? 1000 + Math.floor(r() * 500) : 16_000 + Math.floor(r() * 49_000);
    const ad = Buffer.alloc(14);
    for (let k = 0; k < 14; k++) ad[k] = Math.floor(r() * 256);
    const ctr = Buffer.alloc(8);
    ctr.writeUInt32BE(Math.floor(r() * 2 ** 20), 0);
    ctr.writeUInt32BE(i, 4);
    const text = Buffer.alloc(len);
    for (let k = 0; k < len; k++) text[k] = Math.floor(r() * 256);
    const off = pos + 3;
    list.push({ key: Math.floor(r() * keys), off, len, ad, ctr, text });
    pos = off + len + 16 + 5;
  }
  const arena = Buffer.alloc(pos + 16);
  for (const j of list) j.text.copy(arena, j.off);
  return { list, arena };
}

function keyMaterial(r: () => number, n: number): Buffer[] {
  return Array.from({ length: n }, () => Buffer.from(Array.from({ length: 32 }, () => Math.floor(r() * 256))));
}

/** Queues every job in `batch` (seal or open), runs it, returns the results. */
function runBatch(batch: AeadBatch, op: 'seal' | 'open', keys: AeadKey[], list: Job[], arena: Buffer, extra = 0): number[] {
  const idx = list.map((j) => (op === 'seal' ? batch.seal(keys[j.key]!, arena, j.off, j.len, j.ad, 0, j.ctr, 0) : batch.open(keys[j.key]!, arena, j.off, j.len + extra, j.ad, 0, j.ctr, 0)));
  expect(batch.pending).toBe(batch.deferred ? list.length : 0);
  batch.run();
  expect(batch.pending).toBe(0);
  return idx.map((i) => batch.results[i]!);
}

describe('crypto pool batches', () => {
  it('seal on the pool = seal one at a time, byte for byte, and each opens the other (1..64 jobs, mixed sizes and keys)', () => {
    const r = rng(20);
    for (let n = 1; n <= 64; n++) {
      const material = keyMaterial(r, 1 + (n % 5));
      const pk = material.map((m) => pooled.createKey(m));
      const sk = material.map((m) => single.createKey(m));
      const { list, arena } = jobs(r, n, material.length);
      const a = Buffer.from(arena);
      const b = Buffer.from(arena);
      const batch = pooled.createBatch(64);
      expect(runBatch(batch, 'seal', pk, list, a)).toEqual(list.map((j) => j.len + 16));
      // One at a time on the JS thread, through the plain key API.
      for (const j of list) expect(sk[j.key]!.seal(b, j.off, j.len, j.ad, 0, j.ctr, 0)).toBe(j.len + 16);
      expect(a.equals(b), `n=${n}`).toBe(true);
      // Pool-sealed opened one at a time; one-at-a-time-sealed opened on the pool.
      for (const j of list) expect(sk[j.key]!.open(a, j.off, j.len + 16, j.ad, 0, j.ctr, 0)).toBe(j.len);
      expect(runBatch(batch, 'open', pk, list, b, 16)).toEqual(list.map((j) => j.len));
      for (const j of list) {
        expect(a.subarray(j.off, j.off + j.len).equals(j.text)).toBe(true);
        expect(b.subarray(j.off, j.off + j.len).equals(j.text)).toBe(true);
      }
    }
  });

  it('runs most of a big batch on the pool (stats), and batches of one job or under the threshold on the calling thread', () => {
    const r = rng(7);
    const key = pooled.createKey(keyMaterial(r, 1)[0]!);
    const { list, arena } = jobs(r, 40, 1);
    const batch = pooled.createBatch(64);
    runBatch(batch, 'seal', [key], list, arena);
    runBatch(batch, 'seal', [key], list.slice(0, 1), arena);
    const s = batch.stats();
    expect(s).toMatchObject({ runs: 2, pooledRuns: 1, jobs: 41, pooledJobs: 40 });
    const thresholded = new OpenSslChaCha({ threads: 3, inlineBelow: 1 << 30 });
    const b2 = thresholded.createBatch(64);
    runBatch(b2, 'seal', [thresholded.createKey(keyMaterial(r, 1)[0]!)], list, arena);
    expect(b2.stats()).toMatchObject({ runs: 1, pooledRuns: 0, jobs: 40 });
    thresholded.close();
  });

  it('a forged job among good ones fails alone (its result -1, the others open)', () => {
    const r = rng(3);
    const material = keyMaterial(r, 3);
    const keys = material.map((m) => pooled.createKey(m));
    const { list, arena } = jobs(r, 48, 3);
    const batch = pooled.createBatch(64);
    runBatch(batch, 'seal', keys, list, arena);
    const bad = new Set([0, 17, 47]);
    const flip = (b: Buffer, at: number, bit: number): void => {
      b[at] = b[at]! ^ bit;
    };
    flip(arena, list[0]!.off + 1, 0x01); // a flipped ciphertext bit
    flip(arena, list[17]!.off + list[17]!.len + 3, 0x80); // a flipped tag bit
    flip(list[47]!.ad, 5, 0x04); // other authenticated data
    const results = runBatch(batch, 'open', keys, list, arena, 16);
    results.forEach((res, i) => expect(res, `job ${i}`).toBe(bad.has(i) ? -1 : list[i]!.len));
    for (let i = 1; i < 47; i++) if (!bad.has(i)) expect(arena.subarray(list[i]!.off, list[i]!.off + list[i]!.len).equals(list[i]!.text)).toBe(true);
    // An open too short to hold a tag, or outside its buffer, is failed when queued, not run.
    const k = keys[0]!;
    const short = batch.open(k, arena, 0, 15, list[0]!.ad, 0, list[0]!.ctr, 0);
    const outside = batch.open(k, arena, arena.length - 20, 40, list[0]!.ad, 0, list[0]!.ctr, 0);
    expect(batch.run()).toBe(2);
    expect([batch.results[short], batch.results[outside]]).toEqual([-1, -1]);
  });

  it('a batch grown past its capacity refuses the job with ERR_CRYPTO_BATCH_FULL; what was queued still runs', () => {
    const r = rng(5);
    const key = pooled.createKey(keyMaterial(r, 1)[0]!);
    const { list, arena } = jobs(r, 5, 1);
    const batch = pooled.createBatch(4);
    for (let i = 0; i < 4; i++) batch.seal(key, arena, list[i]!.off, list[i]!.len, list[i]!.ad, 0, list[i]!.ctr, 0);
    let err: unknown;
    try {
      batch.seal(key, arena, list[4]!.off, list[4]!.len, list[4]!.ad, 0, list[4]!.ctr, 0);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(Error);
    expect((err as NodeJS.ErrnoException).code).toBe(ERR_CRYPTO_BATCH_FULL);
    expect((err as Error).message).toMatch(/crypto batch full: 4 jobs queued/);
    expect(batch.pending).toBe(4);
    expect(batch.run()).toBe(0);
    expect(Array.from(batch.results)).toEqual(list.slice(0, 4).map((j) => j.len + 16));
  });

  it('refuses misuse with an error, not a crash: no room for the tag, AD outside its buffer, a key of another engine, a destroyed key', () => {
    const key = pooled.createKey(Buffer.alloc(32, 1));
    const batch = pooled.createBatch(8);
    const buf = Buffer.alloc(100);
    const ad = Buffer.alloc(14);
    const ctr = Buffer.alloc(8);
    expect(() => batch.seal(key, buf, 90, 10, ad, 0, ctr, 0)).toThrow(/no room for the tag/);
    expect(() => batch.seal(key, buf, 0, 10, ad, 1, ctr, 0)).toThrow(/AD or counter outside/);
    expect(() => batch.seal({ seal: () => 0, open: () => 0, rekey: () => undefined, destroy: () => undefined }, buf, 0, 10, ad, 0, ctr, 0)).toThrow(/only that engine's keys/);
    const gone = pooled.createKey(Buffer.alloc(32, 2));
    gone.destroy();
    expect(() => batch.seal(gone, buf, 0, 10, ad, 0, ctr, 0)).toThrow(/destroyed/);
    expect(batch.pending).toBe(0);
  });

  it('a key destroyed while its jobs are queued keeps working for them (pinned), then refuses new ones', () => {
    const m = Buffer.alloc(32, 9);
    const key = pooled.createKey(m);
    const ref = single.createKey(m);
    const r = rng(11);
    const { list, arena } = jobs(r, 20, 1);
    const expected = Buffer.from(arena);
    for (const j of list) ref.seal(expected, j.off, j.len, j.ad, 0, j.ctr, 0);
    const batch = pooled.createBatch(32);
    for (const j of list) batch.seal(key, arena, j.off, j.len, j.ad, 0, j.ctr, 0);
    key.destroy();
    expect(batch.run()).toBe(0);
    expect(arena.equals(expected)).toBe(true);
    expect(() => key.seal(arena, 0, 1, list[0]!.ad, 0, list[0]!.ctr, 0)).toThrow();
    // clear() drops queued jobs without running them (and lets their keys go).
    const k2 = pooled.createKey(m);
    const before = Buffer.from(arena);
    batch.seal(k2, arena, list[0]!.off, list[0]!.len, list[0]!.ad, 0, list[0]!.ctr, 0);
    k2.destroy();
    batch.clear();
    expect(batch.pending).toBe(0);
    expect(batch.run()).toBe(0);
    expect(arena.equals(before)).toBe(true);
  });

  it('the same results over many runs with jobs from two batches sharing one pool (no job of one run leaks into the next)', () => {
    const r = rng(99);
    const material = keyMaterial(r, 4);
    const pk = material.map((m) => pooled.createKey(m));
    const sk = material.map((m) => single.createKey(m));
    const tx = pooled.createBatch(64);
    const rx = pooled.createBatch(64);
    for (let round = 0; round < 150; round++) {
      const { list, arena } = jobs(r, 1 + Math.floor(r() * 30), 4);
      const a = Buffer.from(arena);
      const b = Buffer.from(arena);
      const half = Math.floor(list.length / 2);
      const i1 = list.slice(0, half).map((j) => tx.seal(pk[j.key]!, a, j.off, j.len, j.ad, 0, j.ctr, 0));
      const i2 = list.slice(half).map((j) => rx.seal(pk[j.key]!, a, j.off, j.len, j.ad, 0, j.ctr, 0));
      rx.run();
      tx.run();
      expect(i1.map((i) => tx.results[i])).toEqual(list.slice(0, half).map((j) => j.len + 16));
      expect(i2.map((i) => rx.results[i])).toEqual(list.slice(half).map((j) => j.len + 16));
      for (const j of list) sk[j.key]!.seal(b, j.off, j.len, j.ad, 0, j.ctr, 0);
      expect(a.equals(b), `round ${round}`).toBe(true);
    }
  });
});

/** Threads of this process named weft-crypto-* (the pool's). */
function poolThreads(): number {
  let n = 0;
  for (const t of readdirSync('/proc/self/task')) {
    try {
      if (readFileSync(join('/proc/self/task', t, 'comm'), 'utf8').startsWith('weft-crypto-')) n++;
    } catch {
      // (the thread ended meanwhile)
    }
  }
  return n;
}

describe('crypto pool teardown', () => {
  it('close() joins the threads; a batch of a closed pool runs on the calling thread, with the same bytes', () => {
    const before = poolThreads();
    const engine = new OpenSslChaCha({ threads: 4, inlineBelow: 0 });
    expect(engine.poolThreads()).toBe(3);
    expect(poolThreads()).toBe(before + 3);
    const r = rng(1);
    const m = keyMaterial(r, 1)[0]!;
    const { list, arena } = jobs(r, 10, 1);
    const expected = Buffer.from(arena);
    const ref = single.createKey(m);
    for (const j of list) ref.seal(expected, j.off, j.len, j.ad, 0, j.ctr, 0);
    const batch = engine.createBatch(16);
    engine.close();
    engine.close();
    expect(engine.poolThreads()).toBe(0);
    expect(poolThreads()).toBe(before);
    runBatch(batch, 'seal', [engine.createKey(m)], list, arena);
    expect(arena.equals(expected)).toBe(true);
    expect(batch.stats().pooledRuns).toBe(0);
  });

  it('the default thread count: none below 3 cores, the cores less one up to 4', () => {
    expect([1, 2, 3, 4, 5, 8, 64].map(defaultCryptoThreads)).toEqual([0, 0, 2, 3, 4, 4, 4]);
  });

  it('0 threads: jobs run as queued (no batch); 1 thread: deferred on the calling thread, no pool thread', () => {
    const before = poolThreads();
    const zero = new OpenSslChaCha({ threads: 0 });
    const one = new OpenSslChaCha({ threads: 1, inlineBelow: 0 });
    expect(poolThreads()).toBe(before);
    expect(zero.createBatch(8).deferred).toBe(false);
    expect(one.createBatch(8).deferred).toBe(true);
    expect(() => new OpenSslChaCha({ threads: 17 })).toThrow(/0\.\.16/);
  });

  it('a worker that ends with a pool and queued jobs never closed leaves no thread behind (env cleanup hook)', async () => {
    const before = poolThreads();
    const addon = join(process.cwd(), 'build', 'Release', 'weft_native.node');
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      const fs = require('node:fs');
      const n = require(workerData.addon);
      const pool = new n.CryptoPool(4);
      const batch = new n.CryptoBatch(pool, new Int32Array(8), 0);
      const key = new n.Aead(Buffer.alloc(32, 7));
      const buf = Buffer.alloc(4096);
      batch.seal(key, buf, 0, 1000, Buffer.alloc(14), 0, Buffer.alloc(8), 0);
      batch.run();
      batch.seal(key, buf, 0, 1000, Buffer.alloc(14), 0, Buffer.alloc(8), 0);
      let mine = 0;
      for (const t of fs.readdirSync('/proc/self/task')) {
        try { if (fs.readFileSync('/proc/self/task/' + t + '/comm', 'utf8').startsWith('weft-crypto-')) mine++; } catch {}
      }
      parentPort.postMessage(mine);
    `;
    const w = new Worker(code, { eval: true, workerData: { addon } });
    const seen = await new Promise<number>((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
    expect(seen).toBe(before + 3);
    await new Promise<void>((resolve) => w.once('exit', () => resolve()));
    expect(poolThreads()).toBe(before);
  });

  it('pools dropped without close() are joined when collected; a process exits with a pool still open', () => {
    const addon = join(process.cwd(), 'build', 'Release', 'weft_native.node');
    const code = `
      const fs = require('node:fs');
      const n = require(${JSON.stringify(addon)});
      const count = () => fs.readdirSync('/proc/self/task').filter((t) => {
        try { return fs.readFileSync('/proc/self/task/' + t + '/comm', 'utf8').startsWith('weft-crypto-'); } catch { return false; }
      }).length;
      (() => { for (let i = 0; i < 3; i++) new n.CryptoBatch(new n.CryptoPool(3), new Int32Array(4), 0); })();
      const made = count();
      (async () => {
        for (let i = 0; i < 10 && count() > 0; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 20)); }
        const after = count();
        const kept = new n.CryptoPool(2);
        process.stdout.write(JSON.stringify({ made, after, kept: kept.running() }));
      })();
    `;
    const out = spawnSync(process.execPath, ['--expose-gc', '-e', code], { encoding: 'utf8', timeout: 20_000 });
    expect(out.status, out.stderr).toBe(0);
    expect(JSON.parse(out.stdout)).toEqual({ made: 6, after: 0, kept: 1 });
  });
});
