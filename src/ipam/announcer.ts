/**
 * What a peer says on the "ipam" channel of its own: its full state (its rings with the proofs of
 * its titles, or while it has none the waiting announcements it knows), made once and kept until
 * something changes; and its local ring changes, persisted first (group commit) and only then
 * gossiped, so that a peer that crashes never comes back owning space it already gave away.
 * Deltas go to the channel that subscribed (`onLocalUpdate`), or without one to the neighbours.
 */
import { describeError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { GossipTransport } from '../mesh/contracts.js';
import type { WaitingQuorum } from './bootstrap.js';
import type { GroupCommit } from './group-commit.js';
import type { RangeState } from './range-state.js';
import type { Ring } from './ring.js';
import { IPAM_CHANNEL } from './ring-codec.js';
import { encodeGossip } from './wire.js';

export interface AnnouncerComponents {
  transport: GossipTransport;
  log: Logger;
  /** One per configured range, in order. */
  ranges: readonly RangeState[];
  quorum: WaitingQuorum | undefined;
  commits: GroupCommit;
  /** Whether the IPAM runs (a change persisted after it stopped is not gossiped). */
  running(): boolean;
}

export class Announcer {
  private readonly transport: GossipTransport;
  private readonly log: Logger;
  private readonly ranges: readonly RangeState[];
  private readonly quorum: WaitingQuorum | undefined;
  private readonly commits: GroupCommit;
  private readonly running: () => boolean;
  private readonly listeners = new Set<(delta: Uint8Array) => void>();
  /** The full state as last made (undefined: to make again). */
  private full: Uint8Array | undefined = undefined;

  constructor(components: AnnouncerComponents) {
    this.transport = components.transport;
    this.log = components.log;
    this.ranges = components.ranges;
    this.quorum = components.quorum;
    this.commits = components.commits;
    this.running = components.running;
  }

  /** The full state (undefined: nothing to say yet). */
  fullState(): Uint8Array | undefined {
    if (this.full !== undefined) return this.full;
    const rings: Uint8Array[] = [];
    for (const r of this.ranges) {
      const bytes = r.fullState();
      if (bytes !== undefined) rings.push(bytes);
    }
    const waiting = rings.length > 0 ? [] : (this.quorum?.list() ?? []);
    if (rings.length === 0 && waiting.length === 0) return undefined;
    this.full = encodeGossip(rings, waiting);
    return this.full;
  }

  /** Whether `data` is the full state as last made (our own, sent back). */
  isFullState(data: Uint8Array): boolean {
    return this.full !== undefined && Buffer.from(data.buffer, data.byteOffset, data.byteLength).equals(this.full);
  }

  /** What the full state says changed: it is made again when next asked for. */
  stale(): void {
    this.full = undefined;
  }

  /** Persists, then gossips our own ring deltas (encoded rings); `after` runs first, once persisted. */
  commit(deltas: readonly (Ring | Uint8Array)[], after?: () => void): void {
    this.full = undefined;
    this.commits.mark();
    this.commits.flush().then(
      () => {
        if (!this.running()) return;
        after?.();
        this.emit(encodeGossip(deltas.map((d) => (d instanceof Uint8Array ? d : d.encode())), []));
      },
      (err: unknown) => this.log.error('cannot persist IPAM state; the change is not announced', { err: describeError(err) }),
    );
  }

  /** Sends gossip to the subscribed channel, or without one to the neighbours. */
  emit(data: Uint8Array): void {
    if (this.listeners.size > 0) for (const l of this.listeners) l(data);
    else this.transport.gossipToNeighbours(IPAM_CHANNEL, data);
  }

  /** Local ring changes as gossip deltas; returns the unsubscribe. */
  onLocalUpdate(listener: (delta: Uint8Array) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
