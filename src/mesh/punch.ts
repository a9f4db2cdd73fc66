/**
 * Candidate exchange and punch coordination over the mesh (issue 18), on the "punch" channel.
 *
 *   A (no direct path to B)                        B
 *   OFFER A's candidates ── unicast, routed ──▶    overlay.punch(A, A's candidates)
 *   overlay.punch(B, B's last known, if any)       ANSWER B's candidates
 *   overlay.punch(B, B's candidates)     ◀──────── (both sides now probe at once)
 *
 * Who: every peer reachable through the mesh, with pair keys, whose direct path is not proven
 * (`overlay.pathUp`). When: at once, then on a backoff (1 s doubling to 60 s) while there is no
 * direct path; at once again (backoff reset) when the direct path goes down or our candidates
 * change, never more than one offer a second to one peer. Both sides may offer; each answers.
 *
 * Wire (punch-wire.ts; canonical msgpack):
 *
 *   [1, type, from, to, incarnation, seq, [[endpoint, kind], ...], signature]
 *   type        1 offer, 2 answer
 *   incarnation the sender's router run, as its topology record says (16 hex digits)
 *   seq         the sender's counter in that run (1, 2, ...; one counter for all peers)
 *   signature   the sender's identity signature (signing.ts) of
 *               signedBytes(PUNCH_LABEL, canonical [type, from, to, incarnation, seq, candidates])
 *
 * A member relaying it cannot change a candidate (signature), point it at someone else (`to`),
 * pass it off as another sender's (`from` must be the unicast's source, whose key checks it),
 * replay it (seq not above the newest seen from that run: refused), or replay one of an earlier
 * run (the incarnation must be the sender's current one in topology). Refused too: more than
 * `MAX_CANDIDATES` candidates, an endpoint that is not one (unspecified, loopback, multicast,
 * link-local...), more offers than the per-peer budget (5, one more a second), and answers to no
 * offer of ours of the last 30 s. Each refusal is counted by reason (`stats.refused`); malformed
 * or forged messages are also refused on the channel (a `GossipDecodeError`: counted there,
 * logged once per peer by the mesh). Nothing refused changes any state.
 */
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { Gossiper, Overlay, PathCandidate, PeerName } from './contracts.js';
import { GossipDecodeError } from './errors.js';
import { ANSWER, OFFER, PunchRefused, decodePunch, encodePunch, punchSignedBytes, type PunchRefusal } from './punch-wire.js';
import { Verifier } from './signing.js';
import type { EndpointsStatus } from '../api/types.js';

export { ANSWER, OFFER, PUNCH_LABEL, PUNCH_REFUSALS, PunchRefused, decodePunch, encodePunch, punchSignedBytes } from './punch-wire.js';
export type { PunchMessage, PunchRefusal } from './punch-wire.js';

export const PUNCH_CHANNEL = 'punch';

/** Refusals that mean a broken or hostile sender (also refused on the channel, logged once by the mesh). */
const HOSTILE: ReadonlySet<PunchRefusal> = new Set<PunchRefusal>(['malformed', 'tooManyCandidates', 'badEndpoint', 'notForUs', 'wrongSender', 'badSignature']);

/**
 * The gossiper of the "punch" channel: messages are unicasts (`onMessage` throws
 * `GossipDecodeError` for malformed or forged ones); gossip or a broadcast is refused.
 */
export function punchGossiper(onMessage: (from: PeerName, data: Uint8Array) => void): Gossiper {
  const refuse = (): never => {
    throw new GossipDecodeError(PUNCH_CHANNEL, 'candidates travel as unicasts only');
  };
  return { onUnicast: onMessage, onBroadcast: refuse, gossip: () => undefined, onGossip: refuse };
}

export interface PunchComponents {
  clock: Clock;
  logger: Logger;
  self: PeerName;
  signer: { sign(message: Uint8Array): Uint8Array };
  verifier?: Verifier;
  /** Identity public key of a peer (topology or its connection). */
  publicKeyOf(name: PeerName): Uint8Array | undefined;
  /** A peer's current router run, from its topology record (ours too). */
  incarnationOf(name: PeerName): string | undefined;
  /** Route a message to `to` over the mesh; false when there is no route now. */
  unicast(to: PeerName, data: Uint8Array): boolean;
  overlay: Pick<Overlay, 'punch' | 'pathUp'>;
  /** Our candidates now (endpoints.ts). */
  candidates(): readonly PathCandidate[];
  /** Peers reachable through the mesh. */
  reachable(): readonly PeerName[];
  /** Whether pair keys with the peer are in place (the overlay's probes need them). */
  hasKeys(name: PeerName): boolean;
}

export interface PunchInit {
  /** First retry after this long; doubles. Default 1 s. */
  baseMs?: number;
  /** Longest gap between offers while there is no direct path. Default 60 s. */
  capMs?: number;
  /** Shortest gap between two offers of ours to one peer. Default 1 s. */
  minGapMs?: number;
  /** An answer is taken only this long after our offer. Default 30 s. */
  answerWindowMs?: number;
  /** Offers taken from one peer in a burst, and one more per `refillMs`. Default 5 and 1 s. */
  burst?: number;
  refillMs?: number;
  /** Peers whose newest seq is remembered. Default 4096. */
  maxRemembered?: number;
}

interface PeerPunch {
  name: PeerName;
  nextAt: number;
  backoffMs: number;
  lastOfferAt: number;
  /** Our offer awaits an answer (until lastOfferAt + answerWindowMs). */
  awaiting: boolean;
  offersSent: number;
  offersReceived: number;
  lastAt: number;
  theirs: PathCandidate[] | undefined;
  lastPunchAt: number;
  lastPunchKey: string;
  tokens: number;
  tokensAt: number;
  wanted: boolean;
}

export class PunchCoordinator {
  readonly stats = {
    offersSent: 0,
    answersSent: 0,
    offersReceived: 0,
    answersReceived: 0,
    /** Offers or answers that found no route. */
    unrouted: 0,
    punches: 0,
    refused: {} as Partial<Record<PunchRefusal, number>>,
  };
  private readonly c: PunchComponents;
  private readonly init: Required<PunchInit>;
  private readonly verifier: Verifier;
  private readonly log: Logger;
  private readonly peers = new Map<PeerName, PeerPunch>();
  /** Newest seq per sender run (a bounded table; oldest first). */
  private readonly newest = new Map<PeerName, { incarnation: string; seq: number }>();
  private seq = 0;

  constructor(components: PunchComponents, init: PunchInit = {}) {
    this.c = components;
    this.log = components.logger;
    this.verifier = components.verifier ?? new Verifier();
    this.init = { baseMs: 1000, capMs: 60_000, minGapMs: 1000, answerWindowMs: 30_000, burst: 5, refillMs: 1000, maxRemembered: 4096, ...init };
  }

  /**
   * Re-reads who needs punching (after routes, keys or paths changed): peers newly without a
   * direct path get an offer at once; peers with one are left alone.
   */
  update(): void {
    const now = this.c.clock.now();
    const reachable = new Set(this.c.reachable());
    for (const [name, p] of this.peers) {
      if (!reachable.has(name)) {
        this.peers.delete(name);
        continue;
      }
      const wanted = this.wants(name);
      if (wanted && !p.wanted) this.reset(p, now);
      p.wanted = wanted;
    }
    for (const name of reachable) {
      if (name === this.c.self || this.peers.has(name) || !this.wants(name)) continue;
      this.peers.set(name, this.fresh(name, now));
    }
    this.tick();
  }

  /** The direct path to `name` went down: offer again at once (backoff reset). */
  pathDown(name: PeerName): void {
    const p = this.peers.get(name);
    if (p === undefined) {
      this.update();
      return;
    }
    p.wanted = this.wants(name);
    this.reset(p, this.c.clock.now());
    this.tick();
  }

  /** Our candidates changed: every peer still without a direct path gets them at once. */
  candidatesChanged(): void {
    const now = this.c.clock.now();
    for (const p of this.peers.values()) if (p.wanted) this.reset(p, now);
    this.tick();
  }

  /** Sends the offers that are due (call every few hundred ms). */
  tick(): void {
    const now = this.c.clock.now();
    for (const p of this.peers.values()) {
      if (p.awaiting && now - p.lastOfferAt >= this.init.answerWindowMs) p.awaiting = false;
      if (!p.wanted) continue;
      if (this.c.overlay.pathUp(p.name)) {
        p.wanted = false;
        continue;
      }
      if (now < p.nextAt) continue;
      this.sendOffer(p, now);
    }
  }

  /** A unicast on the channel. Throws `GossipDecodeError` for malformed or forged messages; other refusals are counted only. */
  onMessage(from: PeerName, data: Uint8Array): void {
    const r = this.accept(from, data);
    if (!(r instanceof PunchRefused)) return;
    this.stats.refused[r.reason] = (this.stats.refused[r.reason] ?? 0) + 1;
    if (HOSTILE.has(r.reason)) throw new GossipDecodeError(PUNCH_CHANNEL, `${r.reason}: ${r.detail}`);
    this.log.debug('candidates refused', { peer: from, reason: r.reason, detail: r.detail });
  }

  status(): EndpointsStatus['punches'] {
    const now = this.c.clock.now();
    return [...this.peers.values()]
      .map((p) => ({
        peer: p.name,
        state: this.stateOf(p, now),
        offersSent: p.offersSent,
        offersReceived: p.offersReceived,
        lastMsAgo: p.lastAt < 0 ? null : Math.max(0, Math.round(now - p.lastAt)),
      }))
      .sort((a, b) => (a.peer < b.peer ? -1 : a.peer > b.peer ? 1 : 0));
  }

  /** Candidates last received from a peer (undefined: none yet). */
  theirs(name: PeerName): readonly PathCandidate[] | undefined {
    return this.peers.get(name)?.theirs;
  }

  private stateOf(p: PeerPunch, now: number): string {
    if (this.c.overlay.pathUp(p.name)) return 'direct';
    if (!this.c.hasKeys(p.name)) return 'waiting for keys';
    if (p.awaiting) return 'offered';
    if (p.lastPunchAt >= 0 && now - p.lastPunchAt < 5000) return 'probing';
    return `retry in ${Math.max(0, Math.round((p.nextAt - now) / 1000))}s`;
  }

  private wants(name: PeerName): boolean {
    return name !== this.c.self && this.c.hasKeys(name) && !this.c.overlay.pathUp(name);
  }

  private fresh(name: PeerName, now: number): PeerPunch {
    return {
      name, nextAt: now, backoffMs: this.init.baseMs, lastOfferAt: -Infinity, awaiting: false, offersSent: 0, offersReceived: 0, lastAt: -1,
      theirs: undefined, lastPunchAt: -1, lastPunchKey: '', tokens: this.init.burst, tokensAt: now, wanted: true,
    };
  }

  private reset(p: PeerPunch, now: number): void {
    p.backoffMs = this.init.baseMs;
    p.nextAt = Math.max(now, p.lastOfferAt + this.init.minGapMs);
  }

  private message(type: typeof OFFER | typeof ANSWER, to: PeerName): Uint8Array | undefined {
    const incarnation = this.c.incarnationOf(this.c.self);
    if (incarnation === undefined) return undefined;
    return encodePunch({ type, from: this.c.self, to, incarnation, seq: ++this.seq, candidates: [...this.c.candidates()] }, this.c.signer);
  }

  private sendOffer(p: PeerPunch, now: number): void {
    p.nextAt = now + p.backoffMs;
    p.backoffMs = Math.min(p.backoffMs * 2, this.init.capMs);
    const data = this.message(OFFER, p.name);
    if (data === undefined) return;
    // Set before sending: the answer may come back within the call.
    const before = { lastOfferAt: p.lastOfferAt, awaiting: p.awaiting };
    p.lastOfferAt = now;
    p.awaiting = true;
    if (!this.c.unicast(p.name, data)) {
      this.stats.unrouted++;
      p.lastOfferAt = before.lastOfferAt;
      p.awaiting = before.awaiting;
      return;
    }
    this.stats.offersSent++;
    p.offersSent++;
    p.lastAt = now;
    // Probing their last known candidates now opens our side for their probes.
    if (p.theirs !== undefined) this.punch(p, p.theirs, now);
  }

  private punch(p: PeerPunch, candidates: PathCandidate[], now: number): void {
    const key = candidates.map((c) => c.endpoint).join(',');
    // An offer and an answer crossing bring the same list twice: one burst is enough.
    if (key === p.lastPunchKey && now - p.lastPunchAt < this.init.minGapMs) return;
    p.lastPunchKey = key;
    p.lastPunchAt = now;
    this.stats.punches++;
    this.c.overlay.punch(p.name, candidates);
  }

  private accept(from: PeerName, data: Uint8Array): PunchRefused | undefined {
    const d = decodePunch(data);
    if (d instanceof PunchRefused) return d;
    const m = d.message;
    if (m.to !== this.c.self) return new PunchRefused('notForUs', `addressed to ${m.to}`);
    if (m.from !== from) return new PunchRefused('wrongSender', `signed as ${m.from} but sent by ${from}`);
    const key = this.c.publicKeyOf(from);
    const incarnation = this.c.incarnationOf(from);
    if (key === undefined || incarnation === undefined) return new PunchRefused('unknownPeer', 'no public key or record of the sender');
    if (m.incarnation !== incarnation) return new PunchRefused('staleIncarnation', `run ${m.incarnation} is not the sender's current run ${incarnation}`);
    const last = this.newest.get(from);
    if (last !== undefined && last.incarnation === m.incarnation && m.seq <= last.seq) return new PunchRefused('replayed', `seq ${m.seq} is not above ${last.seq}`);
    if (!this.c.reachable().includes(from)) return new PunchRefused('unknownPeer', 'the sender is not reachable through the mesh (no route back)');
    const now = this.c.clock.now();
    let p = this.peers.get(from);
    if (m.type === ANSWER && (p === undefined || !p.awaiting || now - p.lastOfferAt >= this.init.answerWindowMs)) {
      return new PunchRefused('unsolicited', 'an answer to no offer of ours');
    }
    if (p === undefined) {
      // A reachable peer we do not punch (its path is up here): kept for its offer budget.
      p = this.fresh(from, now);
      p.wanted = this.wants(from);
      this.peers.set(from, p);
    }
    if (m.type === OFFER && !this.take(p, now)) return new PunchRefused('rateLimited', `more than ${this.init.burst} offers, then one a ${this.init.refillMs} ms`);
    if (!this.verifier.verify(key, punchSignedBytes(m), d.signature)) return new PunchRefused('badSignature', "the signature does not check against the sender's key");
    this.newest.delete(from);
    this.newest.set(from, { incarnation: m.incarnation, seq: m.seq });
    while (this.newest.size > this.init.maxRemembered) this.newest.delete(this.newest.keys().next().value!);
    p.theirs = m.candidates;
    p.offersReceived++;
    p.lastAt = now;
    if (m.type === ANSWER) {
      this.stats.answersReceived++;
      p.awaiting = false;
      this.punch(p, m.candidates, now);
      return undefined;
    }
    this.stats.offersReceived++;
    this.punch(p, m.candidates, now);
    const answer = this.message(ANSWER, from);
    if (answer === undefined) return undefined;
    if (this.c.unicast(from, answer)) {
      this.stats.answersSent++;
      p.offersSent++;
      // The answer carried our candidates: our own offer can wait its turn.
      p.nextAt = Math.max(p.nextAt, now + p.backoffMs);
    } else this.stats.unrouted++;
    return undefined;
  }

  /** Takes one offer from the peer's budget; false when it is spent. */
  private take(p: PeerPunch, now: number): boolean {
    const refill = Math.floor((now - p.tokensAt) / this.init.refillMs);
    if (refill > 0) {
      p.tokens = Math.min(this.init.burst, p.tokens + refill);
      p.tokensAt = p.tokens === this.init.burst ? now : p.tokensAt + refill * this.init.refillMs;
    }
    if (p.tokens <= 0) return false;
    p.tokens--;
    return true;
  }
}
