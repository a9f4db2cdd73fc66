/**
 * Roaming (WireGuard's rule): a peer's endpoint moves only on a datagram that authenticates
 * under its current receive key, was sent direct (RELAYED clear, full hop count), and is newer
 * than every datagram seen under that key. Every other datagram, however authentic, leaves the
 * endpoint where it is.
 */
import { describe, expect, it } from 'vitest';
import { FLAG_RELAYED, TYPE_DATA } from '../../src/router/sleeve/wire.js';
import type { Datagram } from '../fakes/fake-udp.js';
import { FakeClock, FakeNetwork, connect, makeNode, randomFrame, run, sendFrames } from '../router/sleeve-harness.js';

const ATTACKER = { address: '198.18.0.66', port: 6784 };
const A = { address: '198.18.0.1', port: 6784 };
const B = { address: '198.18.0.2', port: 6784 };

async function pair() {
  const net = new FakeNetwork();
  const clock = new FakeClock();
  const a = makeNode(net, clock, { name: 'alpha', address: A.address });
  const b = makeNode(net, clock, { name: 'beta', address: B.address });
  connect(a, b);
  a.sleeve.start();
  b.sleeve.start();
  net.capture = true;
  await run(net, clock, 1500);
  return { net, clock, a, b, pa: b.sleeve.peers[0]! };
}

/** Holds back alpha's next `n` data messages to beta (one frame each) and returns them. */
async function holdBack(net: FakeNetwork, clock: FakeClock, a: ReturnType<typeof makeNode>, n: number, seed: number): Promise<Datagram[]> {
  const held: Datagram[] = [];
  net.filter = (d) => {
    if (d.fromAddress === A.address && d.data[0] === TYPE_DATA && held.length < n) {
      held.push(d);
      return false;
    }
    return true;
  };
  for (let i = 0; i < n; i++) sendFrames(a, 'beta', [{ frame: randomFrame(100, seed + i) }]);
  // (1 ms: no heartbeat of alpha's, which asks for an answer 150 ms into traffic, comes after them)
  await run(net, clock, 1, 1);
  net.filter = undefined;
  return held;
}

describe('sleeve roaming under attack', () => {
  it('follows a peer that really moved: an authentic, direct, newest datagram from a new address', async () => {
    const { net, clock, a, pa } = await pair();
    const [d] = await holdBack(net, clock, a, 1, 1);
    net.inject({ address: '198.18.0.9', port: 7000 }, B, Buffer.from(d!.data));
    await run(net, clock, 1, 1);
    expect(pa.directAddress).toBe('198.18.0.9');
    expect(pa.directPort).toBe(7000);
  });

  const cases: { name: string; attack: (s: Awaited<ReturnType<typeof pair>>) => Promise<void> }[] = [
    {
      name: 'a replay of a datagram already delivered, from another address',
      attack: async ({ net, clock, a }) => {
        sendFrames(a, 'beta', [{ frame: randomFrame(100, 2) }]);
        await run(net, clock, 20);
        const last = net.captured.filter((d) => d.fromAddress === A.address && d.data[0] === TYPE_DATA).at(-1)!;
        net.inject(ATTACKER, B, Buffer.from(last.data));
      },
    },
    {
      name: 'an authentic datagram held back until newer ones arrived, then sent from another address',
      attack: async ({ net, clock, a }) => {
        const [old] = await holdBack(net, clock, a, 1, 3);
        sendFrames(a, 'beta', [{ frame: randomFrame(100, 4) }]);
        await run(net, clock, 20);
        net.inject(ATTACKER, B, Buffer.from(old!.data));
      },
    },
    {
      name: 'the newest datagram under the previous key (after a rekey), from another address',
      attack: async ({ net, clock, a, b }) => {
        const [old] = await holdBack(net, clock, a, 1, 5);
        connect(a, b, { epoch: 2 });
        sendFrames(a, 'beta', [{ frame: randomFrame(100, 6) }]);
        await run(net, clock, 20);
        net.inject(ATTACKER, B, Buffer.from(old!.data));
      },
    },
    {
      name: 'an authentic datagram with its counter set to 2^64-1, from another address',
      attack: async ({ net, clock, a }) => {
        const [d] = await holdBack(net, clock, a, 1, 7);
        const x = Buffer.from(d!.data);
        x.writeBigUInt64BE(2n ** 64n - 1n, 16);
        net.inject(ATTACKER, B, x);
      },
    },
    {
      name: 'a datagram alpha sent through a relay, re-sent from another address with the full hop count',
      attack: async ({ net, clock, a, b }) => {
        // alpha loses its direct path to beta and sends through a relay (.7); what the relay
        // forwards never arrives
        const relay = makeNode(net, clock, { name: 'relay', address: '198.18.0.7' });
        connect(a, relay);
        connect(relay, b);
        relay.sleeve.start();
        a.sleeve.setVia(b.id, relay.id);
        const ab = (d: Datagram) => (d.fromAddress === A.address && d.toAddress === B.address) || (d.fromAddress === B.address && d.toAddress === A.address);
        net.filter = (d) => !ab(d) && !(d.fromAddress === '198.18.0.7' && d.toAddress === B.address);
        await run(net, clock, 5000);
        sendFrames(a, 'beta', [{ frame: randomFrame(100, 8) }]);
        await run(net, clock, 20);
        const viaRelay = net.captured.filter((d) => d.fromAddress === A.address && d.toAddress === '198.18.0.7' && d.data.readUInt32BE(4) === b.id).at(-1)!;
        expect(viaRelay.data[3]! & FLAG_RELAYED).toBe(FLAG_RELAYED);
        net.filter = undefined;
        net.inject(ATTACKER, B, Buffer.from(viaRelay.data));
      },
    },
  ];

  it.each(cases)('$name never moves the endpoint', async ({ attack }) => {
    const s = await pair();
    await attack(s);
    await run(s.net, s.clock, 20);
    expect(s.pa.directAddress).toBe(A.address);
    expect(s.pa.address).toBe(A.address);
    // alpha's traffic still arrives, and beta still answers at alpha's address
    s.net.filter = undefined;
    const got = s.b.received.length;
    sendFrames(s.a, 'beta', [{ frame: randomFrame(100, 99) }]);
    sendFrames(s.b, 'alpha', [{ frame: randomFrame(100, 98) }]);
    await run(s.net, s.clock, 50);
    expect(s.b.received.length).toBe(got + 1);
    expect(s.a.received.at(-1)!.frame.equals(randomFrame(100, 98))).toBe(true);
  });
});
