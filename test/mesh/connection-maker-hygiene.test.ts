import { describe, expect, it } from 'vitest';
import { ConnectionMaker } from '../../src/mesh/connection-maker.js';
import { FakeClock } from '../fakes/fake-clock.js';
import { recordingLogger } from '../fakes/recording-logger.js';

const A = 'aaaaaaaaaaaaaaaa';
const B = 'bbbbbbbbbbbbbbbb';
const SELF = '0000000000000001';
const LEFT_RETRY_MS = 600_000;

function world() {
  const clock = new FakeClock();
  const dials: { host: string; port: number; attempt: object }[] = [];
  const reachable = new Set<string>();
  const answers = new Map<string, readonly string[] | Error>();
  const resolved: string[] = [];
  const { logger, lines } = recordingLogger('info');
  const m = new ConnectionMaker(
    {
      clock,
      self: SELF,
      connected: () => false,
      random: () => 0.5,
      reachable: (p) => reachable.has(p),
      resolve: (host) => {
        resolved.push(host);
        const a = answers.get(host);
        if (a === undefined) return Promise.reject(Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' }));
        return a instanceof Error ? Promise.reject(a) : Promise.resolve(a);
      },
      dial: (host, port) => {
        const attempt = {};
        dials.push({ host, port, attempt });
        return attempt;
      },
      logger,
    },
    { backoffBaseMs: 1000, backoffCapMs: 8000, leaveAfter: 4, leftRetryMs: LEFT_RETRY_MS },
  );
  /** Ticks (100 ms steps) failing every dial until `n` dials failed or `maxMs` passed. */
  const failDials = (n: number, why = 'connect ENETUNREACH', maxMs = 120_000) => {
    let failed = 0;
    for (let t = 0; t < maxMs && failed < n; t += 100) {
      const before = dials.length;
      m.tick();
      for (const d of dials.slice(before)) {
        m.closed(d.attempt, why, false);
        failed++;
      }
      clock.advance(100);
    }
    return failed;
  };
  const flush = () => new Promise((r) => setImmediate(r));
  return { clock, m, dials, reachable, answers, resolved, lines, failDials, flush };
}

const msgs = (lines: Record<string, unknown>[]) => lines.map((l) => String(l.msg));

describe('connection maker: dial hygiene', () => {
  it.each([
    // kind, peer reachable, failures, state after, the one log line (or none)
    ['learned', true, 4, 'left', '198.19.1.2:6784 tried 4 times (connect ENETUNREACH); its peer is reachable through the mesh: leaving it to the punched path'],
    ['learned', true, 3, 'failed', undefined],
    ['learned', false, 6, 'failed', undefined],
    ['configured', true, 6, 'failed', '198.19.1.2:6784 tried 4 times (connect ENETUNREACH); its peer is reachable through the mesh, but it is configured (--peer): it keeps being retried with backoff'],
    ['configured', false, 6, 'failed', undefined],
    ['discovered', true, 6, 'failed', '198.19.1.2:6784 tried 4 times (connect ENETUNREACH); its peer is reachable through the mesh, but it comes from its Node: it keeps being retried with backoff'],
  ] as const)('a %s target, peer reachable %s, after %i failures: %s', (kind, reach, n, state, line) => {
    const w = world();
    if (reach) w.reachable.add(A);
    if (kind === 'learned') w.m.learn(new Map([[A, ['198.19.1.2:6784']]]));
    if (kind === 'configured') w.m.add('198.19.1.2:6784', true, A);
    if (kind === 'discovered') w.m.setDiscovered([{ endpoint: '198.19.1.2:6784', peer: A }]);
    expect(w.failDials(n)).toBe(n);
    w.m.tick();
    expect(w.m.status()[0]).toMatchObject({ state, attempts: n, lastError: 'connect ENETUNREACH' });
    expect(msgs(w.lines)).toEqual(line === undefined ? [] : [line]);
    if (state === 'left') expect(w.m.status()[0]!.retryInMs).toBe(LEFT_RETRY_MS - 100); // failDials steps 100 ms past the last failure
  });

  it('a left target is dialled again only after the long interval, and left again silently when it fails', () => {
    const w = world();
    w.reachable.add(A);
    w.m.learn(new Map([[A, ['198.19.1.2:6784']]]));
    w.failDials(4);
    const dialsWhenLeft = w.dials.length;
    w.clock.advance(LEFT_RETRY_MS - 1000);
    w.m.tick();
    expect(w.dials.length).toBe(dialsWhenLeft);
    w.clock.advance(1000);
    w.m.tick();
    expect(w.dials.length).toBe(dialsWhenLeft + 1);
    w.m.closed(w.dials.at(-1)!.attempt, 'connect ENETUNREACH', false);
    expect(w.m.status()[0]).toMatchObject({ state: 'left', attempts: 5, retryInMs: LEFT_RETRY_MS });
    expect(w.lines.length).toBe(1);
  });

  it('a left target goes back to the normal backoff when its peer is no longer reachable', () => {
    const w = world();
    w.reachable.add(A);
    w.m.learn(new Map([[A, ['198.19.1.2:6784']]]));
    w.failDials(4);
    w.reachable.delete(A);
    const before = w.dials.length;
    w.m.tick();
    expect(w.dials.length).toBe(before + 1); // at once, not after 10 minutes
    w.m.closed(w.dials.at(-1)!.attempt, 'connect ENETUNREACH', false);
    expect(w.m.status()[0]).toMatchObject({ state: 'failed', attempts: 1, retryInMs: 1000 });
  });

  it('a left target is dialled again at once when its peer announces other endpoints', () => {
    const w = world();
    w.reachable.add(A).add(B);
    w.m.learn(new Map([[A, ['198.19.1.2:6784']], [B, ['198.19.2.2:6784']]]));
    w.failDials(8);
    expect(w.m.status().map((s) => s.state)).toEqual(['left', 'left']);
    w.m.learn(new Map([[A, ['198.19.1.2:6784']], [B, ['198.19.2.2:6784']]])); // same: nothing moves
    expect(w.m.status().map((s) => s.state)).toEqual(['left', 'left']);
    w.m.learn(new Map([[A, ['198.19.1.2:6784', '198.18.0.9:6784']], [B, ['198.19.2.2:6784']]]));
    const before = w.dials.length;
    w.m.tick();
    expect(w.dials.slice(before).map((d) => d.host).sort()).toEqual(['198.18.0.9', '198.19.1.2']);
    expect(w.m.status().find((s) => s.address === '198.19.2.2:6784')!.state).toBe('left');
  });

  it('a target that failed while its peer was unreachable is left as soon as the peer becomes reachable', () => {
    const w = world();
    w.m.learn(new Map([[A, ['198.19.1.2:6784']]]));
    w.failDials(5);
    w.m.tick();
    expect(w.m.status()[0]!.state).toBe('failed');
    w.reachable.add(A);
    const before = w.dials.length;
    w.m.tick();
    expect(w.dials.length).toBe(before);
    expect(w.m.status()[0]).toMatchObject({ state: 'left', attempts: 5 });
    expect(msgs(w.lines)).toEqual(['198.19.1.2:6784 tried 5 times (connect ENETUNREACH); its peer is reachable through the mesh: leaving it to the punched path']);
  });
});

describe('connection maker: host names', () => {
  it('resolves at each attempt and tries every address in order until one connects', async () => {
    const w = world();
    w.answers.set('node-b.example', ['198.18.0.5', '2001:2::5']);
    w.m.add('Node-B.example:6784', true);
    w.m.tick();
    expect(w.m.status()[0]).toMatchObject({ address: 'node-b.example:6784', state: 'connecting' });
    await w.flush();
    expect(w.dials.map((d) => `${d.host} ${d.port}`)).toEqual(['198.18.0.5 6784']);
    w.m.closed(w.dials[0]!.attempt, 'connect ECONNREFUSED', false);
    expect(w.m.status()[0]).toMatchObject({ state: 'connecting', attempts: 0, lastError: '198.18.0.5:6784: connect ECONNREFUSED' });
    w.m.tick();
    expect(w.dials.map((d) => d.host)).toEqual(['198.18.0.5', '2001:2::5']);
    w.m.closed(w.dials[1]!.attempt, 'connect ENETUNREACH', false);
    expect(w.m.status()[0]).toMatchObject({ state: 'failed', attempts: 1, lastError: '[2001:2::5]:6784: connect ENETUNREACH', resolved: '2001:2::5', retryInMs: 1000 });
    // The next attempt asks the resolver again and dials what it says now.
    w.answers.set('node-b.example', ['198.18.0.7']);
    w.clock.advance(1000);
    w.m.tick();
    await w.flush();
    expect(w.resolved).toEqual(['node-b.example', 'node-b.example']);
    expect(w.dials.at(-1)!.host).toBe('198.18.0.7');
    w.m.established(w.dials.at(-1)!.attempt, B);
    expect(w.m.status()[0]).toMatchObject({ state: 'established', attempts: 0, resolved: '198.18.0.7', peer: B, lastError: undefined });
  });

  it.each([
    ['a name that does not resolve', undefined, 'resolve nowhere.example: getaddrinfo ENOTFOUND nowhere.example'],
    ['a resolver failure', Object.assign(new Error('queryA ETIMEOUT nowhere.example'), { code: 'ETIMEOUT' }), 'resolve nowhere.example: queryA ETIMEOUT nowhere.example'],
    ['a name without addresses', [], 'resolve nowhere.example: no addresses'],
  ] as const)('%s is a failure with the reason, backed off, never dialled', async (_case, answer, error) => {
    const w = world();
    if (answer !== undefined) w.answers.set('nowhere.example', answer as readonly string[] | Error);
    w.m.add('nowhere.example:6784', true);
    w.m.tick();
    await w.flush();
    expect(w.dials).toEqual([]);
    expect(w.m.status()[0]).toMatchObject({ state: 'failed', attempts: 1, lastError: error, retryInMs: 1000 });
    w.clock.advance(500);
    w.m.tick();
    expect(w.resolved.length).toBe(1);
    w.clock.advance(500);
    w.m.tick();
    await w.flush();
    expect(w.resolved.length).toBe(2);
    expect(w.m.status()[0]).toMatchObject({ attempts: 2, retryInMs: 2000 });
  });

  it('takes names only from the configuration: learned and discovered names are ignored', () => {
    const w = world();
    w.m.learn(new Map([[A, ['evil.example:6784']]]));
    w.m.setDiscovered([{ endpoint: 'node-a.example:6784', peer: A }]);
    w.m.tick();
    expect(w.m.status()).toEqual([]);
    expect(w.resolved).toEqual([]);
  });

  it('dials nothing when a resolution answers after stop', async () => {
    const w = world();
    w.answers.set('node-b.example', ['198.18.0.5']);
    w.m.add('node-b.example:6784', true);
    w.m.tick();
    w.m.stop();
    await w.flush();
    w.m.tick();
    expect(w.dials).toEqual([]);
  });
});
