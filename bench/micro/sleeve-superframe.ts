/**
 * Micro-benchmark of the sleeve's path for one 64 KiB super-frame, in one process, no kernel:
 * seal in place in the TAP arena, fragment, "send" (the iovs gathered into the receiver's arena
 * as GRO trains), receive (fragment checks, reassembly, open), deliver to a no-op sink.
 * Prints CPU microseconds per super-frame (median and minimum of rounds) for each AEAD engine.
 *
 *   node dist/bench/micro/sleeve-superframe.js [--frames N] [--rounds R] [--size BYTES]
 *
 * Not a test and not part of `npm run bench`: it measures the CPU cost of a code change to the
 * data path (run it on both trees; the machine is shared, so compare medians of several runs).
 */
import { parseArgs } from 'node:util';
import type { Clock, TimerHandle } from '../../src/core/clock.js';
import { silentLogger } from '../../src/core/logger.js';
import type { IoCounters } from '../../src/platform/tap.js';
import { RX_META_STRIDE, TX_DESC_STRIDE, TX_IOV_STRIDE, type UdpEndpoint } from '../../src/platform/udp.js';
import { OpenSslChaCha } from '../../src/platform/linux/native-aead.js';
import { AeadCipher, type FrameCipher } from '../../src/router/crypto/frame-cipher.js';
import { SodiumChaCha } from '../../src/router/crypto/sodium-aead.js';
import { Sleeve } from '../../src/router/sleeve/sleeve.js';

const { values } = parseArgs({
  options: {
    frames: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '7' },
    size: { type: 'string', default: '65000' },
  },
});

const clock: Clock = {
  now: () => 0,
  wallNow: () => 0,
  setInterval: (): TimerHandle => ({ cancel: () => undefined }),
  setTimeout: (): TimerHandle => ({ cancel: () => undefined }),
};

/** Two in-process UDP endpoints: a send gathers each message into the peer's receive arena. */
class LoopUdp implements UdpEndpoint {
  readonly family = 4 as const;
  readonly gro = true;
  readonly rxStride = 65536 + 4096;
  readonly maxBatch = 64;
  readonly rxArena = Buffer.allocUnsafeSlow(this.rxStride * this.maxBatch);
  readonly rxMeta = new Int32Array(this.maxBatch * RX_META_STRIDE);
  readonly txMax = 1024;
  readonly txIovMax = 4096;
  readonly txDesc = new Int32Array(this.txMax * TX_DESC_STRIDE);
  readonly txIov = new Int32Array(this.txIovMax * TX_IOV_STRIDE);
  peer: LoopUdp | undefined = undefined;
  /** Messages gathered into the receive arena and not yet handed over (`pump`). */
  pending = 0;
  private readonly bufs: Buffer[] = [];
  private onBatch: (n: number) => void = () => undefined;

  constructor(readonly localPort: number, private readonly word: number) {}

  start(onBatch: (count: number) => void): void {
    this.onBatch = onBatch;
  }
  stop(): void {}
  setDest(): void {}
  registerBuffer(id: number, buf: Buffer): void {
    this.bufs[id] = buf;
  }
  gsoActive(): boolean {
    return true;
  }
  counters(): IoCounters {
    return { rxBatches: 0, rxPackets: 0, rxBytes: 0, rxErrors: 0, txPackets: 0, txBytes: 0, txErrors: 0, txDropped: 0, gsoFallbacks: 0, truncated: 0, pollErrors: 0, spinHits: 0, txIovLimit: 0, rxCalls: 0, lastErrno: 0 };
  }
  close(): void {}

  /** Hands the received messages to the sleeve (one batch per arena's worth). */
  pump(): boolean {
    const n = this.pending;
    this.pending = 0;
    if (n > 0) this.onBatch(n);
    return n > 0;
  }

  send(count: number): number {
    const to = this.peer!;
    for (let d = 0; d < count; d++) {
      if (to.pending === to.maxBatch) to.pump();
      const n = to.pending++;
      const e = d * TX_DESC_STRIDE;
      const iovStart = this.txDesc[e]!;
      const iovCount = this.txDesc[e + 1]!;
      const gso = this.txDesc[e + 2]!;
      const slot = n * to.rxStride;
      let len = 0;
      for (let k = 0; k < iovCount; k++) {
        const v = (iovStart + k) * TX_IOV_STRIDE;
        const off = this.txIov[v + 1]!;
        const l = this.txIov[v + 2]!;
        this.bufs[this.txIov[v]!]!.copy(to.rxArena, slot + len, off, off + l);
        len += l;
      }
      const m = n * RX_META_STRIDE;
      to.rxMeta[m] = slot;
      to.rxMeta[m + 1] = len;
      to.rxMeta[m + 2] = gso;
      to.rxMeta[m + 3] = this.localPort;
      to.rxMeta[m + 4] = 4;
      to.rxMeta[m + 5] = this.word;
      to.rxMeta[m + 6] = 0;
      to.rxMeta[m + 7] = 0;
      to.rxMeta[m + 8] = 0;
    }
    return count;
  }
}

function key(seed: number): Buffer {
  return Buffer.alloc(32, seed);
}

function measure(cipher: () => FrameCipher, frames: number, size: number): number {
  const ua = new LoopUdp(6784, (198 << 24) | (18 << 16) | 1);
  const ub = new LoopUdp(6785, (198 << 24) | (18 << 16) | 2);
  ua.peer = ub;
  ub.peer = ua;
  const a = new Sleeve({ udp: ua, cipher: cipher(), clock, logger: silentLogger }, { name: 'aaaaaaaaaaaaaaaa', id: 0xaaaaaaaa, underlayMtu: 1500, vnetCapable: true, heartbeatMs: 1000 });
  const b = new Sleeve({ udp: ub, cipher: cipher(), clock, logger: silentLogger }, { name: 'bbbbbbbbbbbbbbbb', id: 0xbbbbbbbb, underlayMtu: 1500, vnetCapable: true, heartbeatMs: 1000 });
  a.installKeys({ name: 'bbbbbbbbbbbbbbbb', id: 0xbbbbbbbb, tx: { keyId: 2, key: key(1) }, rx: { keyId: 1, key: key(2) }, probe: key(3) }, false);
  b.installKeys({ name: 'aaaaaaaaaaaaaaaa', id: 0xaaaaaaaa, tx: { keyId: 1, key: key(2) }, rx: { keyId: 2, key: key(1) }, probe: key(3) }, false);
  a.setDirect(0xbbbbbbbb, { address: '198.18.0.2', port: 6785, family: 4 });
  b.setDirect(0xaaaaaaaa, { address: '198.18.0.1', port: 6784, family: 4 });
  let delivered = 0;
  b.setSink(() => {
    delivered++;
  });
  a.start();
  b.start();
  const tap = Buffer.allocUnsafeSlow(size + 256);
  tap.fill(0x5a);
  a.tx.registerTapArena(tap);
  const peer = a.peers[0]!;
  const vnetOff = 64;
  const frameOff = vnetOff + 10;
  const one = (): void => {
    a.batchStart();
    a.tx.frame(peer, tap, vnetOff, frameOff, size, true);
    a.tx.flush();
    for (let k = 0; k < 8 && (ub.pump() || ua.pump()); k++);
  };
  for (let i = 0; i < 200; i++) one();
  delivered = 0;
  // CPU time of this process, not wall time: the machine is shared, and a wall clock counts the
  // time other processes held the CPU.
  const c0 = process.cpuUsage();
  for (let i = 0; i < frames; i++) one();
  const c = process.cpuUsage(c0);
  const ns = (c.user + c.system) * 1000;
  if (delivered !== frames) throw new Error(`delivered ${delivered} of ${frames} super-frames (drops: ${JSON.stringify(b.drops)} ${JSON.stringify(b.reassemblyDrops())})`);
  a.stop();
  b.stop();
  return ns / frames / 1000;
}

const frames = Number(values.frames);
const rounds = Number(values.rounds);
const size = Number(values.size);
for (const [name, make] of [['openssl', () => new AeadCipher(new OpenSslChaCha())], ['libsodium', () => new AeadCipher(new SodiumChaCha())]] as const) {
  const r: number[] = [];
  for (let i = 0; i < rounds; i++) r.push(measure(make, frames, size));
  r.sort((x, y) => x - y);
  process.stdout.write(`${name}: ${r[Math.floor(r.length / 2)]!.toFixed(1)} CPU us per ${size}-byte super-frame (seal + fragment + gather + receive + open), median of ${rounds} rounds; min ${r[0]!.toFixed(1)}, max ${r.at(-1)!.toFixed(1)}\n`);
}
