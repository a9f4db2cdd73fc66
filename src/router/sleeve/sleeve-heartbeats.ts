/**
 * Sleeve heartbeats: path liveness and the proof of the direct path.
 *
 * Every `heartbeatMs` a heartbeat goes to each peer's direct endpoint (probing the path) and,
 * while the direct path is down, one more along the data route (through the relay). A heartbeat
 * that arrives direct (the receive path decides that after authentication: RELAYED clear, the
 * full hop count, the peer's direct endpoint as the source) proves the direct path: it comes up,
 * and is answered at once so both sides see it in one round trip. `deadAfterMs` without a direct
 * datagram takes it down.
 *
 * Heartbeat body: caps (u8: 1 vnet, 2 sealed) | name length (u8) | UDP port (u16) |
 * max datagram (u16) | 2 reserved | peer name (utf8).
 */
import type { SleevePeer } from './peer.js';
import type { SleeveState } from './sleeve-state.js';

const HB_FIXED = 8;
const CAP_VNET = 1;
const CAP_SEALED = 2;

export class SleeveHeartbeats {
  private readonly state: SleeveState;
  /** The body every heartbeat of this router carries. */
  private readonly body: Buffer;

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
    peer.lastHeartbeatRx = this.state.nowMs;
    peer.vnetCapable = (buf[off]! & CAP_VNET) !== 0;
    if (direct) {
      const wasUp = peer.pathUp;
      this.state.setPath(peer, true);
      // Answer at once when the path just came up, so both sides see it in one round trip.
      if (!wasUp || first) this.send(peer);
    }
  }

  /** The coarse timer's work for one peer: the direct path dies of silence; heartbeats when due. */
  tick(peer: SleevePeer, now: number): void {
    const settings = this.state.settings;
    if (peer.pathUp && now - peer.lastDirectRx > settings.deadAfterMs) this.state.setPath(peer, false);
    if (now - peer.lastHeartbeatTx >= settings.heartbeatMs) this.send(peer);
  }

  /** Heartbeats to the direct endpoint (probing the path) and, while it is down, through the relay. */
  private send(peer: SleevePeer): void {
    const tx = this.state.tx;
    tx.now = this.state.nowMs;
    peer.lastHeartbeatTx = this.state.nowMs;
    if (peer.hasDirect) tx.heartbeat(peer, this.body, this.body.length, true);
    if (!peer.pathUp && peer.via !== undefined && peer.hasEndpoint) tx.heartbeat(peer, this.body, this.body.length, false);
  }
}
