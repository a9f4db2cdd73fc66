/**
 * The records of a ring (ring.ts) and their orders: entries, life records (tombstones and
 * revivals), adoptions; `beats` and `lifeBeats` make each a total order, so merging is a join.
 * The genesis helpers compute what every peer computes alike from a cluster, space and seeds.
 */
import { createHash } from 'node:crypto';
import type { PeerName } from '../mesh/contracts.js';
import type { AddressSpace } from './space.js';

export interface Genesis {
  readonly clusterId: string;
  /** Normalized CIDR of the space. */
  readonly space: string;
  /** Sorted, unique. */
  readonly seeds: readonly PeerName[];
}

/** The forgotten peer (and the epoch of its tombstone) an heir took an entry from. */
export interface Reclaim {
  readonly from: PeerName;
  readonly epoch: number;
}

export interface RingEntry {
  readonly token: bigint;
  readonly owner: PeerName;
  readonly version: number;
  /** Exclusive end of the entry's range. */
  readonly end: bigint;
  /** Set when an heir took the entry over from a forgotten peer (absent otherwise). */
  readonly reclaimed?: Reclaim;
  /** The writer's name (the hash of `writerKey`), key and signature; all absent on genesis entries. */
  readonly writer?: PeerName;
  readonly writerKey?: Uint8Array;
  readonly sig?: Uint8Array;
}

/** A signature by a peer (its name is the hash of the key). */
export interface Signed {
  readonly writer: PeerName;
  readonly writerKey: Uint8Array;
  readonly sig: Uint8Array;
}

/**
 * A peer's life: odd epochs are tombstones (written by another peer, `weft forget`), even epochs
 * revivals (written by the peer itself). `prev` is the record of epoch − 1 (absent at epoch 1).
 */
export interface LifeRecord extends Signed {
  readonly peer: PeerName;
  readonly epoch: number;
  readonly prev?: Signed;
}

/** A seed's signed adoption of the genesis. */
export interface Adoption {
  readonly seed: PeerName;
  readonly key: Uint8Array;
  readonly sig: Uint8Array;
}

/** The writer of an entry; a genesis entry's is its seed. */
export function writerOf(e: RingEntry): PeerName {
  return e.writer ?? e.owner;
}

function compareBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): number {
  if (a === b) return 0;
  if (a === undefined) return -1;
  if (b === undefined) return 1;
  return Buffer.compare(a, b);
}

/**
 * Whether `a` wins over `b` at the same token: the higher version; between equal versions a
 * handover beats a reclaim (an heir working from a stale view bumps the version it knows, which
 * can equal that of a handover the forgotten peer made before it was forgotten; the handover must
 * win); then the owner whose name sorts last, the longer range, and, to make it a total order over
 * whatever a writer may sign, the writer, the reclaim's origin and the signature bytes.
 */
export function beats(a: RingEntry, b: RingEntry): boolean {
  if (a.version !== b.version) return a.version > b.version;
  if ((a.reclaimed === undefined) !== (b.reclaimed === undefined)) return b.reclaimed !== undefined;
  if (a.owner !== b.owner) return a.owner > b.owner;
  if (a.end !== b.end) return a.end > b.end;
  const aw = a.writer ?? '';
  const bw = b.writer ?? '';
  if (aw !== bw) return aw > bw;
  const ar = a.reclaimed;
  const br = b.reclaimed;
  if (ar !== undefined && br !== undefined) {
    if (ar.from !== br.from) return ar.from > br.from;
    if (ar.epoch !== br.epoch) return ar.epoch > br.epoch;
  }
  return compareBytes(a.sig, b.sig) > 0;
}

/** Whether life record `a` wins over `b` (same peer): the higher epoch, then writer, signature, previous record. */
export function lifeBeats(a: LifeRecord, b: LifeRecord): boolean {
  if (a.epoch !== b.epoch) return a.epoch > b.epoch;
  if (a.writer !== b.writer) return a.writer > b.writer;
  const s = compareBytes(a.sig, b.sig);
  if (s !== 0) return s > 0;
  const ap = a.prev;
  const bp = b.prev;
  if (ap === undefined || bp === undefined) return ap !== undefined && bp === undefined;
  if (ap.writer !== bp.writer) return ap.writer > bp.writer;
  return compareBytes(ap.sig, bp.sig) > 0;
}

export function adoptionBeats(a: Adoption, b: Adoption): boolean {
  return compareBytes(a.sig, b.sig) > 0;
}

export function genesisId(g: Genesis): string {
  return createHash('sha256').update(JSON.stringify(['weft-ipam-genesis', g.clusterId, g.space, g.seeds])).digest('hex').slice(0, 16);
}

/** Whether two geneses are the same (exactly when their `genesisId`s are, without hashing). */
export function sameGenesis(a: Genesis, b: Genesis): boolean {
  if (a === b) return true;
  if (a.clusterId !== b.clusterId || a.space !== b.space || a.seeds.length !== b.seeds.length) return false;
  for (let i = 0; i < a.seeds.length; i++) if (a.seeds[i] !== b.seeds[i]) return false;
  return true;
}

/** The genesis entries: the space split among the seeds (unsigned, version 1). */
export function genesisEntries(sp: AddressSpace, seeds: readonly PeerName[]): RingEntry[] {
  const n = BigInt(seeds.length);
  return seeds.map((owner, i) => ({ token: (BigInt(i) * sp.size) / n, owner, version: 1, end: (BigInt(i + 1) * sp.size) / n }));
}

/** The fields of an entry to write; `version` and the rest are signed by the writer. */
export interface EntryDraft {
  readonly token: bigint;
  readonly owner: PeerName;
  readonly version: number;
  readonly end: bigint;
  readonly reclaimed?: Reclaim;
}
