/**
 * The channel registry: one channel per name, and every message a gossiper sends or receives goes
 * through its channel and is counted there, on an in-memory link (as the simulations do) and on
 * the mesh (as the daemon does).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ChannelRegistry } from '../../src/mesh/channel-registry.js';
import type { Gossiper, GossipTransport, PeerName } from '../../src/mesh/contracts.js';
import { ChannelError } from '../../src/mesh/errors.js';
import { MSG_BROADCAST, MSG_UNICAST, MAX_TTL } from '../../src/mesh/mesh-protocol.js';
import { FakeClock } from '../fakes/fake-clock.js';
import { dialAsMember, settle, startVictim, type Victim } from './mesh-harness.js';

/** What a gossiper on a channel received. */
class Spy implements Gossiper {
  readonly unicasts: [PeerName, number[]][] = [];
  readonly broadcasts: [PeerName, number[]][] = [];
  onUnicast(from: PeerName, data: Uint8Array): void {
    this.unicasts.push([from, [...data]]);
  }
  onBroadcast(source: PeerName, data: Uint8Array): Uint8Array | undefined {
    this.broadcasts.push([source, [...data]]);
    return undefined;
  }
  gossip(): Uint8Array | undefined {
    return undefined;
  }
  onGossip(): Uint8Array | undefined {
    return undefined;
  }
}

/** The link's view: what left, on which channel. */
class RecordingLink implements GossipTransport {
  readonly sent: string[] = [];
  gossipToNeighbours(channel: string, data: Uint8Array, except?: PeerName): void {
    this.sent.push(`gossip ${channel} ${data.length} except ${except ?? '-'}`);
  }
  unicast(channel: string, to: PeerName, data: Uint8Array): boolean {
    this.sent.push(`unicast ${channel} ${to} ${data.length}`);
    return true;
  }
  broadcast(channel: string, data: Uint8Array): void {
    this.sent.push(`broadcast ${channel} ${data.length}`);
  }
}

const X = 'aaaaaaaaaaaaaaaa';

function registry(): { channels: ChannelRegistry; link: RecordingLink } {
  const link = new RecordingLink();
  return { channels: new ChannelRegistry({ link, clock: new FakeClock() }), link };
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

describe('ChannelRegistry', () => {
  it('refuses a second channel under a name it has, naming it; other names are fine', () => {
    const { channels } = registry();
    const first = channels.newChannel('spy', new Spy());
    const err = thrown(() => channels.newChannel('spy', new Spy()));
    expect(err).toBeInstanceOf(ChannelError);
    expect(err).toMatchObject({ code: 'ERR_CHANNEL_DUPLICATE', channel: 'spy' });
    expect((err as Error).message).toContain('"spy"');
    expect(channels.get('spy')).toBe(first);
    expect(channels.newChannel('other', new Spy()).channel).toBe('other');
    expect([...channels].map((c) => c.channel)).toEqual(['spy', 'other']);
  });

  it.each<[string, (t: GossipTransport) => unknown, string, 'unicast' | 'broadcast' | 'delta']>([
    ['a unicast', (t) => t.unicast('spy', X, Uint8Array.of(1, 2)), `unicast spy ${X} 2`, 'unicast'],
    ['a broadcast', (t) => t.broadcast('spy', Uint8Array.of(1, 2)), 'broadcast spy 2', 'broadcast'],
    ['gossip the gossiper sends itself', (t) => t.gossipToNeighbours('spy', Uint8Array.of(1, 2), X), `gossip spy 2 except ${X}`, 'delta'],
  ])('%s sent through the registry leaves through its channel, counted there', (_what, send, wire, kind) => {
    const { channels, link } = registry();
    channels.newChannel('spy', new Spy());
    channels.newChannel('other', new Spy());
    send(channels);
    expect(link.sent).toEqual([wire]);
    const [spy, other] = channels.stats();
    expect(spy!.sent[kind]).toEqual({ messages: 1, bytes: 2 });
    expect(other!.sent[kind]).toEqual({ messages: 0, bytes: 0 });
  });

  it('refuses to send on a name it has no channel for, and sends nothing', () => {
    const { channels, link } = registry();
    channels.newChannel('spy', new Spy());
    for (const send of [() => channels.unicast('nonesuch', X, Uint8Array.of(1)), () => channels.broadcast('nonesuch', Uint8Array.of(1))]) {
      expect(thrown(send)).toMatchObject({ code: 'ERR_CHANNEL_UNKNOWN', channel: 'nonesuch' });
    }
    expect(link.sent).toEqual([]);
  });
});

describe('the mesh\'s channels (the production path)', () => {
  const victims: Victim[] = [];
  afterEach(async () => {
    for (const v of victims.splice(0)) await v.stop();
  });

  async function joined(): Promise<{ v: Victim; m: Awaited<ReturnType<typeof dialAsMember>>; spy: Spy }> {
    const v = await startVictim();
    victims.push(v);
    const spy = new Spy();
    v.mesh.newChannel('spy', spy);
    const m = await dialAsMember(v, { address: '198.18.0.2', port: 51_000 });
    await m.established;
    await settle('the victim lists the member', () => v.mesh.status().connections.some((c) => c.peer === m.identity.name));
    return { v, m, spy };
  }

  const spyStats = (v: Victim) => v.mesh.status().channels.find((c) => c.channel === 'spy')!;

  it('refuses a channel name the daemon\'s channels already use', async () => {
    const v = await startVictim();
    victims.push(v);
    for (const name of ['topology', 'macs', 'keys', 'punch']) {
      expect(thrown(() => v.mesh.newChannel(name, new Spy()))).toMatchObject({ code: 'ERR_CHANNEL_DUPLICATE', channel: name });
    }
    expect(v.mesh.status().channels.map((c) => c.channel)).toEqual(['keys', 'punch', 'topology', 'macs']);
  });

  it('counts a unicast and a broadcast received on a channel, and hands them to its gossiper', async () => {
    const { v, m, spy } = await joined();
    const src = m.identity.name;
    m.conn.send({ type: MSG_UNICAST, channel: 'spy', src, dst: v.identity.name, ttl: MAX_TTL, data: Uint8Array.of(1, 2, 3) });
    m.conn.send({ type: MSG_BROADCAST, channel: 'spy', src, data: Uint8Array.of(4, 5) });
    await settle('both arrive', () => spy.broadcasts.length === 1);
    expect(spy.unicasts).toEqual([[src, [1, 2, 3]]]);
    expect(spy.broadcasts).toEqual([[src, [4, 5]]]);
    const s = spyStats(v);
    expect(s.received.unicast).toEqual({ messages: 1, bytes: 3 });
    expect(s.received.broadcast).toEqual({ messages: 1, bytes: 2 });
    expect(s.refused).toBe(0);
  });

  it('counts a unicast and a broadcast a gossiper sends through the mesh; the unicast reaches the neighbour', async () => {
    const { v, m } = await joined();
    expect(v.mesh.unicast('spy', m.identity.name, Uint8Array.of(7, 7))).toBe(true);
    // (the broadcast goes down our tree, empty here: the member's record lists no connections)
    v.mesh.broadcast('spy', Uint8Array.of(8));
    const onSpy = () => m.messages.filter((x) => x.type === MSG_UNICAST && x.channel === 'spy');
    await settle('the unicast reaches the member', () => onSpy().length === 1);
    const got = onSpy()[0] as { src: string; dst: string; data: Uint8Array };
    expect([got.src, got.dst, [...got.data]]).toEqual([v.identity.name, m.identity.name, [7, 7]]);
    const s = spyStats(v);
    expect(s.sent.unicast).toEqual({ messages: 1, bytes: 2 });
    expect(s.sent.broadcast).toEqual({ messages: 1, bytes: 1 });
    expect(() => v.mesh.unicast('nonesuch', m.identity.name, Uint8Array.of(1))).toThrow(ChannelError);
  });

  it('counts the pair keys\' handshake on the "keys" channel', async () => {
    const { v } = await joined();
    const keys = () => v.mesh.status().channels.find((c) => c.channel === 'keys')!;
    await settle('the victim starts a pair-key handshake with the member', () => keys().sent.unicast.messages >= 1);
    expect(keys().sent.unicast.bytes).toBeGreaterThan(0);
  });
});
