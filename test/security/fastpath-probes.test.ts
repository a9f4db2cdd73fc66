/**
 * Attacks on the fast path's health probes (issue 13), with two routers' FastPaths on the
 * in-memory probe wire of test/router/fastpath/two-routers.ts. The attacker writes probe frames
 * of its own into router a's probe TAP, as a host on the underlay could (VXLAN is not encrypted:
 * it reads every probe) or a pod on a's bridge. It holds no probe key. Each test asserts that
 * the health judge saw nothing of it and that the drops are counted by reason.
 */
import { describe, expect, it } from 'vitest';
import { readProbe, writeProbe, type Probe } from '../../src/router/fastpath/probe-frame.js';
import { MAX_FRAME, twoRouters, type RouterSide } from '../router/fastpath/two-routers.js';

/** A probe frame as an attacker without the key writes it (the tag is not the pair's). */
function forge(p: Probe): Buffer {
  const size = p.big ? MAX_FRAME : 64;
  const buf = Buffer.alloc(size);
  writeProbe(buf, 0, size, p);
  return buf;
}

/** The last probe `side` sent (full size only with `big`), as the attacker reads it on the wire. */
function lastSent(side: RouterSide, big = false): Probe {
  for (let i = side.sent.length - 1; i >= 0; i--) {
    const f = side.sent[i]!.frame;
    const p = readProbe(f, 0, f.length);
    if (p !== undefined && (!big || p.big)) return p;
  }
  throw new Error('nothing sent yet');
}

describe('attacks on fast-path probes', () => {
  it('forged probes answering every probe of a cut path (echoes read on the wire) do not keep it up', async () => {
    const { a, b, wire, advance, stateOf } = await twoRouters();
    await advance(2000);
    expect([stateOf(a), stateOf(b)]).toEqual(['up', 'up']);
    wire.cut = true;
    let seq = lastSent(b).seq;
    let forged = 0;
    await advance(3000, () => {
      // b's probes no longer arrive; the attacker answers a's last probe as b would
      a.probeTap.inject(forge({ src: b.id, dst: a.id, seq: ++seq, echo: lastSent(a).seq, echoBig: lastSent(a, true).seq, big: true }));
      forged++;
    });
    expect(stateOf(a)).toBe('down');
    expect(a.fp.status()[0]!.reason).toMatch(/probes from the peer lost/);
    expect(a.fp.probeDrops.badTag).toBe(forged);
  });

  it('a flood of forged probes with made-up seqs does not make the peer think it is not heard', async () => {
    const { a, b, advance, stateOf } = await twoRouters();
    await advance(2000);
    expect([stateOf(a), stateOf(b)]).toEqual(['up', 'up']);
    const switches = () => [a, b].map((x) => x.fp.status()[0]!.switches);
    const before = switches();
    let forged = 0;
    await advance(4000, () => {
      // after b's real probe and before a answers: a's echo would name a probe b never sent
      for (let k = 0; k < 3; k++, forged++) a.probeTap.inject(forge({ src: b.id, dst: a.id, seq: 0x7fff0000 + forged, echo: 0, echoBig: 0, big: false }));
    });
    expect([stateOf(a), stateOf(b)]).toEqual(['up', 'up']);
    expect(switches()).toEqual(before);
    expect(a.fp.probeDrops.badTag).toBe(forged);
  });

  it('probes recorded on a healthy path and replayed after it was cut are not heard', async () => {
    const { a, b, wire, advance, stateOf } = await twoRouters();
    await advance(2000);
    const recorded = b.sent.slice(-8).map((s) => s.frame);
    wire.cut = true;
    let i = 0;
    await advance(3000, () => a.probeTap.inject(recorded[i++ % recorded.length]!));
    expect(stateOf(a)).toBe('down');
    // heard nothing since the cut, replays included
    expect(a.fp.status()[0]!.reason).toMatch(/probes from the peer lost \(last 3\.\d s ago\)/);
    expect(a.fp.probeDrops.replayed).toBe(i);
  });

  it('replayed full-size probes do not hide a one-way MTU black hole', async () => {
    const { a, b, wire, advance, stateOf } = await twoRouters();
    await advance(2000);
    const recorded = b.sent.filter((s) => s.frame.length === MAX_FRAME).map((s) => s.frame);
    expect(recorded.length).toBeGreaterThan(2);
    // full-size frames from b to a are lost; everything else crosses
    wire.drop = (from, frame) => from === 'b' && frame.length > 64;
    let step = 0;
    let replayed = 0;
    await advance(4000, () => {
      if (step++ % 4 === 0) a.probeTap.inject(recorded[replayed++ % recorded.length]!);
    });
    expect(stateOf(a)).toBe('down');
    expect(a.fp.status()[0]!.reason).toMatch(/full-size probes lost/);
    expect(a.fp.probeDrops.replayed).toBe(replayed);
  });

  it('probes from a peer whose keys we do not hold change nothing, and we send none to it', async () => {
    const { a, b, advance, stateOf } = await twoRouters({ keyed: ['b'] });
    await advance(3000);
    expect(b.sent.length).toBeGreaterThan(0);
    expect(a.sent).toEqual([]);
    expect(stateOf(a)).toBe('probing');
    expect(a.fp.status()[0]).toMatchObject({ switches: 0, reason: expect.stringMatching(/no probe key yet/) });
    expect(a.fp.health.status()[0]!.lastHeardMsAgo).toBeUndefined();
    expect(a.fp.probeDrops.noKey).toBe(b.sent.length);
  });
});
