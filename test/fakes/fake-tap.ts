/**
 * In-memory TAP for unit tests: `inject` queues frames as if the kernel had them ready; they are
 * delivered in batches into the arena exactly like the native device. Writes are recorded.
 */
import type { IoCounters, TapBatchHandler, TapDevice } from '../../src/platform/tap.js';

export class FakeTap implements TapDevice {
  readonly name: string;
  readonly vnetHdr: boolean;
  readonly arena: Buffer;
  readonly lens: Int32Array;
  readonly stride: number;
  readonly headroom = 64;
  readonly tailroom = 64;
  readonly maxBatch: number;
  /** Frames written to the device, each a copy (with the vnet header when vnetHdr). */
  readonly written: Buffer[] = [];
  private readonly pending: Buffer[] = [];
  private onBatch: TapBatchHandler | undefined = undefined;
  private scheduled = false;

  constructor(init: { name?: string; vnetHdr: boolean; maxBatch?: number }) {
    this.name = init.name ?? 'faketap';
    this.vnetHdr = init.vnetHdr;
    this.maxBatch = init.maxBatch ?? 8;
    this.stride = this.headroom + 65536 + 128 + this.tailroom;
    this.arena = Buffer.alloc(this.stride * this.maxBatch);
    this.lens = new Int32Array(this.maxBatch);
  }

  /** Queues one read: `data` is exactly what read() would return (vnet header first when vnetHdr). */
  inject(data: Buffer): void {
    this.pending.push(Buffer.from(data));
    this.schedule();
  }

  start(onBatch: TapBatchHandler): void {
    this.onBatch = onBatch;
    this.schedule();
  }
  stop(): void {
    this.onBatch = undefined;
  }
  close(): void {
    this.onBatch = undefined;
  }
  counters(): IoCounters {
    return { rxBatches: 0, rxPackets: 0, rxBytes: 0, rxErrors: 0, txPackets: this.written.length, txBytes: 0, txErrors: 0, txDropped: 0, gsoFallbacks: 0, truncated: 0, pollErrors: 0, spinHits: 0, txIovLimit: 0, rxCalls: 0, lastErrno: 0 };
  }

  write(buf: Buffer, off: number, len: number, zeroVnetHdr: boolean): number {
    const frame = Buffer.from(buf.subarray(off, off + len));
    this.written.push(zeroVnetHdr && this.vnetHdr ? Buffer.concat([Buffer.alloc(10), frame]) : frame);
    return len + (zeroVnetHdr && this.vnetHdr ? 10 : 0);
  }

  private schedule(): void {
    if (this.scheduled || this.onBatch === undefined || this.pending.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      const cb = this.onBatch;
      if (cb === undefined) return;
      let n = 0;
      while (n < this.maxBatch && this.pending.length > 0) {
        const f = this.pending.shift()!;
        f.copy(this.arena, n * this.stride + this.headroom);
        this.lens[n] = f.length;
        n++;
      }
      cb(n);
      this.schedule();
    });
  }
}
