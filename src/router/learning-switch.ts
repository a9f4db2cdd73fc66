/**
 * The router's data plane: a learning switch between the local TAP and the sleeve peers.
 *
 *   TAP batch ─ per frame: learn source MAC as local (a new one past the local-MAC cap: dropped)
 *     ─ destination lookup, then the peer's path from the overlay switch (pathAt)
 *       group or unknown MAC → flood to every peer on the sleeve (each gets one copy)
 *       MAC behind a peer    → that peer (left alone when the kernel fast path carries it)
 *       MAC local            → dropped (the bridge delivers those itself)
 *     ─ one sleeve flush per batch
 *   sleeve frame ─ learn source MAC behind that peer ─ write to the TAP (never sent on to other
 *     peers: every router floods to all peers itself, so nothing goes back where it came from);
 *     on a vnet TAP through the UDP coalescer: the small frames of one UDP flow in a row within a
 *     receive batch leave as one USO super-frame at the batch's end (udp-coalescer.ts)
 *
 * Frames keep their virtio_net_hdr end to end. A TAP without vnet_hdr gets super-frames and
 * partial checksums finished in userspace (SoftwareOffload). Drops are counted by reason.
 */
import type { Clock, TimerHandle } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import { MAX_LOCAL_MACS, isGroupMac, readMac } from '../core/mac.js';
import type { Startable } from '../core/startable.js';
import type { TapDevice } from '../platform/tap.js';
import { VNET_F_NEEDS_CSUM, VNET_HDR_LEN } from '../platform/tap.js';
import { SoftwareOffload, dropReasonName } from './gso.js';
import { UdpCoalescer } from './udp-coalescer.js';
import { MacTable, PORT_LOCAL } from './mac-table.js';
import { PATH_FASTPATH, SLEEVE_ONLY, type PathReader } from './overlay-switch.js';
import type { SleevePeer } from './sleeve/peer.js';
import type { Sleeve } from './sleeve/sleeve.js';
import type { SwitchCounters } from '../api/types.js';

/** The learning switch's counters, as the API reports them (`traffic.router`). */
export type LearningSwitchCounters = SwitchCounters;

export interface LearningSwitchComponents {
  tap: TapDevice;
  sleeve: Sleeve;
  clock: Clock;
  logger: Logger;
  /** Each peer's path (the OverlaySwitch); without it every peer is on the sleeve. */
  paths?: PathReader;
  /** Called once when the TAP stops delivering (read error); the daemon decides what to do. */
  onTapFailure?: (errno: number) => void;
}

export interface LearningSwitchInit {
  macMaxAgeMs?: number;
  /** Local source MACs learned at most (port security); frames from further ones are dropped. Default MAX_LOCAL_MACS. */
  maxLocalMacs?: number;
  /** Coalesce small UDP frames from the sleeve into USO super-frames on a vnet TAP (--no-udp-coalesce). Default true. */
  udpCoalesce?: boolean;
}

export interface LearningSwitchDrops {
  /** A batch that threw (a bug, never expected): the rest of it was lost. */
  exception: number;
  runt: number;
  localDst: number;
  noPeers: number;
  tapWrite: number;
  offload: number;
  /** Fast-path probe frames that reached the TAP (never carried by the sleeve). */
  probe: number;
  /** Frames from a local source MAC past the local-MAC cap (one pod sending from many MACs). */
  localMacCap: number;
}

export class LearningSwitch implements Startable {
  readonly macs: MacTable;
  readonly drops: LearningSwitchDrops = { runt: 0, localDst: 0, noPeers: 0, tapWrite: 0, offload: 0, probe: 0, localMacCap: 0, exception: 0 };
  private loggedException = false;
  readonly counters: LearningSwitchCounters = {
    tapFrames: 0, tapBytes: 0, unicast: 0, flooded: 0, leftToFastPath: 0, toTap: 0, toTapBytes: 0, toTapSuperFrames: 0, toTapCoalesced: 0,
  };
  readonly offloadDrops = new Map<string, number>();
  private readonly tap: TapDevice;
  private readonly sleeve: Sleeve;
  private readonly paths: PathReader;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly onTapFailure: ((errno: number) => void) | undefined;
  private readonly macMaxAgeMs: number;
  private readonly offload = new SoftwareOffload();
  private readonly writePlain: (buf: Buffer, off: number, len: number) => void;
  /** Only on a vnet TAP with coalescing on. */
  private readonly coalescer: UdpCoalescer | undefined;
  private timer: TimerHandle | undefined = undefined;
  private now = 0;
  private capLogged = false;

  constructor(components: LearningSwitchComponents, init: LearningSwitchInit = {}) {
    this.tap = components.tap;
    this.sleeve = components.sleeve;
    this.paths = components.paths ?? SLEEVE_ONLY;
    this.clock = components.clock;
    this.log = components.logger;
    this.onTapFailure = components.onTapFailure;
    this.macMaxAgeMs = init.macMaxAgeMs ?? 300_000;
    this.macs = new MacTable({ maxLocal: init.maxLocalMacs ?? MAX_LOCAL_MACS });
    this.writePlain = (buf, off, len) => this.writeTap(buf, off, len, false, 1);
    const coalescer = this.tap.vnetHdr && (init.udpCoalesce ?? true) ? new UdpCoalescer({ write: (buf, off, len, zeroHdr, frames) => this.writeTap(buf, off, len, zeroHdr, frames) }) : undefined;
    this.coalescer = coalescer;
    this.sleeve.tx.registerTapArena(this.tap.arena);
    this.sleeve.setSink(
      (peer, buf, vnetOff, frameOff, frameLen) => this.fromPeer(peer, buf, vnetOff, frameOff, frameLen),
      coalescer === undefined ? undefined : () => coalescer.flush(),
    );
  }

  /** True when frames from the sleeve go through the UDP coalescer. */
  get udpCoalesce(): boolean {
    return this.coalescer !== undefined;
  }

  start(): void {
    this.tap.start((count) => this.onTapBatch(count));
    this.timer = this.clock.setInterval(() => this.macs.expire(this.clock.now(), this.macMaxAgeMs), 10_000);
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.tap.stop();
  }

  private onTapBatch(count: number): void {
    if (count < 0) {
      this.log.error('TAP read failed; the device stopped delivering frames', { tap: this.tap.name, errno: -count });
      this.onTapFailure?.(-count);
      return;
    }
    // One guard per batch, as in the sleeve's receive path: nothing a pod's frame does may throw
    // out of the addon's callback. The rest of a batch that threw is lost; counted, logged once.
    try {
      this.tapBatch(count);
    } catch (err) {
      this.drops.exception++;
      if (!this.loggedException) {
        this.loggedException = true;
        this.log.error('unexpected exception in the TAP receive path (counted as switch.exception; logged once)', {
          error: err instanceof Error ? (err.stack ?? err.message) : String(err),
        });
      }
    }
  }

  private tapBatch(count: number): void {
    const now = this.sleeve.batchStart();
    this.now = now;
    const tap = this.tap;
    const arena = tap.arena;
    const lens = tap.lens;
    const stride = tap.stride;
    const vnet = tap.vnetHdr;
    const macs = this.macs;
    const tx = this.sleeve.tx;
    const peers = this.sleeve.peers;
    const paths = this.paths;
    for (let i = 0; i < count; i++) {
      const base = i * stride + tap.headroom;
      const len = lens[i]!;
      let frameOff = base;
      let frameLen = len;
      let vnetOff = -1;
      if (vnet) {
        frameOff = base + VNET_HDR_LEN;
        frameLen = len - VNET_HDR_LEN;
        if ((arena[base]! | arena[base + 1]!) !== 0) vnetOff = base;
      }
      if (frameLen < 14) {
        this.drops.runt++;
        continue;
      }
      this.counters.tapFrames++;
      this.counters.tapBytes += frameLen;
      // Fast-path probes (ethertype 0x88b5) belong to the kernel path; the sleeve never carries them.
      if (arena[frameOff + 12] === 0x88 && arena[frameOff + 13] === 0xb5) {
        this.drops.probe++;
        continue;
      }
      if (!isGroupMac(arena, frameOff + 6) && !macs.learnLocal(readMac(arena, frameOff + 6), now)) {
        this.drops.localMacCap++;
        if (!this.capLogged) this.logCap();
        continue;
      }
      let port = -2;
      if (!isGroupMac(arena, frameOff)) {
        const p = macs.lookup(readMac(arena, frameOff));
        if (p !== undefined) port = p;
      }
      if (port === PORT_LOCAL) {
        this.drops.localDst++;
        continue;
      }
      if (port >= 0) {
        if (paths.pathAt(port) === PATH_FASTPATH) {
          this.counters.leftToFastPath++;
          continue;
        }
        const peer = this.sleeve.peerAt(port);
        if (peer !== undefined) {
          this.counters.unicast++;
          tx.frame(peer, arena, vnetOff, frameOff, frameLen, true);
          continue;
        }
      }
      const n = peers.length;
      let sleeveOnly = 0;
      for (let k = 0; k < n; k++) if (paths.pathAt(peers[k]!.index) !== PATH_FASTPATH) sleeveOnly++;
      if (sleeveOnly === 0) {
        if (n === 0) this.drops.noPeers++;
        else this.counters.leftToFastPath++;
        continue;
      }
      this.counters.flooded++;
      for (let k = 0; k < n; k++) {
        const p = peers[k]!;
        if (paths.pathAt(p.index) !== PATH_FASTPATH) tx.frame(p, arena, vnetOff, frameOff, frameLen, sleeveOnly === 1);
      }
    }
    tx.flush();
  }

  private logCap(): void {
    this.capLogged = true;
    this.log.warn('frames from more local source MACs than the cap are dropped (logged once, counted as switch.localMacCap)', { cap: this.macs.localSize });
  }

  private fromPeer(peer: SleevePeer, buf: Buffer, vnetOff: number, frameOff: number, frameLen: number): void {
    if (!isGroupMac(buf, frameOff + 6)) this.macs.learn(readMac(buf, frameOff + 6), peer.index, this.sleeveNow());
    if (this.coalescer !== undefined) {
      this.coalescer.frame(buf, vnetOff, frameOff, frameLen);
      return;
    }
    if (this.tap.vnetHdr) {
      if (vnetOff >= 0) this.writeTap(buf, vnetOff, VNET_HDR_LEN + frameLen, false, 1);
      else this.writeTap(buf, frameOff, frameLen, true, 1);
      return;
    }
    if (vnetOff >= 0 && ((buf[vnetOff]! & VNET_F_NEEDS_CSUM) !== 0 || buf[vnetOff + 1] !== 0)) {
      const r = this.offload.process(buf, vnetOff, VNET_HDR_LEN + frameLen, this.writePlain);
      if (r < 0) {
        this.drops.offload++;
        const reason = dropReasonName(r);
        this.offloadDrops.set(reason, (this.offloadDrops.get(reason) ?? 0) + 1);
      }
      return;
    }
    this.writeTap(buf, frameOff, frameLen, false, 1);
  }

  /** One TAP write carrying `frames` frames (more than one: a coalesced super-frame). */
  private writeTap(buf: Buffer, off: number, len: number, zeroHdr: boolean, frames: number): void {
    const r = this.tap.write(buf, off, len, zeroHdr);
    if (r < 0) {
      this.drops.tapWrite += frames;
      return;
    }
    this.counters.toTap++;
    this.counters.toTapBytes += len;
    if (frames > 1) {
      this.counters.toTapSuperFrames++;
      this.counters.toTapCoalesced += frames;
    }
  }

  private sleeveNow(): number {
    return this.sleeve.now();
  }
}
