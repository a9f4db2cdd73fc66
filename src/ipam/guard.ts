/**
 * What a peer does with what custody tells it (steward.ts decides, this writes, counts and logs):
 * answering a tombstone of itself, writing back space others took, reclaiming as heir, giving
 * reclaimed space back, and the proofs it sends (`prove`) and asks for (`askProofs`), each for one
 * range (range-state.ts). The Ipam owns the ranges and persists and gossips the writes
 * (`GuardHost`); this keeps what only these need: when peers became unreachable, when each pending
 * token's proofs were asked for, and whether we are fenced.
 */
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { GossipTransport, PeerName } from '../mesh/contracts.js';
import type { Announcer } from './announcer.js';
import type { IpamSettings } from './config.js';
import type { CustodyContext } from './custody.js';
import type { RangeState } from './range-state.js';
import { Ring } from './ring.js';
import { IPAM_CHANNEL, withProofs } from './ring-codec.js';
import { MAX_VERSION, type RingWriter } from './ring-signing.js';
import { bytesToOffset, offsetToBytes } from './space.js';
import type { IpamCounters } from './status.js';
import { Steward } from './steward.js';
import { MAX_PROVE, encodeGossip, encodeProve } from './wire.js';

export interface GuardHost {
  readonly self: PeerName;
  readonly writer: RingWriter;
  readonly log: Logger;
  readonly counters: IpamCounters;
  readonly clock: Clock;
  readonly transport: GossipTransport;
  readonly ranges: readonly RangeState[];
  readonly settings: Pick<IpamSettings, 'reclaimHoldMs' | 'reclaimAfterMs' | 'askTimeoutMs'>;
  /** Persists, then gossips our writes. */
  readonly announcer: Announcer;
  context(): CustodyContext;
  syncOwned(range: RangeState): void;
  /** What we own or hold changed (besides `syncOwned`), or the state must be written. */
  changed(): void;
  logOnce(key: string, level: 'warn' | 'error' | 'info', msg: string, fields: Record<string, unknown>): void;
}

export class Guard {
  private readonly host: GuardHost;
  private readonly steward: Steward;
  /** Set once something of ours was taken while we were forgotten: we never allocate again (persisted). */
  fenced = false;
  /** Peers not reachable since (monotonic ms), as seen at the last tick; the peers reachable then. */
  private readonly unreachableSince = new Map<PeerName, number>();
  private reachableLast = new Set<PeerName>();
  private readonly startedAt: number;
  /** When we last asked for the titles of a pending token ("space/token"). */
  private readonly provesAsked = new Map<string, number>();

  constructor(host: GuardHost) {
    this.host = host;
    this.steward = new Steward(host.self);
    this.startedAt = host.clock.now();
  }

  /** We are forgotten in the range's ring: revive while nothing of ours was taken (true), else fenced for good. */
  answerTombstone(range: RangeState): boolean {
    const h = this.host;
    const ring = range.ring!;
    if (this.fenced) return false;
    const a = this.steward.answer(ring, range.custody!);
    if (a === undefined) return false;
    const life = ring.lifeOf(h.self)!;
    if (a === 'revive' && life.epoch < MAX_VERSION) {
      const delta = ring.revive(h.writer)!;
      h.counters.revived++;
      h.log.warn('this router was forgotten while it runs: the tombstone is cancelled with a revival', { by: life.writer, epoch: life.epoch, range: ring.space.cidr });
      h.announcer.commit([delta]);
      return true;
    }
    this.fenced = true;
    h.log.error('this router was forgotten and its space taken: it is fenced and allocates nothing under this identity', { by: life.writer, epoch: life.epoch, range: ring.space.cidr });
    for (const r of h.ranges) h.syncOwned(r);
    h.changed();
    return false;
  }

  /** Writes back our entries over what others took from us (steward.ts `defend`). */
  defend(range: RangeState): void {
    const h = this.host;
    const ring = range.ring!;
    const custody = range.custody!;
    if (custody.pendingCount() === 0 || this.fenced) return;
    const d = this.steward.defend(ring, custody);
    for (const r of d.restraints) {
      if (r.why === 'doubleSpend') h.counters.doubleSpends++;
      else h.counters.defenceImpossible++;
      h.log.error(r.why === 'doubleSpend' ? 'space given to us was given again by the same peer: not fought over, not used' : 'space of ours was taken at the version bound: it cannot be written back', { writer: r.writer, token: String(r.token), range: ring.space.cidr });
    }
    if (d.drafts.length === 0) return;
    const out = range.wrote(ring.write(h.writer, d.drafts), h.self);
    h.counters.defended += d.drafts.length;
    for (const w of d.attackers) h.logOnce(`attack/${w}`, 'error', 'a peer wrote entries over space this router owns: written back', { writer: w, range: ring.space.cidr });
    h.syncOwned(range);
    h.announcer.commit([out]);
  }

  /** As heir, takes over the confirmed entries of forgotten peers gone long enough; returns whether orphans remain. */
  reclaim(range: RangeState): boolean {
    const h = this.host;
    const ring = range.ring!;
    const now = h.clock.now();
    const ctx = h.context();
    const gone = (p: PeerName): boolean => !ctx.reachable(p) && now - (this.unreachableSince.get(p) ?? this.startedAt) >= h.settings.reclaimAfterMs;
    const ok = this.steward.reclaimable(ring, range.custody!, gone);
    const m = ok.size === 0 ? undefined : ring.reclaim(h.writer, (i) => ok.has(i));
    if (m !== undefined) {
      const out = range.wrote(m.delta, h.self);
      h.counters.materialized += m.taken.length;
      h.log.info('reclaimed the space of forgotten peers', { range: ring.space.cidr, runs: m.taken.length, holdMs: h.settings.reclaimHoldMs });
      range.allocator.hold(m.taken, now + h.settings.reclaimHoldMs);
      h.syncOwned(range);
      h.changed();
      h.announcer.commit([out]);
    }
    return ring.orphans() > 0;
  }

  /** Gives reclaimed space we still hold back to its owner, which revived. */
  giveBack(range: RangeState): void {
    const h = this.host;
    const ring = range.ring!;
    const g = this.steward.giveBack(ring, range.custody!, range.allocator);
    if (g.drafts.length === 0) return;
    const out = range.wrote(ring.write(h.writer, g.drafts), h.self);
    h.counters.givenBack += g.drafts.length;
    h.log.info('gave reclaimed space back to a peer that was forgotten and came back', { range: ring.space.cidr, runs: g.runs.length, to: [...new Set(g.drafts.map((x) => x.owner))] });
    h.syncOwned(range);
    h.changed();
    h.announcer.commit([out]);
  }

  /** Answers a `prove`: what we know of how those tokens came to be (nothing when we know nothing). */
  prove(from: PeerName, range: RangeState, raw: readonly Uint8Array[]): void {
    const h = this.host;
    const ring = range.ring;
    const custody = range.custody;
    const space = range.space;
    if (ring === undefined || custody === undefined) return;
    const proofs = custody.titlesFor(raw.filter((b) => b.length === space.bytes).map(bytesToOffset));
    if (proofs.length === 0) return;
    const empty = Ring.fromParts(ring.genesis, [], [], [], space);
    h.transport.unicast(IPAM_CHANNEL, from, encodeGossip([withProofs(empty.encode(), proofs, space.bytes)], []));
  }

  /**
   * Asks the owners of entries we could not confirm for their titles (every `5 × askTimeoutMs` per
   * token at most; proofs that went round the gossip may have missed us).
   */
  askProofs(range: RangeState, now: number): void {
    const h = this.host;
    const ring = range.ring;
    const custody = range.custody;
    if (ring === undefined || custody === undefined || custody.pendingCount() === 0) return;
    const ctx = h.context();
    const byOwner = new Map<PeerName, bigint[]>();
    for (const [t, v] of custody.pendingList()) {
      if (v === 'unknown') continue;
      const owner = ring.entryAt(t)?.owner;
      const k = `${range.index}/${t}`;
      if (owner === undefined || owner === h.self || now - (this.provesAsked.get(k) ?? -Infinity) < 5 * h.settings.askTimeoutMs || !ctx.reachable(owner)) continue;
      const list = byOwner.get(owner) ?? [];
      if (list.length < MAX_PROVE) list.push(t);
      byOwner.set(owner, list);
      this.provesAsked.set(k, now);
    }
    if (this.provesAsked.size > 10_000) this.provesAsked.clear();
    const space = range.space;
    for (const [owner, tokens] of byOwner) h.transport.unicast(IPAM_CHANNEL, owner, encodeProve(space.cidr, tokens.map((t) => offsetToBytes(t, space.bytes))));
  }

  /** Notes when peers stop being reachable (for the heir's `reclaimAfterMs`). */
  trackReachability(now: number, reachable: readonly PeerName[]): void {
    const cur = new Set(reachable);
    for (const p of this.reachableLast) if (!cur.has(p)) this.unreachableSince.set(p, now);
    for (const p of cur) this.unreachableSince.delete(p);
    this.reachableLast = cur;
  }
}
