/**
 * Peers with real identity keys for the IPAM tests (a name is the hash of its key, and every ring
 * record is signed): `writers[i]` signs as `names[i]`. Deterministic, shared with the simulation.
 */
import { createHash } from 'node:crypto';
import { simWriter } from '../../sim/ipam-sim.js';
import type { RingWriter } from '../../src/ipam/ring-signing.js';

export const writers: readonly RingWriter[] = Array.from({ length: 8 }, (_, i) => simWriter(500 + i));
export const names: readonly string[] = writers.map((w) => w.name);

/** The writer of a name among `writers`. */
export function writerOf(name: string): RingWriter {
  const w = writers.find((x) => x.name === name);
  if (w === undefined) throw new Error(`no test writer named ${name}`);
  return w;
}

/** Entry fields without the signature parts (for comparisons). */
export function plain(e: { token: bigint; owner: string; version: number; end: bigint; reclaimed?: { from: string; epoch: number } | undefined; writer?: string | undefined }): unknown[] {
  return e.reclaimed === undefined ? [e.token, e.owner, e.version, e.end, e.writer] : [e.token, e.owner, e.version, e.end, e.writer, e.reclaimed.from, e.reclaimed.epoch];
}

/**
 * Writers whose "signature" is a hash of the message: for tests of the ring alone, which never
 * verifies (admission.ts does). Same names as `writers`.
 */
export const fastWriters: readonly RingWriter[] = writers.map((w) => ({ name: w.name, publicKey: w.publicKey, sign: (m: Uint8Array) => createHash('sha512').update(m).digest() }));
