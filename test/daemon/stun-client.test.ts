import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/core/logger.js';
import { parseHostPort, type HostPort } from '../../src/core/host-port.js';
import { StunClient } from '../../src/daemon/stun-client.js';
import { FakeClock } from '../fakes/fake-clock.js';

const hp = (text: string): HostPort => parseHostPort(text) as HostPort;
const flush = () => new Promise((r) => setImmediate(r));

function setup(servers: string[], opts: { resolve?: (host: string) => Promise<readonly string[]>; send?: (address: string, port: number) => string } = {}) {
  const clock = new FakeClock();
  const sent: { at: number; to: string }[] = [];
  const handed: string[][] = [];
  const client = new StunClient(
    {
      clock,
      logger: silentLogger,
      resolve: opts.resolve ?? (async () => ['198.18.0.7']),
      send: (address, port) => {
        const why = opts.send?.(address, port) ?? '';
        if (why === '') sent.push({ at: clock.now(), to: `${address}:${port}` });
        return why;
      },
      setStun: (list) => handed.push([...list]),
    },
    { servers: servers.map(hp) },
  );
  return { clock, client, sent, handed };
}

describe('STUN client', () => {
  it('asks at start, again every 5 min while answered, and hands the mapped endpoint over once', async () => {
    const { clock, client, sent, handed } = setup(['198.18.0.1:3478']);
    client.start();
    await flush();
    expect(sent).toEqual([{ at: 0, to: '198.18.0.1:3478' }]);
    expect(client.status()).toEqual([{ server: '198.18.0.1:3478', resolved: '198.18.0.1', state: 'waiting', mapped: '', lastError: '', requests: 1, answers: 0 }]);
    clock.advance(100);
    client.mapped('198.18.0.1:3478', { address: '198.18.0.201', port: 6784, family: 4 });
    expect(handed).toEqual([['198.18.0.201:6784']]);
    expect(client.status()[0]).toMatchObject({ state: 'mapped', mapped: '198.18.0.201:6784', requests: 1, answers: 1 });
    clock.advance(300_000 - 1);
    await flush();
    expect(sent).toHaveLength(1);
    clock.advance(1);
    await flush();
    expect(sent.map((s) => s.at)).toEqual([0, 300_100]);
    client.mapped('198.18.0.1:3478', { address: '198.18.0.201', port: 6784, family: 4 });
    expect(handed).toHaveLength(1); // the same endpoint: nothing new to hand over
    client.stop();
  });

  it('without an answer in 3 s: failed with the reason, retried after 3 s doubling to 5 min; an answer resets it', async () => {
    const { clock, client, sent, handed } = setup(['198.18.0.1:3478']);
    client.start();
    await flush();
    for (let i = 0; i < 12; i++) {
      clock.advance(1000);
      await flush();
    }
    expect(client.status()[0]).toMatchObject({ state: 'failed', lastError: 'no answer from 198.18.0.1:3478 in 3 s', mapped: '' });
    // Requests at 0, then each 3 s timeout plus a backoff of 3, 6, 12, ... s (at most 5 min).
    clock.advance(2_000_000);
    await flush();
    const gaps = sent.slice(1).map((s, i) => s.at - sent[i]!.at);
    expect(gaps.slice(0, 8)).toEqual([6000, 9000, 15_000, 27_000, 51_000, 99_000, 195_000, 303_000]);
    expect(new Set(gaps.slice(7))).toEqual(new Set([303_000]));
    expect(handed).toEqual([]);
    // An answer to the next request: mapped, and the next failure starts the backoff at 3 s again.
    const before = sent.length;
    while (sent.length === before) {
      clock.advance(1000);
      await flush();
    }
    client.mapped('198.18.0.1:3478', { address: '198.18.0.201', port: 6784, family: 4 });
    expect(handed).toEqual([['198.18.0.201:6784']]);
    const answeredAt = clock.now();
    clock.advance(300_000 + 3000);
    await flush();
    expect(client.status()[0]!.state).toBe('failed');
    expect(handed.at(-1)).toEqual([]);
    clock.advance(3000);
    await flush();
    expect(sent.at(-1)!.at).toBe(answeredAt + 306_000);
    client.stop();
  });

  it('ignores an answer from a server it is not waiting for', async () => {
    const { client, handed } = setup(['198.18.0.1:3478']);
    client.start();
    await flush();
    client.mapped('198.18.0.9:3478', { address: '198.18.0.201', port: 6784, family: 4 });
    expect(handed).toEqual([]);
    expect(client.status()[0]!.state).toBe('waiting');
    client.stop();
  });

  it('resolves host names at each attempt; a name that does not resolve, or a send refused, is a failure with its reason', async () => {
    let addresses: string[] = [];
    const { clock, client, sent } = setup(['stun.example:3478', '[2001:2::1]:3478'], {
      resolve: async (host) => {
        if (addresses.length === 0) throw new Error(`getaddrinfo ENOTFOUND ${host}`);
        return addresses;
      },
      send: (address) => (address.includes(':') ? 'Invalid argument' : ''),
    });
    client.start();
    await flush();
    expect(client.status()).toMatchObject([
      { server: 'stun.example:3478', resolved: '', state: 'failed', lastError: 'cannot resolve stun.example: getaddrinfo ENOTFOUND stun.example' },
      { server: '[2001:2::1]:3478', resolved: '2001:2::1', state: 'failed', lastError: 'cannot send to [2001:2::1]:3478: Invalid argument', requests: 0 },
    ]);
    addresses = ['198.18.0.5', '198.18.0.6'];
    clock.advance(3000);
    await flush();
    expect(sent).toEqual([{ at: 3000, to: '198.18.0.5:3478' }]);
    client.mapped('198.18.0.5:3478', { address: '198.18.0.201', port: 6784, family: 4 });
    expect(client.status()[0]).toMatchObject({ resolved: '198.18.0.5', state: 'mapped', mapped: '198.18.0.201:6784' });
    client.stop();
  });

  it('hands over each mapped endpoint once, whichever servers found it', async () => {
    const { client, handed } = setup(['198.18.0.1:3478', '198.18.0.2:3478', '198.18.0.3:3478']);
    client.start();
    await flush();
    client.mapped('198.18.0.1:3478', { address: '198.18.0.201', port: 6784, family: 4 });
    client.mapped('198.18.0.2:3478', { address: '198.18.0.201', port: 6784, family: 4 });
    client.mapped('198.18.0.3:3478', { address: '198.18.0.202', port: 1234, family: 4 });
    expect(handed).toEqual([['198.18.0.201:6784'], ['198.18.0.201:6784', '198.18.0.202:1234']]);
    client.stop();
  });

  it('stops: no request after stop, answers ignored', async () => {
    const { clock, client, sent } = setup(['198.18.0.1:3478']);
    client.start();
    await flush();
    client.stop();
    clock.advance(3_600_000);
    await flush();
    expect(sent).toHaveLength(1);
  });
});
