/**
 * TAP device contract. Frames are read in batches into a preallocated arena: item i starts at
 * `arena[i * stride + headroom]` and is `lens[i]` bytes long (a 10-byte virtio_net_hdr first when
 * `vnetHdr`). The bytes before it (headroom) and after it (tailroom) belong to the reader, so
 * headers and tags can be written in place. Items are valid only during the `onBatch` call.
 */
import type { IoCounters } from '../api/types.js';

export type { IoCounters };

export interface TapBatchHandler {
  /** `count` items are ready; a negative count is -errno of a read error that stopped reading. */
  (count: number): void;
}

export interface TapDevice {
  readonly name: string;
  readonly vnetHdr: boolean;
  readonly arena: Buffer;
  readonly lens: Int32Array;
  readonly stride: number;
  readonly headroom: number;
  readonly tailroom: number;
  readonly maxBatch: number;
  /** Begins delivering batches. */
  start(onBatch: TapBatchHandler): void;
  stop(): void;
  /**
   * Writes one frame synchronously; returns the bytes written or -errno (never throws).
   * With `zeroVnetHdr` on a vnet device, a zeroed virtio_net_hdr is written before the frame.
   */
  write(buf: Buffer, off: number, len: number, zeroVnetHdr: boolean): number;
  counters(): IoCounters;
  close(): void;
}

/** virtio_net_hdr layout (10 bytes, little-endian fields). */
export const VNET_HDR_LEN = 10;
export const VNET_F_NEEDS_CSUM = 1;
export const VNET_GSO_NONE = 0;
export const VNET_GSO_TCPV4 = 1;
export const VNET_GSO_UDP = 3;
export const VNET_GSO_TCPV6 = 4;
export const VNET_GSO_ECN = 0x80;
