/**
 * The OverlaySwitch: each peer's path (fastpath, direct, relay, none) with its reason, since and
 * switches, one event per change; what it hands the fast path (keys, candidates, removals) and
 * what the learning switch reads from it. Sleeves on the fake UDP network, fast paths on fake
 * netlink state and an in-memory probe wire (overlay-harness.ts), a fake clock.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { PeerKeys } from '../../src/mesh/contracts.js';
import { peerIdFromPeerName } from '../../src/core/ids.js';
import { silentLogger } from '../../src/core/logger.js';
import { LearningSwitch } from '../../src/router/learning-switch.js';
import { PATH_DIRECT, PATH_FASTPATH, PATH_NONE, PATH_RELAY, OverlaySwitch, type KernelPath, type PathName } from '../../src/router/overlay-switch.js';
import { probeMacText } from '../../src/router/fastpath/probe-frame.js';
import { FakeClock } from '../fakes/fake-clock.js';
import { FakeTap } from '../fakes/fake-tap.js';
import { FakeNetwork } from '../fakes/fake-udp.js';
import { settle } from './fastpath/two-routers.js';
import { switchedRouters } from './overlay-harness.js';
import { makeNode, peerName, randomFrame, sendFrames, testKey } from './sleeve-harness.js';

const key = (s: string) => createHash('sha256').update(s).digest();
const CODE: Record<PathName, number> = { none: PATH_NONE, direct: PATH_DIRECT, relay: PATH_RELAY, fastpath: PATH_FASTPATH };

function keysFor(name: string, id: number, probe: Buffer, epoch = 1): PeerKeys {
  return { name, id, tx: { keyId: 1 + 2 * epoch, key: key(`tx${name}${epoch}`) }, rx: { keyId: 2 + 2 * epoch, key: key(`rx${name}${epoch}`) }, probe };
}

/** A KernelPath that records what it is told (the probe key as hex, copied during the call). */
class RecordingKernelPath implements KernelPath {
  readonly calls: string[] = [];
  /** The last underlay handed per id ('' for none). */
  readonly candidate = new Map<number, string>();
  installKeys(id: number, probeKey: Uint8Array, confirmTx: boolean): void {
    this.calls.push(`keys ${id} ${Buffer.from(probeKey).toString('hex').slice(0, 8)} ${confirmTx}`);
  }
  removeKeys(id: number): void {
    this.calls.push(`removeKeys ${id}`);
  }
  setPeer(id: number, name: string, underlay: string | undefined): void {
    this.calls.push(`peer ${id} ${underlay ?? '-'}`);
    this.candidate.set(id, underlay ?? '');
  }
}

/** A broadcast frame (ARP) from a pod MAC, its last byte `tag`. */
/** Two routers, a (198.18.0.1) and b (198.18.0.2), each with its overlay switch and fast path. */
async function routersAB() {
  const h = await switchedRouters([
    { name: 'a', address: '198.18.0.1' },
    { name: 'b', address: '198.18.0.2' },
  ]);
  return { h, a: h.byName('a'), b: h.byName('b') };
}

function broadcast(tag: number): Buffer {
  const f = Buffer.alloc(60);
  f.fill(0xff, 0, 6);
  f.writeUIntBE(0x024000000101, 6, 6);
  f.writeUInt16BE(0x0806, 12);
  f[59] = tag;
  return f;
}

describe('OverlaySwitch: a fast-path peer', () => {
  it('goes fast, fails its probes and falls back with the reason, then returns; since and switches follow, one event and one log line per change', async () => {
    const { h, a, b } = await routersAB();
    h.connect('a', 'b');
    expect(h.pathOf('a', 'b')).toMatchObject({ path: 'none', switches: 0, since: 0, via: undefined });
    await h.advance(3000);
    expect(h.pathOf('a', 'b')).toMatchObject({ path: 'fastpath', reason: expect.stringMatching(/^probes ok \(healthy for/), switches: 2 });
    const peerB = a.node.sleeve.peerById(b.node.id)!;
    expect(a.sw.pathAt(peerB.index)).toBe(PATH_FASTPATH);

    const cutAt = h.clock.now();
    h.setCut('a', 'b', 'probes', true);
    await h.advance(2000);
    expect(h.pathOf('a', 'b')).toMatchObject({ path: 'direct', reason: expect.stringMatching(/^probes failed: probes from the peer lost/), switches: 3 });
    expect(a.sw.pathAt(peerB.index)).toBe(PATH_DIRECT);
    const healAt = h.clock.now();
    h.setCut('a', 'b', 'probes', false);
    await h.advance(4000);
    expect(h.pathOf('a', 'b')!.path).toBe('direct'); // hysteresis: 5 s of health before up again
    await h.advance(3000);
    expect(h.pathOf('a', 'b')).toMatchObject({ path: 'fastpath', reason: 'probes ok (healthy for 5.0 s)', switches: 4 });

    const seen = a.changes.map((c) => [c.from, c.to, c.switches]);
    expect(seen).toEqual([
      ['none', 'direct', 1],
      ['direct', 'fastpath', 2],
      ['fastpath', 'direct', 3],
      ['direct', 'fastpath', 4],
    ]);
    for (const c of a.changes) expect(c).toMatchObject({ name: b.node.peer, id: b.node.id, since: c.at });
    expect(h.pathOf('a', 'b')!.since).toBe(a.changes[3]!.at);
    // (fake time) the fallback came 1–1.5 s after the cut (judged every 125 ms), the return 5 s of health after the heal
    expect(a.changes[2]!.at - cutAt).toBeGreaterThanOrEqual(1000);
    expect(a.changes[2]!.at - cutAt).toBeLessThanOrEqual(1500);
    expect(a.changes[3]!.at - healAt).toBeGreaterThanOrEqual(5000);
    const logged = a.lines.filter((l) => l.msg === 'path changed');
    expect(logged.map((l) => [l.peer, l.from, l.to, l.reason])).toEqual(a.changes.map((c) => [b.node.peer, c.from, c.to, c.reason]));
    expect(logged.every((l) => l.level === 'info')).toBe(true);
    h.stop();
  });

  it('the learning switch leaves floods and unicasts to a peer the kernel carries, and sends them on the sleeve again after the fallback', async () => {
    const { h, a, b } = await routersAB();
    const tap = new FakeTap({ vnetHdr: false });
    const ls = new LearningSwitch({ tap, sleeve: a.node.sleeve, paths: a.sw, clock: h.clock, logger: silentLogger });
    ls.start();
    h.connect('a', 'b');
    await h.advance(3000);
    expect(h.pathOf('a', 'b')!.path).toBe('fastpath');
    // a pod behind b talks to a over the sleeve: a's switch learns its MAC behind b
    const fromPodB = randomFrame(80, 7);
    fromPodB.writeUIntBE(0x024000000101, 0, 6);
    fromPodB.writeUIntBE(0x024000000202, 6, 6);
    sendFrames(b.node, 'a', [{ frame: fromPodB }]);
    await h.advance(125);
    const toPodB = randomFrame(80, 8);
    toPodB.writeUIntBE(0x024000000202, 0, 6);
    toPodB.writeUIntBE(0x024000000101, 6, 6);

    tap.inject(broadcast(1));
    tap.inject(toPodB);
    await h.advance(125);
    expect(ls.counters).toMatchObject({ leftToFastPath: 2, flooded: 0, unicast: 0 });
    expect(b.node.received).toEqual([]);

    h.setCut('a', 'b', 'probes', true);
    await h.advance(2000);
    expect(h.pathOf('a', 'b')!.path).toBe('direct');
    tap.inject(broadcast(2));
    tap.inject(toPodB);
    await h.advance(125);
    expect(ls.counters).toMatchObject({ leftToFastPath: 2, flooded: 1, unicast: 1 });
    expect(b.node.received.map((r) => r.frame)).toEqual([broadcast(2), toPodB]);
    ls.stop();
    h.stop();
  });

  it('a removed peer goes to none ("peer removed") with one event, and leaves the fast path and the kernel', async () => {
    const { h, a, b } = await routersAB();
    h.connect('a', 'b');
    await h.advance(3000);
    expect(h.pathOf('a', 'b')!.path).toBe('fastpath');
    const index = a.node.sleeve.peerById(b.node.id)!.index;
    expect(a.kernel.towards('198.18.0.2')).toContain(probeMacText(b.node.id));
    const before = a.changes.length;
    const at = h.clock.now();
    a.sw.removePeer(b.node.peer);
    expect(a.changes.slice(before)).toEqual([{ name: b.node.peer, id: b.node.id, from: 'fastpath', to: 'none', reason: 'peer removed', since: at, switches: 3, at }]);
    expect(a.sw.pathOf(b.node.peer)).toBeUndefined();
    expect(a.sw.paths()).toEqual([]);
    expect(a.sw.pathAt(index)).toBe(PATH_NONE);
    expect(a.node.sleeve.peerById(b.node.id)).toBeUndefined();
    await settle();
    expect(a.fp!.status()).toEqual([]);
    expect(a.kernel.towards('198.18.0.2')).toEqual([]);
    await h.advance(1000);
    expect(a.changes.length).toBe(before + 1);
    h.stop();
  });

  it('an endpoint that moves (roaming) goes to the fast path at once', async () => {
    const h = await switchedRouters([
      { name: 'a', address: '198.18.0.1' },
      { name: 'b', address: '198.18.0.2' },
    ]);
    const a = h.byName('a');
    h.connect('a', 'b');
    await h.advance(500);
    expect(a.fp!.status().map((p) => p.underlay)).toEqual(['198.18.0.2']);
    // b's datagrams now arrive from another address (its NAT rebinds, say)
    h.net.filter = (d) => (d.fromAddress === '198.18.0.2' ? [{ ...d, fromAddress: '198.18.0.22' }] : true);
    await h.advance(750);
    expect(a.node.sleeve.peerById(h.byName('b').node.id)!.directAddress).toBe('198.18.0.22');
    expect(a.fp!.status().map((p) => p.underlay)).toEqual(['198.18.0.22']);
    h.stop();
  });
});

describe('OverlaySwitch: relays', () => {
  it('a relay appears (path relay, the reason names it) and goes (back to direct)', async () => {
    const h = await switchedRouters([
      { name: 'a', address: '198.18.0.1' },
      { name: 'b', address: '198.18.0.2' },
      { name: 'c', address: '198.18.0.3' },
    ]);
    const [a, b, c] = [h.byName('a'), h.byName('b'), h.byName('c')];
    h.setCut('a', 'b', 'probes', true); // a and b stay on the sleeve; c is on the fast path with both
    h.connect('a', 'b');
    h.connect('a', 'c');
    h.connect('b', 'c');
    await h.advance(3000);
    expect([h.pathOf('a', 'b')!.path, h.pathOf('a', 'c')!.path]).toEqual(['direct', 'fastpath']);

    h.setCut('a', 'b', 'sleeve', true);
    await h.advance(2500); // heartbeats missed for 1.75 s: the direct path is down
    expect(h.pathOf('a', 'b')).toMatchObject({ path: 'none', reason: 'direct path not proven by heartbeats, and no relay' });
    // the mesh's routes now go through c
    a.sw.setVia(b.node.peer, c.node.peer);
    b.sw.setVia(a.node.peer, c.node.peer);
    expect(h.pathOf('a', 'b')).toMatchObject({ path: 'relay', reason: `relay via ${c.node.peer} (direct path not proven by heartbeats)`, via: c.node.peer });
    const sent = randomFrame(100, 3);
    sendFrames(a.node, 'b', [{ frame: sent }]);
    await h.advance(125);
    expect(b.node.received.map((r) => r.frame)).toEqual([sent]);

    h.setCut('a', 'b', 'sleeve', false);
    // back to direct only once direct heartbeats have kept coming for a second (hysteresis)
    await h.advance(2000);
    expect(h.pathOf('a', 'b')).toMatchObject({ path: 'direct', reason: 'direct path proven by heartbeats', via: undefined });
    a.sw.setVia(b.node.peer, undefined);
    expect(a.changes.filter((x) => x.name === b.node.peer).map((x) => `${x.from}→${x.to}`)).toEqual(['none→direct', 'direct→none', 'none→relay', 'relay→direct']);
    expect(h.pathOf('a', 'b')!.switches).toBe(4);
    h.stop();
  });
});

describe('OverlaySwitch: the mesh\'s overlay', () => {
  it('hands the fast path the keys the sleeve took while their bytes are valid, candidates once running, and removals', () => {
    const net = new FakeNetwork();
    const clock = new FakeClock();
    const a = makeNode(net, clock, { name: 'a', address: '198.18.0.1' });
    const sw = new OverlaySwitch({ sleeve: a.sleeve, clock, logger: silentLogger });
    const kp = new RecordingKernelPath();
    sw.attach(kp);
    const b = peerName('b');
    const idB = peerIdFromPeerName(b);
    sw.setDirect(b, '198.18.0.2:6784'); // before the keys: applied when they come
    sw.installKeys(keysFor(b, idB, key('p1')), false);
    sw.installKeys(keysFor(b, idB, key('p2'), 2), true);
    sw.installKeys(keysFor(peerName('impostor'), idB, key('p3')), false); // same wire id, other name: refused
    expect(a.sleeve.peerById(idB)!.directAddress).toBe('198.18.0.2');
    // not running yet: keys, but no candidates
    expect(kp.calls).toEqual([`keys ${idB} ${key('p1').toString('hex').slice(0, 8)} false`, `keys ${idB} ${key('p2').toString('hex').slice(0, 8)} true`]);
    sw.start();
    expect(kp.calls.slice(2)).toEqual([`peer ${idB} 198.18.0.2`]);
    sw.setDirect(b, undefined); // the mesh connection closed: the fast path keeps the address
    sw.setDirect(b, '[2001:db8::2]:6784'); // not IPv4: not a candidate
    sw.setDirect(b, '198.18.0.9:6784');
    expect(kp.calls.slice(3)).toEqual([`peer ${idB} 198.18.0.9`]);
    sw.removePeer(peerName('impostor'));
    expect(a.sleeve.peerById(idB)).toBeDefined();
    sw.removePeer(b);
    sw.removePeer(b);
    expect(kp.calls.slice(4)).toEqual([`removeKeys ${idB}`, `peer ${idB} -`]);
  });

  it('a second name with the same wire id cannot move, relay, prove or remove the first peer', async () => {
    const net = new FakeNetwork();
    const clock = new FakeClock();
    const a = makeNode(net, clock, { name: 'a', address: '198.18.0.1' });
    const sw = new OverlaySwitch({ sleeve: a.sleeve, clock, logger: silentLogger });
    const [first, second, relay] = ['1234abcd00000001', '1234abcd00000002', peerName('relay')];
    const id = peerIdFromPeerName(first);
    expect(peerIdFromPeerName(second)).toBe(id);
    sw.installKeys(keysFor(first, id, key('p')), false);
    sw.installKeys(keysFor(relay, peerIdFromPeerName(relay), key('q')), false);
    sw.setDirect(first, '198.18.0.2:6784');
    sw.installKeys(keysFor(second, id, key('p')), false);
    sw.setDirect(second, '198.18.0.66:6784');
    sw.setVia(second, relay);
    sw.removePeer(second);
    const p = a.sleeve.peerById(id)!;
    expect([p.name, p.directAddress, p.via]).toEqual([first, '198.18.0.2', undefined]);
    expect(sw.pathUp(second)).toBe(false);
    expect(sw.pathOf(first)).toMatchObject({ path: 'none', reason: 'direct path not proven by heartbeats, and no relay' });
    expect(sw.pathOf(second)).toBeUndefined();
  });

  it('reasons while a peer has no path, case by case', async () => {
    const net = new FakeNetwork();
    const clock = new FakeClock();
    const a = makeNode(net, clock, { name: 'a', address: '198.18.0.1' });
    const sw = new OverlaySwitch({ sleeve: a.sleeve, clock, logger: silentLogger });
    const [b, r] = [peerName('b'), peerName('r')];
    const cases: { step: () => void; path: PathName; reason: string }[] = [
      { step: () => sw.setVia(b, undefined), path: 'none', reason: 'keys pending' },
      { step: () => sw.installKeys(keysFor(b, peerIdFromPeerName(b), key('p')), false), path: 'none', reason: 'no direct endpoint' },
      { step: () => sw.setVia(b, r), path: 'none', reason: 'no direct endpoint' }, // the relay is not a peer yet
      { step: () => sw.installKeys(keysFor(r, peerIdFromPeerName(r), key('q')), false), path: 'none', reason: 'no direct endpoint' },
      { step: () => sw.setVia(b, r), path: 'none', reason: `no direct endpoint, and the relay ${r} has none either` },
      { step: () => sw.setDirect(r, '198.18.0.3:6784'), path: 'relay', reason: `relay via ${r} (no direct endpoint)` },
      { step: () => sw.setDirect(b, '198.18.0.2:6784'), path: 'relay', reason: `relay via ${r} (direct path not proven by heartbeats)` },
      { step: () => sw.setVia(b, undefined), path: 'none', reason: 'direct path not proven by heartbeats, and no relay' },
      { step: () => sw.setFast(peerIdFromPeerName(b), true, 'probes ok (test)'), path: 'fastpath', reason: 'probes ok (test)' },
      { step: () => sw.setFast(peerIdFromPeerName(b), false, 'probes failed: test'), path: 'none', reason: 'direct path not proven by heartbeats, and no relay' },
      { step: () => sw.removePeer(r), path: 'none', reason: 'direct path not proven by heartbeats, and no relay' },
    ];
    for (const [i, c] of cases.entries()) {
      c.step();
      expect({ i, ...sw.pathOf(b) }).toMatchObject({ i, path: c.path, reason: c.reason });
    }
    expect(sw.pathOf(b)!.switches).toBe(4);
  });
});

describe('OverlaySwitch against the classification it replaced', () => {
  /** The status classification before the OverlaySwitch (src/daemon/status.ts), from the sleeve's state and the fast flags. */
  function naive(p: { pathUp: boolean; via: { name: string } | undefined; hasEndpoint: boolean }, fast: boolean): { path: PathName; via: string | undefined } {
    return { path: fast ? 'fastpath' : p.pathUp ? 'direct' : p.via !== undefined && p.hasEndpoint ? 'relay' : 'none', via: !p.pathUp && p.via !== undefined ? p.via.name : undefined };
  }

  it('random keys, endpoints, relays, removals, fast path switches and cuts: paths, pathAt, candidates and events agree', async () => {
    const seenPaths = new Set<PathName>();
    let events = 0;
    for (const seed of [1, 2, 3, 4, 5]) {
      const h = await switchedRouters(
        ['a', 'b', 'c', 'd'].map((name, i) => ({ name, address: `198.18.0.${i + 1}` })),
        { fastPath: false },
      );
      const a = h.byName('a');
      const kp = new RecordingKernelPath();
      a.sw.attach(kp);
      const others = ['b', 'c', 'd'].map(h.byName);
      const fast = new Map<number, boolean>();
      const removed = new Set<number>();
      // mulberry32
      let x = seed * 7919;
      const rnd = (n: number) => {
        x = (x + 0x6d2b79f5) | 0;
        let t = Math.imul(x ^ (x >>> 15), 1 | x);
        t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
        return ((t ^ (t >>> 14)) >>> 0) % n;
      };
      let epoch = 1;
      for (let step = 0; step < 200; step++) {
        const o = others[rnd(3)]!;
        const v = others[rnd(3)]!;
        const op = rnd(8);
        if (op === 0) {
          // new keys for the pair (a handshake)
          epoch++;
          const probe = key(`probe${epoch}`);
          a.sw.installKeys({ name: o.node.peer, id: o.node.id, tx: { keyId: 2 * epoch, key: testKey('s', a.node.peer, o.node.peer, epoch) }, rx: { keyId: 2 * epoch + 1, key: testKey('s', o.node.peer, a.node.peer, epoch) }, probe }, false);
          o.sw.installKeys({ name: a.node.peer, id: a.node.id, tx: { keyId: 2 * epoch + 1, key: testKey('s', o.node.peer, a.node.peer, epoch) }, rx: { keyId: 2 * epoch, key: testKey('s', a.node.peer, o.node.peer, epoch) }, probe }, false);
          removed.delete(o.node.id);
        } else if (op === 1) {
          const on = rnd(3) > 0;
          a.sw.setDirect(o.node.peer, on ? `${o.node.address}:6784` : undefined);
          o.sw.setDirect(a.node.peer, on ? `${a.node.address}:6784` : undefined);
        } else if (op === 2) {
          a.sw.setVia(o.node.peer, rnd(2) === 0 || v === o ? undefined : v.node.peer);
        } else if (op === 3) {
          if (rnd(3) === 0) {
            a.sw.removePeer(o.node.peer);
            fast.delete(o.node.id);
            removed.add(o.node.id);
          }
        } else if (op === 4) {
          if (a.node.sleeve.peerById(o.node.id) !== undefined) {
            const f = rnd(4) === 0;
            a.sw.setFast(o.node.id, f, f ? 'probes ok (model)' : 'probes failed: model');
            fast.set(o.node.id, f);
          }
        } else if (op === 5) {
          h.setCut('a', o.node.name, 'sleeve', rnd(2) === 0);
        } else if (op === 6) {
          // the other side's view of a relay (so relayed heartbeats flow)
          o.sw.setVia(a.node.peer, rnd(2) === 0 || v === o ? undefined : v.node.peer);
        } else {
          await h.advance(125 * (1 + rnd(12)));
        }
        // after every step: the switch's view is the naive one, for every peer the sleeve holds
        for (const p of a.node.sleeve.peers) {
          const want = naive(p, fast.get(p.id) === true);
          seenPaths.add(want.path);
          const got = a.sw.pathOf(p.name);
          expect({ seed, step, peer: p.name, path: got?.path, via: got?.via }).toEqual({ seed, step, peer: p.name, ...want });
          expect(a.sw.pathAt(p.index)).toBe(CODE[want.path]);
          // the fast path has the candidate the 1 s poll would have handed it
          if (p.hasDirect && p.directFamily === 4) expect({ seed, step, candidate: kp.candidate.get(p.id) }).toEqual({ seed, step, candidate: p.directAddress });
        }
        for (const id of removed) expect({ seed, step, candidate: kp.candidate.get(id) ?? '' }).toEqual({ seed, step, candidate: '' });
      }
      // events: one per change, chained per peer (a removed peer goes to none; a new one starts there), switches counted
      const byPeer = new Map<string, typeof a.changes>();
      for (const c of a.changes) byPeer.set(c.name, [...(byPeer.get(c.name) ?? []), c]);
      for (const [name, list] of byPeer) {
        let prev: { to: PathName; switches: number } = { to: 'none', switches: 0 };
        for (const c of list) {
          expect(c.from).not.toBe(c.to);
          expect(c.from).toBe(prev.to);
          if (c.switches !== prev.switches + 1) expect([c.switches, prev.to]).toEqual([1, 'none']);
          prev = c;
        }
        const now = a.sw.pathOf(name);
        if (now !== undefined && now.switches > 0) expect([now.path, now.switches, now.since]).toEqual([prev.to, prev.switches, list[list.length - 1]!.since]);
        if (now === undefined || now.switches === 0) expect(prev.to).toBe('none');
      }
      events += a.changes.length;
      h.stop();
    }
    // the walk went everywhere
    expect([...seenPaths].sort()).toEqual(['direct', 'fastpath', 'none', 'relay']);
    expect(events).toBeGreaterThan(50);
  });
});
