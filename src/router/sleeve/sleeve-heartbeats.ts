/**
 * Sleeve heartbeats: path liveness and the proof of the direct path.
 *
 * Every `heartbeatMs` a heartbeat goes to each peer's direct endpoint (probing the path) and,
 * while the direct path is down, one more along the data route (through the relay). A heartbeat
 * that arrives direct (the receive path decides that after authentication: RELAYED clear, the
 * full hop count, the peer's direct endpoint as the source) proves the direct path: it comes up,
 * and is answered at once so both sides see it in one round trip.
 *
 * - Keepalives: the heartbeat to a peer whose path is up is skipped while data went to its
 *   direct endpoint within the interval (traffic holds the NAT mapping and proves the path).
 * - Idle peers: `deadAfterMs` without a direct datagram takes the path down.
 * - Fast failover: while data goes direct and nothing direct came back for `suspectMs`
 *   (max(150 ms, 2 × the probes' round trip)), heartbeats marked ANSWER_NOW go every
 *   FAST_HEARTBEAT_MS (the peer answers them at once); FAIL_AFTER_SUSPECT_MS later without an
 *   answer, the path goes down and data takes the relay at once.
 * - Hysteresis: a path that was up once and went down comes back only after direct datagrams
 *   have kept coming for HOLD_MS (while they do, heartbeats ask for answers every
 *   HOLD_HEARTBEAT_MS); the first proof of a new peer's path counts at once.
 *
 * Heartbeat body: caps (u8: 1 vnet, 2 sealed, 4 answer now) | name length (u8) | UDP port (u16) |
 * max datagram (u16) | 2 reserved | peer name (utf8).
 */
import type { SleevePeer } from './peer.js';
import type { SleeveState } from './sleeve-state.js';

const HB_FIXED = 8;
const CAP_VNET = 1;
const CAP_SEALED = 2;
/** The sender suspects the path: answer this heartbeat at once (direct). */
const CAP_ANSWER_NOW = 4;

/** Suspicion: nothing direct back for this long (at least) while data goes out direct. */
export const SUSPECT_MIN_MS = 150;
/** Heartbeats asking for an answer go this often while the path is suspected. */
export const FAST_HEARTBEAT_MS = 100;
/** Still nothing this long after suspicion began: the path goes down. */
export const FAIL_AFTER_SUSPECT_MS = 600;
/** Direct datagrams must keep coming this long before a path that went down comes back. */
export const HOLD_MS = 1000;
/** Heartbeats asking for an answer go this often while a path that went down is coming back. */
export const HOLD_HEARTBEAT_MS = 250;
/** Answers to ANSWER_NOW heartbeats go at most this often per peer. */
const ANSWER_MIN_GAP_MS = 40;

export class SleeveHeartbeats {
  private readonly state: SleeveState;
  /** The body every heartbeat of this router carries. */
  private readonly body: Buffer;
  /** The same with ANSWER_NOW set. */
  private readonly urgent: Buffer;

  constructor(state: SleeveState, init: { name: string; vnetCapable: boolean }) {
    this.state = state;
    const name = Buffer.from(init.name, 'utf8');
    const body = Buffer.alloc(HB_FIXED + name.length);
    body[0] = (init.vnetCapable ? CAP_VNET : 0) | (state.cipher.sealed ? CAP_SEALED : 0);
    body[1] = name.length;
    body.writeUInt16BE(state.udp.localPort, 2);
    body.writeUInt16BE(state.maxDatagram, 4);
    name.copy(body, HB_FIXED);
    this.body = body;
    this.urgent = Buffer.from(body);
    this.urgent[0] = body[0]! | CAP_ANSWER_NOW;
  }

  /** A heartbeat record from `peer` (body buf[off, off+len)); `direct`: it came by the direct path. */
  received(peer: SleevePeer, buf: Buffer, off: number, len: number, direct: boolean): void {
    const drops = this.state.drops;
    const nameLen = len >= HB_FIXED ? buf[off + 1]! : -1;
    if (nameLen < 0 || HB_FIXED + nameLen > len) {
      drops.badRecord++;
      return;
    }
    if (buf.toString('utf8', off + HB_FIXED, off + HB_FIXED + nameLen) !== peer.name) {
      drops.idMismatch++;
      return;
    }
    const first = peer.lastHeartbeatRx === -Infinity;
    const now = this.state.nowMs;
    peer.lastHeartbeatRx = now;
    peer.vnetCapable = (buf[off]! & CAP_VNET) !== 0;
    if (!direct) return;
    const wasUp = peer.pathUp;
    if (!wasUp && peer.holdsBack(now, this.state.settings.deadAfterMs)) {
      // Coming back after it went down, while a relay carries the peer: only once direct
      // datagrams have kept coming for the hold.
      if (peer.backSince === -Infinity) peer.backSince = now;
      if (now - peer.backSince >= HOLD_MS) this.state.setPath(peer, true);
    } else {
      this.state.setPath(peer, true);
    }
    if ((buf[off]! & CAP_ANSWER_NOW) !== 0) {
      if (now - peer.lastAnswerTx >= ANSWER_MIN_GAP_MS) {
        peer.lastAnswerTx = now;
        this.sendDirect(peer, false);
      }
    } else if (peer.pathUp && (!wasUp || first)) {
      // Answer at once when the path just came up, so both sides see it in one round trip.
      this.send(peer);
    }
  }

  /**
   * The coarse timer's work for one peer: the direct path dies of silence (idle) or of
   * suspicion confirmed (traffic); heartbeats when due.
   */
  tick(peer: SleevePeer, now: number): void {
    const settings = this.state.settings;
    const hb = settings.heartbeatMs;
    const silent = now - peer.lastDirectRx;
    if (peer.pathUp) {
      const suspectMs = Math.max(SUSPECT_MIN_MS, peer.rttMs > 0 ? 2 * peer.rttMs : 0);
      const traffic = now - peer.lastDataTx <= hb;
      if (silent > settings.deadAfterMs || (traffic && silent > suspectMs + FAIL_AFTER_SUSPECT_MS)) {
        if (silent <= settings.deadAfterMs) this.state.log.info('direct path failed under traffic', { peer: peer.name, silentMs: Math.round(silent) });
        this.state.setPath(peer, false);
      } else if (traffic && silent > suspectMs) {
        peer.suspect = true;
        if (now - peer.lastHeartbeatTx >= FAST_HEARTBEAT_MS) this.sendDirect(peer, true);
        return;
      } else {
        peer.suspect = false;
      }
    } else if (peer.backSince !== -Infinity) {
      // Coming back: the run of direct datagrams broke, or it held long enough (data counts too).
      if (silent > Math.max(hb, HOLD_HEARTBEAT_MS) * 1.5) peer.backSince = -Infinity;
      else if (now - peer.backSince >= HOLD_MS) this.state.setPath(peer, true);
      else if (now - peer.lastHeartbeatTx >= HOLD_HEARTBEAT_MS) {
        this.sendDirect(peer, true);
        return;
      }
    }
    if (now - peer.lastHeartbeatTx < hb) return;
    // Keepalive skipped: data went to the direct endpoint within the interval.
    if (peer.pathUp && now - peer.lastDataTx < hb) return;
    this.send(peer);
  }

  /** Heartbeats to the direct endpoint (probing the path) and, while it is down, through the relay. */
  private send(peer: SleevePeer): void {
    const tx = this.state.tx;
    tx.now = this.state.nowMs;
    peer.lastHeartbeatTx = this.state.nowMs;
    if (peer.hasDirect) tx.heartbeat(peer, this.body, this.body.length, true);
    if (!peer.pathUp && peer.via !== undefined && peer.hasEndpoint) tx.heartbeat(peer, this.body, this.body.length, false);
  }

  /** One heartbeat to the direct endpoint only; `answerNow`: the peer is to answer it at once. */
  private sendDirect(peer: SleevePeer, answerNow: boolean): void {
    if (!peer.hasDirect) return;
    const tx = this.state.tx;
    tx.now = this.state.nowMs;
    peer.lastHeartbeatTx = this.state.nowMs;
    const body = answerNow ? this.urgent : this.body;
    tx.heartbeat(peer, body, body.length, true);
  }
}
