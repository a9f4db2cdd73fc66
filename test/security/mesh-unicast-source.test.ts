/**
 * Attack: a member forges the `src` of mesh UNICASTs and BROADCASTs. Only the first hop knows who
 * sent a message; `src` is the sender's word. Channels that need more authenticate their payload
 * end to end (pair keys: Noise IK with the claimed peer's static key). A router now drops, counted
 * as `unknownSource`, a message whose src is neither the neighbour that handed it over nor a live
 * member in its topology, or is the router itself: nobody can speak for a name the cluster does not
 * know (an IPAM `ask` in such a name gave address space away to nobody). A src naming another live
 * member is still taken on the sender's word (see the report: what each channel does with it).
 * Relayed unicasts are capped by their TTL (32, one less per hop; 0 is not forwarded).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Gossiper, PeerName } from '../../src/mesh/contracts.js';
import { generateIdentity } from '../../src/mesh/identity.js';
import { MSG_BROADCAST, MSG_GOSSIP, MSG_UNICAST, MAX_TTL, type MeshMessage } from '../../src/mesh/mesh-protocol.js';
import { dialAsMember, ownRecordGossip, settle, startVictim, type Member, type Victim } from '../mesh/mesh-harness.js';

const victims: Victim[] = [];
afterEach(async () => {
  for (const v of victims.splice(0)) await v.stop();
});

/** A channel that records what reaches its gossiper. */
class Spy implements Gossiper {
  readonly unicasts: PeerName[] = [];
  readonly broadcasts: PeerName[] = [];
  onUnicast(from: PeerName): void {
    this.unicasts.push(from);
  }
  onBroadcast(source: PeerName, data: Uint8Array): Uint8Array | undefined {
    this.broadcasts.push(source);
    return data;
  }
  gossip(): Uint8Array | undefined {
    return undefined;
  }
  onGossip(): Uint8Array | undefined {
    return undefined;
  }
}

/** The victim with a spy channel and one member whose record (and a third member's) it has merged. */
async function setUp(): Promise<{ v: Victim; m: Member; spy: Spy; third: PeerName }> {
  const v = await startVictim();
  victims.push(v);
  const spy = new Spy();
  v.mesh.newChannel('spy', spy);
  const m = await dialAsMember(v, { address: '198.18.0.2', port: 51_000 });
  await m.established;
  const third = generateIdentity('third');
  for (const id of [m.identity, third]) m.conn.send({ type: MSG_GOSSIP, channel: 'topology', data: ownRecordGossip(id) });
  await settle('the records are merged', () => v.gossip.topology.get(third.name) !== undefined && v.gossip.topology.get(m.identity.name) !== undefined);
  return { v, m, spy, third: third.name };
}

const NOBODY = 'deadbeefdeadbeef';

describe('attack: forged UNICAST/BROADCAST sources', () => {
  it.each<[string, boolean, (s: { v: Victim; m: Member; third: PeerName }) => string]>([
    ['an unknown name', false, () => NOBODY],
    ['the victim itself', false, ({ v }) => v.identity.name],
    ['the sending neighbour', true, ({ m }) => m.identity.name],
    ['another live member (taken on the sender\'s word)', true, ({ third }) => third],
  ])('a unicast and a broadcast with src = %s: delivered %s', async (_what, delivered, src) => {
    const s = await setUp();
    const name = src(s);
    const send = (msg: MeshMessage) => expect(s.m.conn.send(msg)).toBe(true);
    send({ type: MSG_UNICAST, channel: 'spy', src: name, dst: s.v.identity.name, ttl: MAX_TTL, data: Uint8Array.of(1) });
    send({ type: MSG_BROADCAST, channel: 'spy', src: name, data: Uint8Array.of(2) });
    // a marker from the neighbour itself: once it is in, everything before it was handled
    send({ type: MSG_UNICAST, channel: 'spy', src: s.m.identity.name, dst: s.v.identity.name, ttl: MAX_TTL, data: Uint8Array.of(3) });
    const markers = name === s.m.identity.name ? 2 : 1;
    await settle('the marker arrives', () => s.spy.unicasts.filter((x) => x === s.m.identity.name).length >= markers);
    expect(s.spy.unicasts).toEqual(delivered ? [name, s.m.identity.name] : [s.m.identity.name]);
    expect(s.spy.broadcasts).toEqual(name === s.v.identity.name ? [] : delivered ? [name] : []);
    expect(s.v.mesh.status().routed.unknownSource).toBe(delivered ? 0 : name === s.v.identity.name ? 1 : 2);
    expect(s.m.isClosed()).toBe(false);
  });

  it('a relayed unicast with an unknown source is not forwarded; TTL 0 is not forwarded; others are, one TTL less', async () => {
    const s = await setUp();
    const m2 = await dialAsMember(s.v, { address: '198.18.0.3', port: 51_001 }, generateIdentity('m2'));
    await m2.established;
    await settle('the victim lists m2', () => s.v.mesh.status().connections.some((c) => c.peer === m2.identity.name));
    const to = m2.identity.name;
    const from = s.m.identity.name;
    s.m.conn.send({ type: MSG_UNICAST, channel: 'spy', src: NOBODY, dst: to, ttl: 5, data: Uint8Array.of(1) });
    s.m.conn.send({ type: MSG_UNICAST, channel: 'spy', src: from, dst: to, ttl: 0, data: Uint8Array.of(2) });
    s.m.conn.send({ type: MSG_UNICAST, channel: 'spy', src: from, dst: to, ttl: 5, data: Uint8Array.of(3) });
    const spied = () => m2.messages.filter((x) => x.type === MSG_UNICAST && x.channel === 'spy');
    await settle('the good one arrives', () => spied().length >= 1);
    expect(spied().map((x) => ({ ...x, data: [...(x as { data: Uint8Array }).data] }))).toEqual([{ type: MSG_UNICAST, channel: 'spy', src: from, dst: to, ttl: 4, data: [3] }]);
    expect(s.v.mesh.status().routed).toMatchObject({ unknownSource: 1, ttlExpired: 1, unicastForwarded: 1 });
  });
});
