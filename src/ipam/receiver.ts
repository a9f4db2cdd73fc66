/**
 * What arrives on the "ipam" channel, for one peer's Ipam: gossip (rings and waiting
 * announcements) and unicast messages (ask, gave, none, prove). Everything is decoded and validated
 * before anything changes; a received ring is admitted record by record, custody decides, and it
 * merges (or is adopted by a peer without a ring). The Ipam owns the rings and acts on what changed
 * (`ReceiverHost`); this keeps what only receiving needs: the gossip merged recently and the ring
 * conflicts seen.
 *
 *   gossip ──▶ seen before? ──yes──▶ nothing (unless custody waits for proofs it may carry)
 *                 │no
 *                 ▼
 *   decode ──▶ rings equal to ours skipped ──▶ each other ring: admit, decide, merge ──▶ the delta
 *          ──▶ waiting announcements (no ring yet): signed ones join the quorum            to pass on
 */
import type { Logger } from '../core/logger.js';
import type { GossipTransport, PeerName } from '../mesh/contracts.js';
import { GossipDecodeError } from '../mesh/errors.js';
import type { Refusal } from './admission.js';
import type { Announcer } from './announcer.js';
import type { Asker } from './asker.js';
import type { WaitingQuorum } from './bootstrap.js';
import type { CustodyContext, Decision } from './custody.js';
import { IpamRingConflictError } from './errors.js';
import type { Guard } from './guard.js';
import { takeIn } from './intake.js';
import type { RangeState } from './range-state.js';
import { Ring, sameGenesis } from './ring.js';
import { IPAM_CHANNEL, decodeRing, withProofs, type RingParts } from './ring-codec.js';
import type { RingVerifier, RingWriter } from './ring-signing.js';
import { SeenGossip } from './seen-gossip.js';
import type { AddressSpace } from './space.js';
import type { IpamCounters } from './status.js';
import { WAITING_LABEL, decodeMessage, encodeAsk, encodeGossip, waitingBody, type WaitingPeer } from './wire.js';

export interface ReceiverHost {
  readonly self: PeerName;
  readonly clusterId: string;
  readonly ranges: readonly RangeState[];
  readonly writer: RingWriter;
  readonly verifier: RingVerifier;
  readonly quorum: WaitingQuorum | undefined;
  readonly counters: IpamCounters;
  readonly log: Logger;
  readonly transport: GossipTransport;
  /** Our full state, and how our own changes are persisted and gossiped. */
  readonly announcer: Announcer;
  readonly guard: Guard;
  readonly asker: Asker;
  running(): boolean;
  context(): CustodyContext;
  /** The state must be written: with the next write, or (`learned`) by the next tick at the latest. */
  markChanged(learned: boolean): void;
  afterChange(range: RangeState, delta?: Ring, decisions?: readonly Decision[]): void;
  /** initPeers: adopts the genesis once the quorum is met. */
  decide(): void;
  donate(from: PeerName, range: RangeState): void;
  logOnce(key: string, level: 'warn' | 'error' | 'info', msg: string, fields: Record<string, unknown>): void;
}

export class Receiver {
  private readonly host: ReceiverHost;
  /** The configured spaces, for decoding. */
  private readonly spaces: readonly AddressSpace[];
  private readonly seenGossip = new SeenGossip();
  private readonly ringConflicts = { count: 0, last: undefined as string | undefined };

  constructor(host: ReceiverHost) {
    this.host = host;
    this.spaces = host.ranges.map((r) => r.space);
  }

  /** Ring conflicts seen (status). */
  conflicts(): { count: number; last?: string } {
    return { ...this.ringConflicts };
  }

  onGossip(data: Uint8Array): Uint8Array | undefined {
    const h = this.host;
    if (!h.running()) return undefined;
    if (h.announcer.isFullState(data)) return undefined;
    const key = this.seenGossip.keyOf(data);
    const seenBefore = key === undefined ? undefined : this.seenGossip.get(key);
    if (seenBefore === false || (seenBefore === true && !h.ranges.some((r) => r.waitsForProofs()))) return undefined;
    const conflicts = this.ringConflicts.count;
    const msg = this.decode(data);
    if (msg.kind !== 'gossip') this.fail(`${msg.kind} sent as gossip`);
    // Validate everything before changing anything.
    // A ring equal to ours changes nothing; its proofs only matter while custody waits for some.
    const same = (b: Uint8Array): boolean => h.ranges.some((r) => r.isOurRing(b));
    const parts: (RingParts | undefined)[] = msg.rings.map((b, i) => (same(b) ? undefined : this.decodeRingOrFail(b, `ring ${i}`)));
    const seen = new Set<string>();
    for (const p of parts) if (p !== undefined && seen.has(p.genesis.space)) this.fail('two rings of the same space');
    else if (p !== undefined) seen.add(p.genesis.space);
    const deltas: Uint8Array[] = [];
    for (const p of parts) {
      const d = p === undefined ? undefined : this.applyRing(p).delta;
      // What we pass on carries the proofs that came with it: peers further on may miss the same links.
      if (d !== undefined) deltas.push(withProofs(d.encode(), (p!.proofs ?? []).slice(-64), d.space.bytes));
    }
    const newWaiting = h.quorum !== undefined && h.ranges.every((r) => r.ring === undefined) ? h.quorum.merge(this.signedWaiting(msg.waiting)) : [];
    if (newWaiting.length > 0) {
      h.announcer.stale();
      h.decide();
    }
    // Every ring of it is merged (none refused) and it says nothing of waiting peers: again, it is a
    // no-op, but for its proofs, which may confirm entries that arrive here later.
    if (key !== undefined && msg.waiting.length === 0 && this.ringConflicts.count === conflicts) this.seenGossip.add(key, parts.some((p) => p?.proofs !== undefined));
    if (deltas.length === 0 && newWaiting.length === 0) return undefined;
    return encodeGossip(deltas, newWaiting);
  }

  /**
   * A message addressed to us. The mesh vouches for `from` hop by hop only, so nothing here lets
   * `from` move ownership: an `ask` makes us give space to `from` (a live peer we can reach), which
   * costs only our spare space; a `gave` carries signed records that are
   * admitted and confirmed like any gossip; a `none` only moves our asking on.
   */
  onUnicast(from: PeerName, data: Uint8Array): void {
    const h = this.host;
    if (!h.running()) return;
    const msg = this.decode(data);
    if (msg.kind === 'gossip') {
      const delta = this.onGossip(data);
      if (delta !== undefined) h.announcer.emit(delta);
      return;
    }
    const range = h.ranges.find((r) => r.space.cidr === msg.space);
    if (range === undefined) {
      h.log.debug('ipam message for a range not configured here', { peer: from, range: msg.space });
      if (msg.kind === 'ask') h.transport.unicast(IPAM_CHANNEL, from, encodeAsk('none', msg.space));
      return;
    }
    if (msg.kind === 'ask') return h.donate(from, range);
    if (msg.kind === 'prove') return h.guard.prove(from, range, msg.tokens);
    if (msg.kind === 'gave') {
      const parts = this.decodeRingOrFail(msg.ring, 'gave ring');
      const { delta, decisions } = this.applyRing(parts);
      if (delta !== undefined) h.announcer.emit(encodeGossip([withProofs(delta.encode(), (parts.proofs ?? []).slice(-64), delta.space.bytes)], []));
      h.counters.donationsReceived++;
      const custody = range.custody!;
      const unusable = decisions.filter((d) => d.wins && d.entry.owner === h.self && !custody.isConfirmed(d.entry.token));
      if (unusable.length > 0) {
        h.counters.unusableGrants++;
        h.logOnce(`grant/${from}`, 'warn', 'a donation whose giver this router cannot verify owned the space is not used', { peer: from, writer: unusable[0]!.entry.writer, range: msg.space });
      }
    }
    h.asker.answered(range, from);
  }

  // ─── rings ────────────────────────────────────────────────────────────────────────────────

  /** The waiting announcements signed by the peer they name (the others refused, counted). */
  private signedWaiting(list: readonly WaitingPeer[]): WaitingPeer[] {
    const h = this.host;
    const out: WaitingPeer[] = [];
    for (const w of list) {
      if (h.quorum?.list().some((x) => x.name === w.name && x.initPeers === w.initPeers)) continue;
      if (h.verifier.check(w.key, WAITING_LABEL, waitingBody(h.clusterId, w.name, w.initPeers), w.sig)) out.push(w);
      else {
        h.counters.refusedSignature++;
        h.logOnce(`refused/waiting/${w.name}`, 'warn', 'a waiting announcement not signed by the peer it names was refused', { peer: w.name });
      }
    }
    return out;
  }

  private decode(data: Uint8Array): ReturnType<typeof decodeMessage> {
    try {
      return decodeMessage(data, (k) => this.host.verifier.nameOf(k));
    } catch (err) {
      if (err instanceof GossipDecodeError) this.host.counters.decodeErrors++;
      throw err;
    }
  }

  private decodeRingOrFail(b: Uint8Array, what: string): RingParts {
    try {
      return decodeRing(b, what, this.spaces, (k) => this.host.verifier.nameOf(k));
    } catch (err) {
      if (err instanceof GossipDecodeError) this.host.counters.decodeErrors++;
      throw err;
    }
  }

  private fail(reason: string): never {
    this.host.counters.decodeErrors++;
    throw new GossipDecodeError(IPAM_CHANNEL, reason);
  }

  /**
   * Merges (or adopts) a received ring: admits its validly signed records, decides custody, merges.
   * Returns what changed here (to pass on) and the custody decisions.
   */
  private applyRing(p: RingParts): { delta: Ring | undefined; decisions: Decision[] } {
    const h = this.host;
    const none = { delta: undefined, decisions: [] };
    const range = h.ranges.find((r) => r.space.cidr === p.genesis.space);
    let ring = range?.ring;
    if (range === undefined || p.genesis.clusterId !== h.clusterId) {
      this.conflict(new IpamRingConflictError(p.genesis.space, ring?.genesis.seeds ?? [], p.genesis.seeds, ` (cluster ${JSON.stringify(p.genesis.clusterId)}, ranges here: ${this.spaces.map((s) => s.cidr).join(', ')}, cluster here: ${JSON.stringify(h.clusterId)})`));
      return none;
    }
    const space = range.space;
    if (ring !== undefined && !sameGenesis(ring.genesis, p.genesis)) {
      this.conflict(new IpamRingConflictError(space.cidr, ring.genesis.seeds, p.genesis.seeds));
      return none;
    }
    const adopting = ring === undefined;
    if (ring === undefined) {
      ring = Ring.fromGenesis(p.genesis.clusterId, p.genesis.space, p.genesis.seeds);
      range.adopt(ring, h.self);
    }
    const t = takeIn(ring, range.custody!, p, space, h.verifier, h.context());
    const { delta, decisions, learned } = t;
    this.refused(t.refused, space.cidr);
    if (t.unconfirmed.length > 0) {
      h.counters.unconfirmed += t.unconfirmed.length;
      for (const d of t.unconfirmed) h.logOnce(`unconfirmed/${d.entry.writer}`, 'warn', 'an entry whose writer this router cannot verify owned the space: not trusted', { writer: d.entry.writer, owner: d.entry.owner, range: space.cidr, token: String(d.entry.token) });
    }
    if (adopting) {
      h.log.info('adopted the ring of the cluster', { range: ring.space.cidr, seeds: ring.genesis.seeds });
      const mine = ring.adopt(h.writer);
      h.announcer.stale();
      h.markChanged(false);
      if (mine !== undefined) h.announcer.commit([mine]);
      h.afterChange(range);
      return { delta, decisions };
    }
    if (delta === undefined && learned === 0) return { delta, decisions };
    // Learned, not decided here: written with the next local change or on the next tick.
    h.announcer.stale();
    h.markChanged(true);
    if (delta === undefined) {
      // Only custody learned (from proofs): what is passed on is the proofs, for peers that miss the same links.
      h.afterChange(range);
      return { delta: Ring.fromParts(p.genesis, [], [], [], space), decisions };
    }
    h.afterChange(range, delta, decisions);
    return { delta, decisions };
  }

  private refused(list: readonly Refusal[], range: string): void {
    const h = this.host;
    for (const r of list) {
      if (r.reason === 'signature') h.counters.refusedSignature++;
      else if (r.reason === 'version') h.counters.refusedVersion++;
      else h.counters.refusedRecord++;
      h.logOnce(`refused/${r.reason}/${r.writer ?? '-'}`, 'warn', 'a ring record was refused', { reason: r.reason, writer: r.writer, record: r.what, range });
    }
  }

  private conflict(err: IpamRingConflictError): void {
    this.ringConflicts.count++;
    if (this.ringConflicts.last !== err.message) this.host.log.error('IPAM ring conflict', { err: err.message });
    this.ringConflicts.last = err.message;
  }
}
