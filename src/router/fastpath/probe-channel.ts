/**
 * The probe TAP's traffic: probes out, tagged under the pair's key; probes in, checked before the
 * health judge sees them.
 *
 *   out   writeProbe → tag (ProbeAuth.sign) → TAP write; nothing at all without a key
 *   in    per frame of the batch: not the probe ethertype → ignored (the bridge floods pods'
 *         broadcasts to every port); not shaped like a probe → malformed; not for us or not
 *         from a fast-path peer → unknownPeer; then the tag and the seq (ProbeAuth.verify) →
 *         noKey, badTag, replayed, or the health judge
 *
 * Drops are counted by reason and each reason is logged once. Rejecting a frame allocates nothing.
 */
import type { Logger } from '../../core/logger.js';
import type { TapDevice } from '../../platform/tap.js';
import { ProbeAuth, ProbeVerdict } from './probe-auth.js';
import { PROBE_ETHERTYPE, PROBE_MIN, isProbe, probeDst, probeSrc, readProbe, writeProbe, type Probe } from './probe-frame.js';
import type { ProbeDrops } from '../../api/types.js';

export type { ProbeDrops };

export interface ProbeChannelComponents {
  tap: TapDevice;
  logger: Logger;
  /** Whether `id` is a fast-path peer we probe (probes from anyone else are dropped). */
  isPeer(id: number): boolean;
  /** An authentic, fresh probe for us. */
  onProbe(p: Probe): void;
}

export interface ProbeChannelInit {
  selfId: number;
  /** Size of full-size probes (overlay MTU + 14). */
  maxFrame: number;
}

export class ProbeChannel {
  readonly drops: ProbeDrops = { malformed: 0, unknownPeer: 0, noKey: 0, badTag: 0, replayed: 0 };
  accepted = 0;
  private readonly components: ProbeChannelComponents;
  private readonly init: ProbeChannelInit;
  private readonly auth = new ProbeAuth();
  private readonly scratch: Buffer;
  private readonly logged = new Set<keyof ProbeDrops>();

  constructor(components: ProbeChannelComponents, init: ProbeChannelInit) {
    this.components = components;
    this.init = init;
    this.scratch = Buffer.alloc(Math.max(PROBE_MIN, init.maxFrame));
  }

  /** A new probe key for peer `id` (copied); `confirmTx` as in Overlay.installKeys. */
  installKey(id: number, key: Uint8Array, confirmTx: boolean): void {
    this.auth.install(id, key, confirmTx);
  }

  removeKeys(id: number): void {
    this.auth.remove(id);
  }

  hasKey(id: number): boolean {
    return this.auth.has(id);
  }

  /** Wipes every key. */
  clear(): void {
    this.auth.clear();
  }

  send(p: Probe): void {
    const size = p.big ? this.init.maxFrame : 64;
    writeProbe(this.scratch, 0, size, p);
    // Without the pair's key the peer could not tell our probe from a forgery: send nothing.
    if (!this.auth.sign(p.dst, this.scratch, 0)) return;
    this.components.tap.write(this.scratch, 0, size, false);
  }

  /** The TAP's batch handler. */
  onBatch(count: number): void {
    if (count < 0) return;
    const t = this.components.tap;
    for (let i = 0; i < count; i++) {
      const off = i * t.stride + t.headroom;
      const len = t.lens[i]!;
      if (len < 14 || t.arena.readUInt16BE(off + 12) !== PROBE_ETHERTYPE) continue;
      if (!isProbe(t.arena, off, len)) {
        this.drop('malformed');
        continue;
      }
      const src = probeSrc(t.arena, off);
      if (probeDst(t.arena, off) !== this.init.selfId || !this.components.isPeer(src)) {
        this.drop('unknownPeer');
        continue;
      }
      const v = this.auth.verify(src, t.arena, off);
      if (v === ProbeVerdict.ok) {
        this.accepted++;
        this.components.onProbe(readProbe(t.arena, off, len)!);
      } else {
        this.drop(v === ProbeVerdict.noKey ? 'noKey' : v === ProbeVerdict.badTag ? 'badTag' : 'replayed');
      }
    }
  }

  private drop(reason: keyof ProbeDrops): void {
    this.drops[reason]++;
    if (this.logged.has(reason)) return;
    this.logged.add(reason);
    // Probes from a peer whose keys are still being made are normal for a moment after a start.
    const level = reason === 'noKey' ? 'info' : 'warn';
    this.components.logger[level]('fast-path probe dropped (logged once per reason; counts in status)', { reason });
  }
}
