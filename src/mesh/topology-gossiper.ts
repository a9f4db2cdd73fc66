/**
 * The channel side of topology: what goes on the "topology" channel and what comes off it. The
 * records, their merge and tombstones are `Topology`'s (topology.ts); this side encodes and
 * decodes them for the channel.
 *
 *   full state (periodic, to a new neighbour)  the state's cached encoding
 *   gossip in       byte-equal to our state: nothing to do; else decoded (malformed: counted,
 *                   `GossipDecodeError`), merged by the state side, and the records it stored
 *                   go on as the delta
 *   local changes   our own changes, one delta each, to the `onLocalUpdate` listeners
 *   mergeDeltas     several deltas we produced as one: the current record of each name they carry
 *   unicast         merged like gossip; what changed goes to every neighbour (a local update)
 *   broadcast       merged like gossip; relayed unchanged down the tree
 */
import { silentLogger, type Logger } from '../core/logger.js';
import type { Gossiper, PeerName } from './contracts.js';
import { GossipDecodeError } from './errors.js';
import type { DeltaMerger, LocalUpdateSource } from './gossip-channel.js';
import {
  decodeTopologyMessage,
  encodeTopologyMessage,
  type DecodedMessage,
  type KnownRecord,
  type RecordCache,
  type TopologyLimits,
} from './topology-codec.js';
import type { TopologyState } from './topology-state.js';

export interface TopologyGossiperComponents {
  /** The records, read here only: our encoding, and held records for decoding. */
  state: TopologyState;
  /**
   * Merges a decoded message from `from` into the state (refused records counted, listeners
   * told); returns the entries it stored, the delta to pass on.
   */
  mergeMessage(msg: DecodedMessage, from: PeerName | undefined): readonly KnownRecord[];
  logger?: Logger;
  /** Shared by many topologies in one process (the simulation): see `RecordCache`. */
  recordCache?: RecordCache;
}

export interface TopologyGossiperInit {
  limits: Readonly<TopologyLimits>;
}

export class TopologyGossiper implements Gossiper, LocalUpdateSource, DeltaMerger {
  /** Received messages refused whole as malformed. */
  decodeErrors = 0;
  private readonly state: TopologyState;
  private readonly components: TopologyGossiperComponents;
  private readonly log: Logger;
  private readonly limits: Readonly<TopologyLimits>;
  private readonly localListeners = new Set<(delta: Uint8Array) => void>();
  /** Names carried by the deltas we produced, for `mergeDeltas`. */
  private readonly deltaNames = new WeakMap<Uint8Array, readonly PeerName[]>();

  constructor(components: TopologyGossiperComponents, init: TopologyGossiperInit) {
    this.components = components;
    this.state = components.state;
    this.log = components.logger ?? silentLogger;
    this.limits = init.limits;
  }

  gossip(): Uint8Array {
    return this.state.encode();
  }

  /** Gossip from neighbour `from` (named in logs). Throws `GossipDecodeError` only for a malformed message. */
  onGossip(data: Uint8Array, from?: PeerName): Uint8Array | undefined {
    if (this.state.encodes(data)) return undefined;
    let msg: DecodedMessage;
    try {
      msg = decodeTopologyMessage(data, this.limits, (n) => this.state.entry(n), this.components.recordCache);
    } catch (err) {
      if (err instanceof GossipDecodeError) this.decodeErrors++;
      throw err;
    }
    const stored = this.components.mergeMessage(msg, from);
    return stored.length > 0 ? this.encodeDelta(stored) : undefined;
  }

  /**
   * One delta for several we produced (coalesced sends): the current record of every name they
   * carry, which is at least as new as any of them.
   */
  mergeDeltas(deltas: readonly Uint8Array[]): Uint8Array {
    const names = new Set<PeerName>();
    for (const d of deltas) for (const n of this.deltaNames.get(d) ?? decodeTopologyMessage(d, this.limits).records.map((r) => r.entry.record.name)) names.add(n);
    const entries: KnownRecord[] = [];
    for (const n of names) {
      const e = this.state.entry(n);
      if (e !== undefined) entries.push(e);
    }
    return this.encodeDelta(entries);
  }

  /** Topology uses gossip only; a unicast is merged like gossip and what changed goes to every neighbour. */
  onUnicast(from: PeerName, data: Uint8Array): void {
    const delta = this.onGossip(data, from);
    if (delta !== undefined) this.emitBytes(delta);
  }

  /** A broadcast is merged like gossip and relayed unchanged down the tree. */
  onBroadcast(source: PeerName, data: Uint8Array): Uint8Array | undefined {
    this.onGossip(data, source);
    return data;
  }

  /** Our own changes (self updates, re-asserts, tombstones we write), to send to every neighbour. */
  onLocalUpdate(listener: (delta: Uint8Array) => void): () => void {
    this.localListeners.add(listener);
    return () => this.localListeners.delete(listener);
  }

  /** Our own change of these records, as one delta to the `onLocalUpdate` listeners (none: nothing encoded). */
  publish(entries: readonly KnownRecord[]): void {
    if (this.localListeners.size === 0) return;
    this.emitBytes(this.encodeDelta(entries));
  }

  private encodeDelta(entries: readonly KnownRecord[]): Uint8Array {
    const sorted = [...entries].sort((a, b) => (a.record.name < b.record.name ? -1 : 1));
    const bytes = encodeTopologyMessage(sorted.map((e) => e.bytes));
    this.deltaNames.set(
      bytes,
      sorted.map((e) => e.record.name),
    );
    return bytes;
  }

  private emitBytes(delta: Uint8Array): void {
    for (const l of this.localListeners) {
      try {
        l(delta);
      } catch (err) {
        this.log.error('topology listener failed', { err });
      }
    }
  }
}
