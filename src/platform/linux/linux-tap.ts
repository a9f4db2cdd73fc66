import type { IoCounters, TapBatchHandler, TapDevice } from '../tap.js';
import { fromNativeError } from '../errors.js';
import { readCounters } from './io-counters.js';
import { loadNative, type NativeTap } from './native.js';

export interface LinuxTapInit {
  name: string;
  /** IFF_VNET_HDR with TSO/checksum offloads: super-frames up to 64 KiB per read. */
  vnetHdr: boolean;
  /** Largest frame in per-frame mode (MTU + Ethernet header); ignored with vnetHdr. */
  maxFrame?: number;
  maxBatch?: number;
  headroom?: number;
  tailroom?: number;
  /** Create the device inside this network namespace (a path like /var/run/netns/NAME). */
  netns?: string;
  /** Read batches through io_uring when the kernel allows it (default true; see native/uring.h). */
  uring?: boolean;
  /**
   * With vnetHdr: offer UDP GSO (TUN_F_USO4|USO6) too, so a pod's UDP_SEGMENT sends reach the
   * reader whole (default true); a kernel without USO takes the TSO offloads alone.
   */
  uso?: boolean;
}

/** Largest read with vnet_hdr: 10-byte header + 64 KiB IP packet + Ethernet header. */
export const VNET_MAX_READ = 10 + 65535 + 14 + 4;

function align(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

/** A TAP device opened through the native addon (creates the device when it does not exist). */
export class LinuxTap implements TapDevice {
  readonly name: string;
  readonly vnetHdr: boolean;
  readonly arena: Buffer;
  readonly lens: Int32Array;
  readonly stride: number;
  readonly headroom: number;
  readonly tailroom: number;
  readonly maxBatch: number;
  /** The device takes and gives USO super-frames (vnet mode, a kernel with TUN_F_USO4/6). */
  readonly uso: boolean;
  private readonly stats: Float64Array;
  private readonly native: NativeTap;

  constructor(init: LinuxTapInit) {
    const addon = loadNative();
    this.vnetHdr = init.vnetHdr;
    this.headroom = init.headroom ?? 64;
    this.tailroom = init.tailroom ?? 64;
    this.maxBatch = init.maxBatch ?? (init.vnetHdr ? 32 : 64);
    const payload = init.vnetHdr ? VNET_MAX_READ : (init.maxFrame ?? 1514) + 4;
    this.stride = align(this.headroom + payload + this.tailroom, 64);
    this.arena = Buffer.allocUnsafeSlow(this.stride * this.maxBatch);
    this.lens = new Int32Array(this.maxBatch);
    this.stats = new Float64Array(addon.STATS_SIZE);
    try {
      this.native = new addon.Tap({
        name: init.name,
        vnetHdr: init.vnetHdr,
        offloads: init.vnetHdr ? addon.TUN_OFFLOADS_TSO | (init.uso === false ? 0 : addon.TUN_OFFLOADS_USO) : 0,
        arena: this.arena,
        meta: this.lens,
        stats: this.stats,
        stride: this.stride,
        headroom: this.headroom,
        tailroom: this.tailroom,
        maxBatch: this.maxBatch,
        netns: init.netns,
        uring: init.uring ?? true,
      });
    } catch (err) {
      throw fromNativeError(err, 'ERR_TAP_OPEN');
    }
    this.name = this.native.name;
    this.uso = (this.native.offloads & addon.TUN_OFFLOADS_USO) !== 0;
  }

  start(onBatch: TapBatchHandler): void {
    this.native.start(onBatch);
  }

  stop(): void {
    this.native.stop();
  }

  write(buf: Buffer, off: number, len: number, zeroVnetHdr: boolean): number {
    return this.native.write(buf, off, len, zeroVnetHdr);
  }

  counters(): IoCounters {
    return readCounters(this.stats);
  }

  /** How frames are read now: "io_uring", or "read" with why io_uring is not used. */
  readMode(): string {
    return this.native.uring();
  }

  close(): void {
    this.native.close();
  }
}
