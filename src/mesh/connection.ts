/**
 * One control connection to another router: preamble, Noise XXpsk0 handshake (mutual
 * authentication; the cluster secret as PSK), HELLO both ways, then sealed msgpack messages (see
 * mesh-protocol.ts). Any protocol violation closes it with a reason word; nothing is kept.
 *
 *   outbound: → preamble, → msg1 (psk, e)   ← msg2 (e, ee, s, es)   → msg3 (s, se)   ⇄ HELLO
 *   inbound:  the mirror image
 *
 * Both preambles announce a version range; the connection speaks the highest version both do
 * (`protocol`), bound into the handshake's prologue, and checks the range the remote end states in
 * its sealed HELLO against its preamble's (protocol-negotiation.ts).
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
  MESH_PROTOCOL_MAX,
  MESH_PROTOCOL_MIN,
  MeshProtocolError,
  TransportCipher,
  decodeMessage,
  encodeMessage,
  frame,
  type MeshMessage,
} from './mesh-protocol.js';
import {
  checkStatedRange,
  decodePreamble,
  formatRange,
  otherPrologues,
  encodePreamble,
  negotiate,
  prologue,
  rangeFeatures,
  rangeFromFeatures,
  type ProtocolRange,
} from './protocol-negotiation.js';

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
  /** Whether a message may go to this neighbour at its negotiated protocol (channels' minProtocol); default: all. */
  admits?: (msg: MeshMessage, protocol: number) => boolean;
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
  /** The mesh protocol versions this end offers (default: all this build speaks). */
  protocols?: ProtocolRange;
  /** This router's release, sent in HELLO from protocol 3 (default: none). */
  release?: string;
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
  /** The negotiated mesh protocol version (0 until both preambles are in). */
  protocol = 0;
  /** The range the remote end's preamble announced. */
  remoteProtocols: ProtocolRange | undefined = undefined;
  /** The remote end's release, from its HELLO (protocol 3 and later); undefined: not known. */
  remoteRelease: string | undefined = undefined;
  private readonly socket: Socket;
  private readonly components: ConnectionComponents;
  private readonly log: Logger;
  private readonly reader = new FrameReader();
  private noise: Noise;
  /** Which PSK the handshake used: 0 `psk`, i the i-th of `acceptPsks`. */
  pskIndex = 0;
  private readonly init: Required<Omit<ConnectionInit, 'socket' | 'release'>> & { release?: string };
  private tx: TransportCipher | undefined = undefined;
  private rx: TransportCipher | undefined = undefined;
  private lastRx: number;
  private lastTx: number;
  private timer: TimerHandle | undefined;
  private readonly sentPreamble: Buffer;
  private prologue: Buffer | undefined = undefined;
  private handshakeFramesIn = 0;

  constructor(components: ConnectionComponents, init: ConnectionInit) {
    this.components = components;
    this.socket = init.socket;
    this.outbound = init.outbound;
    this.remoteAddress = init.remoteAddress;
    this.init = { handshakeTimeoutMs: 4000, pingMs: 10_000, deadAfterMs: 35_000, protocols: { min: MESH_PROTOCOL_MIN, max: MESH_PROTOCOL_MAX }, ...init };
    this.log = components.logger;
    this.startedAt = components.clock.now();
    this.lastRx = this.startedAt;
    this.lastTx = this.startedAt;
    this.sentPreamble = encodePreamble(this.init.protocols);
    // Initialised with the prologue once the remote preamble is in (it binds the negotiated version).
    this.noise = this.newNoise(components.psk);
    this.socket.setNoDelay(true);
    this.socket.on('data', (d: Buffer) => this.onData(d));
    this.socket.on('error', (err) => this.close('socket', err.message));
    this.socket.on('close', () => this.close('closedByPeer', 'the remote end closed the connection'));
    this.timer = components.clock.setInterval(() => this.tick(), Math.min(1000, this.init.pingMs));
    this.write(this.sentPreamble);
  }

  get established(): boolean {
    return this.phase === 'established';
  }

  send(msg: MeshMessage): boolean {
    if (this.phase !== 'established' || this.tx === undefined) return false;
    if (this.components.admits !== undefined && !this.components.admits(msg, this.protocol)) return false;
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
        const theirs = decodePreamble(p);
        this.remoteProtocols = theirs;
        this.protocol = negotiate(this.init.protocols, theirs);
        this.prologue = this.outbound ? prologue(this.protocol, this.sentPreamble, p) : prologue(this.protocol, p, this.sentPreamble);
        this.noise.initialise(this.prologue);
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
      this.handshakeFramesIn++;
      try {
        this.recvHandshake(f.subarray(4));
      } catch (err) {
        if (this.editedPreamble(f.subarray(4))) {
          throw new MeshProtocolError(
            'downgrade',
            `the initiator bound other preambles than this end saw (${formatRange(this.remoteProtocols!)} from it, ${formatRange(this.init.protocols)} from us): a preamble was changed on the way`,
          );
        }
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
      checkStatedRange(this.remoteProtocols!, rangeFromFeatures(msg.features));
      if (this.protocol >= 3 && msg.release !== undefined) this.remoteRelease = msg.release;
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

  /** A handshake state under `psk`; initialised with the prologue once the remote preamble is in. */
  private newNoise(psk: Uint8Array): Noise {
    return new Noise('XXpsk0', this.outbound, { publicKey: this.components.identity.publicKey, secretKey: this.components.identity.secretKey }, { psk });
  }

  /** The responder's first message is authenticated by the PSK: each accepted one is tried in turn. */
  private recvHandshake(m: Buffer): void {
    const others = this.components.acceptPsks ?? [];
    if (this.outbound || this.handshakeFramesIn !== 1 || others.length === 0) {
      this.noise.recv(m);
      return;
    }
    try {
      this.noise.recv(m);
    } catch (err) {
      for (let i = 0; i < others.length; i++) {
        const noise = this.newNoise(others[i]!);
        noise.initialise(this.prologue!);
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

  /** Responder, first message: whether it opens under a prologue of edited preambles (see otherPrologues). */
  private editedPreamble(msg1: Buffer): boolean {
    if (this.outbound || this.handshakeFramesIn !== 1) return false;
    const psks = [this.components.psk, ...(this.components.acceptPsks ?? [])];
    for (const p of otherPrologues(this.init.protocols, this.remoteProtocols!, this.sentPreamble, this.prologue!)) {
      for (const psk of psks) {
        const trial = this.newNoise(psk);
        trial.initialise(p);
        try {
          trial.recv(msg1);
          return true;
        } catch {
          // not this one
        }
      }
    }
    return false;
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
    const hello: MeshMessage = { type: MSG_HELLO, nickname: this.components.identity.nickname, udpPort: this.init.udpPort, features: rangeFeatures(this.init.protocols) };
    // Protocol-2 routers take a HELLO of four fields only.
    if (this.protocol >= 3 && this.init.release !== undefined) hello.release = this.init.release;
    this.write(this.tx.seal(encodeMessage(hello)));
  }
}
