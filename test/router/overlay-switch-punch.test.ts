/**
 * The OverlaySwitch's side of hole punching (issue 18): `punch` over the sleeve's probes, the
 * reason of a punched path, round trips and observations, and the punched endpoint kept through
 * the mesh's setDirect(undefined). Two sleeves on the fake UDP network, no fast path.
 */
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/core/logger.js';
import { OverlaySwitch } from '../../src/router/overlay-switch.js';
import { punchStatus } from '../../src/daemon/status.js';
import { FakeClock, FakeNetwork, SECRET, makeNode, run, testKey } from './sleeve-harness.js';

async function switched() {
  const net = new FakeNetwork();
  const clock = new FakeClock();
  const sleeve = { heartbeatMs: 500 };
  const a = makeNode(net, clock, { name: 'alpha', address: '198.18.0.1', sleeve });
  const b = makeNode(net, clock, { name: 'beta', address: '198.18.0.2', sleeve });
  const swA = new OverlaySwitch({ sleeve: a.sleeve, clock, logger: silentLogger });
  const swB = new OverlaySwitch({ sleeve: b.sleeve, clock, logger: silentLogger });
  // what the mesh does after a pair handshake, without a mesh connection (no direct endpoint)
  const keys = (self: typeof a, other: typeof a) => ({
    name: other.peer, id: other.id, probe: testKey(SECRET, 'probe', '', 1),
    tx: { keyId: other === b ? 2001 : 1001, key: testKey(SECRET, self.peer, other.peer, 1) },
    rx: { keyId: other === b ? 1001 : 2001, key: testKey(SECRET, other.peer, self.peer, 1) },
  });
  swA.installKeys(keys(a, b), false);
  swB.installKeys(keys(b, a), false);
  for (const n of [a, b]) n.sleeve.start();
  swA.start();
  swB.start();
  await run(net, clock, 300);
  return { net, clock, a, b, swA, swB };
}

describe('OverlaySwitch: hole punching', () => {
  it('punches with both sides probing: direct, reason "punched (via ...)", round trip, observations; the mesh clearing the endpoint leaves it', async () => {
    const { net, clock, a, b, swA, swB } = await switched();
    const observed: string[] = [];
    swA.onObserved((by, ep) => observed.push(`${by === b.peer ? 'beta' : by} ${ep}`));
    expect(swA.pathOf(b.peer)!.path).not.toBe('direct');
    swA.punch(b.peer, [{ endpoint: '198.18.0.99:6784', kind: 'local' }, { endpoint: '198.18.0.2:6784', kind: 'reflexive' }, { endpoint: 'bogus', kind: 'stun' }]);
    swB.punch(a.peer, [{ endpoint: '198.18.0.1:6784', kind: 'advertised' }]);
    await run(net, clock, 1000);
    const path = swA.pathOf(b.peer)!;
    expect(path).toMatchObject({ path: 'direct', reason: 'punched (via 198.18.0.2:6784)', punched: true });
    expect(path.rttMs).toBeGreaterThanOrEqual(0);
    expect(swA.rttMs(b.peer)).toBe(path.rttMs);
    expect(observed[0]).toBe('beta 198.18.0.1:6784');
    const st = punchStatus(path.punch, clock.now())!;
    expect(st).toMatchObject({ state: 'punched', attempts: 1, endpoint: '198.18.0.2:6784', why: '' });
    expect(st.candidates.map((c) => [c.endpoint, c.kind, c.result.replace(/\d+ probes/, 'N probes')])).toEqual([
      ['198.18.0.99:6784', 'local', 'not needed (N probes, no answer yet)'],
      ['198.18.0.2:6784', 'reflexive', 'working'],
      ['bogus', 'stun', 'invalid: "bogus" is not an IP address with an optional port (use ADDR:PORT or [V6ADDR]:PORT)'],
    ]);
    swA.setDirect(b.peer, undefined); // the mesh connection closed: the punched path stays
    await run(net, clock, 3000);
    expect(swA.pathOf(b.peer)).toMatchObject({ path: 'direct', punched: true });
    expect(swA.pathUp(b.peer)).toBe(true);
  });

  it('a peer never punched has no punch report and no round trip until its direct path is proven', async () => {
    const { swA, b } = await switched();
    expect(swA.pathOf(b.peer)).toMatchObject({ punched: false, punch: undefined, rttMs: undefined });
    expect(swA.rttMs(b.peer)).toBeUndefined();
    expect(swA.rttMs('0000000000000000')).toBeUndefined();
    swA.punch('0000000000000000', [{ endpoint: '198.18.0.2:6784', kind: 'local' }]); // unknown: ignored
  });
});
