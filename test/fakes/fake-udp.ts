/**
 * In-memory UDP for unit tests: endpoints on a FakeNetwork exchange datagrams with the same
 * descriptor/iov/GSO contract as the native socket. Delivery is asynchronous (setImmediate), in
 * batches; with `gro`, consecutive equal-size datagrams from one source are coalesced like
 * UDP_GRO. The network can drop, duplicate, reorder or capture datagrams.
 */
import type { IoCounters } from '../../src/platform/tap.js';
import { RX_META_STRIDE, TX_DESC_STRIDE, TX_IOV_STRIDE, type UdpEndpoint } from '../../src/platform/udp.js';

export interface Datagram {
  fromAddress: string;
  fromPort: number;
  toAddress: string;
  toPort: number;
  data: Buffer;
}

export class FakeNetwork {
  readonly endpoints = new Map<string, FakeUdp>();
  /** Every datagram sent, in order (for captures and replays). */
  readonly captured: Datagram[] = [];
  capture = false;
  /** Return false to drop, or a list of datagrams to deliver instead. */
  filter: ((d: Datagram) => boolean | Datagram[]) | undefined = undefined;

  endpoint(address: string, port: number, init: { gro?: boolean; maxBatch?: number } = {}): FakeUdp {
    const ep = new FakeUdp(this, address, port, init);
    this.endpoints.set(`${address}:${port}`, ep);
    return ep;
  }

  send(d: Datagram): void {
    if (this.capture) this.captured.push({ ...d, data: Buffer.from(d.data) });
    let out: Datagram[] = [d];
    if (this.filter !== undefined) {
      const r = this.filter(d);
      if (r === false) return;
      if (Array.isArray(r)) out = r;
    }
    for (const x of out) this.endpoints.get(`${x.toAddress}:${x.toPort}`)?.enqueue(x);
  }

  /** Injects raw bytes as if sent from `from` (attacks, replays, garbage). */
  inject(from: { address: string; port: number }, to: { address: string; port: number }, data: Buffer): void {
    this.endpoints.get(`${to.address}:${to.port}`)?.enqueue({ fromAddress: from.address, fromPort: from.port, toAddress: to.address, toPort: to.port, data });
  }

  /** Resolves when no endpoint has anything queued (after a few event-loop turns). */
  async settle(rounds = 10_000): Promise<void> {
    for (let i = 0; i < rounds; i++) {
      await new Promise((r) => setImmediate(r));
      if ([...this.endpoints.values()].every((e) => e.queued() === 0) && i > 2) return;
    }
  }
}

function zeroCounters(): IoCounters {
  return { rxBatches: 0, rxPackets: 0, rxBytes: 0, rxErrors: 0, txPackets: 0, txBytes: 0, txErrors: 0, txDropped: 0, gsoFallbacks: 0, truncated: 0, pollErrors: 0, spinHits: 0, txIovLimit: 0, rxCalls: 0, lastErrno: 0 };
}

export class FakeUdp implements UdpEndpoint {
  readonly family = 4 as const;
  readonly localPort: number;
  readonly gro: boolean;
  readonly rxStride = 65536;
  readonly maxBatch: number;
  readonly rxArena: Buffer;
  readonly rxMeta: Int32Array;
  readonly txMax = 256;
  readonly txIovMax = 2048;
  readonly txDesc = new Int32Array(256 * TX_DESC_STRIDE);
  readonly txIov = new Int32Array(2048 * TX_IOV_STRIDE);
  readonly address: string;
  readonly stats = zeroCounters();
  private readonly net: FakeNetwork;
  private readonly bufs: (Buffer | undefined)[] = [];
  private readonly dests: ({ address: string; port: number } | undefined)[] = [];
  private readonly inbox: Datagram[] = [];
  private onBatch: ((n: number) => void) | undefined = undefined;
  private scheduled = false;
  closed = false;

  constructor(net: FakeNetwork, address: string, port: number, init: { gro?: boolean; maxBatch?: number }) {
    this.net = net;
    this.address = address;
    this.localPort = port;
    this.gro = init.gro ?? false;
    this.maxBatch = init.maxBatch ?? 16;
    this.rxArena = Buffer.alloc(this.rxStride * this.maxBatch);
    this.rxMeta = new Int32Array(this.maxBatch * RX_META_STRIDE);
  }

  start(onBatch: (count: number) => void): void {
    this.onBatch = onBatch;
    this.schedule();
  }
  stop(): void {
    this.onBatch = undefined;
  }
  setDest(index: number, address: string, port: number): void {
    // (as the native socket: an IPv4 socket cannot send to an IPv6 address)
    if (address.includes(':')) throw new Error(`an IPv4 socket cannot send to ${address}`);
    this.dests[index] = { address, port };
  }
  registerBuffer(id: number, buf: Buffer): void {
    this.bufs[id] = buf;
  }
  gsoActive(): boolean {
    return true;
  }
  counters(): IoCounters {
    return { ...this.stats };
  }
  close(): void {
    this.closed = true;
    this.onBatch = undefined;
  }
  queued(): number {
    return this.inbox.length;
  }

  send(count: number): number {
    if (this.closed) return 0;
    for (let i = 0; i < count; i++) {
      const d = i * TX_DESC_STRIDE;
      const [iovStart, iovCount, gso, dest] = [this.txDesc[d]!, this.txDesc[d + 1]!, this.txDesc[d + 2]!, this.txDesc[d + 3]!];
      const parts: Buffer[] = [];
      for (let k = 0; k < iovCount; k++) {
        const e = (iovStart + k) * TX_IOV_STRIDE;
        const buf = this.bufs[this.txIov[e]!];
        if (buf === undefined) throw new Error(`fake udp: iov uses unregistered buffer ${this.txIov[e]}`);
        const off = this.txIov[e + 1]!;
        const len = this.txIov[e + 2]!;
        if (off + len > buf.length) throw new Error('fake udp: iov outside its buffer');
        parts.push(buf.subarray(off, off + len));
      }
      const to = this.dests[dest];
      if (to === undefined) throw new Error(`fake udp: destination ${dest} not set`);
      const whole = Buffer.concat(parts);
      const seg = gso > 0 ? gso : whole.length;
      for (let p = 0; p < whole.length; p += seg) {
        const data = Buffer.from(whole.subarray(p, Math.min(whole.length, p + seg)));
        this.stats.txPackets++;
        this.stats.txBytes += data.length;
        this.net.send({ fromAddress: this.address, fromPort: this.localPort, toAddress: to.address, toPort: to.port, data });
      }
    }
    return count;
  }

  enqueue(d: Datagram): void {
    if (this.closed) return;
    this.inbox.push(d);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.onBatch === undefined || this.inbox.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.deliver();
      this.schedule();
    });
  }

  private deliver(): void {
    const cb = this.onBatch;
    if (cb === undefined) return;
    let n = 0;
    while (n < this.maxBatch && this.inbox.length > 0) {
      const first = this.inbox.shift()!;
      const slot = n * this.rxStride;
      first.data.copy(this.rxArena, slot);
      let len = first.data.length;
      let seg = 0;
      if (this.gro) {
        while (this.inbox.length > 0) {
          const next = this.inbox[0]!;
          const same = next.fromAddress === first.fromAddress && next.fromPort === first.fromPort;
          if (!same || next.data.length > first.data.length || len + next.data.length > this.rxStride) break;
          if (seg === 0) seg = first.data.length;
          next.data.copy(this.rxArena, slot + len);
          len += next.data.length;
          this.inbox.shift();
          if (next.data.length < first.data.length) break;
        }
      }
      const m = n * RX_META_STRIDE;
      const a = first.fromAddress.split('.').map(Number);
      this.rxMeta.set([slot, len, seg, first.fromPort, 4, ((a[0]! << 24) | (a[1]! << 16) | (a[2]! << 8) | a[3]!) | 0, 0, 0, 0, 0], m);
      this.stats.rxPackets++;
      this.stats.rxBytes += len;
      n++;
    }
    if (n > 0) cb(n);
  }
}
