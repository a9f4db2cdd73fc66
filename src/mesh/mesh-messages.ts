/**
 * What the mesh does with the messages its connections carry, and how it sends its own:
 *
 *   GOSSIP from a neighbour         → its channel (merge, relay the delta)
 *   UNICAST for us                  → its channel (the pair keys' "keys" channel is one)
 *   UNICAST for another peer        → next hop (direct connection, else the route), TTL − 1; not at 0
 *   BROADCAST                       → its channel, then on down the source's tree
 *
 * Channels are the mesh's `ChannelRegistry`: each message in is counted on its channel there.
 *
 * `src` of a UNICAST or BROADCAST is the word of the neighbour that hands it over: it must be
 * that neighbour or a live member of our topology, never ourselves; anything else is dropped and
 * counted (`unknownSource`). Channels that need more (pair keys) authenticate end to end.
 *
 * A message its channel refuses (malformed, over a limit, a gossiper's error) is dropped, counted
 * on its channel and logged once per channel and neighbour; a message for a channel we do not
 * have is dropped, counted (`unknownChannel`, one counter whatever the name) and logged once per
 * neighbour. The connection stays (closing it would cut a member off on every reconnect for one
 * bad record). Nothing here throws.
 */
import { describeError } from '../core/errors.js';
import type { ChannelRegistry } from './channel-registry.js';
import type { PeerName, RouteTable } from './contracts.js';
import type { GossipChannel } from './gossip-channel.js';
import type { LogOnce } from './log-once.js';
import { MSG_BROADCAST, MSG_GOSSIP, MSG_UNICAST, MAX_TTL, type MeshMessage } from './mesh-protocol.js';
import type { RoutedCounters } from '../api/types.js';

export type { RoutedCounters };

export interface MeshMessagesComponents {
  self: PeerName;
  /** The established connection to a neighbour. */
  connection(name: PeerName): { send(msg: MeshMessage): boolean } | undefined;
  neighbours(): PeerName[];
  routes(): RouteTable | undefined;
  /** Whether `name` is a live (not tombstoned) member of our topology. */
  isLiveMember(name: PeerName): boolean;
  channels: ChannelRegistry;
  logOnce: LogOnce;
}

export class MeshMessages {
  /** Messages for a channel this peer does not have (refused; any name, one counter). */
  unknownChannel = 0;
  readonly routed: RoutedCounters = { unicastForwarded: 0, unicastNoRoute: 0, ttlExpired: 0, unknownSource: 0, broadcastsRelayed: 0 };
  private readonly components: MeshMessagesComponents;

  constructor(components: MeshMessagesComponents) {
    this.components = components;
  }

  /** Sends a unicast on `channel` (uncounted: the channel counts what it sends). */
  unicast(channel: string, to: PeerName, data: Uint8Array): boolean {
    return this.route({ type: MSG_UNICAST, channel, src: this.components.self, dst: to, ttl: MAX_TTL, data });
  }

  /** Sends a broadcast on `channel` down our own tree (uncounted, as `unicast`). */
  broadcast(channel: string, data: Uint8Array): void {
    const self = this.components.self;
    for (const next of this.components.routes()?.broadcastNext(self) ?? this.components.neighbours()) {
      this.components.connection(next)?.send({ type: MSG_BROADCAST, channel, src: self, data });
    }
  }

  /**
   * A message from neighbour `from`. `lostTieBreak`: it came on a connection to `from` that lost
   * to another one (two routers with one key, or a simultaneous dial): only its gossip counts, and
   * the delta goes to every neighbour, the one we hold under that name too.
   */
  onMessage(from: PeerName, msg: MeshMessage, lostTieBreak = false): void {
    const self = this.components.self;
    if (msg.type === MSG_GOSSIP) {
      const channel = this.channel(msg.channel, from);
      if (channel !== undefined) this.deliver(channel, from, () => channel.receiveGossip(from, msg.data, lostTieBreak));
    } else if (lostTieBreak) {
      return;
    } else if (msg.type === MSG_UNICAST) {
      if (!this.plausibleSource(msg.src, from)) return;
      if (msg.dst === self) {
        const channel = this.channel(msg.channel, from);
        if (channel !== undefined) this.deliver(channel, from, () => channel.receiveUnicast(msg.src, msg.data));
      } else if (msg.ttl > 0) {
        this.routed.unicastForwarded++;
        this.route({ ...msg, ttl: msg.ttl - 1 });
      } else {
        this.routed.ttlExpired++;
      }
    } else if (msg.type === MSG_BROADCAST) {
      if (msg.src === self) return; // ours, back again (trees can differ while routes settle)
      if (!this.plausibleSource(msg.src, from)) return;
      const channel = this.channel(msg.channel, from);
      if (channel === undefined) return;
      let relay: Uint8Array | undefined;
      this.deliver(channel, from, () => {
        relay = channel.receiveBroadcast(msg.src, msg.data);
      });
      if (relay === undefined) return;
      for (const next of this.components.routes()?.broadcastNext(msg.src) ?? []) {
        if (next === from) continue;
        this.routed.broadcastsRelayed++;
        this.components.connection(next)?.send({ type: MSG_BROADCAST, channel: msg.channel, src: msg.src, data: relay });
      }
    }
  }

  private route(m: MeshMessage & { type: typeof MSG_UNICAST }): boolean {
    const direct = this.components.connection(m.dst);
    if (direct !== undefined) return direct.send(m);
    const hop = this.components.routes()?.nextHop(m.dst);
    const conn = hop === undefined ? undefined : this.components.connection(hop);
    if (conn === undefined) {
      this.routed.unicastNoRoute++;
      return false;
    }
    return conn.send(m);
  }

  /** See the header: `src` must be the neighbour or a live member, never ourselves. */
  private plausibleSource(src: PeerName, from: PeerName): boolean {
    if (src === from || (src !== this.components.self && this.components.isLiveMember(src))) return true;
    this.routed.unknownSource++;
    this.components.logOnce.warn(`source ${from}`, 'a neighbour relayed mesh messages from a source that is not a live member; dropped (further ones are only counted)', { peer: from, src });
    return false;
  }

  /** The channel a message from `from` names; undefined (counted, logged once per neighbour) when we have none. */
  private channel(name: string, from: PeerName): GossipChannel | undefined {
    const channel = this.components.channels.get(name);
    if (channel !== undefined) return channel;
    this.unknownChannel++;
    this.components.logOnce.warn(`unknown channel ${from}`, 'a mesh message for a channel this router does not have was dropped; the connection stays (further ones are only counted)', {
      channel: name, peer: from,
    });
    return undefined;
  }

  /** Runs a channel's receive; a refusal (counted by the channel) is logged once per channel and neighbour. */
  private deliver(channel: GossipChannel, from: PeerName, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.components.logOnce.warn(`refused ${channel.channel} ${from}`, 'a mesh message was refused by its channel and dropped; the connection stays (further ones are only counted)', {
        channel: channel.channel, peer: from, err: describeError(err),
      });
    }
  }
}
