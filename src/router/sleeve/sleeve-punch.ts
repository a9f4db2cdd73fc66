/**
 * Sleeve probes: hole punching, observations of our own endpoint, and round trips.
 *
 * A probe is an authenticated PROBE message (wire.ts: FLAG_PROBE, one REC_PROBE record) sent to
 * any endpoint through the transmit path's scratch destination slot. A request carries the
 * endpoint it went to, an id and our send time; the peer answers at once to the request's
 * source with that source (where it saw us come from: an observation) and the id and time
 * (a round trip). Answers are matched against a bounded table of pending requests: an answer
 * must come from the very endpoint its request went to.
 *
 * Punching (`punch`): requests to every candidate at once, then at PUNCH_SCHEDULE offsets, for
 * PUNCH_WINDOW_MS. The first candidate that answers works both ways: it becomes the direct
 * endpoint and the path comes up at once (`punched`), and the attempt stops. Without an answer
 * the attempt fails, each candidate saying why.
 *
 * Observations: a peer with a proven direct path gets a request at path-up, then every
 * OBSERVE_EVERY_MS; its answer gives the round trip (`peer.rttMs`) and our endpoint as that peer
 * sees it (`events.observed`).
 *
 * A probe never proves a path by itself, never moves an endpoint and never counts as direct.
 * Nothing here runs per data datagram.
 */
import { formatEndpoint, type Endpoint } from '../../core/net.js';
import type { UdpEndpoint } from '../../platform/udp.js';
import { PunchAttempt, PunchCandidate, wordsToAddress, type SleeveCandidate, type SleevePeer } from './peer.js';
import type { SleeveState } from './sleeve-state.js';
import { PROBE_ANSWER, PROBE_LEN, PROBE_REQUEST, readU16, readU32, writeU16, writeU32 } from './wire.js';

export { PunchAttempt, PunchCandidate, type SleeveCandidate };

/** Offsets (ms from the attempt's start) at which every candidate gets a request. */
export const PUNCH_SCHEDULE: readonly number[] = [0, 100, 200, 400, 800, 1600, 3200];
/** An attempt without an answer fails this long after it started. */
export const PUNCH_WINDOW_MS = 5000;
/** Most candidates per attempt (more are ignored). */
export const MAX_CANDIDATES = 16;
/** Observation probes to a peer with a proven direct path. */
export const OBSERVE_EVERY_MS = 25_000;
/** Probe answers per peer per second; more requests are dropped (counted). */
export const MAX_ANSWERS_PER_S = 64;
/** Pending requests remembered (a ring: the oldest is forgotten first). */
export const PENDING_PROBES = 256;

/**
 * The round trip kept for a peer after a new sample (ms; `current` < 0: none yet). A sample below
 * the current value is taken at once; one above moves it by an eighth (smoothed); to 0.01 ms.
 * A round trip measured here includes both routers' event loops, and the first sample comes at
 * path-up, often while a router is still busy starting (its fast path, IPAM): smoothing alone
 * kept such a sample for minutes (samples come every OBSERVE_EVERY_MS), which showed fast-path
 * pairs on one host at 47-306 ms.
 */
export function nextRtt(current: number, sample: number): number {
  const next = current < 0 || sample <= current ? sample : (current * 7 + sample) / 8;
  return Math.round(next * 100) / 100;
}

/** A request sent and not yet answered. */
class PendingProbe {
  id = 0;
  peer: SleevePeer | undefined = undefined;
  /** The attempt and candidate it probed (-1: an observation of the direct endpoint). */
  attempt = 0;
  candidate = -1;
  sentAt = 0;
  port = 0;
  family = 4;
  readonly words = new Int32Array(4);
}

export interface ProbeCounters {
  /** Requests sent (punching and observations). */
  requests: number;
  /** Answers sent to peers' requests. */
  answered: number;
  /** Answers received that matched a request of ours. */
  replies: number;
  punched: number;
  punchFailed: number;
}

export class SleeveProbes {
  readonly counters: ProbeCounters = { requests: 0, answered: 0, replies: 0, punched: 0, punchFailed: 0 };
  private readonly state: SleeveState;
  private readonly udp: UdpEndpoint;
  private readonly body = Buffer.alloc(PROBE_LEN);
  private readonly pending: PendingProbe[] = [];
  private nextSlot = 0;
  private nextId = 1;

  constructor(state: SleeveState) {
    this.state = state;
    this.udp = state.udp;
    for (let i = 0; i < PENDING_PROBES; i++) this.pending.push(new PendingProbe());
  }

  /** Starts a new attempt towards `peer` (replacing any) and sends its first burst. */
  punch(peer: SleevePeer, candidates: readonly SleeveCandidate[]): void {
    const attempt = new PunchAttempt((peer.punch?.attempt ?? 0) + 1, this.state.nowMs, candidates.slice(0, MAX_CANDIDATES).map((c) => new PunchCandidate(c)));
    peer.punch = attempt;
    this.tick(peer, this.state.nowMs);
  }

  /** The coarse timer's work for one peer: punching bursts, the attempt's end, observations. */
  tick(peer: SleevePeer, now: number): void {
    const a = peer.punch;
    if (a !== undefined && a.state === 'probing') {
      if (a.step < PUNCH_SCHEDULE.length && now - a.startedAt >= PUNCH_SCHEDULE[a.step]!) {
        a.step++;
        for (let i = 0; i < a.candidates.length; i++) {
          const c = a.candidates[i]!;
          if (c.sendable) this.request(peer, a.attempt, i, c);
        }
      } else if (now - a.startedAt >= PUNCH_WINDOW_MS) {
        this.fail(peer, a);
      }
    }
    if (peer.pathUp && peer.hasDirect && now >= peer.nextObserveAt) {
      peer.nextObserveAt = now + OBSERVE_EVERY_MS;
      this.send(peer, -1, -1, { address: peer.directAddress, port: peer.directPort, family: peer.directFamily }, peer.directWords);
    }
  }

  /**
   * A probe record from `peer` (authenticated; body buf[off, off + PROBE_LEN)); `m` is the
   * datagram's entry in the receive metadata (its source).
   */
  received(peer: SleevePeer, buf: Buffer, off: number, m: number): void {
    const op = buf[off]!;
    const family = buf[off + 1]!;
    if ((op !== PROBE_REQUEST && op !== PROBE_ANSWER) || (family !== 4 && family !== 6) || readU16(buf, off + 2) === 0) {
      this.state.drops.probeMalformed++;
      return;
    }
    if (op === PROBE_REQUEST) this.answer(peer, buf, off, m);
    else this.answered(peer, buf, off, m);
  }

  /** Answers a request at once, to its source, with that source, id and echo. */
  private answer(peer: SleevePeer, buf: Buffer, off: number, m: number): void {
    const now = this.state.nowMs;
    if (now - peer.probeWindowStart >= 1000) {
      peer.probeWindowStart = now;
      peer.probeAnswers = 0;
    }
    if (peer.probeAnswers >= MAX_ANSWERS_PER_S) {
      this.state.drops.probeRateLimited++;
      return;
    }
    peer.probeAnswers++;
    const meta = this.udp.rxMeta;
    const port = meta[m + 3]!;
    const family = meta[m + 4] === 6 ? 6 : 4;
    const b = this.body;
    b.fill(0);
    b[0] = PROBE_ANSWER;
    b[1] = family;
    writeU16(b, 2, port);
    buf.copy(b, 4, off + 4, off + 12);
    for (let k = 0; k < (family === 4 ? 1 : 4); k++) writeU32(b, 12 + 4 * k, meta[m + 5 + k]! >>> 0);
    const address = wordsToAddress(family, meta[m + 5]!, meta[m + 6]!, meta[m + 7]!, meta[m + 8]!);
    if (this.state.tx.probe(peer, b, PROBE_LEN, address, port) === '') this.counters.answered++;
  }

  /** An answer: matched against the pending requests; a round trip, an observation, maybe a punch. */
  private answered(peer: SleevePeer, buf: Buffer, off: number, m: number): void {
    const id = readU32(buf, off + 4);
    const echo = readU32(buf, off + 8);
    const meta = this.udp.rxMeta;
    let entry: PendingProbe | undefined = undefined;
    for (let i = 0; i < this.pending.length; i++) {
      const e = this.pending[i]!;
      if (e.peer === peer && e.id === id) {
        entry = e;
        break;
      }
    }
    // Only from the endpoint the request went to: an answer from elsewhere proves nothing of it.
    const w = entry?.words;
    if (
      entry === undefined || w === undefined || (entry.sentAt >>> 0) !== echo || entry.port !== meta[m + 3] || entry.family !== meta[m + 4] ||
      w[0] !== meta[m + 5] || w[1] !== meta[m + 6] || w[2] !== meta[m + 7] || w[3] !== meta[m + 8]
    ) {
      this.state.drops.probeUnmatched++;
      return;
    }
    entry.peer = undefined;
    const now = this.state.nowMs;
    const rtt = Math.max(0, now - entry.sentAt);
    this.counters.replies++;
    peer.rttMs = nextRtt(peer.rttMs, rtt);
    const family = buf[off + 1] === 6 ? 6 : 4;
    const words = wordsToAddress(family, readU32(buf, off + 12) | 0, readU32(buf, off + 16) | 0, readU32(buf, off + 20) | 0, readU32(buf, off + 24) | 0);
    // (IPv6 in its canonical short form, as interfaces list it: observations are compared as text)
    const observed = formatEndpoint({ address: family === 6 ? new URL(`http://[${words}]/`).hostname.slice(1, -1) : words, port: readU16(buf, off + 2) });
    const a = peer.punch;
    if (entry.candidate >= 0 && a !== undefined && a.attempt === entry.attempt) {
      const c = a.candidates[entry.candidate]!;
      c.replies++;
      c.rttMs = rtt;
      if (a.state === 'probing') this.punched(peer, a, c);
    }
    this.state.events.observed?.(peer, observed);
  }

  /** The first candidate that answered: the direct endpoint, and the path comes up. */
  private punched(peer: SleevePeer, a: PunchAttempt, c: PunchCandidate): void {
    const ep = c.endpoint!;
    a.state = 'punched';
    a.endpoint = formatEndpoint(ep);
    c.result = 'working';
    for (const o of a.candidates) if (o.sendable) o.result = `not needed (${o.probes} probes, no answer yet)`;
    this.counters.punched++;
    const same = peer.hasDirect && peer.directAddress === ep.address && peer.directPort === ep.port;
    this.state.log.info('hole punched', { peer: peer.name, endpoint: a.endpoint, kind: c.kind, rttMs: c.rttMs });
    this.state.setDirect(peer, ep);
    peer.punched = true;
    peer.lastDirectRx = this.state.nowMs;
    // At once, unless it is the endpoint the path just failed on: that one comes back after the
    // hold, like any direct path that went down (hysteresis).
    if (!same || !peer.holdsBack(this.state.nowMs, this.state.settings.deadAfterMs)) this.state.setPath(peer, true);
    else if (peer.backSince === -Infinity) peer.backSince = this.state.nowMs;
    this.state.events.punched?.(peer);
  }

  private fail(peer: SleevePeer, a: PunchAttempt): void {
    a.state = 'failed';
    let sent = 0;
    for (const c of a.candidates) {
      if (c.sendable) {
        c.result = `no answer to ${c.probes} probes`;
        sent++;
      }
    }
    a.why = a.candidates.length === 0 ? 'no candidates' : sent === 0 ? 'no candidate could be probed' : `no answer from ${sent} candidate${sent === 1 ? '' : 's'}`;
    this.counters.punchFailed++;
    this.state.log.info('hole punching failed', { peer: peer.name, attempt: a.attempt, why: a.why });
  }

  private request(peer: SleevePeer, attempt: number, index: number, c: PunchCandidate): void {
    const ep = c.endpoint!;
    const err = this.send(peer, attempt, index, ep, c.words);
    if (err === '') c.probes++;
    else c.result = `cannot send: ${err}`;
  }

  /** Sends a request to `ep` and remembers it; '' or why it could not be sent. */
  private send(peer: SleevePeer, attempt: number, index: number, ep: Endpoint, words: ArrayLike<number>): string {
    const now = this.state.nowMs;
    const id = this.nextId;
    this.nextId = (this.nextId + 1) >>> 0 || 1;
    const b = this.body;
    b.fill(0);
    b[0] = PROBE_REQUEST;
    b[1] = ep.family;
    writeU16(b, 2, ep.port);
    writeU32(b, 4, id);
    writeU32(b, 8, now >>> 0);
    for (let k = 0; k < 4; k++) writeU32(b, 12 + 4 * k, words[k]! >>> 0);
    this.state.tx.now = now;
    const err = this.state.tx.probe(peer, b, PROBE_LEN, ep.address, ep.port);
    if (err !== '') return err;
    this.counters.requests++;
    const e = this.pending[this.nextSlot]!;
    this.nextSlot = (this.nextSlot + 1) % PENDING_PROBES;
    e.id = id;
    e.peer = peer;
    e.attempt = attempt;
    e.candidate = index;
    e.sentAt = now;
    e.port = ep.port;
    e.family = ep.family;
    for (let k = 0; k < 4; k++) e.words[k] = words[k]! | 0;
    return '';
  }

  /** Forgets a removed peer's pending requests. */
  forget(peer: SleevePeer): void {
    for (const e of this.pending) if (e.peer === peer) e.peer = undefined;
  }
}
