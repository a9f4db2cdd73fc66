/**
 * Attack: one bad channel message from a member cuts the member off. The mesh closed the connection
 * on any refused gossip ("garbledGossip"), so one pod that made its router claim more than 4,096
 * MACs got that router's MAC gossip refused by every peer, and its connections closed, on every
 * reconnect. Now a refused message is counted per channel, logged once per channel and peer, and
 * dropped; the connection stays and carries the member's other messages.
 */
import { Packr } from 'msgpackr';
import { afterEach, describe, expect, it } from 'vitest';
import { MSG_BROADCAST, MSG_GOSSIP, MSG_UNICAST, MAX_TTL, type MeshMessage } from '../../src/mesh/mesh-protocol.js';
import { dialAsMember, ownRecordGossip, settle, startVictim, type Member, type Victim } from '../mesh/mesh-harness.js';

const victims: Victim[] = [];
afterEach(async () => {
  for (const v of victims.splice(0)) await v.stop();
});

const packr = new Packr({ useRecords: false });

/** A "macs" gossip message claiming 4,097 MACs for `owner`: one over what every peer accepts. */
function tooManyMacs(owner: string): Uint8Array {
  const macs = Array.from({ length: 4097 }, (_, i) => `02:42:00:00:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`);
  return packr.pack([1, [[owner, 1, macs]]]);
}

const GARBAGE = Uint8Array.from([0xc1, 0xc1, 0xc1]); // never valid msgpack

async function joined(): Promise<{ v: Victim; m: Member }> {
  const v = await startVictim();
  victims.push(v);
  const m = await dialAsMember(v, { address: '198.18.0.2', port: 51_000 });
  await m.established;
  await settle('the victim lists the member', () => v.mesh.status().connections.some((c) => c.peer === m.identity.name));
  return { v, m };
}

/** The member's own topology record, sent as gossip: proof that the connection still carries messages. */
async function provesConnectionWorks(v: Victim, m: Member): Promise<void> {
  expect(m.conn.send({ type: MSG_GOSSIP, channel: 'topology', data: ownRecordGossip(m.identity, ['198.18.0.2:6784']) })).toBe(true);
  await settle('the member\'s record is merged after the refused messages', () => v.gossip.topology.get(m.identity.name) !== undefined);
  expect(m.isClosed()).toBe(false);
  expect(v.mesh.status().connections.find((c) => c.peer === m.identity.name)?.state).toBe('established');
}

describe('attack: a refused channel message closes the member\'s connection', () => {
  it('MAC gossip over the 4,096 limit, three times: refused and counted, logged once, the connection stays', async () => {
    const { v, m } = await joined();
    for (let i = 0; i < 3; i++) m.conn.send({ type: MSG_GOSSIP, channel: 'macs', data: tooManyMacs(m.identity.name) });
    await provesConnectionWorks(v, m);
    const st = v.mesh.status();
    expect(st.refused.macs).toBe(3);
    expect(st.closes.garbledGossip).toBeUndefined();
    expect(v.gossip.macs.macsOf(m.identity.name)).toEqual([]);
    const logged = v.lines.filter((l) => l.level === 'warn' && l.channel === 'macs' && l.peer === m.identity.name);
    expect(logged.length).toBe(1);
  });

  it.each<[string, (self: string, victim: string) => MeshMessage, string]>([
    ['garbage topology gossip', () => ({ type: MSG_GOSSIP, channel: 'topology', data: GARBAGE }), 'topology'],
    ['a garbage topology unicast', (self, victim) => ({ type: MSG_UNICAST, channel: 'topology', src: self, dst: victim, ttl: MAX_TTL, data: GARBAGE }), 'topology'],
    ['a garbage MAC broadcast', (self) => ({ type: MSG_BROADCAST, channel: 'macs', src: self, data: GARBAGE }), 'macs'],
  ])('%s, twice: refused, counted per channel, logged once; the connection stays', async (_what, make, channel) => {
    const { v, m } = await joined();
    const msg = make(m.identity.name, v.identity.name);
    m.conn.send(msg);
    m.conn.send(msg);
    await provesConnectionWorks(v, m);
    expect(v.mesh.status().refused[channel]).toBe(2);
    expect(v.lines.filter((l) => l.level === 'warn' && l.channel === channel && l.peer === m.identity.name).length).toBe(1);
  });

  it('gossip, a unicast and a broadcast for a channel the router does not have: counted as refused (one counter), logged once; the connection stays', async () => {
    const { v, m } = await joined();
    const self = m.identity.name;
    m.conn.send({ type: MSG_GOSSIP, channel: 'nonesuch', data: Uint8Array.of(1) });
    m.conn.send({ type: MSG_UNICAST, channel: 'other-nonesuch', src: self, dst: v.identity.name, ttl: MAX_TTL, data: Uint8Array.of(2) });
    m.conn.send({ type: MSG_BROADCAST, channel: 'nonesuch', src: self, data: Uint8Array.of(3) });
    await provesConnectionWorks(v, m);
    const st = v.mesh.status();
    expect(st.refused).toEqual({ unknownChannel: 3 });
    expect(st.channels.map((c) => c.channel)).not.toContain('nonesuch');
    expect(v.lines.filter((l) => l.level === 'warn' && l.peer === m.identity.name && /channel this router does not have/.test(String(l.msg))).length).toBe(1);
  });

  it('a refusal is counted on the channel that refused it, in status', async () => {
    const { v, m } = await joined();
    m.conn.send({ type: MSG_GOSSIP, channel: 'topology', data: GARBAGE });
    await provesConnectionWorks(v, m);
    const topology = v.mesh.status().channels.find((c) => c.channel === 'topology')!;
    expect(topology).toMatchObject({ refused: 1, decodeErrors: 1 });
    expect(topology.received.gossip.messages).toBe(2); // the garbage, then the record that proves the connection works
  });
});
