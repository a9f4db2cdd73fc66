/**
 * External ownership of the ranges (Kubernetes mode): which router holds which block of a range is
 * decided outside the mesh (src/k8s/blocks.ts: one Lease per block in the API server, written with
 * optimistic concurrency), not by the gossiped ring. The Ipam with a `BlockOwnership` has no ring
 * and no "ipam" channel: it allocates single addresses locally, inside the blocks `owned` lists,
 * and claims another block when a range runs short.
 *
 * Offsets are the range's (0 .. size-1), as everywhere in src/ipam; `rangeIndex` is the range's
 * place in the configured ranges (`ranges`).
 */
import type { SpaceBlocksStatus, BlocksStatus } from '../api/types.js';
import type { PeerName } from '../mesh/contracts.js';

export type { SpaceBlocksStatus, BlocksStatus };

/** A block this router holds. */
export interface OwnedBlock {
  readonly start: bigint;
  readonly end: bigint;
  /**
   * Taken over from a forgotten router by this process (`reclaim`): the Ipam holds it for its
   * reclaim hold before allocating from it (the dead router's pods' addresses rest first).
   */
  readonly reclaimed: boolean;
}

/** What a claim got: a block, or why none (`kind` tells the caller which error to answer). */
export type ClaimResult =
  | { ok: true; block: readonly [start: bigint, end: bigint] }
  | {
      ok: false;
      /** exhausted: every block is held; conflict: the block asked for is another router's; unavailable: the API server cannot be reached or refused. */
      kind: 'exhausted' | 'conflict' | 'unavailable';
      reason: string;
      /** conflict: who holds it. */
      holder?: string;
    };

/** What a reclaim did, by block CIDR. */
export interface ReclaimResult {
  /** Blocks of the peer now held here. */
  taken: string[];
  /** Blocks another router reclaimed first. */
  lost: string[];
  /** Blocks that could not be written (the API server away); a later reclaim tries again. */
  failed: string[];
}

export interface BlockOwnership {
  /** The ranges, normalized, in the order the Ipam configures them (checked at construction). */
  readonly ranges: readonly string[];
  /** ok once the holders of the blocks are known (one successful read of the API); else why not. */
  ready(): { ok: boolean; reason?: string };
  /** The blocks of range `rangeIndex` held here and not known to be held by anyone else. */
  owned(rangeIndex: number): readonly OwnedBlock[];
  /**
   * Gets one more block of the range (any free one), or, with `at`, the block containing that
   * offset (already ours: ok at once). Never rejects: a failure is a `ClaimResult` with a reason.
   */
  claim(rangeIndex: number, at?: bigint): Promise<ClaimResult>;
  /** Takes over every block held by `peer` (a router that left); exactly one router gets each. */
  reclaim(peer: PeerName): Promise<ReclaimResult>;
  /** Who holds the block containing `offset` (undefined: nobody, as far as known). */
  holderOf(rangeIndex: number, offset: bigint): string | undefined;
  /** Why no block can be claimed in the range now (undefined: one can, as far as known). */
  exhausted(rangeIndex: number): string | undefined;
  /** Called after every change of `owned` or `ready`; returns the unsubscribe. */
  onChange(listener: () => void): () => void;
  /** The range's blocks for `weft ipam status`. */
  spaceStatus(rangeIndex: number): SpaceBlocksStatus;
  /** Where the ownership comes from, and how reading and writing it went. */
  status(): BlocksStatus;
}
