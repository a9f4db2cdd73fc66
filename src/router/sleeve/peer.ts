/**
 * What the sleeve knows about one remote router: identity, UDP endpoint, keys per direction,
 * liveness and traffic counters. Fields are all set in the constructor (stable shape).
 */
import type { AeadKey } from '../../platform/aead.js';
import type { FragmentTokens } from '../crypto/fragment-tokens.js';
import { ReplayWindow } from '../crypto/replay-window.js';
import type { Endpoint } from '../../core/net.js';
import { AD_LEN, FLAG_SEALED, WIRE_VERSION } from './wire.js';

export class RxSession {
  readonly keyId: number;
  readonly key: AeadKey;
  /** Checks fragment tokens (undefined in plaintext mode). */
  readonly tokens: FragmentTokens | undefined;
  readonly window = new ReplayWindow();
  /** Opens nothing from this time on (the key's hard lifetime, counted from its installation). */
  readonly expiresAt: number;
  /** A datagram has authenticated under this key. */
  used = false;
  constructor(keyId: number, key: AeadKey, tokens: FragmentTokens | undefined, expiresAt: number) {
    this.keyId = keyId;
    this.key = key;
    this.tokens = tokens;
    this.expiresAt = expiresAt;
  }

  destroy(): void {
    this.key.destroy();
    this.tokens?.destroy();
  }
}

export class TxSession {
  readonly keyId: number;
  readonly key: AeadKey;
  /** Makes fragment tokens (undefined in plaintext mode). */
  readonly tokens: FragmentTokens | undefined;
  /** Authenticated header bytes for (version, flags, dst, src, key id), built once per key; the
   * flags byte is set per message (RELAYED or not). */
  readonly ad: Buffer;
  /** The counter of the message being sealed, as the 8 bytes the AEAD nonce is made of. */
  readonly ctr = Buffer.alloc(8);
  /** Seals nothing from this time on (the key's hard lifetime, counted from its installation). */
  readonly expiresAt: number;
  counter = 0;
  constructor(keyId: number, key: AeadKey, tokens: FragmentTokens | undefined, expiresAt: number, dst: number, src: number, sealed: boolean) {
    this.keyId = keyId;
    this.key = key;
    this.tokens = tokens;
    this.expiresAt = expiresAt;
    this.ad = Buffer.alloc(AD_LEN);
    this.ad[0] = WIRE_VERSION;
    this.ad[1] = sealed ? FLAG_SEALED : 0;
    this.ad.writeUInt32BE(dst >>> 0, 2);
    this.ad.writeUInt32BE(src >>> 0, 6);
    this.ad.writeUInt32BE(keyId >>> 0, 10);
  }

  destroy(): void {
    this.key.destroy();
    this.tokens?.destroy();
  }
}

/** One endpoint to punch to, as the overlay switch parsed it. */
export interface SleeveCandidate {
  /** As the mesh gave it ("addr:port"). */
  text: string;
  kind: string;
  /** undefined: not a valid endpoint (`error` says why). */
  endpoint: Endpoint | undefined;
  error: string;
}

export class PunchCandidate {
  readonly text: string;
  readonly kind: string;
  readonly endpoint: Endpoint | undefined;
  readonly words: readonly number[];
  probes = 0;
  replies = 0;
  rttMs = -1;
  /** probing | working | "no answer to N probes" | "cannot send: ..." | "invalid: ..." */
  result: string;
  constructor(c: SleeveCandidate) {
    this.text = c.text;
    this.kind = c.kind;
    this.endpoint = c.endpoint;
    this.words = c.endpoint === undefined ? [0, 0, 0, 0] : addressWords(c.endpoint.address, c.endpoint.family);
    this.result = c.endpoint === undefined ? `invalid: ${c.error}` : 'probing';
  }

  get sendable(): boolean {
    return this.result === 'probing';
  }
}

/** One hole-punching attempt towards a peer. */
export class PunchAttempt {
  readonly attempt: number;
  readonly startedAt: number;
  readonly candidates: PunchCandidate[];
  state: 'probing' | 'punched' | 'failed' = 'probing';
  /** Next PUNCH_SCHEDULE step. */
  step = 0;
  endpoint = '';
  why = '';
  constructor(attempt: number, startedAt: number, candidates: PunchCandidate[]) {
    this.attempt = attempt;
    this.startedAt = startedAt;
    this.candidates = candidates;
  }
}

export interface PeerCounters {
  txFrames: number;
  txBytes: number;
  txMessages: number;
  rxFrames: number;
  rxBytes: number;
  rxMessages: number;
}

export class SleevePeer {
  /** Small index: UDP destination slot, MAC-table port, reassembly owner. */
  readonly index: number;
  readonly id: number;
  readonly name: string;
  /** Where data for this peer goes: its direct endpoint, or its relay's (`viaRelay`). */
  address = '';
  port = 0;
  hasEndpoint = false;
  /** The data endpoint is the relay's (`via`): messages are sealed with RELAYED set. */
  viaRelay = false;
  /** Current keys: what we seal with, and what we open with. */
  tx: TxSession | undefined = undefined;
  rx: RxSession | undefined = undefined;
  /** The receive key `rx` replaced: accepted for a short overlap after the switch, then wiped. */
  rxPrev: RxSession | undefined = undefined;
  /** When `rx` replaced `rxPrev`. */
  rxSince = 0;
  /**
   * A key pair installed by the responder of a handshake while working keys exist: accepted for
   * receiving, and promoted to current (tx and rx) by the first datagram that authenticates
   * under `rxPending`. Keys from a replayed handshake, which nobody else holds, stay here until
   * they are dropped.
   */
  txPending: TxSession | undefined = undefined;
  rxPending: RxSession | undefined = undefined;
  pendingSince = 0;
  /** Direct underlay endpoint (from the mesh; follows authenticated direct traffic). */
  directAddress = '';
  directPort = 0;
  directFamily: 4 | 6 = 4;
  /** The direct address as words, compared with received source addresses (no strings per packet). */
  readonly directWords = new Int32Array(4);
  hasDirect = false;
  /** Relay used while the direct path is down (undefined: none). */
  via: SleevePeer | undefined = undefined;
  /** Direct path proven by heartbeats received from the peer without a relay. */
  pathUp = false;
  pathChanges = 0;
  lastDirectRx = -Infinity;
  relayedRx = 0;
  /** Peer's TAP takes virtio_net_hdr frames (from its heartbeats; informational). */
  vnetCapable = false;
  /** Largest datagram towards this peer, and the plaintext room of a one-datagram message. */
  readonly maxDatagram: number;
  readonly bundleCapacity: number;
  lastRx = -Infinity;
  lastHeartbeatRx = -Infinity;
  lastHeartbeatTx = -Infinity;
  /** Data last went to the direct endpoint (keepalive heartbeats are skipped while it flows). */
  lastDataTx = -Infinity;
  /** The direct path has been up once: after it went down, it comes back only after a hold (hysteresis). */
  everUp = false;
  /** Start of the current run of direct datagrams while the path is down (-Infinity: none). */
  backSince = -Infinity;
  /** Last authenticated datagram from the peer that came through a relay. */
  lastRelayedRx = -Infinity;
  /** The path is suspected dead (traffic out, nothing direct back): heartbeats ask for an answer at once. */
  suspect = false;
  /** Last heartbeat sent in answer to one that asked for it (rate limit). */
  lastAnswerTx = -Infinity;
  /**
   * The direct endpoint came from hole punching: the mesh's setDirect(undefined) (its connection
   * closed) leaves it while the path works; a setDirect with another endpoint clears it.
   */
  punched = false;
  /** Round trip over the direct path, from probe answers (ms; -1: not measured). */
  rttMs = -1;
  /** When the next observation probe to the direct endpoint is due. */
  nextObserveAt = 0;
  /** Probe answers sent in the current second (rate limit) and when that second started. */
  probeAnswers = 0;
  probeWindowStart = -Infinity;
  /** The last hole-punching attempt towards this peer (undefined: never tried). */
  punch: PunchAttempt | undefined = undefined;
  /** Open bundle in the transmit arena: body start (-1: none) and write position. */
  bundleStart = -1;
  bundlePos = 0;
  readonly counters: PeerCounters = { txFrames: 0, txBytes: 0, txMessages: 0, rxFrames: 0, rxBytes: 0, rxMessages: 0 };

  constructor(index: number, id: number, name: string, maxDatagram: number, bundleCapacity: number) {
    this.index = index;
    this.id = id;
    this.name = name;
    this.maxDatagram = maxDatagram;
    this.bundleCapacity = bundleCapacity;
  }

  setEndpoint(address: string, port: number, viaRelay: boolean): void {
    this.viaRelay = viaRelay;
    this.address = address;
    this.port = port;
    this.hasEndpoint = true;
  }

  /**
   * Hysteresis: a direct path that went down comes back only after a hold, but only while a
   * relay carries the peer (a relayed datagram within `deadAfterMs`). A peer that was silent on
   * every path (it restarted, or a partition healed) has nothing to hold on to: its path comes
   * back at once.
   */
  holdsBack(now: number, deadAfterMs: number): boolean {
    return this.everUp && now - this.lastRelayedRx <= deadAfterMs;
  }

  /** True when the direct endpoint is known and equals the given source (no strings per packet). */
  directIs(port: number, family: number, a0: number, a1: number, a2: number, a3: number): boolean {
    const w = this.directWords;
    return this.hasDirect && this.directPort === port && this.directFamily === family && w[0] === a0 && w[1] === a1 && w[2] === a2 && w[3] === a3;
  }
}

/** Address text → the big-endian words the UDP endpoint reports for sources. */
export function addressWords(address: string, family: 4 | 6): number[] {
  if (family === 4) {
    const p = address.split('.').map(Number);
    return [((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) | 0, 0, 0, 0];
  }
  const full = expandV6(address);
  const w: number[] = [];
  for (let i = 0; i < 4; i++) w.push(((full[i * 2]! << 16) | full[i * 2 + 1]!) | 0);
  return w;
}

/** Source words → address text (only when an endpoint changes, never per packet). */
export function wordsToAddress(family: number, a0: number, a1: number, a2: number, a3: number): string {
  if (family === 4) return [a0 >>> 24, (a0 >>> 16) & 255, (a0 >>> 8) & 255, a0 & 255].join('.');
  const parts: string[] = [];
  for (const w of [a0, a1, a2, a3]) parts.push(((w >>> 16) & 0xffff).toString(16), (w & 0xffff).toString(16));
  return parts.join(':');
}

function expandV6(address: string): number[] {
  const [head, tail] = address.includes('::') ? address.split('::') : [address, undefined];
  const h = head === '' || head === undefined ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const toNums = (xs: string[]): number[] => {
    const out: number[] = [];
    for (const x of xs) {
      if (x.includes('.')) {
        const p = x.split('.').map(Number);
        out.push((p[0]! << 8) | p[1]!, (p[2]! << 8) | p[3]!);
      } else out.push(parseInt(x, 16));
    }
    return out;
  };
  const hn = toNums(h);
  const tn = toNums(t);
  const fill = tail === undefined ? [] : new Array<number>(8 - hn.length - tn.length).fill(0);
  return [...hn, ...fill, ...tn];
}
