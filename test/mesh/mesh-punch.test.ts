/**
 * The mesh's side of issue 18 end to end over the harness (a real Mesh, members on socket pairs):
 * standby relays named by round trip, a neighbour's too; observations turned into candidates, the
 * NAT guess and the hint in status; a signed offer from a member punched and answered; refused
 * offers counted in status.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Overlay, PathCandidate, PeerKeys, PeerName } from '../../src/mesh/contracts.js';
import { generateIdentity, type Identity } from '../../src/mesh/identity.js';
import { MAX_TTL, MSG_GOSSIP, MSG_UNICAST } from '../../src/mesh/mesh-protocol.js';
import { ANSWER, OFFER, PUNCH_CHANNEL, decodePunch, encodePunch, type PunchMessage } from '../../src/mesh/punch.js';
import { Topology } from '../../src/mesh/topology.js';
import { FakeClock } from '../fakes/fake-clock.js';
import { dialAsMember, settle, startVictim, type Member, type Victim } from './mesh-harness.js';

class RecordingOverlay implements Overlay {
  readonly up = new Set<PeerName>();
  readonly rtt = new Map<PeerName, number>();
  readonly vias: [PeerName, PeerName | undefined][] = [];
  readonly punches: { name: PeerName; candidates: PathCandidate[] }[] = [];
  private readonly observed: ((by: PeerName, endpoint: string) => void)[] = [];
  private readonly paths: ((name: PeerName, up: boolean) => void)[] = [];
  installKeys(_k: PeerKeys): void {}
  setDirect(): void {}
  setVia(name: PeerName, via: PeerName | undefined): void {
    this.vias.push([name, via]);
  }
  removePeer(): void {}
  pathUp(name: PeerName): boolean {
    return this.up.has(name);
  }
  onPathChange(l: (name: PeerName, up: boolean) => void): void {
    this.paths.push(l);
  }
  onRekeyWanted(): void {}
  punch(name: PeerName, candidates: readonly PathCandidate[]): void {
    this.punches.push({ name, candidates: [...candidates] });
  }
  onObserved(l: (by: PeerName, endpoint: string) => void): void {
    this.observed.push(l);
  }
  rttMs(name: PeerName): number | undefined {
    return this.rtt.get(name);
  }
  observe(by: PeerName, endpoint: string): void {
    for (const l of this.observed) l(by, endpoint);
  }
  /** The last relay named for `name` (undefined: none named, or none). */
  via(name: PeerName): PeerName | undefined {
    return this.vias.filter(([n]) => n === name).at(-1)?.[1];
  }
  named(name: PeerName): number {
    return this.vias.filter(([n]) => n === name).length;
  }
}

const INCARNATIONS = new Map<string, string>();

/** `id`'s record listing established connections to `peers`. */
function recordGossip(id: Identity, peers: PeerName[]): Uint8Array {
  const incarnation = INCARNATIONS.get(id.name) ?? `${(INCARNATIONS.size + 1).toString(16).padStart(16, '0')}`;
  INCARNATIONS.set(id.name, incarnation);
  const t = new Topology({ clock: new FakeClock(), signer: id.signer }, { publicKey: id.publicKey, nickname: id.nickname, incarnation });
  t.updateSelf({ connections: [...peers].sort().map((peer) => ({ peer, established: true })) });
  return t.gossip();
}

const victims: Victim[] = [];
afterEach(async () => {
  for (const v of victims.splice(0)) await v.stop();
});

/**
 * The victim with neighbours m1 and m2 (direct paths up), and p beyond them: p's record lists m1
 * and m2, m2's lists m1 (so m2 can stand by for m1), m1's lists m2 and p.
 */
async function world(): Promise<{ v: Victim; o: RecordingOverlay; m1: Member; m2: Member; p: Identity }> {
  const o = new RecordingOverlay();
  const v = await startVictim({}, o);
  victims.push(v);
  // Names sorted so m1 < m2: the route to p goes through m1 (the smaller first hop).
  const ids = [generateIdentity('m'), generateIdentity('m')].sort((a, b) => (a.name < b.name ? -1 : 1));
  o.up.add(ids[0]!.name);
  o.up.add(ids[1]!.name);
  const m1 = await dialAsMember(v, { address: '198.18.0.2', port: 51_000 }, ids[0]);
  const m2 = await dialAsMember(v, { address: '198.18.0.3', port: 51_000 }, ids[1]);
  await Promise.all([m1.established, m2.established]);
  const p = generateIdentity('p');
  const self = v.identity.name;
  const records = [
    recordGossip(m1.identity, [self, m2.identity.name, p.name]),
    recordGossip(m2.identity, [self, m1.identity.name, p.name]),
    recordGossip(p, [m1.identity.name, m2.identity.name]),
  ];
  for (const data of records) m1.conn.send({ type: MSG_GOSSIP, channel: 'topology', data });
  await settle('the records are merged', () => v.gossip.topology.get(p.name) !== undefined && v.gossip.topology.get(m2.identity.name)?.connections.length === 3);
  // Routes are recomputed behind a timer of the victim's clock.
  await settle('p is reachable', () => {
    v.clock.advance(10);
    return v.gossip.routes.reachable().includes(p.name);
  });
  return { v, o, m1, m2, p };
}

describe('mesh: standby relays', () => {
  it('names the neighbour with the lowest round trip, switches only when another is clearly faster, and names one for a direct neighbour too', async () => {
    const { v, o, m1, m2, p } = await world();
    o.rtt.set(m1.identity.name, 20);
    o.rtt.set(m2.identity.name, 5);
    v.clock.advance(5000);
    expect(v.gossip.routes.nextHop(p.name)).toBe(m1.identity.name);
    expect(o.via(p.name)).toBe(m2.identity.name);
    // m1 is a neighbour with a direct path: m2 (which lists an established connection to m1) stands by.
    expect(o.via(m1.identity.name)).toBe(m2.identity.name);
    expect(o.via(m2.identity.name)).toBe(m1.identity.name);
    const named = o.named(p.name);
    o.rtt.set(m1.identity.name, 4.5); // faster, but not by 20%
    v.clock.advance(10_000);
    expect(o.via(p.name)).toBe(m2.identity.name);
    expect(o.named(p.name)).toBe(named); // nothing new told to the overlay
    o.rtt.set(m1.identity.name, 1);
    v.clock.advance(5000);
    expect(o.via(p.name)).toBe(m1.identity.name);
  });

  it('a neighbour without a proven path does not stand by', async () => {
    const { v, o, m1, m2, p } = await world();
    o.rtt.set(m1.identity.name, 50);
    o.rtt.set(m2.identity.name, 5);
    o.up.delete(m2.identity.name);
    v.clock.advance(5000);
    expect(o.via(p.name)).toBe(m1.identity.name);
    expect(o.via(m1.identity.name)).toBeUndefined();
  });
});

describe('mesh: endpoints and punching', () => {
  it('observations become reflexive candidates, the NAT guess and the hint in status', async () => {
    const { v, o, m1, m2 } = await world();
    o.observe(m1.identity.name, '203.0.113.9:40000');
    o.observe(m2.identity.name, '203.0.113.9:40000');
    const e = v.mesh.status().endpoints;
    expect(e.candidates).toEqual([
      { endpoint: '203.0.113.9:40000', kind: 'reflexive' },
      { endpoint: '198.18.0.1:6784', kind: 'local' },
    ]);
    expect(e.nat).toBe('mapped');
    expect(e.observed.map((x) => x.by).sort()).toEqual([m1.identity.name, m2.identity.name].sort());
    expect(e.hint).toMatch(/behind NAT \(peers see it at 203\.0\.113\.9:40000\).*--advertise 203\.0\.113\.9:40000/);
    expect(v.lines.filter((l) => l.msg === e.hint)).toHaveLength(1);
  });

  it('a member\'s signed offer is punched and answered with our candidates; a forged one is refused and counted', async () => {
    const { v, o, m1 } = await world();
    const self = v.identity.name;
    const offer: PunchMessage = {
      type: OFFER, from: m1.identity.name, to: self, incarnation: INCARNATIONS.get(m1.identity.name)!, seq: 1,
      candidates: [{ endpoint: '203.0.113.20:6784', kind: 'reflexive' }],
    };
    const send = (data: Uint8Array) => m1.conn.send({ type: MSG_UNICAST, channel: PUNCH_CHANNEL, src: m1.identity.name, dst: self, ttl: MAX_TTL, data });
    send(encodePunch(offer, m1.identity.signer));
    await settle('punched', () => o.punches.length === 1);
    expect(o.punches).toEqual([{ name: m1.identity.name, candidates: offer.candidates }]);
    const answers = () => m1.messages.filter((m) => m.type === MSG_UNICAST && m.channel === PUNCH_CHANNEL);
    await settle('answered', () => answers().length === 1);
    const answer = decodePunch((answers()[0] as { data: Uint8Array }).data) as { message: PunchMessage };
    expect(answer.message).toMatchObject({ type: ANSWER, from: self, to: m1.identity.name, candidates: [{ endpoint: '198.18.0.1:6784', kind: 'local' }] });
    // Signed by someone else in m1's name: refused on the channel and by reason.
    send(encodePunch({ ...offer, seq: 2 }, generateIdentity('mallory').signer));
    await settle('refused', () => (v.mesh.status().refused['punch.badSignature'] ?? 0) === 1);
    expect(v.mesh.status().refused.punch).toBe(1);
    expect(o.punches).toHaveLength(1);
  });
});
