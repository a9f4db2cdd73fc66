/**
 * One control connection to another router: preamble, Noise XXpsk0 handshake (mutual
 * authentication; the cluster secret as PSK), HELLO both ways, then sealed msgpack messages (see
 * mesh-protocol.ts). Any protocol violation closes it with a reason word; nothing is kept.
 *
 *   outbound: → preamble, → msg1 (psk, e)   ← msg2 (e, ee, s, es)   → msg3 (s, se)   ⇄ HELLO
 *   inbound:  the mirror image
 */
import type { Socket } from 'node:net';
import Noise from 'noise-handshake';
import type { Clock, TimerHandle } from '../core/clock.js';
import { peerNameFromPublicKey } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import type { PeerName } from './contracts.js';
import type { Identity } from './identity.js';
import {
  FrameReader,
  MAX_FRAME,
  MSG_HELLO,
  MSG_PING,
  MeshProtocolError,
  TransportCipher,
  checkPreamble,
  decodeMessage,
  encodeMessage,
  frame,
  preamble,
  type MeshMessage,
} from './mesh-protocol.js';

/** How long a draining connection (see `close`) is still read before it is destroyed. */
const DRAIN_MS = 2_000;

export interface ConnectionEvents {
  established(conn: MeshConnection): void;
  message(conn: MeshConnection, msg: MeshMessage): void;
  closed(conn: MeshConnection, reason: string, detail: string): void;
}

export interface ConnectionComponents {
  identity: Identity;
  psk: Uint8Array;
  /**
   * Further PSKs an inbound handshake may use (the cluster secret being rotated): the first
   * message is tried with `psk`, then with each of these. Outbound always uses `psk`.
   */
  acceptPsks?: readonly Uint8Array[];
  clock: Clock;
  logger: Logger;
  events: ConnectionEvents;
}

export interface ConnectionInit {
  socket: Socket;
  outbound: boolean;
  /** The address we dialled (outbound) or the remote address (inbound), for status. */
  remoteAddress: string;
  udpPort: number;
  /** Closed when not established by then (default 4 s; a handshake takes milliseconds). */
  handshakeTimeoutMs?: number;
  pingMs?: number;
  deadAfterMs?: number;
}

type Phase = 'preamble' | 'handshake' | 'hello' | 'established' | 'draining' | 'closed';

export class MeshConnection {
  readonly outbound: boolean;
  readonly remoteAddress: string;
  readonly startedAt: number;
  phase: Phase = 'preamble';
  remoteName: PeerName | undefined = undefined;
  remotePublicKey: Buffer | undefined = undefined;
  remoteNickname = '';
  remoteUdpPort = 0;
  private readonly socket: Socket;
  private readonly components: ConnectionComponents;
  private readonly log: Logger;
  private readonly reader = new FrameReader();
  private noise: Noise;
  /** Which PSK the handshake used: 0 `psk`, i the i-th of `acceptPsks`. */
  pskIndex = 0;
  private firstFrame = true;
  private readonly init: Required<Omit<ConnectionInit, 'socket'>>;
  private tx: TransportCipher | undefined = undefined;
  private rx: TransportCipher | undefined = undefined;
  private lastRx: number;
  private lastTx: number;
  private timer: TimerHandle | undefined;
  private readonly prologue: Buffer;

  constructor(components: ConnectionComponents, init: ConnectionInit) {
    this.components = components;
    this.socket = init.socket;
    this.outbound = init.outbound;
    this.remoteAddress = init.remoteAddress;
    this.init = { handshakeTimeoutMs: 4000, pingMs: 10_000, deadAfterMs: 35_000, ...init };
    this.log = components.logger;
    this.startedAt = components.clock.now();
    this.lastRx = this.startedAt;
    this.lastTx = this.startedAt;
    this.prologue = preamble();
    this.noise = this.newNoise(components.psk);
    this.socket.setNoDelay(true);
    this.socket.on('data', (d: Buffer) => this.onData(d));
    this.socket.on('error', (err) => this.close('socket', err.message));
    this.socket.on('close', () => this.close('closedByPeer', 'the remote end closed the connection'));
    this.timer = components.clock.setInterval(() => this.tick(), Math.min(1000, this.init.pingMs));
    this.write(this.prologue);
  }

  get established(): boolean {
    return this.phase === 'established';
  }

  send(msg: MeshMessage): boolean {
    if (this.phase !== 'established' || this.tx === undefined) return false;
    const body = encodeMessage(msg);
    if (body.length + 16 > MAX_FRAME) {
      this.log.warn('mesh message too large, not sent', { peer: this.remoteName, bytes: body.length });
      return false;
    }
    this.write(this.tx.seal(body));
    return true;
  }

  /**
   * Closes the connection: it is gone for the mesh at once (`closed` fires). With `drain`, what
   * was already sent is still delivered, and for up to `DRAIN_MS` what the remote end had already
   * sent is still read and handed to `message` (the mesh decides what it takes from a connection
   * that lost; see `Mesh.onEstablished`); otherwise the socket is destroyed at once.
   */
  close(reason: string, detail = '', drain = false): void {
    if (this.phase === 'closed') return;
    const wasDraining = this.phase === 'draining';
    this.timer?.cancel();
    this.timer = undefined;
    this.tx?.wipe();
    if (drain && this.phase === 'established') {
      this.phase = 'draining';
      this.socket.end();
      this.timer = this.components.clock.setTimeout(() => this.close(reason, detail), DRAIN_MS);
      this.components.events.closed(this, reason, detail);
      return;
    }
    this.phase = 'closed';
    this.rx?.wipe();
    this.socket.destroy();
    if (!wasDraining) this.components.events.closed(this, reason, detail);
  }

  private write(b: Buffer): void {
    this.lastTx = this.components.clock.now();
    this.socket.write(b);
  }

  private tick(): void {
    const now = this.components.clock.now();
    if (this.phase !== 'established') {
      if (now - this.startedAt > this.init.handshakeTimeoutMs) this.close('handshakeTimeout', `no completed handshake within ${this.init.handshakeTimeoutMs} ms`);
      return;
    }
    if (now - this.lastRx > this.init.deadAfterMs) {
      this.close('dead', `nothing received for ${Math.round((now - this.lastRx) / 1000)} s`);
      return;
    }
    if (now - this.lastTx >= this.init.pingMs) this.send({ type: MSG_PING });
  }

  private onData(d: Buffer): void {
    if (this.phase === 'closed') return;
    this.lastRx = this.components.clock.now();
    this.reader.push(d);
    try {
      if (this.phase === 'preamble') {
        const p = this.reader.nextPreamble();
        if (p === undefined) return;
        checkPreamble(p);
        this.phase = 'handshake';
        if (this.outbound) this.write(frame(this.noise.send()));
      }
      for (;;) {
        const f = this.reader.next();
        if (f === undefined) return;
        this.onFrame(f);
        if ((this.phase as Phase) === 'closed') return;
      }
    } catch (err) {
      if (err instanceof MeshProtocolError) this.close(err.reason, err.message);
      else this.close('garbled', (err as Error).message);
    }
  }

  private onFrame(f: Buffer): void {
    if (this.phase === 'handshake') {
      try {
        this.recvHandshake(f.subarray(4));
      } catch (err) {
        throw new MeshProtocolError(
          'handshake',
          `handshake failed: ${(err as Error).message} (wrong cluster secret, or not a weft router)`,
          { cause: err },
        );
      }
      if (!this.noise.complete) this.write(frame(this.noise.send()));
      if (this.noise.complete) this.handshakeDone();
      return;
    }
    const body = this.rx!.open(f);
    const msg = decodeMessage(body);
    if (this.phase === 'hello') {
      if (msg.type !== MSG_HELLO) throw new MeshProtocolError('garbled', `expected HELLO, got message type ${msg.type}`);
      this.remoteNickname = msg.nickname;
      this.remoteUdpPort = msg.udpPort;
      this.phase = 'established';
      this.components.events.established(this);
      return;
    }
    if (msg.type === MSG_PING) return;
    if (msg.type === MSG_HELLO) throw new MeshProtocolError('garbled', 'a second HELLO');
    this.components.events.message(this, msg);
  }

  private newNoise(psk: Uint8Array): Noise {
    const noise = new Noise('XXpsk0', this.outbound, { publicKey: this.components.identity.publicKey, secretKey: this.components.identity.secretKey }, { psk });
    noise.initialise(this.prologue);
    return noise;
  }

  /** The responder's first message is authenticated by the PSK: each accepted one is tried in turn. */
  private recvHandshake(m: Buffer): void {
    const first = this.firstFrame && !this.outbound;
    this.firstFrame = false;
    const others = this.components.acceptPsks ?? [];
    if (!first || others.length === 0) {
      this.noise.recv(m);
      return;
    }
    try {
      this.noise.recv(m);
      return;
    } catch (err) {
      for (let i = 0; i < others.length; i++) {
        const noise = this.newNoise(others[i]!);
        try {
          noise.recv(m);
        } catch {
          continue;
        }
        this.noise = noise;
        this.pskIndex = i + 1;
        return;
      }
      throw err;
    }
  }

  private handshakeDone(): void {
    const rs = Buffer.from(this.noise.rs!);
    this.remotePublicKey = rs;
    this.remoteName = peerNameFromPublicKey(rs);
    this.tx = new TransportCipher(this.noise.tx!);
    this.rx = new TransportCipher(this.noise.rx!);
    this.reader.maxFrame = MAX_FRAME;
    if (this.remoteName === this.components.identity.name) throw new MeshProtocolError('self', 'connected to ourselves');
    this.phase = 'hello';
    this.write(this.tx.seal(encodeMessage({ type: MSG_HELLO, nickname: this.components.identity.nickname, udpPort: this.init.udpPort, features: 0 })));
  }
}
