import { describe, expect, it } from 'vitest';
import { FastPathHealth } from '../../../src/router/fastpath/health.js';
import { PROBE_MIN, probeMac, readProbe, writeProbe, type Probe } from '../../../src/router/fastpath/probe-frame.js';
import { FakeClock } from '../../fakes/fake-clock.js';

/** Two routers' health monitors joined by a simulated fast path with switchable faults. */
function link() {
  const clock = new FakeClock();
  const fault = { aToB: false, bToA: false, big: false };
  const switches: { who: string; up: boolean; reason: string; at: number }[] = [];
  const queue: { to: 'a' | 'b'; p: Probe }[] = [];
  const make = (self: number, peer: number, who: 'a' | 'b') =>
    new FastPathHealth(
      {
        clock,
        send: (p) => {
          const drop = (who === 'a' ? fault.aToB : fault.bToA) || (p.big && fault.big);
          if (!drop) queue.push({ to: who === 'a' ? 'b' : 'a', p });
        },
        onSwitch: (_id, up, reason) => switches.push({ who, up, reason, at: clock.now() }),
      },
      { selfId: self },
    );
  const a = make(1, 2, 'a');
  const b = make(2, 1, 'b');
  a.addPeer(2, 'b');
  b.addPeer(1, 'a');
  const run = (ms: number) => {
    for (let t = 0; t < ms; t += 50) {
      clock.advance(50);
      a.tick();
      b.tick();
      while (queue.length > 0) {
        const m = queue.shift()!;
        (m.to === 'a' ? a : b).onProbe(m.p);
      }
    }
  };
  return { clock, fault, switches, a, b, run };
}

describe('fast path health', () => {
  it('a clean path comes up on both ends within a second or two', () => {
    const l = link();
    l.run(2000);
    expect(l.a.isUp(2)).toBe(true);
    expect(l.b.isUp(1)).toBe(true);
    expect(l.switches.map((s) => [s.who, s.up])).toEqual([['a', true], ['b', true]]);
  });

  it('a cut path goes down within 1 s plus one probe, and comes back only after 5 s of health', () => {
    const l = l2();
    l.fault.aToB = l.fault.bToA = true;
    const cut = l.clock.now();
    l.run(2000);
    const down = l.switches.filter((s) => !s.up);
    expect(down.map((s) => s.who).sort()).toEqual(['a', 'b']);
    for (const d of down) {
      expect(d.at - cut).toBeLessThanOrEqual(1000 + 250 + 50);
      expect(d.reason).toMatch(/probes from the peer lost/);
    }
    l.fault.aToB = l.fault.bToA = false;
    const healed = l.clock.now();
    l.run(4500);
    expect(l.a.isUp(2)).toBe(false); // hysteresis: not yet
    expect(l.a.status()[0]!.reason).toMatch(/up after 5.0 s/);
    l.run(1500);
    expect(l.a.isUp(2)).toBe(true);
    const up = l.switches.filter((s) => s.up && s.at > healed);
    expect(up.every((s) => s.at - healed >= 5000)).toBe(true);
  });

  it('a one-way path is down at both ends, each saying which way fails', () => {
    const l = l2();
    l.fault.aToB = true;
    l.run(2500);
    expect(l.a.isUp(2)).toBe(false);
    expect(l.b.isUp(1)).toBe(false);
    expect(l.a.status()[0]!.reason).toMatch(/the peer does not hear our probes/);
    expect(l.b.status()[0]!.reason).toMatch(/probes from the peer lost/);
  });

  it('an MTU black hole (full-size probes lost, small ones fine) takes the path down', () => {
    const l = l2();
    l.fault.big = true;
    const cut = l.clock.now();
    l.run(5000);
    const down = l.switches.filter((s) => !s.up);
    expect(down).toHaveLength(2);
    expect(down[0]!.reason).toMatch(/full-size probes lost/);
    expect(down[0]!.at - cut).toBeLessThanOrEqual(1250 + 500 + 50);
  });

  it('does not flap: a path that breaks every 2 s switches down once and stays down', () => {
    const l = l2();
    const before = l.switches.length;
    for (let i = 0; i < 10; i++) {
      l.fault.aToB = l.fault.bToA = i % 2 === 0;
      l.run(2000);
    }
    const after = l.switches.slice(before);
    expect(after.filter((s) => s.up)).toEqual([]);
    expect(after.filter((s) => !s.up)).toHaveLength(2);
  });

  it('keeps an up path up while the peer router is silent on both paths (restarting)', () => {
    const clock = new FakeClock();
    let silent = true;
    const switches: boolean[] = [];
    const h = new FastPathHealth({ clock, send: () => undefined, onSwitch: (_i, up) => switches.push(up), peerSilent: () => silent }, { selfId: 1 });
    h.addPeer(2, 'b', true); // adopted from the kernel after our own restart
    expect(h.isUp(2)).toBe(true);
    for (let t = 0; t < 5000; t += 125) {
      clock.advance(125);
      h.tick();
    }
    expect(h.isUp(2)).toBe(true);
    expect(h.status()[0]!.reason).toMatch(/silent on both paths/);
    // The router answers on the sleeve again; its probes follow a moment later (a restart): up.
    silent = false;
    for (let t = 0; t < 2500; t += 125) {
      clock.advance(125);
      h.tick();
    }
    expect(h.isUp(2)).toBe(true);
    expect(h.status()[0]!.reason).toMatch(/back on the sleeve, its probes not yet/);
    // Probes that never come within the grace: a real failure of the kernel path.
    for (let t = 0; t < 750; t += 125) {
      clock.advance(125);
      h.tick();
    }
    expect(h.isUp(2)).toBe(false);
    expect(switches).toEqual([false]);
  });

  it('a peer back on the sleeve whose probes resume within the grace keeps its kernel path', () => {
    const clock = new FakeClock();
    let silent = true;
    const switches: boolean[] = [];
    const ours = { seq: 0, big: 0 };
    const send = (p: Probe) => {
      ours.seq = p.seq;
      if (p.big) ours.big = p.seq;
    };
    const h = new FastPathHealth({ clock, send, onSwitch: (_i, up) => switches.push(up), peerSilent: () => silent }, { selfId: 1 });
    h.addPeer(2, 'b', true);
    for (let t = 0; t < 4000; t += 125) {
      clock.advance(125);
      h.tick();
    }
    silent = false;
    for (let t = 0; t < 1000; t += 125) {
      clock.advance(125);
      h.tick();
    }
    // its probes resume, echoing ours
    let seq = 0;
    for (let t = 0; t < 6000; t += 125) {
      clock.advance(125);
      h.tick();
      h.onProbe({ src: 2, dst: 1, seq: ++seq, echo: ours.seq, echoBig: ours.big, big: seq % 2 === 0 });
    }
    expect(switches).toEqual([]);
    expect(h.isUp(2)).toBe(true);
  });

  it('gives a just-restarted router 3 s to echo again before its kernel path is given up', () => {
    const clock = new FakeClock();
    const switches: boolean[] = [];
    const h = new FastPathHealth({ clock, send: () => undefined, onSwitch: (_i, up) => switches.push(up), peerSilent: () => false }, { selfId: 1 });
    h.addPeer(2, 'b', true); // adopted from the kernel after our own restart
    // The peer keeps probing (it hears nothing from us yet: its echoes stay at 0).
    let seq = 0;
    const step = () => {
      clock.advance(125);
      h.onProbe({ src: 2, dst: 1, seq: ++seq, echo: 0, echoBig: 0, big: seq % 2 === 0 });
      h.tick();
    };
    for (let t = 0; t < 2500; t += 125) step();
    expect(h.isUp(2)).toBe(true);
    expect(h.status()[0]!.reason).toMatch(/restart grace/);
    for (let t = 0; t < 1000; t += 125) step();
    expect(h.isUp(2)).toBe(false); // after the grace, a peer that never hears us is a real failure
    expect(switches).toEqual([false]);
  });

  it('ignores probes for another router or from an unknown one', () => {
    const l = l2();
    const st = l.a.status()[0]!.lastHeardMsAgo;
    l.a.onProbe({ src: 2, dst: 99, seq: 1e6, echo: 0, echoBig: 0, big: true });
    l.a.onProbe({ src: 77, dst: 1, seq: 1e6, echo: 0, echoBig: 0, big: true });
    expect(l.a.status()[0]!.lastHeardMsAgo).toBe(st);
  });
});

function l2() {
  const l = link();
  l.run(2000); // both up
  return l;
}

describe('probe frames', () => {
  it('round-trip, full size or minimal', () => {
    const p: Probe = { src: 0x01020304, dst: 0x0a0b0c0d, seq: 7, echo: 6, echoBig: 4, big: true };
    const buf = Buffer.alloc(1418);
    expect(writeProbe(buf, 0, 1418, p)).toBe(1418);
    expect(readProbe(buf, 0, 1418)).toEqual(p);
    expect(buf.subarray(0, 6).equals(probeMac(p.dst))).toBe(true);
    const small = Buffer.alloc(PROBE_MIN);
    writeProbe(small, 0, PROBE_MIN, { ...p, big: false });
    expect(readProbe(small, 0, PROBE_MIN)).toEqual({ ...p, big: false });
  });

  it('refuses other frames: short, other ethertype or magic, MACs that disagree with the ids', () => {
    const buf = Buffer.alloc(64);
    writeProbe(buf, 0, 64, { src: 1, dst: 2, seq: 1, echo: 0, echoBig: 0, big: false });
    expect(readProbe(buf, 0, PROBE_MIN - 1)).toBeUndefined();
    const other = Buffer.from(buf);
    other.writeUInt16BE(0x0800, 12);
    expect(readProbe(other, 0, 64)).toBeUndefined();
    const magic = Buffer.from(buf);
    magic[14] = 0;
    expect(readProbe(magic, 0, 64)).toBeUndefined();
    const spoof = Buffer.from(buf);
    spoof.writeUInt32BE(3, 18); // claims another source than its MAC
    expect(readProbe(spoof, 0, 64)).toBeUndefined();
    const big = Buffer.alloc(1418);
    writeProbe(big, 0, 1418, { src: 1, dst: 2, seq: 1, echo: 0, echoBig: 0, big: true });
    expect(readProbe(big, 0, 1418)).toBeDefined();
    expect(readProbe(big, 0, 1000)).toBeUndefined(); // cut short on the way: shorter than its size field
  });
});
