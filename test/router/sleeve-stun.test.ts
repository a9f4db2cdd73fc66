import { describe, expect, it } from 'vitest';
import type { Endpoint } from '../../src/core/net.js';
import { MAX_PENDING_STUN } from '../../src/router/sleeve/sleeve-stun.js';
import { randomFrame, run, sendFrames, startedPair, type FakeNetwork, type Node } from './sleeve-harness.js';

const SERVER = { address: '198.18.0.99', port: 3478 };

/** A Binding success response to `req` with XOR-MAPPED-ADDRESS (IPv4) `address`:`port`, or raw attribute bytes. */
function answer(req: Buffer, address: string, port: number, attr?: Buffer): Buffer {
  const a = attr ?? Buffer.alloc(12);
  if (attr === undefined) {
    a.writeUInt16BE(0x0020, 0);
    a.writeUInt16BE(8, 2);
    a.writeUInt16BE(1, 4);
    a.writeUInt16BE(port ^ 0x2112, 6);
    address.split('.').forEach((x, i) => (a[8 + i] = Number(x) ^ [0x21, 0x12, 0xa4, 0x42][i]!));
  }
  const h = Buffer.alloc(20);
  h.writeUInt16BE(0x0101, 0);
  h.writeUInt16BE(a.length, 2);
  h.writeUInt32BE(0x2112a442, 4);
  req.copy(h, 8, 8, 20);
  return Buffer.concat([h, a]);
}

/** A started pair whose alpha reports STUN answers; datagrams to the (absent) server are kept. */
async function setup() {
  const { net, clock, a, b } = await startedPair();
  const requests: Buffer[] = [];
  net.filter = (d) => {
    if (d.toAddress !== SERVER.address) return true;
    requests.push(Buffer.from(d.data));
    return false;
  };
  const mapped: [string, Endpoint][] = [];
  a.sleeve.setEvents({ pathChange: () => undefined, rekeyWanted: () => undefined, stunMapped: (s, m) => mapped.push([s, m]) });
  return { net, clock, a, b, requests, mapped };
}

function inject(net: FakeNetwork, to: Node, data: Buffer, from = SERVER): void {
  net.inject(from, { address: to.address, port: 6784 }, data);
}

describe('sleeve STUN requests and answers', () => {
  it('sends a Binding request (random transaction id) and reports the matched answer once', async () => {
    const { net, clock, a, requests, mapped } = await setup();
    expect(a.sleeve.stunRequest(SERVER.address, SERVER.port)).toBe('');
    expect(a.sleeve.stunRequest(SERVER.address, SERVER.port)).toBe('');
    expect(requests).toHaveLength(2);
    const req = requests[0]!;
    expect(req.length).toBe(20);
    expect(req.subarray(0, 8).toString('hex')).toBe('000100002112a442');
    expect(req.subarray(8, 20).equals(requests[1]!.subarray(8, 20))).toBe(false);
    inject(net, a, answer(req, '198.18.0.201', 40001));
    await run(net, clock, 100);
    expect(mapped).toEqual([['198.18.0.99:3478', { address: '198.18.0.201', port: 40001, family: 4 }]]);
    expect(a.sleeve.stunCounters()).toEqual({ requests: 2, answers: 1 });
    // The same answer again: its transaction is done.
    inject(net, a, answer(req, '198.18.0.201', 40001));
    await run(net, clock, 100);
    expect(mapped).toHaveLength(1);
    expect(a.sleeve.drops.stunUnmatched).toBe(1);
  });

  type Bad = { name: string; make: (req: Buffer) => { data: Buffer; from?: { address: string; port: number } }; counter: 'stunUnmatched' | 'stunMalformed' };
  const bad: Bad[] = [
    { name: 'from another address than the one asked', make: (req) => ({ data: answer(req, '198.18.0.201', 40001), from: { address: '198.18.0.98', port: 3478 } }), counter: 'stunUnmatched' },
    { name: 'from another port than the one asked', make: (req) => ({ data: answer(req, '198.18.0.201', 40001), from: { address: SERVER.address, port: 3479 } }), counter: 'stunUnmatched' },
    { name: 'with a transaction id never sent', make: (req) => ({ data: answer(Buffer.concat([req.subarray(0, 8), Buffer.alloc(12, 7)]), '198.18.0.201', 40001) }), counter: 'stunUnmatched' },
    { name: 'matched, but an attribute runs past the message', make: (req) => ({ data: answer(req, '', 0, Buffer.from('0020004000010000', 'hex')) }), counter: 'stunMalformed' },
    { name: 'matched, without a mapped address', make: (req) => ({ data: answer(req, '', 0, Buffer.from('8022000474657374', 'hex')) }), counter: 'stunMalformed' },
  ];
  it.each(bad)(
    'an answer $name is counted ($counter) and dropped',
    async ({ make, counter }) => {
      const { net, clock, a, requests, mapped } = await setup();
      expect(a.sleeve.stunRequest(SERVER.address, SERVER.port)).toBe('');
      const { data, from } = make(requests[0]!);
      inject(net, a, data, from);
      await run(net, clock, 100);
      expect(mapped).toEqual([]);
      expect(a.sleeve.drops[counter]).toBe(1);
      const { stunUnmatched, stunMalformed, ...rest } = a.sleeve.drops;
      expect(stunUnmatched + stunMalformed).toBe(1);
      // It never reached the sleeve parsing.
      expect(Object.values(rest).every((n) => n === 0)).toBe(true);
    },
  );

  it(`remembers the last ${MAX_PENDING_STUN} transactions`, async () => {
    const { net, clock, a, requests, mapped } = await setup();
    for (let i = 0; i <= MAX_PENDING_STUN; i++) expect(a.sleeve.stunRequest(SERVER.address, SERVER.port)).toBe('');
    inject(net, a, answer(requests[0]!, '198.18.0.201', 40001));
    inject(net, a, answer(requests[1]!, '198.18.0.201', 40002));
    await run(net, clock, 100);
    expect(a.sleeve.drops.stunUnmatched).toBe(1);
    expect(mapped.map(([, m]) => m.port)).toEqual([40002]);
  });

  it('says why a request cannot be sent (an IPv6 server on an IPv4 socket)', async () => {
    const { a } = await setup();
    expect(a.sleeve.stunRequest('2001:2::99', 3478)).not.toBe('');
    expect(a.sleeve.stunCounters().requests).toBe(0);
  });

  it('leaves ordinary sleeve traffic alone, also around STUN requests', async () => {
    const { net, clock, a, b, requests, mapped } = await setup();
    const frames = [randomFrame(100, 1), randomFrame(1400, 2), randomFrame(3000, 3)].map((frame) => ({ frame }));
    sendFrames(a, 'beta', frames.slice(0, 2));
    expect(a.sleeve.stunRequest(SERVER.address, SERVER.port)).toBe('');
    sendFrames(a, 'beta', frames.slice(2));
    sendFrames(b, 'alpha', frames);
    inject(net, a, answer(requests[0]!, '198.18.0.201', 40001));
    await run(net, clock, 200);
    expect(b.received.map((r) => r.frame)).toEqual(frames.map((f) => f.frame));
    expect(a.received.map((r) => r.frame)).toEqual(frames.map((f) => f.frame));
    expect(mapped).toHaveLength(1);
    expect(Object.values(a.sleeve.drops).every((n) => n === 0)).toBe(true);
    expect(Object.values(b.sleeve.drops).every((n) => n === 0)).toBe(true);
    expect(a.sleeve.peerById(b.id)!.pathUp).toBe(true);
  });
});
