import type { IoCounters } from './tap.js';

/**
 * Data-path UDP socket contract.
 *
 * Receive: one `onBatch(count)` per batch. Datagram i is described by
 * `rxMeta[i * RX_META_STRIDE + k]`: k=0 offset into `rxArena`, 1 length, 2 GRO segment size
 * (0: one datagram; >0: `length` holds consecutive segments of that size, the last possibly
 * shorter; -1: truncated, drop it), 3 source port, 4 family (4|6), 5..8 source address as
 * big-endian 32-bit words (IPv4 uses word 5). A negative count is -errno of a socket error.
 *
 * Send: fill `txIov` (TX_IOV_STRIDE ints per entry: buffer id, offset, length) over buffers
 * given to `registerBuffer`, and `txDesc` (TX_DESC_STRIDE ints per message: first iov entry,
 * iov count, GSO segment size or 0, destination index from `setDest`), then `send(count)`.
 * A message with a GSO size is cut by the kernel into datagrams of that size (last may be
 * shorter). Returns the number of messages accepted; failures are counted, never thrown.
 */
export const RX_META_STRIDE = 10;
export const TX_DESC_STRIDE = 4;
export const TX_IOV_STRIDE = 3;

export interface UdpEndpoint {
  readonly family: 4 | 6;
  readonly localPort: number;
  readonly gro: boolean;
  readonly rxArena: Buffer;
  readonly rxMeta: Int32Array;
  readonly rxStride: number;
  readonly maxBatch: number;
  readonly txDesc: Int32Array;
  readonly txIov: Int32Array;
  readonly txMax: number;
  readonly txIovMax: number;
  start(onBatch: (count: number) => void): void;
  stop(): void;
  setDest(index: number, address: string, port: number): void;
  registerBuffer(id: number, buf: Buffer): void;
  send(count: number): number;
  gsoActive(): boolean;
  counters(): IoCounters;
  close(): void;
}
