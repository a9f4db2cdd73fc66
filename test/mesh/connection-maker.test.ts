import { describe, expect, it } from 'vitest';
import { ConnectionMaker, parseTarget } from '../../src/mesh/connection-maker.js';
import { FakeClock } from '../fakes/fake-clock.js';

const A = 'aaaaaaaaaaaaaaaa';
const B = 'bbbbbbbbbbbbbbbb';
const SELF = '0000000000000001';

function maker(opts: { failDial?: boolean } = {}) {
  const clock = new FakeClock();
  const dials: { host: string; port: number; attempt: object }[] = [];
  const connected = new Set<string>();
  const m = new ConnectionMaker(
    {
      clock,
      self: SELF,
      connected: (p) => connected.has(p),
      random: () => 0.5, // no jitter: exact schedule
      dial: (host, port) => {
        if (opts.failDial === true) throw new Error('EINVAL');
        const attempt = {};
        dials.push({ host, port, attempt });
        return attempt;
      },
    },
    { backoffBaseMs: 1000, backoffCapMs: 8000 },
  );
  return { clock, m, dials, connected };
}

describe('connection maker', () => {
  it('parses IPv4 and IPv6 targets and refuses malformed ones', () => {
    expect(parseTarget('198.18.0.1:6784')).toEqual({ key: '198.18.0.1:6784', host: '198.18.0.1', port: 6784, named: false });
    expect(parseTarget('[fd00::1]:6784')).toEqual({ key: '[fd00::1]:6784', host: 'fd00::1', port: 6784, named: false });
    expect(parseTarget('node-1.example:6784')).toBeUndefined(); // names only where allowed (configured targets)
    expect(parseTarget('Node-1.example:6784', true)).toEqual({ key: 'node-1.example:6784', host: 'node-1.example', port: 6784, named: true });
    expect(parseTarget('198.18.0.1')).toBeUndefined();
    expect(parseTarget('198.18.0.1:0')).toBeUndefined();
  });

  it('backs off exponentially up to the cap, and resets once established', () => {
    const { clock, m, dials } = maker();
    m.add('198.18.0.2:6784', true);
    const times: number[] = [];
    for (let t = 0; t < 40_000; t += 100) {
      const before = dials.length;
      m.tick();
      if (dials.length > before) {
        times.push(clock.now());
        m.closed(dials.at(-1)!.attempt, 'ECONNREFUSED', false);
      }
      clock.advance(100);
    }
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    expect(gaps.slice(0, 5)).toEqual([1000, 2000, 4000, 8000, 8000]);
    const st = m.status()[0]!;
    expect(st).toMatchObject({ state: 'failed', lastError: 'ECONNREFUSED', configured: true });
    expect(st.retryInMs).toBeGreaterThan(0);
    m.tick();
    clock.advance(8000);
    m.tick();
    m.established(dials.at(-1)!.attempt, B);
    expect(m.status()[0]).toMatchObject({ state: 'established', attempts: 0, peer: B });
  });

  it('does not dial peers already connected or itself; forgets learned targets of a forgotten peer', () => {
    const { m, dials, connected } = maker();
    connected.add(A);
    m.learn(new Map([[A, ['198.18.0.3:6784']], [B, ['198.18.0.4:6784']], [SELF, ['198.18.0.1:6784']]]));
    m.tick();
    expect(dials.map((d) => d.host)).toEqual(['198.18.0.4']);
    m.closed(dials[0]!.attempt, 'timeout', false);
    m.forget(B);
    expect(m.status().map((s) => s.address)).toEqual(['198.18.0.3:6784']);
    m.learn(new Map()); // A's endpoint vanished from topology too
    expect(m.status()).toEqual([]);
  });

  it('keeps configured targets whatever topology says, and counts a dial that cannot start as a failure', () => {
    const { m } = maker({ failDial: true });
    m.add('198.18.0.2:6784', true);
    m.learn(new Map());
    m.tick();
    expect(m.status()).toEqual([expect.objectContaining({ address: '198.18.0.2:6784', state: 'failed', lastError: 'EINVAL', attempts: 1 })]);
  });

  it('a connection that lost the tie-break leaves the target established, with no backoff', () => {
    const { m, dials } = maker();
    m.add('198.18.0.2:6784', true);
    m.tick();
    m.closed(dials[0]!.attempt, 'duplicate', true);
    expect(m.status()[0]).toMatchObject({ state: 'established', attempts: 0 });
  });

  it('dials discovered targets, keeps them whatever topology says, and stops redialling those dropped', () => {
    const { clock, m, dials } = maker();
    m.add('198.18.0.2:6784', true);
    m.setDiscovered([{ endpoint: '198.18.0.2:6784', peer: A }, { endpoint: '198.18.0.3:6784', peer: B }, { endpoint: '198.18.0.1:6784', peer: SELF }, { endpoint: 'bad' }]);
    m.learn(new Map());
    m.tick();
    expect(dials.map((d) => d.host).sort()).toEqual(['198.18.0.2', '198.18.0.3']);
    expect(m.status().map((s) => [s.address, s.configured, s.discovered])).toEqual([
      ['198.18.0.2:6784', true, true],
      ['198.18.0.3:6784', false, true],
    ]);
    for (const d of dials) m.closed(d.attempt, 'ECONNREFUSED', false);
    m.setDiscovered([]);
    // The --peer target stays; the discovered-only one is gone and never dialled again.
    expect(m.status().map((s) => [s.address, s.discovered])).toEqual([['198.18.0.2:6784', false]]);
    clock.advance(60_000);
    m.tick();
    expect(dials.slice(2).map((d) => d.host)).toEqual(['198.18.0.2']);
  });
});
