/**
 * What the mesh does with the messages its connections carry, and how it sends its own:
 *
 *   GOSSIP from a neighbour         → its channel's driver (merge, relay the delta)
 *   UNICAST for us                  → the "keys" channel or the channel's gossiper
 *   UNICAST for another peer        → next hop (direct connection, else the route), TTL − 1; not at 0
 *   BROADCAST                       → the channel's gossiper, then on down the source's tree
 *
 * `src` of a UNICAST or BROADCAST is the word of the neighbour that hands it over: it must be
 * that neighbour or a live member of our topology, never ourselves; anything else is dropped and
 * counted (`unknownSource`). Channels that need more (pair keys) authenticate end to end.
 *
 * A message its channel refuses (malformed, over a limit, a gossiper's error) is dropped, counted
 * per channel and logged once per channel and neighbour; the connection stays (closing it would
 * cut a member off on every reconnect for one bad record). Nothing here throws.
 */
import { describeError } from '../core/errors.js';
import type { Gossiper, PeerName, RouteTable } from './contracts.js';
import type { LogOnce } from './log-once.js';
import { MSG_BROADCAST, MSG_GOSSIP, MSG_UNICAST, MAX_TTL, type MeshMessage } from './mesh-protocol.js';
import { KEYS_CHANNEL } from './pair-keys.js';

/** What the mesh needs from a gossip channel driver (gossip/gossip-channel.ts). */
export interface MeshChannel {
  /** Merges gossip from a neighbour and relays the delta; throws on malformed data. */
  /**
   * Merges gossip from a neighbour and relays the delta (not back to `from`, unless
   * `relayToSender`: the gossip came on a connection that is not the one we hold to `from`).
   */
  receiveGossip(from: PeerName, data: Uint8Array, relayToSender?: boolean): void;
  /** Full state for a new neighbour (undefined: nothing to say). */
  neighbourConnected(name: PeerName): Uint8Array | undefined;
}

export interface MeshMessagesComponents {
  self: PeerName;
  /** The established connection to a neighbour. */
  connection(name: PeerName): { send(msg: MeshMessage): boolean } | undefined;
  neighbours(): PeerName[];
  routes(): RouteTable | undefined;
  /** Whether `name` is a live (not tombstoned) member of our topology. */
  isLiveMember(name: PeerName): boolean;
  /** A unicast for us on the "keys" channel (pair keys; never throws). */
  keys(src: PeerName, data: Uint8Array): void;
  logOnce: LogOnce;
}

export interface RoutedCounters {
  unicastForwarded: number;
  unicastNoRoute: number;
  /** A unicast for another peer arriving with TTL 0. */
  ttlExpired: number;
  /** src neither the neighbour nor a live member, or ourselves. */
  unknownSource: number;
  broadcastsRelayed: number;
}

export class MeshMessages {
  /** Messages refused by their channel, per channel. */
  readonly refused: Record<string, number> = {};
  readonly routed: RoutedCounters = { unicastForwarded: 0, unicastNoRoute: 0, ttlExpired: 0, unknownSource: 0, broadcastsRelayed: 0 };
  private readonly c: MeshMessagesComponents;
  private readonly channels = new Map<string, MeshChannel>();
  private readonly gossipers = new Map<string, Gossiper>();

  constructor(components: MeshMessagesComponents) {
    this.c = components;
  }

  addChannel(name: string, gossiper: Gossiper, channel: MeshChannel): void {
    this.gossipers.set(name, gossiper);
    this.channels.set(name, channel);
  }

  channel(name: string): MeshChannel | undefined {
    return this.channels.get(name);
  }

  /** Channels, for full state to a new neighbour. */
  allChannels(): IterableIterator<[string, MeshChannel]> {
    return this.channels.entries();
  }

  unicast(channel: string, to: PeerName, data: Uint8Array): boolean {
    return this.route({ type: MSG_UNICAST, channel, src: this.c.self, dst: to, ttl: MAX_TTL, data });
  }

  broadcast(channel: string, data: Uint8Array): void {
    const self = this.c.self;
    for (const next of this.c.routes()?.broadcastNext(self) ?? this.c.neighbours()) {
      this.c.connection(next)?.send({ type: MSG_BROADCAST, channel, src: self, data });
    }
  }

  /** A message from neighbour `from` (established connection). */
  /**
   * A message from neighbour `from`. `lostTieBreak`: it came on a connection to `from` that lost
   * to another one (two routers with one key, or a simultaneous dial): only its gossip counts, and
   * the delta goes to every neighbour, the one we hold under that name too.
   */
  onMessage(from: PeerName, msg: MeshMessage, lostTieBreak = false): void {
    if (lostTieBreak) {
      if (msg.type === MSG_GOSSIP) this.deliver(msg.channel, from, () => this.channels.get(msg.channel)?.receiveGossip(from, msg.data, true));
      return;
    }
    if (msg.type === MSG_GOSSIP) {
      this.deliver(msg.channel, from, () => this.channels.get(msg.channel)?.receiveGossip(from, msg.data));
    } else if (msg.type === MSG_UNICAST) {
      if (!this.plausibleSource(msg.src, from)) return;
      if (msg.dst === this.c.self) {
        if (msg.channel === KEYS_CHANNEL) this.c.keys(msg.src, msg.data);
        else this.deliver(msg.channel, from, () => this.gossipers.get(msg.channel)?.onUnicast(msg.src, msg.data));
      } else if (msg.ttl > 0) {
        this.routed.unicastForwarded++;
        this.route({ ...msg, ttl: msg.ttl - 1 });
      } else {
        this.routed.ttlExpired++;
      }
    } else if (msg.type === MSG_BROADCAST) {
      if (msg.src === this.c.self) return; // ours, back again (trees can differ while routes settle)
      if (!this.plausibleSource(msg.src, from)) return;
      let relay: Uint8Array | undefined;
      this.deliver(msg.channel, from, () => {
        relay = this.gossipers.get(msg.channel)?.onBroadcast(msg.src, msg.data);
      });
      if (relay === undefined) return;
      for (const next of this.c.routes()?.broadcastNext(msg.src) ?? []) {
        if (next === from) continue;
        this.routed.broadcastsRelayed++;
        this.c.connection(next)?.send({ type: MSG_BROADCAST, channel: msg.channel, src: msg.src, data: relay });
      }
    }
  }

  private route(m: MeshMessage & { type: typeof MSG_UNICAST }): boolean {
    const direct = this.c.connection(m.dst);
    if (direct !== undefined) return direct.send(m);
    const hop = this.c.routes()?.nextHop(m.dst);
    const conn = hop === undefined ? undefined : this.c.connection(hop);
    if (conn === undefined) {
      this.routed.unicastNoRoute++;
      return false;
    }
    return conn.send(m);
  }

  /** See the header: `src` must be the neighbour or a live member, never ourselves. */
  private plausibleSource(src: PeerName, from: PeerName): boolean {
    if (src === from || (src !== this.c.self && this.c.isLiveMember(src))) return true;
    this.routed.unknownSource++;
    this.c.logOnce.warn(`source ${from}`, 'a neighbour relayed mesh messages from a source that is not a live member; dropped (further ones are only counted)', { peer: from, src });
    return false;
  }

  private deliver(channel: string, from: PeerName, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.refused[channel] = (this.refused[channel] ?? 0) + 1;
      this.c.logOnce.warn(`refused ${channel} ${from}`, 'a mesh message was refused by its channel and dropped; the connection stays (further ones are only counted)', {
        channel, peer: from, err: describeError(err),
      });
    }
  }
}
