/**
 * The gossip channels of one peer, by name: the one place a channel is made (`newChannel`, one per
 * name) and the transport its gossipers send through. The mesh holds one over its connections;
 * the simulations hold one per simulated peer over an in-memory network. Either way every message
 * in or out goes through its channel and is counted there (`stats`).
 *
 *   gossiper ─ registry.unicast(channel, …) ─ GossipChannel (counted) ─ link (connections, or memory)
 *   link ─ registry.get(channel).receive*(…) ─ GossipChannel (counted) ─ gossiper
 *
 * Sending on a name with no channel is a wiring mistake and throws `ChannelError`
 * (`ERR_CHANNEL_UNKNOWN`); what arrives for one is the receiver's to count (the mesh counts it as
 * refused, `unknownChannel`).
 */
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { GossipTransport, PeerName } from './contracts.js';
import { ChannelError } from './errors.js';
import { MSG_BROADCAST, MSG_GOSSIP, MSG_UNICAST, type MeshMessage } from './mesh-protocol.js';
import { GossipChannel, type ChannelGossiper, type ChannelOptions, type GossipChannelStats } from './gossip-channel.js';

export interface ChannelRegistryComponents {
  /** Where channels' messages leave, uncounted (the mesh's connections; an in-memory network). */
  link: GossipTransport;
  clock: Clock;
  logger?: Logger;
  /** Uniform in [0, 1), for the channels' jitter (injected so simulations are deterministic). */
  random?: () => number;
}

export class ChannelRegistry implements GossipTransport, Iterable<GossipChannel> {
  private readonly components: ChannelRegistryComponents;
  private readonly channels = new Map<string, GossipChannel>();

  constructor(components: ChannelRegistryComponents) {
    this.components = components;
  }

  /**
   * A new channel `name` driving `gossiper`; throws `ChannelError` (`ERR_CHANNEL_DUPLICATE`) when
   * the name is taken. The caller starts and stops it (periodic gossip).
   */
  newChannel(name: string, gossiper: ChannelGossiper, options: ChannelOptions = {}): GossipChannel {
    if (this.channels.has(name)) throw new ChannelError('ERR_CHANNEL_DUPLICATE', name);
    const { link, clock, logger, random } = this.components;
    const channel = new GossipChannel(
      { gossiper, transport: link, clock, logger, random },
      { ...options, channel: name },
    );
    this.channels.set(name, channel);
    return channel;
  }

  /** The channel named `name` (undefined: none). */
  get(name: string): GossipChannel | undefined {
    return this.channels.get(name);
  }

  /** Channels in the order they were made. */
  [Symbol.iterator](): Iterator<GossipChannel> {
    return this.channels.values();
  }

  gossipToNeighbours(channel: string, data: Uint8Array, except?: PeerName): void {
    this.require(channel).gossipToNeighbours(data, except);
  }

  unicast(channel: string, to: PeerName, data: Uint8Array): boolean {
    return this.require(channel).unicast(to, data);
  }

  broadcast(channel: string, data: Uint8Array): void {
    this.require(channel).broadcast(data);
  }

  /**
   * Whether `msg` may go to a neighbour speaking mesh protocol `protocol` (its channel's
   * `minProtocol`; counted there when not). Messages without a channel, or of a channel this
   * registry does not have (relayed unicasts), always may.
   */
  admits(msg: MeshMessage, protocol: number): boolean {
    if (msg.type !== MSG_GOSSIP && msg.type !== MSG_UNICAST && msg.type !== MSG_BROADCAST) return true;
    return this.channels.get(msg.channel)?.admits(protocol) ?? true;
  }

  /** Each channel's counters (copies), in the order they were made. */
  stats(): GossipChannelStats[] {
    return [...this.channels.values()].map((c) => c.stats());
  }

  private require(name: string): GossipChannel {
    const channel = this.channels.get(name);
    if (channel === undefined) throw new ChannelError('ERR_CHANNEL_UNKNOWN', name);
    return channel;
  }
}
