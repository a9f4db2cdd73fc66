/**
 * The blocks of one range (src/k8s/blocks.ts): their size and number, who holds each as far as
 * this router knows, and what a listed Lease says (a malformed one: why it is ignored).
 */
import type { V1Lease } from '@kubernetes/client-node';
import { WeftError } from '../core/errors.js';
import { isPeerName } from '../core/ids.js';
import { addressToBigint, bigintToAddress, parseCidr } from '../core/net.js';
import { BLOCK_PREFIX, LEASE_ANNOTATIONS, leaseName } from './names.js';

/** A block of this router (what `owned` lists). */
export interface Mine {
  reclaimed: boolean;
}

/** A block's holder as the last list (and this router's writes since) said. */
export interface Known {
  holder: string;
  lease: V1Lease;
  /** The Lease is this block's own (false: a Lease of a differently cut block covering it). */
  exact: boolean;
}

/** One range cut in blocks. */
export interface BlockRange {
  cidr: string;
  family: 4 | 6;
  base: bigint;
  size: bigint;
  blockPrefix: number;
  blockSize: bigint;
  count: bigint;
  /** Block index → its Lease's holder (the last list, and what this router wrote since). */
  known: Map<bigint, Known>;
  /** Block index → held here. */
  mine: Map<bigint, Mine>;
  /** Block index → the router that holds a block this router held. */
  conflicts: Map<bigint, string>;
  /** Where a claim starts looking (spread by peer name, so routers rarely race). */
  start: bigint;
}

/** What a Lease with the weft label says, or why it is ignored. */
export type BlockLease = { cidr: string; family: 4 | 6; start: bigint; size: bigint; prefix: number; holder: string } | { problem: string };

/** Reads a listed Lease: its CIDR annotation (no host bits), its name (the CIDR's), its holder (a peer name). */
export function parseBlockLease(lease: V1Lease): BlockLease {
  const name = lease.metadata?.name ?? '';
  const cidrText = lease.metadata?.annotations?.[LEASE_ANNOTATIONS.cidr];
  const holder = lease.spec?.holderIdentity;
  if (typeof cidrText !== 'string') return { problem: `no ${LEASE_ANNOTATIONS.cidr} annotation` };
  const c = parseCidr(cidrText);
  if (typeof c === 'string') return { problem: `${LEASE_ANNOTATIONS.cidr}: ${c}` };
  const size = 1n << BigInt((c.family === 4 ? 32 : 128) - c.prefix);
  const start = addressToBigint(c.address, c.family);
  if (start % size !== 0n) return { problem: `${LEASE_ANNOTATIONS.cidr}: ${cidrText} has host bits set` };
  const cidr = `${bigintToAddress(start, c.family)}/${c.prefix}`;
  if (name !== leaseName(cidr)) return { problem: `its name is not ${leaseName(cidr)}, the name of ${cidr}` };
  if (typeof holder !== 'string' || !isPeerName(holder)) return { problem: `spec.holderIdentity ${JSON.stringify(holder ?? null)} is not a peer name` };
  return { cidr, family: c.family, start, size, prefix: c.prefix, holder };
}

export function blockRange(cidr: string, self: string): BlockRange {
  const c = parseCidr(cidr);
  if (typeof c === 'string') throw new WeftError('ERR_CONFIG_INVALID', `IPAM blocks: ${c}`);
  const bits = c.family === 4 ? 32 : 128;
  const size = 1n << BigInt(bits - c.prefix);
  const base = addressToBigint(c.address, c.family);
  if (base % size !== 0n) throw new WeftError('ERR_CONFIG_INVALID', `IPAM blocks: ${cidr} has host bits set`);
  const blockPrefix = Math.max(c.prefix, BLOCK_PREFIX[c.family]);
  const blockSize = 1n << BigInt(bits - blockPrefix);
  const count = size / blockSize;
  return {
    cidr: `${bigintToAddress(base, c.family)}/${c.prefix}`,
    family: c.family,
    base,
    size,
    blockPrefix,
    blockSize,
    count,
    known: new Map(),
    mine: new Map(),
    conflicts: new Map(),
    start: BigInt(`0x${self}`) % count,
  };
}

export function blockCidr(b: BlockRange, i: bigint): string {
  return `${bigintToAddress(b.base + i * b.blockSize, b.family)}/${b.blockPrefix}`;
}

/** The first block from `b.start` on (wrapping) that nobody holds; undefined when all are held. */
export function freeBlock(b: BlockRange): bigint | undefined {
  if (BigInt(b.known.size) >= b.count) return undefined;
  let i = b.start;
  for (let n = 0; n <= b.known.size; n++) {
    if (!b.known.has(i)) return i;
    i = i + 1n === b.count ? 0n : i + 1n;
  }
  return undefined;
}
