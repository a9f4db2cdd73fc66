import { describe, expect, it } from 'vitest';
import type { SleevePeer } from '../../src/router/sleeve/peer.js';
import type { SleeveCandidate } from '../../src/router/sleeve/sleeve.js';
import { PUNCH_SCHEDULE, nextRtt } from '../../src/router/sleeve/sleeve-punch.js';
import { parseEndpoint } from '../../src/core/net.js';
import { FLAG_PROBE } from '../../src/router/sleeve/wire.js';
import { FakeClock, FakeNetwork, connect, makeNode, randomFrame, run, sendFrames, startedPair, type Node } from './sleeve-harness.js';

function candidates(...texts: string[]): SleeveCandidate[] {
  return texts.map((text) => {
    const ep = parseEndpoint(text);
    return typeof ep === 'string' ? { text, kind: 'local', endpoint: undefined, error: ep } : { text, kind: 'local', endpoint: ep, error: '' };
  });
}

function peerOf(node: Node, other: Node): SleevePeer {
  return node.sleeve.peerById(other.id)!;
}

/** Alpha and beta with keys but no direct endpoint (the mesh never connected them), started. */
async function strangers(opts: { heartbeatMs?: number } = {}) {
  const net = new FakeNetwork();
  const clock = new FakeClock();
  const sleeve = { heartbeatMs: opts.heartbeatMs ?? 500 };
  const a = makeNode(net, clock, { name: 'alpha', address: '198.18.0.1', sleeve });
  const b = makeNode(net, clock, { name: 'beta', address: '198.18.0.2', sleeve });
  connect(a, b, { direct: false });
  const observed: string[] = [];
  a.sleeve.setEvents({ pathChange: () => undefined, rekeyWanted: () => undefined, observed: (_p, ep) => observed.push(ep) });
  a.sleeve.start();
  b.sleeve.start();
  await run(net, clock, 200);
  return { net, clock, a, b, observed };
}

describe('sleeve hole punching', () => {
  const cases: { name: string; cands: string[]; state: string; endpoint: string; results: (string | RegExp)[]; why: string }[] = [
    { name: 'a candidate that answers wins', cands: ['198.18.0.2:6784'], state: 'punched', endpoint: '198.18.0.2:6784', results: ['working'], why: '' },
    {
      name: 'the first working of several wins (no one at the first)',
      cands: ['198.18.0.50:6784', '198.18.0.2:6784', '198.18.0.2:9999'],
      state: 'punched', endpoint: '198.18.0.2:6784', results: [/^not needed \(\d+ probes, no answer yet\)$/, 'working', /^not needed/], why: '',
    },
    { name: 'no answer: failed, each candidate says how many probes went unanswered', cands: ['198.18.0.50:6784'], state: 'failed', endpoint: '', results: [`no answer to ${PUNCH_SCHEDULE.length} probes`], why: 'no answer from 1 candidate' },
    { name: 'an IPv6 candidate on an IPv4 socket cannot be sent', cands: ['[2001:2::2]:6784'], state: 'failed', endpoint: '', results: [/^cannot send: .*2001:2::2/], why: 'no candidate could be probed' },
    { name: 'an invalid endpoint is not probed', cands: ['no-such-thing'], state: 'failed', endpoint: '', results: [/^invalid: /], why: 'no candidate could be probed' },
    { name: 'no candidates at all', cands: [], state: 'failed', endpoint: '', results: [], why: 'no candidates' },
  ];

  it.each(cases)('$name', async ({ cands, state, endpoint, results, why }) => {
    const { net, clock, a, b } = await strangers();
    // (beta punches too, as the mesh's offer and answer make both sides do)
    b.sleeve.punch(a.id, candidates('198.18.0.1:6784'));
    a.sleeve.punch(b.id, candidates(...cands));
    await run(net, clock, 6000);
    const pb = peerOf(a, b);
    const attempt = pb.punch!;
    expect(attempt.state).toBe(state);
    expect(attempt.endpoint).toBe(endpoint);
    expect(attempt.why).toBe(why);
    expect(attempt.candidates.length).toBe(results.length);
    attempt.candidates.forEach((c, i) => expect(c.result).toMatch(results[i]!));
    expect(pb.pathUp).toBe(state === 'punched');
    expect(pb.punched).toBe(state === 'punched');
    if (state === 'punched') {
      expect(pb.directAddress).toBe('198.18.0.2');
      expect(pb.address).toBe('198.18.0.2'); // data goes there
      expect(a.sleeve.probeCounters().punched).toBe(1);
      expect(b.sleeve.probeCounters().answered).toBeGreaterThan(0);
    } else {
      expect(pb.hasDirect).toBe(false);
      expect(a.sleeve.probeCounters().punchFailed).toBe(1);
    }
  });

  it('stops probing once punched, and gets the round trip and our endpoint as the peer sees it', async () => {
    const { net, clock, a, b, observed } = await strangers();
    a.sleeve.punch(b.id, candidates('198.18.0.2:6784'));
    await run(net, clock, 300);
    const c = peerOf(a, b).punch!.candidates[0]!;
    const probes = c.probes;
    expect(c.replies).toBeGreaterThanOrEqual(1);
    await run(net, clock, 6000);
    expect(c.probes).toBe(probes);
    expect(probes).toBeLessThan(PUNCH_SCHEDULE.length);
    expect(peerOf(a, b).rttMs).toBeGreaterThanOrEqual(0);
    expect(observed[0]).toBe('198.18.0.1:6784');
  });

  it('an answer from another source than the probed candidate does not punch', async () => {
    const { net, clock, a, b } = await strangers();
    // beta's probe answers arrive from elsewhere (as through a NAT that maps per destination)
    net.filter = (d) => (d.fromAddress === '198.18.0.2' && (d.data[3]! & FLAG_PROBE) !== 0 ? [{ ...d, fromAddress: '198.18.0.77' }] : true);
    a.sleeve.punch(b.id, candidates('198.18.0.2:6784'));
    await run(net, clock, 6000);
    expect(peerOf(a, b).punch!.state).toBe('failed');
    expect(peerOf(a, b).pathUp).toBe(false);
    expect(a.sleeve.drops.probeUnmatched).toBe(PUNCH_SCHEDULE.length);
  });

  it('a forged probe is dropped and counted, and not answered', async () => {
    const { net, clock, a, b } = await strangers();
    net.capture = true;
    net.filter = (d) => d.fromAddress !== '198.18.0.1';
    a.sleeve.punch(b.id, candidates('198.18.0.2:6784'));
    await run(net, clock, 50);
    net.filter = undefined;
    const probe = net.captured.find((d) => d.fromAddress === '198.18.0.1' && (d.data[3]! & FLAG_PROBE) !== 0)!;
    const answered = b.sleeve.probeCounters().answered;
    const auth = b.sleeve.drops.auth;
    for (const at of [30, 40, probe.data.length - 1]) {
      const forged = Buffer.from(probe.data);
      forged[at] = forged[at]! ^ 1;
      net.inject({ address: '198.18.0.1', port: 6784 }, { address: '198.18.0.2', port: 6784 }, forged);
    }
    // the flag cleared: the AD no longer matches either
    const unflagged = Buffer.from(probe.data);
    unflagged[3] = unflagged[3]! & ~FLAG_PROBE;
    net.inject({ address: '198.18.0.1', port: 6784 }, { address: '198.18.0.2', port: 6784 }, unflagged);
    await run(net, clock, 1, 1);
    expect(b.sleeve.drops.auth).toBe(auth + 4);
    expect(b.sleeve.probeCounters().answered).toBe(answered);
  });

  it('a probe never moves the endpoint, never proves the path, but is answered to its source', async () => {
    const { net, clock, a, b } = await startedPair();
    const pa = peerOf(b, a);
    expect(pa.pathUp).toBe(true);
    // alpha's next probe (its newest datagram) is held back, then arrives from a new address
    net.capture = true;
    net.filter = (d) => !(d.fromAddress === '198.18.0.1' && (d.data[3]! & FLAG_PROBE) !== 0);
    a.sleeve.punch(b.id, candidates('198.18.0.2:6784'));
    await run(net, clock, 1, 1);
    net.filter = undefined;
    const probe = net.captured.filter((d) => d.fromAddress === '198.18.0.1' && (d.data[3]! & FLAG_PROBE) !== 0).at(-1)!;
    const before = { answered: b.sleeve.probeCounters().answered, changes: pa.pathChanges };
    net.inject({ address: '198.18.0.9', port: 7000 }, { address: '198.18.0.2', port: 6784 }, Buffer.from(probe.data));
    await run(net, clock, 1, 1);
    expect(pa.directAddress).toBe('198.18.0.1');
    expect(pa.directPort).toBe(6784);
    expect(pa.pathChanges).toBe(before.changes);
    expect(b.sleeve.probeCounters().answered).toBe(before.answered + 1);
    expect(net.captured.some((d) => d.fromAddress === '198.18.0.2' && d.toAddress === '198.18.0.9' && d.toPort === 7000)).toBe(true);
  });

  it('a punched endpoint survives the mesh\'s setDirect(undefined) while it works; another endpoint replaces it', async () => {
    const { net, clock, a, b } = await strangers();
    a.sleeve.punch(b.id, candidates('198.18.0.2:6784'));
    await run(net, clock, 500);
    const pb = peerOf(a, b);
    expect(pb.pathUp).toBe(true);
    a.sleeve.setDirect(b.id, undefined);
    expect([pb.hasDirect, pb.pathUp, pb.punched, pb.directAddress]).toEqual([true, true, true, '198.18.0.2']);
    a.sleeve.setDirect(b.id, { address: '198.18.0.2', port: 6784, family: 4 }); // the same: still punched
    expect(pb.punched).toBe(true);
    a.sleeve.setDirect(b.id, { address: '198.18.0.3', port: 6784, family: 4 });
    expect([pb.directAddress, pb.punched]).toEqual(['198.18.0.3', false]);
    a.sleeve.setDirect(b.id, undefined);
    expect(pb.hasDirect).toBe(false);
  });
});

describe('sleeve probes: hostile input from a peer that holds the keys', () => {
  it('answers at most 64 probe requests a second per peer; the rest are dropped and counted', async () => {
    const { net, clock, a, b } = await strangers();
    // beta's answers never come back, so alpha keeps probing 16 candidates (all beta) on schedule
    net.filter = (d) => !(d.fromAddress === '198.18.0.2' && (d.data[3]! & FLAG_PROBE) !== 0);
    a.sleeve.punch(b.id, candidates(...new Array<string>(16).fill('198.18.0.2:6784')));
    await run(net, clock, 6000);
    const sent = 16 * PUNCH_SCHEDULE.length;
    expect(a.sleeve.probeCounters().requests).toBe(sent);
    // bursts at 0, 100, 200, 400 and 800 ms fall in beta's first second: 80 requests, 64 answered
    expect(b.sleeve.drops.probeRateLimited).toBe(16);
    expect(b.sleeve.probeCounters().answered).toBe(sent - 16);
  });

  const bodies: { name: string; body: () => Buffer; len: number; drop?: 'probeMalformed' | 'probeUnmatched' }[] = [
    { name: 'an answer to no request of ours', body: () => Buffer.from([2, 4, 0x1a, 0x80, 0, 0, 0x30, 0x39, ...new Array<number>(20).fill(0)]), len: 28, drop: 'probeUnmatched' },
    { name: 'an unknown op', body: () => Buffer.from([9, 4, 0x1a, 0x80, ...new Array<number>(24).fill(0)]), len: 28 },
    { name: 'an unknown family', body: () => Buffer.from([1, 5, 0x1a, 0x80, ...new Array<number>(24).fill(0)]), len: 28 },
    { name: 'port 0', body: () => Buffer.from([1, 4, 0, 0, ...new Array<number>(24).fill(0)]), len: 28 },
    { name: 'a short body', body: () => Buffer.from([1, 4, 0x1a, 0x80, ...new Array<number>(16).fill(0)]), len: 20 },
    { name: 'a long body', body: () => Buffer.from([1, 4, 0x1a, 0x80, ...new Array<number>(28).fill(0)]), len: 32 },
  ];
  it.each(bodies)('a probe record with $name is dropped and counted, never answered', async ({ body, len, drop }) => {
    const { net, clock, a, b } = await strangers();
    const answered = b.sleeve.probeCounters().answered;
    a.sleeve.batchStart();
    expect(a.sleeve.tx.probe(peerOf(a, b), body(), len, '198.18.0.2', 6784)).toBe('');
    await run(net, clock, 1, 1);
    expect(b.sleeve.drops[drop ?? 'probeMalformed']).toBe(1);
    expect(b.sleeve.drops.auth).toBe(0);
    expect(peerOf(b, a).rttMs).toBe(-1);
    expect(b.sleeve.probeCounters().answered).toBe(answered);
  });
});

describe('sleeve observations', () => {
  it('a peer with a proven direct path gets an observation probe: round trip and our endpoint as it sees it', async () => {
    const net = new FakeNetwork();
    const clock = new FakeClock();
    const a = makeNode(net, clock, { name: 'alpha', address: '198.18.0.1' });
    const b = makeNode(net, clock, { name: 'beta', address: '198.18.0.2' });
    connect(a, b);
    const observed: string[] = [];
    a.sleeve.setEvents({ pathChange: () => undefined, rekeyWanted: () => undefined, observed: (p, ep) => observed.push(`${p.name === b.peer ? 'beta' : '?'} ${ep}`) });
    a.sleeve.start();
    b.sleeve.start();
    await run(net, clock, 1500);
    expect(observed).toEqual(['beta 198.18.0.1:6784']);
    expect(peerOf(a, b).rttMs).toBeGreaterThanOrEqual(0);
    await run(net, clock, 25_000, 500);
    expect(observed.length).toBe(2);
  });
});

describe('sleeve failover, hysteresis and keepalives', () => {
  /** Alpha and beta direct, both also reaching relay; the mesh named relay for both. */
  async function triangle() {
    const net = new FakeNetwork();
    const clock = new FakeClock();
    const sleeve = { heartbeatMs: 500 };
    const a = makeNode(net, clock, { name: 'alpha', address: '198.18.0.1', sleeve });
    const b = makeNode(net, clock, { name: 'beta', address: '198.18.0.2', sleeve });
    const r = makeNode(net, clock, { name: 'relay', address: '198.18.0.3', sleeve });
    connect(a, b);
    connect(a, r);
    connect(b, r);
    a.sleeve.setVia(b.id, r.id);
    b.sleeve.setVia(a.id, r.id);
    const paths: { at: number; up: boolean }[] = [];
    a.sleeve.setEvents({ pathChange: (p, up) => (p.name === b.peer ? paths.push({ at: clock.now(), up }) : undefined), rekeyWanted: () => undefined });
    for (const n of [a, b, r]) n.sleeve.start();
    await run(net, clock, 2000, 50);
    expect(peerOf(a, b).pathUp).toBe(true);
    let cut = false;
    net.filter = (d) => !(cut && ((d.fromAddress === '198.18.0.1' && d.toAddress === '198.18.0.2') || (d.fromAddress === '198.18.0.2' && d.toAddress === '198.18.0.1')));
    return { net, clock, a, b, r, paths, setCut: (v: boolean) => (cut = v) };
  }

  /** Runs `ms` in 20 ms steps; with `traffic`, alpha sends beta a frame each step (and beta alpha, with `both`). */
  async function flow(t: Awaited<ReturnType<typeof triangle>>, ms: number, traffic: boolean, seed = 0, both = false): Promise<void> {
    for (let s = 0; s < ms; s += 20) {
      if (traffic) sendFrames(t.a, 'beta', [{ frame: randomFrame(200, seed + s) }]);
      if (traffic && both) sendFrames(t.b, 'alpha', [{ frame: randomFrame(200, seed + s + 7) }]);
      await run(t.net, t.clock, 20, 20);
    }
  }

  it('under traffic a dead direct path fails over to the relay within the suspicion and fail window, and frames keep arriving', async () => {
    const t = await triangle();
    await flow(t, 1000, true);
    const cutAt = t.clock.now();
    t.setCut(true);
    await flow(t, 1000, true, 1000);
    const down = t.paths.find((p) => !p.up && p.at >= cutAt);
    expect(down).toBeDefined();
    // suspicion (150 ms) + fail (600 ms) after the last direct datagram, which came at most ~150 ms before the cut, plus timer steps
    expect(down!.at - cutAt).toBeLessThanOrEqual(1000);
    expect(peerOf(t.a, t.b).address).toBe('198.18.0.3');
    const got = t.b.received.length;
    await flow(t, 200, true, 5000);
    expect(t.b.received.length).toBeGreaterThan(got);
  });

  it('an idle peer keeps the dead interval: up a second after the cut, down by 3.5 heartbeats', async () => {
    const t = await triangle();
    const cutAt = t.clock.now();
    t.setCut(true);
    await flow(t, 1000, false);
    expect(peerOf(t.a, t.b).pathUp).toBe(true);
    await flow(t, 1500, false);
    expect(peerOf(t.a, t.b).pathUp).toBe(false);
    expect(t.paths.find((p) => !p.up)!.at - cutAt).toBeGreaterThan(1000);
  });

  it('hysteresis: back to direct only after direct answers for the hold time, not on the first heartbeat, while the relay carries the peer', async () => {
    const t = await triangle();
    await flow(t, 500, true, 0, true);
    t.setCut(true);
    await flow(t, 1500, true, 1000, true);
    const pb = peerOf(t.a, t.b);
    expect(pb.pathUp).toBe(false);
    expect(pb.relayedRx).toBeGreaterThan(0); // (beta's frames came through the relay)
    const healAt = t.clock.now();
    t.setCut(false);
    await flow(t, 600, true, 3000, true);
    expect(pb.lastDirectRx).toBeGreaterThan(healAt); // direct datagrams came back...
    expect(pb.pathUp).toBe(false); // ...but not for long enough
    expect(pb.address).toBe('198.18.0.3');
    await flow(t, 1500, true, 4000, true);
    expect(pb.pathUp).toBe(true);
    const up = t.paths.at(-1)!;
    expect(up.up).toBe(true);
    expect(up.at - healAt).toBeGreaterThanOrEqual(1000);
    expect(pb.address).toBe('198.18.0.2');
  });

  it('no hold for a peer that was silent on every path (a restart, a healed partition): its path comes back with the first direct heartbeat', async () => {
    const t = await triangle();
    await flow(t, 500, true, 0, true);
    // beta silent everywhere, as if stopped: nothing to or from it, direct or relayed
    t.net.filter = (d) => d.fromAddress !== '198.18.0.2' && d.toAddress !== '198.18.0.2';
    await flow(t, 3000, false);
    const pb = peerOf(t.a, t.b);
    expect(pb.pathUp).toBe(false);
    const healAt = t.clock.now();
    t.net.filter = () => true;
    await flow(t, 700, false);
    expect(pb.pathUp).toBe(true);
    expect(t.paths.at(-1)!.at - healAt).toBeLessThan(1000); // (no 1 s hold: nothing came through a relay)
  });

  it('keepalives: no heartbeat goes to a peer while data flows to it both ways; they resume when it stops', async () => {
    const t = await triangle();
    t.net.capture = true;
    // (a heartbeat message: header 24 + record 4 + body 8 + the 16-byte name + tag 16)
    const heartbeatsFromA = (): number => t.net.captured.filter((d) => d.fromAddress === '198.18.0.1' && d.toAddress === '198.18.0.2' && d.data.length === 68).length;
    for (let s = 0; s < 3000; s += 20) {
      sendFrames(t.a, 'beta', [{ frame: randomFrame(200, s) }]);
      sendFrames(t.b, 'alpha', [{ frame: randomFrame(200, s + 1) }]);
      await run(t.net, t.clock, 20, 20);
    }
    expect(heartbeatsFromA()).toBe(0);
    expect(peerOf(t.a, t.b).pathUp).toBe(true);
    await flow(t, 3000, false);
    expect(heartbeatsFromA()).toBeGreaterThanOrEqual(5);
  });
});

describe('round trip kept per peer (nextRtt)', () => {
  it.each<[number, number, number]>([
    [-1, 12.5, 12.5], // first sample
    [300, 0.4, 0.4], // a start-up sample is replaced by the first good one
    [10, 10, 10],
    [1, 9, 2], // a rise is smoothed: (7 + 9) / 8
    [0.4, 0.6, 0.43], // rounded to 0.01 ms: 0.425
    [-1, 5.389137000005576, 5.39],
  ])('current %d, sample %d → %d', (current, sample, want) => {
    expect(nextRtt(current, sample)).toBe(want);
  });
});
