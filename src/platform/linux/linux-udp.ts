import type { IoCounters } from '../tap.js';
import { RX_META_STRIDE, TX_DESC_STRIDE, TX_IOV_STRIDE, type UdpEndpoint } from '../udp.js';
import { fromNativeError } from '../errors.js';
import { readCounters } from './io-counters.js';
import { loadNative, type NativeUdp } from './native.js';

export interface LinuxUdpInit {
  address: string;
  port: number;
  gro?: boolean;
  maxBatch?: number;
  /** Receive slot size; with GRO a slot holds a whole coalesced train (up to 64 KiB). */
  rxStride?: number;
  txMax?: number;
  txIovMax?: number;
  maxDests?: number;
  socketBuffer?: number;
  /** Create the socket inside this network namespace (a path like /var/run/netns/NAME). */
  netns?: string;
}

/** The data-path UDP socket, owned by the native addon (sendmmsg, UDP GSO, recvmmsg + GRO). */
export class LinuxUdp implements UdpEndpoint {
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
  private readonly stats: Float64Array;
  private readonly native: NativeUdp;

  constructor(init: LinuxUdpInit) {
    const addon = loadNative();
    const gro = init.gro ?? true;
    this.maxBatch = init.maxBatch ?? 32;
    this.rxStride = init.rxStride ?? (gro ? 65536 : 2048);
    this.txMax = init.txMax ?? 256;
    this.txIovMax = init.txIovMax ?? 2048;
    this.rxArena = Buffer.allocUnsafeSlow(this.rxStride * this.maxBatch);
    this.rxMeta = new Int32Array(this.maxBatch * RX_META_STRIDE);
    this.txDesc = new Int32Array(this.txMax * TX_DESC_STRIDE);
    this.txIov = new Int32Array(this.txIovMax * TX_IOV_STRIDE);
    this.stats = new Float64Array(addon.STATS_SIZE);
    try {
      this.native = new addon.Udp({
        address: init.address,
        port: init.port,
        gro,
        rcvbuf: init.socketBuffer ?? 8 << 20,
        sndbuf: init.socketBuffer ?? 8 << 20,
        arena: this.rxArena,
        meta: this.rxMeta,
        stats: this.stats,
        stride: this.rxStride,
        maxBatch: this.maxBatch,
        txDesc: this.txDesc,
        txIov: this.txIov,
        txMax: this.txMax,
        txIovMax: this.txIovMax,
        // (2 × the sleeve's 512 peers: data and direct slots, + scratch slots for probes)
        maxDests: init.maxDests ?? 1024 + 8,
        netns: init.netns,
      });
    } catch (err) {
      throw fromNativeError(err, 'ERR_UDP_OPEN');
    }
    this.family = this.native.family;
    this.localPort = this.native.localPort;
    this.gro = this.native.gro;
  }

  start(onBatch: (count: number) => void): void {
    this.native.start(onBatch);
  }
  stop(): void {
    this.native.stop();
  }
  setDest(index: number, address: string, port: number): void {
    this.native.setDest(index, address, port);
  }
  registerBuffer(id: number, buf: Buffer): void {
    this.native.registerBuffer(id, buf);
  }
  send(count: number): number {
    return this.native.send(count);
  }
  gsoActive(): boolean {
    return this.native.gsoActive();
  }
  counters(): IoCounters {
    return readCounters(this.stats);
  }
  close(): void {
    this.native.close();
  }
}
