/**
 * One gossip channel of this peer: the glue between a `Gossiper` and the mesh's `GossipTransport`.
 *
 *   every intervalMs (jittered)   gossiper.gossip()          → every neighbour     (anti-entropy)
 *   local change (onLocalUpdate)  delta                      → every neighbour
 *   gossip from neighbour X       gossiper.onGossip(data)    → delta to every neighbour but X
 *   new neighbour Y               neighbourConnected(Y)      → full state, sent by the mesh to Y
 *
 * Coalescing: when the gossiper can merge its deltas (`mergeDeltas`, a `Topology` can), deltas
 * produced within `coalesceMs` (default 0: the same tick) leave as one message. It goes to every
 * neighbour but X when all of them were relays of gossip from X, else to every neighbour (a
 * neighbour that already has it merges nothing and stops there). Under load (a join storm, a
 * partition healing) this turns one flood per update into about one message per link per tick,
 * as weaveworks/mesh does by merging what waits behind a busy connection. Periodic full gossip
 * subsumes what is pending.
 *
 * Made by a `ChannelRegistry` (`mesh.newChannel`, or the simulations' in-memory registry), which
 * hands it what arrives (`receive*`) and asks it for full state when a connection is established
 * (`neighbourConnected`); what the gossiper sends through the registry goes out through the channel.
 * So every message in or out is counted here, on the production path as in the simulations.
 * Counters are per transport call: one fan-out to all neighbours counts as one message of its size.
 */
import type { Clock, TimerHandle } from '../core/clock.js';
import { describeError } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/logger.js';
import type { Gossiper, GossipTransport, PeerName } from './contracts.js';
import { GossipDecodeError } from './errors.js';
import type { Traffic, GossipChannelStats } from '../api/types.js';

export type { Traffic, GossipChannelStats };

/** A gossiper that announces its own changes (a `Topology` does). */
export interface LocalUpdateSource {
  onLocalUpdate(listener: (delta: Uint8Array) => void): () => void;
}

/** A gossiper that can combine deltas it produced into one (a `Topology` can). */
export interface DeltaMerger {
  mergeDeltas(deltas: readonly Uint8Array[]): Uint8Array;
}

export type ChannelGossiper = Gossiper & Partial<LocalUpdateSource> & Partial<DeltaMerger>;

export interface GossipChannelComponents {
  gossiper: ChannelGossiper;
  /** Where the channel's messages leave (the mesh's connections; an in-memory network). */
  transport: GossipTransport;
  clock: Clock;
  logger?: Logger;
  /** Uniform in [0, 1), for the jitter (injected so simulations are deterministic). */
  random?: () => number;
}

/** How a channel gossips (`mesh.newChannel(name, gossiper, options)`). */
export interface ChannelOptions {
  /** Period of full-state gossip (ms). Default 30 s. */
  intervalMs?: number;
  /** Each period is intervalMs × (1 ± jitter). Default 0.1. */
  jitter?: number;
  /** Merge deltas produced within this many ms into one send (needs `mergeDeltas`). Default 0; negative: off. */
  coalesceMs?: number;
  /**
   * The lowest negotiated mesh protocol version a neighbour must speak to be sent this channel's
   * messages (gossip, unicast hops, broadcast hops); below it they are not sent to that neighbour
   * (it would only count them as `unknownChannel`). Default: every neighbour.
   */
  minProtocol?: number;
}

export interface GossipChannelInit extends ChannelOptions {
  channel: string;
}

function traffic(): Traffic {
  return { messages: 0, bytes: 0 };
}

function count(t: Traffic, data: Uint8Array): void {
  t.messages++;
  t.bytes += data.length;
}

export class GossipChannel {
  readonly channel: string;
  private readonly gossiper: ChannelGossiper;
  private readonly transport: GossipTransport;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly random: () => number;
  private readonly intervalMs: number;
  private readonly jitter: number;
  private readonly coalesceMs: number;
  private readonly counters: GossipChannelStats;
  /** The lowest negotiated mesh protocol a neighbour must speak to be sent this channel's messages (0: any). */
  readonly minProtocol: number;
  private timer: TimerHandle | undefined = undefined;
  private pending: Uint8Array[] = [];
  /** Who all pending deltas came from (undefined: send to everyone). */
  private pendingExcept: PeerName | undefined = undefined;
  private flushTimer: TimerHandle | undefined = undefined;
  private unsubscribe: (() => void) | undefined = undefined;
  private running = false;

  constructor(components: GossipChannelComponents, init: GossipChannelInit) {
    this.gossiper = components.gossiper;
    this.transport = components.transport;
    this.clock = components.clock;
    this.log = (components.logger ?? silentLogger).child(`gossip:${init.channel}`);
    this.random = components.random ?? Math.random;
    this.channel = init.channel;
    this.intervalMs = init.intervalMs ?? 30_000;
    this.jitter = Math.min(Math.max(init.jitter ?? 0.1, 0), 1);
    this.coalesceMs = init.coalesceMs ?? 0;
    this.minProtocol = init.minProtocol ?? 0;
    this.counters = {
      channel: init.channel,
      sent: { periodic: traffic(), delta: traffic(), connect: traffic(), unicast: traffic(), broadcast: traffic() },
      received: { gossip: traffic(), unicast: traffic(), broadcast: traffic() },
      coalesced: 0,
      decodeErrors: 0,
      refused: 0,
      belowProtocol: 0,
    };
  }

  /** Starts periodic gossip and forwarding of the gossiper's local updates. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.unsubscribe = this.gossiper.onLocalUpdate?.((delta) => this.publish(delta));
    this.schedule();
  }

  /** Stops periodic gossip; pending deltas are dropped (periodic gossip elsewhere makes up for them). */
  stop(): void {
    this.running = false;
    this.timer?.cancel();
    this.timer = undefined;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.dropPending();
  }

  /** Sends full state to every neighbour now (what each period does); it subsumes pending deltas. */
  gossipNow(): void {
    const data = this.gossiper.gossip();
    if (data === undefined) return;
    this.counters.coalesced += this.pending.length;
    this.dropPending();
    count(this.counters.sent.periodic, data);
    this.transport.gossipToNeighbours(this.channel, data);
  }

  /** Sends a local change to every neighbour (called for the gossiper's `onLocalUpdate`). */
  publish(delta: Uint8Array): void {
    this.send(delta, undefined);
  }

  /**
   * Gossip the gossiper sends itself (not through `onLocalUpdate`), to every neighbour but
   * `except`: counted as a delta, sent at once.
   */
  gossipToNeighbours(data: Uint8Array, except?: PeerName): void {
    count(this.counters.sent.delta, data);
    this.transport.gossipToNeighbours(this.channel, data, except);
  }

  /** Sends pending coalesced deltas now. */
  flush(): void {
    this.flushTimer?.cancel();
    this.flushTimer = undefined;
    const pending = this.pending;
    if (pending.length === 0) return;
    const except = this.pendingExcept;
    this.pending = [];
    const data = pending.length === 1 ? pending[0]! : this.gossiper.mergeDeltas!(pending);
    this.counters.coalesced += pending.length - 1;
    count(this.counters.sent.delta, data);
    this.transport.gossipToNeighbours(this.channel, data, except);
  }

  /**
   * Gossip from neighbour `from`: merged, and what changed is relayed to every other neighbour.
   * A refused payload (a malformed one is a `GossipDecodeError`; state unchanged) is counted and
   * rethrown; the mesh logs it once per channel and peer and drops it (the connection stays).
   */
  receiveGossip(from: PeerName, data: Uint8Array, relayToSender = false): void {
    count(this.counters.received.gossip, data);
    try {
      const delta = this.gossiper.onGossip(data, from);
      if (delta !== undefined) this.send(delta, relayToSender ? undefined : from);
    } catch (err) {
      this.rejected(from, err);
      throw err;
    }
  }

  receiveUnicast(from: PeerName, data: Uint8Array): void {
    count(this.counters.received.unicast, data);
    try {
      this.gossiper.onUnicast(from, data);
    } catch (err) {
      this.rejected(from, err);
      throw err;
    }
  }

  /** A broadcast from `source`: returns what to relay down the tree (undefined: stop). */
  receiveBroadcast(source: PeerName, data: Uint8Array): Uint8Array | undefined {
    count(this.counters.received.broadcast, data);
    try {
      return this.gossiper.onBroadcast(source, data);
    } catch (err) {
      this.rejected(source, err);
      throw err;
    }
  }

  /**
   * A connection to `peer` was established: returns the full state the mesh sends to `peer` as
   * gossip on this channel right away (undefined: nothing to say). Counted as sent.
   */
  neighbourConnected(peer: PeerName): Uint8Array | undefined {
    const data = this.gossiper.gossip();
    if (data === undefined) return undefined;
    count(this.counters.sent.connect, data);
    this.log.debug('full state for new neighbour', { peer, bytes: data.length });
    return data;
  }

  /** Unicast on this channel (counted); false when the mesh has no route to `to`. */
  unicast(to: PeerName, data: Uint8Array): boolean {
    count(this.counters.sent.unicast, data);
    return this.transport.unicast(this.channel, to, data);
  }

  /** Broadcast on this channel (counted). */
  broadcast(data: Uint8Array): void {
    count(this.counters.sent.broadcast, data);
    this.transport.broadcast(this.channel, data);
  }

  /**
   * Whether a message of this channel may go to a neighbour speaking mesh protocol `protocol`;
   * when not, it is counted (`belowProtocol`) and the caller does not send it.
   */
  admits(protocol: number): boolean {
    if (protocol >= this.minProtocol) return true;
    this.counters.belowProtocol++;
    return false;
  }

  /** A copy of the counters. */
  stats(): GossipChannelStats {
    return structuredClone(this.counters);
  }

  private send(delta: Uint8Array, except: PeerName | undefined): void {
    if (this.coalesceMs < 0 || this.gossiper.mergeDeltas === undefined) {
      count(this.counters.sent.delta, delta);
      this.transport.gossipToNeighbours(this.channel, delta, except);
      return;
    }
    if (this.pending.length === 0) {
      this.pendingExcept = except;
      this.flushTimer = this.clock.setTimeout(() => {
        this.flushTimer = undefined;
        this.flush();
      }, this.coalesceMs);
    } else if (this.pendingExcept !== except) this.pendingExcept = undefined;
    this.pending.push(delta);
  }

  private dropPending(): void {
    this.flushTimer?.cancel();
    this.flushTimer = undefined;
    this.pending = [];
    this.pendingExcept = undefined;
  }

  /** Counted here, logged at debug level only: the caller (the mesh) logs a refusal once per channel and peer. */
  private rejected(from: PeerName, err: unknown): void {
    this.counters.refused++;
    if (err instanceof GossipDecodeError) {
      this.counters.decodeErrors++;
      this.log.debug('malformed gossip', { peer: from, reason: err.reason });
    } else this.log.debug('gossiper failed', { peer: from, err: describeError(err) });
  }

  private schedule(): void {
    if (!this.running) return;
    const delay = this.intervalMs * (1 - this.jitter + 2 * this.jitter * this.random());
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      try {
        this.gossipNow();
      } catch (err) {
        this.log.error('periodic gossip failed', { err: describeError(err) });
      }
      this.schedule();
    }, delay);
  }
}
