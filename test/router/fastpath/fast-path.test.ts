/**
 * FastPath's kernel programming, with two routers' FastPaths joined by an in-memory probe wire
 * and fake netlink state (the real kernel is covered by test/integration/fastpath*.test.ts).
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { FLOOD_MAC } from '../../../src/platform/netlink.js';
import { TAP, VXLAN, settle, twoRouters } from './two-routers.js';

describe('FastPath kernel programming', () => {
  it('a peer whose path passes probes but is not up yet gets the MACs it acquires in that time', async () => {
    const { a, wire, advance, stateOf } = await twoRouters();
    await advance(1500);
    expect(stateOf(a)).toBe('up');
    wire.cut = true;
    await advance(1500);
    expect(stateOf(a)).toBe('down');
    wire.cut = false;
    await advance(1500);
    expect(stateOf(a)).toBe('down'); // healthy again, 5 s of it before up
    // b owned nothing when the path turned healthy; now it starts a pod
    a.macs.set('b', ['02:00:00:00:0b:01']);
    await settle();
    expect(a.kernel.towards('198.18.0.2')).toContain('02:00:00:00:0b:01');
    // not up: no flood entry, and the bridge is left to learn
    expect(a.kernel.towards('198.18.0.2')).not.toContain(FLOOD_MAC);
    expect(a.kernel.bridge.get('02:00:00:00:0b:01')).toBeUndefined();
  });

  it('up pins the peer MACs to the VXLAN port (sticky), whatever the TAP taught the bridge; down unpins them', async () => {
    const { a, wire, advance, stateOf } = await twoRouters();
    a.macs.set('b', ['02:00:00:00:0b:01', '02:00:00:00:0b:02']);
    // learned on the TAP while the peer was on the sleeve
    a.kernel.bridge.set('02:00:00:00:0b:01', { mac: '02:00:00:00:0b:01', port: TAP, kind: 'learned' });
    await advance(1500);
    expect(stateOf(a)).toBe('up');
    expect(a.fast.get(2)).toBe(true);
    expect(a.kernel.towards('198.18.0.2')).toEqual(expect.arrayContaining([FLOOD_MAC, '02:00:00:00:0b:01', '02:00:00:00:0b:02']));
    for (const mac of ['02:00:00:00:0b:01', '02:00:00:00:0b:02']) expect(a.kernel.bridge.get(mac)).toEqual({ mac, port: VXLAN, kind: 'static' });

    // a MAC that appears while up is pinned too; one that goes is unpinned and unprogrammed
    a.macs.set('b', ['02:00:00:00:0b:02', '02:00:00:00:0b:03']);
    await settle();
    expect(a.kernel.bridge.get('02:00:00:00:0b:03')).toEqual({ mac: '02:00:00:00:0b:03', port: VXLAN, kind: 'static' });
    expect(a.kernel.bridge.get('02:00:00:00:0b:01')).toBeUndefined();
    expect(a.kernel.towards('198.18.0.2')).not.toContain('02:00:00:00:0b:01');

    wire.cut = true;
    await advance(1500);
    expect(stateOf(a)).toBe('down');
    expect(a.fast.get(2)).toBe(false);
    expect(a.kernel.towards('198.18.0.2')).toEqual([expect.stringMatching(/^[0-9a-f:]{17}$/)]); // the probe entry only
    for (const mac of ['02:00:00:00:0b:02', '02:00:00:00:0b:03']) expect(a.kernel.bridge.get(mac)).toBeUndefined();
  });
});

describe('FastPath probe keys', () => {
  const noDrops = { malformed: 0, unknownPeer: 0, noKey: 0, badTag: 0, replayed: 0 };

  it('a rekey in the middle of a healthy path causes no fallback: the previous key is accepted until both ends hold the new one', async () => {
    const { a, b, advance, stateOf } = await twoRouters();
    await advance(2000);
    expect([stateOf(a), stateOf(b)]).toEqual(['up', 'up']);
    const switches = () => [a, b].map((x) => x.fp.status()[0]!.switches);
    const before = switches();
    // As in the pair handshake: the responder (b) installs the new key when the INIT arrives and
    // keeps sending under the old one; the initiator (a) installs it when the answer arrives,
    // here 3 s later (well past the 1 s after which silence takes a path down).
    const k2 = randomBytes(32);
    b.fp.installKeys(1, k2, true);
    await advance(3000);
    expect([stateOf(a), stateOf(b)]).toEqual(['up', 'up']);
    a.fp.installKeys(2, k2, false);
    await advance(3000);
    expect([stateOf(a), stateOf(b)]).toEqual(['up', 'up']);
    // and once more the other way round, with no delay
    const k3 = randomBytes(32);
    a.fp.installKeys(2, k3, true);
    b.fp.installKeys(1, k3, false);
    await advance(3000);
    expect([stateOf(a), stateOf(b)]).toEqual(['up', 'up']);
    expect(switches()).toEqual(before);
    expect(a.fp.probeDrops).toEqual(noDrops);
    expect(b.fp.probeDrops).toEqual(noDrops);
  });

  it('floods that reach the probe TAP are ignored; frames of the probe type that are not probes are counted', async () => {
    const { a, advance } = await twoRouters();
    const arp = Buffer.alloc(60, 0xff);
    arp.writeUInt16BE(0x0806, 12);
    const notProbe = Buffer.alloc(64);
    notProbe.writeUInt16BE(0x88b5, 12);
    a.probeTap.inject(arp);
    a.probeTap.inject(notProbe);
    await advance(125);
    expect(a.fp.probeDrops).toEqual({ ...noDrops, malformed: 1 });
  });

  it('without keys a router sends no probes and takes none; with new keys the path comes back', async () => {
    const { a, b, advance, stateOf } = await twoRouters();
    await advance(2000);
    a.fp.removeKeys(2);
    const sent = a.sent.length;
    await advance(2000);
    expect(a.sent.length).toBe(sent);
    expect([stateOf(a), stateOf(b)]).toEqual(['down', 'down']);
    expect(a.fp.probeDrops.noKey).toBeGreaterThan(0);
    expect(a.fp.status()[0]!.reason).toMatch(/no probe key yet/);
    const k = randomBytes(32);
    a.fp.installKeys(2, k, false);
    b.fp.installKeys(1, k, true);
    await advance(6000);
    expect([stateOf(a), stateOf(b)]).toEqual(['up', 'up']);
  });
});
