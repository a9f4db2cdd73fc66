/**
 * ChannelOptions.minProtocol on the mesh (the production path): a channel's gossip, unicast and
 * broadcast go only to neighbours whose negotiated protocol is at least its minProtocol; the rest
 * are counted (`belowProtocol`) and not sent. Status shows each connection's protocol and release.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ChannelRegistry } from '../../src/mesh/channel-registry.js';
import type { Gossiper, GossipTransport } from '../../src/mesh/contracts.js';
import { MSG_BROADCAST, MSG_GOSSIP, MSG_PING, MSG_UNICAST, type MeshMessage } from '../../src/mesh/mesh-protocol.js';
import { FakeClock } from '../fakes/fake-clock.js';
import { dialAsMember, settle, startVictim, type Member, type Victim } from './mesh-harness.js';

const quiet: Gossiper = {
  onUnicast: () => undefined,
  onBroadcast: () => undefined,
  gossip: () => undefined,
  onGossip: () => undefined,
};

const nowhere: GossipTransport = { gossipToNeighbours: () => undefined, unicast: () => true, broadcast: () => undefined };

describe('ChannelRegistry.admits', () => {
  const X = 'aaaaaaaaaaaaaaaa';
  const Y = 'bbbbbbbbbbbbbbbb';
  const messages: [string, MeshMessage][] = [
    ['gossip', { type: MSG_GOSSIP, channel: 'reports', data: Uint8Array.of(1) }],
    ['unicast', { type: MSG_UNICAST, channel: 'reports', src: X, dst: Y, ttl: 3, data: Uint8Array.of(1) }],
    ['broadcast', { type: MSG_BROADCAST, channel: 'reports', src: X, data: Uint8Array.of(1) }],
  ];

  it.each(messages)('a %s of a channel with minProtocol 3: refused (counted) at 2, admitted at 3 and 4', (_kind, msg) => {
    const channels = new ChannelRegistry({ link: nowhere, clock: new FakeClock() });
    channels.newChannel('reports', quiet, { minProtocol: 3 });
    expect(channels.admits(msg, 2)).toBe(false);
    expect(channels.admits(msg, 3)).toBe(true);
    expect(channels.admits(msg, 4)).toBe(true);
    expect(channels.get('reports')!.stats().belowProtocol).toBe(1);
  });

  it('a channel without minProtocol, a channel this router does not have (relayed) and PING: always admitted', () => {
    const channels = new ChannelRegistry({ link: nowhere, clock: new FakeClock() });
    channels.newChannel('plain', quiet);
    expect(channels.admits({ type: MSG_GOSSIP, channel: 'plain', data: Uint8Array.of(1) }, 2)).toBe(true);
    expect(channels.admits({ type: MSG_GOSSIP, channel: 'elsewhere', data: Uint8Array.of(1) }, 2)).toBe(true);
    expect(channels.admits({ type: MSG_PING }, 2)).toBe(true);
    expect(channels.get('plain')!.stats().belowProtocol).toBe(0);
  });
});

describe('minProtocol on the mesh', () => {
  const victims: Victim[] = [];
  afterEach(async () => {
    for (const v of victims.splice(0)) await v.stop();
  });

  async function join(v: Victim, port: number, protocols: { min: number; max: number }): Promise<Member> {
    const m = await dialAsMember(v, { address: '198.18.0.2', port }, undefined, undefined, { protocols, release: `r${protocols.max}` });
    await m.established;
    await settle('the victim lists the member', () => v.mesh.status().connections.some((c) => c.peer === m.identity.name));
    return m;
  }

  const got = (m: Member, channel: string): number => m.messages.filter((x) => 'channel' in x && x.channel === channel).length;

  it('sends a minProtocol-3 channel only to the neighbour speaking 3, counts the other; plain channels go to both', async () => {
    const v = await startVictim({ release: '9.9.9' });
    victims.push(v);
    const reports = v.mesh.newChannel('reports', quiet, { minProtocol: 3 });
    const plain = v.mesh.newChannel('plain', quiet);
    const old = await join(v, 51_001, { min: 2, max: 2 });
    const cur = await join(v, 51_002, { min: 2, max: 3 });
    const byPeer = new Map(v.mesh.status().connections.map((c) => [c.peer, c]));
    expect(byPeer.get(old.identity.name)).toMatchObject({ protocol: 2, release: null });
    expect(byPeer.get(cur.identity.name)).toMatchObject({ protocol: 3, release: 'r3' });
    expect([old.conn.protocol, cur.conn.protocol]).toEqual([2, 3]);
    expect(cur.conn.remoteRelease).toBe('9.9.9');
    expect(old.conn.remoteRelease).toBeUndefined();

    reports.gossipToNeighbours(Uint8Array.of(1, 2));
    plain.gossipToNeighbours(Uint8Array.of(3));
    expect(reports.unicast(old.identity.name, Uint8Array.of(4))).toBe(false);
    expect(reports.unicast(cur.identity.name, Uint8Array.of(5))).toBe(true);
    await settle('the plain gossip reaches both', () => got(old, 'plain') === 1 && got(cur, 'plain') === 1);
    await settle('reports reach the protocol-3 neighbour', () => got(cur, 'reports') === 2);
    expect(got(old, 'reports')).toBe(0);
    const stats = v.mesh.status().channels;
    expect(stats.find((c) => c.channel === 'reports')!.belowProtocol).toBe(2);
    expect(stats.find((c) => c.channel === 'plain')!.belowProtocol).toBe(0);
  });
});
