/**
 * Health of the kernel fast path to each peer, judged from probes that travel that path itself
 * (probe-frame.ts). Per peer:
 *
 *   every probeMs      a small probe (seq, echo of what we heard, echo of the last big one heard)
 *   every bigEveryMs   a full-size probe instead (overlay MTU + 14), so an MTU black hole shows
 *
 *   healthy  = we heard the peer within failAfterMs, the peer heard us (its echo names a probe we
 *              sent within failAfterMs + probeMs), and full-size probes crossed both ways within
 *              bigFailAfterMs
 *   up → down      as soon as one condition fails (the reason names it and how long ago)
 *   down → up      after healAfterMs of uninterrupted health (hysteresis: no flapping)
 *   probing → up   after the first healAfterFirstMs of health (a new peer goes fast quickly)
 *
 * No sockets or devices here: `send` writes a probe, `onProbe` receives one. The clock is injected.
 */
import type { Clock } from '../../core/clock.js';
import type { Probe } from './probe-frame.js';

export type FastPathState = 'probing' | 'up' | 'down';

export interface FastPathPeerStatus {
  id: number;
  name: string;
  state: FastPathState;
  reason: string;
  sinceMs: number;
  switches: number;
  lastHeardMsAgo: number | undefined;
}

export interface FastPathHealthComponents {
  clock: Clock;
  /** Sends one probe to the peer over the fast path (small or full size). */
  send(probe: Probe): void;
  /** The peer's fast path went up or down. */
  onSwitch(id: number, up: boolean, reason: string): void;
  /**
   * True when the peer's router has been silent on the other path too since `lastHeard` (the
   * last probe heard; probably restarting): then a path that is up stays up, since falling back
   * could not help and the kernel still carries the pods' traffic.
   */
  peerSilent?(id: number, lastHeard: number): boolean;
  /**
   * The path started or stopped passing probes (before hysteresis). A healthy path may carry
   * replies to what arrives over it even before it is "up".
   */
  onHealth?(id: number, healthy: boolean): void;
}

export interface FastPathHealthInit {
  selfId: number;
  probeMs?: number;
  bigEveryMs?: number;
  failAfterMs?: number;
  bigFailAfterMs?: number;
  healAfterMs?: number;
  healAfterFirstMs?: number;
  /** After adopting kernel state, or a peer's return from total silence: see PeerHealth.graceUntil. */
  restartGraceMs?: number;
}

const SENT_RING = 64;

class PeerHealth {
  readonly id: number;
  name: string;
  state: FastPathState = 'probing';
  reason = 'probing';
  since: number;
  switches = 0;
  seq = 0;
  /** Latest seq heard from the peer, and of a full-size probe. */
  heard = 0;
  heardBig = 0;
  heardAt = -Infinity;
  heardBigAt = -Infinity;
  /** When the probes the peer last echoed were sent (so: the peer hears us as of then). */
  echoAt = -Infinity;
  echoBigAt = -Infinity;
  healthySince = -1;
  healthy = false;
  /** Kept up while the peer router was silent everywhere; its next probe restarts the timers. */
  held = false;
  /** When a held peer was first heard again on the sleeve (its probes may follow a moment later). */
  backAt = -1;
  /**
   * Until then a path that is up stays up whatever the probes say: a router that just restarted
   * (or just came back from a silence) needs a moment to hear and echo again, and falling back
   * then would cut traffic the kernel still carries (and come back only after healAfterMs).
   */
  graceUntil = -Infinity;
  lastSent = -Infinity;
  lastBig = -Infinity;
  readonly sentAt = new Float64Array(SENT_RING).fill(-Infinity);
  readonly sentSeq = new Uint32Array(SENT_RING);

  constructor(id: number, name: string, now: number) {
    this.id = id;
    this.name = name;
    this.since = now;
  }

  sentTime(seq: number): number {
    const i = seq % SENT_RING;
    return this.sentSeq[i] === seq ? this.sentAt[i]! : -Infinity;
  }
}

export class FastPathHealth {
  private readonly components: FastPathHealthComponents;
  private readonly init: Required<FastPathHealthInit>;
  private readonly peers = new Map<number, PeerHealth>();

  constructor(components: FastPathHealthComponents, init: FastPathHealthInit) {
    this.components = components;
    this.init = { probeMs: 250, bigEveryMs: 500, failAfterMs: 1000, bigFailAfterMs: 1250, healAfterMs: 5000, healAfterFirstMs: 1000, restartGraceMs: 3000, ...init };
  }

  /** `up`: start as up (kernel state adopted after a restart); probes then confirm or refute it. */
  addPeer(id: number, name: string, up = false): void {
    if (this.peers.has(id)) return;
    const now = this.components.clock.now();
    const h = new PeerHealth(id, name, now);
    if (up) {
      h.state = 'up';
      h.healthy = true;
      h.reason = 'adopted from the kernel; probes confirm it';
      // Grace: judged as if everything was heard at adoption time.
      h.heardAt = h.heardBigAt = h.echoAt = h.echoBigAt = now;
      h.graceUntil = now + this.init.restartGraceMs;
    }
    this.peers.set(id, h);
  }

  rename(id: number, name: string): void {
    const h = this.peers.get(id);
    if (h !== undefined) h.name = name;
  }

  removePeer(id: number): void {
    this.peers.delete(id);
  }

  isUp(id: number): boolean {
    return this.peers.get(id)?.state === 'up';
  }

  /** A probe arrived over the fast path (already parsed; ignored unless it is for us from a known peer). */
  onProbe(p: Probe): void {
    if (p.dst !== this.init.selfId) return;
    const h = this.peers.get(p.src);
    if (h === undefined) return;
    const now = this.components.clock.now();
    if (h.held) {
      // The peer is back after a silence we rode out: judge it afresh from now.
      h.held = false;
      h.echoAt = h.echoBigAt = h.heardBigAt = now;
      h.graceUntil = now + this.init.restartGraceMs;
    }
    // The latest seq, not the highest: a restarted peer counts from 1 again.
    h.heard = p.seq;
    h.heardAt = now;
    if (p.big) {
      h.heardBig = p.seq;
      h.heardBigAt = now;
    }
    const echoed = h.sentTime(p.echo);
    if (echoed > h.echoAt) h.echoAt = echoed;
    const echoedBig = h.sentTime(p.echoBig);
    if (echoedBig > h.echoBigAt) h.echoBigAt = echoedBig;
  }

  /** Sends due probes and re-judges every peer; call every probeMs or more often. */
  tick(): void {
    const now = this.components.clock.now();
    for (const h of this.peers.values()) {
      // (90%: a tick a hair early must not push the probe a whole tick late.)
      if (now - h.lastSent >= this.init.probeMs * 0.9) this.probe(h, now);
      this.judge(h, now);
    }
  }

  status(): FastPathPeerStatus[] {
    const now = this.components.clock.now();
    return [...this.peers.values()].map((h) => ({
      id: h.id,
      name: h.name,
      state: h.state,
      reason: h.reason,
      sinceMs: Math.round(now - h.since),
      switches: h.switches,
      lastHeardMsAgo: Number.isFinite(h.heardAt) ? Math.round(now - h.heardAt) : undefined,
    }));
  }

  private probe(h: PeerHealth, now: number): void {
    const big = now - h.lastBig >= this.init.bigEveryMs * 0.9;
    h.seq++;
    const i = h.seq % SENT_RING;
    h.sentSeq[i] = h.seq;
    h.sentAt[i] = now;
    h.lastSent = now;
    if (big) h.lastBig = now;
    this.components.send({ src: this.init.selfId, dst: h.id, seq: h.seq, echo: h.heard, echoBig: h.heardBig, big });
  }

  /** Why the path is unhealthy right now, or undefined when it is healthy. */
  private problem(h: PeerHealth, now: number): string | undefined {
    const ago = (t: number) => (Number.isFinite(t) ? `${((now - t) / 1000).toFixed(1)} s ago` : 'never');
    if (now - h.heardAt > this.init.failAfterMs) return `probes from the peer lost (last ${ago(h.heardAt)})`;
    // An echo names a probe sent up to one probe interval before the echo was sent.
    if (now - h.echoAt > this.init.failAfterMs + this.init.probeMs) return `the peer does not hear our probes (last ${ago(h.echoAt)})`;
    if (now - h.heardBigAt > this.init.bigFailAfterMs || now - h.echoBigAt > this.init.bigFailAfterMs) {
      return `full-size probes lost (MTU black hole?): ours last heard ${ago(h.echoBigAt)}, theirs ${ago(h.heardBigAt)}`;
    }
    return undefined;
  }

  private judge(h: PeerHealth, now: number): void {
    const why = this.problem(h, now);
    if (why !== undefined && h.state === 'up' && now < h.graceUntil && now - h.heardAt <= this.init.failAfterMs) {
      // Probes arrive again but the other side is still catching up (echoes, full size).
      h.reason = `restart grace (${((h.graceUntil - now) / 1000).toFixed(1)} s left): ${why}`;
      return;
    }
    if (why !== undefined) {
      h.healthySince = -1;
      // Only total silence can mean a restarting router; lost big probes or a one-way path cannot.
      // (The echo check can trip a moment before the silence check: allow one probe interval.)
      const silent = now - h.heardAt > this.init.failAfterMs - this.init.probeMs;
      if (h.state === 'up' && silent && this.components.peerSilent?.(h.id, h.heardAt) === true) {
        h.reason = `peer router silent on both paths (restarting?): kernel path kept; ${why}`;
        h.held = true;
        h.backAt = -1;
        return;
      }
      if (h.state === 'up' && h.held) {
        // Back on the sleeve after a silence, probes not yet: a restarting router opens its
        // sleeve a moment before it probes again. Wait for them a while before giving up.
        if (h.backAt < 0) h.backAt = now;
        if (now - h.backAt < this.init.restartGraceMs) {
          h.reason = `peer router back on the sleeve, its probes not yet (${((h.backAt + this.init.restartGraceMs - now) / 1000).toFixed(1)} s left): kernel path kept; ${why}`;
          return;
        }
        h.held = false;
      }
      if (h.healthy) {
        h.healthy = false;
        this.components.onHealth?.(h.id, false);
      }
      if (h.state === 'up') this.set(h, 'down', why, now);
      else h.reason = why;
      return;
    }
    if (h.healthySince < 0) h.healthySince = now;
    if (!h.healthy) {
      h.healthy = true;
      this.components.onHealth?.(h.id, true);
    }
    if (h.state === 'up') {
      h.reason = 'probes pass both ways, full size included';
      return;
    }
    const need = h.state === 'probing' ? this.init.healAfterFirstMs : this.init.healAfterMs;
    if (now - h.healthySince >= need) this.set(h, 'up', `healthy for ${((now - h.healthySince) / 1000).toFixed(1)} s`, now);
    else h.reason = `healthy for ${((now - h.healthySince) / 1000).toFixed(1)} s; up after ${(need / 1000).toFixed(1)} s`;
  }

  private set(h: PeerHealth, state: FastPathState, reason: string, now: number): void {
    h.state = state;
    h.reason = reason;
    h.since = now;
    h.switches++;
    this.components.onSwitch(h.id, state === 'up', reason);
  }
}
